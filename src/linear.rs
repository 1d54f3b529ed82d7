//! A fully connected layer as one autodiff operation, through burn's backend extension.
//!
//! burn 0.22.1's runtime `Dispatch` backend does not forward `ModuleOps::linear` to the backend
//! it dispatches to (a `TODO: linear ops` in burn-dispatch), so `burn::nn::Linear::forward`
//! falls back to the generic composition: reshape, matmul, reshape of the bias, add, reshape.
//! Under autodiff each of those is a node of the graph, with its own bookkeeping on the way
//! forward and back; at batch 10 that bookkeeping, not arithmetic, is most of a training step.
//!
//! [`LinearBackend`] is a backend extension (`#[backend_extension]`, burn's own extension point)
//! whose one operation calls the selected backend's own `ModuleOps::linear`. On
//! `Autodiff<B, C>` that is burn's single `LinearWithBias` node, whose backward computes the
//! input, weight and bias gradients directly; on the plain backends (evaluation) it is their
//! regular linear. Nothing here reimplements arithmetic or gradients.

// burn-ndarray is deprecated in burn 0.22 but still one of harness's backends.
#![allow(deprecated)]

use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::nn::Linear;
use burn::prelude::*;

/// Backends whose linear layer is reached without the decomposition of the dispatch fallback.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(feature = "wgpu"),
    Autodiff
)]
pub trait LinearBackend: Backend {
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
}

#[cfg(feature = "flex")]
impl LinearBackend for burn::backend::Flex {}

#[cfg(feature = "ndarray")]
impl LinearBackend for burn::backend::NdArray {}

#[cfg(feature = "wgpu")]
impl LinearBackend for burn::backend::Cube {}

impl<
    B: Backend + LinearBackend,
    C: burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy,
> LinearBackend for burn::backend::Autodiff<B, C>
{
}

/// `layer` applied to `x` as one operation (one autodiff node when `x` is on an autodiff device).
///
/// # Shapes
/// - x: `[batch, d_input]`
/// - returns: `[batch, d_output]`
pub fn forward(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let Some(bias) = &layer.bias else {
        return layer.forward(x);
    };
    Tensor::from_dispatch(<Dispatch as LinearBackend>::linear_layer(
        x.into_dispatch(),
        layer.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;

    /// Same values and the same gradients as burn's `Linear::forward`, on every CPU backend.
    #[test]
    fn matches_burn_linear_forward_and_backward() {
        let mut devices = Vec::new();
        #[cfg(feature = "flex")]
        devices.push(Device::flex());
        #[cfg(feature = "ndarray")]
        devices.push(Device::ndarray());
        for device in devices {
            let device = device.autodiff();
            device.seed(3);
            let layer = LinearConfig::new(5, 3).init(&device);
            let x = Tensor::<2>::random([4, 5], burn::tensor::Distribution::Default, &device);

            let ours = forward(&layer, x.clone());
            let theirs = layer.forward(x);
            ours.clone()
                .into_data()
                .assert_approx_eq::<f32>(&theirs.clone().into_data(), Default::default());

            let ours_grads = ours.sum().backward();
            let theirs_grads = theirs.sum().backward();
            let weight = layer.weight.val();
            weight
                .grad(&ours_grads)
                .expect("a weight gradient")
                .into_data()
                .assert_approx_eq::<f32>(
                    &weight.grad(&theirs_grads).unwrap().into_data(),
                    Default::default(),
                );
            let bias = layer.bias.as_ref().unwrap().val();
            bias.grad(&ours_grads)
                .expect("a bias gradient")
                .into_data()
                .assert_approx_eq::<f32>(
                    &bias.grad(&theirs_grads).unwrap().into_data(),
                    Default::default(),
                );
        }
    }
}
