//! `[tpe]`: a search that learns, in waves that every process sees the same way (two dry runs,
//! a resumed sweep, --jobs and shards all give the same points), its bad inputs (exit 2 naming
//! the line), and `report --importance` (PED-ANOVA), checked against Optuna's own
//! `get_param_importances` on the same runs where optuna is installed (required in CI:
//! `HARNESS_REQUIRE_OPTUNA=1`, .ci/run installs it).

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{Workdir, csv_rows, repo, write_rows};
use harness::record::results::{RunRow, Status};

/// A small TPE experiment: 6 trials in waves of 2, the first wave random, then TPE.
fn experiment(work: &Workdir, tpe: &str) -> String {
    work.write(
        "e.toml",
        &format!(
            "[base]\ndata.dir = \"{}\"\ndata.train_limit = 1000\ndata.validation = 300\n\
             data.test_limit = 300\nmodel.hidden = [8]\nmodel.output = \"softmax\"\n\
             train.epochs = 1\ntrain.batch_size = 50\ntrain.loss = \"cross_entropy\"\n\
             train.optimizer = \"adam\"\noutput.save_model = false\n\
             output.runs = \"runs.csv\"\noutput.epochs = \"epochs.csv\"\n{tpe}",
            repo().join("data/mnist").display()
        ),
    );
    "e.toml".to_string()
}

const SEARCH: &str = "[tpe]\ntrials = 6\nseed = 3\nwave = 2\nn_startup_trials = 2\n\
    \"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n\
    \"model.activation\" = { choice = [\"relu\", \"tanh\", \"sigmoid\"] }\n\
    \"train.batch_size\" = { int = [20, 100] }\n";

/// The run_ids of a runs file's rows.
fn run_ids(work: &Workdir, file: &str) -> BTreeSet<String> {
    csv_rows(&work.path().join(file))
        .into_iter()
        .map(|row| row["run_id"].clone())
        .collect()
}

/// The run_ids a dry run lists.
fn listed(work: &Workdir, args: &[&str]) -> Vec<String> {
    let mut all = vec!["sweep", "e.toml", "--dry-run"];
    all.extend(args);
    let run = work.harness(&all);
    run.expect_code(0);
    run.stdout()
        .lines()
        .filter_map(|line| {
            let id = line.split_whitespace().nth(1)?;
            (id.len() == 12 && id.starts_with('r')).then(|| id.to_string())
        })
        .collect()
}

