//! Checkpoints: a run's whole training state, written after every epoch, so that a run killed at
//! any instant resumes where it was, and a rung of successive halving continues the rung before
//! it instead of training its points again from the start.
//!
//! **What one holds** ([`Snapshot`]): the weights; the optimizer's state for every parameter
//! (Adam's two moments and its step count, SGD's velocity); every epoch's metrics so far; the
//! first running loss, which divergence is measured against; the kept epoch, its score and its
//! weights (`keep = "best"`); early stopping's reference and count; and how the run ended, if it
//! did. The schedule's position is the epoch. The random streams need no state: the shuffle
//! and the augmentation draws are replayed from the seed, and dropout is seeded afresh each epoch
//! (src/train/train.rs).
//!
//! **Where**: `<folder of output.runs>/.checkpoints/<runs file name>.<run_id>.ckpt`. One name per
//! runs file and run: a run's lock (src/record/running.rs) lets one process at a time train a
//! run into a runs file, so no two writers ever share a file; a resumed attempt takes over the
//! file of the attempt it continues. A run may also start from the checkpoint of a shorter run
//! of the same trajectory (the same settings but for a halving rung's budget,
//! [`Settings::trajectory`]), from any runs file in the folder: that is how a promoted point
//! continues, whichever shard trained its last rung.
//!
//! **Writing**: to `<name>.partial`, synced, renamed over the name, the folder synced. A kill
//! leaves the previous checkpoint whole, or the new one; a partial file is never read and is
//! replaced by the next write. A write that fails (a full disk) does not stop the run: it says
//! which epoch a crash would now go back to ([`Writer`]).
//!
//! **Reading** ([`find`]): a checkpoint is used only if everything checks: its size is within
//! what the network could need, its magic, its format (this file's [`FORMAT`]), its SHA-256 over
//! every byte, its trajectory (the same settings), its network (shape, parameters, optimizer,
//! backend), its epochs (numbered 1 to n, no further than the run may go), its weights (they
//! load into the network), and its optimizer state (one state per parameter, of the parameter's
//! shape, for exactly the parameters of the weights). A checkpoint of this run that fails is set
//! aside as `<name>.rejected`, with the reason, and training starts from epoch 0: never a wrong
//! result, never a panic.
//!
//! **Removed** when the run's rows are committed, unless `output.checkpoints = "keep"` (the
//! rungs of a halving sweep below the last keep theirs, and a sweep removes the checkpoints of
//! the points it does not promote).
//!
//! The file: `HRNSCKPT`, the format (u32, little-endian), the header's length (u32) and the
//! header (JSON), the weights' burnpack module record, the kept weights' (when they are not the
//! same), the optimizer's burnpack record, and the SHA-256 of everything before it.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::module::{Param, ParamId};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Optimizer, Settings};
use crate::net::backend::BackendName;
use crate::record::journal;
use crate::record::results::{Status, StopReason};
use crate::train::train::{
    EpochMetrics, KeeperState, Restored, Snapshot, module_record, record_bytes,
};

/// The checkpoint format this harness writes and reads.
pub const FORMAT: u32 = 1;

const MAGIC: &[u8; 8] = b"HRNSCKPT";

/// Magic, format and header length.
const PREAMBLE: usize = 16;

/// The folder's name, beside the runs file.
pub const FOLDER: &str = ".checkpoints";

/// The ending of a checkpoint's name.
const ENDING: &str = ".ckpt";

/// At most this many entries of the folder are looked at for a checkpoint to start from.
const MAX_ENTRIES: usize = 100_000;

/// The checkpoints of the runs recorded in one runs file: where they are and what they are
/// called.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    /// The runs file's name, in front of each of its runs' checkpoints.
    prefix: String,
}

