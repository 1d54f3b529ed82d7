//! `harness inspect`: look inside a trained network.
//!
//! A run id (or a model file named after one) resolves to its saved model and its row
//! ([`crate::record::saved`]). Writes into the output folder:
//! - `weights_layer1.png`: the video's picture, one 28x28 tile per first-layer neuron with its
//!   784 weights, green for positive and red for negative, brightness by magnitude on each tile's
//!   own scale (the tile's largest |weight| is full brightness, so weak neurons stay visible), the
//!   bias written under each tile, and a colour key;
//! - `weights_layer<k>.png` for deeper layers: the weight matrix as a heatmap, one row per
//!   neuron of the layer, one column per input, in the same colours, with a title, axes and a
//!   colour key;
//! - `confusion.csv` and `confusion.png`: true digit against predicted digit on the test set,
//!   and `per_class.csv` with each digit's accuracy;
//! - `wrong.png`: the test images the network got wrong with the most confidence, each with its
//!   true and predicted digit;
//! - with an image (a test index or a file), `activations_<image>.png`: the digit, then each
//!   layer's activations as rows of cells lit by value (40 to a row), then the ten outputs with
//!   the chosen digit framed: the video's lit-up neurons. The picture is as wide as its title.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use burn::prelude::*;
use plotters::prelude::*;

use crate::choice::Choice;
use crate::data::mnist::{self, DatasetName};
use crate::error::user_error;
use crate::record::claims::Claims;
use crate::record::results::RunRow;
use crate::record::saved::Loaded;
use crate::views::plot::FONT_FAMILY;

/// Pixels per weight in a first-layer tile.
pub const TILE_SCALE: u32 = 4;
/// Space around each tile, in pixels.
pub const TILE_MARGIN: u32 = 8;
/// Height of the text line under each tile (the bias).
pub const TILE_LABEL: u32 = 20;
/// Height of the colour key under the tiles.
pub const TILE_KEY: u32 = 56;
/// The narrowest first-layer picture, so that the colour key's text fits.
const TILES_MIN_WIDTH: u32 = 372;

/// `harness inspect`: writes the pictures (and, for an image, its activations) into `out`
/// (default `results/inspect/<run_id>`) and prints each file written.
pub fn command(loaded: &Loaded, out: Option<&Path>, image: Option<&str>) -> Result<u8> {
    let out = out.map_or_else(
        || Path::new("results/inspect").join(&loaded.row.run_id),
        Path::to_path_buf,
    );
    let probe = image.map(Probe::parse);
    claims(loaded, &out, probe.as_ref()).check()?;
    if let Some(probe) = probe {
        println!("{}", activations(loaded, &probe, &out)?.display());
    }
    for file in inspect(loaded, &out)? {
        println!("{}", file.display());
    }
    Ok(crate::error::exit::OK)
}

/// The files `inspect` reads (the runs file, the model, an image) and writes into `out`.
fn claims(loaded: &Loaded, out: &Path, probe: Option<&Probe>) -> Claims {
    let mut claims = Claims::new();
    claims
        .reads(&loaded.runs_csv, "the runs file")
        .reads(&loaded.model_file, "the model file")
        .folder(out, "inspect -o");
    for layer in 1..=loaded.model.layers.len() {
        claims.writes_file(&layer_picture(out, layer), "inspect -o");
    }
    for name in CONFUSION_FILES {
        claims.writes_file(&out.join(name), "inspect -o");
    }
    if let Some(probe) = probe {
        if let Probe::File(path) = probe {
            claims.reads(path, "--image");
        }
        claims.writes_file(&activations_picture(out, &probe.name()), "inspect -o");
    }
    claims
}

/// The picture of layer `layer` (1-based) in `out`.
fn layer_picture(out: &Path, layer: usize) -> PathBuf {
    out.join(format!("weights_layer{layer}.png"))
}

/// The files of [`confusion`], in the order it returns them.
const CONFUSION_FILES: [&str; 4] = [
    "confusion.csv",
    "per_class.csv",
    "confusion.png",
    "wrong.png",
];

