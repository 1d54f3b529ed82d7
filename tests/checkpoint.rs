//! A run's training state outlives its process (README "How a run is recorded", RELIABILITY.md):
//! a run killed before, during or after a checkpoint's write, at any epoch, resumes to the rows
//! an uninterrupted run records, bit for bit but for timings and attempt; a halving sweep that
//! continues its survivors records what the same sweep trained from epoch 0 records; a bad
//! checkpoint is set aside and never used; a checkpoint that cannot be written costs nothing
//! but the insurance. Every test runs the real binary on real MNIST files.

mod common;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::{Workdir, csv_rows, repo};

/// Columns that differ between two runs of the same settings: which attempt, when, how long.
const VARYING: [&str; 6] = [
    "attempt",
    "started_at",
    "train_seconds",
    "eval_seconds",
    "total_seconds",
    "samples_per_second",
];

/// A config of a few hundred images and `epochs` epochs, with `extra` lines in [train].
fn config(work: &Workdir, name: &str, model: &str, train: &str, data: &str) -> String {
    work.write(
        &format!("{name}.toml"),
        &format!(
            "name = \"{name}\"\nseed = 5\n[data]\ndir = \"{}\"\ntrain_limit = 700\n\
             test_limit = 300\nvalidation = 200\n{data}\n[model]\nhidden = [12]\n{model}\n\
             [train]\nbatch_size = 25\n{train}\n",
            repo().join("data/mnist").display()
        ),
    );
    format!("{name}.toml")
}

/// The settings the tests resume: SGD with momentum, Adam with weight decay on a cosine with
/// warm-up, dropout with augmentation, and early stopping (which ends at epoch 3 of 6).
fn cases(work: &Workdir) -> Vec<(&'static str, String)> {
    vec![
        (
            "sgd_momentum",
            config(
                work,
                "sgd_momentum",
                "activation = \"sigmoid\"",
                "epochs = 5\noptimizer = \"sgd\"\nlearning_rate = 0.5\nmomentum = 0.9\n\
                 weight_decay = 1e-4\nschedule = \"step\"\nstep_epochs = 2\nstep_factor = 0.5",
                "",
            ),
        ),
        (
            "adam_cosine",
            config(
                work,
                "adam_cosine",
                "activation = \"relu\"\noutput = \"softmax\"",
                "epochs = 5\nloss = \"cross_entropy\"\noptimizer = \"adam\"\nlearning_rate = 0.01\n\
                 weight_decay = 1e-4\nschedule = \"cosine\"\nwarmup_epochs = 1.5\nkeep = \"best\"",
                "",
            ),
        ),
        (
            "dropout_augment",
            config(
                work,
                "dropout_augment",
                "activation = \"relu\"\noutput = \"softmax\"\ndropout = 0.3",
                "epochs = 5\nloss = \"cross_entropy\"\noptimizer = \"adam\"\nlearning_rate = 0.01",
                "augment_shift = 2\naugment_rotate = 10.0",
            ),
        ),
        (
            "early_stopping",
            config(
                work,
                "early_stopping",
                "activation = \"relu\"\noutput = \"softmax\"",
                "epochs = 6\nloss = \"cross_entropy\"\noptimizer = \"adam\"\nlearning_rate = 0.01\n\
                 patience = 2\nmin_delta = 0.5",
                "",
            ),
        ),
    ]
}

/// The backends a resume must be exact on: flex, and ndarray where it is built.
fn backends() -> &'static [&'static str] {
    if cfg!(feature = "ndarray") {
        &["flex", "ndarray"]
    } else {
        &["flex"]
    }
}

/// A run row and its epoch rows.
type Record = (HashMap<String, String>, Vec<HashMap<String, String>>);

/// The run row and epoch rows of a results folder, without the columns that vary.
fn record(work: &Workdir) -> Record {
    let mut runs = csv_rows(&work.path().join("results/runs.csv"));
    assert_eq!(runs.len(), 1, "one row: {runs:?}");
    let mut run = runs.remove(0);
    for column in VARYING {
        run.remove(column);
    }
    let epochs = csv_rows(&work.path().join("results/epochs.csv"))
        .into_iter()
        .map(|mut row| {
            for column in ["attempt", "train_seconds", "eval_seconds"] {
                row.remove(column);
            }
            row
        })
        .collect();
    (run, epochs)
}

