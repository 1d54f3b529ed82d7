//! `harness sweep` and `harness merge` with the real binary: resume after SIGKILL, shards,
//! concurrent appends, divergence and failures recorded, merging shard files.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Workdir, csv_rows, repo};

/// An experiment of `seeds` quick points (about half a second each).
fn experiment(work: &Workdir, name: &str, extra_grid: &str, seeds: usize) -> String {
    let seeds: Vec<String> = (1..=seeds).map(|s| s.to_string()).collect();
    work.write(
        name,
        &format!(
            "[base]\ndata.dir = \"{}\"\ndata.train_limit = 20000\nmodel.hidden = [32]\n\
             model.activation = \"relu\"\nmodel.output = \"softmax\"\ntrain.epochs = 1\n\
             train.batch_size = 32\ntrain.loss = \"cross_entropy\"\ntrain.optimizer = \"adam\"\n\
             train.learning_rate = 1e-3\n[grid]\nseed = [{}]\n{extra_grid}",
            repo().join("data/mnist").display(),
            seeds.join(", ")
        ),
    );
    name.to_string()
}

fn runs(work: &Workdir, file: &str) -> Vec<std::collections::HashMap<String, String>> {
    csv_rows(&work.path().join(file))
}

/// The run_ids a dry run lists.
fn dry_run_ids(work: &Workdir, experiment: &str) -> BTreeSet<String> {
    let run = work.harness(&["sweep", experiment, "--dry-run"]);
    run.expect_code(0);
    run.stdout()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            fields.next()?.parse::<usize>().ok()?;
            let id = fields.next()?;
            let hex = id.strip_prefix('r')?;
            (hex.len() == 11 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| id.to_string())
        })
        .collect()
}

#[test]
fn sigkill_then_rerun_gives_exactly_one_row_per_point() {
    let work = Workdir::new();
    let experiment = experiment(&work, "kill.toml", "", 8);
    let runs_csv = work.path().join("results/runs.csv");
    work.kill_when(&["sweep", &experiment], &runs_csv, 3);
    let before: BTreeMap<String, String> = runs(&work, "results/runs.csv")
        .into_iter()
        .map(|row| (row["run_id"].clone(), row["started_at"].clone()))
        .collect();
    assert!(before.len() >= 2 && before.len() < 8, "{before:?}");

    let rerun = work.harness(&["sweep", &experiment]);
    rerun.expect_code(0);
    assert!(
        rerun
            .stdout()
            .contains(&format!("{} skipped", before.len())),
        "{}",
        rerun.describe()
    );
    let text = std::fs::read_to_string(&runs_csv).unwrap();
    assert!(text.ends_with('\n'), "partial last line");
    let after = runs(&work, "results/runs.csv");
    let ids: BTreeSet<String> = after.iter().map(|row| row["run_id"].clone()).collect();
    assert_eq!(after.len(), 8, "one row per point: {after:?}");
    assert_eq!(ids, dry_run_ids(&work, &experiment));
    for row in &after {
        assert_eq!(row["status"], "ok");
        if let Some(started_at) = before.get(&row["run_id"]) {
            assert_eq!(
                &row["started_at"], started_at,
                "point {} was rerun",
                row["run_id"]
            );
        }
    }
    // Exactly one epoch row per run (one epoch each), all of committed attempts.
    let epochs = runs(&work, "results/epochs.csv");
    let attempts: BTreeSet<String> = after.iter().map(|row| row["attempt"].clone()).collect();
    assert_eq!(epochs.len(), 8, "{epochs:?}");
    assert!(epochs.iter().all(|e| attempts.contains(&e["attempt"])));
}

#[test]
fn three_shards_merge_into_the_whole_sweep() {
    let work = Workdir::new();
    let experiment = experiment(&work, "shards.toml", "\"model.hidden\" = [[8], [16]]\n", 4);
    let all = dry_run_ids(&work, &experiment);
    assert_eq!(all.len(), 8);
    let mut seen = BTreeSet::new();
    for k in 1..=3 {
        let runs_file = format!("--set=output.runs=shard{k}.csv");
        let run = work.harness(&[
            "sweep",
            &experiment,
            "--shard",
            &format!("{k}/3"),
            &runs_file,
        ]);
        run.expect_code(0);
        assert!(
            run.stdout().contains(&format!("shard {k}/3")),
            "{}",
            run.describe()
        );
        for row in runs(&work, &format!("shard{k}.csv")) {
            assert!(
                seen.insert(row["run_id"].clone()),
                "{} in two shards",
                row["run_id"]
            );
        }
    }
    assert_eq!(seen, all);
    let merged = work.harness(&[
        "merge",
        "shard1.csv",
        "shard2.csv",
        "shard3.csv",
        "-o",
        "all.csv",
    ]);
    merged.expect_code(0);
    let rows = runs(&work, "all.csv");
    let ids: BTreeSet<String> = rows.iter().map(|row| row["run_id"].clone()).collect();
    assert_eq!((rows.len(), ids), (8, all));
}

