//! `harness report --html` in a real browser: a small real sweep (models saved, so the page has
//! weight pictures) becomes a page that Chromium, driven through chromedriver (WebDriver: JSON
//! over HTTP on localhost), opens from disk. The table has one row per run; a header click
//! sorts; a filter hides rows; ticking two runs draws two curves; the page requests nothing and
//! logs no error; screenshots land in the target folder. A second test measures a 1,000-run
//! page: its size, load time and sort time.
//!
//! Without chromium and chromedriver the browser tests print why and pass, unless
//! HARNESS_REQUIRE_BROWSER=1 (CI sets it), where they fail.

mod common;

use std::sync::Mutex;

use common::Workdir;
use common::browser::{Browser, programs_or_skip, requests};
use harness::record::results::{self, EpochRow, RunRow, Status};
use serde_json::{Value, json};

/// One test at a time: the timing test must not share two cores with the other's sweep or
/// browser.
static BROWSER: Mutex<()> = Mutex::new(());

/// A small real sweep: two activations, two shapes, and one network without a hidden layer, on
/// 2,000 training images for 2 epochs, every model saved.
const SWEEP: &str = r#"
[base]
name = "small"
[base.data]
train_limit = 2000
[base.model]
hidden = [16]
output = "softmax"
[base.train]
epochs = 2
loss = "cross_entropy"
optimizer = "adam"
learning_rate = 0.003
batch_size = 32
[base.output]
save_model = true

[grid]
"model.activation" = ["sigmoid", "relu"]
"model.hidden" = [[16], [32, 16]]

[[point]]
"model.hidden" = []
"#;

