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
    let pattern: Vec<u8> = (0..784).map(|i| (i * 7 % 256) as u8).collect();
    save_png(&work.path().join("d.png"), &pattern, 28, false);
    let run = work.harness(&["predict", &run_id, "d.png"]);
    run.expect_code(1).expect_stderr(&["not finite"]);
    assert!(!run.stdout().contains("NaN"), "{}", run.describe());
}

/// A deterministic noise source for the test pictures (no dependency on a random crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ink (0 to 1) of MNIST test image `index`, enlarged `scale` times with bilinear smoothing,
/// inside a margin of paper on every side.
fn ink(test: &mnist::Split, index: usize, scale: u32, margin: u32) -> (u32, Vec<f64>) {
    let digit = image::GrayImage::from_raw(28, 28, test.pixels(index).to_vec()).unwrap();
    let big = image::imageops::resize(
        &digit,
        28 * scale,
        28 * scale,
        image::imageops::FilterType::Triangle,
    );
    let side = 28 * scale + 2 * margin;
    let mut out = vec![0.0; (side * side) as usize];
    for (x, y, p) in big.enumerate_pixels() {
        out[((y + margin) * side + x + margin) as usize] = f64::from(p.0[0]) / 255.0;
    }
    (side, out)
}

fn grey(side: u32, f: impl Fn(u32, u32) -> f64) -> image::GrayImage {
    image::GrayImage::from_fn(side, side, |x, y| {
        image::Luma([f(x, y).round().clamp(0.0, 255.0) as u8])
    })
}

/// A JPEG whose EXIF orientation is `orientation` (an APP1 segment after the start marker).
fn jpeg_with_orientation(image: &image::GrayImage, orientation: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageLuma8(image.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageOutputFormat::Jpeg(95),
        )
        .unwrap();
    // "Exif\0\0", a little-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT.
    let mut app1 = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
    app1.extend(orientation.to_le_bytes());
    app1.extend([0, 0, 0, 0, 0, 0]);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend(((app1.len() + 2) as u16).to_be_bytes());
    segment.extend(app1);
    let mut out = jpeg[..2].to_vec();
    out.extend(segment);
    out.extend(&jpeg[2..]);
    out
}

