//! The results record: one row per run attempt (runs.csv) and one per epoch (epochs.csv).
//!
//! Rows are flat, documented records (README.md, "Results CSV", describes every column). Their
//! encoding keeps one type per column whatever runs a file holds, so that pandas and polars
//! read any mix of files with their default options and two files concatenate: identifiers
//! start with a letter, text columns are never empty (`none` stands for nothing), numbers are
//! always numbers (`NaN` where a run has no value), and integer columns hold integers.
//!
//! Writing goes through [`commit`] ([`crate::record::journal`]: a run's rows all land or none do);
//! reading through [`read_runs`] and [`read_epochs`], which take the same lock, finish an
//! interrupted commit, check the header and bound what they read. Several rows may share a
//! run_id (a run repeated, a failed run retried): [`effective`] is the one rule every command
//! uses to pick the row that stands for the run.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::user_error;
use crate::record::journal::{Locked, Pair, Records, journal_path};

/// How a run ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Trained to the end (or stopped early by its own rule) with finite losses.
    #[default]
    Ok,
    /// The training loss became NaN, infinite or 1000x its first value; training stopped.
    Diverged,
    /// The run stopped with an error (see the `error` column).
    Failed,
}

/// Why training stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every epoch asked for was trained.
    #[default]
    Completed,
    /// The validation metric did not improve for `patience` epochs.
    EarlyStopping,
    /// A successive-halving rung's budget of epochs was trained; the schedule spans more
    /// (`epochs`), and the next rung continues the run.
    Budget,
    /// The loss diverged.
    Diverged,
    /// An error stopped the run.
    Failed,
}

/// One row of runs.csv. Field order is column order; README.md documents each column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub run_id: String,
    pub attempt: String,
    pub started_at: String,
    pub name: String,
    pub config: String,
    pub rung: u64,
    pub seed: u64,
    pub backend: String,
    pub device: String,
    pub dataset: String,
    pub shape: String,
    pub activation: String,
    pub output: String,
    pub init: String,
    pub dropout: f64,
    pub loss: String,
    pub optimizer: String,
    pub learning_rate: f64,
    pub schedule: String,
    pub warmup_epochs: f64,
    pub step_epochs: u64,
    pub step_factor: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: u64,
    pub epochs: u64,
    pub metric: String,
    pub keep: String,
    pub patience: u64,
    pub min_delta: f64,
    pub augment_shift: u64,
    pub augment_rotate: f64,
    pub train_size: u64,
    pub validation_size: u64,
    pub test_size: u64,
    pub params: u64,
    pub status: Status,
    pub stop_reason: StopReason,
    pub epochs_trained: u64,
    pub best_epoch: u64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub total_seconds: f64,
    pub samples_per_second: f64,
    pub error: String,
    pub model_sha256: String,
    pub harness_version: String,
    pub git_commit: String,
}

/// The columns that are settings of a run (what `report` groups by, besides the seed): every
/// column that changes what is trained, except the seed. `name`, `rung`, `device` and the
/// outcome columns are not settings.
pub const SETTINGS: &[&str] = &[
    "backend",
    "dataset",
    "shape",
    "activation",
    "output",
    "init",
    "dropout",
    "loss",
    "optimizer",
    "learning_rate",
    "schedule",
    "warmup_epochs",
    "step_epochs",
    "step_factor",
    "momentum",
    "weight_decay",
    "batch_size",
    "epochs",
    "metric",
    "keep",
    "patience",
    "min_delta",
    "augment_shift",
    "augment_rotate",
    "train_size",
    "validation_size",
    "test_size",
];

/// Text for "nothing" in a text column (an empty field would make readers guess a type).
pub const NONE: &str = "none";

/// The git commit harness was built from, with `-dirty` when the tree had uncommitted changes,
/// or `unknown` when it was not built from a git checkout (build.rs).
pub const GIT_COMMIT: &str = env!("HARNESS_GIT_COMMIT");

