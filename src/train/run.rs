//! `harness run`: one config in, one trained network and one results row out.
//!
//! Order matters for the user: settings are already valid; the outputs are checked writable,
//! the network's memory is checked against the machine's, the device is selected and the
//! results files' headers are checked before any data is loaded or any step trained, so a
//! mistake costs seconds, not a training run. A run that fails after that still gets its row
//! (status `failed` and the error); a model that cannot be saved leaves the row and says where
//! it could not go; a row that cannot be written is printed as CSV, so no result is lost.
//!
//! A run whose checkpoint is there (it was killed) resumes from it, and a halving rung's run
//! continues from the checkpoint of its point's previous rung ([`checkpoint::find`]); the
//! training state is written after every epoch ([`checkpoint::Writer`]) and removed once the
//! rows are committed, unless `output.checkpoints = "keep"`.

use std::io::{IsTerminal, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::config::{Checkpoints, Settings};
use crate::data::mnist;
use crate::error::{exit, take_panic_message, user_error};
use crate::net::backend::{self, BackendName};
use crate::net::model::{INPUTS, OUTPUTS};
use crate::record::claims::{Claims, Rows};
use crate::record::results::{self, Committed, EpochRow, NONE, RunRow, Status, StopReason};
use crate::record::{running, saved};
use crate::text::thousands;
use crate::train::checkpoint;
use crate::train::train::{self, EpochMetrics, Job, Observer, Outcome, Snapshot};

/// How progress is shown while training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// An indicatif bar per epoch (for terminals).
    Bar,
    /// One plain line per epoch (for logs and CI).
    Lines,
    /// Nothing but errors.
    Quiet,
}

impl Progress {
    /// A bar on a terminal, lines otherwise.
    pub fn auto() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Bar
        } else {
            Progress::Lines
        }
    }
}

/// Whether a run's rows are appended when its run_id already has a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// Always append (`harness run`: the user asked for this run).
    Always,
    /// Append only if no row with this run_id and status ok or diverged exists (sweeps: a
    /// point finished by another process in the meantime is not recorded twice).
    IfNew,
}

/// The result of a run: the row and where it went.
#[derive(Debug)]
pub struct Report {
    pub row: RunRow,
    pub runs_csv: PathBuf,
    pub epochs_csv: PathBuf,
    pub model_file: Option<PathBuf>,
    /// Why the trained model could not be saved, if it could not.
    pub model_error: Option<String>,
    /// False when [`Record::IfNew`] found the run already recorded.
    pub appended: bool,
    /// The checkpoint the run started from: the epoch, the file, and whether it was the run's
    /// own (resumed) or a shorter run's of the same settings (continued).
    pub started_from: Option<(usize, PathBuf, bool)>,
    /// The run's checkpoint, when it is kept after the commit (`output.checkpoints = "keep"`),
    /// and its size.
    pub checkpoint_kept: Option<(PathBuf, u64)>,
}

impl Report {
    /// The exit code of `harness run` for this report: 0 only when the run ended ok and
    /// everything asked for was written.
    pub fn exit_code(&self) -> u8 {
        if self.row.status == Status::Ok && self.model_error.is_none() {
            exit::OK
        } else {
            exit::FAILED
        }
    }

    /// The one-line summary `harness run` prints.
    pub fn summary(&self) -> String {
        let row = &self.row;
        let saved = self
            .model_file
            .as_ref()
            .map(|path| format!(", model {}", path.display()))
            .unwrap_or_default();
        let chosen = if row.validation_size > 0 {
            format!(
                "validation accuracy {:.4}, test accuracy {:.4} at epoch {} of {}",
                row.val_accuracy, row.test_accuracy, row.best_epoch, row.epochs_trained
            )
        } else {
            format!("test accuracy {:.4}", row.test_accuracy)
        };
        let stopped = match row.stop_reason {
            StopReason::EarlyStopping => format!(
                "; stopped early after epoch {} (train.patience = {})",
                row.epochs_trained, row.patience
            ),
            _ => String::new(),
        };
        // Epochs kept away from the runs file (output.runs moved, output.epochs not) are said:
        // `plot` and `report --html` look beside the runs file.
        let epochs = if crate::record::upgrade::epochs_beside(&self.runs_csv) == self.epochs_csv {
            String::new()
        } else {
            format!(", epochs in {}", self.epochs_csv.display())
        };
        let budget = if row.stop_reason == StopReason::Budget {
            format!(
                "; stopped after the rung's {} of the schedule's {} epochs",
                row.epochs_trained, row.epochs
            )
        } else {
            String::new()
        };
        let started_from = match &self.started_from {
            Some((epoch, _, true)) => format!("; resumed after epoch {epoch}"),
            Some((epoch, _, false)) => {
                format!("; continued after epoch {epoch} from a shorter run's checkpoint")
            }
            None => String::new(),
        };
        let kept = self
            .checkpoint_kept
            .as_ref()
            .map(|(path, bytes)| {
                format!(
                    ", checkpoint kept in {} ({})",
                    path.display(),
                    checkpoint::megabytes(*bytes)
                )
            })
            .unwrap_or_default();
        format!(
            "{}: {} {chosen} ({} parameters, {} on {}, {:.1} s train, {:.1} s total){stopped}\
             {budget}{started_from}; row {} appended to {}{epochs}{saved}{kept}",
            row.name,
            match row.status {
                Status::Ok => "ok,",
                Status::Diverged => "DIVERGED,",
                Status::Failed => "FAILED,",
            },
            thousands(row.params as usize),
            row.backend,
            row.device,
            row.train_seconds,
            row.total_seconds,
            row.run_id,
            self.runs_csv.display(),
        )
    }
}

