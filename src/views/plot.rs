//! `harness plot`: charts from the results files, as SVG and PNG.
//!
//! Reads runs.csv (and epochs.csv for learning curves) and nothing else: plotting knows nothing
//! of training. Three charts, each written as `<name>.svg` and `<name>.png`:
//! - `accuracy_vs_params`: accuracy against parameter count, one series per activation,
//!   points labelled with their hidden widths where the label fits (the rest in the legend);
//! - `learning_curves`: accuracy after each epoch for chosen runs;
//! - `accuracy_vs_seconds`: accuracy against training seconds, one series per activation.
//!
//! The accuracy is validation accuracy when every run drawn held images out for validation (the
//! test set then plays no part in what the charts rank), else test accuracy; titles and axes
//! say which.
//!
//! An activation has one colour in every chart ([`activation_colour`]); an x axis is
//! logarithmic when its values span a decade or more ([`log_axis`]). Text uses DejaVu Sans,
//! shipped in assets/fonts/ and named in the SVGs, so PNGs render the same on every machine
//! and SVGs wherever DejaVu Sans is installed.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{exit, user_error};
use crate::net::model::MlpConfig;
use crate::record::claims::Claims;
use crate::record::results::{self, EpochRow, RunRow, Status};

/// The charts' font, registered once per process.
static FONT: Once = Once::new();
/// The family every chart asks for: DejaVu Sans (the shipped file, for PNGs), which SVG
/// viewers find by this name, with their sans-serif as the fallback.
pub const FONT_FAMILY: &str = "DejaVu Sans, sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Which runs the learning curves show.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// More runs files for the search-progress chart, one line each beside the runs file's.
    pub compare: Vec<PathBuf>,
    /// These run ids.
    pub runs: Vec<String>,
    /// Runs whose column equals the value (`activation=relu`); all must match.
    pub filters: Vec<(String, String)>,
}

/// What `harness plot` wrote.
#[derive(Debug)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// Why a chart was not drawn, when one was not.
    pub missing: Option<String>,
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
    let mut claims = Claims::new();
    claims
        .reads(runs_csv, "the runs file")
        .reads(epochs_csv, "the epochs file")
        .folder(out_dir, "plot -o");
    for other in &selection.compare {
        claims.reads(other, "a runs file of --compare");
    }
    for name in CHARTS.iter().chain([&SEARCH_CHART]) {
        for extension in ["svg", "png"] {
            claims.writes_file(&out_dir.join(format!("{name}.{extension}")), "plot -o");
        }
    }
    claims.check()?;
    let mut searches = vec![(search_label(runs_csv), Vec::new())];
    for other in &selection.compare {
        crate::input::regular_file(other, "runs file", crate::input::CSV_MAX)?;
        searches.push((search_label(other), results::read_runs(other)?));
    }
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
    let [params, seconds, learning] = CHARTS;
    both(params, &|area| scatter(area, &ok, Axis::Params), &|area| {
        scatter(area, &ok, Axis::Params)
    })?;
    both(
        seconds,
        &|area| scatter(area, &ok, Axis::Seconds),
        &|area| scatter(area, &ok, Axis::Seconds),
    )?;
    searches[0].1 = rows.clone();
    let progress: Vec<(String, Vec<f64>)> = searches
        .iter()
        .map(|(label, rows)| (label.clone(), best_so_far(rows)))
        .filter(|(_, best)| !best.is_empty())
        .collect();
    both(
        SEARCH_CHART,
        &|area| search_progress(area, &progress),
        &|area| search_progress(area, &progress),
    )?;
    let mut missing = None;
    if !curves.is_empty() {
        both(learning, &|area| learning_curves(area, &curves), &|area| {
            learning_curves(area, &curves)
        })?;
    } else {
        let why = if epochs_csv.exists() {
            format!(
                "{} holds no epochs of the runs chosen",
                epochs_csv.display()
            )
        } else {
            format!(
                "there is no epochs file {} (runs that moved only output.runs keep theirs in \
                 results/epochs.csv, as their summary line says: --epochs names it)",
                epochs_csv.display()
            )
        };
        let stale = ["svg", "png"]
            .iter()
            .map(|e| out_dir.join(format!("{learning}.{e}")))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>();
        let older = if stale.is_empty() {
            String::new()
        } else {
            format!(
                " ({} in the folder: from an earlier plot)",
                stale.join(" and ")
            )
        };
        missing = Some(format!("{learning} not drawn: {why}{older}"));
    }
    Ok(Written { files, missing })
}

