//! How a run's rows reach the results files: all of them or none, whatever happens.
//!
//! A run writes two files, one row to runs.csv and one row per epoch to epochs.csv. Appending
//! them one after the other is not atomic: a process killed in between leaves epoch rows without
//! a run row, and the resumed sweep appends them again. So a commit goes through a journal, as
//! SQLite's does:
//!
//! 1. Lock the runs file, then the epochs file (exclusive `flock`s; every writer takes them in
//!    this order). A lock taken on a file that was meanwhile replaced (`harness merge -o` renames
//!    a new file into place) is dropped and taken again on the new file.
//! 2. Finish any commit a dead process left (below), and repair a last line without its newline
//!    (a file cut short by hand or by a full disk): the partial line is moved into
//!    `<file>.partial-<time>` next to the file and a notice says so.
//! 3. Write `<runs file>.journal`: both files' lengths and identities and the bytes to append,
//!    with a SHA-256 of the whole, to a temporary name, fsync, rename into place, fsync the
//!    folder. From this instant the run is committed.
//! 4. Append the epoch rows, fsync; append the run row, fsync.
//! 5. Delete the journal, fsync the folder.
//!
//! Recovery, by whichever harness command next locks the runs file (a writer, or a reader such
//! as `report`): a journal found under the lock belongs to a process that died after step 3
//! (a live writer holds the lock until step 5). Both files are cut back to the journal's lengths
//! and its bytes appended again, which is the same whether the dead process had written none,
//! part or all of them. A file whose identity changed or that became shorter was replaced by
//! something that does not follow this protocol: it is left alone, the journal is kept beside
//! it as `<journal>.unapplied-<time>`, and a warning names both.
//!
//! An I/O error in step 4 (a full disk) cuts both files back and deletes the journal: the
//! command fails and the row is printed, but the files hold exactly what they held before.
//!
//! For tests, `HARNESS_FAILPOINT=<point>` kills the process with SIGKILL at one instant of the
//! commit: `journal` (after step 3), `epochs-half` (half of the epoch bytes written),
//! `epochs` (after the epoch rows), `runs` (after the run row), or makes the epochs append fail
//! as a full disk would (`epochs-enospc`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::user_error;
use crate::input;

/// A results file, open for reading and appending, under an exclusive lock.
pub struct Locked {
    pub file: File,
    pub path: PathBuf,
}

impl Locked {
    /// Opens and locks `path` for reading and appending, creating it (and its folder) when
    /// `create`. Waits for other holders. `what` names the file in errors ("runs file").
    pub fn open(path: &Path, what: &str, create: bool) -> Result<Locked> {
        if create && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
        }
        Self::open_with(path, what, create, Access::Write)
    }

    /// Opens `path` read-only under a shared lock: readers wait for a commit in progress, and
    /// need no write permission.
    pub fn open_shared(path: &Path, what: &str) -> Result<Locked> {
        Self::open_with(path, what, false, Access::Read)
    }

    fn open_with(path: &Path, what: &str, create: bool, access: Access) -> Result<Locked> {
        loop {
            if let Ok(metadata) = fs::metadata(path) {
                input::check_metadata(path, what, input::CSV_MAX, &metadata)?;
            }
            let file = match access {
                Access::Write => OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(create)
                    .open(path),
                Access::Read => File::open(path),
            }
            .map_err(|e| open_error(path, what, &e))?;
            match access {
                Access::Write => file.lock(),
                Access::Read => file.lock_shared(),
            }
            .with_context(|| format!("cannot lock {what} {}", path.display()))?;
            // The path may name another file by now: wait on that one instead.
            let held = file.metadata()?;
            match fs::metadata(path) {
                Ok(now) if same_file(&held, &now) => {
                    input::check_metadata(path, what, input::CSV_MAX, &held)?;
                    return Ok(Locked {
                        file,
                        path: path.to_path_buf(),
                    });
                }
                Ok(_) => continue,
                Err(_) if create => continue,
                Err(e) => return Err(open_error(path, what, &e)),
            }
        }
    }

    /// The file's length in bytes.
    pub fn len(&self) -> Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The whole file (bounded by [`input::CSV_MAX`], checked when it was opened).
    pub fn contents(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        (&self.file).seek(SeekFrom::Start(0))?;
        (&self.file)
            .take(input::CSV_MAX + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        Ok(bytes)
    }

    /// Moves a last line without its newline aside into `<file>.partial-<time>` and cuts the
    /// file before it; returns where it went.
    pub fn repair_partial_line(&self) -> Result<Option<PathBuf>> {
        let len = self.len()?;
        if len == 0 {
            return Ok(None);
        }
        let bytes = self.contents()?;
        if bytes.last() == Some(&b'\n') {
            return Ok(None);
        }
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let aside = sibling(&self.path, &format!("partial-{}", stamp()));
        fs::write(&aside, &bytes[keep..])
            .and_then(|()| File::open(&aside)?.sync_all())
            .with_context(|| format!("cannot write {}", aside.display()))?;
        self.file
            .set_len(keep as u64)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot repair {}", self.path.display()))?;
        eprintln!(
            "harness: {} ended in a partial line (line {}, {} bytes without a newline: a file cut \
             short); moved it to {} and kept the {} complete lines",
            self.path.display(),
            bytes[..keep].iter().filter(|&&b| b == b'\n').count() + 1,
            bytes.len() - keep,
            aside.display(),
            bytes[..keep].iter().filter(|&&b| b == b'\n').count(),
        );
        Ok(Some(aside))
    }
}