#[test]
fn the_report_of_a_real_sweep_works_in_chromium() {
    let Some((chromium, chromedriver)) = programs_or_skip("the_report_of_a_real_sweep") else {
        return;
    };
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let work = Workdir::new();
    let data = common::repo().join("data/mnist");
    work.write(
        "sweep.toml",
        &SWEEP.replace(
            "[base.data]",
            &format!("[base.data]\ndir = {:?}", data.display().to_string()),
        ),
    );
    work.harness(&["sweep", "sweep.toml", "--jobs", "2", "--strict"])
        .expect_code(0);
    work.harness(&["report", "--html", "results/runs.csv"])
        .expect_code(0)
        .expect_stdout(&["results/report.html: 5 runs"]);
    let page = work.path().join("results/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("default-src 'none'"),
        "a Content-Security-Policy that allows no request"
    );
    let runs = common::csv_rows(&work.path().join("results/runs.csv"));
    let relu = runs.iter().filter(|r| r["activation"] == "relu").count();

    let browser = Browser::start(&chromium, &chromedriver);
    browser.open(&page);
    let url = browser.script("return location.href;");

    // One row per run.
    let rows = browser.script("return document.querySelectorAll('#runs tbody tr').length;");
    assert_eq!(rows, json!(runs.len()), "one table row per run");
    check_layout(&browser, "val_accuracy");

    // A header click sorts by that column, a second click reverses it.
    let column = |name: &str| {
        browser.script(&format!(
            "const ths = [...document.querySelectorAll('#runs thead tr:first-child th')];
             const k = ths.findIndex(th => th.dataset.col === '{name}');
             return [...document.querySelectorAll('#runs tbody tr:not([hidden])')]
               .map(tr => Number(tr.cells[k].title));"
        ))
    };
    browser.click("th[data-col='params'] button.sort");
    let params: Vec<f64> = serde_json::from_value(column("params")).unwrap();
    assert!(
        params.windows(2).all(|w| w[0] <= w[1]),
        "ascending after one click: {params:?}"
    );
    assert_eq!(
        browser.script(
            "return document.querySelector(\"th[data-col='params']\").getAttribute('aria-sort');"
        ),
        json!("ascending")
    );
    browser.click("th[data-col='params'] button.sort");
    let params: Vec<f64> = serde_json::from_value(column("params")).unwrap();
    assert!(
        params.windows(2).all(|w| w[0] >= w[1]),
        "descending after two: {params:?}"
    );

    // A text filter and a numeric range hide rows.
    let shown = || {
        browser.script("return document.querySelectorAll('#runs tbody tr:not([hidden])').length;")
    };
    browser.type_into("input[data-filter='activation']", "relu");
    assert_eq!(
        shown(),
        json!(relu),
        "the activation filter keeps the relu runs"
    );
    browser.type_into("input[data-filter='params']", "..13000");
    assert_eq!(
        shown(),
        json!(1),
        "relu with at most 13,000 parameters: relu_16 alone"
    );
    browser.script(
        "for (const input of document.querySelectorAll('input[data-filter]')) {
           input.value = '';
           input.dispatchEvent(new Event('input'));
         }",
    );
    assert_eq!(
        shown(),
        json!(runs.len()),
        "clearing the filters shows every row"
    );

    // Ticking two runs draws two learning curves; comparing them puts both on one chart.
    browser.click("#runs tbody tr:nth-child(1) input.pick");
    browser.click("#runs tbody tr:nth-child(2) input.pick");
    let curves = browser.script(
        "return [...document.querySelectorAll('#chart-curves path[data-curve]')]
           .map(p => p.getAttribute('data-curve'));",
    );
    let curves: Vec<String> = serde_json::from_value(curves).unwrap();
    assert_eq!(curves.len(), 2, "two curves: {curves:?}");
    assert_ne!(curves[0], curves[1]);
    browser.click("#compare-button");
    assert_eq!(
        browser
            .script("return document.querySelectorAll('#drawer path[data-compare-curve]').length;"),
        json!(2)
    );
    assert!(
        browser
            .script("return document.querySelectorAll('#drawer table.compare tbody tr').length;")
            .as_u64()
            .unwrap()
            > 0,
        "the settings that differ"
    );

    // A run's row opens its detail, with its pictures drawn from the saved model.
    browser.script("document.querySelector('#drawer button.close').click();");
    browser.click("#runs tbody tr:nth-child(1) td:nth-child(3)");
    let pictures = browser.script(
        "return [...document.querySelectorAll('#drawer .pictures img')]
           .map(img => img.complete && img.naturalWidth > 0);",
    );
    assert_eq!(
        pictures,
        json!([true, true, true]),
        "tiles, confusion matrix, wrong digits"
    );
    assert!(
        browser
            .script("return document.querySelectorAll('#drawer table.epochs tbody tr').length;")
            .as_u64()
            == Some(2),
        "its two epochs"
    );

    // One colour per activation, the same as the static charts'.
    let (r, g, b) = harness::views::plot::activation_colour("relu");
    browser.wait_until("return !window.reportCharts.painting();");
    let fills = browser.script(
        "return window.reportCharts.marks('params').filter(m => m.series === 'relu').map(m => m.fill);",
    );
    assert_eq!(fills, json!(vec![format!("#{r:02x}{g:02x}{b:02x}"); relu]));
    // And the canvas shows them: the centre of every mark that no later mark covers is of its
    // colour.
    let painted = browser.script(
        "const marks = window.reportCharts.marks('params');
         const canvas = document.querySelector('#chart-params canvas.marks');
         const svg = document.querySelector('#chart-params svg');
         const r = svg.getBoundingClientRect(), box = svg.viewBox.baseVal;
         const s = Math.min(r.width / box.width, r.height / box.height), ratio = canvas.width / r.width;
         const context = canvas.getContext('2d');
         const hex = (d) => '#' + [d[0], d[1], d[2]].map(v => v.toString(16).padStart(2, '0')).join('');
         return marks
           .filter((m, k) => !marks.slice(k + 1).some(o => Math.hypot(o.x - m.x, o.y - m.y) < 10))
           .map(m => [m.fill, hex(context.getImageData(
             Math.round(((r.width - box.width * s) / 2 + m.x * s) * ratio),
             Math.round(((r.height - box.height * s) / 2 + m.y * s) * ratio), 1, 1).data)]);",
    );
    let painted = painted.as_array().unwrap();
    assert!(!painted.is_empty(), "no mark stands alone");
    for pair in painted {
        assert_eq!(
            pair[0], pair[1],
            "a mark's centre on the canvas: {painted:?}"
        );
    }

    // Nothing requested, nothing logged as an error.
    assert_eq!(
        browser.script("return performance.getEntriesByType('resource').length;"),
        json!(0),
        "resource timing lists no request"
    );
    let url = url.as_str().unwrap().to_string();
    assert_eq!(requests(&browser, &url), Vec::<String>::new());
    assert_eq!(
        browser.script("return window.reportErrors;"),
        json!([]),
        "no error in the page"
    );
    let severe: Vec<Value> = browser
        .log("browser")
        .into_iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");

    // The run's detail as it is open now; then the whole page, tall enough for the table.
    browser.screenshot("report-screenshot-detail.png");
    browser
        .script("document.querySelector('#drawer button.close').click(); window.scrollTo(0, 0);");
    browser.window(1400, 1900);
    browser.screenshot("report-screenshot.png");
    // A phone's width: no sideways scrolling of the page (the table scrolls in its own box).
    browser.window(400, 860);
    let overflow = browser.script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    );
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page scrolls sideways by {overflow} px at a phone's width"
    );
    browser.screenshot("report-screenshot-phone.png");
}

