//! The record survives every fault (README.md, "Results CSV"; RELIABILITY.md): a kill at any
//! instant of a commit, a partial last line, a full disk, an output that cannot be written, a
//! merge onto an existing file, retried failures, absurd inputs. Each test drives the real
//! binary on real files and checks the files, not only the exit code.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;

use common::{Workdir, csv_rows, repo, tiny_config};

/// `harness ARGS` with `HARNESS_FAILPOINT` set.
fn harness_failing_at(work: &Workdir, point: &str, args: &[&str]) -> std::process::Output {
    let mut command = work.command(args);
    command.env("HARNESS_FAILPOINT", point);
    work.run(args, command).output
}

/// Every line of a results file is whole, and the file ends in a newline.
fn assert_whole(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.ends_with('\n'),
        "{} ends in a partial line",
        path.display()
    );
    let fields = text.lines().next().unwrap().split(',').count();
    for row in csv_rows(path) {
        assert_eq!(row.len(), fields, "{row:?}");
    }
}

/// Each run row with `epochs` epoch rows of its attempt, and no epoch row without its run row.
fn assert_consistent(work: &Workdir, runs: usize, epochs_per_run: usize) {
    let (runs_csv, epochs_csv) = (
        work.path().join("results/runs.csv"),
        work.path().join("results/epochs.csv"),
    );
    assert_whole(&runs_csv);
    assert_whole(&epochs_csv);
    let rows = csv_rows(&runs_csv);
    assert_eq!(rows.len(), runs, "{rows:?}");
    let mut per_attempt: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for epoch in csv_rows(&epochs_csv) {
        per_attempt
            .entry(epoch["attempt"].clone())
            .or_default()
            .push(epoch["epoch"].clone());
    }
    let attempts: BTreeSet<String> = rows.iter().map(|r| r["attempt"].clone()).collect();
    assert_eq!(
        per_attempt.keys().cloned().collect::<BTreeSet<_>>(),
        attempts,
        "epoch rows without their run row, or run rows without their epochs"
    );
    for (attempt, epochs) in per_attempt {
        let expected: Vec<String> = (1..=epochs_per_run).map(|e| e.to_string()).collect();
        assert_eq!(epochs, expected, "attempt {attempt}");
    }
    assert!(
        !journal(work).exists(),
        "a journal was left behind after a command finished"
    );
}

fn journal(work: &Workdir) -> std::path::PathBuf {
    work.path().join("results/runs.csv.journal")
}

#[test]
fn a_kill_at_any_instant_of_a_commit_leaves_the_run_whole_once() {
    for point in ["journal", "epochs-half", "epochs", "runs"] {
        let work = Workdir::new();
        let config = tiny_config(&work);
        let killed = harness_failing_at(&work, point, &["run", &config, "--quiet"]);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(killed.status.signal(), Some(9), "{point}: {killed:?}");
        assert!(
            journal(&work).exists(),
            "{point}: no journal after the kill"
        );
        // Any command that opens the file finishes the commit: here, a report.
        let report = work.harness(&["report", "results/runs.csv"]);
        report
            .expect_code(0)
            .expect_stderr(&["finished a commit", "interrupted process"]);
        assert_consistent(&work, 1, 2);
        // And the next run appends after it, whole.
        work.harness(&["run", &config, "--quiet"]).expect_code(0);
        assert_consistent(&work, 2, 2);
    }
}

#[test]
fn a_sweep_killed_in_every_save_window_resumes_to_one_row_per_point() {
    // Every worker kills itself mid-commit; the sweep records what the journals hold and the
    // rerun runs nothing twice: a soak of 4 points x 3 failpoints, deterministic.
    for point in ["journal", "epochs-half", "runs"] {
        let work = Workdir::new();
        tiny_config(&work);
        work.write(
            "e.toml",
            "base = \"tiny.toml\"\n[grid]\nseed = [1, 2, 3, 4]\n",
        );
        let sweep = harness_failing_at(&work, point, &["sweep", "e.toml", "--jobs", "2"]);
        let stdout = String::from_utf8_lossy(&sweep.stdout).into_owned();
        assert!(stdout.contains("4 ok"), "{point}: {stdout}");
        let rerun = work.harness(&["sweep", "e.toml"]);
        rerun.expect_code(0).expect_stdout(&["4 skipped"]);
        assert_consistent(&work, 4, 2);
    }
}

