//! Experiment files: a base config and the points to run, from a grid, a random search, extra
//! points and exclusions, optionally trained by successive halving.
//!
//! ```toml
//! base = "../configs/relu_16x16.toml"   # or an inline [base] table with config keys
//! [grid]                                # every combination, in a stable order
//! "model.hidden" = [[16], [16, 16]]
//! "model.activation" = ["sigmoid", "relu"]
//! seed = [1, 2]
//! [random]                              # `trials` draws, each crossed with every grid point
//! trials = 20
//! seed = 7                              # the experiment's sampling seed
//! "train.learning_rate" = { log_uniform = [1e-4, 1e-1] }
//! "train.batch_size" = { int = [16, 128] }
//! "model.dropout" = { uniform = [0.0, 0.3] }
//! "train.optimizer" = { choice = ["sgd", "adam"] }
//! [[point]]                             # extra points, key = value
//! "model.hidden" = [128]
//! [[exclude]]                           # drop points that match every key here
//! "model.activation" = "sigmoid"
//! "model.hidden" = [16]
//! [halving]                             # successive halving over the points
//! min_epochs = 1
//! max_epochs = 9
//! eta = 3
//! metric = "val_accuracy"               # or "val_loss"
//! ```
//!
//! [`Experiment::points`] turns the file into [`Point`]s: ordinary validated [`Settings`] with a
//! run_id and a readable name built from what varies (`relu_16x16_s2`, `relu_16x16_t07`). Grid
//! keys are sorted, so the order, the names and the run_ids do not depend on the order of keys
//! in the file. Draw t of the random search is the same for every grid combination (a grid over
//! seeds repeats each draw), and each key's value comes from a generator seeded by the
//! experiment's seed, the trial and the key: a dry run, every shard and a resubmitted array
//! see the same points. Every key is checked against the config schema, and errors name the
//! file, line and key. Expansion is linear in the number of points, and capped at
//! [`MAX_POINTS`].
//!
//! With `[halving]`, every point is a run of `max_epochs` epochs (its schedule spans them all)
//! that rung r stops after a budget of `min_epochs * eta^r` epochs ([`Halving::apply`]): rung 0
//! trains every point for `min_epochs`; rung r keeps the best 1/eta of rung r-1's points by the
//! validation metric (failed and diverged runs last) and continues each from its rung r-1
//! checkpoint to the new budget, as ASHA and Hyperband do. A point's rung-r result is the same
//! whether it was continued or trained in one go. Each rung's points are ordinary runs
//! ([`Experiment::rung_points`]); which points rung r holds is read from the runs file once rung
//! r-1 is complete in it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::de::DeTable;

use super::space::{self, Distribution, trial_rng};
use super::tpe::{Observation, Tpe};

use crate::config::{self, Base, Metric, Override, Settings, label, show};
use crate::error::user_error;
use crate::record::results::{self, RunRow, Status};

/// The most points an experiment may expand to (grid combinations x trials + extra points).
pub const MAX_POINTS: usize = 1_000_000;

/// An experiment file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExperiment {
    /// The base config: a path relative to the experiment file, or inline config tables.
    base: Option<toml::Value>,
    #[serde(default)]
    grid: toml::Table,
    random: Option<toml::Table>,
    tpe: Option<toml::Table>,
    #[serde(default)]
    point: Vec<toml::Table>,
    #[serde(default)]
    exclude: Vec<toml::Table>,
    halving: Option<RawHalving>,
}

/// `[halving]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHalving {
    min_epochs: i64,
    max_epochs: i64,
    #[serde(default = "default_eta")]
    eta: i64,
    #[serde(default)]
    metric: Option<String>,
}

fn default_eta() -> i64 {
    3
}

/// Successive halving: the budgets and how many points each rung keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Halving {
    pub min_epochs: usize,
    pub max_epochs: usize,
    pub eta: usize,
    pub metric: Metric,
}

impl Halving {
    /// Epochs of rung `rung`: `min_epochs * eta^rung`, at most `max_epochs`.
    pub fn epochs(&self, rung: u32) -> usize {
        self.min_epochs
            .saturating_mul(self.eta.saturating_pow(rung))
            .min(self.max_epochs)
    }

    /// How many rungs there are: until a rung trains `max_epochs`.
    pub fn rungs(&self) -> u32 {
        let mut rung = 0;
        while self.epochs(rung) < self.max_epochs {
            rung += 1;
        }
        rung + 1
    }

    /// The budget of rung `rung`'s runs: its epochs, when the schedule spans more (none for the
    /// last rung, which trains the whole run).
    pub fn budget(&self, rung: u32) -> Option<usize> {
        let epochs = self.epochs(rung);
        (epochs < self.max_epochs).then_some(epochs)
    }

    /// A point's settings as rung `rung` trains them: the schedule of `max_epochs` epochs,
    /// stopped after the rung's budget. (A run with a budget keeps its checkpoint for the next
    /// rung to continue, unless `output.checkpoints = "off"`: src/train/run.rs.)
    pub fn apply(&self, rung: u32, settings: &mut Settings) {
        settings.train.epochs = self.max_epochs;
        settings.budget = self.budget(rung);
        settings.rung = rung;
    }

    /// How many points rung `rung` trains, of `candidates` in rung 0.
    pub fn kept(&self, rung: u32, candidates: usize) -> usize {
        (0..rung).fold(candidates, |n, _| (n / self.eta).max(1))
    }
}

/// One run of a sweep.
#[derive(Clone, Debug)]
pub struct Point {
    /// Position in its rung (0-based; the whole sweep without halving), stable across
    /// invocations: shards and workers address points by it.
    pub index: usize,
    /// Which candidate of the experiment this is (its position in rung 0).
    pub candidate: usize,
    pub run_id: String,
    /// What varies, e.g. `[("model.activation", "relu"), ("seed", "3")]`.
    pub varies: Vec<(String, String)>,
    pub settings: Settings,
}

/// An experiment file, read and checked.
pub struct Experiment {
    pub path: PathBuf,
    /// Every point at its own settings (rung 0's budget under halving).
    points: Vec<Point>,
    pub halving: Option<Halving>,
    /// A `[tpe]` search, and what makes its later waves' points.
    tpe: Option<(TpeSearch, Maker)>,
    /// How many points the grid and the search made before exclusions.
    pub expanded: usize,
    /// The base config file, when the base is one (not inline).
    pub base_file: Option<PathBuf>,
    /// SHA-256 of the experiment's text and its base config's: what a sweep checks to notice
    /// either file changing under it ([`Experiment::sources_now`]).
    pub sources: String,
}

/// Where each key of the file is, for messages.
struct Origins<'a> {
    path: &'a Path,
    source: &'a str,
    spans: Option<DeTable<'a>>,
}