impl Store {
    /// The checkpoints of the runs file at `runs`: beside its real path (links resolved).
    pub fn beside(runs: &Path) -> Store {
        let real = journal::real_path(runs);
        let dir = real
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            .join(FOLDER);
        let prefix = real
            .file_name()
            .map_or_else(|| "runs".to_string(), |n| n.to_string_lossy().into_owned());
        Store { dir, prefix }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint of run `run_id` of this runs file.
    pub fn path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{}.{run_id}{ENDING}", self.prefix))
    }
}

/// Who wrote a checkpoint and what it is of: the header's fixed part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The run that wrote it.
    pub run_id: String,
    /// Its settings without a halving budget ([`Settings::trajectory`]).
    pub trajectory: String,
    /// The attempt that wrote it.
    pub attempt: String,
    pub shape: String,
    pub params: u64,
    pub optimizer: String,
    pub backend: String,
    pub harness_version: String,
}

impl Identity {
    /// The identity of a run of `settings` on `backend`, in `attempt`.
    pub fn of(settings: &Settings, backend: BackendName, attempt: &str) -> Identity {
        Identity {
            run_id: settings.run_id(backend),
            trajectory: settings.trajectory(backend),
            attempt: attempt.to_string(),
            shape: settings.model.shape(),
            params: settings.model.num_params() as u64,
            optimizer: settings.train.optimizer.to_string(),
            backend: backend.resolve().to_string(),
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// A checkpoint's header. Floats are kept as their bits (`f64::to_bits`): NaN and infinities
/// survive, and what is read back is what was written, to the bit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    #[serde(flatten)]
    pub identity: Identity,
    /// When it was written (UTC).
    pub written_at: String,
    /// Epochs trained.
    pub epoch: usize,
    /// One row per epoch: epoch, learning rate, train loss and accuracy, validation loss and
    /// accuracy, test loss and accuracy, train and evaluation seconds (all but the epoch as
    /// bits).
    epochs: Vec<[u64; 10]>,
    first_loss: Option<u64>,
    best: Option<(usize, u64)>,
    reference: Option<u64>,
    waited: usize,
    pub finished: Option<(Status, StopReason)>,
    model_bytes: u64,
    best_bytes: u64,
    optimizer_bytes: u64,
}

fn metrics_bits(m: &EpochMetrics) -> [u64; 10] {
    [
        m.epoch as u64,
        m.learning_rate.to_bits(),
        m.train_loss.to_bits(),
        m.train_accuracy.to_bits(),
        m.val_loss.to_bits(),
        m.val_accuracy.to_bits(),
        m.test_loss.to_bits(),
        m.test_accuracy.to_bits(),
        m.train_seconds.to_bits(),
        m.eval_seconds.to_bits(),
    ]
}

fn metrics_of(bits: &[u64; 10]) -> EpochMetrics {
    let f = |i: usize| f64::from_bits(bits[i]);
    EpochMetrics {
        epoch: bits[0] as usize,
        learning_rate: f(1),
        train_loss: f(2),
        train_accuracy: f(3),
        val_loss: f(4),
        val_accuracy: f(5),
        test_loss: f(6),
        test_accuracy: f(7),
        train_seconds: f(8),
        eval_seconds: f(9),
    }
}

/// The largest header a run of `last_epoch` epochs can have.
fn header_max(last_epoch: usize) -> u64 {
    (64 << 10) + 256 * last_epoch as u64
}

/// The largest checkpoint a run of `settings` can have: the header, four copies of the weights
/// (the weights, the kept ones, and SGD's velocity or Adam's two moments), with room for
/// burnpack's own metadata (names, shapes and alignment: about a kilobyte and a half per tensor
/// and copy, allowed four).
pub fn max_size(settings: &Settings) -> u64 {
    let tensors = 2 * (settings.model.hidden.len() as u64 + 1);
    header_max(settings.last_epoch())
        + 16 * settings.model.num_params() as u64
        + 4 * tensors * (4 << 10)
        + (1 << 20)
}

/// The bytes of a checkpoint of `snapshot`, written by `identity`.
fn encode(identity: &Identity, snapshot: &Snapshot<'_>) -> Result<Vec<u8>> {
    let model = record_bytes(snapshot.model)?;
    let best = match snapshot.best {
        Some(best) => record_bytes(best)?,
        None => Vec::new(),
    };
    let optimizer = snapshot
        .optimizer
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("the optimizer's state: {e:?}"))?
        .to_vec();
    let header = Header {
        identity: identity.clone(),
        written_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        epoch: snapshot.epochs.len(),
        epochs: snapshot.epochs.iter().map(metrics_bits).collect(),
        first_loss: snapshot.first_loss.map(f64::to_bits),
        best: snapshot
            .keeper
            .best
            .map(|(epoch, score)| (epoch, score.to_bits())),
        reference: snapshot.keeper.reference.map(f64::to_bits),
        waited: snapshot.keeper.waited,
        finished: snapshot.finished,
        model_bytes: model.len() as u64,
        best_bytes: best.len() as u64,
        optimizer_bytes: optimizer.len() as u64,
    };
    let header = serde_json::to_vec(&header)?;
    let mut bytes = Vec::with_capacity(
        PREAMBLE + header.len() + model.len() + best.len() + optimizer.len() + 32,
    );
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT.to_le_bytes());
    bytes.extend_from_slice(&u32::try_from(header.len())?.to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&model);
    bytes.extend_from_slice(&best);
    bytes.extend_from_slice(&optimizer);
    let digest = Sha256::digest(&bytes);
    bytes.extend_from_slice(&digest);
    Ok(bytes)
}

