//! The real binary trains on the real MNIST files and writes real results.

mod common;

use common::{Workdir, csv_rows, repo};

/// A quick ReLU + Adam config: 5,000 training images, 2 epochs.
fn quick_config(work: &Workdir) -> String {
    let data = repo().join("data/mnist");
    work.write(
        "quick.toml",
        &format!(
            "name = \"quick\"\nseed = 7\n\
             [data]\ndir = \"{}\"\ntrain_limit = 5000\n\
             [model]\nhidden = [64]\nactivation = \"relu\"\noutput = \"softmax\"\n\
             [train]\nepochs = 2\nbatch_size = 16\nloss = \"cross_entropy\"\noptimizer = \"adam\"\n\
             learning_rate = 0.003\n",
            data.display()
        ),
    );
    "quick.toml".to_string()
}

fn assert_trained(work: &Workdir, backend: &str, floor: f64) {
    let runs = csv_rows(&work.path().join("results/runs.csv"));
    assert_eq!(runs.len(), 1, "{runs:?}");
    let row = &runs[0];
    assert_eq!(row["status"], "ok", "{row:?}");
    assert_eq!(row["backend"], backend, "{row:?}");
    assert_eq!(row["shape"], "784-64-10");
    assert_eq!(row["params"], "50890");
    assert_eq!(row["test_size"], "10000");
    assert_eq!(row["validation_size"], "10000");
    let validation: f64 = row["val_accuracy"].parse().unwrap();
    assert!(
        validation >= floor,
        "validation accuracy {validation}: {row:?}"
    );
    let accuracy: f64 = row["test_accuracy"].parse().unwrap();
    assert!(
        accuracy >= floor,
        "test accuracy {accuracy} below {floor}: {row:?}"
    );
    let epochs = csv_rows(&work.path().join("results/epochs.csv"));
    assert_eq!(epochs.len(), 2, "{epochs:?}");
    assert!(epochs.iter().all(|e| e["attempt"] == row["attempt"]));
    // The row reports the kept epoch: the one with the best validation accuracy.
    let best: usize = row["best_epoch"].parse().unwrap();
    let kept = &epochs[best - 1];
    assert_eq!(kept["test_accuracy"], row["test_accuracy"]);
    assert_eq!(kept["val_accuracy"], row["val_accuracy"]);
    let other = &epochs[2 - best];
    assert!(
        other["val_accuracy"].parse::<f64>().unwrap() <= validation,
        "{epochs:?}"
    );
    let model = work.path().join(format!(
        "results/models/{}.{}.bpk",
        row["run_id"], row["attempt"]
    ));
    assert!(model.is_file(), "no model at {}", model.display());
}

#[test]
fn cpu_run_trains_and_appends_one_row() {
    let work = Workdir::new();
    let config = quick_config(&work);
    let run = work.harness(&["run", &config]);
    run.expect_code(0);
    assert!(run.stdout().contains("test accuracy"), "{}", run.describe());
    // Not a terminal: one plain line per epoch.
    assert_eq!(
        run.stderr().matches("\nepoch ").count(),
        2,
        "{}",
        run.describe()
    );
    assert_trained(&work, "flex", 0.90);
}

#[test]
fn same_seed_gives_identical_results_on_the_cpu() {
    let work = Workdir::new();
    let config = quick_config(&work);
    // ndarray is built only with `--features ndarray` (CI tests that build too).
    let backends: &[&str] = if cfg!(feature = "ndarray") {
        &["flex", "ndarray"]
    } else {
        &["flex"]
    };
    for backend in backends {
        let args = [
            "run",
            &config,
            "--backend",
            *backend,
            "--quiet",
            "--set",
            "data.train_limit=2000",
            "--set",
            "train.epochs=1",
            "--set",
            "output.save_model=false",
        ];
        work.harness(&args).expect_code(0);
        work.harness(&args).expect_code(0);
    }
    let rows = csv_rows(&work.path().join("results/runs.csv"));
    assert_eq!(rows.len(), 2 * backends.len());
    for pair in rows.chunks(2) {
        for column in [
            "run_id",
            "val_accuracy",
            "train_loss",
            "train_accuracy",
            "test_loss",
            "test_accuracy",
        ] {
            assert_eq!(
                pair[0][column], pair[1][column],
                "{column} differs: {pair:?}"
            );
        }
    }
    assert!(
        backends.len() == 1 || rows[0]["run_id"] != rows[2]["run_id"],
        "flex and ndarray share a run_id"
    );
}

