//! A [`Network`] as an ONNX model (IR version 8, opset 17: what ONNX Runtime has run since 1.13,
//! and onnxruntime-web and -mobile with it).
//!
//! The graph takes `pixels`, float `[N, 784]` in [0, 1] ([`super::INPUT_LAYOUT`]), and gives
//! `digits`, float `[N, 10]`: the output layer's activations (ten sigmoids, or the softmax), as
//! `harness predict` prints them. Every layer is one `Gemm` (`x Wᵀ + b`, the weights in
//! PyTorch's `[out, in]` layout with `transB = 1`, as `torch.onnx.export` writes a `Linear`),
//! then its activation: `Sigmoid`, `Relu`, `Tanh`, `LeakyRelu` (alpha 0.01), nothing for
//! `identity`, and for `gelu` the exact form x · (1 + erf(x / √2)) / 2 from `Div`, `Erf`, `Add`,
//! `Mul` and `Div`, the order burn computes it in (opset 20's `Gelu` is newer than many
//! runtimes). The weights and biases are initializers, stored as raw little-endian floats.
//!
//! The messages are encoded by `prost`. They are declared here, with the field numbers of
//! ONNX's `onnx.proto3`, because the crates that ship them are either unmaintained (onnx-pb:
//! prost 0.6, 2020), bring a second protobuf runtime for thousands of generated lines
//! (onnx-protobuf), or tie the format to an inference engine (tract-onnx); an MLP needs nine
//! messages. ONNX's own checker (`onnx.checker.check_model`, full check) and ONNX Runtime read
//! what this writes in tests/export.rs.

use anyhow::Result;
use prost::Message;

use super::{LEAKY_RELU_SLOPE, Network};
use crate::net::model::{Activation, OutputActivation};

/// The opset the graph is written for.
pub const OPSET: i64 = 17;
/// The IR version that goes with [`OPSET`] (ONNX 1.12).
pub const IR_VERSION: i64 = 8;
/// The graph's input and output names.
pub const INPUT: &str = "pixels";
pub const OUTPUT: &str = "digits";

/// `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;
/// `AttributeProto.AttributeType`.
const ATTRIBUTE_FLOAT: i32 = 1;
const ATTRIBUTE_INT: i32 = 2;

#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(string, tag = "6")]
    pub doc_string: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(string, tag = "10")]
    pub doc_string: String,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    /// The `tensor_type` member of the `value` oneof (the only one an MLP uses).
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorType>,
}

/// `TypeProto.Tensor`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorType {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a size, or the name of a size known when the model runs.
#[derive(Clone, PartialEq, Message)]
pub struct Dimension {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// The graph of `network`, as a model.
pub fn model(network: &Network) -> ModelProto {
    let mut graph = Graph::default();
    let mut x = INPUT.to_string();
    let last = network.layers.len() - 1;
    for (index, layer) in network.layers.iter().enumerate() {
        let module = 2 * index;
        let weight = graph.initializer(
            &format!("{module}.weight"),
            &[layer.outputs, layer.inputs],
            &layer.weight,
        );
        let bias = graph.initializer(&format!("{module}.bias"), &[layer.outputs], &layer.bias);
        let z = graph.node(
            "Gemm",
            &format!("{module}.gemm"),
            &[&x, &weight, &bias],
            vec![int_attribute("transB", 1)],
        );
        x = if index == last {
            match network.output {
                OutputActivation::Sigmoid => graph.output_node("Sigmoid", &z, vec![]),
                OutputActivation::Softmax => {
                    graph.output_node("Softmax", &z, vec![int_attribute("axis", 1)])
                }
            }
        } else {
            graph.activation(network.activations[index], &z, module + 1)
        };
    }
    let shape = |batch: Dimension, width: usize| {
        Some(TypeProto {
            tensor_type: Some(TensorType {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        batch,
                        Dimension {
                            dim_value: Some(width as i64),
                            dim_param: None,
                        },
                    ],
                }),
            }),
        })
    };
    let batch = || Dimension {
        dim_value: None,
        dim_param: Some("N".into()),
    };
    let widths = network.widths();
    let value = |name: &str, width: usize, doc: &str| ValueInfoProto {
        name: name.into(),
        r#type: shape(batch(), width),
        doc_string: doc.into(),
    };
    let mut metadata: Vec<StringStringEntryProto> = super::safetensors::metadata(network)
        .into_iter()
        .filter(|(key, _)| key != "format")
        .map(|(key, value)| StringStringEntryProto { key, value })
        .collect();
    metadata.sort_by(|a, b| a.key.cmp(&b.key));
    ModelProto {
        ir_version: IR_VERSION,
        producer_name: "harness".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "A {} multilayer perceptron trained by harness on MNIST: {}",
            widths
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("-"),
            network.torch_sequential()
        ),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: "mlp".into(),
            initializer: graph.initializers,
            doc_string: String::new(),
            input: vec![value(INPUT, widths[0], super::INPUT_LAYOUT)],
            output: vec![value(
                OUTPUT,
                *widths.last().expect("an output layer"),
                "the output layer's activations for digits 0-9",
            )],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: metadata,
    }
}

