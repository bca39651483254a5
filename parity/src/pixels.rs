//! What an image model's gate checks of its files before its outputs: the pixels decoded
//! (and prepared) here against PIL's, and that a file PIL cannot open is refused here too.
//! Shared by the image classifier's checks (`image.rs`) and the detector's (`detection.rs`).

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
