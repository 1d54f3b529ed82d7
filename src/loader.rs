//! Mini-batches assembled on the host, on a thread of their own.
//!
//! At batch 10 a training step takes about 36 µs, and copying ten random images out of the
//! training set (scaling their bytes to [0, 1]) is a tenth of that. [`batches`] moves the work onto
//! a second thread that shuffles each epoch and sends batches ahead of the training loop, in
//! groups so that handing them over costs one wake-up per group, not per step. When the process
//! has one CPU thread to itself (a sweep worker with `--jobs` equal to the cores) the training
//! loop asks for the batches to be made on its own thread instead, where a second thread would
//! only compete for the core. Either way the order is the same: a seeded shuffle per epoch.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;

use crate::data::Split;
use crate::model::INPUTS;

/// About how many images travel in one group: enough that a hand-over is rare (once per ~200
/// steps at batch 10), few enough that the groups in flight hold little memory (6 MB each).
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

/// The batches of `plan` over `split`: `plan.steps` shuffled batches per epoch, for
/// `plan.epochs` epochs, made by a loader thread started in `scope` when `background`, on the
/// caller's thread when asked for otherwise. A loader thread stops early when the returned
/// [`Batches`] is dropped.
pub fn batches<'scope>(
    scope: &'scope Scope<'scope, '_>,
    split: &'scope Split,
    plan: Plan,
    background: bool,
) -> Batches<'scope> {
    let source = Source::new(split, plan);
    if !background {
        return Batches(Kind::Inline(source));
    }
    let (sender, receiver) = sync_channel(GROUPS_AHEAD);
    scope.spawn(move || load(source, &sender));
    Batches(Kind::Threaded {
        receiver,
        group: Vec::new().into_iter(),
    })
}

/// The batches in training order: a seeded shuffle per epoch, then consecutive chunks of it.
struct Source<'a> {
    split: &'a Split,
    plan: Plan,
    rng: Xoshiro256PlusPlus,
    order: Vec<usize>,
    /// Batches made so far.
    made: usize,
}

impl<'a> Source<'a> {
    fn new(split: &'a Split, plan: Plan) -> Self {
        Source {
            split,
            rng: Xoshiro256PlusPlus::seed_from_u64(plan.seed),
            order: (0..split.len()).collect(),
            plan,
            made: 0,
        }
    }
}

impl Iterator for Source<'_> {
    type Item = HostBatch;

    fn next(&mut self) -> Option<HostBatch> {
        if self.made == self.plan.epochs * self.plan.steps {
            return None;
        }
        let step = self.made % self.plan.steps;
        if step == 0 {
            self.order.shuffle(&mut self.rng);
        }
        self.made += 1;
        let start = step * self.plan.batch_size;
        let end = (start + self.plan.batch_size).min(self.order.len());
        Some(HostBatch::gather(self.split, &self.order[start..end]))
    }
}

/// The loader thread: make batches, send them in groups; returns when done or when nobody
/// listens.
fn load(source: Source, sender: &SyncSender<Vec<HostBatch>>) {
    let group_steps = (GROUP_IMAGES / source.plan.batch_size).max(1);
    let mut group = Vec::with_capacity(group_steps);
    for batch in source {
        group.push(batch);
        if group.len() == group_steps {
            let full = std::mem::replace(&mut group, Vec::with_capacity(group_steps));
            if sender.send(full).is_err() {
                return;
            }
        }
    }
    if !group.is_empty() {
        let _ = sender.send(group);
    }
}

/// The training loop's end of the loader.
pub struct Batches<'a>(Kind<'a>);

enum Kind<'a> {
    /// Made by a loader thread, received in groups.
    Threaded {
        receiver: Receiver<Vec<HostBatch>>,
        group: std::vec::IntoIter<HostBatch>,
    },
    /// Made on the training thread when asked for.
    Inline(Source<'a>),
}

impl Batches<'_> {
    /// The next mini-batch, waiting for the loader if it is behind.
    pub fn next_batch(&mut self) -> anyhow::Result<HostBatch> {
        let stopped = || anyhow::anyhow!("the batch loader stopped before training ended");
        match &mut self.0 {
            Kind::Inline(source) => source.next().ok_or_else(stopped),
            Kind::Threaded { receiver, group } => loop {
                if let Some(batch) = group.next() {
                    return Ok(batch);
                }
                *group = receiver.recv().map_err(|_| stopped())?.into_iter();
            },
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
        // 99 batches of 10 a step: the last 10 images of each epoch's order are left out.
        let plan = || Plan {
            epochs: 3,
            steps: 99,
            batch_size: 10,
            seed: 7,
        };
        for background in [true, false] {
            let batches: Vec<HostBatch> = std::thread::scope(|scope| {
                let mut batches = batches(scope, &split, plan(), background);
                let all = (0..297).map(|_| batches.next_batch().unwrap()).collect();
                assert!(batches.next_batch().is_err(), "more batches than planned");
                all
            });
            // The same order as shuffling on this thread.
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
            let mut order: Vec<usize> = (0..1000).collect();
            for epoch in 0..3 {
                order.shuffle(&mut rng);
                let epoch_batches = &batches[epoch * 99..(epoch + 1) * 99];
                let labels: Vec<u8> = epoch_batches
                    .iter()
                    .flat_map(|b| b.labels.clone())
                    .collect();
                let expected: Vec<u8> = order[..990].iter().map(|&i| split.labels[i]).collect();
                assert_eq!(labels, expected, "epoch {epoch}, background {background}");
                let first = order[0];
                assert_eq!(
                    epoch_batches[0].pixels[..INPUTS],
                    split.scaled(first..first + 1)
                );
            }
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
            let mut batches = batches(scope, &split, plan, true);
            assert_eq!(batches.next_batch().unwrap().len(), 10);
        });
    }
}
