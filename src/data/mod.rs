//! The data stage: MNIST-format IDX files read with checksums and bounds, split into training,
//! validation and test sets ([`mnist`]), and batched on a thread of their own, with the
//! augmentations, while the network trains ([`loader`]).

pub mod mnist;
pub mod loader;