#[test]
fn waves_are_the_same_for_dry_runs_resumes_jobs_and_shards() {
    // The whole sweep in one process with two jobs.
    let whole = Workdir::new();
    experiment(&whole, SEARCH);
    let before = listed(&whole, &[]);
    assert_eq!(before.len(), 2, "only wave 0 is known before any result");
    assert_eq!(
        before,
        listed(&whole, &[]),
        "two dry runs list the same points"
    );
    whole
        .harness(&["sweep", "e.toml", "--jobs", "2"])
        .expect_code(0)
        .expect_stdout(&["wave 2: 2 points, from the results of waves 0-1", "6 ok"]);
    let all = run_ids(&whole, "runs.csv");
    assert_eq!(all.len(), 6, "6 trials, each its own run");
    let rows = csv_rows(&whole.path().join("runs.csv"));
    let waves: Vec<&str> = rows.iter().map(|r| r["rung"].as_str()).collect();
    assert_eq!(
        waves.iter().filter(|w| **w == "2").count(),
        2,
        "the rung column holds the wave"
    );
    // A dry run now lists every wave, exactly the runs trained.
    let listed_now: BTreeSet<String> = listed(&whole, &[]).into_iter().collect();
    assert_eq!(listed_now, all);
    // Wave 0 is the random search's first draws of the same seed; later waves are not.
    let blind = Workdir::new();
    experiment(
        &blind,
        &SEARCH
            .replace("[tpe]", "[random]")
            .replace("wave = 2\nn_startup_trials = 2\n", ""),
    );
    let drawn = listed(&blind, &[]);
    assert_eq!(drawn.len(), 6);
    assert_eq!(drawn[..2], before[..]);
    assert_ne!(
        drawn.iter().cloned().collect::<BTreeSet<_>>(),
        all,
        "TPE suggested waves 1-2"
    );

    // Resumed: wave 0 alone, then the sweep again, one job.
    let resumed = Workdir::new();
    experiment(&resumed, SEARCH);
    resumed
        .harness(&["sweep", "e.toml", "--wave", "0"])
        .expect_code(0);
    assert_eq!(run_ids(&resumed, "runs.csv").len(), 2);
    resumed
        .harness(&["sweep", "e.toml"])
        .expect_code(0)
        .expect_stdout(&["2 skipped"]);
    assert_eq!(run_ids(&resumed, "runs.csv"), all);

    // A cluster: each wave in two shards writing their own files, merged between waves.
    let cluster = Workdir::new();
    experiment(&cluster, SEARCH);
    for wave in 0..3 {
        for shard in ["1/2", "2/2"] {
            let file = format!("runs-{}.csv", &shard[..1]);
            let set_runs = format!("output.runs={file}");
            let wave_text = wave.to_string();
            let mut args = vec!["sweep", "e.toml", "--wave", &wave_text, "--shard", shard];
            args.extend([
                "--set",
                &set_runs,
                "--set",
                "output.epochs=epochs-shard.csv",
            ]);
            if wave > 0 {
                args.extend(["--select-from", "runs.csv"]);
            }
            cluster.harness(&args).expect_code(0);
        }
        let _ = std::fs::remove_file(cluster.path().join("runs.csv"));
        cluster
            .harness(&["merge", "runs-1.csv", "runs-2.csv", "-o", "runs.csv"])
            .expect_code(0);
    }
    assert_eq!(
        run_ids(&cluster, "runs.csv"),
        all,
        "shards 1/2 + 2/2 are every wave"
    );
}

#[test]
fn a_later_wave_waits_for_the_one_before() {
    let work = Workdir::new();
    experiment(&work, SEARCH);
    work.harness(&["sweep", "e.toml", "--wave", "1"])
        .expect_code(2)
        .expect_stderr(&[
            "wave 1 of e.toml is suggested from the results",
            "run wave 0 first",
        ]);
    work.harness(&["sweep", "e.toml", "--wave", "3"])
        .expect_code(2)
        .expect_stderr(&["--wave 3: e.toml has waves 0 to 2"]);
}

#[test]
fn bad_tpe_tables_are_refused_naming_the_line() {
    let work = Workdir::new();
    let cases: &[(&str, &[&str])] = &[
        (
            "[tpe]\ntrials = 4\nwave = 8\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n",
            &["e.toml:", "tpe.wave = 8 is more than tpe.trials = 4"],
        ),
        (
            "[tpe]\ntrials = 8\nmetric = \"test_accuracy\"\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n",
            &["e.toml:", "tpe.metric", "val_accuracy"],
        ),
        (
            "[tpe]\ntrials = 8\n\"train.learning_rate\" = { log_uniform = [1e-3, 1e-3] }\n",
            &["e.toml:", "tpe.train.learning_rate has a single value"],
        ),
        (
            "[tpe]\ntrials = 8\n\"train.learning_rate\" = { normal = [0, 1] }\n",
            &[
                "e.toml:",
                "tpe.train.learning_rate names an unknown distribution \"normal\"",
            ],
        ),
        (
            "[tpe]\ntrials = 8\nwave = 0\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n",
            &["e.toml:", "tpe.wave"],
        ),
        (
            "[tpe]\ntrials = 8\nprior_weight = -1\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n",
            &["e.toml:", "tpe.prior_weight must be a number above 0"],
        ),
        (
            "[tpe]\ntrials = 8\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n\
             [halving]\nmin_epochs = 1\nmax_epochs = 3\n",
            &["e.toml:", "[tpe] with [halving] is not supported"],
        ),
        (
            "[tpe]\ntrials = 8\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n\
             [random]\ntrials = 8\n\"train.batch_size\" = { int = [16, 64] }\n",
            &["e.toml:", "with [random] or with [tpe]"],
        ),
        (
            "[tpe]\ntrials = 8\n\"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n\
             [[point]]\n\"train.batch_size\" = 10\n",
            &["e.toml:", "[[point]] with [tpe] is not supported"],
        ),
        (
            "[grid]\n\"data.validation\" = [0]\n[tpe]\ntrials = 8\n\
             \"train.learning_rate\" = { log_uniform = [1e-4, 1e-1] }\n",
            &["e.toml:", "holds none out (data.validation = 0)"],
        ),
        (
            "[tpe]\ntrials = 8\n",
            &["e.toml:", "[tpe] has no key to search"],
        ),
    ];
    for (table, needles) in cases {
        experiment(&work, table);
        let run = work.harness(&["sweep", "e.toml", "--dry-run"]);
        run.expect_code(2).expect_stderr(needles);
        assert!(!run.stderr().contains("panicked"), "{}", run.describe());
    }
    assert!(!work.path().join("runs.csv").exists(), "nothing ran");
}