#[test]
fn slurm_array_variables_pick_the_shard() {
    let work = Workdir::new();
    let experiment = experiment(&work, "slurm.toml", "", 5);
    let args = ["sweep", &experiment, "--dry-run"];
    let mut command = work.command(&args);
    command
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_MIN", "1")
        .env("SLURM_ARRAY_TASK_MAX", "2");
    work.run(&args, command)
        .expect_code(0)
        .expect_stdout(&["shard 2/2: 2 of 5 points", "2 points, 2 to run"]);
}

/// A point whose backend this build lacks (ndarray is not a default feature) stops the sweep
/// before any point trains, naming the point and the feature: a usage error, not a failed row.
#[cfg(not(feature = "ndarray"))]
#[test]
fn a_backend_missing_from_the_build_is_refused_before_any_point_trains() {
    let work = Workdir::new();
    let name = experiment(
        &work,
        "backends.toml",
        "backend = [\"flex\", \"ndarray\"]",
        1,
    );
    // The dry run still lists the plan (it may be made on another build than the one that runs).
    work.harness(&["sweep", &name, "--dry-run"]).expect_code(0);
    let run = work.harness(&["sweep", &name]);
    run.expect_code(2).expect_stderr(&[
        "backends.toml: point 2",
        "backend \"ndarray\" is not in this build",
        "--features ndarray",
    ]);
    assert!(
        !work.path().join("results").exists(),
        "a point trained or a row was written\n{}",
        run.describe()
    );
}

