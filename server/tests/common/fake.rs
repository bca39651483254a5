//! Small fake models, one per task, for the protocol tests: real `TaskModel`s whose
//! "inference" is arithmetic on the token ids or pixels, so every layer above the runtime
//! (the engine's batching, the inference core, each protocol's parsing and shapes) runs
//! as it serves, in seconds and without trained artifacts or ONNX Runtime.
//!
//! The tokenizer is a word-level one over a dozen words (lower-cased, split on
//! whitespace and punctuation, `[CLS] … [SEP]`), truncating at [`MAX_LENGTH`] tokens.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use modelcrate_core::{BatchingOptions, Engine};
use modelcrate_runtime::detection::{DetectorInfo, Grid, Letterboxing, RawOutputs};
use modelcrate_runtime::image_text::ImageTextInfo;
use modelcrate_runtime::question_answering::{self, QuestionTokenizer, SpanLogits};
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::text::{EncodedBatch, TextEncoder};
use modelcrate_runtime::token_classification::{self, Vocabulary};
use modelcrate_runtime::variants::Resolved;
use modelcrate_runtime::{
    AggregationStrategy, Answer, AnswerOptions, Entity, Error, Input, Lane, Layout, ModelInfo, Pooling, Preprocessing,
    ProblemType, Result, RowOutput, Task, TaskModel, VariantKind,
};
use ndarray::{Array2, Array4, Axis};
use tokenizers::{Encoding, Tokenizer};

/// Longest input in tokens, `[CLS]` and `[SEP]` included.
pub const MAX_LENGTH: usize = 12;
/// The embedder's vector length.
pub const DIMENSION: usize = 4;

pub const CLASSIFIER: &str = "fake-sentiment";
pub const EMBEDDER: &str = "fake-embed";
pub const TAGGER: &str = "fake-ner";
pub const IMAGES: &str = "fake-shades";
pub const ANSWERER: &str = "fake-qa";
pub const DETECTOR: &str = "fake-spots";
pub const PAIRS: &str = "fake-pairs";
/// The image–text fake's temperature: zero-shot logits are 10 × the similarity.
pub const PAIRS_SCALE: f32 = 10.0;

const WORDS: [&str; 13] = [
    "good", "bad", "fast", "slow", "rust", "python", "is", "and", "the", "release", "of", "version", "crash",
];

/// A word that makes a fake text model's run fail, as a session's failure would: only
/// the batch that holds it.
pub const CRASH: &str = "crash";
const SENTIMENT: [&str; 2] = ["negative", "positive"];
const LANGUAGES: [&str; 3] = ["O", "B-LANG", "I-LANG"];
const SHADES: [&str; 2] = ["dark", "light"];

const TEXT_INPUTS: [TensorSpec; 2] = [
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
];

/// The word-level tokenizer every fake text model shares.
fn tokenizer() -> Tokenizer {
    let mut vocab = serde_json::json!({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3});
    for (index, word) in WORDS.iter().enumerate() {
        vocab[*word] = serde_json::json!(index + 4);
    }
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [
            {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 2, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 3, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        ],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
    });
    Tokenizer::from_str(&json.to_string()).expect("the fake tokenizer's JSON is a tokenizer")
}

/// The id of `word` in the fake vocabulary.
fn id(word: &str) -> i64 {
    WORDS
        .iter()
        .position(|w| *w == word)
        .map_or(1, |index| index as i64 + 4)
}