fn checkpoints(work: &Workdir) -> Vec<PathBuf> {
    let dir = work.path().join("results/.checkpoints");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The config of case `name` (of [`cases`]), written into `work`.
fn case(work: &Workdir, name: &str) -> String {
    cases(work)
        .into_iter()
        .find(|(c, _)| *c == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .1
}

/// The rows an uninterrupted run of case `name` on `backend` records, in a folder of its own.
fn uninterrupted(name: &str, backend: &str) -> Record {
    let reference = Workdir::new();
    let config = case(&reference, name);
    reference
        .harness(&run_args(&config, backend))
        .expect_code(0);
    record(&reference)
}

fn run_args<'a>(config: &'a str, backend: &'a str) -> Vec<&'a str> {
    vec!["run", config, "--backend", backend]
}

/// `harness run` killed by the failpoint `point`.
fn killed_at(work: &Workdir, point: &str, args: &[&str]) {
    let mut command = work.command(args);
    command.env("HARNESS_FAILPOINT", point);
    let killed = work.run(args, command);
    assert_eq!(
        killed.output.status.signal(),
        Some(9),
        "{point}: not killed\n{}",
        killed.describe()
    );
}

#[test]
fn a_run_killed_before_during_or_after_a_checkpoint_resumes_to_the_uninterrupted_rows() {
    let scratch = Workdir::new();
    for &backend in backends() {
        for (name, _) in cases(&scratch) {
            let reference = Workdir::new();
            let config = case(&reference, name);
            let args = run_args(&config, backend);
            reference.harness(&args).expect_code(0);
            assert!(
                checkpoints(&reference).is_empty(),
                "{name}: a committed run leaves no checkpoint: {:?}",
                checkpoints(&reference)
            );
            let expected = record(&reference);
            let last = if name == "early_stopping" { 3 } else { 5 };
            assert_eq!(expected.1.len(), last, "{name}: {:?}", expected.0);
            // Before epoch 1's checkpoint (nothing to resume), during epoch 2's, after epoch
            // 3's, and after the last one (killed before the commit).
            for point in [
                "checkpoint-before@1".to_string(),
                "checkpoint-half@2".to_string(),
                "checkpoint-after@3".to_string(),
                format!("checkpoint-after@{last}"),
            ] {
                let work = Workdir::new();
                let config = case(&work, name);
                let args = run_args(&config, backend);
                killed_at(&work, &point, &args);
                assert!(
                    !work.path().join("results/runs.csv").exists()
                        || csv_rows(&work.path().join("results/runs.csv")).is_empty(),
                    "{name} {point}: a killed run recorded a row"
                );
                let resumed = work.harness(&args);
                resumed.expect_code(0);
                let after = point.rsplit('@').next().unwrap().parse::<usize>().unwrap();
                let from = if point.starts_with("checkpoint-after") {
                    after
                } else {
                    after - 1
                };
                if from > 0 {
                    resumed.expect_stderr(&["resuming run", &format!("after epoch {from} of")]);
                    resumed.expect_stdout(&[&format!("resumed after epoch {from}")]);
                } else {
                    assert!(
                        !resumed.stderr().contains("resuming"),
                        "{name} {point}: resumed from nothing\n{}",
                        resumed.describe()
                    );
                }
                assert_eq!(
                    record(&work),
                    expected,
                    "{name} on {backend}, killed at {point}: the rows differ from an \
                     uninterrupted run's\n{}",
                    resumed.describe()
                );
                assert!(
                    checkpoints(&work).is_empty(),
                    "{name} {point}: checkpoints left after the commit: {:?}",
                    checkpoints(&work)
                );
            }
        }
    }
}

/// A run long enough to be killed in the middle: 12 epochs of 8,000 images at batch 10.
fn long_config(work: &Workdir) -> String {
    work.write(
        "long.toml",
        &format!(
            "name = \"long\"\nseed = 5\n[data]\ndir = \"{}\"\ntrain_limit = 8200\n\
             test_limit = 300\nvalidation = 200\naugment_shift = 1\n[model]\nhidden = [32]\n\
             activation = \"relu\"\noutput = \"softmax\"\ndropout = 0.1\n[train]\nepochs = 12\n\
             batch_size = 10\nloss = \"cross_entropy\"\noptimizer = \"sgd\"\n\
             learning_rate = 0.05\nmomentum = 0.5\n",
            repo().join("data/mnist").display()
        ),
    );
    "long.toml".to_string()
}

/// Starts `args`, waits for the checkpoint file to change (a new epoch's), waits `after` more
/// (into the next epoch, or a write), and kills it with SIGKILL. Fails if the run ended first.
fn kill_after_a_checkpoint(work: &Workdir, args: &[&str], after: std::time::Duration) {
    use std::time::{Duration, Instant};
    let checkpoint = || {
        checkpoints(work)
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "ckpt"))
            .and_then(|p| std::fs::read(p).ok())
    };
    let before = checkpoint();
    let mut child = work
        .command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while checkpoint() == before {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no new checkpoint in 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(after);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be killed: make it longer"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_run_killed_at_arbitrary_instants_resumes_to_the_uninterrupted_rows() {
    let reference = Workdir::new();
    let config = long_config(&reference);
    reference
        .harness(&["run", &config, "--backend", "flex"])
        .expect_code(0);
    let expected = record(&reference);
    let work = Workdir::new();
    let config = long_config(&work);
    let args = ["run", config.as_str(), "--backend", "flex", "--quiet"];
    // Three kills at instants the test does not choose: a few milliseconds after a checkpoint,
    // somewhere in the next epoch.
    for delay in [3, 41, 17] {
        kill_after_a_checkpoint(&work, &args, std::time::Duration::from_millis(delay));
        assert!(!work.path().join("results/runs.csv").exists());
    }
    let resumed = work.harness(&["run", &config, "--backend", "flex"]);
    resumed.expect_code(0).expect_stderr(&["resuming run"]);
    assert_eq!(
        record(&work),
        expected,
        "killed three times: the rows differ from an uninterrupted run's\n{}",
        resumed.describe()
    );
}

/// A checkpoint of the `adam_cosine` case after epoch 2 of 5, with its path.
fn checkpoint_after_two(work: &Workdir) -> (String, PathBuf, Vec<u8>) {
    let config = cases(work)
        .into_iter()
        .find(|(c, _)| *c == "adam_cosine")
        .unwrap()
        .1;
    killed_at(work, "checkpoint-after@2", &run_args(&config, "flex"));
    let files = checkpoints(work);
    assert_eq!(files.len(), 1, "{files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    (config, files[0].clone(), bytes)
}

/// The header of a checkpoint as JSON, and the bytes after it.
fn split(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[16..16 + len]).unwrap();
    (header, bytes[16 + len..bytes.len() - 32].to_vec())
}

/// A checkpoint with `header` and `sections`, its checksum made right: a forgery only the
/// checks of its contents can catch.
fn forge(header: &serde_json::Value, sections: &[u8], format: u32) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let header = serde_json::to_vec(header).unwrap();
    let mut bytes = b"HRNSCKPT".to_vec();
    bytes.extend_from_slice(&format.to_le_bytes());
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(sections);
    let digest = Sha256::digest(&bytes);
    bytes.extend_from_slice(&digest);
    bytes
}

