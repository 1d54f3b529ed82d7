//! `harness export`: trained networks leave harness in files that the real NumPy, PyTorch and
//! ONNX Runtime load and that answer as `harness predict` does, and bad input is refused
//! before anything is written.
//!
//! The Python peers skip when python3 lacks numpy, torch, onnx, onnxruntime or safetensors,
//! unless `HARNESS_REQUIRE_PYTHON_EXPORT=1` (as in CI, whose .ci/run installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Workdir, repo};
use harness::data::mnist::{self, DatasetName};

const PEERS: &str = "import numpy, torch, onnx, onnxruntime, safetensors";

fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", modules])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the Python peers are here; fails where CI requires them.
fn peers_or_skip(test: &str, modules: &str) -> bool {
    if python_has(modules) {
        return true;
    }
    let required = std::env::var("HARNESS_REQUIRE_PYTHON_EXPORT").is_ok_and(|v| v == "1");
    assert!(!required, "python3 with `{modules}` is required here");
    eprintln!("{test} skipped: python3 cannot `{modules}`");
    false
}

/// Small, real training settings for any shipped config.
fn quick(extra: &[&str]) -> Vec<String> {
    let data = repo().join("data/mnist");
    let mut set = vec![
        format!("data.dir={}", data.display()),
        "data.train_limit=4000".into(),
        "data.validation=500".into(),
        "data.test_limit=500".into(),
        "train.epochs=3".into(),
    ];
    set.extend(extra.iter().map(|s| s.to_string()));
    set.into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect()
}