/// The chart of a search's progress: the best validation accuracy so far against trials.
const SEARCH_CHART: &str = "search_progress";

/// A runs file's line in the search-progress chart: its folder's name (the file's own name
/// when the folder says nothing, as `results/`).
fn search_label(path: &Path) -> String {
    let folder = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .filter(|n| !n.is_empty() && n != "results" && n != ".");
    folder.unwrap_or_else(|| {
        path.file_stem().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().to_string(),
        )
    })
}

/// The best accuracy after each trial of a runs file (validation accuracy where the runs held
/// images out, else test accuracy), its ok runs in trial order: by the stage (halving rung,
/// TPE wave), then the trial number of a search's names (`..._t07`), then the start time.
/// A failed or diverged trial counts as a trial that found nothing better.
pub fn best_so_far(rows: &[RunRow]) -> Vec<f64> {
    let trial = |name: &str| -> Option<u64> {
        let (_, tail) = name
            .rsplit_once("_t")
            .or_else(|| name.strip_prefix('t').map(|t| ("", t)))?;
        tail.parse().ok()
    };
    let mut runs: Vec<&RunRow> = results::effective(rows);
    runs.sort_by(|a, b| {
        a.rung
            .cmp(&b.rung)
            .then(trial(&a.name).cmp(&trial(&b.name)))
            .then(a.started_at.cmp(&b.started_at))
    });
    let mut best = f64::NEG_INFINITY;
    runs.iter()
        .map(|run| {
            if run.status == Status::Ok && run.selection_accuracy().is_finite() {
                best = best.max(run.selection_accuracy());
            }
            best
        })
        .skip_while(|b| !b.is_finite())
        .collect()
}

/// Best accuracy so far against trials, one line per search.
fn search_progress<DB: DrawingBackend>(
    area: Area<DB>,
    searches: &[(String, Vec<f64>)],
) -> Result<()> {
    area.fill(&WHITE).map_err(drawing)?;
    let trials = searches
        .iter()
        .map(|(_, b)| b.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let y_range = accuracy_range(searches.iter().flat_map(|(_, b)| b.iter().copied()));
    let (width, _) = area.dim_in_pixel();
    let title = "Best accuracy so far against trials";
    let mut chart = ChartBuilder::on(&area)
        .caption(
            title,
            (
                FONT_FAMILY,
                fitting_size(&area, title, 26, width.saturating_sub(40)),
            ),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5..trials as f64 + 0.5, y_range)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_labels(trials.min(20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("trials (in the order the search made them)")
        .y_desc("best validation accuracy so far (fraction)")
        .label_style((FONT_FAMILY, 12))
        .draw()
        .map_err(drawing)?;
    for (i, (label, best)) in searches.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = best
            .iter()
            .enumerate()
            .map(|(t, b)| ((t + 1) as f64, *b))
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(drawing)?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT_FAMILY, 12))
        .draw()
        .map_err(drawing)?;
    Ok(())
}

/// The charts `plot` draws, each as SVG and PNG.
const CHARTS: [&str; 3] = [
    "accuracy_vs_params",
    "accuracy_vs_seconds",
    "learning_curves",
];

/// `harness plot`: draws the charts and prints the files written.
pub fn command(
    runs_csv: &Path,
    epochs_csv: &Path,
    out_dir: &Path,
    size: (u32, u32),
    selection: &Selection,
) -> Result<u8> {
    let written = plot(runs_csv, epochs_csv, out_dir, size, selection)?;
    for file in &written.files {
        println!("{}", file.display());
    }
    if let Some(missing) = written.missing {
        eprintln!("harness: {missing}");
    }
    Ok(exit::OK)
}

/// Registers the shipped DejaVu Sans as [`FONT_FAMILY`] (once per process).
pub(crate) fn register_font() {
    FONT.call_once(|| {
        // Also as "sans-serif", plotters' default family, for any text not given a family.
        for family in [FONT_FAMILY, "sans-serif"] {
            plotters::style::register_font(family, FontStyle::Normal, FONT_BYTES)
                .unwrap_or_else(|_| panic!("assets/fonts/DejaVuSans.ttf is a valid font"));
        }
    });
}

type Area<'a, DB> = DrawingArea<DB, Shift>;

pub(crate) fn drawing<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {error:?}")
}

