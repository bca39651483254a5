//! What an image model's gate checks of its files before its outputs: the pixels decoded
//! (and prepared) here against PIL's, and that a file PIL cannot open is refused here too.
//! Shared by the image classifier's checks (`image.rs`), the detector's (`detection.rs`)
//! and the image–text model's (`image_text.rs`).

use std::path::Path;

use anyhow::{Context, Result};
use modelcrate_runtime::Preprocessing;
use modelcrate_runtime::image::{DEFAULT_MAX_PIXELS, decode};
use serde_json::{Value, json};

use super::{Figures, Rule};

/// Largest per-channel level difference of a JPEG decoded here and by PIL: no JPEG
/// decoder is bit-exact (see `image.rs`), and the golden JPEGs differ by at most 4.
pub(crate) const JPEG_PIXEL_BOUND: u8 = 8;

/// (differing bytes, largest level difference) of two pixel buffers; a length mismatch
/// counts every byte.
pub(crate) fn pixel_difference(rust: &[u8], python: &[u8]) -> (usize, u8) {
    if rust.len() != python.len() {
        return (rust.len().max(python.len()), u8::MAX);
    }
    rust.iter().zip(python).fold((0, 0), |(count, max), (a, b)| {
        let difference = a.abs_diff(*b);
        (count + usize::from(difference > 0), max.max(difference))
    })
}

pub(crate) fn is_jpeg(file: &str) -> bool {
    file.ends_with(".jpg") || file.ends_with(".jpeg")
}

/// The golden files Python could not open, and which of them are refused here too.
#[derive(Default)]
pub(crate) struct Refusals {
    cases: usize,
    refused_both: Vec<Value>,
}

impl Refusals {
    /// Golden case `id`, whose `bytes` Python refused with `python_error`: refused here
    /// too, or the note of what was decoded instead (for the report's cases).
    pub(crate) fn check(&mut self, id: &str, bytes: &[u8], python_error: &str) -> Option<Value> {
        self.cases += 1;
        match decode(bytes, DEFAULT_MAX_PIXELS) {
            Err(error) => {
                self.refused_both
                    .push(json!({"id": id, "rust": error.to_string(), "python": python_error}));
                None
            }
            Ok(image) => Some(json!({"id": id, "rust_decoded": image.dimensions(), "python": python_error})),
        }
    }

    /// The gate's row: every one refused by both.
    pub(crate) fn row(&self, figures: &mut Figures) {
        figures.row(
            Rule::Every,
            "undecodable files refused by both",
            format!("{}/{}", self.refused_both.len(), self.cases),
            "all",
            self.refused_both.len() == self.cases,
        );
    }

    /// For the report's details.
    pub(crate) fn refused(&self) -> &[Value] {
        &self.refused_both
    }
}

/// Per-format figures of the decodable golden images at one stage.
#[derive(Default)]
pub(crate) struct Stage {
    pub images: usize,
    pub identical: usize,
    pub max_level: u8,
}

impl Stage {
    fn add(&mut self, (count, max): (usize, u8)) {
        self.images += 1;
        self.identical += usize::from(count == 0);
        self.max_level = self.max_level.max(max);
    }

    fn exact(&self) -> bool {
        self.identical == self.images
    }

    pub(crate) fn json(&self) -> Value {
        json!({"images": self.images, "identical": self.identical, "max_level": self.max_level})
    }
}

/// The pixels of torchvision's evaluation transform, decoded (`decoded`) and resized and
/// cropped (`cropped`), against those Python wrote to `golden-pixels/`, by format.
#[derive(Default)]
pub(crate) struct TransformPixels {
    pub png_decoded: Stage,
    pub jpeg_decoded: Stage,
    pub png_cropped: Stage,
    pub jpeg_cropped: Stage,
}

impl TransformPixels {
    /// Decodes golden case `id` (its file's `bytes`) and compares it with Python's
    /// pixels; the (differing bytes, max level) of both stages, for the report's cases.
    pub(crate) fn add(
        &mut self,
        id: &str,
        jpeg: bool,
        bytes: &[u8],
        preprocessing: &Preprocessing,
        pixels_dir: &Path,
    ) -> Result<((usize, u8), (usize, u8))> {
        let image = decode(bytes, DEFAULT_MAX_PIXELS).with_context(|| format!("golden image {id}"))?;
        let read = |suffix: &str| {
            let path = pixels_dir.join(format!("{id}.{suffix}.rgb"));
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
        };
        let decoded = pixel_difference(image.as_raw(), &read("decoded")?);
        let cropped_bytes: Vec<u8> = preprocessing.pixels(&image).iter().copied().collect();
        let cropped = pixel_difference(&cropped_bytes, &read("cropped")?);
        let (decoded_stage, cropped_stage) = if jpeg {
            (&mut self.jpeg_decoded, &mut self.jpeg_cropped)
        } else {
            (&mut self.png_decoded, &mut self.png_cropped)
        };
        decoded_stage.add(decoded);
        cropped_stage.add(cropped);
        Ok((decoded, cropped))
    }

    /// The gate's rows: PNG identical at both stages, JPEG within [`JPEG_PIXEL_BOUND`].
    pub(crate) fn rows(&self, figures: &mut Figures) {
        figures.row(
            Rule::Every,
            "PNG decoded pixels identical to PIL's",
            format!("{}/{} images", self.png_decoded.identical, self.png_decoded.images),
            "all",
            self.png_decoded.exact() && self.png_decoded.images > 0,
        );
        figures.row(
            Rule::Every,
            "PNG pixels after resize and crop identical",
            format!("{}/{} images", self.png_cropped.identical, self.png_cropped.images),
            "all",
            self.png_cropped.exact() && self.png_cropped.images > 0,
        );
        figures.row(
            Rule::Every,
            "JPEG decoded pixels, max level difference",
            format!(
                "{} ({}/{} images identical)",
                self.jpeg_decoded.max_level, self.jpeg_decoded.identical, self.jpeg_decoded.images
            ),
            &format!("≤ {JPEG_PIXEL_BOUND}"),
            self.jpeg_decoded.max_level <= JPEG_PIXEL_BOUND && self.jpeg_cropped.max_level <= JPEG_PIXEL_BOUND,
        );
    }

    /// For the report's details.
    pub(crate) fn json(&self) -> (Value, Value) {
        (
            json!({"png": self.png_decoded.json(), "jpeg": self.jpeg_decoded.json()}),
            json!({"png": self.png_cropped.json(), "jpeg": self.jpeg_cropped.json()}),
        )
    }
}
