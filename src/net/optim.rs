//! SGD and Adam with their updates in one pass ([`crate::net::fused::sgd_step`],
//! [`crate::net::fused::adam_step`]).
//!
//! burn's `Sgd` and `Adam` are the reference: the same settings, the same state types (a record
//! of one loads into the other) and the same arithmetic in the same order, so both give the same
//! parameters to the bit (checked below on every CPU backend, and on wgpu where one is
//! required). Only the number of passes over memory and of tensor operations differs: Adam's
//! twelve become one, SGD's two (and their two dispatches, which is what counts at batch 10)
//! become one.

use burn::optim::decay::{WeightDecay, WeightDecayConfig};
use burn::optim::momentum::{Momentum, MomentumConfig};
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, SgdState};
use burn::prelude::*;

use crate::net::fused::{AdamStep, adam_step, sgd_step};

/// Stochastic gradient descent, with optional momentum and L2 weight decay, as burn's `Sgd`.
#[derive(Clone)]
pub struct Sgd {
    momentum: Option<Momentum>,
    weight_decay: Option<WeightDecay>,
}

impl Sgd {
    /// burn's SGD with these options.
    pub fn new(momentum: Option<MomentumConfig>, weight_decay: Option<WeightDecayConfig>) -> Self {
        Sgd {
            momentum: momentum.as_ref().map(Momentum::new),
            weight_decay: weight_decay.as_ref().map(WeightDecay::new),
        }
    }

    /// As a module optimizer, the way burn's `SgdConfig::init` wraps its own.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

impl burn::optim::Optimizer for Sgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        mut grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let mut momentum_state = state.and_then(|state| state.momentum);
        if let Some(weight_decay) = &self.weight_decay {
            grad = weight_decay.transform(grad, tensor.clone());
        }
        if let Some(momentum) = &self.momentum {
            let (velocity, state) = momentum.transform(grad, momentum_state);
            momentum_state = Some(state);
            grad = velocity;
        }
        // burn's scalar operations take the learning rate as an f32.
        let tensor = sgd_step(tensor, grad, lr as f32);
        (tensor, Some(SgdState::new(momentum_state)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.map(|state| state.to_device(device));
        state
    }
}

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
// burn-ndarray is deprecated in burn 0.22 but still one of harness's backends.
#[allow(deprecated)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams, SgdConfig};
    use burn::tensor::TensorData;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    /// `n` values drawn on the host from `seed`: the tests below run beside others on the same
    /// device, whose shared generator another test may draw from between two of our runs.
    fn host_random(seed: u64, n: usize) -> Vec<f32> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// A few steps of a layer under `optimizer`, with a gradient that changes every step; the
    /// layer and the inputs are the same for every optimizer.
    fn train(device: &Device, mut optimizer: ModuleOptimizer, steps: usize) -> Vec<f32> {
        // 300 x 200: 60,000 weights, large enough for burn-flex's pass to split over threads.
        let (inputs, outputs) = (300, 200);
        let mut layer: Linear = LinearConfig::new(inputs, outputs).init(device);
        layer.weight = Param::from_data(
            TensorData::new(host_random(1, inputs * outputs), [inputs, outputs]),
            device,
        );
        layer.bias = Some(Param::from_data(
            TensorData::new(host_random(2, outputs), [outputs]),
            device,
        ));
        for step in 0..steps {
            let x = Tensor::<2>::from_data(
                TensorData::new(host_random(10 + step as u64, 8 * inputs), [8, inputs]),
                device,
            );
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
        for (momentum, decay) in [(None, None), (Some(0.9), Some(1e-3))] {
            let momentum_config =
                || momentum.map(|m| MomentumConfig::new().with_momentum(m).with_dampening(0.0));
            let decay_config = || decay.map(WeightDecayConfig::new);
            let ours = train(
                &device,
                Sgd::new(momentum_config(), decay_config()).init(),
                5,
            );
            let burns = train(
                &device,
                SgdConfig::new()
                    .with_momentum(momentum_config())
                    .with_weight_decay(decay_config())
                    .init(),
                5,
            );
            let what =
                format!("SGD with momentum {momentum:?} and weight decay {decay:?} on {device:?}");
            assert_same(&ours, &burns, &what);
        }
        for decay in [None, Some(1e-3)] {
            let config = || decay.map(WeightDecayConfig::new);
            let ours = train(&device, Adam::new(config()).init(), 5);
            let burns = train(
                &device,
                AdamConfig::new().with_weight_decay(config()).init(),
                5,
            );
            let what = format!("Adam with weight decay {decay:?} on {device:?}");
            assert_same(&ours, &burns, &what);
            // And the step did something.
            let start = train(&device, Adam::new(config()).init(), 0);
            assert!(ours.iter().zip(&start).any(|(a, b)| a != b));
        }
    }

    fn assert_same(ours: &[f32], burns: &[f32], what: &str) {
        let differing = ours
            .iter()
            .zip(burns)
            .filter(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(
            differing.count(),
            0,
            "{what}: parameters differ from burn's"
        );
    }

    /// The same parameters as burn's SGD and Adam, to the bit, on the CPU backends.
    #[test]
    fn optimizers_give_burns_parameters_on_the_cpu_backends() {
        #[cfg(feature = "flex")]
        check(Device::flex());
        #[cfg(feature = "ndarray")]
        check(Device::ndarray());
    }

    /// The same on wgpu: required in CI (HARNESS_REQUIRE_WGPU=1, lavapipe), skipped with the
    /// reason on a machine without a Vulkan, Metal or DX12 adapter.
    #[cfg(feature = "wgpu")]
    #[test]
    fn optimizers_give_burns_parameters_on_wgpu() {
        if let Some(device) = crate::net::backend::wgpu_for_test() {
            check(device);
        }
    }
}
