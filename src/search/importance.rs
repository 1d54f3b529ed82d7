//! Which settings mattered: PED-ANOVA (Watanabe, Bansal and Hutter, "PED-ANOVA: Efficiently
//! Quantifying Hyperparameter Importance in Arbitrary Subspaces", IJCAI 2023), computed as
//! Optuna's `PedAnovaImportanceEvaluator` does with its defaults, and normalised to sum to 1 as
//! `optuna.importance.get_param_importances` returns them.
//!
//! A setting matters as much as the runs in the best 10% by the metric ("top") are distributed
//! differently over its values than all runs are: the Pearson divergence between two Parzen
//! estimators on a grid over its domain (50 points for a range, one per value for a choice),
//! one of the top runs' values, one of all runs' values, each with a uniform prior of weight 1
//! and Scott's bandwidth. The measure needs no model of the objective, and costs a pass over
//! the runs per setting: fast at any number of runs.
//!
//! The runs file does not say how a setting was searched, so each varying column's domain is
//! read from its values: text, or a few numbers each tried twice or more, is a choice; other
//! numbers are a range, on a log scale when they are positive and span a decade.

use anyhow::Result;

use crate::config::Metric;
use crate::error::user_error;
use crate::record::results::{RunRow, SETTINGS, Status};
use crate::views::report::cell;

/// The method, as the report names it.
pub const METHOD: &str = "PED-ANOVA (Watanabe et al., IJCAI 2023; Optuna's \
                          PedAnovaImportanceEvaluator, defaults: the top 10% of runs against all)";

/// The domain of one setting across the runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Domain {
    /// The values, sorted (numbers by value).
    Choice(Vec<String>),
    Range {
        low: f64,
        high: f64,
        log: bool,
    },
}

/// One setting's importance.
#[derive(Clone, Debug, PartialEq)]
pub struct Importance {
    pub column: String,
    pub domain: Domain,
    /// Its share of the sum over the settings (0 to 1).
    pub importance: f64,
}

/// The settings that vary across the ok runs of `runs` with a finite `metric`, by importance
/// for the metric, most important first; with how many runs were used.
pub fn of_runs(runs: &[&RunRow], metric: Metric) -> Result<(Vec<Importance>, usize)> {
    if runs.iter().all(|r| r.validation_size == 0) && !runs.is_empty() {
        return Err(user_error(format!(
            "--importance ranks runs by {metric}, and no run of the file held validation \
             images out (data.validation = 0), so none has one; the test set is never used \
             to choose settings"
        )));
    }
    let used: Vec<&RunRow> = runs
        .iter()
        .copied()
        .filter(|r| r.status == Status::Ok && r.validation_size > 0)
        .filter(|r| loss(r, metric).is_finite())
        .collect();
    let losses: Vec<f64> = used.iter().map(|r| loss(r, metric)).collect();
    let mut columns: Vec<&str> = SETTINGS.to_vec();
    columns.push("seed");
    let mut params: Vec<(String, Domain, Vec<f64>)> = Vec::new();
    for column in columns {
        let cells: Vec<String> = used
            .iter()
            .map(|r| cell(r, column).unwrap_or_default())
            .collect();
        if let Some((domain, values)) = domain_of(&cells) {
            params.push((column.to_string(), domain, values));
        }
    }
    let divergences: Vec<f64> = params
        .iter()
        .map(|(_, domain, values)| ped_anova(domain, values, &losses))
        .collect();
    let total: f64 = divergences.iter().sum();
    let mut out: Vec<Importance> = params
        .into_iter()
        .zip(divergences)
        .map(|((column, domain, _), d)| Importance {
            column,
            domain,
            importance: if total > 0.0 { d / total } else { 0.0 },
        })
        .collect();
    out.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    Ok((out, used.len()))
}

/// Lower is better, as PED-ANOVA ranks.
fn loss(row: &RunRow, metric: Metric) -> f64 {
    match metric {
        Metric::ValAccuracy => -row.val_accuracy,
        Metric::ValLoss => row.val_loss,
    }
}

