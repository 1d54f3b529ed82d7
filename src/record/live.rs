//! The live feed: what a running run has trained so far and what a sweep plans to run, for
//! `harness serve` to show while it happens. Not the record: runs.csv and epochs.csv are
//! written only by the commit protocol ([`crate::record::journal`]), and nothing here is read
//! back by any command that writes them.
//!
//! Both kinds of file live in the run locks' folder beside the runs file
//! ([`running::folder`]), and each is held under an exclusive `flock` by the process that writes
//! it, for as long as it writes it:
//!
//! - `<run_id>.live`: a JSON line with the epoch the run trains to and its process, the run's
//!   row as it will be committed (its settings, nothing measured yet) as a CSV line of
//!   runs.csv's columns, then one CSV line per epoch trained, as epochs.csv will have it
//!   (CSV, not JSON: JSON has no NaN). Removed when the run ends, after its commit.
//! - `sweep-<pid>.plan`: one JSON line naming the points of the stage a sweep is running (their
//!   run ids and epochs), removed when the stage ends.
//!
//! A reader tells a live file from one left by a killed process by its lock ([`is_held`]);
//! the next run or sweep beside the same runs file removes the left-over ones ([`clean`]), as it
//! finishes an interrupted commit. Writing the feed never stops training: a failed write is
//! said once and the feed is dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::record::results::{self, EpochRow, Row, RunRow};
use crate::record::running::{self, same_file};

/// The most bytes read of one live or plan file (a run of 10,000 epochs is ~2.5 MB).
pub const LIVE_MAX: u64 = 16 << 20;

/// The first line of a live file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LiveHeader {
    /// The epoch the run trains to.
    pub epochs: u64,
    pub pid: u32,
}

/// A running run as its live file tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveRun {
    pub header: LiveHeader,
    /// The row the run will commit, with its settings and nothing measured yet.
    pub row: RunRow,
    pub epochs: Vec<EpochRow>,
}

/// One point of a sweep's plan.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PlannedPoint {
    pub run_id: String,
    pub name: String,
    pub epochs: u64,
}

/// What a sweep process is running now: one stage (rung, wave) of one experiment, in a shard.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub experiment: String,
    /// "rung 1", "wave 3", or empty for a sweep without stages.
    pub stage: String,
    pub jobs: usize,
    pub pid: u32,
    pub started_at: String,
    pub points: Vec<PlannedPoint>,
}

/// A file of the feed, created and held under an exclusive lock until dropped, then removed.
#[derive(Debug)]
struct Held {
    file: File,
    path: PathBuf,
}

impl Held {
    /// Creates (or truncates) `path` and locks it. A cleaner that removed the file between the
    /// open and the lock leaves this process holding a file no one finds: it starts again.
    fn create(path: PathBuf) -> Result<Held> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create folder {}", dir.display()))?;
        }
        loop {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            file.lock()
                .with_context(|| format!("cannot lock {}", path.display()))?;
            if !same_file(&file, &path) {
                continue;
            }
            file.set_len(0)
                .with_context(|| format!("cannot write {}", path.display()))?;
            return Ok(Held { file, path });
        }
    }

    /// Appends one JSON line in one write, so that a reader sees whole lines or a last line
    /// without its newline, which it ignores.
    fn line<T: Serialize>(&mut self, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec(value)?;
        bytes.push(b'\n');
        self.write(&bytes)
    }

    /// Appends one row as a CSV line (without the header), in one write.
    fn row<T: Serialize>(&mut self, row: &T) -> Result<()> {
        self.write(&results::to_csv(std::slice::from_ref(row), false))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        (&self.file)
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Removed while still held, so that a reader never takes a removed file for a dead one.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// The live file of `run_id` beside the runs file `runs`.
pub fn live_path(runs: &Path, run_id: &str) -> PathBuf {
    running::folder(runs).join(format!("{run_id}.live"))
}

/// The live feed of one running run: created when it starts, one line per epoch, removed when
/// dropped (after the commit).
#[derive(Debug)]
pub struct Feed {
    held: Option<Held>,
    /// Epochs written so far.
    written: usize,
}

impl Feed {
    /// Starts the feed of the run whose row-to-be is `row`; `None` (after a warning) when the
    /// file cannot be written.
    pub fn start(runs: &Path, row: &RunRow, epochs: u64) -> Feed {
        let header = LiveHeader {
            epochs,
            pid: std::process::id(),
        };
        let held = Held::create(live_path(runs, &row.run_id)).and_then(|mut held| {
            held.line(&header)?;
            held.row(row)?;
            Ok(held)
        });
        match held {
            Ok(held) => Feed {
                held: Some(held),
                written: 0,
            },
            Err(error) => {
                eprintln!("harness: warning: no live view of this run: {error:#}");
                Feed {
                    held: None,
                    written: 0,
                }
            }
        }
    }

    /// Writes the epochs of `all` not written yet (all of them after a resume: the epochs the
    /// checkpoint brought are the run's too).
    pub fn epochs(&mut self, all: &[EpochRow]) {
        let Some(held) = &mut self.held else {
            return;
        };
        for epoch in &all[self.written.min(all.len())..] {
            if let Err(error) = held.row(epoch) {
                eprintln!("harness: warning: the live view of this run stops here: {error:#}");
                self.held = None;
                return;
            }
        }
        self.written = all.len();
    }
}

/// A sweep's plan, held while the stage runs.
#[derive(Debug)]
pub struct PlanFile {
    _held: Option<Held>,
}

impl PlanFile {
    /// Publishes `plan` beside the runs file `runs`; a failure is a warning, not an error.
    pub fn publish(runs: &Path, plan: &Plan) -> PlanFile {
        let path = running::folder(runs).join(format!("sweep-{}.plan", plan.pid));
        let held = Held::create(path).and_then(|mut held| {
            held.line(plan)?;
            Ok(held)
        });
        match held {
            Ok(held) => PlanFile { _held: Some(held) },
            Err(error) => {
                eprintln!("harness: warning: no live view of this sweep's plan: {error:#}");
                PlanFile { _held: None }
            }
        }
    }
}

/// Whether a live process holds the feed file at `path`. Takes a shared lock for an instant:
/// only the file's writer (which waits for it) and [`clean`] (which then leaves the file for
/// the next one) ever contend for it, never the run locks that decide who trains a run.
pub fn is_held(path: &Path) -> bool {
    match crate::input::open_read(path) {
        Ok(file) => match file.try_lock_shared() {
            Ok(()) => false,
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(_)) => false,
        },
        Err(_) => false,
    }
}

