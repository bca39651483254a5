//! The parity gate: whether a loaded variant of a generated model predicts what PyTorch
//! predicted, through the inference core the server calls (the same loading,
//! tokenization, batching engine, padding, post-processing and answer shapes; see
//! `through.rs`). `modelcrate-parity` runs it for every variant the pipeline made; the
//! server runs it as the canary of a hot reload, so that a model swaps in only if it
//! passes the very gate its variant passed in the pipeline.
//!
//! Every golden input is checked alone (a request of its own) and with all the others in
//! one request (length-sorted runs of up to 32, short and long texts padded together);
//! the test split goes through as many small requests at once, which the engine merges
//! into batches as it does under load. The report counts the requests, the inputs, and
//! those that ran beside inputs of other lengths.
//!
//! For a text classifier (`classification.rs`), against `golden/<name>/reference.json`
//! (written by `cargo xtask golden`):
//! token ids identical to Python's on every input; max |logit| difference ≤ 1e-4, each
//! input alone and all of them as one padded batch; the same top label on every input;
//! the pipeline's JSON for every recorded parameter set (labels and order identical,
//! scores within 1e-4); and, over the whole test split, the same accuracy as PyTorch.
//! FP32 and graph-optimized variants must meet those bounds; a dynamic INT8 variant must
//! keep token ids identical and lose at most 1.0 point of test accuracy, and its logit
//! drift, top-1 agreement and pipeline scores are reported.
//! A distilled student's variants (text and token classifiers, sentence-embedding models)
//! are held to the same bounds against the student's own PyTorch outputs, and every one
//! of them also to the task metric: at most 1.0 point below the teacher's FP32 on the test
//! split (accuracy; entity F1; recall@10).
//! For a sentence-embedding model (`embedding.rs`): token ids identical; every golden
//! embedding, alone and batched, within cosine ≥ 0.99999 and max |diff| ≤ 1e-5 of
//! `SentenceTransformer.encode` (INT8: cosine ≥ 0.99, min and mean reported); retrieval
//! recall@1/@10 over the test split equal to PyTorch's (INT8: recall@10 at most 1.0 point
//! below).
//! For a token classifier (`token.rs`): token ids and character offsets identical; per-token
//! logits within 1e-4, alone and batched; the pipeline's entity lists for every recorded
//! aggregation strategy and `ignore_labels` identical (labels, offsets, words; scores
//! within 1e-4); entity F1 over the test split equal to PyTorch's (INT8: at most 1.0 point
//! below, the rest reported).
//! For a question-answering model (`question.rs`): every window's token ids identical;
//! start and end logits within 1e-4, alone and batched; the pipeline's answers for every
//! recorded call and each case's own parameters identical (spans, character offsets,
//! texts; scores within 1e-4); SQuAD exact match and F1 over the test split equal to
//! PyTorch's (INT8: F1 at most 1.0 point below, the rest reported).
//! For an image classifier (`image.rs`): decoded and resized pixels against PIL's (PNG
//! identical, JPEG within 8 levels), logits within 1e-4 on PNGs (JPEG decoding
//! differences reported and bounded), top labels identical, undecodable files refused by
//! both, and test-split accuracy equal to PyTorch's (INT8: at most 1.0 point below).
//! For an object detector (`detection.rs`): letterboxed pixels against PIL's (PNG
//! identical, JPEG within 8 levels), the same objects as PyTorch's on every golden image
//! (PNG: scores within 1e-4, boxes within 0.5 pixel, alone and in one request), undecodable
//! files refused by both, and mAP@0.5 and mAP@0.5:0.95 over the test scenes, computed as
//! Python computes them (`average_precision.rs`), within 0.001 of PyTorch's (INT8: at most
//! 1.0 point below).
//! For an image–text model (`image_text.rs`): the image tower's pixels as an image
//! classifier's; every golden image's and text's embedding within cosine ≥ 0.99999 of
//! PyTorch's, alone and in one request (INT8: reported); the zero-shot pipeline's answer
//! over the golden candidate labels (same labels in the same order, scores within 1e-4)
//! and its top label on every image; undecodable files refused by both; and zero-shot
//! accuracy over the test images with every held-out template equal to PyTorch's (INT8:
//! the mean at most 1.0 point below).

mod average_precision;
mod classification;
mod detection;
mod embedding;
mod image;
mod image_text;
mod pixels;
mod question;
mod recorded;
pub mod test_split;
mod through;
mod token;

/// Largest drop of the task metric (as a fraction) a distilled student's variant may show
/// against its teacher's FP32 on the test split.
const STUDENT_METRIC_DROP: f64 = 0.01;
/// Largest drop of the task metric (as a fraction) an INT8 variant may show against
/// PyTorch on the test split.
const INT8_METRIC_DROP: f64 = 0.01;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use modelcrate_runtime::{ModelInfo, Task, TaskModel};
pub use modelcrate_schema::Gate;
use modelcrate_schema::{ParityBatching, ParityMetric, ParitySummary};
use serde_json::Value;

use crate::through::Through;

/// When a row's bound applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Every variant must meet it.
    Every,
    /// Exact variants must meet it; for INT8 it is reported.
    Exact,
}