/// The runs whose learning curves are drawn.
fn choose(ok: &[RunRow], selection: &Selection) -> Result<Vec<RunRow>> {
    let keys: Vec<String> = selection.filters.iter().map(|(k, _)| k.clone()).collect();
    crate::views::report::check_columns(&keys, "--filter")?;
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

/// The colour of each activation's series, the same in every chart (and in the HTML report):
/// Okabe and Ito's colour-blind-safe palette. `none` is a network without a hidden layer.
pub const ACTIVATION_COLOURS: [(&str, (u8, u8, u8)); 7] = [
    ("sigmoid", (0, 114, 178)),
    ("relu", (213, 94, 0)),
    ("tanh", (0, 158, 115)),
    ("leaky_relu", (230, 159, 0)),
    ("gelu", (204, 121, 167)),
    ("identity", (86, 180, 233)),
    ("none", (68, 68, 68)),
];

/// Colours for any other activation label (one name per layer): picked by a hash of the label,
/// so a label keeps its colour whatever else a chart shows.
pub const OTHER_COLOURS: [(u8, u8, u8); 6] = [
    (136, 34, 85),
    (68, 170, 153),
    (153, 153, 51),
    (17, 119, 51),
    (170, 68, 153),
    (102, 17, 0),
];

/// The colour of an activation label's series (see [`ACTIVATION_COLOURS`]).
pub fn activation_colour(label: &str) -> (u8, u8, u8) {
    ACTIVATION_COLOURS
        .iter()
        .find(|(name, _)| *name == label)
        .map(|(_, rgb)| *rgb)
        .unwrap_or_else(|| {
            // FNV-1a: stable across runs and platforms, unlike std's hasher.
            let hash = label.bytes().fold(0x811c_9dc5u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            OTHER_COLOURS[hash as usize % OTHER_COLOURS.len()]
        })
}

/// A run's hidden widths as a label (`16x16`), or `None` without hidden layers.
fn hidden_label(run: &RunRow) -> Option<String> {
    match MlpConfig::parse_shape(&run.shape) {
        Ok(widths) if widths.is_empty() => None,
        Ok(widths) => Some(
            widths
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("x"),
        ),
        Err(_) => Some(run.shape.clone()),
    }
}

/// A run's series: its activation, or `none` when it has no hidden layer.
fn series_of(run: &RunRow) -> &str {
    if hidden_label(run).is_none() {
        "none"
    } else {
        run.activation.as_str()
    }
}

/// The legend text of a series.
fn series_label(series: &str) -> String {
    match series {
        "none" => "none (no hidden layer)".to_string(),
        "" => "(no activation named)".to_string(),
        other => other.to_string(),
    }
}

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

/// Whether values that span this range read better on a log axis: all positive and the largest
/// at least 10 times the smallest (a decade or more).
pub fn log_axis(values: impl IntoIterator<Item = f64>) -> bool {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    lo > 0.0 && hi >= 10.0 * lo
}

/// The largest font size up to `largest` at which `text` fits in `width` pixels.
fn fitting_size<DB: DrawingBackend>(area: &Area<DB>, text: &str, largest: u32, width: u32) -> u32 {
    (8..=largest)
        .rev()
        .find(|&size| {
            area.estimate_text_size(text, &(FONT_FAMILY, size).into_text_style(area))
                .is_ok_and(|(w, _)| w <= width)
        })
        .unwrap_or(8)
}

/// A number on an axis: thousands separated, decimals only where they say something.
fn axis_number(x: f64) -> String {
    let magnitude = x.abs();
    if magnitude >= 100.0 {
        crate::text::thousands(x.round() as usize)
    } else if magnitude >= 10.0 || x == x.round() {
        format!("{x:.0}")
    } else if magnitude >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A tick label on an axis whose values span `span` (padding included or not: the ticks are
/// about a tenth of it apart): [`axis_number`], with more decimals where its would repeat.
fn axis_label(x: f64, span: f64) -> String {
    let plain = axis_number(x);
    if !(span.is_finite() && span > 0.0) || span >= 10.0 {
        return plain;
    }
    let decimals = (-(span / 20.0).log10()).ceil().clamp(0.0, 8.0) as usize;
    let shown = plain.split('.').nth(1).map_or(0, str::len);
    if decimals > shown {
        format!("{x:.decimals$}")
    } else {
        plain
    }
}

/// Which accuracy the charts show: validation when every run drawn has it, else test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Measure {
    Validation,
    Test,
}

impl Measure {
    fn of(runs: &[&RunRow]) -> Measure {
        if !runs.is_empty() && runs.iter().all(|r| r.validation_size > 0) {
            Measure::Validation
        } else {
            Measure::Test
        }
    }

    fn run(self, run: &RunRow) -> f64 {
        match self {
            Measure::Validation => run.val_accuracy,
            Measure::Test => run.test_accuracy,
        }
    }

    fn epoch(self, epoch: &EpochRow) -> f64 {
        match self {
            Measure::Validation => epoch.val_accuracy,
            Measure::Test => epoch.test_accuracy,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Measure::Validation => "validation accuracy",
            Measure::Test => "test accuracy",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Measure::Validation => "Validation accuracy",
            Measure::Test => "Test accuracy",
        }
    }
}

/// Accuracy against parameters or training seconds, one series per activation; a log x axis
/// when the values span a decade or more.
fn scatter<DB: DrawingBackend>(area: Area<DB>, runs: &[RunRow], axis: Axis) -> Result<()> {
    area.fill(&WHITE).map_err(drawing)?;
    let x = |run: &RunRow| match axis {
        Axis::Params => run.params as f64,
        Axis::Seconds => run.train_seconds,
    };
    let measure = Measure::of(&runs.iter().collect::<Vec<_>>());
    let y_range = accuracy_range(runs.iter().map(|r| measure.run(r)));
    let (x_min, x_max) = runs
        .iter()
        .map(x)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let log = log_axis(runs.iter().map(x));
    let (title, quantity) = match axis {
        Axis::Params => (
            format!("{} against parameter count", measure.title()),
            "parameters (weights and biases",
        ),
        Axis::Seconds => (
            format!("{} against training time", measure.title()),
            "training time (seconds",
        ),
    };
    let title = title.as_str();
    let y_desc = format!("{} (fraction)", measure.name());
    let x_desc = format!("{quantity}{})", if log { ", log scale" } else { "" });
    let (width, _) = area.dim_in_pixel();
    let caption = fitting_size(&area, title, 26, width.saturating_sub(40));
    let mut builder = ChartBuilder::on(&area);
    builder
        .caption(title, (FONT_FAMILY, caption))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70);
    // Enough decimals that ticks a tenth of the axis apart read differently (a single run's
    // axis spans a few thousandths of a second).
    let pad = ((x_max - x_min) * 0.08).max(x_max.abs() * 0.05).max(1e-3);
    let span = if log {
        f64::INFINITY
    } else {
        x_max + pad - (x_min - pad).max(0.0)
    };
    let formatter = move |x: &f64| axis_label(*x, span);
    let points = Points {
        runs,
        x: &x,
        labels: matches!(axis, Axis::Params),
        measure,
    };
    if log {
        let chart = builder
            .build_cartesian_2d((x_min / 1.5..x_max * 1.5).log_scale(), y_range)
            .map_err(drawing)?;
        finish(chart, &area, &points, &formatter, &x_desc, &y_desc)
    } else {
        let chart = builder
            .build_cartesian_2d((x_min - pad).max(0.0)..x_max + pad, y_range)
            .map_err(drawing)?;
        finish(chart, &area, &points, &formatter, &x_desc, &y_desc)
    }
}

/// Draws a scatter chart's mesh, axis titles and points, whatever its x axis.
fn finish<'a, DB, X, F>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    area: &Area<DB>,
    points: &Points<F>,
    formatter: &dyn Fn(&f64) -> String,
    x_desc: &str,
    y_desc: &str,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
    F: Fn(&RunRow) -> f64,
{
    chart
        .configure_mesh()
        .x_label_formatter(formatter)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT_FAMILY, 12))
        .axis_desc_style((FONT_FAMILY, 18))
        .draw()
        .map_err(drawing)?;
    points.draw(area, &mut chart)
}

