//! `harness predict`: what a trained network answers for an image file.
//!
//! Any PNG or JPEG becomes a 28x28 grey image the way MNIST's were made: a light digit on a
//! dark background, the digit's bounding box scaled to fit 20x20 and placed in the 28x28 frame
//! so that its centre of mass is at the centre. On the way, for photos and drawings:
//! - a JPEG's EXIF orientation is applied (a phone's upright photo is stored sideways);
//! - transparency is laid over white paper (drawing programs export black ink on nothing);
//! - a dark-on-light image, detected from its median grey level, is inverted unless
//!   `--no-invert`, and a ruled line across the picture (a frame) is dropped;
//! - the paper is told from the ink by the image itself: a background estimated cell by cell
//!   (shading, a grey desk) is subtracted, then Otsu's threshold (Otsu, 1979) on what is left
//!   separates ink from grain, and only the ink is kept, its soft edges included.
//!
//! An image with no ink (blank, one grey level, 1x1, fully transparent) or whose ink fills the
//! frame shows no digit, and says so ([`NoDigit`]). A 28x28 image is taken as it is (after
//! inversion): it already is one.

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
    /// The output layer's activations, digits 0-9 (sigmoid or softmax, as the network's output);
    /// empty when the image shows no digit.
    pub outputs: Vec<f32>,
    /// The chosen digit; none when the image shows no digit.
    pub digit: Option<usize>,
    /// Whether the image was inverted to a light digit on a dark background.
    pub inverted: bool,
    /// Why the image shows no digit (blank, or ink that fills the frame), when it shows none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_digit: Option<String>,
}

/// The most pixels an image may have (16 megapixels: a 4096x4096 photo of a digit is plenty).
pub const MAX_PIXELS: u64 = 16 << 20;

/// Why an image shows no digit to read: it is blank, or its ink fills the frame.
#[derive(Debug)]
pub struct NoDigit(pub String);

impl std::fmt::Display for NoDigit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no digit found: {}", self.0)
    }
}

impl std::error::Error for NoDigit {}

/// Reads an image file and turns it into MNIST's 784 pixels in [0, 1]; a [`NoDigit`] error
/// when it shows none.
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
    let decoded = orient(
        decoder.decode().map_err(unreadable)?,
        exif_orientation(bytes),
    );
    let mut grey = over_white(&decoded);
    let inverted = invert && dark_on_light(&grey);
    if inverted {
        image::imageops::invert(&mut grey);
    }
    let (min, max) = grey.pixels().fold((u8::MAX, u8::MIN), |(lo, hi), p| {
        (lo.min(p.0[0]), hi.max(p.0[0]))
    });
    if max.saturating_sub(min) < MIN_CONTRAST {
        return Err(anyhow::Error::new(NoDigit(format!(
            "{name} is blank (its grey levels span {min} to {max})"
        ))));
    }
    let frame = if grey.dimensions() == (28, 28) {
        grey
    } else {
        centre(&ink_only(&grey, name)?)
    };
    Ok((
        frame.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect(),
        inverted,
    ))
}

/// The fewest grey levels between an image's darkest and lightest pixels for it to show ink.
const MIN_CONTRAST: u8 = 24;
/// The largest share of an image that ink may cover: more, and it is no digit on paper.
const MAX_INK: f64 = 0.5;

/// A JPEG's EXIF orientation (1 to 8; 1 when there is none, or for a PNG).
fn exif_orientation(bytes: &[u8]) -> u32 {
    exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(bytes))
        .ok()
        .and_then(|exif| {
            exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
                .and_then(|field| field.value.get_uint(0))
        })
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}

/// The image as it is meant to be seen, from its EXIF orientation.
fn orient(image: image::DynamicImage, orientation: u32) -> image::DynamicImage {
    match orientation {
        2 => image.fliph(),
        3 => image.rotate180(),
        4 => image.flipv(),
        5 => image.rotate90().fliph(),
        6 => image.rotate90(),
        7 => image.rotate270().fliph(),
        8 => image.rotate270(),
        _ => image,
    }
}