#[test]
fn a_diverging_point_is_recorded_and_the_sweep_goes_on() {
    let work = Workdir::new();
    let experiment = experiment(
        &work,
        "lr.toml",
        "\"train.learning_rate\" = [1e-3, 1000]\n",
        2,
    );
    let run = work.harness(&["sweep", &experiment, "--jobs", "2"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("2 ok, 2 diverged, 0 failed"),
        "{}",
        run.describe()
    );
    let rows = runs(&work, "results/runs.csv");
    for row in &rows {
        let expected = if row["learning_rate"] == "1000.0" {
            "diverged"
        } else {
            "ok"
        };
        assert_eq!(row["status"], expected, "{row:?}");
    }
    // Diverged is a result: a rerun skips it; --strict still reports it.
    let strict = work.harness(&["sweep", &experiment, "--strict"]);
    strict.expect_code(1);
    assert!(
        strict.stdout().contains("4 skipped"),
        "{}",
        strict.describe()
    );
}

#[test]
fn a_failing_point_gets_a_failed_row_and_retry_failed_reruns_it() {
    let work = Workdir::new();
    let experiment = experiment(&work, "fail.toml", "backend = [\"flex\", \"wgpu\"]\n", 1);
    let no_gpu = |args: &[&str]| work.harness_without_gpu(args).output;
    let run = no_gpu(&["sweep", &experiment]);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("1 ok, 0 diverged, 1 failed"), "{stdout}");
    let rows = runs(&work, "results/runs.csv");
    let failed: Vec<_> = rows
        .iter()
        .filter(|row| row["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{rows:?}");
    assert_eq!(failed[0]["backend"], "wgpu");
    assert!(
        failed[0]["error"].contains("no Vulkan, Metal or DX12 adapter"),
        "{rows:?}"
    );

    // A plain rerun leaves the failed point alone; --retry-failed tries it again.
    let rerun = no_gpu(&["sweep", &experiment]);
    assert!(String::from_utf8_lossy(&rerun.stdout).contains("2 skipped"));
    let retry = no_gpu(&["sweep", &experiment, "--retry-failed"]);
    assert!(String::from_utf8_lossy(&retry.stdout).contains("running 1 points"));
    assert_eq!(runs(&work, "results/runs.csv").len(), 3);
}

#[test]
fn merge_rejects_conflicts_and_foreign_headers() {
    let work = Workdir::new();
    let experiment = experiment(&work, "m.toml", "", 2);
    work.harness(&["sweep", &experiment, "--set", "output.runs=a.csv"])
        .expect_code(0);
    // The same file twice: identical rows are kept once.
    let twice = work.harness(&["merge", "a.csv", "a.csv", "-o", "twice.csv"]);
    twice.expect_code(0);
    assert_eq!(runs(&work, "twice.csv").len(), 2);

    // A row of the same attempt with another accuracy conflicts: a file was edited.
    let text = std::fs::read_to_string(work.path().join("a.csv")).unwrap();
    let first = runs(&work, "a.csv")[0].clone();
    let changed = text.replacen(&first["test_accuracy"], "0.1234", 1);
    work.write("b.csv", &changed);
    let conflict = work.harness(&["merge", "a.csv", "b.csv", "-o", "c.csv"]);
    conflict
        .expect_code(2)
        .expect_stderr(&[&first["attempt"], "different rows"]);
    assert!(!work.path().join("c.csv").exists());

    work.write("foreign.csv", "id,accuracy\nx,0.5\n");
    let foreign = work.harness(&["merge", "a.csv", "foreign.csv", "-o", "d.csv"]);
    foreign
        .expect_code(2)
        .expect_stderr(&["foreign.csv has a different header"]);
}

/// Commits 25 runs (a run row and two epoch rows each) from this process when started as a
/// writer by the test below.
fn commit_as_writer(dir: &Path, writer: usize) {
    use harness::record::results::{EpochRow, RunRow, Status, commit};
    for i in 0..25u32 {
        let run_id = format!("rwriter{writer}-{i}-{}", "x".repeat(200));
        let attempt = format!("a{writer}-{i}");
        let row = RunRow {
            run_id: run_id.clone(),
            attempt: attempt.clone(),
            status: Status::Ok,
            epochs: u64::from(i),
            ..Default::default()
        };
        let epochs: Vec<EpochRow> = (1..=2)
            .map(|epoch| EpochRow {
                run_id: run_id.clone(),
                attempt: attempt.clone(),
                epoch,
                ..Default::default()
            })
            .collect();
        commit(
            &dir.join("runs.csv"),
            &dir.join("epochs.csv"),
            &row,
            &epochs,
            None,
            false,
        )
        .unwrap();
    }
}

#[test]
fn four_processes_committing_25_runs_each_give_100_whole_runs() {
    if let (Ok(dir), Ok(writer)) = (
        std::env::var("COMMIT_TEST_DIR"),
        std::env::var("COMMIT_TEST_WRITER"),
    ) {
        commit_as_writer(Path::new(&dir), writer.parse().unwrap());
        return;
    }
    let work = Workdir::new();
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "four_processes_committing_25_runs_each_give_100_whole_runs",
                    "--nocapture",
                ])
                .env("COMMIT_TEST_DIR", work.path())
                .env("COMMIT_TEST_WRITER", writer.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut writer in writers {
        assert!(writer.wait().unwrap().success());
    }
    let rows = harness::record::results::read_runs(&work.path().join("runs.csv")).unwrap();
    let epochs = harness::record::results::read_epochs(&work.path().join("epochs.csv")).unwrap();
    assert_eq!((rows.len(), epochs.len()), (100, 200));
    for name in ["runs.csv", "epochs.csv"] {
        let text = std::fs::read_to_string(work.path().join(name)).unwrap();
        assert_eq!(
            text.lines()
                .filter(|line| line.starts_with("run_id,"))
                .count(),
            1,
            "one header in {name}"
        );
    }
    for writer in 0..4 {
        let mine: Vec<u64> = rows
            .iter()
            .filter(|row| row.run_id.starts_with(&format!("rwriter{writer}-")))
            .map(|row| row.epochs)
            .collect();
        assert_eq!(mine, (0..25).collect::<Vec<_>>(), "writer {writer}'s rows");
        let run_ids: Vec<&String> = rows.iter().map(|row| &row.run_id).collect();
        for (i, pair) in epochs.chunks(2).enumerate() {
            assert_eq!(
                pair[0].attempt, pair[1].attempt,
                "epoch rows {i} are glued apart"
            );
            assert!(run_ids.contains(&&pair[0].run_id));
        }
    }
}

/// A small halving search: 6 random draws of the learning rate, rungs of 1 and 2 epochs.
fn halving_experiment(work: &Workdir) -> String {
    work.write(
        "halving.toml",
        &format!(
            "[base]\ndata.dir = \"{}\"\ndata.train_limit = 2000\ndata.validation = 500\n\
             data.test_limit = 500\nmodel.hidden = [16]\nmodel.activation = \"relu\"\n\
             model.output = \"softmax\"\ntrain.batch_size = 50\ntrain.loss = \"cross_entropy\"\n\
             train.optimizer = \"adam\"\noutput.save_model = false\n\
             [random]\ntrials = 6\nseed = 3\n\
             \"train.learning_rate\" = {{ log_uniform = [1e-4, 3e-2] }}\n\
             [halving]\nmin_epochs = 1\nmax_epochs = 2\neta = 2\n",
            repo().join("data/mnist").display()
        ),
    );
    "halving.toml".to_string()
}

