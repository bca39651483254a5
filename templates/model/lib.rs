#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! let model = {{ model.crate_name }}::load("artifacts/{{ model.name }}/onnx".as_ref())?;
//! for prediction in model.predict(&["Some text to classify"])? {
//!     println!("{} ({:.3})", prediction.label, prediction.score);
//! }
//! # Ok::<(), modelcrate_runtime::Error>(())
//! ```

use std::path::Path;

use modelcrate_runtime::classification::{ProblemType, {% if model.setfit.is_some() %}SetFitHeadSpec, {% endif %}TextClassifier, TextClassifierSpec};
{%- if model.setfit.is_some() %}
use modelcrate_runtime::embedding::{Pooler, Pooling};
{%- endif %}
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::{ClassificationFunction, LoadOptions, ModelEntry, ModelInfo, Result, Task, TaskModel};

/// The model's name: its spec file, artifact folder and route.
pub const NAME: &str = "{{ model.name }}";
/// Longest input in tokens, special tokens included; longer texts are truncated.
pub const MAX_LENGTH: usize = {{ model.max_length }};
pub const PROBLEM_TYPE: ProblemType = ProblemType::{{ model.problem_type_variant }};
/// ONNX input names, in the graph's order.
pub const INPUT_NAMES: [&str; {{ model.inputs.len() }}] = [{% for input in model.inputs %}"{{ input.name }}", {% endfor %}];
{%- if let Some(setfit) = model.setfit %}
/// The head's output this crate reads: the decision function, one logit per label.
pub const LOGITS_OUTPUT: &str = "{{ model.logits_output }}";
pub const LABEL_COUNT: usize = {{ model.labels.len() }};
/// The body's output of token vectors, pooled into the embedding the head takes.
pub const HIDDEN_OUTPUT: &str = "{{ setfit.body.hidden_output }}";
/// Length of the body's embedding.
pub const DIMENSION: usize = {{ setfit.body.dimension }};
/// How the body's token vectors become one vector.
pub const POOLING: Pooling = Pooling::{{ setfit.body.pooling_variant }};
/// Whether the body L2-normalises its embedding before the head sees it.
pub const NORMALIZE: bool = {{ setfit.body.normalize }};
/// The head's input: `[batch, DIMENSION]` embeddings.
pub const EMBEDDING_INPUT: &str = "{{ setfit.embedding_input }}";
{%- else %}
/// The ONNX output this crate reads.
pub const LOGITS_OUTPUT: &str = "{{ model.logits_output }}";
pub const LABEL_COUNT: usize = {{ model.labels.len() }};
{%- endif %}

{% import "shared/signature.rs" as signature %}
{% call signature::signature("SIGNATURE", "The ONNX signature this crate was generated from; [`load`] refuses any other.", model.inputs, model.outputs) %}{% endcall %}
{%- if let Some(setfit) = model.setfit %}

{% call signature::signature("HEAD_SIGNATURE", "The head's ONNX signature (`head.onnx`); [`load`] refuses any other.", setfit.head_inputs.as_slice(), setfit.head_outputs.as_slice()) %}{% endcall %}
{%- endif %}

{% include "shared/label_enum.rs" %}

/// One text's prediction: the top label, its score, and every label's score by id.
pub type Prediction = modelcrate_runtime::classification::Prediction<Label, LABEL_COUNT>;

const SPEC: TextClassifierSpec = TextClassifierSpec {
    name: NAME,
    signature: SIGNATURE,
    logits_output: LOGITS_OUTPUT,
    labels: &Label::NAMES,
    max_length: MAX_LENGTH,
    problem_type: PROBLEM_TYPE,
{%- if model.setfit.is_some() %}
    setfit: Some(SetFitHeadSpec {
        body: Pooler { hidden_output: HIDDEN_OUTPUT, dimension: DIMENSION, pooling: POOLING, normalize: NORMALIZE },
        signature: HEAD_SIGNATURE,
        embedding_input: EMBEDDING_INPUT,
    }),
{%- else %}
    setfit: None,
{%- endif %}
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
    Ok(Model { classifier: TextClassifier::load(dir, SPEC, options)? })
}

impl Model {
    /// Top label per text, scored with the model's default function ({{ model.problem_type }}).
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        self.classifier.predict(texts, None)
    }

    /// As [`Model::predict`], with the pipeline's `function_to_apply`.
    pub fn predict_with(&self, texts: &[&str], function: ClassificationFunction) -> Result<Vec<Prediction>> {
        self.classifier.predict(texts, Some(function))
    }

{%- if model.problem_type_variant == "MultiLabel" %}

    /// The labels that apply to each text: those scoring at least `threshold` after the
    /// sigmoid (0.5 is the decision the reported exact-match accuracy uses), in id order.
    pub fn labels(&self, texts: &[&str], threshold: f32) -> Result<Vec<Vec<Label>>> {
        Ok(self
            .predict(texts)?
            .iter()
            .map(|prediction| Label::ALL.into_iter().filter(|label| prediction.scores[label.id()] >= threshold).collect())
            .collect())
    }
{%- endif %}

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
pub const ENTRY: ModelEntry = ModelEntry { name: NAME, task: Task::TextClassification, card: CARD, load: load_entry };

fn load_entry(dir: &Path, options: &LoadOptions) -> Result<Box<dyn TaskModel>> {
    Ok(Box::new(load_with(dir, options)?.classifier))
}