/// `harness run`: trains, prints the summary on stdout (and any failure on stderr), returns the
/// exit code.
pub fn command(settings: &Settings, progress: Progress, restart: bool) -> Result<u8> {
    let Ran::Trained(report) = run(settings, progress, Record::Always, None, restart)? else {
        unreachable!("Record::Always waits for the run's lock and always records");
    };
    println!("{}", report.summary());
    if report.row.status == Status::Failed {
        eprintln!("error: {}", report.row.error);
    }
    if let Some(error) = &report.model_error {
        eprintln!("error: {error}");
    }
    Ok(report.exit_code())
}

/// What [`run`] did.
#[derive(Debug)]
pub enum Ran {
    /// Trained (or failed while training); the report says whether its rows were appended.
    Trained(Box<Report>),
    /// Not started: another live process trains this run now ([`Record::IfNew`]); what its
    /// lock says of it.
    Busy(String),
    /// Not started: the run already has a row with status ok or diverged ([`Record::IfNew`]).
    AlreadyRecorded,
    /// Trained but not recorded: the guard said the run is no longer wanted, and why.
    Unwanted(String),
}

/// Asked after training and before anything is recorded: `Some(reason)` when the run must not
/// be recorded after all (a sweep's experiment changed under it, say).
pub type Guard<'a> = &'a dyn Fn() -> Result<Option<String>>;