/// The picture of one image's activations in `out`.
fn activations_picture(out: &Path, name: &str) -> PathBuf {
    out.join(format!("activations_{name}.png"))
}

/// Writes the pictures and the confusion matrix of a loaded model into `out`.
pub fn inspect(loaded: &Loaded, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create folder {}", out.display()))?;
    crate::views::plot::register_font();
    let mut written = Vec::new();
    for (index, layer) in loaded.model.layers.iter().enumerate() {
        let weights = layer.weight.val(); // [inputs, outputs]
        let [inputs, outputs] = weights.dims();
        let values = floats(weights)?;
        let bias = match &layer.bias {
            Some(bias) => floats(bias.val())?,
            None => vec![0.0; outputs],
        };
        let path = layer_picture(out, index + 1);
        if index == 0 {
            weight_tiles(&values, &bias, outputs, outputs, &path)?;
        } else {
            weight_heatmap(&values, inputs, outputs, index + 1, &path)?;
        }
        written.push(path);
    }
    let test = test_set(&loaded.row)?;
    written.extend(confusion(loaded, &test, out)?);
    Ok(written)
}

/// The pictures of a model that a report shows, written into `out`: the first layer's tiles
/// (at most `max_tiles` of its neurons), the confusion matrix and the most confidently wrong
/// test images. `test` is the run's test set ([`test_set`]), loaded once for many models.
pub fn summary_pictures(
    loaded: &Loaded,
    test: &mnist::Split,
    max_tiles: usize,
    out: &Path,
) -> Result<SummaryPictures> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create folder {}", out.display()))?;
    crate::views::plot::register_font();
    let layer = &loaded.model.layers[0];
    let weights = layer.weight.val(); // [784, neurons]
    let [_, neurons] = weights.dims();
    let values = floats(weights)?;
    let bias = match &layer.bias {
        Some(bias) => floats(bias.val())?,
        None => vec![0.0; neurons],
    };
    let tiles = out.join("weights_layer1.png");
    weight_tiles(&values, &bias, neurons, neurons.min(max_tiles), &tiles)?;
    let [_, _, confusion, wrong] = confusion(loaded, test, out)?
        .try_into()
        .expect("confusion writes four files");
    Ok(SummaryPictures {
        tiles,
        confusion,
        wrong,
    })
}

/// The files [`summary_pictures`] wrote.
pub struct SummaryPictures {
    pub tiles: PathBuf,
    pub confusion: PathBuf,
    pub wrong: PathBuf,
}

/// The test set of the dataset a run was trained on.
pub fn test_set(row: &RunRow) -> Result<mnist::Split> {
    Ok(mnist::load(dataset_of(row), None, mnist::Limits::default())?.test)
}

/// An image to follow through the network.
#[derive(Clone, Debug)]
pub enum Probe {
    /// A test image, by index.
    Test(usize),
    /// An image file (PNG or JPEG), made MNIST-style as `harness predict` does.
    File(PathBuf),
}

impl Probe {
    /// A number is a test index, anything else a file.
    pub fn parse(text: &str) -> Probe {
        text.parse()
            .map_or_else(|_| Probe::File(PathBuf::from(text)), Probe::Test)
    }

    /// What its picture is named after: `test12`, or the image file's stem.
    pub fn name(&self) -> String {
        match self {
            Probe::Test(index) => format!("test{index}"),
            Probe::File(path) => path
                .file_stem()
                .map_or("image".into(), |s| s.to_string_lossy().into_owned()),
        }
    }
}