/// How a results file is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

fn open_error(path: &Path, what: &str, error: &std::io::Error) -> anyhow::Error {
    user_error(format!("cannot open {what} {}: {error}", path.display()))
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

#[cfg(unix)]
fn identity(metadata: &fs::Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

#[cfg(not(unix))]
fn identity(_metadata: &fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// `<path>.<suffix>`, next to `path`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// A timestamp for file names: `20261129T220528.123Z`.
fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// The journal of the runs file at `runs`.
pub fn journal_path(runs: &Path) -> PathBuf {
    sibling(runs, "journal")
}

/// One file's part of a commit.
#[derive(Debug, Serialize, Deserialize)]
struct Part {
    /// As given (relative paths are relative to the working directory of the writer).
    path: PathBuf,
    /// Length before the commit.
    len: u64,
    /// Device and inode, to tell a replaced file.
    identity: (u64, u64),
    /// What the commit appends.
    bytes: String,
}

/// What a journal holds: the parts, epochs first (the order they are appended in).
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    format: u32,
    epochs: Option<Part>,
    runs: Part,
}

const JOURNAL_FORMAT: u32 = 1;

impl Journal {
    fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_string(self).expect("a journal serializes");
        format!("{body}\n{:x}\n", Sha256::digest(body.as_bytes())).into_bytes()
    }

    /// The journal in `bytes`, or `None` if it is torn or foreign.
    fn decode(bytes: &[u8]) -> Option<Journal> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (body, sum) = text.trim_end().rsplit_once('\n')?;
        if format!("{:x}", Sha256::digest(body.as_bytes())) != sum {
            return None;
        }
        serde_json::from_str(body)
            .ok()
            .filter(|j: &Journal| j.format == JOURNAL_FORMAT)
    }
}

/// A failpoint for tests: `HARNESS_FAILPOINT=<name>` kills the process here.
fn failpoint(name: &str) {
    if std::env::var("HARNESS_FAILPOINT").is_ok_and(|point| point == name) {
        kill_self();
    }
}

fn failpoint_set(name: &str) -> bool {
    std::env::var("HARNESS_FAILPOINT").is_ok_and(|point| point == name)
}

#[cfg(unix)]
fn kill_self() {
    // SIGKILL: no destructor, no flush, no unlock but the kernel's.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill_self() {
    std::process::abort();
}

/// fsyncs a folder, so that a rename or a deletion in it is durable.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync folder {}", dir.display()))?;
    Ok(())
}

/// The runs file and (for a commit with epoch rows) the epochs file, both locked, any dead
/// process's commit finished.
pub struct Pair {
    pub runs: Locked,
    pub epochs: Option<Locked>,
}

impl Pair {
    /// Locks the runs file (creating it when `create`), then the epochs file if given, and
    /// recovers a journal left by a dead process.
    pub fn lock(runs: &Path, epochs: Option<&Path>, create: bool) -> Result<Pair> {
        let runs = Locked::open(runs, "runs file", create)?;
        let journal = journal_path(&runs.path);
        // A journal may name an epochs file this command does not (another command's): lock it
        // too, to recover.
        let pending = fs::read(&journal).ok().map(|bytes| Journal::decode(&bytes));
        let epochs_path = epochs.map(Path::to_path_buf).or_else(|| {
            pending
                .as_ref()
                .and_then(|j| j.as_ref())
                .and_then(|j| j.epochs.as_ref())
                .map(|part| part.path.clone())
        });
        let epochs = match epochs_path {
            Some(path) => Some(Locked::open(&path, "epochs file", create || path.exists())?),
            None => None,
        };
        let pair = Pair { runs, epochs };
        if let Some(journal_bytes) = pending {
            pair.recover(&journal, journal_bytes)?;
        }
        Ok(pair)
    }

