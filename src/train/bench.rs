//! `harness bench`: training speed on a fixed matrix of configs, as figures to compare.
//!
//! Each config trains on the full 60,000 training images: one warm-up epoch, then `epochs`
//! measured ones; the figure is the median epoch (training steps only, evaluation excluded).
//! Achieved GFLOP/s counts the multiply-adds of the forward and backward passes and is shown as
//! a fraction of the machine's peak, measured here with a large matrix multiply on the same
//! backend. The faithful config (configs/sigmoid_16x16.toml, 30 epochs with the test set
//! evaluated every epoch) is timed end to end, data loading included.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use serde::Serialize;

use crate::config::{self, Override, Settings};
use crate::data::mnist::{self, Dataset};
use crate::error::user_error;
use crate::net::backend::{self, BackendName};
use crate::train::train::{self, Job};

/// The fixed matrix: name, the peer it is compared with, and the config (TOML).
const MATRIX: [(&str, &str, &str); 5] = [
    (
        "sigmoid_b10",
        "NumPy, vectorised, f64, 1 thread: 0.37 s/epoch",
        "[model]\nhidden = [16, 16]\nactivation = \"sigmoid\"\noutput = \"sigmoid\"\n\
         [train]\nbatch_size = 10\nloss = \"mse\"\noptimizer = \"sgd\"\nlearning_rate = 3.0\n",
    ),
    (
        "relu_b64",
        "scikit-learn MLPClassifier: 0.30-0.34 s/epoch",
        "[model]\nhidden = [16, 16]\nactivation = \"relu\"\noutput = \"softmax\"\n\
         [train]\nbatch_size = 64\nloss = \"cross_entropy\"\noptimizer = \"adam\"\nlearning_rate = 1e-3\n",
    ),
    (
        "wide128_b128",
        "PyTorch, 2 threads: 0.44-0.46 s/epoch",
        "[model]\nhidden = [128]\nactivation = \"relu\"\noutput = \"softmax\"\n\
         [train]\nbatch_size = 128\nloss = \"cross_entropy\"\noptimizer = \"adam\"\nlearning_rate = 1e-3\n",
    ),
    (
        "wide800_b128",
        "PyTorch, 2 threads: 1.72 s/epoch",
        "[model]\nhidden = [800]\nactivation = \"relu\"\noutput = \"softmax\"\n\
         [train]\nbatch_size = 128\nloss = \"cross_entropy\"\noptimizer = \"adam\"\nlearning_rate = 1e-3\n",
    ),
    (
        "gpu1024_b1024",
        "PyTorch CUDA on an H200: 0.087 s/epoch (a prototype's figure; BENCHMARKS.md)",
        "[model]\nhidden = [1024, 1024]\nactivation = \"relu\"\noutput = \"softmax\"\n\
         [train]\nbatch_size = 1024\nloss = \"cross_entropy\"\noptimizer = \"adam\"\nlearning_rate = 1e-3\n",
    ),
];

/// The faithful config, timed end to end.
const FAITHFUL: (&str, &str) = ("faithful", include_str!("../../configs/sigmoid_16x16.toml"));

/// Every config name `--configs` accepts.
pub fn config_names() -> Vec<&'static str> {
    MATRIX
        .iter()
        .map(|(name, _, _)| *name)
        .chain([FAITHFUL.0])
        .collect()
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct Options {
    pub configs: Vec<String>,
    pub backends: Vec<BackendName>,
    /// Measured epochs after the warm-up epoch.
    pub epochs: usize,
    pub json: bool,
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub config: String,
    pub backend: String,
    pub batch_size: usize,
    pub params: usize,
    /// Median seconds of the measured epochs' training steps (for `faithful`: the whole run).
    pub seconds_per_epoch: f64,
    pub samples_per_second: f64,
    pub microseconds_per_step: f64,
    pub gflops: f64,
    /// Achieved GFLOP/s over the measured peak of the backend.
    pub fraction_of_peak: f64,
    /// The first (warm-up) epoch's training steps: on wgpu, kernel compilation and autotuning.
    pub first_epoch_seconds: f64,
    /// For `faithful`: the whole run (load, 30 epochs, evaluation); else the measured epochs.
    pub total_seconds: f64,
    pub test_accuracy: f64,
    pub peer: String,
}

