//! Run configuration: the TOML schema, `--set` overrides, and validation into [`Settings`].
//!
//! A config file is parsed into plain serde structs ([`RawConfig`], `deny_unknown_fields`),
//! `--set key=value` overrides are applied to the parsed table, and [`RawConfig::validate`] turns
//! the result into typed [`Settings`] once, with every default filled in. Every error names the
//! file, line and column (or the `--set` that caused it), the key, and what would be valid.
//! configs/default.toml documents every key; a test keeps it in step with this schema.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::choice::{Choice, choice_enum};
use crate::data::mnist::{DatasetName, TEST_IMAGES, TRAIN_IMAGES};
use crate::error::user_error;
use crate::net::backend::BackendName;
use crate::net::model::{Activation, Init, MlpConfig, OutputActivation};

choice_enum! {
    /// The cost function training minimises.
    pub Loss "loss" {
        /// The video's quadratic cost, C = 1/(2m) Σ‖a − y‖² on one-hot targets.
        Mse = "mse",
        /// Softmax cross-entropy on the output layer's pre-activations.
        CrossEntropy = "cross_entropy",
    }
}

choice_enum! {
    /// The parameter update rule.
    pub Optimizer "optimizer" {
        /// Stochastic gradient descent, with optional momentum and weight decay.
        Sgd = "sgd",
        /// Adam (β1 = 0.9, β2 = 0.999, ε = 1e-5: burn's defaults).
        Adam = "adam",
    }
}

choice_enum! {
    /// How the learning rate changes over training (after the optional linear warm-up).
    pub Schedule "schedule" {
        /// The same rate throughout.
        Constant = "constant",
        /// Multiplied by `step_factor` every `step_epochs` epochs.
        Step = "step",
        /// From the full rate down to zero along half a cosine (Loshchilov and Hutter, 2017).
        Cosine = "cosine",
    }
}

choice_enum! {
    /// The validation metric that picks the epoch kept and drives early stopping.
    pub Metric "metric" {
        /// Higher is better.
        ValAccuracy = "val_accuracy",
        /// Lower is better.
        ValLoss = "val_loss",
    }
}

choice_enum! {
    /// What becomes of a run's checkpoint, the whole training state written after every epoch
    /// (src/train/checkpoint.rs).
    pub Checkpoints "checkpoints setting" {
        /// Written every epoch, so that a killed run resumes where it was; removed once the
        /// run's rows are committed.
        Resume = "resume",
        /// Written every epoch and kept after the commit, so that a longer run of the same
        /// settings continues from it (what successive halving does for its survivors).
        Keep = "keep",
        /// Never written: a killed run starts again from its first epoch.
        Off = "off",
    }
}

choice_enum! {
    /// Which epoch's weights a run keeps, saves and reports.
    pub Keep "keep" {
        /// The epoch with the best validation metric (needs `data.validation`).
        Best = "best",
        /// The last epoch trained.
        Last = "last",
    }
}

/// Every key a config file may set, dotted (`train.epochs`), as configs/default.toml documents
/// them (a test keeps the two equal).
pub const KEYS: &[&str] = &[
    "name",
    "seed",
    "backend",
    "data.dataset",
    "data.dir",
    "data.train_limit",
    "data.test_limit",
    "data.validation",
    "data.augment_shift",
    "data.augment_rotate",
    "model.hidden",
    "model.activation",
    "model.output",
    "model.init",
    "model.dropout",
    "train.epochs",
    "train.batch_size",
    "train.loss",
    "train.optimizer",
    "train.learning_rate",
    "train.schedule",
    "train.warmup_epochs",
    "train.step_epochs",
    "train.step_factor",
    "train.momentum",
    "train.weight_decay",
    "train.metric",
    "train.keep",
    "train.patience",
    "train.min_delta",
    "output.runs",
    "output.epochs",
    "output.models",
    "output.save_model",
    "output.checkpoints",
];

/// The config key a command-line flag that harness does not have most likely meant:
/// `--epochs` → `train.epochs`, `--learning-rate` → `train.learning_rate`.
pub fn key_for_flag(flag: &str) -> Option<&'static str> {
    let word = flag
        .trim_start_matches('-')
        .split('=')
        .next()?
        .replace('-', "_");
    if word.is_empty() {
        return None;
    }
    KEYS.iter()
        .copied()
        .find(|key| *key == word || key.rsplit('.').next() == Some(word.as_str()))
}

/// A config file as written: every key optional except `model.hidden`, nothing checked yet.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub name: Option<String>,
    pub seed: Option<i64>,
    pub backend: Option<String>,
    #[serde(default)]
    pub data: RawData,
    #[serde(default)]
    pub model: RawModel,
    #[serde(default)]
    pub train: RawTrain,
    #[serde(default)]
    pub output: RawOutput,
}

/// `[data]`
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    pub dataset: Option<String>,
    pub dir: Option<PathBuf>,
    pub train_limit: Option<i64>,
    pub test_limit: Option<i64>,
    pub validation: Option<i64>,
    pub augment_shift: Option<i64>,
    pub augment_rotate: Option<f64>,
}

/// `[model]`
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub hidden: Option<Vec<i64>>,
    pub activation: Option<OneOrMany>,
    pub output: Option<String>,
    pub init: Option<String>,
    pub dropout: Option<f64>,
}

/// One activation for every hidden layer, or one per layer.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `[train]`
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    pub epochs: Option<i64>,
    pub batch_size: Option<i64>,
    pub loss: Option<String>,
    pub optimizer: Option<String>,
    pub learning_rate: Option<f64>,
    pub schedule: Option<String>,
    pub warmup_epochs: Option<f64>,
    pub step_epochs: Option<i64>,
    pub step_factor: Option<f64>,
    pub momentum: Option<f64>,
    pub weight_decay: Option<f64>,
    pub metric: Option<String>,
    pub keep: Option<String>,
    pub patience: Option<i64>,
    pub min_delta: Option<f64>,
}

/// `[output]`
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub runs: Option<PathBuf>,
    pub epochs: Option<PathBuf>,
    pub models: Option<PathBuf>,
    pub save_model: Option<bool>,
    pub checkpoints: Option<String>,
}

