//! `harness sweep`: run an experiment's points, resumably, in parallel worker processes.
//!
//! Each point runs in its own `harness` process (a crash or an out-of-memory kill of one run
//! cannot take the others down), with the CPU threads split between the jobs. A point whose
//! run_id already has a row with status ok or diverged is skipped, so rerunning the same command
//! after a crash completes the rest. Workers append their own rows under the file lock; the
//! parent writes a `failed` row for a worker that died without one.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::error::exit;
use crate::record::results::{self, Status};
use crate::search::experiment::{Experiment, Point, Shard, is_incomplete, sources_of};
use crate::train::checkpoint;
use crate::train::run::{self, Ran, Record};

/// How to run a sweep; the command-line flags of `harness sweep`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Worker processes at once.
    pub jobs: usize,
    /// Only this slice of the points (else the Slurm array task's, else all).
    pub shard: Option<Shard>,
    /// With successive halving: only this rung.
    pub rung: Option<u32>,
    /// The runs file later rungs are chosen from (default: the points' output.runs).
    pub select_from: Option<PathBuf>,
    pub dry_run: bool,
    /// Rerun points whose row says failed.
    pub retry_failed: bool,
    /// Rerun every point.
    pub force: bool,
    /// Start interrupted points from epoch 0, not from their checkpoints.
    pub restart: bool,
    /// Start no new point after the first failure.
    pub fail_fast: bool,
    /// Exit 1 unless every point of the shard ends ok.
    pub strict: bool,
    /// `--set` arguments, passed on to every worker.
    pub set: Vec<String>,
}

/// Where a point stands before the sweep runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Done(Status),
    Pending,
}

