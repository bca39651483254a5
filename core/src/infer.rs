//! What every protocol asks of a model, answered typed: [`Infer::classify`],
//! [`Infer::embed`], [`Infer::entities`], [`Infer::answer`], [`Infer::classify_images`],
//! [`Infer::detect`], [`Infer::embed_images`], [`Infer::zero_shot`], [`Infer::tokenize`]. Each prepares its rows off the async runtime (tokenizing a batch
//! of long texts or decoding images takes milliseconds), checks the truncation rule,
//! hands the rows to the model's engine and awaits the answer without holding a thread,
//! then applies the post-processing: the function to apply, the normalisation, entity
//! aggregation, the choice of answer spans. A protocol only parses its request and shapes the typed answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use modelcrate_runtime::classification::ClassificationFunction;
use modelcrate_runtime::detection::{DecodeOptions, RawDetection};
use modelcrate_runtime::embedding::l2_normalize;
use modelcrate_runtime::image_text::{ImageEmbedding, TextEmbedding, hypothesis, zero_shot_scores};
use modelcrate_runtime::question_answering::SpanLogits;
use modelcrate_runtime::{
    AggregationStrategy, Answer, AnswerOptions, Entity, ImageError, ModelInfo, RowOutput, Task, TaskModel,
};
use tokenizers::Encoding;

use crate::engine::{Answered, Engine, Rows};
use crate::error::CoreError;

/// The limits a request is held to in the core.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a request may wait for its answer.
    pub request_timeout: Duration,
    /// Whether a text longer than the model's max length is cut there when the request
    /// does not say (TEI's `--auto-truncate`); otherwise it is refused.
    pub auto_truncate: bool,
    /// Largest image decoded, in pixels.
    pub max_image_pixels: u64,
}

/// What to do with a text longer than the model's max length.
#[derive(Debug, Clone, Copy)]
pub enum Truncate<'a> {
    /// Cut it there, as the `transformers` pipeline does.
    Always,
    /// As the request says (`Some`), or as the server's `auto_truncate` says; when not
    /// allowed, refuse it naming `field` (`inputs`, or `inputs[3]` in a batch).
    Asked { allowed: Option<bool>, field: &'a str },
    /// As the server's `auto_truncate` says, for a protocol whose requests cannot ask
    /// (OpenAI's); when not allowed, refuse it naming `field`.
    Server { field: &'a str },
}

/// What a request's rows were made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// Tokenized texts.
    Texts,
    /// Decoded and resized images.
    Images,
}

/// Where a request's time went, and the batch it ran in.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub prepared: Prepared,
    /// Tokenizing the texts or decoding the images.
    pub preparation: Duration,
    /// From submission until a worker started the request's batch.
    pub queue: Duration,
    /// The batch's `session.run`s.
    pub inference: Duration,
    /// Rows in the batch it ran in (its own and other requests').
    pub batch_rows: usize,
    /// Rows of the request that ran beside texts of other lengths (padded runs).
    pub mixed_length_rows: usize,
}

impl Timings {
    fn of(answered: &Answered) -> Self {
        Self {
            prepared: match answered.inputs {
                Rows::Texts(_) => Prepared::Texts,
                Rows::Images(_) => Prepared::Images,
            },
            preparation: answered.preparation_time,
            queue: answered.queue_time,
            inference: answered.inference_time,
            batch_rows: answered.batch_rows,
            mixed_length_rows: answered.mixed_length_rows,
        }
    }
}

/// Classified inputs: per input, the logits and the scores (the function applied).
#[derive(Debug, Clone)]
pub struct Classified {
    pub logits: Vec<Vec<f32>>,
    pub scores: Vec<Vec<f32>>,
    pub function: ClassificationFunction,
    pub timings: Timings,
}

/// Embedded texts: one vector each, and the tokens they took.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub embeddings: Vec<Vec<f32>>,
    pub normalized: bool,
    /// Tokens of all texts, special tokens included (OpenAI's `usage`).
    pub tokens: usize,
    pub timings: Timings,
}

/// The entities of each text.
#[derive(Debug, Clone)]
pub struct Found {
    pub entities: Vec<Vec<Entity>>,
    pub timings: Timings,
}