/// Draws the activations of every layer for one image; returns the picture's path.
pub fn activations(loaded: &Loaded, probe: &Probe, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create folder {}", out.display()))?;
    crate::views::plot::register_font();
    let (pixels, label, name) = match probe {
        Probe::Test(index) => {
            let test = test_set(&loaded.row)?;
            if *index >= test.len() {
                return Err(user_error(format!(
                    "--image {index}: the test set has images 0 to {}",
                    test.len() - 1
                )));
            }
            (
                test.scaled(*index..*index + 1),
                format!("true {}", test.labels[*index]),
                probe.name(),
            )
        }
        Probe::File(path) => {
            let (pixels, _) = crate::views::predict::mnist_pixels(path, true).map_err(|e| {
                match e.downcast_ref::<crate::views::predict::NoDigit>() {
                    Some(no_digit) => user_error(format!("--image {}: {no_digit}", path.display())),
                    None => e,
                }
            })?;
            let file = path
                .file_name()
                .map_or(probe.name(), |s| s.to_string_lossy().into_owned());
            (pixels, file, probe.name())
        }
    };
    let input = Tensor::<2>::from_data(TensorData::new(pixels.clone(), [1, 784]), &loaded.device);
    let layers: Vec<Vec<f32>> = loaded
        .model
        .activations(input)
        .into_iter()
        .map(floats)
        .collect::<Result<_>>()?;
    let outputs = layers.last().expect("an output layer");
    let chosen = (1..10).fold(
        0,
        |best, d| if outputs[d] > outputs[best] { d } else { best },
    );

    let cell = 22;
    // A wide layer wraps onto several rows of at most ROW_CELLS cells.
    const ROW_CELLS: usize = 40;
    let rows_of = |n: usize| n.div_ceil(ROW_CELLS).max(1) as i32;
    let widest = layers
        .iter()
        .map(|l| l.len().min(ROW_CELLS))
        .max()
        .unwrap_or(10)
        .max(10) as i32;
    let title = format!("{label}: the network answers {chosen}");
    // Wide enough for the title: a long file name widens the picture rather than being cut.
    let (title_width, _) = (FONT_FAMILY, 20)
        .into_font()
        .box_size(&title)
        .map_err(crate::views::plot::drawing)?;
    let width = (20 + widest * cell)
        .max(20 + 28 * 6 + 20)
        .max(title_width as i32 + 20) as u32;
    let layer_rows: i32 = layers.iter().map(|l| rows_of(l.len())).sum();
    let height = (60 + 28 * 6 + 20 + layers.len() as i32 * 24 + layer_rows * cell + 40) as u32;
    let path = activations_picture(out, &name);
    {
        let root = BitMapBackend::new(&path, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(crate::views::plot::drawing)?;
        root.draw(&Text::new(title, (10, 10), (FONT_FAMILY, 20)))
            .map_err(crate::views::plot::drawing)?;
        for (i, value) in pixels.iter().enumerate() {
            let level = (255.0 * value.clamp(0.0, 1.0)).round() as u8;
            let corner = (20 + (i % 28) as i32 * 6, 44 + (i / 28) as i32 * 6);
            root.draw(&Rectangle::new(
                [corner, (corner.0 + 6, corner.1 + 6)],
                RGBColor(level, level, level).filled(),
            ))
            .map_err(crate::views::plot::drawing)?;
        }
        let mut y = 44 + 28 * 6 + 24;
        for (index, values) in layers.iter().enumerate() {
            let is_output = index + 1 == layers.len();
            let caption = if is_output {
                "output".to_string()
            } else {
                format!("hidden layer {}", index + 1)
            };
            root.draw(&Text::new(caption, (20, y), (FONT_FAMILY, 14)))
                .map_err(crate::views::plot::drawing)?;
            let max = values.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            for (n, value) in values.iter().enumerate() {
                // Lit by value: sigmoid and softmax outputs are in [0, 1]; others by the layer's max.
                let lit = if is_output { *value } else { value.abs() / max };
                let level = (255.0 * lit.clamp(0.0, 1.0)).round() as u8;
                let (column, row) = ((n % ROW_CELLS) as i32, (n / ROW_CELLS) as i32);
                let corner = (20 + column * cell, y + 18 + row * cell);
                let colour = if *value < 0.0 {
                    RGBColor(level, 0, 0)
                } else {
                    RGBColor(level, level, level)
                };
                root.draw(&Rectangle::new(
                    [corner, (corner.0 + cell - 3, corner.1 + cell - 3)],
                    colour.filled(),
                ))
                .map_err(crate::views::plot::drawing)?;
                // A grey outline, so that a fully lit (white) cell still shows.
                root.draw(&Rectangle::new(
                    [corner, (corner.0 + cell - 3, corner.1 + cell - 3)],
                    RGBColor(160, 160, 160).stroke_width(1),
                ))
                .map_err(crate::views::plot::drawing)?;
                if is_output {
                    root.draw(&Text::new(
                        n.to_string(),
                        (corner.0 + 6, corner.1 + cell),
                        (FONT_FAMILY, 13),
                    ))
                    .map_err(crate::views::plot::drawing)?;
                    if n == chosen {
                        root.draw(&Rectangle::new(
                            [
                                (corner.0 - 2, corner.1 - 2),
                                (corner.0 + cell - 1, corner.1 + cell - 1),
                            ],
                            GREEN.stroke_width(2),
                        ))
                        .map_err(crate::views::plot::drawing)?;
                    }
                }
            }
            y += rows_of(values.len()) * cell + 24;
        }
        root.present().map_err(crate::views::plot::drawing)?;
    }
    Ok(path)
}

fn dataset_of(row: &RunRow) -> DatasetName {
    DatasetName::parse(&row.dataset).unwrap_or(DatasetName::Mnist)
}

/// A tensor's values as 32-bit floats, row-major.
pub(crate) fn floats<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading weights: {e:?}"))
}