    /// Finishes the commit a journal describes (see the module documentation).
    fn recover(&self, journal: &Path, decoded: Option<Journal>) -> Result<()> {
        let Some(entry) = decoded else {
            // Torn or foreign: written before its rename, so nothing was appended after it.
            eprintln!(
                "harness: removed an incomplete journal {} (nothing had been appended)",
                journal.display()
            );
            fs::remove_file(journal)
                .with_context(|| format!("cannot remove {}", journal.display()))?;
            return sync_dir(journal);
        };
        let mut targets: Vec<(&Part, &Locked)> = Vec::new();
        if let (Some(part), Some(locked)) = (&entry.epochs, &self.epochs) {
            targets.push((part, locked));
        }
        targets.push((&entry.runs, &self.runs));
        let intact = targets.iter().all(|(part, locked)| {
            locked
                .file
                .metadata()
                .is_ok_and(|m| identity(&m) == part.identity && m.len() >= part.len)
        }) && (entry.epochs.is_none() || self.epochs.is_some());
        if !intact {
            let aside = sibling(journal, &format!("unapplied-{}", stamp()));
            fs::rename(journal, &aside)
                .with_context(|| format!("cannot move {}", journal.display()))?;
            eprintln!(
                "harness: warning: {} was replaced or cut short after a commit was interrupted; \
                 it was left as it is and the interrupted commit's rows were kept in {}",
                self.runs.path.display(),
                aside.display()
            );
            return sync_dir(journal);
        }
        for (part, locked) in &targets {
            locked
                .file
                .set_len(part.len)
                .and_then(|()| (&locked.file).write_all(part.bytes.as_bytes()))
                .and_then(|()| locked.file.sync_data())
                .with_context(|| {
                    format!(
                        "cannot finish an interrupted commit to {} (its journal {} is kept for \
                         the next attempt)",
                        locked.path.display(),
                        journal.display()
                    )
                })?;
        }
        fs::remove_file(journal).with_context(|| format!("cannot remove {}", journal.display()))?;
        sync_dir(journal)?;
        eprintln!(
            "harness: finished a commit to {} that an interrupted process had begun",
            self.runs.path.display()
        );
        Ok(())
    }

    /// Appends `epoch_bytes` to the epochs file and then `run_bytes` to the runs file, as one
    /// commit (see the module documentation).
    pub fn commit(&self, epoch_bytes: &[u8], run_bytes: &[u8]) -> Result<()> {
        let part = |locked: &Locked, bytes: &[u8]| -> Result<Part> {
            Ok(Part {
                path: locked.path.clone(),
                len: locked.len()?,
                identity: identity(&locked.file.metadata()?),
                bytes: String::from_utf8(bytes.to_vec()).expect("CSV rows are UTF-8"),
            })
        };
        let epochs = match (&self.epochs, epoch_bytes.is_empty()) {
            (Some(locked), false) => Some(part(locked, epoch_bytes)?),
            _ => None,
        };
        let entry = Journal {
            format: JOURNAL_FORMAT,
            epochs,
            runs: part(&self.runs, run_bytes)?,
        };
        let journal = journal_path(&self.runs.path);
        let temporary = sibling(&journal, "tmp");
        fs::write(&temporary, entry.encode())
            .and_then(|()| File::open(&temporary)?.sync_all())
            .and_then(|()| fs::rename(&temporary, &journal))
            .map_err(|e| {
                let _ = fs::remove_file(&temporary);
                anyhow::Error::new(e)
            })
            .with_context(|| format!("cannot write the journal {}", journal.display()))?;
        sync_dir(&journal)?;
        failpoint("journal");

        let appended = self.append_parts(&entry);
        if let Err(error) = appended {
            // Put both files back as they were; the command fails with nothing recorded.
            let mut restored = true;
            if let (Some(part), Some(locked)) = (&entry.epochs, &self.epochs) {
                restored &= locked.file.set_len(part.len).is_ok();
            }
            restored &= self.runs.file.set_len(entry.runs.len).is_ok();
            if restored {
                let _ = fs::remove_file(&journal);
                let _ = sync_dir(&journal);
                return Err(error.context("nothing was recorded"));
            }
            return Err(error.context(format!(
                "the rows are kept in {}; the next harness command that opens {} appends them",
                journal.display(),
                self.runs.path.display()
            )));
        }
        fs::remove_file(&journal)
            .with_context(|| format!("cannot remove {}", journal.display()))?;
        sync_dir(&journal)
    }