#[test]
fn a_bad_checkpoint_is_set_aside_and_the_run_starts_from_epoch_0() {
    let expected = uninterrupted("adam_cosine", "flex");

    // Another run's checkpoint (another seed), for the foreign case.
    let other = Workdir::new();
    let other_config = case(&other, "adam_cosine");
    killed_at(
        &other,
        "checkpoint-after@2",
        &["run", &other_config, "--set", "seed=6"],
    );
    let foreign = std::fs::read(&checkpoints(&other)[0]).unwrap();

    let (_, _, good) = checkpoint_after_two(&Workdir::new());
    let (header, sections) = split(&good);
    let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut header = header.clone();
        edit(&mut header);
        forge(&header, &sections, 1)
    };
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "SHA-256 does not match",
        ),
        ("a flipped byte", flipped, "SHA-256 does not match"),
        ("empty", Vec::new(), "shorter than a checkpoint's header"),
        (
            "text",
            b"not a checkpoint at all\n".repeat(10),
            "not a harness checkpoint",
        ),
        ("another run's", foreign, "of another run"),
        (
            "format 2",
            forge(&header, &sections, 2),
            "checkpoint format 2",
        ),
        (
            "another network",
            edited(&|h| h["shape"] = "784-13-10".into()),
            "of another network",
        ),
        (
            "epochs that do not add up",
            edited(&|h| h["epoch"] = 3.into()),
            "holds 2 epochs' metrics",
        ),
        (
            "past the last epoch",
            edited(&|h| {
                h["epoch"] = 9.into();
                let rows = h["epochs"].as_array().unwrap().clone();
                let mut more = rows.clone();
                for e in 3..=9u64 {
                    let mut row = rows[0].clone();
                    row[0] = e.into();
                    more.push(row);
                }
                h["epochs"] = more.into();
            }),
            "past this run's last",
        ),
        (
            "a failed ending",
            edited(&|h| h["finished"] = serde_json::json!(["failed", "failed"])),
            "which its epochs do not show",
        ),
        (
            "early stopping with patience left",
            edited(&|h| h["finished"] = serde_json::json!(["ok", "early_stopping"])),
            "which its epochs do not show",
        ),
        (
            "a budget ending",
            edited(&|h| h["finished"] = serde_json::json!(["ok", "budget"])),
            "which its epochs do not show",
        ),
        (
            "a NaN metric in a run that had not ended",
            edited(&|h| h["epochs"][0][5] = f64::NAN.to_bits().into()),
            "is not finite, yet the run had not ended",
        ),
        (
            "another harness version",
            edited(&|h| h["harness_version"] = "0.0.1-evil".into()),
            "written by harness 0.0.1-evil",
        ),
        (
            "a kept epoch it does not have",
            edited(&|h| h["best"] = serde_json::json!([7, 0])),
            "is not one of its 2 epochs",
        ),
        (
            "sections that do not add up",
            edited(&|h| h["model_bytes"] = (h["model_bytes"].as_u64().unwrap() - 8).into()),
            "sections do not add up",
        ),
        (
            "optimizer state of other parameters",
            {
                // SGD's (empty) state where Adam's moments should be.
                let mut h = header.clone();
                let sgd_state = burn_pack_empty();
                h["optimizer_bytes"] = (sgd_state.len() as u64).into();
                let mut both = sections[..weights_end(&header)].to_vec();
                both.extend_from_slice(&sgd_state);
                forge(&h, &both, 1)
            },
            "optimizer state",
        ),
    ];
    for (what, bytes, reason) in cases {
        let work = Workdir::new();
        let (config, path, _) = checkpoint_after_two(&work);
        std::fs::write(&path, &bytes).unwrap();
        let run = work.harness(&run_args(&config, "flex"));
        run.expect_code(0)
            .expect_stderr(&["was not used and was set aside as", reason]);
        assert!(
            !run.stderr().contains("resuming"),
            "{what}: resumed\n{}",
            run.describe()
        );
        assert!(
            !run.stderr().contains("panicked"),
            "{what}: a panic\n{}",
            run.describe()
        );
        assert_eq!(
            record(&work),
            expected,
            "{what}: the run did not start over\n{}",
            run.describe()
        );
        let rejected = PathBuf::from(format!("{}.rejected", path.display()));
        assert_eq!(
            std::fs::read(&rejected).unwrap(),
            bytes,
            "{what}: not set aside as it was"
        );
    }
}

