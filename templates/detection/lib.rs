#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! let model = {{ model.crate_name }}::load("artifacts/{{ model.name }}/onnx".as_ref())?;
//! let image = std::fs::read("scene.png")?;
//! for found in &model.detect(&[&image])?[0] {
//!     println!("{} ({:.3}) at {:?}", found.label, found.score, found.bbox);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use modelcrate_runtime::detection::{DEFAULT_DECODE, DecodeOptions, Letterboxing};
use modelcrate_runtime::object_detection::{DetectorOutputs, ObjectDetector, ObjectDetectorSpec};
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::{LoadOptions, ModelEntry, ModelInfo, Result, Task, TaskModel};

/// The model's name: its spec file, artifact folder and route.
pub const NAME: &str = "{{ model.name }}";
/// Every image is letterboxed onto a square of this side: the model's input.
pub const IMAGE_SIZE: u32 = {{ detection.size }};
/// Pixels per grid cell: the outputs hold one row per cell, `(IMAGE_SIZE / STRIDE)²`.
pub const STRIDE: u32 = {{ detection.stride }};
/// Per-channel (R, G, B) mean and standard deviation of the normalisation.
pub const MEAN: [f32; 3] = {{ detection.mean }};
pub const STD: [f32; 3] = {{ detection.std }};
/// The ONNX input the pixels go to, `[batch, 3, IMAGE_SIZE, IMAGE_SIZE]`.
pub const PIXELS_INPUT: &str = "{{ detection.pixels_input }}";
/// The ONNX outputs this crate reads.
pub const OUTPUTS: DetectorOutputs = DetectorOutputs {
    distances: "{{ detection.distances_output }}",
    centerness: "{{ detection.centerness_output }}",
    classes: "{{ detection.classes_output }}",
};
pub const LABEL_COUNT: usize = {{ model.labels.len() }};

/// How an image becomes the model's input.
pub const LETTERBOXING: Letterboxing = Letterboxing { size: IMAGE_SIZE, mean: MEAN, std: STD };

{% import "shared/signature.rs" as signature %}
{% call signature::signature("SIGNATURE", "The ONNX signature this crate was generated from; [`load`] refuses any other.", model.inputs, model.outputs) %}{% endcall %}

{% include "shared/label_enum.rs" %}

/// One detected object: its label, its score and its box in the image's pixels.
pub type Detection = modelcrate_runtime::object_detection::Detection<Label>;

const SPEC: ObjectDetectorSpec = ObjectDetectorSpec {
    name: NAME,
    signature: SIGNATURE,
    pixels_input: PIXELS_INPUT,
    outputs: OUTPUTS,
    labels: &Label::NAMES,
    letterboxing: LETTERBOXING,
    stride: STRIDE,
};

/// The loaded model. Cheap to share: clone an `Arc` of it across threads.
pub struct Model {
    detector: ObjectDetector,
}

/// Loads the serving variant of `dir` (the one `dir/serving.json` names; `model.onnx`
/// without it), checking it, `config.json` and `preprocessor_config.json` against this crate.
pub fn load(dir: &Path) -> Result<Model> {
    load_with(dir, &LoadOptions::default())
}

/// Loads with a chosen variant (`LoadOptions::variant`: any of `dir/variants.json`, which
/// share this crate's signature) and thread layout.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<Model> {
    Ok(Model { detector: ObjectDetector::load(dir, SPEC, options)? })
}

impl Model {
    /// The objects in each image (PNG or JPEG bytes), best first, with the pipeline's
    /// defaults: threshold 0.5, NMS at IoU 0.5. An image that cannot be decoded is an
    /// [`modelcrate_runtime::Error::Image`] naming the problem.
    pub fn detect(&self, images: &[&[u8]]) -> Result<Vec<Vec<Detection>>> {
        self.detector.detect(images, DEFAULT_DECODE)
    }

    /// [`Model::detect`] with another score threshold or NMS IoU.
    pub fn detect_with(&self, images: &[&[u8]], options: DecodeOptions) -> Result<Vec<Vec<Detection>>> {
        self.detector.detect(images, options)
    }

    /// What was loaded: name, task, variant (and why it serves), signature.
    pub fn info(&self) -> &ModelInfo {
        self.detector.info()
    }
}

/// The model card (`README.md`, Markdown): what the server shows at `/models/{name}`.
pub const CARD: &str = include_str!("../README.md");

/// This model as the umbrella crate lists it for the server.
pub const ENTRY: ModelEntry = ModelEntry { name: NAME, task: Task::ObjectDetection, card: CARD, load: load_entry };

fn load_entry(dir: &Path, options: &LoadOptions) -> Result<Box<dyn TaskModel>> {
    Ok(Box::new(load_with(dir, options)?.detector))
}
