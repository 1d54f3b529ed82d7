//! What is recorded is what was trained (RELIABILITY.md, "Every point is validated as it will
//! be trained"): every point of every search is validated with its final settings (a halving
//! rung's epochs included) and named by them, a key is varied once, draws stay inside the
//! user's range, every size comes from a bound, and no row with a non-finite metric is `ok`.

mod common;

use std::collections::BTreeSet;

use common::{Workdir, csv_rows, repo};

/// An experiment: a small base and the given tables.
fn experiment(work: &Workdir, tables: &str) -> String {
    work.write(
        "e.toml",
        &format!(
            "[base]\ndata.dir = \"{}\"\ndata.train_limit = 2000\ndata.validation = 500\n\
             data.test_limit = 500\nmodel.hidden = [16]\nmodel.activation = \"relu\"\n\
             model.output = \"softmax\"\ntrain.epochs = 2\ntrain.batch_size = 50\n\
             train.loss = \"cross_entropy\"\ntrain.optimizer = \"adam\"\n\
             train.learning_rate = 1e-3\noutput.save_model = false\n{tables}",
            repo().join("data/mnist").display()
        ),
    );
    "e.toml".to_string()
}

/// The (name, varies) columns a dry run lists, one pair per point.
fn listed(work: &Workdir, args: &[&str]) -> Vec<(String, String)> {
    let mut all = vec!["sweep", "e.toml", "--dry-run"];
    all.extend(args);
    let run = work.harness(&all);
    run.expect_code(0);
    run.stdout()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.first()?.parse::<usize>().ok()?;
            let id = fields.get(1)?;
            (id.len() == 12 && id.starts_with('r')).then_some(())?;
            Some((
                fields[2].to_string(),
                fields.get(4).unwrap_or(&"").to_string(),
            ))
        })
        .collect()
}

#[test]
fn a_key_is_varied_once_and_set_never_replaces_what_a_search_varies() {
    let work = Workdir::new();
    // Regression: a key in [grid] and [random] trained the random value under the grid's name.
    experiment(
        &work,
        "[grid]\n\"train.learning_rate\" = [0.1, 0.2]\n[random]\ntrials = 2\n\
         \"train.learning_rate\" = { uniform = [0.1, 0.5] }\n",
    );
    work.harness(&["sweep", "e.toml", "--dry-run"])
        .expect_code(2)
        .expect_stderr(&["random.train.learning_rate is also in [grid] (e.toml:"]);
    // Regression: --set seed=5 over a seed grid named points _s1, _s2 that all ran seed 5.
    experiment(&work, "[grid]\nseed = [1, 2]\n");
    for set in ["seed=5", "seed=1"] {
        work.harness(&["sweep", "e.toml", "--dry-run", "--set", set])
            .expect_code(2)
            .expect_stderr(&["seed is varied by the experiment (e.toml:"]);
    }
    experiment(&work, "[[point]]\n\"train.batch_size\" = 10\n");
    work.harness(&[
        "sweep",
        "e.toml",
        "--dry-run",
        "--set",
        "train.batch_size=20",
    ])
    .expect_code(2)
    .expect_stderr(&["train.batch_size is varied by the experiment (point["]);
    experiment(
        &work,
        "[random]\ntrials = 2\n\"model.dropout\" = { uniform = [0.0, 0.5] }\n",
    );
    work.harness(&["sweep", "e.toml", "--dry-run", "--set", "model.dropout=0.1"])
        .expect_code(2);
    // A --set of what the search does not vary is fine, and names the points: two sweeps of
    // one experiment with different --set never give rows of the same names.
    experiment(&work, "[grid]\nseed = [1, 2]\n");
    let plain = listed(&work, &[]);
    let set = listed(&work, &["--set", "train.batch_size=64"]);
    let twice = listed(
        &work,
        &[
            "--set",
            "train.batch_size=32",
            "--set",
            "train.batch_size=64",
        ],
    );
    assert_eq!(plain.len(), 2);
    let names = |points: &[(String, String)]| -> BTreeSet<String> {
        points.iter().map(|(name, _)| name.clone()).collect()
    };
    assert!(names(&plain).is_disjoint(&names(&set)), "{plain:?} {set:?}");
    assert_eq!(
        names(&set),
        names(&twice),
        "the last --set of a key names it"
    );
    assert!(
        set.iter().all(|(name, _)| name.ends_with("_b64")),
        "{set:?}"
    );
}

