//! The gate's path to a model: the inference core, as the server calls it. A variant is
//! checked on an engine of its own laid out like the server's (length-sorted runs of up
//! to 32 rows, requests merged across callers, no merge limit by length), so that every
//! answer checked went through the same tokenization, batching, padding and
//! post-processing as a served one; each call is tallied, and the report says how many
//! inputs ran beside inputs of other lengths.
//!
//! Inputs go as one request each (alone), all in one request, as requests of a full
//! batch (32) one after another (the test split: each request one run of short and long
//! texts padded together, so the figures are the same run after run), and as one request
//! each all at once, which the engine merges into batches as it does under load (which
//! requests share a batch then depends on timing). A dynamically quantized variant's
//! outputs depend on its batch mates (the activations' range is taken over the padded
//! batch): its logit figures are reported, and its test metric is taken on full batches.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Result, anyhow};
use futures_util::future::try_join_all;
use modelcrate_core::{Answers, BatchingOptions, Engine, Infer, Limits, Timings, Truncate, ZeroShot};
use modelcrate_runtime::classification::ClassificationFunction;
use modelcrate_runtime::detection::{DecodeOptions, RawDetection};
use modelcrate_runtime::image::DEFAULT_MAX_PIXELS;
use modelcrate_runtime::{AggregationStrategy, AnswerOptions, Entity, MergeLimits, RowOutput, TaskModel};
use modelcrate_schema::ParityBatching;
use ndarray::Array2;
use tokenizers::Encoding;

/// A check never waits on an answer this long: it has the machine to itself.
const PATIENCE: Duration = Duration::from_secs(600);

/// How the gate's engine batches: as the server's defaults, merging whatever fits.
fn batching() -> BatchingOptions {
    BatchingOptions {
        merge: MergeLimits::unlimited(),
        // Every request of a check is submitted at once: none may be refused.
        queue_capacity: usize::MAX,
        ..BatchingOptions::default()
    }
}

/// The inference core on `model`, with every answer tallied.
pub struct Through {
    infer: Infer,
    tally: Mutex<ParityBatching>,
}

impl Through {
    /// Starts an engine for `model`; it stops when this is dropped.
    pub fn start(model: Arc<dyn TaskModel>) -> Self {
        let engine = Arc::new(Engine::start(model, batching()));
        let limits = Limits {
            request_timeout: PATIENCE,
            auto_truncate: true,
            max_image_pixels: DEFAULT_MAX_PIXELS,
        };
        Self {
            infer: Infer::new(engine, limits),
            tally: Mutex::default(),
        }
    }

    /// The requests, inputs and batches the checks went through.
    pub fn tally(&self) -> ParityBatching {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The model checked.
    pub fn model(&self) -> &dyn TaskModel {
        self.infer.model()
    }

    /// Most rows in one `session.run`.
    pub fn batch_size(&self) -> usize {
        self.infer.engine().options().max_batch_size
    }

    fn count(&self, inputs: usize, timings: &Timings) {
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.requests += 1;
        tally.inputs += inputs;
        tally.mixed_length_inputs += timings.mixed_length_rows;
        tally.largest_batch = tally.largest_batch.max(timings.batch_rows);
    }

    /// `texts` tokenized as the core tokenizes them for this model (cut at its max length).
    pub async fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        let (encodings, _) = self.infer.encode(owned(texts), Truncate::Always).await?;
        Ok(encodings)
    }

    /// A classifier's logits and its scores under `function` (the model's default when
    /// `None`), one request of all `texts`.
    pub async fn classify(&self, texts: &[&str], function: Option<ClassificationFunction>) -> Result<Scored> {
        let classified = self.infer.classify(owned(texts), Truncate::Always, function).await?;
        self.count(texts.len(), &classified.timings);
        Ok(Scored {
            logits: classified.logits,
            scores: classified.scores,
        })
    }

    /// [`Through::classify`] with the model's function, each text a request of its own,
    /// one after another.
    pub async fn classify_each(&self, texts: &[&str]) -> Result<Scored> {
        self.classify_in(texts.chunks(1)).await
    }

    /// [`Through::classify`] with the model's function, as requests of
    /// a full batch one after another.
    pub async fn classify_in_requests(&self, texts: &[&str]) -> Result<Scored> {
        self.classify_in(texts.chunks(self.batch_size())).await
    }

    async fn classify_in(&self, requests: std::slice::Chunks<'_, &str>) -> Result<Scored> {
        let mut all = Scored::default();
        for request in requests {
            all.extend(self.classify(request, None).await?);
        }
        Ok(all)
    }

