//! `harness report` with the real binary: the means and standard deviations match ones
//! computed here from the same rows; broken inputs exit 2 naming the problem.

mod common;

use common::Workdir;
use harness::results::{self, RunRow, Status};

fn row(hidden: &str, activation: &str, seed: u64, accuracy: f64, status: Status) -> RunRow {
    RunRow {
        run_id: format!("{hidden}-{activation}-{seed}"),
        hidden: hidden.into(),
        activation: activation.into(),
        seed,
        params: if hidden == "16x16" { 13002 } else { 101770 },
        test_accuracy: accuracy,
        total_seconds: seed as f64,
        status,
        ..RunRow::default()
    }
}

/// Mean and sample standard deviation, written out the long way.
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, variance.sqrt())
}

#[test]
fn groups_over_seeds_with_independent_means_and_deviations() {
    let work = Workdir::new();
    let path = work.path().join("runs.csv");
    let relu = [0.951, 0.948, 0.955];
    let sigmoid = [0.921, 0.930];
    let mut rows: Vec<RunRow> = Vec::new();
    for (seed, &accuracy) in relu.iter().enumerate() {
        rows.push(row("16x16", "relu", seed as u64 + 1, accuracy, Status::Ok));
    }
    for (seed, &accuracy) in sigmoid.iter().enumerate() {
        rows.push(row(
            "16x16",
            "sigmoid",
            seed as u64 + 1,
            accuracy,
            Status::Ok,
        ));
    }
    rows.push(row("128", "relu", 1, 0.975, Status::Ok));
    rows.push(row("128", "relu", 2, 0.1, Status::Diverged));
    results::append(&path, &rows).unwrap();

    let run = work.harness(&["report", "runs.csv", "--group-by", "hidden,activation"]);
    run.expect_code(0);
    let stdout = run.stdout();
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| hidden"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let (relu_mean, relu_sd) = mean_sd(&relu);
    let (sigmoid_mean, sigmoid_sd) = mean_sd(&sigmoid);
    assert_eq!(lines[0], "| 128 | relu | 1 | 0.9750 ± - | 101770 | 1.0 |");
    assert_eq!(
        lines[1],
        format!("| 16x16 | relu | 3 | {relu_mean:.4} ± {relu_sd:.4} | 13002 | 2.0 |")
    );
    assert_eq!(
        lines[2],
        format!("| 16x16 | sigmoid | 2 | {sigmoid_mean:.4} ± {sigmoid_sd:.4} | 13002 | 1.5 |")
    );
    assert!(
        stdout.contains("1 diverged or failed runs left out"),
        "{stdout}"
    );

    let written = work.harness(&[
        "report",
        "runs.csv",
        "--group-by",
        "hidden,activation",
        "-o",
        "report.md",
    ]);
    written.expect_code(0);
    let file = std::fs::read_to_string(work.path().join("report.md")).unwrap();
    assert!(file.contains(&lines[1].to_string()));
}

#[test]
fn broken_inputs_exit_2_and_name_the_problem() {
    let work = Workdir::new();
    work.harness(&["report", "missing.csv"])
        .expect_code(2)
        .expect_stderr(&["missing.csv"]);
    work.write(
        "short.csv",
        "run_id,status,params,total_seconds\nx,ok,1,1.0\n",
    );
    work.harness(&["report", "short.csv", "--group-by", "params"])
        .expect_code(2)
        .expect_stderr(&["short.csv", "\"test_accuracy\""]);
    results::append(
        &work.path().join("runs.csv"),
        &[row("16x16", "relu", 1, 0.9, Status::Ok)],
    )
    .unwrap();
    work.harness(&["report", "runs.csv", "--group-by", "hiden"])
        .expect_code(2)
        .expect_stderr(&["no column \"hiden\"", "did you mean \"hidden\""]);
}
