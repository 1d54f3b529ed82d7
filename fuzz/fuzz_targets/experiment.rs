//! The experiment parser: `Experiment::parse`, with a `--set` override.
//!
//! Input: the first line is a `--set` assignment (an empty line for none), the rest an
//! experiment file. The file is named `<tmp>/experiments/fuzz.toml`, and `<tmp>/configs/` holds
//! copies of the repository's configs, so that the shipped experiments' `base =
//! "../configs/....toml"` resolves. A base naming any other file is read as harness reads it
//! (it refuses devices, pipes and folders, and does not wait on a kernel file such as
//! /proc/kmsg); nothing is written.
//!
//! Invariants checked on success: at least one point, numbered 0, 1, ... in order; each point's
//! run id is its settings' run id; no two points share a run id (also under `[halving]`); no
//! more points than the grid and random search expanded to (plus extra points); every rung has
//! at least one epoch. Two regressions the fuzzer found are kept as seeds:
//! `regression-halving-duplicate-run-id` and `regression-base-proc-kmsg-blocks`.

#![no_main]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use harness::config::Override;
use harness::search::experiment::Experiment;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

/// The repository's configs, which the shipped experiments name as their base.
const CONFIGS: &[(&str, &str)] = &[
    (
        "best_16x16.toml",
        include_str!("../../configs/best_16x16.toml"),
    ),
    ("default.toml", include_str!("../../configs/default.toml")),
    ("logistic.toml", include_str!("../../configs/logistic.toml")),
    (
        "nielsen_30.toml",
        include_str!("../../configs/nielsen_30.toml"),
    ),
    (
        "relu_16x16.toml",
        include_str!("../../configs/relu_16x16.toml"),
    ),
    (
        "sigmoid_16x16.toml",
        include_str!("../../configs/sigmoid_16x16.toml"),
    ),
    ("wide_800.toml", include_str!("../../configs/wide_800.toml")),
];

/// `<tmp>/experiments/fuzz.toml`, after writing `<tmp>/configs/` once per process.
fn experiment_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("harness-fuzz-{}", std::process::id()));
        let configs = root.join("configs");
        std::fs::create_dir_all(&configs).expect("create the temporary configs folder");
        std::fs::create_dir_all(root.join("experiments")).expect("create the experiments folder");
        for (name, text) in CONFIGS {
            std::fs::write(configs.join(name), text).expect("write a base config");
        }
        root.join("experiments").join("fuzz.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (assignment, source) = common::split_first_line(&text);
    let path = experiment_path();

    let overrides: Vec<Override> = if assignment.is_empty() {
        Vec::new()
    } else {
        Override::parse(assignment).into_iter().collect()
    };

    let experiment = Experiment::parse(source, path, &overrides);
    common::report("experiment", &experiment, |e| {
        format!(
            "{} points of {} expanded, {} rungs",
            e.points().len(),
            e.expanded,
            e.rungs()
        )
    });
    let Ok(experiment) = experiment else { return };

    let points = experiment.points();
    assert!(!points.is_empty(), "an experiment without points");
    assert!(
        points.len() <= experiment.expanded,
        "{} points from {} expanded",
        points.len(),
        experiment.expanded
    );
    assert_eq!(experiment.path, path);
    let mut ids = HashSet::new();
    for (i, point) in points.iter().enumerate() {
        assert_eq!(point.index, i, "point {i} numbered {}", point.index);
        assert_eq!(
            point.run_id,
            point.settings.run_id(point.settings.backend),
            "point {i}'s run id is not its settings'"
        );
        assert!(
            ids.insert(point.run_id.as_str()),
            "points share the run id {} (point {i}, {})",
            point.run_id,
            point.settings.name
        );
    }
    if let Some(halving) = &experiment.halving {
        for rung in 0..experiment.rungs() {
            assert!(halving.epochs(rung) >= 1, "rung {rung} trains no epoch");
        }
    }
});
