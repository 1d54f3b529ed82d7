//! `harness report --html`: one self-contained HTML page of a sweep's runs.
//!
//! [`collect`] is the only reader of the results files here: it turns a runs file and its epochs
//! file into [`ReportData`] (named columns of text and numbers, one row per run_id, each row's
//! epochs), and everything after it (the page's script and style in assets/report/) works on
//! column names, whichever columns a file has. Pictures of saved models are drawn by `inspect`
//! through [`pictures`], for a bounded number of runs. The page fetches nothing: data, script,
//! style and pictures are inside the file, and its Content-Security-Policy forbids any request.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;
use serde::Serialize;

use crate::error::user_error;
use crate::record::claims::{Claims, write_atomically};
use crate::record::results::{self, EpochRow, RunRow};
use crate::record::saved;
use crate::text::{html_text, script_json};
use crate::views::inspect;

const SCRIPT: &str = include_str!("../../assets/report/report.js");
const STYLE: &str = include_str!("../../assets/report/report.css");

/// The most runs whose pictures a page embeds by default (the best by accuracy).
pub const DEFAULT_PICTURES: usize = 20;
/// The most bytes of embedded pictures in one page, so that a page stays under 5 MB.
pub const PICTURE_BUDGET: usize = 2_500_000;
/// The most first-layer neurons drawn for a run (a 800-wide layer would be a 3 MB picture).
const MAX_TILES: usize = 49;

/// What `harness report --html` reads and writes.
#[derive(Clone, Debug)]
pub struct Options {
    pub runs: PathBuf,
    pub epochs: PathBuf,
    /// The folder of saved models, `<run_id>.bpk`.
    pub models: PathBuf,
    pub output: PathBuf,
    /// The most runs whose pictures are embedded.
    pub max_pictures: usize,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: usize,
    pub runs: usize,
    pub pictures: usize,
}

/// One cell of a results file: a number, a text, or missing (`NaN`, or empty in a numeric
/// column). In the page's JSON: a number, a string, or null.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Number(f64),
    Text(String),
    Missing,
}

impl Serialize for Cell {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // Whole numbers without ".0": a 1,000-run page has tens of thousands of them.
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                serializer.serialize_i64(*n as i64)
            }
            Cell::Number(n) => serializer.serialize_f64(*n),
            Cell::Text(text) => serializer.serialize_str(text),
            Cell::Missing => serializer.serialize_none(),
        }
    }
}

impl Cell {
    fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(n) => Some(*n),
            _ => None,
        }
    }

    fn text(&self) -> &str {
        match self {
            Cell::Text(t) => t,
            _ => "",
        }
    }
}

/// The runs and epochs a page shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReportData {
    /// The runs file, as given.
    pub source: String,
    /// The runs file's columns, in file order.
    pub columns: Vec<String>,
    /// Whether each column holds numbers.
    pub numeric: Vec<bool>,
    /// One row per run_id: its latest attempt that did not fail, or its latest failed one.
    pub rows: Vec<Vec<Cell>>,
    /// Rows of the runs file not shown: earlier attempts of a shown run_id.
    pub folded: usize,
    /// The epochs file's columns, without the run's keys (`run_id`, `attempt`).
    pub epoch_columns: Vec<String>,
    /// For each shown row, its epochs in order (cells in `epoch_columns` order).
    pub epochs: Vec<Vec<Vec<Cell>>>,
    /// Which settings mattered for validation accuracy, when runs held images out and some
    /// setting varies ([`crate::search::importance`]).
    pub importance: Option<ImportancePanel>,
}

/// The page's "which settings mattered" panel.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ImportancePanel {
    pub method: String,
    pub metric: String,
    pub runs: usize,
    /// (setting, share of the sum, domain as text), most important first.
    pub settings: Vec<(String, f64, String)>,
}

