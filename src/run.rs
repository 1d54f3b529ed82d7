//! `harness run`: one config in, one trained network and one results row out.
//!
//! Order matters for the user: settings are already valid; the device is selected and the
//! results files' headers are checked before any data is loaded or any step trained, so a
//! mistake costs seconds, not a training run. A run that fails after that still gets its row
//! (status `failed` and the error), and every row is appended whole.

use std::io::IsTerminal;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{self, BackendName};
use crate::config::Settings;
use crate::data;
use crate::error::take_panic_message;
use crate::results::{self, EpochRow, RunRow, Status};
use crate::train::{self, EpochMetrics, Job, Observer, Outcome};

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

/// The result of `harness run`: the row and where it went.
#[derive(Debug)]
pub struct Report {
    pub row: RunRow,
    pub runs_csv: PathBuf,
    pub model_file: Option<PathBuf>,
    /// False when [`Record::IfNew`] found the run already recorded.
    pub appended: bool,
}

/// Trains the network `settings` describe and appends its results.
///
/// Returns the row also when the run diverged or failed after training started; an `Err` means
/// nothing was trained (or the row could not be written).
pub fn run(settings: &Settings, progress: Progress, record: Record) -> Result<Report> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let selected = backend::select(settings.backend)?;
    let run_id = settings.run_id(selected.backend);
    results::check_header::<RunRow>(&settings.output.runs)?;
    results::check_header::<EpochRow>(&settings.output.epochs)?;

    let data = data::load(
        settings.data.dataset,
        settings.data.dir.as_deref(),
        settings.data.train_limit,
        settings.data.test_limit,
    )?;
    let mut row = base_row(
        settings,
        selected.backend,
        &selected.description,
        started_at,
    );
    row.test_size = data.test.len();
    row.train_size = data.train.len();
    if progress != Progress::Quiet {
        eprintln!(
            "harness: {} ({}): {} network, {} parameters; {} on {} ({}); {} training / {} test \
             images from {}",
            settings.name,
            run_id,
            settings.model.shape(),
            thousands(settings.model.num_params()),
            settings.train.optimizer,
            selected.backend,
            selected.description,
            thousands(data.train.len()),
            thousands(data.test.len()),
            data.dir.display(),
        );
    }

    let job = Job::new(settings, &data.train, &data.test, selected.backend);
    let mut observer = Display::new(progress, settings.train.epochs);
    #[cfg(feature = "wgpu")]
    if selected.backend == BackendName::Wgpu && progress != Progress::Quiet {
        // cubecl compiles and autotunes kernels for each new tensor shape and keeps the tuning
        // results on disk, so a later run of the same shapes only compiles.
        eprintln!(
            "harness: wgpu compiles and tunes its kernels during the first steps (up to a \
             minute the first time); tuning results are kept for later runs in {}",
            backend::gpu_cache().display()
        );
        observer.first_message = Some("tuning kernels".to_string());
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
    observer.finish();

    let mut model_file = None;
    let epoch_rows = match outcome {
        Ok(outcome) => {
            fill_metrics(&mut row, &outcome);
            if settings.output.save_model && outcome.status == Status::Ok {
                let path = settings.output.models.join(format!("{run_id}.bpk"));
                save_model(outcome.model, &path)?;
                model_file = Some(path);
            }
            epoch_rows(&run_id, &outcome.epochs)
        }
        Err(error) => {
            row.status = Status::Failed;
            row.error = format!("{error:#}")
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            Vec::new()
        }
    };
    row.total_seconds = started.elapsed().as_secs_f64();

    let appended = save_rows(settings, &row, &epoch_rows, record).inspect_err(|_| {
        // Never lose a result: if the row cannot be written, show it.
        eprintln!("harness: the row that could not be written:\n{row:?}");
    })?;
    Ok(Report {
        row,
        runs_csv: settings.output.runs.clone(),
        model_file,
        appended,
    })
}

/// Appends a run's epochs rows, then its runs row (the mark of a finished run), while holding
/// the lock on the runs file. Returns false if [`Record::IfNew`] found the run recorded.
pub fn save_rows(
    settings: &Settings,
    row: &RunRow,
    epochs: &[EpochRow],
    record: Record,
) -> Result<bool> {
    let mut runs = results::Locked::open(&settings.output.runs)?;
    if record == Record::IfNew
        && runs
            .rows::<RunRow>()?
            .iter()
            .any(|done| done.run_id == row.run_id && done.status != Status::Failed)
    {
        return Ok(false);
    }
    if !epochs.is_empty() {
        results::append(&settings.output.epochs, epochs)?;
    }
    runs.append(std::slice::from_ref(row))?;
    Ok(true)
}

