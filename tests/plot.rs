//! `harness plot` with the real binary: the SVG is XML with the axis titles and one marker per
//! run, the PNG decodes at the asked size, broken inputs exit 2.

mod common;

use common::{Workdir, write_rows};
use harness::results::{EpochRow, RunRow, Status};

/// Five ok runs (two activations) and one diverged run, with three epochs each.
fn write_results(work: &Workdir) {
    let runs: Vec<RunRow> = [
        ("a1", "784-16-16-10", "sigmoid", 13_002, 0.94),
        ("a2", "784-16-16-10", "relu", 13_002, 0.95),
        ("a3", "784-128-10", "relu", 101_770, 0.975),
        ("a4", "784-10", "none", 7_850, 0.92),
        ("a5", "784-800-10", "relu", 636_010, 0.98),
    ]
    .into_iter()
    .map(|(id, shape, activation, params, accuracy)| RunRow {
        run_id: format!("r{id}"),
        attempt: id.into(),
        name: format!("run_{id}"),
        shape: shape.into(),
        activation: activation.into(),
        params,
        test_accuracy: accuracy,
        train_seconds: params as f64 / 100_000.0 + 1.0,
        status: Status::Ok,
        ..RunRow::default()
    })
    .chain([RunRow {
        run_id: "rbad".into(),
        attempt: "abad".into(),
        status: Status::Diverged,
        ..RunRow::default()
    }])
    .collect();
    write_rows(&work.path().join("runs.csv"), &runs);
    let epochs: Vec<EpochRow> = runs
        .iter()
        .flat_map(|run| {
            (1..=3).map(|epoch| EpochRow {
                run_id: run.run_id.clone(),
                attempt: run.attempt.clone(),
                epoch,
                test_accuracy: run.test_accuracy - 0.01 * (3 - epoch) as f64,
                ..EpochRow::default()
            })
        })
        .collect();
    write_rows(&work.path().join("epochs.csv"), &epochs);
}

#[test]
fn charts_are_valid_svg_and_png_with_one_marker_per_run() {
    let work = Workdir::new();
    write_results(&work);
    let run = work.harness(&["plot", "runs.csv", "-o", "charts", "--size", "640x480"]);
    run.expect_code(0);

    let svg = std::fs::read_to_string(work.path().join("charts/accuracy_vs_params.svg")).unwrap();
    let document = roxmltree::Document::parse(&svg).expect("the SVG is well-formed XML");
    let texts: Vec<String> = document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect();
    for title in [
        "Test accuracy against parameter count",
        "parameters (weights and biases, log scale)",
        "test accuracy (fraction)",
        "sigmoid",
        "relu",
        "16x16",
        "none",
    ] {
        assert!(
            texts.iter().any(|t| t.trim() == title),
            "no text {title:?} in {texts:?}"
        );
    }
    let circles = document
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    // One marker per ok run, plus one legend marker per activation (and "none").
    assert_eq!(circles, 5 + 3);

    for name in [
        "accuracy_vs_params",
        "accuracy_vs_seconds",
        "learning_curves",
    ] {
        let png = image::open(work.path().join(format!("charts/{name}.png")))
            .expect("a PNG that decodes");
        assert_eq!((png.width(), png.height()), (640, 480), "{name}");
    }
    let curves = std::fs::read_to_string(work.path().join("charts/learning_curves.svg")).unwrap();
    assert!(
        curves.contains("run_a3 (ra3)") && curves.contains("epoch"),
        "learning curves legend"
    );
}

#[test]
fn learning_curves_follow_the_selection() {
    let work = Workdir::new();
    write_results(&work);
    work.harness(&[
        "plot",
        "--filter",
        "activation=sigmoid",
        "-o",
        "f",
        "runs.csv",
    ])
    .expect_code(0);
    let curves = std::fs::read_to_string(work.path().join("f/learning_curves.svg")).unwrap();
    assert!(curves.contains("run_a1 (ra1)") && !curves.contains("run_a4 (ra4)"));
    assert!(!curves.contains("run_a2 (ra2)"));
    work.harness(&["plot", "--runs", "ra5", "-o", "r", "runs.csv"])
        .expect_code(0);
    let curves = std::fs::read_to_string(work.path().join("r/learning_curves.svg")).unwrap();
    assert!(curves.contains("run_a5 (ra5)") && !curves.contains("run_a1 (ra1)"));
}

#[test]
fn broken_inputs_exit_2() {
    let work = Workdir::new();
    write_results(&work);
    work.harness(&["plot", "missing.csv"])
        .expect_code(2)
        .expect_stderr(&["missing.csv"]);
    work.harness(&["plot", "runs.csv", "--filter", "activaton=relu"])
        .expect_code(2)
        .expect_stderr(&["activaton", "did you mean \"activation\""]);
    work.harness(&["plot", "runs.csv", "--runs", "nope"])
        .expect_code(2)
        .expect_stderr(&["nope"]);
    work.write("short.csv", "run_id,status\nx,ok\n");
    work.harness(&["plot", "short.csv"])
        .expect_code(2)
        .expect_stderr(&["short.csv"]);
    work.harness(&["plot", "runs.csv", "--size", "10x10"])
        .expect_code(2)
        .expect_stderr(&["WIDTHxHEIGHT"]);
}
