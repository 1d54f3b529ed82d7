//! `harness serve`: the page `report --html` writes ([`html::render`], the same code), served
//! on a local port and kept up to date while a sweep runs.
//!
//! One thread reads ([`Scanner`]): every [`SCAN_EVERY`] it looks at the runs files (one, or
//! every `runs*.csv` of a folder, as shards leave them), reads a file again only when its
//! length, time or identity changed, and reads the live feed beside each
//! ([`crate::record::live`]): the runs being trained, with their epochs so far, and the plans of
//! the sweeps running. Every committed row gets a version when it appears or changes; the page
//! asks for the rows newer than the version it has (`/api/updates?since=V`) and gets those, the
//! running runs and the sweep's progress, never the whole file again. A run's epochs come when
//! the page needs them (`/api/epochs?run=ID`: its curve is drawn or its detail opened).
//!
//! Safe by default: it listens on 127.0.0.1 unless `--host` says otherwise; answers only GET
//! and HEAD of three fixed paths (no path is ever mapped to a file, so no URL reaches one:
//! not `..`, not an encoded slash, not a symbolic link); only to a Host header naming the
//! address it listens on (a page of another site that a DNS rebinding points at this port gets
//! 403); with bounded header bytes, header time, connections and connection time; no CORS
//! header, so no other site's script reads its answers. It writes nothing: the files are read
//! under a shared lock, and a commit interrupted by a crash is left for the next command that
//! writes the file to finish (the previous rows are shown meanwhile).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::error::user_error;
use crate::record::journal::journal_path;
use crate::record::live::{self, LiveRun, Plan};
use crate::record::results::{self, EpochRow, Row, RunRow, Status};
use crate::views::html::{self, Cell, ImportancePanel, ReportData};

/// The port `harness serve` listens on unless told.
pub const DEFAULT_PORT: u16 = 6070;
/// Connections served at once; one more is closed as soon as it is accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// The most bytes of a request's line and headers (hyper's read buffer): more gets 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long a connection may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may stay open, however busy.
pub const CONNECTION_TIME: Duration = Duration::from_secs(60);
/// How often the files are looked at.
pub const SCAN_EVERY: Duration = Duration::from_millis(500);
/// How often the page asks for what changed.
pub const POLL_MS: u64 = 1000;
/// The most runs files of a folder read together.
const MAX_FILES: usize = 4096;

/// What `harness serve` is asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// A runs file, or a folder whose `runs*.csv` files are read together.
    pub source: PathBuf,
    pub host: IpAddr,
    pub port: u16,
    /// Host names the server answers to besides its address and `localhost`.
    pub allow_hosts: Vec<String>,
    pub open: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            source: PathBuf::from("results"),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            allow_hosts: Vec::new(),
            open: false,
        }
    }
}

/// The most epochs of one running run an update sends (its last ones).
const LIVE_EPOCHS: usize = 2_000;

/// The runs files `source` stands for: itself, or a folder's regular files named `runs*.csv`
/// (symbolic links are not followed, the folder is what was pointed at: each one skipped is
/// named in `problems`).
fn runs_files(source: &Path, folder: bool, problems: &mut Vec<String>) -> Vec<PathBuf> {
    if !folder {
        return vec![source.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(source) else {
        return Vec::new();
    };
    // A runs file, or the run locks' folder of one not written yet (its first run is
    // training).
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            let kind = e.file_type().ok()?;
            let runs = if kind.is_file() || kind.is_symlink() {
                name
            } else if kind.is_dir() {
                name.strip_suffix(".running")?
            } else {
                return None;
            };
            let wanted = runs.starts_with("runs") && runs.ends_with(".csv");
            if wanted && kind.is_symlink() {
                problems.push(link_skipped(&e.path()));
                return None;
            }
            wanted.then(|| source.join(runs))
        })
        .take(MAX_FILES)
        .collect();
    files.sort();
    files.dedup();
    files
}

fn link_skipped(path: &Path) -> String {
    format!(
        "{} is a symbolic link, not followed: a folder is served as it is (serve the file the \
         link points to, or its folder)",
        path.display()
    )
}

/// What tells a file changed: its length, its modification time and which file it is.
type Fingerprint = (u64, Option<SystemTime>, u64);

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some((metadata.len(), metadata.modified().ok(), inode))
}

/// How far a results file has been read: a commit only appends whole lines, so a file that
/// grew is parsed from where the last read ended, once every byte before that point is found
/// unchanged (a file rewritten in place, by `cp` over it, keeps its inode and may keep its
/// length); anything else is parsed again whole.
#[derive(Default)]
struct Tracker {
    fingerprint: Option<Fingerprint>,
    /// Bytes read, up to the last newline.
    read: u64,
    /// A hash of those bytes.
    prefix: u64,
}