fn info(name: &'static str, task: Task, labels: &'static [&'static str], outputs: &'static [TensorSpec]) -> ModelInfo {
    ModelInfo {
        name,
        task,
        labels,
        max_length: MAX_LENGTH,
        problem_type: None,
        dimension: None,
        pooling: None,
        normalize: None,
        image: None,
        detector: None,
        image_text: None,
        signature: Signature {
            inputs: &TEXT_INPUTS,
            outputs,
        },
        head: None,
        variant: Resolved {
            name: "fp32".into(),
            file: "model.onnx".into(),
            kind: VariantKind::Fp32,
            selection: "named: a fake".into(),
            student: None,
            candidates: Vec::new(),
        },
        layout: Layout::Fixed {
            sessions: 1,
            intra_threads: 1,
        },
        sessions: 1,
    }
}

/// The real ids of each row of `batch`.
fn rows(batch: &EncodedBatch) -> impl Iterator<Item = &[i64]> {
    batch
        .input_ids
        .axis_iter(Axis(0))
        .zip(&batch.lengths)
        .map(|(row, &length)| &row.to_slice().expect("rows of a standard-layout batch")[..length])
}

fn count(ids: &[i64], words: &[&str]) -> f32 {
    ids.iter()
        .filter(|&&id| words.iter().any(|word| self::id(word) == id))
        .count() as f32
}

/// A fake text model of any task: its rows are `row` of each text's token ids. A token
/// classifier (`info.task`) encodes with character offsets and aggregates entities as
/// the runtime does.
pub struct TextModel {
    info: ModelInfo,
    encoder: TextEncoder,
    row: fn(&[i64]) -> RowOutput,
}

/// Sentiment: logit 0 counts `bad` and `slow`, logit 1 `good` and `fast`.
fn sentiment(ids: &[i64]) -> RowOutput {
    RowOutput::Logits(vec![count(ids, &["bad", "slow"]), count(ids, &["good", "fast"])])
}

/// Embeddings `[tokens, good, bad, 1]`.
fn embedding(ids: &[i64]) -> RowOutput {
    RowOutput::Pooled(vec![ids.len() as f32, count(ids, &["good"]), count(ids, &["bad"]), 1.0])
}

/// Languages: `rust` and `python` are `B-LANG`, every other token `O`.
fn languages(ids: &[i64]) -> RowOutput {
    let mut logits = Array2::zeros((ids.len(), LANGUAGES.len()));
    for (token, &id) in ids.iter().enumerate() {
        let language = id == self::id("rust") || id == self::id("python");
        logits[[token, usize::from(language)]] = 4.0;
    }
    RowOutput::TokenLogits(logits)
}

impl TaskModel for TextModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encoder(&self) -> Option<&TextEncoder> {
        Some(&self.encoder)
    }

    fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        match self.info.task {
            Task::TokenClassification => self.encoder.char_encodings(texts),
            _ => self.encoder.encodings(texts),
        }
    }

    fn run_texts(&self, batch: &EncodedBatch, _lane: Lane) -> Result<Vec<RowOutput>> {
        if rows(batch).any(|ids| ids.contains(&id(CRASH))) {
            return Err(modelcrate_runtime::Error::Ort(format!(
                "the fake session failed on `{CRASH}`"
            )));
        }
        Ok(rows(batch).map(self.row).collect())
    }

    fn entities_of(
        &self,
        text: &str,
        encoding: &Encoding,
        logits: &Array2<f32>,
        strategy: AggregationStrategy,
        ignore_labels: Option<&[&str]>,
    ) -> Result<Vec<Entity>> {
        if self.info.task != Task::TokenClassification {
            return Err(Error::Input(format!("model `{}` finds no entities", self.info.name)));
        }
        let vocabulary = Vocabulary::new(self.encoder.tokenizer());
        let ignore = ignore_labels.unwrap_or(&["O"]);
        token_classification::entities(text, encoding, logits, self.info.labels, strategy, ignore, &vocabulary)
    }

    fn process(&self, _inputs: &[Input<'_>]) -> Result<()> {
        Ok(())
    }
}

/// Questions: the answer is the first `rust` or `python` of the context (start and end
/// logit 5 there, 0 elsewhere), chosen by the runtime's span selection.
pub struct QuestionModel {
    info: ModelInfo,
    encoder: TextEncoder,
    questions: QuestionTokenizer,
}

impl TaskModel for QuestionModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encoder(&self) -> Option<&TextEncoder> {
        Some(&self.encoder)
    }

    fn run_texts(&self, batch: &EncodedBatch, _lane: Lane) -> Result<Vec<RowOutput>> {
        let languages = [id("rust"), id("python")];
        Ok(rows(batch)
            .zip(batch.token_type_ids.axis_iter(Axis(0)))
            .map(|(ids, types)| {
                let first = ids
                    .iter()
                    .zip(types.iter())
                    .position(|(id, kind)| *kind == 1 && languages.contains(id));
                let logits: Vec<f32> = (0..ids.len())
                    .map(|at| if Some(at) == first { 5.0 } else { 0.0 })
                    .collect();
                RowOutput::SpanLogits(SpanLogits {
                    start: logits.clone(),
                    end: logits,
                })
            })
            .collect())
    }

    fn windows(&self, question: &str, context: &str, options: &AnswerOptions) -> Result<Vec<Encoding>> {
        let windowing = options.windowing(MAX_LENGTH, MAX_LENGTH)?;
        self.questions
            .windows(question, context, windowing, options.max_question_len)
    }

    fn answers_of(
        &self,
        context: &str,
        windows: &[Encoding],
        logits: &[SpanLogits],
        options: &AnswerOptions,
    ) -> Result<Vec<Answer>> {
        question_answering::answers(context, windows, logits, self.questions.cls_id(), options)
    }

    fn process(&self, _inputs: &[Input<'_>]) -> Result<()> {
        Ok(())
    }
}