/// 1,000 runs of a synthetic sweep (10 epochs each): the page stays under 5 MB, opens and
/// sorts every column without an error, and prints how long that took. The timings are
/// The page leads with what a sweep is read for, and its parallel coordinates stay readable:
/// the table's first columns are the name, the ranking accuracy and the test accuracy; the axis
/// titles neither overlap one another nor leave the figure.
fn check_layout(browser: &Browser, ranking: &str) {
    let headers = browser.script(
        "return [...document.querySelectorAll('#runs thead tr:first-child th')]
           .map(th => th.dataset.col).filter(Boolean).slice(0, 3);",
    );
    let mut expected = vec!["name", ranking];
    if ranking != "test_accuracy" {
        expected.push("test_accuracy");
    }
    let shown: Vec<String> = serde_json::from_value(headers).unwrap();
    assert_eq!(shown[..expected.len()], expected[..], "{shown:?}");
    let titles = browser.script(
        "const svg = document.querySelector('#chart-parallel svg');
         const width = svg.viewBox.baseVal.width;
         return [...svg.querySelectorAll('g.axes text.label')].map(t => {
           const b = t.getBBox();
           return {text: t.textContent, x0: b.x, x1: b.x + b.width, y0: b.y, y1: b.y + b.height, width};
         });",
    );
    let titles = titles.as_array().unwrap();
    assert!(titles.len() >= 2, "{titles:?}");
    let f = |t: &Value, k: &str| t[k].as_f64().unwrap();
    for (i, a) in titles.iter().enumerate() {
        assert!(
            f(a, "x0") >= 0.0 && f(a, "x1") <= f(a, "width"),
            "axis title {a} leaves the figure"
        );
        for b in &titles[i + 1..] {
            let apart = f(a, "x1") <= f(b, "x0")
                || f(b, "x1") <= f(a, "x0")
                || f(a, "y1") <= f(b, "y0")
                || f(b, "y1") <= f(a, "y0");
            assert!(apart, "axis titles {a} and {b} overlap");
        }
    }
}

