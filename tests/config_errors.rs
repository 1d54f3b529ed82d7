//! Every shipped config validates; broken configs exit 2 with the key and its line, and leave
//! results/ untouched.

mod common;

use common::{Workdir, repo};

#[test]
fn every_shipped_config_validates() {
    let work = Workdir::new();
    let configs: Vec<_> = std::fs::read_dir(repo().join("configs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    assert!(configs.len() >= 6, "configs/ holds {configs:?}");
    for config in configs {
        work.harness(&["check", config.to_str().unwrap()])
            .expect_code(0)
            .expect_stdout(&["parameters, about", "to train; run_id"]);
    }
}

#[test]
fn check_prints_the_videos_parameter_count() {
    let work = Workdir::new();
    let config = repo().join("configs/sigmoid_16x16.toml");
    work.harness(&["check", config.to_str().unwrap()])
        .expect_code(0)
        .expect_stdout(&[
            "784-16-16-10 network, 13,002 parameters",
            "learning_rate = 3.0",
        ]);
}

#[test]
fn default_config_documents_every_key() {
    // Keys set or shown commented out ("# key = ...") in configs/default.toml.
    let text = std::fs::read_to_string(repo().join("configs/default.toml")).unwrap();
    let mut documented = std::collections::BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches("# ");
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, _)) = line.split_once(" = ")
            && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            documented.insert(format!("{section}{key}"));
        }
    }
    // Every key of the schema, from a config with every optional key set.
    let full = "[data]\ndir = \"d\"\ntrain_limit = 1\ntest_limit = 1\n[model]\nhidden = [1]\n";
    let settings = harness::config::parse(full, std::path::Path::new("full.toml"), &[]).unwrap();
    let table: toml::Table = toml::from_str(&settings.to_toml()).unwrap();
    let mut schema = std::collections::BTreeSet::new();
    for (key, value) in &table {
        match value.as_table() {
            Some(inner) => schema.extend(inner.keys().map(|k| format!("{key}.{k}"))),
            None => {
                schema.insert(key.clone());
            }
        }
    }
    assert_eq!(documented, schema);
}

#[test]
fn default_config_values_are_the_codes_defaults() {
    let path = repo().join("configs/default.toml");
    let documented = harness::config::load(&path, &[]).unwrap();
    // The code's defaults: a config that sets nothing but the one required key.
    let minimal = harness::config::parse(
        "name = \"default\"\n[model]\nhidden = [16, 16]\n",
        &path,
        &[],
    )
    .unwrap();
    assert_eq!(documented, minimal);
}

/// A broken config must exit 2 and name the key and its line, without touching results/.
fn assert_rejected(config: &str, needles: &[&str]) {
    let work = Workdir::new();
    work.write("broken.toml", config);
    let run = work.harness(&["run", "broken.toml"]);
    run.expect_code(2).expect_stderr(needles);
    let stderr = run.stderr();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
        "{}",
        run.describe()
    );
    assert!(
        !work.path().join("results").exists(),
        "results/ was written\n{}",
        run.describe()
    );
}

/// ndarray is not a default feature: asking a default build for it is a usage error that says
/// how to build it, before anything is trained or written.
#[cfg(not(feature = "ndarray"))]
#[test]
fn a_backend_not_in_the_build_names_the_feature_to_build() {
    assert_rejected(
        "backend = \"ndarray\"\n[model]\nhidden = [16]\n",
        &[
            "backend \"ndarray\" is not in this build",
            "cargo build --release --features ndarray",
        ],
    );
}

#[test]
fn unknown_key() {
    assert_rejected(
        "[model]\nhidden = [16]\nwidth = 3\n",
        &["broken.toml:3:1", "width", "hidden"],
    );
}

#[test]
fn misspelled_activation() {
    assert_rejected(
        "[model]\nhidden = [16]\nactivation = \"sigmod\"\n",
        &[
            "broken.toml:3:14",
            "model.activation",
            "did you mean \"sigmoid\"",
        ],
    );
}

#[test]
fn zero_width_layer() {
    assert_rejected(
        "[model]\nhidden = [16, 0]\n",
        &["broken.toml:2:15", "model.hidden[1]"],
    );
}

#[test]
fn negative_learning_rate() {
    assert_rejected(
        "[model]\nhidden = [16]\n[train]\nlearning_rate = -1\n",
        &["broken.toml:4:17", "train.learning_rate", "> 0"],
    );
}

#[test]
fn zero_epochs() {
    assert_rejected(
        "[model]\nhidden = [16]\n[train]\nepochs = 0\n",
        &["broken.toml:4:10", "train.epochs"],
    );
}