/// Runs (or with `dry_run`, lists) the points of an experiment; returns the exit code.
///
/// Under successive halving, runs each rung in turn (or only `options.rung`), choosing a rung's
/// points from the previous rung's results in the runs file (`options.select_from`, by default
/// the points' `output.runs`).
pub fn sweep(experiment: &Experiment, options: &Options) -> Result<u8> {
    let started = Instant::now();
    let shard = match options.shard {
        Some(shard) => Some(shard),
        None => {
            Shard::from_slurm(|name| std::env::var(name).ok()).map_err(crate::error::user_error)?
        }
    };
    let select_from = selection_file(experiment, options);
    let total = experiment.points().len();
    let expanded = if experiment.expanded != total {
        format!(
            " ({} expanded, {} excluded or repeated)",
            experiment.expanded,
            experiment.expanded.saturating_sub(total)
        )
    } else {
        String::new()
    };
    match shard {
        Some(shard) => println!(
            "{}: shard {}/{}: {} of {total} points{expanded}",
            experiment.path.display(),
            shard.index,
            shard.count,
            experiment
                .points()
                .iter()
                .filter(|p| shard.contains(p.index))
                .count(),
        ),
        None => match experiment.trials() {
            Some(trials) => println!(
                "{}: {trials} trials, {total} of them in wave 0{expanded}",
                experiment.path.display()
            ),
            None => println!("{}: {total} points{expanded}", experiment.path.display()),
        },
    }
    if let Some(halving) = &experiment.halving {
        let plan: Vec<String> = (0..halving.rungs())
            .map(|rung| {
                format!(
                    "rung {rung}: {} points x {} epochs",
                    halving.kept(rung, total),
                    halving.epochs(rung)
                )
            })
            .collect();
        println!(
            "successive halving (eta {}, by {}): {}; later rungs chosen from {}",
            halving.eta,
            halving.metric,
            plan.join("; "),
            select_from.display()
        );
    }
    if let Some(plan) = experiment.tpe_plan() {
        println!("{plan}; later waves from {}", select_from.display());
    }
    let stage = experiment.stage();
    let rungs: Vec<u32> = match options.rung {
        Some(rung) => vec![rung],
        None => (0..experiment.rungs()).collect(),
    };

    // Outputs are claimed before any work, a dry run's included: it shows what a run would do.
    claims(experiment, shard).check()?;

    if options.dry_run {
        for &rung in &rungs {
            let points = match experiment.rung_points(rung, &select_from) {
                Ok(points) => points,
                Err(error) if rung > 0 && options.rung.is_none() => {
                    println!("{stage} {rung}: not chosen yet ({error:#})");
                    break;
                }
                Err(error) => return Err(error),
            };
            let points: Vec<&Point> = in_shard(&points, shard);
            let states = recorded_states(&points)?;
            if experiment.rungs() > 1 {
                println!("{stage} {rung}:");
            }
            print_table(&points, &states);
            let todo = todo(&points, &states, options).len();
            println!(
                "{} points, {todo} to run, {} done",
                points.len(),
                points.len() - todo
            );
        }
        return Ok(exit::OK);
    }

    // A backend missing from this build is a usage error, found before any point trains (every
    // rung has rung 0's backends).
    let all = experiment.points();
    if let Some(point) = in_shard(all, shard)
        .into_iter()
        .find(|p| !p.settings.backend.is_compiled())
    {
        let error = crate::net::backend::select(point.settings.backend)
            .expect_err("a backend not compiled in cannot be selected");
        return Err(error.context(format!(
            "{}: point {} ({})",
            experiment.path.display(),
            point.index + 1,
            point.settings.name
        )));
    }

    let mut tally = Tally::default();
    let mut last_rung = Vec::new();
    let mut changed = None;
    for &rung in &rungs {
        let points = match experiment.rung_points(rung, &select_from) {
            Ok(points) => points,
            // A shard's rung is done, and other shards' points of it are not in the file yet.
            Err(error)
                if shard.is_some()
                    && rung > 0
                    && options.rung.is_none()
                    && is_incomplete(&error) =>
            {
                println!(
                    "{stage} {} of this shard is done; {stage} {rung} is chosen from every \
                     shard's {stage} {} results, and {} does not hold them all yet. When every \
                     shard has finished, merge their runs files (harness merge runs-*.csv -o \
                     runs.csv) and run each shard again with --{stage} {rung} --select-from \
                     runs.csv",
                    rung - 1,
                    rung - 1,
                    select_from.display()
                );
                break;
            }
            Err(error) => return Err(error),
        };
        let points: Vec<Point> = in_shard(&points, shard).into_iter().cloned().collect();
        let refs: Vec<&Point> = points.iter().collect();
        if let Some(halving) = &experiment.halving {
            let epochs = halving.epochs(rung);
            let continued = if rung == 0 {
                String::new()
            } else {
                format!(
                    ", each continued from its rung-{} checkpoint ({} more epochs)",
                    rung - 1,
                    epochs - halving.epochs(rung - 1)
                )
            };
            println!(
                "rung {rung}: {} points, {epochs} of the schedule's {} epochs{continued}",
                points.len(),
                halving.max_epochs
            );
        }
        if experiment.tpe_plan().is_some() {
            let how = if rung == 0 {
                "drawn at random".to_string()
            } else {
                format!("from the results of waves 0-{}", rung - 1)
            };
            println!("wave {rung}: {} points, {how}", points.len());
        }
        if rung > 0 && experiment.halving.is_some() {
            prune_checkpoints(experiment, rung, &select_from);
        }
        let states = recorded_states(&refs)?;
        let todo = todo(&refs, &states, options);
        // What `harness serve` shows as this stage's pending points, while it runs.
        let _plan = (!todo.is_empty()).then(|| publish_plan(experiment, rung, &refs, options));
        let workers = run_workers(experiment, rung, &todo, options)?;
        tally.failed_now += workers.failed;
        // Tally from the results files: they are the record, whatever the workers printed.
        let after = recorded_states(&refs)?;
        tally.add(&refs, &after, refs.len() - todo.len());
        let pending = refs
            .iter()
            .filter(|p| after[&p.run_id] == State::Pending)
            .count();
        // The winner: of the last rung (halving), of every wave (TPE), of the sweep.
        if experiment.halving.is_some() {
            last_rung = points.clone();
        } else {
            last_rung.extend(points.iter().cloned());
        }
        if workers.changed {
            changed = Some((workers.unwanted, pending));
            break;
        }
        if pending > 0 && options.rung.is_none() && rung + 1 < experiment.rungs() {
            println!("{stage} {rung} is not complete ({pending} points not run): stopping here");
            break;
        }
    }
    println!(
        "sweep {}: {} ok, {} diverged, {} failed, {} skipped, {} not run; {:.1} s",
        experiment.path.display(),
        tally.ok,
        tally.diverged,
        tally.failed,
        tally.skipped,
        tally.pending,
        started.elapsed().as_secs_f64()
    );
    if let Some((unwanted, pending)) = changed {
        return Err(crate::error::user_error(format!(
            "{}{} changed while the sweep ran: it started no point after that, {unwanted} \
             points trained meanwhile were not recorded, and {pending} points were not run. Run \
             the sweep again to run the experiment as it is now",
            experiment.path.display(),
            experiment
                .base_file
                .as_ref()
                .map(|base| format!(" (or its base config {})", base.display()))
                .unwrap_or_default()
        )));
    }
    if let Some(line) = winner(&last_rung)? {
        println!("{line}");
    }
    for dir in checkpoint_dirs(experiment.points()) {
        let (files, bytes) = checkpoint::usage(&dir);
        if files > 0 {
            println!(
                "checkpoints: {files} files, {} in {}: the same command resumes interrupted \
                 points from theirs (failed ones with --retry-failed, from epoch 0 with \
                 --restart), and the next halving rung continues its survivors from theirs; \
                 files of points this experiment no longer has are never used, and may be \
                 deleted",
                checkpoint::megabytes(bytes),
                dir.display()
            );
        }
    }
    Ok(
        if tally.failed_now > 0 || (options.strict && !tally.all_ok()) {
            exit::FAILED
        } else {
            exit::OK
        },
    )
}

