//! `harness export`: a trained network in a file other tools read, safetensors ([`safetensors`])
//! for NumPy and PyTorch, or ONNX ([`onnx`]) for ONNX Runtime and the runtimes of browsers and
//! phones.
//!
//! Both formats hold the same [`Network`]: every layer's weights in PyTorch's layout (`[out,
//! in]`, one row per neuron), its biases, and what each layer does with them, taken from the
//! model file and the runs row that describes it ([`crate::record::saved`], which checks the
//! file's SHA-256 against the row). The file is written under a name of its own, synced, and
//! moved into place only if nothing is there (or, with `--force`, over what is there): a reader
//! never sees half a file, and no export replaces a file it was not told to.

pub mod onnx;
pub mod safetensors;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::choice::{Choice, choice_enum};
use crate::error::{exit, user_error};
use crate::net::model::{Activation, INPUTS, OUTPUTS, OutputActivation};
use crate::record::claims::Claims;
use crate::record::journal;
use crate::record::saved::{self, Loaded};

choice_enum! {
    /// A file format a trained network is exported to.
    pub Format "export format" {
        /// Hugging Face's safetensors: the tensors of a PyTorch `nn.Sequential`, and the
        /// architecture in the file's metadata.
        Safetensors = "safetensors",
        /// ONNX (opset 17): the whole network, output function included, for ONNX Runtime.
        Onnx = "onnx",
    }
}

impl Format {
    /// The file name ending of the format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::Onnx => "onnx",
        }
    }
}

/// The slope of `leaky_relu` for negative inputs (as [`Activation::apply`] computes it).
pub const LEAKY_RELU_SLOPE: f32 = 0.01;

/// What the network's 784 inputs are, written into every exported file.
pub const INPUT_LAYOUT: &str = "784 grey pixels of a 28x28 image, row by row from the top \
     left, as MNIST's IDX files store them; each pixel scaled to [0, 1] (byte / 255), a light \
     digit (1) on a dark background (0)";

/// A trained MLP, layer by layer, as the export formats write it.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// One entry per layer after the input: the hidden layers, then the output layer.
    pub layers: Vec<Layer>,
    /// The function of each hidden layer (one fewer than `layers`).
    pub activations: Vec<Activation>,
    /// The output layer's function.
    pub output: OutputActivation,
    /// Where the network comes from: `run_id`, `attempt`, `name`, `model_sha256`, ...
    pub provenance: Vec<(String, String)>,
}

/// One fully connected layer: a = f(W x + b).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Inputs of the layer.
    pub inputs: usize,
    /// Neurons (outputs) of the layer.
    pub outputs: usize,
    /// `outputs` rows of `inputs` weights, row-major: PyTorch's `nn.Linear.weight` layout
    /// (burn keeps the transpose, `[inputs, outputs]`).
    pub weight: Vec<f32>,
    /// One bias per neuron.
    pub bias: Vec<f32>,
}

