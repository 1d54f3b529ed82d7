//! Each loss and optimizer lowers the training loss on a small seeded subset of MNIST.

use harness::backend::{self, BackendName};
use harness::config::{Loss, Optimizer, TrainSettings};
use harness::data::{self, DatasetName};
use harness::model::{Activation, Init, MlpConfig, OutputActivation};
use harness::train::{self, Job, Quiet};

#[test]
fn every_loss_and_optimizer_lowers_the_training_loss() {
    let data = data::load(DatasetName::Mnist, None, Some(1000), Some(1000)).unwrap();
    let device = backend::select(BackendName::Cpu).unwrap().device;
    let cases = [
        (
            Loss::Mse,
            OutputActivation::Sigmoid,
            Optimizer::Sgd,
            3.0,
            0.0,
        ),
        (
            Loss::Mse,
            OutputActivation::Sigmoid,
            Optimizer::Sgd,
            0.5,
            0.9,
        ),
        (
            Loss::Mse,
            OutputActivation::Sigmoid,
            Optimizer::Adam,
            1e-2,
            0.0,
        ),
        (
            Loss::CrossEntropy,
            OutputActivation::Softmax,
            Optimizer::Sgd,
            0.5,
            0.0,
        ),
        (
            Loss::CrossEntropy,
            OutputActivation::Softmax,
            Optimizer::Adam,
            1e-2,
            0.0,
        ),
    ];
    for (loss, output, optimizer, learning_rate, momentum) in cases {
        let model = MlpConfig {
            hidden: vec![16, 16],
            activations: vec![Activation::Sigmoid; 2],
            output,
            init: Init::Default,
        };
        let settings = TrainSettings {
            epochs: 5,
            batch_size: 10,
            loss,
            optimizer,
            learning_rate,
            momentum,
            weight_decay: 0.0,
        };
        device.seed(1);
        let untrained = model.init(&device);
        let (before, _) = train::evaluate(&untrained, &data.train, loss, &device).unwrap();
        let job = Job {
            model: &model,
            train: &settings,
            train_set: &data.train,
            test_set: &data.test,
            seed: 1,
            constant_shapes: false,
        };
        let outcome = train::train(&job, &device, &mut Quiet).unwrap();
        let (after, accuracy) =
            train::evaluate(&outcome.model, &data.train, loss, &device).unwrap();
        let case = format!("{loss} {output} {optimizer} lr {learning_rate} momentum {momentum}");
        assert!(after < 0.8 * before, "{case}: loss {before} -> {after}");
        assert!(
            accuracy > 0.5,
            "{case}: train accuracy {accuracy} (chance is 0.1)"
        );
        assert_eq!(outcome.epochs.len(), 5, "{case}");
        eprintln!("{case}: loss {before:.4} -> {after:.4}, train accuracy {accuracy:.3}");
    }
}
