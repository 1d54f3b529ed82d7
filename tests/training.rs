//! Training for real on small seeded subsets of MNIST: every loss, optimizer, activation,
//! initialisation and regulariser lowers the training loss; the schedules give the rates they
//! promise; early stopping stops and the kept model is the best epoch's, restored.

use std::path::Path;

use harness::config::{self, Override, Settings};
use harness::data::mnist::{self, Dataset, DatasetName, Limits};
use harness::net::backend::{self, BackendName};
use harness::train::train::{self, Job, Quiet};

/// Settings from config text, with the data limits a small test can afford.
fn settings(toml: &str) -> Settings {
    config::parse(toml, Path::new("test.toml"), &[]).expect("a valid test config")
}

fn data(train: usize, validation: usize) -> Dataset {
    let limits = Limits {
        train: Some(train),
        validation,
        test: Some(1000),
    };
    mnist::load(DatasetName::Mnist, None, limits).unwrap()
}

/// Trains `settings` on `data`; returns the loss on the training images before and after, the
/// training accuracy after, and the outcome.
fn train_case(settings: &Settings, data: &Dataset) -> (f64, f64, f64, train::Outcome) {
    let device = backend::select(BackendName::Cpu).unwrap().device;
    device.seed(settings.seed);
    let untrained = settings.model.init(&device);
    let loss = settings.train.loss;
    let (before, _) = train::evaluate(&untrained, &data.train, loss, &device).unwrap();
    let job = Job::new(settings, data, BackendName::Flex);
    let outcome = train::train(&job, &device, &mut Quiet).unwrap();
    let (after, accuracy) = train::evaluate(&outcome.model, &data.train, loss, &device).unwrap();
    (before, after, accuracy, outcome)
}

#[test]
fn every_loss_optimizer_activation_and_regulariser_lowers_the_training_loss() {
    let data = data(1000, 0);
    let sigmoid_mse = "output = \"sigmoid\"\n[train]\nloss = \"mse\"\n";
    let softmax_ce = "output = \"softmax\"\n[train]\nloss = \"cross_entropy\"\n";
    let softmax_mse = "output = \"softmax\"\n[train]\nloss = \"mse\"\n";
    let d = "default";
    let cases = [
        // Nielsen's chapter 1 (N(0, 1) weights) and chapter 3 (N(0, 1/fan_in)) starts.
        (
            "sigmoid",
            "gaussian",
            sigmoid_mse,
            "optimizer = \"sgd\"\nlearning_rate = 3.0",
        ),
        (
            "sigmoid",
            "scaled",
            softmax_ce,
            "optimizer = \"sgd\"\nlearning_rate = 0.5",
        ),
        (
            "sigmoid",
            d,
            sigmoid_mse,
            "optimizer = \"sgd\"\nlearning_rate = 0.5\nmomentum = 0.9",
        ),
        (
            "sigmoid",
            d,
            sigmoid_mse,
            "optimizer = \"adam\"\nlearning_rate = 1e-2",
        ),
        (
            "sigmoid",
            d,
            softmax_ce,
            "optimizer = \"adam\"\nlearning_rate = 1e-2",
        ),
        (
            "relu",
            d,
            softmax_mse,
            "optimizer = \"adam\"\nlearning_rate = 1e-2",
        ),
        (
            "tanh",
            d,
            softmax_ce,
            "optimizer = \"adam\"\nlearning_rate = 1e-2",
        ),
        (
            "leaky_relu",
            d,
            softmax_ce,
            "optimizer = \"adam\"\nlearning_rate = 1e-2",
        ),
        (
            "gelu",
            d,
            softmax_ce,
            "optimizer = \"adam\"\nlearning_rate = 1e-2",
        ),
        (
            "identity",
            d,
            softmax_ce,
            "optimizer = \"adam\"\nlearning_rate = 1e-2",
        ),
        (
            "relu",
            d,
            softmax_ce,
            "optimizer = \"sgd\"\nlearning_rate = 0.1\nweight_decay = 1e-3",
        ),
        (
            "relu",
            "scaled",
            softmax_ce,
            "optimizer = \"adam\"\nlearning_rate = 1e-2\nweight_decay = 1e-4",
        ),
    ];
    for (activation, init, output_and_loss, training) in cases {
        let toml = format!(
            "seed = 1\n[data]\nvalidation = 0\n[model]\nhidden = [16, 16]\n\
             activation = \"{activation}\"\ninit = \"{init}\"\n{output_and_loss}\
             epochs = 5\nbatch_size = 10\n{training}\n"
        );
        let settings = settings(&toml);
        let (before, after, accuracy, outcome) = train_case(&settings, &data);
        let case = toml.replace('\n', " ");
        assert!(after < 0.8 * before, "{case}: loss {before} -> {after}");
        assert!(
            accuracy > 0.5,
            "{case}: train accuracy {accuracy} (chance is 0.1)"
        );
        assert_eq!(outcome.epochs.len(), 5, "{case}");
        eprintln!("{case}: loss {before:.4} -> {after:.4}, train accuracy {accuracy:.3}");
    }
}