/// Validated settings for one run, every default filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// A label for the run (default: the config file's stem).
    pub name: String,
    /// The config file the settings came from, if any.
    pub config: Option<PathBuf>,
    /// Seeds parameter initialisation and the shuffle.
    pub seed: u64,
    /// The backend as named (`cpu` is resolved when the device is selected).
    pub backend: BackendName,
    pub data: DataSettings,
    pub model: MlpConfig,
    pub train: TrainSettings,
    pub output: OutputSettings,
    /// The rung of a successive-halving sweep this run belongs to (0 otherwise): a label, not
    /// part of the run_id.
    pub rung: u32,
    /// Train at most this many of the `train.epochs` the schedule spans, then stop (a rung of
    /// successive halving below the last: its learning rate follows the whole run's schedule,
    /// so that the next rung continues the same run). Set by sweeps, not by config files; part
    /// of the run_id.
    pub budget: Option<usize>,
}

/// Which images to train and test on.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSettings {
    pub dataset: DatasetName,
    /// A folder to read the IDX files from instead of the default search.
    pub dir: Option<PathBuf>,
    /// Train on the first N training images only.
    pub train_limit: Option<usize>,
    /// Test on the first N test images only.
    pub test_limit: Option<usize>,
    /// Hold out the last N training images for validation (0: none).
    pub validation: usize,
    /// Shift each training image by up to this many pixels in x and y (0: off).
    pub augment_shift: usize,
    /// Rotate each training image by up to this many degrees either way (0: off).
    pub augment_rotate: f64,
}

/// How to train.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub learning_rate: f64,
    pub schedule: Schedule,
    /// Epochs of linear warm-up from 0 to `learning_rate` (0: none).
    pub warmup_epochs: f64,
    /// `step` schedule: epochs between steps.
    pub step_epochs: usize,
    /// `step` schedule: what each step multiplies the rate by.
    pub step_factor: f64,
    /// SGD momentum (0 = plain SGD).
    pub momentum: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// The validation metric that picks the kept epoch and drives early stopping.
    pub metric: Metric,
    pub keep: Keep,
    /// Stop after this many epochs without an improvement of `metric` by more than
    /// `min_delta` (0: never stop early).
    pub patience: usize,
    pub min_delta: f64,
}

/// Where results go.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSettings {
    /// One row per run.
    pub runs: PathBuf,
    /// One row per epoch of every run.
    pub epochs: PathBuf,
    /// Folder of trained models, `<run_id>.<attempt>.bpk`.
    pub models: PathBuf,
    pub save_model: bool,
    /// Whether the training state is written after every epoch, and kept after the commit.
    pub checkpoints: Checkpoints,
}

/// A config problem found by validation: the dotted key and what is wrong with it.
#[derive(Debug)]
struct Problem {
    key: String,
    message: String,
}

impl Problem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// One change to a config: a dotted key, its new value, and where the change came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// Dotted key, e.g. `model.hidden`.
    pub key: String,
    pub value: toml::Value,
    /// Where it came from, for messages: `--set model.hidden=[32]`, `experiments/x.toml:9:1`.
    pub origin: String,
}

impl Override {
    /// Parses `key=value` as given to `--set`: the value is TOML (`[32, 32]`, `0.5`, `true`), and
    /// anything that does not parse as TOML is taken as a string (`relu`).
    pub fn parse(assignment: &str) -> Result<Override> {
        let origin = format!("--set {assignment}");
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            user_error(format!(
                "{origin}: expected key=value, e.g. --set train.learning_rate=0.5"
            ))
        })?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(user_error(format!(
                "{origin}: \"{key}\" is not a dotted key such as model.hidden"
            )));
        }
        let value = value.trim();
        let parsed = toml::from_str::<toml::Table>(&format!("value = {value}"))
            .ok()
            .and_then(|mut table| table.remove("value"));
        let looks_like_integer = {
            let digits = value
                .strip_prefix(['-', '+'])
                .unwrap_or(value)
                .replace('_', "");
            !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
        };
        if parsed.is_none() && looks_like_integer {
            return Err(user_error(format!(
                "{origin}: {value} is out of range; whole numbers in a config go from {} to {}",
                i64::MIN,
                i64::MAX
            )));
        }
        let value = parsed.unwrap_or_else(|| toml::Value::String(value.to_string()));
        Ok(Override {
            key: key.to_string(),
            value,
            origin,
        })
    }
}

/// Reads, overrides and validates a config file; `overrides` are `--set` arguments.
///
/// A run changed by `--set` is named as a sweep names its points: the config's name, then a
/// label for each override that changes the result (`sigmoid_16x16_32x32_e5` for
/// `--set 'model.hidden=[32,32]' --set train.epochs=5`), unless `--set name=...` names it.
pub fn load(path: &Path, overrides: &[String]) -> Result<Settings> {
    let source = crate::input::read_text(path, "config", crate::input::TEXT_MAX)?;
    let overrides: Vec<Override> = overrides
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<_>>()?;
    let mut settings = parse(&source, path, &overrides)?;
    if !overrides.iter().any(|change| change.key == "name") {
        let labels: Vec<String> = overrides
            .iter()
            .filter(|change| affects_result(&change.key))
            .map(|change| label(&change.key, &change.value))
            .collect();
        if !labels.is_empty() {
            settings.name = format!("{}_{}", settings.name, labels.join("_"));
            check_name(&settings.name).map_err(|message| {
                user_error(format!(
                    "{}: the name {message}; set one with --set name=...",
                    path.display()
                ))
            })?;
        }
    }
    Ok(settings)
}

/// Whether a dotted key changes what is trained (and so the run_id): every key but the name,
/// the data folder and the `[output]` table.
pub fn affects_result(key: &str) -> bool {
    key != "name" && key != "data.dir" && !key.starts_with("output.") && key != "output"
}

/// A value as a short string: `[16, 16]` → `16x16`, `"relu"` → `relu`, `0.5` → `0.5`.
pub fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) if items.is_empty() => "none".to_string(),
        toml::Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join("x"),
        // Far from one in exponent form, as [`crate::text::number`] writes it; else as TOML.
        toml::Value::Float(x) if crate::text::number(*x).contains('e') => crate::text::number(*x),
        other => other.to_string(),
    }
}