/// figures for README.md (measured there), not assertions: a busy machine must not fail CI.
#[test]
fn a_thousand_runs_stay_under_5_mb_and_open_and_sort() {
    let Some((chromium, chromedriver)) = programs_or_skip("a_thousand_runs") else {
        return;
    };
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let work = Workdir::new();
    let activations = ["sigmoid", "relu", "tanh", "leaky_relu", "gelu"];
    let shapes = [
        ("16", 12_730),
        ("16x16", 13_002),
        ("64x64", 55_050),
        ("128", 101_770),
        ("800", 636_010),
    ];
    let rates = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0];
    let mut runs = Vec::new();
    let mut epochs = Vec::new();
    for (k, ((activation, (hidden, params)), (rate, seed))) in activations
        .iter()
        .flat_map(|a| shapes.iter().map(move |s| (a, s)))
        .flat_map(|p| {
            rates
                .iter()
                .flat_map(|r| (1..=5u64).map(move |s| (*r, s)))
                .map(move |rs| (p, rs))
        })
        .enumerate()
    {
        let accuracy = 0.85 + 0.1 * ((k * 7919) % 1000) as f64 / 1000.0;
        let run_id = format!("r{k:011x}");
        let attempt = format!("a{k:011x}");
        runs.push(RunRow {
            run_id: run_id.clone(),
            attempt: attempt.clone(),
            started_at: format!("2026-11-29T{:02}:{:02}:00Z", k / 60 % 24, k % 60),
            name: format!("{activation}_{hidden}_lr{rate}_s{seed}"),
            config: "experiments/big.toml".into(),
            dataset: "mnist".into(),
            backend: "flex".into(),
            device: "cpu (2 threads)".into(),
            shape: format!("784-{}-10", hidden.replace('x', "-")),
            activation: (*activation).into(),
            output: "softmax".into(),
            init: "default".into(),
            loss: "cross_entropy".into(),
            optimizer: "adam".into(),
            learning_rate: rate,
            batch_size: 64,
            epochs: 10,
            seed,
            train_size: 60_000,
            test_size: 10_000,
            params: *params,
            train_loss: 0.123_456_789 + k as f64 * 1e-5,
            train_accuracy: accuracy + 0.01,
            test_loss: 0.234_567_891 + k as f64 * 1e-5,
            test_accuracy: accuracy,
            train_seconds: 0.5 + (*params as f64 / 636_010.0) * 150.0 + seed as f64 * 0.37,
            eval_seconds: 0.312_345,
            total_seconds: 1.0 + (*params as f64 / 636_010.0) * 160.0,
            samples_per_second: 123_456.789,
            status: Status::Ok,
            ..RunRow::default()
        });
        for epoch in 1..=10 {
            epochs.push(EpochRow {
                run_id: run_id.clone(),
                attempt: attempt.clone(),
                epoch,
                train_loss: 0.5 / epoch as f64 + 0.012_345,
                train_accuracy: accuracy - 0.05 / epoch as f64 + 0.01,
                test_loss: 0.6 / epoch as f64 + 0.023_456,
                test_accuracy: accuracy - 0.05 / epoch as f64,
                train_seconds: 0.234_567 + epoch as f64 * 0.001,
                eval_seconds: 0.05,
                ..EpochRow::default()
            });
        }
    }
    assert_eq!(runs.len(), 1000);
    std::fs::create_dir_all(work.path().join("big")).unwrap();
    std::fs::write(
        work.path().join("big/runs.csv"),
        results::to_csv(&runs, true),
    )
    .unwrap();
    std::fs::write(
        work.path().join("big/epochs.csv"),
        results::to_csv(&epochs, true),
    )
    .unwrap();
    work.harness(&["report", "--html", "big/runs.csv"])
        .expect_code(0);
    let page = work.path().join("big/report.html");
    let bytes = std::fs::metadata(&page).unwrap().len();
    println!("1,000-run page: {bytes} bytes");
    assert!(bytes < 5_000_000, "{bytes} bytes");

    let browser = Browser::start(&chromium, &chromedriver);
    browser.open(&page);
    browser.wait_until(
        "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd > 0;",
    );
    let load = browser.script(
        "const n = performance.getEntriesByType('navigation')[0];
         return {load: n.loadEventEnd - n.startTime, ready: window.reportReady.milliseconds,
                 runs: window.reportReady.runs,
                 rows: document.querySelectorAll('#runs tbody tr').length};",
    );
    assert_eq!(load["runs"], json!(1000));
    let rows = load["rows"].as_u64().unwrap();
    assert!(
        (10..100).contains(&rows),
        "the table has the rows in view and a few more, not 1,000: {rows}"
    );
    // Scrolled to the end, the table shows the last runs, with one spacer row above them
    // standing for the rest.
    browser.script(
        "const wrap = document.querySelector('.table-wrap'); wrap.scrollTop = wrap.scrollHeight;",
    );
    browser.wait_until(
        "const rows = document.querySelectorAll('#runs tbody tr');
         return rows[0].classList.contains('spacer') && !rows[rows.length - 1].classList.contains('spacer');",
    );
    let end = browser.script(
        "const rows = [...document.querySelectorAll('#runs tbody tr[data-run]')];
         return {count: document.querySelector('#count').textContent, rows: rows.length};",
    );
    assert!(
        end["count"]
            .as_str()
            .unwrap()
            .starts_with("1000 of 1000 runs match"),
        "{end}"
    );
    assert!(end["rows"].as_u64().unwrap() < 100, "{end}");
    browser.script("document.querySelector('.table-wrap').scrollTop = 0;");
    // A sort click, through to the next frame drawn.
    let sorts: Vec<f64> = ["test_accuracy", "params", "name", "train_seconds"]
        .iter()
        .map(|c| browser.time_sort(c))
        .collect();
    let load_ms = load["load"].as_f64().unwrap();
    println!(
        "1,000-run page: load {load_ms:.0} ms (script {:.0} ms), sorts {sorts:.0?} ms",
        load["ready"].as_f64().unwrap()
    );
    browser.screenshot("report-1000-runs.png");
    assert_eq!(browser.script("return window.reportErrors;"), json!([]));
    assert!(load_ms > 0.0 && sorts.iter().all(|&ms| ms >= 0.0));
    check_layout(&browser, "test_accuracy");
}

