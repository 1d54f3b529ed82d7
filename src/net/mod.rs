//! The network stage: the one function that turns a backend name into a burn `Device`
//! ([`backend`]), the multilayer perceptron built from a list of widths ([`model`]), the fused
//! operations that make it fast on the CPU ([`fused`]) and the optimizers' update passes
//! ([`optim`]).

pub mod backend;
pub mod model;
pub mod fused;
pub mod optim;