impl Default for RunRow {
    /// A row with every metric missing (`NaN`) and every text column `none`.
    fn default() -> Self {
        RunRow {
            run_id: NONE.into(),
            attempt: NONE.into(),
            started_at: NONE.into(),
            name: NONE.into(),
            config: NONE.into(),
            rung: 0,
            seed: 0,
            backend: NONE.into(),
            device: NONE.into(),
            dataset: NONE.into(),
            shape: NONE.into(),
            activation: NONE.into(),
            output: NONE.into(),
            init: NONE.into(),
            dropout: 0.0,
            loss: NONE.into(),
            optimizer: NONE.into(),
            learning_rate: f64::NAN,
            schedule: NONE.into(),
            warmup_epochs: 0.0,
            step_epochs: 0,
            step_factor: f64::NAN,
            momentum: 0.0,
            weight_decay: 0.0,
            batch_size: 0,
            epochs: 0,
            metric: NONE.into(),
            keep: NONE.into(),
            patience: 0,
            min_delta: 0.0,
            augment_shift: 0,
            augment_rotate: 0.0,
            train_size: 0,
            validation_size: 0,
            test_size: 0,
            params: 0,
            status: Status::Failed,
            stop_reason: StopReason::Failed,
            epochs_trained: 0,
            best_epoch: 0,
            train_loss: f64::NAN,
            train_accuracy: f64::NAN,
            val_loss: f64::NAN,
            val_accuracy: f64::NAN,
            test_loss: f64::NAN,
            test_accuracy: f64::NAN,
            train_seconds: f64::NAN,
            eval_seconds: f64::NAN,
            total_seconds: f64::NAN,
            samples_per_second: f64::NAN,
            error: NONE.into(),
            model_sha256: NONE.into(),
            harness_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: GIT_COMMIT.into(),
        }
    }
}

impl RunRow {
    /// The first metric of the row that is NaN or infinite, if any: a row with one is never
    /// `ok` ([`first_non_finite`]).
    pub fn non_finite_metric(&self) -> Option<&'static str> {
        first_non_finite(
            [
                self.train_loss,
                self.train_accuracy,
                self.val_loss,
                self.val_accuracy,
                self.test_loss,
                self.test_accuracy,
            ],
            self.validation_size > 0,
        )
    }

    /// The accuracy runs are ranked by: validation when the run held images out, else test.
    pub fn selection_accuracy(&self) -> f64 {
        if self.validation_size > 0 {
            self.val_accuracy
        } else {
            self.test_accuracy
        }
    }
}

/// The metrics every run and epoch records, in this order: a run or an epoch is ok only if
/// each is a finite number (the validation pair only when images were held out).
pub const METRICS: [&str; 6] = [
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
];

/// The first of [`METRICS`] (given in that order) that is NaN or infinite, if any.
pub fn first_non_finite(values: [f64; 6], has_validation: bool) -> Option<&'static str> {
    METRICS
        .into_iter()
        .zip(values)
        .filter(|(name, _)| has_validation || !name.starts_with("val_"))
        .find(|(_, value)| !value.is_finite())
        .map(|(name, _)| name)
}

/// One row of epochs.csv: the metrics after each epoch of a run attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub run_id: String,
    pub attempt: String,
    pub epoch: u64,
    pub learning_rate: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
}

impl Default for EpochRow {
    fn default() -> Self {
        EpochRow {
            run_id: NONE.into(),
            attempt: NONE.into(),
            epoch: 0,
            learning_rate: f64::NAN,
            train_loss: f64::NAN,
            train_accuracy: f64::NAN,
            val_loss: f64::NAN,
            val_accuracy: f64::NAN,
            test_loss: f64::NAN,
            test_accuracy: f64::NAN,
            train_seconds: f64::NAN,
            eval_seconds: f64::NAN,
        }
    }
}

/// A row type of a results file.
pub trait Row: Serialize + DeserializeOwned + Default + Clone {
    /// What the file is called in messages.
    const WHAT: &'static str;
    /// The attempt the row belongs to.
    fn attempt(&self) -> &str;
}

impl Row for RunRow {
    const WHAT: &'static str = "runs file";
    fn attempt(&self) -> &str {
        &self.attempt
    }
}

impl Row for EpochRow {
    const WHAT: &'static str = "epochs file";
    fn attempt(&self) -> &str {
        &self.attempt
    }
}

/// The CSV header line of a row type, without the newline.
pub fn header<T: Row>() -> String {
    let bytes = to_csv(&[T::default()], true);
    let text = String::from_utf8(bytes).expect("CSV is UTF-8");
    text.lines().next().unwrap_or_default().to_string()
}

/// The header's column names.
pub fn columns<T: Row>() -> Vec<String> {
    header::<T>().split(',').map(String::from).collect()
}