/// The bytes of an empty burnpack record, as an optimizer with no state writes it: a valid
/// record of the wrong optimizer.
fn burn_pack_empty() -> Vec<u8> {
    // Written by a run of plain SGD (no momentum), whose optimizer record holds no tensors.
    let work = Workdir::new();
    let config = config(
        &work,
        "plain",
        "activation = \"sigmoid\"",
        "epochs = 3\noptimizer = \"sgd\"\nlearning_rate = 1.0",
        "",
    );
    killed_at(&work, "checkpoint-after@1", &run_args(&config, "flex"));
    let bytes = std::fs::read(&checkpoints(&work)[0]).unwrap();
    let (header, sections) = split(&bytes);
    sections[weights_end(&header)..].to_vec()
}

/// Where a checkpoint's sections ([`split`]) pass from the weights to the optimizer's state.
fn weights_end(header: &serde_json::Value) -> usize {
    (header["model_bytes"].as_u64().unwrap() + header["best_bytes"].as_u64().unwrap()) as usize
}

#[test]
fn a_checkpoint_that_cannot_be_written_costs_only_the_insurance() {
    let expected = uninterrupted("sgd_momentum", "flex");

    let work = Workdir::new();
    let config = case(&work, "sgd_momentum");
    let args = run_args(&config, "flex");
    let mut command = work.command(&args);
    command.env("HARNESS_FAILPOINT", "checkpoint-enospc@3");
    let run = work.run(&args, command);
    run.expect_code(0).expect_stderr(&[
        "cannot write checkpoint",
        "No space left on device",
        "if it is killed now the run would resume after epoch 2, not after epoch 3",
    ]);
    assert_eq!(record(&work), expected, "{}", run.describe());
    assert!(checkpoints(&work).is_empty(), "{:?}", checkpoints(&work));
}