impl Network {
    /// The network of a loaded model and its row.
    pub fn of(loaded: &Loaded) -> Result<Network> {
        let architecture = saved::architecture(&loaded.row)?;
        let mut layers = Vec::new();
        for layer in &loaded.model.layers {
            let [inputs, outputs] = layer.weight.dims();
            let burn_order = crate::views::inspect::floats(layer.weight.val())?; // [inputs, outputs]
            let mut weight = vec![0.0; inputs * outputs];
            for i in 0..inputs {
                for o in 0..outputs {
                    weight[o * inputs + i] = burn_order[i * outputs + o];
                }
            }
            let bias = match &layer.bias {
                Some(bias) => crate::views::inspect::floats(bias.val())?,
                None => vec![0.0; outputs],
            };
            layers.push(Layer {
                inputs,
                outputs,
                weight,
                bias,
            });
        }
        let row = &loaded.row;
        let provenance = [
            ("run_id", row.run_id.clone()),
            ("attempt", row.attempt.clone()),
            ("name", row.name.clone()),
            ("dataset", row.dataset.clone()),
            ("test_accuracy", row.test_accuracy.to_string()),
            ("model_sha256", row.model_sha256.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let network = Network {
            layers,
            activations: architecture.activations,
            output: architecture.output,
            provenance,
        };
        network.check()?;
        Ok(network)
    }

    /// The widths from input to output: `[784, hidden..., 10]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths = vec![self.layers.first().map_or(INPUTS, |l| l.inputs)];
        widths.extend(self.layers.iter().map(|l| l.outputs));
        widths
    }

    /// Layers that chain from 784 inputs to 10 outputs, one activation per hidden layer, and
    /// finite numbers only (a diverged network has nothing to export).
    fn check(&self) -> Result<()> {
        let widths = self.widths();
        let chained = self
            .layers
            .windows(2)
            .all(|pair| pair[0].outputs == pair[1].inputs);
        anyhow::ensure!(
            chained
                && widths.first() == Some(&INPUTS)
                && widths.last() == Some(&OUTPUTS)
                && self.activations.len() + 1 == self.layers.len(),
            "the model's layers ({widths:?}) are not the {}-...-{} network its row describes",
            INPUTS,
            OUTPUTS
        );
        if let Some(layer) = self.layers.iter().position(|l| {
            l.weight.iter().chain(&l.bias).any(|v| !v.is_finite())
                || l.weight.len() != l.inputs * l.outputs
                || l.bias.len() != l.outputs
        }) {
            return Err(user_error(format!(
                "layer {} of the model holds weights that are not finite numbers (a diverged \
                 run): nothing to export",
                layer + 1
            )));
        }
        Ok(())
    }

    /// PyTorch's spelling of a hidden activation, as the module `torch.nn` has it.
    pub fn torch_module(activation: Activation) -> String {
        match activation {
            Activation::Sigmoid => "Sigmoid()".into(),
            Activation::Relu => "ReLU()".into(),
            Activation::Tanh => "Tanh()".into(),
            Activation::LeakyRelu => format!("LeakyReLU({LEAKY_RELU_SLOPE})"),
            Activation::Gelu => "GELU()".into(),
            Activation::Identity => "Identity()".into(),
        }
    }

    /// The PyTorch module that holds these weights: `Sequential(Linear(784, 16), Sigmoid(),
    /// ..., Linear(16, 10), Sigmoid())`. Its `state_dict` keys are the safetensors keys.
    pub fn torch_sequential(&self) -> String {
        let mut modules = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            modules.push(format!("Linear({}, {})", layer.inputs, layer.outputs));
            modules.push(match self.activations.get(index) {
                Some(activation) => Self::torch_module(*activation),
                None => match self.output {
                    OutputActivation::Sigmoid => "Sigmoid()".into(),
                    OutputActivation::Softmax => "Softmax(dim=1)".into(),
                },
            });
        }
        format!("Sequential({})", modules.join(", "))
    }
}

/// The format an export is written in: the one `--format` names, else the one `-o`'s ending
/// names (`model.onnx`), else safetensors. A `--format` that contradicts the ending is refused:
/// a file named `.onnx` that holds safetensors fails in every tool that opens it.
pub fn format_for(given: Option<Format>, output: Option<&Path>) -> Result<Format> {
    let by_name = output.and_then(|path| path.extension()).and_then(|ending| {
        Format::ALL
            .iter()
            .copied()
            .find(|format| ending.eq_ignore_ascii_case(format.extension()))
    });
    match (given, by_name) {
        (Some(given), Some(named)) if given != named => Err(user_error(format!(
            "-o {} names a .{} file, but --format {} was given: change one of them",
            output.expect("an ending comes from -o").display(),
            named.extension(),
            given.name()
        ))),
        (Some(given), _) => Ok(given),
        (None, Some(named)) => Ok(named),
        (None, None) => Ok(Format::Safetensors),
    }
}

/// Where an export goes: `-o`'s file, or `<run_id>.<format>` inside the folder `-o` names (an
/// existing folder, or a path ending in `/`), or in `results/exports/`.
pub fn output_path(loaded: &Loaded, format: Format, output: Option<&Path>) -> PathBuf {
    let file_name = format!("{}.{}", loaded.row.run_id, format.extension());
    match output {
        Some(path) if path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/') => {
            path.join(file_name)
        }
        Some(path) => path.to_path_buf(),
        None => Path::new("results/exports").join(file_name),
    }
}