/// Green for positive, red for negative, brightness |v| / max.
fn colour(value: f32, max: f32) -> RGBColor {
    let level = if max > 0.0 {
        (value.abs() / max).min(1.0)
    } else {
        0.0
    };
    let level = (255.0 * level).round() as u8;
    if value >= 0.0 {
        RGBColor(0, level, 0)
    } else {
        RGBColor(level, 0, 0)
    }
}

/// The size of the first-layer picture for `neurons` tiles: `(width, height, columns)`.
pub fn tiles_size(neurons: usize) -> (u32, u32, u32) {
    let columns = (neurons as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (neurons as u32).div_ceil(columns);
    let tile = 28 * TILE_SCALE;
    (
        (columns * (tile + TILE_MARGIN) + TILE_MARGIN).max(TILES_MIN_WIDTH),
        rows * (tile + TILE_MARGIN + TILE_LABEL) + TILE_MARGIN + TILE_KEY,
        columns,
    )
}

/// One 28x28 tile for each of the first `shown` neurons of the first layer (`values` is
/// `[784, neurons]`, row-major), and the colour key under them.
fn weight_tiles(
    values: &[f32],
    bias: &[f32],
    neurons: usize,
    shown: usize,
    path: &Path,
) -> Result<()> {
    let (width, height, columns) = tiles_size(shown);
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(crate::views::plot::drawing)?;
    let tile = 28 * TILE_SCALE;
    for neuron in 0..shown {
        let (column, row) = (neuron as u32 % columns, neuron as u32 / columns);
        let x0 = (TILE_MARGIN + column * (tile + TILE_MARGIN)) as i32;
        let y0 = (TILE_MARGIN + row * (tile + TILE_MARGIN + TILE_LABEL)) as i32;
        let max = (0..784).fold(0f32, |m, pixel| {
            m.max(values[pixel * neurons + neuron].abs())
        });
        for pixel in 0..784 {
            let (px, py) = ((pixel % 28) as i32, (pixel / 28) as i32);
            let value = values[pixel * neurons + neuron];
            let scale = TILE_SCALE as i32;
            let corner = (x0 + px * scale, y0 + py * scale);
            let rect = Rectangle::new(
                [corner, (corner.0 + scale, corner.1 + scale)],
                colour(value, max).filled(),
            );
            root.draw(&rect).map_err(crate::views::plot::drawing)?;
        }
        let label = format!("bias {:+.2}", bias[neuron]);
        root.draw(&Text::new(
            label,
            (x0, y0 + tile as i32 + 3),
            (FONT_FAMILY, 14),
        ))
        .map_err(crate::views::plot::drawing)?;
    }
    let what = if shown < neurons {
        format!("weights of the first {shown} of {neurons} neurons, each tile on its own scale")
    } else {
        "weights, each tile on its own scale".to_string()
    };
    let top = (height - TILE_KEY) as i32;
    colour_key(&root, (TILE_MARGIN as i32, top), &what, ("-max", "+max"))?;
    root.present().map_err(crate::views::plot::drawing)?;
    Ok(())
}

/// A horizontal colour key, red through black to green, with a caption above it and its two
/// ends named under it; `corner` is its top left. Takes [`TILE_KEY`] pixels of height.
fn colour_key<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    corner: (i32, i32),
    caption: &str,
    ends: (&str, &str),
) -> Result<()> {
    let (x0, y0) = corner;
    let (bar_width, bar_top) = (240, y0 + 20);
    root.draw(&Text::new(
        caption.to_string(),
        (x0, y0 + 2),
        (FONT_FAMILY, 13),
    ))
    .map_err(crate::views::plot::drawing)?;
    for step in 0..bar_width {
        let value = 2.0 * (step as f32 + 0.5) / bar_width as f32 - 1.0;
        root.draw(&Rectangle::new(
            [(x0 + step, bar_top), (x0 + step + 1, bar_top + 12)],
            colour(value, 1.0).filled(),
        ))
        .map_err(crate::views::plot::drawing)?;
    }
    let labels = [
        (ends.0, x0),
        ("0", x0 + bar_width / 2 - 3),
        (ends.1, x0 + bar_width - 30),
    ];
    for (text, x) in labels {
        root.draw(&Text::new(
            text.to_string(),
            (x, bar_top + 15),
            (FONT_FAMILY, 12),
        ))
        .map_err(crate::views::plot::drawing)?;
    }
    Ok(())
}