/// The run_ids a dry run lists for one rung (or the whole sweep without halving).
fn listed(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            fields.next()?.parse::<usize>().ok()?;
            let id = fields.next()?;
            (id.len() == 12 && id.starts_with('r')).then(|| id.to_string())
        })
        .collect()
}

#[test]
fn random_points_are_the_same_in_every_shard_and_rerun() {
    let work = Workdir::new();
    let experiment = halving_experiment(&work);
    let whole = work.harness(&["sweep", &experiment, "--dry-run", "--rung", "0"]);
    whole.expect_code(0);
    let all = listed(&whole.stdout());
    assert_eq!(all.len(), 6, "{}", whole.describe());
    let mut union = BTreeSet::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let part = work.harness(&[
            "sweep",
            &experiment,
            "--dry-run",
            "--rung",
            "0",
            "--shard",
            &shard,
        ]);
        let ids = listed(&part.stdout());
        assert!(ids.is_disjoint(&union), "shard {shard} repeats a point");
        union.extend(ids);
    }
    assert_eq!(union, all);
    let again = work.harness(&["sweep", &experiment, "--dry-run", "--rung", "0"]);
    assert_eq!(listed(&again.stdout()), all);
}

#[test]
fn halving_runs_rung_by_rung_across_shards_and_resumes_after_a_kill() {
    let work = Workdir::new();
    let experiment = halving_experiment(&work);
    // Rung 1 waits for rung 0.
    work.harness(&["sweep", &experiment, "--rung", "1"])
        .expect_code(2)
        .expect_stderr(&["rung 1", "run rung 0 first"]);

    // Rung 0 in two shards with their own files, merged; then rung 1 from the merged file.
    for k in 1..=2 {
        let runs = format!("output.runs=runs-{k}.csv");
        let epochs = format!("output.epochs=epochs-{k}.csv");
        let shard = format!("{k}/2");
        work.harness(&[
            "sweep",
            &experiment,
            "--rung",
            "0",
            "--shard",
            &shard,
            "--set",
            &runs,
            "--set",
            &epochs,
        ])
        .expect_code(0);
    }
    work.harness(&["merge", "runs-1.csv", "runs-2.csv", "-o", "runs.csv"])
        .expect_code(0);
    assert_eq!(csv_rows(&work.path().join("runs.csv")).len(), 6);
    let rung1 = work.harness(&[
        "sweep",
        &experiment,
        "--rung",
        "1",
        "--select-from",
        "runs.csv",
        "--set",
        "output.runs=runs-1.csv",
    ]);
    rung1.expect_code(0).expect_stdout(&[
        "rung 1: 3 points, 2 of the schedule's 2 epochs, each continued from its rung-0 \
             checkpoint",
        "continued after epoch 1",
        "best:",
    ]);
    // The three kept are the three best of rung 0 by validation accuracy.
    let rows = csv_rows(&work.path().join("runs.csv"));
    let mut rung0: Vec<(f64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["val_accuracy"].parse().unwrap(),
                r["learning_rate"].clone(),
            )
        })
        .collect();
    rung0.sort_by(|a, b| b.0.total_cmp(&a.0));
    let best: BTreeSet<String> = rung0[..3].iter().map(|(_, lr)| lr.clone()).collect();
    let kept: BTreeSet<String> = csv_rows(&work.path().join("runs-1.csv"))
        .iter()
        .filter(|r| r["rung"] == "1")
        .map(|r| r["learning_rate"].clone())
        .collect();
    assert_eq!(kept, best);

    // The whole search on one machine, killed during rung 0, then resumed: every point of
    // every rung once.
    let local = Workdir::new();
    let experiment = halving_experiment(&local);
    let runs_csv = local.path().join("results/runs.csv");
    local.kill_when(&["sweep", &experiment], &runs_csv, 3);
    let resumed = local.harness(&["sweep", &experiment]);
    resumed.expect_code(0).expect_stdout(&["rung 1: 3 points"]);
    let rows = csv_rows(&runs_csv);
    let ids: BTreeSet<&String> = rows.iter().map(|r| &r["run_id"]).collect();
    assert_eq!((rows.len(), ids.len()), (9, 9), "6 + 3 points, each once");
    assert_eq!(rows.iter().filter(|r| r["rung"] == "1").count(), 3);
}