/// New rows of a file: all of them (`whole`: it was read again from the start), or the ones
/// after those read before.
struct Fresh<T> {
    whole: bool,
    rows: Vec<T>,
}

/// Reads what is new in `path` (without writing anything: [`results::read_without_writing`]'s
/// shared lock), or None when it has not changed; an error leaves the tracker as it was, for
/// the next look. When the file only grew, what was read before is hashed as it streams by
/// (1 MiB at a time) and only the rest is held and parsed.
fn read_new<T: Row>(tracker: &mut Tracker, path: &Path) -> Result<Option<Fresh<T>>, String> {
    use std::hash::Hasher as _;
    use std::io::Read as _;
    let now = fingerprint(path);
    if now == tracker.fingerprint {
        return Ok(None);
    }
    let Some((len, _, inode)) = now else {
        *tracker = Tracker::default();
        return Ok(Some(Fresh {
            whole: true,
            rows: Vec::new(),
        }));
    };
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let locked =
        crate::record::journal::Locked::open_shared(path, T::WHAT).map_err(|e| format!("{e:#}"))?;
    let same_file = tracker.fingerprint.is_some_and(|(_, _, was)| was == inode);
    if same_file && tracker.read > 0 && len >= tracker.read {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut file = (&locked.file).take(crate::input::CSV_MAX);
        let mut buffer = vec![0u8; 1 << 20];
        let mut left = tracker.read;
        while left > 0 {
            let want = left.min(buffer.len() as u64) as usize;
            let n = file.read(&mut buffer[..want]).map_err(cannot)?;
            if n == 0 {
                break;
            }
            hasher.write(&buffer[..n]);
            left -= n as u64;
        }
        if left == 0 && hasher.finish() == tracker.prefix {
            let mut rest = Vec::new();
            file.read_to_end(&mut rest).map_err(cannot)?;
            let complete = rest.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let mut text = results::header::<T>().into_bytes();
            text.push(b'\n');
            text.extend_from_slice(&rest[..complete]);
            let rows = results::parse::<T>(&text, path).map_err(|e| format!("{e:#}"))?;
            hasher.write(&rest[..complete]);
            *tracker = Tracker {
                fingerprint: now,
                read: tracker.read + complete as u64,
                prefix: hasher.finish(),
            };
            return Ok(Some(Fresh { whole: false, rows }));
        }
    }
    let bytes = locked.contents().map_err(|e| format!("{e:#}"))?;
    let rows = results::parse::<T>(&bytes, path).map_err(|e| format!("{e:#}"))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hasher.write(&bytes[..complete]);
    *tracker = Tracker {
        fingerprint: now,
        read: complete as u64,
        prefix: hasher.finish(),
    };
    Ok(Some(Fresh { whole: true, rows }))
}

/// A runs file as read so far: its rows and their cells in the page's columns.
#[derive(Default)]
struct RunsFile {
    tracker: Tracker,
    rows: Vec<RunRow>,
    cells: Vec<Vec<Cell>>,
}

/// An epochs file as read so far: each attempt's epochs, as numbers in the page's epoch
/// columns (NaN where missing), a row after another in file order.
#[derive(Default)]
struct EpochsFile {
    tracker: Tracker,
    by_attempt: HashMap<String, Vec<f64>>,
}

impl RunsFile {
    fn refresh(&mut self, path: &Path, columns: &[String]) -> Result<bool, String> {
        let Some(Fresh { whole, rows }) = read_new::<RunRow>(&mut self.tracker, path)? else {
            return Ok(false);
        };
        if whole {
            self.rows.clear();
            self.cells.clear();
        }
        self.cells
            .extend(rows.iter().map(|row| html::row_cells(row, columns)));
        self.rows.extend(rows);
        Ok(true)
    }
}

impl EpochsFile {
    fn refresh(&mut self, path: &Path, columns: &[String]) -> Result<bool, String> {
        let Some(Fresh { whole, rows }) = read_new::<EpochRow>(&mut self.tracker, path)? else {
            return Ok(false);
        };
        if whole {
            self.by_attempt.clear();
        }
        for epoch in &rows {
            self.by_attempt
                .entry(epoch.attempt.clone())
                .or_default()
                .extend(epoch_numbers(epoch, columns));
        }
        Ok(true)
    }
}

