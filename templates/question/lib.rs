#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! let model = {{ model.crate_name }}::load("artifacts/{{ model.name }}/onnx".as_ref())?;
//! let context = "PostgreSQL 16.2 fixes the memory leak in the query planner.";
//! let answer = model.answer("Which release fixes the memory leak?", context)?;
//! println!("{} at {}..{} ({:.3})", answer.answer, answer.start, answer.end, answer.score);
//! # Ok::<(), modelcrate_runtime::Error>(())
//! ```

use std::path::Path;

use modelcrate_runtime::question_answering::{QuestionAnswerer, QuestionAnswererSpec};
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::{Answer, AnswerOptions, Error, LoadOptions, ModelEntry, ModelInfo, Result, Task, TaskModel};

/// The model's name: its spec file, artifact folder and route.
pub const NAME: &str = "{{ model.name }}";
/// Tokens of a window by default, question and special tokens included: the tokenizer's
/// max length (the pipeline's `max_seq_len`).
pub const MAX_LENGTH: usize = {{ model.max_length }};
/// The model's position embeddings: the longest window it can take.
pub const MAX_POSITIONS: usize = {{ question.max_positions }};
/// ONNX input names, in the graph's order.
pub const INPUT_NAMES: [&str; {{ model.inputs.len() }}] = [{% for input in model.inputs %}"{{ input.name }}", {% endfor %}];
/// The ONNX outputs of `[batch, tokens]` start and end logits this crate reads.
pub const START_OUTPUT: &str = "{{ question.start_output }}";
pub const END_OUTPUT: &str = "{{ question.end_output }}";

{% import "shared/signature.rs" as signature %}
{% call signature::signature("SIGNATURE", "The ONNX signature this crate was generated from; [`load`] refuses any other.", model.inputs, model.outputs) %}{% endcall %}

const SPEC: QuestionAnswererSpec = QuestionAnswererSpec {
    name: NAME,
    signature: SIGNATURE,
    start_output: START_OUTPUT,
    end_output: END_OUTPUT,
    max_length: MAX_LENGTH,
    max_positions: MAX_POSITIONS,
};

/// The loaded model. Cheap to share: clone an `Arc` of it across threads.
pub struct Model {
    answerer: QuestionAnswerer,
}

/// Loads the serving variant of `dir` (the one `dir/serving.json` names; `model.onnx`
/// without it) with its tokenizer, checking it against this crate.
pub fn load(dir: &Path) -> Result<Model> {
    load_with(dir, &LoadOptions::default())
}

/// Loads with a chosen variant (`LoadOptions::variant`: any of `dir/variants.json`, which
/// share this crate's signature) and thread layout.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<Model> {
    Ok(Model { answerer: QuestionAnswerer::load(dir, SPEC, options)? })
}

impl Model {
    /// The best answer to `question` from `context` with the pipeline's defaults: a span of
    /// the context (`answer == context` characters `start..end`).
    pub fn answer(&self, question: &str, context: &str) -> Result<Answer> {
        self.answers(&[(question, context)], &AnswerOptions::default())?
            .pop()
            .and_then(|mut answers| (!answers.is_empty()).then(|| answers.remove(0)))
            .ok_or_else(|| Error::Input("the context holds no span that can answer the question".into()))
    }

    /// The answers to each (question, context) pair under `options` (the pipeline's
    /// `top_k`, `doc_stride`, `max_answer_len`, `max_seq_len`, `max_question_len`,
    /// `handle_impossible_answer`, `align_to_words`), best first.
    pub fn answers(&self, pairs: &[(&str, &str)], options: &AnswerOptions) -> Result<Vec<Vec<Answer>>> {
        self.answerer.answer(pairs, options)
    }

    /// What was loaded: name, task, variant (and why it serves), signature.
    pub fn info(&self) -> &ModelInfo {
        self.answerer.info()
    }
}

/// The model card (`README.md`, Markdown): what the server shows at `/models/{name}`.
pub const CARD: &str = include_str!("../README.md");

/// This model as the umbrella crate lists it for the server.
pub const ENTRY: ModelEntry = ModelEntry { name: NAME, task: Task::QuestionAnswering, card: CARD, load: load_entry };

fn load_entry(dir: &Path, options: &LoadOptions) -> Result<Box<dyn TaskModel>> {
    Ok(Box::new(load_with(dir, options)?.answerer))
}
