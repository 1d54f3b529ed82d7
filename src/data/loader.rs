//! Mini-batches assembled on the host, on a thread of their own.
//!
//! At batch 10 a training step takes about 36 µs, and copying ten random images out of the
//! training set (scaling their bytes to [0, 1]) is a tenth of that. [`batches`] moves the work onto
//! a second thread that shuffles each epoch and sends batches ahead of the training loop, in
//! groups so that handing them over costs one wake-up per group, not per step. When the process
//! has one CPU thread to itself (a sweep worker with `--jobs` equal to the cores) the training
//! loop asks for the batches to be made on its own thread instead, where a second thread would
//! only compete for the core. Either way the order is the same: a seeded shuffle per epoch.
//!
//! Augmentation ([`Augment`]) moves and turns each training image at random as it is copied
//! out: a shift of up to k pixels in x and y and a rotation of up to r degrees about the centre
//! (bilinear), the kind of small distortion Simard et al. (2003) trained with. Its draws come
//! from a generator of their own, so the shuffle is the same with and without it.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;

use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use crate::data::mnist::Split;
use crate::net::model::INPUTS;

/// About how many images travel in one group: enough that a hand-over is rare (once per ~200
/// steps at batch 10), few enough that the groups in flight hold little memory (6 MB each).
const GROUP_IMAGES: usize = 2048;

/// How many images ahead of the one being copied [`prefetch`] asks for.
const PREFETCH_AHEAD: usize = 4;

/// Asks the CPU to bring `bytes` into its caches: the images of a batch are read at random
/// from the split's 47 MB, and waiting for them was most of the copy's time.
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch is a hint; it reads nothing the program sees and cannot fault,
        // and SSE, which defines it, is part of every x86-64 CPU.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Groups the loader may run ahead of the training loop.
const GROUPS_AHEAD: usize = 2;

/// Random changes made to each training image as it is copied out.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Augment {
    /// Largest shift in x and in y, in pixels (0: none).
    pub shift: usize,
    /// Largest rotation either way, in degrees (0: none).
    pub rotate: f64,
}

impl Augment {
    /// Whether images are changed at all.
    pub fn is_off(&self) -> bool {
        self.shift == 0 && self.rotate == 0.0
    }
}

/// Angles are drawn in steps of this many degrees, so that each angle's bilinear weights are
/// computed once per run, not once per image.
const ANGLE_STEP: f64 = 0.5;

/// Side of an image, in pixels.
const SIDE: i64 = 28;

/// Applies an [`Augment`]: the rotations' bilinear taps computed once, then each image copied
/// through them.
pub struct Augmenter {
    shift: i64,
    /// For each drawable angle, for each output pixel: four source pixels and their weights
    /// (an out-of-frame source has weight 0).
    rotations: Vec<Vec<[(u16, f32); 4]>>,
}

impl Augmenter {
    pub fn new(augment: Augment) -> Augmenter {
        let steps = (augment.rotate / ANGLE_STEP).floor() as i64;
        let rotations = if steps == 0 {
            Vec::new()
        } else {
            (-steps..=steps)
                .map(|step| taps((step as f64 * ANGLE_STEP).to_radians()))
                .collect()
        };
        Augmenter {
            shift: augment.shift as i64,
            rotations,
        }
    }

    /// One image's random change: a shift and the index of a rotation. Every image draws the
    /// same numbers from `rng` whatever it shows, so a resumed run skips epochs by drawing
    /// ([`Source::new`]).
    fn draw(&self, rng: &mut Xoshiro256PlusPlus) -> (i64, i64, usize) {
        let k = self.shift;
        let dx = if k > 0 { rng.random_range(-k..=k) } else { 0 };
        let dy = if k > 0 { rng.random_range(-k..=k) } else { 0 };
        let rotation = if self.rotations.is_empty() {
            0
        } else {
            rng.random_range(0..self.rotations.len())
        };
        (dx, dy, rotation)
    }