/// A name part for one key's value: `16x16`, `relu`, `s3`, `lr0.1`, `b64`, `nohidden`.
pub fn label(key: &str, value: &toml::Value) -> String {
    let shown = show(value);
    let prefix = match key {
        "model.hidden" | "model.activation" | "model.output" | "model.init" | "backend"
        | "data.dataset" | "train.loss" | "train.optimizer" | "train.schedule" | "train.keep"
        | "train.metric" => "",
        "seed" => "s",
        "train.learning_rate" => "lr",
        "train.batch_size" => "b",
        "train.epochs" => "e",
        "train.momentum" => "m",
        "train.weight_decay" => "wd",
        "train.warmup_epochs" => "warm",
        "train.patience" => "pat",
        "model.dropout" => "drop",
        "data.train_limit" => "n",
        "data.test_limit" => "test",
        "data.validation" => "val",
        "data.augment_shift" => "shift",
        "data.augment_rotate" => "rot",
        other => other.rsplit('.').next().unwrap_or(other),
    };
    match (key, value) {
        ("model.hidden", toml::Value::Array(items)) if items.is_empty() => "nohidden".to_string(),
        ("model.activation", toml::Value::Array(_)) => shown.replace('x', "-"),
        _ => format!("{prefix}{shown}"),
    }
}

/// Like [`load`], for a config already in memory; `path` names it in messages.
pub fn parse(source: &str, path: &Path, overrides: &[Override]) -> Result<Settings> {
    Base::new(source, path, overrides)?.settings(&[])
}

/// What a TOML file of harness's is, by its top-level keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// One run's settings (`[model]`, `[train]`, `[data]`, ...): `harness run`.
    Config,
    /// Points of a sweep (`base`, `[grid]`, `[random]`, `[[point]]`, `[halving]`): `harness sweep`.
    Experiment,
}

/// The kind of harness file `source` is, when its top-level keys say so unambiguously.
pub fn kind_of(source: &str) -> Option<FileKind> {
    let table: toml::Table = toml::from_str(source).ok()?;
    let has = |keys: &[&str]| keys.iter().any(|key| table.contains_key(*key));
    let experiment = has(&[
        "base", "grid", "random", "tpe", "point", "exclude", "halving",
    ]);
    let config = has(&["model", "train", "data", "output"]);
    match (config, experiment) {
        (true, false) => Some(FileKind::Config),
        (false, true) => Some(FileKind::Experiment),
        _ => None,
    }
}

/// A config parsed once, to which many sets of changes are applied: the points of a sweep cost
/// one table copy and one validation each, not a parse.
pub struct Base {
    source: String,
    path: PathBuf,
    /// The config with the base overrides applied, as a TOML table.
    table: toml::Table,
    /// The base overrides, for messages.
    overrides: Vec<Override>,
}

impl Base {
    /// Parses `source` (named `path` in messages) and applies `overrides`; each override is
    /// checked on its own, so an error names the one at fault.
    pub fn new(source: &str, path: &Path, overrides: &[Override]) -> Result<Base> {
        let file = SourceFile { path, source };
        let mut raw: RawConfig = toml::from_str(source).map_err(|e| {
            if kind_of(source) == Some(FileKind::Experiment) {
                return user_error(format!(
                    "{} is an experiment file (it has base, [grid], [random], [[point]] or \
                     [halving]), not a config: run its points with `harness sweep {}`",
                    path.display(),
                    path.display()
                ));
            }
            file.toml_error(&e)
        })?;
        for change in overrides {
            raw = raw.with(change)?;
        }
        Ok(Base {
            source: source.to_string(),
            path: path.to_path_buf(),
            table: toml::Table::try_from(&raw).expect("a RawConfig serializes to a table"),
            overrides: overrides.to_vec(),
        })
    }

    /// The validated settings of the base with `changes` applied (later changes win).
    pub fn settings(&self, changes: &[Override]) -> Result<Settings> {
        let mut table = self.table.clone();
        let mut raw = None;
        for change in changes {
            insert(&mut table, &change.key, change.value.clone())
                .map_err(|message| user_error(format!("{}: {message}", change.origin)))?;
        }
        if let Ok(parsed) = table.try_into::<RawConfig>() {
            raw = Some(parsed);
        }
        let raw = match raw {
            Some(raw) => raw,
            None => {
                // Find the change at fault, one at a time, for its message.
                let mut raw: RawConfig = self.table.clone().try_into().expect("the base is valid");
                for change in changes {
                    raw = raw.with(change)?;
                }
                raw
            }
        };
        let default_name = self.path.file_stem().map_or_else(
            || "run".to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        );
        let file = SourceFile {
            path: &self.path,
            source: &self.source,
        };
        let mut settings = raw.validate(&default_name).map_err(|problems| {
            let mut message = format!("invalid config {}:", self.path.display());
            for problem in &problems {
                // The last change of a key (or of the list holding an item) is where it was set.
                let origin = self.overrides.iter().chain(changes).rev().find(|change| {
                    problem.key == change.key
                        || problem.key.starts_with(&format!("{}[", change.key))
                });
                let place = match origin {
                    Some(change) => change.origin.clone(),
                    None => file.locate(&problem.key),
                };
                write!(message, "\n  {place}: {}: {}", problem.key, problem.message).unwrap();
            }
            user_error(message)
        })?;
        settings.config = Some(self.path.clone());
        Ok(settings)
    }
}

impl RawConfig {
    /// This config with one key changed; an unknown key or a wrongly typed value is an error
    /// naming the override's origin.
    pub fn with(&self, change: &Override) -> Result<RawConfig> {
        let mut table = toml::Table::try_from(self).expect("a RawConfig serializes to a table");
        insert(&mut table, &change.key, change.value.clone())
            .and_then(|()| {
                table
                    .try_into::<RawConfig>()
                    .map_err(|e| crate::text::plain_types(e.message()))
            })
            .map_err(|message| user_error(format!("{}: {message}", change.origin)))
    }
}