/// A synthetic sweep of 60 runs whose validation accuracy depends mostly on the learning rate
/// (best near 3e-3), a little on the activation, not on the batch size.
fn synthetic_runs() -> Vec<RunRow> {
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..60)
        .map(|i| {
            let rate: f64 = 10f64.powf(-4.0 + 3.0 * next());
            let activation = ["relu", "tanh", "gelu"][(next() * 3.0) as usize];
            let batch = [16u64, 32, 64, 128][(next() * 4.0) as usize];
            let accuracy = 0.97
                - 0.02 * (rate.log10() + 2.5).powi(2)
                - if activation == "tanh" { 0.002 } else { 0.0 }
                + 0.001 * next();
            RunRow {
                run_id: format!("r{i:011x}"),
                attempt: format!("a{i:011x}"),
                started_at: "2026-12-07T10:00:00Z".into(),
                name: format!("t{i:02}"),
                dataset: "mnist".into(),
                backend: "flex".into(),
                shape: "784-16-10".into(),
                activation: activation.into(),
                optimizer: "adam".into(),
                learning_rate: (rate * 1e6).round() / 1e6,
                batch_size: batch,
                epochs: 5,
                seed: 1,
                validation_size: 10_000,
                test_size: 10_000,
                val_accuracy: accuracy,
                test_accuracy: accuracy - 0.003,
                params: 12_730,
                train_seconds: 1.0 + i as f64 * 0.01,
                total_seconds: 1.5 + i as f64 * 0.01,
                status: Status::Ok,
                ..RunRow::default()
            }
        })
        .collect()
}

/// The importances `report --importance --json` prints: (setting, importance, domain).
fn importances(work: &Workdir, file: &str) -> Vec<(String, f64, serde_json::Value)> {
    let run = work.harness(&["report", file, "--importance", "--json"]);
    run.expect_code(0);
    let value: serde_json::Value = serde_json::from_str(&run.stdout()).expect("JSON");
    assert!(value["method"].as_str().unwrap().contains("PED-ANOVA"));
    value["importances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["setting"].as_str().unwrap().to_string(),
                item["importance"].as_f64().unwrap(),
                item["domain"].clone(),
            )
        })
        .collect()
}

