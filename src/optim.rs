//! Adam with its update in one pass ([`crate::fused::adam_step`]).
//!
//! burn's `Adam` is the reference: the same settings, the same state type (`AdamState`, so a
//! record of one loads into the other) and the same arithmetic in the same order, so both give
//! the same parameters to the bit (checked below on every CPU backend, and on wgpu where one is
//! required). Only the number of passes over memory differs: one instead of about twelve.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer};
use burn::prelude::*;

use crate::fused::{AdamStep, adam_step};

/// Adam (β1 = 0.9, β2 = 0.999, ε = 1e-5, burn's defaults), with optional L2 weight decay added
/// to the gradient as burn's `WeightDecay` does.
#[derive(Clone, Debug)]
pub struct Adam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: Option<f32>,
}

impl Adam {
    /// burn's default Adam, with `weight_decay` as the L2 penalty when given.
    pub fn new(weight_decay: Option<WeightDecayConfig>) -> Self {
        Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-5,
            weight_decay: weight_decay.map(|config| config.penalty),
        }
    }

    /// As a module optimizer, the way burn's `AdamConfig::init` wraps its own.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

impl burn::optim::Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let grad = match self.weight_decay {
            Some(penalty) => tensor.clone().mul_scalar(penalty).add(grad),
            None => grad,
        };
        // The first step starts from zero moments: 0·β + g·(1 − β) is g·(1 − β) exactly, burn's
        // first moments.
        let (time, moment_1, moment_2) = match state {
            Some(state) => (
                state.momentum.time + 1,
                state.momentum.moment_1,
                state.momentum.moment_2,
            ),
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        let step = AdamStep::new(
            self.beta_1,
            self.beta_2,
            self.epsilon,
            lr,
            i32::try_from(time).unwrap_or(i32::MAX),
        );
        let (tensor, moment_1, moment_2) = adam_step(tensor, grad, moment_1, moment_2, step);
        let momentum = AdaptiveMomentumState::new(time, moment_1, moment_2);
        (tensor, Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::Distribution;

    /// A few steps of a layer under `optimizer`, with a gradient that changes every step.
    fn train(device: &Device, mut optimizer: ModuleOptimizer, steps: usize) -> Vec<f32> {
        device.seed(11);
        // 300 x 200: 60,000 weights, large enough for burn-flex's pass to split over threads.
        let mut layer: Linear = LinearConfig::new(300, 200).init(device);
        for step in 0..steps {
            let x = Tensor::<2>::random([8, 300], Distribution::Normal(0.0, 1.0), device);
            let loss = (layer.forward(x).tanh() - 0.1 * step as f64)
                .powi_scalar(2)
                .mean();
            let gradients = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optimizer.step(1e-2, layer, gradients);
        }
        let mut values = layer.weight.val().into_data().to_vec::<f32>().unwrap();
        values.extend(
            layer
                .bias
                .unwrap()
                .val()
                .into_data()
                .to_vec::<f32>()
                .unwrap(),
        );
        values
    }

    fn check(device: Device) {
        let device = device.autodiff();
        for decay in [None, Some(1e-3)] {
            let config = || decay.map(|penalty| WeightDecayConfig::new(penalty));
            let ours = train(&device, Adam::new(config()).init(), 5);
            let burns = train(
                &device,
                AdamConfig::new().with_weight_decay(config()).init(),
                5,
            );
            let differing = ours
                .iter()
                .zip(&burns)
                .filter(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(
                differing.count(),
                0,
                "weight decay {decay:?} on {device:?}: parameters differ from burn's Adam"
            );
            // And the step did something.
            let start = train(&device, Adam::new(config()).init(), 0);
            assert!(ours.iter().zip(&start).any(|(a, b)| a != b));
        }
    }

    /// The same parameters as burn's Adam, to the bit, on the CPU backends.
    #[test]
    fn adam_gives_burns_parameters_on_the_cpu_backends() {
        #[cfg(feature = "flex")]
        check(Device::flex());
        #[cfg(feature = "ndarray")]
        check(Device::ndarray());
    }

    /// The same on wgpu: required in CI (HARNESS_REQUIRE_WGPU=1, lavapipe), skipped with the
    /// reason on a machine without a Vulkan, Metal or DX12 adapter.
    #[cfg(feature = "wgpu")]
    #[test]
    fn adam_gives_burns_parameters_on_wgpu() {
        let required = std::env::var("HARNESS_REQUIRE_WGPU").is_ok_and(|v| v == "1");
        match crate::backend::select(crate::backend::BackendName::Wgpu) {
            Ok(selected) => check(selected.device),
            Err(error) if !required => eprintln!("skipped: {error:#}"),
            Err(error) => panic!("wgpu is required here: {error:#}"),
        }
    }
}