/// Serialises rows, with the header line first when `with_header`.
pub fn to_csv<T: Serialize>(rows: &[T], with_header: bool) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(with_header)
        .from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).expect("a row serializes to CSV");
    }
    writer.into_inner().expect("writing to memory cannot fail")
}

/// Why a header is not `T`'s, in words: which older format it is, or the first column that
/// differs (with invisible characters shown).
fn header_problem<T: Row>(path: &Path, found: &str) -> anyhow::Error {
    let expected = header::<T>();
    let what = T::WHAT;
    if let Some(rest) = found.strip_prefix('\u{feff}')
        && rest == expected
    {
        return user_error(format!(
            "{} starts with a UTF-8 byte-order mark (a spreadsheet program may have saved it); \
             harness writes none. Remove it (e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' {}`) and \
             run again; the file was left untouched",
            path.display(),
            path.display()
        ));
    }
    if found.starts_with("run_id,started_at,name,config,dataset,")
        || found.starts_with("run_id,epoch,train_loss,")
    {
        return user_error(format!(
            "{} is a {what} written by harness 0.1 (results format 1); this harness ({}) writes \
             format 2 and leaves the file untouched. Convert it with `harness upgrade {}` \
             (README.md, \"Results CSV\"), or use another file (output.runs / output.epochs)",
            path.display(),
            env!("CARGO_PKG_VERSION"),
            path.display()
        ));
    }
    // A config or an experiment given where a results file belongs (`report configs/x.toml`).
    let toml = crate::input::read_text(path, "file", crate::input::TEXT_MAX)
        .ok()
        .and_then(|text| crate::config::kind_of(&text));
    if let Some(kind) = toml {
        let (is, command) = match kind {
            crate::config::FileKind::Config => ("a config file (the settings of one run)", "run"),
            crate::config::FileKind::Experiment => {
                ("an experiment file (a sweep's points)", "sweep")
            }
        };
        let default = if what.starts_with("epochs") {
            "results/epochs.csv"
        } else {
            "results/runs.csv"
        };
        return user_error(format!(
            "{} is {is}, not a {what}: give the {what} that `harness {command} {}` writes \
             ({default} unless output.* says otherwise); the file was left untouched",
            path.display(),
            path.display()
        ));
    }
    let found_columns: Vec<&str> = found.split(',').collect();
    let expected_columns: Vec<&str> = expected.split(',').collect();
    let first_difference = found_columns
        .iter()
        .zip(&expected_columns)
        .position(|(a, b)| a != b)
        .unwrap_or(found_columns.len().min(expected_columns.len()));
    user_error(format!(
        "{} is not a harness {what}: its header differs at column {} (found {:?}, expected \
         {:?}); it was left untouched. Give harness {} {what} it wrote (results/runs.csv and \
         results/epochs.csv by default), or, to record runs elsewhere, set output.runs / \
         output.epochs or move this one away.\n  found:    {}\n  expected: {}",
        path.display(),
        first_difference + 1,
        clip(
            found_columns
                .get(first_difference)
                .copied()
                .unwrap_or("(end)"),
            40
        ),
        expected_columns
            .get(first_difference)
            .copied()
            .unwrap_or("(end)"),
        if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        },
        clip(&found.escape_debug().to_string(), 200),
        expected
    ))
}

/// At most `max` characters of `text`, with an ellipsis where it was cut: a binary file's
/// "header" can be a megabyte long.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// The first line of `bytes`, without its newline.
fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
        .trim_end_matches('\r')
        .to_string()
}

/// Makes a locked file ready to append `T`'s rows to: a file holding only the start of `T`'s
/// header (its first write cut short) is emptied; a file with another header is refused; a
/// partial last line is moved aside.
fn prepare<T: Row>(locked: &Locked) -> Result<()> {
    let bytes = locked.contents()?;
    let expected = header::<T>();
    if !bytes.is_empty() && !bytes.contains(&b'\n') && expected.as_bytes().starts_with(&bytes) {
        locked.file.set_len(0)?;
        eprintln!(
            "harness: {} held only the start of its header (a first write cut short); it was \
             started again",
            locked.path.display()
        );
        return Ok(());
    }
    let found = first_line(&bytes);
    if !bytes.is_empty() && found != expected {
        return Err(header_problem::<T>(&locked.path, &found));
    }
    locked.repair_partial_line()?;
    Ok(())
}

