#!/usr/bin/env python3
"""Load a network `harness export` wrote, and ask it about MNIST's 10,000 test images.

    python3 experiments/load_exported.py results/exports/<run_id>.safetensors \
        [--onnx results/exports/<run_id>.onnx] [--mnist data/mnist] [--pictures tiles.png]

Three loaders, each on its own:
- NumPy alone: the safetensors file is an 8-byte little-endian header length, a JSON header
  (each tensor's dtype, shape and byte range, and the file's metadata), then the raw bytes.
  The forward pass is a = f(W a + b), layer by layer, with the functions the metadata names.
- PyTorch (when installed): the nn.Sequential the metadata describes, loaded with a strict
  load_state_dict.
- ONNX Runtime (when installed and --onnx is given): the ONNX file as it is.

Prints each loader's test accuracy and how far its outputs are from NumPy's. --pictures draws
the first layer's weights, one 28x28 tile per neuron (the video's pictures: green positive,
red negative, each tile on its own scale), as a PNG written with the standard library.
--dump DIR writes each loader's outputs ([10000, 10] float32, little-endian) and the first
layer's weights as NumPy loaded them, for tests/export.rs.
"""

import argparse
import gzip
import json
import math
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

# The largest header harness writes is a few kilobytes; the format's own limit is 100 MB.
MAX_HEADER = 100 << 20