/// A run as the page shows it, and the version it got when it last changed.
#[derive(Clone, Debug)]
struct Shown {
    run_id: String,
    attempt: String,
    cells: Vec<Cell>,
    version: u64,
}

/// The committed runs, as of the last look.
#[derive(Default)]
struct Committed {
    /// Bumped when a run disappears (a file rewritten, a shard removed): a page then loads
    /// again instead of asking what changed.
    generation: u64,
    version: u64,
    rows: Vec<Shown>,
    index: HashMap<String, usize>,
    /// Every attempt in the files (a running attempt already committed is not shown running).
    attempts: HashSet<String>,
    folded: usize,
}

/// Computes which settings mattered for the latest rows it is sent, into `state.importance`;
/// waits between two computations ten times as long as the last took (at least two seconds),
/// so that a big sweep's page does not take a core from its training.
fn importance_thread(state: Arc<State>, rows: std::sync::mpsc::Receiver<Vec<RunRow>>) {
    while let Ok(mut latest) = rows.recv() {
        while let Ok(newer) = rows.try_recv() {
            latest = newer;
        }
        let started = std::time::Instant::now();
        let shown: Vec<&RunRow> = latest.iter().collect();
        let panel = html::importance_panel(&shown);
        *state.importance.write().unwrap_or_else(|e| e.into_inner()) = panel;
        std::thread::sleep((started.elapsed() * 10).max(Duration::from_secs(2)));
    }
}

/// A running run, for the page.
#[derive(Clone, Debug, Serialize)]
struct Running {
    /// The row to be, in the page's columns (status `running`).
    cells: Vec<Cell>,
    epochs: Vec<Vec<Cell>>,
    planned_epochs: u64,
    pid: u32,
}

/// A sweep's progress, from the plans of the sweeps running and the rows and feeds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
struct Progress {
    experiments: Vec<String>,
    stages: Vec<String>,
    points: usize,
    ok: usize,
    failed: usize,
    running: usize,
    pending: usize,
    epochs_left: u64,
    /// Seconds an epoch takes, from the epochs measured (running runs first).
    seconds_per_epoch: Option<f64>,
    epochs_measured: usize,
    seconds_left: Option<f64>,
}

/// Everything a request is answered from.
#[derive(Default)]
struct View {
    committed: Arc<Committed>,
    running: Arc<Vec<Running>>,
    progress: Progress,
    problems: Vec<String>,
}

struct State {
    view: RwLock<View>,
    /// The epochs files as read, for `/api/epochs` (the scanner updates them in place).
    epochs: RwLock<BTreeMap<PathBuf, EpochsFile>>,
    /// Which settings mattered, as last computed ([`importance_thread`]).
    importance: RwLock<Option<ImportancePanel>>,
    /// The page as last rendered, for (generation, version, running count).
    page: Mutex<Option<((u64, u64), Bytes)>>,
    source: String,
    epochs_source: String,
    columns: Vec<String>,
    numeric: Vec<bool>,
    epoch_columns: Vec<String>,
    allowed_hosts: Vec<String>,
}

/// Reads the files over and over, into the shared [`View`].
struct Scanner {
    source: PathBuf,
    folder: bool,
    runs: BTreeMap<PathBuf, RunsFile>,
    committed: Arc<Committed>,
    /// Where the rows go to have their importance computed ([`importance_thread`]).
    importance: std::sync::mpsc::Sender<Vec<RunRow>>,
}

impl Scanner {
    /// The rows that stand for each run, in every file.
    fn shown_rows(&self) -> Vec<&RunRow> {
        let rows: Vec<&RunRow> = self.runs.values().flat_map(|f| f.rows.iter()).collect();
        results::effective_positions(rows.iter().copied())
            .into_iter()
            .map(|k| rows[k])
            .collect()
    }