/// Grey levels with any transparency laid over white paper.
fn over_white(image: &image::DynamicImage) -> GrayImage {
    let with_alpha = image.to_luma_alpha8();
    GrayImage::from_fn(with_alpha.width(), with_alpha.height(), |x, y| {
        let [grey, alpha] = with_alpha.get_pixel(x, y).0;
        let (grey, alpha) = (u32::from(grey), u32::from(alpha));
        image::Luma([((grey * alpha + 255 * (255 - alpha) + 127) / 255) as u8])
    })
}

/// The ink of a light-on-dark image, on black: the background (estimated per cell of an 8x8
/// grid as its 20th percentile, and interpolated between cells) subtracted, then everything
/// under Otsu's threshold of what is left set to black, the ink above it stretched to full
/// brightness.
fn ink_only(image: &GrayImage, name: &str) -> Result<GrayImage> {
    let (w, h) = image.dimensions();
    // Ink over most of the frame (a dark photo, a filled shape) before any background is
    // taken away: by Otsu's threshold of the image as it is.
    let mut histogram = [0u64; 256];
    for p in image.pixels() {
        histogram[usize::from(p.0[0])] += 1;
    }
    let raw_threshold = otsu(&histogram);
    let raw_ink = image.pixels().filter(|p| p.0[0] > raw_threshold).count();
    let share = raw_ink as f64 / f64::from(w * h);
    if share > MAX_INK {
        return Err(fills_the_frame(name, share));
    }
    let background = background(image);
    let lifted: Vec<u8> = image
        .pixels()
        .zip(&background)
        .map(|(p, &b)| p.0[0].saturating_sub(b))
        .collect();
    let mut histogram = [0u64; 256];
    for &v in &lifted {
        histogram[usize::from(v)] += 1;
    }
    let threshold = otsu(&histogram);
    let ink = lifted.iter().filter(|&&v| v > threshold).count();
    let strongest = lifted.iter().copied().max().unwrap_or(0);
    if ink == 0 || strongest < MIN_CONTRAST {
        return Err(anyhow::Error::new(NoDigit(format!(
            "{name} shows no ink that stands out from its paper"
        ))));
    }
    let share = ink as f64 / lifted.len() as f64;
    if share > MAX_INK {
        return Err(fills_the_frame(name, share));
    }
    // Full brightness at the ink's 90th percentile; soft edges from half the threshold up.
    let mut levels: Vec<u8> = lifted.iter().copied().filter(|&v| v > threshold).collect();
    levels.sort_unstable();
    let high = f64::from(levels[levels.len() * 9 / 10]);
    let low = f64::from(threshold) / 2.0;
    let span = (high - low).max(1.0);
    // A ruled line (a frame around the digit, the edge of a sheet) is ink across most of a row
    // or a column, as no stroke of a digit is: it is dropped, so that the crop is the digit's.
    let is_ink = |x: u32, y: u32| lifted[(y * w + x) as usize] > threshold;
    let ruled_rows: Vec<bool> = (0..h)
        .map(|y| (0..w).filter(|&x| is_ink(x, y)).count() as f64 > 0.8 * f64::from(w))
        .collect();
    let ruled_columns: Vec<bool> = (0..w)
        .map(|x| (0..h).filter(|&y| is_ink(x, y)).count() as f64 > 0.8 * f64::from(h))
        .collect();
    let left = (0..h)
        .filter(|&y| !ruled_rows[y as usize])
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| !ruled_columns[x as usize] && is_ink(x, y))
        .count();
    if left == 0 {
        return Err(anyhow::Error::new(NoDigit(format!(
            "{name} shows only lines across the whole picture (a frame, an edge), no digit"
        ))));
    }
    Ok(GrayImage::from_fn(w, h, |x, y| {
        if ruled_rows[y as usize] || ruled_columns[x as usize] {
            return image::Luma([0]);
        }
        let v = f64::from(lifted[(y * w + x) as usize]);
        image::Luma([(((v - low) / span).clamp(0.0, 1.0) * 255.0).round() as u8])
    }))
}

