//! Mini-batches assembled on the host, on a thread of their own.
//!
//! At batch 10 a training step takes about 50 µs, and copying ten random images out of the
//! training set (scaling their bytes to [0, 1]) and building their targets is a tenth of that.
//! [`spawn`] moves the work onto a second thread that shuffles each epoch and sends batches ahead
//! of the training loop, in groups so that handing them over costs one wake-up per group, not
//! per step. The order is the one a single thread would produce: a seeded shuffle per epoch.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;

use crate::data::Split;
use crate::model::INPUTS;

/// About how many images travel in one group: large enough that a hand-over is rare, small
/// enough (6 MB of pixels) that the two groups in flight stay in the caches' neighbourhood.
const GROUP_IMAGES: usize = 2048;

/// Groups the loader may run ahead of the training loop.
const GROUPS_AHEAD: usize = 2;

/// Images and labels of one mini-batch, on the host.
pub struct HostBatch {
    /// `[n, 784]`, row-major, in [0, 1].
    pub pixels: Vec<f32>,
    /// `[n]`, 0-9.
    pub labels: Vec<u8>,
}

impl HostBatch {
    /// Copies the images at `indices` out of `split`.
    pub fn gather(split: &Split, indices: &[usize]) -> HostBatch {
        let mut pixels = Vec::with_capacity(indices.len() * INPUTS);
        for &i in indices {
            split.extend_scaled(i, &mut pixels);
        }
        HostBatch {
            pixels,
            labels: indices.iter().map(|&i| split.labels[i]).collect(),
        }
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// What the training loop asks the loader for.
pub struct Plan {
    pub epochs: usize,
    /// Mini-batches per epoch (the ragged last one is left out when `steps * batch_size` is less
    /// than the split).
    pub steps: usize,
    pub batch_size: usize,
    /// Seeds the per-epoch shuffle.
    pub seed: u64,
}

/// Starts a loader thread in `scope` that sends `plan.steps` shuffled batches of `split` per
/// epoch, for `plan.epochs` epochs. It stops early when the returned [`Batches`] is dropped.
pub fn spawn<'scope>(
    scope: &'scope Scope<'scope, '_>,
    split: &'scope Split,
    plan: Plan,
) -> Batches {
    let (sender, receiver) = sync_channel(GROUPS_AHEAD);
    scope.spawn(move || load(split, &plan, &sender));
    Batches {
        receiver,
        group: Vec::new().into_iter(),
    }
}

/// The loader thread: shuffle, gather, send; returns when done or when nobody listens.
fn load(split: &Split, plan: &Plan, sender: &SyncSender<Vec<HostBatch>>) {
    let group_steps = (GROUP_IMAGES / plan.batch_size).max(1);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(plan.seed);
    let mut order: Vec<usize> = (0..split.len()).collect();
    let mut group = Vec::with_capacity(group_steps);
    for _ in 0..plan.epochs {
        order.shuffle(&mut rng);
        for indices in order.chunks(plan.batch_size).take(plan.steps) {
            group.push(HostBatch::gather(split, indices));
            if group.len() == group_steps {
                let full = std::mem::replace(&mut group, Vec::with_capacity(group_steps));
                if sender.send(full).is_err() {
                    return;
                }
            }
        }
    }
    if !group.is_empty() {
        let _ = sender.send(group);
    }
}

/// The training loop's end of the loader.
pub struct Batches {
    receiver: Receiver<Vec<HostBatch>>,
    group: std::vec::IntoIter<HostBatch>,
}

impl Batches {
    /// The next mini-batch, waiting for the loader if it is behind.
    pub fn next_batch(&mut self) -> anyhow::Result<HostBatch> {
        loop {
            if let Some(batch) = self.group.next() {
                return Ok(batch);
            }
            self.group = self
                .receiver
                .recv()
                .map_err(|_| anyhow::anyhow!("the batch loader stopped before training ended"))?
                .into_iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetName, load};

    #[test]
    fn batches_are_the_seeded_shuffle_of_every_image_once_per_epoch() {
        let split = load(DatasetName::Mnist, None, Some(1000), Some(1))
            .unwrap()
            .train;
        let plan = Plan {
            epochs: 3,
            steps: 100,
            batch_size: 10,
            seed: 7,
        };
        let labels: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let mut batches = spawn(scope, &split, plan);
            (0..300)
                .map(|_| batches.next_batch().unwrap().labels)
                .collect()
        });
        // The same order as shuffling on this thread.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut order: Vec<usize> = (0..1000).collect();
        for epoch in 0..3 {
            order.shuffle(&mut rng);
            let expected: Vec<u8> = order.iter().map(|&i| split.labels[i]).collect();
            let got: Vec<u8> = labels[epoch * 100..(epoch + 1) * 100].concat();
            assert_eq!(got, expected, "epoch {epoch}");
        }
    }

    #[test]
    fn dropping_the_receiver_stops_the_loader() {
        let split = load(DatasetName::Mnist, None, Some(100), Some(1))
            .unwrap()
            .train;
        let plan = Plan {
            epochs: 1_000_000,
            steps: 10,
            batch_size: 10,
            seed: 1,
        };
        // The scope joins the loader thread: this test hangs if the loader does not stop.
        std::thread::scope(|scope| {
            let mut batches = spawn(scope, &split, plan);
            assert_eq!(batches.next_batch().unwrap().len(), 10);
        });
    }
}