    fn scan(&mut self, state: &State) {
        let mut problems = Vec::new();
        let files = runs_files(&self.source, self.folder, &mut problems);
        let mut changed =
            self.runs.len() != files.len() || !files.iter().all(|f| self.runs.contains_key(f));
        self.runs.retain(|path, _| files.contains(path));
        state
            .epochs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|path, _| files.contains(path));
        for path in &files {
            if journal_path(path).exists() {
                // A commit in progress, or one a crash interrupted: the file is read as it is
                // (a cut last line waits), and the next command that writes it finishes it.
                problems.push(format!(
                    "{}: a commit is in progress or was interrupted ({}); its rows are shown \
                     as the file holds them now, and the next harness run, sweep or merge \
                     that writes it finishes the commit",
                    path.display(),
                    journal_path(path).display()
                ));
            }
            // The epochs first: a row is committed after its epochs, so a page that sees the
            // row finds its epochs.
            let epochs_path = crate::record::upgrade::epochs_beside(path);
            let linked = self.folder && epochs_path.is_symlink();
            let mut epochs = state.epochs.write().unwrap_or_else(|e| e.into_inner());
            if linked {
                problems.push(link_skipped(&epochs_path));
                epochs.insert(path.clone(), EpochsFile::default());
            } else if let Err(why) = epochs
                .entry(path.clone())
                .or_default()
                .refresh(&epochs_path, &state.epoch_columns)
            {
                problems.push(why);
            }
            drop(epochs);
            match self
                .runs
                .entry(path.clone())
                .or_default()
                .refresh(path, &state.columns)
            {
                Ok(now) => changed |= now,
                Err(why) => problems.push(why),
            }
        }
        if changed {
            self.committed = Arc::new(self.rebuild());
            let shown: Vec<RunRow> = self.shown_rows().into_iter().cloned().collect();
            // The importance of 10,000 runs takes a second: computed beside, not in the way of
            // the next look.
            let _ = self.importance.send(shown);
        }
        let mut running = Vec::new();
        let mut plans = Vec::new();
        for path in &files {
            let (live, plan, trouble) = live::read(path);
            running.extend(live);
            plans.extend(plan);
            problems.extend(trouble);
        }
        // A run found both committed and running is between its commit and the removal of its
        // feed: it is committed.
        running.retain(|run| !self.committed.attempts.contains(&run.row.attempt));
        running.sort_by(|a, b| a.row.started_at.cmp(&b.row.started_at));
        let progress = progress(&plans, &running, &self.committed, &state.columns);
        let running = running
            .iter()
            .map(|run| running_view(run, &state.columns, &state.epoch_columns))
            .collect();
        let mut view = state.view.write().unwrap_or_else(|e| e.into_inner());
        *view = View {
            committed: self.committed.clone(),
            running: Arc::new(running),
            progress,
            problems,
        };
    }

    /// The committed runs from every file's rows, versions carried over from the last look.
    fn rebuild(&self) -> Committed {
        let old = &self.committed;
        let rows: Vec<(&RunRow, &Vec<Cell>)> = self
            .runs
            .values()
            .flat_map(|file| file.rows.iter().zip(&file.cells))
            .collect();
        let standing = results::effective_positions(rows.iter().map(|(row, _)| *row));
        let mut version = old.version;
        let mut generation = old.generation;
        let mut shown_rows = Vec::with_capacity(standing.len());
        let mut index = HashMap::with_capacity(standing.len());
        for &k in &standing {
            let (row, cells) = rows[k];
            let previous = old.index.get(&row.run_id).map(|&i| &old.rows[i]);
            let row_version = match previous {
                Some(previous) if previous.cells == *cells => previous.version,
                _ => {
                    version += 1;
                    version
                }
            };
            index.insert(row.run_id.clone(), shown_rows.len());
            shown_rows.push(Shown {
                run_id: row.run_id.clone(),
                attempt: row.attempt.clone(),
                cells: cells.clone(),
                version: row_version,
            });
        }
        if old.rows.iter().any(|r| !index.contains_key(&r.run_id)) {
            generation += 1;
        }
        let shown: Vec<&RunRow> = standing.iter().map(|&k| rows[k].0).collect();
        Committed {
            generation,
            version,
            attempts: rows.iter().map(|(r, _)| r.attempt.clone()).collect(),
            folded: rows.len() - shown.len(),
            rows: shown_rows,
            index,
        }
    }
}

/// An epoch's values in the page's epoch columns (NaN where a cell is not a number).
fn epoch_numbers(epoch: &EpochRow, columns: &[String]) -> Vec<f64> {
    html::epoch_cells(epoch, columns)
        .iter()
        .map(|c| match c {
            Cell::Number(n) => *n,
            _ => f64::NAN,
        })
        .collect()
}