/// Trains the network `settings` describe and appends its results.
///
/// Before any work: the outputs are claimed against the inputs ([`claims`]), the memory is
/// checked, the device selected, and the run's lock taken beside the runs file
/// ([`running`]): [`Record::Always`] waits for it, [`Record::IfNew`] returns
/// [`Ran::Busy`] while another process trains the run and [`Ran::AlreadyRecorded`] when it
/// is recorded, without training. Returns the row also when the run diverged or failed after
/// training started; an `Err` means nothing was trained (or the row could not be written, in
/// which case it was printed).
///
/// The run starts from the furthest checkpoint of its trajectory that passes every check
/// ([`checkpoint::find`]), unless `restart` (its own is removed first).
pub fn run(
    settings: &Settings,
    progress: Progress,
    record: Record,
    guard: Option<Guard<'_>>,
    restart: bool,
) -> Result<Ran> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let attempt = results::new_attempt();
    check_outputs(settings)?;
    check_memory(settings)?;
    let selected = backend::select(settings.backend)?;
    let run_id = settings.run_id(selected.backend);
    check_headers(settings)?;
    let _running = match record {
        Record::Always => running::lock(&settings.output.runs, &run_id, &attempt, |holder| {
            if progress != Progress::Quiet {
                eprintln!(
                    "harness: another process is training run {run_id} ({holder}); waiting \
                     for it to finish"
                );
            }
        })?,
        Record::IfNew => match running::try_lock(&settings.output.runs, &run_id, &attempt)? {
            running::Taken::Held(lock) => {
                if is_recorded(&settings.output.runs, &run_id)? {
                    return Ok(Ran::AlreadyRecorded);
                }
                lock
            }
            running::Taken::Busy(holder) => return Ok(Ran::Busy(holder)),
        },
    };

    let store = checkpoint::Store::beside(&settings.output.runs);
    let found = start_from(settings, &selected, &store, restart, progress)?;
    let last_epoch = settings.last_epoch();
    if progress != Progress::Quiet
        && let Some(found) = &found
    {
        let header = &found.header;
        let epoch = header.epoch;
        let rest = if epoch < last_epoch && header.finished.is_none() {
            format!("{} epochs to train", last_epoch - epoch)
        } else {
            "nothing left to train".to_string()
        };
        if found.is_own(&run_id) {
            eprintln!(
                "harness: resuming run {run_id} after epoch {epoch} of {last_epoch} from its \
                 checkpoint {} (attempt {}, {}); {rest}. --restart starts over",
                found.path.display(),
                header.identity.attempt,
                header.written_at
            );
        } else {
            eprintln!(
                "harness: continuing from run {} after epoch {epoch}, a shorter run of the same \
                 settings (checkpoint {}); {rest} of {last_epoch}",
                header.identity.run_id,
                found.path.display()
            );
        }
    }

    let data = mnist::load(
        settings.data.dataset,
        settings.data.dir.as_deref(),
        mnist::Limits {
            train: settings.data.train_limit,
            validation: settings.data.validation,
            test: settings.data.test_limit,
        },
    )?;
    if settings.train.batch_size > data.train.len() {
        return Err(user_error(format!(
            "train.batch_size = {} is more than the {} training images{}; use a batch of at \
             most {}",
            settings.train.batch_size,
            data.train.len(),
            if settings.data.train_limit.is_some() {
                " (after data.train_limit)"
            } else {
                ""
            },
            data.train.len()
        )));
    }
    let mut row = base_row(
        settings,
        selected.backend,
        &selected.description,
        started_at,
        attempt.clone(),
    );
    row.train_size = data.train.len() as u64;
    row.validation_size = data.validation.len() as u64;
    row.test_size = data.test.len() as u64;
    if progress != Progress::Quiet {
        eprintln!(
            "harness: {} ({}): {} network, {} parameters; {} on {} ({}); {} training / {} \
             validation / {} test images from {}",
            settings.name,
            run_id,
            settings.model.shape(),
            thousands(settings.model.num_params()),
            settings.train.optimizer,
            selected.backend,
            selected.description,
            thousands(data.train.len()),
            thousands(data.validation.len()),
            thousands(data.test.len()),
            data.dir.display(),
        );
    }

    let mut job = Job::new(settings, &data, selected.backend);
    job.resume = found.as_ref().map(|found| &found.restored);
    let started_from = found.as_ref().map(|found| {
        (
            found.header.epoch,
            found.path.clone(),
            found.is_own(&run_id),
        )
    });
    let writer = (settings.output.checkpoints != Checkpoints::Off).then(|| {
        checkpoint::Writer::new(
            &store,
            checkpoint::Identity::of(settings, selected.backend, &attempt),
            found.as_ref().map_or(0, |found| found.header.epoch),
            last_epoch,
        )
    });
    // The live view's feed (not the record): the row to be, then each epoch as it ends.
    crate::record::live::clean(&settings.output.runs);
    let feed = crate::record::live::Feed::start(&settings.output.runs, &row, last_epoch as u64);
    let mut observer = Watch {
        display: Display::new(progress, last_epoch),
        writer,
        failed_writes: 0,
        feed,
        run_id: row.run_id.clone(),
        attempt: row.attempt.clone(),
    };
    #[cfg(feature = "wgpu")]
    if selected.backend == BackendName::Wgpu && progress != Progress::Quiet {
        // cubecl compiles and autotunes kernels for each new tensor shape and keeps the tuning
        // results on disk, so a later run of the same shapes only compiles.
        eprintln!(
            "harness: wgpu compiles and tunes its kernels during the first steps (up to a \
             minute the first time); tuning results are kept for later runs in {}",
            backend::gpu_cache().display()
        );
        observer.display.first_message = Some("tuning kernels".to_string());
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        train::train(&job, &selected.device, &mut observer)
    }))
    .unwrap_or_else(|payload| {
        let message = take_panic_message().unwrap_or_else(|| panic_text(payload.as_ref()));
        Err(anyhow::anyhow!(
            "backend \"{}\" failed: {message}",
            selected.backend
        ))
    });
    observer.display.finish();
    if observer.failed_writes > 1 {
        eprintln!(
            "harness: warning: {} of this run's checkpoints could not be written (the first one's \
             error is above)",
            observer.failed_writes
        );
    }
    let own_checkpoint = observer.writer.as_ref().map(|w| w.path().to_path_buf());
    if let Some(guard) = guard
        && let Some(reason) = guard()?
    {
        // The point is no longer the experiment's: its checkpoint is no one's.
        if let Some(path) = &own_checkpoint {
            let _ = checkpoint::remove(path);
        }
        return Ok(Ran::Unwanted(reason));
    }

    // The model goes to a name of this attempt's own; the commit moves it into place.
    let mut partial_model = None;
    let mut model_error = None;
    let epoch_rows = match outcome {
        Ok(outcome) => {
            fill_metrics(&mut row, &outcome);
            if settings.output.save_model && outcome.status == Status::Ok {
                let path = saved::model_file(&settings.output.models, &row.run_id, &row.attempt);
                match save_model(outcome.model, &path) {
                    Ok((partial, sha256)) => {
                        row.model_sha256 = sha256;
                        partial_model = Some((partial, path));
                    }
                    Err(error) => {
                        let message = format!("{error:#}");
                        row.error = format!("the model was not saved: {message}");
                        model_error = Some(format!(
                            "the model could not be saved to {} ({message}); the row keeps the \
                             metrics",
                            path.display()
                        ));
                    }
                }
            }
            epoch_rows(&row.run_id, &row.attempt, &outcome.epochs)
        }
        Err(error) => {
            row.status = Status::Failed;
            row.stop_reason = StopReason::Failed;
            row.error = one_line(&format!("{error:#}"));
            Vec::new()
        }
    };
    row.total_seconds = started.elapsed().as_secs_f64();

    let model = partial_model
        .as_ref()
        .map(|(partial, path)| results::Model { partial, path });
    let committed = results::commit(
        &settings.output.runs,
        &settings.output.epochs,
        &row,
        &epoch_rows,
        model,
        record == Record::IfNew,
    )
    .inspect_err(|_| rescue(&row))?;
    let appended = committed == Committed::Appended;
    let checkpoint_kept = settle_checkpoints(
        settings,
        &row,
        own_checkpoint.as_deref(),
        found.as_ref(),
        &run_id,
    );
    Ok(Ran::Trained(Box::new(Report {
        row,
        runs_csv: settings.output.runs.clone(),
        epochs_csv: settings.output.epochs.clone(),
        model_file: partial_model.filter(|_| appended).map(|(_, path)| path),
        model_error,
        appended,
        started_from,
        checkpoint_kept,
    })))
}