/// The file's bytes.
pub fn to_bytes(network: &Network) -> Result<Vec<u8>> {
    Ok(model(network).encode_to_vec())
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: value,
        r#type: ATTRIBUTE_INT,
        ..Default::default()
    }
}

fn float_attribute(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: value,
        r#type: ATTRIBUTE_FLOAT,
        ..Default::default()
    }
}

/// The nodes and initializers of a graph being built.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Graph {
    /// Adds a float tensor and returns its name.
    fn initializer(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.into(),
            raw_data: super::safetensors::little_endian(values),
        });
        name.into()
    }

    /// Adds a node with one output, named after the node, and returns that name.
    fn node(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.into()],
            name: name.into(),
            op_type: op_type.into(),
            attribute,
        });
        name.into()
    }

    /// The node that gives the graph's output.
    fn output_node(&mut self, op_type: &str, x: &str, attribute: Vec<AttributeProto>) -> String {
        self.node(op_type, OUTPUT, &[x], attribute)
    }

    /// The nodes of a hidden activation of `x`, named after the module at `module` of the
    /// PyTorch `Sequential`; returns the name of the activations.
    fn activation(&mut self, activation: Activation, x: &str, module: usize) -> String {
        let name = |op: &str| format!("{module}.{op}");
        match activation {
            Activation::Sigmoid => self.node("Sigmoid", &name("sigmoid"), &[x], vec![]),
            Activation::Relu => self.node("Relu", &name("relu"), &[x], vec![]),
            Activation::Tanh => self.node("Tanh", &name("tanh"), &[x], vec![]),
            Activation::LeakyRelu => self.node(
                "LeakyRelu",
                &name("leaky_relu"),
                &[x],
                vec![float_attribute("alpha", LEAKY_RELU_SLOPE)],
            ),
            Activation::Identity => x.to_string(),
            Activation::Gelu => {
                let sqrt2 = self.initializer(&name("sqrt2"), &[], &[std::f32::consts::SQRT_2]);
                let one = self.initializer(&name("one"), &[], &[1.0]);
                let two = self.initializer(&name("two"), &[], &[2.0]);
                let scaled = self.node("Div", &name("scaled"), &[x, &sqrt2], vec![]);
                let erf = self.node("Erf", &name("erf"), &[&scaled], vec![]);
                let shifted = self.node("Add", &name("shifted"), &[&erf, &one], vec![]);
                let product = self.node("Mul", &name("product"), &[x, &shifted], vec![]);
                self.node("Div", &name("gelu"), &[&product, &two], vec![])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::export::tests::tiny;

    #[test]
    fn the_graph_chains_every_layer_from_pixels_to_digits() {
        let network = tiny();
        let bytes = to_bytes(&network).unwrap();
        let model = ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(model.ir_version, IR_VERSION);
        assert_eq!(model.opset_import[0].version, OPSET);
        let graph = model.graph.unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "Gemm", "Div", "Erf", "Add", "Mul", "Div", "Gemm", "Gemm", "Softmax"
            ]
        );
        // Every input of every node is the graph's input, an initializer or an earlier output.
        let mut known: Vec<String> = vec![INPUT.into()];
        known.extend(graph.initializer.iter().map(|t| t.name.clone()));
        for node in &graph.node {
            for input in &node.input {
                assert!(known.contains(input), "{} reads unknown {input}", node.name);
            }
            known.extend(node.output.iter().cloned());
        }
        assert_eq!(graph.node.last().unwrap().output, [OUTPUT]);
        // The identity layer adds no node: the third Gemm reads the second's output.
        assert_eq!(graph.node[7].input[0], graph.node[6].output[0]);
        let weight = graph
            .initializer
            .iter()
            .find(|t| t.name == "2.weight")
            .unwrap();
        assert_eq!(weight.dims, [2, 3]);
        let bits: Vec<u32> = weight
            .raw_data
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let expected: Vec<u32> = network.layers[1]
            .weight
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(bits, expected);
    }
}
