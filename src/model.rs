//! The multilayer perceptron of 3Blue1Brown's video, as a burn module.
//!
//! An MLP is a list of widths, 784 inputs, the hidden layers, 10 outputs; every layer computes
//! a = f(Wa + b). [`MlpConfig`] describes one and builds it on a device; [`Mlp::forward`] returns
//! the output layer's pre-activations (logits), and [`Mlp::output`] squashes them with the
//! output activation (sigmoid as in the video, or softmax).

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;

use crate::choice::choice_enum;
use crate::fused;

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
    }
}

impl Activation {
    /// Applies the function elementwise.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Sigmoid => activation::sigmoid(x),
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

    /// Weights and biases: the sum over layers of in * out + out (13,002 for [16, 16]).
    pub fn num_params(&self) -> usize {
        self.widths()
            .windows(2)
            .map(|pair| pair[0] * pair[1] + pair[1])
            .sum()
    }

    /// Builds the network on `device`, with parameters drawn from the device's seeded generator.
    pub fn init(&self, device: &Device) -> Mlp {
        assert_eq!(
            self.hidden.len(),
            self.activations.len(),
            "one activation per hidden layer"
        );
        let initializer = match self.init {
            Init::Default => LinearConfig::new(1, 1).initializer,
            Init::Gaussian => Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            },
        };
        let layers = self
            .widths()
            .windows(2)
            .map(|pair| {
                LinearConfig::new(pair[0], pair[1])
                    .with_initializer(initializer.clone())
                    .init(device)
            })
            .collect();
        Mlp {
            layers,
            activations: self.activations.clone(),
            output: self.output,
        }
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
        }
        fused::linear(output_layer, x) // [batch, 10]
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
            OutputActivation::Sigmoid => activation::sigmoid(logits),
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
        }
    }

    #[test]
    fn the_videos_network_has_13002_parameters() {
        assert_eq!(config(&[16, 16]).num_params(), 13_002);
    }

    #[test]
    fn parameter_count_matches_burn_for_several_shapes() {
        let device = crate::backend::select(crate::backend::BackendName::Cpu)
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
        let device = crate::backend::select(crate::backend::BackendName::Cpu)
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
