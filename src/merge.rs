//! `harness merge`: the union of results files written by separate shards.
//!
//! Inputs must share one header, that of runs.csv or of epochs.csv. The output holds one row per
//! run_id (runs) or per run_id and epoch (epochs), in the order first seen. A repeated row whose
//! status and metrics agree (a rerun on a CPU backend reproduces them exactly) is kept once;
//! a repeated row that disagrees is an error naming the run_id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::user_error;
use crate::results::{self, EpochRow, RunRow};

/// A row type that can be merged: its key and whether two rows with that key agree.
trait Mergeable: Serialize + DeserializeOwned + Default {
    fn key(&self) -> String;
    fn agrees(&self, other: &Self) -> bool;
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

impl Mergeable for RunRow {
    fn key(&self) -> String {
        self.run_id.clone()
    }

    fn agrees(&self, other: &Self) -> bool {
        self.status == other.status
            && same(self.train_loss, other.train_loss)
            && same(self.train_accuracy, other.train_accuracy)
            && same(self.test_loss, other.test_loss)
            && same(self.test_accuracy, other.test_accuracy)
    }
}

impl Mergeable for EpochRow {
    fn key(&self) -> String {
        format!("{} epoch {}", self.run_id, self.epoch)
    }

    fn agrees(&self, other: &Self) -> bool {
        same(self.train_loss, other.train_loss)
            && same(self.train_accuracy, other.train_accuracy)
            && same(self.test_loss, other.test_loss)
            && same(self.test_accuracy, other.test_accuracy)
    }
}

/// What a merge did.
#[derive(Debug, PartialEq, Eq)]
pub struct Merged {
    /// Rows read from all inputs.
    pub read: usize,
    /// Rows written.
    pub written: usize,
}

/// Merges `inputs` into `output` (written whole: a temporary file renamed into place).
pub fn merge(inputs: &[PathBuf], output: &Path) -> Result<Merged> {
    let first = inputs
        .first()
        .ok_or_else(|| user_error("merge needs at least one CSV file"))?;
    let header = header_of(first)?;
    for input in &inputs[1..] {
        let other = header_of(input)?;
        if other != header {
            return Err(user_error(format!(
                "{} has a different header than {}:\n  {}: {other}\n  {}: {header}",
                input.display(),
                first.display(),
                input.display(),
                first.display()
            )));
        }
    }
    if header == results::header::<RunRow>() {
        merge_rows::<RunRow>(inputs, output)
    } else if header == results::header::<EpochRow>() {
        merge_rows::<EpochRow>(inputs, output)
    } else {
        Err(user_error(format!(
            "{} is not a harness runs.csv or epochs.csv; its header is:\n  {header}",
            first.display()
        )))
    }
}

fn header_of(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| user_error(format!("cannot read {}: {e}", path.display())))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

fn merge_rows<T: Mergeable>(inputs: &[PathBuf], output: &Path) -> Result<Merged> {
    let mut rows: Vec<T> = Vec::new();
    let mut seen: HashMap<String, (usize, PathBuf)> = HashMap::new();
    let mut read = 0;
    for input in inputs {
        for row in results::read::<T>(input).map_err(|e| user_error(format!("{e:#}")))? {
            read += 1;
            let key = row.key();
            match seen.get(&key) {
                // The same result twice (a shard merged twice, a deterministic rerun): keep one.
                Some((index, _)) if rows[*index].agrees(&row) => {}
                Some((_, from)) => {
                    return Err(user_error(format!(
                        "run {key} has different results in {} and {}; remove one of the rows",
                        from.display(),
                        input.display()
                    )));
                }
                None => {
                    seen.insert(key, (rows.len(), input.clone()));
                    rows.push(row);
                }
            }
        }
    }
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    let partial = output.with_extension("csv.partial");
    let _ = std::fs::remove_file(&partial);
    results::append(&partial, &rows)?;
    std::fs::rename(&partial, output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(Merged {
        read,
        written: rows.len(),
    })
}