/// The header of checkpoint bytes, checked for what can be checked without the network: magic,
/// format, length, checksum. Returns the header and where the sections start.
fn decode_header(bytes: &[u8], header_limit: u64) -> Result<(Header, usize), String> {
    let preamble: &[u8; PREAMBLE] = bytes
        .get(..PREAMBLE)
        .filter(|_| bytes.len() >= PREAMBLE + 32)
        .and_then(|start| start.try_into().ok())
        .ok_or_else(|| "it is not a harness checkpoint (no HRNSCKPT at its start)".to_string())?;
    let header_len = header_length(preamble)? as usize;
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        return Err(
            "its SHA-256 does not match its contents: it was cut short or changed".to_string(),
        );
    }
    if header_len as u64 > header_limit || PREAMBLE + header_len > body.len() {
        return Err(format!(
            "its header's length ({header_len} bytes) is more than it can be"
        ));
    }
    let header: Header = serde_json::from_slice(&body[PREAMBLE..PREAMBLE + header_len])
        .map_err(|e| format!("its header does not read: {e}"))?;
    Ok((header, PREAMBLE + header_len))
}

/// The header's length a checkpoint's first bytes give, once its magic and format are this
/// harness's.
fn header_length(preamble: &[u8; PREAMBLE]) -> Result<u64, String> {
    if &preamble[..8] != MAGIC {
        return Err("it is not a harness checkpoint (no HRNSCKPT at its start)".to_string());
    }
    let format = u32::from_le_bytes(preamble[8..12].try_into().expect("4 bytes"));
    if format != FORMAT {
        return Err(format!(
            "it is in checkpoint format {format}, from another version of harness; this one \
             reads format {FORMAT}"
        ));
    }
    Ok(u64::from(u32::from_le_bytes(
        preamble[12..16].try_into().expect("4 bytes"),
    )))
}

/// Only the header of the checkpoint at `path`, unchecked (for listing and for choosing which
/// file to check in full).
pub fn peek(path: &Path) -> Result<Header, String> {
    let mut file = crate::input::open_read(path).map_err(|e| e.to_string())?;
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".to_string());
    }
    let mut preamble = [0u8; PREAMBLE];
    file.read_exact(&mut preamble)
        .map_err(|_| "shorter than a checkpoint's header".to_string())?;
    let header_len = header_length(&preamble)?;
    if header_len > header_max(crate::config::MAX_EPOCHS) {
        return Err(format!(
            "its header's length ({header_len} bytes) is more than it can be"
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|_| "cut short inside its header".to_string())?;
    serde_json::from_slice(&header).map_err(|e| format!("its header does not read: {e}"))
}

/// What a run asks of a checkpoint it would start from.
pub struct Expect<'a> {
    pub settings: &'a Settings,
    pub backend: BackendName,
    /// The device the run trains on (the weights are loaded there to check them).
    pub device: &'a Device,
}

