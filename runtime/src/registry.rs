//! How the server finds models without knowing any by name: each generated crate
//! exports a [`ModelEntry`], and the umbrella crate lists them all.

use std::path::{Path, PathBuf};

pub use modelcrate_schema::Task;
use ndarray::{Array2, Array3, Array4};
use tokenizers::Encoding;

use crate::classification::{ClassificationFunction, ProblemType};
use crate::detection::{DetectorInfo, RawOutputs};
use crate::embedding::Pooling;
use crate::error::{Error, Result};
use crate::image::{ImageError, Preprocessing};
use crate::image_text::ImageTextInfo;
use crate::pool::{Lane, Layout};
use crate::question_answering::{Answer, AnswerOptions, SpanLogits};
use crate::signature::Signature;
use crate::text::{EncodedBatch, TextEncoder};
use crate::token_classification::{AggregationStrategy, Entity};
use crate::variants::{Resolved, VariantChoice};

/// How to load a model: which variant of its folder, and the thread layout.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `libonnxruntime.so.1.31.1`; `ORT_DYLIB_PATH` when `None`.
    pub ort_dylib: Option<PathBuf>,
    /// Which variant: the serving one (`serving.json`) unless named.
    pub variant: VariantChoice,
    /// The sessions and their threads: how many batches may run at once, on how many
    /// cores each.
    pub layout: Layout,
    /// Largest batch given to one `session.run`; longer inputs are split.
    pub max_batch_size: usize,
}

impl LoadOptions {
    /// `variant` on one single-thread session: what a check or a test that loads a
    /// model needs.
    pub fn one_session(variant: VariantChoice) -> Self {
        Self {
            variant,
            layout: Layout::Fixed {
                sessions: 1,
                intra_threads: 1,
            },
            ..Self::default()
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            ort_dylib: None,
            variant: VariantChoice::Serving,
            layout: Layout::Fixed {
                sessions: 2,
                intra_threads: 1,
            },
            max_batch_size: 32,
        }
    }
}

/// What one row of a batch yields, by task; post-processing turns it into an answer.
#[derive(Debug, Clone)]
pub enum RowOutput {
    /// A sequence classifier's logits, by label id.
    Logits(Vec<f32>),
    /// An embedding model's pooled vector, not yet normalised.
    Pooled(Vec<f32>),
    /// A token classifier's logits `[tokens, labels]` for the row's real tokens.
    TokenLogits(Array2<f32>),
    /// A question-answering model's start and end logits for one window's real tokens.
    SpanLogits(SpanLogits),
    /// A detector's raw outputs for one image, decoded with the image's letterbox.
    Detection(RawOutputs),
}

/// What `GET /models` reports of a loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: &'static str,
    pub task: Task,
    pub labels: &'static [&'static str],
    /// Text models only (0 for an image model).
    pub max_length: usize,
    /// Classifiers only.
    pub problem_type: Option<ProblemType>,
    /// Embedding models only: the vector's length.
    pub dimension: Option<usize>,
    /// Embedding models only: how token vectors become the embedding.
    pub pooling: Option<Pooling>,
    /// Embedding models only: whether the model L2-normalises its embeddings (it has a
    /// `Normalize` module).
    pub normalize: Option<bool>,
    /// Image classifiers and image–text models only: how an image becomes the model's input.
    pub image: Option<Preprocessing>,
    /// Detectors only: the letterbox and the grid of their outputs.
    pub detector: Option<DetectorInfo>,
    /// Image–text models only: the text tower's signature and the temperature.
    pub image_text: Option<ImageTextInfo>,
    /// The ONNX signature the model's crate was generated from (and checked at load).
    pub signature: Signature,
    /// A SetFit classifier's head (`head.onnx`): embeddings in, logits out.
    pub head: Option<Signature>,
    /// The variant loaded (`fp32`, `O2`, `int8`, …): its file, its kind, and why it serves
    /// (named by the operator, or selected and by what measure).
    pub variant: Resolved,
    /// The sessions loaded and how runs share the cores.
    pub layout: Layout,
    /// Sessions held, each with its own copy of the weights.
    pub sessions: usize,
}