/// Shades: logit 1 is the mean normalised pixel, logit 0 its negation.
pub struct ImageClassifier {
    info: ModelInfo,
}

impl TaskModel for ImageClassifier {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn run_images(&self, pixels: &Array4<f32>, _lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(pixels
            .axis_iter(Axis(0))
            .map(|image| {
                let mean = image.mean().unwrap_or(0.0);
                RowOutput::Logits(vec![-mean, mean])
            })
            .collect())
    }

    fn process(&self, _inputs: &[Input<'_>]) -> Result<()> {
        Ok(())
    }
}

/// A detector on a 32×32 input with 16-pixel cells (four of them) that finds one object,
/// in the bottom-right cell, one stride from its centre each way: `light` when the image's
/// normalised pixels average above 0, else `dark`, scored by how far from 0 they are.
pub struct Detector {
    info: ModelInfo,
}

impl TaskModel for Detector {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn run_images(&self, pixels: &Array4<f32>, _lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(pixels
            .axis_iter(Axis(0))
            .map(|image| {
                let mean = image.mean().unwrap_or(0.0);
                let mut centerness = Array2::from_elem((4, 1), -20.0);
                let mut classes = Array2::from_elem((4, 2), -20.0);
                centerness[[3, 0]] = 20.0;
                classes[[3, usize::from(mean > 0.0)]] = 4.0 * mean.abs();
                RowOutput::Detection(RawOutputs {
                    distances: Array2::zeros((4, 4)),
                    centerness,
                    classes,
                })
            })
            .collect())
    }

    fn process(&self, _inputs: &[Input<'_>]) -> Result<()> {
        Ok(())
    }
}

/// An image–text model in two dimensions, `[good, bad]`: a text points along the counts of
/// `good` (and `fast`) and `bad` (and `slow`) in it, an image along its lightness (the mean
/// normalised pixel, above 0 towards `good`, below towards `bad`). Both unit vectors.
pub struct ImageText {
    info: ModelInfo,
    encoder: TextEncoder,
}

fn unit(x: f32, y: f32) -> Vec<f32> {
    let norm = (x * x + y * y).sqrt().max(1e-12);
    vec![x / norm, y / norm]
}

impl TaskModel for ImageText {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encoder(&self) -> Option<&TextEncoder> {
        Some(&self.encoder)
    }

    fn run_texts(&self, batch: &EncodedBatch, _lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(rows(batch)
            .map(|ids| {
                let good = 0.1 + count(ids, &["good", "fast"]);
                let bad = 0.1 + count(ids, &["bad", "slow"]);
                RowOutput::Pooled(unit(good, bad))
            })
            .collect())
    }

    fn run_images(&self, pixels: &Array4<f32>, _lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(pixels
            .axis_iter(Axis(0))
            .map(|image| {
                let mean = image.mean().unwrap_or(0.0);
                RowOutput::Pooled(unit(0.1 + mean.max(0.0), 0.1 + (-mean).max(0.0)))
            })
            .collect())
    }