    fn append_parts(&self, entry: &Journal) -> Result<()> {
        if let (Some(part), Some(locked)) = (&entry.epochs, &self.epochs) {
            let bytes = part.bytes.as_bytes();
            if failpoint_set("epochs-half") {
                let _ = (&locked.file).write_all(&bytes[..bytes.len() / 2]);
                let _ = locked.file.sync_data();
                kill_self();
            }
            if failpoint_set("epochs-enospc") {
                let _ = (&locked.file).write_all(&bytes[..bytes.len() / 2]);
                return Err(anyhow::Error::new(std::io::Error::from_raw_os_error(28)))
                    .with_context(|| format!("cannot write to {}", locked.path.display()));
            }
            (&locked.file)
                .write_all(bytes)
                .and_then(|()| locked.file.sync_data())
                .with_context(|| format!("cannot write to {}", locked.path.display()))?;
            failpoint("epochs");
        }
        (&self.runs.file)
            .write_all(entry.runs.bytes.as_bytes())
            .and_then(|()| self.runs.file.sync_data())
            .with_context(|| format!("cannot write to {}", self.runs.path.display()))?;
        failpoint("runs");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path) -> Pair {
        Pair::lock(&dir.join("runs.csv"), Some(&dir.join("epochs.csv")), true).unwrap()
    }

    #[test]
    fn a_commit_appends_both_files_and_leaves_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        pair(dir.path()).commit(b"e1\ne2\n", b"r1\n").unwrap();
        pair(dir.path()).commit(b"", b"r2\n").unwrap();
        assert_eq!(fs::read(dir.path().join("runs.csv")).unwrap(), b"r1\nr2\n");
        assert_eq!(
            fs::read(dir.path().join("epochs.csv")).unwrap(),
            b"e1\ne2\n"
        );
        assert!(!journal_path(&dir.path().join("runs.csv")).exists());
    }

    #[test]
    fn a_journal_left_behind_is_rolled_forward_once() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let epochs = dir.path().join("epochs.csv");
        pair(dir.path()).commit(b"e0\n", b"r0\n").unwrap();
        // A dead writer: journal written, epochs half appended, no run row.
        let held = pair(dir.path());
        let entry = Journal {
            format: JOURNAL_FORMAT,
            epochs: Some(Part {
                path: epochs.clone(),
                len: 3,
                identity: identity(&fs::metadata(&epochs).unwrap()),
                bytes: "e1\ne2\n".into(),
            }),
            runs: Part {
                path: runs.clone(),
                len: 3,
                identity: identity(&fs::metadata(&runs).unwrap()),
                bytes: "r1\n".into(),
            },
        };
        fs::write(journal_path(&runs), entry.encode()).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&epochs)
            .unwrap()
            .write_all(b"e1\ne")
            .unwrap();
        drop(held);
        for _ in 0..2 {
            drop(pair(dir.path()));
            assert_eq!(fs::read(&runs).unwrap(), b"r0\nr1\n");
            assert_eq!(fs::read(&epochs).unwrap(), b"e0\ne1\ne2\n");
            assert!(!journal_path(&runs).exists());
        }
    }

    #[test]
    fn a_torn_journal_is_removed_and_a_replaced_file_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        pair(dir.path()).commit(b"e0\n", b"r0\n").unwrap();
        fs::write(journal_path(&runs), b"{\"format\":1,").unwrap();
        drop(pair(dir.path()));
        assert!(!journal_path(&runs).exists());
        assert_eq!(fs::read(&runs).unwrap(), b"r0\n");

        // A journal for a file that was since replaced: kept aside, the file untouched.
        let entry = Journal {
            format: JOURNAL_FORMAT,
            epochs: None,
            runs: Part {
                path: runs.clone(),
                len: 3,
                identity: (1, 1),
                bytes: "r1\n".into(),
            },
        };
        fs::write(journal_path(&runs), entry.encode()).unwrap();
        drop(pair(dir.path()));
        assert_eq!(fs::read(&runs).unwrap(), b"r0\n");
        assert!(!journal_path(&runs).exists());
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("unapplied"))
            .collect();
        assert_eq!(aside.len(), 1);
    }

    #[test]
    fn a_partial_last_line_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        fs::write(&runs, b"h\nr0\nr1-cut").unwrap();
        let locked = Locked::open(&runs, "runs file", false).unwrap();
        let aside = locked.repair_partial_line().unwrap().unwrap();
        assert_eq!(fs::read(&runs).unwrap(), b"h\nr0\n");
        assert_eq!(fs::read(&aside).unwrap(), b"r1-cut");
        assert!(locked.repair_partial_line().unwrap().is_none());
    }

    #[test]
    fn a_lock_taken_on_a_replaced_file_moves_to_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        fs::write(&runs, b"old\n").unwrap();
        let first = Locked::open(&runs, "runs file", false).unwrap();
        let path = runs.clone();
        let waiter = std::thread::spawn(move || {
            let locked = Locked::open(&path, "runs file", false).unwrap();
            String::from_utf8(locked.contents().unwrap()).unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        // Replace the file while the waiter waits on the old one, then let go.
        fs::write(dir.path().join("new.csv"), b"new\n").unwrap();
        fs::rename(dir.path().join("new.csv"), &runs).unwrap();
        drop(first);
        assert_eq!(waiter.join().unwrap(), "new\n");
    }
}