#[test]
fn restart_starts_over_and_off_writes_nothing() {
    let expected = uninterrupted("dropout_augment", "flex");

    let work = Workdir::new();
    let config = case(&work, "dropout_augment");
    let mut args = run_args(&config, "flex");
    killed_at(&work, "checkpoint-after@3", &args);
    args.push("--restart");
    let run = work.harness(&args);
    run.expect_code(0).expect_stderr(&[
        "removed checkpoint",
        "--restart: training starts from epoch 0",
    ]);
    assert!(!run.stderr().contains("resuming"), "{}", run.describe());
    assert_eq!(record(&work), expected);

    // output.checkpoints = "off": a killed run leaves nothing, and starts over.
    let work = Workdir::new();
    let config = case(&work, "dropout_augment");
    let args = [
        "run",
        config.as_str(),
        "--backend",
        "flex",
        "--set",
        "output.checkpoints=off",
    ];
    let mut command = work.command(&args);
    // The checkpoint failpoints are never reached without checkpoints: kill at the commit.
    command.env("HARNESS_FAILPOINT", "journal");
    work.run(&args, command);
    assert!(checkpoints(&work).is_empty(), "{:?}", checkpoints(&work));
    // "keep": kept after the commit, and said so.
    let work = Workdir::new();
    let config = case(&work, "dropout_augment");
    let run = work.harness(&["run", config.as_str(), "--set", "output.checkpoints=keep"]);
    run.expect_code(0).expect_stdout(&["checkpoint kept in"]);
    assert_eq!(checkpoints(&work).len(), 1);
    // A bad value is a config error naming the key and the choices.
    work.harness(&[
        "run",
        config.as_str(),
        "--set",
        "output.checkpoints=sometimes",
    ])
    .expect_code(2)
    .expect_stderr(&["output.checkpoints", "resume, keep, off"]);
}

#[test]
fn no_output_may_take_a_checkpoints_name() {
    let work = Workdir::new();
    let config = case(&work, "sgd_momentum");
    std::fs::create_dir_all(work.path().join("results/.checkpoints")).unwrap();
    // Links whose targets do not exist yet lead there too.
    let link = |name: &str, target: &str| {
        std::os::unix::fs::symlink(target, work.path().join("results").join(name)).unwrap();
    };
    link(
        "to-partial.csv",
        ".checkpoints/runs.csv.r0123456789a.ckpt.partial",
    );
    link("to-ckpt.csv", "x.ckpt");
    link("into-folder.csv", ".checkpoints/e.csv");
    for (key, value) in [
        ("output.runs", "results/.checkpoints/runs.csv"),
        ("output.epochs", "results/x.ckpt"),
        ("output.runs", "results/runs.csv.rejected"),
        ("output.epochs", "results/to-partial.csv"),
        ("output.runs", "results/to-ckpt.csv"),
        ("output.epochs", "results/into-folder.csv"),
        ("output.models", "results/.checkpoints"),
        ("output.models", "results/runs.csv.running"),
    ] {
        work.harness(&["run", &config, "--set", &format!("{key}={value}")])
            .expect_code(2)
            .expect_stderr(&["kept for the files harness writes beside the record"]);
    }
    assert_eq!(
        std::fs::read_dir(work.path().join("results/.checkpoints"))
            .unwrap()
            .count(),
        0,
        "nothing was written"
    );
    // A file where the folder should be: said before any work.
    let work = Workdir::new();
    let config = case(&work, "sgd_momentum");
    std::fs::create_dir_all(work.path().join("results")).unwrap();
    std::fs::write(work.path().join("results/.checkpoints"), "").unwrap();
    work.harness(&["run", &config])
        .expect_code(2)
        .expect_stderr(&["is not a folder: harness keeps the runs' checkpoints there"]);
}

