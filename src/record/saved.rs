//! A trained network on disk: its model file and the runs row that describes it.
//!
//! A run id (or a `<run_id>.bpk` path) resolves to the model file in the models folder and to
//! the row that stands for the run in the runs file ([`crate::record::results::effective`]). The row
//! gives the architecture (`shape`, `activation`, `output`) and the SHA-256 of the model file
//! as it was saved; a file that does not match it (overwritten, or copied from another run) is
//! refused. `inspect`, `predict` and the HTML report load models through here.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use sha2::{Digest, Sha256};

use crate::choice::Choice;
use crate::error::{suggestion, user_error};
use crate::net::backend::{self, BackendName};
use crate::net::model::{Init, Mlp, MlpConfig, OutputActivation};
use crate::record::results::{self, NONE, RunRow};

/// A trained model and the row that describes it.
pub struct Loaded {
    pub row: RunRow,
    pub model: Mlp,
    pub device: Device,
    /// The runs file the row came from.
    pub runs_csv: PathBuf,
    /// The model file the weights came from.
    pub model_file: PathBuf,
}

/// Where the model of one attempt of a run is saved: `<models>/<run_id>.<attempt>.bpk`. Named
/// by the attempt, so that no other attempt (a second sweep, a rerun) can put another model
/// where a row points; the commit moves it into place with the row ([`crate::record::results::commit`]).
pub fn model_file(models: &Path, run_id: &str, attempt: &str) -> PathBuf {
    models.join(format!("{run_id}.{attempt}.bpk"))
}

/// The model file of `row` in `models`: its attempt's ([`model_file`]), or `<run_id>.bpk`,
/// where harness 0.2 before 2026-12 saved the latest attempt's model.
pub fn existing_model_file(models: &Path, row: &RunRow) -> Option<PathBuf> {
    [
        model_file(models, &row.run_id, &row.attempt),
        models.join(format!("{}.bpk", row.run_id)),
    ]
    .into_iter()
    .find(|path| path.is_file())
}

