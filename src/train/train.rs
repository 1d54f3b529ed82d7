//! The one training loop and evaluation, over any burn `Device`.
//!
//! [`train`] seeds the device, builds the network, and for each epoch shuffles the training
//! images (seeded, and augmented when asked), runs mini-batches of forward, loss, backward and
//! optimizer step at the learning rate of the schedule, then evaluates on the validation and
//! test sets without autodiff. The epoch kept is the last, or the one with the best validation
//! metric (its weights are held until a better epoch comes); early stopping ends training when
//! the metric has not improved for `patience` epochs (or after a halving rung's budget of
//! epochs). After every epoch the observer is handed the whole state the next epoch depends on
//! ([`Snapshot`]: `harness run` writes it as a checkpoint), and a job may start from such a
//! state ([`Restored`]) instead of from epoch 0: the shuffles and augmentation draws of the
//! epochs done are replayed, the dropout generator is seeded afresh each epoch from (seed,
//! epoch), and every sum is per epoch, so a resumed run computes what an uninterrupted one
//! does, to the bit. Each step's loss and predicted digits stay on the
//! device and are read back together only a few times per epoch ([`Window`]: each read forces a
//! sync, and every tensor operation costs about a microsecond at batch 10); a loss that becomes
//! NaN, infinite or [`DIVERGENCE_FACTOR`] times its first value stops the run as diverged.

use std::mem::take;
use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

use crate::config::{Keep, Loss, Metric, Optimizer, Schedule, Settings, TrainSettings};
use crate::data::loader::{self, Augment, HostBatch};
use crate::data::mnist::{Dataset, Split};
use crate::net::backend::{self, BackendName};
use crate::net::model::{INPUTS, Mlp, MlpConfig, OUTPUTS};
use crate::record::results::{Status, StopReason};

/// Images per evaluation batch: large batches are fast, and 10,000 x 784 f32 (31 MB) stays well
/// under wgpu's limit of about 128 MB per buffer.
pub const EVAL_BATCH: usize = 10_000;

/// How many times per epoch the running loss is read back (for divergence and progress).
const READS_PER_EPOCH: usize = 10;

/// A run has diverged when its running loss exceeds this multiple of its first step's loss
/// (or becomes NaN or infinite). Bounded losses (the quadratic cost of sigmoid outputs is at
/// most 5) never reach it; an exploding cross-entropy does within a few steps.
pub const DIVERGENCE_FACTOR: f64 = 1000.0;

/// Metrics after one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    /// The learning rate of the epoch's last step.
    pub learning_rate: f64,
    /// Mean loss over the epoch's mini-batches, as the weights moved.
    pub train_loss: f64,
    /// Fraction of the epoch's training images classified correctly, as the weights moved.
    pub train_accuracy: f64,
    /// Mean loss over the validation images after the epoch (NaN without validation images).
    pub val_loss: f64,
    /// Fraction of validation images classified correctly (NaN without validation images).
    pub val_accuracy: f64,
    /// Mean loss over the test images, after the epoch.
    pub test_loss: f64,
    /// Fraction of test images classified correctly, after the epoch.
    pub test_accuracy: f64,
    /// Wall time of the epoch's training steps.
    pub train_seconds: f64,
    /// Wall time of the epoch's evaluation.
    pub eval_seconds: f64,
}

/// What training produced.
pub struct Outcome {
    /// The network of the kept epoch, without autodiff.
    pub model: Mlp,
    /// One entry per completed epoch (a diverged epoch is included).
    pub epochs: Vec<EpochMetrics>,
    /// The epoch whose weights are kept (1-based): the last, or the best on validation.
    pub kept: usize,
    /// `Ok`, or `Diverged` when a loss became NaN or infinite.
    pub status: Status,
    /// Why training stopped.
    pub stop_reason: StopReason,
    /// Training images used per epoch (fewer than the split when the ragged batch is dropped).
    pub train_size: usize,
}

