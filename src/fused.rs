//! Operations that are one autodiff node instead of several, through burn's backend extension.
//!
//! At batch 10 a training step is bookkeeping, not arithmetic: every tensor operation under
//! autodiff is a graph node, registered on the way forward and visited on the way back. Two
//! places of the MLP made many nodes for little work:
//!
//! - **Linear layers.** burn 0.22.1's runtime `Dispatch` backend does not forward
//!   `ModuleOps::linear` to the backend it dispatches to (a `TODO: linear ops` in
//!   burn-dispatch), so `burn::nn::Linear::forward` falls back to the generic composition:
//!   reshape, matmul, reshape of the bias, add, reshape, five nodes. [`linear`] calls the
//!   selected backend's own `ModuleOps::linear` instead: on `Autodiff<B, C>` that is burn's single
//!   `LinearWithBias` node with its direct backward.
//! - **The video's quadratic cost** on sigmoid outputs, C = Σ‖σ(z) − y‖² / 2m: sigmoid, subtract,
//!   square, sum, divide, five nodes. [`quadratic_cost`] is one, whose backward is the textbook
//!   δ = (σ(z) − y) ⊙ σ(z)(1 − σ(z)) / m.
//!
//! Both are declared with `#[backend_extension]`, burn's extension point, and computed with the
//! backends' own operations; only the quadratic cost has a hand-written backward.

// burn-ndarray is deprecated in burn 0.22 but still one of harness's backends.
#![allow(deprecated)]

use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, backend_extension};
use burn::nn::Linear;
use burn::prelude::*;

/// Backends that run harness's fused operations.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(feature = "wgpu"),
    Autodiff
)]
pub trait FusedBackend: Backend {
    /// `x · weight + bias`, as the backend's own `ModuleOps::linear`.
    ///
    /// # Shapes
    /// - x: `[batch, d_input]`, weight: `[d_input, d_output]`, bias: `[d_output]`
    /// - returns: `[batch, d_output]`
    fn linear_layer(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::linear(x, weight, Some(bias))
    }

    /// Σ (σ(logits) − targets)² / (2 · batch).
    ///
    /// # Shapes
    /// - logits, targets: `[batch, classes]`
    /// - returns: `[1]`
    fn quadratic_cost(logits: FloatTensor<Self>, targets: FloatTensor<Self>) -> FloatTensor<Self> {
        let outputs = <Self as ActivationOps<Self>>::sigmoid(logits);
        quadratic_cost_of_outputs::<Self>(outputs, targets)
    }
}

/// Σ (outputs − targets)² / (2 · batch), the same operations in the same order as
/// `(outputs - targets).square().sum().div_scalar(2 * batch)`.
fn quadratic_cost_of_outputs<B: Backend>(
    outputs: FloatTensor<B>,
    targets: FloatTensor<B>,
) -> FloatTensor<B> {
    let batch = outputs.shape()[0];
    let diff = B::float_sub(outputs, targets);
    let squares = B::float_mul(diff.clone(), diff);
    B::float_div_scalar(B::float_sum(squares), (2.0 * batch as f64).into())
}

#[cfg(feature = "flex")]
impl FusedBackend for burn::backend::Flex {}

#[cfg(feature = "ndarray")]
impl FusedBackend for burn::backend::NdArray {}

#[cfg(feature = "wgpu")]
impl FusedBackend for burn::backend::Cube {}

impl<B: Backend + FusedBackend, C: CheckpointStrategy> FusedBackend for Autodiff<B, C> {
    // `linear_layer`: the trait's body, which reaches burn's `LinearWithBias` node here.

    fn quadratic_cost(logits: FloatTensor<Self>, targets: FloatTensor<Self>) -> FloatTensor<Self> {
        /// The backward step; its state is σ(logits) and the targets.
        #[derive(Debug)]
        struct QuadraticCost;

        impl<B: Backend> Backward<B, 1> for QuadraticCost {
            type State = (B::FloatTensorPrimitive, B::FloatTensorPrimitive);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (outputs, targets) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    // grad: [1], the cost's own gradient (1 when it is the loss).
                    let batch = outputs.shape()[0];
                    let diff = B::float_sub(outputs.clone(), targets);
                    let delta = B::sigmoid_backward(outputs, diff); // (σ − y) σ (1 − σ)
                    let grad = B::float_reshape(grad, [1, 1].into());
                    B::float_mul(B::float_div_scalar(delta, (batch as f64).into()), grad)
                });
            }
        }

        // The targets are constants: their gradient is never asked for.
        let targets = targets.into_primitive();
        match QuadraticCost
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let outputs = B::sigmoid(logits.into_primitive());
                let cost = quadratic_cost_of_outputs::<B>(outputs.clone(), targets.clone());
                prep.finish((outputs, targets), cost)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::quadratic_cost(logits.into_primitive(), targets))
            }
        }
    }
}

