//! `harness plot` with the real binary: the SVG is XML with the axis titles and one marker per
//! run, the PNG decodes at the asked size, broken inputs exit 2; an activation has one colour
//! in every chart, SVG text names the shipped font, an axis spanning decades is logarithmic.

mod common;

use common::{Workdir, write_rows};
use harness::record::results::{EpochRow, RunRow, Status};

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
        "none (no hidden layer)",
        "no hidden layer",
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
    // One marker per ok run, plus one legend marker per series (sigmoid, relu, none).
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

/// The fill colours of an SVG's circles, as the SVG writes them.
fn circle_fills(svg: &str) -> Vec<String> {
    let document = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    document
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .filter_map(|n| n.attribute("fill").map(str::to_string))
        .collect()
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// Regression: colours went by series order, so red was relu in one chart and the
/// no-hidden-layer series in another.
#[test]
fn an_activation_has_one_colour_in_every_chart() {
    let work = Workdir::new();
    write_results(&work);
    work.harness(&["plot", "runs.csv", "-o", "charts"])
        .expect_code(0);
    let relu = hex(harness::views::plot::activation_colour("relu"));
    let sigmoid = hex(harness::views::plot::activation_colour("sigmoid"));
    let none = hex(harness::views::plot::activation_colour("none"));
    for name in [
        "accuracy_vs_params",
        "accuracy_vs_seconds",
        "learning_curves",
    ] {
        let svg = std::fs::read_to_string(work.path().join(format!("charts/{name}.svg"))).unwrap();
        let fills = circle_fills(&svg);
        for colour in [&relu, &sigmoid, &none] {
            assert!(
                svg.contains(colour.as_str()),
                "{name}: no element in {colour} (fills {fills:?})"
            );
        }
    }
    let params =
        std::fs::read_to_string(work.path().join("charts/accuracy_vs_params.svg")).unwrap();
    let fills = circle_fills(&params);
    // a2, a3, a5 are relu: three markers and a legend marker in relu's colour.
    assert_eq!(
        fills.iter().filter(|f| **f == relu).count(),
        3 + 1,
        "{fills:?}"
    );
    assert_eq!(
        fills.iter().filter(|f| **f == none).count(),
        1 + 1,
        "{fills:?}"
    );
}

/// Regression: SVG text asked for `sans-serif` and rendered in another font than the PNGs.
#[test]
fn svg_text_names_the_shipped_font() {
    let work = Workdir::new();
    write_results(&work);
    work.harness(&["plot", "runs.csv", "-o", "charts"])
        .expect_code(0);
    for name in [
        "accuracy_vs_params",
        "accuracy_vs_seconds",
        "learning_curves",
    ] {
        let svg = std::fs::read_to_string(work.path().join(format!("charts/{name}.svg"))).unwrap();
        let document = roxmltree::Document::parse(&svg).unwrap();
        let families: std::collections::BTreeSet<&str> = document
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.attribute("font-family"))
            .collect();
        assert_eq!(
            families.into_iter().collect::<Vec<_>>(),
            [harness::views::plot::FONT_FAMILY],
            "{name}"
        );
        assert!(harness::views::plot::FONT_FAMILY.starts_with("DejaVu Sans"));
    }
}

/// Regression: accuracy against seconds on a linear axis put almost every point at x = 0.
#[test]
fn seconds_spanning_decades_get_a_log_axis() {
    let work = Workdir::new();
    write_results(&work);
    work.harness(&["plot", "runs.csv", "-o", "linear"])
        .expect_code(0);
    let svg = std::fs::read_to_string(work.path().join("linear/accuracy_vs_seconds.svg")).unwrap();
    assert!(
        svg.contains("training time (seconds)"),
        "1.1 to 7.4 s: linear"
    );

    let runs: Vec<RunRow> = [0.4, 2.0, 30.0, 600.0]
        .into_iter()
        .enumerate()
        .map(|(i, seconds)| RunRow {
            run_id: format!("rs{i}"),
            attempt: format!("as{i}"),
            shape: "784-16-10".into(),
            activation: "relu".into(),
            params: 12_730,
            test_accuracy: 0.9 + i as f64 * 0.01,
            train_seconds: seconds,
            status: Status::Ok,
            ..RunRow::default()
        })
        .collect();
    std::fs::create_dir_all(work.path().join("slow")).unwrap();
    write_rows(&work.path().join("slow/runs.csv"), &runs);
    work.harness(&["plot", "slow/runs.csv", "-o", "log"])
        .expect_code(0);
    let svg = std::fs::read_to_string(work.path().join("log/accuracy_vs_seconds.svg")).unwrap();
    assert!(
        svg.contains("training time (seconds, log scale)"),
        "0.4 to 600 s: log"
    );
}

