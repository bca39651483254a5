//! What the export step writes beside `model.onnx` for the Rust side to read:
//! `signature.json` (and a SetFit head's `head_signature.json`), `pooling.json` and an
//! image model's `preprocessor_config.json`.

use serde::{Deserialize, Serialize};

/// `signature.json`: the ONNX graph's inputs and outputs, as the export step read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureFile {
    pub opset: u32,
    pub inputs: Vec<TensorFile>,
    pub outputs: Vec<TensorFile>,
}

/// One input or output of `signature.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorFile {
    pub name: String,
    /// `float32`, `int64`, `int32`, …
    pub dtype: String,
    pub dims: Vec<Dim>,
}

/// A dimension: fixed, or dynamic under the exporter's name for it (`batch_size`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    Fixed(i64),
    Named(String),
}

impl Dim {
    /// The fixed size, `None` where dynamic.
    pub fn fixed(&self) -> Option<i64> {
        match self {
            Self::Fixed(size) => Some(*size),
            Self::Named(_) => None,
        }
    }
}

/// How token vectors become one vector (sentence-transformers' `Pooling` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean of the token vectors under the attention mask.
    Mean,
    /// The first token's vector (`[CLS]`).
    Cls,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Cls => "cls",
        }
    }
}

/// `pooling.json`, as the export step writes it from a sentence-transformers checkpoint's
/// modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolingFile {
    pub mode: Pooling,
    /// Whether a `Normalize` module follows the pooling.
    pub normalize: bool,
    pub dimension: usize,
}

/// The parts of a Hugging Face image processor's `preprocessor_config.json` an image
/// model's crate is generated from and checked against at load (other keys are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessorConfig {
    pub size: ShortestEdge,
    pub crop_size: CropSize,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
    /// PIL's number for the resampling filter (2: bilinear).
    pub resample: u32,
    pub do_convert_rgb: bool,
}

/// PIL's number for its bilinear filter, as `preprocessor_config.json` records `resample`:
/// the one filter the runtime computes.
pub const PIL_BILINEAR: u32 = 2;
/// The gray a letterbox pads with (YOLO's): the one `pad_value` the runtime pads with.
pub const LETTERBOX_PAD_VALUE: u8 = 114;
/// The cap on a detector's raw log-distance before it is exponentiated (`config.json`'s
/// `max_log_distance`), as training and the runtime's decoding apply it.
pub const MAX_LOG_DISTANCE: f64 = 6.0;

/// The parts of a detector's `preprocessor_config.json` (YOLO's letterbox, in a Hugging
/// Face image processor's terms) its crate is generated from and checked against at load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LetterboxConfig {
    /// The longer side is scaled to this (the shorter keeps the aspect ratio)…
    pub size: LongestEdge,
    /// …and the image centred on a canvas of this size, filled with `pad_value`.
    pub pad_size: CropSize,
    pub pad_value: u8,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
    /// PIL's number for the resampling filter (2: bilinear).
    pub resample: u32,
    pub do_convert_rgb: bool,
}

/// What a detector's `config.json` adds to its labels: the grid its outputs are laid on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// The side of the square input.
    pub image_size: u32,
    /// Pixels per grid cell: the outputs hold one row per cell, `(image_size / stride)²`.
    pub stride: u32,
    /// The cap on a raw log-distance before it is exponentiated.
    pub max_log_distance: f64,
}

/// What an image–text model's `config.json` says of its two towers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageTextConfig {
    /// The length of both towers' embeddings.
    pub projection_dim: usize,
    /// The side of the image tower's square input.
    pub image_size: u32,
    /// Tokens the text tower reads of a text.
    pub max_length: usize,
    /// CLIP's temperature: zero-shot logits are `exp(logit_scale)` × the similarity.
    pub logit_scale: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongestEdge {
    pub longest_edge: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortestEdge {
    pub shortest_edge: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropSize {
    pub height: u32,
    pub width: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_dimensions_keep_their_names() {
        let json = r#"{"name": "logits", "dtype": "float32", "dims": ["batch_size", 5]}"#;
        let tensor: TensorFile = serde_json::from_str(json).unwrap();
        assert_eq!(tensor.dims, vec![Dim::Named("batch_size".into()), Dim::Fixed(5)]);
        assert_eq!(
            tensor.dims.iter().map(Dim::fixed).collect::<Vec<_>>(),
            vec![None, Some(5)]
        );
    }
}