/// Receives progress as training goes, and the state after each epoch; the CLI draws the one
/// and writes the other, tests ignore both. `Send`: training runs on a thread of the CPU
/// backends' pool (see [`train`]).
pub trait Observer: Send {
    /// An epoch of `steps` mini-batches begins.
    fn epoch_started(&mut self, _epoch: usize, _steps: usize) {}
    /// `step` mini-batches of the epoch are done; `loss` is the running mean when it was read.
    fn step(&mut self, _step: usize, _loss: Option<f64>) {}
    /// An epoch ended and was evaluated.
    fn epoch_finished(&mut self, _metrics: &EpochMetrics) {}
    /// The state after an epoch, everything the next one depends on (a checkpoint's contents).
    fn snapshot(&mut self, _snapshot: &Snapshot<'_>) {}
}

/// What the early-stopping and kept-epoch rules remember between epochs ([`Keeper`]), without
/// the kept weights.
#[derive(Clone, Debug, PartialEq)]
pub struct KeeperState {
    /// The best epoch so far and its score (higher is better), for `keep = "best"`.
    pub best: Option<(usize, f64)>,
    /// The score that last counted as an improvement.
    pub reference: Option<f64>,
    /// Epochs since that improvement.
    pub waited: usize,
}

/// The loop's state after an epoch: all that the epochs after it depend on.
pub struct Snapshot<'a> {
    /// Every epoch so far (the last is the one just trained).
    pub epochs: &'a [EpochMetrics],
    /// The first running loss read, which divergence is measured against.
    pub first_loss: Option<f64>,
    pub keeper: KeeperState,
    /// How the run ended, if it did (diverged, or stopped early): a run continued from here
    /// ends the same way without training.
    pub finished: Option<(Status, StopReason)>,
    /// The weights after the epoch, without autodiff.
    pub model: &'a Mlp,
    /// The kept epoch's weights when they are not `model`'s (`keep = "best"`, an earlier epoch).
    pub best: Option<&'a Mlp>,
    /// The optimizer, with its state for every parameter.
    pub optimizer: &'a ModuleOptimizer,
}

/// A [`Snapshot`] read back (from a checkpoint, checked by its reader): where a job starts.
#[derive(Clone, Debug)]
pub struct Restored {
    pub epochs: Vec<EpochMetrics>,
    pub first_loss: Option<f64>,
    pub keeper: KeeperState,
    pub finished: Option<(Status, StopReason)>,
    /// The weights, as a burnpack module record (with the parameter ids the optimizer's state
    /// is keyed by).
    pub model: Vec<u8>,
    /// The kept epoch's weights, when they are not `model`'s.
    pub best: Option<Vec<u8>>,
    /// The optimizer's state, as a burnpack optimizer record.
    pub optimizer: Vec<u8>,
}

/// The module record of burnpack bytes, as 32-bit floats.
pub fn module_record(bytes: &[u8]) -> anyhow::Result<ModuleRecord> {
    Ok(
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .cast_to_module_dtype(),
    )
}

/// The burnpack bytes of a network's weights.
pub fn record_bytes(model: &Mlp) -> anyhow::Result<Vec<u8>> {
    Ok(model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .to_vec())
}

/// The seed of the dropout generator in epoch `epoch` (1-based) of a run seeded with `seed`:
/// fresh each epoch, so that an epoch's masks do not depend on the epochs before it having run
/// in this process.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    // SplitMix64's finaliser over the pair.
    let mut z = seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// What to train and how.
pub struct Job<'a> {
    pub model: &'a MlpConfig,
    pub train: &'a TrainSettings,
    /// The images to train on.
    pub train_set: &'a Split,
    /// The images that choose the epoch kept and drive early stopping (may be empty).
    pub validation_set: &'a Split,
    /// The images to evaluate on after each epoch.
    pub test_set: &'a Split,
    pub seed: u64,
    /// Random changes to the training images.
    pub augment: Augment,
    /// Drop the ragged last batch so every step has the same tensor shapes (wgpu).
    pub constant_shapes: bool,
    /// The epoch to stop after: `train.epochs`, or a halving rung's budget.
    pub last_epoch: usize,
    /// Where to start: a checkpoint's state, or the first epoch.
    pub resume: Option<&'a Restored>,
}