#[test]
fn huge_learning_rate_diverges_with_its_row() {
    let work = Workdir::new();
    let config = quick_config(&work);
    let run = work.harness(&[
        "run",
        &config,
        "--set",
        "train.learning_rate=1000",
        "--set",
        "data.train_limit=2000",
    ]);
    run.expect_code(1);
    let rows = csv_rows(&work.path().join("results/runs.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "diverged", "{}", run.describe());
}

/// wgpu must run in CI (HARNESS_REQUIRE_WGPU=1, lavapipe installed by .ci/run); elsewhere a
/// machine without a Vulkan, Metal or DX12 adapter skips with the reason.
#[test]
fn wgpu_run_trains_and_appends_one_row() {
    let work = Workdir::new();
    let config = quick_config(&work);
    // As on a machine without a login session: harness gives Mesa a runtime folder of its own,
    // so its "XDG_RUNTIME_DIR is invalid or not set" lines never reach the user.
    let args = ["run", config.as_str(), "--backend", "wgpu"];
    let mut command = work.command(&args);
    command.env_remove("XDG_RUNTIME_DIR");
    let run = work.run(&args, command);
    if common::skipped_without_wgpu(&run) {
        return;
    }
    run.expect_code(0);
    assert!(
        !run.stderr().contains("XDG_RUNTIME_DIR"),
        "{}",
        run.describe()
    );
    assert_trained(&work, "wgpu", 0.90);
    // The first-run notice names the file cubecl keeps its tuning results in: it must exist.
    let stderr = run.stderr();
    let cache = stderr
        .lines()
        .find_map(|line| {
            line.split_once("kept for later runs in ")
                .map(|(_, path)| path.trim())
        })
        .unwrap_or_else(|| panic!("no tuning notice\n{}", run.describe()));
    assert!(
        std::path::Path::new(cache).is_file(),
        "the notice names {cache}, which does not exist"
    );
}

#[test]
fn bench_prints_figures_as_json() {
    let work = Workdir::new();
    let run = work.harness(&["bench", "--configs", "relu_b64", "--epochs", "1", "--json"]);
    run.expect_code(0);
    let stdout = run.stdout();
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.describe());
    let figure: std::collections::HashMap<String, serde_json::Value> =
        serde_json::from_str(lines[0]).unwrap();
    assert_eq!(figure["config"], "relu_b64", "{stdout}");
    assert_eq!(figure["params"], 13002);
    assert_eq!(figure["batch_size"], 64);
    for key in [
        "seconds_per_epoch",
        "samples_per_second",
        "gflops",
        "fraction_of_peak",
    ] {
        assert!(figure[key].as_f64().unwrap() > 0.0, "{key}: {stdout}");
    }
    let unknown = work.harness(&["bench", "--configs", "relu_b46"]);
    unknown
        .expect_code(2)
        .expect_stderr(&["did you mean \"relu_b64\""]);
    // A backend missing from the build stops the bench before anything is measured, even after
    // one that is there.
    if !cfg!(feature = "ndarray") {
        let missing = work.harness(&["bench", "--backends", "flex,ndarray", "--epochs", "1"]);
        missing.expect_code(2).expect_stderr(&[
            "backend \"ndarray\" is not in this build",
            "--features ndarray",
        ]);
        assert!(
            !missing.stdout().contains("sigmoid_b10"),
            "flex was measured first\n{}",
            missing.describe()
        );
    }
}