/// Regression: the labels of runs with the same widths stacked into one unreadable pile.
#[test]
fn runs_of_one_shape_share_one_label() {
    let work = Workdir::new();
    let runs: Vec<RunRow> = ["sigmoid", "relu", "tanh"]
        .into_iter()
        .flat_map(|activation| {
            (1..=2).map(move |seed| RunRow {
                run_id: format!("r{activation}{seed}"),
                attempt: format!("a{activation}{seed}"),
                shape: "784-16-16-10".into(),
                activation: activation.into(),
                params: 13_002,
                test_accuracy: 0.92 + seed as f64 * 0.004,
                train_seconds: 1.0 + seed as f64,
                status: Status::Ok,
                ..RunRow::default()
            })
        })
        .chain([RunRow {
            run_id: "rwide".into(),
            attempt: "awide".into(),
            shape: "784-64-64-10".into(),
            activation: "relu".into(),
            params: 55_050,
            test_accuracy: 0.97,
            train_seconds: 2.0,
            status: Status::Ok,
            ..RunRow::default()
        }])
        .collect();
    write_rows(&work.path().join("runs.csv"), &runs);
    work.harness(&["plot", "runs.csv", "-o", "charts"])
        .expect_code(0);
    let svg = std::fs::read_to_string(work.path().join("charts/accuracy_vs_params.svg")).unwrap();
    let document = roxmltree::Document::parse(&svg).unwrap();
    let labels = |text: &str| {
        document
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter(|n| n.text().map(str::trim) == Some(text))
            .count()
    };
    assert_eq!(
        labels("16x16"),
        1,
        "six runs at 13,002 parameters, one label"
    );
    assert_eq!(labels("64x64"), 1);
}

/// Runs that held images out are charted by validation accuracy, and the charts say so.
#[test]
fn runs_with_validation_are_charted_by_validation_accuracy() {
    let work = Workdir::new();
    let runs: Vec<RunRow> = [("a", 0.91, 0.97), ("b", 0.95, 0.90)]
        .into_iter()
        .map(|(id, validation, test)| RunRow {
            run_id: format!("r{id}"),
            attempt: format!("a{id}"),
            name: format!("run_{id}"),
            shape: "784-16-10".into(),
            activation: "relu".into(),
            params: 12_730,
            validation_size: 10_000,
            val_accuracy: validation,
            test_accuracy: test,
            train_seconds: 1.0,
            status: Status::Ok,
            ..RunRow::default()
        })
        .collect();
    write_rows(&work.path().join("runs.csv"), &runs);
    work.harness(&["plot", "runs.csv", "-o", "v"])
        .expect_code(0);
    let svg = std::fs::read_to_string(work.path().join("v/accuracy_vs_params.svg")).unwrap();
    assert!(
        svg.contains("Validation accuracy against parameter count"),
        "{svg}"
    );
    assert!(svg.contains("validation accuracy (fraction)"));
    assert!(!svg.contains("test accuracy"));
}

