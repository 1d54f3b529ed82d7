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
use crate::inspect;

const SCRIPT: &str = include_str!("../assets/report/report.js");
const STYLE: &str = include_str!("../assets/report/report.css");

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

/// Columns read as text even when every value looks like a number (ids, hashes, widths).
const TEXT_COLUMNS: [&str; 14] = [
    "run_id",
    "attempt",
    "started_at",
    "name",
    "config",
    "dataset",
    "backend",
    "device",
    "hidden",
    "shape",
    "activation",
    "model_sha256",
    "error",
    "harness_version",
];

/// Reads a runs file and its epochs file (which may be missing) into [`ReportData`].
///
/// This is the only function that knows the files' layout; the page works on column names.
pub fn collect(runs_csv: &Path, epochs_csv: &Path) -> Result<ReportData> {
    let (columns, records) = read_csv(runs_csv)?;
    let column = |name: &str| columns.iter().position(|c| c == name);
    let run_id = column("run_id").ok_or_else(|| {
        user_error(format!(
            "{} has no run_id column: is it a runs file written by harness?",
            runs_csv.display()
        ))
    })?;
    let value = |record: &Vec<String>, name: &str| {
        column(name).map_or(String::new(), |c| record[c].clone())
    };
    let shown = representatives(
        &records
            .iter()
            .map(|r| {
                (
                    r[run_id].clone(),
                    value(r, "status"),
                    value(r, "started_at"),
                )
            })
            .collect::<Vec<_>>(),
    );
    let numeric: Vec<bool> = (0..columns.len())
        .map(|c| {
            !TEXT_COLUMNS.contains(&columns[c].as_str())
                && records.iter().any(|r| r[c].parse::<f64>().is_ok())
                && records
                    .iter()
                    .all(|r| r[c].is_empty() || r[c].parse::<f64>().is_ok())
        })
        .collect();
    let rows: Vec<Vec<Cell>> = shown
        .iter()
        .map(|&i| {
            records[i]
                .iter()
                .zip(&numeric)
                .map(|(text, &is_number)| cell(text, is_number))
                .collect()
        })
        .collect();

    // Epochs belong to a row by `attempt` where both files have it, else by run_id (the
    // latest epoch of each number, since an earlier attempt wrote its epochs first).
    let (epoch_columns, epochs) = if epochs_csv.exists() {
        let (e_columns, e_records) = read_csv(epochs_csv)?;
        let e_column = |name: &str| e_columns.iter().position(|c| c == name);
        let key_column = match (column("attempt"), e_column("attempt")) {
            (Some(_), Some(e)) => Some(("attempt", e)),
            _ => e_column("run_id").map(|e| ("run_id", e)),
        };
        let keys: Vec<usize> = ["run_id", "attempt"]
            .iter()
            .filter_map(|k| e_column(k))
            .collect();
        let kept: Vec<usize> = (0..e_columns.len()).filter(|c| !keys.contains(c)).collect();
        let epoch_at = e_column("epoch");
        let mut by_key: HashMap<&str, BTreeMap<String, usize>> = HashMap::new();
        if let Some((_, k)) = key_column {
            for (line, record) in e_records.iter().enumerate() {
                let epoch = epoch_at.map_or(line.to_string(), |e| record[e].clone());
                by_key
                    .entry(record[k].as_str())
                    .or_default()
                    .insert(epoch, line);
            }
        }
        let epochs = shown
            .iter()
            .map(|&i| {
                let key = key_column.map_or(String::new(), |(name, _)| value(&records[i], name));
                let mut lines: Vec<usize> = by_key
                    .get(key.as_str())
                    .map(|m| m.values().copied().collect())
                    .unwrap_or_default();
                lines.sort_by(|a, b| {
                    let epoch =
                        |l: &usize| epoch_at.and_then(|e| e_records[*l][e].parse::<f64>().ok());
                    epoch(a).partial_cmp(&epoch(b)).unwrap_or(a.cmp(b))
                });
                lines
                    .into_iter()
                    .map(|l| kept.iter().map(|&c| cell(&e_records[l][c], true)).collect())
                    .collect()
            })
            .collect();
        (kept.iter().map(|&c| e_columns[c].clone()).collect(), epochs)
    } else {
        (Vec::new(), vec![Vec::new(); shown.len()])
    };
    Ok(ReportData {
        source: runs_csv.display().to_string(),
        folded: records.len() - shown.len(),
        columns,
        numeric,
        rows,
        epoch_columns,
        epochs,
    })
}

fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| user_error(format!("cannot read {}: {e}", path.display())))?;
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| user_error(format!("{}: {e}", path.display())))?
        .iter()
        .map(String::from)
        .collect();
    let records = reader
        .records()
        .enumerate()
        .map(|(line, record)| {
            record
                .map(|r| r.iter().map(String::from).collect())
                .map_err(|e| user_error(format!("{} line {}: {e}", path.display(), line + 2)))
        })
        .collect::<Result<_>>()?;
    Ok((columns, records))
}

