//! SGD and Adam with their updates in one pass ([`crate::net::fused::sgd_step`],
//! [`crate::net::fused::adam_step`]), and per-parameter states that a checkpoint can hold.
//!
//! burn's `Sgd` and `Adam` are the reference: the same settings and the same arithmetic in the
//! same order, so both give the same parameters to the bit (checked below on every CPU backend,
//! and on wgpu where one is required). Only the number of passes over memory and of tensor
//! operations differs: Adam's twelve become one, SGD's two (and their two dispatches, which is
//! what counts at batch 10) become one.
//!
//! The states are harness's own ([`Velocity`], [`Moments`]) for one reason: burn 0.22's
//! `ModuleOptimizer::load_record` rebuilds every state on `Device::default()`, which is the GPU
//! whenever wgpu is compiled in (a machine without one would fail there). A state read from a
//! checkpoint stays on the host ([`Kept::Host`]) until the optimizer's next step moves it to its
//! parameter's device, which `ModuleOptimizer` asks for before every step (`to_device`).

use burn::optim::decay::{WeightDecay, WeightDecayConfig};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{LearningRate, ModuleOptimizer, RecordState, StateSink, StateSource};
use burn::prelude::*;
use burn_pack::Scalar;

use crate::net::fused::{AdamStep, adam_step, sgd_step};

/// A state tensor: on a device, or read from a checkpoint and not yet moved to one.
#[derive(Clone, Debug)]
pub enum Kept<const D: usize> {
    Tensor(Tensor<D>),
    Host(TensorData),
}

impl<const D: usize> Kept<D> {
    /// The tensor on `device` (a host copy is uploaded; the values do not change).
    fn on(self, device: &Device) -> Tensor<D> {
        match self {
            Kept::Tensor(tensor) if tensor.device() == *device => tensor,
            Kept::Tensor(tensor) => tensor.to_device(device),
            Kept::Host(data) => Tensor::from_data(data, device),
        }
    }

    /// The tensor, wherever it is: a host copy goes to the default device (only a step that
    /// did not go through `to_device` would see one).
    fn tensor(self) -> Tensor<D> {
        match self {
            Kept::Tensor(tensor) => tensor,
            Kept::Host(data) => Tensor::from_data(data, &Device::default()),
        }
    }

    fn data(&self) -> TensorData {
        match self {
            Kept::Tensor(tensor) => tensor.to_data(),
            Kept::Host(data) => data.clone(),
        }
    }

    /// A tensor of a checkpoint, if it is 32-bit floats of rank `D`.
    fn read(data: TensorData) -> Option<Self> {
        (data.shape().len() == D && data.dtype() == burn::tensor::DType::F32)
            .then_some(Kept::Host(data))
    }
}

/// SGD's state for one parameter: the momentum's velocity (none for plain SGD).
#[derive(Clone, Debug)]
pub struct Velocity<const D: usize> {
    velocity: Option<Kept<D>>,
}

impl<const D: usize> RecordState for Velocity<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(velocity) = &self.velocity {
            out.push_tensor(prefix, "velocity", velocity.data());
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, _device: &Device) -> Option<Self> {
        let velocity = match src.take_tensor(prefix, "velocity") {
            Some(data) => Some(Kept::read(data)?),
            None => None,
        };
        Some(Velocity { velocity })
    }
}

/// Adam's state for one parameter: the step count and the two moments.
#[derive(Clone, Debug)]
pub struct Moments<const D: usize> {
    time: usize,
    moment_1: Kept<D>,
    moment_2: Kept<D>,
}

impl<const D: usize> RecordState for Moments<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, "time", Scalar::from(self.time as u64));
        out.push_tensor(prefix, "moment_1", self.moment_1.data());
        out.push_tensor(prefix, "moment_2", self.moment_2.data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, _device: &Device) -> Option<Self> {
        let time = match src.take_scalar(prefix, "time")? {
            Scalar::UInt(time) => usize::try_from(time).ok()?,
            _ => return None,
        };
        Some(Moments {
            time,
            moment_1: Kept::read(src.take_tensor(prefix, "moment_1")?)?,
            moment_2: Kept::read(src.take_tensor(prefix, "moment_2")?)?,
        })
    }
}

/// Stochastic gradient descent, with optional momentum and L2 weight decay, as burn's `Sgd`.
#[derive(Clone)]
pub struct Sgd {
    /// Momentum and dampening, as burn's `Momentum` takes them (no Nesterov).
    momentum: Option<(f64, f64)>,
    weight_decay: Option<WeightDecay>,
}

impl Sgd {
    /// burn's SGD with these options.
    pub fn new(momentum: Option<MomentumConfig>, weight_decay: Option<WeightDecayConfig>) -> Self {
        Sgd {
            momentum: momentum.map(|config| {
                assert!(!config.nesterov, "harness's SGD has no Nesterov momentum");
                (config.momentum, config.dampening)
            }),
            weight_decay: weight_decay.as_ref().map(WeightDecay::new),
        }
    }