    fn process(&self, _inputs: &[Input<'_>]) -> Result<()> {
        Ok(())
    }
}

const PAIR_EMBEDDINGS: [TensorSpec; 1] = [TensorSpec {
    name: "image_embeds",
    dtype: DType::Float32,
    dims: &[None, Some(2)],
}];
const PAIR_TEXT_EMBEDDINGS: [TensorSpec; 1] = [TensorSpec {
    name: "text_embeds",
    dtype: DType::Float32,
    dims: &[None, Some(2)],
}];

const LOGITS: [TensorSpec; 1] = [TensorSpec {
    name: "logits",
    dtype: DType::Float32,
    dims: &[None, Some(2)],
}];
const TOKEN_LOGITS: [TensorSpec; 1] = [TensorSpec {
    name: "logits",
    dtype: DType::Float32,
    dims: &[None, None, Some(3)],
}];
const HIDDEN: [TensorSpec; 1] = [TensorSpec {
    name: "last_hidden_state",
    dtype: DType::Float32,
    dims: &[None, None, Some(DIMENSION as i64)],
}];
const SPANS: [TensorSpec; 2] = [
    TensorSpec {
        name: "start_logits",
        dtype: DType::Float32,
        dims: &[None, None],
    },
    TensorSpec {
        name: "end_logits",
        dtype: DType::Float32,
        dims: &[None, None],
    },
];
const PIXELS: [TensorSpec; 1] = [TensorSpec {
    name: "pixel_values",
    dtype: DType::Float32,
    dims: &[None, Some(3), Some(8), Some(8)],
}];

const DETECTOR_PIXELS: [TensorSpec; 1] = [TensorSpec {
    name: "pixel_values",
    dtype: DType::Float32,
    dims: &[None, Some(3), Some(32), Some(32)],
}];
const DETECTOR_OUTPUTS: [TensorSpec; 3] = [
    TensorSpec {
        name: "box_distances",
        dtype: DType::Float32,
        dims: &[None, Some(4), Some(4)],
    },
    TensorSpec {
        name: "centerness_logits",
        dtype: DType::Float32,
        dims: &[None, Some(4), Some(1)],
    },
    TensorSpec {
        name: "class_logits",
        dtype: DType::Float32,
        dims: &[None, Some(4), Some(2)],
    },
];

fn encoder() -> Result<TextEncoder> {
    TextEncoder::new(tokenizer(), MAX_LENGTH)
}

/// The seven fakes, by name.
pub fn models() -> Result<Vec<Arc<dyn TaskModel>>> {
    let classifier = TextModel {
        info: ModelInfo {
            problem_type: Some(ProblemType::SingleLabel),
            ..info(CLASSIFIER, Task::TextClassification, &SENTIMENT, &LOGITS)
        },
        encoder: encoder()?,
        row: sentiment,
    };
    let embedder = TextModel {
        info: ModelInfo {
            dimension: Some(DIMENSION),
            pooling: Some(Pooling::Mean),
            normalize: Some(true),
            ..info(EMBEDDER, Task::FeatureExtraction, &[], &HIDDEN)
        },
        encoder: encoder()?,
        row: embedding,
    };
    let tagger = TextModel {
        info: info(TAGGER, Task::TokenClassification, &LANGUAGES, &TOKEN_LOGITS),
        encoder: encoder()?,
        row: languages,
    };
    let images = ImageClassifier {
        info: ModelInfo {
            max_length: 0,
            problem_type: Some(ProblemType::SingleLabel),
            image: Some(Preprocessing {
                resize_shortest: 8,
                crop: 8,
                mean: [0.5; 3],
                std: [0.5; 3],
            }),
            signature: Signature {
                inputs: &PIXELS,
                outputs: &LOGITS,
            },
            ..info(IMAGES, Task::ImageClassification, &SHADES, &LOGITS)
        },
    };
    let detector = Detector {
        info: ModelInfo {
            max_length: 0,
            detector: Some(DetectorInfo {
                letterboxing: Letterboxing {
                    size: 32,
                    mean: [0.5; 3],
                    std: [0.5; 3],
                },
                grid: Grid { size: 32, stride: 16 },
            }),
            signature: Signature {
                inputs: &DETECTOR_PIXELS,
                outputs: &DETECTOR_OUTPUTS,
            },
            ..info(DETECTOR, Task::ObjectDetection, &SHADES, &DETECTOR_OUTPUTS)
        },
    };
    let pairs = ImageText {
        info: ModelInfo {
            dimension: Some(2),
            normalize: Some(true),
            image: Some(Preprocessing {
                resize_shortest: 8,
                crop: 8,
                mean: [0.5; 3],
                std: [0.5; 3],
            }),
            image_text: Some(ImageTextInfo {
                text_signature: Signature {
                    inputs: &TEXT_INPUTS,
                    outputs: &PAIR_TEXT_EMBEDDINGS,
                },
                logit_scale: PAIRS_SCALE.ln(),
            }),
            signature: Signature {
                inputs: &PIXELS,
                outputs: &PAIR_EMBEDDINGS,
            },
            ..info(PAIRS, Task::ZeroShotImageClassification, &[], &PAIR_EMBEDDINGS)
        },
        encoder: encoder()?,
    };
    let answerer = QuestionModel {
        info: info(ANSWERER, Task::QuestionAnswering, &[], &SPANS),
        encoder: encoder()?,
        questions: QuestionTokenizer::new(tokenizer())?,
    };
    Ok(vec![
        Arc::new(classifier),
        Arc::new(embedder),
        Arc::new(tagger),
        Arc::new(images),
        Arc::new(answerer),
        Arc::new(detector),
        Arc::new(pairs),
    ])
}

/// An engine per fake, batching as `batching` says.
pub fn engines(batching: &BatchingOptions) -> BTreeMap<String, Arc<Engine>> {
    models()
        .expect("the fakes build")
        .into_iter()
        .map(|model| {
            (
                model.info().name.to_string(),
                Arc::new(Engine::start(model, batching.clone())),
            )
        })
        .collect()
}

/// How long a fake's request may take: far more than it needs.
pub const TIMEOUT: Duration = Duration::from_secs(10);