/// A column's domain and each run's value in it (a choice's position, a range's number), or
/// `None` when it does not vary.
fn domain_of(cells: &[String]) -> Option<(Domain, Vec<f64>)> {
    let mut distinct: Vec<&String> = cells.iter().collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() < 2 {
        return None;
    }
    let numbers: Option<Vec<f64>> = cells
        .iter()
        .map(|c| c.parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect();
    match numbers {
        Some(numbers) if distinct.len() > 10 || 2 * distinct.len() > cells.len() => {
            let low = numbers.iter().copied().fold(f64::INFINITY, f64::min);
            let high = numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log = crate::views::plot::log_axis(numbers.iter().copied());
            Some((Domain::Range { low, high, log }, numbers))
        }
        numbers => {
            let mut choices: Vec<String> = distinct.into_iter().cloned().collect();
            if numbers.is_some() {
                choices.sort_by(|a, b| {
                    a.parse::<f64>()
                        .unwrap_or(0.0)
                        .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
                });
            }
            let values = cells
                .iter()
                .map(|c| choices.iter().position(|x| x == c).expect("a value") as f64)
                .collect();
            Some((Domain::Choice(choices), values))
        }
    }
}

/// PED-ANOVA's (unnormalised) importance of one setting: `values` of each run in its domain,
/// `losses` lower better.
pub fn ped_anova(domain: &Domain, values: &[f64], losses: &[f64]) -> f64 {
    let n = losses.len();
    if n <= 1 {
        return 0.0;
    }
    // The top 10% (Optuna's quantile filter: ties at the cut-off are in).
    let mut sorted = losses.to_vec();
    sorted.sort_by(f64::total_cmp);
    let cutoff = sorted[((0.1 * n as f64).ceil() as usize).max(1) - 1];
    let top: Vec<f64> = values
        .iter()
        .zip(losses)
        .filter(|(_, l)| **l <= cutoff)
        .map(|(v, _)| *v)
        .collect();
    let quantile = top.len() as f64 / n as f64;
    let (top_counts, all_counts) = (counts(domain, &top), counts(domain, values));
    let size = all_counts.len();
    let categorical = matches!(domain, Domain::Choice(_));
    let top_pdf = scott_parzen(&top_counts, categorical);
    let all_pdf = scott_parzen(&all_counts, categorical);
    let divergence: f64 = (0..size)
        .map(|i| {
            let (t, a) = (top_pdf[i] + 1e-12, all_pdf[i] + 1e-12);
            a * (t / a - 1.0).powi(2)
        })
        .sum();
    divergence * quantile * quantile
}

/// How many of `values` fall on each point of the domain's grid.
fn counts(domain: &Domain, values: &[f64]) -> Vec<f64> {
    match domain {
        Domain::Choice(choices) => {
            let mut counts = vec![0.0; choices.len()];
            values.iter().for_each(|&v| counts[v as usize] += 1.0);
            counts
        }
        Domain::Range { low, high, log } => {
            let steps = 50;
            let t = |x: f64| if *log { x.ln() } else { x };
            let (low, high) = (t(*low), t(*high));
            let step = (high - low) / (steps - 1) as f64;
            let mut counts = vec![0.0; steps];
            for &v in values {
                // Midpoints go to the lower grid point, as Optuna's.
                let i = ((t(v) - low) / step - 0.5).ceil();
                counts[(i.max(0.0) as usize).min(steps - 1)] += 1.0;
            }
            counts
        }
    }
}

/// The density at each grid point of Optuna's `ScottParzenEstimator` fitted to `counts`: for a
/// choice, kernels that put prior weight / kernels on every value and 1 more on their own; for
/// a grid of a range, discretised normals of Scott's bandwidth; a uniform prior of weight 1.
fn scott_parzen(counts: &[f64], categorical: bool) -> Vec<f64> {
    let size = counts.len();
    let observed: Vec<usize> = (0..size).filter(|&i| counts[i] > 0.0).collect();
    if observed.is_empty() {
        return vec![1.0 / size as f64; size];
    }
    let mut weights: Vec<f64> = observed.iter().map(|&i| counts[i]).collect();
    weights.push(1.0);
    let sum: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w /= sum);
    let mut pdf = vec![0.0; size];
    if categorical {
        let kernels = observed.len() + 1;
        let base = 1.0 / kernels as f64;
        for (k, &o) in observed.iter().enumerate() {
            let row = base * size as f64 + 1.0;
            for (x, slot) in pdf.iter_mut().enumerate() {
                *slot += weights[k] * (base + if x == o { 1.0 } else { 0.0 }) / row;
            }
        }
        let prior = weights[observed.len()];
        pdf.iter_mut().for_each(|slot| *slot += prior / size as f64);
        return pdf;
    }
    // Scott's rule on the grid's indices, weighted by the counts.
    let obs: Vec<f64> = observed.iter().map(|&i| i as f64).collect();
    let w: Vec<f64> = observed.iter().map(|&i| counts[i]).collect();
    let total: f64 = w.iter().sum();
    let mean = obs.iter().zip(&w).map(|(o, w)| o * w).sum::<f64>() / total;
    let variance = obs
        .iter()
        .zip(&w)
        .map(|(o, w)| (o - mean).powi(2) * w)
        .sum::<f64>()
        / (total - 1.0).max(1.0);
    let cumulative: Vec<f64> = w
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect();
    let q1 = (total / 4.0).floor();
    let q3 = (total * 3.0 / 4.0).floor();
    let q1_index = cumulative
        .iter()
        .position(|&c| c >= q1)
        .unwrap_or(obs.len());
    let q3_index = cumulative.iter().position(|&c| c > q3).unwrap_or(obs.len());
    let iqr = obs[q3_index.min(obs.len() - 1)] - obs[q1_index.min(obs.len() - 1)];
    let sigma = (1.059 * (iqr / 1.34).min(variance.sqrt()) * total.powf(-0.2)).max(0.5 / 1.64);
    let (low, high) = (0.0, (size - 1) as f64);
    let mut mus = obs;
    mus.push((low + high) / 2.0);
    let mut sigmas = vec![sigma; mus.len() - 1];
    sigmas.push(high - low + 1.0);
    for (k, (&mu, &s)) in mus.iter().zip(&sigmas).enumerate() {
        let inside = mass((low - 0.5 - mu) / s, (high + 0.5 - mu) / s);
        for (x, slot) in pdf.iter_mut().enumerate() {
            let x = x as f64;
            *slot += weights[k] * mass((x - 0.5 - mu) / s, (x + 0.5 - mu) / s) / inside;
        }
    }
    pdf
}