fn running_view(run: &LiveRun, columns: &[String], epoch_columns: &[String]) -> Running {
    let mut cells = html::row_cells(&run.row, columns);
    let last = run.epochs.last();
    if let Some(status) = columns.iter().position(|c| c == "status") {
        cells[status] = Cell::Text("running".into());
    }
    // What only the end of a run says: not known yet (the feed's row has the defaults, which
    // would read `stop_reason failed`, `best_epoch 0`).
    for (k, name) in columns.iter().enumerate() {
        match name.as_str() {
            "stop_reason" | "error" | "model_sha256" => cells[k] = Cell::Text(String::new()),
            "best_epoch" => cells[k] = Cell::Missing,
            _ => {}
        }
    }
    // What the row will say, as far as the epochs tell it.
    let set = |cells: &mut Vec<Cell>, name: &str, value: f64| {
        if let Some(at) = columns.iter().position(|c| c == name) {
            cells[at] = if value.is_finite() {
                Cell::Number(value)
            } else {
                Cell::Missing
            };
        }
    };
    if let Some(last) = last {
        set(&mut cells, "epochs_trained", last.epoch as f64);
        set(&mut cells, "train_loss", last.train_loss);
        set(&mut cells, "train_accuracy", last.train_accuracy);
        set(&mut cells, "val_loss", last.val_loss);
        set(&mut cells, "val_accuracy", last.val_accuracy);
        set(&mut cells, "test_loss", last.test_loss);
        set(&mut cells, "test_accuracy", last.test_accuracy);
        let seconds: f64 = run.epochs.iter().map(|e| e.train_seconds).sum();
        set(&mut cells, "train_seconds", seconds);
    }
    // Every update sends every running run's epochs: its last LIVE_EPOCHS (all of them once
    // it is committed, from /api/epochs).
    let from = run.epochs.len().saturating_sub(LIVE_EPOCHS);
    Running {
        cells,
        epochs: run.epochs[from..]
            .iter()
            .map(|e| html::epoch_cells(e, epoch_columns))
            .collect(),
        planned_epochs: run.header.epochs,
        pid: run.header.pid,
    }
}

/// Where the running sweeps stand: their points done, running and pending, and the time left
/// from the epochs measured so far.
fn progress(
    plans: &[Plan],
    running: &[LiveRun],
    committed: &Committed,
    columns: &[String],
) -> Progress {
    let mut progress = Progress::default();
    let live: HashMap<&str, &LiveRun> =
        running.iter().map(|r| (r.row.run_id.as_str(), r)).collect();
    let mut seen = HashSet::new();
    let mut jobs = 0;
    let mut measured: Vec<f64> = running
        .iter()
        .flat_map(|r| r.epochs.iter())
        .map(|e| e.train_seconds + e.eval_seconds)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .collect();
    let from_running = measured.len();
    let mut from_rows = Vec::new();
    for plan in plans {
        if !progress.experiments.contains(&plan.experiment) {
            progress.experiments.push(plan.experiment.clone());
        }
        if !plan.stage.is_empty() && !progress.stages.contains(&plan.stage) {
            progress.stages.push(plan.stage.clone());
        }
        jobs += plan.jobs.max(1);
        for point in &plan.points {
            if !seen.insert(point.run_id.as_str()) {
                continue;
            }
            progress.points += 1;
            if let Some(run) = live.get(point.run_id.as_str()) {
                progress.running += 1;
                let done = run.epochs.last().map_or(0, |e| e.epoch);
                progress.epochs_left = progress
                    .epochs_left
                    .saturating_add(run.header.epochs.saturating_sub(done));
                continue;
            }
            let row = committed
                .index
                .get(&point.run_id)
                .map(|&i| &committed.rows[i]);
            match row.map(|r| status_of(&r.cells, columns)) {
                Some(Some(Status::Failed)) => progress.failed += 1,
                Some(_) => {
                    progress.ok += 1;
                    if let Some(r) = row
                        && let Some(per_epoch) = seconds_per_epoch(&r.cells, columns)
                    {
                        from_rows.push(per_epoch);
                    }
                }
                None => {
                    progress.pending += 1;
                    progress.epochs_left = progress.epochs_left.saturating_add(point.epochs);
                }
            }
        }
    }
    progress.running = progress
        .running
        .max(if plans.is_empty() { running.len() } else { 0 });
    if measured.is_empty() {
        measured = from_rows;
    }
    progress.epochs_measured = measured.len().max(from_running);
    if !measured.is_empty() {
        let mean = measured.iter().sum::<f64>() / measured.len() as f64;
        progress.seconds_per_epoch = Some(mean);
        let parallel = jobs.clamp(1, (progress.running + progress.pending).max(1));
        progress.seconds_left = Some(progress.epochs_left as f64 * mean / parallel as f64);
    }
    progress
}

fn cell<'a>(cells: &'a [Cell], columns: &[String], name: &str) -> Option<&'a Cell> {
    columns.iter().position(|c| c == name).map(|i| &cells[i])
}