/// Parses a results file's bytes into rows; errors name the file and the line.
///
/// A row is recorded once its newline is: a last line without one (a file cut short) is not a
/// row. It is left out with a notice; the next commit to the file moves it aside.
pub fn parse<T: Row>(bytes: &[u8], path: &Path) -> Result<Vec<T>> {
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole == 0 && !bytes.is_empty() && header::<T>().as_bytes().starts_with(bytes) {
        // Only the start of a header (a first write cut short): no row yet.
        return Ok(Vec::new());
    }
    if whole < bytes.len() && whole > 0 {
        eprintln!(
            "harness: left out the last line of {} ({} bytes without a newline: not a whole row); \
             the next run that writes to the file moves it aside",
            path.display(),
            bytes.len() - whole
        );
    }
    let bytes = if whole > 0 { &bytes[..whole] } else { bytes };
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let found = first_line(bytes);
    if found != header::<T>() {
        return Err(header_problem::<T>(path, &found));
    }
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let mut rows = Vec::new();
    for record in reader.byte_records() {
        let record = record
            .map_err(|e| user_error(format!("{}: {}", path.display(), csv_error_text::<T>(&e))))?;
        let line = record.position().map_or(0, |p| p.line());
        // Checked here rather than by the reader, whose message counts lines from the header.
        let record = csv::StringRecord::from_byte_record(record).map_err(|e| {
            let field = e.utf8_error().field();
            user_error(format!(
                "{} line {line}: column {} ({}) is not UTF-8 text",
                path.display(),
                field + 1,
                columns::<T>().get(field).cloned().unwrap_or_default()
            ))
        })?;
        let row: T = record
            .deserialize(Some(reader_headers::<T>()))
            .map_err(|e| {
                user_error(format!(
                    "{} line {line}: not a valid {} row: {}",
                    path.display(),
                    T::WHAT,
                    csv_error_text::<T>(&e)
                ))
            })?;
        rows.push(row);
    }
    Ok(rows)
}

/// The header as a csv record, for deserialising rows by name.
fn reader_headers<T: Row>() -> &'static csv::StringRecord {
    use std::sync::OnceLock;
    static RUNS: OnceLock<csv::StringRecord> = OnceLock::new();
    static EPOCHS: OnceLock<csv::StringRecord> = OnceLock::new();
    let cell = if T::WHAT == RunRow::WHAT {
        &RUNS
    } else {
        &EPOCHS
    };
    cell.get_or_init(|| csv::StringRecord::from(columns::<T>()))
}

fn csv_error_text<T: Row>(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "line {} has {len} fields, expected {expected_len}",
            pos.as_ref().map_or(0, |p| p.line())
        ),
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(field) => format!(
                "column {} ({}): {}",
                field + 1,
                columns::<T>()
                    .get(field as usize)
                    .cloned()
                    .unwrap_or_default(),
                err.kind()
            ),
            None => err.kind().to_string(),
        },
        _ => error.to_string(),
    }
}

/// Every run row of the runs file at `path` (none if it does not exist), after finishing any
/// interrupted commit. The file is read under a shared lock (no write permission needed),
/// unless a dead writer's journal must be rolled forward first.
pub fn read_runs(path: &Path) -> Result<Vec<RunRow>> {
    read_existing_or_none(path)
}

/// Every row of the epochs file at `path` (none if it does not exist), read under its lock.
pub fn read_epochs(path: &Path) -> Result<Vec<EpochRow>> {
    read_existing_or_none(path)
}

fn read_existing_or_none<T: Row>(path: &Path) -> Result<Vec<T>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    read_existing(path)
}

/// Reads rows of either kind from a file that must exist.
pub fn read_existing<T: Row>(path: &Path) -> Result<Vec<T>> {
    crate::input::regular_file(path, T::WHAT, crate::input::CSV_MAX)?;
    loop {
        if T::WHAT == RunRow::WHAT && journal_path(path).exists() {
            // A commit was interrupted: finish it (this needs to write), then read.
            let pair = Pair::lock(path, None, false).with_context(|| {
                format!(
                    "{} has an interrupted commit ({}) that must be finished before it is read",
                    path.display(),
                    journal_path(path).display()
                )
            })?;
            return parse(&pair.runs.contents()?, path);
        }
        let locked = Locked::open_shared(path, T::WHAT)?;
        // A writer may have died while this reader waited for the lock.
        if T::WHAT == RunRow::WHAT && journal_path(path).exists() {
            continue;
        }
        return parse(&locked.contents()?, path);
    }
}