/// Every file the sweep's points read and write, with the experiment and its base config as
/// inputs: checked before any point starts, so that no point's output is another's input or
/// another point's output of another kind.
/// Publishes the points of a stage for the live view ([`crate::record::live`]), beside the
/// first point's runs file.
fn publish_plan(
    experiment: &Experiment,
    rung: u32,
    points: &[&Point],
    options: &Options,
) -> crate::record::live::PlanFile {
    use crate::record::live::{Plan, PlanFile, PlannedPoint};
    let stage = if experiment.halving.is_some() {
        format!("rung {rung}")
    } else if experiment.tpe_plan().is_some() {
        format!("wave {rung}")
    } else {
        String::new()
    };
    let plan = Plan {
        experiment: experiment.path.display().to_string(),
        stage,
        jobs: options.jobs.max(1),
        pid: std::process::id(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        points: points
            .iter()
            .map(|p| PlannedPoint {
                run_id: p.run_id.clone(),
                name: p.settings.name.clone(),
                epochs: p.settings.last_epoch() as u64,
            })
            .collect(),
    };
    crate::record::live::clean(&points[0].settings.output.runs);
    PlanFile::publish(&points[0].settings.output.runs, &plan)
}

fn claims(experiment: &Experiment, shard: Option<Shard>) -> crate::record::claims::Claims {
    let mut claims = crate::record::claims::Claims::new();
    claims.reads(&experiment.path, "the experiment");
    if let Some(base) = &experiment.base_file {
        claims.reads(base, "the base config");
    }
    let mut seen = std::collections::HashSet::new();
    for point in in_shard(experiment.points(), shard) {
        let output = &point.settings.output;
        let key = (
            output.runs.clone(),
            output.epochs.clone(),
            point.settings.data.dir.clone(),
        );
        if seen.insert(key) {
            let name = format!("point {} ({})", point.index + 1, point.settings.name);
            for mut claim in run::claims(&point.settings) {
                claim.what = format!("{} of {name}", claim.what);
                claims.push(claim);
            }
        }
    }
    claims
}

/// The runs file later rungs are chosen from.
fn selection_file(experiment: &Experiment, options: &Options) -> PathBuf {
    options.select_from.clone().unwrap_or_else(|| {
        experiment
            .points()
            .first()
            .map(|p| p.settings.output.runs.clone())
            .unwrap_or_default()
    })
}

fn in_shard(points: &[Point], shard: Option<Shard>) -> Vec<&Point> {
    points
        .iter()
        .filter(|point| shard.is_none_or(|shard| shard.contains(point.index)))
        .collect()
}

/// The points to run: pending ones, failed ones with --retry-failed, all with --force.
fn todo<'a>(
    points: &[&'a Point],
    states: &HashMap<String, State>,
    options: &Options,
) -> Vec<&'a Point> {
    points
        .iter()
        .copied()
        .filter(|point| match states[&point.run_id] {
            _ if options.force => true,
            State::Pending => true,
            State::Done(Status::Failed) => options.retry_failed,
            State::Done(_) => false,
        })
        .collect()
}