/// A grid of four widths, each point about a second.
fn widths_experiment(work: &Workdir, widths: &str) -> String {
    work.write(
        "widths.toml",
        &format!(
            "[base]\ndata.dir = \"{}\"\ndata.train_limit = 5000\ndata.validation = 500\n\
             data.test_limit = 500\nmodel.hidden = [16]\nmodel.activation = \"relu\"\n\
             model.output = \"softmax\"\ntrain.epochs = 2\ntrain.batch_size = 50\ntrain.loss = \"cross_entropy\"\n\
             train.optimizer = \"adam\"\ntrain.learning_rate = 1e-3\n[grid]\n\
             \"model.hidden\" = {widths}\n",
            repo().join("data/mnist").display()
        ),
    );
    "widths.toml".to_string()
}

/// Every row's model is the file it names, byte for byte, and `inspect` opens it.
fn assert_models_match_rows(work: &Workdir) {
    use sha2::{Digest, Sha256};
    for row in runs(work, "results/runs.csv") {
        let model = work.path().join(format!(
            "results/models/{}.{}.bpk",
            row["run_id"], row["attempt"]
        ));
        let bytes =
            std::fs::read(&model).unwrap_or_else(|e| panic!("{} of {row:?}: {e}", model.display()));
        assert_eq!(
            format!("{:x}", Sha256::digest(&bytes)),
            row["model_sha256"],
            "{} is not the model its row recorded",
            model.display()
        );
        let out = format!("inspect-{}", row["run_id"]);
        work.harness(&["inspect", &row["run_id"], "-o", &out])
            .expect_code(0);
    }
}

/// Regression: two sweeps of one experiment at once both trained every point, and the loser
/// saved its model over the winner's before its commit found the row there, so no row's
/// model_sha256 matched its file.
#[test]
fn two_sweeps_at_once_train_each_point_once_and_every_model_matches_its_row() {
    let work = Workdir::new();
    let experiment = widths_experiment(&work, "[[128], [96], [64, 64], [80]]");
    let start = |jobs: &str| {
        work.command(&["sweep", &experiment, "--jobs", jobs])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a sweep")
    };
    let (first, second) = (start("2"), start("1"));
    let outputs = [first, second].map(|child| child.wait_with_output().unwrap());
    for output in &outputs {
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let rows = runs(&work, "results/runs.csv");
    let ids: BTreeSet<&String> = rows.iter().map(|r| &r["run_id"]).collect();
    assert_eq!(
        (rows.len(), ids.len()),
        (4, 4),
        "one row per point: {rows:?}"
    );
    // Each point trained once: one attempt's epochs per point, one model file per point.
    let attempts: BTreeSet<String> = csv_rows(&work.path().join("results/epochs.csv"))
        .into_iter()
        .map(|r| r["attempt"].clone())
        .collect();
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    let models = std::fs::read_dir(work.path().join("results/models"))
        .unwrap()
        .count();
    assert_eq!(models, 4, "a model of an attempt no row holds was left");
    assert_models_match_rows(&work);
}

/// Regression: workers re-read the experiment and took their point by index, so a point
/// inserted at the front of a running sweep's grid made it train the wrong points under the
/// right names (and exit 0).
#[test]
fn an_experiment_edited_under_a_running_sweep_stops_it_and_records_only_what_it_read() {
    let work = Workdir::new();
    let experiment = widths_experiment(&work, "[[128, 128], [16], [32], [48]]");
    let planned = dry_run_ids(&work, &experiment);
    let sweep = work
        .command(&["sweep", &experiment, "--jobs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a sweep");
    // Edit it while the first point trains.
    let epochs_csv = work.path().join("results/epochs.csv");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(work.path().join("results/runs.csv"))
        .map_or(0, |t| t.lines().count())
        < 1
        && !epochs_csv.exists()
    {
        assert!(started.elapsed().as_secs() < 60, "the sweep did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    widths_experiment(&work, "[[8], [128, 128], [16], [32], [48]]");
    let output = sweep.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("changed while the sweep ran"), "{stderr}");
    // Whatever was recorded is a point of the experiment as the sweep read it, with the
    // settings its name says.
    let rows = runs(&work, "results/runs.csv");
    assert!(rows.len() < 4, "{rows:?}");
    for row in &rows {
        assert!(
            planned.contains(&row["run_id"]),
            "{row:?} is no point it read"
        );
        let width = row["shape"]
            .trim_start_matches("784-")
            .trim_end_matches("-10");
        assert!(
            row["name"].ends_with(&width.replace('-', "x")) || row["name"].contains(width),
            "{} trained {}",
            row["name"],
            row["shape"]
        );
    }
    assert_models_match_rows(&work);
}
