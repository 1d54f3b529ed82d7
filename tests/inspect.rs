//! `harness inspect` with the real binary: the first-layer picture has one 28x28 tile per
//! neuron in the documented layout, and a tile's colour follows the sign of a weight set by hand;
//! the confusion matrix counts every test image; an unknown id lists the nearest ones.

mod common;

use burn::module::{Module, Param};
use burn::prelude::*;
use common::{Workdir, append_rows, write_rows};
use harness::net::backend::{self, BackendName};
use harness::net::model::{Activation, Init, MlpConfig, OutputActivation};
use harness::record::results::{RunRow, Status};
use harness::views::inspect::{TILE_MARGIN, TILE_SCALE, tiles_size};

/// A [16, 16] model whose first layer is +1 everywhere except pixel 0 of neuron 0 (-1).
fn write_model(work: &Workdir, run_id: &str) {
    let device = backend::select(BackendName::Cpu).unwrap().device;
    let config = MlpConfig {
        hidden: vec![16, 16],
        activations: vec![Activation::Sigmoid; 2],
        output: OutputActivation::Sigmoid,
        init: Init::Default,
        dropout: 0.0,
    };
    let mut model = config.init(&device);
    let mut weights = vec![1.0f32; 784 * 16];
    weights[0] = -1.0; // pixel 0 (top left), neuron 0: row-major [784 inputs, 16 neurons]
    model.layers[0].weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(weights, [784, 16]),
        &device,
    ));
    std::fs::create_dir_all(work.path().join("models")).unwrap();
    let file = work.path().join(format!("models/{run_id}.bpk"));
    model.save_file(&file).unwrap();
    let row = RunRow {
        run_id: run_id.into(),
        attempt: format!("a{run_id}"),
        dataset: "mnist".into(),
        shape: "784-16-16-10".into(),
        activation: "sigmoid".into(),
        output: "sigmoid".into(),
        status: Status::Ok,
        model_sha256: sha256(&file),
        ..RunRow::default()
    };
    write_rows(&work.path().join("runs.csv"), &[row]);
}

fn sha256(path: &std::path::Path) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn weight_tiles_follow_the_sign_of_the_weights() {
    let work = Workdir::new();
    write_model(&work, "abcdef123456");
    let run = work.harness(&[
        "inspect",
        "--image",
        "3",
        "abcdef123456",
        "--runs",
        "runs.csv",
        "--models",
        "models",
        "-o",
        "out",
    ]);
    run.expect_code(0);

    let picture = image::open(work.path().join("out/weights_layer1.png"))
        .unwrap()
        .to_rgb8();
    let (width, height, columns) = tiles_size(16);
    assert_eq!(
        (picture.width(), picture.height(), columns),
        (width, height, 4)
    );
    // 4 columns of 28x28 tiles at 4 pixels a weight, 8 pixels apart, plus the bias line.
    assert_eq!(width, 4 * (28 * TILE_SCALE + TILE_MARGIN) + TILE_MARGIN);
    let at = |tile: u32, pixel: u32| {
        let x = TILE_MARGIN
            + (tile % 4) * (28 * TILE_SCALE + TILE_MARGIN)
            + (pixel % 28) * TILE_SCALE
            + 1;
        let y = TILE_MARGIN
            + (tile / 4) * (28 * TILE_SCALE + TILE_MARGIN + harness::views::inspect::TILE_LABEL)
            + (pixel / 28) * TILE_SCALE
            + 1;
        picture.get_pixel(x, y).0
    };
    assert_eq!(
        at(0, 0),
        [255, 0, 0],
        "negative weight: red at full brightness"
    );
    assert_eq!(at(0, 1), [0, 255, 0], "positive weight: green");
    assert_eq!(at(5, 0), [0, 255, 0]);
    assert_eq!(at(15, 783), [0, 255, 0]);
    assert!(work.path().join("out/weights_layer2.png").is_file());
    assert!(work.path().join("out/weights_layer3.png").is_file());

    let confusion = std::fs::read_to_string(work.path().join("out/confusion.csv")).unwrap();
    let total: usize = confusion
        .lines()
        .skip(1)
        .flat_map(|line| line.split(',').skip(1).map(|n| n.parse::<usize>().unwrap()))
        .sum();
    assert_eq!(total, 10_000, "every test image counted once");
    let per_class = std::fs::read_to_string(work.path().join("out/per_class.csv")).unwrap();
    assert_eq!(per_class.lines().count(), 11);
    image::open(work.path().join("out/confusion.png")).unwrap();
    image::open(work.path().join("out/wrong.png")).unwrap();
    image::open(work.path().join("out/activations_test3.png")).unwrap();
}

#[test]
fn unknown_ids_and_mismatched_models_exit_2() {
    let work = Workdir::new();
    write_model(&work, "abcdef123456");
    work.harness(&[
        "inspect",
        "abcdef123465",
        "--runs",
        "runs.csv",
        "--models",
        "models",
    ])
    .expect_code(2)
    .expect_stderr(&["no run abcdef123465", "abcdef123456"]);
    // The same file under a run whose row says 32x32 (and records this file's checksum): a
    // model/CSV mismatch.
    let copy = work.path().join("models/r00000000032.bpk");
    std::fs::copy(work.path().join("models/abcdef123456.bpk"), &copy).unwrap();
    let row = RunRow {
        run_id: "r00000000032".into(),
        attempt: "a32".into(),
        shape: "784-32-32-10".into(),
        activation: "sigmoid".into(),
        output: "sigmoid".into(),
        status: Status::Ok,
        model_sha256: sha256(&copy),
        ..RunRow::default()
    };
    append_rows(&work.path().join("runs.csv"), &[row]);
    work.harness(&["inspect", "models/r00000000032.bpk", "--runs", "runs.csv"])
        .expect_code(2)
        .expect_stderr(&["does not hold the 784-32-32-10 network"]);
    work.harness(&["inspect", "x", "--runs", "missing.csv"])
        .expect_code(2)
        .expect_stderr(&["missing.csv"]);
}

#[test]
fn a_model_file_copied_over_another_runs_is_refused() {
    let work = Workdir::new();
    write_model(&work, "rfirst000001");
    // A second run of the same shape whose model file is then overwritten with the first's.
    let device = backend::select(BackendName::Cpu).unwrap().device;
    let config = MlpConfig {
        hidden: vec![16, 16],
        activations: vec![Activation::Sigmoid; 2],
        output: OutputActivation::Sigmoid,
        init: Init::Default,
        dropout: 0.0,
    };
    let second = work.path().join("models/rsecond00002.bpk");
    config.init(&device).save_file(&second).unwrap();
    let row = RunRow {
        run_id: "rsecond00002".into(),
        attempt: "asecond".into(),
        dataset: "mnist".into(),
        shape: "784-16-16-10".into(),
        activation: "sigmoid".into(),
        output: "sigmoid".into(),
        status: Status::Ok,
        model_sha256: sha256(&second),
        ..RunRow::default()
    };
    append_rows(&work.path().join("runs.csv"), &[row]);
    let args = [
        "inspect",
        "rsecond00002",
        "--runs",
        "runs.csv",
        "--models",
        "models",
        "-o",
        "out",
    ];
    work.harness(&args).expect_code(0);
    std::fs::copy(work.path().join("models/rfirst000001.bpk"), &second).unwrap();
    work.harness(&args)
        .expect_code(2)
        .expect_stderr(&["is not the model run rsecond00002 saved", "SHA-256"]);
}