#[test]
fn the_writer_never_follows_a_link_at_its_partial_name() {
    let work = Workdir::new();
    let config = long_config(&work);
    let victim = work.write("victim.txt", "precious\n");
    let mut child = work
        .command(&["run", &config, "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let checkpoint = loop {
        if let Some(path) = checkpoints(&work)
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "ckpt"))
        {
            break path;
        }
        assert!(started.elapsed().as_secs() < 60, "no checkpoint");
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let partial = PathBuf::from(format!("{}.partial", checkpoint.display()));
    let _ = std::fs::remove_file(&partial);
    std::os::unix::fs::symlink(&victim, &partial).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(csv_rows(&work.path().join("results/runs.csv")).len(), 1);
}

#[test]
fn a_deep_narrow_network_resumes_and_the_own_checkpoint_is_found_among_many_files() {
    let hidden = vec!["4"; 400].join(", ");
    let deep = |work: &Workdir| {
        work.write(
            "deep.toml",
            &format!(
                "name = \"deep\"\nseed = 5\n[data]\ndir = \"{}\"\ntrain_limit = 300\n\
                 test_limit = 100\nvalidation = 100\n[model]\nhidden = [{hidden}]\n\
                 activation = \"relu\"\noutput = \"softmax\"\n[train]\nepochs = 3\n\
                 batch_size = 100\nloss = \"cross_entropy\"\noptimizer = \"adam\"\n\
                 learning_rate = 0.01\n",
                repo().join("data/mnist").display()
            ),
        );
        "deep.toml".to_string()
    };
    let reference = Workdir::new();
    let config = deep(&reference);
    reference.harness(&run_args(&config, "flex")).expect_code(0);
    let expected = record(&reference);
    let work = Workdir::new();
    let config = deep(&work);
    let args = run_args(&config, "flex");
    killed_at(&work, "checkpoint-after@2", &args);
    // More junk in the folder than a scan looks at.
    let dir = work.path().join("results/.checkpoints");
    for i in 0..100_100 {
        std::fs::File::create(dir.join(format!("junk{i:06}.ckpt"))).unwrap();
    }
    let resumed = work.harness(&args);
    resumed
        .expect_code(0)
        .expect_stderr(&["resuming run", "after epoch 2 of 3"]);
    assert_eq!(record(&work), expected);
}

#[test]
fn a_checkpoint_made_for_another_runs_file_is_not_resumed() {
    let expected = uninterrupted("sgd_momentum", "flex");
    let work = Workdir::new();
    let config = case(&work, "sgd_momentum");
    let mut args = run_args(&config, "flex");
    args.extend(["--set", "output.runs=results/a.csv"]);
    killed_at(&work, "checkpoint-after@2", &args);
    // The same run into results/runs.csv starts from epoch 0 (a.csv's run may still be alive).
    let other = work.harness(&run_args(&config, "flex"));
    other.expect_code(0);
    assert!(!other.stderr().contains("resuming"), "{}", other.describe());
    assert_eq!(record(&work), expected);
}

