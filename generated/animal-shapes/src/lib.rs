#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! let model = animal_shapes::load("artifacts/animal-shapes/onnx".as_ref())?;
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
pub const NAME: &str = "animal-shapes";
/// The shorter side of an image is resized to this many pixels…
pub const RESIZE: u32 = 256;
/// …then the centred square of this side is the model's input.
pub const IMAGE_SIZE: u32 = 224;
/// Per-channel (R, G, B) mean and standard deviation of the normalisation.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The ONNX input the pixels go to, `[batch, 3, IMAGE_SIZE, IMAGE_SIZE]`.
pub const PIXELS_INPUT: &str = "pixel_values";
/// The ONNX output this crate reads.
pub const LOGITS_OUTPUT: &str = "logits";
pub const LABEL_COUNT: usize = 10;

/// How an image becomes the model's input.
pub const PREPROCESSING: Preprocessing = Preprocessing {
    resize_shortest: RESIZE,
    crop: IMAGE_SIZE,
    mean: MEAN,
    std: STD,
};

/// The ONNX signature this crate was generated from; [`load`] refuses any other.
pub const SIGNATURE: Signature = Signature {
    inputs: &[TensorSpec {
        name: "pixel_values",
        dtype: DType::Float32,
        dims: &[None, Some(3), Some(224), Some(224)],
    }],
    outputs: &[TensorSpec {
        name: "logits",
        dtype: DType::Float32,
        dims: &[None, Some(10)],
    }],
};

/// The model's labels, in `config.json` id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Label {
    /// `bear` (id 0)
    #[serde(rename = "bear")]
    Bear = 0,
    /// `bird` (id 1)
    #[serde(rename = "bird")]
    Bird = 1,
    /// `cat` (id 2)
    #[serde(rename = "cat")]
    Cat = 2,
    /// `cow` (id 3)
    #[serde(rename = "cow")]
    Cow = 3,
    /// `dog` (id 4)
    #[serde(rename = "dog")]
    Dog = 4,
    /// `elephant` (id 5)
    #[serde(rename = "elephant")]
    Elephant = 5,
    /// `giraffe` (id 6)
    #[serde(rename = "giraffe")]
    Giraffe = 6,
    /// `horse` (id 7)
    #[serde(rename = "horse")]
    Horse = 7,
    /// `sheep` (id 8)
    #[serde(rename = "sheep")]
    Sheep = 8,
    /// `zebra` (id 9)
    #[serde(rename = "zebra")]
    Zebra = 9,
}

impl Label {
    /// Every label, in id order.
    pub const ALL: [Label; LABEL_COUNT] = [
        Label::Bear,
        Label::Bird,
        Label::Cat,
        Label::Cow,
        Label::Dog,
        Label::Elephant,
        Label::Giraffe,
        Label::Horse,
        Label::Sheep,
        Label::Zebra,
    ];
    /// Label strings in id order, as `config.json`'s `id2label` has them.
    pub const NAMES: [&str; LABEL_COUNT] = [
        "bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra",
    ];

    /// The id in `config.json`, which is also the logit's column.
    pub const fn id(self) -> usize {
        self as usize
    }

    pub fn from_id(id: usize) -> Option<Self> {
        Self::ALL.get(id).copied()
    }

    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl modelcrate_runtime::Labels for Label {
    const NAMES: &'static [&'static str] = &Label::NAMES;

    fn from_id(id: usize) -> Option<Self> {
        Label::from_id(id)
    }

    fn id(self) -> usize {
        Label::id(self)
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Label {
    type Err = modelcrate_runtime::labels::UnknownLabel;

    /// A label string (a user's, or a reference file's), as `config.json` spells it.
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        modelcrate_runtime::labels::parse_label(text, &Self::NAMES).map(|id| Self::ALL[id])
    }
}

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
    Ok(Model {
        classifier: ImageClassifier::load(dir, SPEC, options)?,
    })
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
pub const ENTRY: ModelEntry = ModelEntry {
    name: NAME,
    task: Task::ImageClassification,
    card: CARD,
    load: load_entry,
};

fn load_entry(dir: &Path, options: &LoadOptions) -> Result<Box<dyn TaskModel>> {
    Ok(Box::new(load_with(dir, options)?.classifier))
}