/// The CPU as /proc/cpuinfo names it: model, vendor, logical CPUs and whether it has AVX-512
/// (figures hold only for the machine they were measured on: BENCHMARKS.md keeps one table per
/// machine).
pub fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_once(':'))
            .map_or("unknown".to_string(), |(_, value)| value.trim().to_string())
    };
    let avx512 = field("flags").split_whitespace().any(|f| f == "avx512f");
    format!(
        "{} ({}, family {} model {}), {} logical CPUs, AVX-512 {}",
        field("model name"),
        field("vendor_id"),
        field("cpu family"),
        field("model\t"),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if avx512 { "yes" } else { "no" }
    )
}

/// Runs the benchmark and prints its figures.
pub fn bench(options: &Options) -> Result<()> {
    for name in &options.configs {
        if !config_names().contains(&name.as_str()) {
            return Err(user_error(format!(
                "unknown bench config \"{name}\"{}; valid: {}",
                crate::error::suggestion(name, config_names()),
                config_names().join(", ")
            )));
        }
    }
    // Every backend asked for must be in the build before anything is loaded or measured.
    if let Some(&name) = options.backends.iter().find(|name| !name.is_compiled()) {
        backend::select(name)?;
    }
    let started = Instant::now();
    let data = mnist::load(mnist::DatasetName::Mnist, None, mnist::Limits::default())?;
    let load_seconds = started.elapsed().as_secs_f64();
    if !options.json {
        println!("machine: {}", machine());
        println!(
            "data: MNIST loaded and checksummed in {load_seconds:.3} s; {} CPU threads; load \
             average {}",
            crate::net::backend::cpu_threads(),
            std::fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|_| "unknown".into())
        );
    }

    for &name in &options.backends {
        let selected = backend::select(name)?;
        let peak = peak_gflops(&selected.device)?;
        if !options.json {
            println!(
                "\nbackend {} ({}): peak {peak:.1} GFLOP/s (f32 matmul 1024^3)",
                selected.backend, selected.description
            );
            println!(
                "{:14} {:>5} {:>8} {:>8} {:>10} {:>12} {:>8} {:>8} {:>7} {:>9}  peer",
                "config",
                "batch",
                "params",
                "first s",
                "s/epoch",
                "samples/s",
                "us/step",
                "GFLOP/s",
                "%peak",
                "accuracy"
            );
        }
        for config_name in &options.configs {
            let figure = measure(config_name, &selected, peak, &data, options.epochs)?;
            if options.json {
                println!("{}", serde_json::to_string(&figure)?);
            } else {
                println!(
                    "{:14} {:>5} {:>8} {:>8.3} {:>10.3} {:>12.0} {:>8.1} {:>8.2} {:>6.1}% {:>9.4}  {}",
                    figure.config,
                    figure.batch_size,
                    figure.params,
                    figure.first_epoch_seconds,
                    figure.seconds_per_epoch,
                    figure.samples_per_second,
                    figure.microseconds_per_step,
                    figure.gflops,
                    100.0 * figure.fraction_of_peak,
                    figure.test_accuracy,
                    figure.peer
                );
                if figure.config == FAITHFUL.0 {
                    println!(
                        "{:14} end to end (load, 30 epochs, test set every epoch): {:.2} s",
                        "", figure.total_seconds
                    );
                }
            }
        }
    }
    Ok(())
}