fn fills_the_frame(name: &str, share: f64) -> anyhow::Error {
    anyhow::Error::new(NoDigit(format!(
        "the ink of {name} fills {:.0}% of the frame; crop the image to the digit on its paper",
        share * 100.0
    )))
}

/// The paper's level under every pixel: the 20th percentile of each cell of an 8x8 grid (ink
/// covers less of a cell than that), never above the whole image's 75th percentile (ink covers
/// less of the image than that, so a cell that is all ink keeps the paper's level),
/// interpolated bilinearly between the cells' centres.
fn background(image: &GrayImage) -> Vec<u8> {
    const CELLS: u32 = 8;
    let (w, h) = image.dimensions();
    let (cw, ch) = (w.div_ceil(CELLS).max(1), h.div_ceil(CELLS).max(1));
    let (nx, ny) = (w.div_ceil(cw), h.div_ceil(ch));
    let mut all: Vec<u8> = image.pixels().map(|p| p.0[0]).collect();
    all.sort_unstable();
    let ceiling = f64::from(all[all.len() * 3 / 4]);
    let mut levels = vec![0f64; (nx * ny) as usize];
    for cy in 0..ny {
        for cx in 0..nx {
            let mut values: Vec<u8> = Vec::new();
            for y in cy * ch..((cy + 1) * ch).min(h) {
                for x in cx * cw..((cx + 1) * cw).min(w) {
                    values.push(image.get_pixel(x, y).0[0]);
                }
            }
            values.sort_unstable();
            levels[(cy * nx + cx) as usize] = f64::from(values[values.len() / 5]).min(ceiling);
        }
    }
    let at = |cx: i64, cy: i64| {
        let cx = cx.clamp(0, i64::from(nx) - 1) as u32;
        let cy = cy.clamp(0, i64::from(ny) - 1) as u32;
        levels[(cy * nx + cx) as usize]
    };
    let mut out = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        // Position in cell units, relative to the cells' centres.
        let fy = (f64::from(y) + 0.5) / f64::from(ch) - 0.5;
        let (y0, ty) = (fy.floor() as i64, fy - fy.floor());
        for x in 0..w {
            let fx = (f64::from(x) + 0.5) / f64::from(cw) - 0.5;
            let (x0, tx) = (fx.floor() as i64, fx - fx.floor());
            let top = at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx;
            let bottom = at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx;
            out.push((top * (1.0 - ty) + bottom * ty).round() as u8);
        }
    }
    out
}

/// Otsu's threshold: the grey level that best splits a histogram into two classes (the
/// largest between-class variance); pixels above it are the brighter class.
fn otsu(histogram: &[u64; 256]) -> u8 {
    let total: u64 = histogram.iter().sum();
    let sum: f64 = histogram
        .iter()
        .enumerate()
        .map(|(level, &n)| level as f64 * n as f64)
        .sum();
    let (mut below, mut below_sum) = (0u64, 0f64);
    let (mut best, mut best_variance) = (0u8, -1f64);
    for (level, &count) in histogram.iter().enumerate() {
        below += count;
        below_sum += level as f64 * count as f64;
        let above = total - below;
        if below == 0 || above == 0 {
            continue;
        }
        let mean_below = below_sum / below as f64;
        let mean_above = (sum - below_sum) / above as f64;
        let variance = below as f64 * above as f64 * (mean_below - mean_above).powi(2);
        if variance > best_variance {
            (best, best_variance) = (level as u8, variance);
        }
    }
    best
}

