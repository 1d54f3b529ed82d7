//! `harness upgrade`: converts results files written by harness 0.1 (format 1) to format 2.
//!
//! Format 1 had no attempt ids, wrote `hidden` as `16x16` (empty without hidden layers), left
//! text empty and failed runs' metrics at 0. The conversion keeps every row and every value it
//! had, and fills what format 1 did not record with what it meant: no validation images
//! (`validation_size` 0, validation metrics NaN), the last epoch kept, a constant learning
//! rate, no model checksum (`none`: models saved by harness 0.1 are not tied to their rows).
//! Run ids keep their digits behind an `r` (`dc80b2543d06` → `rdc80b2543d06`); a format-2 run
//! of the same settings has another id, since format 2 hashes more settings. Each run row gets
//! an attempt id, and the epoch rows of a run_id go to its run rows in order: the k-th run of a
//! run_id owns the k-th block of epochs counting from 1.
//!
//! The files are converted in place: the originals are kept beside them as
//! `<name>.format1.csv`, and the new files are written whole before the originals move.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{exit, user_error};
use crate::record::claims::{Claims, Rows};
use crate::record::results::{self, EpochRow, NONE, RunRow, Status, StopReason};

/// A runs row of format 1.
#[derive(Debug, Deserialize)]
struct OldRun {
    run_id: String,
    started_at: String,
    name: String,
    config: String,
    dataset: String,
    backend: String,
    device: String,
    hidden: String,
    activation: String,
    output: String,
    init: String,
    loss: String,
    optimizer: String,
    learning_rate: f64,
    momentum: f64,
    weight_decay: f64,
    batch_size: u64,
    epochs: u64,
    seed: u64,
    train_size: u64,
    test_size: u64,
    params: u64,
    train_loss: f64,
    train_accuracy: f64,
    test_loss: f64,
    test_accuracy: f64,
    train_seconds: f64,
    eval_seconds: f64,
    total_seconds: f64,
    samples_per_second: f64,
    status: Status,
    error: String,
    harness_version: String,
}

/// An epochs row of format 1.
#[derive(Debug, Deserialize)]
struct OldEpoch {
    run_id: String,
    epoch: u64,
    train_loss: f64,
    train_accuracy: f64,
    test_loss: f64,
    test_accuracy: f64,
    seconds: f64,
}

/// The header of a format-1 runs file.
const OLD_RUNS: &str = "run_id,started_at,name,config,dataset,backend,device,hidden,activation,\
output,init,loss,optimizer,learning_rate,momentum,weight_decay,batch_size,epochs,seed,train_size,\
test_size,params,train_loss,train_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds,\
total_seconds,samples_per_second,status,error,harness_version";

/// The header of a format-1 epochs file.
const OLD_EPOCHS: &str = "run_id,epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds";