#[test]
fn an_append_to_a_file_cut_short_moves_the_partial_line_aside() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    work.harness(&["run", &config, "--quiet"]).expect_code(0);
    let runs = work.path().join("results/runs.csv");
    let text = std::fs::read_to_string(&runs).unwrap();
    std::fs::write(&runs, &text[..text.len() - 60]).unwrap();
    let run = work.harness(&["run", &config, "--quiet"]);
    run.expect_code(0)
        .expect_stderr(&["ended in a partial line", "moved it to"]);
    // The cut row went aside whole; the new row is on a line of its own.
    let aside: Vec<_> = std::fs::read_dir(work.path().join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("runs.csv.partial-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&aside[0]).unwrap(),
        text[..text.len() - 60].lines().last().unwrap()
    );
    assert_whole(&runs);
    assert_eq!(csv_rows(&runs).len(), 1);
    work.harness(&["report", "results/runs.csv"]).expect_code(0);
}

#[test]
fn a_full_disk_while_committing_records_nothing_and_prints_the_row() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    work.harness(&["run", &config, "--quiet"]).expect_code(0);
    let before: Vec<Vec<u8>> = ["results/runs.csv", "results/epochs.csv"]
        .iter()
        .map(|f| std::fs::read(work.path().join(f)).unwrap())
        .collect();
    let failed = harness_failing_at(&work, "epochs-enospc", &["run", &config, "--quiet"]);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("nothing was recorded"), "{stderr}");
    assert!(stderr.contains("here it is (runs.csv format)"), "{stderr}");
    assert!(stderr.contains("run_id,attempt,"), "{stderr}");
    let after: Vec<Vec<u8>> = ["results/runs.csv", "results/epochs.csv"]
        .iter()
        .map(|f| std::fs::read(work.path().join(f)).unwrap())
        .collect();
    assert_eq!(before, after, "the files changed");
    assert!(!journal(&work).exists());
}

#[test]
fn outputs_that_cannot_be_written_stop_the_run_before_training() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    std::fs::create_dir(work.path().join("a_folder.csv")).unwrap();
    for (set, needle) in [
        (
            "output.runs=/proc/runs.csv",
            "output.runs /proc/runs.csv cannot be created",
        ),
        ("output.models=/sys/models", "output.models /sys/models"),
        ("output.runs=/dev/full", "/dev/full is not a regular file"),
        ("output.epochs=a_folder.csv", "a_folder.csv is a directory"),
    ] {
        let run = work.harness(&["run", &config, "--set", set]);
        run.expect_code(2).expect_stderr(&[needle]);
        assert!(
            !run.stderr().contains("epoch "),
            "trained first: {}",
            run.describe()
        );
    }
}

#[test]
fn merging_onto_an_existing_file_keeps_its_rows() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    for seed in 1..=2 {
        let runs = format!("output.runs=runs-{seed}.csv");
        let set_seed = format!("seed={seed}");
        work.harness(&[
            "run", &config, "--quiet", "--set", &runs, "--set", &set_seed,
        ])
        .expect_code(0);
    }
    work.harness(&["merge", "runs-1.csv", "-o", "all.csv"])
        .expect_code(0);
    // The README's command, with all.csv not among the inputs: merged into, not replaced.
    let merged = work.harness(&["merge", "runs-2.csv", "-o", "all.csv"]);
    merged.expect_code(0).expect_stdout(&[
        "1 new row from 1 input file merged into its existing rows, 2 rows in all",
    ]);
    assert_eq!(csv_rows(&work.path().join("all.csv")).len(), 2);
    // Merging the same shards again changes nothing, and says so (not "2 rows merged").
    work.harness(&["merge", "runs-1.csv", "runs-2.csv", "-o", "all.csv"])
        .expect_code(0)
        .expect_stdout(&[
            "0 new rows from 2 input files",
            "2 rows in all",
            "(2 rows of the inputs were there already)",
        ]);
    assert_eq!(csv_rows(&work.path().join("all.csv")).len(), 2);
}

