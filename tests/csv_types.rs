//! Every column of the results files keeps one type whatever runs a file holds: pandas and
//! polars, with their default options, infer the same dtypes for a file of odd runs (no hidden
//! layer, one activation per layer, a failed and a diverged run, names made of digits by a
//! sweep) as for a file of one plain run, and the two files concatenate.
//!
//! Needs python3 with pandas and polars; skipped with the reason without them, unless
//! `HARNESS_REQUIRE_PYTHON_READERS=1` (as in CI, whose .ci/run installs them).

mod common;

use std::process::Command;

use common::{Workdir, repo};

const READERS: &str = r#"
import sys, pandas as pd, polars as pl
files = sys.argv[1:]
for kind in ("runs", "epochs"):
    paths = [f for f in files if kind in f]
    pandas = [dict(pd.read_csv(p).dtypes.astype(str)) for p in paths]
    polars = [{k: str(v) for k, v in pl.read_csv(p).schema.items()} for p in paths]
    for frames, name in ((pandas, "pandas"), (polars, "polars")):
        for other, path in zip(frames[1:], paths[1:]):
            diff = {k: (frames[0][k], other.get(k)) for k in frames[0] if frames[0][k] != other.get(k)}
            if diff:
                sys.exit(f"{name}: {kind} column types differ between {paths[0]} and {path}: {diff}")
    pl.concat([pl.read_csv(p) for p in paths])
    both = pd.concat([pd.read_csv(p) for p in paths])
    mixed = [c for c in both.columns if both[c].dtype == object and
             len({type(v) for v in both[c].dropna()}) > 1]
    if mixed:
        sys.exit(f"pandas: {kind} columns of mixed types after concat: {mixed}")
    print(kind, "ok:", pandas[0])
"#;

fn python_has_readers() -> bool {
    Command::new("python3")
        .args(["-c", "import pandas, polars"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn pandas_and_polars_infer_one_type_per_column() {
    if !python_has_readers() {
        let required = std::env::var("HARNESS_REQUIRE_PYTHON_READERS").is_ok_and(|v| v == "1");
        assert!(!required, "python3 with pandas and polars is required here");
        eprintln!("skipped: python3 with pandas and polars is not installed");
        return;
    }
    let work = Workdir::new();
    let data = repo().join("data/mnist");
    work.write(
        "odd.toml",
        &format!(
            "[base]\ndata.dir = \"{}\"\ndata.train_limit = 500\ndata.validation = 0\n\
             data.test_limit = 100\nmodel.output = \"softmax\"\ntrain.loss = \"cross_entropy\"\n\
             train.optimizer = \"adam\"\ntrain.learning_rate = 0.01\ntrain.epochs = 1\n\
             train.batch_size = 50\noutput.save_model = false\n\
             model.hidden = [16]\n[grid]\n\"model.hidden\" = [[], [16], [8, 4]]\n\
             [[point]]\n\"model.hidden\" = [8, 4]\n\"model.activation\" = [\"relu\", \"tanh\"]\n\
             [[point]]\nbackend = \"wgpu\"\n\
             [[point]]\n\"train.learning_rate\" = 1e6\n\"train.batch_size\" = 10\n",
            data.display()
        ),
    );
    let args = [
        "sweep",
        "odd.toml",
        "--set",
        "output.runs=odd-runs.csv",
        "--set",
        "output.epochs=odd-epochs.csv",
    ];
    let odd = work.harness_without_gpu(&args).output;
    let summary = String::from_utf8_lossy(&odd.stdout);
    assert!(summary.contains("1 diverged, 1 failed"), "{summary}");
    // Names a sweep made of digits only ("16") get the base's name in front.
    let names: Vec<String> = common::csv_rows(&work.path().join("odd-runs.csv"))
        .into_iter()
        .map(|row| row["name"].clone())
        .collect();
    assert!(names.iter().all(|n| n.parse::<f64>().is_err()), "{names:?}");

    work.write(
        "plain.toml",
        &format!(
            "[data]\ndir = \"{}\"\ntrain_limit = 500\ntest_limit = 100\nvalidation = 100\n\
             [model]\nhidden = [16, 16]\n[train]\nepochs = 1\n[output]\nsave_model = false\n\
             runs = \"plain-runs.csv\"\nepochs = \"plain-epochs.csv\"\n",
            data.display()
        ),
    );
    work.harness(&["run", "plain.toml", "--quiet"])
        .expect_code(0);

    let readers = Command::new("python3")
        .args(["-c", READERS])
        .args([
            "odd-runs.csv",
            "plain-runs.csv",
            "odd-epochs.csv",
            "plain-epochs.csv",
        ])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        readers.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&readers.stdout),
        String::from_utf8_lossy(&readers.stderr)
    );
}