/// `harness upgrade RUNS [EPOCHS]`: converts both files in place and says what it did.
pub fn command(runs: &Path, epochs: Option<&Path>, runs_only: bool) -> Result<u8> {
    // A file reached through a symbolic link is converted where it is, and its original kept
    // beside it there: the link stays a link to the converted file.
    let runs = &crate::record::journal::real_path(runs);
    let epochs = match (epochs, runs_only) {
        (Some(epochs), _) => Some(crate::record::journal::real_path(epochs)),
        (None, true) => None,
        (None, false) => {
            let beside = epochs_beside(runs);
            if !beside.exists() && !current(runs) {
                return Err(user_error(format!(
                    "{} has no epochs file beside it (looked for {}): give its epochs file as \
                     the second argument (`harness upgrade {} EPOCHS_CSV`), or --runs-only to \
                     convert the runs file alone; a runs file and its epochs file are converted \
                     together, so that no epochs file stays behind in format 1",
                    runs.display(),
                    beside.display(),
                    runs.display()
                )));
            }
            Some(beside)
        }
    };
    let converted = upgrade(runs, epochs.as_deref())?;
    if converted.current {
        println!(
            "{} is in results format 2 already (this harness's); nothing to convert",
            runs.display()
        );
        return Ok(exit::OK);
    }
    if converted.resumed {
        println!(
            "finished an upgrade that was interrupted after both files were converted (the \
             originals are kept as {}{})",
            backup(runs).display(),
            epochs
                .as_ref()
                .map(|e| format!(" and {}", backup(e).display()))
                .unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    println!(
        "{}: {} runs converted to format 2 (the original kept as {})",
        runs.display(),
        converted.runs,
        backup(runs).display()
    );
    if let (Some(count), Some(epochs)) = (converted.epochs, &epochs) {
        println!(
            "{}: {count} epoch rows converted (the original kept as {}){}",
            epochs.display(),
            backup(epochs).display(),
            if converted.unclaimed > 0 {
                format!(
                    "; {} of them belong to no run row (a run interrupted before its row was \
                     written) and keep attempts of their own",
                    converted.unclaimed
                )
            } else {
                String::new()
            }
        );
    }
    Ok(exit::OK)
}

/// The epochs file harness writes beside a runs file: `epochs.csv` beside `runs.csv`, and a
/// shard's `epochs-3.csv` beside `runs-3.csv`.
pub fn epochs_beside(runs: &Path) -> PathBuf {
    let name = runs.file_name().unwrap_or_default().to_string_lossy();
    match name.strip_prefix("runs") {
        Some(rest) => runs.with_file_name(format!("epochs{rest}")),
        None => runs.with_file_name("epochs.csv"),
    }
}

/// Whether `runs` already has this harness's header.
fn current(runs: &Path) -> bool {
    header_line(runs).is_some_and(|line| line == results::header::<RunRow>())
}

/// The first line of a file, read with a bound, if it can be read.
fn header_line(path: &Path) -> Option<String> {
    use std::io::{BufRead, Read};
    let file = crate::input::open_read(path).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(file.take(1 << 16))
        .read_line(&mut line)
        .ok()?;
    Some(line.trim_end_matches(['\n', '\r']).to_string())
}

/// What [`upgrade`] converted.
#[derive(Debug, PartialEq, Eq)]
pub struct Converted {
    pub runs: usize,
    /// `None` when the runs file was converted alone.
    pub epochs: Option<usize>,
    /// Epoch rows whose run had no run row, kept under attempts of their own.
    pub unclaimed: usize,
    /// The runs file was in format 2 already: nothing was done.
    pub current: bool,
    /// An upgrade interrupted after both files were converted was finished.
    pub resumed: bool,
}

/// Where a converted file's original is kept.
pub fn backup(path: &Path) -> PathBuf {
    path.with_extension("format1.csv")
}

/// Where a converted file waits, whole, before it replaces the original.
fn converted(path: &Path) -> PathBuf {
    path.with_extension("format2.csv")
}

/// Converts a format-1 runs file and (unless `None`) its epochs file in place, both or
/// neither: each is converted whole to `<name>.format2.csv` first; only when both are there
/// do the originals move to `<name>.format1.csv` and the converted files into their place.
/// A run of `upgrade` interrupted during those moves is finished by the next one.
pub fn upgrade(runs_path: &Path, epochs_path: Option<&Path>) -> Result<Converted> {
    let mut claims = Claims::new();
    claims.writes_rows(runs_path, Rows::Runs, "the runs file");
    if let Some(epochs) = epochs_path {
        claims.writes_rows(epochs, Rows::Epochs, "the epochs file");
    }
    claims.check()?;
    let files: Vec<&Path> = std::iter::once(runs_path).chain(epochs_path).collect();
    // Each file's original and converted copy need names of their own: `exp.runs` and
    // `exp.epochs` would both be kept as `exp.format1.csv`, the second over the first.
    let mut names: Vec<PathBuf> = files.iter().map(|p| p.to_path_buf()).collect();
    for path in &files {
        for name in [backup(path), converted(path)] {
            if names.contains(&name) {
                return Err(user_error(format!(
                    "cannot upgrade {}: its original would be kept as {}, a name another file \
                     of this upgrade takes; rename the files so that their names differ before \
                     the extension (runs.csv and epochs.csv)",
                    path.display(),
                    name.display()
                )));
            }
            names.push(name);
        }
    }
    // Finish an upgrade interrupted while it moved the files: every file is converted and
    // waiting, or already moved (its original kept aside).
    let waiting = |path: &Path| converted(path).is_file();
    let moved = |path: &Path| backup(path).is_file() && !waiting(path);
    if files.iter().any(|p| waiting(p)) && files.iter().all(|p| waiting(p) || moved(p)) {
        for path in &files {
            if waiting(path) {
                if !backup(path).exists() {
                    std::fs::rename(path, backup(path))
                        .with_context(|| format!("cannot move {} aside", path.display()))?;
                }
                std::fs::rename(converted(path), path)
                    .with_context(|| format!("cannot replace {}", path.display()))?;
            }
        }
        return Ok(Converted {
            runs: 0,
            epochs: None,
            unclaimed: 0,
            current: false,
            resumed: true,
        });
    }
    if current(runs_path) && !files.iter().any(|p| waiting(p)) {
        return Ok(Converted {
            runs: 0,
            epochs: None,
            unclaimed: 0,
            current: true,
            resumed: false,
        });
    }
    // A conversion cut short before any file moved is started again.
    for path in &files {
        let _ = std::fs::remove_file(converted(path));
    }

    let runs_bytes = crate::input::read_bytes(runs_path, "runs file", crate::input::CSV_MAX)?;
    let old_runs: Vec<OldRun> = parse_old(&runs_bytes, runs_path, OLD_RUNS)?;
    let old_epochs: Option<Vec<OldEpoch>> = match epochs_path {
        Some(path) => {
            let bytes = crate::input::read_bytes(path, "epochs file", crate::input::CSV_MAX)?;
            Some(parse_old(&bytes, path, OLD_EPOCHS)?)
        }
        None => None,
    };
    for path in &files {
        if backup(path).exists() {
            return Err(user_error(format!(
                "{} exists already: was {} converted before? Move it away to convert again",
                backup(path).display(),
                path.display()
            )));
        }
    }

    // The epochs of each run_id, cut into blocks that each start at epoch 1.
    let mut blocks: HashMap<&str, Vec<Vec<&OldEpoch>>> = HashMap::new();
    for epoch in old_epochs.iter().flatten() {
        let runs = blocks.entry(epoch.run_id.as_str()).or_default();
        if epoch.epoch <= 1 || runs.is_empty() {
            runs.push(Vec::new());
        }
        runs.last_mut().expect("a block").push(epoch);
    }
    // Each run row takes the block that ends in its own metrics: format 1 recorded the last
    // epoch's, so an attempt killed before its row was written (its epochs, no row) is never
    // taken for the run that was recorded.
    let mut claimed: HashMap<&str, Vec<bool>> = blocks
        .iter()
        .map(|(id, b)| (*id, vec![false; b.len()]))
        .collect();
    let mut new_runs = Vec::with_capacity(old_runs.len());
    let mut new_epochs = Vec::new();
    for (index, old) in old_runs.iter().enumerate() {
        let attempt = attempt_of(old, index);
        // A failed run of format 1 wrote no epochs: it takes no block.
        let block = if old.status == Status::Failed {
            Vec::new()
        } else {
            let candidates = blocks
                .get(old.run_id.as_str())
                .map_or(&[][..], Vec::as_slice);
            let taken = claimed.entry(old.run_id.as_str()).or_default();
            let free = |k: &usize| !taken.get(*k).copied().unwrap_or(true);
            let chosen = (0..candidates.len())
                .filter(free)
                .find(|&k| ends_in(&candidates[k], old))
                // Rows edited by hand: the first free block of the full length, else the
                // first that is not longer than the run.
                .or_else(|| {
                    (0..candidates.len())
                        .filter(free)
                        .find(|&k| candidates[k].len() as u64 == old.epochs)
                })
                .or_else(|| {
                    (0..candidates.len())
                        .filter(free)
                        .find(|&k| candidates[k].len() as u64 <= old.epochs)
                });
            match chosen {
                Some(k) => {
                    taken[k] = true;
                    candidates[k].clone()
                }
                None => Vec::new(),
            }
        };
        let row = convert_run(old, &attempt, block.len() as u64);
        new_epochs.extend(block.iter().map(|e| convert_epoch(e, &row)));
        new_runs.push(row);
    }

    // Epochs no run row claimed (a run killed between its epochs and its run row, which
    // format 1 could leave) are kept too, each block under an attempt of its own.
    let mut unclaimed = 0;
    let mut run_ids: Vec<&&str> = blocks.keys().collect();
    run_ids.sort();
    for run_id in run_ids {
        for (k, block) in blocks[*run_id].iter().enumerate() {
            if claimed[*run_id][k] {
                continue;
            }
            let digest = Sha256::digest(format!("{run_id}/unclaimed/{k}").as_bytes());
            let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
            let owner = RunRow {
                run_id: format!("r{run_id}"),
                attempt: format!("a{}", &hex[..11]),
                ..RunRow::default()
            };
            new_epochs.extend(block.iter().map(|e| convert_epoch(e, &owner)));
            unclaimed += block.len();
        }
    }

    // Both files converted whole and waiting, then the originals moved aside and the
    // converted files into their place.
    write_waiting(runs_path, &results::to_csv(&new_runs, true))?;
    if let Some(path) = epochs_path {
        write_waiting(path, &results::to_csv(&new_epochs, true))?;
    }
    for path in &files {
        std::fs::rename(path, backup(path))
            .and_then(|()| std::fs::rename(converted(path), path))
            .with_context(|| format!("cannot replace {}", path.display()))?;
    }
    Ok(Converted {
        runs: new_runs.len(),
        epochs: epochs_path.map(|_| new_epochs.len()),
        unclaimed,
        current: false,
        resumed: false,
    })
}

/// Whether a block of epochs ends in the metrics a format-1 run row recorded (its last
/// epoch's), NaN equal to NaN.
fn ends_in(block: &[&OldEpoch], run: &OldRun) -> bool {
    let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    block.last().is_some_and(|last| {
        block.len() as u64 <= run.epochs
            && same(last.train_loss, run.train_loss)
            && same(last.train_accuracy, run.train_accuracy)
            && same(last.test_loss, run.test_loss)
            && same(last.test_accuracy, run.test_accuracy)
    })
}

/// Writes a converted file whole beside `path`, synced, as `<name>.format2.csv`.
fn write_waiting(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = converted(path).with_extension("csv.partial");
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::File::open(&partial)?.sync_all())
        .and_then(|()| std::fs::rename(&partial, converted(path)))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
        .with_context(|| format!("cannot write {}", converted(path).display()))
}

fn parse_old<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    header: &str,
) -> Result<Vec<T>> {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    if String::from_utf8_lossy(first).trim_end_matches('\r') != header {
        return Err(user_error(format!(
            "{} is not a results file of harness 0.1 (format 1): its header is not\n  {header}",
            path.display()
        )));
    }
    csv::Reader::from_reader(bytes)
        .deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|e| user_error(format!("{} line {}: {e}", path.display(), i + 2)))
        })
        .collect()
}