impl<'a> Job<'a> {
    /// The job a run's settings describe on `data`, on `backend` (the resolved one).
    pub fn new(settings: &'a Settings, data: &'a Dataset, backend: BackendName) -> Self {
        Job {
            model: &settings.model,
            train: &settings.train,
            train_set: &data.train,
            validation_set: &data.validation,
            test_set: &data.test,
            seed: settings.seed,
            augment: Augment {
                shift: settings.data.augment_shift,
                rotate: settings.data.augment_rotate,
            },
            constant_shapes: backend.needs_constant_shapes(),
            last_epoch: settings.last_epoch(),
            resume: None,
        }
    }
}

/// Trains a new network on `device` (a plain device; autodiff is added here).
///
/// The loop runs on a thread of rayon's global pool, the pool the CPU backends split large
/// matrix products over. From any other thread each parallel product hands all of its work to
/// the pool and sleeps until it is done (a wake-up and two context switches every time: a
/// fifth of the time at 128 wide, BENCHMARKS.md); from inside, this thread computes its share
/// and the pool's other threads take the rest. With one CPU thread (RAYON_NUM_THREADS=1) the
/// products run inline. The GPU backend does not use the pool, and loses nothing.
pub fn train(job: &Job, device: &Device, observer: &mut dyn Observer) -> anyhow::Result<Outcome> {
    rayon::scope(|_| train_here(job, device, observer))
}