/// Times one config on one backend.
fn measure(
    name: &str,
    selected: &backend::Selected,
    peak: f64,
    data: &Dataset,
    epochs: usize,
) -> Result<Figure> {
    let (source, peer) = MATRIX
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, peer, source)| (*source, *peer))
        .unwrap_or((
            FAITHFUL.1,
            "NumPy end to end: ~11 s for 30 epochs; target under 12 s",
        ));
    let faithful = name == FAITHFUL.0;
    let backend_override = Override {
        key: "backend".into(),
        value: toml::Value::String(selected.backend.to_string()),
        origin: "--backends".into(),
    };
    let mut overrides = vec![backend_override];
    if !faithful {
        // The peers train on all 60,000 images and hold none out.
        for (key, value) in [("data.validation", 0), ("train.epochs", epochs as i64 + 1)] {
            overrides.push(Override {
                key: key.into(),
                value: toml::Value::Integer(value),
                origin: "bench".into(),
            });
        }
    }
    let settings: Settings = config::parse(source, Path::new(name), &overrides)?;
    let started = Instant::now();
    let data = if faithful {
        // End to end: the data as the config asks for it, loaded inside the timing.
        mnist::load(
            settings.data.dataset,
            None,
            mnist::Limits {
                train: settings.data.train_limit,
                validation: settings.data.validation,
                test: settings.data.test_limit,
            },
        )?
    } else {
        // Evaluation is not part of the figure: a small test set keeps it short.
        Dataset {
            train: data.train.clone(),
            validation: data.validation.clone(),
            test: data.test.head(1000),
            dir: data.dir.clone(),
        }
    };
    let job = Job::new(&settings, &data, selected.backend);
    let outcome = train::train(&job, &selected.device, &mut train::Quiet)?;
    // End to end includes reading and checking the data, as a user's run does.
    let total_seconds = started.elapsed().as_secs_f64();
    let warm_up = if faithful { 0 } else { 1 };
    let measured: Vec<f64> = outcome
        .epochs
        .iter()
        .skip(warm_up)
        .map(|e| e.train_seconds)
        .collect();
    let seconds = median(&measured);
    let steps = outcome.train_size.div_ceil(settings.train.batch_size);
    let flop_per_image = flop_per_image(&settings.model.widths());
    let gflops = (flop_per_image * outcome.train_size) as f64 / seconds / 1e9;
    Ok(Figure {
        config: name.to_string(),
        backend: selected.backend.to_string(),
        batch_size: settings.train.batch_size,
        params: settings.model.num_params(),
        seconds_per_epoch: seconds,
        samples_per_second: outcome.train_size as f64 / seconds,
        microseconds_per_step: seconds / steps as f64 * 1e6,
        gflops,
        fraction_of_peak: gflops / peak,
        first_epoch_seconds: outcome.epochs.first().map_or(f64::NAN, |e| e.train_seconds),
        total_seconds,
        test_accuracy: outcome.epochs.last().map_or(0.0, |e| e.test_accuracy),
        peer: peer.to_string(),
    })
}

/// The best GFLOP/s of a 1024 x 1024 x 1024 f32 matrix multiply on `device` (10 tries).
fn peak_gflops(device: &Device) -> Result<f64> {
    let n = 1024;
    let a = Tensor::<2>::ones([n, n], device);
    let b = Tensor::<2>::ones([n, n], device);
    let mut best = f64::INFINITY;
    for _ in 0..10 {
        let started = Instant::now();
        // Reading one element back waits for the product.
        a.clone().matmul(b.clone()).slice([0..1, 0..1]).into_data();
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e9)
}

/// Multiply-adds count 2 flops: per weight and image, 2 forward, 2 for its gradient and 2 for
/// the gradient of the layer's input, which the first layer does not need (784-16-16-10:
/// 52,672 flops per image).
fn flop_per_image(widths: &[usize]) -> usize {
    widths
        .windows(2)
        .enumerate()
        .map(|(layer, w)| if layer == 0 { 4 } else { 6 } * w[0] * w[1])
        .sum()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bench_config_validates() {
        for (name, _, source) in MATRIX.iter().copied().chain([(FAITHFUL.0, "", FAITHFUL.1)]) {
            config::parse(source, Path::new(name), &[]).unwrap();
        }
    }

    #[test]
    fn flops_of_the_videos_network() {
        assert_eq!(
            flop_per_image(&[784, 16, 16, 10]),
            4 * 12_544 + 6 * (256 + 160)
        );
    }

    #[test]
    fn median_of_odd_and_even_lists() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