impl ReportData {
    fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// A row's cell in the named column, if the file has that column.
    pub fn get(&self, row: usize, name: &str) -> Option<&Cell> {
        self.column(name).map(|c| &self.rows[row][c])
    }

    /// The accuracy charts show: validation accuracy where the run held validation images,
    /// else test accuracy.
    pub fn accuracy(&self, row: usize) -> Option<f64> {
        let validation = self
            .get(row, "validation_size")
            .is_none_or(|size| size.number().is_some_and(|n| n > 0.0));
        let val = self.get(row, "val_accuracy").and_then(Cell::number);
        match val {
            Some(val) if validation => Some(val),
            _ => self.get(row, "test_accuracy").and_then(Cell::number),
        }
    }
}

/// Reads a runs file and its epochs file (which may be missing) into [`ReportData`], through
/// the record's own readers ([`results::read_runs`]: locked, bounded, an interrupted commit
/// finished) and its rule for the row that stands for each run ([`results::effective`]).
///
/// This is the only function that knows the files' layout; the page works on column names.
pub fn collect(runs_csv: &Path, epochs_csv: &Path) -> Result<ReportData> {
    crate::input::regular_file(runs_csv, "runs file", crate::input::CSV_MAX)?;
    let all = results::read_runs(runs_csv)?;
    let epochs = results::read_epochs(epochs_csv)?;
    Ok(assemble(
        &all,
        Some(&epochs),
        runs_csv.display().to_string(),
    ))
}

/// The columns of runs.csv, and whether each holds numbers.
pub fn run_columns() -> (Vec<String>, Vec<bool>) {
    let columns = results::columns::<RunRow>();
    let sample = serde_json::to_value(RunRow::default()).expect("a row serializes");
    let numeric = columns
        .iter()
        .map(|c| !matches!(sample.get(c), Some(serde_json::Value::String(_))))
        .collect();
    (columns, numeric)
}

/// The columns of epochs.csv a page shows: all but the run's keys (`run_id`, `attempt`).
pub fn epoch_columns() -> Vec<String> {
    results::columns::<EpochRow>()
        .into_iter()
        .filter(|c| c != "run_id" && c != "attempt")
        .collect()
}

/// A run's row as the page's cells, in [`run_columns`] order.
pub fn row_cells(row: &RunRow, columns: &[String]) -> Vec<Cell> {
    let value = serde_json::to_value(row).expect("a row serializes");
    columns.iter().map(|c| json_cell(value.get(c))).collect()
}

/// An epoch's row as the page's cells, in [`epoch_columns`] order.
pub fn epoch_cells(epoch: &EpochRow, columns: &[String]) -> Vec<Cell> {
    let value = serde_json::to_value(epoch).expect("a row serializes");
    columns.iter().map(|c| json_cell(value.get(c))).collect()
}

/// The page's data from a runs file's rows (every attempt) and its epochs file's rows; without
/// `epochs` (`harness serve`, which sends a run's epochs when the page asks) the rows have none.
pub fn assemble(all: &[RunRow], epochs: Option<&[EpochRow]>, source: String) -> ReportData {
    let shown = results::effective(all);
    let (columns, numeric) = run_columns();
    let rows: Vec<Vec<Cell>> = shown.iter().map(|row| row_cells(row, &columns)).collect();
    let epoch_columns = epoch_columns();
    let epochs = match epochs {
        Some(epoch_rows) => {
            let mut by_attempt: HashMap<&str, Vec<&EpochRow>> = HashMap::new();
            for epoch in epoch_rows {
                by_attempt
                    .entry(epoch.attempt.as_str())
                    .or_default()
                    .push(epoch);
            }
            shown
                .iter()
                .map(|row| {
                    let mut rows = by_attempt
                        .get(row.attempt.as_str())
                        .cloned()
                        .unwrap_or_default();
                    rows.sort_by_key(|e| e.epoch);
                    rows.iter()
                        .map(|e| epoch_cells(e, &epoch_columns))
                        .collect()
                })
                .collect()
        }
        None => Vec::new(),
    };
    let importance = importance_panel(&shown);
    ReportData {
        importance,
        source,
        folded: all.len() - shown.len(),
        columns,
        numeric,
        rows,
        epoch_columns,
        epochs,
    }
}