impl Origins<'_> {
    fn of(&self, key: &str) -> String {
        let position = self
            .spans
            .as_ref()
            .and_then(|table| config::span_of(table, key))
            .map(|span| line_column(self.source, span.start));
        match position {
            Some((line, column)) => format!("{}:{line}:{column}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}
/// What turns a point's changes into a validated [`Point`], named after what varies: kept by a
/// `[tpe]` experiment, whose later waves are made when the waves before them have results.
struct Maker {
    base: Base,
    /// `--set`, applied to every point.
    overrides: Vec<Override>,
    /// `[halving]`'s schedule of `max_epochs`, when there is one.
    rung_epochs: Option<Override>,
    budget: Option<Halving>,
    path: PathBuf,
    base_name: String,
    /// Labels of the `--set` changes that change what is trained.
    set_labels: Vec<String>,
    /// The keys the search draws.
    searched: HashSet<String>,
    /// The grid keys with more than one value.
    varying: HashSet<String>,
    /// Digits of the largest trial number.
    trial_width: usize,
}

impl Maker {
    /// The point of `changes` (grid values and a trial's draws, or an extra point's keys, all
    /// of which name it when `extra`), as stage `stage` trains it; index and candidate 0.
    fn make(
        &self,
        changes: Vec<Override>,
        extra: bool,
        trial: Option<usize>,
        stage: u32,
    ) -> Result<Point> {
        let naming: Vec<&Override> = changes
            .iter()
            .filter(|c| c.key != "name" && (extra || self.varying.contains(&c.key)))
            .collect();
        let mut all = changes.clone();
        all.extend(self.overrides.iter().cloned());
        all.extend(self.rung_epochs.clone());
        let mut settings = self
            .base
            .settings(&all)
            .map_err(|error| match &self.rung_epochs {
                Some(rung) => error.context(format!(
                    "{}: [halving] trains every point along a schedule of {} epoch(s), and a \
                 point must be valid as it will be trained",
                    rung.origin, rung.value
                )),
                None => error,
            })?;
        settings.config = Some(self.path.clone());
        if let Some(halving) = &self.budget {
            halving.apply(0, &mut settings);
        }
        settings.rung = stage;
        let mut varies: Vec<(String, String)> = naming
            .iter()
            .map(|change| (change.key.clone(), show(&change.value)))
            .collect();
        let mut labels: Vec<String> = naming
            .iter()
            .map(|change| label(&change.key, &change.value))
            .collect();
        labels.extend(self.set_labels.iter().cloned());
        // A drawn choice (an activation, an optimizer, a shape) names the point as a grid
        // value would: `gelu_t07`, not `relu_16x16_t07` for a point that trained GELU.
        let drawn_choices: Vec<&Override> = changes
            .iter()
            .filter(|c| self.searched.contains(&c.key))
            .filter(|c| matches!(c.value, toml::Value::String(_) | toml::Value::Array(_)))
            .collect();
        if let Some(trial) = trial {
            let width = self.trial_width;
            labels.extend(drawn_choices.iter().map(|c| label(&c.key, &c.value)));
            labels.push(format!("t{trial:0width$}"));
            varies.extend(
                changes
                    .iter()
                    .filter(|c| self.searched.contains(&c.key))
                    .map(|change| (change.key.clone(), show(&change.value))),
            );
        }
        // A point that sets `name` keeps it; others are named after what varies.
        if !labels.is_empty() && !changes.iter().any(|change| change.key == "name") {
            // Without the shape in the labels ("s3"), keep the base's name in front.
            let shaped = naming
                .iter()
                .chain(if trial.is_some() {
                    &drawn_choices[..]
                } else {
                    &[]
                })
                .any(|change| matches!(change.key.as_str(), "model.hidden" | "model.activation"));
            let name = if shaped {
                labels.join("_")
            } else {
                format!("{}_{}", self.base_name, labels.join("_"))
            };
            // A name a CSV reader would take for a number ("16") gets the base's in front.
            settings.name = if config::check_name(&name).is_ok() {
                name
            } else {
                format!("{}_{name}", self.base_name)
            };
        }
        let run_id = settings.run_id(settings.backend);
        Ok(Point {
            index: 0,
            candidate: 0,
            run_id,
            varies,
            settings,
        })
    }
}

/// A `[tpe]` search: the sampler, its space, and the grid combinations each searched on its
/// own (each has its own trials and learns from its own results only).
#[derive(Clone, Debug)]
struct TpeSearch {
    sampler: Tpe,
    metric: Metric,
    seed: i64,
    trials: usize,
    keys: Vec<(String, Distribution)>,
    /// Where each key is in the file.
    origins: Vec<String>,
    grid_points: Vec<Vec<Override>>,
}

impl TpeSearch {
    fn waves(&self) -> u32 {
        self.trials.div_ceil(self.sampler.wave) as u32
    }

    /// The points of wave `wave`: for every grid combination, its trials of the wave,
    /// suggested from the results (`standing`, by run_id) of its trials in the waves before.
    /// A trial that repeats an earlier trial's run is left out (it would train nothing new).
    /// Fails with [`Incomplete`] while some earlier wave's point has no result.
    fn wave(
        &self,
        maker: &Maker,
        wave: u32,
        standing: &HashMap<&str, &RunRow>,
        results: &str,
    ) -> Result<Vec<Point>> {
        let size = self.sampler.wave;
        let mut seen: HashSet<String> = HashSet::new();
        let mut histories: Vec<Vec<Observation>> = vec![Vec::new(); self.grid_points.len()];
        let mut points = Vec::new();
        for w in 0..=wave {
            let mut this_wave: Vec<(usize, Point, Vec<f64>)> = Vec::new();
            for (c, grid_changes) in self.grid_points.iter().enumerate() {
                let trials = (w as usize * size)..((w as usize + 1) * size).min(self.trials);
                let mut pending: Vec<Vec<f64>> = Vec::new();
                for trial in trials {
                    let values =
                        self.sampler
                            .suggest(&self.keys, &histories[c], &pending, self.seed, trial);
                    let internal: Vec<f64> = self
                        .keys
                        .iter()
                        .zip(&values)
                        .map(|((_, d), v)| d.internal(v).expect("a suggestion of the space"))
                        .collect();
                    pending.push(internal.clone());
                    let mut changes = grid_changes.clone();
                    changes.extend(self.keys.iter().zip(&self.origins).zip(values).map(
                        |(((key, _), origin), value)| Override {
                            key: key.clone(),
                            value,
                            origin: origin.clone(),
                        },
                    ));
                    let mut point = maker.make(changes, false, Some(trial), w)?;
                    if !seen.insert(point.run_id.clone()) {
                        continue;
                    }
                    point.candidate = c * self.trials + trial;
                    this_wave.push((c, point, internal));
                }
            }
            if w == wave {
                points = this_wave.into_iter().map(|(_, point, _)| point).collect();
                break;
            }
            let missing = this_wave
                .iter()
                .filter(|(_, point, _)| !standing.contains_key(point.run_id.as_str()))
                .count();
            if missing > 0 {
                return Err(user_error(format!(
                    "wave {} of {} is suggested from the results of the waves before it, and \
                     {missing} of wave {w}'s {} points have no row in {results} yet: run wave {w} \
                     first (with shards, merge their files into {results} before the next wave)",
                    w + 1,
                    maker.path.display(),
                    this_wave.len(),
                ))
                .context(Incomplete(w + 1, "wave")));
            }
            for (c, point, values) in this_wave {
                let row = standing[point.run_id.as_str()];
                histories[c].push(Observation {
                    values,
                    score: score(row, self.metric),
                });
            }
        }
        for (index, point) in points.iter_mut().enumerate() {
            point.index = index;
        }
        Ok(points)
    }
}

/// What `[tpe]` cannot be combined with or use, refused before any point is made.
fn check_tpe(
    raw: &RawExperiment,
    sampler: &Tpe,
    trials: usize,
    keys: &[(String, Distribution)],
    origin: &dyn Fn(&str) -> String,
) -> Result<()> {
    if raw.halving.is_some() {
        return Err(user_error(format!(
            "{}: [tpe] with [halving] is not supported: TPE suggests each wave from finished \
             runs, while halving continues the points it has at growing budgets, and ranking \
             runs of different budgets in one model (BOHB) is another method; search with \
             [tpe] at a fixed train.epochs, or with [random] and [halving]",
            origin("halving")
        )));
    }
    if let Some(i) = (!raw.point.is_empty()).then_some(0) {
        return Err(user_error(format!(
            "{}: [[point]] with [tpe] is not supported: TPE's waves hold only its own trials; \
             run extra points in an experiment of their own",
            origin(&format!("point[{i}]"))
        )));
    }
    if !raw.exclude.is_empty() {
        return Err(user_error(format!(
            "{}: [[exclude]] with [tpe] is not supported: an excluded suggestion would leave \
             a hole in its wave; narrow the distributions instead",
            origin("exclude[0]")
        )));
    }
    if keys.is_empty() {
        return Err(user_error(format!(
            "{}: [tpe] has no key to search; add one, e.g. \
             \"train.learning_rate\" = {{ log_uniform = [1e-4, 1e-1] }}",
            origin("tpe")
        )));
    }
    for (key, distribution) in keys {
        if distribution.is_single() {
            return Err(user_error(format!(
                "{}: tpe.{key} has a single value, which TPE cannot search (its estimators need \
                 a range or two choices); set it in the base or with --set",
                origin(&format!("tpe.{key}"))
            )));
        }
    }
    if sampler.wave > trials {
        return Err(user_error(format!(
            "{}: tpe.wave = {} is more than tpe.trials = {trials}: every trial would be in the \
             first wave, drawn blind; use a wave of at most {trials} (for example {})",
            origin("tpe.wave"),
            sampler.wave,
            (trials / 4).max(1)
        )));
    }
    Ok(())
}

impl Experiment {
    /// Reads an experiment file and expands it, applying `overrides` (`--set`) to every point
    /// (a `--set` of a key the grid, the random search or an extra point varies is refused).
    pub fn load(path: &Path, overrides: &[Override]) -> Result<Experiment> {
        let source = crate::input::read_text(path, "experiment", crate::input::TEXT_MAX)?;
        Experiment::parse(&source, path, overrides)
    }

    /// [`Experiment::load`] of an experiment already in memory; `path` names it and anchors a
    /// relative base path.
    pub fn parse(source: &str, path: &Path, overrides: &[Override]) -> Result<Experiment> {
        let raw: RawExperiment = toml::from_str(source).map_err(|e| {
            if crate::config::kind_of(source) == Some(crate::config::FileKind::Config) {
                return user_error(format!(
                    "{} is a config file (one run's [model], [train], [data]), not an \
                     experiment: train it with `harness run {}`, or sweep from it with an \
                     experiment whose base names it",
                    path.display(),
                    path.display()
                ));
            }
            let (line, column) = e
                .span()
                .map_or((0, 0), |span| line_column(source, span.start));
            user_error(format!(
                "invalid experiment {}:{line}:{column}: {} (an experiment has base, [grid], \
                 [random] or [tpe], [[point]], [[exclude]] and [halving])",
                path.display(),
                e.message().trim_end()
            ))
        })?;
        let origins = Origins {
            path,
            source,
            spans: DeTable::parse(source).ok().map(|t| t.into_inner()),
        };
        let origin = |key: &str| origins.of(key);

        // The base: a config file, or inline keys applied to an empty config.
        let (base_source, base_path, mut base_overrides) = match &raw.base {
            Some(toml::Value::String(file)) => {
                let base_path = path.parent().unwrap_or(Path::new(".")).join(file);
                let text =
                    crate::input::read_text(&base_path, "base config", crate::input::TEXT_MAX)
                        .map_err(|e| user_error(format!("{}: {e:#}", origin("base"))))?;
                (text, base_path, Vec::new())
            }
            Some(toml::Value::Table(table)) => {
                let changes = leaves(table, "")
                    .into_iter()
                    .map(|(key, value)| Override {
                        origin: origin(&format!("base.{key}")),
                        key,
                        value,
                    })
                    .collect();
                (String::new(), path.to_path_buf(), changes)
            }
            Some(_) => {
                return Err(user_error(format!(
                    "{}: base must be a path to a config file or a table of config keys",
                    origin("base")
                )));
            }
            None => (String::new(), path.to_path_buf(), Vec::new()),
        };
        let base_file =
            matches!(&raw.base, Some(toml::Value::String(_))).then(|| base_path.clone());
        let sources = sources_digest(source, &base_source);
        base_overrides.extend(overrides.iter().cloned());
        // The base alone must be valid: its errors then point at the base file.
        let base = Base::new(&base_source, &base_path, &base_overrides)?;
        let base_settings = base.settings(&[])?;

        // The grid: dotted keys (quoted, or as nested tables) mapping to lists of values.
        let mut grid: BTreeMap<String, Vec<toml::Value>> = BTreeMap::new();
        for (key, values) in leaves(&raw.grid, "") {
            let toml::Value::Array(values) = values else {
                return Err(user_error(format!(
                    "{}: grid.{key} must be a list of values to try, e.g. [1, 2, 3]",
                    origin(&format!("grid.{key}"))
                )));
            };
            if values.is_empty() {
                return Err(user_error(format!(
                    "{}: grid.{key} is an empty list: the sweep would have no points",
                    origin(&format!("grid.{key}"))
                )));
            }
            grid.insert(key, values);
        }

        // The search: `trials` draws of every key's distribution, blind ([random]) or learning
        // from the waves before ([tpe]).
        let mut sampler = Tpe::default();
        let mut tpe_metric = None;
        let (section, search) = match (&raw.random, &raw.tpe) {
            (Some(_), Some(_)) => {
                return Err(user_error(format!(
                    "{}: an experiment searches with [random] or with [tpe] ({}), not both; \
                     remove one table",
                    origin("tpe"),
                    origin("random")
                )));
            }
            (Some(table), None) => (
                "random",
                Some(space::parse("random", table, &origin, &mut |_, _, _| {
                    Ok(false)
                })?),
            ),
            (None, Some(table)) => {
                let space = space::parse("tpe", table, &origin, &mut |key, value, place| {
                    if key == "metric" {
                        use crate::choice::Choice;
                        let name = value.as_str().ok_or_else(|| {
                            user_error(format!(
                                "{place}: tpe.metric must be \"val_accuracy\" or \"val_loss\""
                            ))
                        })?;
                        tpe_metric = Some(Metric::parse(name).map_err(|message| {
                            user_error(format!("{place}: tpe.metric {message}"))
                        })?);
                        return Ok(true);
                    }
                    sampler.read(key, value, place)
                })?;
                ("tpe", Some(space))
            }
            (None, None) => ("random", None),
        };
        let (trials, sample_seed, distributions) = match search {
            None => (1, 0, Vec::new()),
            Some(space) => (space.trials, space.seed, space.keys),
        };
        let tpe_search = raw.tpe.is_some();
        if tpe_search {
            check_tpe(&raw, &sampler, trials, &distributions, &origin)?;
        }
        // A key that does not change what is trained would make every value the same run.
        let searched = grid
            .keys()
            .map(|k| ("grid", k))
            .chain(distributions.iter().map(|(k, _)| (section, k)));
        for (table, key) in searched {
            if !config::affects_result(key) {
                return Err(user_error(format!(
                    "{}: {table}.{key} does not change what is trained (names, output paths and \
                     the data folder are not part of a run), so every value would be the same \
                     run; set it in the base or with --set",
                    origin(&format!("{table}.{key}"))
                )));
            }
            if raw.halving.is_some() && key == "train.epochs" {
                return Err(user_error(format!(
                    "{}: {table}.train.epochs: with [halving], each rung sets the epochs \
                     (min_epochs * eta^rung, up to max_epochs)",
                    origin(&format!("{table}.{key}"))
                )));
            }
        }
        if raw.halving.is_some()
            && let Some((i, _)) = raw
                .point
                .iter()
                .enumerate()
                .find(|(_, p)| leaves(p, "").iter().any(|(k, _)| k == "train.epochs"))
        {
            return Err(user_error(format!(
                "{}: point[{i}] sets train.epochs; with [halving], each rung sets the epochs",
                origin(&format!("point[{i}]"))
            )));
        }
        // A key has one source of values: the grid, the search, or --set.
        for (key, _) in &distributions {
            if grid.contains_key(key) {
                return Err(user_error(format!(
                    "{}: {section}.{key} is also in [grid] ({}): a key is varied by one of \
                     them; remove it from one table",
                    origin(&format!("{section}.{key}")),
                    origin(&format!("grid.{key}"))
                )));
            }
        }
        let varied_by: Vec<(String, String)> = grid
            .keys()
            .map(|key| (key.clone(), origin(&format!("grid.{key}"))))
            .chain(
                distributions
                    .iter()
                    .map(|(key, _)| (key.clone(), origin(&format!("{section}.{key}")))),
            )
            .chain(raw.point.iter().enumerate().flat_map(|(i, point)| {
                leaves(point, "")
                    .into_iter()
                    .map(move |(key, _)| (key, format!("point[{i}]")))
            }))
            .collect();
        for change in overrides {
            if let Some((_, place)) = varied_by.iter().find(|(key, _)| *key == change.key) {
                return Err(user_error(format!(
                    "{}: {} is varied by the experiment ({place}), so --set would silently \
                     replace its values in every point; change it in {} instead",
                    change.origin,
                    change.key,
                    path.display()
                )));
            }
            if raw.halving.is_some() && change.key == "train.epochs" {
                return Err(user_error(format!(
                    "{}: with [halving], each rung sets train.epochs (min_epochs * eta^rung, up \
                     to max_epochs); change [halving] in {} instead",
                    change.origin,
                    path.display()
                )));
            }
        }
        // The budget of every rung, known before the points: each point is validated at
        // max_epochs, the schedule it will be trained along.
        let budget = match &raw.halving {
            None => None,
            Some(raw) => Some(halving_budget(raw, &origin)?),
        };
        let rung_epochs: Option<Override> = budget.as_ref().map(|halving| Override {
            key: "train.epochs".to_string(),
            value: toml::Value::Integer(halving.max_epochs as i64),
            origin: origin("halving.max_epochs"),
        });
        // The --set changes that change what is trained name the points too, as they name a
        // run: two sweeps of one experiment with different --set give different names.
        let set_labels: Vec<String> = {
            let mut last: Vec<&Override> = Vec::new();
            for change in overrides.iter().filter(|c| config::affects_result(&c.key)) {
                last.retain(|c| c.key != change.key);
                last.push(change);
            }
            last.iter().map(|c| label(&c.key, &c.value)).collect()
        };
        let searching = !distributions.is_empty() || raw.random.is_some() || tpe_search;

        let combinations = grid
            .values()
            .try_fold(1usize, |n, values| n.checked_mul(values.len()));
        let total = combinations
            .and_then(|n| n.checked_mul(trials))
            .and_then(|n| n.checked_add(raw.point.len()))
            .filter(|&n| n <= MAX_POINTS);
        let Some(expanded) = total else {
            return Err(user_error(format!(
                "{}: the grid ({} combinations) times {trials} trials makes more than \
                 {MAX_POINTS} points, the most a sweep may have; split it into several \
                 experiments or use fewer values",
                path.display(),
                combinations.map_or("too many".to_string(), |n| n.to_string())
            )));
        };

        let exclusions = exclusions(&raw.exclude, &grid, &distributions, &origin)?;
        let maker = Maker {
            base,
            overrides: overrides.to_vec(),
            rung_epochs,
            budget: budget.clone(),
            path: path.to_path_buf(),
            base_name: base_settings.name.clone(),
            set_labels,
            searched: distributions.iter().map(|(key, _)| key.clone()).collect(),
            varying: grid
                .iter()
                .filter(|(_, v)| v.len() > 1)
                .map(|(k, _)| k.clone())
                .collect(),
            trial_width: (trials.max(2) - 1).to_string().len(),
        };
        let search_origins: HashMap<&String, String> = distributions
            .iter()
            .map(|(key, _)| (key, origin(&format!("{section}.{key}"))))
            .collect();

        // Every combination of the grid, the last key varying fastest.
        let keys: Vec<&String> = grid.keys().collect();
        let mut combination: Vec<usize> = vec![0; grid.len()];
        let mut grid_points: Vec<Vec<Override>> = Vec::new();
        for _ in 0..combinations.unwrap_or(1) {
            grid_points.push(
                keys.iter()
                    .zip(&combination)
                    .map(|(key, &i)| Override {
                        key: (*key).clone(),
                        value: grid[*key][i].clone(),
                        origin: origin(&format!("grid.{key}")),
                    })
                    .collect(),
            );
            for position in (0..combination.len()).rev() {
                combination[position] += 1;
                if combination[position] < grid[keys[position]].len() {
                    break;
                }
                combination[position] = 0;
            }
        }

        let tpe = tpe_search.then(|| TpeSearch {
            sampler: sampler.clone(),
            metric: tpe_metric.unwrap_or(Metric::ValAccuracy),
            seed: sample_seed,
            trials,
            origins: distributions
                .iter()
                .map(|(key, _)| search_origins[key].clone())
                .collect(),
            keys: distributions.clone(),
            grid_points: grid_points.clone(),
        });
        let mut points: Vec<Point> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut push = |mut point: Point, points: &mut Vec<Point>| {
            if seen.insert(point.run_id.clone()) {
                point.index = points.len();
                point.candidate = points.len();
                points.push(point);
            }
        };
        let mut expanded = expanded;
        if let Some(tpe) = &tpe {
            expanded = tpe.trials.min(tpe.sampler.wave) * tpe.grid_points.len();
            points = tpe.wave(&maker, 0, &HashMap::new(), &path.display().to_string())?;
        } else {
            for grid_changes in &grid_points {
                for trial in 0..trials {
                    let mut changes = grid_changes.clone();
                    for (key, distribution) in &distributions {
                        changes.push(Override {
                            key: key.clone(),
                            value: distribution.draw(&mut trial_rng(sample_seed, trial, key)),
                            origin: search_origins[key].clone(),
                        });
                    }
                    if exclusions.iter().any(|rule| rule.matches(&changes)) {
                        continue;
                    }
                    let trial = searching.then_some(trial);
                    push(maker.make(changes, false, trial, 0)?, &mut points);
                }
            }
        }
        for (i, extra) in raw.point.iter().enumerate() {
            let changes: Vec<Override> = leaves(extra, "")
                .into_iter()
                .map(|(key, value)| Override {
                    origin: origin(&format!("point[{i}].{key}")),
                    key,
                    value,
                })
                .collect();
            push(maker.make(changes, true, None, 0)?, &mut points);
        }
        if points.is_empty() {
            return Err(user_error(format!(
                "{}: the sweep has no points (every grid point is excluded)",
                path.display()
            )));
        }

        if budget.is_some() || tpe.is_some() {
            let ranks = if tpe.is_some() {
                "TPE suggests each wave from the validation results of the waves before"
            } else {
                "successive halving ranks points on validation images"
            };
            let table = if tpe.is_some() { "tpe" } else { "halving" };
            check_staged_points(ranks, table, &base_settings, &points, &origin)?;
        }
        Ok(Experiment {
            path: path.to_path_buf(),
            points,
            halving: budget,
            tpe: tpe.map(|search| (search, maker)),
            expanded,
            base_file,
            sources,
        })
    }

    /// [`Experiment::sources`] as the files read now: a different value means the experiment
    /// or its base config changed since it was loaded.
    pub fn sources_now(&self) -> Result<String> {
        sources_of(&self.path, self.base_file.as_deref())
    }

    /// Whether some point of the experiment, in some rung, is the run `run_id`.
    pub fn has_run(&self, run_id: &str) -> bool {
        if let Some((search, _)) = &self.tpe {
            // The waves that the runs file can choose now.
            let results = &self.points[0].settings.output.runs;
            return (0..search.waves()).any(|wave| match self.rung_points(wave, results) {
                Ok(points) => points.iter().any(|p| p.run_id == run_id),
                Err(_) => false,
            });
        }
        let Some(halving) = &self.halving else {
            return self.points.iter().any(|p| p.run_id == run_id);
        };
        (0..halving.rungs()).any(|rung| {
            self.points.iter().any(|point| {
                let mut settings = point.settings.clone();
                halving.apply(rung, &mut settings);
                settings.run_id(settings.backend) == run_id
            })
        })
    }

    /// Every point (rung 0's, under halving), in sweep order.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// How many rungs the sweep has (1 without halving).
    pub fn rungs(&self) -> u32 {
        if let Some((search, _)) = &self.tpe {
            return search.waves();
        }
        self.halving.as_ref().map_or(1, Halving::rungs)
    }

    /// A `[tpe]` search's trials (per grid point), which its waves hold between them.
    pub fn trials(&self) -> Option<usize> {
        self.tpe
            .as_ref()
            .map(|(search, _)| search.trials * search.grid_points.len())
    }

    /// What a stage of this sweep is called: "wave" for `[tpe]`, else "rung".
    pub fn stage(&self) -> &'static str {
        if self.tpe.is_some() { "wave" } else { "rung" }
    }

    /// `[tpe]`'s plan, for the sweep to print: trials, wave size, startup trials, metric.
    pub fn tpe_plan(&self) -> Option<String> {
        let (search, _) = self.tpe.as_ref()?;
        let combinations = search.grid_points.len();
        Some(format!(
            "TPE (seed {}): {} trials{} in {} waves of {}, the first {} drawn at random, then \
             suggested from the results before each wave by {}",
            search.seed,
            search.trials,
            if combinations > 1 {
                format!(" for each of {combinations} grid points")
            } else {
                String::new()
            },
            search.waves(),
            search.sampler.wave,
            (search
                .sampler
                .n_startup_trials
                .div_ceil(search.sampler.wave)
                * search.sampler.wave)
                .min(search.trials),
            search.metric
        ))
    }

    /// The points of rung `rung`: every point for rung 0; for a later rung, the best of the
    /// previous rung's points by the halving metric, read from `results` (a runs file), at
    /// the rung's budget. Fails, saying what is missing, while the previous rung is incomplete
    /// there.
    pub fn rung_points(&self, rung: u32, results: &Path) -> Result<Vec<Point>> {
        if let Some((search, maker)) = &self.tpe {
            if rung >= search.waves() {
                return Err(user_error(format!(
                    "--wave {rung}: {} has waves 0 to {}",
                    self.path.display(),
                    search.waves() - 1
                )));
            }
            if rung == 0 {
                return Ok(self.points.clone());
            }
            let rows = results::read_runs(results)?;
            let standing: HashMap<&str, &RunRow> = results::effective(&rows)
                .into_iter()
                .map(|row| (row.run_id.as_str(), row))
                .collect();
            return search.wave(maker, rung, &standing, &results.display().to_string());
        }
        let Some(halving) = &self.halving else {
            if rung > 0 {
                return Err(user_error(format!(
                    "--rung {rung}: {} has no [halving] table, so it has only rung 0",
                    self.path.display()
                )));
            }
            return Ok(self.points.clone());
        };
        if rung >= halving.rungs() {
            return Err(user_error(format!(
                "--rung {rung}: {} has rungs 0 to {}",
                self.path.display(),
                halving.rungs() - 1
            )));
        }
        let rows = results::read_runs(results)?;
        let standing: HashMap<&str, &RunRow> = results::effective(&rows)
            .into_iter()
            .map(|row| (row.run_id.as_str(), row))
            .collect();
        let mut current = self.points.clone();
        for next in 1..=rung {
            let mut scored = Vec::with_capacity(current.len());
            let mut missing = 0;
            for point in &current {
                match standing.get(point.run_id.as_str()) {
                    Some(row) => scored.push((score(row, halving.metric), point.candidate)),
                    None => missing += 1,
                }
            }
            if missing > 0 {
                return Err(user_error(format!(
                    "rung {next} of {} is chosen from rung {}'s results, and {missing} of its {} \
                     points have no row in {} yet: run rung {} first (with shards, merge their \
                     files into {} before the next rung)",
                    self.path.display(),
                    next - 1,
                    current.len(),
                    results.display(),
                    next - 1,
                    results.display()
                ))
                .context(Incomplete(next, "rung")));
            }
            // Best first; ties (and equal failures) by candidate, for a stable choice.
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let kept = halving.kept(next, self.points.len());
            let mut chosen: Vec<usize> = scored.iter().take(kept).map(|(_, c)| *c).collect();
            chosen.sort_unstable();
            current = chosen
                .into_iter()
                .enumerate()
                .map(|(index, candidate)| -> Result<Point> {
                    let mut point = self.points[candidate].clone();
                    point.index = index;
                    halving.apply(next, &mut point.settings);
                    // Validated as it will be trained.
                    point.settings = point.settings.revalidated().map_err(|e| {
                        e.context(format!(
                            "{}: point {} ({}) at rung {next}'s {} epochs",
                            self.path.display(),
                            candidate + 1,
                            point.settings.name,
                            halving.epochs(next)
                        ))
                    })?;
                    point.run_id = point.settings.run_id(point.settings.backend);
                    Ok(point)
                })
                .collect::<Result<_>>()?;
        }
        Ok(current)
    }
}

/// A later rung cannot be chosen yet: some points of the rung before it have no row in the
/// runs file (another shard's, or not run yet). The context of a user error (exit 2) that says
/// which.
#[derive(Debug)]
pub struct Incomplete(pub u32, pub &'static str);

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} cannot be chosen yet", self.1, self.0)
    }
}

