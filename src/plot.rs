//! `harness plot`: charts from the results files, as SVG and PNG.
//!
//! Reads runs.csv (and epochs.csv for learning curves) and nothing else: plotting knows nothing
//! of training. Three charts, each written as `<name>.svg` and `<name>.png`:
//! - `accuracy_vs_params`: test accuracy against parameter count (log axis), one series per
//!   activation, each point labelled with its hidden widths;
//! - `learning_curves`: test accuracy after each epoch for chosen runs;
//! - `accuracy_vs_seconds`: test accuracy against training seconds, one series per activation.
//!
//! Text uses DejaVu Sans, shipped in assets/fonts/, so PNGs render the same on every machine.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{exit, user_error};
use crate::model::MlpConfig;
use crate::results::{self, EpochRow, RunRow, Status};

/// The charts' font, registered once per process.
static FONT: Once = Once::new();
const FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Which runs the learning curves show.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// These run ids.
    pub runs: Vec<String>,
    /// Runs whose column equals the value (`activation=relu`); all must match.
    pub filters: Vec<(String, String)>,
}

/// What `harness plot` wrote.
#[derive(Debug)]
pub struct Written {
    pub files: Vec<PathBuf>,
}

/// The most learning curves drawn when no runs are selected.
const DEFAULT_CURVES: usize = 8;

/// Draws the three charts from `runs_csv` (and the epochs file beside it) into `out_dir`.
pub fn plot(
    runs_csv: &Path,
    epochs_csv: &Path,
    out_dir: &Path,
    size: (u32, u32),
    selection: &Selection,
) -> Result<Written> {
    register_font();
    crate::input::regular_file(runs_csv, "runs file", crate::input::CSV_MAX)?;
    let rows = results::read_runs(runs_csv)?;
    let ok: Vec<RunRow> = results::effective(&rows)
        .into_iter()
        .filter(|r| r.status == Status::Ok)
        .cloned()
        .collect();
    if ok.is_empty() {
        return Err(user_error(format!(
            "{} has no run with status ok to plot",
            runs_csv.display()
        )));
    }
    let chosen = choose(&ok, selection)?;
    let curves: Vec<(RunRow, Vec<EpochRow>)> = if epochs_csv.exists() {
        let epochs = results::read_epochs(epochs_csv)?;
        chosen
            .into_iter()
            .map(|run| {
                let rows = epochs
                    .iter()
                    .filter(|e| e.attempt == run.attempt)
                    .cloned()
                    .collect();
                (run, rows)
            })
            .filter(|(_, rows): &(RunRow, Vec<EpochRow>)| !rows.is_empty())
            .collect()
    } else {
        Vec::new()
    };

    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create folder {}", out_dir.display()))?;
    let mut files = Vec::new();
    let mut both = |name: &str,
                    draw: &dyn Fn(Area<SVGBackend>) -> Result<()>,
                    draw_png: &dyn Fn(Area<BitMapBackend>) -> Result<()>|
     -> Result<()> {
        let svg = out_dir.join(format!("{name}.svg"));
        {
            let root = SVGBackend::new(&svg, size).into_drawing_area();
            draw(root.clone())?;
            root.present().map_err(drawing)?;
        }
        let png = out_dir.join(format!("{name}.png"));
        {
            let root = BitMapBackend::new(&png, size).into_drawing_area();
            draw_png(root.clone())?;
            root.present().map_err(drawing)?;
        }
        files.extend([svg, png]);
        Ok(())
    };
    both(
        "accuracy_vs_params",
        &|area| scatter(area, &ok, Axis::Params),
        &|area| scatter(area, &ok, Axis::Params),
    )?;
    both(
        "accuracy_vs_seconds",
        &|area| scatter(area, &ok, Axis::Seconds),
        &|area| scatter(area, &ok, Axis::Seconds),
    )?;
    if !curves.is_empty() {
        both(
            "learning_curves",
            &|area| learning_curves(area, &curves),
            &|area| learning_curves(area, &curves),
        )?;
    }
    Ok(Written { files })
}

/// `harness plot`: draws the charts and prints the files written.
pub fn command(
    runs_csv: &Path,
    epochs_csv: &Path,
    out_dir: &Path,
    size: (u32, u32),
    selection: &Selection,
) -> Result<u8> {
    for file in plot(runs_csv, epochs_csv, out_dir, size, selection)?.files {
        println!("{}", file.display());
    }
    Ok(exit::OK)
}

/// Makes the shipped DejaVu Sans the charts' "sans-serif" (once per process).
pub(crate) fn register_font() {
    FONT.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES)
            .unwrap_or_else(|_| panic!("assets/fonts/DejaVuSans.ttf is a valid font"));
    });
}

type Area<'a, DB> = DrawingArea<DB, Shift>;

pub(crate) fn drawing<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {error:?}")
}