#[test]
fn importance_names_the_setting_that_dominates() {
    let work = Workdir::new();
    write_rows(&work.path().join("runs.csv"), &synthetic_runs());
    let found = importances(&work, "runs.csv");
    let names: Vec<&str> = found.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(names.len(), 3, "the three settings that vary: {names:?}");
    assert_eq!(names[0], "learning_rate", "{found:?}");
    assert!(found[0].1 > 0.6, "{found:?}");
    let sum: f64 = found.iter().map(|(_, i, _)| i).sum();
    assert!((sum - 1.0).abs() < 1e-9);
    assert_eq!(
        found[0].2["log"],
        serde_json::Value::Bool(true),
        "a log-scale range"
    );
    // The Markdown table names the method and the settings.
    work.harness(&["report", "runs.csv", "--importance"])
        .expect_code(0)
        .expect_stdout(&[
            "PED-ANOVA",
            "| learning_rate |",
            "log scale",
            "choice of 16, 32, 64, 128",
        ]);
    // The HTML report's panel holds the same ranking.
    work.harness(&["report", "runs.csv", "--html", "-o", "report.html"])
        .expect_code(0);
    let page = std::fs::read_to_string(work.path().join("report.html")).unwrap();
    let panel = page
        .find("\"importance\":{")
        .expect("the page has the importance panel");
    assert!(
        page[panel..].contains("\"settings\":[[\"learning_rate\""),
        "learning_rate first"
    );
    // The search-progress chart: one line per runs file, best so far against trials.
    write_rows(&work.path().join("other.csv"), &synthetic_runs()[..30]);
    work.harness(&["plot", "runs.csv", "-o", "plots", "--compare", "other.csv"])
        .expect_code(0)
        .expect_stdout(&["search_progress.svg", "search_progress.png"]);
    let chart = std::fs::read_to_string(work.path().join("plots/search_progress.svg")).unwrap();
    assert!(chart.contains("Best accuracy so far against trials") && chart.contains("other"));
    // A metric not recorded, runs without validation images: exit 2, before any work.
    work.harness(&[
        "report",
        "runs.csv",
        "--importance",
        "--metric",
        "test_accuracy",
    ])
    .expect_code(2)
    .expect_stderr(&["--metric test_accuracy"]);
    let mut blind = synthetic_runs();
    blind.iter_mut().for_each(|r| r.validation_size = 0);
    write_rows(&work.path().join("blind.csv"), &blind);
    work.harness(&["report", "blind.csv", "--importance"])
        .expect_code(2)
        .expect_stderr(&["blind.csv", "no run of the file held validation images out"]);
}

#[test]
fn importance_agrees_with_optunas_get_param_importances() {
    let has_optuna = Command::new("python3")
        .args(["-c", "import optuna"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_optuna {
        let required = std::env::var("HARNESS_REQUIRE_OPTUNA").is_ok_and(|v| v == "1");
        assert!(!required, "python3 with optuna is required here");
        eprintln!("importance_agrees_with_optunas_get_param_importances skipped: no optuna");
        return;
    }
    let work = Workdir::new();
    write_rows(&work.path().join("runs.csv"), &synthetic_runs());
    let ours = importances(&work, "runs.csv");
    // The same runs as Optuna trials, each setting with the domain harness read for it.
    let domains: serde_json::Value = ours
        .iter()
        .map(|(name, _, domain)| (name.clone(), domain.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let script = r#"
import csv, json, sys, warnings
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.simplefilter("ignore")
domains = json.loads(sys.argv[2])
dists = {k: CategoricalDistribution(d["choice"]) if "choice" in d
         else FloatDistribution(d["low"], d["high"], log=d["log"]) for k, d in domains.items()}
study = optuna.create_study(direction="maximize")
for row in csv.DictReader(open(sys.argv[1])):
    params = {k: row[k] if "choice" in domains[k] else float(row[k]) for k in domains}
    study.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                              value=float(row["val_accuracy"])))
print(json.dumps(get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(work.path().join("runs.csv"))
        .arg(domains.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("Optuna's importances as JSON");
    let mut their_order: Vec<(&String, f64)> = theirs
        .iter()
        .map(|(k, v)| (k, v.as_f64().unwrap()))
        .collect();
    their_order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let our_order: Vec<&String> = ours.iter().map(|(name, _, _)| name).collect();
    assert_eq!(
        our_order,
        their_order.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "ours {ours:?}, Optuna's {their_order:?}"
    );
    for (name, importance, _) in &ours {
        let theirs = theirs[name].as_f64().unwrap();
        assert!(
            (importance - theirs).abs() < 1e-6,
            "{name}: ours {importance}, Optuna's {theirs}"
        );
    }
}