/// The runs of a scatter chart, drawn one series per activation.
struct Points<'r, F: Fn(&RunRow) -> f64> {
    runs: &'r [RunRow],
    x: &'r F,
    /// Label points with their hidden widths (where the labels fit).
    labels: bool,
    measure: Measure,
}

/// Marker radius of a scatter point, in pixels.
const MARKER: i32 = 5;

impl<F: Fn(&RunRow) -> f64> Points<'_, F> {
    fn draw<'a, DB, X>(
        &self,
        area: &Area<DB>,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    ) -> Result<()>
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64>,
    {
        let mut series: BTreeMap<&str, Vec<&RunRow>> = BTreeMap::new();
        for run in self.runs {
            series.entry(series_of(run)).or_default().push(run);
        }
        let mut labels: Vec<String> = series.keys().map(|name| series_label(name)).collect();
        let markers: Vec<(i32, i32)> = self
            .runs
            .iter()
            .map(|run| chart.backend_coord(&((self.x)(run), self.measure.run(run))))
            .collect();
        for (name, runs) in &series {
            let colour = rgb(activation_colour(name));
            chart
                .draw_series(runs.iter().map(|run| {
                    Circle::new(
                        ((self.x)(run), self.measure.run(run)),
                        MARKER,
                        colour.mix(0.85).filled(),
                    )
                }))
                .map_err(drawing)?
                .label(series_label(name))
                .legend(move |(px, py)| Circle::new((px + 10, py), MARKER, colour.filled()));
        }
        if self.labels {
            let unplaced = self.draw_labels(area, chart, &markers)?;
            if !unplaced.is_empty() {
                // Labels that found no free spot are named in the legend instead.
                let label = format!("unlabelled: {}", unplaced.join(", "));
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                    .map_err(drawing)?
                    .label(label.clone())
                    .legend(|(px, py)| EmptyElement::at((px, py)));
                labels.push(label);
            }
        }
        legend(chart, 16, &labels, &markers)
    }

    /// Writes each point's hidden widths beside it where the text overlaps no other label,
    /// marker or edge; points at the same place with the same widths share one label. Returns
    /// the labels that did not fit.
    fn draw_labels<'a, DB, X>(
        &self,
        area: &Area<DB>,
        chart: &ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
        markers: &[(i32, i32)],
    ) -> Result<Vec<String>>
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64>,
    {
        let style = (FONT_FAMILY, 13).into_text_style(area);
        // One label per text and x position (runs of one shape differ only in accuracy: their
        // markers share a column), beside the topmost marker of the column.
        let mut labels: Vec<(String, (i32, i32))> = Vec::new();
        for (run, &at) in self.runs.iter().zip(markers) {
            let text = hidden_label(run).unwrap_or_else(|| "no hidden layer".to_string());
            match labels
                .iter_mut()
                .find(|(t, (x, _))| *t == text && (x - at.0).abs() <= 2)
            {
                Some(label) => label.1.1 = label.1.1.min(at.1),
                None => labels.push((text, at)),
            }
        }
        let sizes: Vec<(u32, u32)> = labels
            .iter()
            .map(|(text, _)| area.estimate_text_size(text, &style).map_err(drawing))
            .collect::<Result<_>>()?;
        let (x_range, y_range) = chart.plotting_area().get_pixel_range();
        let bounds = (x_range.start, y_range.start, x_range.end, y_range.end);
        let anchors: Vec<(i32, i32)> = labels.iter().map(|(_, at)| *at).collect();
        let places = place_labels(&anchors, &sizes, markers, bounds, MARKER);
        let mut unplaced = Vec::new();
        for ((text, _), place) in labels.iter().zip(places) {
            match place {
                Some(corner) => area
                    .draw(&Text::new(text.clone(), corner, style.clone()))
                    .map_err(drawing)?,
                None if !unplaced.contains(text) => unplaced.push(text.clone()),
                None => {}
            }
        }
        Ok(unplaced)
    }
}