/// One check of the gate: what was measured, against which bound, and whether it passed.
#[derive(Debug, Clone)]
pub struct Row {
    pub check: String,
    pub figure: String,
    pub bound: String,
    pub pass: bool,
}

struct Figures {
    gate: Gate,
    failures: Vec<String>,
    rows: Vec<Row>,
}

impl Figures {
    fn row(&mut self, rule: Rule, check: &str, figure: String, bound: &str, pass: bool) {
        let (bound, pass) = match (rule, self.gate) {
            (Rule::Exact, Gate::Int8) => (format!("reported for INT8; FP32 bound {bound}"), true),
            _ => (bound.to_string(), pass),
        };
        if !pass {
            self.failures.push(format!("{check}: {figure} (bound {bound})"));
        }
        self.rows.push(Row {
            check: check.into(),
            figure,
            bound,
            pass,
        });
    }
}

impl Figures {
    /// The task metric on the test split against PyTorch's: an exact variant's must be
    /// `equal` (by the task's measure of it), an INT8 variant's at most 1.0 point below;
    /// `same_split` says whether both scored the same examples.
    fn test_metric(&mut self, check: &str, rust: f64, pytorch: f64, equal: bool, same_split: bool) {
        let (bound, held) = match self.gate {
            Gate::Exact => ("equal", equal),
            Gate::Int8 => (
                "at most 1.0 point below PyTorch",
                pytorch - rust <= INT8_METRIC_DROP + 1e-9,
            ),
        };
        self.row(
            Rule::Every,
            check,
            format!("Rust {rust:.4}, PyTorch {pytorch:.4}"),
            bound,
            same_split && held,
        );
    }

    /// A dynamically quantized variant's test metric with each input a request of its
    /// own: its outputs depend on their batch mates (activation ranges are taken over
    /// the padded batch), so what a client gets depends on how requests are batched.
    /// Reported beside the gated figure (full batches), never gated.
    fn alone_metric(&mut self, metric: &str, rust: f64, pytorch: f64) {
        if self.gate == Gate::Int8 {
            self.row(
                Rule::Every,
                &format!("test split {metric}, each input a request of its own"),
                format!("Rust {rust:.4}, PyTorch {pytorch:.4}"),
                "reported (INT8 depends on batch mates)",
                true,
            );
        }
    }

    /// A distilled student's test metric against its teacher's FP32 (from the student's
    /// reference): at most 1.0 point below, over as many examples (`same_split`).
    fn teacher_metric(&mut self, metric: &str, rust: f64, teacher: f64, same_split: bool) {
        self.row(
            Rule::Every,
            &format!("test split {metric} vs the teacher's FP32"),
            format!("Rust {rust:.4}, teacher {teacher:.4}"),
            "at most 1.0 point below the teacher",
            same_split && teacher - rust <= STUDENT_METRIC_DROP + 1e-9,
        );
    }

    /// Whether the INT8-only figures are taken.
    fn int8(&self) -> bool {
        self.gate == Gate::Int8
    }
}

/// Token ids of every golden text against Python's (`(id, ids)` per case, in order):
/// the row every variant of every task must pass. Returns the ids of mismatched cases.
async fn check_token_ids<'a>(
    through: &Through,
    texts: &[&str],
    golden: impl Iterator<Item = (&'a str, &'a [u32])>,
    figures: &mut Figures,
) -> Result<Vec<&'a str>> {
    let token_ids: Vec<Vec<u32>> = through
        .encode(texts)
        .await?
        .iter()
        .map(|encoding| encoding.get_ids().to_vec())
        .collect();
    let mismatched: Vec<&str> = golden
        .zip(&token_ids)
        .filter(|((_, python), rust)| python != &rust.as_slice())
        .map(|((id, _), _)| id)
        .collect();
    figures.row(
        Rule::Every,
        "token ids identical",
        format!("{}/{} inputs", texts.len() - mismatched.len(), texts.len()),
        "all",
        mismatched.is_empty(),
    );
    Ok(mismatched)
}

/// Max |difference| of a row of logits; infinite when the widths differ.
pub(crate) fn max_abs_difference(rust: &[f32], python: &[f64]) -> f64 {
    rust.iter()
        .zip(python)
        .map(|(r, p)| (f64::from(*r) - p).abs())
        .fold(0.0, f64::max)
        + if rust.len() == python.len() { 0.0 } else { f64::INFINITY }
}

/// What a task's check found, for the report.
pub struct Checked {
    pub checkpoint: String,
    /// The task metric on the test split, by which variants are compared.
    pub metric: ParityMetric,
    /// Task-independent headlines for `cargo xtask report`: drift, golden agreement,
    /// test-split agreement.
    pub summary: ParitySummary,
    pub details: Value,
}