/// A checkpoint that passed every check, ready to start from.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub header: Header,
    pub restored: Restored,
}

impl Found {
    /// Whether it is this run's own (a resumed run), not a shorter run's (a continued one).
    pub fn is_own(&self, run_id: &str) -> bool {
        self.header.identity.run_id == run_id
    }
}

/// The checkpoint at `path` checked in full against what `expect` asks.
pub fn load(path: &Path, expect: &Expect<'_>) -> Result<Found, String> {
    let settings = expect.settings;
    let limit = max_size(settings);
    let metadata = fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("it is not a regular file".to_string());
    }
    if metadata.len() > limit {
        return Err(format!(
            "it is {} bytes, more than a checkpoint of this network can be ({limit})",
            metadata.len()
        ));
    }
    let mut bytes = Vec::new();
    crate::input::open_read(path)
        .and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("it cannot be read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err("it grew while it was read".to_string());
    }
    let (header, start) = decode_header(&bytes, header_max(settings.last_epoch()))?;
    let identity = Identity::of(settings, expect.backend, "");
    let theirs = &header.identity;
    if theirs.trajectory != identity.trajectory {
        return Err(format!(
            "it is of another run (run {}, trajectory {}; this run's trajectory is {})",
            theirs.run_id, theirs.trajectory, identity.trajectory
        ));
    }
    if (
        &theirs.shape,
        theirs.params,
        &theirs.optimizer,
        &theirs.backend,
    ) != (
        &identity.shape,
        identity.params,
        &identity.optimizer,
        &identity.backend,
    ) {
        return Err(format!(
            "it is of another network: {} with {} parameters, {} on {} (this run: {} with {}, {} \
             on {})",
            theirs.shape,
            theirs.params,
            theirs.optimizer,
            theirs.backend,
            identity.shape,
            identity.params,
            identity.optimizer,
            identity.backend
        ));
    }
    let epoch = header.epoch;
    if epoch == 0 || header.epochs.len() != epoch {
        return Err(format!(
            "it says {epoch} epochs and holds {} epochs' metrics",
            header.epochs.len()
        ));
    }
    if epoch > settings.last_epoch() {
        return Err(format!(
            "it is at epoch {epoch}, past this run's last ({})",
            settings.last_epoch()
        ));
    }
    if let Some((i, _)) = header
        .epochs
        .iter()
        .enumerate()
        .find(|(i, row)| row[0] != *i as u64 + 1)
    {
        return Err(format!(
            "its metrics are not numbered 1 to {epoch} (row {})",
            i + 1
        ));
    }
    if let Some((best, _)) = header.best
        && (best == 0 || best > epoch)
    {
        return Err(format!(
            "its kept epoch ({best}) is not one of its {epoch} epochs"
        ));
    }
    if theirs.harness_version != identity.harness_version {
        return Err(format!(
            "it was written by harness {}; this is harness {}, whose training may differ",
            theirs.harness_version, identity.harness_version
        ));
    }
    check_progress(&header, settings)?;
    let sections = [
        header.model_bytes,
        header.best_bytes,
        header.optimizer_bytes,
    ];
    let total = sections.iter().try_fold(0u64, |sum, &n| sum.checked_add(n));
    if total != Some((bytes.len() - 32 - start) as u64) {
        return Err("its sections do not add up to its length".to_string());
    }
    let (model, rest) = bytes[start..bytes.len() - 32].split_at(header.model_bytes as usize);
    let (best, optimizer) = rest.split_at(header.best_bytes as usize);
    let best_elsewhere = header.best.is_some_and(|(best, _)| best != epoch);
    if best_elsewhere == best.is_empty() {
        return Err("its kept weights are missing, or there when they should not be".to_string());
    }
    // burn may panic on a record it does not expect: a checkpoint that makes it is refused.
    let checked = catch_unwind(AssertUnwindSafe(|| {
        check_weights(model, settings, expect.device, "weights").and_then(|parameters| {
            if !best.is_empty() {
                check_weights(best, settings, expect.device, "kept weights")?;
            }
            check_optimizer(optimizer, &parameters, settings)
        })
    }))
    .unwrap_or_else(|_| Err("burn could not read it".to_string()));
    checked?;
    let keeper = KeeperState {
        best: header
            .best
            .map(|(epoch, score)| (epoch, f64::from_bits(score))),
        reference: header.reference.map(f64::from_bits),
        waited: header.waited,
    };
    let restored = Restored {
        epochs: header.epochs.iter().map(metrics_of).collect(),
        first_loss: header.first_loss.map(f64::from_bits),
        keeper,
        finished: header.finished,
        model: model.to_vec(),
        best: (!best.is_empty()).then(|| best.to_vec()),
        optimizer: optimizer.to_vec(),
    };
    Ok(Found {
        path: path.to_path_buf(),
        header,
        restored,
    })
}

