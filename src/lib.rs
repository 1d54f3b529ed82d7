//! harness: train and compare small multilayer perceptrons on MNIST with burn.
//!
//! Data flows one way, and the modules are listed in that order: a TOML file becomes validated
//! [`config::Settings`], which pick a burn `Device` ([`backend`]), load the images ([`data`],
//! batched by [`loader`]), build the network ([`model`], with [`fused`] operations), train and
//! evaluate it ([`train`]) and record one row per run ([`results`], committed through
//! [`journal`]). [`run`] ties those steps together for `harness run`; [`experiment`] and
//! [`sweep`] run many; [`merge`], [`report`] and [`plot`] read the record; [`saved`] loads a
//! trained network for [`inspect`] and [`predict`]; [`bench`] measures speed.

pub mod error;
pub mod choice;
pub mod text;
pub mod input;
pub mod backend;
pub mod config;
pub mod data;
pub mod loader;
pub mod model;
pub mod fused;
pub mod optim;
pub mod train;
pub mod journal;
pub mod results;
pub mod run;
pub mod check;
pub mod experiment;
pub mod sweep;
pub mod merge;
pub mod upgrade;
pub mod report;
pub mod plot;
pub mod saved;
pub mod inspect;
pub mod predict;
pub mod html;
pub mod bench;
pub mod cli;