/// Whether an error says a rung cannot be chosen yet ([`Incomplete`]).
pub fn is_incomplete(error: &anyhow::Error) -> bool {
    error.downcast_ref::<Incomplete>().is_some()
}

/// [`Experiment::sources`] of the experiment file at `experiment` and its base config file
/// (none for an inline base), as they are now.
pub fn sources_of(experiment: &Path, base: Option<&Path>) -> Result<String> {
    let source = crate::input::read_text(experiment, "experiment", crate::input::TEXT_MAX)?;
    let base = match base {
        Some(file) => crate::input::read_text(file, "base config", crate::input::TEXT_MAX)?,
        None => String::new(),
    };
    Ok(sources_digest(&source, &base))
}

fn sources_digest(experiment: &str, base: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update((experiment.len() as u64).to_le_bytes());
    hasher.update(experiment.as_bytes());
    hasher.update(base.as_bytes());
    format!("{:x}", hasher.finalize())
}

/// A row's halving score, higher is better; failed and diverged runs score lowest.
fn score(row: &RunRow, metric: Metric) -> f64 {
    let value = match metric {
        Metric::ValAccuracy => row.val_accuracy,
        Metric::ValLoss => -row.val_loss,
    };
    if row.status != Status::Ok || value.is_nan() {
        f64::NEG_INFINITY
    } else {
        value
    }
}