/// The standard normal's mass between `a` and `b`.
fn mass(a: f64, b: f64) -> f64 {
    let r = std::f64::consts::FRAC_1_SQRT_2;
    (0.5 * (libm::erfc(a * r) - libm::erfc(b * r))).max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dominant_setting_is_ranked_first() {
        // 200 trials: the loss depends strongly on x, weakly on a choice c, not at all on z.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut x, mut c, mut z, mut losses) = (vec![], vec![], vec![], vec![]);
        for _ in 0..200 {
            let (a, b, d) = (next(), (next() * 3.0).floor(), next());
            losses.push((a - 0.3).powi(2) * 10.0 + 0.05 * b + 0.001 * next());
            x.push(a);
            c.push(b);
            z.push(d);
        }
        let range = Domain::Range {
            low: 0.0,
            high: 1.0,
            log: false,
        };
        let choice = Domain::Choice(vec!["0".into(), "1".into(), "2".into()]);
        let ix = ped_anova(&range, &x, &losses);
        let ic = ped_anova(&choice, &c, &losses);
        let iz = ped_anova(&range, &z, &losses);
        assert!(ix > 3.0 * ic && ix > 3.0 * iz, "x {ix}, c {ic}, z {iz}");
    }

    #[test]
    fn the_same_distribution_in_the_top_and_all_runs_is_unimportant() {
        // Every value of the choice as often among the best as among all runs.
        let values: Vec<f64> = (0..40).map(|i| (i % 2) as f64).collect();
        let losses: Vec<f64> = (0..40).map(|i| (i / 2) as f64).collect();
        let choice = Domain::Choice(vec!["a".into(), "b".into()]);
        assert!(ped_anova(&choice, &values, &losses) < 1e-3);
    }

    #[test]
    fn domains_are_read_from_the_values() {
        let text: Vec<String> = ["relu", "tanh", "relu", "tanh"].map(String::from).to_vec();
        assert_eq!(
            domain_of(&text).unwrap().0,
            Domain::Choice(vec!["relu".into(), "tanh".into()])
        );
        let few: Vec<String> = ["128", "16", "128", "16", "32", "32"]
            .map(String::from)
            .to_vec();
        let (domain, values) = domain_of(&few).unwrap();
        assert_eq!(
            domain,
            Domain::Choice(vec!["16".into(), "32".into(), "128".into()])
        );
        assert_eq!(values, [2.0, 0.0, 2.0, 0.0, 1.0, 1.0]);
        let rates: Vec<String> = ["0.001", "0.02", "0.0005", "0.004"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            domain_of(&rates).unwrap().0,
            Domain::Range {
                low: 0.0005,
                high: 0.02,
                log: true
            }
        );
        assert!(domain_of(&["1".to_string(), "1".to_string()]).is_none());
    }
}