/// A weight matrix `[inputs, outputs]` of layer `layer` as a heatmap: one row per neuron, one
/// column per input, with a title, axes and a colour key on the matrix's own scale.
fn weight_heatmap(
    values: &[f32],
    inputs: usize,
    outputs: usize,
    layer: usize,
    path: &Path,
) -> Result<()> {
    // Cells as square as the matrix allows, in a plot between 240x120 and 720x480 pixels:
    // a wide layer becomes narrow columns, not a 1-pixel strip.
    let plot_width = (inputs as u32 * 24).clamp(240, 720);
    let plot_height = (outputs as u32 * 24).clamp(120, 480);
    let (width, height) = (plot_width + 70 + 20, plot_height + 50 + 60 + TILE_KEY);
    let max = values
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(crate::views::plot::drawing)?;
    let (main, key) = root.split_vertically(height - TILE_KEY);
    let title = format!("Layer {layer} weights: {outputs} neurons x {inputs} inputs");
    let mut chart = ChartBuilder::on(&main)
        .caption(&title, (FONT_FAMILY, 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..inputs as f64, 0.0..outputs as f64)
        .map_err(crate::views::plot::drawing)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(inputs.clamp(2, 9))
        .y_labels(outputs.clamp(2, 9))
        .x_label_formatter(&|x| format!("{}", x.floor()))
        .y_label_formatter(&|y| format!("{}", y.floor()))
        .x_desc(format!("input (neuron of layer {})", layer - 1))
        .y_desc(format!("neuron of layer {layer}"))
        .label_style((FONT_FAMILY, 12))
        .axis_desc_style((FONT_FAMILY, 13))
        .draw()
        .map_err(crate::views::plot::drawing)?;
    chart
        .draw_series((0..inputs).flat_map(|input| {
            (0..outputs).map(move |output| {
                let (x, y) = (input as f64, output as f64);
                Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    colour(values[input * outputs + output], max).filled(),
                )
            })
        }))
        .map_err(crate::views::plot::drawing)?;
    colour_key(
        &key,
        (70, 4),
        "weight",
        (&format!("{:+.2}", -max), &format!("{max:+.2}")),
    )?;
    root.present().map_err(crate::views::plot::drawing)?;
    Ok(())
}

