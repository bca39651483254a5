//! Sequence classification: logits from ONNX Runtime, then scores and rankings exactly
//! as the `transformers` text-classification pipeline computes them.

use std::borrow::Cow;
use std::path::Path;

use ndarray::{Array2, Axis, Ix2};
use ort::session::{Session, SessionInputValue, SessionOutputs};
use ort::value::TensorRef;

use crate::embedding::{Pooler, l2_normalize};
use crate::error::{Error, Result};
use crate::labels::{Labels, label};
use crate::pool::{Lane, Layout, SessionPool};
use crate::registry::{Input, LoadOptions, ModelInfo, RowOutput, Task, TaskModel, texts_of};
use crate::signature::Signature;
use crate::text::{EncodedBatch, TextEncoder, TextModelParts};

/// `config.json`'s `problem_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    SingleLabel,
    MultiLabel,
    Regression,
}

impl ProblemType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SingleLabel => "single_label_classification",
            Self::MultiLabel => "multi_label_classification",
            Self::Regression => "regression",
        }
    }
}

/// The pipeline's `function_to_apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassificationFunction {
    Softmax,
    Sigmoid,
    None,
}

impl ClassificationFunction {
    /// The pipeline's default: none for regression, sigmoid for multi-label or a single
    /// label, softmax otherwise.
    pub fn default_for(problem_type: ProblemType, labels: usize) -> Self {
        match problem_type {
            ProblemType::Regression => Self::None,
            ProblemType::MultiLabel => Self::Sigmoid,
            ProblemType::SingleLabel if labels == 1 => Self::Sigmoid,
            ProblemType::SingleLabel => Self::Softmax,
        }
    }

    /// Parses the pipeline's names, case-insensitively as the pipeline does.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "softmax" => Some(Self::Softmax),
            "sigmoid" => Some(Self::Sigmoid),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// Scores from one row of logits, in f32 as numpy computes them in the pipeline.
    pub fn apply(self, logits: &[f32]) -> Vec<f32> {
        match self {
            Self::None => logits.to_vec(),
            Self::Sigmoid => logits.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
            Self::Softmax => {
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                exps.into_iter().map(|e| e / sum).collect()
            }
        }
    }
}

/// A label id and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelScore {
    pub id: usize,
    pub score: f32,
}

/// Labels by descending score (ties keep id order, as Python's stable sort does),
/// cut to `top_k` when given.
pub fn ranked(scores: &[f32], top_k: Option<usize>) -> Vec<LabelScore> {
    let mut ranked: Vec<LabelScore> = scores
        .iter()
        .enumerate()
        .map(|(id, &score)| LabelScore { id, score })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    if let Some(k) = top_k {
        ranked.truncate(k);
    }
    ranked
}

/// The highest score (first on ties, as numpy's argmax).
pub fn best(scores: &[f32]) -> LabelScore {
    let mut best = LabelScore {
        id: 0,
        score: f32::NEG_INFINITY,
    };
    for (id, &score) in scores.iter().enumerate() {
        if score > best.score {
            best = LabelScore { id, score };
        }
    }
    best
}

/// One text's prediction with typed labels: the top label and every label's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction<L, const N: usize> {
    pub label: L,
    pub score: f32,
    /// Scores by label id.
    pub scores: [f32; N],
}

/// A row of scores or logits as a fixed-size array, or an output-shape error.
pub(crate) fn fixed<const N: usize>(row: &[f32]) -> Result<[f32; N]> {
    row.try_into()
        .map_err(|_| Error::OutputShape(format!("{} scores, expected {N}", row.len())))
}

/// What a generated crate knows of its classifier, as constants.
#[derive(Debug, Clone, Copy)]
pub struct TextClassifierSpec {
    pub name: &'static str,
    /// The signature of the model file the tokens go into (a SetFit model's body).
    pub signature: Signature,
    /// The output holding `[batch, labels]` logits (of the head, for a SetFit model).
    pub logits_output: &'static str,
    pub labels: &'static [&'static str],
    pub max_length: usize,
    pub problem_type: ProblemType,
    /// A SetFit classifier's second stage; `None` when one graph gives the logits.
    pub setfit: Option<SetFitHeadSpec>,
}

