//! Operations that are one autodiff node instead of several, through burn's backend extension.
//!
//! At batch 10 a training step is bookkeeping, not arithmetic: every tensor operation under
//! autodiff is a graph node, registered on the way forward and visited on the way back. These
//! places of the MLP made many nodes, or repeated work, for little arithmetic:
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
//! - **The sigmoid's backward.** burn's sigmoid node keeps x and computes σ(x) again on the way
//!   back, one `exp` per element and a buffer more, per layer and step. [`sigmoid`] keeps σ(x)
//!   and hands it to the same `sigmoid_backward`, so the gradient is burn's to the bit
//!   (faithful run 7.8-8.0 -> 7.5-7.7 s on the AMD EPYC of 2026-11-30, test accuracy unchanged).
//! - **Adam's update.** burn's Adam updates a parameter in about twelve element-wise passes (two
//!   moments, their bias corrections, the square root, the division, the learning rate, the
//!   subtraction), each a full sweep over the parameter and most of them a fresh buffer. At 800
//!   wide that was a quarter of the CPU time of an epoch, on one core while the other waited
//!   (BENCHMARKS.md, the AMD EPYC of 2026-11-30). [`adam_step`] is the same arithmetic in the same
//!   order; on burn-flex it is one pass over the four arrays, in place, split over the CPU
//!   threads; the other backends run the composed operations. SGD's `param - grad * lr`, two
//!   operations per parameter (at batch 10 the dispatch is the cost), is one: [`sgd_step`].
//!
//! All are declared with `#[backend_extension]`, burn's extension point. The linear layer, the
//! sigmoid and the cost are computed with the backends' own operations and only the cost has a
//! hand-written backward; the optimizer steps have hand-written loops on burn-flex.

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

    /// σ(x), elementwise, as the backend's own `ActivationOps::sigmoid`.
    fn sigmoid_layer(x: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ActivationOps<Self>>::sigmoid(x)
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

    /// One Adam update of one parameter, as burn's `Adam` computes it: returns the parameter and
    /// the two moments after the step. `grad` already includes any weight decay.
    ///
    /// # Shapes
    /// - param, grad, moment_1, moment_2: the same shape
    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        adam_step_composed::<Self>(param, grad, moment_1, moment_2, step)
    }

    /// One plain gradient step, `param − grad · learning_rate`, as burn's `Sgd` computes it.
    /// `grad` already includes any weight decay and momentum.
    fn sgd_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        learning_rate: f32,
    ) -> FloatTensor<Self> {
        sgd_step_composed::<Self>(param, grad, learning_rate)
    }
}

/// [`FusedBackend::sgd_step`] in the backend's own operations, as burn's `Sgd`.
fn sgd_step_composed<B: Backend>(
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    learning_rate: f32,
) -> FloatTensor<B> {
    B::float_sub(param, B::float_mul_scalar(grad, learning_rate.into()))
}

/// The scalars of one Adam step, as burn's `Adam` derives them from its settings, the learning
/// rate and the step count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// β1, the first moment's decay.
    pub beta_1: f32,
    /// β2, the second moment's decay.
    pub beta_2: f32,
    /// √(1 − β2^t) / (1 − β1^t): both bias corrections folded into the first moment's factor.
    pub factor: f32,
    /// ε · √(1 − β2^t), added to √v.
    pub epsilon: f32,
    /// The learning rate, as the f32 burn's scalar operations turn it into.
    pub learning_rate: f32,
}

impl AdamStep {
    /// The scalars of step `time` (1 for the first), in burn's arithmetic (`burn::optim::Adam`).
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, learning_rate: f64, time: i32) -> Self {
        let bias_correction_2 = (1.0 - beta_2.powi(time)).sqrt();
        AdamStep {
            beta_1,
            beta_2,
            factor: bias_correction_2 / (1.0 - beta_1.powi(time)),
            epsilon: epsilon * bias_correction_2,
            learning_rate: learning_rate as f32,
        }
    }

    /// The update of one element: `(param, moment_1, moment_2)` after the step. The operations
    /// and their order are those of the composed tensor operations, so the results are the same
    /// to the bit.
    #[inline(always)]
    fn element(&self, param: f32, grad: f32, moment_1: f32, moment_2: f32) -> (f32, f32, f32) {
        let moment_1 = moment_1 * self.beta_1 + grad * (1.0 - self.beta_1);
        let moment_2 = moment_2 * self.beta_2 + grad * grad * (1.0 - self.beta_2);
        let update = moment_1 * self.factor / (moment_2.sqrt() + self.epsilon);
        (param - update * self.learning_rate, moment_1, moment_2)
    }
}