/// The header's account of the run so far is one the training loop could have written: a run
/// ends only by diverging (a non-finite metric, or a loss that ran away) or by early stopping
/// (patience spent before the last epoch), and one that has not ended has neither.
fn check_progress(header: &Header, settings: &Settings) -> Result<(), String> {
    let train = &settings.train;
    let has_validation = settings.data.validation > 0;
    let epochs: Vec<EpochMetrics> = header.epochs.iter().map(metrics_of).collect();
    let non_finite = epochs
        .iter()
        .find_map(|e| e.non_finite(has_validation).map(|what| (e.epoch, what)));
    let patience_spent = train.patience > 0
        && has_validation
        && header.waited >= train.patience
        && header.epoch < train.epochs;
    if header.waited > header.epoch {
        return Err(format!(
            "it counts {} epochs without improvement in {} epochs",
            header.waited, header.epoch
        ));
    }
    match header.finished {
        None => {
            if let Some((epoch, what)) = non_finite {
                return Err(format!(
                    "its {what} after epoch {epoch} is not finite, yet the run had not ended"
                ));
            }
            if patience_spent {
                return Err("its patience is spent, yet the run had not ended".to_string());
            }
        }
        Some((Status::Diverged, StopReason::Diverged)) => {}
        Some((Status::Ok, StopReason::EarlyStopping)) if patience_spent && non_finite.is_none() => {
        }
        Some((status, why)) => {
            return Err(format!(
                "it says the run ended {} ({}), which its epochs do not show",
                serde_json::to_string(&why).unwrap_or_default(),
                serde_json::to_string(&status).unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// The parameters (id and shape) of weights that load into the network of `settings`.
fn check_weights(
    bytes: &[u8],
    settings: &Settings,
    device: &Device,
    what: &str,
) -> Result<Vec<(ParamId, Vec<usize>)>, String> {
    let record = module_record(bytes).map_err(|e| format!("its {what} do not read: {e:#}"))?;
    let model = settings
        .model
        .init(device)
        .try_load_record(record)
        .map_err(|e| format!("its {what} are not this network's: {e:?}"))?;
    let mut parameters = Vec::new();
    for layer in &model.layers {
        parameters.push(shape_of(&layer.weight));
        if let Some(bias) = &layer.bias {
            parameters.push(shape_of(bias));
        }
    }
    Ok(parameters)
}

fn shape_of<const D: usize>(param: &Param<Tensor<D>>) -> (ParamId, Vec<usize>) {
    (param.id, param.val().dims().to_vec())
}

/// The optimizer's record holds exactly one state per parameter, of its shape: SGD with momentum
/// a velocity, Adam two moments, plain SGD nothing.
fn check_optimizer(
    bytes: &[u8],
    parameters: &[(ParamId, Vec<usize>)],
    settings: &Settings,
) -> Result<(), String> {
    let reader = burn_pack::Reader::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| format!("its optimizer state does not read: {e:?}"))?;
    let per_parameter = match settings.train.optimizer {
        Optimizer::Adam => 2,
        Optimizer::Sgd if settings.train.momentum > 0.0 => 1,
        Optimizer::Sgd => 0,
    };
    // Adam's step count is a scalar per parameter; a state without it would be dropped by
    // burn's loader and start again from zero moments, silently.
    if settings.train.optimizer == Optimizer::Adam
        && let Some((id, _)) = parameters.iter().find(|(id, _)| {
            !matches!(
                reader.scalars().get(&format!("{}.time", id.val())),
                Some(burn_pack::Scalar::UInt(_))
            )
        })
    {
        return Err(format!(
            "its optimizer state has no step count for parameter {}",
            id.val()
        ));
    }
    let tensors = reader
        .into_tensors()
        .map_err(|e| format!("its optimizer state does not read: {e:?}"))?;
    if tensors.len() != per_parameter * parameters.len() {
        let optimizer = match settings.train.optimizer {
            Optimizer::Sgd if per_parameter == 1 => "SGD with momentum".to_string(),
            other => other.to_string(),
        };
        return Err(format!(
            "its optimizer state holds {} tensors, where {optimizer} needs {}",
            tensors.len(),
            per_parameter * parameters.len()
        ));
    }
    let mut seen: HashSet<(u64, String)> = HashSet::new();
    for tensor in tensors {
        let (name, dtype, shape, id, _) = tensor
            .into_parts()
            .map_err(|e| format!("its optimizer state does not read: {e:?}"))?;
        let parameter = id.and_then(|id| parameters.iter().find(|(p, _)| p.val() == id));
        let Some((_, dims)) = parameter else {
            return Err(format!(
                "its optimizer state ({name}) is for a parameter its weights do not have"
            ));
        };
        if dtype != burn::tensor::DType::F32 || shape.as_slice() != dims.as_slice() {
            return Err(format!(
                "its optimizer state {name} is {dtype:?} {:?}, where the parameter is F32 {dims:?}",
                shape.as_slice()
            ));
        }
        if !seen.insert((id.unwrap_or_default(), name.clone())) {
            return Err(format!("its optimizer state holds {name} twice"));
        }
    }
    Ok(())
}

/// What [`find`] says about the checkpoints it looked at, for the run to print.
#[derive(Debug, Default)]
pub struct Looked {
    /// Checkpoints set aside (where they went), and why; or not used and left where they are
    /// (they could not be moved), and why.
    pub rejected: Vec<(PathBuf, String)>,
    pub unmovable: Vec<(PathBuf, String)>,
    /// Checkpoints removed (`--restart`, or left by an attempt whose rows are recorded).
    pub removed: Vec<(PathBuf, String)>,
}

/// The checkpoint a run of `expect` starts from, if any: its own (a resumed run), or that of a
/// shorter run of its trajectory (a continued one), whichever is furthest, every check passed.
///
/// `recorded` holds the attempts that have a row with status ok or diverged in the runs file:
/// an own checkpoint of one of them is left from a commit that was not followed by the
/// removal; it is removed (kept with `output.checkpoints = "keep"`) and not resumed. With
/// `restart`, the run's own checkpoint is removed and nothing is used.
pub fn find(
    store: &Store,
    expect: &Expect<'_>,
    recorded: &HashSet<String>,
    restart: bool,
) -> (Option<Found>, Looked) {
    let settings = expect.settings;
    let run_id = settings.run_id(expect.backend);
    let trajectory = settings.trajectory(expect.backend);
    let own = store.path(&run_id);
    let mut looked = Looked::default();
    // A partial file of this run is a killed write's: never read, removed here.
    let _ = fs::remove_file(journal::sibling(&own, "partial"));
    if restart {
        if own.exists() && remove(&own).is_ok() {
            looked.removed.push((
                own.clone(),
                "--restart: training starts from epoch 0".to_string(),
            ));
        }
        return (None, looked);
    }
    // The run's own checkpoint by its name, then the folder for shorter runs of its trajectory
    // (other run ids: a checkpoint of this run id made for another runs file may be another
    // live process's, and is never this run's to resume).
    let entries = fs::read_dir(store.dir())
        .into_iter()
        .flatten()
        .take(MAX_ENTRIES)
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            *path != own
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(ENDING))
        });
    let paths: Vec<PathBuf> = fs::symlink_metadata(&own)
        .is_ok()
        .then(|| own.clone())
        .into_iter()
        .chain(entries)
        .collect();
    let mut candidates: Vec<(PathBuf, Header)> = Vec::new();
    for path in paths {
        let is_own = path == own;
        match peek(&path) {
            Ok(header) if !is_own && header.identity.run_id == run_id => {}
            Ok(header) if header.identity.trajectory == trajectory => {
                if header.identity.run_id == run_id && recorded.contains(&header.identity.attempt) {
                    // Its run is recorded: resuming it would record the run twice.
                    if !crate::train::run::keeps_checkpoint(settings) && remove(&path).is_ok() {
                        looked.removed.push((
                            path,
                            format!(
                                "its attempt {} is recorded already",
                                header.identity.attempt
                            ),
                        ));
                    }
                    continue;
                }
                if header.epoch <= settings.last_epoch() {
                    candidates.push((path, header));
                } else if is_own {
                    // This run's own, and further than it goes: made by hand, or broken.
                    set_aside(
                        &path,
                        format!(
                            "it is at epoch {}, past this run's last ({})",
                            header.epoch,
                            settings.last_epoch()
                        ),
                        &mut looked,
                    );
                }
            }
            Ok(header) if is_own => set_aside(
                &path,
                format!(
                    "it is of another run ({}, trajectory {})",
                    header.identity.run_id, header.identity.trajectory
                ),
                &mut looked,
            ),
            Err(reason) if is_own => set_aside(&path, reason, &mut looked),
            // Another run's, or a file this harness cannot read: not this run's to judge.
            _ => {}
        }
    }
    // Furthest first; the run's own first among equals.
    candidates.sort_by(|a, b| {
        b.1.epoch
            .cmp(&a.1.epoch)
            .then((b.0 == own).cmp(&(a.0 == own)))
    });
    for (path, _) in candidates {
        match load(&path, expect) {
            Ok(found) => return (Some(found), looked),
            Err(reason) => set_aside(&path, reason, &mut looked),
        }
    }
    (None, looked)
}

/// Moves a checkpoint that failed its checks to `<name>.rejected` (replacing an older one).
fn set_aside(path: &Path, reason: String, looked: &mut Looked) {
    let aside = journal::sibling(path, "rejected");
    match fs::rename(path, &aside) {
        Ok(()) => looked.rejected.push((aside, reason)),
        Err(error) => looked.unmovable.push((
            path.to_path_buf(),
            format!(
                "{reason}; it could not be moved to {} ({error}): remove it by hand",
                aside.display()
            ),
        )),
    }
}

/// Removes a checkpoint, durably; one that is not there is removed already.
pub fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => journal::sync_dir(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove checkpoint {}", path.display())),
    }
}

