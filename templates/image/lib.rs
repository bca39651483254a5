#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! let model = {{ model.crate_name }}::load("artifacts/{{ model.name }}/onnx".as_ref())?;
//! let image = std::fs::read("photo.jpg")?;
//! for prediction in model.predict(&[&image])? {
//!     println!("{} ({:.3})", prediction.label, prediction.score);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use modelcrate_runtime::image_classification::{ImageClassifier, ImageClassifierSpec};
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::{LoadOptions, ModelEntry, ModelInfo, Preprocessing, Result, Task, TaskModel};

/// The model's name: its spec file, artifact folder and route.
pub const NAME: &str = "{{ model.name }}";
/// The shorter side of an image is resized to this many pixels…
pub const RESIZE: u32 = {{ image.resize }};
/// …then the centred square of this side is the model's input.
pub const IMAGE_SIZE: u32 = {{ image.crop }};
/// Per-channel (R, G, B) mean and standard deviation of the normalisation.
pub const MEAN: [f32; 3] = {{ image.mean }};
pub const STD: [f32; 3] = {{ image.std }};
/// The ONNX input the pixels go to, `[batch, 3, IMAGE_SIZE, IMAGE_SIZE]`.
pub const PIXELS_INPUT: &str = "{{ image.pixels_input }}";
/// The ONNX output this crate reads.
pub const LOGITS_OUTPUT: &str = "{{ model.logits_output }}";
pub const LABEL_COUNT: usize = {{ model.labels.len() }};

/// How an image becomes the model's input.
pub const PREPROCESSING: Preprocessing = Preprocessing { resize_shortest: RESIZE, crop: IMAGE_SIZE, mean: MEAN, std: STD };

{% import "shared/signature.rs" as signature %}
{% call signature::signature("SIGNATURE", "The ONNX signature this crate was generated from; [`load`] refuses any other.", model.inputs, model.outputs) %}{% endcall %}

{% include "shared/label_enum.rs" %}

/// One image's prediction: the top label, its softmax score, and every label's score by id.
pub type Prediction = modelcrate_runtime::classification::Prediction<Label, LABEL_COUNT>;

const SPEC: ImageClassifierSpec = ImageClassifierSpec {
    name: NAME,
    signature: SIGNATURE,
    pixels_input: PIXELS_INPUT,
    logits_output: LOGITS_OUTPUT,
    labels: &Label::NAMES,
    preprocessing: PREPROCESSING,
};

/// The loaded model. Cheap to share: clone an `Arc` of it across threads.
pub struct Model {
    classifier: ImageClassifier,
}

/// Loads the serving variant of `dir` (the one `dir/serving.json` names; `model.onnx`
/// without it), checking it, `config.json` and `preprocessor_config.json` against this crate.
pub fn load(dir: &Path) -> Result<Model> {
    load_with(dir, &LoadOptions::default())
}

/// Loads with a chosen variant (`LoadOptions::variant`: any of `dir/variants.json`, which
/// share this crate's signature) and thread layout.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<Model> {
    Ok(Model { classifier: ImageClassifier::load(dir, SPEC, options)? })
}

impl Model {
    /// Top label per image (PNG or JPEG bytes), with softmax scores. An image that cannot
    /// be decoded is an [`modelcrate_runtime::Error::Image`] naming the problem.
    pub fn predict(&self, images: &[&[u8]]) -> Result<Vec<Prediction>> {
        self.classifier.predict(images)
    }

    /// Raw logits per image, by label id.
    pub fn logits(&self, images: &[&[u8]]) -> Result<Vec<[f32; LABEL_COUNT]>> {
        self.classifier.logits_fixed(images)
    }

    /// What was loaded: name, task, variant (and why it serves), signature.
    pub fn info(&self) -> &ModelInfo {
        self.classifier.info()
    }
}

/// The model card (`README.md`, Markdown): what the server shows at `/models/{name}`.
pub const CARD: &str = include_str!("../README.md");

/// This model as the umbrella crate lists it for the server.
pub const ENTRY: ModelEntry = ModelEntry { name: NAME, task: Task::ImageClassification, card: CARD, load: load_entry };

fn load_entry(dir: &Path, options: &LoadOptions) -> Result<Box<dyn TaskModel>> {
    Ok(Box::new(load_with(dir, options)?.classifier))
}