fn status_of(cells: &[Cell], columns: &[String]) -> Option<Status> {
    match cell(cells, columns, "status")? {
        Cell::Text(t) if t == "failed" => Some(Status::Failed),
        Cell::Text(t) if t == "ok" => Some(Status::Ok),
        _ => None,
    }
}

fn seconds_per_epoch(cells: &[Cell], columns: &[String]) -> Option<f64> {
    let number = |name| match cell(cells, columns, name) {
        Some(Cell::Number(n)) => Some(*n),
        _ => None,
    };
    let epochs = number("epochs_trained").filter(|n| *n > 0.0)?;
    let seconds = number("train_seconds")? + number("eval_seconds").unwrap_or(0.0);
    Some(seconds / epochs).filter(|s| s.is_finite())
}

/// `harness serve`: checks the source and the address (exit 2 on a mistake, before listening),
/// prints the URL, and serves until interrupted.
pub fn command(options: &Options) -> Result<u8> {
    let source = &options.source;
    let metadata = std::fs::metadata(source).map_err(|e| {
        user_error(format!(
            "cannot serve {}: {e}; give a runs file (results/runs.csv) or a folder of runs \
             files (results/, where shards leave runs-*.csv)",
            source.display()
        ))
    })?;
    let folder = metadata.is_dir();
    if !folder {
        // A file that is not a runs file is a mistake to say now, not a warning to repeat.
        crate::input::regular_file(source, "runs file", crate::input::CSV_MAX)?;
        if !journal_path(source).exists() {
            results::read_without_writing::<RunRow>(source)?;
        }
    }
    // A Host header is compared as NAME:PORT with the server's port: a name with a port, a
    // path or nothing in it could never match.
    for name in &options.allow_hosts {
        let plain_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !plain_name {
            return Err(user_error(format!(
                "--allow-host takes a host name without a port (letters, digits, - and .; the \
                 port is the server's, --port): got {name:?}"
            )));
        }
    }
    let address = SocketAddr::new(options.host, options.port);
    let listener = std::net::TcpListener::bind(address).map_err(|e| {
        user_error(format!(
            "cannot listen on {address}: {e}{}",
            if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another harness serve? --port N picks another port, --port 0 any free one)"
            } else {
                ""
            }
        ))
    })?;
    let bound = listener.local_addr()?;
    let host_text = match bound.ip() {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let mut allowed_hosts = vec![
        format!("localhost:{}", bound.port()),
        format!("127.0.0.1:{}", bound.port()),
        format!("[::1]:{}", bound.port()),
    ];
    if !bound.ip().is_unspecified() {
        let own = format!("{host_text}:{}", bound.port());
        if !allowed_hosts.contains(&own) {
            allowed_hosts.push(own);
        }
    }
    for name in &options.allow_hosts {
        allowed_hosts.push(format!("{}:{}", name.to_ascii_lowercase(), bound.port()));
    }
    if !options.host.is_loopback() {
        eprintln!(
            "harness serve: warning: listening on {bound}, not only on this machine: anyone who \
             can reach this address can read these runs (there is no login).{}",
            if options.host.is_unspecified() && options.allow_hosts.is_empty() {
                " Browsers must use a name --allow-host lets in (requests naming another host \
                 are refused)."
            } else {
                ""
            }
        );
    }
    // The address it listens on (::1 and 127.0.0.2 are loopback too, but not 127.0.0.1); for
    // every address, this machine's own.
    let url_host = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
        _ => host_text,
    };
    let url = format!("http://{url_host}:{}/", bound.port());

    let (columns, numeric) = html::run_columns();
    let state = Arc::new(State {
        view: RwLock::new(View::default()),
        epochs: RwLock::new(BTreeMap::new()),
        importance: RwLock::new(None),
        page: Mutex::new(None),
        source: source.display().to_string(),
        epochs_source: if folder {
            format!("{}/epochs*.csv", source.display())
        } else {
            crate::record::upgrade::epochs_beside(source)
                .display()
                .to_string()
        },
        columns,
        numeric,
        epoch_columns: html::epoch_columns(),
        allowed_hosts,
    });
    let (importance, rows) = std::sync::mpsc::channel();
    let mut scanner = Scanner {
        source: source.clone(),
        folder,
        runs: BTreeMap::new(),
        committed: Arc::new(Committed::default()),
        importance,
    };
    scanner.scan(&state);
    // The first page has the importance, if there is one.
    if let Ok(first) = rows.try_recv() {
        let shown: Vec<&RunRow> = first.iter().collect();
        *state.importance.write().unwrap_or_else(|e| e.into_inner()) =
            html::importance_panel(&shown);
    }
    {
        let state = state.clone();
        std::thread::Builder::new()
            .name("importance".into())
            .spawn(move || importance_thread(state, rows))
            .context("cannot start the thread that ranks the settings")?;
    }
    {
        let view = state.view.read().unwrap_or_else(|e| e.into_inner());
        println!(
            "harness serve: {url} shows {} ({} runs, {} running); Ctrl-C stops it",
            source.display(),
            view.committed.rows.len(),
            view.running.len()
        );
        for problem in &view.problems {
            eprintln!("harness serve: warning: {problem}");
        }
    }
    if options.open {
        open_browser(&url);
    }
    {
        let state = state.clone();
        std::thread::Builder::new()
            .name("scan".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(SCAN_EVERY);
                    scanner.scan(&state);
                }
            })
            .context("cannot start the thread that reads the runs files")?;
    }
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    runtime.block_on(serve(listener, state))
}