/// A box in pixels: left, top, right, bottom.
type PixelBox = (i32, i32, i32, i32);

fn overlaps(a: PixelBox, b: PixelBox) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Places labels of the given pixel sizes next to their anchors, each where it overlaps no
/// marker, no label placed before it and does not leave `bounds`; tried right, left, above,
/// below, then at the four diagonals. Returns each label's top-left corner, or `None` where no
/// spot is free (the caller lists those elsewhere).
pub fn place_labels(
    anchors: &[(i32, i32)],
    sizes: &[(u32, u32)],
    markers: &[(i32, i32)],
    bounds: PixelBox,
    radius: i32,
) -> Vec<Option<(i32, i32)>> {
    let gap = radius + 3;
    let mut taken: Vec<PixelBox> = markers
        .iter()
        .map(|&(x, y)| (x - radius, y - radius, x + radius, y + radius))
        .collect();
    anchors
        .iter()
        .zip(sizes)
        .map(|(&(x, y), &(w, h))| {
            let (w, h) = (w as i32, h as i32);
            let candidates = [
                (x + gap, y - h / 2),
                (x - gap - w, y - h / 2),
                (x - w / 2, y - gap - h),
                (x - w / 2, y + gap),
                (x + radius, y - radius - h),
                (x + radius, y + radius),
                (x - radius - w, y - radius - h),
                (x - radius - w, y + radius),
            ];
            let free = candidates.into_iter().find(|&(left, top)| {
                let spot = (left, top, left + w, top + h);
                spot.0 >= bounds.0
                    && spot.1 >= bounds.1
                    && spot.2 <= bounds.2
                    && spot.3 <= bounds.3
                    && !taken.iter().any(|&t| overlaps(spot, t))
            });
            if let Some((left, top)) = free {
                taken.push((left, top, left + w, top + h));
            }
            free
        })
        .collect()
}