/// Whether the image is mostly light: a dark digit on light paper. The paper is most of the
/// picture, so its median is the paper's level (a border alone is fooled by a frame drawn or
/// photographed around the digit).
fn dark_on_light(image: &GrayImage) -> bool {
    let mut histogram = [0u64; 256];
    for p in image.pixels() {
        histogram[usize::from(p.0[0])] += 1;
    }
    let half = (u64::from(image.width()) * u64::from(image.height())).div_ceil(2);
    let mut seen = 0;
    let median = histogram
        .iter()
        .position(|&n| {
            seen += n;
            seen >= half
        })
        .unwrap_or(0);
    median > 127
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

/// `harness predict`: prints the answer for each image (a line each, or JSON lines); exit 1
/// when an image shows no digit (the others are answered).
pub fn command(loaded: &Loaded, images: &[&Path], invert: bool, json: bool) -> Result<u8> {
    let mut code = exit::OK;
    for answer in predict(loaded, images, invert)? {
        if answer.no_digit.is_some() {
            code = exit::FAILED;
        }
        if json {
            println!("{}", serde_json::to_string(&answer)?);
        } else if let Some(reason) = &answer.no_digit {
            println!("{}: no digit found: {reason}", answer.image);
        } else {
            let outputs: Vec<String> = answer.outputs.iter().map(|v| format!("{v:.3}")).collect();
            println!(
                "{}: {}{} [{}]",
                answer.image,
                answer.digit.expect("an answer with outputs has a digit"),
                if answer.inverted { " (inverted)" } else { "" },
                outputs.join(" ")
            );
        }
    }
    Ok(code)
}

/// The network's answer for each image.
pub fn predict(loaded: &Loaded, images: &[&Path], invert: bool) -> Result<Vec<Prediction>> {
    let mut pixels = Vec::with_capacity(images.len() * INPUTS);
    // Per image: whether it was inverted, or why it shows no digit.
    let mut read: Vec<Result<bool, String>> = Vec::new();
    for path in images {
        match mnist_pixels(path, invert) {
            Ok((image, was_inverted)) => {
                pixels.extend(image);
                read.push(Ok(was_inverted));
            }
            Err(error) => match error.downcast_ref::<NoDigit>() {
                Some(NoDigit(reason)) => read.push(Err(reason.clone())),
                None => return Err(error),
            },
        }
    }
    let readable = read.iter().filter(|r| r.is_ok()).count();
    let values = if readable == 0 {
        Vec::new()
    } else {
        let batch =
            Tensor::<2>::from_data(TensorData::new(pixels, [readable, INPUTS]), &loaded.device);
        let outputs = loaded.model.output(loaded.model.forward(batch)); // [images, 10]
        outputs
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading outputs: {e:?}"))?
    };
    // A network with non-finite weights answers NaN for every digit: that is no answer.
    if let Some(image) = values
        .chunks(10)
        .zip(images.iter().zip(&read).filter(|(_, r)| r.is_ok()))
        .find(|(outputs, _)| outputs.iter().any(|v| !v.is_finite()))
        .map(|(_, (path, _))| path)
    {
        anyhow::bail!(
            "the network's outputs for {} are not finite numbers (its weights are NaN or \
             infinite: a diverged run, or a damaged model); no digit to give",
            image.display()
        );
    }
    let mut answers = values.chunks(10);
    Ok(images
        .iter()
        .zip(read)
        .map(|(path, read)| match read {
            Ok(inverted) => {
                let outputs = answers.next().expect("one answer per readable image");
                Prediction {
                    image: path.display().to_string(),
                    outputs: outputs.to_vec(),
                    // The first of equal maxima, as burn's argmax.
                    digit: Some((1..outputs.len()).fold(0, |best, d| {
                        if outputs[d] > outputs[best] { d } else { best }
                    })),
                    inverted,
                    no_digit: None,
                }
            }
            Err(reason) => Prediction {
                image: path.display().to_string(),
                outputs: Vec::new(),
                digit: None,
                inverted: false,
                no_digit: Some(reason),
            },
        })
        .collect())
}