/// Opens `url` in the desktop's browser, where there is a desktop; else says to.
fn open_browser(url: &str) {
    let desktop = std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || cfg!(target_os = "macos");
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let opened = desktop
        && std::process::Command::new(program)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok();
    if !opened {
        eprintln!("harness serve: no browser to open here; open {url} in one");
    }
}

async fn serve(listener: std::net::TcpListener, state: Arc<State>) -> Result<u8> {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of file descriptors, or a connection reset before it was accepted: go on.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&state, &request)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIME, connection).await;
        });
    }
}

type Answer = Response<Full<Bytes>>;

fn plain(status: StatusCode, text: impl Into<String>) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(text.into() + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(value: &impl Serialize) -> Answer {
    let bytes = serde_json::to_vec(value).expect("a view serializes");
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Every request's answer, with the headers every answer carries.
fn answer<B>(state: &State, request: &Request<B>) -> Answer {
    let mut response = route(state, request);
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn route<B>(state: &State, request: &Request<B>) -> Answer {
    // Exactly one Host header (RFC 9112, 3.2: a second is a 400), else a proxy that reads the
    // other one would disagree with this check.
    if request.headers().get_all(header::HOST).iter().count() > 1 {
        return plain(StatusCode::BAD_REQUEST, "a request has one Host header");
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    let Some(host) = host else {
        return plain(StatusCode::BAD_REQUEST, "a request needs a Host header");
    };
    if !state.allowed_hosts.contains(&host) {
        return plain(
            StatusCode::FORBIDDEN,
            format!(
                "harness serve answers only to {} (a Host header naming another host is refused, \
                 against DNS rebinding; --allow-host NAME lets a name in)",
                state.allowed_hosts.join(", ")
            ),
        );
    }
    // Only a path, as a browser asks for one: no absolute URL, no authority.
    if request.uri().scheme().is_some() || request.uri().authority().is_some() {
        return plain(StatusCode::BAD_REQUEST, "only a path may be asked for");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "harness serve only reads: GET and HEAD",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let query = request.uri().query().unwrap_or("");
    match request.uri().path() {
        "/" => page(state),
        "/api/updates" => updates(state, query),
        "/api/epochs" => epochs(state, query),
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: harness serve answers /, /api/updates and /api/epochs",
        ),
    }
}

/// The value of `key` in a query string, if there once.
fn parameter<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn page(state: &State) -> Answer {
    let (committed, key) = {
        let view = state.view.read().unwrap_or_else(|e| e.into_inner());
        let c = view.committed.clone();
        let key = (c.generation, c.version);
        (c, key)
    };
    let cached = state
        .page
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .filter(|(k, _)| *k == key)
        .map(|(_, page)| page.clone());
    let bytes = match cached {
        Some(bytes) => bytes,
        None => {
            let data = ReportData {
                source: state.source.clone(),
                columns: state.columns.clone(),
                numeric: state.numeric.clone(),
                rows: committed.rows.iter().map(|r| r.cells.clone()).collect(),
                folded: committed.folded,
                epoch_columns: state.epoch_columns.clone(),
                epochs: Vec::new(),
                importance: state
                    .importance
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            };
            let live = html::Live {
                version: committed.version,
                generation: committed.generation,
                interval_ms: POLL_MS,
                updates: "/api/updates",
                epochs: "/api/epochs",
            };
            let html = match html::render(
                &data,
                Path::new(&state.epochs_source),
                &BTreeMap::new(),
                &[],
                0,
                Some(&live),
            ) {
                Ok(html) => html,
                Err(error) => {
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}"));
                }
            };
            let bytes = Bytes::from(html);
            *state.page.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, bytes.clone()));
            bytes
        }
    };
    let mut response = Response::new(Full::new(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; style-src \
             'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'none'",
        ),
    );
    response
}

#[derive(Serialize)]
struct Updates<'a> {
    generation: u64,
    version: u64,
    /// The page must load again (its rows are of another generation).
    reload: bool,
    /// Run ids and cells of the rows newer than the page's version.
    rows: Vec<&'a [Cell]>,
    running: &'a [Running],
    progress: &'a Progress,
    problems: &'a [String],
    folded: usize,
    importance: Option<ImportancePanel>,
}

