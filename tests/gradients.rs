//! The hand-made autodiff nodes (src/net/fused.rs: the linear layer, the quadratic cost) give the
//! gradients of the maths they stand for, on the whole network: for every activation and every
//! output and loss the harness trains with, at batch 6 and batch 1, every weight, bias and
//! input gradient of `Mlp::forward` + the training loss equals burn's plain autodiff of the
//! same maths written out in elementary operations, with a random upstream gradient; a finite
//! difference confirms a few. On flex, ndarray and wgpu (wgpu where an adapter exists; required
//! where `HARNESS_REQUIRE_WGPU=1`, as in CI).

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation;
use harness::choice::Choice;
use harness::config::Loss;
use harness::net::backend::{self, BackendName};
use harness::net::model::{Activation, Init, Mlp, MlpConfig, OutputActivation};
use harness::train::train;

/// The network's logits written out: x·W + b per layer, the activation, nothing fused.
fn plain_forward(model: &Mlp, activations: &[Activation], x: Tensor<2>) -> Tensor<2> {
    let mut x = x;
    let last = model.layers.len() - 1;
    for (i, layer) in model.layers.iter().enumerate() {
        let weight = layer.weight.val(); // [in, out]
        let bias = layer.bias.as_ref().unwrap().val().unsqueeze::<2>(); // [1, out]
        x = x.matmul(weight) + bias;
        if i < last {
            x = activations[i].apply(x);
        }
    }
    x
}

/// The training loss written out: the quadratic cost of the outputs, or softmax cross-entropy.
fn plain_loss(logits: Tensor<2>, labels: &[u8], output: OutputActivation, loss: Loss) -> Tensor<1> {
    let device = logits.device();
    let [batch, classes] = logits.dims();
    let mut one_hot = vec![0f32; batch * classes];
    for (row, &label) in labels.iter().enumerate() {
        one_hot[row * classes + usize::from(label)] = 1.0;
    }
    let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [batch, classes]), &device);
    match loss {
        Loss::Mse => {
            let outputs = match output {
                OutputActivation::Sigmoid => activation::sigmoid(logits),
                OutputActivation::Softmax => activation::softmax(logits, 1),
            };
            (outputs - one_hot)
                .square()
                .sum()
                .div_scalar(2.0 * batch as f64)
        }
        Loss::CrossEntropy => {
            let classes = Tensor::<1, Int>::from_data(
                TensorData::new(labels.iter().map(|&l| i64::from(l)).collect(), [batch]),
                &device,
            );
            CrossEntropyLossConfig::new()
                .init(&device)
                .forward(logits, classes)
        }
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Asserts two gradients agree to float precision, relative to their size.
fn assert_close(case: &str, what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{case}: {what} sizes");
    let scale = theirs.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * scale + 1e-6,
            "{case}: {what}[{i}] = {a}, plain autodiff {b} (scale {scale})"
        );
    }
}

/// Every gradient of one network and loss on `device`; returns how many values were compared.
fn check_case(
    device: &Device,
    activation: Activation,
    output: OutputActivation,
    loss: Loss,
    batch: usize,
) -> usize {
    let case = format!("{activation} {output} {loss} batch {batch}");
    let autodiff = device.clone().autodiff();
    autodiff.seed(11);
    let config = MlpConfig {
        hidden: vec![7, 5],
        activations: vec![activation; 2],
        output,
        init: Init::Default,
        dropout: 0.0,
    };
    let model = config.init(&autodiff);
    let x = Tensor::<2>::random([batch, 784], Distribution::Default, &autodiff).require_grad();
    let labels: Vec<u8> = (0..batch).map(|i| ((i * 7 + 3) % 10) as u8).collect();
    let upstream = Tensor::<2>::random([batch, 10], Distribution::Normal(0.0, 1.0), &autodiff);
    let weight = 1.7;

    // Ours: the fused forward and the training loop's loss, plus a random weighting of the
    // logits so that every layer's backward sees a non-trivial upstream gradient.
    let logits = model.forward(x.clone());
    let ours = train::batch_loss(&model, logits.clone(), &labels, loss).mul_scalar(weight)
        + (logits * upstream.clone()).sum();
    let ours = ours.backward();
    // Theirs: the same maths in plain operations.
    let logits = plain_forward(&model, &config.activations, x.clone());
    let theirs = plain_loss(logits.clone(), &labels, output, loss).mul_scalar(weight)
        + (logits * upstream).sum();
    let theirs = theirs.backward();

    let mut compared = 0;
    for (i, layer) in model.layers.iter().enumerate() {
        let w = layer.weight.val();
        let b = layer.bias.as_ref().unwrap().val();
        let (a, t) = (
            values(w.grad(&ours).unwrap()),
            values(w.grad(&theirs).unwrap()),
        );
        assert_close(&case, &format!("layer {i} weight gradient"), &a, &t);
        let (c, d) = (
            values(b.grad(&ours).unwrap()),
            values(b.grad(&theirs).unwrap()),
        );
        assert_close(&case, &format!("layer {i} bias gradient"), &c, &d);
        compared += a.len() + c.len();
    }
    let (a, t) = (
        values(x.grad(&ours).unwrap()),
        values(x.grad(&theirs).unwrap()),
    );
    assert_close(&case, "input gradient", &a, &t);
    compared + a.len()
}