/// A SetFit classifier's second stage: its body (a sentence-transformers model) gives a
/// sentence embedding, and the scikit-learn head exported to `head.onnx` turns it into
/// logits (the head's decision function, whose softmax is SetFit's `predict_proba`).
#[derive(Debug, Clone, Copy)]
pub struct SetFitHeadSpec {
    /// How the body's token vectors become the embedding (checked against `pooling.json`).
    pub body: Pooler,
    /// `head.onnx`'s signature (checked at load).
    pub signature: Signature,
    /// The head's input: `[batch, dimension]` embeddings.
    pub embedding_input: &'static str,
}

/// The file of a SetFit classifier's head, next to its body's variants.
pub const SETFIT_HEAD_FILE: &str = "head.onnx";

/// A loaded SetFit head: its spec and a session pool over `head.onnx`.
struct SetFitHead {
    spec: SetFitHeadSpec,
    pool: SessionPool,
}

/// A loaded sequence classifier: tokenizer, session pool and the model's metadata.
pub struct TextClassifier {
    info: ModelInfo,
    spec: TextClassifierSpec,
    encoder: TextEncoder,
    pool: SessionPool,
    /// Boxed: most classifiers have none, and it is as large as the rest.
    head: Option<Box<SetFitHead>>,
    max_batch_size: usize,
}

