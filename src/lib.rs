//! harness: train and compare small multilayer perceptrons on MNIST with burn.
//!
//! Data flows one way: a TOML file becomes validated [`config::Settings`], which pick a burn
//! `Device` ([`backend`]), load the images ([`data`]), build the network ([`model`]), train and
//! evaluate it ([`train`]) and append one row per run to a CSV file ([`results`]).
//! [`run`] ties those steps together for the `harness run` command.

pub mod backend;
pub mod bench;
pub mod choice;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod experiment;
pub mod fused;
pub mod html;
pub mod inspect;
pub mod loader;
pub mod merge;
pub mod model;
pub mod plot;
pub mod predict;
pub mod report;
pub mod results;
pub mod run;
pub mod sweep;
pub mod train;