#[test]
fn a_failed_row_and_its_retry_merge_and_count_once() {
    let work = Workdir::new();
    tiny_config(&work);
    work.write(
        "e.toml",
        "base = \"tiny.toml\"\n[grid]\nbackend = [\"flex\", \"wgpu\"]\n",
    );
    let no_gpu = |args: &[&str]| work.harness_without_gpu(args).output;
    let shard = ["--set", "output.runs=runs-1.csv"];
    let first = no_gpu(&[&["sweep", "e.toml"], &shard[..]].concat());
    assert_eq!(first.status.code(), Some(1));
    // The failed row leaves its metrics missing, not zero.
    let rows = csv_rows(&work.path().join("runs-1.csv"));
    let failed = rows.iter().find(|r| r["status"] == "failed").unwrap();
    assert_eq!(failed["test_accuracy"], "NaN", "{failed:?}");
    assert_eq!(failed["train_loss"], "NaN", "{failed:?}");
    // A retry that fails again appends a second failed row: two rows of one run_id.
    no_gpu(&[&["sweep", "e.toml", "--retry-failed"], &shard[..]].concat());
    assert_eq!(csv_rows(&work.path().join("runs-1.csv")).len(), 3);
    let merged = work.harness(&["merge", "runs-1.csv", "-o", "runs.csv"]);
    merged.expect_code(0);
    let report = work.harness(&["report", "runs.csv"]);
    report
        .expect_code(0)
        .expect_stdout(&["1 diverged or failed runs left out", "1 earlier attempts"]);
    let dry = work.harness(&[
        "sweep",
        "e.toml",
        "--dry-run",
        "--set",
        "output.runs=runs.csv",
    ]);
    // Failed is done until --retry-failed; the run counts once.
    dry.expect_code(0)
        .expect_stdout(&["tiny_wgpu  failed", "2 points, 0 to run, 2 done"]);
}

#[test]
fn a_shard_with_a_failed_row_and_its_ok_retry_merges_and_the_ok_row_stands() {
    let work = Workdir::new();
    let data = repo().join("data/mnist");
    // The data folder is missing at first: the run fails; then it appears and the retry is ok.
    work.write(
        "e.toml",
        "[base]
data.dir = \"later\"\ndata.train_limit = 500\ndata.validation = 200\n\
         data.test_limit = 200\nmodel.hidden = [8]\ntrain.epochs = 1\n\
         output.save_model = false\n[grid]\nseed = [1, 2]\n",
    );
    let shard = [
        "--set",
        "output.runs=runs-1.csv",
        "--set",
        "output.epochs=epochs-1.csv",
    ];
    let first = work.harness(&[&["sweep", "e.toml"], &shard[..]].concat());
    first
        .expect_code(1)
        .expect_stdout(&["0 ok, 0 diverged, 2 failed"]);
    std::os::unix::fs::symlink(&data, work.path().join("later")).unwrap();
    work.harness(&[&["sweep", "e.toml", "--retry-failed"], &shard[..]].concat())
        .expect_code(0)
        .expect_stdout(&["2 ok, 0 diverged, 0 failed"]);
    let rows = csv_rows(&work.path().join("runs-1.csv"));
    assert_eq!(rows.len(), 4, "two failed rows, then two ok rows");
    // The file merges (it did not: "different results in runs-1.csv and runs-1.csv").
    work.harness(&["merge", "runs-1.csv", "-o", "runs.csv"])
        .expect_code(0);
    work.harness(&["merge", "epochs-1.csv", "-o", "epochs.csv"])
        .expect_code(0);
    let report = work.harness(&["report", "runs.csv"]);
    report
        .expect_code(0)
        .expect_stdout(&["| 2 |", "2 earlier attempts"]);
    assert!(
        !report.stdout().contains("failed runs left out"),
        "{}",
        report.describe()
    );
    // Resume sees both points done; the epochs of the ok attempts are there.
    work.harness(&[
        "sweep",
        "e.toml",
        "--dry-run",
        "--set",
        "output.runs=runs.csv",
    ])
    .expect_code(0)
    .expect_stdout(&["2 points, 0 to run, 2 done"]);
    assert_eq!(csv_rows(&work.path().join("epochs.csv")).len(), 2);
}

