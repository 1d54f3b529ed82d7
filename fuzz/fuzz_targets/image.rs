//! Image preprocessing for `harness predict`: `predict::mnist_pixels_of` (PNG or JPEG bytes to
//! MNIST's 784 pixels).
//!
//! Invariants checked on success: 784 values, each in [0, 1]; nothing is inverted when
//! inverting is off. Each image is read with inverting on, and, when that succeeds, off.

#![no_main]

use harness::views::predict::mnist_pixels_of;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fn check(data: &[u8], invert: bool) -> bool {
    let result = mnist_pixels_of(data, "fuzz.png", invert);
    common::report("image", &result, |(_, inverted)| {
        format!("inverted {inverted}")
    });
    let Ok((pixels, inverted)) = result else {
        return false;
    };
    assert_eq!(pixels.len(), 784);
    assert!(
        pixels.iter().all(|p| (0.0..=1.0).contains(p)),
        "a pixel outside [0, 1]"
    );
    assert!(invert || !inverted, "inverted with inverting off");
    true
}

fuzz_target!(|data: &[u8]| {
    if check(data, true) {
        check(data, false);
    }
});