/// What a sweep's rungs ended with.
#[derive(Default)]
struct Tally {
    ok: usize,
    diverged: usize,
    failed: usize,
    skipped: usize,
    pending: usize,
    points: usize,
    failed_now: usize,
}

impl Tally {
    fn add(&mut self, points: &[&Point], states: &HashMap<String, State>, skipped: usize) {
        for point in points {
            match states[&point.run_id] {
                State::Done(Status::Ok) => self.ok += 1,
                State::Done(Status::Diverged) => self.diverged += 1,
                State::Done(Status::Failed) => self.failed += 1,
                State::Pending => self.pending += 1,
            }
        }
        self.skipped += skipped;
        self.points += points.len();
    }

    fn all_ok(&self) -> bool {
        self.ok == self.points
    }
}

/// The best ok point, by validation accuracy when its runs held images out (else by test
/// accuracy), with its test accuracy beside.
fn winner(points: &[Point]) -> Result<Option<String>> {
    let mut by_file: HashMap<&Path, Vec<results::RunRow>> = HashMap::new();
    for point in points {
        let path = point.settings.output.runs.as_path();
        if !by_file.contains_key(path) {
            by_file.insert(path, results::read_runs(path)?);
        }
    }
    let mut best: Option<(&Point, results::RunRow)> = None;
    for point in points {
        let rows = &by_file[point.settings.output.runs.as_path()];
        let Some(row) = results::effective(rows)
            .into_iter()
            .find(|row| row.run_id == point.run_id)
        else {
            continue;
        };
        if row.status != Status::Ok {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|(_, b)| row.selection_accuracy() > b.selection_accuracy())
        {
            best = Some((point, row.clone()));
        }
    }
    Ok(best.map(|(point, row)| {
        let chosen = if row.validation_size > 0 {
            format!(
                "validation accuracy {:.4} (chosen on {} validation images), test accuracy {:.4}",
                row.val_accuracy, row.validation_size, row.test_accuracy
            )
        } else {
            format!(
                "test accuracy {:.4} (no validation images held out: chosen on the test set)",
                row.test_accuracy
            )
        };
        format!(
            "best: {} ({}): {chosen}, epoch {} of {}",
            point.settings.name, row.run_id, row.best_epoch, row.epochs_trained
        )
    }))
}

/// The state of each point from the rows already in its runs file: the status of the row that
/// stands for its run ([`results::effective`]), or pending.
fn recorded_states(points: &[&Point]) -> Result<HashMap<String, State>> {
    let mut status_by_file: HashMap<PathBuf, HashMap<String, Status>> = HashMap::new();
    let mut states = HashMap::new();
    for point in points {
        let path = &point.settings.output.runs;
        if !status_by_file.contains_key(path) {
            let rows = results::read_runs(path)?;
            let statuses = results::effective(&rows)
                .into_iter()
                .map(|row| (row.run_id.clone(), row.status))
                .collect();
            status_by_file.insert(path.clone(), statuses);
        }
        let state = status_by_file[path]
            .get(&point.run_id)
            .map_or(State::Pending, |&status| State::Done(status));
        states.insert(point.run_id.clone(), state);
    }
    Ok(states)
}