    /// Appends image `index` of `split`, moved and turned by a random draw, scaled to [0, 1].
    fn extend(
        &self,
        split: &Split,
        index: usize,
        rng: &mut Xoshiro256PlusPlus,
        out: &mut Vec<f32>,
    ) {
        let pixels = split.pixels(index);
        let (dx, dy, rotation) = self.draw(rng);
        if self.rotations.is_empty() {
            // A whole-pixel shift, row by row: what comes in from outside is black.
            let width = (SIDE - dx.abs()) as usize;
            for y in 0..SIDE {
                let sy = y - dy;
                if !(0..SIDE).contains(&sy) {
                    out.extend(std::iter::repeat_n(0.0, SIDE as usize));
                    continue;
                }
                let row = &pixels[(sy * SIDE) as usize..((sy + 1) * SIDE) as usize];
                let (left, source) = if dx >= 0 {
                    (dx as usize, &row[..width])
                } else {
                    (0, &row[(-dx) as usize..])
                };
                out.extend(std::iter::repeat_n(0.0, left));
                out.extend(
                    source
                        .iter()
                        .map(|&byte| crate::data::mnist::intensity(byte)),
                );
                out.extend(std::iter::repeat_n(0.0, SIDE as usize - left - width));
            }
            return;
        }
        let rotation = &self.rotations[rotation];
        // The pixels as numbers once, so that each of the four taps is a load and a multiply
        // (the taps' weights already hold the 1/255).
        let mut source = [0f32; (SIDE * SIDE) as usize];
        for (value, &byte) in source.iter_mut().zip(pixels) {
            *value = f32::from(byte);
        }
        let start = out.len();
        out.resize(start + (SIDE * SIDE) as usize, 0.0);
        let image = &mut out[start..];
        // Output pixels whose unshifted position is outside the frame stay black.
        let (x_from, x_to) = (dx.max(0), (SIDE + dx).min(SIDE));
        for y in (dy.max(0))..((SIDE + dy).min(SIDE)) {
            let row = ((y - dy) * SIDE) as usize;
            for x in x_from..x_to {
                let taps = &rotation[row + (x - dx) as usize];
                let value: f32 = taps
                    .iter()
                    .map(|&(at, weight)| weight * source[usize::from(at)])
                    .sum();
                // f32 weights may sum to a hair over 1.
                image[(y * SIDE + x) as usize] = value.min(1.0);
            }
        }
    }
}