/// One `[[exclude]]` rule: a point matching every key is dropped.
struct Exclusion(Vec<(String, toml::Value)>);

impl Exclusion {
    fn matches(&self, changes: &[Override]) -> bool {
        self.0.iter().all(|(key, value)| {
            changes
                .iter()
                .any(|change| &change.key == key && &change.value == value)
        })
    }
}

/// Checks the `[[exclude]]` rules: every key must be a grid or random-search key, and a grid
/// key's value one of the grid's values, else the rule would silently exclude nothing.
fn exclusions(
    rules: &[toml::Table],
    grid: &BTreeMap<String, Vec<toml::Value>>,
    distributions: &[(String, Distribution)],
    origin: &dyn Fn(&str) -> String,
) -> Result<Vec<Exclusion>> {
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let entries = leaves(rule, "");
            if entries.is_empty() {
                return Err(user_error(format!(
                    "{}: exclude[{i}] is empty and would drop every point",
                    origin(&format!("exclude[{i}]"))
                )));
            }
            for (key, value) in &entries {
                let place = origin(&format!("exclude[{i}].{key}"));
                match grid.get(key) {
                    Some(values) if !values.contains(value) => {
                        let shown: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                        return Err(user_error(format!(
                            "{place}: exclude[{i}].{key} = {value} is none of the grid's values \
                             ({}), so the rule would exclude nothing",
                            shown.join(", ")
                        )));
                    }
                    Some(_) => {}
                    None if distributions.iter().any(|(k, _)| k == key) => {}
                    None => {
                        let keys: Vec<&str> = grid
                            .keys()
                            .map(String::as_str)
                            .chain(distributions.iter().map(|(k, _)| k.as_str()))
                            .collect();
                        return Err(user_error(format!(
                            "{place}: exclude[{i}].{key} is not a key of the grid or of the \
                             random search{}, so the rule would exclude nothing; those keys are: \
                             {}",
                            crate::error::suggestion(key, keys.iter().copied()),
                            keys.join(", ")
                        )));
                    }
                }
            }
            Ok(Exclusion(entries))
        })
        .collect()
}