/// The confusion matrix on the test set: CSV, per-class accuracy and a picture.
fn confusion(loaded: &Loaded, test: &mnist::Split, out: &Path) -> Result<Vec<PathBuf>> {
    let mut counts = [[0usize; 10]; 10];
    // (lead over the runner-up, index, true, predicted) of every wrong answer.
    let mut wrong: Vec<(f32, usize, u8, usize)> = Vec::new();
    for start in (0..test.len()).step_by(10_000) {
        let end = (start + 10_000).min(test.len());
        let images = TensorData::new(test.scaled(start..end), [end - start, 784]);
        let logits = loaded
            .model
            .forward(Tensor::from_data(images, &loaded.device));
        let outputs = floats(loaded.model.output(logits.clone()))?;
        let predicted = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| anyhow::anyhow!("reading predictions: {e:?}"))?;
        for (offset, &guess) in predicted.iter().enumerate() {
            let truth = test.labels[start + offset];
            counts[usize::from(truth)][guess as usize] += 1;
            if usize::from(truth) != guess as usize {
                let row = &outputs[offset * 10..offset * 10 + 10];
                wrong.push((
                    lead(row, guess as usize),
                    start + offset,
                    truth,
                    guess as usize,
                ));
            }
        }
    }
    let mut csv = String::from("true\\predicted,0,1,2,3,4,5,6,7,8,9\n");
    let mut per_class = String::from("digit,images,correct,accuracy\n");
    for (digit, row) in counts.iter().enumerate() {
        csv.push_str(&format!(
            "{digit},{}\n",
            row.map(|c| c.to_string()).join(",")
        ));
        let total: usize = row.iter().sum();
        let accuracy = if total > 0 {
            row[digit] as f64 / total as f64
        } else {
            0.0
        };
        per_class.push_str(&format!("{digit},{total},{},{accuracy:.4}\n", row[digit]));
    }
    let [csv_name, per_class_name, png_name, wrong_name] = CONFUSION_FILES;
    let csv_path = out.join(csv_name);
    let per_class_path = out.join(per_class_name);
    std::fs::write(&csv_path, csv)?;
    std::fs::write(&per_class_path, per_class)?;

    let png = out.join(png_name);
    let cell = 48;
    let side = 60 + 10 * cell + 20;
    let root = BitMapBackend::new(&png, (side as u32, side as u32 + 30)).into_drawing_area();
    root.fill(&WHITE).map_err(crate::views::plot::drawing)?;
    root.draw(&Text::new(
        "true digit (rows) against predicted digit (columns)",
        (10, 8),
        (FONT_FAMILY, 16),
    ))
    .map_err(crate::views::plot::drawing)?;
    for (t, row) in counts.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let shade = 255 - (200.0 * share.sqrt()) as u8;
            let colour = if t == p {
                RGBColor(shade, 255, shade)
            } else {
                RGBColor(255, shade, shade)
            };
            let corner = (60 + p as i32 * cell, 60 + t as i32 * cell);
            root.draw(&Rectangle::new(
                [corner, (corner.0 + cell - 2, corner.1 + cell - 2)],
                colour.filled(),
            ))
            .map_err(crate::views::plot::drawing)?;
            root.draw(&Text::new(
                count.to_string(),
                (corner.0 + 4, corner.1 + 16),
                (FONT_FAMILY, 13),
            ))
            .map_err(crate::views::plot::drawing)?;
        }
        root.draw(&Text::new(
            t.to_string(),
            (40, 60 + t as i32 * cell + 16),
            (FONT_FAMILY, 16),
        ))
        .map_err(crate::views::plot::drawing)?;
        root.draw(&Text::new(
            t.to_string(),
            (60 + t as i32 * cell + 18, 38),
            (FONT_FAMILY, 16),
        ))
        .map_err(crate::views::plot::drawing)?;
    }
    root.present().map_err(crate::views::plot::drawing)?;
    drop(root);
    wrong.sort_by(|a, b| b.0.total_cmp(&a.0));
    let sheet = out.join(wrong_name);
    contact_sheet(test, &wrong[..wrong.len().min(24)], &sheet)?;
    Ok(vec![csv_path, per_class_path, png, sheet])
}