/// The checkpoint the run starts from, after saying what was set aside or removed on the way.
fn start_from(
    settings: &Settings,
    selected: &backend::Selected,
    store: &checkpoint::Store,
    restart: bool,
    progress: Progress,
) -> Result<Option<checkpoint::Found>> {
    if settings.output.checkpoints == Checkpoints::Off && !restart {
        return Ok(None);
    }
    let recorded = results::read_runs(&settings.output.runs)?
        .into_iter()
        .filter(|row| row.status != Status::Failed)
        .map(|row| row.attempt)
        .collect();
    let expect = checkpoint::Expect {
        settings,
        backend: selected.backend,
        device: &selected.device,
    };
    let (found, looked) = checkpoint::find(store, &expect, &recorded, restart);
    // A checkpoint that cannot be used is worth a warning even from a quiet worker.
    for (path, why) in &looked.rejected {
        eprintln!(
            "harness: warning: a checkpoint of this run was not used and was set aside as {}: \
             {why}",
            path.display()
        );
    }
    for (path, why) in &looked.unmovable {
        eprintln!(
            "harness: warning: the checkpoint {} was not used: {why}",
            path.display()
        );
    }
    if progress != Progress::Quiet {
        for (path, why) in &looked.removed {
            eprintln!("harness: removed checkpoint {} ({why})", path.display());
        }
    }
    Ok(found)
}

/// Whether the run's checkpoint stays after the commit: asked for (`output.checkpoints =
/// "keep"`), or a halving rung's run with a budget, which the next rung continues.
pub fn keeps_checkpoint(settings: &Settings) -> bool {
    match settings.output.checkpoints {
        Checkpoints::Keep => true,
        Checkpoints::Resume => settings.budget.is_some(),
        Checkpoints::Off => false,
    }
}

/// After the commit: the run's checkpoint is removed once its rows are recorded, unless kept
/// (`output.checkpoints = "keep"`); a failed run's stays, to resume from. The checkpoint of a
/// previous halving rung that this run continued is removed too: it served its purpose. Returns
/// the kept checkpoint and its size.
fn settle_checkpoints(
    settings: &Settings,
    row: &RunRow,
    own: Option<&Path>,
    found: Option<&checkpoint::Found>,
    run_id: &str,
) -> Option<(PathBuf, u64)> {
    if row.status == Status::Failed {
        return None;
    }
    if settings.rung > 0 {
        // The shorter runs of this trajectory (earlier rungs) served their purpose: the one this
        // run continued, and one it continued before it was interrupted and resumed.
        if let Some(found) = found.filter(|found| !found.is_own(run_id)) {
            let _ = checkpoint::remove(&found.path);
        }
        let store = checkpoint::Store::beside(&settings.output.runs);
        let trajectory = settings.trajectory(settings.backend);
        for (path, _, header) in checkpoint::list(store.dir()) {
            if header.is_ok_and(|h| {
                h.identity.trajectory == trajectory
                    && h.identity.run_id != run_id
                    && h.epoch < row.epochs_trained as usize
            }) {
                let _ = checkpoint::remove(&path);
            }
        }
    }
    let own = own?;
    if keeps_checkpoint(settings) {
        let size = std::fs::metadata(own).ok()?.len();
        return Some((own.to_path_buf(), size));
    }
    if let Err(error) = checkpoint::remove(own) {
        eprintln!("harness: warning: {error:#}");
    }
    None
}

