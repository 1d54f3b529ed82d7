//! The multilayer perceptron of 3Blue1Brown's video, as a burn module.
//!
//! An MLP is a list of widths, 784 inputs, the hidden layers, 10 outputs; every layer computes
//! a = f(Wa + b). [`MlpConfig`] describes one and builds it on a device; [`Mlp::forward`] returns
//! the output layer's pre-activations (logits), and [`Mlp::output`] squashes them with the
//! output activation (sigmoid as in the video, or softmax).

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;

use crate::choice::{Choice, choice_enum};
use crate::net::fused;

/// Pixels per MNIST image (28 x 28), the width of the input layer.
pub const INPUTS: usize = 28 * 28;
/// Classes (digits 0-9), the width of the output layer.
pub const OUTPUTS: usize = 10;

choice_enum! {
    /// The squashing function of a hidden layer.
    pub Activation "activation" {
        /// σ(x) = 1 / (1 + e^-x), the video's choice.
        Sigmoid = "sigmoid",
        /// max(0, x), the video's "modern alternative".
        Relu = "relu",
        Tanh = "tanh",
        /// max(0.01 x, x).
        LeakyRelu = "leaky_relu",
        Gelu = "gelu",
        /// No squashing: the layer stays linear.
        Identity = "identity",
    }
}

choice_enum! {
    /// What the output layer does with its pre-activations.
    pub OutputActivation "output" {
        /// Ten independent sigmoids, as in the video (pairs with the quadratic cost).
        Sigmoid = "sigmoid",
        /// A probability distribution over the ten digits (pairs with cross-entropy).
        Softmax = "softmax",
    }
}

choice_enum! {
    /// How weights and biases start.
    pub Init "init" {
        /// burn's default for `Linear`: uniform in ±1/√fan_in (the same as PyTorch's).
        Default = "default",
        /// Every weight and bias drawn from N(0, 1), as in Nielsen's book, chapter 1.
        Gaussian = "gaussian",
        /// Weights from N(0, 1/fan_in), biases from N(0, 1): Nielsen's chapter 3, which keeps
        /// the first sigmoid layer out of saturation.
        Scaled = "scaled",
    }
}

impl Activation {
    /// Applies the function elementwise.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Sigmoid => fused::sigmoid(x),
            Self::Relu => activation::relu(x),
            Self::Tanh => activation::tanh(x),
            Self::LeakyRelu => activation::leaky_relu(x, 0.01),
            Self::Gelu => activation::gelu(x),
            Self::Identity => x,
        }
    }
}

/// The shape and behaviour of an MLP: 784 inputs, `hidden` widths, 10 outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpConfig {
    /// Widths of the hidden layers; empty is softmax / logistic regression.
    pub hidden: Vec<usize>,
    /// One activation per hidden layer.
    pub activations: Vec<Activation>,
    /// The output layer's activation.
    pub output: OutputActivation,
    /// How parameters start.
    pub init: Init,
    /// Fraction of each hidden layer's activations zeroed at random in training (0: none).
    pub dropout: f64,
}