/// [`FusedBackend::adam_step`] in the backend's own tensor operations: burn's `Adam`, operation
/// for operation.
fn adam_step_composed<B: Backend>(
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    moment_1: FloatTensor<B>,
    moment_2: FloatTensor<B>,
    step: AdamStep,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let moment_1 = B::float_add(
        B::float_mul_scalar(moment_1, step.beta_1.into()),
        B::float_mul_scalar(grad.clone(), (1.0 - step.beta_1).into()),
    );
    let moment_2 = B::float_add(
        B::float_mul_scalar(moment_2, step.beta_2.into()),
        B::float_mul_scalar(B::float_mul(grad.clone(), grad), (1.0 - step.beta_2).into()),
    );
    let update = B::float_div(
        B::float_mul_scalar(moment_1.clone(), step.factor.into()),
        B::float_add_scalar(B::float_sqrt(moment_2.clone()), step.epsilon.into()),
    );
    let param = B::float_sub(
        param,
        B::float_mul_scalar(update, step.learning_rate.into()),
    );
    (param, moment_1, moment_2)
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
impl FusedBackend for burn::backend::Flex {
    fn adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        flex::adam_step(param, grad, moment_1, moment_2, step)
    }

    fn sgd_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        learning_rate: f32,
    ) -> FloatTensor<Self> {
        flex::sgd_step(param, grad, learning_rate)
    }
}

/// burn-flex's Adam step: one pass, in place.
#[cfg(feature = "flex")]
mod flex {
    use super::{AdamStep, adam_step_composed, sgd_step_composed};
    use burn::backend::Flex;
    use burn::tensor::DType;
    use burn_flex::FlexTensor;
    use multiversion::multiversion;
    use rayon::prelude::*;

    /// Elements per task when the pass is split over threads: 64 KiB of each array, few enough
    /// tasks for a 636,010-parameter layer (10) that splitting costs nothing next to the pass.
    const CHUNK: usize = 16 * 1024;

    /// Matching pieces of the parameter, the gradient and the two moments.
    type Chunks<'a> = ((&'a mut [f32], &'a [f32]), (&'a mut [f32], &'a mut [f32]));

    /// Whether every tensor is `n` contiguous f32 values from the start of its buffer.
    fn plain(n: usize, tensors: &[&FlexTensor]) -> bool {
        tensors.iter().all(|t| {
            t.dtype() == DType::F32
                && t.layout().num_elements() == n
                && t.layout().contiguous_offsets() == Some((0, n))
        })
    }

    pub(super) fn sgd_step(
        mut param: FlexTensor,
        grad: FlexTensor,
        learning_rate: f32,
    ) -> FlexTensor {
        let n = param.layout().num_elements();
        if !plain(n, &[&param, &grad]) {
            return sgd_step_composed::<Flex>(param, grad, learning_rate);
        }
        let g = &grad.storage::<f32>()[..n];
        let p = &mut param.storage_mut::<f32>()[..n];
        if n < 2 * CHUNK {
            sgd_pass(learning_rate, p, g);
        } else {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .for_each(|(p, g)| sgd_pass(learning_rate, p, g));
        }
        param
    }

    pub(super) fn adam_step(
        mut param: FlexTensor,
        grad: FlexTensor,
        mut moment_1: FlexTensor,
        mut moment_2: FlexTensor,
        step: AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let n = param.layout().num_elements();
        if !plain(n, &[&param, &grad, &moment_1, &moment_2]) {
            // Views, other dtypes: burn's operations handle every layout.
            return adam_step_composed::<Flex>(param, grad, moment_1, moment_2, step);
        }
        let g = &grad.storage::<f32>()[..n];
        // Copy-on-write: a parameter still shared elsewhere is copied, never changed under
        // another owner.
        let (p, m1, m2) = (
            &mut param.storage_mut::<f32>()[..n],
            &mut moment_1.storage_mut::<f32>()[..n],
            &mut moment_2.storage_mut::<f32>()[..n],
        );
        if n < 2 * CHUNK {
            adam_pass(step, p, g, m1, m2);
        } else {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m1.par_chunks_mut(CHUNK).zip(m2.par_chunks_mut(CHUNK)))
                .for_each(|((p, g), (m1, m2)): Chunks<'_>| adam_pass(step, p, g, m1, m2));
        }
        (param, moment_1, moment_2)
    }

    // The passes are compiled once per x86 SIMD level (AVX-512, AVX2 + FMA, SSE4, ...) and the
    // best the CPU has is chosen at run time: the crate is built for baseline x86-64, whose SSE2
    // does four `sqrtps`/`divps` lanes where AVX-512 does sixteen. At 128 wide the SSE2 Adam pass
    // was 16% of an epoch (BENCHMARKS.md, the AMD EPYC of 2026-11-30). Wider lanes change no
    // result: each element still goes through the same IEEE operations in the same order, and
    // Rust never contracts a multiply and an add into an FMA on its own.