/// A central finite difference of the loss against two autodiff gradients: one first-layer
/// weight and one input pixel.
fn finite_difference(
    device: &Device,
    activation: Activation,
    output: OutputActivation,
    loss: Loss,
) {
    let case = format!("{activation} {output} {loss} (finite difference)");
    let autodiff = device.clone().autodiff();
    autodiff.seed(5);
    let config = MlpConfig {
        hidden: vec![7, 5],
        activations: vec![activation; 2],
        output,
        init: Init::Default,
        dropout: 0.0,
    };
    let model = config.init(&autodiff);
    let labels = [3u8, 8, 1];
    let x = Tensor::<2>::random([3, 784], Distribution::Default, &autodiff).require_grad();
    let grads = train::batch_loss(&model, model.forward(x.clone()), &labels, loss).backward();
    let weight_grad = values(model.layers[0].weight.val().grad(&grads).unwrap());
    let input_grad = values(x.grad(&grads).unwrap());

    // The loss as a function of the first layer's weight 100 and of pixel 300 of image 1, in
    // f64 around the f32 values, on the plain device.
    let plain = model.valid();
    let x = x.inner();
    let at = |dw: f32, dx: f32| -> f64 {
        let mut weights = values(plain.layers[0].weight.val());
        weights[100] += dw;
        let mut pixels = values(x.clone());
        pixels[784 + 300] += dx;
        let mut moved = plain.clone();
        moved.layers[0].weight = burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(weights, [784, 7]),
            device,
        ));
        let images = Tensor::<2>::from_data(TensorData::new(pixels, [3, 784]), device);
        let value = train::batch_loss(&moved, moved.forward(images), &labels, loss);
        f64::from(values(value)[0])
    };
    let h = 1e-2f32;
    for (what, numeric, analytic) in [
        (
            "weight 100",
            (at(h, 0.0) - at(-h, 0.0)) / (2.0 * f64::from(h)),
            weight_grad[100],
        ),
        (
            "pixel 300 of image 1",
            (at(0.0, h) - at(0.0, -h)) / (2.0 * f64::from(h)),
            input_grad[784 + 300],
        ),
    ] {
        let analytic = f64::from(analytic);
        assert!(
            (numeric - analytic).abs() <= 1e-3 + 0.05 * analytic.abs(),
            "{case}: {what}: finite difference {numeric}, autodiff {analytic}"
        );
    }
}

fn devices() -> Vec<(String, Device)> {
    let mut devices = Vec::new();
    for name in [BackendName::Flex, BackendName::Ndarray, BackendName::Wgpu] {
        match backend::select(name) {
            Ok(selected) => devices.push((name.to_string(), selected.device)),
            Err(error) => {
                // ndarray is in the build only with `--features ndarray` (CI builds it too).
                let required = match name {
                    BackendName::Wgpu => {
                        std::env::var("HARNESS_REQUIRE_WGPU").is_ok_and(|v| v == "1")
                    }
                    BackendName::Ndarray => cfg!(feature = "ndarray"),
                    _ => true,
                };
                assert!(!required, "{name} is required here: {error:#}");
                eprintln!("skipped {name}: {error:#}");
            }
        }
    }
    devices
}

/// The output activations and losses the harness trains with.
const HEADS: [(OutputActivation, Loss); 3] = [
    (OutputActivation::Sigmoid, Loss::Mse),
    (OutputActivation::Softmax, Loss::Mse),
    (OutputActivation::Softmax, Loss::CrossEntropy),
];

#[test]
fn fused_gradients_equal_plain_autodiff_for_every_activation_head_and_backend() {
    for (name, device) in devices() {
        let started = std::time::Instant::now();
        let mut compared = 0;
        for &activation in Activation::ALL {
            for (output, loss) in HEADS {
                for batch in [6, 1] {
                    // lavapipe compiles every kernel of every new shape: on wgpu, every
                    // activation through the fused cost and every head through ReLU, at both
                    // batch sizes (16 of the 36 cases; each fused node and each activation's
                    // backward is among them).
                    let sampled = activation == Activation::Relu
                        || (output, loss) == (OutputActivation::Sigmoid, Loss::Mse);
                    if name == "wgpu" && !sampled {
                        continue;
                    }
                    compared += check_case(&device, activation, output, loss, batch);
                }
            }
        }
        eprintln!(
            "{name}: {compared} gradient values equal plain autodiff ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn gradients_match_finite_differences() {
    for (name, device) in devices() {
        if name == "wgpu" {
            continue; // the CPU backends suffice to check the maths; wgpu is checked above
        }
        for activation in [Activation::Sigmoid, Activation::Tanh, Activation::Gelu] {
            for (output, loss) in HEADS {
                finite_difference(&device, activation, output, loss);
            }
        }
    }
}