impl ModelInfo {
    /// An image model's input side (a classifier's crop, a detector's letterbox); `None`
    /// for a text model.
    pub fn image_side(&self) -> Option<u32> {
        match (self.image, self.detector) {
            (Some(preprocessing), _) => Some(preprocessing.crop),
            (None, Some(detector)) => Some(detector.letterboxing.size),
            (None, None) => None,
        }
    }

    /// One encoded image (at most `max_pixels` pixels) prepared as this model takes it;
    /// `None` for a text model.
    pub fn prepare_image(&self, bytes: &[u8], max_pixels: u64) -> Option<std::result::Result<Array3<f32>, ImageError>> {
        match (self.image, self.detector) {
            (Some(preprocessing), _) => Some(preprocessing.prepare(bytes, max_pixels)),
            (None, Some(detector)) => Some(
                detector
                    .letterboxing
                    .prepare(bytes, max_pixels)
                    .map(|(tensor, _)| tensor),
            ),
            (None, None) => None,
        }
    }

    /// Whether the model embeds texts: a sentence-embedding model, or an image–text
    /// model's text tower.
    pub fn embeds_texts(&self) -> bool {
        matches!(self.task, Task::FeatureExtraction | Task::ZeroShotImageClassification)
    }

    /// A classifier's function to apply when a request names none: the pipeline's, by
    /// problem type and label count. `None` for a model that does not classify.
    pub fn default_function(&self) -> Option<ClassificationFunction> {
        self.problem_type
            .map(|problem_type| ClassificationFunction::default_for(problem_type, self.labels.len()))
    }
}

/// A loaded model of any task, as the engine, the core and the server hold it. Each task
/// implements it once beside its model type ([`TextClassifier`](crate::TextClassifier),
/// [`SentenceEmbedder`](crate::SentenceEmbedder), …); a new task is one more
/// implementation (and, if its answers need post-processing the model alone can do, one
/// more method here with a default that refuses). What a task's answers need that is only
/// data (labels, problem type, pooling, image preprocessing) is in [`ModelInfo`]. Tests
/// of the layers above implement it with a fake.
pub trait TaskModel: Send + Sync {
    fn info(&self) -> &ModelInfo;

    /// A text model's tokenizer, with its truncation; `None` for an image model.
    fn encoder(&self) -> Option<&TextEncoder> {
        None
    }