    /// As a module optimizer, the way burn's `SgdConfig::init` wraps its own.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

impl burn::optim::Optimizer for Sgd {
    type State<const D: usize> = Velocity<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        mut grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let previous = state.and_then(|state| state.velocity);
        if let Some(weight_decay) = &self.weight_decay {
            grad = weight_decay.transform(grad, tensor.clone());
        }
        let mut velocity = None;
        if let Some((momentum, dampening)) = self.momentum {
            // burn's `Momentum::transform`, operation for operation.
            let next = match previous {
                Some(previous) => grad
                    .clone()
                    .mul_scalar(1.0 - dampening)
                    .add(previous.tensor().mul_scalar(momentum)),
                None => grad.clone(),
            };
            grad = next.clone();
            velocity = Some(Kept::Tensor(next));
        }
        // burn's scalar operations take the learning rate as an f32.
        let tensor = sgd_step(tensor, grad, lr as f32);
        (tensor, Some(Velocity { velocity }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Velocity {
            velocity: state
                .velocity
                .map(|velocity| Kept::Tensor(velocity.on(device))),
        }
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
    type State<const D: usize> = Moments<D>;

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
                state.time + 1,
                state.moment_1.tensor(),
                state.moment_2.tensor(),
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
        let state = Moments {
            time,
            moment_1: Kept::Tensor(moment_1),
            moment_2: Kept::Tensor(moment_2),
        };
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Moments {
            time: state.time,
            moment_1: Kept::Tensor(state.moment_1.on(device)),
            moment_2: Kept::Tensor(state.moment_2.on(device)),
        }
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

    /// 300 x 200: 60,000 weights, large enough for burn-flex's pass to split over threads.
    const INPUTS: usize = 300;
    const OUTPUTS: usize = 200;

    /// A few steps of a layer under `optimizer`, with a gradient that changes every step; the
    /// layer and the inputs are the same for every optimizer.
    fn train(device: &Device, mut optimizer: ModuleOptimizer, steps: usize) -> Vec<f32> {
        flat(train_steps(
            device,
            &mut optimizer,
            first_layer(device),
            0..steps,
        ))
    }

    /// The layer the training of every test starts from.
    fn first_layer(device: &Device) -> Linear {
        let mut layer: Linear = LinearConfig::new(INPUTS, OUTPUTS).init(device);
        layer.weight = Param::from_data(
            TensorData::new(host_random(1, INPUTS * OUTPUTS), [INPUTS, OUTPUTS]),
            device,
        );
        layer.bias = Some(Param::from_data(
            TensorData::new(host_random(2, OUTPUTS), [OUTPUTS]),
            device,
        ));
        layer
    }

    /// Steps `steps` of the sequence [`train`] takes, from `layer`.
    fn train_steps(
        device: &Device,
        optimizer: &mut ModuleOptimizer,
        mut layer: Linear,
        steps: std::ops::Range<usize>,
    ) -> Linear {
        for step in steps {
            let x = Tensor::<2>::from_data(
                TensorData::new(host_random(10 + step as u64, 8 * INPUTS), [8, INPUTS]),
                device,
            );
            let loss = (layer.forward(x).tanh() - 0.1 * step as f64)
                .powi_scalar(2)
                .mean();
            let gradients = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optimizer.step(1e-2, layer, gradients);
        }
        layer
    }

    /// The weights, then the biases.
    fn flat(layer: Linear) -> Vec<f32> {
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

    /// A state written out after some steps and read back into a new optimizer (as a resumed
    /// run does) gives the parameters of the optimizer that never stopped, to the bit: Adam's
    /// moments and step count, and SGD's velocity, survive the record; read back, they stay on
    /// the host until the next step moves them.
    fn check_resume(device: Device) {
        type Make = fn() -> ModuleOptimizer;
        let device = device.autodiff();
        let optimizers: [(&str, Make); 3] = [
            ("Adam", || {
                Adam::new(Some(WeightDecayConfig::new(1e-3))).init()
            }),
            ("SGD with momentum", || {
                Sgd::new(
                    Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)),
                    None,
                )
                .init()
            }),
            ("SGD", || Sgd::new(None, None).init()),
        ];
        for (what, make) in optimizers {
            let straight = train(&device, make(), 5);
            // Three steps, then the optimizer's record and the layer's, as a checkpoint holds
            // them (the layer through its record, so that its parameter ids come back).
            let mut first = make();
            let layer = train_steps(&device, &mut first, first_layer(&device), 0..3);
            let bytes = first.into_bytes().unwrap();
            let record =
                burn::store::ModuleRecord::from_bytes(layer.into_record().into_bytes().unwrap())
                    .unwrap();
            let reloaded = LinearConfig::new(INPUTS, OUTPUTS)
                .init(&device)
                .try_load_record(record)
                .unwrap();
            let mut second = make().from_bytes(bytes).unwrap();
            let resumed = flat(train_steps(&device, &mut second, reloaded, 3..5));
            assert_same(
                &resumed,
                &straight,
                &format!("{what} resumed after 3 of 5 steps"),
            );
        }
    }

    #[test]
    fn a_state_read_back_continues_as_if_never_stopped() {
        #[cfg(feature = "flex")]
        check_resume(Device::flex());
        #[cfg(feature = "ndarray")]
        check_resume(Device::ndarray());
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
