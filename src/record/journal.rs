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
//! 3. Write `<runs file>.journal` (beside the runs file's real path, whatever name it was given
//!    by): both files' absolute paths, their header, and every record to append, with a
//!    SHA-256 of the whole, to a temporary name; fsync; rename into place; fsync the folder.
//!    From this instant the run is committed.
//! 4. Append the epoch rows, fsync; append the run row, fsync.
//! 5. Delete the journal, fsync the folder.
//!
//! Recovery, by whichever harness command next opens the runs file (a writer, or a reader such
//! as `report`): a journal found under the lock belongs to a process that died after step 3
//! (a live writer holds the lock until step 5). Recovery only ever adds: every record carries
//! its run's attempt id, so a record is either in the file or not. A partial last line that
//! begins one of the journal's records is the dead process's and is cut; any other partial line
//! is moved aside as in step 2; then every record of the journal not yet in the file is
//! appended. This is the same whether the dead process had written none, part or all of its
//! rows, and it never removes a row another process appended meanwhile (a second runs file
//! sharing the epochs file, the file reached by another name, a merge that replaced it). A
//! journal that does not read back (edited by hand) is kept as `<journal>.damaged-<time>` with
//! a warning, never applied or deleted.
//!
//! An I/O error in step 4 (a full disk) cuts both files back and deletes the journal: the
//! command fails and the row is printed, but the files hold exactly what they held before.
//!
//! For tests, `HARNESS_FAILPOINT=<point>` kills the process with SIGKILL at one instant of the
//! commit: `journal` (after step 3), `epochs-half` (half of the epoch bytes written),
//! `epochs` (after the epoch rows), `runs` (after the run row), or makes the epochs append fail
//! as a full disk would (`epochs-enospc`); `model-enospc` makes the model's save fail the same
//! way (src/train/run.rs). A checkpoint's write has failpoints of its own, per epoch
//! (`checkpoint-before@3`, `checkpoint-half@3`, `checkpoint-after@3`, `checkpoint-enospc@3`:
//! src/train/checkpoint.rs).

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
                Access::Read => input::open_read(path),
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

/// The journal of the runs file at `runs`: beside its real path (symbolic links resolved), so
/// that every name of one file finds one journal.
pub fn journal_path(runs: &Path) -> PathBuf {
    sibling(&real_path(runs), "journal")
}

/// `path` made absolute, with `.` and `..` and the symbolic links of the part that exists
/// resolved (the file itself need not exist), so that two spellings of one file compare equal.
pub fn real_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    // `.` and `..` by the letters first, then links through the longest part that exists.
    let mut lexical = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            other => lexical.push(other),
        }
    }
    // A symbolic link whose target does not exist yet is where a write through it would go:
    // its target, resolved in turn (a bounded number of links, as the kernel does).
    for _ in 0..40 {
        let Some(link) = dangling_link(&lexical) else {
            break;
        };
        lexical = real_path(&link);
    }
    let mut existing = lexical.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return lexical,
        }
    }
    let mut real = fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
    for name in rest.into_iter().rev() {
        real.push(name);
    }
    real
}

/// Where the first dangling symbolic link on `path` points (the path with that link replaced by
/// its target), if there is one.
fn dangling_link(path: &Path) -> Option<PathBuf> {
    let mut prefix = PathBuf::new();
    let mut components = path.components();
    for component in components.by_ref() {
        prefix.push(component);
        if prefix.exists() {
            continue;
        }
        let target = fs::read_link(&prefix).ok()?;
        let mut resolved = prefix.parent().map(Path::to_path_buf).unwrap_or_default();
        resolved.push(target);
        for rest in components {
            resolved.push(rest);
        }
        return Some(resolved);
    }
    None
}

/// What a commit appends to one file: the file's header (written first when the file is empty)
/// and each record, a whole CSV line with its newline, unique by its attempt id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Records {
    pub header: String,
    pub records: Vec<String>,
}

impl Records {
    /// The bytes to append to a file that holds `len` bytes.
    fn bytes(&self, len: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        if len == 0 {
            bytes.extend(self.header.as_bytes());
            bytes.push(b'\n');
        }
        for record in &self.records {
            bytes.extend(record.as_bytes());
        }
        bytes
    }
}