fn print_table(points: &[&Point], states: &HashMap<String, State>) {
    let name_width = points
        .iter()
        .map(|p| p.settings.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:>5}  {:12}  {:name_width$}  {:9}  varies",
        "point", "run_id", "name", "state"
    );
    for point in points {
        let mut state = match states[&point.run_id] {
            State::Pending => "pending".to_string(),
            State::Done(status) => format!("{status:?}").to_lowercase(),
        };
        // An interrupted point (or a failed one, for --retry-failed) resumes from its
        // checkpoint: say from where.
        if states[&point.run_id] != State::Done(Status::Ok)
            && let Ok(header) = checkpoint::peek(
                &checkpoint::Store::beside(&point.settings.output.runs).path(&point.run_id),
            )
        {
            state.push_str(&format!(" (checkpoint after epoch {})", header.epoch));
        }
        let varies: Vec<String> = point
            .varies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "{:>5}  {:12}  {:name_width$}  {:9}  {}",
            point.index + 1,
            point.run_id,
            point.settings.name,
            state,
            varies.join(" ")
        );
    }
}

/// What a worker process reported.
struct Finished {
    index: usize,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    seconds: f64,
}

/// A point's training work, for ordering only: images seen times (parameters + a per-image
/// overhead of about a thousand parameters' worth of bookkeeping). MNIST has 60,000 training
/// images when no limit is set (Fashion-MNIST too).
fn estimated_work(point: &Point) -> u64 {
    let settings = &point.settings;
    let images = settings.data.train_limit.unwrap_or(60_000).min(60_000) as u64;
    let params = settings.model.num_params() as u64;
    images * settings.last_epoch() as u64 * (params + 1_000)
}

/// The folders the points' checkpoints are kept in, each once.
fn checkpoint_dirs(points: &[Point]) -> std::collections::BTreeSet<PathBuf> {
    points
        .iter()
        .map(|p| {
            checkpoint::Store::beside(&p.settings.output.runs)
                .dir()
                .to_path_buf()
        })
        .collect()
}

/// Removes the checkpoints of rung `rung - 1`'s points that rung `rung` does not promote: no
/// rung continues them. Every shard may do it; it removes only what no one will read.
fn prune_checkpoints(experiment: &Experiment, rung: u32, select_from: &Path) {
    let (Ok(previous), Ok(promoted)) = (
        experiment.rung_points(rung - 1, select_from),
        experiment.rung_points(rung, select_from),
    ) else {
        return;
    };
    let continued: std::collections::HashSet<String> = promoted
        .iter()
        .map(|p| p.settings.trajectory(p.settings.backend))
        .collect();
    let dropped: std::collections::HashSet<&str> = previous
        .iter()
        .filter(|p| !continued.contains(&p.settings.trajectory(p.settings.backend)))
        .map(|p| p.run_id.as_str())
        .collect();
    for dir in checkpoint_dirs(&previous) {
        for (path, _, header) in checkpoint::list(&dir) {
            if header.is_ok_and(|h| dropped.contains(h.identity.run_id.as_str())) {
                let _ = checkpoint::remove(&path);
            }
        }
    }
}

/// What the workers of one rung did, besides the rows they recorded.
#[derive(Debug, Default)]
struct Workers {
    /// Points that failed (their rows say so).
    failed: usize,
    /// Whether the experiment or its base config changed while they ran.
    changed: bool,
    /// Points trained but not recorded because the experiment changed under them.
    unwanted: usize,
}

/// A point waiting in the queue, and whether another process was training it when it was last
/// tried (it is tried again after the others, with a pause).
#[derive(Clone, Copy)]
struct Queued {
    index: usize,
    busy: bool,
}