#[test]
fn every_point_of_a_halving_search_is_validated_at_its_rungs_epochs() {
    let work = Workdir::new();
    let halving = "[random]\ntrials = 2\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-2] }\n\
                   [halving]\nmin_epochs = 1\nmax_epochs = 4\neta = 2\n";
    experiment(&work, halving);
    listed(&work, &[]);
    // Every rung follows the schedule of max_epochs (4), stopped after its budget: a warm-up
    // of 1.5 epochs is valid though rung 0 trains 1 epoch...
    work.harness(&[
        "sweep",
        "e.toml",
        "--dry-run",
        "--set",
        "train.warmup_epochs=1.5",
    ])
    .expect_code(0);
    // ...and not for a schedule of 1 epoch.
    experiment(
        &work,
        "[random]\ntrials = 2\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-2] }\n\
         [halving]\nmin_epochs = 1\nmax_epochs = 1\neta = 2\n",
    );
    work.harness(&[
        "sweep",
        "e.toml",
        "--dry-run",
        "--set",
        "train.warmup_epochs=1.5",
    ])
    .expect_code(2)
    .expect_stderr(&[
        "[halving] trains every point along a schedule of 1 epoch(s)",
        "warm-up",
    ]);
    experiment(&work, halving);
    // Each rung sets the epochs: --set of them is refused, not silently ignored.
    work.harness(&["sweep", "e.toml", "--dry-run", "--set", "train.epochs=3"])
        .expect_code(2)
        .expect_stderr(&["with [halving], each rung sets train.epochs"]);
    // The budget is bounded before any point is made.
    for (budget, needle) in [
        (
            "min_epochs = 0\nmax_epochs = 4\neta = 2\n",
            "halving.min_epochs",
        ),
        (
            "min_epochs = 1\nmax_epochs = 100000000\neta = 2\n",
            "halving.max_epochs",
        ),
        ("min_epochs = 1\nmax_epochs = 4\neta = 1\n", "halving.eta"),
        ("min_epochs = 4\nmax_epochs = 2\neta = 2\n", "halving"),
    ] {
        experiment(
            &work,
            &format!(
                "[random]\ntrials = 2\n\"train.learning_rate\" = {{ log_uniform = [1e-4, 1e-2] }}\n\
                 [halving]\n{budget}"
            ),
        );
        let run = work.harness(&["sweep", "e.toml", "--dry-run"]);
        run.expect_code(2).expect_stderr(&[needle]);
        assert!(!run.stderr().contains("panicked"), "{}", run.describe());
    }
}

/// Regression: a shard of a halving search without --rung trained rung 0 and then exited 2.
#[test]
fn a_shard_of_a_halving_search_stops_after_its_rung_with_a_note() {
    let work = Workdir::new();
    experiment(
        &work,
        "[random]\ntrials = 2\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-2] }\n\
         [halving]\nmin_epochs = 1\nmax_epochs = 2\neta = 2\n",
    );
    let run = work.harness(&["sweep", "e.toml", "--shard", "1/2"]);
    run.expect_code(0).expect_stdout(&["--rung 1"]);
    let rows = csv_rows(&work.path().join("results/runs.csv"));
    assert_eq!(rows.len(), 1, "shard 1 of 2 of rung 0's two points");
    assert_eq!(rows[0]["rung"], "0");
}