/// `[halving]`'s budgets, checked.
fn halving_budget(raw: &RawHalving, origin: &dyn Fn(&str) -> String) -> Result<Halving> {
    let bad = |key: &str, what: String| {
        user_error(format!(
            "{}: halving.{key} {what}",
            origin(&format!("halving.{key}"))
        ))
    };
    let max = config::MAX_EPOCHS as i64;
    if !(1..=max).contains(&raw.min_epochs) {
        return Err(bad(
            "min_epochs",
            format!("{} is not allowed; must be from 1 to {max}", raw.min_epochs),
        ));
    }
    if raw.max_epochs > max {
        return Err(bad(
            "max_epochs",
            format!("{} is not allowed; must be at most {max}", raw.max_epochs),
        ));
    }
    if raw.max_epochs < raw.min_epochs {
        return Err(bad(
            "max_epochs",
            format!(
                "({}) must be at least min_epochs ({})",
                raw.max_epochs, raw.min_epochs
            ),
        ));
    }
    if !(2..=1000).contains(&raw.eta) {
        return Err(bad(
            "eta",
            format!(
                "{} is not allowed; must be from 2 to 1000 (each rung keeps 1/eta)",
                raw.eta
            ),
        ));
    }
    let metric = match &raw.metric {
        None => Metric::ValAccuracy,
        Some(name) => {
            use crate::choice::Choice;
            Metric::parse(name).map_err(|message| bad("metric", message))?
        }
    };
    Ok(Halving {
        min_epochs: raw.min_epochs as usize,
        max_epochs: raw.max_epochs as usize,
        eta: raw.eta as usize,
        metric,
    })
}