/// `harness export`: writes the network of `loaded` as `format` (or the format `output`'s
/// name says) to `output` and prints the path.
pub fn command(
    loaded: &Loaded,
    format: Option<Format>,
    output: Option<&Path>,
    force: bool,
) -> Result<u8> {
    let format = format_for(format, output)?;
    let path = output_path(loaded, format, output);
    let mut claims = Claims::new();
    claims
        .reads(&loaded.runs_csv, "the runs file")
        .reads(&loaded.model_file, "the model file")
        .writes_file(
            &path,
            if output.is_some() {
                "export -o"
            } else {
                "the export"
            },
        );
    claims.check()?;
    if !force && fs::symlink_metadata(&path).is_ok() {
        return Err(already_there(&path));
    }
    let network = Network::of(loaded)?;
    let temporary = prepare(&path)?;
    let bytes = match format {
        Format::Safetensors => safetensors::to_bytes(&network),
        Format::Onnx => onnx::to_bytes(&network),
    };
    let written = bytes.and_then(|bytes| put_in_place(&temporary, &bytes, &path, force));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written?;
    println!("{}", path.display());
    Ok(exit::OK)
}

fn already_there(path: &Path) -> anyhow::Error {
    user_error(format!(
        "{} already exists; --force replaces it, or -o names another file",
        path.display()
    ))
}

/// Makes the output's folder and a temporary file beside the output, before any work: an
/// output that cannot be written is a usage error (exit 2), found before anything is
/// computed or written.
fn prepare(path: &Path) -> Result<PathBuf> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(folder).map_err(|e| {
        user_error(format!(
            "cannot create the folder {} for {}: {e}; -o names another place",
            folder.display(),
            path.display()
        ))
    })?;
    remove_stale_partials(path);
    let temporary = journal::sibling(path, &format!("{}.partial", std::process::id()));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(|e| {
            user_error(format!(
                "cannot write {} in the folder {}: {e}; -o names another place",
                path.display(),
                folder.display()
            ))
        })?;
    Ok(temporary)
}

/// Removes what exports of `path` killed before their rename left beside it
/// (`<name>.<pid>.partial` of a process that is gone), saying so.
fn remove_stale_partials(path: &Path) {
    let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".partial"))
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only asks whether the process exists.
        let gone = pid > 0
            && unsafe { libc::kill(pid, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && fs::remove_file(entry.path()).is_ok() {
            eprintln!(
                "harness: removed {}, left by an export that was killed before it finished",
                entry.path().display()
            );
        }
    }
}

/// Writes `bytes` to `temporary`, syncs it, and moves it to `path`: over what is there with
/// `force`, else only if nothing is there (a hard link fails on an existing name, so two
/// exports at once cannot both win).
fn put_in_place(temporary: &Path, bytes: &[u8], path: &Path, force: bool) -> Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    drop(file);
    if force {
        return fs::rename(temporary, path)
            .with_context(|| format!("cannot move the export into place at {}", path.display()));
    }
    match fs::hard_link(temporary, path) {
        Ok(()) => {
            fs::remove_file(temporary)
                .with_context(|| format!("cannot remove {}", temporary.display()))?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(already_there(path)),
        // A file system without hard links: the name was free a moment ago.
        Err(_) => fs::rename(temporary, path)
            .with_context(|| format!("cannot move the export into place at {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tiny() -> Network {
        let layer = |inputs: usize, outputs: usize, start: f32| Layer {
            inputs,
            outputs,
            weight: (0..inputs * outputs)
                .map(|k| start + k as f32 * 1e-3)
                .collect(),
            bias: (0..outputs).map(|k| -(k as f32) * 0.1).collect(),
        };
        Network {
            layers: vec![
                layer(INPUTS, 3, -0.5),
                layer(3, 2, 0.25),
                layer(2, OUTPUTS, 1.0),
            ],
            activations: vec![Activation::Gelu, Activation::Identity],
            output: OutputActivation::Softmax,
            provenance: vec![("run_id".into(), "r0123456789a".into())],
        }
    }

    #[test]
    fn the_torch_module_names_every_layer_in_order() {
        assert_eq!(
            tiny().torch_sequential(),
            "Sequential(Linear(784, 3), GELU(), Linear(3, 2), Identity(), Linear(2, 10), \
             Softmax(dim=1))"
        );
        assert_eq!(tiny().widths(), vec![784, 3, 2, 10]);
        tiny().check().unwrap();
    }

    #[test]
    fn a_network_that_does_not_chain_or_is_not_finite_is_refused() {
        let mut broken = tiny();
        broken.layers[1].inputs = 4;
        assert!(broken.check().is_err());
        let mut diverged = tiny();
        diverged.layers[2].bias[3] = f32::NAN;
        let error = diverged.check().unwrap_err();
        assert!(format!("{error}").contains("layer 3"), "{error}");
        let mut short = tiny();
        short.activations.pop();
        assert!(short.check().is_err());
    }
}
