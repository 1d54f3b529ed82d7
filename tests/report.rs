//! `harness report` with the real binary: the means and standard deviations match ones
//! computed here from the same rows; broken inputs exit 2 naming the problem.

mod common;

use common::{Workdir, append_rows, write_rows};
use harness::record::results::{RunRow, Status};

fn row(shape: &str, activation: &str, seed: u64, accuracy: f64, status: Status) -> RunRow {
    RunRow {
        run_id: format!("r{shape}-{activation}-{seed}"),
        attempt: format!("a{shape}-{activation}-{seed}"),
        started_at: format!("2026-01-01T00:00:0{seed}.000Z"),
        shape: shape.into(),
        activation: activation.into(),
        seed,
        params: if shape == "784-16-16-10" {
            13002
        } else {
            101770
        },
        test_accuracy: accuracy,
        total_seconds: seed as f64,
        status,
        ..RunRow::default()
    }
}

const SMALL: &str = "784-16-16-10";
const WIDE: &str = "784-128-10";

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
        rows.push(row(SMALL, "relu", seed as u64 + 1, accuracy, Status::Ok));
    }
    for (seed, &accuracy) in sigmoid.iter().enumerate() {
        rows.push(row(SMALL, "sigmoid", seed as u64 + 1, accuracy, Status::Ok));
    }
    rows.push(row(WIDE, "relu", 1, 0.975, Status::Ok));
    rows.push(row(WIDE, "relu", 2, 0.1, Status::Diverged));
    // A run recorded twice (repeated by hand) counts once: the latest non-failed row.
    let mut again = row(SMALL, "relu", 1, relu[0], Status::Ok);
    again.attempt = "arepeat".into();
    again.started_at = "2026-01-02T00:00:00.000Z".into();
    rows.push(again);
    write_rows(&path, &rows);

    let run = work.harness(&["report", "runs.csv", "--group-by", "shape,activation"]);
    run.expect_code(0);
    let stdout = run.stdout();
    // A Markdown table: the separator has as many cells as the header and every row.
    let table: Vec<&str> = stdout.lines().take_while(|l| l.starts_with('|')).collect();
    let cells = |line: &str| line.matches('|').count();
    assert!(
        table.iter().all(|l| cells(l) == cells(table[0])),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| shape"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let (relu_mean, relu_sd) = mean_sd(&relu);
    let (sigmoid_mean, sigmoid_sd) = mean_sd(&sigmoid);
    assert_eq!(
        lines[0],
        "| 784-128-10 | relu | 1 | test | 0.9750 ± - | 0.9750 | 101770 | 1.0 |"
    );
    assert_eq!(
        lines[1],
        format!(
            "| {SMALL} | relu | 3 | test | {relu_mean:.4} ± {relu_sd:.4} | {relu_mean:.4} | \
             13002 | 2.0 |"
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "| {SMALL} | sigmoid | 2 | test | {sigmoid_mean:.4} ± {sigmoid_sd:.4} | \
             {sigmoid_mean:.4} | 13002 | 1.5 |"
        )
    );
    assert!(
        stdout.contains("1 diverged or failed runs left out"),
        "{stdout}"
    );
    assert!(stdout.contains("1 earlier attempts"), "{stdout}");

    let written = work.harness(&[
        "report",
        "runs.csv",
        "--group-by",
        "shape,activation",
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
        .expect_stderr(&["short.csv", "not a harness runs file"]);
    let path = work.path().join("runs.csv");
    write_rows(&path, &[row(SMALL, "relu", 1, 0.9, Status::Ok)]);
    work.harness(&["report", "runs.csv", "--group-by", "shap"])
        .expect_code(2)
        .expect_stderr(&["no column \"shap\"", "did you mean \"shape\""]);
    // A row with a field too many or a number that is not one: the line is named.
    append_rows(&path, &[row(SMALL, "relu", 2, 0.9, Status::Ok)]);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen(",0.9,", ",zero point nine,", 2)).unwrap();
    work.harness(&["report", "runs.csv"])
        .expect_code(2)
        .expect_stderr(&["runs.csv line 2", "test_accuracy"]);
}

#[test]
fn the_default_grouping_is_every_setting_but_the_seed() {
    let work = Workdir::new();
    let path = work.path().join("runs.csv");
    let mut small = row(SMALL, "relu", 1, 0.95, Status::Ok);
    small.train_size = 10_000;
    let mut big = row(SMALL, "relu", 2, 0.97, Status::Ok);
    big.train_size = 20_000;
    let mut seed3 = row(SMALL, "relu", 3, 0.96, Status::Ok);
    seed3.train_size = 20_000;
    write_rows(&path, &[small, big, seed3]);
    let run = work.harness(&["report", "runs.csv"]);
    run.expect_code(0);
    let stdout = run.stdout();
    // Two groups, told apart by train_size, the only setting that differs.
    assert!(stdout.starts_with("| train_size | runs |"), "{stdout}");
    assert!(stdout.contains("| 20000 | 2 | test | 0.9650"), "{stdout}");
    assert!(stdout.contains("| 10000 | 1 | test | 0.9500"), "{stdout}");
    assert!(
        stdout.contains("The same in every group: backend = none"),
        "{stdout}"
    );
}

/// Regression: a name or an activation holding `|` or a newline forged table rows and whole
/// groups. Every cell of every column is escaped: the table keeps one line per group, and
/// every line the same number of cells.
#[test]
fn text_in_any_column_cannot_forge_a_row_or_a_cell() {
    let work = Workdir::new();
    let path = work.path().join("runs.csv");
    let forged = "relu | 1 | validation | 0.9999 ± 0";
    let mut rows = vec![
        row(
            SMALL,
            "relu\n| fake | 9 | test | 1.0000 ± 0 |",
            1,
            0.9,
            Status::Ok,
        ),
        row(SMALL, "sigmoid", 1, 0.8, Status::Ok),
    ];
    rows[1].name = forged.into();
    rows[0].name = "<script>alert(1)</script>`x`\\".into();
    write_rows(&path, &rows);
    for group_by in ["name", "activation", "name,activation,shape"] {
        let run = work.harness(&["report", "runs.csv", "--group-by", group_by]);
        run.expect_code(0);
        let stdout = run.stdout();
        let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with('|')).collect();
        // A header, its separator and one line per group (two groups).
        assert_eq!(table.len(), 4, "{group_by}:\n{stdout}");
        let cells = |line: &str| line.replace("\\|", "").matches('|').count();
        assert!(
            table.iter().all(|l| cells(l) == cells(table[0])),
            "{group_by}:\n{stdout}"
        );
        assert!(!stdout.contains("<script>"), "{stdout}");
    }
}