/// Checks the points of a staged sweep (halving's rungs, TPE's waves), whose later stages are
/// chosen from the earlier ones' validation results in one runs file: each point must hold
/// validation images out, and write to that runs file.
fn check_staged_points(
    ranks: &str,
    table: &str,
    base: &Settings,
    points: &[Point],
    origin: &dyn Fn(&str) -> String,
) -> Result<()> {
    if let Some(point) = points.iter().find(|p| p.settings.data.validation == 0) {
        return Err(user_error(format!(
            "{}: {ranks}, and point {} ({}) holds none out (data.validation = 0); set \
             data.validation (for example 10000) in the base or the grid",
            origin(table),
            point.index + 1,
            point.settings.name
        )));
    }
    if let Some(point) = points
        .iter()
        .find(|p| p.settings.output.runs != base.output.runs)
    {
        return Err(user_error(format!(
            "{}: {ranks}, read from one runs file, and point {} writes to {} instead of {}",
            origin(table),
            point.index + 1,
            point.settings.output.runs.display(),
            base.output.runs.display()
        )));
    }
    Ok(())
}

/// A `K/N` slice of a sweep: points whose index is K-1 modulo N (disjoint, and together the
/// whole sweep, with sizes that differ by at most one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `K/N` with 1 <= K <= N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let parsed = text.split_once('/').and_then(|(k, n)| {
            Some(Shard {
                index: k.trim().parse().ok()?,
                count: n.trim().parse().ok()?,
            })
        });
        match parsed {
            Some(shard) if shard.index >= 1 && shard.index <= shard.count => Ok(shard),
            _ => Err(format!(
                "\"{text}\" is not a shard K/N with 1 <= K <= N, e.g. 2/4"
            )),
        }
    }

    /// The shard of a Slurm job array task, from `SLURM_ARRAY_TASK_ID` and either
    /// `SLURM_ARRAY_TASK_COUNT` or `SLURM_ARRAY_TASK_MIN`/`_MAX`; `None` outside an array.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, String> {
        let number = |name: &str| -> Result<Option<usize>, String> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| format!("{name}={v} is not a number"))
                })
                .transpose()
        };
        let Some(id) = number("SLURM_ARRAY_TASK_ID")? else {
            return Ok(None);
        };
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0).min(id);
        let count = match (
            number("SLURM_ARRAY_TASK_COUNT")?,
            number("SLURM_ARRAY_TASK_MAX")?,
        ) {
            (Some(count), _) => count,
            (None, Some(max)) => max + 1 - min,
            (None, None) => {
                return Err(
                    "SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor \
                            SLURM_ARRAY_TASK_MAX is"
                        .to_string(),
                );
            }
        };
        let shard = Shard {
            index: id - min + 1,
            count,
        };
        if shard.index > shard.count {
            return Err(format!(
                "Slurm array task {id} (min {min}, {count} tasks) is outside the array; use \
                 consecutive task ids, e.g. --array=1-{count}"
            ));
        }
        Ok(Some(shard))
    }

    /// Whether point `index` (0-based) belongs to this shard.
    pub fn contains(&self, index: usize) -> bool {
        index % self.count == self.index - 1
    }
}

/// The leaves of a table as dotted keys: recurses into tables, stops at other values.
fn leaves(table: &toml::Table, prefix: &str) -> Vec<(String, toml::Value)> {
    leaves_where(table, prefix, &|_| true)
}

/// The leaves of a table as dotted keys, recursing into the inner tables `descend` accepts.
pub(super) fn leaves_where(
    table: &toml::Table,
    prefix: &str,
    descend: &dyn Fn(&toml::Table) -> bool,
) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) if descend(inner) => {
                out.extend(leaves_where(inner, &path, descend))
            }
            other => out.push((path, other.clone())),
        }
    }
    out
}

