//! Command-line interface: clap types, help text from doc comments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::BackendName;
use crate::choice::Choice;

/// Train and compare small neural networks on MNIST with burn.
///
/// Starts from 3Blue1Brown's "But what is a neural network?": a 784-16-16-10 network of
/// sigmoid neurons. Each run reads a TOML config (configs/default.toml documents every key),
/// trains on MNIST on a CPU backend or on a GPU through wgpu, and appends one row to
/// results/runs.csv.
///
/// Exit codes: 0 ok, 1 a run failed or diverged, 2 a usage or config error.
#[derive(Debug, Parser)]
#[command(name = "harness", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train the network a config file describes and append its results.
    ///
    /// Writes one row to output.runs (results/runs.csv), one row per epoch to output.epochs
    /// (results/epochs.csv) and the trained model to output.models/<run_id>.bpk.
    Run {
        /// The config file (TOML), e.g. configs/sigmoid_16x16.toml.
        config: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
        /// Print only errors and the final summary line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Validate config files: print the resolved settings and parameter count; train nothing.
    Check {
        /// One or more config files.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
}

/// Changes to a config given on the command line.
#[derive(Debug, Args)]
pub struct Overrides {
    /// The backend to train on: cpu, flex, ndarray or wgpu (overrides the config's `backend`).
    #[arg(long, value_parser = parse_backend)]
    pub backend: Option<BackendName>,
    /// Override a config key: --set train.learning_rate=0.5, --set model.hidden=[32,32].
    ///
    /// Keys are dotted paths into the config; values are TOML (a bare word is a string).
    /// Repeat for several keys.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl Overrides {
    /// The `--set` list, with `--backend` as one more override.
    pub fn assignments(&self) -> Vec<String> {
        let mut assignments = self.set.clone();
        if let Some(backend) = self.backend {
            assignments.push(format!("backend={}", backend.name()));
        }
        assignments
    }
}

fn parse_backend(value: &str) -> Result<BackendName, String> {
    BackendName::parse(value)
}