    /// The encodings of `texts` as the engine takes them (a task that quotes spans of the
    /// text asks for character offsets here).
    fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        text_encoder(self)?.encodings(texts)
    }

    /// One `session.run` of a padded batch on a session of `lane`: one output per row,
    /// for post-processing.
    fn run_texts(&self, _batch: &EncodedBatch, _lane: Lane) -> Result<Vec<RowOutput>> {
        Err(Error::Input(format!(
            "model `{}` is an {} model: it takes images, not texts",
            self.info().name,
            self.info().task.as_str()
        )))
    }

    /// Inference alone on an already tokenized batch (`session.run` and copying the
    /// output out), its result dropped: what the inference benchmark times.
    fn run_encoded(&self, batch: &EncodedBatch, lane: Lane) -> Result<()> {
        self.run_texts(batch, lane).map(drop)
    }

    /// One `session.run` of prepared images `[n, 3, crop, crop]` on a session of `lane`:
    /// one output per image.
    fn run_images(&self, _pixels: &Array4<f32>, _lane: Lane) -> Result<Vec<RowOutput>> {
        Err(Error::Input(format!(
            "model `{}` is a {} model: it takes texts, not images",
            self.info().name,
            self.info().task.as_str()
        )))
    }

    /// A token classifier's entities in one text, from its encoding (character offsets)
    /// and the per-token logits the engine ran: the pipeline's aggregation, without the
    /// labels in `ignore_labels` (the pipeline's `["O"]` when `None`).
    fn entities_of(
        &self,
        _text: &str,
        _encoding: &Encoding,
        _logits: &Array2<f32>,
        _strategy: AggregationStrategy,
        _ignore_labels: Option<&[&str]>,
    ) -> Result<Vec<Entity>> {
        Err(Error::Input(format!(
            "model `{}` is a {} model: it finds no entities",
            self.info().name,
            self.info().task.as_str()
        )))
    }

    /// A question-answering model's windows of `question` over `context` (character
    /// offsets), each a row the engine runs, as `options` ask.
    fn windows(&self, _question: &str, _context: &str, _options: &AnswerOptions) -> Result<Vec<Encoding>> {
        Err(Error::Input(format!(
            "model `{}` is a {} model: it answers no questions",
            self.info().name,
            self.info().task.as_str()
        )))
    }

    /// A question-answering model's answers to one question from its windows and the
    /// start and end logits the engine ran: the pipeline's span selection.
    fn answers_of(
        &self,
        _context: &str,
        _windows: &[Encoding],
        _logits: &[SpanLogits],
        _options: &AnswerOptions,
    ) -> Result<Vec<Answer>> {
        Err(Error::Input(format!(
            "model `{}` is a {} model: it answers no questions",
            self.info().name,
            self.info().task.as_str()
        )))
    }

    /// The whole work of a request for `inputs` (tokenize or decode, infer, post-process)
    /// with the model's defaults, its answer dropped: what warm-up and measurement run.
    /// Inputs of the other modality are refused.
    fn process(&self, inputs: &[Input<'_>]) -> Result<()>;
}

impl dyn TaskModel + '_ {
    /// A text model's tokenizer, or an error that says the model takes images.
    pub fn text_encoder(&self) -> Result<&TextEncoder> {
        text_encoder(self)
    }
}

/// `model`'s tokenizer, or an error that says it takes images.
fn text_encoder<M: TaskModel + ?Sized>(model: &M) -> Result<&TextEncoder> {
    model.encoder().ok_or_else(|| {
        Error::Input(format!(
            "model `{}` is an {} model: it takes images, not texts",
            model.info().name,
            model.info().task.as_str()
        ))
    })
}

/// The texts of `inputs`, or an error if one is an image.
pub fn texts_of<'a>(inputs: &[Input<'a>]) -> Result<Vec<&'a str>> {
    inputs.iter().map(Input::text).collect()
}

/// One input of a model: a text, an image, or a question about a context.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Text(&'a str),
    /// An encoded image: PNG or JPEG bytes.
    Image(&'a [u8]),
    /// A question-answering model's input.
    Question {
        question: &'a str,
        context: &'a str,
    },
}

impl<'a> Input<'a> {
    pub fn text(&self) -> Result<&'a str> {
        match *self {
            Self::Text(text) => Ok(text),
            Self::Image(_) => Err(Error::Input("an image was given to a text model".into())),
            Self::Question { .. } => Err(Error::Input(
                "a question and its context were given to a model that takes one text".into(),
            )),
        }
    }

    pub fn image(&self) -> Result<&'a [u8]> {
        match *self {
            Self::Image(bytes) => Ok(bytes),
            _ => Err(Error::Input("a text was given to an image model".into())),
        }
    }

    /// The question and its context of a question-answering model's input.
    pub fn question(&self) -> Result<(&'a str, &'a str)> {
        match *self {
            Self::Question { question, context } => Ok((question, context)),
            Self::Text(_) => Err(Error::Input(
                "a question-answering model takes a question and its context, not one text".into(),
            )),
            Self::Image(_) => Err(Error::Input("an image was given to a question-answering model".into())),
        }
    }
}

/// One generated model, as the umbrella crate lists it.
#[derive(Debug, Clone, Copy)]
pub struct ModelEntry {
    pub name: &'static str,
    pub task: Task,
    /// The model card, Markdown: the generated crate's `README.md` (its task, base model,
    /// data, training, test figures, labels, variants and ONNX signature).
    pub card: &'static str,
    /// Loads the model from its ONNX folder (`artifacts/<name>/onnx`).
    pub load: fn(&Path, &LoadOptions) -> Result<Box<dyn TaskModel>>,
}
