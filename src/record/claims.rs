//! Claims on outputs: before any work, a command names every file it reads and every file it
//! writes, and one check ([`Claims::check`]) refuses, with exit 2, an output that is also an
//! input, an output that another output of another kind also names, a file of the record that
//! a report or a picture would be written over, and the names harness keeps for its own files.
//!
//! Files are compared by device and inode when they exist, so that a hard link, a symbolic
//! link or another spelling of one file is the same file; a file that does not exist yet is
//! compared by its real path ([`journal::real_path`]). Every command that writes calls this
//! one check: `run` (and so every sweep worker), `sweep`, `report`, `plot`, `inspect`, `merge`
//! and `upgrade`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::user_error;
use crate::record::journal;

/// Which rows a results file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    Runs,
    Epochs,
}

/// What a command does with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Reads it.
    Read,
    /// Appends rows to it, or rewrites it with rows of the same kind (merge, upgrade): many
    /// writers of one kind may share it.
    Rows(Rows),
    /// Writes a trained model there.
    Model,
    /// Writes it whole, replacing what was there (a report, a chart, a picture).
    Replace,
    /// A file harness keeps beside the record for itself (a journal, a run's lock).
    Internal,
    /// A folder the command writes files into.
    Folder,
}

/// One file a command claims.
#[derive(Clone, Debug)]
pub struct Claim {
    path: PathBuf,
    /// How the user named it: a key (`output.runs`), a flag (`report -o`) or a description.
    pub what: String,
    role: Role,
}

/// The files one command reads and writes, checked together before any work.
#[derive(Clone, Debug, Default)]
pub struct Claims {
    claims: Vec<Claim>,
}

/// The endings of the files harness writes for itself beside the record: no output may take
/// one of these names, or it would be taken for a commit in progress, a file being written or
/// a part set aside.
const RESERVED: [&str; 9] = [
    ".journal",
    ".journal.tmp",
    ".partial",
    ".merging",
    ".running",
    ".lock",
    ".ckpt",
    ".rejected",
    crate::train::checkpoint::FOLDER,
];

impl Claims {
    pub fn new() -> Claims {
        Claims::default()
    }

    fn add(&mut self, path: &Path, what: impl Into<String>, role: Role) -> &mut Self {
        self.claims.push(Claim {
            path: path.to_path_buf(),
            what: what.into(),
            role,
        });
        self
    }

    /// A file the command reads.
    pub fn reads(&mut self, path: &Path, what: impl Into<String>) -> &mut Self {
        self.add(path, what, Role::Read)
    }

    /// A results file the command appends `rows` to (or rewrites with rows of that kind).
    pub fn writes_rows(&mut self, path: &Path, rows: Rows, what: impl Into<String>) -> &mut Self {
        self.add(path, what, Role::Rows(rows))
    }

    /// A model file the command saves.
    pub fn writes_model(&mut self, path: &Path, what: impl Into<String>) -> &mut Self {
        self.add(path, what, Role::Model)
    }

    /// A file the command writes whole (a report, a chart, a picture).
    pub fn writes_file(&mut self, path: &Path, what: impl Into<String>) -> &mut Self {
        self.add(path, what, Role::Replace)
    }

    /// A folder the command writes its files into (each claimed on its own): it must be a
    /// folder, or not exist yet.
    pub fn folder(&mut self, dir: &Path, what: impl Into<String>) -> &mut Self {
        self.add(dir, what, Role::Folder)
    }

    /// A file harness writes for itself beside the record (a journal, a lock).
    pub fn keeps(&mut self, path: &Path, what: impl Into<String>) -> &mut Self {
        self.add(path, what, Role::Internal)
    }

    /// The runs file at `path` and every file harness keeps beside it: its journal and its
    /// folder of running runs' locks.
    pub fn writes_runs(&mut self, path: &Path, what: &str) -> &mut Self {
        self.writes_rows(path, Rows::Runs, what);
        self.keeps(
            &journal::journal_path(path),
            format!("the journal of {what}"),
        );
        self
    }