fn train_here(job: &Job, device: &Device, observer: &mut dyn Observer) -> anyhow::Result<Outcome> {
    let settings = job.train;
    let train_set = job.train_set;
    let batch_size = settings.batch_size.min(train_set.len());
    let steps = if job.constant_shapes {
        train_set.len() / batch_size
    } else {
        train_set.len().div_ceil(batch_size)
    };
    let train_size = if job.constant_shapes {
        steps * batch_size
    } else {
        train_set.len()
    };
    anyhow::ensure!(steps > 0, "no training images");

    let autodiff = device.clone().autodiff();
    autodiff.seed(job.seed);
    let mut model = job.model.init(&autodiff);
    let mut optimizer = optimizer(settings);
    let read_every = steps.div_ceil(READS_PER_EPOCH).max(1);

    // Grown as epochs are trained: train.epochs sizes nothing up front.
    let mut epochs = Vec::new();
    let mut status = Status::Ok;
    let mut stop_reason = StopReason::Completed;
    let mut finished = None;
    let mut first_loss = None;
    let mut keeper = Keeper::new(settings, !job.validation_set.is_empty());
    if let Some(saved) = job.resume {
        // The weights first, so that their parameter ids (kept in the record) are those the
        // optimizer's state is keyed by.
        model = model
            .try_load_record(module_record(&saved.model)?)
            .map_err(|e| anyhow::anyhow!("the checkpoint's weights do not load: {e:?}"))?;
        optimizer = optimizer
            .from_bytes(Bytes::from_bytes_vec(saved.optimizer.clone()))
            .map_err(|e| {
                anyhow::anyhow!("the checkpoint's optimizer state does not load: {e:?}")
            })?;
        let best = match (&saved.best, saved.keeper.best) {
            (Some(bytes), Some(_)) => Some(
                job.model
                    .init(device)
                    .try_load_record(module_record(bytes)?)
                    .map_err(|e| {
                        anyhow::anyhow!("the checkpoint's kept weights do not load: {e:?}")
                    })?,
            ),
            (None, Some(_)) => Some(model.valid()),
            _ => None,
        };
        keeper.restore(&saved.keeper, best);
        epochs = saved.epochs.clone();
        first_loss = saved.first_loss;
        if let Some((was, why)) = saved.finished {
            (status, stop_reason, finished) = (was, why, Some((was, why)));
        }
    }
    let done = epochs.len();
    let last_epoch = if finished.is_some() {
        done
    } else {
        job.last_epoch.max(done)
    };
    let plan = loader::Plan {
        done,
        epochs: last_epoch,
        steps,
        batch_size,
        seed: job.seed,
        augment: job.augment,
    };
    let validation_set = EvalSet::upload(job.validation_set, settings.loss, device);
    let test_set = EvalSet::upload(job.test_set, settings.loss, device);
    // The loader thread lives in this scope; dropping `batches` on any way out stops it.
    let model = std::thread::scope(|scope| -> anyhow::Result<Mlp> {
        // A loader thread only pays when there is a core for it.
        let mut batches = loader::batches(scope, train_set, plan, backend::cpu_threads() > 1);
        for epoch in done + 1..=last_epoch {
            // Dropout's masks come from the device's generator: seeded per epoch, so that a
            // resumed run draws what an uninterrupted one does.
            autodiff.seed(epoch_seed(job.seed, epoch));
            observer.epoch_started(epoch, steps);
            let started = Instant::now();
            let mut window = Window::default();
            let (mut loss_sum, mut correct, mut seen) = (0.0, 0, 0);
            let mut rate = settings.learning_rate;
            for step in 0..steps {
                let batch = Batch::upload(batches.next_batch()?, settings.loss, &autodiff);
                let logits = model.forward(batch.images); // [batch, 10]
                let loss = loss(&model, logits.clone(), batch.targets, settings.loss); // [1]
                window.push(loss.clone().inner(), logits.inner(), batch.labels);

                let gradients = GradientsParams::from_grads(loss.backward(), &model);
                rate = learning_rate(settings, epoch - 1, step, steps);
                model = optimizer.step(rate, model, gradients);

                let is_last = step + 1 == steps;
                if first_loss.is_none() || (step + 1) % read_every == 0 || is_last {
                    let read = window.read()?;
                    loss_sum += read.loss_sum;
                    correct += read.correct;
                    seen += read.images;
                    let mean = loss_sum / seen as f64;
                    let first = *first_loss.get_or_insert(mean);
                    observer.step(step + 1, Some(mean));
                    if !mean.is_finite() || mean > DIVERGENCE_FACTOR * first {
                        status = Status::Diverged;
                        break;
                    }
                } else {
                    observer.step(step + 1, None);
                }
            }
            let train_loss = loss_sum / seen as f64;
            let train_accuracy = correct as f64 / seen as f64;
            let train_seconds = started.elapsed().as_secs_f64();

            let started = Instant::now();
            let trained = model.valid();
            let (val_loss, val_accuracy) = validation_set.evaluate(&trained, settings.loss)?;
            let (test_loss, test_accuracy) = test_set.evaluate(&trained, settings.loss)?;
            let metrics = EpochMetrics {
                epoch,
                learning_rate: rate,
                train_loss,
                train_accuracy,
                val_loss,
                val_accuracy,
                test_loss,
                test_accuracy,
                train_seconds,
                eval_seconds: started.elapsed().as_secs_f64(),
            };
            observer.epoch_finished(&metrics);
            // Weights that evaluate to a NaN or an infinity diverged, whatever the training
            // loss said: such a run is never ok.
            if metrics.non_finite(!job.validation_set.is_empty()).is_some() {
                status = Status::Diverged;
            }
            let patience_spent = keeper.observe(&metrics, &trained);
            epochs.push(metrics);
            if status == Status::Diverged {
                stop_reason = StopReason::Diverged;
            } else if patience_spent && epoch < settings.epochs {
                stop_reason = StopReason::EarlyStopping;
            }
            if stop_reason != StopReason::Completed {
                finished = Some((status, stop_reason));
            }
            observer.snapshot(&Snapshot {
                epochs: &epochs,
                first_loss,
                keeper: keeper.state(),
                finished,
                model: &trained,
                best: keeper.best_if_not(epoch),
                optimizer: &optimizer,
            });
            if finished.is_some() {
                break;
            }
        }
        Ok(model)
    })?;
    if finished.is_none() && last_epoch < settings.epochs {
        stop_reason = StopReason::Budget;
    }
    let (kept, model) = keeper
        .take()
        .unwrap_or_else(|| (epochs.len(), model.valid()));
    Ok(Outcome {
        model,
        epochs,
        kept,
        status,
        stop_reason,
        train_size,
    })
}