/// Photos and drawings as people make them read as the clean digit does: grainy, shaded paper;
/// a thin digit on a grey desk; black ink on a transparent background (RGBA and grey with
/// alpha); a phone JPEG stored sideways with its EXIF orientation. Blank images and ink that
/// fills the frame answer "no digit found" (exit 1), never a digit.
#[test]
fn photos_and_drawings_read_as_the_clean_digit_and_blanks_as_none() {
    let work = Workdir::new();
    // A network good enough (about 97%) that a digit it reads clean, it reads for its shape.
    let data = repo().join("data/mnist");
    work.write(
        "good.toml",
        &format!(
            "[data]\ndir = \"{}\"\ntrain_limit = 20000\nvalidation = 0\ntest_limit = 1000\n\
             [model]\nhidden = [128]\nactivation = \"relu\"\noutput = \"softmax\"\n[train]\n\
             epochs = 3\nbatch_size = 32\nloss = \"cross_entropy\"\noptimizer = \"adam\"\n\
             learning_rate = 0.002\n",
            data.display()
        ),
    );
    work.harness(&["run", "good.toml", "--quiet"])
        .expect_code(0);
    let run_id = csv_rows(&work.path().join("results/runs.csv"))[0]["run_id"].clone();
    let test = mnist::load(
        DatasetName::Mnist,
        None,
        mnist::Limits {
            test: Some(300),
            ..Default::default()
        },
    )
    .unwrap()
    .test;
    let answers = |names: &[String]| -> (i32, Vec<serde_json::Value>) {
        let mut args = vec!["predict", run_id.as_str(), "--json"];
        args.extend(names.iter().map(String::as_str));
        let run = work.harness(&args);
        let answers = run
            .stdout()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        (run.code().unwrap(), answers)
    };
    // The clean version: dark ink on white paper, 10 times MNIST's size. Of each digit, the
    // first test image the network reads right that way.
    let clean = |index: usize| {
        let (side, ink) = ink(&test, index, 10, 40);
        grey(side, |x, y| 255.0 * (1.0 - ink[(y * side + x) as usize]))
    };
    let mut chosen = Vec::new();
    for digit in [0u8, 7, 3] {
        let candidates: Vec<usize> = (0..test.len())
            .filter(|&i| test.labels[i] == digit)
            .take(8)
            .collect();
        let names: Vec<String> = candidates
            .iter()
            .map(|i| {
                let name = format!("clean{i}.png");
                clean(*i).save(work.path().join(&name)).unwrap();
                name
            })
            .collect();
        let (_, read) = answers(&names);
        let index = candidates
            .iter()
            .zip(&read)
            .find(|(_, answer)| {
                answer["digit"] == serde_json::json!(digit)
                    && answer["outputs"][usize::from(digit)].as_f64() > Some(0.95)
            })
            .map(|(i, _)| *i)
            .unwrap_or_else(|| panic!("the network reads no clean {digit}: {read:?}"));
        chosen.push((index, digit));
    }

    let mut noise = Lcg(7);
    let mut names = Vec::new();
    let mut expected = Vec::new();
    for &(index, digit) in &chosen {
        let (side, ink) = ink(&test, index, 10, 40);
        let at = |x: u32, y: u32| ink[(y * side + x) as usize];
        // Grainy paper shaded from 190 to 240, the ink pressing it down to a sixth.
        let grain: Vec<f64> = (0..side * side)
            .map(|_| noise.next() * 40.0 - 20.0)
            .collect();
        grey(side, |x, y| {
            let paper = 190.0
                + 50.0 * f64::from(x + y) / f64::from(2 * side)
                + grain[(y * side + x) as usize];
            paper * (1.0 - 0.83 * at(x, y))
        })
        .save(work.path().join(format!("grain{digit}.png")))
        .unwrap();
        // A thin digit (its ink at half strength) on a grey desk.
        grey(side, |x, y| {
            150.0 - 110.0 * (at(x, y) * 1.6 - 0.6).clamp(0.0, 1.0)
        })
        .save(work.path().join(format!("desk{digit}.png")))
        .unwrap();
        // Black ink on nothing, as RGBA and as grey with alpha.
        image::RgbaImage::from_fn(side, side, |x, y| {
            image::Rgba([0, 0, 0, (at(x, y) * 255.0) as u8])
        })
        .save(work.path().join(format!("rgba{digit}.png")))
        .unwrap();
        image::GrayAlphaImage::from_fn(side, side, |x, y| {
            image::LumaA([0, (at(x, y) * 255.0) as u8])
        })
        .save(work.path().join(format!("la{digit}.png")))
        .unwrap();
        // A phone photo, stored turned a quarter to the left, with orientation 6 to turn it back.
        let stored = image::imageops::rotate270(&clean(index));
        std::fs::write(
            work.path().join(format!("phone{digit}.jpg")),
            jpeg_with_orientation(&stored, 6),
        )
        .unwrap();
        // A frame drawn (or photographed) around the digit.
        let mut framed = clean(index);
        let last = side - 1;
        for (x, y, p) in framed.enumerate_pixels_mut() {
            if x < 3 || y < 3 || x + 3 > last || y + 3 > last {
                *p = image::Luma([0]);
            }
        }
        framed
            .save(work.path().join(format!("framed{digit}.png")))
            .unwrap();
        for kind in ["grain", "desk", "rgba", "la", "framed"] {
            names.push(format!("{kind}{digit}.png"));
            expected.push(digit);
        }
        names.push(format!("phone{digit}.jpg"));
        expected.push(digit);
    }
    let (code, read) = answers(&names);
    assert_eq!(code, 0, "{read:?}");
    for ((name, digit), answer) in names.iter().zip(&expected).zip(&read) {
        assert_eq!(
            answer["digit"],
            serde_json::json!(digit),
            "{name} must read {digit}: {answer}"
        );
    }

    // Nothing to read.
    grey(100, |_, _| 255.0)
        .save(work.path().join("white.png"))
        .unwrap();
    grey(100, |_, _| 0.0)
        .save(work.path().join("black.png"))
        .unwrap();
    grey(1, |_, _| 90.0)
        .save(work.path().join("dot.png"))
        .unwrap();
    image::RgbaImage::from_pixel(50, 50, image::Rgba([0, 0, 0, 0]))
        .save(work.path().join("clear.png"))
        .unwrap();
    grey(100, |x, y| {
        if (5..95).contains(&x) && (5..95).contains(&y) {
            10.0
        } else {
            250.0
        }
    })
    .save(work.path().join("filled.png"))
    .unwrap();
    let blanks: Vec<String> = ["white", "black", "dot", "clear", "filled"]
        .iter()
        .map(|n| format!("{n}.png"))
        .collect();
    let (code, read) = answers(&blanks);
    assert_eq!(code, 1, "{read:?}");
    for (name, answer) in blanks.iter().zip(&read) {
        assert_eq!(answer["digit"], serde_json::Value::Null, "{name}: {answer}");
        let reason = answer["no_digit"].as_str().unwrap_or_default();
        assert!(!reason.is_empty(), "{name}: {answer}");
    }
    assert!(
        read[4]["no_digit"].as_str().unwrap().contains("no digit"),
        "{:?}",
        read[4]
    );
    // In words, with the others still answered.
    let run = work.harness(&["predict", &run_id, "white.png", "grain0.png"]);
    run.expect_code(1)
        .expect_stdout(&["white.png: no digit found", "grain0.png: 0"]);
}