/// Removes the feed files beside `runs` that no live process holds (left by killed runs and
/// sweeps); returns how many. Errors are ignored: the files are not the record.
pub fn clean(runs: &Path) -> usize {
    let Ok(entries) = fs::read_dir(running::folder(runs)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let feed = path.extension().is_some_and(|e| e == "live" || e == "plan");
        if !feed {
            continue;
        }
        // Opened without blocking and only if a regular file: a FIFO named `x.live` must not
        // hold up the run that cleans (flock needs no write access).
        let Ok(file) = crate::input::open_read(&path) else {
            continue;
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        if file.try_lock().is_ok() && same_file(&file, &path) && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The bytes of a feed file, at most [`LIVE_MAX`], up to its last newline (a line being
/// written is left for the next look).
fn whole_lines(path: &Path) -> Option<Vec<u8>> {
    let file = crate::input::open_read(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(LIVE_MAX).read_to_end(&mut bytes).ok()?;
    let end = bytes.iter().rposition(|&b| b == b'\n')? + 1;
    bytes.truncate(end);
    Some(bytes)
}

/// The most feeds and plans [`read`] reads beside one runs file at a look.
pub const READ_MAX: usize = 128;

/// The running runs and sweep plans beside the runs file `runs`: only files a live process
/// holds, each read with bounds; a file that does not parse is skipped (and named in the
/// returned problems), never an error. Reads only: takes no lock a writer waits on for longer
/// than an instant, and removes nothing.
pub fn read(runs: &Path) -> (Vec<LiveRun>, Vec<Plan>, Vec<String>) {
    let mut live = Vec::new();
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = fs::read_dir(running::folder(runs)) else {
        return (live, plans, problems);
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    // A folder of a million files is not read to the end, and at most READ_MAX feeds are
    // read a look (a sweep runs one a core).
    let mut read = 0;
    for path in paths.into_iter().take(10_000) {
        let kind = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if (kind != "live" && kind != "plan") || !is_held(&path) {
            continue;
        }
        read += 1;
        if read > READ_MAX {
            problems.push(format!(
                "{}: more than {READ_MAX} runs and plans are live beside {}; the others are \
                 not shown",
                path.display(),
                runs.display()
            ));
            break;
        }
        let Some(bytes) = whole_lines(&path) else {
            continue;
        };
        let mut lines = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        let parsed: Result<(), String> = (|| {
            let first = lines.next().ok_or("empty")?;
            if kind == "plan" {
                plans.push(serde_json::from_slice::<Plan>(first).map_err(|e| e.to_string())?);
                return Ok(());
            }
            let header: LiveHeader = serde_json::from_slice(first).map_err(|e| e.to_string())?;
            let row = one_row::<RunRow>(lines.next().ok_or("no row")?, &path)?;
            let epochs = lines
                .map(|line| one_row::<EpochRow>(line, &path))
                .collect::<Result<Vec<_>, _>>()?;
            live.push(LiveRun {
                header,
                row,
                epochs,
            });
            Ok(())
        })();
        if let Err(why) = parsed {
            problems.push(format!("{}: {why}", path.display()));
        }
    }
    (live, plans, problems)
}

/// One CSV line of a row type's columns.
fn one_row<T: Row>(line: &[u8], path: &Path) -> Result<T, String> {
    let mut bytes = results::header::<T>().into_bytes();
    bytes.push(b'\n');
    bytes.extend_from_slice(line);
    bytes.push(b'\n');
    let mut rows = results::parse::<T>(&bytes, path).map_err(|e| format!("{e:#}"))?;
    match rows.len() {
        1 => Ok(rows.remove(0)),
        n => Err(format!("{n} rows in one line")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run_id: &str) -> RunRow {
        RunRow {
            run_id: run_id.into(),
            attempt: "a1".into(),
            name: "small".into(),
            ..RunRow::default()
        }
    }

    fn epoch(n: u64) -> EpochRow {
        EpochRow {
            run_id: "r1".into(),
            attempt: "a1".into(),
            epoch: n,
            val_accuracy: 0.5 + n as f64 / 100.0,
            ..EpochRow::default()
        }
    }

    #[test]
    fn a_feed_is_read_while_held_and_gone_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let mut feed = Feed::start(&runs, &row("r1"), 3);
        let (live, _, problems) = read(&runs);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].header.epochs, 3);
        assert!(live[0].epochs.is_empty());
        feed.epochs(&[epoch(1)]);
        feed.epochs(&[epoch(1), epoch(2)]);
        let (live, _, _) = read(&runs);
        let seen: Vec<u64> = live[0].epochs.iter().map(|e| e.epoch).collect();
        assert_eq!(seen, [1, 2], "each epoch once, in order");
        // A line being written (no newline yet) waits for the next look.
        (&feed.held.as_ref().unwrap().file)
            .write_all(b"{\"run_id\":")
            .unwrap();
        assert_eq!(read(&runs).0[0].epochs.len(), 2);
        drop(feed);
        assert!(read(&runs).0.is_empty());
        assert!(!live_path(&runs, "r1").exists());
    }

    /// A temporary folder with a runs file's name in it and its feeds' folder made.
    fn feeds_folder() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let folder = running::folder(&runs);
        fs::create_dir_all(&folder).unwrap();
        (dir, runs, folder)
    }

    #[test]
    fn files_of_killed_processes_are_not_shown_and_are_cleaned_up() {
        let (_dir, runs, folder) = feeds_folder();
        let mut dead = Held::create(live_path(&runs, "dead")).unwrap();
        dead.line(&LiveHeader { epochs: 2, pid: 1 }).unwrap();
        dead.row(&row("dead")).unwrap();
        // Killed: the lock goes with the process, the file stays.
        dead.file.unlock().unwrap();
        std::mem::forget(dead);
        fs::write(folder.join("sweep-1.plan"), "{}\n").unwrap();
        fs::write(folder.join("other.lock"), "pid 1\n").unwrap();
        let held = Feed::start(&runs, &row("alive"), 2);
        let (live, plans, _) = read(&runs);
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].row.run_id, "alive");
        assert!(plans.is_empty());
        assert_eq!(
            clean(&runs),
            2,
            "the dead run's feed and the dead sweep's plan"
        );
        assert!(live_path(&runs, "alive").exists(), "a held feed stays");
        assert!(
            folder.join("other.lock").exists(),
            "run locks are not the feed's"
        );
        drop(held);
    }

    /// Regression: a FIFO named like a feed made `clean`, and so every `harness run` beside it,
    /// wait forever for a writer.
    #[cfg(unix)]
    #[test]
    fn a_fifo_named_like_a_feed_is_skipped_not_waited_on() {
        let (_dir, runs, folder) = feeds_folder();
        let fifo = folder.join("evil.live");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let (done, finished) = std::sync::mpsc::channel();
        let runs_path = runs.clone();
        std::thread::spawn(move || done.send(clean(&runs_path)).unwrap());
        let removed = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("clean returns, whatever the folder holds");
        assert_eq!(removed, 0);
        assert!(fifo.exists(), "not a feed: left alone");
    }

    #[test]
    fn a_plan_is_published_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let plan = Plan {
            experiment: "x.toml".into(),
            stage: String::new(),
            jobs: 2,
            pid: std::process::id(),
            started_at: "2026-12-07T00:00:00Z".into(),
            points: vec![PlannedPoint {
                run_id: "r1".into(),
                name: "small".into(),
                epochs: 3,
            }],
        };
        let file = PlanFile::publish(&runs, &plan);
        assert_eq!(read(&runs).1, [plan]);
        drop(file);
        assert!(read(&runs).1.is_empty());
    }

    #[test]
    fn a_feed_that_does_not_parse_is_named_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let mut held = Held::create(live_path(&runs, "bad")).unwrap();
        held.line(&"not a header").unwrap();
        let (live, _, problems) = read(&runs);
        assert!(live.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("bad.live"), "{problems:?}");
    }
}