    /// [`AdamStep::element`] over matching pieces of the four arrays.
    #[multiversion(targets = "simd")]
    fn adam_pass(step: AdamStep, p: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32]) {
        for (((p, g), m1), m2) in p.iter_mut().zip(g).zip(m1.iter_mut()).zip(m2.iter_mut()) {
            (*p, *m1, *m2) = step.element(*p, *g, *m1, *m2);
        }
    }

    /// `p -= g · learning_rate` over matching pieces.
    #[multiversion(targets = "simd")]
    fn sgd_pass(learning_rate: f32, p: &mut [f32], g: &[f32]) {
        for (p, g) in p.iter_mut().zip(g) {
            *p -= g * learning_rate;
        }
    }
}

#[cfg(feature = "ndarray")]
impl FusedBackend for burn::backend::NdArray {}

#[cfg(feature = "wgpu")]
impl FusedBackend for burn::backend::Cube {}

impl<B: Backend + FusedBackend, C: CheckpointStrategy> FusedBackend for Autodiff<B, C> {
    // `linear_layer`: the trait's body, which reaches burn's `LinearWithBias` node here.

    fn sigmoid_layer(x: FloatTensor<Self>) -> FloatTensor<Self> {
        /// The backward step; its state is σ(x), which burn's node computes a second time.
        #[derive(Debug)]
        struct Sigmoid;

        impl<B: Backend> Backward<B, 1> for Sigmoid {
            type State = B::FloatTensorPrimitive;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let output = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::sigmoid_backward(output, grad)
                });
            }
        }

        match Sigmoid.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::sigmoid(x.into_primitive());
                prep.finish(output.clone(), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::sigmoid(x.into_primitive())),
        }
    }

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

/// σ(x), elementwise, as one operation whose backward reuses σ(x) (burn's sigmoid node
/// recomputes it from x: one `exp` per element and a buffer more per layer and step).
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedBackend>::sigmoid_layer(x.into_dispatch()))
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

/// `param − grad · learning_rate` in one pass where the backend has one (burn-flex). The inputs
/// are plain tensors.
pub fn sgd_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    learning_rate: f32,
) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedBackend>::sgd_step(
        param.into_dispatch(),
        grad.into_dispatch(),
        learning_rate,
    ))
}

/// One Adam update of one parameter in one pass where the backend has one (burn-flex): returns
/// `(param, moment_1, moment_2)` after the step. The inputs are plain tensors (the optimizer's
/// side of autodiff).
pub fn adam_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (param, moment_1, moment_2) = <Dispatch as FusedBackend>::adam_step(
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        step,
    );
    (
        Tensor::from_dispatch(param),
        Tensor::from_dispatch(moment_1),
        Tensor::from_dispatch(moment_2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::activation;
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

    /// The same values and, to the bit, the same gradient as burn's sigmoid, with and without
    /// autodiff: the backward is burn's arithmetic on the σ(x) kept from the forward pass.
    #[test]
    fn sigmoid_gives_burns_values_and_gradient_to_the_bit() {
        for device in cpu_devices() {
            check_sigmoid(device);
        }
    }

    /// The same on wgpu (required in CI, as below).
    #[cfg(feature = "wgpu")]
    #[test]
    fn sigmoid_gives_burns_values_and_gradient_to_the_bit_on_wgpu() {
        if let Some(device) = crate::net::backend::wgpu_for_test() {
            check_sigmoid(device);
        }
    }

    fn check_sigmoid(device: Device) {
        let bits = |t: Tensor<2>| -> Vec<u32> {
            let values = t.into_data().to_vec::<f32>().unwrap();
            values.iter().map(|v| v.to_bits()).collect()
        };
        let plain = device.clone();
        let device = device.autodiff();
        device.seed(7);
        let x = Tensor::<2>::random([5, 9], Distribution::Normal(0.0, 3.0), &device).require_grad();
        // Weights so the incoming gradient differs per element.
        let w = Tensor::<2>::random([5, 9], Distribution::Default, &device);

        let (ours, theirs) = (sigmoid(x.clone()), activation::sigmoid(x.clone()));
        assert_eq!(bits(ours.clone()), bits(theirs.clone()));
        let ours = (ours * w.clone()).sum().backward();
        let theirs = (theirs * w).sum().backward();
        let gradient = x.grad(&ours).unwrap();
        assert_eq!(bits(gradient.clone()), bits(x.grad(&theirs).unwrap()));
        assert!(gradient.abs().sum().into_scalar::<f32>() > 0.0);

        let x = x.inner().to_device(&plain);
        assert_eq!(bits(sigmoid(x.clone())), bits(activation::sigmoid(x)));
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
        if let Some(device) = crate::net::backend::wgpu_for_test() {
            check_quadratic_cost(device);
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
            (activation::sigmoid(logits) - targets)
                .square()
                .sum()
                .div_scalar(12.0)
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
