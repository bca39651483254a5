#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! let model = release_topics::load("artifacts/release-topics/onnx".as_ref())?;
//! for prediction in model.predict(&["Some text to classify"])? {
//!     println!("{} ({:.3})", prediction.label, prediction.score);
//! }
//! # Ok::<(), modelcrate_runtime::Error>(())
//! ```

use std::path::Path;

use modelcrate_runtime::classification::{ProblemType, TextClassifier, TextClassifierSpec};
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::{ClassificationFunction, LoadOptions, ModelEntry, ModelInfo, Result, Task, TaskModel};

/// The model's name: its spec file, artifact folder and route.
pub const NAME: &str = "release-topics";
/// Longest input in tokens, special tokens included; longer texts are truncated.
pub const MAX_LENGTH: usize = 128;
pub const PROBLEM_TYPE: ProblemType = ProblemType::MultiLabel;
/// ONNX input names, in the graph's order.
pub const INPUT_NAMES: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];
/// The ONNX output this crate reads.
pub const LOGITS_OUTPUT: &str = "logits";
pub const LABEL_COUNT: usize = 5;

/// The ONNX signature this crate was generated from; [`load`] refuses any other.
pub const SIGNATURE: Signature = Signature {
    inputs: &[
        TensorSpec {
            name: "input_ids",
            dtype: DType::Int64,
            dims: &[None, None],
        },
        TensorSpec {
            name: "attention_mask",
            dtype: DType::Int64,
            dims: &[None, None],
        },
        TensorSpec {
            name: "token_type_ids",
            dtype: DType::Int64,
            dims: &[None, None],
        },
    ],
    outputs: &[TensorSpec {
        name: "logits",
        dtype: DType::Float32,
        dims: &[None, Some(5)],
    }],
};

/// The model's labels, in `config.json` id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Label {
    /// `dependency` (id 0)
    #[serde(rename = "dependency")]
    Dependency = 0,
    /// `problem` (id 1)
    #[serde(rename = "problem")]
    Problem = 1,
    /// `release` (id 2)
    #[serde(rename = "release")]
    Release = 2,
    /// `security` (id 3)
    #[serde(rename = "security")]
    Security = 3,
    /// `upgrade` (id 4)
    #[serde(rename = "upgrade")]
    Upgrade = 4,
}

impl Label {
    /// Every label, in id order.
    pub const ALL: [Label; LABEL_COUNT] = [
        Label::Dependency,
        Label::Problem,
        Label::Release,
        Label::Security,
        Label::Upgrade,
    ];
    /// Label strings in id order, as `config.json`'s `id2label` has them.
    pub const NAMES: [&str; LABEL_COUNT] = ["dependency", "problem", "release", "security", "upgrade"];

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

/// One text's prediction: the top label, its score, and every label's score by id.
pub type Prediction = modelcrate_runtime::classification::Prediction<Label, LABEL_COUNT>;

const SPEC: TextClassifierSpec = TextClassifierSpec {
    name: NAME,
    signature: SIGNATURE,
    logits_output: LOGITS_OUTPUT,
    labels: &Label::NAMES,
    max_length: MAX_LENGTH,
    problem_type: PROBLEM_TYPE,
    setfit: None,
};

/// The loaded model. Cheap to share: clone an `Arc` of it across threads.
pub struct Model {
    classifier: TextClassifier,
}

/// Loads the serving variant of `dir` (the one `dir/serving.json` names; `model.onnx`
/// without it) with its tokenizer and config, checking them against this crate.
pub fn load(dir: &Path) -> Result<Model> {
    load_with(dir, &LoadOptions::default())
}

/// Loads with a chosen variant (`LoadOptions::variant`: any of `dir/variants.json`, which
/// share this crate's signature) and thread layout.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<Model> {
    Ok(Model {
        classifier: TextClassifier::load(dir, SPEC, options)?,
    })
}

impl Model {
    /// Top label per text, scored with the model's default function (multi_label_classification).
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        self.classifier.predict(texts, None)
    }

    /// As [`Model::predict`], with the pipeline's `function_to_apply`.
    pub fn predict_with(&self, texts: &[&str], function: ClassificationFunction) -> Result<Vec<Prediction>> {
        self.classifier.predict(texts, Some(function))
    }

    /// The labels that apply to each text: those scoring at least `threshold` after the
    /// sigmoid (0.5 is the decision the reported exact-match accuracy uses), in id order.
    pub fn labels(&self, texts: &[&str], threshold: f32) -> Result<Vec<Vec<Label>>> {
        Ok(self
            .predict(texts)?
            .iter()
            .map(|prediction| {
                Label::ALL
                    .into_iter()
                    .filter(|label| prediction.scores[label.id()] >= threshold)
                    .collect()
            })
            .collect())
    }

    /// Raw logits per text, by label id.
    pub fn logits(&self, texts: &[&str]) -> Result<Vec<[f32; LABEL_COUNT]>> {
        self.classifier.logits_fixed(texts)
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
    task: Task::TextClassification,
    card: CARD,
    load: load_entry,
};

fn load_entry(dir: &Path, options: &LoadOptions) -> Result<Box<dyn TaskModel>> {
    Ok(Box::new(load_with(dir, options)?.classifier))
}