impl EpochMetrics {
    /// The first metric of the epoch that is NaN or infinite (the validation metrics only when
    /// images were held out), if any.
    pub fn non_finite(&self, has_validation: bool) -> Option<&'static str> {
        crate::record::results::first_non_finite(
            [
                self.train_loss,
                self.train_accuracy,
                self.val_loss,
                self.val_accuracy,
                self.test_loss,
                self.test_accuracy,
            ],
            has_validation,
        )
    }
}

/// The learning rate of step `step` (0-based) of epoch `epoch` (0-based): a linear warm-up over
/// the first `warmup_epochs`, then the schedule.
pub fn learning_rate(settings: &TrainSettings, epoch: usize, step: usize, steps: usize) -> f64 {
    let base = settings.learning_rate;
    // Training done when this step's update is applied, in epochs.
    let done = epoch as f64 + (step + 1) as f64 / steps as f64;
    let warmup = settings.warmup_epochs;
    if done <= warmup {
        return base * done / warmup;
    }
    match settings.schedule {
        Schedule::Constant => base,
        Schedule::Step => {
            let steps_taken = ((done - 1e-9) / settings.step_epochs as f64).floor();
            base * settings.step_factor.powf(steps_taken)
        }
        Schedule::Cosine => {
            let span = settings.epochs as f64 - warmup;
            let progress = ((done - warmup) / span).clamp(0.0, 1.0);
            base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// Decides which epoch's weights a run keeps, and when early stopping ends it.
struct Keeper {
    keep: Keep,
    metric: Metric,
    patience: usize,
    min_delta: f64,
    has_validation: bool,
    /// The best epoch so far, its metric and its weights (for `keep = "best"`).
    best: Option<(usize, f64, Mlp)>,
    /// The best metric value that counted as an improvement for early stopping.
    reference: Option<f64>,
    /// Epochs since that improvement.
    waited: usize,
}

impl Keeper {
    fn new(settings: &TrainSettings, has_validation: bool) -> Self {
        Keeper {
            keep: settings.keep,
            metric: settings.metric,
            patience: settings.patience,
            min_delta: settings.min_delta,
            has_validation,
            best: None,
            reference: None,
            waited: 0,
        }
    }

    /// The metric as a score, higher is better (NaN never wins).
    fn score(&self, metrics: &EpochMetrics) -> f64 {
        let value = match self.metric {
            Metric::ValAccuracy => metrics.val_accuracy,
            Metric::ValLoss => -metrics.val_loss,
        };
        if value.is_nan() {
            f64::NEG_INFINITY
        } else {
            value
        }
    }

    /// Takes an epoch's metrics and weights; returns whether early stopping says stop.
    fn observe(&mut self, metrics: &EpochMetrics, model: &Mlp) -> bool {
        if !self.has_validation {
            return false;
        }
        let score = self.score(metrics);
        if self.keep == Keep::Best && self.best.as_ref().is_none_or(|(_, best, _)| score > *best) {
            self.best = Some((metrics.epoch, score, model.clone()));
        }
        match self.reference {
            Some(reference) if score <= reference + self.min_delta => self.waited += 1,
            _ => {
                self.reference = Some(score);
                self.waited = 0;
            }
        }
        self.patience > 0 && self.waited >= self.patience
    }

    /// What it remembers, without the weights.
    fn state(&self) -> KeeperState {
        KeeperState {
            best: self.best.as_ref().map(|(epoch, score, _)| (*epoch, *score)),
            reference: self.reference,
            waited: self.waited,
        }
    }

    /// The kept weights, unless they are epoch `epoch`'s.
    fn best_if_not(&self, epoch: usize) -> Option<&Mlp> {
        self.best
            .as_ref()
            .filter(|(best, _, _)| *best != epoch)
            .map(|(_, _, model)| model)
    }

    /// Back to a [`KeeperState`], with the kept epoch's weights.
    fn restore(&mut self, state: &KeeperState, best: Option<Mlp>) {
        self.best = state
            .best
            .zip(best)
            .map(|((epoch, score), model)| (epoch, score, model));
        self.reference = state.reference;
        self.waited = state.waited;
    }

    /// The kept epoch and its weights, when they are not simply the last.
    fn take(self) -> Option<(usize, Mlp)> {
        self.best.map(|(epoch, _, model)| (epoch, model))
    }
}

/// A held-out set on the device: uploaded once, in batches of [`EVAL_BATCH`], and evaluated
/// after every epoch without gathering and uploading its images again (0.3-0.5 s of the faithful
/// run's 8.7 s on a 2-vCPU AMD EPYC, 2026-11-30, BENCHMARKS.md).
pub struct EvalSet {
    batches: Vec<Batch>,
}

impl EvalSet {
    /// `split`'s images and targets for `loss_kind`, on `device`.
    pub fn upload(split: &Split, loss_kind: Loss, device: &Device) -> EvalSet {
        let indices: Vec<usize> = (0..split.len()).collect();
        let batches = indices
            .chunks(EVAL_BATCH)
            .map(|chunk| Batch::upload(HostBatch::gather(split, chunk), loss_kind, device))
            .collect();
        EvalSet { batches }
    }

    /// Whether the set has no images.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Mean loss and accuracy of `model` on the set, without autodiff; NaN for an empty set.
    pub fn evaluate(&self, model: &Mlp, loss_kind: Loss) -> anyhow::Result<(f64, f64)> {
        if self.is_empty() {
            return Ok((f64::NAN, f64::NAN));
        }
        let mut window = Window::default();
        for batch in &self.batches {
            let logits = model.forward(batch.images.clone());
            let loss = loss(model, logits.clone(), batch.targets.clone(), loss_kind);
            window.push(loss, logits, batch.labels.clone());
        }
        let sums = window.read()?;
        let n = sums.images as f64;
        Ok((sums.loss_sum / n, sums.correct as f64 / n))
    }
}

/// Mean loss and accuracy of `model` on `split`, in large batches, without autodiff.
pub fn evaluate(
    model: &Mlp,
    split: &Split,
    loss_kind: Loss,
    device: &Device,
) -> anyhow::Result<(f64, f64)> {
    EvalSet::upload(split, loss_kind, device).evaluate(model, loss_kind)
}

/// The optimizer the settings ask for: SGD or Adam as burn computes them, with their updates in
/// one pass ([`crate::net::optim`]).
fn optimizer(settings: &TrainSettings) -> ModuleOptimizer {
    let weight_decay =
        (settings.weight_decay > 0.0).then(|| WeightDecayConfig::new(settings.weight_decay as f32));
    match settings.optimizer {
        Optimizer::Sgd => crate::net::optim::Sgd::new(
            (settings.momentum > 0.0).then(|| {
                // Classic momentum, v = μv + g, as in PyTorch (burn's default dampening is 0.1).
                MomentumConfig::new()
                    .with_momentum(settings.momentum)
                    .with_dampening(0.0)
            }),
            weight_decay,
        )
        .init(),
        Optimizer::Adam => crate::net::optim::Adam::new(weight_decay).init(),
    }
}

/// The mean loss of a batch.
///
/// `Mse` is the video's quadratic cost ([`Mlp::quadratic_cost`]); `CrossEntropy` is burn's
/// softmax cross-entropy on the logits.
///
/// # Shapes
/// - logits: `[batch, 10]`
/// - returns: `[1]`
fn loss(model: &Mlp, logits: Tensor<2>, targets: Targets, kind: Loss) -> Tensor<1> {
    match (kind, targets) {
        (Loss::Mse, Targets::OneHot(one_hot)) => model.quadratic_cost(logits, one_hot),
        (Loss::CrossEntropy, Targets::Classes(classes)) => CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, classes),
        _ => unreachable!("Targets::of builds the targets the loss needs"),
    }
}

/// The training steps since the last read-back: their losses and predicted digits stay on the
/// device until [`Window::read`] fetches them all at once.
#[derive(Default)]
struct Window {
    /// Each step's mean loss, `[1]`.
    losses: Vec<Tensor<1>>,
    /// Each step's predicted digits, `[batch, 1]`.
    predictions: Vec<Tensor<2, Int>>,
    /// The true digits of each step's images, in order.
    labels: Vec<u8>,
    /// Each step's batch size (the last batch of an epoch may be smaller).
    sizes: Vec<usize>,
}

/// Sums over a [`Window`], read back to the host.
struct WindowSums {
    /// Σ batch loss × batch size.
    loss_sum: f64,
    /// Images whose predicted digit was their label.
    correct: usize,
    images: usize,
}

impl Window {
    /// Records one step: `loss` `[1]`, `logits` `[batch, 10]`, the images' true `labels`.
    fn push(&mut self, loss: Tensor<1>, logits: Tensor<2>, labels: Vec<u8>) {
        self.losses.push(loss);
        self.predictions.push(logits.argmax(1));
        self.sizes.push(labels.len());
        self.labels.extend(labels);
    }

    /// Reads the window back (one sync), compares the predictions with the labels on the host,
    /// and empties the window.
    fn read(&mut self) -> anyhow::Result<WindowSums> {
        let losses: Vec<f64> = read_back(Tensor::cat(take(&mut self.losses), 0).into_data())?;
        let predicted: Vec<i64> =
            read_back(Tensor::cat(take(&mut self.predictions), 0).into_data())?;
        let loss_sum = losses
            .iter()
            .zip(&self.sizes)
            .map(|(loss, &n)| loss * n as f64)
            .sum();
        let correct = predicted
            .iter()
            .zip(&self.labels)
            .filter(|&(&digit, &label)| digit == i64::from(label))
            .count();
        let images = self.labels.len();
        self.labels.clear();
        self.sizes.clear();
        Ok(WindowSums {
            loss_sum,
            correct,
            images,
        })
    }
}

/// A tensor's data, read back from the device (a sync point), as a flat vector of `E`.
fn read_back<E: burn::tensor::Element>(data: TensorData) -> anyhow::Result<Vec<E>> {
    data.convert::<E>()
        .try_into_vec::<E>()
        .map_err(|e| anyhow::anyhow!("reading values back from the device: {e:?}"))
}

/// What the loss compares the outputs with.
#[derive(Clone)]
enum Targets {
    /// `[batch, 10]`, 1.0 at the label (quadratic cost).
    OneHot(Tensor<2>),
    /// `[batch]` labels (cross-entropy).
    Classes(Tensor<1, Int>),
}

/// One mini-batch on the device.
struct Batch {
    /// `[batch, 784]`
    images: Tensor<2>,
    targets: Targets,
    /// The true digits, on the host (accuracy is counted there: see [`Window`]).
    labels: Vec<u8>,
}

impl Batch {
    /// Uploads a host batch's images and the targets of its labels.
    fn upload(host: HostBatch, loss: Loss, device: &Device) -> Batch {
        let n = host.len();
        let images = Tensor::<2>::from_data(TensorData::new(host.pixels, [n, INPUTS]), device);
        Batch {
            images,
            targets: Targets::of(&host.labels, loss, device),
            labels: host.labels,
        }
    }
}

impl Targets {
    /// What `loss` compares the outputs of images with these `labels` with.
    fn of(labels: &[u8], loss: Loss, device: &Device) -> Targets {
        let n = labels.len();
        match loss {
            Loss::Mse => {
                let mut one_hot = vec![0f32; n * OUTPUTS];
                for (row, &label) in labels.iter().enumerate() {
                    one_hot[row * OUTPUTS + usize::from(label)] = 1.0;
                }
                Targets::OneHot(Tensor::from_data(
                    TensorData::new(one_hot, [n, OUTPUTS]),
                    device,
                ))
            }
            Loss::CrossEntropy => Targets::Classes(Tensor::from_data(
                TensorData::new(labels.iter().map(|&l| i64::from(l)).collect(), [n]),
                device,
            )),
        }
    }
}

/// The mean training loss of a batch whose true digits are `labels`, exactly as the training
/// loop computes it (for tests that check its gradients).
///
/// # Shapes
/// - logits: `[batch, 10]` from [`Mlp::forward`]
/// - returns: `[1]`
pub fn batch_loss(model: &Mlp, logits: Tensor<2>, labels: &[u8], kind: Loss) -> Tensor<1> {
    let targets = Targets::of(labels, kind, &logits.device());
    loss(model, logits, targets, kind)
}
