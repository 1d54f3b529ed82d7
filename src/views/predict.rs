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

use crate::error::{exit, user_error};
use crate::net::model::INPUTS;
use crate::record::saved::Loaded;

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

/// The most pixels an image may have (16 megapixels: a 4096x4096 photo of a digit is plenty).
pub const MAX_PIXELS: u64 = 16 << 20;

/// Reads an image file and turns it into MNIST's 784 pixels in [0, 1].
pub fn mnist_pixels(path: &Path, invert: bool) -> Result<(Vec<f32>, bool)> {
    let bytes = crate::input::read_bytes(path, "image", crate::input::IMAGE_FILE_MAX)?;
    mnist_pixels_of(&bytes, &path.display().to_string(), invert)
}

/// [`mnist_pixels`] of an image file's bytes; `name` names it in errors. An image of more than
/// [`MAX_PIXELS`] is refused before it is decoded.
pub fn mnist_pixels_of(bytes: &[u8], name: &str, invert: bool) -> Result<(Vec<f32>, bool)> {
    let unreadable = |e: image::ImageError| {
        user_error(format!(
            "cannot read image {name}: {e} (PNG or JPEG expected)"
        ))
    };
    let reader = || {
        image::io::Reader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| user_error(format!("cannot read image {name}: {e}")))
    };
    let (width, height) = reader()?.into_dimensions().map_err(unreadable)?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS || pixels == 0 {
        return Err(user_error(format!(
            "image {name} is {width}x{height} pixels; harness reads images of 1 to {} \
             megapixels (scale it down first)",
            MAX_PIXELS >> 20
        )));
    }
    let mut limits = image::io::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    let mut decoder = reader()?;
    decoder.limits(limits);
    let image = decoder.decode().map_err(unreadable)?.to_luma8();
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
    // The ink's bounding box, in one pass and constant memory.
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in image.enumerate_pixels() {
        if p.0[0] > 32 {
            (x0, y0) = (x0.min(x), y0.min(y));
            (x1, y1) = (x1.max(x), y1.max(y));
        }
    }
    let mut frame = GrayImage::new(28, 28);
    if x0 == u32::MAX {
        return frame;
    }
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

/// `harness predict`: prints the answer for each image (a line each, or JSON lines).
pub fn command(loaded: &Loaded, images: &[&Path], invert: bool, json: bool) -> Result<u8> {
    for answer in predict(loaded, images, invert)? {
        if json {
            println!("{}", serde_json::to_string(&answer)?);
        } else {
            let outputs: Vec<String> = answer.outputs.iter().map(|v| format!("{v:.3}")).collect();
            println!(
                "{}: {}{} [{}]",
                answer.image,
                answer.digit,
                if answer.inverted { " (inverted)" } else { "" },
                outputs.join(" ")
            );
        }
    }
    Ok(exit::OK)
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
    // A network with non-finite weights answers NaN for every digit: that is no answer.
    if let Some(image) = values
        .chunks(10)
        .zip(images)
        .find(|(outputs, _)| outputs.iter().any(|v| !v.is_finite()))
        .map(|(_, path)| path)
    {
        anyhow::bail!(
            "the network's outputs for {} are not finite numbers (its weights are NaN or \
             infinite: a diverged run, or a damaged model); no digit to give",
            image.display()
        );
    }
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
