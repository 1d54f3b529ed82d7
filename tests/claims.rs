//! An output is never an input, nor a file of the record (RELIABILITY.md, "Outputs are
//! claimed"): every command that writes a file, pointed at every file it reads and every file
//! of the record, under every spelling (the name, `./`, `..`, a symbolic link, a hard link),
//! refuses with exit 2 before any work and leaves every file as it was.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Workdir, tiny_config};

/// Every file under the folder with its bytes: what a refused command must leave as it was.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                files.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

/// The ways to name one file: itself, other spellings, a symbolic link and a hard link (made
/// in `links`, a folder of the work folder, under `name`).
fn spellings(work: &Workdir, target: &str, links: &str, name: &str) -> Vec<String> {
    let dir = work.path().join(links);
    std::fs::create_dir_all(&dir).unwrap();
    let (symbolic, hard) = (
        dir.join(format!("sym-{name}")),
        dir.join(format!("hard-{name}")),
    );
    let _ = std::fs::remove_file(&symbolic);
    let _ = std::fs::remove_file(&hard);
    std::os::unix::fs::symlink(work.path().join(target), &symbolic).unwrap();
    std::fs::hard_link(work.path().join(target), &hard).unwrap();
    let rel = |path: &Path| {
        path.strip_prefix(work.path())
            .unwrap()
            .display()
            .to_string()
    };
    vec![
        target.to_string(),
        format!("./{target}"),
        format!("results/../{target}"),
        work.path().join(target).display().to_string(),
        rel(&symbolic),
        rel(&hard),
    ]
}

#[test]
fn every_output_pointed_at_any_file_read_or_recorded_is_refused_and_nothing_changes() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    work.harness(&["run", &config, "-q"]).expect_code(0);
    let models = work.path().join("results/models");
    let model = std::fs::read_dir(&models)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with(".bpk"))
        .expect("a saved model");
    let run_id = model.split('.').next().unwrap().to_string();
    let model = format!("results/models/{model}");

    // Every file of the record, and the config the run read.
    let targets = [
        "results/runs.csv",
        "results/epochs.csv",
        model.as_str(),
        "tiny.toml",
    ];
    let before = snapshot(work.path());
    let mut tried = 0;
    for (t, target) in targets.iter().enumerate() {
        let names = spellings(&work, target, "links", &format!("{t}"));
        let before = snapshot(work.path()); // with the links
        for name in &names {
            // Commands writing a single file whole, and commands appending rows.
            let mut commands: Vec<Vec<String>> = vec![
                vec![
                    "report".into(),
                    "results/runs.csv".into(),
                    "-o".into(),
                    name.clone(),
                ],
                vec![
                    "report".into(),
                    "--html".into(),
                    "results/runs.csv".into(),
                    "-o".into(),
                    name.clone(),
                ],
            ];
            if *target != "results/runs.csv" {
                // A merge may rewrite one of its inputs; never another kind of file.
                commands.push(vec![
                    "merge".into(),
                    "results/runs.csv".into(),
                    "-o".into(),
                    name.clone(),
                ]);
            }
            let key = if *target == "results/runs.csv" {
                "output.epochs"
            } else {
                "output.runs"
            };
            commands.push(vec![
                "run".into(),
                config.clone(),
                "--set".into(),
                format!("{key}={name}"),
            ]);
            for args in commands {
                if *target == "tiny.toml" && args[0] == "merge" {
                    continue; // merge refuses it as a foreign file, after reading its header
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = work.harness(&args);
                run.expect_code(2);
                assert!(
                    !run.stderr().contains("panicked") && !run.stderr().contains("epoch 1"),
                    "{}",
                    run.describe()
                );
                assert_eq!(
                    snapshot(work.path()),
                    before,
                    "a refused command changed a file\n{}",
                    run.describe()
                );
                tried += 1;
            }
        }
        // Folders of charts and pictures whose files are links to the target.
        for (command, file) in [
            (
                vec!["plot", "results/runs.csv", "-o", "charts"],
                "charts/learning_curves.svg",
            ),
            (
                vec!["inspect", &run_id, "-o", "pictures"],
                "pictures/confusion.csv",
            ),
            (
                vec!["inspect", &run_id, "-o", "pictures"],
                "pictures/weights_layer1.png",
            ),
        ] {
            if *target == "tiny.toml" {
                continue;
            }
            let dir = work.path().join(Path::new(file).parent().unwrap());
            for link in ["symbolic", "hard"] {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                let path = work.path().join(file);
                if link == "symbolic" {
                    std::os::unix::fs::symlink(work.path().join(target), &path).unwrap();
                } else {
                    std::fs::hard_link(work.path().join(target), &path).unwrap();
                }
                let before = snapshot(work.path());
                let run = work.harness(&command);
                run.expect_code(2);
                let stderr = run.stderr();
                assert!(
                    stderr.contains("part of the record")
                        || stderr.contains("which this command reads"),
                    "{}",
                    run.describe()
                );
                assert_eq!(
                    snapshot(work.path()),
                    before,
                    "{link} link: a refused command changed a file\n{}",
                    run.describe()
                );
                tried += 1;
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
        std::fs::remove_dir_all(work.path().join("links")).unwrap();
    }
    assert!(tried > 80, "only {tried} cases ran");
    assert_eq!(snapshot(work.path()), before);

    // The names harness keeps beside the record are no one's output.
    for name in [
        "results/runs.csv.journal",
        "results/runs.csv.running",
        "results/report.md.partial",
        "results/x.lock",
    ] {
        for args in [
            vec!["report", "results/runs.csv", "-o", name],
            vec!["merge", "results/runs.csv", "-o", name],
        ] {
            work.harness(&args)
                .expect_code(2)
                .expect_stderr(&["kept for the files harness writes"]);
        }
    }
    // The control: the same commands write where nothing is claimed.
    work.harness(&["report", "results/runs.csv", "-o", "report.md"])
        .expect_code(0);
    work.harness(&["report", "--html", "results/runs.csv", "-o", "page.html"])
        .expect_code(0);
    work.harness(&["plot", "results/runs.csv", "-o", "charts"])
        .expect_code(0);
    work.harness(&["inspect", &run_id, "-o", "pictures"])
        .expect_code(0);
    assert!(work.path().join("charts/learning_curves.svg").is_file());
    assert!(work.path().join("pictures/confusion.csv").is_file());
}

/// A models folder that is the runs file, and an upgrade whose runs file is a hard link of
/// its epochs file, are refused naming both.
#[test]
fn upgrade_and_a_run_refuse_record_files_of_another_kind() {
    let work = Workdir::new();
    let config = tiny_config(&work);
    work.harness(&["run", &config, "-q"]).expect_code(0);
    work.harness(&["run", &config, "--set", "output.models=results/runs.csv"])
        .expect_code(2)
        .expect_stderr(&["results/runs.csv is a file, not a folder"]);
    std::fs::write(work.path().join("e.csv"), "").unwrap();
    std::fs::hard_link(work.path().join("e.csv"), work.path().join("r.csv")).unwrap();
    let run = work.harness(&["upgrade", "r.csv", "e.csv"]);
    run.expect_code(2)
        .expect_stderr(&["is also the epochs file", "are one file: a link"]);
    assert!(!run.stderr().contains("panicked"), "{}", run.describe());
}
