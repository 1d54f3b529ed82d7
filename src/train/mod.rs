//! The training stage: the one training loop ([`train`]), `harness run` around it ([`run`]:
//! outputs checked, network trained, rows committed), the training state that outlives a
//! process ([`checkpoint`]), `harness check` ([`check`]) and `harness bench` ([`bench`]).

#[allow(
    clippy::module_inception,
    reason = "the stage is named after what it does, and so is its loop (STYLE.md, Layout)"
)]
pub mod train;
pub mod run;
pub mod checkpoint;
pub mod check;
pub mod bench;