/// Every row of a results file, read under a shared lock and without writing anything (for
/// readers that must never write, `harness serve`): none if the file does not exist. Unlike
/// [`read_existing`], a commit that a crash interrupted is not finished here; the caller checks
/// for the runs file's journal first and keeps its last rows while there is one.
pub fn read_without_writing<T: Row>(path: &Path) -> Result<Vec<T>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    crate::input::regular_file(path, T::WHAT, crate::input::CSV_MAX)?;
    let locked = Locked::open_shared(path, T::WHAT)?;
    parse(&locked.contents()?, path)
}

/// The row that stands for each run: for every run_id, the latest row (by `started_at`, then
/// by position) whose status is not `failed`, or the latest failed row when every attempt
/// failed. In order of each run_id's first row.
pub fn effective(rows: &[RunRow]) -> Vec<&RunRow> {
    effective_positions(rows.iter())
        .into_iter()
        .map(|k| &rows[k])
        .collect()
}

/// [`effective`] over rows that are not in one slice (several files'): the positions, in the
/// iteration's order, of the rows that stand for each run.
pub fn effective_positions<'a>(rows: impl IntoIterator<Item = &'a RunRow>) -> Vec<usize> {
    let mut order: Vec<&str> = Vec::new();
    let mut best: HashMap<&str, (usize, &RunRow)> = HashMap::new();
    for (k, row) in rows.into_iter().enumerate() {
        match best.get(row.run_id.as_str()) {
            None => {
                order.push(&row.run_id);
                best.insert(&row.run_id, (k, row));
            }
            Some((_, current)) => {
                let rank = |r: &RunRow| (r.status != Status::Failed, r.started_at.clone());
                if rank(row) >= rank(current) {
                    best.insert(&row.run_id, (k, row));
                }
            }
        }
    }
    order.into_iter().map(|id| best[id].0).collect()
}

/// The epoch rows of the given attempts, in file order.
pub fn epochs_of<'a>(epochs: &'a [EpochRow], runs: &[&RunRow]) -> Vec<&'a EpochRow> {
    let attempts: HashSet<&str> = runs.iter().map(|r| r.attempt.as_str()).collect();
    epochs
        .iter()
        .filter(|e| attempts.contains(e.attempt.as_str()))
        .collect()
}

/// What [`commit`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// The rows were appended.
    Appended,
    /// The run already had a row with status ok or diverged, so nothing was appended.
    AlreadyRecorded,
}

/// A run's saved model, waiting under a name of its own for the commit that records its row.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    /// Where it was saved and synced.
    pub partial: &'a Path,
    /// Where the commit puts it: a name of this attempt's alone
    /// ([`crate::record::saved::model_file`]).
    pub path: &'a Path,
}

/// Appends a run's row and its epoch rows to their files as one commit
/// ([`crate::record::journal`]), and moves its model into place. With `only_if_new`, nothing is
/// appended when the run_id already has a row with status ok or diverged (a point finished by
/// another process meanwhile), and the model is removed.
///
/// The model is moved before the rows are appended, under the runs file's lock: a row never
/// points to a model that is not there, and a model no row points to is at worst left under
/// its attempt's name (a process killed between the two), where no row will ever look.
pub fn commit(
    runs_path: &Path,
    epochs_path: &Path,
    row: &RunRow,
    epochs: &[EpochRow],
    model: Option<Model<'_>>,
    only_if_new: bool,
) -> Result<Committed> {
    let discard = || {
        if let Some(model) = model {
            let _ = std::fs::remove_file(model.partial);
        }
    };
    let pair = Pair::lock(runs_path, Some(epochs_path), true).inspect_err(|_| discard())?;
    let epochs_file = pair.epochs.as_ref().expect("an epochs file was asked for");
    prepare::<RunRow>(&pair.runs).inspect_err(|_| discard())?;
    prepare::<EpochRow>(epochs_file).inspect_err(|_| discard())?;
    if only_if_new {
        let rows: Vec<RunRow> = parse(&pair.runs.contents()?, runs_path)?;
        if rows
            .iter()
            .any(|done| done.run_id == row.run_id && done.status != Status::Failed)
        {
            discard();
            return Ok(Committed::AlreadyRecorded);
        }
    }
    if let Some(model) = model {
        std::fs::rename(model.partial, model.path)
            .map_err(anyhow::Error::new)
            .and_then(|()| crate::record::journal::sync_dir(model.path))
            .inspect_err(|_| discard())
            .with_context(|| format!("cannot move the model into {}", model.path.display()))?;
    }
    let records = |rows: Vec<Vec<u8>>| -> Vec<String> {
        rows.into_iter()
            .map(|bytes| String::from_utf8(bytes).expect("CSV is UTF-8"))
            .collect()
    };
    let epoch_records = Records {
        header: header::<EpochRow>(),
        records: records(
            epochs
                .iter()
                .map(|e| to_csv(std::slice::from_ref(e), false))
                .collect(),
        ),
    };
    let run_records = Records {
        header: header::<RunRow>(),
        records: records(vec![to_csv(std::slice::from_ref(row), false)]),
    };
    pair.commit(&epoch_records, &run_records)
        .inspect_err(|error| {
            // Nothing was recorded: no row will point to the model.
            if let Some(model) = model
                && format!("{error:#}").contains("nothing was recorded")
            {
                let _ = std::fs::remove_file(model.path);
            }
        })
        .with_context(|| {
            format!(
                "cannot record run {} in {}",
                row.run_id,
                runs_path.display()
            )
        })?;
    Ok(Committed::Appended)
}

