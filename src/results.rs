//! The results files: one row per run (runs.csv) and one per epoch (epochs.csv).
//!
//! Rows are flat, documented records (README.md describes every column and its unit). A run's
//! rows are appended whole or not at all: they are serialised in memory first, then written
//! with one `write_all` under an exclusive lock on the file, so concurrent runs never interleave
//! lines. An existing file with a different header is never rewritten: the append fails and
//! shows both headers.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::user_error;

/// How a run ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Trained every epoch with finite losses.
    #[default]
    Ok,
    /// The training loss became NaN, infinite or 1000x its first value; training stopped.
    Diverged,
    /// The run stopped with an error (see the `error` column).
    Failed,
}

/// One row of runs.csv. Field order is column order; README.md documents each column.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub run_id: String,
    pub started_at: String,
    pub name: String,
    pub config: String,
    pub dataset: String,
    pub backend: String,
    pub device: String,
    pub hidden: String,
    pub activation: String,
    pub output: String,
    pub init: String,
    pub loss: String,
    pub optimizer: String,
    pub learning_rate: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    pub train_size: usize,
    pub test_size: usize,
    pub params: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    pub total_seconds: f64,
    pub samples_per_second: f64,
    pub status: Status,
    pub error: String,
    pub harness_version: String,
}

/// One row of epochs.csv: the metrics after each epoch of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub run_id: String,
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
}

/// The CSV header line of a row type, without the newline.
pub fn header<T: Serialize + Default>() -> String {
    let bytes = to_csv(&[T::default()], true).expect("a default row serializes");
    let text = String::from_utf8(bytes).expect("CSV is UTF-8");
    text.lines().next().unwrap_or_default().to_string()
}

/// Serialises rows, with the header line first when `with_header`.
fn to_csv<T: Serialize>(rows: &[T], with_header: bool) -> Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(with_header)
        .from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    Ok(writer.into_inner().map_err(|e| e.into_error())?)
}

/// The first line of a file, without its newline; empty for an empty file.
fn first_line(file: &File) -> Result<String> {
    let mut line = String::new();
    BufReader::new(file).read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn header_mismatch(path: &Path, found: &str, expected: &str) -> anyhow::Error {
    user_error(format!(
        "{} has a different header than harness {} writes; it was left untouched. Use another \
         file (output.runs / output.epochs) or move this one away.\n  found:    {found}\n  \
         expected: {expected}",
        path.display(),
        env!("CARGO_PKG_VERSION")
    ))
}

/// Fails early if `path` exists with a header other than `T`'s (so a long run is not wasted).
pub fn check_header<T: Serialize + Default>(path: &Path) -> Result<()> {
    let Ok(file) = File::open(path) else {
        return Ok(());
    };
    let found = first_line(&file).with_context(|| format!("cannot read {}", path.display()))?;
    let expected = header::<T>();
    if !found.is_empty() && found != expected {
        return Err(header_mismatch(path, &found, &expected));
    }
    Ok(())
}

/// A results CSV held under an exclusive lock: other processes wait to read-modify-append it.
pub struct Locked {
    file: File,
    path: PathBuf,
}

impl Locked {
    /// Opens (creating it and its folder if needed) and locks the file at `path`.
    pub fn open(path: &Path) -> Result<Locked> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("cannot open {} for appending", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Locked {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Every row in the file (none for a new, empty file).
    pub fn rows<T: Serialize + Default + DeserializeOwned>(&self) -> Result<Vec<T>> {
        (&self.file).seek(SeekFrom::Start(0))?;
        if self.checked_header::<T>()?.is_empty() {
            return Ok(Vec::new());
        }
        (&self.file).seek(SeekFrom::Start(0))?;
        parse_rows(&self.file, &self.path)
    }

    /// Appends `rows` in one write (with the header first if the file is empty) and syncs.
    pub fn append<T: Serialize + Default>(&mut self, rows: &[T]) -> Result<()> {
        (&self.file).seek(SeekFrom::Start(0))?;
        let found = self.checked_header::<T>()?;
        let bytes = to_csv(rows, found.is_empty())?;
        (&self.file)
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot write to {}", self.path.display()))
    }

    /// The file's header line: empty for an empty file, an error if it is not `T`'s.
    fn checked_header<T: Serialize + Default>(&self) -> Result<String> {
        let found = first_line(&self.file)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let expected = header::<T>();
        if !found.is_empty() && found != expected {
            return Err(header_mismatch(&self.path, &found, &expected));
        }
        Ok(found)
    }
}

/// Appends `rows` to the CSV file at `path` in one write, under an exclusive lock.
///
/// Creates the file (with its header) and its folder if needed. Other processes appending to the
/// same file wait for the lock, so lines never interleave; a crash leaves either all of the rows
/// or none.
pub fn append<T: Serialize + Default>(path: &Path, rows: &[T]) -> Result<()> {
    Locked::open(path)?.append(rows)
}

fn parse_rows<T: DeserializeOwned>(reader: impl std::io::Read, path: &Path) -> Result<Vec<T>> {
    csv::Reader::from_reader(reader)
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{}: bad row {}", path.display(), i + 2)))
        .collect()
}

/// Reads every row of a CSV file written by [`append`].
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_rows(file, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run_id: &str) -> EpochRow {
        EpochRow {
            run_id: run_id.into(),
            epoch: 1,
            train_loss: 0.5,
            train_accuracy: 0.875,
            test_loss: 0.25,
            test_accuracy: 0.9375,
            seconds: 1.5,
        }
    }

    #[test]
    fn writes_the_header_once_then_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("epochs.csv");
        append(&path, &[row("a")]).unwrap();
        append(&path, &[row("b"), row("c")]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "run_id,epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n\
             a,1,0.5,0.875,0.25,0.9375,1.5\n\
             b,1,0.5,0.875,0.25,0.9375,1.5\n\
             c,1,0.5,0.875,0.25,0.9375,1.5\n"
        );
        let rows: Vec<EpochRow> = read(&path).unwrap();
        assert_eq!(rows, vec![row("a"), row("b"), row("c")]);
    }

    #[test]
    fn runs_header_lists_the_documented_columns() {
        let header = header::<RunRow>();
        assert!(header.starts_with("run_id,started_at,name,config,dataset,backend,device,hidden,"));
        assert!(header.ends_with(",status,error,harness_version"));
    }

    #[test]
    fn a_foreign_header_is_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.csv");
        fs::write(&path, "id,accuracy\nx,0.5\n").unwrap();
        let message = format!("{:#}", append(&path, &[row("a")]).unwrap_err());
        assert!(message.contains("found:    id,accuracy"), "{message}");
        assert!(message.contains("expected: run_id,epoch"), "{message}");
        assert!(check_header::<EpochRow>(&path).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "id,accuracy\nx,0.5\n");
    }
}