/// Whether the runs file at `runs` holds a row with status ok or diverged for `run_id`.
pub fn is_recorded(runs: &Path, run_id: &str) -> Result<bool> {
    Ok(results::read_runs(runs)?
        .iter()
        .any(|row| row.run_id == run_id && row.status != Status::Failed))
}

/// Never lose a result: a row that could not be written goes to stderr as CSV, header first,
/// ready to append by hand.
fn rescue(row: &RunRow) {
    let csv =
        String::from_utf8(results::to_csv(std::slice::from_ref(row), true)).expect("CSV is UTF-8");
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "harness: the run's row could not be written; here it is (runs.csv format):\n{csv}"
    );
}

/// The first line of a message, for the `error` column.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        "unknown error".to_string()
    } else {
        line.to_string()
    }
}

/// Every file a run of `settings` reads and writes, for [`Claims::check`]: the config and the
/// dataset files it reads; the runs file (with its journal) and the epochs file it writes. (Its
/// model file is named by its attempt, [`saved::model_file`]: a name no other file has.)
pub fn claims(settings: &Settings) -> Claims {
    let output = &settings.output;
    let mut claims = Claims::new();
    if let Some(config) = &settings.config {
        claims.reads(config, "the config");
    }
    for file in mnist::existing_files(settings.data.dataset, settings.data.dir.as_deref()) {
        claims.reads(&file, "a dataset file");
    }
    claims.writes_runs(&output.runs, "output.runs").writes_rows(
        &output.epochs,
        Rows::Epochs,
        "output.epochs",
    );
    claims.keeps(
        &checkpoint::Store::beside(&output.runs).path(&settings.run_id(settings.backend)),
        "the run's checkpoint",
    );
    if output.save_model {
        claims.folder(&output.models, "output.models");
    }
    claims
}

/// Fails before any work if an output cannot be written, or is also an input or another
/// output ([`claims`]): the runs and epochs files must be regular files (or absent in a folder
/// that can hold them) and the models folder a folder harness can write to.
pub fn check_outputs(settings: &Settings) -> Result<()> {
    let output = &settings.output;
    claims(settings).check()?;
    check_file_output(&output.runs, "output.runs")?;
    check_file_output(&output.epochs, "output.epochs")?;
    if output.save_model {
        check_folder_output(&output.models, "output.models")?;
    }
    let store = checkpoint::Store::beside(&output.runs);
    // Nor inside it by another name (a `.checkpoints` that is a link to a folder elsewhere).
    let kept = crate::record::journal::real_path(store.dir());
    let mut outputs = vec![
        ("output.runs", &output.runs),
        ("output.epochs", &output.epochs),
    ];
    if output.save_model {
        outputs.push(("output.models", &output.models));
    }
    for (key, path) in outputs {
        if crate::record::journal::real_path(path).starts_with(&kept) {
            return Err(user_error(format!(
                "{key} {} is inside {}, the folder harness keeps the runs' checkpoints in: names \
                 there are kept for the files harness writes beside the record; choose another \
                 folder",
                path.display(),
                store.dir().display()
            )));
        }
    }
    if settings.output.checkpoints != Checkpoints::Off
        && std::fs::metadata(store.dir()).is_ok_and(|m| !m.is_dir())
    {
        return Err(user_error(format!(
            "{} is not a folder: harness keeps the runs' checkpoints there (beside output.runs); \
             move it away, or set output.checkpoints = \"off\"",
            store.dir().display()
        )));
    }
    Ok(())
}

fn check_file_output(path: &Path, key: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) => {
            crate::input::check_metadata(path, key, crate::input::CSV_MAX, &metadata)?;
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map(drop)
                .map_err(|e| user_error(format!("{key} {} cannot be written: {e}", path.display())))
        }
        Err(_) => check_folder_output(
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
            key,
        )
        .map_err(|e| user_error(format!("{key} {} cannot be created: {e:#}", path.display()))),
    }
}

/// Checks that files can be made in `dir`, or in the nearest folder above it that exists
/// (the missing folders are made when the results are written).
fn check_folder_output(dir: &Path, key: &str) -> Result<()> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(user_error(format!(
            "{key} {}: {} is not a folder",
            dir.display(),
            existing.display()
        )));
    }
    let probe = existing.join(format!(".harness-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            user_error(format!(
                "{key} {}: cannot write in {}: {e}",
                dir.display(),
                existing.display()
            ))
        })
}

