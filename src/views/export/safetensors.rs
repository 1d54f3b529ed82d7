//! A [`Network`] as a safetensors file (Hugging Face's format: an 8-byte little-endian header
//! length, a JSON header, then the raw little-endian bytes of every tensor), written by the
//! `safetensors` crate, the format's reference implementation.
//!
//! The tensors are the `state_dict` of the PyTorch module [`Network::torch_sequential`] names:
//! `nn.Sequential` numbers its modules, a `Linear` and then its activation for every layer, so
//! layer k's tensors are `{2k}.weight` (`[out, in]`) and `{2k}.bias` (`[out]`), float32, and
//! `load_state_dict(..., strict=True)` takes them as they are. The metadata says how to build
//! that module without harness:
//!
//! | key | value |
//! |---|---|
//! | `format` | `pt` (the tensors are PyTorch's) |
//! | `widths` | `784,16,16,10` |
//! | `activations` | one per hidden layer, harness's names: `sigmoid,sigmoid` |
//! | `output` | `sigmoid` or `softmax` (over the ten outputs) |
//! | `torch` | the module, `Sequential(Linear(784, 16), Sigmoid(), ...)` |
//! | `leaky_relu_slope`, `gelu` | `0.01`; `erf` (the exact GELU, not the tanh approximation) |
//! | `input` | the pixel layout and scaling ([`super::INPUT_LAYOUT`]) |
//! | `producer`, `run_id`, `attempt`, `name`, `dataset`, `test_accuracy`, `model_sha256` | where it comes from |

use std::collections::HashMap;

use anyhow::Result;
use safetensors::{Dtype, tensor::TensorView};

use super::{INPUT_LAYOUT, LEAKY_RELU_SLOPE, Network};
use crate::choice::Choice;

/// The metadata of the file (see the module's table).
pub fn metadata(network: &Network) -> HashMap<String, String> {
    let join = |items: Vec<String>| items.join(",");
    let mut metadata: HashMap<String, String> = [
        ("format", "pt".to_string()),
        ("producer", format!("harness {}", env!("CARGO_PKG_VERSION"))),
        (
            "widths",
            join(network.widths().iter().map(usize::to_string).collect()),
        ),
        (
            "activations",
            join(
                network
                    .activations
                    .iter()
                    .map(|a| a.name().to_string())
                    .collect(),
            ),
        ),
        ("output", network.output.name().to_string()),
        ("torch", network.torch_sequential()),
        ("leaky_relu_slope", LEAKY_RELU_SLOPE.to_string()),
        ("gelu", "erf".to_string()),
        ("input", INPUT_LAYOUT.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (key, value) in &network.provenance {
        metadata.insert(key.clone(), value.clone());
    }
    metadata
}

/// The file's bytes.
pub fn to_bytes(network: &Network) -> Result<Vec<u8>> {
    let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (index, layer) in network.layers.iter().enumerate() {
        let module = 2 * index;
        bytes.push((
            format!("{module}.weight"),
            vec![layer.outputs, layer.inputs],
            little_endian(&layer.weight),
        ));
        bytes.push((
            format!("{module}.bias"),
            vec![layer.outputs],
            little_endian(&layer.bias),
        ));
    }
    let views = bytes
        .iter()
        .map(|(key, shape, data)| {
            Ok((
                key.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| anyhow::anyhow!("cannot lay out the tensors: {e}"))?;
    safetensors::serialize(views, Some(metadata(network)))
        .map_err(|e| anyhow::anyhow!("cannot write the safetensors file: {e}"))
}

/// Float32 values as the raw little-endian bytes both formats store.
pub(super) fn little_endian(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::export::tests::tiny;

    #[test]
    fn the_file_reads_back_with_pytorch_keys_shapes_and_the_exact_bits() {
        let network = tiny();
        let bytes = to_bytes(&network).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let metadata = header.metadata().clone().unwrap();
        assert_eq!(metadata["widths"], "784,3,2,10");
        assert_eq!(metadata["activations"], "gelu,identity");
        assert_eq!(metadata["output"], "softmax");
        assert_eq!(metadata["run_id"], "r0123456789a");
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names = file.names();
        names.sort();
        assert_eq!(
            names,
            [
                "0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"
            ]
        );
        let weight = file.tensor("2.weight").unwrap();
        assert_eq!(weight.shape(), [2, 3]);
        assert_eq!(weight.dtype(), Dtype::F32);
        let values: Vec<u32> = weight
            .data()
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let expected: Vec<u32> = network.layers[1]
            .weight
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(values, expected);
    }
}