#[test]
fn malformed_toml() {
    assert_rejected("[model\nhidden = [16]\n", &["broken.toml:1:"]);
}

#[test]
fn wrong_type() {
    assert_rejected(
        "[model]\nhidden = [16]\n[train]\nbatch_size = \"ten\"\n",
        &["broken.toml:4:14", "train.batch_size"],
    );
}

#[test]
fn missing_hidden() {
    assert_rejected("seed = 1\n", &["model.hidden", "is required"]);
}

#[test]
fn cross_entropy_with_sigmoid_output() {
    assert_rejected(
        "[model]\nhidden = [16]\noutput = \"sigmoid\"\n[train]\nloss = \"cross_entropy\"\n",
        &["train.loss", "softmax"],
    );
}

#[test]
fn bad_set_override() {
    let work = Workdir::new();
    let config = repo().join("configs/sigmoid_16x16.toml");
    let run = work.harness(&[
        "run",
        config.to_str().unwrap(),
        "--set",
        "train.epochs=zero",
    ]);
    run.expect_code(2)
        .expect_stderr(&["--set train.epochs=zero"]);
    assert!(!work.path().join("results").exists());
}

#[test]
fn unknown_backend_flag() {
    let work = Workdir::new();
    let config = repo().join("configs/sigmoid_16x16.toml");
    let run = work.harness(&["run", config.to_str().unwrap(), "--backend", "wgu"]);
    run.expect_code(2).expect_stderr(&[
        "'wgu'",
        "a similar value exists: 'wgpu'",
        "possible values",
    ]);
}

#[test]
fn missing_config_file() {
    let work = Workdir::new();
    let run = work.harness(&["run", "nope.toml"]);
    run.expect_code(2).expect_stderr(&["nope.toml"]);
}

#[test]
fn missing_data_names_the_paths_tried() {
    let work = Workdir::new();
    let config = repo().join("configs/sigmoid_16x16.toml");
    let run = work.harness(&[
        "run",
        config.to_str().unwrap(),
        "--set",
        "data.dir=no/such/dir",
    ]);
    run.expect_code(2).expect_stderr(&[
        "no/such/dir/train-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte",
    ]);
}

#[test]
fn foreign_csv_header_is_never_rewritten() {
    let work = Workdir::new();
    std::fs::create_dir(work.path().join("results")).unwrap();
    let foreign = "id,accuracy\nmine,0.5\n";
    work.write("results/runs.csv", foreign);
    let config = repo().join("configs/sigmoid_16x16.toml");
    let run = work.harness(&["run", config.to_str().unwrap()]);
    run.expect_code(2)
        .expect_stderr(&["found:    id,accuracy", "expected: run_id,"]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("results/runs.csv")).unwrap(),
        foreign
    );
}