/// 1-based line and column of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const BASE: &str = "[model]\nhidden = [16]\nactivation = \"relu\"\noutput = \"softmax\"\n\
                        [train]\nloss = \"cross_entropy\"\noptimizer = \"adam\"\nlearning_rate = 1e-3\n";

    fn names(experiment: &Experiment) -> Vec<String> {
        experiment
            .points()
            .iter()
            .map(|p| p.settings.name.clone())
            .collect()
    }

    #[test]
    fn grid_expands_in_a_stable_order_with_readable_names() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let a = write(
            dir.path(),
            "a.toml",
            "base = \"base.toml\"\n[grid]\nseed = [1, 2]\n\"model.hidden\" = [[16], [16, 16]]\n\
             \"model.activation\" = [\"sigmoid\", \"relu\"]\n\"train.epochs\" = [2]\n",
        );
        // The same grid, keys in another order and as nested tables.
        let b = write(
            dir.path(),
            "b.toml",
            "base = \"base.toml\"\n[grid]\ntrain.epochs = [2]\nmodel.activation = [\"sigmoid\", \"relu\"]\n\
             model.hidden = [[16], [16, 16]]\nseed = [1, 2]\n",
        );
        let a = Experiment::load(&a, &[]).unwrap();
        let b = Experiment::load(&b, &[]).unwrap();
        assert_eq!(a.points().len(), 8);
        assert_eq!(
            names(&a),
            [
                "sigmoid_16_s1",
                "sigmoid_16_s2",
                "sigmoid_16x16_s1",
                "sigmoid_16x16_s2",
                "relu_16_s1",
                "relu_16_s2",
                "relu_16x16_s1",
                "relu_16x16_s2"
            ]
        );
        assert_eq!(names(&a), names(&b));
        let ids = |e: &Experiment| {
            e.points()
                .iter()
                .map(|p| p.run_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b));
        let mut unique = ids(&a);
        unique.dedup();
        assert_eq!(unique.len(), 8, "run_ids are distinct");
        assert!(a.points().iter().all(|p| p.settings.train.epochs == 2));
        // Stable across invocations.
        let again = Experiment::load(&dir.path().join("a.toml"), &[]).unwrap();
        assert_eq!(ids(&again), ids(&a));
    }

    #[test]
    fn extra_points_and_exclusions() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let path = write(
            dir.path(),
            "e.toml",
            "base = \"base.toml\"\n[grid]\n\"model.hidden\" = [[16], [32]]\nseed = [1, 2]\n\
             [[exclude]]\n\"model.hidden\" = [32]\nseed = 2\n\
             [[point]]\n\"model.hidden\" = [128]\n\
             [[point]]\n\"model.hidden\" = [16]\nseed = 1\n",
        );
        let experiment = Experiment::load(&path, &[]).unwrap();
        // 4 grid points - 1 excluded + 1 new extra point (the second repeats a grid point). A
        // name a CSV reader would take for a number ("128") keeps the base's name in front.
        assert_eq!(names(&experiment), ["16_s1", "16_s2", "32_s1", "base_128"]);
    }

    #[test]
    fn inline_base_and_unknown_grid_key_errors() {
        let dir = tempfile::tempdir().unwrap();
        let inline = write(
            dir.path(),
            "inline.toml",
            "[base]\nmodel.hidden = [8]\ntrain.epochs = 1\n[grid]\nseed = [1, 2, 3]\n",
        );
        let experiment = Experiment::load(&inline, &[]).unwrap();
        assert_eq!(experiment.points().len(), 3);
        assert_eq!(experiment.points()[0].settings.model.hidden, vec![8]);
        // Only the seed varies: the base's name stays in front.
        assert_eq!(names(&experiment), ["inline_s1", "inline_s2", "inline_s3"]);

        let bad = write(
            dir.path(),
            "bad.toml",
            "[base]\nmodel.hidden = [8]\n[grid]\nseed = [1]\n\"model.activaton\" = [\"relu\"]\n",
        );
        let message = format!("{:#}", Experiment::load(&bad, &[]).err().unwrap());
        assert!(message.contains("bad.toml:5:"), "{message}");
        assert!(message.contains("activaton"), "{message}");

        let bad_value = write(
            dir.path(),
            "bad_value.toml",
            "[base]\nmodel.hidden = [8]\n[grid]\n\"model.activation\" = [\"relu\", \"sigmod\"]\n",
        );
        let message = format!("{:#}", Experiment::load(&bad_value, &[]).err().unwrap());
        assert!(message.contains("bad_value.toml:4:"), "{message}");
        assert!(message.contains("did you mean \"sigmoid\""), "{message}");
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_sweep() {
        let points = 10;
        let shards: Vec<Shard> = (1..=3)
            .map(|k| Shard::parse(&format!("{k}/3")).unwrap())
            .collect();
        for index in 0..points {
            assert_eq!(
                shards.iter().filter(|s| s.contains(index)).count(),
                1,
                "point {index}"
            );
        }
        assert!(Shard::parse("0/3").is_err());
        assert!(Shard::parse("4/3").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn slurm_array_variables_pick_the_shard() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_slurm(env(&[])), Ok(None));
        assert_eq!(
            Shard::from_slurm(env(&[
                ("SLURM_ARRAY_TASK_ID", "0"),
                ("SLURM_ARRAY_TASK_COUNT", "4")
            ])),
            Ok(Some(Shard { index: 1, count: 4 }))
        );
        assert_eq!(
            Shard::from_slurm(env(&[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "3")
            ])),
            Ok(Some(Shard { index: 3, count: 3 }))
        );
        assert!(Shard::from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "1")])).is_err());
    }

    fn load(dir: &Path, text: &str) -> Result<Experiment> {
        write(dir, "base.toml", BASE);
        Experiment::load(&write(dir, "e.toml", text), &[])
    }

    fn error(dir: &Path, text: &str) -> String {
        let error = load(dir, text).err().expect("an error");
        assert!(crate::error::is_user_error(&error), "{error:#}");
        format!("{error:#}")
    }

    #[test]
    fn exclusions_that_cannot_match_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let grid = "base = \"base.toml\"\n[grid]\n\"model.hidden\" = [[16], [32]]\nseed = [1, 2]\n";
        let message = error(
            dir.path(),
            &format!("{grid}[[exclude]]\n\"model.hiden\" = [32]\n"),
        );
        assert!(message.contains("e.toml:6:17"), "{message}");
        assert!(message.contains("not a key of the grid"), "{message}");
        assert!(
            message.contains("did you mean \"model.hidden\""),
            "{message}"
        );
        let message = error(dir.path(), &format!("{grid}[[exclude]]\nseed = 3\n"));
        assert!(
            message.contains("none of the grid's values (1, 2)"),
            "{message}"
        );
        let message = error(dir.path(), &format!("{grid}[[exclude]]\n"));
        assert!(message.contains("is empty"), "{message}");
    }

    #[test]
    fn random_search_is_seeded_the_same_for_every_grid_point_and_in_range() {
        let dir = tempfile::tempdir().unwrap();
        let text = "base = \"base.toml\"\n[grid]\nseed = [1, 2]\n[random]\ntrials = 6\nseed = 7\n\
                    \"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n\
                    train.batch_size = { int = [16, 128] }\n\
                    \"model.dropout\" = { uniform = [0.0, 0.5] }\n\
                    \"train.optimizer\" = { choice = [\"sgd\", \"adam\"] }\n";
        let experiment = load(dir.path(), text).unwrap();
        let points = experiment.points();
        assert_eq!(points.len(), 12);
        for point in points {
            let train = &point.settings.train;
            assert!((1e-4..=1e-1).contains(&train.learning_rate), "{train:?}");
            assert!((16..=128).contains(&train.batch_size), "{train:?}");
            assert!((0.0..=0.5).contains(&point.settings.model.dropout));
        }
        // Seed 1 and seed 2 see the same draws, trial by trial.
        for trial in 0..6 {
            let (a, b) = (&points[trial].settings, &points[6 + trial].settings);
            assert_eq!((a.seed, b.seed), (1, 2));
            assert_eq!(a.train, b.train);
            assert_eq!(a.model, b.model);
        }
        // The draws differ between trials, and the names say which trial.
        let rates: HashSet<String> = points[..6]
            .iter()
            .map(|p| p.settings.train.learning_rate.to_string())
            .collect();
        assert!(rates.len() >= 5, "{rates:?}");
        // A drawn choice names the point with the trial (issue 21): the optimizer it trained.
        let optimizer = points[3].settings.train.optimizer.to_string();
        assert_eq!(points[3].settings.name, format!("base_s1_{optimizer}_t3"));
        assert!(
            points[3]
                .varies
                .iter()
                .any(|(k, _)| k == "train.learning_rate")
        );
        // Another load, with the keys in another order, draws the same points.
        let shuffled = "base = \"base.toml\"\n[random]\n\
                        \"train.optimizer\" = { choice = [\"sgd\", \"adam\"] }\n\
                        \"model.dropout\" = { uniform = [0.0, 0.5] }\n\
                        train.batch_size = { int = [16, 128] }\nseed = 7\n\
                        \"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\ntrials = 6\n\
                        [grid]\nseed = [1, 2]\n";
        let again = load(dir.path(), shuffled).unwrap();
        let ids = |e: &Experiment| {
            e.points()
                .iter()
                .map(|p| p.run_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&again), ids(&experiment));
        // Another sampling seed, other points.
        let other = load(dir.path(), &text.replace("seed = 7", "seed = 8")).unwrap();
        assert_ne!(ids(&other), ids(&experiment));
    }

    #[test]
    fn random_search_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let base = "base = \"base.toml\"\n[random]\ntrials = 2\n";
        for (line, needle) in [
            (
                "\"train.learning_rate\" = { log_uniform = [0.0, 1.0] }",
                "log_uniform needs low > 0",
            ),
            (
                "\"train.batch_size\" = { int = [16.5, 32] }",
                "two whole numbers",
            ),
            (
                "\"train.batch_size\" = { normal = [1, 2] }",
                "unknown distribution \"normal\"",
            ),
            (
                "\"train.learning_rat\" = { uniform = [0.1, 0.2] }",
                "learning_rat",
            ),
            ("\"model.dropout\" = { uniform = [0.5, 0.1] }", "above high"),
        ] {
            let message = error(dir.path(), &format!("{base}{line}\n"));
            assert!(message.contains(needle), "{line}: {message}");
        }
        let message = error(dir.path(), "base = \"base.toml\"\n[random]\nseed = 1\n");
        assert!(message.contains("needs trials = N"), "{message}");
    }

    #[test]
    fn too_many_points_are_refused_before_expanding() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<String> = (1..=1001).map(|i| i.to_string()).collect();
        let text = format!(
            "base = \"base.toml\"\n[grid]\nseed = [{}]\n\"train.epochs\" = [{}]\n",
            values.join(", "),
            values.join(", ")
        );
        let message = error(dir.path(), &text);
        assert!(message.contains("more than 1000000 points"), "{message}");
    }

    fn row(run_id: &str, accuracy: f64, status: Status) -> RunRow {
        RunRow {
            run_id: run_id.into(),
            attempt: format!("a{run_id}"),
            status,
            validation_size: 1000,
            val_accuracy: accuracy,
            ..RunRow::default()
        }
    }

    #[test]
    fn halving_keeps_the_best_third_of_each_rung_and_trains_it_longer() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let text = "base = \"base.toml\"\n[grid]\nseed = [1, 2, 3, 4, 5, 6, 7, 8, 9]\n\
                    [halving]\nmin_epochs = 1\nmax_epochs = 9\neta = 3\n";
        write(
            dir.path(),
            "base.toml",
            &format!("{BASE}[output]\nruns = \"{}\"\n", runs.display()),
        );
        let experiment = Experiment::load(&write(dir.path(), "h.toml", text), &[]).unwrap();
        let halving = experiment.halving.clone().unwrap();
        assert_eq!(halving.rungs(), 3);
        assert_eq!(
            (halving.epochs(0), halving.epochs(1), halving.epochs(2)),
            (1, 3, 9)
        );
        assert_eq!((halving.kept(1, 9), halving.kept(2, 9)), (3, 1));
        let rung0 = experiment.rung_points(0, &runs).unwrap();
        // Every rung follows the 9-epoch schedule and stops after its budget.
        assert!(rung0.iter().all(|p| p.settings.train.epochs == 9
            && p.settings.budget == Some(1)
            && p.settings.last_epoch() == 1
            && p.settings.rung == 0));
        // Rung 1 waits for rung 0's results.
        let message = format!("{:#}", experiment.rung_points(1, &runs).unwrap_err());
        assert!(
            message.contains("9 of its 9 points have no row"),
            "{message}"
        );

        // Rung 0's results: seeds 4, 8 and 2 best (seed 9 failed).
        let accuracy = [0.80, 0.91, 0.70, 0.95, 0.60, 0.50, 0.40, 0.93, 0.99];
        let rows: Vec<RunRow> = rung0
            .iter()
            .zip(accuracy)
            .map(|(point, accuracy)| {
                let status = if point.settings.seed == 9 {
                    Status::Failed
                } else {
                    Status::Ok
                };
                row(&point.run_id, accuracy, status)
            })
            .collect();
        std::fs::write(&runs, crate::record::results::to_csv(&rows, true)).unwrap();
        let rung1 = experiment.rung_points(1, &runs).unwrap();
        let seeds: Vec<u64> = rung1.iter().map(|p| p.settings.seed).collect();
        assert_eq!(seeds, [2, 4, 8]);
        assert!(rung1.iter().all(|p| p.settings.train.epochs == 9
            && p.settings.budget == Some(3)
            && p.settings.rung == 1));
        // A rung continues the same run: the same trajectory as the point's rung 0.
        for point in &rung1 {
            let first = rung0
                .iter()
                .find(|q| q.candidate == point.candidate)
                .unwrap();
            assert_eq!(
                point.settings.trajectory(point.settings.backend),
                first.settings.trajectory(first.settings.backend)
            );
        }
        assert_eq!(rung1.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(
            rung1
                .iter()
                .all(|p| !rung0.iter().any(|q| q.run_id == p.run_id))
        );

        // Rung 2 from rung 1's results.
        let mut rows = rows;
        rows.extend(
            rung1
                .iter()
                .zip([0.96, 0.94, 0.97])
                .map(|(p, a)| row(&p.run_id, a, Status::Ok)),
        );
        std::fs::write(&runs, crate::record::results::to_csv(&rows, true)).unwrap();
        let rung2 = experiment.rung_points(2, &runs).unwrap();
        assert_eq!(rung2.len(), 1);
        assert_eq!(
            (
                rung2[0].settings.seed,
                rung2[0].settings.train.epochs,
                rung2[0].settings.budget
            ),
            (8, 9, None)
        );
        // The last rung's run is the whole run: the id a config of its settings has.
        assert_eq!(
            rung2[0].run_id,
            rung2[0].settings.trajectory(rung2[0].settings.backend)
        );
        assert!(experiment.has_run(&rung1[0].run_id) && experiment.has_run(&rung2[0].run_id));
        assert!(experiment.rung_points(3, &runs).is_err());
    }

    #[test]
    fn halving_needs_validation_images() {
        let dir = tempfile::tempdir().unwrap();
        let message = error(
            dir.path(),
            "base = \"base.toml\"\n[grid]\nseed = [1, 2]\n\"data.validation\" = [0]\n\
             [halving]\nmin_epochs = 1\nmax_epochs = 4\n",
        );
        assert!(message.contains("holds none out"), "{message}");
        let message = error(
            dir.path(),
            "base = \"base.toml\"\n[halving]\nmin_epochs = 3\nmax_epochs = 2\n",
        );
        assert!(message.contains("must be at least min_epochs"), "{message}");
    }

    #[test]
    fn keys_that_change_nothing_trained_and_epochs_under_halving_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            (
                "base = \"base.toml\"\n[grid]\n\"output.runs\" = [\"a.csv\", \"b.csv\"]\n",
                "grid.output.runs does not change what is trained",
            ),
            (
                "base = \"base.toml\"\n[grid]\nname = [\"a\", \"b\"]\n",
                "grid.name does not change what is trained",
            ),
            (
                "base = \"base.toml\"\n[grid]\nseed = [1, 2]\n\"train.epochs\" = [1, 2]\n\
                 [halving]\nmin_epochs = 1\nmax_epochs = 3\n",
                "each rung sets the epochs",
            ),
        ] {
            let message = error(dir.path(), text);
            assert!(message.contains(needle), "{message}");
        }
    }
}
