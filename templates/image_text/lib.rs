#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! let model = {{ model.crate_name }}::load("artifacts/{{ model.name }}/onnx".as_ref())?;
//! let image = std::fs::read("photo.jpg")?;
//! let scores = model.zero_shot(&[&image], &["cat", "dog", "horse"], {{ model.crate_name }}::DEFAULT_HYPOTHESIS_TEMPLATE)?;
//! println!("cat {:.3}, dog {:.3}, horse {:.3}", scores[0][0], scores[0][1], scores[0][2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

pub use modelcrate_runtime::image_text::{DEFAULT_HYPOTHESIS_TEMPLATE, ImageEmbedding, TextEmbedding, similarity};
use modelcrate_runtime::image_text::{ImageTextModel, ImageTextSpec};
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::{LoadOptions, ModelEntry, ModelInfo, Preprocessing, Result, Task, TaskModel};

/// The model's name: its spec file, artifact folder and route.
pub const NAME: &str = "{{ model.name }}";
/// The shorter side of an image is resized to this many pixels…
pub const RESIZE: u32 = {{ image_text.image.resize }};
/// …then the centred square of this side is the image tower's input.
pub const IMAGE_SIZE: u32 = {{ image_text.image.crop }};
/// Per-channel (R, G, B) mean and standard deviation of the normalisation.
pub const MEAN: [f32; 3] = {{ image_text.image.mean }};
pub const STD: [f32; 3] = {{ image_text.image.std }};
/// Tokens the text tower reads of a text; longer texts are cut there.
pub const MAX_LENGTH: usize = {{ model.max_length }};
/// The length of both towers' embeddings.
pub const DIMENSION: usize = {{ image_text.dimension }};
/// The image tower's input, `[batch, 3, IMAGE_SIZE, IMAGE_SIZE]`, and its output.
pub const PIXELS_INPUT: &str = "{{ image_text.image.pixels_input }}";
pub const IMAGE_OUTPUT: &str = "{{ image_text.image_output }}";
/// The text tower's output.
pub const TEXT_OUTPUT: &str = "{{ image_text.text_output }}";

/// How an image becomes the image tower's input.
pub const PREPROCESSING: Preprocessing = Preprocessing { resize_shortest: RESIZE, crop: IMAGE_SIZE, mean: MEAN, std: STD };

{% import "shared/signature.rs" as signature %}
{% call signature::signature("SIGNATURE", "The image tower's ONNX signature this crate was generated from; [`load`] refuses any other.", model.inputs, model.outputs) %}{% endcall %}

{% call signature::signature("TEXT_SIGNATURE", "The text tower's ONNX signature this crate was generated from; [`load`] refuses any other.", image_text.text_inputs, image_text.text_outputs) %}{% endcall %}

const SPEC: ImageTextSpec = ImageTextSpec {
    name: NAME,
    signature: SIGNATURE,
    text_signature: TEXT_SIGNATURE,
    pixels_input: PIXELS_INPUT,
    image_output: IMAGE_OUTPUT,
    text_output: TEXT_OUTPUT,
    dimension: DIMENSION,
    max_length: MAX_LENGTH,
    preprocessing: PREPROCESSING,
};

/// The loaded model. Cheap to share: clone an `Arc` of it across threads.
pub struct Model {
    towers: ImageTextModel,
}

/// Loads the serving variant of `dir` (the pair of towers `dir/serving.json` names;
/// `model.onnx` and `text_model.onnx` without it), checking both, `config.json` and
/// `preprocessor_config.json` against this crate.
pub fn load(dir: &Path) -> Result<Model> {
    load_with(dir, &LoadOptions::default())
}

/// Loads with a chosen variant (`LoadOptions::variant`: any of `dir/variants.json`, whose
/// towers share this crate's signatures) and thread layout.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<Model> {
    Ok(Model { towers: ImageTextModel::load(dir, SPEC, options)? })
}

impl Model {
    /// Each image's embedding (PNG or JPEG bytes). An image that cannot be decoded is an
    /// [`modelcrate_runtime::Error::Image`] naming the problem.
    pub fn embed_images(&self, images: &[&[u8]]) -> Result<Vec<ImageEmbedding>> {
        self.towers.embed_images(images)
    }

    /// Each text's embedding, in the images' space.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<TextEmbedding>> {
        self.towers.embed_texts(texts)
    }

    /// Zero-shot classification, as the pipeline's: per image, the softmax over
    /// `candidate_labels` (in their order) of the temperature times the image's similarity
    /// to each label put in `template` (one `{}`, such as [`DEFAULT_HYPOTHESIS_TEMPLATE`]).
    pub fn zero_shot(&self, images: &[&[u8]], candidate_labels: &[&str], template: &str) -> Result<Vec<Vec<f32>>> {
        self.towers.zero_shot(images, candidate_labels, template)
    }

    /// What was loaded: name, task, variant (and why it serves), signatures, temperature.
    pub fn info(&self) -> &ModelInfo {
        self.towers.info()
    }
}

/// The model card (`README.md`, Markdown): what the server shows at `/models/{name}`.
pub const CARD: &str = include_str!("../README.md");

/// This model as the umbrella crate lists it for the server.
pub const ENTRY: ModelEntry = ModelEntry { name: NAME, task: Task::ZeroShotImageClassification, card: CARD, load: load_entry };

fn load_entry(dir: &Path, options: &LoadOptions) -> Result<Box<dyn TaskModel>> {
    Ok(Box::new(load_with(dir, options)?.towers))
}