def read_safetensors(path):
    """The tensors (name -> float32 array) and the metadata of a safetensors file."""
    if not Path(path).is_file():
        sys.exit(f"{path}: no such file")
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        sys.exit(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (length,) = struct.unpack("<Q", raw[:8])
    if length > min(MAX_HEADER, len(raw) - 8):
        sys.exit(f"{path}: header length {length} does not fit the file")
    header = json.loads(raw[8 : 8 + length])
    metadata = header.pop("__metadata__", {})
    data = memoryview(raw)[8 + length :]
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} is {info['dtype']}, not F32")
        start, end = info["data_offsets"]
        if not 0 <= start <= end <= len(data):
            sys.exit(f"{path}: tensor {name} lies outside the file")
        tensors[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(info["shape"])
    return tensors, metadata


ACTIVATIONS = {"sigmoid", "relu", "tanh", "leaky_relu", "gelu", "identity"}
OUTPUTS = {"sigmoid", "softmax"}


def architecture(metadata):
    """Widths, one activation name per hidden layer, and the output function."""
    missing = [key for key in ("widths", "activations", "output") if key not in metadata]
    if missing:
        sys.exit(f"the file's metadata lacks {', '.join(missing)}: not a file `harness export` wrote")
    try:
        widths = [int(w) for w in metadata["widths"].split(",")]
    except ValueError:
        sys.exit(f"metadata widths {metadata['widths']!r} is not numbers like 784,16,16,10")
    activations = metadata["activations"].split(",") if len(widths) > 2 else []
    output = metadata["output"]
    unknown = [a for a in activations if a not in ACTIVATIONS]
    if unknown or len(activations) != len(widths) - 2:
        sys.exit(f"metadata activations {metadata['activations']!r}: expected one of "
                 f"{sorted(ACTIVATIONS)} for each of the {len(widths) - 2} hidden layers")
    if output not in OUTPUTS:
        sys.exit(f"metadata output {output!r}: expected one of {sorted(OUTPUTS)}")
    return widths, activations, output


def numpy_forward(tensors, metadata, images):
    """The output layer's activations for images [N, 784] in [0, 1], with NumPy alone."""
    widths, activations, output = architecture(metadata)
    slope = float(metadata.get("leaky_relu_slope", "0.01"))
    erf = np.frompyfunc(math.erf, 1, 1)
    functions = {
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "relu": lambda z: np.maximum(z, 0),
        "tanh": np.tanh,
        "leaky_relu": lambda z: np.where(z > 0, z, slope * z),
        "gelu": lambda z: z * (1 + erf(z / np.float32(math.sqrt(2))).astype(np.float32)) / 2,
        "identity": lambda z: z,
    }
    a = images
    for k in range(len(widths) - 1):
        z = a @ tensors[f"{2 * k}.weight"].T + tensors[f"{2 * k}.bias"]
        a = functions[activations[k]](z) if k < len(activations) else z
    if output == "softmax":
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 1 / (1 + np.exp(-a))


def torch_forward(path, metadata, images):
    """The same with PyTorch's nn.Sequential, loaded strictly; None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    from torch import nn

    widths, activations, output = architecture(metadata)
    slope = float(metadata.get("leaky_relu_slope", "0.01"))
    modules = {
        "sigmoid": nn.Sigmoid,
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "leaky_relu": lambda: nn.LeakyReLU(slope),
        "gelu": nn.GELU,
        "identity": nn.Identity,
    }
    layers = []
    for k in range(len(widths) - 1):
        layers.append(nn.Linear(widths[k], widths[k + 1]))
        if k < len(activations):
            layers.append(modules[activations[k]]())
    layers.append(nn.Softmax(dim=1) if output == "softmax" else nn.Sigmoid())
    network = nn.Sequential(*layers)
    try:
        from safetensors.torch import load_file

        state = load_file(str(path))
    except ImportError:
        tensors, _ = read_safetensors(path)
        state = {name: torch.from_numpy(t.copy()) for name, t in tensors.items()}
    network.load_state_dict(state, strict=True)
    with torch.inference_mode():
        return network(torch.from_numpy(images)).numpy()


def onnx_forward(path, images):
    """The same with ONNX Runtime; None without it."""
    try:
        import onnxruntime
    except ImportError:
        return None
    if not Path(path).is_file():
        sys.exit(f"{path}: no such file")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime's own exception types vary by version
        sys.exit(f"{path}: ONNX Runtime cannot load it ({error}); is it the file `harness export --format onnx` wrote?")
    (outputs,) = session.run(["digits"], {"pixels": images})
    return outputs


def read_idx(path, magic):
    """An MNIST IDX file (gzipped or not) as a uint8 array, with its header checked."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read(60_000 * 784 + 16 + 1)
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        sys.exit(f"{path}: magic number {found:#x}, expected {magic:#x}")
    count = magic & 0xFF  # the last byte of the magic number: how many dimensions
    dims = struct.unpack(f">{count}I", raw[4 : 4 + 4 * count])
    body = raw[4 + 4 * count :]
    if len(body) != math.prod(dims):
        sys.exit(f"{path}: {len(body)} bytes of data for dimensions {dims}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def test_set(folder):
    """MNIST's test images [10000, 784] in [0, 1] and their labels."""
    folder = Path(folder)
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        sys.exit(f"{folder}: no MNIST test images (t10k-images-idx3-ubyte.gz) there; --mnist names the folder")
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz", 0x803)
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz", 0x801)
    return (images.reshape(len(images), 784) / np.float32(255)).astype(np.float32), labels


def write_png(path, rgb):
    """An RGB image [H, W, 3] of uint8 as a PNG, with zlib and the standard library."""
    height, width, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


def weight_tiles(weight, columns=8, scale=4, margin=4):
    """The first layer's weights [neurons, 784] as tiles: green positive, red negative."""
    neurons = weight.shape[0]
    rows = math.ceil(neurons / columns)
    side = 28 * scale
    picture = np.full((rows * (side + margin) + margin, columns * (side + margin) + margin, 3), 255, np.uint8)
    for n in range(neurons):
        tile = weight[n].reshape(28, 28)
        brightness = np.abs(tile) / max(np.abs(tile).max(), 1e-12)
        rgb = np.zeros((28, 28, 3), np.uint8)
        rgb[..., 1] = np.where(tile > 0, brightness * 255, 0).astype(np.uint8)
        rgb[..., 0] = np.where(tile < 0, brightness * 255, 0).astype(np.uint8)
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
        y = margin + (n // columns) * (side + margin)
        x = margin + (n % columns) * (side + margin)
        picture[y : y + side, x : x + side] = rgb
    return picture


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("safetensors", help="a file `harness export` wrote")
    parser.add_argument("--onnx", help="the same run exported with --format onnx")
    here = Path(__file__).resolve().parent.parent / "data" / "mnist"
    parser.add_argument("--mnist", default=str(here), help="folder of MNIST's IDX files (default: the repository's)")
    parser.add_argument("--pictures", help="draw the first layer's weights into this PNG")
    parser.add_argument("--dump", help="write each loader's outputs into this folder")
    args = parser.parse_args()

    tensors, metadata = read_safetensors(args.safetensors)
    images, labels = test_set(args.mnist)
    print(f"{args.safetensors}: {metadata.get('torch', '?')} (run {metadata.get('run_id', '?')})")
    results = {"numpy": numpy_forward(tensors, metadata, images)}
    results["torch"] = torch_forward(args.safetensors, metadata, images)
    if args.onnx:
        results["onnxruntime"] = onnx_forward(args.onnx, images)
    for loader, outputs in results.items():
        if outputs is None:
            print(f"{loader}: not installed, skipped")
            continue
        accuracy = (outputs.argmax(axis=1) == labels).mean()
        gap = np.abs(outputs - results["numpy"]).max()
        print(f"{loader}: test accuracy {accuracy:.4f}, largest difference from NumPy {gap:.2e}")
    if args.pictures:
        write_png(args.pictures, weight_tiles(tensors["0.weight"]))
        print(f"first layer's weights: {args.pictures}")
    if args.dump:
        folder = Path(args.dump)
        folder.mkdir(parents=True, exist_ok=True)
        for loader, outputs in results.items():
            if outputs is not None:
                (folder / f"{loader}.f32").write_bytes(np.ascontiguousarray(outputs, "<f4").tobytes())
        (folder / "layer1_weight.f32").write_bytes(tensors["0.weight"].astype("<f4").tobytes())


if __name__ == "__main__":
    main()