/// A stable attempt id for a converted row: `a` and 11 hex digits of a hash of where it was.
fn attempt_of(old: &OldRun, index: usize) -> String {
    let digest = Sha256::digest(format!("{}/{}/{index}", old.run_id, old.started_at).as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("a{}", &hex[..11])
}

fn or_none(text: &str) -> String {
    if text.is_empty() {
        NONE.to_string()
    } else {
        text.to_string()
    }
}

fn convert_run(old: &OldRun, attempt: &str, epochs_trained: u64) -> RunRow {
    let failed = old.status == Status::Failed;
    // Format 1 wrote a failed run's missing metrics as 0.
    let metric = |value: f64| if failed { f64::NAN } else { value };
    let hidden: Vec<&str> = old.hidden.split('x').filter(|w| !w.is_empty()).collect();
    let name = if crate::config::check_name(&old.name).is_ok() {
        old.name.clone()
    } else {
        format!("run_{}", old.name)
    };
    RunRow {
        run_id: format!("r{}", old.run_id),
        attempt: attempt.to_string(),
        started_at: or_none(&old.started_at),
        name,
        config: or_none(&old.config),
        seed: old.seed,
        backend: or_none(&old.backend),
        device: if old.device.is_empty() {
            "unknown".to_string()
        } else {
            old.device.clone()
        },
        dataset: or_none(&old.dataset),
        shape: std::iter::once("784")
            .chain(hidden.iter().copied())
            .chain(std::iter::once("10"))
            .collect::<Vec<_>>()
            .join("-"),
        activation: if hidden.is_empty() {
            NONE.to_string()
        } else {
            or_none(&old.activation)
        },
        output: or_none(&old.output),
        init: or_none(&old.init),
        loss: or_none(&old.loss),
        optimizer: or_none(&old.optimizer),
        learning_rate: old.learning_rate,
        schedule: "constant".to_string(),
        step_epochs: 10,
        step_factor: 0.1,
        momentum: old.momentum,
        weight_decay: old.weight_decay,
        batch_size: old.batch_size,
        epochs: old.epochs,
        metric: "val_accuracy".to_string(),
        keep: "last".to_string(),
        train_size: old.train_size,
        test_size: old.test_size,
        params: old.params,
        status: old.status,
        stop_reason: match old.status {
            Status::Ok => StopReason::Completed,
            Status::Diverged => StopReason::Diverged,
            Status::Failed => StopReason::Failed,
        },
        epochs_trained,
        best_epoch: epochs_trained,
        train_loss: metric(old.train_loss),
        train_accuracy: metric(old.train_accuracy),
        test_loss: metric(old.test_loss),
        test_accuracy: metric(old.test_accuracy),
        train_seconds: metric(old.train_seconds),
        eval_seconds: metric(old.eval_seconds),
        total_seconds: old.total_seconds,
        samples_per_second: metric(old.samples_per_second),
        error: or_none(&old.error),
        harness_version: or_none(&old.harness_version),
        git_commit: "unknown".to_string(),
        ..RunRow::default()
    }
}

fn convert_epoch(old: &OldEpoch, run: &RunRow) -> EpochRow {
    EpochRow {
        run_id: run.run_id.clone(),
        attempt: run.attempt.clone(),
        epoch: old.epoch,
        // Format 1 trained at a constant rate.
        learning_rate: run.learning_rate,
        train_loss: old.train_loss,
        train_accuracy: old.train_accuracy,
        test_loss: old.test_loss,
        test_accuracy: old.test_accuracy,
        train_seconds: old.seconds,
        ..EpochRow::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_1_pair_converts_with_every_row_and_its_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let epochs = dir.path().join("epochs.csv");
        let row = |id: &str, at: &str, hidden: &str, activation: &str, status: &str, acc: &str| {
            format!(
                "{id},{at},16,configs/x.toml,mnist,flex,cpu (2 threads),{hidden},{activation},\
                 softmax,default,cross_entropy,adam,0.001,0.0,0.0,64,2,1,1000,100,13002,0.5,0.8,\
                 0.6,{acc},1.0,0.1,1.5,2000.0,{status},,0.1.0\n"
            )
        };
        std::fs::write(
            &runs,
            format!(
                "{OLD_RUNS}\n{}{}{}{}",
                row("000000000016", "t1", "16x16", "relu", "ok", "0.9"),
                row("0000000000ab", "t2", "", "sigmoid", "failed", "0.0"),
                row("000000000016", "t3", "16x16", "relu", "ok", "0.91"),
                row("0000000000cd", "t4", "16", "tanh", "diverged", "0.1"),
            ),
        )
        .unwrap();
        std::fs::write(
            &epochs,
            format!(
                "{OLD_EPOCHS}\n000000000016,1,1,0.5,1,0.80,0.5\n000000000016,2,1,0.5,1,0.90,0.5\n\
                 0000000000cd,1,1,0.5,1,0.10,0.5\n000000000016,1,1,0.5,1,0.81,0.5\n\
                 000000000016,2,1,0.5,1,0.91,0.5\n0000000000ef,1,1,0.5,1,0.5,0.5\n\
                 0000000000cd,1,1,0.5,1,0.2,0.5\n"
            ),
        )
        .unwrap();
        let original = std::fs::read(&runs).unwrap();
        let converted = upgrade(&runs, Some(&epochs)).unwrap();
        assert_eq!(
            converted,
            Converted {
                runs: 4,
                epochs: Some(7),
                unclaimed: 2,
                current: false,
                resumed: false,
            }
        );
        assert_eq!(std::fs::read(backup(&runs)).unwrap(), original);

        let rows = results::read_runs(&runs).unwrap();
        let epoch_rows = results::read_epochs(&epochs).unwrap();
        assert_eq!(rows[0].run_id, "r000000000016");
        assert_eq!(rows[0].name, "run_16", "a name that reads as a number");
        assert_eq!(rows[0].shape, "784-16-16-10");
        assert_eq!(
            (rows[1].shape.as_str(), rows[1].activation.as_str()),
            ("784-10", "none")
        );
        assert!(
            rows[1].test_accuracy.is_nan(),
            "a failed run's 0 became NaN"
        );
        assert_eq!(rows[1].error, "none");
        assert_eq!(rows[3].stop_reason, StopReason::Diverged);
        // The second run of r000000000016 owns the second block of its epochs.
        let of = |attempt: &str| -> Vec<f64> {
            epoch_rows
                .iter()
                .filter(|e| e.attempt == attempt)
                .map(|e| e.test_accuracy)
                .collect()
        };
        assert_eq!(of(&rows[0].attempt), [0.80, 0.90]);
        assert_eq!(of(&rows[2].attempt), [0.81, 0.91]);
        assert_eq!(of(&rows[3].attempt), [0.10]);
        assert_eq!((rows[0].epochs_trained, rows[0].best_epoch), (2, 2));
        assert_ne!(rows[0].attempt, rows[2].attempt);
        // Effective rows: the later ok run of r000000000016 stands for it.
        assert_eq!(results::effective(&rows)[0].attempt, rows[2].attempt);

        // Twice does nothing: the file is current.
        assert!(upgrade(&runs, Some(&epochs)).unwrap().current);
    }

    /// A format-1 runs row of a 784-16-10 network whose last epoch ended at `acc`.
    fn old_row(id: &str, at: &str, epochs: u32, acc: &str) -> String {
        format!(
            "{id},{at},n,configs/x.toml,mnist,flex,cpu,16,relu,softmax,default,cross_entropy,\
             adam,0.001,0.0,0.0,64,{epochs},1,1000,100,12730,0.5,0.8,0.6,{acc},1.0,0.1,1.5,\
             2000.0,ok,,0.1.0\n"
        )
    }

    fn old_epoch(id: &str, epoch: u32, acc: &str) -> String {
        format!("{id},{epoch},0.5,0.8,0.6,{acc},0.5\n")
    }

    #[test]
    fn a_killed_attempts_epochs_are_not_given_to_the_run_that_was_recorded() {
        // A killed attempt left 2 epochs (and no run row) before the completed run's 3.
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs-1.csv");
        let epochs = dir.path().join("epochs-1.csv");
        std::fs::write(
            &runs,
            format!("{OLD_RUNS}\n{}", old_row("000000000016", "t2", 3, "0.93")),
        )
        .unwrap();
        std::fs::write(
            &epochs,
            format!(
                "{OLD_EPOCHS}\n{}{}{}{}{}",
                old_epoch("000000000016", 1, "0.71"),
                old_epoch("000000000016", 2, "0.72"),
                old_epoch("000000000016", 1, "0.91"),
                old_epoch("000000000016", 2, "0.92"),
                old_epoch("000000000016", 3, "0.93"),
            ),
        )
        .unwrap();
        // The epochs file beside runs-1.csv is epochs-1.csv: converted with it, by default.
        assert_eq!(epochs_beside(&runs), epochs);
        assert_eq!(command(&runs, None, false).unwrap(), exit::OK);
        let rows = results::read_runs(&runs).unwrap();
        let epoch_rows = results::read_epochs(&epochs).unwrap();
        let own: Vec<f64> = epoch_rows
            .iter()
            .filter(|e| e.attempt == rows[0].attempt)
            .map(|e| e.test_accuracy)
            .collect();
        assert_eq!(own, [0.91, 0.92, 0.93]);
        assert_eq!(rows[0].epochs_trained, 3);
        assert_eq!(
            epoch_rows
                .iter()
                .filter(|e| e.attempt != rows[0].attempt)
                .count(),
            2,
            "the killed attempt's epochs are kept, under an attempt of their own"
        );
        // Again: the files are current, nothing to do.
        assert_eq!(command(&runs, None, false).unwrap(), exit::OK);
    }

    #[test]
    fn a_runs_file_is_never_converted_without_its_epochs_file() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs-2.csv");
        let original = format!("{OLD_RUNS}\n{}", old_row("000000000016", "t1", 1, "0.9"));
        std::fs::write(&runs, &original).unwrap();
        let message = format!("{:#}", command(&runs, None, false).unwrap_err());
        assert!(message.contains("epochs-2.csv"), "{message}");
        assert!(message.contains("--runs-only"), "{message}");
        assert_eq!(std::fs::read_to_string(&runs).unwrap(), original);
        // One file given as both: refused before anything is read.
        let message = format!("{:#}", upgrade(&runs, Some(&runs)).unwrap_err());
        assert!(message.contains("is also"), "{message}");
        assert_eq!(command(&runs, None, true).unwrap(), exit::OK);
        assert_eq!(results::read_runs(&runs).unwrap().len(), 1);
    }

    #[test]
    fn an_upgrade_interrupted_while_it_moved_the_files_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        let epochs = dir.path().join("epochs.csv");
        std::fs::write(
            &runs,
            format!("{OLD_RUNS}\n{}", old_row("000000000016", "t1", 1, "0.9")),
        )
        .unwrap();
        std::fs::write(
            &epochs,
            format!("{OLD_EPOCHS}\n{}", old_epoch("000000000016", 1, "0.9")),
        )
        .unwrap();
        upgrade(&runs, Some(&epochs)).unwrap();
        // As if killed after the epochs file moved and before the runs file did.
        std::fs::rename(&runs, converted(&runs)).unwrap();
        std::fs::rename(backup(&runs), &runs).unwrap();
        let done = upgrade(&runs, Some(&epochs)).unwrap();
        assert!(done.resumed);
        assert_eq!(results::read_runs(&runs).unwrap().len(), 1);
        assert_eq!(results::read_epochs(&epochs).unwrap().len(), 1);
        assert!(backup(&runs).is_file() && backup(&epochs).is_file());
    }
}