/// Sets `dotted.key` in `table`, creating intermediate tables.
fn insert(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("split yields at least one part");
    let mut current = table;
    for part in parts {
        current = current
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("\"{part}\" is not a table"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

impl RawConfig {
    /// Checks every key and fills in defaults; all problems at once.
    fn validate(&self, default_name: &str) -> Result<Settings, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut check = Checker(&mut problems);

        let name = check.ok(run_name("name", self.name.clone(), default_name));
        let seed = check.ok(seed(self.seed));
        let backend = check.ok(choice("backend", self.backend.as_deref(), BackendName::Cpu));
        let dataset = check.ok(choice(
            "data.dataset",
            self.data.dataset.as_deref(),
            DatasetName::Mnist,
        ));
        let validation = check.ok(whole(
            "data.validation",
            self.data.validation,
            DEFAULT_VALIDATION,
            TRAIN_IMAGES - 1,
        ));
        // Every dataset's files are checked by SHA-256, so their sizes are known here: a limit
        // above what is there would train the same images as no limit under another run_id.
        let available = TRAIN_IMAGES
            - validation
                .unwrap_or(DEFAULT_VALIDATION)
                .min(TRAIN_IMAGES - 1);
        let train_limit = check.ok(limit(
            "data.train_limit",
            self.data.train_limit,
            available,
            &format!(
                "the training images left after data.validation = {} are held out",
                validation.unwrap_or(DEFAULT_VALIDATION)
            ),
        ));
        let test_limit = check.ok(limit(
            "data.test_limit",
            self.data.test_limit,
            TEST_IMAGES,
            "the test file's images",
        ));
        let augment_shift = check.ok(whole(
            "data.augment_shift",
            self.data.augment_shift,
            0,
            MAX_SHIFT,
        ));
        let augment_rotate = check.ok(bounded(
            "data.augment_rotate",
            self.data.augment_rotate,
            0.0,
            0.0..=MAX_ROTATE,
        ));

        let hidden = check.ok(hidden_widths(self.model.hidden.as_deref()));
        let activations = hidden
            .as_ref()
            .and_then(|hidden| check.ok(activations(self.model.activation.as_ref(), hidden.len())));
        let output = check.ok(choice(
            "model.output",
            self.model.output.as_deref(),
            OutputActivation::Sigmoid,
        ));
        let init = check.ok(choice(
            "model.init",
            self.model.init.as_deref(),
            Init::Default,
        ));
        let dropout = check.ok(fraction("model.dropout", self.model.dropout));

        let epochs = check.ok(between(
            "train.epochs",
            self.train.epochs,
            30,
            1,
            MAX_EPOCHS,
        ));
        let batch_size = check.ok(count("train.batch_size", self.train.batch_size, 10));
        let loss = check.ok(choice("train.loss", self.train.loss.as_deref(), Loss::Mse));
        let optimizer = check.ok(choice(
            "train.optimizer",
            self.train.optimizer.as_deref(),
            Optimizer::Sgd,
        ));
        let learning_rate = check.ok(positive(
            "train.learning_rate",
            self.train.learning_rate,
            3.0,
        ));
        let schedule = check.ok(choice(
            "train.schedule",
            self.train.schedule.as_deref(),
            Schedule::Constant,
        ));
        let warmup_epochs = check.ok(bounded(
            "train.warmup_epochs",
            self.train.warmup_epochs,
            0.0,
            0.0..=f64::MAX,
        ));
        let step_epochs = check.ok(between(
            "train.step_epochs",
            self.train.step_epochs,
            10,
            1,
            MAX_EPOCHS,
        ));
        let step_factor = check.ok(bounded(
            "train.step_factor",
            self.train.step_factor,
            0.1,
            f64::MIN_POSITIVE..=1.0,
        ));
        let momentum = check.ok(fraction("train.momentum", self.train.momentum));
        let weight_decay = check.ok(non_negative("train.weight_decay", self.train.weight_decay));
        let metric = check.ok(choice(
            "train.metric",
            self.train.metric.as_deref(),
            Metric::ValAccuracy,
        ));
        let keep_default = if validation.unwrap_or(DEFAULT_VALIDATION) > 0 {
            Keep::Best
        } else {
            Keep::Last
        };
        let keep = check.ok(choice(
            "train.keep",
            self.train.keep.as_deref(),
            keep_default,
        ));
        let checkpoints = check.ok(choice(
            "output.checkpoints",
            self.output.checkpoints.as_deref(),
            Checkpoints::Resume,
        ));
        let patience = check.ok(whole("train.patience", self.train.patience, 0, MAX_EPOCHS));
        let min_delta = check.ok(non_negative("train.min_delta", self.train.min_delta));

        if let (Some(Loss::CrossEntropy), Some(OutputActivation::Sigmoid)) = (loss, output) {
            problems.push(Problem::new(
                "train.loss",
                "cross_entropy is softmax cross-entropy and needs model.output = \"softmax\"; \
                 with the video's sigmoid output use loss = \"mse\"",
            ));
        }
        if let (Some(Optimizer::Adam), Some(momentum)) = (optimizer, momentum)
            && momentum != 0.0
        {
            problems.push(Problem::new(
                "train.momentum",
                "momentum applies to optimizer = \"sgd\"; Adam keeps its own moment estimates",
            ));
        }
        if let (Some(hidden), Some(dropout)) = (&hidden, dropout)
            && hidden.is_empty()
            && dropout > 0.0
        {
            problems.push(Problem::new(
                "model.dropout",
                "drops hidden activations, and model.hidden = [] has no hidden layer",
            ));
        }
        if validation == Some(0) {
            if keep == Some(Keep::Best) {
                problems.push(Problem::new(
                    "train.keep",
                    "\"best\" picks the epoch on validation images, and data.validation = 0 \
                     holds none out; set data.validation (e.g. 10000) or keep = \"last\"",
                ));
            }
            if patience.is_some_and(|p| p > 0) {
                problems.push(Problem::new(
                    "train.patience",
                    "early stopping watches the validation metric, and data.validation = 0 \
                     holds no images out; set data.validation (e.g. 10000) or patience = 0",
                ));
            }
        }
        if let (Some(warmup), Some(epochs)) = (warmup_epochs, epochs)
            && warmup >= epochs as f64
        {
            problems.push(Problem::new(
                "train.warmup_epochs",
                format!(
                    "{} is not allowed; the warm-up must end before train.epochs ({epochs})",
                    crate::text::number(warmup)
                ),
            ));
        }
        let runs = self
            .output
            .runs
            .clone()
            .unwrap_or_else(|| "results/runs.csv".into());
        let epochs_csv = self
            .output
            .epochs
            .clone()
            .unwrap_or_else(|| "results/epochs.csv".into());
        if runs == epochs_csv {
            problems.push(Problem::new(
                "output.epochs",
                "must be a different file from output.runs (their columns differ)",
            ));
        }
        for (key, path) in [
            ("output.runs", Some(&runs)),
            ("output.epochs", Some(&epochs_csv)),
            ("output.models", self.output.models.as_ref()),
            ("data.dir", self.data.dir.as_ref()),
        ] {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                problems.push(Problem::new(key, "must not be empty: give a path"));
            }
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        // No problem was reported, so every checked value is present.
        const SET: &str = "validated value";
        Ok(Settings {
            name: name.expect(SET),
            config: None,
            seed: seed.expect(SET),
            backend: backend.expect(SET),
            data: DataSettings {
                dataset: dataset.expect(SET),
                dir: self.data.dir.clone(),
                train_limit: train_limit.expect(SET),
                test_limit: test_limit.expect(SET),
                validation: validation.expect(SET),
                augment_shift: augment_shift.expect(SET),
                augment_rotate: augment_rotate.expect(SET),
            },
            model: MlpConfig {
                hidden: hidden.expect(SET),
                activations: activations.expect(SET),
                output: output.expect(SET),
                init: init.expect(SET),
                dropout: dropout.expect(SET),
            },
            train: TrainSettings {
                epochs: epochs.expect(SET),
                batch_size: batch_size.expect(SET),
                loss: loss.expect(SET),
                optimizer: optimizer.expect(SET),
                learning_rate: learning_rate.expect(SET),
                schedule: schedule.expect(SET),
                warmup_epochs: warmup_epochs.expect(SET),
                step_epochs: step_epochs.expect(SET),
                step_factor: step_factor.expect(SET),
                momentum: momentum.expect(SET),
                weight_decay: weight_decay.expect(SET),
                metric: metric.expect(SET),
                keep: keep.expect(SET),
                patience: patience.expect(SET),
                min_delta: min_delta.expect(SET),
            },
            output: OutputSettings {
                models: self
                    .output
                    .models
                    .clone()
                    .unwrap_or_else(|| "results/models".into()),
                runs,
                epochs: epochs_csv,
                save_model: self.output.save_model.unwrap_or(true),
                checkpoints: checkpoints.expect(SET),
            },
            rung: 0,
            budget: None,
        })
    }
}

/// Training images held out for validation when a config does not say: the last 10,000, as in
/// Nielsen's book (50,000 to train on, 10,000 to choose with), so that picking an epoch or a
/// network never looks at the test set.
pub const DEFAULT_VALIDATION: usize = 10_000;

/// The most epochs a run may train (and so the largest `train.step_epochs`, `train.patience`
/// and halving budget): far beyond any use on MNIST, and a bound on everything sized by it.
pub const MAX_EPOCHS: usize = 100_000;

/// The widest hidden layer `model.hidden` accepts: the memory check refuses far narrower
/// layers on any real machine, and products of widths stay far inside 64 bits.
pub const MAX_WIDTH: usize = 10_000_000;

/// The largest random shift of `data.augment_shift`, in pixels: MNIST's digits sit in a 20x20
/// box centred in 28x28, so 4 pixels keep them in the frame.
pub const MAX_SHIFT: usize = 4;

/// The largest rotation of `data.augment_rotate`, in degrees.
pub const MAX_ROTATE: f64 = 30.0;

/// Collects problems while validation goes on, so that all are reported at once.
struct Checker<'a>(&'a mut Vec<Problem>);

impl Checker<'_> {
    fn ok<T>(&mut self, result: Result<T, Problem>) -> Option<T> {
        result.map_err(|problem| self.0.push(problem)).ok()
    }
}