/// The row of a run that failed before it could report anything itself (a worker process that
/// was killed, say).
pub fn failed_row(settings: &Settings, error: &str) -> RunRow {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut row = base_row(settings, settings.backend.resolve(), "", started_at);
    row.status = Status::Failed;
    row.error = error.to_string();
    row
}

/// The row's settings columns; metrics are filled in after training.
fn base_row(settings: &Settings, backend: BackendName, device: &str, started_at: String) -> RunRow {
    let activations: Vec<String> = settings
        .model
        .activations
        .iter()
        .map(|a| a.to_string())
        .collect();
    let mut distinct = activations.clone();
    distinct.dedup();
    RunRow {
        run_id: settings.run_id(backend),
        started_at,
        name: settings.name.clone(),
        config: settings
            .config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        dataset: settings.data.dataset.to_string(),
        backend: backend.to_string(),
        device: device.to_string(),
        hidden: settings
            .model
            .hidden
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("x"),
        activation: if distinct.len() == 1 {
            distinct[0].clone()
        } else {
            activations.join(",")
        },
        output: settings.model.output.to_string(),
        init: settings.model.init.to_string(),
        loss: settings.train.loss.to_string(),
        optimizer: settings.train.optimizer.to_string(),
        learning_rate: settings.train.learning_rate,
        momentum: settings.train.momentum,
        weight_decay: settings.train.weight_decay,
        batch_size: settings.train.batch_size,
        epochs: settings.train.epochs,
        seed: settings.seed,
        params: settings.model.num_params(),
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        ..RunRow::default()
    }
}

/// Copies the last epoch's metrics and the timings into the row.
fn fill_metrics(row: &mut RunRow, outcome: &Outcome) {
    row.status = outcome.status;
    row.train_size = outcome.train_size;
    if let Some(last) = outcome.epochs.last() {
        row.train_loss = last.train_loss;
        row.train_accuracy = last.train_accuracy;
        row.test_loss = last.test_loss;
        row.test_accuracy = last.test_accuracy;
    }
    if outcome.status == Status::Diverged {
        row.error = format!(
            "training loss became NaN, infinite or over {}x its first value",
            train::DIVERGENCE_FACTOR
        );
    }
    row.train_seconds = outcome.epochs.iter().map(|e| e.train_seconds).sum();
    row.eval_seconds = outcome.epochs.iter().map(|e| e.eval_seconds).sum();
    let samples = (outcome.train_size * outcome.epochs.len()) as f64;
    row.samples_per_second = if row.train_seconds > 0.0 {
        samples / row.train_seconds
    } else {
        0.0
    };
}

fn epoch_rows(run_id: &str, epochs: &[EpochMetrics]) -> Vec<EpochRow> {
    epochs
        .iter()
        .map(|e| EpochRow {
            run_id: run_id.to_string(),
            epoch: e.epoch,
            train_loss: e.train_loss,
            train_accuracy: e.train_accuracy,
            test_loss: e.test_loss,
            test_accuracy: e.test_accuracy,
            seconds: e.train_seconds,
        })
        .collect()
}

/// Saves the model to a temporary file, then renames it into place (never a half-written file).
fn save_model(model: crate::model::Mlp, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    let partial = path.with_extension("bpk.partial");
    model
        .save_file(&partial)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .and_then(|()| Ok(std::fs::rename(&partial, path)?))
        .with_context(|| format!("cannot save the model to {}", path.display()))
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// 13002 → "13,002".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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
            eprintln!(
                "epoch {:>width$}/{}  train loss {:.4} acc {:.4}  test loss {:.4} acc {:.4}  \
                 {:.2} s",
                m.epoch,
                self.epochs,
                m.train_loss,
                m.train_accuracy,
                m.test_loss,
                m.test_accuracy,
                m.train_seconds + m.eval_seconds,
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
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(13_002), "13,002");
        assert_eq!(thousands(636_010), "636,010");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