/// The answers to each question, best first, and what they were chosen from.
#[derive(Debug, Clone)]
pub struct Answers {
    pub answers: Vec<Vec<Answer>>,
    /// Each question's windows' start and end logits, as the engine ran them.
    pub logits: Vec<Vec<SpanLogits>>,
    /// Each question's windows' token ids.
    pub window_ids: Vec<Vec<Vec<u32>>>,
    pub timings: Timings,
}

/// The objects found in each image, best first, in the image's pixels (labels by id:
/// the model's `info().labels` names them).
#[derive(Debug, Clone)]
pub struct Detected {
    pub detections: Vec<Vec<RawDetection>>,
    pub timings: Timings,
}

/// Embedded images: one unit vector each, in the space the model's texts share.
#[derive(Debug, Clone)]
pub struct ImagesEmbedded {
    pub embeddings: Vec<Vec<f32>>,
    pub timings: Timings,
}

/// Images classified zero-shot: per image, its scores over the candidate labels in the
/// request's order (the caller sorts them), and where the time of each tower's run went.
#[derive(Debug, Clone)]
pub struct ZeroShot {
    pub scores: Vec<Vec<f32>>,
    /// The hypotheses embedded: the candidate labels in the template.
    pub hypotheses: Vec<String>,
    pub image_timings: Timings,
    pub text_timings: Timings,
}

/// One token of a text as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: u32,
    /// The text's piece under the token (the token itself for a special one).
    pub text: String,
    pub special: bool,
    /// Byte offsets into the text; `None` for a special token.
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

/// One model's inference, as every route asks for it. Cheap to make per request: a
/// handle on the model's engine (the one serving now: a hot reload swaps engines, and a
/// request keeps the one it started on).
#[derive(Clone)]
pub struct Infer {
    engine: Arc<Engine>,
    limits: Limits,
}