/// Bytes training with `settings` takes at least, and the batch size it was estimated at: the
/// network's weights, gradients, optimizer state and activations
/// ([`crate::net::model::ModelConfig::training_memory`]), and the validation and test images with
/// their targets, which stay on the device for the whole run ([`train::EvalSet`]).
pub fn memory_needed(settings: &Settings) -> (usize, u128) {
    // A batch larger than the training set is refused once the data is loaded, by name.
    let batch = settings
        .train
        .batch_size
        .min(settings.data.train_limit.unwrap_or(60_000));
    // MNIST's and Fashion-MNIST's test files hold 10,000 images.
    let held_out = settings.data.validation + settings.data.test_limit.unwrap_or(10_000);
    let held_out_bytes = held_out as u128 * (INPUTS + OUTPUTS) as u128 * 4;
    (
        batch,
        settings.model.training_memory(batch, train::EVAL_BATCH) + held_out_bytes,
    )
}

/// Refuses a network whose training would not fit in memory, with the estimate.
pub fn check_memory(settings: &Settings) -> Result<()> {
    let (batch, needed) = memory_needed(settings);
    let available = available_memory();
    if needed > available as u128 {
        let gib = |bytes: u128| bytes as f64 / (1u128 << 30) as f64;
        return Err(user_error(format!(
            "the {} network ({} parameters) at batch {} needs about {:.1} GiB for its weights, \
             gradients, optimizer state, activations and held-out images; this machine has \
             {:.1} GiB available. \
             Use narrower layers (model.hidden) or a smaller train.batch_size",
            settings.model.shape(),
            thousands(settings.model.num_params()),
            batch,
            gib(needed),
            gib(available as u128)
        )));
    }
    Ok(())
}

/// Memory this process may use: the kernel's estimate of available memory (Linux), else 8 GiB.
fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("MemAvailable:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(8 << 30, |kib| kib * 1024)
}

/// The results files must be harness's (or new), whole and readable, before anything is
/// trained.
fn check_headers(settings: &Settings) -> Result<()> {
    results::read_runs(&settings.output.runs)?;
    results::read_epochs(&settings.output.epochs)?;
    Ok(())
}

/// The row of a run that failed before it could report anything itself (a worker process that
/// was killed, say).
pub fn failed_row(settings: &Settings, error: &str) -> RunRow {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut row = base_row(
        settings,
        settings.backend.resolve(),
        "unknown",
        started_at,
        results::new_attempt(),
    );
    row.status = Status::Failed;
    row.stop_reason = StopReason::Failed;
    row.error = one_line(error);
    row
}

/// The row's settings columns; metrics are filled in after training.
fn base_row(
    settings: &Settings,
    backend: BackendName,
    device: &str,
    started_at: String,
    attempt: String,
) -> RunRow {
    let train = &settings.train;
    RunRow {
        run_id: settings.run_id(backend),
        attempt,
        started_at,
        name: settings.name.clone(),
        config: settings
            .config
            .as_ref()
            .map_or_else(|| NONE.to_string(), |p| p.display().to_string()),
        rung: u64::from(settings.rung),
        seed: settings.seed,
        backend: backend.to_string(),
        device: if device.is_empty() { "unknown" } else { device }.to_string(),
        dataset: settings.data.dataset.to_string(),
        shape: settings.model.shape(),
        activation: settings.model.activation_label(),
        output: settings.model.output.to_string(),
        init: settings.model.init.to_string(),
        dropout: settings.model.dropout,
        loss: train.loss.to_string(),
        optimizer: train.optimizer.to_string(),
        learning_rate: train.learning_rate,
        schedule: train.schedule.to_string(),
        warmup_epochs: train.warmup_epochs,
        step_epochs: train.step_epochs as u64,
        step_factor: train.step_factor,
        momentum: train.momentum,
        weight_decay: train.weight_decay,
        batch_size: train.batch_size as u64,
        epochs: train.epochs as u64,
        metric: train.metric.to_string(),
        keep: train.keep.to_string(),
        patience: train.patience as u64,
        min_delta: train.min_delta,
        augment_shift: settings.data.augment_shift as u64,
        augment_rotate: settings.data.augment_rotate,
        params: settings.model.num_params() as u64,
        ..RunRow::default()
    }
}

