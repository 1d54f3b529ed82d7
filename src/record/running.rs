//! Which runs are being trained right now: one lock per run, beside the runs file, held by the
//! process that trains it and released by the kernel when that process ends, however it ends.
//!
//! `<runs file>.running/<run_id>.lock` (beside the runs file's real path) is locked with an
//! exclusive `flock` for as long as a process trains the run, and holds that process's id, its
//! attempt and when it started, for people and for tools that show what is running. A sweep
//! starts a point only when it can take the point's lock, so two sweeps of one experiment share
//! the work instead of both training every point; `harness run` waits for the lock. The file
//! is removed when its holder is done; a file left by a process that was killed holds no lock
//! and is taken over by the next one.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::record::journal::{real_path, sibling};

/// The folder of run locks beside the runs file `runs`.
pub fn folder(runs: &Path) -> PathBuf {
    sibling(&real_path(runs), "running")
}

/// A held run lock: the run is trained by this process until it is dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

/// What [`try_lock`] found.
#[derive(Debug)]
pub enum Taken {
    /// The lock is this process's now.
    Held(RunLock),
    /// Another live process trains the run; what its lock file says of it.
    Busy(String),
}

/// Takes the lock of `run_id` beside `runs` if no other process holds it.
pub fn try_lock(runs: &Path, run_id: &str, attempt: &str) -> Result<Taken> {
    lock_with(runs, run_id, attempt, false)
}

/// Takes the lock of `run_id` beside `runs`, waiting while another process holds it; `waiting`
/// is called once if it has to wait, with what the holder's file says.
pub fn lock(
    runs: &Path,
    run_id: &str,
    attempt: &str,
    waiting: impl FnOnce(&str),
) -> Result<RunLock> {
    match lock_with(runs, run_id, attempt, false)? {
        Taken::Held(lock) => Ok(lock),
        Taken::Busy(holder) => {
            waiting(&holder);
            match lock_with(runs, run_id, attempt, true)? {
                Taken::Held(lock) => Ok(lock),
                Taken::Busy(_) => unreachable!("a blocking lock waits until it is held"),
            }
        }
    }
}

fn lock_with(runs: &Path, run_id: &str, attempt: &str, wait: bool) -> Result<Taken> {
    let dir = folder(runs);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let path = dir.join(format!("{run_id}.lock"));
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the run lock {}", path.display()))?;
        if wait {
            file.lock()
                .with_context(|| format!("cannot lock {}", path.display()))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    return Ok(Taken::Busy(holder.trim().to_string()));
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
        // A holder that finished removed the file after this process opened it: the lock is
        // on a file no one else will find. Take the lock of the file that is there now.
        if !same_file(&file, &path) {
            continue;
        }
        let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        file.set_len(0)
            .and_then(|()| {
                (&file).write_all(
                    format!(
                        "pid {} attempt {attempt} started {started}\n",
                        std::process::id()
                    )
                    .as_bytes(),
                )
            })
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(Taken::Held(RunLock { file, path }));
    }
}

/// Whether `file` is still the file at `path` (not removed or replaced since it was opened).
#[cfg(unix)]
pub(crate) fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
pub(crate) fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still held, so that no process takes the lock of a file that is gone
        // without noticing (it checks the file it locked is still the one there).
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether a live process holds the lock of `run_id` beside `runs` (for tools that show what is
/// running; a left-over file of a killed process holds none).
pub fn is_running(runs: &Path, run_id: &str) -> bool {
    let path = folder(runs).join(format!("{run_id}.lock"));
    match crate::input::open_read(&path) {
        Ok(file) => match file.try_lock_shared() {
            Ok(()) => false,
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(_)) => false,
        },
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let Taken::Held(first) = try_lock(&runs, "r1", "a1").unwrap() else {
            panic!("the first lock is taken");
        };
        assert!(is_running(&runs, "r1"));
        match try_lock(&runs, "r1", "a2").unwrap() {
            Taken::Busy(holder) => assert!(holder.contains("attempt a1"), "{holder}"),
            Taken::Held(_) => panic!("a second holder"),
        }
        // Another run is not held up.
        assert!(matches!(
            try_lock(&runs, "r2", "a3").unwrap(),
            Taken::Held(_)
        ));
        let runs_again = runs.clone();
        let waiter = std::thread::spawn(move || {
            let mut waited = false;
            let lock = lock(&runs_again, "r1", "a4", |_| waited = true).unwrap();
            drop(lock);
            waited
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(first);
        assert!(waiter.join().unwrap(), "the waiter waited for the holder");
        assert!(!is_running(&runs, "r1"));
        assert!(!folder(&runs).join("r1.lock").exists());
    }

    #[test]
    fn a_lock_file_left_by_a_killed_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        fs::create_dir_all(folder(&runs)).unwrap();
        fs::write(folder(&runs).join("r1.lock"), "pid 1 attempt a0\n").unwrap();
        assert!(!is_running(&runs, "r1"));
        assert!(matches!(
            try_lock(&runs, "r1", "a1").unwrap(),
            Taken::Held(_)
        ));
    }
}
