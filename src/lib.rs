//! harness: train and compare small multilayer perceptrons on MNIST with burn.
//!
//! Data flows one way, and the stages are listed in that order: a TOML file becomes validated
//! [`config::Settings`]; [`data`] loads the images and batches them; [`net`] picks the burn
//! `Device` ([`net::backend`], the only place a backend name becomes one) and builds the
//! network; [`record`] commits one row per run and reads, merges and upgrades the record;
//! [`train`] trains and evaluates a network and records it (`harness run`); [`search`] expands
//! experiments and runs sweeps; [`views`] turn the record into tables, charts, pages and
//! pictures. A module imports only from stages above it in this list, and from the small
//! helpers every stage may use ([`error`], [`choice`], [`text`], [`input`]).

pub mod error;
pub mod choice;
pub mod text;
pub mod input;
pub mod config;
pub mod data;
pub mod net;
pub mod record;
pub mod train;
pub mod search;
pub mod views;
pub mod cli;