/// Every checkpoint in the folder, with its header (or why it does not read).
pub fn list(dir: &Path) -> Vec<(PathBuf, u64, Result<Header, String>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<_> = entries
        .take(MAX_ENTRIES)
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(ENDING))
        })
        .map(|path| {
            let size = fs::metadata(&path).map_or(0, |m| m.len());
            let header = peek(&path);
            (path, size, header)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// How many checkpoints the folder holds and their bytes (set-aside ones included).
pub fn usage(dir: &Path) -> (usize, u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .take(MAX_ENTRIES)
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.ends_with(ENDING) || name.ends_with(".rejected")
        })
        .fold((0, 0), |(n, bytes), entry| {
            (n + 1, bytes + entry.metadata().map_or(0, |m| m.len()))
        })
}

/// Writes a run's checkpoint after every epoch, unless epochs are so short that writing would
/// take more than [`WRITE_SHARE`] of the time: then after the first epoch that ends once that
/// much time has passed, and always after the last one and after one that ends the run.
pub struct Writer {
    identity: Identity,
    path: PathBuf,
    last_epoch: usize,
    /// When the last write ended, and how long it took.
    last_write: Option<(std::time::Instant, std::time::Duration)>,
    /// The last epoch whose checkpoint is on disk (0: none, or the one the run started from).
    pub saved: usize,
}