/// A halving sweep of six random points over 1, 2 and 4 epochs, into `dir`.
fn halving_experiment(work: &Workdir) -> PathBuf {
    work.write(
        "base.toml",
        &format!(
            "name = \"h\"\nseed = 2\n[data]\ndir = \"{}\"\ntrain_limit = 600\ntest_limit = 200\n\
             validation = 200\n[model]\nhidden = [10]\nactivation = \"relu\"\noutput = \"softmax\"\n\
             [train]\nbatch_size = 30\nloss = \"cross_entropy\"\noptimizer = \"adam\"\n\
             schedule = \"cosine\"\nkeep = \"best\"\n[output]\nsave_model = false\n",
            repo().join("data/mnist").display()
        ),
    );
    work.write(
        "halving.toml",
        "base = \"base.toml\"\n[random]\ntrials = 6\nseed = 1\n\
         \"train.learning_rate\" = { log_uniform = [1e-3, 3e-2] }\n\
         \"model.dropout\" = { choice = [0.0, 0.2] }\n\
         [halving]\nmin_epochs = 1\nmax_epochs = 4\neta = 2\n",
    )
}

/// Every row of a results file by (run_id, epoch), without the columns that vary.
fn rows_by_run(path: &Path, key: &[&str]) -> HashMap<String, HashMap<String, String>> {
    csv_rows(path)
        .into_iter()
        .map(|mut row| {
            for column in VARYING {
                row.remove(column);
            }
            let id = key
                .iter()
                .map(|k| row[*k].clone())
                .collect::<Vec<_>>()
                .join("/");
            (id, row)
        })
        .collect()
}

#[test]
fn halving_survivors_continued_from_checkpoints_match_the_points_trained_from_epoch_0() {
    let continued = Workdir::new();
    halving_experiment(&continued);
    let sweep = continued.harness(&["sweep", "halving.toml", "--jobs", "2"]);
    sweep.expect_code(0).expect_stdout(&[
        "rung 1: 3 points, 2 of the schedule's 4 epochs, each continued from its rung-0 \
         checkpoint (1 more epochs)",
        "continued after epoch 1",
        "continued after epoch 2",
    ]);
    assert!(
        checkpoints(&continued).is_empty(),
        "a finished halving sweep leaves no checkpoint: {:?}\n{}",
        checkpoints(&continued),
        sweep.describe()
    );

    let from_zero = Workdir::new();
    halving_experiment(&from_zero);
    let sweep_from_zero = from_zero.harness(&[
        "sweep",
        "halving.toml",
        "--jobs",
        "2",
        "--set",
        "output.checkpoints=off",
    ]);
    sweep_from_zero.expect_code(0);
    assert!(
        !sweep_from_zero.stdout().contains("continued after"),
        "{}",
        sweep_from_zero.describe()
    );
    let runs = |work: &Workdir| rows_by_run(&work.path().join("results/runs.csv"), &["run_id"]);
    let epochs = |work: &Workdir| {
        rows_by_run(
            &work.path().join("results/epochs.csv"),
            &["run_id", "epoch"],
        )
    };
    let (a, b) = (runs(&continued), runs(&from_zero));
    assert_eq!(a.len(), 6 + 3 + 1, "{a:?}");
    assert_eq!(a, b, "continued and trained-from-0 rungs differ");
    assert_eq!(epochs(&continued), epochs(&from_zero));
    let rungs: Vec<(String, String, String)> = a
        .values()
        .map(|row| {
            (
                row["rung"].clone(),
                row["epochs_trained"].clone(),
                row["stop_reason"].clone(),
            )
        })
        .collect();
    for (rung, trained, why) in [
        ("0", "1", "budget"),
        ("1", "2", "budget"),
        ("2", "4", "completed"),
    ] {
        assert!(
            rungs.contains(&(rung.into(), trained.into(), why.into())),
            "rung {rung}: {rungs:?}"
        );
    }
    for row in a.values() {
        assert_eq!(
            row["epochs"], "4",
            "every rung follows the 4-epoch schedule: {row:?}"
        );
    }
}

#[test]
fn a_last_rung_resumed_after_a_kill_leaves_no_earlier_rungs_checkpoint() {
    let work = Workdir::new();
    halving_experiment(&work);
    // The last rung (4 epochs) continues from rung 1's epoch 2 and is killed after epoch 3.
    let mut command = work.command(&["sweep", "halving.toml"]);
    command.env("HARNESS_FAILPOINT", "checkpoint-after@3");
    let killed = work.run(&[], command);
    assert!(
        killed.stdout().contains("rung 2: 1 points"),
        "{}",
        killed.describe()
    );
    // The killed worker's point stands as failed; --retry-failed resumes it from its own.
    let resumed = work.harness(&["sweep", "halving.toml", "--retry-failed"]);
    resumed
        .expect_code(0)
        .expect_stdout(&["resumed after epoch 3"]);
    assert!(
        checkpoints(&work).is_empty(),
        "a finished halving sweep leaves no checkpoint: {:?}\n{}",
        checkpoints(&work),
        resumed.describe()
    );
}