/// `layer` applied to `x` as one operation (one autodiff node when `x` is on an autodiff device).
///
/// # Shapes
/// - x: `[batch, d_input]`
/// - returns: `[batch, d_output]`
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let Some(bias) = &layer.bias else {
        return layer.forward(x);
    };
    Tensor::from_dispatch(<Dispatch as FusedBackend>::linear_layer(
        x.into_dispatch(),
        layer.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
    ))
}

/// The video's quadratic cost of sigmoid outputs, C = Σ‖σ(logits) − targets‖² / (2 · batch), as
/// one operation.
///
/// # Shapes
/// - logits, targets: `[batch, classes]`
/// - returns: `[1]`
pub fn quadratic_cost(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as FusedBackend>::quadratic_cost(
        logits.into_dispatch(),
        targets.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::activation::sigmoid;
    use burn::tensor::{Distribution, Tolerance};

    fn cpu_devices() -> Vec<Device> {
        vec![
            #[cfg(feature = "flex")]
            Device::flex(),
            #[cfg(feature = "ndarray")]
            Device::ndarray(),
        ]
    }

    fn assert_close<const D: usize>(ours: Tensor<D>, theirs: Tensor<D>) {
        ours.into_data()
            .assert_approx_eq::<f32>(&theirs.into_data(), Tolerance::default());
    }

    /// Same values and the same gradients as burn's `Linear::forward`.
    #[test]
    fn linear_matches_burn_linear_forward_and_backward() {
        for device in cpu_devices() {
            let device = device.autodiff();
            device.seed(3);
            let layer = LinearConfig::new(5, 3).init(&device);
            let x = Tensor::<2>::random([4, 5], Distribution::Default, &device);

            let ours = linear(&layer, x.clone());
            let theirs = layer.forward(x);
            assert_close(ours.clone(), theirs.clone());

            let ours = ours.sum().backward();
            let theirs = theirs.sum().backward();
            let weight = layer.weight.val();
            assert_close(weight.grad(&ours).unwrap(), weight.grad(&theirs).unwrap());
            let bias = layer.bias.as_ref().unwrap().val();
            assert_close(bias.grad(&ours).unwrap(), bias.grad(&theirs).unwrap());
        }
    }

    /// Same value and the same gradient as the cost written out in tensor operations, with and
    /// without autodiff.
    #[test]
    fn quadratic_cost_matches_the_composed_formula() {
        for device in cpu_devices() {
            check_quadratic_cost(device);
        }
    }

    /// The same on wgpu: required in CI (HARNESS_REQUIRE_WGPU=1, lavapipe), skipped with the
    /// reason on a machine without a Vulkan, Metal or DX12 adapter.
    #[cfg(feature = "wgpu")]
    #[test]
    fn quadratic_cost_matches_the_composed_formula_on_wgpu() {
        let required = std::env::var("HARNESS_REQUIRE_WGPU").is_ok_and(|v| v == "1");
        match crate::backend::select(crate::backend::BackendName::Wgpu) {
            Ok(selected) => check_quadratic_cost(selected.device),
            Err(error) if !required => eprintln!("skipped: {error:#}"),
            Err(error) => panic!("wgpu is required here: {error:#}"),
        }
    }

    fn check_quadratic_cost(device: Device) {
        let plain = device.clone();
        let device = device.autodiff();
        device.seed(5);
        let logits =
            Tensor::<2>::random([6, 10], Distribution::Normal(0.0, 2.0), &device).require_grad();
        let targets = Tensor::<2>::random([6, 10], Distribution::Default, &device);
        let composed = |logits: Tensor<2>, targets: Tensor<2>| {
            (sigmoid(logits) - targets).square().sum().div_scalar(12.0)
        };

        let ours = quadratic_cost(logits.clone(), targets.clone());
        let theirs = composed(logits.clone(), targets.clone());
        assert_close(ours.clone(), theirs.clone());
        // Scale the cost so the incoming gradient is not 1.
        let ours = ours.mul_scalar(3.0).backward();
        let theirs = theirs.mul_scalar(3.0).backward();
        assert_close(logits.grad(&ours).unwrap(), logits.grad(&theirs).unwrap());

        // Without autodiff (evaluation): the trait's own body.
        let logits = logits.inner().to_device(&plain);
        let targets = targets.inner().to_device(&plain);
        assert_close(
            quadratic_cost(logits.clone(), targets.clone()),
            composed(logits, targets),
        );
    }
}