/// A runs file put elsewhere says where its epochs went (they stay in results/epochs.csv:
/// one epochs file for every spelling of a runs file), `plot` of it with --epochs draws the
/// learning curves, and a chart that cannot be drawn is said, with what an earlier plot left.
#[test]
fn a_moved_runs_file_says_where_its_epochs_went_and_a_missing_chart_is_said() {
    let work = Workdir::new();
    let config = common::tiny_config(&work);
    work.harness(&[
        "run",
        &config,
        "-q",
        "--set",
        "output.runs=elsewhere/runs.csv",
    ])
    .expect_code(0)
    .expect_stdout(&["appended to elsewhere/runs.csv, epochs in results/epochs.csv"]);
    work.harness(&[
        "plot",
        "elsewhere/runs.csv",
        "-o",
        "charts",
        "--epochs",
        "results/epochs.csv",
    ])
    .expect_code(0)
    .expect_stdout(&["charts/learning_curves.svg"]);
    let again = work.harness(&["plot", "elsewhere/runs.csv", "-o", "charts"]);
    again.expect_code(0).expect_stderr(&[
        "learning_curves not drawn: there is no epochs file elsewhere/epochs.csv",
        "results/epochs.csv",
        "charts/learning_curves.svg",
        "from an earlier plot",
    ]);
    assert!(
        !again.stdout().contains("learning_curves"),
        "{}",
        again.describe()
    );
    // Beside its runs file, nothing more is said.
    let plain = work.harness(&["run", &config, "-q", "--set", "seed=9"]);
    plain.expect_code(0);
    assert!(
        !plain.stdout().contains("epochs in"),
        "{}",
        plain.describe()
    );
}

/// The legend box covers no marker, even when the points crowd the corner it takes by default
/// (the lower right: the largest networks with the lowest accuracies), and a single run's time
/// axis has tick labels that differ (it spans a few thousandths of a second).
#[test]
fn no_legend_over_a_marker_and_distinct_ticks_for_one_run() {
    let work = Workdir::new();
    let runs: Vec<RunRow> = (0..9)
        .map(|k| RunRow {
            run_id: format!("r{k}"),
            attempt: format!("a{k}"),
            name: format!("run_{k}"),
            shape: if k < 6 { "784-64-64-10" } else { "784-16-10" }.into(),
            activation: ["sigmoid", "relu", "tanh"][k % 3].into(),
            params: if k < 6 { 55_050 } else { 12_730 },
            test_accuracy: if k < 6 { 0.90 + k as f64 * 0.002 } else { 0.97 },
            train_seconds: 1.0 + k as f64,
            status: Status::Ok,
            ..RunRow::default()
        })
        .collect();
    write_rows(&work.path().join("runs.csv"), &runs);
    work.harness(&["plot", "runs.csv", "-o", "charts", "--size", "640x480"])
        .expect_code(0);
    for chart in ["accuracy_vs_params", "accuracy_vs_seconds"] {
        let svg = std::fs::read_to_string(work.path().join(format!("charts/{chart}.svg"))).unwrap();
        let document = roxmltree::Document::parse(&svg).unwrap();
        let number = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
        // The legend: the box drawn half see-through over the plot.
        let boxes: Vec<(f64, f64, f64, f64)> = document
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("opacity") == Some("0.8"))
            .map(|n| {
                let (x, y) = (number(n, "x"), number(n, "y"));
                (x, y, x + number(n, "width"), y + number(n, "height"))
            })
            .collect();
        assert_eq!(boxes.len(), 1, "{chart}: one legend box in {svg}");
        let (x0, y0, x1, y1) = boxes[0];
        // The runs' markers (drawn see-through; the legend's keys are not).
        let markers: Vec<(f64, f64)> = document
            .descendants()
            .filter(|n| n.has_tag_name("circle") && n.attribute("opacity") == Some("0.85"))
            .map(|n| (number(n, "cx"), number(n, "cy")))
            .collect();
        assert_eq!(markers.len(), 9, "{chart}");
        for (cx, cy) in markers {
            assert!(
                !(x0 - 5.0..=x1 + 5.0).contains(&cx) || !(y0 - 5.0..=y1 + 5.0).contains(&cy),
                "{chart}: the legend ({x0}, {y0})-({x1}, {y1}) covers the marker at ({cx}, {cy})"
            );
        }
    }

    let one = &runs[..1];
    let mut single = one.to_vec();
    single[0].train_seconds = 0.02;
    write_rows(&work.path().join("one.csv"), &single);
    work.harness(&["plot", "one.csv", "-o", "one"])
        .expect_code(0);
    let svg = std::fs::read_to_string(work.path().join("one/accuracy_vs_seconds.svg")).unwrap();
    let document = roxmltree::Document::parse(&svg).unwrap();
    let ticks: Vec<String> = document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .filter(|t| t.starts_with("0.0"))
        .collect();
    assert!(ticks.len() >= 3, "{ticks:?}");
    let mut unique = ticks.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ticks.len(), "tick labels repeat: {ticks:?}");
}