/// A variant's gate, checked.
pub struct Outcome {
    pub gate: Gate,
    /// Every check, passed or not, in the order run.
    pub rows: Vec<Row>,
    /// The checks that failed, each with its figure and bound.
    pub failures: Vec<String>,
    pub checked: Checked,
    /// How the checked inputs went through the inference core.
    pub batching: ParityBatching,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Where the PyTorch outputs a loaded variant is held to are: the golden folder's
/// `reference.json`, or for a distilled student's variant the student's own,
/// `<artifacts>/<name>/student/reference.json` (written by the `student-golden` step, with
/// the teacher's test metric in it).
pub fn reference_path(model: &ModelInfo, name: &str, golden: &Path, artifacts: &Path) -> std::path::PathBuf {
    match model.variant.student {
        Some(_) => artifacts.join(name).join("student").join("reference.json"),
        None => golden.join("reference.json"),
    }
}

/// Checks the loaded `model` (generated model `name`) against the golden outputs in
/// `golden` (its `reference.json`, written by `cargo xtask golden`; a student's variant
/// against its own, see `reference_path`) and its test split in `<artifacts>/<name>`, by
/// the gate of the variant it loaded, through the inference core on an engine of its own.
/// Blocking, and seconds long: every golden input and the whole test split run through
/// the model. Called from async code, it must run on a blocking thread.
pub fn check(model: &Arc<dyn TaskModel>, name: &str, golden: &Path, artifacts: &Path) -> Result<Outcome> {
    let through = Through::start(Arc::clone(model));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("cannot start the gate's async runtime")?;
    runtime.block_on(check_through(&through, model.as_ref(), name, golden, artifacts))
}

async fn check_through(
    through: &Through,
    model: &dyn TaskModel,
    name: &str,
    golden: &Path,
    artifacts: &Path,
) -> Result<Outcome> {
    let reference_path = reference_path(model.info(), name, golden, artifacts);
    let reference = std::fs::read_to_string(&reference_path)
        .with_context(|| format!("cannot read {}: run `cargo xtask golden`", reference_path.display()))?;
    let gate = Gate::from(model.info().variant.kind);
    let mut figures = Figures {
        gate,
        failures: Vec::new(),
        rows: Vec::new(),
    };
    let checked = match model.info().task {
        Task::TextClassification => {
            let test = test_split::read(artifacts, name)?;
            classification::check(through, model.info(), &reference, &test, &mut figures).await
        }
        Task::FeatureExtraction => {
            let pairs = test_split::read_pairs(artifacts, name)?;
            embedding::check(through, &reference, &pairs, &mut figures).await
        }
        Task::TokenClassification => {
            let test = test_split::read_tagged(artifacts, name)?;
            token::check(through, &reference, &test, &mut figures).await
        }
        Task::QuestionAnswering => {
            let test = test_split::read_questions(artifacts, name)?;
            question::check(through, &reference, &test, &mut figures).await
        }
        Task::ImageClassification => {
            let test = test_split::read_images(artifacts, name)?;
            let pixels = artifacts.join(name).join("golden-pixels");
            image::check(through, model.info(), &reference, golden, &pixels, &test, &mut figures).await
        }
        Task::ZeroShotImageClassification => {
            let test = test_split::read_images(artifacts, name)?;
            let pixels = artifacts.join(name).join("golden-pixels");
            image_text::check(through, model.info(), &reference, golden, &pixels, &test, &mut figures).await
        }
        Task::ObjectDetection => {
            let test = test_split::read_scenes(artifacts, name)?;
            let model_dir = artifacts.join(name);
            detection::check(
                through,
                model.info(),
                &reference,
                golden,
                &model_dir,
                &test,
                &mut figures,
            )
            .await
        }
    }
    .with_context(|| format!("checking against {}", reference_path.display()))?;
    let batching = through.tally();
    figures.row(
        Rule::Every,
        "inputs through the inference core beside inputs of other lengths",
        format!(
            "{} of {} inputs, {} requests, batches of up to {}",
            batching.mixed_length_inputs, batching.inputs, batching.requests, batching.largest_batch
        ),
        "reported",
        true,
    );
    Ok(Outcome {
        gate,
        rows: figures.rows,
        failures: figures.failures,
        checked,
        batching,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(gate: Gate) -> Figures {
        Figures {
            gate,
            failures: Vec::new(),
            rows: Vec::new(),
        }
    }

    #[test]
    fn a_student_is_held_to_one_point_below_its_teacher_on_the_same_split_whatever_its_gate() {
        for gate in [Gate::Exact, Gate::Int8] {
            let mut held = figures(gate);
            held.teacher_metric("accuracy", 0.9618, 0.9718, true);
            held.teacher_metric("accuracy", 0.9800, 0.9718, true);
            assert!(held.failures.is_empty(), "{:?}", held.failures);
            assert_eq!(held.rows[0].figure, "Rust 0.9618, teacher 0.9718");
            let mut missed = figures(gate);
            missed.teacher_metric("recall@10", 0.9568, 0.9718, true);
            missed.teacher_metric("entity F1", 0.9718, 0.9718, false);
            assert_eq!(missed.failures.len(), 2, "{:?}", missed.failures);
            assert_eq!(
                missed.failures[0],
                "test split recall@10 vs the teacher's FP32: Rust 0.9568, teacher 0.9718 (bound at most 1.0 point below the teacher)"
            );
            assert!(missed.rows.iter().all(|row| !row.pass));
        }
    }
}