/// Runs `todo` (points of rung `rung`) in `options.jobs` worker processes.
///
/// Each worker gets its point's resolved settings on stdin, as this process read them, and
/// trains exactly those. Before each point starts, the experiment and its base config are read
/// again: if either changed, no further point is started. A point another process is training
/// (its run lock is held) goes back to the end of the queue.
fn run_workers(
    experiment: &Experiment,
    rung: u32,
    todo: &[&Point],
    options: &Options,
) -> Result<Workers> {
    let jobs = options.jobs.max(1).min(todo.len().max(1));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads_per_job = (threads / jobs).max(1);
    if !todo.is_empty() {
        println!(
            "running {} points, {jobs} at a time, {threads_per_job} CPU thread{} each",
            todo.len(),
            if threads_per_job == 1 { "" } else { "s" }
        );
    }
    let exe = std::env::current_exe().context("cannot find the harness executable")?;
    // Several at a time: the longest points first, so the sweep does not end with one core
    // busy on a big point while the others idle (longest-processing-time-first scheduling).
    let mut order: Vec<&Point> = todo.to_vec();
    if jobs > 1 {
        order.sort_by_key(|point| std::cmp::Reverse(estimated_work(point)));
    }
    let queue: Arc<Mutex<VecDeque<Queued>>> = Arc::new(Mutex::new(
        order
            .iter()
            .map(|p| Queued {
                index: p.index,
                busy: false,
            })
            .collect(),
    ));
    let by_index: HashMap<usize, &Point> = todo.iter().map(|p| (p.index, *p)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let changed = Arc::new(AtomicBool::new(false));
    let (sender, receiver) = mpsc::channel::<Finished>();

    let mut outcome = Workers::default();
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..jobs {
            let (queue, stop, changed, sender) =
                (queue.clone(), stop.clone(), changed.clone(), sender.clone());
            let (exe, by_index) = (exe.clone(), &by_index);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Some(queued) = queue.lock().expect("queue lock").pop_front() else {
                        break;
                    };
                    if queued.busy {
                        std::thread::sleep(std::time::Duration::from_millis(500));
                    }
                    // The experiment as read now must be the one the points came from.
                    if experiment
                        .sources_now()
                        .map_or(true, |now| now != experiment.sources)
                    {
                        changed.store(true, Ordering::SeqCst);
                        stop.store(true, Ordering::SeqCst);
                        break;
                    }
                    let point = by_index[&queued.index];
                    let finished =
                        start_worker(&exe, experiment, rung, point, options, threads_per_job);
                    if finished.code == Some(i32::from(WORKER_BUSY)) {
                        queue.lock().expect("queue lock").push_back(Queued {
                            index: queued.index,
                            busy: true,
                        });
                        if !queued.busy {
                            let _ = sender.send(finished);
                        }
                        continue;
                    }
                    if sender.send(finished).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);

        let mut done = 0;
        for finished in receiver.iter() {
            let point = by_index[&finished.index];
            let summary = finished
                .stdout
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            let reason = || {
                let stderr = finished.stderr.trim();
                stderr
                    .lines()
                    .last()
                    .unwrap_or("no output")
                    .trim_start_matches("error: ")
                    .to_string()
            };
            let code = finished.code.and_then(|code| u8::try_from(code).ok());
            if code == Some(WORKER_BUSY) {
                println!(
                    "[-/{}] {} ({}): {summary}; trying it again after the others",
                    todo.len(),
                    point.settings.name,
                    point.run_id
                );
                continue;
            }
            done += 1;
            let progress = format!(
                "[{done}/{}] {} ({})",
                todo.len(),
                point.settings.name,
                point.run_id
            );
            match code {
                Some(exit::OK | WORKER_DIVERGED) => println!("{progress}: {summary}"),
                Some(WORKER_UNSAVED) => {
                    // Recorded, but not all that was asked for was written: exit 1 at the end.
                    outcome.failed += 1;
                    println!(
                        "{progress}: {summary}; but its model was not saved: {}",
                        reason()
                    );
                }
                Some(WORKER_UNWANTED) => {
                    outcome.unwanted += 1;
                    changed.store(true, Ordering::SeqCst);
                    stop.store(true, Ordering::SeqCst);
                    println!("{progress}: not recorded: {}", reason());
                }
                code => {
                    outcome.failed += 1;
                    println!(
                        "{progress}: FAILED after {:.1} s: {}",
                        finished.seconds,
                        reason()
                    );
                    if code != Some(WORKER_FAILED) {
                        // The worker died without writing its row: write it for it.
                        let row = run::failed_row(&point.settings, &reason());
                        let output = &point.settings.output;
                        results::commit(&output.runs, &output.epochs, &row, &[], None, true)?;
                    }
                    if options.fail_fast {
                        stop.store(true, Ordering::SeqCst);
                        println!("--fail-fast: starting no more points");
                    }
                }
            }
        }
        Ok(())
    })?;
    outcome.changed = changed.load(Ordering::SeqCst);
    Ok(outcome)
}

