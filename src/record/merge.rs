//! `harness merge`: the union of results files written by separate shards.
//!
//! Inputs must all be runs files or all epochs files of this format. The output holds every
//! attempt once: a row whose attempt was already seen (the same shard merged twice) is dropped
//! when it is the same row, and is an error naming the attempt when it differs (a file edited
//! by hand). Several attempts of one run (a failed run and its retry) are all kept; every reader
//! picks the one that stands for the run by one rule ([`crate::record::results::effective`]).
//!
//! An output that exists and is not among the inputs is merged into, not replaced: its rows
//! come first. It is written whole, to a temporary file renamed into place, under the output's
//! lock, so a run appending to it meanwhile waits and then appends to the merged file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::{exit, user_error};
use crate::record::claims::{Claims, Rows};
use crate::record::journal::{self, Locked, Pair};
use crate::record::results::{self, EpochRow, Row, RunRow};

/// What a merge did.
#[derive(Debug, PartialEq, Eq)]
pub struct Merged {
    /// Rows read from all inputs (and the output, when merged into).
    pub read: usize,
    /// Rows written.
    pub written: usize,
    /// Whether the output existed and was not an input, so its rows were kept.
    pub into_existing: bool,
    /// Rows the output held before the merge (0 when it did not exist).
    pub before: usize,
}

/// `harness merge`: merges and prints what it did.
pub fn command(inputs: &[PathBuf], output: &Path) -> Result<u8> {
    let merged = merge(inputs, output)?;
    let files = |n: usize| if n == 1 { "file" } else { "files" };
    let repeated = merged.read - merged.written;
    if merged.before == 0 {
        println!(
            "{}: {} rows from {} input {} ({repeated} repeated rows dropped)",
            output.display(),
            merged.written,
            inputs.len(),
            files(inputs.len()),
        );
    } else {
        // Count what the merge added, not what the file holds (a re-merge adds nothing).
        println!(
            "{}: {} new {} from {} input {}{}, {} rows in all ({repeated} rows of the inputs \
             were there already)",
            output.display(),
            merged.written - merged.before,
            if merged.written - merged.before == 1 {
                "row"
            } else {
                "rows"
            },
            inputs.len(),
            files(inputs.len()),
            if merged.into_existing {
                " merged into its existing rows"
            } else {
                ""
            },
            merged.written,
        );
    }
    Ok(exit::OK)
}

/// Merges `inputs` into `output`.
pub fn merge(inputs: &[PathBuf], output: &Path) -> Result<Merged> {
    if inputs.is_empty() {
        return Err(user_error("merge needs at least one CSV file"));
    }
    let mut headers = Vec::with_capacity(inputs.len());
    for input in inputs {
        crate::input::regular_file(input, "input", crate::input::CSV_MAX)?;
        headers.push(header_of(input)?);
    }
    // An empty file (or one cut inside its header) has no rows to give, whatever its kind.
    let runs_header = results::header::<RunRow>();
    let epochs_header = results::header::<EpochRow>();
    let Some(first) = inputs
        .iter()
        .zip(&headers)
        .find(|(input, header)| !header.is_empty() && !is_cut_header(input, header))
    else {
        return Err(user_error(
            "nothing to merge: every input is empty (or holds only the start of a header)",
        ));
    };
    let (first, header) = (first.0, first.1.clone());
    for (input, other) in inputs.iter().zip(&headers) {
        let empty = other.is_empty() || is_cut_header(input, other);
        if !empty && *other != header {
            return Err(user_error(format!(
                "{} has a different header than {}:\n  {}: {other}\n  {}: {header}",
                input.display(),
                first.display(),
                input.display(),
                first.display()
            )));
        }
    }
    if header == runs_header {
        merge_rows::<RunRow>(inputs, output)
    } else if header == epochs_header {
        merge_rows::<EpochRow>(inputs, output)
    } else {
        // Let the runs reader explain (an older format, a byte-order mark, a foreign file).
        let error = results::parse::<RunRow>(&std::fs::read(first)?, first)
            .err()
            .unwrap_or_else(|| {
                user_error(format!("{} is not a harness results file", first.display()))
            });
        Err(error)
    }
}

/// Whether a file holds only the start of a harness header, cut short.
fn is_cut_header(path: &Path, header: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() as usize == header.len())
        && !header.is_empty()
        && (results::header::<RunRow>().starts_with(header)
            || results::header::<EpochRow>().starts_with(header))
        && header != results::header::<RunRow>()
        && header != results::header::<EpochRow>()
}