#[test]
fn absurd_inputs_are_refused_up_front_with_a_reason() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    for (set, needles) in [
        (
            "model.hidden=[9000000]",
            &["needs about", "GiB", "available"][..],
        ),
        (
            "model.hidden=[100000000]",
            &["widths go from 1 to 10000000"][..],
        ),
        (
            "train.epochs=4294967298",
            &[
                "train.epochs: 4294967298 is not allowed",
                "from 1 to 100000",
            ][..],
        ),
        (
            "train.step_epochs=4294967297",
            &["train.step_epochs: 4294967297 is not allowed"][..],
        ),
        (
            "data.train_limit=59801",
            &["there are 59800 images to take", "data.validation = 200"][..],
        ),
        (
            "data.test_limit=10001",
            &["there are 10000 images to take"][..],
        ),
        (
            "seed=18446744073709551615",
            &["out of range", "9223372036854775807"][..],
        ),
        ("seed=-1", &["a seed is a whole number from 0"][..]),
        (
            "train.batch_size=100000000",
            &["batch_size = 100000000 is more than the 500 training images"][..],
        ),
        ("name=\"16\"", &["would read as a number", "run_16"][..]),
        (
            "data.validation=60000",
            &["must be a whole number from 0 to 59999"][..],
        ),
    ] {
        let run = work.harness(&["run", &config, "--set", set]);
        run.expect_code(2).expect_stderr(needles);
        assert!(!work.path().join("results/runs.csv").exists(), "{set}");
    }
    // A runs file that is a directory is a usage error, not a failure.
    std::fs::create_dir_all(work.path().join("results/runs.csv")).unwrap();
    work.harness(&["report", "results/runs.csv"])
        .expect_code(2)
        .expect_stderr(&["is a directory"]);
}

#[test]
fn a_closed_pipe_ends_harness_quietly() {
    let work = Workdir::new();
    let experiment = repo().join("experiments/ci.toml");
    let mut child = work
        .command(&["sweep", experiment.to_str().unwrap(), "--dry-run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then hang up, as `| head -1` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_huge_image_is_refused_before_it_is_decoded() {
    let work = Workdir::new();
    // 5000 x 5000 pixels of black with one white square: a small file, 25 megapixels.
    let mut image = image::GrayImage::new(5000, 5000);
    for x in 2000..3000 {
        for y in 2000..3000 {
            image.put_pixel(x, y, image::Luma([255]));
        }
    }
    image.save(work.path().join("huge.png")).unwrap();
    let config = tiny_config(&work);
    work.harness(&["run", &config, "--quiet"]).expect_code(0);
    let run_id = csv_rows(&work.path().join("results/runs.csv"))[0]["run_id"].clone();
    work.harness(&["predict", &run_id, "huge.png"])
        .expect_code(2)
        .expect_stderr(&["huge.png is 5000x5000 pixels", "16 megapixels"]);
}

#[test]
fn every_shipped_experiment_parses() {
    let work = Workdir::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(repo().join("experiments")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let run = work.harness(&[
                "sweep",
                path.to_str().unwrap(),
                "--dry-run",
                "--set",
                "output.runs=none.csv",
            ]);
            run.expect_code(0).expect_stdout(&["to run"]);
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked} experiments");
}

/// Readers need no write permission: a runs file on a read-only filesystem is reported and
/// plotted. Needs root to mount one (CI runs as root); elsewhere it says why it skips.
#[test]
fn results_on_a_read_only_filesystem_can_be_read() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    work.harness(&["run", &config, "--quiet"]).expect_code(0);
    let mount = work.path().join("ro");
    std::fs::create_dir(&mount).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
    };
    let mounted = run(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=4m",
        "tmpfs",
        mount.to_str().unwrap(),
    ]);
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    }
    for file in ["runs.csv", "epochs.csv"] {
        std::fs::copy(work.path().join("results").join(file), mount.join(file)).unwrap();
    }
    let remounted = run(&["mount", "-o", "remount,ro", mount.to_str().unwrap()]);
    assert!(remounted.is_ok_and(|s| s.success()));
    let report = work.harness(&["report", "ro/runs.csv"]);
    let plot = work.harness(&["plot", "ro/runs.csv", "-o", "plots"]);
    let _ = run(&["umount", mount.to_str().unwrap()]);
    report.expect_code(0).expect_stdout(&["1 ok runs"]);
    plot.expect_code(0);
}