/// The bilinear taps of a rotation by `angle` about the image's centre: for each output pixel,
/// where it comes from in the input.
fn taps(angle: f64) -> Vec<[(u16, f32); 4]> {
    const CENTRE: f64 = 13.5;
    let (sin, cos) = angle.sin_cos();
    let mut taps = Vec::with_capacity((SIDE * SIDE) as usize);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (ux, uy) = (x as f64 - CENTRE, y as f64 - CENTRE);
            let sx = cos * ux + sin * uy + CENTRE;
            let sy = -sin * ux + cos * uy + CENTRE;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            // Weights scaled by 1/255: the taps turn grey levels straight into intensities.
            let tap = |x: i64, y: i64, weight: f64| {
                if (0..SIDE).contains(&x) && (0..SIDE).contains(&y) {
                    ((y * SIDE + x) as u16, (weight / 255.0) as f32)
                } else {
                    (0, 0.0)
                }
            };
            taps.push([
                tap(x0, y0, (1.0 - fx) * (1.0 - fy)),
                tap(x0 + 1, y0, fx * (1.0 - fy)),
                tap(x0, y0 + 1, (1.0 - fx) * fy),
                tap(x0 + 1, y0 + 1, fx * fy),
            ]);
        }
    }
    taps
}

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
        for (k, &i) in indices.iter().enumerate() {
            if let Some(&ahead) = indices.get(k + PREFETCH_AHEAD) {
                prefetch(split.pixels(ahead));
            }
            split.extend_scaled(i, &mut pixels);
        }
        HostBatch {
            pixels,
            labels: indices.iter().map(|&i| split.labels[i]).collect(),
        }
    }

    /// Copies the images at `indices` out of `split`, each changed by a draw of `augmenter`
    /// (unchanged without one).
    pub fn gather_augmented(
        split: &Split,
        indices: &[usize],
        augmenter: Option<&Augmenter>,
        rng: &mut Xoshiro256PlusPlus,
    ) -> HostBatch {
        let Some(augmenter) = augmenter else {
            return HostBatch::gather(split, indices);
        };
        let mut pixels = Vec::with_capacity(indices.len() * INPUTS);
        for &i in indices {
            augmenter.extend(split, i, rng, &mut pixels);
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
    /// Epochs already trained (a resumed run): their shuffles and draws are made and dropped,
    /// so that the batches that follow are those an uninterrupted run would see.
    pub done: usize,
    /// The epoch to stop after (1-based, counting the ones done).
    pub epochs: usize,
    /// Mini-batches per epoch (the ragged last one is left out when `steps * batch_size` is less
    /// than the split).
    pub steps: usize,
    pub batch_size: usize,
    /// Seeds the per-epoch shuffle and the augmentation.
    pub seed: u64,
    pub augment: Augment,
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
    /// The augmentation, and its draws apart from the shuffle's.
    augmenter: Option<Augmenter>,
    augment_rng: Xoshiro256PlusPlus,
    order: Vec<usize>,
    /// Batches made so far.
    made: usize,
}

impl<'a> Source<'a> {
    fn new(split: &'a Split, plan: Plan) -> Self {
        let mut source = Source {
            split,
            rng: Xoshiro256PlusPlus::seed_from_u64(plan.seed),
            augmenter: (!plan.augment.is_off()).then(|| Augmenter::new(plan.augment)),
            augment_rng: Xoshiro256PlusPlus::seed_from_u64(plan.seed ^ 0x5eed_a06e_17a7_1011),
            order: (0..split.len()).collect(),
            made: plan.done * plan.steps,
            plan,
        };
        // The epochs done: each one's shuffle, and one draw per image it used.
        let images = (source.plan.steps * source.plan.batch_size).min(split.len());
        for _ in 0..source.plan.done {
            source.order.shuffle(&mut source.rng);
            if let Some(augmenter) = &source.augmenter {
                for _ in 0..images {
                    augmenter.draw(&mut source.augment_rng);
                }
            }
        }
        source
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
        Some(HostBatch::gather_augmented(
            self.split,
            &self.order[start..end],
            self.augmenter.as_ref(),
            &mut self.augment_rng,
        ))
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
    use crate::data::mnist::{DatasetName, load};

    #[test]
    fn batches_are_the_seeded_shuffle_of_every_image_once_per_epoch() {
        let limits = crate::data::mnist::Limits {
            train: Some(1000),
            validation: 0,
            test: Some(1),
        };
        let split = load(DatasetName::Mnist, None, limits).unwrap().train;
        // 99 batches of 10 a step: the last 10 images of each epoch's order are left out.
        let plan = || Plan {
            done: 0,
            epochs: 3,
            steps: 99,
            batch_size: 10,
            seed: 7,
            augment: Augment::default(),
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
    fn a_loader_started_after_epochs_gives_the_batches_that_follow_them() {
        let limits = crate::data::mnist::Limits {
            train: Some(300),
            validation: 0,
            test: Some(1),
        };
        let split = load(DatasetName::Mnist, None, limits).unwrap().train;
        for augment in [
            Augment::default(),
            Augment {
                shift: 2,
                rotate: 10.0,
            },
        ] {
            // 300 images in batches of 32: 9 full steps, the last 12 images left out (wgpu's
            // constant shapes), so that the draws skipped are the images used, not the split.
            let plan = |done| Plan {
                done,
                epochs: 4,
                steps: 9,
                batch_size: 32,
                seed: 11,
                augment,
            };
            let all: Vec<HostBatch> = std::thread::scope(|scope| {
                let mut batches = batches(scope, &split, plan(0), false);
                (0..36).map(|_| batches.next_batch().unwrap()).collect()
            });
            for done in 1..4 {
                let rest: Vec<HostBatch> = std::thread::scope(|scope| {
                    let mut batches = batches(scope, &split, plan(done), true);
                    let rest = (0..(4 - done) * 9)
                        .map(|_| batches.next_batch().unwrap())
                        .collect();
                    assert!(batches.next_batch().is_err(), "more batches than planned");
                    rest
                });
                for (a, b) in all[done * 9..].iter().zip(&rest) {
                    assert_eq!(a.labels, b.labels, "{augment:?}, after {done} epochs");
                    assert_eq!(a.pixels, b.pixels, "{augment:?}, after {done} epochs");
                }
            }
        }
    }

    #[test]
    fn dropping_the_receiver_stops_the_loader() {
        let limits = crate::data::mnist::Limits {
            train: Some(100),
            validation: 0,
            test: Some(1),
        };
        let split = load(DatasetName::Mnist, None, limits).unwrap().train;
        let plan = Plan {
            done: 0,
            epochs: 1_000_000,
            steps: 10,
            batch_size: 10,
            seed: 1,
            augment: Augment::default(),
        };
        // The scope joins the loader thread: this test hangs if the loader does not stop.
        std::thread::scope(|scope| {
            let mut batches = batches(scope, &split, plan, true);
            assert_eq!(batches.next_batch().unwrap().len(), 10);
        });
    }

    #[test]
    fn augmentation_moves_ink_but_keeps_labels_and_the_shuffle() {
        let split = load(
            DatasetName::Mnist,
            None,
            crate::data::mnist::Limits {
                train: Some(200),
                ..Default::default()
            },
        )
        .unwrap()
        .train;
        let indices: Vec<usize> = (0..200).collect();
        let plain = HostBatch::gather(&split, &indices);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for augment in [
            Augment {
                shift: 2,
                rotate: 0.0,
            },
            Augment {
                shift: 0,
                rotate: 15.0,
            },
            Augment {
                shift: 2,
                rotate: 15.0,
            },
        ] {
            let augmenter = Augmenter::new(augment);
            let moved = HostBatch::gather_augmented(&split, &indices, Some(&augmenter), &mut rng);
            assert_eq!(moved.labels, plain.labels);
            assert_eq!(moved.pixels.len(), plain.pixels.len());
            assert!(moved.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
            let changed = moved
                .pixels
                .chunks(INPUTS)
                .zip(plain.pixels.chunks(INPUTS))
                .filter(|(a, b)| a != b)
                .count();
            assert!(
                changed > 100,
                "{augment:?} changed only {changed} of 200 images"
            );
            // Ink is moved, not made or lost (to within the interpolation and the border).
            let ink = |p: &[f32]| p.iter().sum::<f32>();
            let (a, b) = (ink(&moved.pixels), ink(&plain.pixels));
            assert!((a - b).abs() / b < 0.05, "{augment:?}: ink {a} against {b}");
        }
        // Seeded: the same draws give the same images.
        let augment = Augment {
            shift: 3,
            rotate: 10.0,
        };
        let augmenter = Augmenter::new(augment);
        let first = HostBatch::gather_augmented(
            &split,
            &indices,
            Some(&augmenter),
            &mut Xoshiro256PlusPlus::seed_from_u64(9),
        );
        let again = HostBatch::gather_augmented(
            &split,
            &indices,
            Some(&augmenter),
            &mut Xoshiro256PlusPlus::seed_from_u64(9),
        );
        assert_eq!(first.pixels, again.pixels);
    }

    #[test]
    fn a_shift_moves_every_pixel_by_the_same_whole_offset() {
        let limits = crate::data::mnist::Limits {
            train: Some(50),
            ..Default::default()
        };
        let split = load(DatasetName::Mnist, None, limits).unwrap().train;
        let augmenter = Augmenter::new(Augment {
            shift: 2,
            rotate: 0.0,
        });
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let shifted = |index: usize, dx: i64, dy: i64| -> Vec<f32> {
            let pixels = split.pixels(index);
            (0..28i64)
                .flat_map(|y| (0..28i64).map(move |x| (x - dx, y - dy)))
                .map(|(x, y)| {
                    if (0..28).contains(&x) && (0..28).contains(&y) {
                        crate::data::mnist::intensity(pixels[(y * 28 + x) as usize])
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let mut offsets = std::collections::BTreeSet::new();
        for index in 0..50 {
            let mut out = Vec::new();
            augmenter.extend(&split, index, &mut rng, &mut out);
            let offset = (-2..=2)
                .flat_map(|dx| (-2..=2).map(move |dy| (dx, dy)))
                .find(|&(dx, dy)| shifted(index, dx, dy) == out);
            offsets.insert(offset.expect("the image is its original shifted"));
        }
        assert!(offsets.len() > 10, "offsets drawn: {offsets:?}");
    }
}