/// Trains `config` (a path) with `quick` settings and returns the new run's id.
fn train(work: &Workdir, config: &Path, extra: &[&str]) -> String {
    let config = config.display().to_string();
    let mut args = vec!["run".to_string(), config, "-q".into()];
    args.extend(quick(extra));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    work.harness(&args).expect_code(0);
    let rows = common::csv_rows(&work.path().join("results/runs.csv"));
    rows.last().expect("a row")["run_id"].clone()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn argmax(outputs: &[f32]) -> usize {
    (1..outputs.len()).fold(
        0,
        |best, d| if outputs[d] > outputs[best] { d } else { best },
    )
}

/// The first layer's weights as the model file holds them, read by harness's own loader,
/// in PyTorch's `[out, in]` order.
fn model_first_layer(work: &Workdir, run_id: &str) -> Vec<u32> {
    let loaded = harness::record::saved::load(
        run_id,
        &work.path().join("results/runs.csv"),
        &work.path().join("results/models"),
    )
    .unwrap();
    let network = harness::views::export::Network::of(&loaded).unwrap();
    network.layers[0]
        .weight
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// Every shipped config's network, and one with every other activation harness has, exported
/// both ways: NumPy on the safetensors file, PyTorch's nn.Sequential after a strict
/// load_state_dict, and ONNX Runtime on the ONNX file (which ONNX's full checker accepts) give,
/// for all 10,000 test images, the digit `harness predict --json` gives, with the ten outputs
/// within 1e-5; and the first layer NumPy loads is the model file's, bit for bit.
#[test]
fn every_shipped_network_answers_in_numpy_pytorch_and_onnx_runtime_as_in_harness() {
    if !peers_or_skip("every_shipped_network", PEERS) {
        return;
    }
    let work = Workdir::new();
    // The 10,000 test images as 28x28 PNG files, which `predict` takes as they are.
    let test = mnist::load(
        DatasetName::Mnist,
        Some(&repo().join("data/mnist")),
        mnist::Limits::default(),
    )
    .unwrap()
    .test;
    assert_eq!(test.len(), 10_000);
    std::fs::create_dir(work.path().join("t")).unwrap();
    let images: Vec<String> = (0..test.len())
        .map(|index| {
            let name = format!("t/{index:05}.png");
            image::GrayImage::from_raw(28, 28, test.pixels(index).to_vec())
                .unwrap()
                .save(work.path().join(&name))
                .unwrap();
            name
        })
        .collect();

    let mut configs: Vec<PathBuf> = std::fs::read_dir(repo().join("configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    configs.sort();
    assert!(configs.len() >= 7, "{configs:?}");
    let mut networks: Vec<(String, String)> = configs
        .iter()
        .map(|config| (config.display().to_string(), train(&work, config, &[])))
        .collect();
    let every_activation = [
        "model.hidden=[12, 12, 12, 12]",
        "model.activation=[\"tanh\", \"gelu\", \"identity\", \"leaky_relu\"]",
        "name=every_activation",
    ];
    networks.push((
        "every other activation".into(),
        train(
            &work,
            &repo().join("configs/relu_16x16.toml"),
            &every_activation,
        ),
    ));

    // configs/default.toml documents every key with the video's settings: the run of
    // configs/sigmoid_16x16.toml, under the same id.
    let mut seen = std::collections::HashSet::new();
    networks.retain(|(_, run_id)| seen.insert(run_id.clone()));
    assert!(networks.len() >= 7, "{networks:?}");
    for (what, run_id) in &networks {
        let st = format!("results/exports/{run_id}.safetensors");
        let onnx = format!("results/exports/{run_id}.onnx");
        work.harness(&["export", run_id])
            .expect_code(0)
            .expect_stdout(&[&st]);
        work.harness(&["export", run_id, "--format", "onnx"])
            .expect_code(0)
            .expect_stdout(&[&onnx]);
        let checked = Command::new("python3")
            .args([
                "-c",
                "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)",
                &onnx,
            ])
            .current_dir(work.path())
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "{what}: ONNX's checker refuses {onnx}: {}",
            String::from_utf8_lossy(&checked.stderr)
        );

        // harness's own answers.
        let mut args = vec!["predict", run_id.as_str(), "--json"];
        args.extend(images.iter().map(String::as_str));
        let predicted = work.harness(&args);
        predicted.expect_code(0);
        let answers: Vec<(usize, Vec<f32>)> = predicted
            .stdout()
            .lines()
            .map(|line| {
                let answer: serde_json::Value = serde_json::from_str(line).unwrap();
                let outputs: Vec<f32> = answer["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect();
                (answer["digit"].as_u64().unwrap() as usize, outputs)
            })
            .collect();
        assert_eq!(answers.len(), 10_000, "{what}");
        // Networks that tell digits apart, so that agreeing on the digit means something.
        let right = answers
            .iter()
            .zip(&test.labels)
            .filter(|((digit, _), label)| *digit == usize::from(**label))
            .count();
        assert!(right > 5_000, "{what}: only {right} of 10,000 right");

        // The peers' answers.
        let dump = work.path().join(format!("dump-{run_id}"));
        let loaded = Command::new("python3")
            .arg(repo().join("experiments/load_exported.py"))
            .args([&st, "--onnx", &onnx, "--mnist"])
            .arg(repo().join("data/mnist"))
            .arg("--dump")
            .arg(&dump)
            .current_dir(work.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&loaded.stdout);
        assert!(
            loaded.status.success(),
            "{what}: {said}{}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        println!("{what}:\n{said}");
        for peer in ["numpy", "torch", "onnxruntime"] {
            let outputs = f32s(&std::fs::read(dump.join(format!("{peer}.f32"))).unwrap());
            assert_eq!(outputs.len(), 10_000 * 10, "{what}: {peer}");
            for (index, (chunk, (digit, ours))) in outputs.chunks(10).zip(&answers).enumerate() {
                assert_eq!(
                    argmax(chunk),
                    *digit,
                    "{what}: {peer} reads test image {index} as another digit: {chunk:?} \
                     against harness's {ours:?}"
                );
                let gap = chunk
                    .iter()
                    .zip(ours)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    gap <= 1e-5,
                    "{what}: {peer}'s outputs for image {index} differ by {gap}: {chunk:?} \
                     against {ours:?}"
                );
            }
        }
        let numpy_layer: Vec<u32> = f32s(&std::fs::read(dump.join("layer1_weight.f32")).unwrap())
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(
            numpy_layer,
            model_first_layer(&work, run_id),
            "{what}: the first layer NumPy loads is not the model file's, bit for bit"
        );
    }
}

/// The README's NumPy snippet runs as written (on a real export, in a folder with the data)
/// and draws the video's 16 first-layer pictures, each pixel green where its weight is
/// positive and red where it is negative.
#[test]
fn the_readmes_numpy_snippet_loads_an_export_and_draws_the_16_pictures() {
    if !peers_or_skip("the_readmes_numpy_snippet", "import numpy") {
        return;
    }
    let work = Workdir::new();
    std::os::unix::fs::symlink(repo().join("data"), work.path().join("data")).unwrap();
    let run_id = train(&work, &repo().join("configs/sigmoid_16x16.toml"), &[]);
    work.harness(&["export", &run_id]).expect_code(0);
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## Export\n")
        .nth(1)
        .expect("README has a section \"Export\"");
    let snippet = section
        .split("```python\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a Python snippet in README's Export section");
    assert!(snippet.contains("RUN_ID"), "{snippet}");
    let script = snippet.replace("RUN_ID", &run_id);
    let ran = Command::new("python3")
        .args(["-c", &script])
        .current_dir(work.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "the README's snippet fails:\n{script}\n{said}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(said.contains("test accuracy 0."), "{said}");
    let pictures = image::open(work.path().join("weights.png"))
        .expect("the snippet writes weights.png")
        .to_rgb8();
    // 16 tiles of 28x28, 4 pixels a weight, in 2 rows of 8 with 4 pixels between.
    assert_eq!(pictures.dimensions(), (8 * 116 + 4, 2 * 116 + 4));
    let weights: Vec<f32> = model_first_layer(&work, &run_id)
        .iter()
        .map(|&b| f32::from_bits(b))
        .collect();
    for neuron in 0..16 {
        let tile = &weights[neuron * 784..(neuron + 1) * 784];
        let scale = tile.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let (tile_x, tile_y) = (4 + (neuron % 8) * 116, 4 + (neuron / 8) * 116);
        for (pixel, &weight) in tile.iter().enumerate() {
            let (x, y) = ((pixel % 28) * 4 + 2, (pixel / 28) * 4 + 2);
            let [r, g, b] = pictures
                .get_pixel((tile_x + x) as u32, (tile_y + y) as u32)
                .0;
            let level = |v: f32| (f64::from(v.max(0.0)) / f64::from(scale) * 255.0) as i32;
            let (red, green) = (level(-weight), level(weight));
            assert!(
                (i32::from(r) - red).abs() <= 1 && (i32::from(g) - green).abs() <= 1 && b == 0,
                "neuron {neuron}, pixel {pixel}: weight {weight} of at most {scale} drawn as \
                 ({r}, {g}, {b}), not ({red}, {green}, 0)"
            );
        }
    }
}

/// The safetensors file holds every layer's weights and biases, in PyTorch's keys and layout,
/// bit for bit as the model file has them (read here by the safetensors crate, no Python).
#[test]
fn the_safetensors_file_holds_the_model_files_numbers_bit_for_bit() {
    let work = Workdir::new();
    let run_id = train(
        &work,
        &repo().join("configs/relu_16x16.toml"),
        &["model.hidden=[16, 8]"],
    );
    work.harness(&["export", &run_id]).expect_code(0);
    let bytes = std::fs::read(
        work.path()
            .join(format!("results/exports/{run_id}.safetensors")),
    )
    .unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().clone().unwrap();
    assert_eq!(metadata["widths"], "784,16,8,10");
    assert_eq!(metadata["activations"], "relu,relu");
    assert_eq!(metadata["output"], "softmax");
    assert_eq!(metadata["run_id"], run_id);
    assert_eq!(
        metadata["torch"],
        "Sequential(Linear(784, 16), ReLU(), Linear(16, 8), ReLU(), Linear(8, 10), Softmax(dim=1))"
    );
    let loaded = harness::record::saved::load(
        &run_id,
        &work.path().join("results/runs.csv"),
        &work.path().join("results/models"),
    )
    .unwrap();
    for (index, layer) in loaded.model.layers.iter().enumerate() {
        let burn: Vec<f32> = layer.weight.val().into_data().try_to_vec::<f32>().unwrap(); // [in, out]
        let [inputs, outputs] = layer.weight.dims();
        let tensor = file.tensor(&format!("{}.weight", 2 * index)).unwrap();
        assert_eq!(tensor.shape(), [outputs, inputs]);
        let exported = f32s(tensor.data());
        for o in 0..outputs {
            for i in 0..inputs {
                assert_eq!(
                    exported[o * inputs + i].to_bits(),
                    burn[i * outputs + o].to_bits(),
                    "layer {index}, neuron {o}, input {i}"
                );
            }
        }
        let bias: Vec<f32> = layer
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let exported_bias = f32s(file.tensor(&format!("{}.bias", 2 * index)).unwrap().data());
        assert_eq!(
            exported_bias
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            bias.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}

/// Every bad input is exit 2 with a message that says what is wrong, and leaves nothing
/// behind: no export, no temporary file, and every file that was there unchanged.
#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let work = Workdir::new();
    let run_id = train(&work, &repo().join("configs/sigmoid_16x16.toml"), &[]);
    let exports = work.path().join("results/exports");
    let refused = |args: &[&str], needles: &[&str]| {
        let before = snapshot(work.path());
        work.harness(args).expect_code(2).expect_stderr(needles);
        assert_eq!(
            snapshot(work.path()),
            before,
            "harness {args:?} changed files"
        );
        assert!(
            !exports.exists(),
            "harness {args:?} made {}",
            exports.display()
        );
    };
    // A run that is not there: the nearest ids, as inspect gives them.
    let near = format!("{}x", &run_id[..run_id.len() - 1]);
    refused(&["export", &near], &["no run", "nearest ids", &run_id]);
    // A format that is not offered.
    refused(
        &["export", &run_id, "--format", "pickle"],
        &["pickle", "safetensors", "onnx"],
    );
    // Outputs that are inputs or the record's own files, even with --force.
    let model = std::fs::read_dir(work.path().join("results/models"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let model_name = model.display().to_string();
    for target in [
        "results/runs.csv",
        "results/epochs.csv",
        model_name.as_str(),
    ] {
        for force in [false, true] {
            let mut args = vec!["export", run_id.as_str(), "-o", target];
            if force {
                args.push("--force");
            }
            refused(&args, &[target]);
        }
    }
    // A folder that cannot be made or written.
    std::fs::write(work.path().join("notes.txt"), "a file, not a folder\n").unwrap();
    refused(
        &[
            "export",
            &run_id,
            "-o",
            "notes.txt/model.onnx",
            "-f",
            "onnx",
        ],
        &[
            "cannot create the folder notes.txt",
            "-o names another place",
        ],
    );
    refused(
        &["export", &run_id, "-o", "/proc/harness-export/model.onnx"],
        &["cannot create the folder /proc/harness-export"],
    );
    // Names harness keeps for itself, and a model's name, even where no file is yet.
    refused(
        &[
            "export",
            &run_id,
            "-o",
            "results/runs.csv.running/x.safetensors",
        ],
        &["ending in .running"],
    );
    refused(
        &["export", &run_id, "-o", "mine.bpk"],
        &["ending in .bpk is a saved model"],
    );
    refused(
        &["export", &run_id, "-o", "MINE.BPK"],
        &["ending in .bpk is a saved model"],
    );
    // A device or a pipe is not a file to replace, even with --force (a rename would turn
    // /dev/null into a plain file).
    let fifo = work.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    refused(
        &["export", &run_id, "-o", "pipe", "--force"],
        &["pipe is a device, a pipe or a socket"],
    );
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &std::fs::metadata(&fifo).unwrap().file_type()
    ));
    // A --format that contradicts -o's name.
    refused(
        &["export", &run_id, "-o", "m.safetensors", "--format", "onnx"],
        &["names a .safetensors file, but --format onnx"],
    );
    // A model file that is not the one its row recorded.
    let mut bytes = std::fs::read(&model).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&model, &bytes).unwrap();
    refused(&["export", &run_id], &["is not the model run", "SHA-256"]);
    refused(
        &["export", &model_name],
        &["is not the model run", "SHA-256"],
    );
}

/// An export never replaces a file unless told to: without --force an existing file is exit 2
/// and stays as it was; with it, the file is replaced whole. Two exports at once to one name:
/// exactly one writes it.
#[test]
fn an_export_replaces_a_file_only_with_force() {
    let work = Workdir::new();
    let run_id = train(&work, &repo().join("configs/logistic.toml"), &[]);
    std::fs::create_dir(work.path().join("mine")).unwrap();
    let mine = work.write("mine/model.onnx", "my own file\n");
    work.harness(&["export", &run_id, "-o", "mine/model.onnx", "-f", "onnx"])
        .expect_code(2)
        .expect_stderr(&["mine/model.onnx already exists", "--force"]);
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "my own file\n");
    work.harness(&[
        "export",
        &run_id,
        "-o",
        "mine/model.onnx",
        "-f",
        "onnx",
        "--force",
    ])
    .expect_code(0);
    let onnx = std::fs::read(&mine).unwrap();
    assert!(onnx.len() > 7_850 * 4, "{} bytes", onnx.len());
    // -o a folder: the file goes inside, named after the run.
    work.harness(&["export", &run_id, "-o", "mine"])
        .expect_code(0)
        .expect_stdout(&[&format!("mine/{run_id}.safetensors")]);

    // The format from -o's name; a folder named with a trailing slash is made.
    work.harness(&["export", &run_id, "-o", "by_name.onnx"])
        .expect_code(0);
    // The ending in any case names the format.
    work.harness(&["export", &run_id, "-o", "LOUD.ONNX"])
        .expect_code(0);
    let loud = std::fs::read(work.path().join("LOUD.ONNX")).unwrap();
    <harness::views::export::onnx::ModelProto as prost::Message>::decode(loud.as_slice())
        .expect("an ONNX model under an upper-case name");
    let onnx = std::fs::read(work.path().join("by_name.onnx")).unwrap();
    <harness::views::export::onnx::ModelProto as prost::Message>::decode(onnx.as_slice())
        .expect("an ONNX model");
    work.harness(&["export", &run_id, "-o", "new/folder/"])
        .expect_code(0)
        .expect_stdout(&[&format!("new/folder/{run_id}.safetensors")]);
    // What a killed export left beside its file is removed by the next one.
    let stale = work.write("again.safetensors.2000000000.partial", "half an export");
    work.harness(&["export", &run_id, "-o", "again.safetensors"])
        .expect_code(0)
        .expect_stderr(&["removed", "killed before it finished"]);
    assert!(!stale.exists());

    let racers: Vec<_> = (0..2)
        .map(|_| {
            work.command(&["export", &run_id, "-o", "race.safetensors"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = racers
        .into_iter()
        .map(|child| child.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [0, 2],
        "exactly one of two exports at once writes: {codes:?}"
    );
    let race = std::fs::read(work.path().join("race.safetensors")).unwrap();
    safetensors::SafeTensors::deserialize(&race).expect("a whole file");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Every file under `dir` with its contents' length and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                stack.push(path);
            } else {
                files.push((path, metadata.len(), metadata.modified().unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// A run's name works where a run id is expected, for export, inspect and predict, when it
/// names one run; when it names several, their ids are listed to choose from.
#[test]
fn a_runs_name_finds_it_when_it_names_one_run() {
    let work = Workdir::new();
    let config = repo().join("configs/logistic.toml");
    let one = train(&work, &config, &["name=alone"]);
    let twins: Vec<String> = [1, 2]
        .iter()
        .map(|seed| train(&work, &config, &["name=twin", &format!("seed={seed}")]))
        .collect();
    work.harness(&["export", "alone"])
        .expect_code(0)
        .expect_stdout(&[&format!("results/exports/{one}.safetensors")]);
    work.harness(&["inspect", "alone", "-o", "pictures"])
        .expect_code(0)
        .expect_stdout(&["pictures/weights_layer1.png"]);
    let image = work.path().join("blank.png");
    image::GrayImage::new(28, 28).save(&image).unwrap();
    // Found by its name (a blank image shows no digit: exit 1, said per image).
    work.harness(&["predict", "alone", "blank.png"])
        .expect_code(1)
        .expect_stdout(&["blank.png: no digit found"]);
    for command in ["export", "inspect"] {
        work.harness(&[command, "twin"])
            .expect_code(2)
            .expect_stderr(&[
                "2 runs in results/runs.csv are named twin",
                &twins[0],
                &twins[1],
            ]);
    }
    work.harness(&["export", "alon"])
        .expect_code(2)
        .expect_stderr(&["no run alon", "did you mean \"alone\""]);
}
