//! `harness predict`: what a trained network answers for an image file.
//!
//! Any PNG or JPEG becomes a 28x28 grey image the way MNIST's were made: light digit on a dark
//! background (a dark-on-light image, detected from its border, is inverted unless `--no-invert`),
//! the digit's bounding box scaled to fit 20x20 and placed in the 28x28 frame so that its centre
//! of mass is at the centre. A 28x28 image is taken as it is (after inversion): it already is
//! one. The network's ten output activations and its chosen digit are printed.

use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use image::GrayImage;
use image::imageops::FilterType;
use serde::Serialize;

use crate::error::user_error;
use crate::inspect::Loaded;
use crate::model::INPUTS;

/// The answer for one image.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    pub image: String,
    /// The output layer's activations, digits 0-9 (sigmoid or softmax, as the network's output).
    pub outputs: Vec<f32>,
    pub digit: usize,
    /// Whether the image was inverted to a light digit on a dark background.
    pub inverted: bool,
}

/// Reads an image file and turns it into MNIST's 784 pixels in [0, 1].
pub fn mnist_pixels(path: &Path, invert: bool) -> Result<(Vec<f32>, bool)> {
    let image = image::open(path)
        .map_err(|e| {
            user_error(format!(
                "cannot read image {}: {e} (PNG or JPEG expected)",
                path.display()
            ))
        })?
        .to_luma8();
    let inverted = invert && dark_on_light(&image);
    let mut grey = image;
    if inverted {
        image::imageops::invert(&mut grey);
    }
    let frame = if grey.dimensions() == (28, 28) {
        grey
    } else {
        centre(&grey)
    };
    Ok((
        frame.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect(),
        inverted,
    ))
}

/// Whether the border is mostly light: a dark digit on light paper.
fn dark_on_light(image: &GrayImage) -> bool {
    let (w, h) = image.dimensions();
    let border: Vec<u8> = image
        .enumerate_pixels()
        .filter(|(x, y, _)| *x == 0 || *y == 0 || *x + 1 == w || *y + 1 == h)
        .map(|(_, _, p)| p.0[0])
        .collect();
    let mean = border.iter().map(|&p| f64::from(p)).sum::<f64>() / border.len().max(1) as f64;
    mean > 127.0
}

/// Crops to the ink, scales it into 20x20 and centres its mass in 28x28, as MNIST did.
fn centre(image: &GrayImage) -> GrayImage {
    let ink: Vec<(u32, u32)> = image
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] > 32)
        .map(|(x, y, _)| (x, y))
        .collect();
    let mut frame = GrayImage::new(28, 28);
    if ink.is_empty() {
        return frame;
    }
    let (x0, x1) = ink
        .iter()
        .fold((u32::MAX, 0), |(lo, hi), &(x, _)| (lo.min(x), hi.max(x)));
    let (y0, y1) = ink
        .iter()
        .fold((u32::MAX, 0), |(lo, hi), &(_, y)| (lo.min(y), hi.max(y)));
    let cropped = image::imageops::crop_imm(image, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let (w, h) = cropped.dimensions();
    let scale = 20.0 / w.max(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    let digit = image::imageops::resize(&cropped, nw, nh, FilterType::Lanczos3);

    // Centre of mass of the scaled digit, placed at (14, 14).
    let (mut mass, mut mx, mut my) = (0.0, 0.0, 0.0);
    for (x, y, p) in digit.enumerate_pixels() {
        let v = f64::from(p.0[0]);
        mass += v;
        mx += v * f64::from(x);
        my += v * f64::from(y);
    }
    let (cx, cy) = if mass > 0.0 {
        (mx / mass, my / mass)
    } else {
        (nw as f64 / 2.0, nh as f64 / 2.0)
    };
    let left = (14.0 - cx).round() as i64;
    let top = (14.0 - cy).round() as i64;
    image::imageops::overlay(&mut frame, &digit, left, top);
    frame
}

/// The network's answer for each image.
pub fn predict(loaded: &Loaded, images: &[&Path], invert: bool) -> Result<Vec<Prediction>> {
    let mut pixels = Vec::with_capacity(images.len() * INPUTS);
    let mut inverted = Vec::new();
    for path in images {
        let (image, was_inverted) = mnist_pixels(path, invert)?;
        pixels.extend(image);
        inverted.push(was_inverted);
    }
    let batch = Tensor::<2>::from_data(
        TensorData::new(pixels, [images.len(), INPUTS]),
        &loaded.device,
    );
    let outputs = loaded.model.output(loaded.model.forward(batch)); // [images, 10]
    let values = outputs
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading outputs: {e:?}"))?;
    Ok(values
        .chunks(10)
        .zip(images)
        .zip(inverted)
        .map(|((outputs, path), inverted)| Prediction {
            image: path.display().to_string(),
            outputs: outputs.to_vec(),
            // The first of equal maxima, as burn's argmax.
            digit: (1..outputs.len()).fold(
                0,
                |best, d| if outputs[d] > outputs[best] { d } else { best },
            ),
            inverted,
        })
        .collect())
}