/// Regression: two runs files shared one epochs file; recovering one's interrupted commit cut
/// the epochs file back and deleted the other's epoch rows. Recovery now only adds.
#[test]
fn recovery_never_removes_rows_another_writer_appended() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    let a = ["--set", "output.runs=results/runs-a.csv"];
    let b = ["--set", "output.runs=results/runs-b.csv", "--set", "seed=9"];
    work.harness(&[&["run", &config, "--quiet"], &a[..]].concat())
        .expect_code(0);
    let killed = harness_failing_at(
        &work,
        "journal",
        &[&["run", &config, "--quiet", "--set", "seed=2"], &a[..]].concat(),
    );
    assert!(!killed.status.success());
    work.harness(&[&["run", &config, "--quiet"], &b[..]].concat())
        .expect_code(0);
    work.harness(&["report", "results/runs-a.csv"])
        .expect_code(0)
        .expect_stderr(&["finished a commit"]);
    let epochs = csv_rows(&work.path().join("results/epochs.csv"));
    for runs in ["results/runs-a.csv", "results/runs-b.csv"] {
        for run in csv_rows(&work.path().join(runs)) {
            let mine = epochs
                .iter()
                .filter(|e| e["attempt"] == run["attempt"])
                .count();
            assert_eq!(mine, 2, "{runs}: {run:?}");
        }
    }
    assert_eq!(epochs.len(), 6);
}

/// Regression: a runs file reached through a symbolic link kept its journal under the link's
/// name, where a writer using the real name did not see it; the later recovery deleted a run.
#[test]
fn a_runs_file_reached_by_another_name_loses_no_run() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    work.harness(&["run", &config, "--quiet"]).expect_code(0);
    std::os::unix::fs::symlink("results/runs.csv", work.path().join("link.csv")).unwrap();
    harness_failing_at(
        &work,
        "journal",
        &[
            "run",
            &config,
            "--quiet",
            "--set",
            "seed=2",
            "--set",
            "output.runs=link.csv",
        ],
    );
    // Through the real name: the journal is found and finished first.
    work.harness(&["run", &config, "--quiet", "--set", "seed=3"])
        .expect_code(0)
        .expect_stderr(&["finished a commit"]);
    work.harness(&["report", "link.csv"]).expect_code(0);
    assert_eq!(csv_rows(&work.path().join("results/runs.csv")).len(), 3);
    assert_consistent(&work, 3, 2);
}

/// Regression: the journal named files relative to the folder the dead process ran in.
#[test]
fn an_interrupted_commit_is_finished_from_another_folder() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    work.harness(&["run", &config, "--quiet"]).expect_code(0);
    harness_failing_at(
        &work,
        "journal",
        &["run", &config, "--quiet", "--set", "seed=2"],
    );
    std::fs::create_dir(work.path().join("elsewhere")).unwrap();
    let args = ["report", "../results/runs.csv"];
    let mut command = work.command(&args);
    command.current_dir(work.path().join("elsewhere"));
    work.run(&args, command)
        .expect_code(0)
        .expect_stderr(&["finished a commit"]);
    assert_consistent(&work, 2, 2);
}