fn run_name(key: &str, value: Option<String>, default: &str) -> Result<String, Problem> {
    let name = value.unwrap_or_else(|| default.to_string());
    check_name(&name).map_err(|message| Problem::new(key, message))?;
    Ok(name)
}

/// Why `name` cannot label runs, if it cannot: it must be text that no CSV reader takes for
/// something else (a number, a boolean, a missing value), so that the `name` column keeps one
/// type in pandas and polars.
pub fn check_name(name: &str) -> Result<(), String> {
    const MISSING: [&str; 18] = [
        "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
        "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    ];
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".to_string());
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters such as newlines".to_string());
    }
    if name.len() > 200 {
        return Err(format!("is {} bytes long; at most 200", name.len()));
    }
    let number = trimmed.parse::<f64>().is_ok() || trimmed.parse::<i128>().is_ok();
    let boolean = ["true", "false"].contains(&trimmed.to_ascii_lowercase().as_str());
    if number || boolean || MISSING.contains(&trimmed) {
        return Err(format!(
            "\"{name}\" would read as a {} in a CSV reader (pandas, polars), not as a name; \
             use a name with a letter in it, e.g. \"run_{trimmed}\"",
            if number {
                "number"
            } else if boolean {
                "boolean"
            } else {
                "missing value"
            }
        ));
    }
    Ok(())
}

fn seed(value: Option<i64>) -> Result<u64, Problem> {
    match value {
        None => Ok(42),
        Some(n) if n >= 0 => Ok(n as u64),
        Some(n) => Err(Problem::new(
            "seed",
            format!(
                "{n} is not allowed; a seed is a whole number from 0 to {}",
                i64::MAX
            ),
        )),
    }
}

/// A whole number in `0..=max`, or the default.
fn whole(key: &str, value: Option<i64>, default: usize, max: usize) -> Result<usize, Problem> {
    match value {
        None => Ok(default),
        Some(n) if n >= 0 && (n as u64) <= max as u64 => Ok(n as usize),
        Some(n) => Err(Problem::new(
            key,
            format!("{n} is not allowed; must be a whole number from 0 to {max}"),
        )),
    }
}