impl TextClassifier {
    /// Loads the chosen variant of `dir` with `dir/tokenizer.json` and `dir/config.json`,
    /// refusing an artifact whose signature or labels differ from `spec`.
    ///
    /// A SetFit classifier's chosen variant is its body's; its head is `dir/head.onnx`,
    /// checked against the spec's head signature, with the body's pooling checked against
    /// `dir/pooling.json`.
    pub fn load(dir: &Path, spec: TextClassifierSpec, options: &LoadOptions) -> Result<Self> {
        check_labels(&dir.join("config.json"), spec.labels)?;
        let head = spec
            .setfit
            .map(|head| -> Result<Box<SetFitHead>> {
                head.body.check(&dir.join("pooling.json"))?;
                let file = dir.join(SETFIT_HEAD_FILE);
                // The head is a few thousand weights: one single-thread session per run
                // that may be under way is all it needs, whatever the body's layout.
                let head_options = LoadOptions {
                    layout: Layout::Fixed {
                        sessions: options.layout.concurrent_runs(),
                        intra_threads: 1,
                    },
                    ..options.clone()
                };
                let pool = SessionPool::open(&file, &head_options)?;
                pool.inspect(|session| head.signature.check(session, &file))?;
                Ok(Box::new(SetFitHead { spec: head, pool }))
            })
            .transpose()?;
        let parts = TextModelParts::open(dir, &spec.signature, spec.max_length, options)?;
        let info = ModelInfo {
            labels: spec.labels,
            problem_type: Some(spec.problem_type),
            head: spec.setfit.map(|head| head.signature),
            ..parts.info(spec.name, Task::TextClassification, spec.max_length, spec.signature)
        };
        let TextModelParts { pool, encoder, .. } = parts;
        Ok(Self {
            info,
            spec,
            encoder,
            pool,
            head,
            max_batch_size: options.max_batch_size.max(1),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    pub fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    pub fn default_function(&self) -> ClassificationFunction {
        ClassificationFunction::default_for(self.spec.problem_type, self.spec.labels.len())
    }

    /// Logits `[texts, labels]`, run in batches of at most `max_batch_size`.
    pub fn logits(&self, texts: &[&str]) -> Result<Array2<f32>> {
        let mut all = Array2::zeros((0, self.spec.labels.len()));
        for chunk in texts.chunks(self.max_batch_size) {
            let logits = self.logits_of(&self.encoder.encode(chunk)?, Lane::Any)?;
            all.append(Axis(0), logits.view())
                .map_err(|error| Error::OutputShape(error.to_string()))?;
        }
        Ok(all)
    }

    /// Logits of an already tokenized batch: one `session.run` on a session of `lane`
    /// (for a SetFit model, one of the body there and then one of the head, which is
    /// small enough for any free session).
    pub fn logits_of(&self, batch: &EncodedBatch, lane: Lane) -> Result<Array2<f32>> {
        match &self.head {
            None => self.pool.with_session(lane, |session| self.run(session, batch)),
            Some(head) => {
                let pooler = head.spec.body;
                let embeddings = self
                    .pool
                    .with_session(lane, |session| pooler.pooled(session, batch, &self.spec.signature))?;
                head.pool
                    .with_session(Lane::Any, |session| self.run_head(session, head, embeddings))
            }
        }
    }

    /// Scores per text after `function` (the model's default when `None`).
    pub fn scores(&self, texts: &[&str], function: Option<ClassificationFunction>) -> Result<Vec<Vec<f32>>> {
        let function = function.unwrap_or_else(|| self.default_function());
        let logits = self.logits(texts)?;
        Ok(logits
            .rows()
            .into_iter()
            .map(|row| function.apply(&row.to_vec()))
            .collect())
    }

    /// Typed predictions: the label of logit column `id` is `L::from_id(id)`.
    pub fn predict<L: Labels, const N: usize>(
        &self,
        texts: &[&str],
        function: Option<ClassificationFunction>,
    ) -> Result<Vec<Prediction<L, N>>> {
        self.scores(texts, function)?
            .iter()
            .map(|scores| {
                let scores: [f32; N] = fixed(scores)?;
                let top = best(&scores);
                Ok(Prediction {
                    label: label(top.id)?,
                    score: top.score,
                    scores,
                })
            })
            .collect()
    }

    /// Logits per text as fixed-size rows.
    pub fn logits_fixed<const N: usize>(&self, texts: &[&str]) -> Result<Vec<[f32; N]>> {
        let logits = self.logits(texts)?;
        logits.rows().into_iter().map(|row| fixed(&row.to_vec())).collect()
    }

    fn run(&self, session: &mut Session, batch: &EncodedBatch) -> Result<Array2<f32>> {
        let outputs = session.run(batch.session_inputs(&self.spec.signature)?)?;
        logits_output(
            &outputs,
            self.spec.logits_output,
            batch.lengths.len(),
            self.spec.labels.len(),
        )
    }

    /// The head's logits of pooled embeddings, normalised first when the body normalises.
    fn run_head(&self, session: &mut Session, head: &SetFitHead, mut embeddings: Vec<Vec<f32>>) -> Result<Array2<f32>> {
        let rows = embeddings.len();
        if head.spec.body.normalize {
            embeddings.iter_mut().for_each(|vector| l2_normalize(vector));
        }
        let flat: Vec<f32> = embeddings.into_iter().flatten().collect();
        let input = Array2::from_shape_vec((rows, head.spec.body.dimension), flat)
            .map_err(|error| Error::OutputShape(format!("embeddings: {error}")))?;
        let inputs: Vec<(Cow<'static, str>, SessionInputValue<'_>)> = vec![(
            Cow::Borrowed(head.spec.embedding_input),
            TensorRef::from_array_view(&input)?.into(),
        )];
        let outputs = session.run(inputs)?;
        logits_output(&outputs, self.spec.logits_output, rows, self.spec.labels.len())
    }
}

/// The `[rows, columns]` output `name` of a run (a classifier's logits, a question
/// answerer's start or end logits), copied out of the session's outputs (they borrow the
/// session, which goes back to its pool).
pub(crate) fn logits_output(
    outputs: &SessionOutputs<'_>,
    name: &str,
    rows: usize,
    columns: usize,
) -> Result<Array2<f32>> {
    let output = outputs
        .get(name)
        .ok_or_else(|| Error::OutputShape(format!("no output named `{name}`")))?;
    let logits = output
        .try_extract_array::<f32>()?
        .into_dimensionality::<Ix2>()
        .map_err(|error| Error::OutputShape(error.to_string()))?;
    let expected = (rows, columns);
    if logits.dim() != expected {
        return Err(Error::OutputShape(format!(
            "`{name}` is {:?}, expected {expected:?}",
            logits.dim()
        )));
    }
    Ok(logits.to_owned())
}

/// The artifact's `config.json` must name the same labels, in the same id order.
pub(crate) fn check_labels(config: &Path, labels: &[&str]) -> Result<()> {
    let unreadable = |message: String| Error::Artifact {
        path: config.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(config).map_err(|error| unreadable(error.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|error| unreadable(error.to_string()))?;
    let id2label = value
        .get("id2label")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| unreadable("no `id2label` object".into()))?;
    let found: Vec<Option<&str>> = (0..id2label.len())
        .map(|id| id2label.get(&id.to_string()).and_then(serde_json::Value::as_str))
        .collect();
    let expected: Vec<Option<&str>> = labels.iter().map(|label| Some(*label)).collect();
    if found == expected {
        Ok(())
    } else {
        Err(Error::SignatureMismatch {
            path: config.to_path_buf(),
            mismatch: format!("id2label is {found:?}, expected {labels:?}"),
        })
    }
}

impl TaskModel for TextClassifier {
    fn info(&self) -> &ModelInfo {
        TextClassifier::info(self)
    }

    fn encoder(&self) -> Option<&TextEncoder> {
        Some(TextClassifier::encoder(self))
    }

    fn run_texts(&self, batch: &EncodedBatch, lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(self
            .logits_of(batch, lane)?
            .rows()
            .into_iter()
            .map(|row| RowOutput::Logits(row.to_vec()))
            .collect())
    }

    fn run_encoded(&self, batch: &EncodedBatch, lane: Lane) -> Result<()> {
        self.logits_of(batch, lane).map(drop)
    }

    fn process(&self, inputs: &[Input<'_>]) -> Result<()> {
        self.scores(&texts_of(inputs)?, None).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_matches_numpy_and_sums_to_one() {
        let scores = ClassificationFunction::Softmax.apply(&[1.0, 2.0, 3.0]);
        // numpy: softmax([1, 2, 3]) in float32
        let expected = [0.090_030_57, 0.244_728_48, 0.665_240_94];
        for (got, want) in scores.iter().zip(expected) {
            assert!((got - want).abs() < 1e-7, "{got} vs {want}");
        }
        assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn softmax_is_stable_for_large_logits() {
        let scores = ClassificationFunction::Softmax.apply(&[1000.0, 1000.0]);
        assert_eq!(scores, vec![0.5, 0.5]);
    }

    #[test]
    fn sigmoid_and_none_follow_the_pipeline() {
        assert_eq!(ClassificationFunction::Sigmoid.apply(&[0.0]), vec![0.5]);
        assert_eq!(ClassificationFunction::None.apply(&[-3.5, 2.0]), vec![-3.5, 2.0]);
    }

    #[test]
    fn default_function_follows_problem_type_and_label_count() {
        use ClassificationFunction as F;
        assert_eq!(F::default_for(ProblemType::SingleLabel, 5), F::Softmax);
        assert_eq!(F::default_for(ProblemType::SingleLabel, 1), F::Sigmoid);
        assert_eq!(F::default_for(ProblemType::MultiLabel, 5), F::Sigmoid);
        assert_eq!(F::default_for(ProblemType::Regression, 1), F::None);
    }

    #[test]
    fn function_names_parse_case_insensitively() {
        assert_eq!(
            ClassificationFunction::parse("SoftMax"),
            Some(ClassificationFunction::Softmax)
        );
        assert_eq!(ClassificationFunction::parse("relu"), None);
    }

    #[test]
    fn ranking_is_descending_stable_and_cut_at_top_k() {
        let ranked = ranked(&[0.2, 0.5, 0.2, 0.1], Some(3));
        let ids: Vec<usize> = ranked.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![1, 0, 2]);
    }

    #[test]
    fn best_takes_the_first_of_equal_scores() {
        assert_eq!(best(&[0.1, 0.7, 0.7]).id, 1);
    }
}