#[test]
fn dropout_and_augmentation_still_learn_and_change_the_result() {
    let data = data(2000, 0);
    let base = "seed = 3\n[data]\nvalidation = 0\n[model]\nhidden = [64]\nactivation = \"relu\"\n\
                output = \"softmax\"\n[train]\nloss = \"cross_entropy\"\noptimizer = \"adam\"\n\
                learning_rate = 3e-3\nepochs = 3\nbatch_size = 32\n";
    let plain = train_case(&settings(base), &data);
    for change in [
        "model.dropout=0.3",
        "data.augment_shift=2",
        "data.augment_rotate=10.0",
    ] {
        let changed = config::parse(
            base,
            Path::new("test.toml"),
            &[Override::parse(change).unwrap()],
        )
        .unwrap();
        let (before, after, accuracy, outcome) = train_case(&changed, &data);
        assert!(after < 0.5 * before, "{change}: loss {before} -> {after}");
        assert!(accuracy > 0.8, "{change}: train accuracy {accuracy}");
        assert_ne!(
            outcome.epochs[0].train_loss, plain.3.epochs[0].train_loss,
            "{change} changed nothing"
        );
    }
}

#[test]
fn schedules_give_the_rates_they_promise() {
    let rate = |toml: &str, epoch: usize, step: usize| {
        let settings = settings(&format!("[model]\nhidden = [4]\n[train]\n{toml}\n"));
        train::learning_rate(&settings.train, epoch, step, 10)
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    // Constant, with and without warm-up: the warm-up rises linearly to the rate.
    assert!(close(rate("learning_rate = 0.5\nepochs = 4", 3, 9), 0.5));
    let warm = "learning_rate = 0.5\nepochs = 4\nwarmup_epochs = 1.0";
    assert!(close(rate(warm, 0, 0), 0.05));
    assert!(close(rate(warm, 0, 4), 0.25));
    assert!(close(rate(warm, 0, 9), 0.5));
    assert!(close(rate(warm, 2, 0), 0.5));
    // Step: x0.1 every 2 epochs.
    let step = "learning_rate = 1.0\nepochs = 6\nschedule = \"step\"\nstep_epochs = 2\n\
                step_factor = 0.1";
    assert!(close(rate(step, 0, 5), 1.0));
    assert!(close(rate(step, 1, 9), 1.0));
    assert!(close(rate(step, 2, 0), 0.1));
    assert!(close(rate(step, 5, 9), 0.01));
    // Cosine: half-way is half the rate, the end is zero.
    let cosine = "learning_rate = 1.0\nepochs = 4\nschedule = \"cosine\"";
    assert!(close(rate(cosine, 1, 9), 0.5));
    assert!(close(rate(cosine, 3, 9), 0.0));
    assert!(rate(cosine, 0, 0) > 0.99);
}

#[test]
fn early_stopping_stops_and_keeps_the_best_epochs_weights() {
    let data = data(2000, 1000);
    let device = backend::select(BackendName::Cpu).unwrap().device;
    // A rate far too high for SGD on softmax: validation accuracy wanders, so the best epoch is
    // rarely the last, and early stopping comes before 12 epochs.
    let settings = settings(
        "seed = 5\n[data]\nvalidation = 1000\n[model]\nhidden = [32]\nactivation = \"relu\"\n\
         output = \"softmax\"\n[train]\nloss = \"cross_entropy\"\noptimizer = \"sgd\"\n\
         learning_rate = 2.0\nepochs = 12\nbatch_size = 50\npatience = 2\nkeep = \"best\"\n",
    );
    let job = Job::new(&settings, &data, BackendName::Flex);
    let outcome = train::train(&job, &device, &mut Quiet).unwrap();
    let accuracies: Vec<f64> = outcome.epochs.iter().map(|e| e.val_accuracy).collect();
    let best = accuracies.iter().enumerate().fold(
        0,
        |best, (i, a)| if *a > accuracies[best] { i } else { best },
    );
    assert_eq!(
        outcome.kept,
        best + 1,
        "kept epoch; accuracies {accuracies:?}"
    );
    // Stopped early: two epochs after the last improvement, not at the end.
    assert_eq!(
        outcome.stop_reason,
        harness::record::results::StopReason::EarlyStopping,
        "{accuracies:?}"
    );
    assert!(outcome.epochs.len() < 12, "{accuracies:?}");
    // The model returned is that epoch's: its validation accuracy is the recorded one.
    let (_, accuracy) = train::evaluate(
        &outcome.model,
        &data.validation,
        settings.train.loss,
        &device,
    )
    .unwrap();
    assert!(
        (accuracy - accuracies[best]).abs() < 1e-9,
        "restored {accuracy}, recorded {}",
        accuracies[best]
    );
}