/// A number in `range`, or the default.
fn bounded(
    key: &str,
    value: Option<f64>,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, Problem> {
    match value {
        None => Ok(default),
        Some(x) if x.is_finite() && range.contains(&x) => Ok(x),
        Some(x) => Err(Problem::new(
            key,
            format!(
                "{} is not allowed; must be a number from {} to {}",
                crate::text::number(x),
                crate::text::number(*range.start()),
                if *range.end() == f64::MAX {
                    "any larger number".to_string()
                } else {
                    crate::text::number(*range.end())
                }
            ),
        )),
    }
}

fn choice<T: Choice>(key: &str, value: Option<&str>, default: T) -> Result<T, Problem> {
    value.map_or(Ok(default), |value| {
        T::parse(value).map_err(|message| Problem::new(key, message))
    })
}

fn count(key: &str, value: Option<i64>, default: usize) -> Result<usize, Problem> {
    match value {
        None => Ok(default),
        Some(n) if n >= 1 => Ok(n as usize),
        Some(n) => Err(Problem::new(
            key,
            format!("{n} is not allowed; must be at least 1"),
        )),
    }
}

/// A whole number in `min..=max`, or the default.
fn between(
    key: &str,
    value: Option<i64>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, Problem> {
    match value {
        None => Ok(default),
        Some(n) if n >= min as i64 && n as u64 <= max as u64 => Ok(n as usize),
        Some(n) => Err(Problem::new(
            key,
            format!("{n} is not allowed; must be a whole number from {min} to {max}"),
        )),
    }
}

/// An image limit of at most `available` (`of` says what those are), or none; a limit of
/// exactly `available` is no limit, so that both name one run.
fn limit(
    key: &str,
    value: Option<i64>,
    available: usize,
    of: &str,
) -> Result<Option<usize>, Problem> {
    match value {
        None => Ok(None),
        Some(n) if n >= 1 && n as u64 <= available as u64 => {
            Ok((n as usize != available).then_some(n as usize))
        }
        Some(n) => Err(Problem::new(
            key,
            format!(
                "{n} is not allowed; there are {available} images to take ({of}): use 1 to \
                 {available}, or leave it out for all of them"
            ),
        )),
    }
}

/// A rate the training can use: positive, and a normal 32-bit float (training computes in
/// f32, where 1e-320 is 0 and 1e39 is infinite: the row would record a rate never used).
fn positive(key: &str, value: Option<f64>, default: f64) -> Result<f64, Problem> {
    match value {
        None => Ok(default),
        Some(x) if x.is_finite() && x > 0.0 && (x as f32).is_normal() => Ok(x),
        Some(x) if x.is_finite() && x > 0.0 => Err(Problem::new(
            key,
            format!(
                "{} is not allowed; training computes in 32-bit floats, which hold rates from \
                 {:e} to {:e}",
                crate::text::number(x),
                f32::MIN_POSITIVE,
                f32::MAX
            ),
        )),
        Some(x) => Err(Problem::new(
            key,
            format!(
                "{} is not allowed; must be a number > 0",
                crate::text::number(x)
            ),
        )),
    }
}

fn non_negative(key: &str, value: Option<f64>) -> Result<f64, Problem> {
    match value {
        None => Ok(0.0),
        Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
        Some(x) => Err(Problem::new(
            key,
            format!(
                "{} is not allowed; must be a number >= 0",
                crate::text::number(x)
            ),
        )),
    }
}

fn fraction(key: &str, value: Option<f64>) -> Result<f64, Problem> {
    match value {
        None => Ok(0.0),
        Some(x) if (0.0..1.0).contains(&x) => Ok(x),
        Some(x) => Err(Problem::new(
            key,
            format!(
                "{} is not allowed; must be in [0, 1)",
                crate::text::number(x)
            ),
        )),
    }
}

fn hidden_widths(hidden: Option<&[i64]>) -> Result<Vec<usize>, Problem> {
    let hidden = hidden.ok_or_else(|| {
        Problem::new(
            "model.hidden",
            "is required: the hidden layer widths, e.g. hidden = [16, 16] (the video's network) \
             or hidden = [] (no hidden layer)",
        )
    })?;
    hidden
        .iter()
        .enumerate()
        .map(|(i, &width)| {
            usize::try_from(width)
                .ok()
                .filter(|&w| (1..=MAX_WIDTH).contains(&w))
                .ok_or_else(|| {
                    Problem::new(
                        format!("model.hidden[{i}]"),
                        format!(
                            "a layer of {width} neurons is not allowed; widths go from 1 to \
                             {MAX_WIDTH}"
                        ),
                    )
                })
        })
        .collect()
}

fn activations(value: Option<&OneOrMany>, layers: usize) -> Result<Vec<Activation>, Problem> {
    let parse = |key: String, name: &str| Activation::parse(name).map_err(|m| Problem::new(key, m));
    match value {
        None => Ok(vec![Activation::Sigmoid; layers]),
        Some(OneOrMany::One(name)) => Ok(vec![parse("model.activation".into(), name)?; layers]),
        Some(OneOrMany::Many(names)) if names.len() != layers => Err(Problem::new(
            "model.activation",
            format!(
                "lists {} activations for {layers} hidden layers; give one name for all layers \
                 or one per layer",
                names.len()
            ),
        )),
        Some(OneOrMany::Many(names)) => names
            .iter()
            .enumerate()
            .map(|(i, name)| parse(format!("model.activation[{i}]"), name))
            .collect(),
    }
}

impl Settings {
    /// The settings as a complete config file, every key resolved.
    pub fn to_raw(&self) -> RawConfig {
        let activations: Vec<String> = self
            .model
            .activations
            .iter()
            .map(|a| a.to_string())
            .collect();
        // Without hidden layers there is no activation to name.
        let activation = match activations.first() {
            Some(first) if activations.iter().any(|a| a != first) => {
                Some(OneOrMany::Many(activations))
            }
            Some(first) => Some(OneOrMany::One(first.clone())),
            None => None,
        };
        RawConfig {
            name: Some(self.name.clone()),
            seed: Some(self.seed as i64),
            backend: Some(self.backend.to_string()),
            data: RawData {
                dataset: Some(self.data.dataset.to_string()),
                dir: self.data.dir.clone(),
                train_limit: self.data.train_limit.map(|n| n as i64),
                test_limit: self.data.test_limit.map(|n| n as i64),
                validation: Some(self.data.validation as i64),
                augment_shift: Some(self.data.augment_shift as i64),
                augment_rotate: Some(self.data.augment_rotate),
            },
            model: RawModel {
                hidden: Some(self.model.hidden.iter().map(|&w| w as i64).collect()),
                activation,
                output: Some(self.model.output.to_string()),
                init: Some(self.model.init.to_string()),
                dropout: Some(self.model.dropout),
            },
            train: RawTrain {
                epochs: Some(self.train.epochs as i64),
                batch_size: Some(self.train.batch_size as i64),
                loss: Some(self.train.loss.to_string()),
                optimizer: Some(self.train.optimizer.to_string()),
                learning_rate: Some(self.train.learning_rate),
                schedule: Some(self.train.schedule.to_string()),
                warmup_epochs: Some(self.train.warmup_epochs),
                step_epochs: Some(self.train.step_epochs as i64),
                step_factor: Some(self.train.step_factor),
                momentum: Some(self.train.momentum),
                weight_decay: Some(self.train.weight_decay),
                metric: Some(self.train.metric.to_string()),
                keep: Some(self.train.keep.to_string()),
                patience: Some(self.train.patience as i64),
                min_delta: Some(self.train.min_delta),
            },
            output: RawOutput {
                runs: Some(self.output.runs.clone()),
                epochs: Some(self.output.epochs.clone()),
                models: Some(self.output.models.clone()),
                save_model: Some(self.output.save_model),
                checkpoints: Some(self.output.checkpoints.to_string()),
            },
        }
    }

    /// The same settings checked again, as a config file of them would be: after a change made
    /// in code (a halving rung's epochs), so that what is trained is always validated.
    pub fn revalidated(&self) -> Result<Settings> {
        let mut settings = self.to_raw().validate(&self.name).map_err(|problems| {
            let listed: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect();
            user_error(listed.join("; "))
        })?;
        settings.config = self.config.clone();
        settings.rung = self.rung;
        settings.budget = self.budget;
        Ok(settings)
    }

    /// The settings as TOML, every key resolved (what `harness check` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.to_raw()).expect("settings serialize to TOML")
    }

    /// A short, stable id of everything that affects the result: the same settings and seed give
    /// the same id (`r` and 11 hexadecimal digits of a SHA-256); the name, the halving rung, the
    /// data folder and output paths do not count. A [`Settings::budget`] does.
    ///
    /// `backend` is the resolved backend, so `cpu` and `flex` runs share ids.
    pub fn run_id(&self, backend: BackendName) -> String {
        let mut identity = self.to_raw();
        identity.name = None;
        identity.backend = Some(backend.resolve().to_string());
        identity.data.dir = None;
        identity.output = RawOutput::default();
        let mut canonical = toml::to_string(&identity).expect("settings serialize to TOML");
        if let Some(budget) = self.budget {
            // Not TOML: a line no config can write.
            canonical.push_str(&format!("\n# budget {budget}\n"));
        }
        let digest = Sha256::digest(canonical.as_bytes());
        // A letter first, so that no CSV reader takes an id for a number.
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("r{}", &hex[..11])
    }

    /// The run_id of the whole run this one is a part of: the same settings without a
    /// [`Settings::budget`]. Runs of one trajectory train the same epochs in the same way, so
    /// one may continue from another's checkpoint.
    pub fn trajectory(&self, backend: BackendName) -> String {
        let whole = Settings {
            budget: None,
            ..self.clone()
        };
        whole.run_id(backend)
    }

    /// The epoch training stops after at the latest: `train.epochs`, or the budget if less.
    pub fn last_epoch(&self) -> usize {
        self.budget
            .map_or(self.train.epochs, |budget| budget.min(self.train.epochs))
    }
}

/// A config file's text, for locating keys and errors in it.
struct SourceFile<'a> {
    path: &'a Path,
    source: &'a str,
}

