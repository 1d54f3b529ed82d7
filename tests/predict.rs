//! `harness predict` with the real binary: PNGs of test digits (some inverted, some enlarged)
//! get the answers the model gives on the same pixels as tensors.

mod common;

use burn::prelude::*;
use common::{Workdir, csv_rows, repo};
use harness::data::mnist::{self, DatasetName};

/// Trains a small model with the binary and returns its run id.
fn train(work: &Workdir) -> String {
    let data = repo().join("data/mnist");
    work.write(
        "small.toml",
        &format!(
            "[data]\ndir = \"{}\"\ntrain_limit = 5000\n[model]\nhidden = [32]\nactivation = \"relu\"\n\
             output = \"softmax\"\n[train]\nepochs = 1\nbatch_size = 32\nloss = \"cross_entropy\"\n\
             optimizer = \"adam\"\nlearning_rate = 0.003\n",
            data.display()
        ),
    );
    work.harness(&["run", "small.toml", "--quiet"])
        .expect_code(0);
    csv_rows(&work.path().join("results/runs.csv"))[0]["run_id"].clone()
}

fn save_png(path: &std::path::Path, pixels: &[u8], side: u32, invert: bool) {
    let image = image::GrayImage::from_fn(side, side, |x, y| {
        let scale = side / 28;
        let v = pixels[((y / scale) * 28 + x / scale) as usize];
        image::Luma([if invert { 255 - v } else { v }])
    });
    image.save(path).unwrap();
}

#[test]
fn predictions_agree_with_the_model_on_tensors() {
    let work = Workdir::new();
    let run_id = train(&work);
    let test = mnist::load(
        DatasetName::Mnist,
        None,
        mnist::Limits {
            test: Some(20),
            ..Default::default()
        },
    )
    .unwrap()
    .test;
    let mut args = vec!["predict".to_string(), run_id.clone(), "--json".to_string()];
    for i in 0..20 {
        let name = format!("digit{i}.png");
        save_png(&work.path().join(&name), test.pixels(i), 28, i % 3 == 1);
        args.push(name);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = work.harness(&args);
    run.expect_code(0);
    let answers: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(answers.len(), 20, "{}", run.describe());

    // The model's own answers on the same pixels, as tensors.
    let loaded = harness::record::saved::load(
        &run_id,
        &work.path().join("results/runs.csv"),
        &work.path().join("results/models"),
    )
    .unwrap();
    let images = Tensor::<2>::from_data(
        TensorData::new(test.scaled(0..20), [20, 784]),
        &loaded.device,
    );
    let expected: Vec<i64> = loaded
        .model
        .forward(images)
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_into_vec()
        .unwrap();
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer["digit"], expected[i], "image {i}: {answer}");
        assert_eq!(answer["inverted"], i % 3 == 1, "image {i}: {answer}");
        assert_eq!(answer["outputs"].as_array().unwrap().len(), 10);
    }

    // Enlarged 3x (84x84): cropped, scaled into 20x20 and centred again, as MNIST was made.
    let mut args = vec!["predict".to_string(), run_id.clone(), "--json".to_string()];
    for i in 0..20 {
        let name = format!("big{i}.png");
        save_png(&work.path().join(&name), test.pixels(i), 84, true);
        args.push(name);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = work.harness(&args);
    run.expect_code(0);
    let agree = run
        .stdout()
        .lines()
        .enumerate()
        .filter(|(i, line)| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["digit"] == expected[*i]
        })
        .count();
    assert!(
        agree >= 16,
        "only {agree} of 20 enlarged digits got the same answer\n{}",
        run.describe()
    );
}

#[test]
fn an_unreadable_image_exits_2() {
    let work = Workdir::new();
    let run_id = train(&work);
    work.write("not_an_image.png", "hello");
    work.harness(&["predict", &run_id, "not_an_image.png"])
        .expect_code(2)
        .expect_stderr(&["not_an_image.png"]);
}

#[test]
fn every_shipped_config_runs_then_inspects_and_predicts() {
    let work = Workdir::new();
    let test = mnist::load(
        DatasetName::Mnist,
        None,
        mnist::Limits {
            test: Some(1),
            ..Default::default()
        },
    )
    .unwrap()
    .test;
    save_png(&work.path().join("seven.png"), test.pixels(0), 56, true);
    let mut configs: Vec<_> = std::fs::read_dir(repo().join("configs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    configs.sort();
    assert!(configs.len() >= 6, "{configs:?}");
    for (i, config) in configs.iter().enumerate() {
        // A short version of each: the same network, a thousand images, one epoch.
        work.harness(&[
            "run",
            config.to_str().unwrap(),
            "--quiet",
            "--set",
            "data.train_limit=1000",
            "--set",
            "data.validation=500",
            "--set",
            "data.test_limit=500",
            "--set",
            "train.epochs=1",
        ])
        .expect_code(0);
        let row = &csv_rows(&work.path().join("results/runs.csv"))[i];
        let run_id = row["run_id"].as_str();
        let out = format!("inspect-{i}");
        let inspect = work.harness(&["inspect", run_id, "--image", "seven.png", "-o", &out]);
        inspect.expect_code(0).expect_stdout(&[
            "weights_layer1.png",
            "confusion.png",
            "wrong.png",
            "activations_seven.png",
        ]);
        let layers = row["shape"].split('-').count() - 1;
        let last = format!("weights_layer{layers}.png");
        assert!(
            work.path().join(&out).join(&last).is_file(),
            "{}: no {last}",
            config.display()
        );
        let predict = work.harness(&["predict", run_id, "seven.png", "--json"]);
        predict.expect_code(0);
        let answer: serde_json::Value =
            serde_json::from_str(predict.stdout().lines().next().unwrap()).unwrap();
        assert_eq!(answer["outputs"].as_array().unwrap().len(), 10, "{answer}");
    }
}

/// Regression: a model whose weights are NaN (its row's checksum made to match) answered
/// digit 0 with exit 0; a network with no finite output gives no answer.
#[test]
fn a_network_whose_outputs_are_not_finite_gives_no_digit() {
    use sha2::{Digest, Sha256};
    let work = Workdir::new();
    let run_id = train(&work);
    let models = work.path().join("results/models");
    let model = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "bpk"))
        .unwrap();
    // The last 20,000 bytes are weights: make them f32 NaNs.
    let mut bytes = std::fs::read(&model).unwrap();
    let len = bytes.len();
    for chunk in bytes[len - 20_000..].chunks_mut(4) {
        chunk.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(&model, &bytes).unwrap();
    let runs = work.path().join("results/runs.csv");
    let text = std::fs::read_to_string(&runs).unwrap();
    let old = &csv_rows(&runs)[0]["model_sha256"];
    let new = format!("{:x}", Sha256::digest(&bytes));
    std::fs::write(&runs, text.replace(old.as_str(), &new)).unwrap();
    save_png(&work.path().join("d.png"), &[128; 784], 28, false);
    let run = work.harness(&["predict", &run_id, "d.png"]);
    run.expect_code(1).expect_stderr(&["not finite"]);
    assert!(!run.stdout().contains("NaN"), "{}", run.describe());
}