/// Marker shapes that tell apart the runs of one activation (one colour) in learning curves.
#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Cross,
];

impl Marker {
    fn element<DB: DrawingBackend>(
        self,
        at: (i32, i32),
        colour: RGBColor,
    ) -> DynElement<'static, DB, (i32, i32)> {
        let style = colour.filled();
        match self {
            Marker::Circle => Circle::new(at, 4, style).into_dyn(),
            Marker::Triangle => TriangleMarker::new(at, 5, style).into_dyn(),
            Marker::Square => {
                Rectangle::new([(at.0 - 4, at.1 - 4), (at.0 + 4, at.1 + 4)], style).into_dyn()
            }
            Marker::Cross => Cross::new(at, 4, colour.stroke_width(2)).into_dyn(),
        }
    }
}

/// Accuracy after each epoch, one line per run: the colour of its activation, a marker shape
/// per run within one activation.
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
    let measure = Measure::of(&curves.iter().map(|(run, _)| run).collect::<Vec<_>>());
    let y_range = accuracy_range(
        curves
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|r| measure.epoch(r))),
    );
    let y_desc = format!("{} (fraction)", measure.name());
    let (width, _) = area.dim_in_pixel();
    let title = "Learning curves";
    let mut chart = ChartBuilder::on(&area)
        .caption(
            title,
            (
                FONT_FAMILY,
                fitting_size(&area, title, 26, width.saturating_sub(40)),
            ),
        )
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
        .y_desc(&y_desc)
        .label_style((FONT_FAMILY, 12))
        .axis_desc_style((FONT_FAMILY, 18))
        .draw()
        .map_err(drawing)?;
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut labels = Vec::new();
    let mut occupied = Vec::new();
    for (run, rows) in curves {
        let series = series_of(run);
        let count = seen.entry(series).or_default();
        let marker = MARKERS[*count % MARKERS.len()];
        *count += 1;
        let colour = rgb(activation_colour(series));
        let points: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| (r.epoch as f64, measure.epoch(r)))
            .collect();
        occupied.extend(points.iter().map(|p| chart.backend_coord(p)));
        let label = format!("{} ({})", run.name, run.run_id);
        labels.push(label.clone());
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(drawing)?
            .label(label)
            .legend(move |(px, py)| {
                EmptyElement::at((px, py))
                    + PathElement::new(vec![(0, 0), (20, 0)], colour.stroke_width(2))
                    + marker.element((10, 0), colour)
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| EmptyElement::at(p) + marker.element::<DB>((0, 0), colour)),
            )
            .map_err(drawing)?;
    }
    legend(&mut chart, 14, &labels, &occupied)
}
/// The corners and sides a legend may take, in the order they are preferred.
const LEGEND_PLACES: [SeriesLabelPosition; 8] = [
    SeriesLabelPosition::LowerRight,
    SeriesLabelPosition::UpperLeft,
    SeriesLabelPosition::UpperRight,
    SeriesLabelPosition::LowerLeft,
    SeriesLabelPosition::MiddleRight,
    SeriesLabelPosition::MiddleLeft,
    SeriesLabelPosition::UpperMiddle,
    SeriesLabelPosition::LowerMiddle,
];