/// Runs one point in a worker process, its resolved settings on the worker's stdin.
fn start_worker(
    exe: &Path,
    experiment: &Experiment,
    rung: u32,
    point: &Point,
    options: &Options,
    threads: usize,
) -> Finished {
    use std::io::Write as _;
    use std::process::Stdio;
    let started = Instant::now();
    let mut command = Command::new(exe);
    command
        .arg("worker")
        .arg(&experiment.path)
        .arg(&point.run_id)
        .arg("--rung")
        .arg(rung.to_string())
        .args(
            point
                .settings
                .budget
                .iter()
                .flat_map(|budget| ["--budget".to_string(), budget.to_string()]),
        )
        .arg("--sources")
        .arg(&experiment.sources)
        .args(options.set.iter().flat_map(|s| ["--set", s.as_str()]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(base) = &experiment.base_file {
        command.arg("--base").arg(base);
    }
    if options.force {
        command.arg("--force");
    }
    if options.restart {
        command.arg("--restart");
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        command.env("RAYON_NUM_THREADS", threads.to_string());
    }
    let settings = point.settings.to_toml();
    let output = command.spawn().and_then(|mut child| {
        if let Some(mut stdin) = child.stdin.take() {
            // A worker that dies at once closes its end: its exit says why, not this write.
            let _ = stdin.write_all(settings.as_bytes());
        }
        child.wait_with_output()
    });
    match output {
        Ok(output) => Finished {
            index: point.index,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: describe_exit(&output.status, &output.stderr),
            seconds: started.elapsed().as_secs_f64(),
        },
        Err(e) => Finished {
            index: point.index,
            code: None,
            stdout: String::new(),
            stderr: format!("cannot start worker: {e}"),
            seconds: 0.0,
        },
    }
}

/// The worker's stderr, plus how it ended if a signal killed it.
fn describe_exit(status: &std::process::ExitStatus, stderr: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(stderr).into_owned();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            text.push_str(&format!(
                "\nworker killed by signal {signal} (out of memory, or killed)"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = status;
    text
}

/// Exit code of a worker whose run diverged (its row is written).
const WORKER_DIVERGED: u8 = 11;
/// Exit code of a worker whose run failed after it started (its row is written).
const WORKER_FAILED: u8 = 12;
/// Exit code of a worker that did not start: another process trains its run.
const WORKER_BUSY: u8 = 13;
/// Exit code of a worker that trained its point but recorded nothing: the experiment changed
/// under it and no longer holds the point.
const WORKER_UNWANTED: u8 = 14;
/// Exit code of a worker whose run ended ok and was recorded, but whose model could not be
/// saved (the row's `error` says why): the sweep exits 1, as `harness run` does.
const WORKER_UNSAVED: u8 = 15;

/// What `harness worker` is given.
#[derive(Debug)]
pub struct WorkerArgs {
    pub experiment: PathBuf,
    pub run_id: String,
    pub rung: u32,
    pub budget: Option<usize>,
    pub base: Option<PathBuf>,
    pub sources: String,
    pub overrides: Vec<crate::config::Override>,
    pub force: bool,
    pub restart: bool,
}

/// `harness worker EXPERIMENT RUN_ID --rung R --sources SHA [--base FILE]`, the point's settings
/// on stdin: trains them (what the sweep's worker processes do).
pub fn worker(args: &WorkerArgs) -> Result<u8> {
    use std::io::Read as _;
    let mut text = String::new();
    std::io::stdin()
        .take(crate::input::TEXT_MAX)
        .read_to_string(&mut text)
        .context("cannot read the point's settings from stdin")?;
    let mut settings = crate::config::parse(&text, &args.experiment, &[])?;
    settings.rung = args.rung;
    settings.budget = args.budget;
    let made = settings.run_id(settings.backend);
    if made != args.run_id {
        anyhow::bail!(
            "the settings given for run {} make run {made}; nothing was trained",
            args.run_id
        );
    }
    exit_with_parent();
    let record = if args.force {
        Record::Always
    } else {
        Record::IfNew
    };
    // Recorded only while the experiment still holds the point.
    let still_wanted = || -> Result<Option<String>> {
        if sources_of(&args.experiment, args.base.as_deref()).ok() == Some(args.sources.clone()) {
            return Ok(None);
        }
        let now = Experiment::load(&args.experiment, &args.overrides);
        Ok(match now {
            Ok(now) if now.has_run(&args.run_id) => None,
            Ok(_) => Some(format!(
                "{} changed while the point trained and no longer holds run {}",
                args.experiment.display(),
                args.run_id
            )),
            Err(error) => Some(format!(
                "{} changed while the point trained and no longer reads ({error:#})",
                args.experiment.display()
            )),
        })
    };
    let report = match run::run(
        &settings,
        run::Progress::Quiet,
        record,
        Some(&still_wanted),
        args.restart,
    )? {
        Ran::Trained(report) => report,
        Ran::Busy(holder) => {
            println!("being trained by another process ({holder})");
            return Ok(WORKER_BUSY);
        }
        Ran::AlreadyRecorded => {
            println!("already recorded by another process; not trained again");
            return Ok(exit::OK);
        }
        Ran::Unwanted(reason) => {
            eprintln!("error: {reason}; nothing was recorded");
            return Ok(WORKER_UNWANTED);
        }
    };
    let row = &report.row;
    let mut note = match &report.started_from {
        Some((epoch, _, true)) => format!(", resumed after epoch {epoch}"),
        Some((epoch, _, false)) => format!(", continued after epoch {epoch}"),
        None => String::new(),
    };
    if !report.appended {
        note.push_str(" (already recorded by another process)");
    }
    let accuracy = if row.validation_size > 0 {
        format!(
            "validation accuracy {:.4}, test accuracy {:.4}",
            row.val_accuracy, row.test_accuracy
        )
    } else {
        format!("test accuracy {:.4}", row.test_accuracy)
    };
    match row.status {
        Status::Ok => {
            println!("ok, {accuracy}, {:.1} s{note}", row.total_seconds);
            match &report.model_error {
                Some(error) => {
                    eprintln!("{error}");
                    Ok(WORKER_UNSAVED)
                }
                None => Ok(exit::OK),
            }
        }
        Status::Diverged => {
            println!("DIVERGED, {accuracy}{note}");
            Ok(WORKER_DIVERGED)
        }
        Status::Failed => {
            eprintln!("error: {}", row.error);
            Ok(WORKER_FAILED)
        }
    }
}

/// Ends this worker when the sweep that started it dies (SIGKILL leaves workers orphaned):
/// its point is then rerun by the next sweep, and a finished orphan never records a point twice.
fn exit_with_parent() {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(500));
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(i32::from(exit::FAILED));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widest_and_longest_points_are_estimated_as_the_most_work() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/ci.toml");
        let experiment = Experiment::load(&path, &[]).unwrap();
        let mut points: Vec<&Point> = experiment.points().iter().collect();
        points.sort_by_key(|point| std::cmp::Reverse(estimated_work(point)));
        let hidden = |point: &Point| point.settings.model.hidden.clone();
        assert!(points[..3].iter().all(|p| hidden(p) == [128]));
        // The one point without a hidden layer is the least work.
        assert!(hidden(points.last().unwrap()).is_empty());

        // Twice the epochs, twice the work.
        let a = &experiment.points()[0];
        let mut b = a.clone();
        b.settings.train.epochs *= 2;
        assert_eq!(estimated_work(&b), 2 * estimated_work(a));
    }
}