impl SourceFile<'_> {
    /// `file:line:column` of a byte offset.
    fn position(&self, offset: usize) -> String {
        let before = &self.source[..offset.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("{}:{line}:{column}", self.path.display())
    }

    /// Where `key` (dotted, with `[i]` for list items) is set in the file, or the file alone
    /// when the key is not there (a missing key).
    fn locate(&self, key: &str) -> String {
        DeTable::parse(self.source)
            .ok()
            .and_then(|table| span_of(table.get_ref(), key))
            .map_or_else(
                || self.path.display().to_string(),
                |span| self.position(span.start),
            )
    }

    /// A TOML syntax or schema error, with its position, the key it concerns and the line.
    fn toml_error(&self, error: &toml::de::Error) -> anyhow::Error {
        let Some(span) = error.span() else {
            return user_error(format!(
                "{}: {}",
                self.path.display(),
                crate::text::plain_types(error.message())
            ));
        };
        let key = DeTable::parse(self.source)
            .ok()
            .and_then(|table| key_at(table.get_ref(), span.start, ""))
            .map(|key| format!("{key}: "))
            .unwrap_or_default();
        let line_start = self.source[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[span.start..]
            .find('\n')
            .map_or(self.source.len(), |i| span.start + i);
        let line = &self.source[line_start..line_end];
        let caret = " ".repeat(self.source[line_start..span.start].chars().count());
        user_error(format!(
            "invalid config {}: {key}{}\n  |\n  | {line}\n  | {caret}^",
            self.position(span.start),
            crate::text::plain_types(error.message().trim_end())
        ))
    }
}

/// The span of the value of a dotted `key` (with `[i]` for list items) in a parsed document.
///
/// A dotted key may be written as nested tables (`[model]` then `hidden`) or as one quoted key
/// (`"model.hidden"`, as in experiment grids): both are found.
pub(crate) fn span_of(table: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    let parts: Vec<&str> = key.split('.').collect();
    find_in_table(table, &parts)
}

fn find_in_table(table: &DeTable<'_>, parts: &[&str]) -> Option<Range<usize>> {
    (1..=parts.len()).rev().find_map(|n| {
        let joined = parts[..n].join(".");
        let (name, index) = split_index(&joined);
        let mut value = table.get(name)?;
        if let Some(index) = index {
            value = item(value, index)?;
        }
        if n == parts.len() {
            return Some(value.span());
        }
        match value.get_ref() {
            DeValue::Table(inner) => find_in_table(inner, &parts[n..]),
            _ => None,
        }
    })
}

/// `name[3]` → (`name`, Some(3)); anything else is a name.
fn split_index(part: &str) -> (&str, Option<usize>) {
    part.strip_suffix(']')
        .and_then(|inner| inner.rsplit_once('['))
        .and_then(|(name, index)| Some((name, Some(index.parse().ok()?))))
        .unwrap_or((part, None))
}

fn item<'a, 'i>(value: &'a Spanned<DeValue<'i>>, index: usize) -> Option<&'a Spanned<DeValue<'i>>> {
    match value.get_ref() {
        DeValue::Array(array) => array.get(index),
        _ => None,
    }
}

/// The dotted key whose key or value holds byte `offset`, innermost first.
fn key_at(table: &DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if let DeValue::Table(inner) = value.get_ref()
            && let Some(found) = key_at(inner, offset, &path)
        {
            return Some(found);
        }
        (key.span().contains(&offset) || value.span().contains(&offset)).then_some(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(source: &str, overrides: &[&str]) -> Result<Settings> {
        let overrides: Vec<Override> = overrides
            .iter()
            .map(|s| Override::parse(s))
            .collect::<Result<_>>()?;
        parse(source, Path::new("test.toml"), &overrides)
    }

    fn error(source: &str, overrides: &[&str]) -> String {
        let error = parse_str(source, overrides).unwrap_err();
        assert!(
            crate::error::is_user_error(&error),
            "not a user error: {error:#}"
        );
        format!("{error:#}")
    }

    #[test]
    fn minimal_config_gets_the_videos_defaults() {
        let settings = parse_str("[model]\nhidden = [16, 16]\n", &[]).unwrap();
        assert_eq!(settings.name, "test");
        assert_eq!(settings.model.hidden, vec![16, 16]);
        assert_eq!(settings.model.activations, vec![Activation::Sigmoid; 2]);
        assert_eq!(settings.model.output, OutputActivation::Sigmoid);
        assert_eq!(settings.train.loss, Loss::Mse);
        assert_eq!(settings.train.optimizer, Optimizer::Sgd);
        assert_eq!(settings.train.learning_rate, 3.0);
        assert_eq!((settings.train.batch_size, settings.train.epochs), (10, 30));
        assert_eq!(settings.output.runs, PathBuf::from("results/runs.csv"));
    }

    #[test]
    fn misspelled_activation_suggests_and_locates() {
        let message = error("[model]\nhidden = [16]\nactivation = \"sigmod\"\n", &[]);
        assert!(message.contains("test.toml:3:14"), "{message}");
        assert!(message.contains("model.activation"), "{message}");
        assert!(message.contains("did you mean \"sigmoid\""), "{message}");
        assert!(message.contains("relu"), "{message}");
    }

    #[test]
    fn unknown_key_is_located() {
        let message = error("[train]\nlearnin_rate = 0.1\n[model]\nhidden = []\n", &[]);
        assert!(message.contains("test.toml:2:1"), "{message}");
        assert!(message.contains("learnin_rate"), "{message}");
        assert!(message.contains("learning_rate"), "{message}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let message = error("[model]\nhidden = [16]\n[train]\nepochs = \"ten\"\n", &[]);
        assert!(message.contains("test.toml:4:10"), "{message}");
        assert!(message.contains("train.epochs"), "{message}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let source = "[model]\nhidden = [16, 0]\n[train]\nepochs = 0\nlearning_rate = -1\n";
        let message = error(source, &[]);
        assert!(
            message.contains("test.toml:2:15: model.hidden[1]"),
            "{message}"
        );
        assert!(
            message.contains("test.toml:4:10: train.epochs"),
            "{message}"
        );
        assert!(
            message.contains("test.toml:5:17: train.learning_rate"),
            "{message}"
        );
    }

    #[test]
    fn missing_hidden_explains_itself() {
        let message = error("seed = 1\n", &[]);
        assert!(message.contains("model.hidden: is required"), "{message}");
    }

    #[test]
    fn cross_entropy_needs_softmax() {
        let message = error(
            "[model]\nhidden = []\n[train]\nloss = \"cross_entropy\"\n",
            &[],
        );
        assert!(message.contains("train.loss"), "{message}");
        assert!(message.contains("softmax"), "{message}");
    }

    #[test]
    fn overrides_are_typed_by_the_schema() {
        let settings = parse_str(
            "[model]\nhidden = [16, 16]\n",
            &[
                "model.hidden=[32, 32]",
                "model.activation=relu",
                "train.learning_rate=0.5",
            ],
        )
        .unwrap();
        assert_eq!(settings.model.hidden, vec![32, 32]);
        assert_eq!(settings.model.activations, vec![Activation::Relu; 2]);
        assert_eq!(settings.train.learning_rate, 0.5);
    }

    #[test]
    fn every_key_is_documented_in_default_toml_and_accepted() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/default.toml"),
        )
        .unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut documented: Vec<String> = Vec::new();
        for (key, value) in &table {
            match value {
                toml::Value::Table(inner) => {
                    documented.extend(inner.keys().map(|leaf| format!("{key}.{leaf}")))
                }
                _ => documented.push(key.clone()),
            }
        }
        // default.toml leaves some keys commented out: each of those must still be a key.
        for key in &documented {
            assert!(KEYS.contains(&key.as_str()), "{key} is not in KEYS");
        }
        for key in KEYS {
            assert!(
                text.contains(key.rsplit('.').next().unwrap()),
                "{key} is not documented in configs/default.toml"
            );
            let mut table = toml::Table::new();
            insert(&mut table, key, toml::Value::Integer(1)).unwrap();
            // Accepted as a key: any error is about the value's type, never an unknown field.
            if let Err(error) = table.try_into::<RawConfig>() {
                assert!(!error.message().contains("unknown field"), "{key}: {error}");
            }
        }
        assert_eq!(key_for_flag("--epochs"), Some("train.epochs"));
        assert_eq!(
            key_for_flag("--learning-rate=0.1"),
            Some("train.learning_rate")
        );
        assert_eq!(key_for_flag("--train.batch_size"), Some("train.batch_size"));
        assert_eq!(key_for_flag("--frobnicate"), None);
    }

    #[test]
    fn bad_overrides_name_the_flag() {
        let message = error("[model]\nhidden = [16]\n", &["train.epochs=ten"]);
        assert!(message.contains("--set train.epochs=ten"), "{message}");
        let message = error("[model]\nhidden = [16]\n", &["train.epoch=3"]);
        assert!(message.contains("--set train.epoch=3"), "{message}");
        assert!(message.contains("epochs"), "{message}");
        let message = error("[model]\nhidden = [16]\n", &["model.activation=sigmod"]);
        assert!(
            message.contains("--set model.activation=sigmod: model.activation"),
            "{message}"
        );
        let message = error("[model]\nhidden = [16]\n", &["novalue"]);
        assert!(message.contains("expected key=value"), "{message}");
    }

    #[test]
    fn run_id_follows_what_affects_the_result() {
        let base = parse_str("[model]\nhidden = [16, 16]\n", &[]).unwrap();
        let id = base.run_id(BackendName::Flex);
        assert_eq!(id.len(), 12);
        let renamed = parse_str(
            "name = \"other\"\n[model]\nhidden = [16, 16]\n[output]\nruns = \"x.csv\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(renamed.run_id(BackendName::Flex), id);
        assert_eq!(
            base.run_id(BackendName::Cpu),
            base.run_id(BackendName::Cpu.resolve())
        );
        let relu = parse_str("[model]\nhidden = [16, 16]\n", &["model.activation=relu"]).unwrap();
        assert_ne!(relu.run_id(BackendName::Flex), id);
        let seeded = parse_str("seed = 7\n[model]\nhidden = [16, 16]\n", &[]).unwrap();
        assert_ne!(seeded.run_id(BackendName::Flex), id);
    }

    #[test]
    fn resolved_toml_parses_back_to_the_same_settings() {
        let settings = parse_str(
            "[model]\nhidden = [16, 8]\nactivation = [\"relu\", \"tanh\"]\n",
            &[],
        )
        .unwrap();
        let again = parse_str(&settings.to_toml(), &[]).unwrap();
        assert_eq!(again.model, settings.model);
        assert_eq!(again.train, settings.train);
        assert_eq!(
            again.run_id(BackendName::Flex),
            settings.run_id(BackendName::Flex)
        );
    }
}