/// Regression: output.epochs naming the runs file under another spelling trained, then hung.
#[test]
fn one_file_named_twice_is_refused_before_training() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    for set in [
        "output.epochs=./results/runs.csv",
        "output.epochs=results/../results/runs.csv",
    ] {
        let run = work.harness(&["run", &config, "--set", set]);
        run.expect_code(2)
            .expect_stderr(&["is also output.epochs", "are one file"]);
        assert!(!run.stderr().contains("epoch "), "{}", run.describe());
    }
    // Regression: a hard link of the runs file as the epochs file trained, then waited for
    // ever on its second lock of the same inode.
    std::fs::write(work.path().join("r.csv"), "").unwrap();
    std::fs::hard_link(work.path().join("r.csv"), work.path().join("e.csv")).unwrap();
    let run = work.harness(&[
        "run",
        &config,
        "--set",
        "output.runs=r.csv",
        "--set",
        "output.epochs=e.csv",
    ]);
    run.expect_code(2)
        .expect_stderr(&["output.runs r.csv is also output.epochs", "a link"]);
    assert!(!run.stderr().contains("epoch "), "{}", run.describe());
    for set in ["output.runs=", "output.epochs=", "output.models="] {
        work.harness(&["run", &config, "--set", set])
            .expect_code(2)
            .expect_stderr(&["must not be empty"]);
    }
}

/// Regression: merging an empty file (which a full disk can leave) was an internal error; an
/// epochs merge after an interrupted commit loses nothing either.
#[test]
fn empty_and_cut_files_merge_and_append_cleanly() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    work.write("empty.csv", "");
    work.harness(&["merge", "empty.csv", "-o", "out.csv"])
        .expect_code(2)
        .expect_stderr(&["nothing to merge"]);
    // A runs file cut inside its header: the next run starts it again.
    std::fs::create_dir_all(work.path().join("results")).unwrap();
    work.write("results/runs.csv", "run_id,att");
    work.harness(&["run", &config, "--quiet"])
        .expect_code(0)
        .expect_stderr(&["held only the start of its header"]);
    work.harness(&["merge", "empty.csv", "results/runs.csv", "-o", "out.csv"])
        .expect_code(0);
    // An epochs merge over an interrupted commit, then any command: nothing lost.
    harness_failing_at(
        &work,
        "epochs",
        &["run", &config, "--quiet", "--set", "seed=2"],
    );
    work.harness(&["merge", "results/epochs.csv", "-o", "results/epochs.csv"])
        .expect_code(0);
    work.harness(&["report", "results/runs.csv"]).expect_code(0);
    assert_consistent(&work, 2, 2);
}

/// Regression: a full stdout was reported as a bug in harness.
#[test]
fn a_full_stdout_is_an_error_not_a_bug() {
    let work = Workdir::new();
    let config = repo().join("configs/logistic.toml");
    let args = ["check", config.to_str().unwrap()];
    let mut command = work.command(&args);
    command.stdout(std::fs::File::create("/dev/full").unwrap());
    let run = work.run(&args, command);
    run.expect_code(1)
        .expect_stderr(&["cannot write harness's output to stdout"]);
    assert!(
        !run.stderr().contains("internal error"),
        "{}",
        run.describe()
    );
}