/// The runs whose learning curves are drawn.
fn choose(ok: &[RunRow], selection: &Selection) -> Result<Vec<RunRow>> {
    let keys: Vec<String> = selection.filters.iter().map(|(k, _)| k.clone()).collect();
    crate::report::check_columns(&keys, "--filter")?;
    for id in &selection.runs {
        if !ok.iter().any(|run| &run.run_id == id) {
            return Err(user_error(format!("--runs: no ok run with id {id}")));
        }
    }
    let matches = |run: &RunRow| {
        let row = serde_json::to_value(run).expect("a row serializes");
        selection
            .filters
            .iter()
            .all(|(key, value)| match &row[key] {
                serde_json::Value::String(s) => s == value,
                serde_json::Value::Number(n) => value.parse::<f64>().ok() == n.as_f64(),
                other => value.parse::<serde_json::Value>().ok().as_ref() == Some(other),
            })
    };
    let mut chosen: Vec<RunRow> = ok
        .iter()
        .filter(|run| selection.runs.is_empty() || selection.runs.contains(&run.run_id))
        .filter(|run| matches(run))
        .cloned()
        .collect();
    if selection.runs.is_empty() && selection.filters.is_empty() {
        chosen.truncate(DEFAULT_CURVES);
    }
    Ok(chosen)
}

#[derive(Clone, Copy)]
enum Axis {
    Params,
    Seconds,
}

/// Test accuracy against parameters (log) or training seconds, one series per activation.
fn scatter<DB: DrawingBackend>(area: Area<DB>, runs: &[RunRow], axis: Axis) -> Result<()> {
    area.fill(&WHITE).map_err(drawing)?;
    let x = |run: &RunRow| match axis {
        Axis::Params => run.params as f64,
        Axis::Seconds => run.train_seconds,
    };
    let y_range = accuracy_range(runs.iter().map(|r| r.test_accuracy));
    let (x_min, x_max) = runs
        .iter()
        .map(x)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let mut series: BTreeMap<&str, Vec<&RunRow>> = BTreeMap::new();
    for run in runs {
        series.entry(run.activation.as_str()).or_default().push(run);
    }
    let mut builder = ChartBuilder::on(&area);
    builder
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70);
    let label_style = ("sans-serif", 18);
    match axis {
        Axis::Params => {
            let mut chart = builder
                .caption("Test accuracy against parameter count", ("sans-serif", 26))
                .build_cartesian_2d((x_min / 1.5..x_max * 1.5).log_scale(), y_range)
                .map_err(drawing)?;
            chart
                .configure_mesh()
                .x_label_formatter(&|x| crate::text::thousands(x.round() as usize))
                .x_desc("parameters (weights and biases, log scale)")
                .y_desc("test accuracy (fraction)")
                .axis_desc_style(label_style)
                .draw()
                .map_err(drawing)?;
            draw_series(&mut chart, &series, x, true)?;
        }
        Axis::Seconds => {
            let pad = (x_max - x_min).max(1.0) * 0.08;
            let mut chart = builder
                .caption("Test accuracy against training time", ("sans-serif", 26))
                .build_cartesian_2d((x_min - pad).max(0.0)..x_max + pad, y_range)
                .map_err(drawing)?;
            chart
                .configure_mesh()
                .x_label_formatter(&|x| format!("{x:.1}"))
                .x_desc("training time (seconds)")
                .y_desc("test accuracy (fraction)")
                .axis_desc_style(label_style)
                .draw()
                .map_err(drawing)?;
            draw_series(&mut chart, &series, x, false)?;
        }
    }
    Ok(())
}

fn draw_series<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    series: &BTreeMap<&str, Vec<&RunRow>>,
    x: impl Fn(&RunRow) -> f64,
    label_points: bool,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
{
    for (index, (activation, runs)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(
                runs.iter()
                    .map(|run| Circle::new((x(run), run.test_accuracy), 5, color.filled())),
            )
            .map_err(drawing)?
            .label(activation.to_string())
            .legend(move |(px, py)| Circle::new((px + 10, py), 5, color.filled()));
        if label_points {
            chart
                .draw_series(runs.iter().map(|run| {
                    let hidden = MlpConfig::parse_shape(&run.shape).map_or_else(
                        |_| run.shape.clone(),
                        |widths| {
                            if widths.is_empty() {
                                "none".to_string()
                            } else {
                                widths
                                    .iter()
                                    .map(usize::to_string)
                                    .collect::<Vec<_>>()
                                    .join("x")
                            }
                        },
                    );
                    Text::new(hidden, (x(run), run.test_accuracy), ("sans-serif", 13))
                }))
                .map_err(drawing)?;
        }
    }
    legend(chart, 16)
}

/// Test accuracy after each epoch, one line per run.
fn learning_curves<DB: DrawingBackend>(
    area: Area<DB>,
    curves: &[(RunRow, Vec<EpochRow>)],
) -> Result<()> {
    area.fill(&WHITE).map_err(drawing)?;
    let epochs = curves
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| r.epoch))
        .max()
        .unwrap_or(1);
    let y_range = accuracy_range(
        curves
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|r| r.test_accuracy)),
    );
    let mut chart = ChartBuilder::on(&area)
        .caption("Learning curves", ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5..epochs as f64 + 0.5, y_range)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_labels((epochs as usize).min(20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("epoch")
        .y_desc("test accuracy (fraction)")
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(drawing)?;
    for (index, (run, rows)) in curves.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let points: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| (r.epoch as f64, r.test_accuracy))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(drawing)?
            .label(format!("{} ({})", run.name, run.run_id))
            .legend(move |(px, py)| {
                PathElement::new(vec![(px, py), (px + 20, py)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(drawing)?;
    }
    legend(&mut chart, 14)
}

/// The series legend, in the lower right corner of every chart.
fn legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    font_size: u32,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", font_size))
        .draw()
        .map_err(drawing)
}

/// A y range around the accuracies, within [0, 1].
fn accuracy_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values.fold((1.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.1).max(0.005);
    (lo - pad).max(0.0)..(hi + pad).min(1.0)
}