impl Infer {
    pub fn new(engine: Arc<Engine>, limits: Limits) -> Self {
        Self { engine, limits }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn model(&self) -> &dyn TaskModel {
        self.engine.model().as_ref()
    }

    /// Refused unless the model is of `task`: `asked` names what the request wanted.
    fn require(&self, task: Task, asked: &str) -> Result<(), CoreError> {
        self.require_any(&[task], asked)
    }

    /// Refused unless the model is of one of `tasks`.
    fn require_any(&self, tasks: &[Task], asked: &str) -> Result<(), CoreError> {
        if tasks.contains(&self.info().task) {
            Ok(())
        } else {
            Err(self.wrong_task(asked))
        }
    }

    pub fn info(&self) -> &ModelInfo {
        self.engine.model().info()
    }

    /// Text classification: logits and scores per text. `function` is the request's, or
    /// the model's default (the pipeline's: by problem type).
    pub async fn classify(
        &self,
        texts: Vec<String>,
        truncate: Truncate<'_>,
        function: Option<ClassificationFunction>,
    ) -> Result<Classified, CoreError> {
        let (encodings, took) = self.encode(texts, truncate).await?;
        self.classify_encoded(encodings, took, function).await
    }

    /// [`Infer::classify`] of texts already tokenized (and checked) by the caller.
    pub async fn classify_encoded(
        &self,
        encodings: Vec<Encoding>,
        tokenization: Duration,
        function: Option<ClassificationFunction>,
    ) -> Result<Classified, CoreError> {
        self.require(Task::TextClassification, "text classification")?;
        let function = function
            .or(self.info().default_function())
            .unwrap_or(ClassificationFunction::Softmax);
        let answered = self.run(Rows::Texts(encodings), tokenization).await?;
        classified(&answered, function)
    }

    /// What the model yields for each text before any post-processing (logits, a pooled
    /// vector, per-token logits), run in the engine's batches.
    pub async fn rows(
        &self,
        texts: Vec<String>,
        truncate: Truncate<'_>,
    ) -> Result<(Vec<RowOutput>, Timings), CoreError> {
        let (encodings, took) = self.encode(texts, truncate).await?;
        let answered = self.run(Rows::Texts(encodings), took).await?;
        let timings = Timings::of(&answered);
        Ok((answered.rows, timings))
    }

    /// Sentence embeddings, L2-normalised when `normalize` says (the model's own
    /// `Normalize` module when it does not).
    pub async fn embed(
        &self,
        texts: Vec<String>,
        truncate: Truncate<'_>,
        normalize: Option<bool>,
    ) -> Result<Embedded, CoreError> {
        let (encodings, took) = self.encode(texts, truncate).await?;
        self.embed_encoded(encodings, took, normalize).await
    }

    /// [`Infer::embed`] of texts already tokenized (and checked) by the caller.
    pub async fn embed_encoded(
        &self,
        encodings: Vec<Encoding>,
        tokenization: Duration,
        normalize: Option<bool>,
    ) -> Result<Embedded, CoreError> {
        // An image–text model's text tower embeds texts as a sentence-embedding model does.
        self.require_any(
            &[Task::FeatureExtraction, Task::ZeroShotImageClassification],
            "sentence embeddings",
        )?;
        let normalized = normalize.or(self.info().normalize).unwrap_or(false);
        let tokens = encodings.iter().map(Encoding::len).sum();
        let answered = self.run(Rows::Texts(encodings), tokenization).await?;
        let embeddings = rows_of(&answered, |row| match row {
            RowOutput::Pooled(pooled) => {
                let mut vector = pooled.clone();
                if normalized {
                    l2_normalize(&mut vector);
                }
                Some(vector)
            }
            _ => None,
        })?;
        Ok(Embedded {
            embeddings,
            normalized,
            tokens,
            timings: Timings::of(&answered),
        })
    }

    /// Named entities per text, aggregated by `strategy`, without the labels in
    /// `ignore_labels` (the pipeline's default, `O`, when `None`). Texts longer than the
    /// model's max length are cut there, as the pipeline does.
    pub async fn entities(
        &self,
        texts: Vec<String>,
        strategy: AggregationStrategy,
        ignore_labels: Option<Vec<String>>,
    ) -> Result<Found, CoreError> {
        self.require(Task::TokenClassification, "token classification")?;
        let (encodings, took) = self.tokenized(texts.clone()).await?;
        let answered = self.run(Rows::Texts(encodings), took).await?;
        let tagger = self.model();
        let ignore: Option<Vec<&str>> = ignore_labels
            .as_ref()
            .map(|labels| labels.iter().map(String::as_str).collect());
        let logits = rows_of(&answered, |row| match row {
            RowOutput::TokenLogits(logits) => Some(logits),
            _ => None,
        })?;
        let entities = texts
            .iter()
            .zip(answered.inputs.encodings())
            .zip(logits)
            .map(|((text, encoding), logits)| tagger.entities_of(text, encoding, logits, strategy, ignore.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Found {
            entities,
            timings: Timings::of(&answered),
        })
    }

    /// Extractive question answering: each (question, context) pair cut into windows as
    /// `options` say, every window a row of the engine's batches, and the best spans
    /// chosen across a pair's windows as the pipeline chooses them.
    pub async fn answer(&self, pairs: Vec<(String, String)>, options: AnswerOptions) -> Result<Answers, CoreError> {
        self.require(Task::QuestionAnswering, "question answering")?;
        let engine = Arc::clone(&self.engine);
        let (windows, took) = off_runtime(move || {
            let started = Instant::now();
            let count = pairs.len();
            let windows = pairs
                .iter()
                .enumerate()
                .map(|(index, (question, context))| {
                    engine.model().windows(question, context, &options).map_err(|error| {
                        let which = if count == 1 {
                            String::new()
                        } else {
                            format!("`inputs[{index}]`: ")
                        };
                        CoreError::Invalid(format!("{which}{error}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(((pairs, windows), started.elapsed()))
        })
        .await?;
        let (pairs, windows) = windows;
        let per_pair: Vec<usize> = windows.iter().map(Vec::len).collect();
        let answered = self
            .run(Rows::Texts(windows.into_iter().flatten().collect()), took)
            .await?;
        let logits = rows_of(&answered, |row| match row {
            RowOutput::SpanLogits(logits) => Some(logits),
            _ => None,
        })?;
        let encodings = answered.inputs.encodings();
        let model = self.model();
        let mut at = 0;
        let (mut answers, mut per_question, mut window_ids) = (Vec::new(), Vec::new(), Vec::new());
        for ((_, context), count) in pairs.iter().zip(per_pair) {
            let own: Vec<SpanLogits> = logits[at..at + count].iter().map(|&l| l.clone()).collect();
            let windows = &encodings[at..at + count];
            answers.push(model.answers_of(context, windows, &own, &options)?);
            window_ids.push(windows.iter().map(|window| window.get_ids().to_vec()).collect());
            per_question.push(own);
            at += count;
        }
        Ok(Answers {
            answers,
            logits: per_question,
            window_ids,
            timings: Timings::of(&answered),
        })
    }

    /// Image classification of encoded images (PNG or JPEG), each decoded and prepared
    /// as PIL and torchvision do; `function` defaults to softmax, as the pipeline's.
    pub async fn classify_images<I: AsRef<[u8]> + Send + 'static>(
        &self,
        images: Vec<I>,
        function: Option<ClassificationFunction>,
    ) -> Result<Classified, CoreError> {
        self.require(Task::ImageClassification, "image classification")?;
        let Some(preprocessing) = self.info().image else {
            return Err(CoreError::Failed(
                "an image classifier without its preprocessing".into(),
            ));
        };
        let (prepared, preparation) = self
            .prepare_images(images, move |bytes, max_pixels| {
                preprocessing.prepare(bytes, max_pixels)
            })
            .await?;
        let answered = self.run(Rows::Images(prepared), preparation).await?;
        let function = function
            .or(self.info().default_function())
            .unwrap_or(ClassificationFunction::Softmax);
        classified(&answered, function)
    }

    /// Object detection in encoded images (PNG or JPEG), each decoded and letterboxed as
    /// PIL does; each image's outputs decoded with `options` (score threshold, NMS).
    pub async fn detect<I: AsRef<[u8]> + Send + 'static>(
        &self,
        images: Vec<I>,
        options: DecodeOptions,
    ) -> Result<Detected, CoreError> {
        self.require(Task::ObjectDetection, "object detection")?;
        let Some(detector) = self.info().detector else {
            return Err(CoreError::Failed("a detector without its letterbox".into()));
        };
        let (prepared, preparation) = self
            .prepare_images(images, move |bytes, max_pixels| {
                detector.letterboxing.prepare(bytes, max_pixels)
            })
            .await?;
        let (tensors, geometries): (Vec<_>, Vec<_>) = prepared.into_iter().unzip();
        let answered = self.run(Rows::Images(tensors), preparation).await?;
        let detections = answered
            .rows
            .iter()
            .zip(&geometries)
            .map(|(row, geometry)| match row {
                RowOutput::Detection(raw) => Ok(raw.decode(detector.grid, geometry, options)?),
                other => Err(CoreError::Failed(format!("a detector's row yielded {other:?}"))),
            })
            .collect::<Result<Vec<_>, CoreError>>()?;
        Ok(Detected {
            detections,
            timings: Timings::of(&answered),
        })
    }

    /// An image–text model's image embeddings of encoded images (PNG or JPEG), each
    /// decoded and prepared as PIL and torchvision do.
    pub async fn embed_images<I: AsRef<[u8]> + Send + 'static>(
        &self,
        images: Vec<I>,
    ) -> Result<ImagesEmbedded, CoreError> {
        self.require(Task::ZeroShotImageClassification, "image embeddings")?;
        let answered = self.run_image_tower(images).await?;
        Ok(ImagesEmbedded {
            embeddings: pooled_rows(&answered)?,
            timings: Timings::of(&answered),
        })
    }

    /// Zero-shot image classification, as the pipeline does it: each of
    /// `candidate_labels` put in `template` (the hypotheses, embedded by the text tower in
    /// one batch), each image embedded by the image tower, and per image the softmax over
    /// the candidates of the model's temperature × the similarities. A hypothesis longer
    /// than the model's max length is refused unless the server truncates.
    pub async fn zero_shot<I: AsRef<[u8]> + Send + 'static>(
        &self,
        images: Vec<I>,
        candidate_labels: Vec<String>,
        template: &str,
    ) -> Result<ZeroShot, CoreError> {
        self.require(Task::ZeroShotImageClassification, "zero-shot image classification")?;
        let Some(image_text) = self.info().image_text else {
            return Err(CoreError::Failed("an image–text model without its temperature".into()));
        };
        if candidate_labels.is_empty() {
            return Err(CoreError::Invalid(
                "`candidate_labels` is empty: give at least one label to score the image against".into(),
            ));
        }
        let hypotheses = candidate_labels
            .iter()
            .map(|label| hypothesis(template, label).map_err(|error| CoreError::Invalid(error.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let (encodings, took) = self
            .encode(
                hypotheses.clone(),
                Truncate::Server {
                    field: "candidate_labels",
                },
            )
            .await?;
        let texts = self.run(Rows::Texts(encodings), took).await?;
        let candidates: Vec<TextEmbedding> = pooled_rows(&texts)?.into_iter().map(TextEmbedding).collect();
        let answered = self.run_image_tower(images).await?;
        let scale = image_text.scale();
        let scores = pooled_rows(&answered)?
            .into_iter()
            .map(|vector| zero_shot_scores(&ImageEmbedding(vector), &candidates, scale))
            .collect();
        Ok(ZeroShot {
            scores,
            hypotheses,
            image_timings: Timings::of(&answered),
            text_timings: Timings::of(&texts),
        })
    }

    /// `images` prepared for an image–text model's image tower and run by the engine.
    async fn run_image_tower<I: AsRef<[u8]> + Send + 'static>(&self, images: Vec<I>) -> Result<Answered, CoreError> {
        let Some(preprocessing) = self.info().image else {
            return Err(CoreError::Failed(
                "an image–text model without its preprocessing".into(),
            ));
        };
        let (prepared, preparation) = self
            .prepare_images(images, move |bytes, max_pixels| {
                preprocessing.prepare(bytes, max_pixels)
            })
            .await?;
        self.run(Rows::Images(prepared), preparation).await
    }

    /// Each image decoded and prepared by `prepare` on a blocking thread, and how long it
    /// took; an image that cannot be is refused, named by its index in a batch.
    async fn prepare_images<I, T>(
        &self,
        images: Vec<I>,
        prepare: impl Fn(&[u8], u64) -> Result<T, ImageError> + Send + 'static,
    ) -> Result<(Vec<T>, Duration), CoreError>
    where
        I: AsRef<[u8]> + Send + 'static,
        T: Send + 'static,
    {
        let max_pixels = self.limits.max_image_pixels;
        off_runtime(move || {
            let count = images.len();
            let preparing = Instant::now();
            let prepared = images
                .iter()
                .enumerate()
                .map(|(index, bytes)| {
                    prepare(bytes.as_ref(), max_pixels).map_err(|error| {
                        let which = if count == 1 {
                            String::new()
                        } else {
                            format!("image {index}: ")
                        };
                        match error {
                            ImageError::TooLarge { .. } => CoreError::TooLarge(format!("{which}{error}")),
                            _ => CoreError::Invalid(format!("{which}{error}")),
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((prepared, preparing.elapsed()))
        })
        .await
    }

    /// Each text's tokens as the model's tokenizer makes them (not truncated), with
    /// `add_special_tokens` as the request says.
    pub async fn tokenize(&self, texts: Vec<String>, add_special_tokens: bool) -> Result<Vec<Vec<Token>>, CoreError> {
        let engine = Arc::clone(&self.engine);
        off_runtime(move || {
            let tokenizer = engine.model().text_encoder()?.tokenizer();
            texts
                .iter()
                .map(|text| {
                    let encoding = tokenizer
                        .encode(text.as_str(), add_special_tokens)
                        .map_err(|error| CoreError::Invalid(format!("cannot tokenize: {error}")))?;
                    Ok(tokens_of(text, &encoding))
                })
                .collect()
        })
        .await
    }

    /// `texts` tokenized as the engine takes them, checked against the truncation rule.
    pub async fn encode(
        &self,
        texts: Vec<String>,
        truncate: Truncate<'_>,
    ) -> Result<(Vec<Encoding>, Duration), CoreError> {
        let (encodings, took) = self.tokenized(texts).await?;
        let encodings = self.truncation_checked(encodings, truncate)?;
        Ok((encodings, took))
    }

    /// `texts` tokenized for the model on a blocking thread, and how long it took.
    async fn tokenized(&self, texts: Vec<String>) -> Result<(Vec<Encoding>, Duration), CoreError> {
        let engine = Arc::clone(&self.engine);
        off_runtime(move || {
            let started = Instant::now();
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            let encodings = engine.model().encode(&texts)?;
            Ok((encodings, started.elapsed()))
        })
        .await
    }

    /// `encodings` as they are when truncation is allowed; otherwise refused, naming the
    /// first text longer than the model's max length.
    fn truncation_checked(&self, encodings: Vec<Encoding>, truncate: Truncate<'_>) -> Result<Vec<Encoding>, CoreError> {
        let (field, remedy) = match truncate {
            Truncate::Always => return Ok(encodings),
            Truncate::Asked { allowed, .. } if allowed.unwrap_or(self.limits.auto_truncate) => return Ok(encodings),
            Truncate::Server { .. } if self.limits.auto_truncate => return Ok(encodings),
            Truncate::Asked { field, .. } => (
                field,
                "send `truncate: true` to cut it there, or start the server with --auto-truncate",
            ),
            Truncate::Server { field } => (
                field,
                "the server cuts such texts only when started with --auto-truncate",
            ),
        };
        let max_length = self.info().max_length;
        // The tokenizer truncates at `max_length` and keeps the rest as overflow.
        match encodings
            .iter()
            .position(|encoding| !encoding.get_overflowing().is_empty())
        {
            None => Ok(encodings),
            Some(index) => {
                let which = if encodings.len() == 1 {
                    format!("`{field}`")
                } else {
                    format!("`{field}[{index}]`")
                };
                Err(CoreError::TooLarge(format!(
                    "{which} is longer than the model's {max_length} tokens; {remedy}"
                )))
            }
        }
    }

    /// Runs `rows` in the engine's batches and awaits the answer, holding no thread
    /// while it waits; past the request timeout it is refused (and the engine drops the
    /// job unrun if it has not started). `preparation` is what making the rows took.
    async fn run(&self, rows: Rows, preparation: Duration) -> Result<Answered, CoreError> {
        let timeout = self.limits.request_timeout;
        let pending = self.engine.submit(rows, preparation, timeout)?;
        match tokio::time::timeout(timeout, pending.answer()).await {
            Ok(answered) => Ok(answered?),
            Err(_) => Err(CoreError::Timeout(timeout)),
        }
    }

    fn wrong_task(&self, asked: &str) -> CoreError {
        let info = self.info();
        CoreError::Invalid(format!(
            "model `{}` is a {} model; it does not do {asked}",
            info.name,
            info.task.as_str()
        ))
    }
}

/// `work` on a blocking thread, off the async runtime.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CoreError> + Send + 'static,
) -> Result<T, CoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| CoreError::Failed(error.to_string()))?
}

/// The rows of an answer as the outputs its task yields; anything else is a bug.
fn rows_of<'a, T>(answered: &'a Answered, pick: impl Fn(&'a RowOutput) -> Option<T>) -> Result<Vec<T>, CoreError> {
    answered
        .rows
        .iter()
        .map(|row| pick(row).ok_or_else(|| CoreError::Failed("the engine answered another task's output".into())))
        .collect()
}

/// The vectors of an answer whose rows are embeddings.
fn pooled_rows(answered: &Answered) -> Result<Vec<Vec<f32>>, CoreError> {
    rows_of(answered, |row| match row {
        RowOutput::Pooled(vector) => Some(vector.clone()),
        _ => None,
    })
}

/// A classifier's answer: each row's logits, and its scores under `function`.
fn classified(answered: &Answered, function: ClassificationFunction) -> Result<Classified, CoreError> {
    let logits = rows_of(answered, |row| match row {
        RowOutput::Logits(logits) => Some(logits.clone()),
        _ => None,
    })?;
    let scores = logits.iter().map(|row| function.apply(row)).collect();
    Ok(Classified {
        logits,
        scores,
        function,
        timings: Timings::of(answered),
    })
}

/// The tokens of `encoding`, with the text's piece under each.
fn tokens_of(text: &str, encoding: &Encoding) -> Vec<Token> {
    encoding
        .get_ids()
        .iter()
        .zip(encoding.get_offsets())
        .zip(encoding.get_special_tokens_mask())
        .zip(encoding.get_tokens())
        .map(|(((&id, &(start, stop)), &mask), token)| {
            if mask == 1 {
                Token {
                    id,
                    text: token.clone(),
                    special: true,
                    start: None,
                    stop: None,
                }
            } else {
                Token {
                    id,
                    text: text.get(start..stop).unwrap_or(token).to_string(),
                    special: false,
                    start: Some(start),
                    stop: Some(stop),
                }
            }
        })
        .collect()
}