#[test]
fn no_output_may_lead_into_a_linked_checkpoints_folder() {
    let work = Workdir::new();
    let config = case(&work, "sgd_momentum");
    std::fs::create_dir_all(work.path().join("results")).unwrap();
    std::fs::create_dir_all(work.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("../elsewhere", work.path().join("results/.checkpoints")).unwrap();
    for (key, value) in [
        ("output.models", "elsewhere"),
        ("output.epochs", "elsewhere/e.csv"),
    ] {
        work.harness(&["run", &config, "--set", &format!("{key}={value}")])
            .expect_code(2)
            .expect_stderr(&["the folder harness keeps the runs' checkpoints in"]);
    }
    assert_eq!(
        std::fs::read_dir(work.path().join("elsewhere"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_killed_sweep_resumes_its_interrupted_point_from_its_checkpoint() {
    let experiment = |work: &Workdir| {
        long_config(work);
        work.write("one.toml", "base = \"long.toml\"\n[grid]\nseed = [5]\n")
    };
    let reference = Workdir::new();
    experiment(&reference);
    reference.harness(&["sweep", "one.toml"]).expect_code(0);
    let expected = record(&reference);

    let work = Workdir::new();
    experiment(&work);
    kill_after_a_checkpoint(&work, &["sweep", "one.toml"], std::time::Duration::ZERO);
    // The orphaned worker notices its parent is gone (every 500 ms) and stops.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!work.path().join("results/runs.csv").exists());
    // The dry run says where the point stands.
    work.harness(&["sweep", "one.toml", "--dry-run"])
        .expect_code(0)
        .expect_stdout(&["pending (checkpoint after epoch"]);
    let resumed = work.harness(&["sweep", "one.toml"]);
    resumed
        .expect_code(0)
        .expect_stdout(&["resumed after epoch"]);
    assert_eq!(record(&work), expected, "{}", resumed.describe());
}

/// wgpu resumes through the same code. Its kernels are not promised to be bit-reproducible
/// (autotuning may pick another kernel in another process), so the resumed run must end the
/// same way with accuracies within one point: required in CI (HARNESS_REQUIRE_WGPU=1, Mesa's
/// lavapipe), skipped with the reason on a machine without a Vulkan, Metal or DX12 adapter.
#[test]
fn a_wgpu_run_resumes_to_the_same_status_and_accuracy_within_a_point() {
    let reference = Workdir::new();
    let config = case(&reference, "adam_cosine");
    let args = run_args(&config, "wgpu");
    let run = reference.harness(&args);
    if common::skipped_without_wgpu(&run) {
        return;
    }
    run.expect_code(0);
    let expected = record(&reference).0;
    let work = Workdir::new();
    let config = case(&work, "adam_cosine");
    let args = run_args(&config, "wgpu");
    killed_at(&work, "checkpoint-after@2", &args);
    let resumed = work.harness(&args);
    resumed
        .expect_code(0)
        .expect_stderr(&["resuming run", "after epoch 2 of 5"]);
    let got = record(&work).0;
    for column in [
        "run_id",
        "status",
        "stop_reason",
        "epochs_trained",
        "train_size",
    ] {
        assert_eq!(
            got[column],
            expected[column],
            "{column}\n{}",
            resumed.describe()
        );
    }
    for column in ["val_accuracy", "test_accuracy"] {
        let (a, b): (f64, f64) = (
            got[column].parse().unwrap(),
            expected[column].parse().unwrap(),
        );
        assert!(
            (a - b).abs() <= 0.01,
            "{column}: {a} resumed against {b} uninterrupted\n{}",
            resumed.describe()
        );
    }
    assert!(checkpoints(&work).is_empty());
}