/// A cell from its text: `NaN` (and an empty numeric cell) is missing.
fn cell(text: &str, numeric: bool) -> Cell {
    match text.parse::<f64>() {
        Ok(n) if numeric && n.is_finite() => Cell::Number(n),
        _ if numeric => Cell::Missing,
        _ => Cell::Text(text.to_string()),
    }
}

/// The rows that stand for their run_id, in order of first appearance: the latest (by
/// `started_at`, then file order) whose status is not `failed`, or the latest failed one if all
/// failed. Takes `(run_id, status, started_at)` per row; returns row indices.
pub fn representatives(rows: &[(String, String, String)]) -> Vec<usize> {
    let mut order: Vec<&str> = Vec::new();
    let mut best: HashMap<&str, usize> = HashMap::new();
    for (i, (run_id, _, _)) in rows.iter().enumerate() {
        let rank = |j: usize| (rows[j].1 != "failed", rows[j].2.as_str(), j);
        match best.get(run_id.as_str()) {
            None => {
                order.push(run_id);
                best.insert(run_id, i);
            }
            Some(&j) if rank(i) >= rank(j) => {
                best.insert(run_id, i);
            }
            Some(_) => {}
        }
    }
    order.iter().map(|id| best[id]).collect()
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
        .filter(|&row| model_file(data, row, models).is_file())
        .filter_map(|row| data.accuracy(row).map(|a| (a, row)))
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    candidates.into_iter().map(|(_, row)| row).collect()
}

fn run_id(data: &ReportData, row: usize) -> &str {
    data.get(row, "run_id").map_or("", Cell::text)
}

fn model_file(data: &ReportData, row: usize, models: &Path) -> PathBuf {
    models.join(format!("{}.bpk", run_id(data, row)))
}

/// Loads a run's saved model. The one place this module loads a model.
fn load_model(run_id: &str, runs_csv: &Path, models: &Path) -> Result<inspect::Loaded> {
    inspect::load(run_id, runs_csv, models)
}

/// Draws a loaded model's pictures with inspect's drawing code, as `data:` URIs: the first
/// layer's tiles, the confusion matrix, the most confidently wrong test digits. The one place
/// this module draws a model.
pub fn pictures(
    loaded: &inspect::Loaded,
    test: &crate::data::Split,
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
    let mut tests: HashMap<String, crate::data::Split> = HashMap::new();
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
}

/// The series colours of the static charts ([`crate::plot::activation_colour`]), so that the
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
        epochs: epochs.unwrap_or_else(|| runs.with_file_name("epochs.csv")),
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
    )?;
    if let Some(parent) = options
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    std::fs::write(&options.output, &html)
        .with_context(|| format!("cannot write {}", options.output.display()))?;
    Ok(Written {
        path: options.output.clone(),
        bytes: html.len(),
        runs: data.rows.len(),
        pictures: pictures.len(),
    })
}

/// The page: style, data and script inlined; a Content-Security-Policy that allows no request.
pub fn render(
    data: &ReportData,
    epochs_csv: &Path,
    pictures: &BTreeMap<String, Pictures>,
    problems: &[String],
    max_pictures: usize,
) -> Result<String> {
    let page = Page {
        data,
        epochs_source: epochs_csv.display().to_string(),
        pictures,
        picture_problems: problems,
        max_pictures,
        palette: Palette {
            known: crate::plot::ACTIVATION_COLOURS
                .iter()
                .map(|(name, rgb)| (*name, hex(*rgb)))
                .collect(),
            other: crate::plot::OTHER_COLOURS.iter().map(|c| hex(*c)).collect(),
        },
        version: env!("CARGO_PKG_VERSION"),
    };
    let json = script_safe(&serde_json::to_string(&page)?);
    let mut html = String::with_capacity(json.len() + SCRIPT.len() + STYLE.len() + 2048);
    write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; font-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>harness report: {title}</title>
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
        title = escape_html(&data.source),
    )?;
    Ok(html)
}