/// A model that cannot be saved after training leaves the row, says where the model could not
/// go, and exits 1; the metrics are not lost.
#[test]
fn a_model_that_cannot_be_saved_keeps_its_row() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    // The disk fills as the model is saved.
    let mut command = work.command(&["run", &config, "--set", "output.save_model=true"]);
    command.env("HARNESS_FAILPOINT", "model-enospc");
    let run = work.run(&["run", &config], command);
    run.expect_code(1)
        .expect_stderr(&["the model could not be saved to", "No space left on device"]);
    let rows = csv_rows(&work.path().join("results/runs.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "ok");
    assert!(
        rows[0]["error"].starts_with("the model was not saved"),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[0]["model_sha256"], "none");
    assert_ne!(rows[0]["test_accuracy"], "NaN");
    assert_consistent(&work, 1, 2);
}

/// Regression: in a sweep, a point whose model could not be saved was reported `ok` and the
/// sweep exited 0 (even with --strict); it now exits 1 naming the point, as `run` does.
#[test]
fn a_sweep_whose_model_cannot_be_saved_exits_1_naming_the_point() {
    let work = Workdir::new();
    work.write(
        "two.toml",
        &format!(
            "[base]\ndata.dir = \"{}\"\ndata.train_limit = 500\ndata.test_limit = 200\n\
             data.validation = 200\nmodel.hidden = [8]\nmodel.activation = \"relu\"\n\
             model.output = \"softmax\"\ntrain.epochs = 1\ntrain.loss = \"cross_entropy\"\n\
             train.optimizer = \"adam\"\ntrain.learning_rate = 0.01\n[grid]\nseed = [1, 2]\n",
            repo().join("data/mnist").display()
        ),
    );
    let mut command = work.command(&["sweep", "two.toml"]);
    command.env("HARNESS_FAILPOINT", "model-enospc");
    let run = work.run(&["sweep", "two.toml"], command);
    run.expect_code(1)
        .expect_stdout(&["but its model was not saved", "No space left on device"]);
    assert_eq!(csv_rows(&work.path().join("results/runs.csv")).len(), 2);
}

/// Regression: `upgrade exp.runs exp.epochs` kept both originals as `exp.format1.csv`, the
/// second over the first, and lost the runs file.
#[test]
fn an_upgrade_whose_files_would_share_a_backup_name_is_refused_untouched() {
    let work = Workdir::new();
    let runs = "run_id,started_at,name,config,dataset,backend,device,hidden,activation,output,\
                init,loss,optimizer,learning_rate,momentum,weight_decay,batch_size,epochs,seed,\
                train_size,test_size,params,train_loss,train_accuracy,test_loss,test_accuracy,\
                train_seconds,eval_seconds,total_seconds,samples_per_second,status,error,\
                harness_version\n\
                0123abcd,2026-01-01T00:00:00Z,n,configs/x.toml,mnist,flex,cpu,16,relu,softmax,\
                default,cross_entropy,adam,0.001,0.0,0.0,64,2,1,1000,100,12730,0.5,0.8,0.6,0.9,\
                1.0,0.1,1.5,2000.0,ok,,0.1.0\n";
    let epochs = "run_id,epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n\
                  0123abcd,1,0.7,0.6,0.8,0.7,0.5\n0123abcd,2,0.5,0.8,0.6,0.9,0.5\n";
    work.write("exp.runs", runs);
    work.write("exp.epochs", epochs);
    let run = work.harness(&["upgrade", "exp.runs", "exp.epochs"]);
    run.expect_code(2).expect_stderr(&["exp.format1.csv"]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("exp.runs")).unwrap(),
        runs
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("exp.epochs")).unwrap(),
        epochs
    );
    assert!(!work.path().join("exp.format1.csv").exists());
    // The same files under names of their own convert together.
    std::fs::rename(work.path().join("exp.runs"), work.path().join("runs.csv")).unwrap();
    std::fs::rename(
        work.path().join("exp.epochs"),
        work.path().join("epochs.csv"),
    )
    .unwrap();
    work.harness(&["upgrade", "runs.csv"]).expect_code(0);
    assert!(work.path().join("runs.format1.csv").is_file());
    assert!(work.path().join("epochs.format1.csv").is_file());
    assert_eq!(csv_rows(&work.path().join("runs.csv")).len(), 1);
    assert_eq!(csv_rows(&work.path().join("epochs.csv")).len(), 2);
}