fn updates(state: &State, query: &str) -> Answer {
    let number = |key| parameter(query, key).and_then(|v| v.parse::<u64>().ok());
    let (Some(since), Some(generation)) = (number("since"), number("generation")) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "/api/updates needs since=VERSION&generation=GENERATION (numbers)",
        );
    };
    let view = state.view.read().unwrap_or_else(|e| e.into_inner());
    let committed = &view.committed;
    let reload = generation != committed.generation || since > committed.version;
    let rows = if reload {
        Vec::new()
    } else {
        committed
            .rows
            .iter()
            .filter(|r| r.version > since)
            .map(|r| r.cells.as_slice())
            .collect()
    };
    json(&Updates {
        generation: committed.generation,
        version: committed.version,
        reload,
        rows,
        running: &view.running,
        progress: &view.progress,
        problems: &view.problems,
        folded: committed.folded,
        importance: state
            .importance
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    })
}

fn epochs(state: &State, query: &str) -> Answer {
    let Some(run_id) = parameter(query, "run").filter(|id| {
        !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    }) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "/api/epochs needs run=RUN_ID (letters, digits, - _ .)",
        );
    };
    let view = state.view.read().unwrap_or_else(|e| e.into_inner());
    let committed = &view.committed;
    let Some(shown) = committed.index.get(run_id).map(|&i| &committed.rows[i]) else {
        return plain(StatusCode::NOT_FOUND, format!("no committed run {run_id}"));
    };
    let width = state.epoch_columns.len().max(1);
    let epoch_at = state.epoch_columns.iter().position(|c| c == "epoch");
    let files = state.epochs.read().unwrap_or_else(|e| e.into_inner());
    let mut rows: Vec<Vec<Option<f64>>> = files
        .values()
        .filter_map(|file| file.by_attempt.get(&shown.attempt))
        .flat_map(|values| values.chunks(width))
        .map(|row| row.iter().map(|v| v.is_finite().then_some(*v)).collect())
        .collect();
    if let Some(at) = epoch_at {
        rows.sort_by(|a: &Vec<Option<f64>>, b| {
            a[at].unwrap_or(0.0).total_cmp(&b[at].unwrap_or(0.0))
        });
    }
    json(&serde_json::json!({ "run_id": shown.run_id, "attempt": shown.attempt, "epochs": rows }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: usize) -> RunRow {
        RunRow {
            run_id: format!("r{k:011}"),
            attempt: format!("a{k:011}"),
            name: format!("run-{k}-{}", "x".repeat(200)),
            ..RunRow::default()
        }
    }

    /// A file over the 1 MiB the check streams at a time: appended rows are read alone, an
    /// edit in place (same length) anywhere before them makes the file read again whole.
    #[test]
    fn appends_are_read_alone_and_an_edit_in_place_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        let rows: Vec<RunRow> = (0..6000).map(row).collect();
        std::fs::write(&path, results::to_csv(&rows, true)).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 2 << 20);
        let mut tracker = Tracker::default();
        let first = read_new::<RunRow>(&mut tracker, &path).unwrap().unwrap();
        assert!(first.whole);
        assert_eq!(first.rows.len(), 6000);
        assert!(read_new::<RunRow>(&mut tracker, &path).unwrap().is_none());

        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, &results::to_csv(&[row(6000)], false)).unwrap();
        drop(file);
        let more = read_new::<RunRow>(&mut tracker, &path).unwrap().unwrap();
        assert!(!more.whole, "an append is read alone");
        assert_eq!(more.rows.len(), 1);
        assert_eq!(more.rows[0].run_id, row(6000).run_id);

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("run-7-", "RUN-7-", 1)).unwrap();
        let again = read_new::<RunRow>(&mut tracker, &path).unwrap().unwrap();
        assert!(again.whole, "an edit in place is read again whole");
        assert_eq!(again.rows.len(), 6001);
        assert!(again.rows[7].name.starts_with("RUN-7-"));
    }
}