impl MlpConfig {
    /// Layer widths from input to output: `[784, hidden..., 10]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths = vec![INPUTS];
        widths.extend(&self.hidden);
        widths.push(OUTPUTS);
        widths
    }

    /// The widths joined by dashes, as the video would say it: `784-16-16-10`.
    pub fn shape(&self) -> String {
        let widths: Vec<String> = self.widths().iter().map(usize::to_string).collect();
        widths.join("-")
    }

    /// Weights and biases: the sum over layers of in * out + out (13,002 for [16, 16]);
    /// saturates instead of overflowing for absurd widths.
    pub fn num_params(&self) -> usize {
        self.widths()
            .windows(2)
            .map(|pair| pair[0].saturating_mul(pair[1]).saturating_add(pair[1]))
            .fold(0, usize::saturating_add)
    }

    /// The hidden activations as one label: `sigmoid` when every layer has it, one name per
    /// layer joined by commas when they differ (`relu,tanh`), `none` without hidden layers.
    /// [`MlpConfig::parse_activations`] reads it back.
    pub fn activation_label(&self) -> String {
        let names: Vec<&str> = self.activations.iter().map(|a| a.name()).collect();
        match names.first() {
            None => "none".to_string(),
            Some(first) if names.iter().all(|n| n == first) => first.to_string(),
            Some(_) => names.join(","),
        }
    }

    /// The activations of `layers` hidden layers from an [`MlpConfig::activation_label`].
    pub fn parse_activations(label: &str, layers: usize) -> Result<Vec<Activation>, String> {
        if layers == 0 {
            return match label {
                "none" | "" => Ok(Vec::new()),
                other => Err(format!(
                    "activation \"{other}\" given for a network without hidden layers"
                )),
            };
        }
        let names: Vec<&str> = label.split(',').collect();
        match names.len() {
            1 => Ok(vec![Activation::parse(names[0])?; layers]),
            n if n == layers => names.iter().map(|n| Activation::parse(n)).collect(),
            n => Err(format!(
                "activation \"{label}\" names {n} activations for {layers} hidden layers"
            )),
        }
    }

    /// The hidden widths of a shape written as [`MlpConfig::shape`] does (`784-16-16-10`).
    pub fn parse_shape(shape: &str) -> Result<Vec<usize>, String> {
        let widths: Vec<usize> = shape
            .split('-')
            .map(|w| w.parse::<usize>().ok().filter(|&w| w > 0))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("shape \"{shape}\" is not widths like 784-16-16-10"))?;
        match widths.as_slice() {
            [INPUTS, hidden @ .., OUTPUTS] => Ok(hidden.to_vec()),
            _ => Err(format!(
                "shape \"{shape}\" does not go from {INPUTS} inputs to {OUTPUTS} outputs"
            )),
        }
    }

    /// Bytes of memory training this network at `batch` would take at least: weights,
    /// gradients and two optimizer moments per parameter, and a few copies of every layer's
    /// activations for the training batch and for an evaluation batch of `eval_batch` images.
    pub fn training_memory(&self, batch: usize, eval_batch: usize) -> u128 {
        let params = self.num_params() as u128;
        let activations: u128 = self.widths().iter().map(|&w| w as u128).sum();
        let widest = self.widths().into_iter().max().unwrap_or(0) as u128;
        4 * (4 * params + 4 * batch as u128 * activations + 3 * eval_batch as u128 * widest)
    }

    /// Builds the network on `device`, with parameters drawn from the device's seeded generator.
    pub fn init(&self, device: &Device) -> Mlp {
        assert_eq!(
            self.hidden.len(),
            self.activations.len(),
            "one activation per hidden layer"
        );
        let layers = self
            .widths()
            .windows(2)
            .map(|pair| {
                let initializer = match self.init {
                    Init::Default => LinearConfig::new(1, 1).initializer,
                    Init::Gaussian => Initializer::Normal {
                        mean: 0.0,
                        std: 1.0,
                    },
                    Init::Scaled => Initializer::Normal {
                        mean: 0.0,
                        std: 1.0 / (pair[0] as f64).sqrt(),
                    },
                };
                let mut layer = LinearConfig::new(pair[0], pair[1])
                    .with_initializer(initializer)
                    .init(device);
                if self.init == Init::Scaled {
                    // Nielsen's biases stay N(0, 1).
                    let bias = Tensor::<1>::random(
                        [pair[1]],
                        burn::tensor::Distribution::Normal(0.0, 1.0),
                        device,
                    );
                    layer.bias = Some(burn::module::Param::from_tensor(bias));
                }
                layer
            })
            .collect();
        let model = Mlp {
            layers,
            activations: self.activations.clone(),
            output: self.output,
            dropout: self.dropout,
        };
        // burn draws a parameter when it is first used and names it with a random id: drawn
        // here, in layer order (weight, then bias: the order the first forward pass used them
        // in), and numbered 1, 2, 3... in that order, the same seed gives the same parameters
        // and the same ids, so that a trained model's file is the same to the bit, whichever
        // process trained it (a resumed run's included), and no later draw (dropout's) comes
        // first.
        model.map(&mut Numbering(0))
    }
}

/// Draws each parameter and gives it the next id ([`MlpConfig::init`]).
struct Numbering(u64);

impl burn::module::ModuleMapper for Numbering {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (_, tensor, mapper) = param.consume();
        self.0 += 1;
        burn::module::Param::from_mapped_value(burn::module::ParamId::from(self.0), tensor, mapper)
    }
}

/// A trained or untrained MLP.
#[derive(Module, Debug)]
pub struct Mlp {
    /// One `Linear` per layer after the input: hidden layers, then the output layer.
    pub layers: Vec<Linear>,
    #[module(skip)]
    activations: Vec<Activation>,
    #[module(skip)]
    output: OutputActivation,
    #[module(skip)]
    dropout: f64,
}

impl Mlp {
    /// The output layer's pre-activations (logits) for a batch of images.
    ///
    /// # Shapes
    /// - images: `[batch, 784]`, pixels in [0, 1]
    /// - returns: `[batch, 10]`
    pub fn forward(&self, images: Tensor<2>) -> Tensor<2> {
        self.forward_with(images, |_| {})
    }

    /// Every layer's activations for a batch of images: one tensor per hidden layer
    /// (`[batch, width]`), then the output layer's activations (`[batch, 10]`).
    pub fn activations(&self, images: Tensor<2>) -> Vec<Tensor<2>> {
        let mut layers = Vec::new();
        let logits = self.forward_with(images, |hidden| layers.push(hidden.clone()));
        layers.push(self.output(logits));
        layers
    }

    /// [`Mlp::forward`], showing each hidden layer's activations to `each` on the way.
    fn forward_with(&self, images: Tensor<2>, mut each: impl FnMut(&Tensor<2>)) -> Tensor<2> {
        let (output_layer, hidden_layers) = self.layers.split_last().expect("an output layer");
        let mut x = images; // [batch, 784]
        for (layer, activation) in hidden_layers.iter().zip(&self.activations) {
            x = activation.apply(fused::linear(layer, x)); // [batch, width]
            each(&x);
            x = self.drop(x); // [batch, width]
        }
        fused::linear(output_layer, x) // [batch, 10]
    }