/// Resolves a run id or a model file path (`<run_id>.<attempt>.bpk`, or `<run_id>.bpk`) and
/// loads the model on the CPU.
///
/// The file is read once, checked against its row's SHA-256 and loaded from those bytes.
pub fn load(target: &str, runs_csv: &Path, models: &Path) -> Result<Loaded> {
    let as_path = Path::new(target);
    let (run_id, attempt) = if target.ends_with(".bpk") {
        let stem = as_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match stem.split_once('.') {
            Some((run_id, attempt)) => (run_id.to_string(), Some(attempt.to_string())),
            None => (stem, None),
        }
    } else {
        (target.to_string(), None)
    };
    crate::input::regular_file(runs_csv, "runs file", crate::input::CSV_MAX)?;
    let rows = results::read_runs(runs_csv)?;
    let chosen = match &attempt {
        Some(attempt) => rows
            .iter()
            .find(|row| row.run_id == run_id && &row.attempt == attempt),
        None => results::effective(&rows)
            .into_iter()
            .find(|row| row.run_id == run_id),
    };
    // A run's name (`sigmoid_16x16`) where an id is expected: the run, when it names one.
    let named;
    let chosen = match chosen {
        Some(row) => Some(row),
        None if attempt.is_none() => {
            let standing = results::effective(&rows);
            let mut ids: Vec<&str> = standing
                .iter()
                .filter(|row| row.name == run_id)
                .map(|row| row.run_id.as_str())
                .collect();
            ids.sort();
            ids.dedup();
            match ids.as_slice() {
                [] => None,
                [id] => {
                    named = standing.iter().find(|row| row.run_id == *id).copied();
                    named
                }
                several => {
                    let listed: Vec<String> = standing
                        .iter()
                        .filter(|row| row.name == run_id)
                        .map(|row| {
                            format!(
                                "{} ({}, seed {}, {} on {}, test accuracy {:.4}, {})",
                                row.run_id,
                                row.shape,
                                row.seed,
                                row.optimizer,
                                row.backend,
                                row.test_accuracy,
                                row.started_at
                            )
                        })
                        .collect();
                    return Err(user_error(format!(
                        "{} runs in {} are named {run_id}; give one of their ids:\n  {}",
                        several.len(),
                        runs_csv.display(),
                        listed.join("\n  ")
                    )));
                }
            }
        }
        None => None,
    };
    let row = chosen.cloned().ok_or_else(|| {
        let mut ids: Vec<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
        ids.sort_by(|a, b| {
            strsim::jaro_winkler(&run_id, b).total_cmp(&strsim::jaro_winkler(&run_id, a))
        });
        ids.dedup();
        let which = match &attempt {
            Some(attempt) => format!("no attempt {attempt} of run {run_id}"),
            None => format!("no run {run_id}"),
        };
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        user_error(format!(
            "{which} in {} (a run id, a run's name or a model file){}; nearest ids: {}",
            runs_csv.display(),
            suggestion(&run_id, ids.iter().copied().chain(names)),
            ids.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let run_id = row.run_id.clone();
    let found = if target.ends_with(".bpk") {
        Some(as_path.to_path_buf()).filter(|path| path.is_file())
    } else {
        // The standing row's model, else (it saved none: `save_model = false`, say) the model
        // of the latest attempt of the run that saved one.
        let mut attempts: Vec<&RunRow> = rows
            .iter()
            .filter(|r| r.run_id == row.run_id && r.attempt != row.attempt)
            .filter(|r| r.model_sha256 != NONE)
            .collect();
        attempts.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        std::iter::once(&row)
            .chain(attempts)
            .find_map(|r| existing_model_file(models, r))
    };
    let Some(model_file) = found else {
        return Err(user_error(format!(
            "no model file {} for run {run_id} (models are saved when a run ends ok with \
             output.save_model = true)",
            if target.ends_with(".bpk") {
                as_path.to_path_buf()
            } else {
                model_file(models, &row.run_id, &row.attempt)
            }
            .display()
        )));
    };
    // The model is read once: the bytes whose SHA-256 is checked are the bytes loaded (a file
    // replaced between a check and a second read cannot slip in).
    let bytes = crate::input::read_bytes(&model_file, "model file", 1 << 32)?;
    let asked = row.attempt.clone();
    let row = verify(&rows, row, &model_file, &bytes)?;
    if row.attempt != asked {
        eprintln!(
            "harness: run {run_id}: its standing attempt {asked} has no model file; using \
             attempt {} ({}, started {}), the latest that saved {}",
            row.attempt,
            row.name,
            row.started_at,
            model_file.display()
        );
    }
    let config = architecture(&row)?;
    let device = backend::select(BackendName::Cpu)?.device;
    let not_the_network = |e: String| {
        user_error(format!(
            "{} does not hold the {} network that {} describes for run {run_id}: {e}",
            model_file.display(),
            config.shape(),
            runs_csv.display()
        ))
    };
    let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| not_the_network(format!("{e:?}")))?
        // harness saves 32-bit floats; numbers of another type (a file written by hand) are
        // converted to them, not handed to the float operations as they are (a panic in burn).
        .cast_to_module_dtype();
    let model = config
        .init(&device)
        .try_load_record(record)
        .map_err(|e| not_the_network(format!("{e:?}")))?;
    Ok(Loaded {
        row,
        model,
        device,
        runs_csv: runs_csv.to_path_buf(),
        model_file,
    })
}

/// The row whose model the file is: the one that stands for the run if its recorded SHA-256
/// matches the file, else the latest other attempt of the run that saved this very file (a
/// later attempt may have run with `save_model = false`). A file no row of the run recorded is
/// refused.
fn verify(rows: &[RunRow], standing: RunRow, model_file: &Path, bytes: &[u8]) -> Result<RunRow> {
    let actual = format!("{:x}", Sha256::digest(bytes));
    if standing.model_sha256 == actual {
        return Ok(standing);
    }
    let saved_it = rows
        .iter()
        .filter(|r| r.run_id == standing.run_id && r.model_sha256 == actual)
        .max_by(|a, b| a.started_at.cmp(&b.started_at));
    if let Some(row) = saved_it {
        return Ok(row.clone());
    }
    if standing.model_sha256 == NONE {
        return Err(user_error(format!(
            "run {} saved no model that is {} (its rows record no model with the file's SHA-256 \
             {actual}; the latest has model_sha256 = none)",
            standing.run_id,
            model_file.display()
        )));
    }
    Err(user_error(format!(
        "{} is not the model run {} saved: its SHA-256 is {actual}, the row recorded {} (the \
         file was overwritten or copied from another run; rerun the run to save it again)",
        model_file.display(),
        standing.run_id,
        standing.model_sha256
    )))
}

/// The network a runs row describes.
pub fn architecture(row: &RunRow) -> Result<MlpConfig> {
    let bad = |what: String| user_error(format!("run {}: {what}", row.run_id));
    let hidden = MlpConfig::parse_shape(&row.shape).map_err(bad)?;
    let activations = MlpConfig::parse_activations(&row.activation, hidden.len()).map_err(bad)?;
    Ok(MlpConfig {
        hidden,
        activations,
        output: OutputActivation::parse(&row.output).map_err(bad)?,
        init: Init::Default,
        dropout: 0.0,
    })
}