#[test]
fn help_and_version() {
    let work = Workdir::new();
    let help = work.harness(&["--help"]);
    help.expect_code(0);
    assert!(
        help.stdout().contains("run") && help.stdout().contains("check"),
        "{}",
        help.describe()
    );
    let run_help = work.harness(&["run", "--help"]);
    assert!(
        run_help.stdout().contains("--set <KEY=VALUE>"),
        "{}",
        run_help.describe()
    );
    let version = work.harness(&["--version"]);
    version.expect_code(0);
    assert!(version.stdout().contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn run_id_changes_with_the_activation() {
    let work = Workdir::new();
    let config = repo().join("configs/sigmoid_16x16.toml");
    let config = config.to_str().unwrap();
    let id = |args: &[&str]| {
        let run = work.harness(args);
        run.expect_code(0);
        let stdout = run.stdout();
        let start = stdout.find("run_id ").expect("a run_id") + "run_id ".len();
        stdout[start..start + 12].to_string()
    };
    let sigmoid = id(&["check", config]);
    assert_eq!(sigmoid, id(&["check", config]));
    assert_ne!(
        sigmoid,
        id(&["check", config, "--set", "model.activation=relu"])
    );
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let work = Workdir::new();
    work.harness(&["sweep", "experiments/ci.toml", "--quiet-not-a-flag"])
        .expect_code(2)
        .expect_stderr(&["--quiet-not-a-flag"]);
}

#[test]
fn check_names_runs_after_their_changes_and_omits_an_unused_activation() {
    let work = Workdir::new();
    let config = repo().join("configs/sigmoid_16x16.toml");
    let config = config.to_str().unwrap();
    work.harness(&[
        "check",
        config,
        "--set",
        "model.hidden=[32,32]",
        "--set",
        "train.epochs=5",
        "--set",
        "output.runs=elsewhere.csv",
    ])
    .expect_code(0)
    .expect_stdout(&["name = \"sigmoid_16x16_32x32_e5\"", "784-32-32-10 network"]);
    work.harness(&["check", config, "--set", "name=mine", "--set", "seed=3"])
        .expect_code(0)
        .expect_stdout(&["name = \"mine\""]);
    let ndarray = work.harness(&["check", config, "--backend", "ndarray"]);
    ndarray
        .expect_code(0)
        .expect_stdout(&["name = \"sigmoid_16x16_ndarray\""]);
    // Valid, but this build's `run` would refuse it: check says so.
    if !cfg!(feature = "ndarray") {
        ndarray.expect_stderr(&[
            "warning:",
            "backend \"ndarray\" is not in this build",
            "--features ndarray",
        ]);
    }
    // The validation and test images stay on the device for the whole run: the estimate
    // counts them (59,000 more images of 784 pixels and 10 targets: about 179 MiB more).
    let memory = |extra: &[&str]| -> f64 {
        let mut args = vec!["check", config];
        args.extend_from_slice(extra);
        let run = work.harness(&args);
        run.expect_code(0);
        let stdout = run.stdout();
        let about = stdout.split("about ").nth(1).expect("an estimate");
        let (number, unit) = about.split_once(' ').unwrap();
        let scale = match &unit[..3] {
            "KiB" => 1.0 / 1024.0,
            "MiB" => 1.0,
            "GiB" => 1024.0,
            other => panic!("unit {other} in {stdout}"),
        };
        number.parse::<f64>().unwrap() * scale
    };
    let small = memory(&["--set", "data.validation=0"]);
    let large = memory(&["--set", "data.validation=59000"]);
    assert!(
        large - small > 170.0,
        "validation 0: {small} MiB, 59000: {large} MiB"
    );
    // Without hidden layers there is no activation: check prints none (the CSV says `none`).
    let logistic = repo().join("configs/logistic.toml");
    let run = work.harness(&["check", logistic.to_str().unwrap()]);
    run.expect_code(0).expect_stdout(&["784-10 network"]);
    assert!(!run.stdout().contains("activation ="), "{}", run.describe());
}

/// A newcomer's natural mistakes each get a message that says what to do next (issue 21):
/// the wrong kind of file for a command, a flag where a config key belongs, a word where a
/// number belongs, a choice in the wrong case, and a folder where nothing was recorded yet.
#[test]
fn a_newcomers_mistakes_say_what_to_do_next() {
    let work = Workdir::new();
    let experiment = repo().join("experiments/activations.toml");
    let experiment = experiment.to_str().unwrap();
    let config = repo().join("configs/relu_16x16.toml");
    let config = config.to_str().unwrap();
    work.harness(&["run", experiment])
        .expect_code(2)
        .expect_stderr(&[
            "is an experiment file",
            &format!("`harness sweep {experiment}`"),
        ]);
    work.harness(&["check", experiment])
        .expect_code(2)
        .expect_stderr(&["is an experiment file", "harness sweep"]);
    work.harness(&["sweep", config])
        .expect_code(2)
        .expect_stderr(&["is a config file", &format!("`harness run {config}`")]);
    let report = work.harness(&["report", config]);
    report.expect_code(2).expect_stderr(&[
        "is a config file",
        "not a runs file",
        "results/runs.csv",
    ]);
    assert!(
        !report.stderr().contains("move this one away"),
        "{}",
        report.describe()
    );
    work.harness(&["run", config, "--epochs", "5"])
        .expect_code(2)
        .expect_stderr(&["--set train.epochs=5"]);
    // Quoted, as zsh needs a bracketed value.
    work.harness(&["run", config, "--hidden", "[32,32]"])
        .expect_code(2)
        .expect_stderr(&["--set 'model.hidden=[32,32]'"]);
    work.harness(&["run", config, "--learning-rate=0.1"])
        .expect_code(2)
        .expect_stderr(&["--set train.learning_rate=0.1"]);
    work.harness(&["check", config, "--set", "train.epochs=five"])
        .expect_code(2)
        .expect_stderr(&["train.epochs=five", "expected a whole number"]);
    work.harness(&["check", config, "--set", "model.activation=ReLU"])
        .expect_code(2)
        .expect_stderr(&["did you mean \"relu\""]);
    for args in [
        vec!["report"],
        vec!["plot"],
        vec!["inspect", "r0123456789a"],
        vec!["predict", "r0123456789a", "x.png"],
        vec!["export", "r0123456789a"],
    ] {
        work.harness(&args).expect_code(2).expect_stderr(&[
            "no run has been recorded in results/runs.csv yet",
            "harness run configs/sigmoid_16x16.toml",
        ]);
    }
    assert!(!work.path().join("results").exists());
}