/// Copies the kept epoch's metrics, how training ended and the timings into the row.
fn fill_metrics(row: &mut RunRow, outcome: &Outcome) {
    row.status = outcome.status;
    row.stop_reason = outcome.stop_reason;
    row.error = NONE.to_string();
    row.train_size = outcome.train_size as u64;
    row.epochs_trained = outcome.epochs.len() as u64;
    row.best_epoch = outcome.kept as u64;
    if let Some(kept) = outcome.epochs.get(outcome.kept.saturating_sub(1)) {
        row.train_loss = kept.train_loss;
        row.train_accuracy = kept.train_accuracy;
        row.val_loss = kept.val_loss;
        row.val_accuracy = kept.val_accuracy;
        row.test_loss = kept.test_loss;
        row.test_accuracy = kept.test_accuracy;
    }
    let has_validation = row.validation_size > 0;
    if outcome.status == Status::Diverged {
        let last = outcome.epochs.last();
        row.error = match last.and_then(|e| e.non_finite(has_validation).map(|m| (e.epoch, m))) {
            Some((epoch, metric)) => {
                format!("{metric} was not finite after epoch {epoch}: the weights diverged")
            }
            None => format!(
                "training loss became NaN, infinite or over {}x its first value",
                train::DIVERGENCE_FACTOR
            ),
        };
    }
    // The one rule, whatever the loop decided: a row with a metric that is not a finite
    // number is never ok.
    if row.status == Status::Ok
        && let Some(metric) = row.non_finite_metric()
    {
        row.status = Status::Diverged;
        row.stop_reason = StopReason::Diverged;
        row.error = format!("{metric} is not finite: the run diverged");
    }
    row.train_seconds = outcome.epochs.iter().map(|e| e.train_seconds).sum();
    row.eval_seconds = outcome.epochs.iter().map(|e| e.eval_seconds).sum();
    let samples = (outcome.train_size * outcome.epochs.len()) as f64;
    row.samples_per_second = if row.train_seconds > 0.0 {
        samples / row.train_seconds
    } else {
        f64::NAN
    };
}

fn epoch_rows(run_id: &str, attempt: &str, epochs: &[EpochMetrics]) -> Vec<EpochRow> {
    epochs
        .iter()
        .map(|e| EpochRow {
            run_id: run_id.to_string(),
            attempt: attempt.to_string(),
            epoch: e.epoch as u64,
            learning_rate: e.learning_rate,
            train_loss: e.train_loss,
            train_accuracy: e.train_accuracy,
            val_loss: e.val_loss,
            val_accuracy: e.val_accuracy,
            test_loss: e.test_loss,
            test_accuracy: e.test_accuracy,
            train_seconds: e.train_seconds,
            eval_seconds: e.eval_seconds,
        })
        .collect()
}

/// Saves the model beside `path`, under a name of its own (`<path>.partial`), synced; returns
/// that name and the SHA-256 of the file. The commit moves it to `path`.
fn save_model(model: crate::net::model::Mlp, path: &Path) -> Result<(PathBuf, String)> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    let partial = crate::record::journal::sibling(path, "partial");
    if crate::record::journal::failpoint_set("model-enospc") {
        return Err(anyhow::Error::new(std::io::Error::from_raw_os_error(28)))
            .with_context(|| format!("cannot save the model to {}", path.display()));
    }
    model
        .save_file(&partial)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .and_then(|()| {
            let bytes = std::fs::read(&partial)?;
            std::fs::File::open(&partial)?.sync_all()?;
            Ok((partial.clone(), format!("{:x}", Sha256::digest(&bytes))))
        })
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
        .with_context(|| format!("cannot save the model to {}", path.display()))
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// What a run's training loop reports to: the progress display, the checkpoint writer and the
/// live view's feed.
struct Watch {
    display: Display,
    writer: Option<checkpoint::Writer>,
    /// Checkpoints that could not be written.
    failed_writes: usize,
    /// Removed when the run is done: dropped after the commit, with the rest of `run`'s state.
    feed: crate::record::live::Feed,
    run_id: String,
    attempt: String,
}

impl Observer for Watch {
    fn epoch_started(&mut self, epoch: usize, steps: usize) {
        self.display.epoch_started(epoch, steps);
    }

    fn step(&mut self, step: usize, loss: Option<f64>) {
        self.display.step(step, loss);
    }

    fn epoch_finished(&mut self, metrics: &EpochMetrics) {
        self.display.epoch_finished(metrics);
    }

    fn snapshot(&mut self, snapshot: &Snapshot<'_>) {
        self.feed
            .epochs(&epoch_rows(&self.run_id, &self.attempt, snapshot.epochs));
        let Some(writer) = &mut self.writer else {
            return;
        };
        let before = if writer.path().is_file() {
            writer.saved
        } else {
            0
        };
        if let Err(error) = writer.write(snapshot) {
            // Training goes on: the checkpoint is insurance, not the result. Said once, and
            // counted at the end.
            self.failed_writes += 1;
            if self.failed_writes > 1 {
                return;
            }
            let lost = if before == 0 {
                "would start again from epoch 0".to_string()
            } else {
                format!("would resume after epoch {before}")
            };
            eprintln!(
                "harness: warning: {error:#}; training goes on, but if it is killed now the run \
                 {lost}, not after epoch {}",
                snapshot.epochs.len()
            );
        }
    }
}

/// Draws training progress on stderr.
struct Display {
    progress: Progress,
    epochs: usize,
    bar: Option<ProgressBar>,
    /// Shown on the bar until the first loss is read (wgpu: "tuning kernels").
    first_message: Option<String>,
}

