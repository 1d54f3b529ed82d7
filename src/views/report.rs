//! `harness report`: a Markdown table of a runs file, grouped over seeds.
//!
//! Each run counts once, by the row that stands for it ([`results::effective`]). Runs with
//! status ok are grouped by the chosen columns (by default every setting but the seed:
//! [`results::SETTINGS`]); each group shows its number of runs, the mean and sample standard
//! deviation of the accuracy it is ranked by, the test accuracy beside it, the parameter count
//! and the mean run time. Groups are ranked by validation accuracy when their runs held images
//! out for validation (the test set then plays no part in the ranking), else by test accuracy;
//! the table says which.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::error::{exit, suggestion, user_error};
use crate::record::claims::{Claims, write_atomically};
use crate::record::results::{self, RunRow, Status};
use crate::search::importance;
use crate::text::markdown_cell;

/// One group's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The values of the grouping columns.
    pub key: Vec<String>,
    pub runs: usize,
    /// Whether the group is ranked by validation accuracy (else by test accuracy).
    pub by_validation: bool,
    /// Mean of the ranking accuracy.
    pub mean_accuracy: f64,
    /// Its sample standard deviation (n - 1); `None` for a single run.
    pub sd_accuracy: Option<f64>,
    /// Mean test accuracy of the group's runs (the kept epoch's).
    pub mean_test_accuracy: f64,
    pub params: u64,
    pub mean_seconds: f64,
}

/// The value of column `name` of a row, as text.
pub fn cell(row: &RunRow, name: &str) -> Option<String> {
    let value = serde_json::to_value(row).expect("a row serializes");
    value.get(name).map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "NaN".to_string(),
        other => other.to_string(),
    })
}

/// Checks that every column of `names` exists; `flag` names the option in errors.
pub fn check_columns(names: &[String], flag: &str) -> Result<()> {
    let columns = results::columns::<RunRow>();
    for name in names {
        if !columns.contains(name) {
            return Err(user_error(format!(
                "{flag} {name}: runs files have no column \"{name}\"{}; the columns are: {}",
                suggestion(name, columns.iter().map(String::as_str)),
                columns.join(", ")
            )));
        }
    }
    Ok(())
}