/// Regression: run ids and activations named after the properties every JavaScript object
/// has (`__proto__`, `constructor`, `toString`) made the page claim pictures it did not have
/// and colour rows with `function Object()`. Every lookup by a value from the runs file is of
/// the page's own data only.
#[test]
fn runs_named_like_object_properties_get_no_pictures_and_real_colours() {
    let Some((chromium, chromedriver)) = programs_or_skip("runs_named_like_object_properties")
    else {
        return;
    };
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let work = Workdir::new();
    let names = [
        "__proto__",
        "constructor",
        "toString",
        "hasOwnProperty",
        "valueOf",
        "prototype",
    ];
    let runs: Vec<RunRow> = names
        .iter()
        .enumerate()
        .map(|(k, name)| RunRow {
            run_id: (*name).into(),
            attempt: format!("a{k}"),
            started_at: format!("2026-11-29T00:00:0{k}Z"),
            name: (*name).into(),
            dataset: "mnist".into(),
            shape: "784-16-10".into(),
            activation: names[(k + 1) % names.len()].into(),
            output: "softmax".into(),
            params: 12_730,
            test_accuracy: 0.9 + k as f64 / 100.0,
            status: Status::Ok,
            model_sha256: "0".repeat(64),
            ..RunRow::default()
        })
        .collect();
    std::fs::create_dir_all(work.path().join("r")).unwrap();
    std::fs::write(work.path().join("r/runs.csv"), results::to_csv(&runs, true)).unwrap();
    work.harness(&["report", "--html", "r/runs.csv"])
        .expect_code(0);
    let browser = Browser::start(&chromium, &chromedriver);
    browser.open(&work.path().join("r/report.html"));
    let seen = browser.script(
        "const html = document.documentElement.outerHTML;
         return {errors: window.reportErrors, runs: window.reportReady.runs,
                 rows: document.querySelectorAll('#runs tbody tr').length,
                 badges: document.querySelectorAll('.badge[title=\"weight pictures in this page\"]').length,
                 native: html.includes('[native code]') || html.includes('function Object'),
                 pictures: document.body.innerText.includes('Weight pictures for')};",
    );
    assert_eq!(seen["errors"], json!([]), "{seen}");
    assert_eq!(seen["runs"], json!(names.len()), "{seen}");
    assert_eq!(seen["rows"], json!(names.len()), "{seen}");
    assert_eq!(seen["badges"], json!(0), "no run has pictures: {seen}");
    assert_eq!(
        seen["native"],
        json!(false),
        "a prototype's function shown: {seen}"
    );
    assert_eq!(seen["pictures"], json!(false), "{seen}");
}