/// JSON that cannot close the `<script>` element it sits in.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: &str, at: &str) -> (String, String, String) {
        (id.into(), status.into(), at.into())
    }

    #[test]
    fn a_run_id_shows_its_latest_attempt_that_did_not_fail() {
        let rows = [
            row("a", "ok", "2026-01-01T00:00:00Z"),
            row("b", "failed", "2026-01-01T00:00:01Z"),
            row("a", "failed", "2026-01-02T00:00:00Z"),
            row("c", "failed", "2026-01-01T00:00:00Z"),
            row("b", "ok", "2026-01-01T00:00:02Z"),
            row("c", "failed", "2026-01-03T00:00:00Z"),
            row("d", "ok", "2026-01-05T00:00:00Z"),
            row("d", "diverged", "2026-01-04T00:00:00Z"),
            row("e", "ok", "2026-01-01T00:00:00Z"),
            row("e", "ok", "2026-01-01T00:00:00Z"),
        ];
        // a: its ok row, though a later attempt failed; b: the later ok; c: the latest failed;
        // d: the later start, though earlier in the file; e: the same time, the later line.
        assert_eq!(representatives(&rows), vec![0, 4, 5, 6, 9]);
    }

    #[test]
    fn cells_are_numbers_text_or_missing() {
        assert_eq!(cell("0.5", true), Cell::Number(0.5));
        assert_eq!(cell("NaN", true), Cell::Missing);
        assert_eq!(cell("", true), Cell::Missing);
        assert_eq!(cell("none", false), Cell::Text("none".into()));
        assert_eq!(
            serde_json::to_string(&[
                cell("1", true),
                cell("NaN", true),
                cell("x", false),
                cell("0.25", true),
            ])
            .unwrap(),
            r#"[1,null,"x",0.25]"#
        );
    }

    #[test]
    fn embedded_json_cannot_end_the_script() {
        let json = serde_json::to_string(&"</script><script>alert(1)</script>").unwrap();
        let safe = script_safe(&json);
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
    fn collect_reads_format_1_and_format_2_files() {
        let dir = tempfile::tempdir().unwrap();
        // Format 1: epochs by run_id; a rerun of "a" appended its epochs after the first.
        let runs = write(
            dir.path(),
            "runs.csv",
            "run_id,started_at,hidden,activation,params,test_accuracy,status\n\
             a,2026-01-01T00:00:00Z,16x16,relu,13002,0.9,failed\n\
             000000000032,2026-01-01T00:00:00Z,,sigmoid,7850,NaN,diverged\n\
             a,2026-01-02T00:00:00Z,16x16,relu,13002,0.95,ok\n",
        );
        let epochs = write(
            dir.path(),
            "epochs.csv",
            "run_id,epoch,test_accuracy\na,1,0.5\na,1,0.8\na,2,0.95\n000000000032,1,NaN\n",
        );
        let data = collect(&runs, &epochs).unwrap();
        assert_eq!(data.rows.len(), 2);
        assert_eq!(data.folded, 1);
        assert_eq!(data.rows[0][0], Cell::Text("a".into()));
        assert_eq!(
            data.rows[1][0],
            Cell::Text("000000000032".into()),
            "ids stay text"
        );
        assert_eq!(data.rows[1][2], Cell::Text(String::new()));
        assert_eq!(
            data.numeric,
            [false, false, false, false, true, true, false]
        );
        assert_eq!(data.accuracy(0), Some(0.95));
        assert_eq!(data.accuracy(1), None);
        assert_eq!(data.epoch_columns, ["epoch", "test_accuracy"]);
        assert_eq!(
            data.epochs[0],
            vec![
                vec![Cell::Number(1.0), Cell::Number(0.8)],
                vec![Cell::Number(2.0), Cell::Number(0.95)]
            ]
        );
        assert_eq!(data.epochs[1], vec![vec![Cell::Number(1.0), Cell::Missing]]);

        // Format 2: epochs by attempt; validation accuracy where the run held validation.
        let runs = write(
            dir.path(),
            "runs2.csv",
            "run_id,attempt,started_at,status,validation_size,val_accuracy,test_accuracy\n\
             r1,t1,2026-01-01T00:00:00Z,ok,5000,0.97,0.96\n\
             r1,t2,2026-01-02T00:00:00Z,ok,5000,0.98,0.97\n\
             r2,t3,2026-01-01T00:00:00Z,ok,0,NaN,0.91\n",
        );
        let epochs = write(
            dir.path(),
            "epochs2.csv",
            "run_id,attempt,epoch,val_accuracy,test_accuracy\n\
             r1,t1,1,0.5,0.5\nr1,t2,1,0.97,0.96\nr1,t2,2,0.98,0.97\nr2,t3,1,NaN,0.91\n",
        );
        let data = collect(&runs, &epochs).unwrap();
        assert_eq!(data.rows.len(), 2);
        assert_eq!(data.folded, 1);
        assert_eq!(data.accuracy(0), Some(0.98));
        assert_eq!(data.accuracy(1), Some(0.91), "no validation: test accuracy");
        assert_eq!(
            data.epoch_columns,
            ["epoch", "val_accuracy", "test_accuracy"]
        );
        assert_eq!(data.epochs[0].len(), 2, "only attempt t2's epochs");
        assert_eq!(data.epochs[0][0][1], Cell::Number(0.97));
    }

    #[test]
    fn a_missing_epochs_file_leaves_runs_without_curves() {
        let dir = tempfile::tempdir().unwrap();
        let runs = write(dir.path(), "runs.csv", "run_id,status\nx,ok\n");
        let data = collect(&runs, &dir.path().join("none.csv")).unwrap();
        assert_eq!(data.epochs, vec![Vec::<Vec<Cell>>::new()]);
        let broken = write(dir.path(), "bad.csv", "name,status\nx,ok\n");
        let error = collect(&broken, &dir.path().join("none.csv")).unwrap_err();
        assert!(format!("{error:#}").contains("no run_id column"));
    }
}