/// The first line of a file, read with a bound.
fn header_of(path: &Path) -> Result<String> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path)
        .map_err(|e| user_error(format!("cannot read {}: {e}", path.display())))?;
    let mut line = String::new();
    std::io::BufReader::new(file.take(1 << 16))
        .read_line(&mut line)
        .map_err(|e| user_error(format!("cannot read {}: {e}", path.display())))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Whether two paths name the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn merge_rows<T: Row>(inputs: &[PathBuf], output: &Path) -> Result<Merged> {
    // Merge rewrites rows of one kind: its output may be one of its inputs (merged into), but
    // never a file of the other kind, a journal, a lock or another name harness keeps.
    let rows = if T::WHAT == RunRow::WHAT {
        Rows::Runs
    } else {
        Rows::Epochs
    };
    let mut claims = Claims::new();
    for input in inputs {
        claims.writes_rows(input, rows, "merge input");
    }
    match rows {
        Rows::Runs => claims.writes_runs(output, "merge -o"),
        Rows::Epochs => claims.writes_rows(output, rows, "merge -o"),
    };
    claims.check()?;
    let existed = output.exists();
    merge_locked::<T>(inputs, output, existed).inspect_err(|_| {
        // Leave no empty file behind where there was none.
        if !existed && std::fs::metadata(output).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(output);
        }
    })
}

fn merge_locked<T: Row>(inputs: &[PathBuf], output: &Path, existed: bool) -> Result<Merged> {
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    // Hold the output's lock (finishing any interrupted commit to it) until the rename.
    let (output_lock, _pair) = if T::WHAT == RunRow::WHAT {
        let pair = Pair::lock(output, None, true)?;
        (None, Some(pair))
    } else {
        (Some(Locked::open(output, T::WHAT, true)?), None)
    };
    let output_bytes = match (&output_lock, &_pair) {
        (Some(locked), _) => locked.contents()?,
        (None, Some(pair)) => pair.runs.contents()?,
        _ => unreachable!("one of the two locks is held"),
    };
    let into_existing = existed && !inputs.iter().any(|input| same_file(input, output));
    let before = if existed {
        results::parse::<T>(&output_bytes, output)?.len()
    } else {
        0
    };

    let mut sources: Vec<(PathBuf, Vec<T>)> = Vec::new();
    if into_existing {
        sources.push((
            output.to_path_buf(),
            results::parse::<T>(&output_bytes, output)?,
        ));
    }
    for input in inputs {
        let rows = if same_file(input, output) {
            results::parse::<T>(&output_bytes, output)?
        } else {
            results::read_existing::<T>(input)?
        };
        sources.push((input.clone(), rows));
    }

    let mut rows: Vec<T> = Vec::new();
    let mut seen: HashMap<(String, String), (usize, PathBuf)> = HashMap::new();
    let mut read = 0;
    for (source, source_rows) in sources {
        for row in source_rows {
            read += 1;
            let key = (row.attempt().to_string(), key_detail(&row));
            match seen.get(&key) {
                Some((index, _)) if same_row(&rows[*index], &row) => {}
                Some((_, from)) => {
                    return Err(user_error(format!(
                        "attempt {} ({}) has different rows in {} and {}; the rows of one attempt \
                         are written once, so one of the files was edited: remove one of them",
                        key.0,
                        T::WHAT,
                        from.display(),
                        source.display()
                    )));
                }
                None => {
                    seen.insert(key, (rows.len(), source.clone()));
                    rows.push(row);
                }
            }
        }
    }
    let partial = journal::sibling(output, "merging");
    let bytes = results::to_csv(&rows, true);
    write_synced(&partial, &bytes)
        .and_then(|()| std::fs::rename(&partial, output).map_err(anyhow::Error::new))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(Merged {
        read,
        written: rows.len(),
        into_existing,
        before,
    })
}

/// What tells two rows of one attempt apart: the epoch for epochs rows, nothing for runs rows.
fn key_detail<T: Row>(row: &T) -> String {
    let value = serde_json::to_value(row).expect("a row serializes");
    value
        .get("epoch")
        .map(|epoch| epoch.to_string())
        .unwrap_or_default()
}

/// Two rows are the same when they serialize to the same CSV line (NaN equals NaN there).
fn same_row<T: Row>(a: &T, b: &T) -> bool {
    results::to_csv(std::slice::from_ref(a), false)
        == results::to_csv(std::slice::from_ref(b), false)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