/// The series legend, in the first of [`LEGEND_PLACES`] where its box covers none of the
/// `occupied` points (markers, in the backend's pixels), else where it covers the fewest.
/// `labels` are the series' labels, to size the box as plotters lays it out.
fn legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    font_size: u32,
    labels: &[String],
    occupied: &[(i32, i32)],
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
    let font: TextStyle = (FONT_FAMILY, font_size).into_font().into();
    let mut text = MultiLineText::<(i32, i32), &str>::new((0, 0), &font);
    for label in labels {
        text.push_line(label.as_str());
    }
    let (w, h) = text.estimate_dimension().map_err(drawing)?;
    let place = legend_place((w, h), chart.plotting_area().get_pixel_range(), occupied);
    chart
        .configure_series_labels()
        .position(place)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT_FAMILY, font_size))
        .draw()
        .map_err(drawing)
}

/// Where a legend whose text is `text` pixels goes in a plotting area of `pixels`: the first of
/// [`LEGEND_PLACES`] whose box (plotters' layout: a 30-pixel key column, 10-pixel margins, 5
/// pixels from the edges) covers no point of `occupied`, else the one that covers the fewest.
fn legend_place(
    text: (i32, i32),
    pixels: (Range<i32>, Range<i32>),
    occupied: &[(i32, i32)],
) -> SeriesLabelPosition {
    let (w, h) = (text.0 + 30 + 20, text.1 + 20);
    let (xs, ys) = pixels;
    let (area_w, area_h) = (xs.end - xs.start, ys.end - ys.start);
    let covered = |place: &SeriesLabelPosition| {
        use SeriesLabelPosition::*;
        let x = match place {
            UpperLeft | MiddleLeft | LowerLeft => 5,
            UpperRight | MiddleRight | LowerRight => area_w - w - 5,
            _ => (area_w - w) / 2,
        } + xs.start;
        let y = match place {
            UpperLeft | UpperMiddle | UpperRight => 5,
            LowerLeft | LowerMiddle | LowerRight => area_h - h - 5,
            _ => (area_h - h) / 2,
        } + ys.start;
        occupied
            .iter()
            .filter(|&&(px, py)| {
                px + MARKER >= x && px - MARKER <= x + w && py + MARKER >= y && py - MARKER <= y + h
            })
            .count()
    };
    LEGEND_PLACES
        .iter()
        .min_by_key(|place| covered(place))
        .cloned()
        .unwrap_or(SeriesLabelPosition::LowerRight)
}

