//! Property tests of every entry point that reads what a user hands harness (the same ones
//! `fuzz/` fuzzes for longer): whatever the bytes, a parser returns a value or a user error,
//! never panics; and what harness writes, it reads back unchanged.

use std::path::Path;

use proptest::prelude::*;

use harness::config::{self, Override};
use harness::data::mnist;
use harness::record::results::{self, EpochRow, RunRow, Status};
use harness::search::experiment::Experiment;
use harness::views::predict;

/// Short strings over an alphabet that TOML, CSV and harness's own syntax care about.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('z'),
            Just('0'),
            Just('9'),
            Just('.'),
            Just('='),
            Just('['),
            Just(']'),
            Just('{'),
            Just('}'),
            Just('"'),
            Just(','),
            Just('\n'),
            Just(' '),
            Just('-'),
            Just('#'),
            Just('\u{feff}'),
            Just('é'),
        ],
        0..60,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Config text made of real keys and values in random arrangements.
fn config_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[model]".to_string()),
        Just("[train]".to_string()),
        Just("[data]".to_string()),
        Just("hidden = [16, 16]".to_string()),
        Just("hidden = []".to_string()),
        Just("hidden = [0]".to_string()),
        Just("activation = \"relu\"".to_string()),
        Just("activation = [\"relu\", \"tanh\"]".to_string()),
        Just("epochs = -3".to_string()),
        Just("validation = 99999999999".to_string()),
        Just("learning_rate = nan".to_string()),
        Just("seed = 9223372036854775807".to_string()),
        Just("warmup_epochs = 1e308".to_string()),
        text(),
    ];
    proptest::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
}

/// An error that is not the user's would exit 1 (or a panic, 101): parsers give only user
/// errors.
fn assert_user_error(error: &anyhow::Error) {
    assert!(
        harness::error::is_user_error(error),
        "not a user error: {error:#}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn overrides_and_configs_parse_or_explain(assignment in text(), source in config_text()) {
        let overrides: Vec<Override> = match Override::parse(&assignment) {
            Ok(change) => vec![change],
            Err(error) => { assert_user_error(&error); Vec::new() }
        };
        if let Err(error) = config::parse(&source, Path::new("p.toml"), &overrides) {
            assert_user_error(&error);
        }
    }

    #[test]
    fn experiments_parse_or_explain(source in config_text(), grid in text()) {
        let source = format!("[base]\nmodel.hidden = [4]\n{source}\n[grid]\n{grid}\n");
        if let Err(error) = Experiment::parse(&source, Path::new("/nonexistent/e.toml"), &[]) {
            assert_user_error(&error);
        }
    }

    #[test]
    fn idx_bytes_parse_or_explain(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        match mnist::parse_idx(bytes, Path::new("x"), None) {
            Ok(idx) => prop_assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>()),
            Err(error) if error.downcast_ref::<predict::NoDigit>().is_some() => {}
            Err(error) => assert_user_error(&error),
        }
    }

    #[test]
    fn idx_files_round_trip(dims in proptest::collection::vec(1usize..5, 1..4), seed in any::<u8>()) {
        let items: usize = dims.iter().product();
        let mut bytes = vec![0, 0, 8, dims.len() as u8];
        for d in &dims {
            bytes.extend((*d as u32).to_be_bytes());
        }
        let data: Vec<u8> = (0..items).map(|i| (i as u8).wrapping_mul(seed)).collect();
        bytes.extend(&data);
        let idx = mnist::parse_idx(bytes, Path::new("x"), None).unwrap();
        prop_assert_eq!(idx.dims, dims);
        prop_assert_eq!(idx.data, data);
    }

    #[test]
    fn csv_bytes_parse_or_explain(tail in text()) {
        let bytes = format!("{}\n{tail}", results::header::<RunRow>());
        if let Err(error) = results::parse::<RunRow>(bytes.as_bytes(), Path::new("runs.csv")) {
            assert_user_error(&error);
        }
        if let Err(error) = results::parse::<EpochRow>(tail.as_bytes(), Path::new("epochs.csv")) {
            assert_user_error(&error);
        }
    }

    #[test]
    fn rows_read_back_as_written(
        name in text(),
        error in text(),
        accuracy in prop_oneof![Just(f64::NAN), 0.0f64..=1.0, Just(f64::INFINITY)],
        seed in 0u64..=i64::MAX as u64,
        status in prop_oneof![Just(Status::Ok), Just(Status::Diverged), Just(Status::Failed)],
    ) {
        let row = RunRow {
            run_id: "r0123456789a".into(),
            attempt: "a0123456789a".into(),
            name,
            error,
            seed,
            status,
            test_accuracy: accuracy,
            ..RunRow::default()
        };
        let bytes = results::to_csv(std::slice::from_ref(&row), true);
        let back = results::parse::<RunRow>(&bytes, Path::new("runs.csv")).unwrap();
        // As text: NaN is not equal to itself.
        prop_assert_eq!(results::to_csv(&back, true), bytes);
    }

    #[test]
    fn image_bytes_decode_or_explain(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        match predict::mnist_pixels_of(&bytes, "x.png", true) {
            Ok((pixels, _)) => {
                prop_assert_eq!(pixels.len(), 784);
                prop_assert!(pixels.iter().all(|p| (0.0..=1.0).contains(p)));
            }
            Err(error) => assert_user_error(&error),
        }
    }

    #[test]
    fn any_small_image_becomes_784_pixels(
        width in 1u32..90,
        height in 1u32..90,
        ink in proptest::collection::vec((0u32..90, 0u32..90), 0..40),
        dark_paper in any::<bool>(),
    ) {
        let paper = if dark_paper { 0 } else { 255 };
        let mut image = image::GrayImage::from_pixel(width, height, image::Luma([paper]));
        for (x, y) in ink {
            if x < width && y < height {
                image.put_pixel(x, y, image::Luma([255 - paper]));
            }
        }
        let mut png = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageOutputFormat::Png)
            .unwrap();
        match predict::mnist_pixels_of(&png, "x.png", true) {
            Ok((pixels, _)) => {
                prop_assert_eq!(pixels.len(), 784);
                prop_assert!(pixels.iter().all(|p| (0.0..=1.0).contains(p)));
            }
            // Blank paper, or ink over most of it: said, never a wrong answer.
            Err(error) => {
                prop_assert!(error.downcast_ref::<predict::NoDigit>().is_some(), "{error:#}");
            }
        }
    }

    #[test]
    fn one_row_stands_for_each_run(
        rows in proptest::collection::vec((0u8..4, 0u8..3, 0u8..5), 0..20),
    ) {
        let rows: Vec<RunRow> = rows
            .into_iter()
            .enumerate()
            .map(|(i, (id, status, time))| RunRow {
                run_id: format!("r{id}"),
                attempt: format!("a{i}"),
                started_at: format!("t{time}"),
                status: [Status::Ok, Status::Diverged, Status::Failed][status as usize],
                ..RunRow::default()
            })
            .collect();
        let standing = results::effective(&rows);
        let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
        prop_assert_eq!(standing.len(), ids.len());
        for row in &standing {
            let same: Vec<&RunRow> = rows.iter().filter(|r| r.run_id == row.run_id).collect();
            if same.iter().any(|r| r.status != Status::Failed) {
                prop_assert!(row.status != Status::Failed);
            }
            let candidates = same.iter().filter(|r| (r.status != Status::Failed) == (row.status != Status::Failed));
            prop_assert!(candidates.clone().all(|r| r.started_at <= row.started_at));
        }
    }
}