impl Writer {
    /// A writer of `identity`'s checkpoint in `store` for a run that ends after `last_epoch`;
    /// `saved` is the epoch of the checkpoint on disk that the run started from (0 for none).
    pub fn new(store: &Store, identity: Identity, saved: usize, last_epoch: usize) -> Writer {
        let path = store.path(&identity.run_id);
        Writer {
            identity,
            path,
            last_epoch,
            last_write: None,
            saved,
        }
    }

    /// The checkpoint's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the checkpoint of `snapshot`, replacing the previous one atomically. On an error
    /// the previous one is left as it was (and the partial file removed).
    pub fn write(&mut self, snapshot: &Snapshot<'_>) -> Result<()> {
        let epoch = snapshot.epochs.len();
        let ends = epoch >= self.last_epoch || snapshot.finished.is_some();
        // Tests that kill at a checkpoint's write need every one written.
        let failpoint =
            std::env::var("HARNESS_FAILPOINT").is_ok_and(|p| p.starts_with("checkpoint-"));
        if let Some((at, took)) = self.last_write
            && !ends
            && !failpoint
            && at.elapsed().as_secs_f64() * WRITE_SHARE < took.as_secs_f64()
        {
            return Ok(());
        }
        let started = std::time::Instant::now();
        journal::failpoint_at("checkpoint-before", epoch);
        let bytes = encode(&self.identity, snapshot)?;
        let partial = journal::sibling(&self.path, "partial");
        let written = (|| -> Result<()> {
            if journal::failpoint_set(&format!("checkpoint-enospc@{epoch}")) {
                return Err(std::io::Error::from_raw_os_error(28).into());
            }
            fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")))?;
            // A file of its own: never through a link someone put at the partial name.
            match fs::remove_file(&partial) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.custom_flags(libc::O_NOFOLLOW);
            }
            let mut file = options.open(&partial)?;
            if journal::failpoint_set(&format!("checkpoint-half@{epoch}")) {
                file.write_all(&bytes[..bytes.len() / 2])?;
                file.sync_all()?;
                journal::failpoint_at("checkpoint-half", epoch);
            }
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&partial, &self.path)?;
            journal::sync_dir(&self.path)?;
            Ok(())
        })();
        if let Err(error) = written {
            let _ = fs::remove_file(&partial);
            return Err(error)
                .with_context(|| format!("cannot write checkpoint {}", self.path.display()));
        }
        journal::failpoint_at("checkpoint-after", epoch);
        self.last_write = Some((std::time::Instant::now(), started.elapsed()));
        self.saved = epoch;
        Ok(())
    }
}

/// The most of a run's time that writing checkpoints may take: 5%.
pub const WRITE_SHARE: f64 = 0.05;

/// "1.2 MB": a size for messages.
pub fn megabytes(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.0} kB", bytes as f64 / 1e3)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}