/// A y range around the accuracies, within [0, 1].
fn accuracy_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values.fold((1.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.1).max(0.005);
    (lo - pad).max(0.0)..(hi + pad).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_so_far_follows_the_trials_of_each_wave_and_skips_failures() {
        let row = |name: &str, rung: u64, accuracy: f64, status: Status| RunRow {
            run_id: format!("r{name}"),
            attempt: format!("a{name}"),
            name: name.into(),
            rung,
            validation_size: 100,
            val_accuracy: accuracy,
            status,
            ..RunRow::default()
        };
        // Recorded out of order, as parallel jobs finish: trials t00..t03 in waves 0 and 1.
        let rows = [
            row("x_t01", 0, 0.90, Status::Ok),
            row("x_t03", 1, 0.95, Status::Ok),
            row("x_t00", 0, 0.80, Status::Ok),
            row("x_t02", 1, 0.99, Status::Failed),
        ];
        assert_eq!(best_so_far(&rows), [0.80, 0.90, 0.90, 0.95]);
    }

    #[test]
    fn an_activation_keeps_its_colour() {
        assert_eq!(activation_colour("relu"), (213, 94, 0));
        assert_eq!(activation_colour("sigmoid"), (0, 114, 178));
        assert_eq!(activation_colour("none"), (68, 68, 68));
        let mixed = activation_colour("relu,tanh");
        assert_eq!(mixed, activation_colour("relu,tanh"), "the same every time");
        assert!(OTHER_COLOURS.contains(&mixed));
        let known: Vec<_> = ACTIVATION_COLOURS.iter().map(|(_, c)| *c).collect();
        let mut unique = known.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            known.len(),
            "no two activations share a colour"
        );
    }

    #[test]
    fn a_run_without_hidden_layer_is_its_own_series() {
        let run = RunRow {
            shape: "784-10".into(),
            activation: "none".into(),
            ..RunRow::default()
        };
        assert_eq!(series_of(&run), "none");
        assert_eq!(series_label(series_of(&run)), "none (no hidden layer)");
        assert_eq!(series_label(""), "(no activation named)");
    }

    #[test]
    fn log_axis_when_the_values_span_a_decade() {
        assert!(!log_axis([1.0, 5.0, 9.9]));
        assert!(log_axis([0.5, 3.0, 50.0]));
        assert!(log_axis([7_850.0, 636_010.0]));
        assert!(!log_axis([0.0, 100.0]), "zero has no place on a log axis");
        assert!(!log_axis([]));
    }

    #[test]
    fn labels_at_one_spot_do_not_overlap() {
        let anchors = [(100, 100), (100, 100), (104, 100)];
        let sizes = [(40, 14); 3];
        let places = place_labels(&anchors, &sizes, &anchors, (0, 0, 400, 300), 5);
        let boxes: Vec<PixelBox> = places
            .iter()
            .map(|p| {
                let (x, y) = p.expect("room for three labels");
                (x, y, x + 40, y + 14)
            })
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                assert!(!overlaps(*a, *b), "{a:?} overlaps {b:?}");
            }
            for &(x, y) in &anchors {
                assert!(
                    !overlaps(*a, (x - 5, y - 5, x + 5, y + 5)),
                    "covers a marker"
                );
            }
        }
        // The third marker takes the right of the first: that label goes to the left.
        assert_eq!(places[0], Some((100 - 8 - 40, 93)));
    }

    #[test]
    fn a_label_that_fits_nowhere_is_left_out() {
        // A 300-pixel label in a 200-pixel plot.
        let places = place_labels(&[(100, 50)], &[(300, 14)], &[], (0, 0, 200, 100), 5);
        assert_eq!(places, vec![None]);
        // Boxed in by a dense field of markers.
        let field: Vec<(i32, i32)> = (0..40)
            .flat_map(|i| (0..40).map(move |j| (50 + i * 6, 50 + j * 6)))
            .collect();
        let places = place_labels(&[(170, 170)], &[(30, 12)], &field, (0, 0, 400, 400), 5);
        assert_eq!(places, vec![None]);
    }

    #[test]
    fn ticks_of_a_narrow_axis_read_differently() {
        // One run at 0.02 s: the axis spans 0.019 to 0.021.
        let span = 0.002;
        let ticks: Vec<String> = (0..=8)
            .map(|k| axis_label(0.019 + k as f64 * 0.00025, span))
            .collect();
        let mut unique = ticks.clone();
        unique.dedup();
        assert_eq!(unique.len(), ticks.len(), "{ticks:?}");
        assert_eq!(axis_label(13_002.0, 5_000.0), "13,002");
        assert_eq!(axis_label(2.5, 30.0), "2.5");
    }

    #[test]
    fn a_legend_goes_where_it_covers_no_point() {
        let pixels = (0..600, 0..400);
        // Points in the lower right corner: the legend moves to the upper left.
        let crowded = [(560, 360), (580, 380), (540, 370)];
        let place = legend_place((100, 40), pixels.clone(), &crowded);
        assert!(matches!(place, SeriesLabelPosition::UpperLeft), "{place:?}");
        // Nothing in the lower right: it stays there.
        let place = legend_place((100, 40), pixels.clone(), &[(20, 20)]);
        assert!(
            matches!(place, SeriesLabelPosition::LowerRight),
            "{place:?}"
        );
    }

    #[test]
    fn axis_numbers_read_plainly() {
        assert_eq!(axis_number(13_002.0), "13,002");
        assert_eq!(axis_number(5.0), "5");
        assert_eq!(axis_number(2.5), "2.5");
        assert_eq!(axis_number(0.25), "0.25");
        assert_eq!(axis_number(30.0), "30");
    }
}