/// How far the answer's output is above the next highest output: saturated sigmoid outputs
/// all read 1.00, their leads tell the confident mistakes from the close calls.
fn lead(outputs: &[f32], answer: usize) -> f32 {
    let runner_up = outputs
        .iter()
        .enumerate()
        .filter(|&(digit, _)| digit != answer)
        .map(|(_, &v)| v)
        .fold(f32::NEG_INFINITY, f32::max);
    outputs[answer] - runner_up
}

/// A lead as a label: three decimals, or two significant digits in exponent form below 0.001.
fn lead_label(lead: f32) -> String {
    if lead >= 0.001 {
        format!("+{lead:.3}")
    } else {
        format!("+{lead:.1e}")
    }
}

/// The most confidently wrong test images, 6 to a row, with their true and predicted digits.
fn contact_sheet(
    test: &mnist::Split,
    wrong: &[(f32, usize, u8, usize)],
    path: &Path,
) -> Result<()> {
    let (scale, columns) = (3, 6);
    let (cell_w, cell_h) = (28 * scale + 40, 28 * scale + 34);
    let rows = wrong.len().div_ceil(columns).max(1) as i32;
    let root = BitMapBackend::new(
        path,
        (
            (columns as i32 * cell_w + 10) as u32,
            (rows * cell_h + 40) as u32,
        ),
    )
    .into_drawing_area();
    root.fill(&WHITE).map_err(crate::views::plot::drawing)?;
    let title = "the most confidently wrong: true -> predicted, +its lead over the runner-up";
    root.draw(&Text::new(title, (10, 8), (FONT_FAMILY, 15)))
        .map_err(crate::views::plot::drawing)?;
    for (k, &(lead, index, truth, guess)) in wrong.iter().enumerate() {
        let x0 = 10 + (k % columns) as i32 * cell_w;
        let y0 = 34 + (k / columns) as i32 * cell_h;
        for (i, &level) in test.pixels(index).iter().enumerate() {
            let corner = (x0 + (i % 28) as i32 * scale, y0 + (i / 28) as i32 * scale);
            root.draw(&Rectangle::new(
                [corner, (corner.0 + scale, corner.1 + scale)],
                RGBColor(level, level, level).filled(),
            ))
            .map_err(crate::views::plot::drawing)?;
        }
        let label = format!("{truth} -> {guess} {}", lead_label(lead));
        root.draw(&Text::new(
            label,
            (x0, y0 + 28 * scale + 4),
            (FONT_FAMILY, 13),
        ))
        .map_err(crate::views::plot::drawing)?;
    }
    root.present().map_err(crate::views::plot::drawing)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturated_mistakes_are_told_apart_by_their_lead() {
        // Two answers that both read 1.00 with two decimals.
        let close = [0.0, 0.9991, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9990, 0.0, 0.0];
        let sure = [0.0, 0.9999, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0300, 0.0, 0.0];
        assert!((lead(&close, 1) - 0.0001).abs() < 1e-6);
        assert!((lead(&sure, 1) - 0.9699).abs() < 1e-6);
        assert_eq!(lead_label(lead(&sure, 1)), "+0.970");
        assert_eq!(lead_label(lead(&close, 1)), "+1.0e-4");
        assert_ne!(lead_label(0.0012), lead_label(0.0019));
    }
}