/// Which settings mattered, when runs held images out and some setting varies.
pub fn importance_panel(shown: &[&RunRow]) -> Option<ImportancePanel> {
    use crate::config::Metric;
    use crate::search::importance;
    importance::of_runs(shown, Metric::ValAccuracy)
        .ok()
        .filter(|(settings, used)| !settings.is_empty() && *used >= 2)
        .map(|(settings, used)| ImportancePanel {
            method: importance::METHOD.to_string(),
            metric: Metric::ValAccuracy.to_string(),
            runs: used,
            settings: settings
                .iter()
                .map(|s| {
                    (
                        s.column.clone(),
                        s.importance,
                        crate::views::report::domain_text(&s.domain),
                    )
                })
                .collect(),
        })
}

/// A cell from a row's value: a number, text, or missing (NaN serializes as null).
fn json_cell(value: Option<&serde_json::Value>) -> Cell {
    match value {
        Some(serde_json::Value::Number(n)) => n.as_f64().map_or(Cell::Missing, Cell::Number),
        Some(serde_json::Value::String(s)) => Cell::Text(s.clone()),
        _ => Cell::Missing,
    }
}

/// The pictures of one run, as `data:` URIs.
#[derive(Clone, Debug, Serialize)]
pub struct Pictures {
    pub tiles: String,
    pub confusion: String,
    pub wrong: String,
}

/// Which runs get pictures: the best by accuracy among the ok rows whose model was saved (a
/// `model_sha256` other than `none`, where the file has that column) and whose model file
/// exists. Returns row indices, best first.
fn picture_candidates(data: &ReportData, models: &Path) -> Vec<usize> {
    let mut candidates: Vec<(f64, usize)> = (0..data.rows.len())
        .filter(|&row| data.get(row, "status").is_none_or(|s| s.text() == "ok"))
        .filter(|&row| {
            data.get(row, "model_sha256")
                .is_none_or(|sha| sha.text() != "none" && !sha.text().is_empty())
        })
        .filter(|&row| model_file(data, row, models).is_some())
        .filter_map(|row| data.accuracy(row).map(|a| (a, row)))
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    candidates.into_iter().map(|(_, row)| row).collect()
}

fn run_id(data: &ReportData, row: usize) -> &str {
    data.get(row, "run_id").map_or("", Cell::text)
}

fn model_file(data: &ReportData, row: usize, models: &Path) -> Option<PathBuf> {
    let text = |column: &str| data.get(row, column).map_or("", Cell::text).to_string();
    let row = RunRow {
        run_id: text("run_id"),
        attempt: text("attempt"),
        ..RunRow::default()
    };
    saved::existing_model_file(models, &row)
}

/// Loads a run's saved model. The one place this module loads a model.
fn load_model(run_id: &str, runs_csv: &Path, models: &Path) -> Result<saved::Loaded> {
    saved::load(run_id, runs_csv, models)
}

/// Draws a loaded model's pictures with inspect's drawing code, as `data:` URIs: the first
/// layer's tiles, the confusion matrix, the most confidently wrong test digits. The one place
/// this module draws a model.
pub fn pictures(
    loaded: &saved::Loaded,
    test: &crate::data::mnist::Split,
    scratch: &Path,
) -> Result<Pictures> {
    let files = inspect::summary_pictures(loaded, test, MAX_TILES, scratch)?;
    let uri = |path: &Path| -> Result<String> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bytes = compact_png(&bytes).unwrap_or(bytes);
        Ok(format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    };
    Ok(Pictures {
        tiles: uri(&files.tiles)?,
        confusion: uri(&files.confusion)?,
        wrong: uri(&files.wrong)?,
    })
}