/// A fresh attempt id: `a` and 11 hexadecimal digits of a hash of the time, the process and a
/// counter, unique across processes and machines for any practical purpose.
pub fn new_attempt() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{nanos} {} {} {:?}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::env::var_os("HOSTNAME")
    );
    let digest = Sha256::digest(seed.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("a{}", &hex[..11])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn epoch(attempt: &str, epoch: u64) -> EpochRow {
        EpochRow {
            run_id: "r1".into(),
            attempt: attempt.into(),
            epoch,
            learning_rate: 0.5,
            train_loss: 0.5,
            train_accuracy: 0.875,
            test_loss: 0.25,
            test_accuracy: 0.9375,
            train_seconds: 1.5,
            eval_seconds: 0.25,
            ..EpochRow::default()
        }
    }

    fn run(run_id: &str, attempt: &str, status: Status, started_at: &str) -> RunRow {
        RunRow {
            run_id: run_id.into(),
            attempt: attempt.into(),
            started_at: started_at.into(),
            status,
            ..RunRow::default()
        }
    }

    #[test]
    fn the_epochs_header_and_a_row_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let (runs, epochs) = (dir.path().join("runs.csv"), dir.path().join("epochs.csv"));
        let row = run("r1", "a1", Status::Ok, "t1");
        commit(
            &runs,
            &epochs,
            &row,
            &[epoch("a1", 1), epoch("a1", 2)],
            None,
            false,
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(&epochs).unwrap(),
            "run_id,attempt,epoch,learning_rate,train_loss,train_accuracy,val_loss,\
             val_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds\n\
             r1,a1,1,0.5,0.5,0.875,NaN,NaN,0.25,0.9375,1.5,0.25\n\
             r1,a1,2,0.5,0.5,0.875,NaN,NaN,0.25,0.9375,1.5,0.25\n"
        );
        // NaN is not equal to itself: compare as text.
        assert_eq!(
            to_csv(&read_runs(&runs).unwrap(), true),
            to_csv(&[row], true)
        );
        assert_eq!(read_epochs(&epochs).unwrap().len(), 2);
    }

    /// The whole runs header, as text: a change here changes the record's format (README.md,
    /// "Results CSV", documents each column; old files are refused with a way to convert them).
    #[test]
    fn the_runs_header_is_the_documented_one() {
        assert_eq!(
            header::<RunRow>(),
            "run_id,attempt,started_at,name,config,rung,seed,backend,device,dataset,shape,\
             activation,output,init,dropout,loss,optimizer,learning_rate,schedule,warmup_epochs,\
             step_epochs,step_factor,momentum,weight_decay,batch_size,epochs,metric,keep,patience,\
             min_delta,augment_shift,augment_rotate,train_size,validation_size,test_size,params,\
             status,stop_reason,epochs_trained,best_epoch,train_loss,train_accuracy,val_loss,\
             val_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds,total_seconds,\
             samples_per_second,error,model_sha256,harness_version,git_commit"
        );
        for setting in SETTINGS {
            assert!(
                columns::<RunRow>().iter().any(|c| c == setting),
                "{setting}"
            );
        }
    }

    #[test]
    fn only_if_new_skips_a_recorded_run() {
        let dir = tempfile::tempdir().unwrap();
        let (runs, epochs) = (dir.path().join("runs.csv"), dir.path().join("epochs.csv"));
        let failed = run("r1", "a1", Status::Failed, "t1");
        assert_eq!(
            commit(&runs, &epochs, &failed, &[], None, true).unwrap(),
            Committed::Appended
        );
        let ok = run("r1", "a2", Status::Ok, "t2");
        assert_eq!(
            commit(&runs, &epochs, &ok, &[epoch("a2", 1)], None, true).unwrap(),
            Committed::Appended
        );
        let again = run("r1", "a3", Status::Ok, "t3");
        assert_eq!(
            commit(&runs, &epochs, &again, &[epoch("a3", 1)], None, true).unwrap(),
            Committed::AlreadyRecorded
        );
        assert_eq!(read_runs(&runs).unwrap().len(), 2);
        assert_eq!(read_epochs(&epochs).unwrap().len(), 1);
    }

    #[test]
    fn the_latest_non_failed_row_stands_for_a_run() {
        let rows = vec![
            run("x", "a1", Status::Ok, "2026-01-01T00:00:01.000Z"),
            run("y", "a2", Status::Failed, "2026-01-01T00:00:02.000Z"),
            run("x", "a3", Status::Failed, "2026-01-01T00:00:03.000Z"),
            run("y", "a4", Status::Failed, "2026-01-01T00:00:04.000Z"),
            run("x", "a5", Status::Diverged, "2026-01-01T00:00:00.500Z"),
            run("z", "a6", Status::Ok, "2026-01-01T00:00:05.000Z"),
            run("z", "a7", Status::Ok, "2026-01-01T00:00:06.000Z"),
        ];
        let picked: Vec<&str> = effective(&rows)
            .iter()
            .map(|r| r.attempt.as_str())
            .collect();
        assert_eq!(picked, ["a1", "a4", "a7"]);
    }

    #[test]
    fn a_foreign_an_old_and_a_marked_header_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let epochs = dir.path().join("epochs.csv");
        let row = run("r1", "a1", Status::Ok, "t1");
        for (contents, needle) in [
            (
                "id,accuracy\nx,0.5\n",
                "differs at column 1 (found \"id\", expected \"run_id\")",
            ),
            (
                "run_id,started_at,name,config,dataset,backend\n",
                "written by harness 0.1 (results format 1)",
            ),
            (
                &format!("\u{feff}{}\n", header::<RunRow>()),
                "starts with a UTF-8 byte-order mark",
            ),
        ] {
            fs::write(&path, contents).unwrap();
            let message = format!(
                "{:#}",
                commit(&path, &epochs, &row, &[], None, false).unwrap_err()
            );
            assert!(message.contains(needle), "{message}");
            assert_eq!(fs::read_to_string(&path).unwrap(), contents);
            let message = format!("{:#}", read_runs(&path).unwrap_err());
            assert!(message.contains(needle), "{message}");
        }
    }

    #[test]
    fn a_bad_row_is_named_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("epochs.csv");
        fs::write(
            &path,
            format!(
                "{}\nr1,a1,1,0.5,0.5,0.875,NaN,NaN,0.25,0.9375,1.5,0.25\nr1,a1,two,0.5,0.5,\
                 0.875,NaN,NaN,0.25,0.9375,1.5,0.25\n",
                header::<EpochRow>()
            ),
        )
        .unwrap();
        let message = format!("{:#}", read_epochs(&path).unwrap_err());
        assert!(message.contains("line 3"), "{message}");
        // Invalid UTF-8 in the first row is on line 2, the line after the header.
        let mut bytes = format!("{}\n", header::<EpochRow>()).into_bytes();
        bytes.extend(b"r1,a\xff1,1,0.5,0.5,0.875,NaN,NaN,0.25,0.9375,1.5,0.25\n");
        fs::write(&path, bytes).unwrap();
        let message = format!("{:#}", read_epochs(&path).unwrap_err());
        assert!(
            message.contains("line 2: column 2 (attempt) is not UTF-8"),
            "{message}"
        );
    }
}