impl Display {
    fn new(progress: Progress, epochs: usize) -> Self {
        Display {
            progress,
            epochs,
            bar: None,
            first_message: None,
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Display {
    fn epoch_started(&mut self, epoch: usize, steps: usize) {
        if self.progress == Progress::Bar {
            let bar = ProgressBar::new(steps as u64).with_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} steps {msg} ({elapsed}, eta {eta})",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!(
                "{epoch:>width$}/{}",
                self.epochs,
                width = digits(self.epochs)
            ));
            if let Some(message) = &self.first_message {
                bar.set_message(message.clone());
            }
            self.bar = Some(bar);
        }
    }

    fn step(&mut self, step: usize, loss: Option<f64>) {
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
            if let Some(loss) = loss {
                self.first_message = None;
                bar.set_message(format!("loss {loss:.4}"));
            }
        }
    }

    fn epoch_finished(&mut self, m: &EpochMetrics) {
        self.finish();
        if self.progress != Progress::Quiet {
            let validation = if m.val_accuracy.is_nan() {
                String::new()
            } else {
                format!("  val loss {:.4} acc {:.4}", m.val_loss, m.val_accuracy)
            };
            eprintln!(
                "epoch {:>width$}/{}  train loss {:.4} acc {:.4}{validation}  test loss {:.4} \
                 acc {:.4}  {:.2} s train + {:.2} s eval",
                m.epoch,
                self.epochs,
                m.train_loss,
                m.train_accuracy,
                m.test_loss,
                m.test_accuracy,
                m.train_seconds,
                m.eval_seconds,
                width = digits(self.epochs),
            );
        }
    }
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::record::results;

    /// Every setting a row records, at the extremes the config accepts, survives the row and
    /// its CSV text and comes back as the value that was trained: no field is narrowed,
    /// rounded or clamped on the way (a u32 epochs column once wrapped at 2^32).
    #[test]
    fn every_setting_round_trips_through_a_recorded_row_at_its_limits() {
        let extremes = [
            "seed = 9223372036854775807\n[data]\ndir = \"d\"\ntrain_limit = 1\ntest_limit = 1\n\
             validation = 59999\naugment_shift = 4\naugment_rotate = 30.0\n\
             [model]\nhidden = [10000000, 1]\ndropout = 0.9999999999999999\n\
             [train]\nepochs = 100000\nbatch_size = 9223372036854775807\n\
             learning_rate = 3.4028234663852886e38\nschedule = \"step\"\nstep_epochs = 100000\n\
             step_factor = 2.2250738585072014e-308\nwarmup_epochs = 99999.99999999999\npatience = 100000\n\
             min_delta = 5e-324\nmomentum = 0.9999999999999999\nweight_decay = 1e-320\n",
            "seed = 0\n[data]\ndir = \"d\"\nvalidation = 0\n[model]\nhidden = []\n\
             [train]\nepochs = 1\nbatch_size = 1\nlearning_rate = 1.1754943508222875e-38\n",
        ];
        for text in extremes {
            let settings = crate::config::parse(text, Path::new("x.toml"), &[])
                .unwrap_or_else(|e| panic!("{e:#}\n{text}"));
            let row = base_row(
                &settings,
                settings.backend,
                "cpu",
                "2026-12-07T00:00:00.000Z".into(),
                "a0".into(),
            );
            let csv = results::to_csv(std::slice::from_ref(&row), true);
            let back: Vec<RunRow> = results::parse(&csv, Path::new("runs.csv")).unwrap();
            let back = &back[0];
            let train = &settings.train;
            let model = &settings.model;
            assert_eq!(back.run_id, settings.run_id(settings.backend));
            assert_eq!(back.seed, settings.seed);
            assert_eq!(back.epochs, train.epochs as u64);
            assert_eq!(back.step_epochs, train.step_epochs as u64);
            assert_eq!(back.patience, train.patience as u64);
            assert_eq!(back.batch_size, train.batch_size as u64);
            assert_eq!(back.augment_shift, settings.data.augment_shift as u64);
            let floats = [
                (back.learning_rate, train.learning_rate),
                (back.dropout, model.dropout),
                (back.warmup_epochs, train.warmup_epochs),
                (back.step_factor, train.step_factor),
                (back.momentum, train.momentum),
                (back.weight_decay, train.weight_decay),
                (back.min_delta, train.min_delta),
                (back.augment_rotate, settings.data.augment_rotate),
            ];
            for (recorded, trained) in floats {
                assert_eq!(
                    recorded.to_bits(),
                    trained.to_bits(),
                    "{recorded} vs {trained}"
                );
            }
            let widths: Vec<usize> = back.shape.split('-').map(|w| w.parse().unwrap()).collect();
            let mut expected = vec![784];
            expected.extend(&model.hidden);
            expected.push(10);
            assert_eq!(widths, expected);
            assert_eq!(back.params, model.num_params() as u64);
            assert_eq!(back.activation, model.activation_label());
            assert_eq!(back.schedule, train.schedule.to_string());
        }
    }
}