/// One file's part of a commit.
#[derive(Debug, Serialize, Deserialize)]
struct Part {
    /// Absolute, so that a command started from another folder finds the file.
    path: PathBuf,
    records: Records,
}

/// What a journal holds: the parts, epochs first (the order they are appended in).
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    format: u32,
    epochs: Option<Part>,
    runs: Part,
}

const JOURNAL_FORMAT: u32 = 2;

/// The largest journal read back (its rows are one run's: kilobytes).
const JOURNAL_MAX: u64 = 64 << 20;

impl Journal {
    fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_string(self).expect("a journal serializes");
        format!("{body}\n{:x}\n", Sha256::digest(body.as_bytes())).into_bytes()
    }

    /// The journal in `bytes`, or `None` if it does not read back whole.
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

pub(crate) fn failpoint_set(name: &str) -> bool {
    std::env::var("HARNESS_FAILPOINT").is_ok_and(|point| point == name)
}

/// A failpoint of one epoch: `HARNESS_FAILPOINT=<name>@<epoch>` kills the process here when
/// `epoch` is that epoch.
pub(crate) fn failpoint_at(name: &str, epoch: usize) {
    if failpoint_set(&format!("{name}@{epoch}")) {
        kill_self();
    }
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
pub fn sync_dir(path: &Path) -> Result<()> {
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
        // A journal that does not read back whole is set aside under the lock, below.
        let pending = if journal.exists() {
            Some(
                input::read_bytes(&journal, "journal", JOURNAL_MAX)
                    .ok()
                    .and_then(|bytes| Journal::decode(&bytes)),
            )
        } else {
            None
        };
        // A journal may name an epochs file this command does not (another command's): lock it
        // too, to recover.
        let epochs_path = epochs.map(Path::to_path_buf).or_else(|| {
            pending
                .as_ref()
                .and_then(|j| j.as_ref())
                .and_then(|j| j.epochs.as_ref())
                .map(|part| part.path.clone())
        });
        let epochs = match epochs_path {
            Some(path) => {
                if real_path(&path) == real_path(&runs.path) {
                    return Err(user_error(format!(
                        "{} is both the runs file and the epochs file; give output.epochs a file \
                         of its own",
                        path.display()
                    )));
                }
                Some(Locked::open(&path, "epochs file", create || path.exists())?)
            }
            None => None,
        };
        let pair = Pair { runs, epochs };
        if let Some(decoded) = pending {
            pair.recover(&journal, decoded)?;
        }
        Ok(pair)
    }

    /// Finishes the commit a journal describes (see the module documentation).
    fn recover(&self, journal: &Path, decoded: Option<Journal>) -> Result<()> {
        let Some(entry) = decoded else {
            let aside = sibling(journal, &format!("damaged-{}", stamp()));
            fs::rename(journal, &aside)
                .with_context(|| format!("cannot move {}", journal.display()))?;
            eprintln!(
                "harness: warning: the journal of an interrupted commit to {} does not read back \
                 (it was changed after it was written); it was not applied and is kept as {}: \
                 the run it records may be missing from the file",
                self.runs.path.display(),
                aside.display()
            );
            return sync_dir(journal);
        };
        let mut targets: Vec<(&Part, &Locked)> = Vec::new();
        if let Some(part) = &entry.epochs {
            let locked = self
                .epochs
                .as_ref()
                .expect("Pair::lock locks the journal's epochs file");
            targets.push((part, locked));
        }
        targets.push((&entry.runs, &self.runs));
        let mut added = 0;
        for (part, locked) in targets {
            added += add_missing(locked, &part.records).with_context(|| {
                format!(
                    "cannot finish an interrupted commit to {} (its journal {} is kept for the \
                     next attempt)",
                    locked.path.display(),
                    journal.display()
                )
            })?;
        }
        fs::remove_file(journal).with_context(|| format!("cannot remove {}", journal.display()))?;
        sync_dir(journal)?;
        eprintln!(
            "harness: finished a commit to {} that an interrupted process had begun ({added} \
             rows were missing)",
            self.runs.path.display()
        );
        Ok(())
    }

    /// Appends the epoch records to the epochs file and then the run's record to the runs file,
    /// as one commit (see the module documentation).
    pub fn commit(&self, epochs: &Records, run: &Records) -> Result<()> {
        let absolute = |locked: &Locked| real_path(&locked.path);
        let entry = Journal {
            format: JOURNAL_FORMAT,
            epochs: match &self.epochs {
                Some(locked) if !epochs.records.is_empty() => Some(Part {
                    path: absolute(locked),
                    records: epochs.clone(),
                }),
                _ => None,
            },
            runs: Part {
                path: absolute(&self.runs),
                records: run.clone(),
            },
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

        let epochs_len = match &self.epochs {
            Some(locked) => locked.len()?,
            None => 0,
        };
        let runs_len = self.runs.len()?;
        if let Err(error) = self.append_parts(&entry, epochs_len, runs_len) {
            // Put both files back as they were; the command fails with nothing recorded.
            let mut restored = true;
            if let Some(locked) = &self.epochs {
                restored &= locked.file.set_len(epochs_len).is_ok();
            }
            restored &= self.runs.file.set_len(runs_len).is_ok();
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

    fn append_parts(&self, entry: &Journal, epochs_len: u64, runs_len: u64) -> Result<()> {
        if let (Some(part), Some(locked)) = (&entry.epochs, &self.epochs) {
            let bytes = part.records.bytes(epochs_len);
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
                .write_all(&bytes)
                .and_then(|()| locked.file.sync_data())
                .with_context(|| format!("cannot write to {}", locked.path.display()))?;
            failpoint("epochs");
        }
        (&self.runs.file)
            .write_all(&entry.runs.records.bytes(runs_len))
            .and_then(|()| self.runs.file.sync_data())
            .with_context(|| format!("cannot write to {}", self.runs.path.display()))?;
        failpoint("runs");
        Ok(())
    }
}

/// Appends to a locked file the records of `wanted` it does not hold yet; returns how many.
/// A partial last line that begins one of them is the interrupted writer's and is cut; any
/// other is moved aside. The header is written first to an empty file; a file with another
/// header is not touched.
fn add_missing(locked: &Locked, wanted: &Records) -> Result<usize> {
    let mut contents = locked.contents()?;
    let whole = contents
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if whole < contents.len() {
        let tail = &contents[whole..];
        if wanted
            .records
            .iter()
            .any(|r| r.as_bytes().starts_with(tail))
            || wanted.header.as_bytes().starts_with(tail)
        {
            locked.file.set_len(whole as u64)?;
        } else {
            locked.repair_partial_line()?;
        }
        contents.truncate(whole);
    }
    if !contents.is_empty() {
        let first = contents.split(|&b| b == b'\n').next().unwrap_or_default();
        if first != wanted.header.as_bytes() {
            anyhow::bail!(
                "{} no longer has the header of a harness results file",
                locked.path.display()
            );
        }
    }
    let missing: Vec<String> = wanted
        .records
        .iter()
        .filter(|record| !contains(&contents, record.as_bytes()))
        .cloned()
        .collect();
    let bytes = Records {
        header: wanted.header.clone(),
        records: missing.clone(),
    }
    .bytes(contents.len() as u64);
    if !bytes.is_empty() {
        (&locked.file).write_all(&bytes)?;
        locked.file.sync_data()?;
    }
    Ok(missing.len())
}

/// Whether `haystack` holds `needle` as whole lines (records end with their newline; a match
/// must start a line).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    haystack
        .windows(needle.len())
        .enumerate()
        .any(|(i, window)| window == needle && (i == 0 || haystack[i - 1] == b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path) -> Pair {
        Pair::lock(&dir.join("runs.csv"), Some(&dir.join("epochs.csv")), true).unwrap()
    }

    fn records(header: &str, records: &[&str]) -> Records {
        Records {
            header: header.into(),
            records: records.iter().map(|r| format!("{r}\n")).collect(),
        }
    }

    fn commit(dir: &Path, epochs: &[&str], run: &str) {
        pair(dir)
            .commit(&records("E", epochs), &records("R", &[run]))
            .unwrap();
    }

    /// A journal as a writer that died after step 3 leaves it.
    fn leave_journal(dir: &Path, epochs: &[&str], run: &str) {
        let entry = Journal {
            format: JOURNAL_FORMAT,
            epochs: Some(Part {
                path: real_path(&dir.join("epochs.csv")),
                records: records("E", epochs),
            }),
            runs: Part {
                path: real_path(&dir.join("runs.csv")),
                records: records("R", &[run]),
            },
        };
        fs::write(journal_path(&dir.join("runs.csv")), entry.encode()).unwrap();
    }

    fn append(path: &Path, bytes: &[u8]) {
        fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    #[test]
    fn a_commit_appends_both_files_with_headers_and_leaves_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        commit(dir.path(), &["e1", "e2"], "r1");
        pair(dir.path())
            .commit(&Records::default(), &records("R", &["r2"]))
            .unwrap();
        assert_eq!(
            fs::read(dir.path().join("runs.csv")).unwrap(),
            b"R\nr1\nr2\n"
        );
        assert_eq!(
            fs::read(dir.path().join("epochs.csv")).unwrap(),
            b"E\ne1\ne2\n"
        );
        assert!(!journal_path(&dir.path().join("runs.csv")).exists());
    }

    #[test]
    fn a_journal_left_behind_is_rolled_forward_once() {
        let dir = tempfile::tempdir().unwrap();
        let (runs, epochs) = (dir.path().join("runs.csv"), dir.path().join("epochs.csv"));
        commit(dir.path(), &["e0"], "r0");
        // A dead writer: journal written, epochs half appended, no run row.
        leave_journal(dir.path(), &["e1", "e2"], "r1");
        append(&epochs, b"e1\ne");
        for _ in 0..2 {
            drop(pair(dir.path()));
            assert_eq!(fs::read(&runs).unwrap(), b"R\nr0\nr1\n");
            assert_eq!(fs::read(&epochs).unwrap(), b"E\ne0\ne1\ne2\n");
            assert!(!journal_path(&runs).exists());
        }
    }

    #[test]
    fn recovery_keeps_what_others_appended_after_the_crash() {
        // Another runs file sharing the epochs file, or this one reached by another name:
        // rows appended after the dead writer's stay, and its missing rows are added.
        let dir = tempfile::tempdir().unwrap();
        let (runs, epochs) = (dir.path().join("runs.csv"), dir.path().join("epochs.csv"));
        commit(dir.path(), &["e0"], "r0");
        leave_journal(dir.path(), &["e1", "e2"], "r1");
        append(&epochs, b"e1\nx1\nx2\n");
        append(&runs, b"rx\n");
        drop(pair(dir.path()));
        assert_eq!(fs::read(&runs).unwrap(), b"R\nr0\nrx\nr1\n");
        assert_eq!(fs::read(&epochs).unwrap(), b"E\ne0\ne1\nx1\nx2\ne2\n");
        // Through a symbolic link, the same journal is found.
        std::os::unix::fs::symlink(&runs, dir.path().join("link.csv")).unwrap();
        assert_eq!(
            journal_path(&dir.path().join("link.csv")),
            journal_path(&runs)
        );
    }

    #[test]
    fn a_damaged_journal_is_kept_aside_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        commit(dir.path(), &["e0"], "r0");
        fs::write(journal_path(&runs), b"{\"format\":2,").unwrap();
        drop(pair(dir.path()));
        assert!(!journal_path(&runs).exists());
        assert_eq!(fs::read(&runs).unwrap(), b"R\nr0\n");
        let aside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("journal.damaged-"))
            .collect();
        assert_eq!(aside.len(), 1);
    }

    #[test]
    fn one_file_cannot_be_both_runs_and_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let other_name = dir.path().join(".").join("runs.csv");
        let error = Pair::lock(&runs, Some(&other_name), true).err().unwrap();
        assert!(format!("{error:#}").contains("both the runs file and the epochs file"));
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