/// The same picture in fewer bytes: grey pictures as one channel, the strongest compression
/// with adaptive filters. `None` when the bytes are not a PNG this can read.
fn compact_png(bytes: &[u8]) -> Option<Vec<u8>> {
    use image::ImageEncoder as _;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let picture = image::load_from_memory(bytes).ok()?.to_rgb8();
    let grey = picture.pixels().all(|p| p[0] == p[1] && p[1] == p[2]);
    let mut out = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive);
    let (width, height) = picture.dimensions();
    if grey {
        let luma: Vec<u8> = picture.pixels().map(|p| p[0]).collect();
        encoder
            .write_image(&luma, width, height, image::ColorType::L8)
            .ok()?;
    } else {
        encoder
            .write_image(picture.as_raw(), width, height, image::ColorType::Rgb8)
            .ok()?;
    }
    (out.len() < bytes.len()).then_some(out)
}

/// The pictures of the best runs, within [`PICTURE_BUDGET`] bytes, keyed by run_id; and a
/// line for each run whose pictures could not be drawn.
fn embed_pictures(
    data: &ReportData,
    options: &Options,
) -> Result<(BTreeMap<String, Pictures>, Vec<String>)> {
    let mut embedded = BTreeMap::new();
    let mut problems = Vec::new();
    let candidates = picture_candidates(data, &options.models);
    if candidates.is_empty() || options.max_pictures == 0 {
        return Ok((embedded, problems));
    }
    let scratch = std::env::temp_dir().join(format!("harness-report-{}", std::process::id()));
    let mut tests: HashMap<String, crate::data::mnist::Split> = HashMap::new();
    let mut bytes = 0;
    for row in candidates {
        if embedded.len() >= options.max_pictures {
            break;
        }
        let id = run_id(data, row).to_string();
        let drawn = (|| -> Result<Pictures> {
            let loaded = load_model(&id, &options.runs, &options.models)?;
            let dataset = data
                .get(row, "dataset")
                .map_or("mnist", Cell::text)
                .to_string();
            if !tests.contains_key(&dataset) {
                tests.insert(dataset.clone(), inspect::test_set(&loaded.row)?);
            }
            pictures(&loaded, &tests[&dataset], &scratch)
        })();
        match drawn {
            Ok(pictures) => {
                let size = pictures.tiles.len() + pictures.confusion.len() + pictures.wrong.len();
                if bytes + size > PICTURE_BUDGET {
                    break;
                }
                bytes += size;
                embedded.insert(id, pictures);
            }
            Err(error) => problems.push(format!("{id}: {error:#}")),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok((embedded, problems))
}

/// Everything the page's script reads, as one JSON object.
#[derive(Serialize)]
struct Page<'a> {
    #[serde(flatten)]
    data: &'a ReportData,
    epochs_source: String,
    pictures: &'a BTreeMap<String, Pictures>,
    picture_problems: &'a [String],
    max_pictures: usize,
    palette: Palette,
    version: &'static str,
    /// Served by `harness serve`: where the page asks for what changed, and from where.
    live: Option<&'a Live>,
}

/// What a served page needs to follow the runs ([`crate::views::serve`]): the version and
/// generation of the rows it was made with, and how often to ask for more.
#[derive(Clone, Debug, Serialize)]
pub struct Live {
    pub version: u64,
    pub generation: u64,
    pub interval_ms: u64,
    pub updates: &'static str,
    pub epochs: &'static str,
}

/// The series colours of the static charts ([`crate::views::plot::activation_colour`]), so that the
/// page colours each activation as they do.
#[derive(Serialize)]
struct Palette {
    known: BTreeMap<&'static str, String>,
    other: Vec<String>,
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// `harness report --html`: the page for a runs file, with the epochs file, the models folder
/// and the page beside it unless given; prints what it wrote.
pub fn report(
    runs: &Path,
    epochs: Option<PathBuf>,
    models: Option<PathBuf>,
    output: Option<PathBuf>,
    max_pictures: usize,
) -> Result<()> {
    let options = Options {
        epochs: epochs.unwrap_or_else(|| crate::record::upgrade::epochs_beside(runs)),
        models: models.unwrap_or_else(|| runs.with_file_name("models")),
        output: output.unwrap_or_else(|| runs.with_file_name("report.html")),
        runs: runs.to_path_buf(),
        max_pictures,
    };
    let written = write(&options)?;
    println!(
        "{}: {} runs, pictures of {}, {:.2} MB",
        written.path.display(),
        written.runs,
        written.pictures,
        written.bytes as f64 / 1e6
    );
    Ok(())
}

/// Writes the page for `options.runs` into `options.output`.
pub fn write(options: &Options) -> Result<Written> {
    Claims::new()
        .reads(&options.runs, "the runs file")
        .reads(&options.epochs, "the epochs file")
        .writes_file(&options.output, "report --html -o")
        .check()?;
    let data = collect(&options.runs, &options.epochs)?;
    if data.rows.is_empty() {
        return Err(user_error(format!(
            "{} has no runs to report",
            options.runs.display()
        )));
    }
    let (pictures, problems) = embed_pictures(&data, options)?;
    for problem in &problems {
        eprintln!("warning: no pictures for run {problem}");
    }
    let html = render(
        &data,
        &options.epochs,
        &pictures,
        &problems,
        options.max_pictures,
        None,
    )?;
    write_atomically(&options.output, html.as_bytes())?;
    Ok(Written {
        path: options.output.clone(),
        bytes: html.len(),
        runs: data.rows.len(),
        pictures: pictures.len(),
    })
}

/// The page: style, data and script inlined; a Content-Security-Policy that allows no request,
/// or when `live` (served), requests to the server it came from only.
pub fn render(
    data: &ReportData,
    epochs_csv: &Path,
    pictures: &BTreeMap<String, Pictures>,
    problems: &[String],
    max_pictures: usize,
    live: Option<&Live>,
) -> Result<String> {
    let page = Page {
        data,
        epochs_source: epochs_csv.display().to_string(),
        pictures,
        picture_problems: problems,
        max_pictures,
        palette: Palette {
            known: crate::views::plot::ACTIVATION_COLOURS
                .iter()
                .map(|(name, rgb)| (*name, hex(*rgb)))
                .collect(),
            other: crate::views::plot::OTHER_COLOURS
                .iter()
                .map(|c| hex(*c))
                .collect(),
        },
        version: env!("CARGO_PKG_VERSION"),
        live,
    };
    let connect = if live.is_some() {
        "connect-src 'self'; "
    } else {
        ""
    };
    let json = script_json(&serde_json::to_string(&page)?);
    let mut html = String::with_capacity(json.len() + SCRIPT.len() + STYLE.len() + 2048);
    write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; {connect}script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; font-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>harness {kind}: {title}</title>
<script>
window.reportErrors = [];
window.addEventListener('error', function (e) {{ window.reportErrors.push(String(e.message)); }});
(function () {{
  var original = console.error;
  console.error = function () {{
    window.reportErrors.push(Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  }};
}})();
</script>
<style>
{STYLE}</style>
</head>
<body>
<noscript>This report draws its table and charts with JavaScript; enable it to see them.</noscript>
<script type="application/json" id="report-data">{json}</script>
<script>
{SCRIPT}</script>
</body>
</html>
"#,
        title = html_text(&data.source),
        kind = if live.is_some() { "live" } else { "report" },
    )?;
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_numbers_text_or_missing() {
        use serde_json::json;
        assert_eq!(json_cell(Some(&json!(0.5))), Cell::Number(0.5));
        assert_eq!(json_cell(Some(&json!(null))), Cell::Missing);
        assert_eq!(json_cell(None), Cell::Missing);
        assert_eq!(json_cell(Some(&json!("none"))), Cell::Text("none".into()));
        assert_eq!(
            serde_json::to_string(&[
                json_cell(Some(&json!(1))),
                json_cell(Some(&json!(null))),
                json_cell(Some(&json!("x"))),
                json_cell(Some(&json!(0.25))),
            ])
            .unwrap(),
            r#"[1,null,"x",0.25]"#
        );
    }

    #[test]
    fn embedded_json_cannot_end_the_script() {
        let json = serde_json::to_string(&"</script><script>alert(1)</script>").unwrap();
        let safe = script_json(&json);
        assert!(!safe.contains("</"));
        assert_eq!(
            serde_json::from_str::<String>(&safe).unwrap(),
            "</script><script>alert(1)</script>"
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn collect_shows_one_row_per_run_and_its_attempts_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let run = |run_id: &str, attempt: &str, started: &str, validation: u64, val: f64| RunRow {
            run_id: run_id.into(),
            attempt: attempt.into(),
            started_at: started.into(),
            status: crate::record::results::Status::Ok,
            validation_size: validation,
            val_accuracy: val,
            test_accuracy: 0.9,
            ..RunRow::default()
        };
        let runs = dir.path().join("runs.csv");
        std::fs::write(
            &runs,
            results::to_csv(
                &[
                    run("r1", "t1", "2026-01-01", 5000, 0.97),
                    run("r1", "t2", "2026-01-02", 5000, 0.98),
                    run("r2", "t3", "2026-01-01", 0, f64::NAN),
                ],
                true,
            ),
        )
        .unwrap();
        let epoch = |attempt: &str, epoch: u64, val: f64| EpochRow {
            run_id: "r".into(),
            attempt: attempt.into(),
            epoch,
            val_accuracy: val,
            ..EpochRow::default()
        };
        let epochs = dir.path().join("epochs.csv");
        std::fs::write(
            &epochs,
            results::to_csv(
                &[
                    epoch("t1", 1, 0.5),
                    epoch("t2", 2, 0.98),
                    epoch("t2", 1, 0.97),
                    epoch("t3", 1, f64::NAN),
                ],
                true,
            ),
        )
        .unwrap();
        let data = collect(&runs, &epochs).unwrap();
        assert_eq!(data.rows.len(), 2);
        assert_eq!(data.folded, 1);
        assert_eq!(data.accuracy(0), Some(0.98));
        assert_eq!(data.accuracy(1), Some(0.9), "no validation: test accuracy");
        assert_eq!(data.get(0, "run_id"), Some(&Cell::Text("r1".into())));
        assert!(!data.numeric[data.column("run_id").unwrap()]);
        assert!(data.numeric[data.column("params").unwrap()]);
        assert_eq!(
            data.epochs[0].len(),
            2,
            "only attempt t2's epochs, in order"
        );
        let val = data
            .epoch_columns
            .iter()
            .position(|c| c == "val_accuracy")
            .unwrap();
        assert_eq!(data.epochs[0][0][val], Cell::Number(0.97));
        assert_eq!(data.epochs[1][0][val], Cell::Missing);
    }

    #[test]
    fn a_missing_epochs_file_leaves_runs_without_curves() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs.csv");
        std::fs::write(&runs, results::to_csv(&[RunRow::default()], true)).unwrap();
        let data = collect(&runs, &dir.path().join("none.csv")).unwrap();
        assert_eq!(data.epochs, vec![Vec::<Vec<Cell>>::new()]);
        let broken = write(dir.path(), "bad.csv", "name,status\nx,ok\n");
        let error = collect(&broken, &dir.path().join("none.csv")).unwrap_err();
        assert!(format!("{error:#}").contains("not a harness runs file"));
    }
}