    /// [`Through::classify`] with the model's function, each text a request of its own,
    /// all at once: the engine merges them into batches.
    pub async fn classify_at_once(&self, texts: &[&str]) -> Result<Scored> {
        let answers = try_join_all(texts.chunks(1).map(|text| self.classify(text, None))).await?;
        Ok(answers.into_iter().fold(Scored::default(), |mut all, one| {
            all.extend(one);
            all
        }))
    }

    /// Sentence embeddings, normalised as the model does, one request of all `texts`.
    pub async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let embedded = self.infer.embed(owned(texts), Truncate::Always, None).await?;
        self.count(texts.len(), &embedded.timings);
        Ok(embedded.embeddings)
    }

    /// [`Through::embed`] of each text as a request of its own, one after another.
    pub async fn embed_each(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_in(texts.chunks(1)).await
    }

    /// [`Through::embed`] as requests of a full batch, one after another.
    pub async fn embed_in_requests(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_in(texts.chunks(self.batch_size())).await
    }

    async fn embed_in(&self, requests: std::slice::Chunks<'_, &str>) -> Result<Vec<Vec<f32>>> {
        let mut all = Vec::new();
        for request in requests {
            all.extend(self.embed(request).await?);
        }
        Ok(all)
    }

    /// [`Through::embed`] of each text as a request of its own, all at once.
    pub async fn embed_at_once(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let answers = try_join_all(texts.chunks(1).map(|text| self.embed(text))).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// A token classifier's logits `[tokens, labels]` per text (its real tokens), one
    /// request of all `texts`.
    pub async fn token_logits(&self, texts: &[&str]) -> Result<Vec<Array2<f32>>> {
        let (rows, timings) = self.infer.rows(owned(texts), Truncate::Always).await?;
        self.count(texts.len(), &timings);
        rows.into_iter()
            .map(|row| match row {
                RowOutput::TokenLogits(logits) => Ok(logits),
                _ => Err(anyhow!("the core answered another task's output")),
            })
            .collect()
    }

    /// [`Through::token_logits`] of each text as a request of its own, one after another.
    pub async fn token_logits_each(&self, texts: &[&str]) -> Result<Vec<Array2<f32>>> {
        let mut all = Vec::with_capacity(texts.len());
        for text in texts.chunks(1) {
            all.extend(self.token_logits(text).await?);
        }
        Ok(all)
    }

    /// [`Through::token_logits`] of each text as a request of its own, all at once.
    pub async fn token_logits_at_once(&self, texts: &[&str]) -> Result<Vec<Array2<f32>>> {
        let answers = try_join_all(texts.chunks(1).map(|text| self.token_logits(text))).await?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// The entities of each text, one request of all `texts`.
    pub async fn entities(
        &self,
        texts: &[&str],
        strategy: AggregationStrategy,
        ignore_labels: Option<Vec<String>>,
    ) -> Result<Vec<Vec<Entity>>> {
        let found = self.infer.entities(owned(texts), strategy, ignore_labels).await?;
        self.count(texts.len(), &found.timings);
        Ok(found.entities)
    }

    /// [`Through::entities`] of each text as a request of its own, one after another.
    pub async fn entities_each(&self, texts: &[&str], strategy: AggregationStrategy) -> Result<Vec<Vec<Entity>>> {
        let mut all = Vec::with_capacity(texts.len());
        for text in texts.chunks(1) {
            all.extend(self.entities(text, strategy, None).await?);
        }
        Ok(all)
    }

    /// [`Through::entities`] as requests of a full batch, one after another.
    pub async fn entities_in_requests(
        &self,
        texts: &[&str],
        strategy: AggregationStrategy,
    ) -> Result<Vec<Vec<Entity>>> {
        let mut all = Vec::with_capacity(texts.len());
        for request in texts.chunks(self.batch_size()) {
            all.extend(self.entities(request, strategy, None).await?);
        }
        Ok(all)
    }

    /// The answers to each (question, context) pair under `options`, one request of all.
    pub async fn answer(&self, pairs: &[(&str, &str)], options: AnswerOptions) -> Result<Answers> {
        let owned = pairs
            .iter()
            .map(|(q, c)| ((*q).to_string(), (*c).to_string()))
            .collect();
        let answered = self.infer.answer(owned, options).await?;
        // The engine's inputs are the questions' windows (a long context is several).
        let windows = answered.logits.iter().map(Vec::len).sum();
        self.count(windows, &answered.timings);
        Ok(answered)
    }

    /// [`Through::answer`] of each pair as a request of its own, one after another.
    pub async fn answer_each(&self, pairs: &[(&str, &str)], options: AnswerOptions) -> Result<Answers> {
        let mut all = Vec::with_capacity(pairs.len());
        for pair in pairs.chunks(1) {
            all.push(self.answer(pair, options).await?);
        }
        joined(all)
    }

    /// [`Through::answer`] as requests of a full batch, one after another.
    pub async fn answer_in_requests(&self, pairs: &[(&str, &str)], options: AnswerOptions) -> Result<Answers> {
        let mut all = Vec::new();
        for request in pairs.chunks(self.batch_size()) {
            all.push(self.answer(request, options).await?);
        }
        joined(all)
    }

    /// [`Through::answer`] of each pair as a request of its own, all at once.
    pub async fn answer_at_once(&self, pairs: &[(&str, &str)], options: AnswerOptions) -> Result<Answers> {
        joined(try_join_all(pairs.chunks(1).map(|pair| self.answer(pair, options))).await?)
    }

    /// An image classifier's logits, one request of all `images` (encoded files).
    pub async fn image_logits(&self, images: &[&[u8]]) -> Result<Vec<Vec<f32>>> {
        let owned: Vec<Vec<u8>> = images.iter().map(|bytes| bytes.to_vec()).collect();
        let classified = self.infer.classify_images(owned, None).await?;
        self.count(images.len(), &classified.timings);
        Ok(classified.logits)
    }

    /// [`Through::image_logits`] as requests of a full batch, one after another.
    pub async fn image_logits_in_requests(&self, images: &[&[u8]]) -> Result<Vec<Vec<f32>>> {
        let mut all = Vec::with_capacity(images.len());
        for request in images.chunks(self.batch_size()) {
            all.extend(self.image_logits(request).await?);
        }
        Ok(all)
    }

    /// A detector's detections in each image, one request of all `images` (encoded files).
    pub async fn detections(&self, images: &[&[u8]], options: DecodeOptions) -> Result<Vec<Vec<RawDetection>>> {
        let owned: Vec<Vec<u8>> = images.iter().map(|bytes| bytes.to_vec()).collect();
        let detected = self.infer.detect(owned, options).await?;
        self.count(images.len(), &detected.timings);
        Ok(detected.detections)
    }

    /// [`Through::detections`] as requests of a full batch, one after another.
    pub async fn detections_in_requests(
        &self,
        images: &[&[u8]],
        options: DecodeOptions,
    ) -> Result<Vec<Vec<RawDetection>>> {
        let mut all = Vec::with_capacity(images.len());
        for request in images.chunks(self.batch_size()) {
            all.extend(self.detections(request, options).await?);
        }
        Ok(all)
    }
}

impl Through {
    /// An image–text model's image embeddings, one request of all `images`.
    pub async fn image_embeddings(&self, images: &[&[u8]]) -> Result<Vec<Vec<f32>>> {
        let owned: Vec<Vec<u8>> = images.iter().map(|bytes| bytes.to_vec()).collect();
        let embedded = self.infer.embed_images(owned).await?;
        self.count(images.len(), &embedded.timings);
        Ok(embedded.embeddings)
    }

    /// [`Through::image_embeddings`] as requests of a full batch, one after another.
    pub async fn image_embeddings_in_requests(&self, images: &[&[u8]]) -> Result<Vec<Vec<f32>>> {
        let mut all = Vec::with_capacity(images.len());
        for request in images.chunks(self.batch_size()) {
            all.extend(self.image_embeddings(request).await?);
        }
        Ok(all)
    }

    /// Zero-shot scores of `images` over `labels` put in `template`, one request.
    pub async fn zero_shot(&self, images: &[&[u8]], labels: &[String], template: &str) -> Result<ZeroShot> {
        let owned: Vec<Vec<u8>> = images.iter().map(|bytes| bytes.to_vec()).collect();
        let answered = self.infer.zero_shot(owned, labels.to_vec(), template).await?;
        self.count(images.len(), &answered.image_timings);
        self.count(labels.len(), &answered.text_timings);
        Ok(answered)
    }
}

/// A classifier's answers: per input, logits and scores.
#[derive(Debug, Default)]
pub struct Scored {
    pub logits: Vec<Vec<f32>>,
    pub scores: Vec<Vec<f32>>,
}

impl Scored {
    fn extend(&mut self, more: Scored) {
        self.logits.extend(more.logits);
        self.scores.extend(more.scores);
    }
}

/// Several requests' answers as one, in order (the first's timings); none is an error.
fn joined(parts: Vec<Answers>) -> Result<Answers> {
    let mut parts = parts.into_iter();
    let mut all = parts.next().ok_or_else(|| anyhow!("no questions to answer"))?;
    for part in parts {
        all.answers.extend(part.answers);
        all.logits.extend(part.logits);
        all.window_ids.extend(part.window_ids);
    }
    Ok(all)
}

fn owned(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| (*text).to_string()).collect()
}