/// Groups the ok runs of `path` by `group_by`; also returns how many runs were not ok and how
/// many rows were earlier attempts of a run (not counted).
pub fn groups(path: &Path, group_by: &[String]) -> Result<(Vec<Group>, usize, usize)> {
    check_columns(group_by, "--group-by")?;
    crate::input::regular_file(path, "runs file", crate::input::CSV_MAX)?;
    let rows = results::read_runs(path)?;
    let runs = results::effective(&rows);
    let repeated = rows.len() - runs.len();
    let mut grouped: BTreeMap<Vec<String>, Vec<&RunRow>> = BTreeMap::new();
    let mut not_ok = 0;
    for run in runs {
        if run.status != Status::Ok {
            not_ok += 1;
            continue;
        }
        let key = group_by
            .iter()
            .map(|name| cell(run, name).unwrap_or_default())
            .collect();
        grouped.entry(key).or_default().push(run);
    }
    let mut groups: Vec<Group> = grouped
        .into_iter()
        .map(|(key, runs)| {
            let n = runs.len() as f64;
            let by_validation = runs.iter().all(|r| r.validation_size > 0);
            let ranked: Vec<f64> = runs
                .iter()
                .map(|r| {
                    if by_validation {
                        r.val_accuracy
                    } else {
                        r.test_accuracy
                    }
                })
                .collect();
            let mean = ranked.iter().sum::<f64>() / n;
            let sd = (runs.len() > 1).then(|| {
                (ranked.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            });
            Group {
                key,
                runs: runs.len(),
                by_validation,
                mean_accuracy: mean,
                sd_accuracy: sd,
                mean_test_accuracy: runs.iter().map(|r| r.test_accuracy).sum::<f64>() / n,
                params: runs[0].params,
                mean_seconds: runs.iter().map(|r| r.total_seconds).sum::<f64>() / n,
            }
        })
        .collect();
    // Validation-ranked groups first (their ranking never saw the test set), then the others.
    groups.sort_by(|a, b| {
        b.by_validation
            .cmp(&a.by_validation)
            .then(b.mean_accuracy.total_cmp(&a.mean_accuracy))
    });
    Ok((groups, not_ok, repeated))
}

/// The report as Markdown. Of the grouping columns, the table shows those whose values differ
/// between groups (with one group: the shape and activation), and lists the others below it,
/// so that grouping by every setting stays readable.
pub fn markdown(path: &Path, group_by: &[String]) -> Result<String> {
    let (groups, not_ok, repeated) = groups(path, group_by)?;
    let mut shown: Vec<usize> = (0..group_by.len())
        .filter(|&i| groups.iter().any(|g| g.key[i] != groups[0].key[i]))
        .collect();
    if shown.is_empty() {
        // Nothing differs (one group): name the network, and list the rest below the table.
        shown = (0..group_by.len())
            .filter(|&i| ["shape", "activation"].contains(&group_by[i].as_str()))
            .collect();
        if shown.is_empty() && !group_by.is_empty() {
            shown.push(0);
        }
    }
    let mut out = String::new();
    writeln!(
        out,
        "| {} | runs | ranked by | accuracy (mean ± sd) | test accuracy (mean) | params | mean \
         seconds |",
        shown
            .iter()
            .map(|&i| markdown_cell(&group_by[i]))
            .collect::<Vec<_>>()
            .join(" | ")
    )?;
    writeln!(
        out,
        "|{}---|---|---|---|---|---|",
        "---|".repeat(shown.len())
    )?;
    for group in &groups {
        let sd = group
            .sd_accuracy
            .map_or("-".to_string(), |sd| format!("{sd:.4}"));
        writeln!(
            out,
            "| {} | {} | {} | {:.4} ± {sd} | {:.4} | {} | {:.1} |",
            shown
                .iter()
                .map(|&i| markdown_cell(&group.key[i]))
                .collect::<Vec<_>>()
                .join(" | "),
            group.runs,
            if group.by_validation {
                "validation"
            } else {
                "test"
            },
            group.mean_accuracy,
            group.mean_test_accuracy,
            group.params,
            group.mean_seconds
        )?;
    }
    let mut notes = Vec::new();
    if not_ok > 0 {
        notes.push(format!("{not_ok} diverged or failed runs left out"));
    }
    if repeated > 0 {
        notes.push(format!(
            "{repeated} earlier attempts of runs counted once (the latest non-failed row \
             stands for a run)"
        ));
    }
    let constant: Vec<String> = (0..group_by.len())
        .filter(|i| !shown.contains(i))
        .filter_map(|i| {
            groups
                .first()
                .map(|g| format!("{} = {}", group_by[i], markdown_cell(&g.key[i])))
        })
        .collect();
    if !constant.is_empty() {
        writeln!(out, "\nThe same in every group: {}.", constant.join(", "))?;
    }
    writeln!(
        out,
        "\n{} groups of {} ok runs from {}, ranked by validation accuracy where runs held \
         images out for validation (the test set played no part in their ranking), else by \
         test accuracy{}.",
        groups.len(),
        groups.iter().map(|g| g.runs).sum::<usize>(),
        path.display(),
        if notes.is_empty() {
            String::new()
        } else {
            format!("; {}", notes.join("; "))
        }
    )?;
    Ok(out)
}

/// `harness report`: prints the table or writes it to `output`.
pub fn command(runs: &Path, group_by: &[String], output: Option<&Path>) -> Result<u8> {
    let group_by: Vec<String> = if group_by.is_empty() {
        default_group_by()
    } else {
        group_by.to_vec()
    };
    if let Some(path) = output {
        Claims::new()
            .reads(runs, "the runs file")
            .writes_file(path, "report -o")
            .check()?;
    }
    let table = markdown(runs, &group_by)?;
    match output {
        Some(path) => {
            write_atomically(path, table.as_bytes()).map_err(|e| user_error(format!("{e:#}")))?;
            println!("report written to {}", path.display());
        }
        None => print!("{table}"),
    }
    Ok(exit::OK)
}

/// `harness report --importance`: which settings mattered, as a Markdown table (or JSON).
pub fn importance_command(
    runs: &Path,
    metric: crate::config::Metric,
    json: bool,
    output: Option<&Path>,
) -> Result<u8> {
    if let Some(path) = output {
        Claims::new()
            .reads(runs, "the runs file")
            .writes_file(path, "report -o")
            .check()?;
    }
    crate::input::regular_file(runs, "runs file", crate::input::CSV_MAX)?;
    let rows = results::read_runs(runs)?;
    let effective = results::effective(&rows);
    let (importances, used) = importance::of_runs(&effective, metric)
        .map_err(|e| user_error(format!("{}: {e:#}", runs.display())))?;
    let text = if json {
        importance_json(&importances, metric, used)
    } else {
        importance_markdown(runs, &importances, metric, used)
    };
    match output {
        Some(path) => {
            write_atomically(path, text.as_bytes()).map_err(|e| user_error(format!("{e:#}")))?;
            println!("importance written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(exit::OK)
}

/// A domain as the report writes it.
pub fn domain_text(domain: &importance::Domain) -> String {
    match domain {
        importance::Domain::Choice(values) => format!("choice of {}", values.join(", ")),
        importance::Domain::Range { low, high, log } => format!(
            "range {} to {}{}",
            crate::text::number(*low),
            crate::text::number(*high),
            if *log { ", log scale" } else { "" }
        ),
    }
}

fn importance_markdown(
    runs: &Path,
    importances: &[importance::Importance],
    metric: crate::config::Metric,
    used: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Which settings mattered for {metric}, over {used} ok runs of {}, by {}.\n",
        runs.display(),
        importance::METHOD
    );
    if importances.is_empty() {
        let _ = writeln!(out, "No setting varies across these runs.");
        return out;
    }
    let _ = writeln!(out, "| setting | importance | | domain |");
    let _ = writeln!(out, "|---|---:|---|---|");
    for item in importances {
        let bar = "#".repeat((item.importance * 20.0).round() as usize);
        let _ = writeln!(
            out,
            "| {} | {:.3} | {} | {} |",
            markdown_cell(&item.column),
            item.importance,
            bar,
            markdown_cell(&domain_text(&item.domain))
        );
    }
    if used < 50 {
        let _ = writeln!(
            out,
            "\nThe top 10% is {} run(s) here: with fewer than 5 (50 runs), the importances are \
             rough (Optuna's advice).",
            used.div_ceil(10)
        );
    }
    out
}

fn importance_json(
    importances: &[importance::Importance],
    metric: crate::config::Metric,
    used: usize,
) -> String {
    let items: Vec<serde_json::Value> = importances
        .iter()
        .map(|item| {
            let domain = match &item.domain {
                importance::Domain::Choice(values) => serde_json::json!({ "choice": values }),
                importance::Domain::Range { low, high, log } => {
                    serde_json::json!({ "low": low, "high": high, "log": log })
                }
            };
            serde_json::json!({
                "setting": item.column,
                "importance": item.importance,
                "domain": domain,
            })
        })
        .collect();
    let value = serde_json::json!({
        "method": importance::METHOD,
        "metric": metric.to_string(),
        "runs": used,
        "importances": items,
    });
    format!("{value}\n")
}

/// The default grouping: every setting but the seed.
pub fn default_group_by() -> Vec<String> {
    results::SETTINGS.iter().map(|s| s.to_string()).collect()
}