#[test]
fn random_draws_stay_inside_the_users_range() {
    let work = Workdir::new();
    let cases: [(&str, f64, f64); 4] = [
        (
            "\"model.dropout\" = { uniform = [0.999, 0.99999] }",
            0.999,
            0.99999,
        ),
        (
            "\"train.min_delta\" = { uniform = [1e-320, 2e-320] }",
            1e-320,
            2e-320,
        ),
        (
            "\"train.min_delta\" = { log_uniform = [1e-320, 2e-320] }",
            1e-320,
            2e-320,
        ),
        (
            "\"train.min_delta\" = { uniform = [1e300, 1.7e308] }",
            1e300,
            1.7e308,
        ),
    ];
    for (line, low, high) in cases {
        experiment(&work, &format!("[random]\ntrials = 12\nseed = 4\n{line}\n"));
        let points = listed(&work, &[]);
        assert_eq!(points.len(), 12, "{line}: {points:?}");
        for (name, varies) in &points {
            let (_, value) = varies.split_once('=').unwrap();
            let value: f64 = value.parse().unwrap();
            assert!((low..=high).contains(&value), "{line}: {name} drew {value}");
            assert!(varies.len() < 40, "a number shown in full: {varies}");
        }
    }
    // A range that holds invalid values is refused with the key, not a panic.
    experiment(
        &work,
        "[random]\ntrials = 3\n\"train.learning_rate\" = { uniform = [-1e308, 1e308] }\n",
    );
    let run = work.harness(&["sweep", "e.toml", "--dry-run"]);
    run.expect_code(2)
        .expect_stderr(&["train.learning_rate", "must be a number > 0"]);
    assert!(!run.stderr().contains("panicked"), "{}", run.describe());
    assert!(run.stderr().len() < 400, "{}", run.describe());
    // Regression: a rate below what 32-bit training holds was recorded, and trained as 0.
    experiment(
        &work,
        "[random]\ntrials = 3\n\"train.learning_rate\" = { log_uniform = [1e-320, 2e-320] }\n",
    );
    work.harness(&["sweep", "e.toml", "--dry-run"])
        .expect_code(2)
        .expect_stderr(&["train.learning_rate", "32-bit floats"]);
}

/// Every size the user gives is bounded before any work; a limit that takes every image is
/// the same run as no limit.
#[test]
fn every_size_is_bounded_up_front_and_a_full_limit_is_no_limit() {
    let work = Workdir::new();
    let config = repo().join("configs/relu_16x16.toml");
    let config = config.to_str().unwrap();
    for (set, needle) in [
        ("train.epochs=100000000", "from 1 to 100000"),
        ("train.epochs=4294967297", "from 1 to 100000"),
        ("train.step_epochs=100000000", "train.step_epochs"),
        ("train.patience=100000000", "train.patience"),
        ("model.hidden=[10000001]", "widths go from 1 to 10000000"),
        ("data.validation=60000", "from 0 to 59999"),
        ("data.train_limit=55000", "use 1 to 50000"),
        ("data.test_limit=10001", "use 1 to 10000"),
    ] {
        // Under a memory bound: the refusal comes before any allocation sized by the value.
        let mut command = work.command(&["run", config, "--set", set]);
        let run = work.run(&["run", config, "--set", set], {
            use std::os::unix::process::CommandExt;
            unsafe {
                command.pre_exec(|| {
                    let limit = libc::rlimit {
                        rlim_cur: 4 << 30,
                        rlim_max: 4 << 30,
                    };
                    libc::setrlimit(libc::RLIMIT_AS, &limit);
                    Ok(())
                });
            }
            command
        });
        run.expect_code(2).expect_stderr(&[needle]);
    }
    let id = |sets: &[&str]| {
        let mut args = vec!["check", config];
        for set in sets {
            args.extend(["--set", set]);
        }
        let run = work.harness(&args);
        run.expect_code(0);
        let stdout = run.stdout();
        let at = stdout.find("run_id ").expect("check prints the run_id");
        stdout[at..].split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(id(&[]), id(&["data.train_limit=50000"]));
    assert_eq!(id(&[]), id(&["data.test_limit=10000"]));
    assert_ne!(id(&[]), id(&["data.train_limit=49999"]));
}

/// A run is `ok` only if every metric it records is finite.
#[test]
fn a_run_with_a_non_finite_metric_is_never_ok() {
    let work = Workdir::new();
    let config = repo().join("configs/relu_16x16.toml");
    let run = work.harness(&[
        "run",
        config.to_str().unwrap(),
        "--set",
        "data.train_limit=500",
        "--set",
        "data.validation=200",
        "--set",
        "data.test_limit=200",
        "--set",
        "train.epochs=2",
        "--set",
        "train.learning_rate=1e20",
    ]);
    run.expect_code(1);
    for row in csv_rows(&work.path().join("results/runs.csv")) {
        let finite = harness::record::results::METRICS
            .iter()
            .all(|key| row[*key].parse::<f64>().is_ok_and(f64::is_finite));
        assert!(finite || row["status"] != "ok", "{row:?}");
        assert_eq!(row["status"], "diverged", "{row:?}");
    }
}