    /// Dropout (Srivastava et al., 2014): in training (on an autodiff device), zeroes each
    /// activation with probability `dropout` and scales the rest by 1 / (1 - dropout), so that
    /// evaluation needs no change. Drawn from the device's seeded generator.
    fn drop(&self, x: Tensor<2>) -> Tensor<2> {
        if self.dropout == 0.0 || !x.device().is_autodiff() {
            return x;
        }
        let keep = 1.0 - self.dropout;
        let mask = x.random_like(burn::tensor::Distribution::Bernoulli(keep));
        (x * mask).div_scalar(keep)
    }

    /// The video's quadratic cost C = Σ‖a − y‖² / 2m of the output activations `a` against
    /// one-hot `targets`, m the batch size (Nielsen's form, so that SGD's learning rate 3.0 means
    /// what it does in the book). With sigmoid outputs it is one fused operation
    /// ([`fused::quadratic_cost`]).
    ///
    /// # Shapes
    /// - logits: `[batch, 10]` from [`Mlp::forward`], targets: `[batch, 10]`
    /// - returns: `[1]`
    pub fn quadratic_cost(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        match self.output {
            OutputActivation::Sigmoid => fused::quadratic_cost(logits, targets),
            OutputActivation::Softmax => {
                let [batch, _] = logits.dims();
                (self.output(logits) - targets)
                    .square()
                    .sum()
                    .div_scalar(2.0 * batch as f64)
            }
        }
    }

    /// The output layer's activations: the network's answer for each digit.
    ///
    /// # Shapes
    /// - logits: `[batch, 10]` from [`Mlp::forward`]
    /// - returns: `[batch, 10]`
    pub fn output(&self, logits: Tensor<2>) -> Tensor<2> {
        match self.output {
            OutputActivation::Sigmoid => fused::sigmoid(logits),
            OutputActivation::Softmax => activation::softmax(logits, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hidden: &[usize]) -> MlpConfig {
        MlpConfig {
            hidden: hidden.to_vec(),
            activations: vec![Activation::Sigmoid; hidden.len()],
            output: OutputActivation::Sigmoid,
            init: Init::Default,
            dropout: 0.0,
        }
    }

    #[test]
    fn labels_round_trip() {
        let mut config = config(&[16, 8]);
        assert_eq!(config.shape(), "784-16-8-10");
        assert_eq!(MlpConfig::parse_shape(&config.shape()), Ok(vec![16, 8]));
        assert_eq!(MlpConfig::parse_shape("784-10"), Ok(vec![]));
        assert!(MlpConfig::parse_shape("16x16").is_err());
        assert!(MlpConfig::parse_shape("784-16").is_err());
        assert_eq!(config.activation_label(), "sigmoid");
        config.activations = vec![Activation::Relu, Activation::Tanh];
        assert_eq!(config.activation_label(), "relu,tanh");
        assert_eq!(
            MlpConfig::parse_activations("relu,tanh", 2),
            Ok(config.activations.clone())
        );
        assert_eq!(
            MlpConfig::parse_activations("gelu", 2),
            Ok(vec![Activation::Gelu; 2])
        );
        let none = self::config(&[]);
        assert_eq!(none.activation_label(), "none");
        assert_eq!(MlpConfig::parse_activations("none", 0), Ok(vec![]));
        assert!(MlpConfig::parse_activations("relu,tanh", 3).is_err());
    }

    #[test]
    fn absurd_widths_saturate_instead_of_overflowing() {
        let config = config(&[usize::MAX / 2, usize::MAX / 2]);
        assert_eq!(config.num_params(), usize::MAX);
        assert!(config.training_memory(10, 10_000) > 1 << 64);
    }

    #[test]
    fn the_videos_network_has_13002_parameters() {
        assert_eq!(config(&[16, 16]).num_params(), 13_002);
    }

    #[test]
    fn parameter_count_matches_burn_for_several_shapes() {
        let device = crate::net::backend::select(crate::net::backend::BackendName::Cpu)
            .expect("a CPU backend in the test build")
            .device;
        for (hidden, expected) in [
            (vec![], 7_850),
            (vec![16, 16], 13_002),
            (vec![30], 23_860),
            (vec![128], 101_770),
            (vec![800], 636_010),
            (vec![16, 16, 16, 16], 13_546),
        ] {
            let config = config(&hidden);
            assert_eq!(config.num_params(), expected, "formula for {hidden:?}");
            assert_eq!(
                config.init(&device).num_params(),
                expected,
                "burn for {hidden:?}"
            );
        }
    }

    #[test]
    fn forward_gives_ten_outputs_per_image() {
        let device = crate::net::backend::select(crate::net::backend::BackendName::Cpu)
            .unwrap()
            .device;
        let mlp = config(&[16, 16]).init(&device);
        let images = Tensor::<2>::zeros([3, INPUTS], &device);
        let outputs = mlp.output(mlp.forward(images));
        assert_eq!(outputs.dims(), [3, OUTPUTS]);
        let values = outputs.into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| (0.0..=1.0).contains(v)), "{values:?}");
    }
}