    /// Adds a claim taken from another set (a sweep gathers its points' claims).
    pub fn push(&mut self, claim: Claim) -> &mut Self {
        self.claims.push(claim);
        self
    }

    /// Refuses the first conflict, naming both files and what each is to the command.
    pub fn check(&self) -> Result<()> {
        // Each output on its own first: a name it cannot have, a folder that is a file.
        for claim in &self.claims {
            if claim.role == Role::Read {
                continue;
            }
            if claim.path.as_os_str().is_empty() {
                return Err(user_error(format!(
                    "{} is an empty path: give a file",
                    claim.what
                )));
            }
            if claim.role == Role::Folder && claim.path.exists() && !claim.path.is_dir() {
                return Err(user_error(format!(
                    "{} {} is a file, not a folder: give a folder for the files it writes",
                    claim.what,
                    claim.path.display()
                )));
            }
            // By the name given and by where it leads (a symbolic link, even one whose target
            // does not exist yet), nor inside a folder harness keeps (`runs.csv.running/`,
            // `.checkpoints/`).
            let real = journal::real_path(&claim.path);
            let reserved = |path: &Path| {
                reserved_ending(path).or_else(|| {
                    path.parent()
                        .and_then(|parent| parent.ancestors().find_map(reserved_ending))
                })
            };
            if claim.role != Role::Internal
                && let Some(ending) = reserved(&claim.path).or_else(|| reserved(&real))
            {
                return Err(user_error(format!(
                    "{} {}: names ending in {ending} are kept for the files harness writes beside \
                     the record (journals, partial files, locks, checkpoints); choose another name",
                    claim.what,
                    claim.path.display()
                )));
            }
        }
        // Then every output against every other claim.
        let identities: Vec<Identity> = self.claims.iter().map(|c| identity(&c.path)).collect();
        for (i, claim) in self.claims.iter().enumerate() {
            if matches!(claim.role, Role::Read | Role::Folder) {
                continue;
            }
            for (j, other) in self.claims.iter().enumerate() {
                if i == j || identities[i] != identities[j] || compatible(claim.role, other.role) {
                    continue;
                }
                // Report each pair once: from the writer, or from the first of two writers.
                if other.role != Role::Read && j < i {
                    continue;
                }
                return Err(user_error(conflict(claim, other)));
            }
            match claim.role {
                Role::Replace => check_not_record(claim)?,
                Role::Rows(rows) => check_rows_file(claim, rows)?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether two claims on one file can stand together.
fn compatible(a: Role, b: Role) -> bool {
    match (a, b) {
        // Many points append to one runs file, many models go to one folder.
        (Role::Rows(x), Role::Rows(y)) => x == y,
        (Role::Model, Role::Model) => true,
        (Role::Read, Role::Read) => true,
        (Role::Folder, _) | (_, Role::Folder) => true,
        _ => false,
    }
}

fn conflict(claim: &Claim, other: &Claim) -> String {
    let same = if claim.path == other.path {
        String::new()
    } else {
        format!(
            " ({} and {} are one file{})",
            claim.path.display(),
            other.path.display(),
            if claim.path.exists() {
                ": a link, or another spelling"
            } else {
                ""
            }
        )
    };
    let other_is = match other.role {
        Role::Read => format!("{}, which this command reads", other.what),
        _ => format!("{}, which this command also writes", other.what),
    };
    format!(
        "{} {} is also {other_is}{same}; nothing was written. Give every output a file of its \
         own",
        claim.what,
        claim.path.display(),
    )
}

/// A file that is part of the record is never written over by a report, a chart or a
/// picture, whichever results file it belongs to.
fn check_not_record(claim: &Claim) -> Result<()> {
    // A model's name is the record's even before the file exists.
    // (`.BPK` too: on a case-insensitive file system it is the same name.)
    if claim
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bpk"))
    {
        return Err(user_error(format!(
            "{} {}: a name ending in .bpk is a saved model's, part of the record; choose \
             another name",
            claim.what,
            claim.path.display()
        )));
    }
    let Ok(metadata) = fs::metadata(&claim.path) else {
        return Ok(());
    };
    if !metadata.is_dir() && !metadata.is_file() {
        // Replaced by a rename, a device such as /dev/null would become a plain file.
        return Err(user_error(format!(
            "{} {} is a device, a pipe or a socket, not a file harness may replace: give a \
             file",
            claim.what,
            claim.path.display()
        )));
    }
    if metadata.is_dir() {
        return Err(user_error(format!(
            "{} {} is a folder; expected a file",
            claim.what,
            claim.path.display()
        )));
    }
    // Configs and experiments are what the record's rows name and every later run reads: a
    // report or a picture never goes over one, whatever command reads it.
    let kind = record_kind(&claim.path).or_else(|| {
        let toml = journal::real_path(&claim.path)
            .extension()
            .is_some_and(|e| e == "toml")
            || is_config(&claim.path);
        toml.then_some("a TOML file (a config or an experiment, which rows name and runs read)")
    });
    if let Some(kind) = kind {
        return Err(user_error(format!(
            "{} {} is {kind}, part of the record; harness never writes over it: choose another \
             file",
            claim.what,
            claim.path.display()
        )));
    }
    Ok(())
}

/// Rows are appended to (or merged into) a results file of their own kind only: never to a
/// model, a journal or a results file of the other kind.
fn check_rows_file(claim: &Claim, rows: Rows) -> Result<()> {
    let expected = match rows {
        Rows::Runs => "a runs file",
        Rows::Epochs => "an epochs file",
    };
    if !claim.path.exists() {
        return Ok(());
    }
    match record_kind(&claim.path) {
        Some(kind) if kind != expected => Err(user_error(format!(
            "{} {} is {kind}, part of the record, not {expected}; harness never writes rows \
             into it: choose another file",
            claim.what,
            claim.path.display()
        ))),
        _ => Ok(()),
    }
}

/// Whether a file (under any name: a hard link need not end in .toml) is a harness config or
/// experiment: TOML with one of their tables.
fn is_config(path: &Path) -> bool {
    let Ok(text) = crate::input::read_text(path, "file", crate::input::TEXT_MAX) else {
        return false;
    };
    toml::from_str::<toml::Table>(&text).is_ok_and(|table| {
        [
            "data", "model", "train", "output", "base", "grid", "random", "tpe", "halving", "point",
        ]
        .iter()
        .any(|key| table.contains_key(*key))
    })
}

/// The first bytes of every model file harness saves (burn's binary file record).
const MODEL_MAGIC: &[u8] = b"NRUB";

/// What part of the record a file is, if it is one: a runs or epochs file of any format, a
/// journal, a model.
pub fn record_kind(path: &Path) -> Option<&'static str> {
    let real = journal::real_path(path);
    if path.extension().is_some_and(|e| e == "bpk") || real.extension().is_some_and(|e| e == "bpk")
    {
        return Some("a saved model");
    }
    let mut head = Vec::new();
    let file = crate::input::open_read(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    file.take(256).read_to_end(&mut head).ok()?;
    // burn's binary records begin with its magic number, whatever the file is called (a hard
    // link to a model need not end in .bpk).
    if head.starts_with(MODEL_MAGIC) {
        return Some("a saved model");
    }
    let head = String::from_utf8_lossy(&head);
    let head = head.trim_start_matches('\u{feff}');
    if head.starts_with("run_id,attempt,started_at,") || head.starts_with("run_id,started_at,") {
        Some("a runs file")
    } else if head.starts_with("run_id,attempt,epoch,") || head.starts_with("run_id,epoch,") {
        Some("an epochs file")
    } else if head.starts_with("{\"format\":") && head.contains("\"runs\"") {
        Some("a commit journal")
    } else {
        None
    }
}

fn reserved_ending(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_string_lossy();
    RESERVED.into_iter().find(|ending| name.ends_with(ending))
}

/// What makes two paths one file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Identity {
    /// An existing file: its device and inode.
    Inode(u64, u64),
    /// A file not made yet: its real path.
    Path(PathBuf),
}

fn identity(path: &Path) -> Identity {
    #[cfg(unix)]
    if let Ok(metadata) = fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        return Identity::Inode(metadata.dev(), metadata.ino());
    }
    Identity::Path(journal::real_path(path))
}

/// Writes `bytes` to `path` whole or not at all: to a temporary name beside it, synced, then
/// renamed into place. A reader never sees half a file, and a link to the old file keeps the
/// old contents.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use anyhow::Context;
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    let temporary = journal::sibling(path, &format!("{}.partial", std::process::id()));
    fs::File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&temporary);
        })
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The claims, one by one (a sweep gathers its points' claims into its own set).
impl IntoIterator for Claims {
    type Item = Claim;
    type IntoIter = std::vec::IntoIter<Claim>;

    fn into_iter(self) -> Self::IntoIter {
        self.claims.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(claims: &Claims) -> String {
        let error = claims.check().unwrap_err();
        assert!(crate::error::is_user_error(&error));
        format!("{error:#}")
    }

    #[test]
    fn an_output_is_never_an_input_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        fs::write(&runs, "x\n").unwrap();
        let hard = dir.path().join("hard.csv");
        fs::hard_link(&runs, &hard).unwrap();
        let soft = dir.path().join("soft.csv");
        std::os::unix::fs::symlink(&runs, &soft).unwrap();
        let dotted = dir.path().join(".").join("runs.csv");
        for name in [&runs, &hard, &soft, &dotted] {
            let mut claims = Claims::new();
            claims
                .reads(&runs, "the runs file")
                .writes_file(name, "report -o");
            let text = message(&claims);
            assert!(text.contains("which this command reads"), "{text}");
        }
        // Two outputs of different kinds on one inode: a hard link of runs and epochs.
        let mut claims = Claims::new();
        claims
            .writes_runs(&runs, "output.runs")
            .writes_rows(&hard, Rows::Epochs, "output.epochs");
        let text = message(&claims);
        assert!(text.contains("one file: a link"), "{text}");
        // Files not made yet compare by their real path.
        let new = dir.path().join("new.csv");
        let mut claims = Claims::new();
        claims
            .writes_rows(&new, Rows::Runs, "output.runs")
            .writes_rows(
                &dir.path().join("sub/../new.csv"),
                Rows::Epochs,
                "output.epochs",
            );
        let text = message(&claims);
        assert!(text.contains("is also output.epochs"), "{text}");
        // Many writers of one kind share a file; a journal is never an output.
        let mut claims = Claims::new();
        claims
            .writes_runs(&runs, "output.runs")
            .writes_runs(&hard, "output.runs of point 2");
        claims.check().unwrap();
        let mut claims = Claims::new();
        claims.writes_runs(&runs, "output.runs").writes_rows(
            &journal::journal_path(&runs),
            Rows::Epochs,
            "output.epochs",
        );
        assert!(message(&claims).contains("kept for the files harness writes"));
    }

    #[test]
    fn a_report_is_never_written_over_the_record() {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents, kind) in [
            (
                "runs.csv",
                "run_id,attempt,started_at,name\n",
                "a runs file",
            ),
            (
                "e.csv",
                "run_id,attempt,epoch,learning_rate\n",
                "an epochs file",
            ),
            ("old.csv", "run_id,started_at,name,config\n", "a runs file"),
            ("m.bpk", "anything", "a saved model"),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, contents).unwrap();
            let mut claims = Claims::new();
            claims.writes_file(&path, "report -o");
            let text = message(&claims);
            assert!(text.contains(kind), "{text}");
            assert!(text.contains("report -o"), "{text}");
        }
        let page = dir.path().join("report.html");
        fs::write(&page, "<!DOCTYPE html>").unwrap();
        let mut claims = Claims::new();
        claims.writes_file(&page, "report -o");
        claims.check().unwrap();
    }

    #[test]
    fn an_atomic_write_leaves_a_linked_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("page.html");
        fs::write(&path, "old").unwrap();
        let link = dir.path().join("link.html");
        fs::hard_link(&path, &link).unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_to_string(&link).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
