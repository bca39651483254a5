//! Image–text models (CLIP-style dual encoders): an image tower and a text tower that map
//! images and texts into one space, each exported alone. Images are prepared as the image
//! classifier prepares them (torchvision's evaluation transform, see [`crate::image`]),
//! texts tokenized as every text model's; each tower's graph returns unit vectors, so a
//! similarity is a dot product. Zero-shot classification is the Hugging Face pipeline's:
//! each candidate label put in the hypothesis template, the image's similarity to each
//! times the model's temperature (`exp(logit_scale)`), softmax over the candidates.
//!
//! A variant is a pair of files: the image tower's (`model.O2.onnx`, the name the
//! manifest gives) and the text tower's beside it, the same name prefixed `text_`.

use std::borrow::Cow;
use std::path::Path;

use modelcrate_schema::{ImageTextConfig, Task};
use ndarray::{Array2, Array3, Array4, Ix2};
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;

use crate::error::{Error, Result};
use crate::image::{self, DEFAULT_MAX_PIXELS, ImageError, Preprocessing};
use crate::image_classification::check_preprocessing;
use crate::pool::{Lane, SessionPool};
use crate::registry::{Input, LoadOptions, ModelInfo, RowOutput, TaskModel};
use crate::signature::Signature;
use crate::text::{EncodedBatch, TextEncoder};
use crate::variants;

/// The prefix of a variant's text-tower file: `model.O2.onnx` pairs with `text_model.O2.onnx`.
pub const TEXT_FILE_PREFIX: &str = "text_";

/// The Hugging Face zero-shot-image-classification pipeline's default hypothesis template.
pub const DEFAULT_HYPOTHESIS_TEMPLATE: &str = "This is a photo of {}.";

/// What a generated crate knows of its image–text model, as constants.
#[derive(Debug, Clone, Copy)]
pub struct ImageTextSpec {
    pub name: &'static str,
    /// The image tower's signature (`signature.json`).
    pub signature: Signature,
    /// The text tower's signature (`text_signature.json`).
    pub text_signature: Signature,
    pub pixels_input: &'static str,
    /// `[batch, dimension]` unit vectors of the image tower.
    pub image_output: &'static str,
    /// `[batch, dimension]` unit vectors of the text tower.
    pub text_output: &'static str,
    pub dimension: usize,
    pub max_length: usize,
    pub preprocessing: Preprocessing,
}

/// What a loaded image–text model adds to [`ModelInfo`].
#[derive(Debug, Clone, Copy)]
pub struct ImageTextInfo {
    /// The text tower's signature.
    pub text_signature: Signature,
    /// CLIP's temperature: a zero-shot logit is `exp(logit_scale)` × the similarity.
    pub logit_scale: f32,
}

impl ImageTextInfo {
    /// What similarities are multiplied by before the softmax.
    pub fn scale(&self) -> f32 {
        self.logit_scale.exp()
    }
}

/// An image's embedding: a unit vector of the space texts share.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEmbedding(pub Vec<f32>);

/// A text's embedding: a unit vector of the space images share.
#[derive(Debug, Clone, PartialEq)]
pub struct TextEmbedding(pub Vec<f32>);

/// The cosine similarity of an image and a text: the dot product of their unit vectors.
pub fn similarity(image: &ImageEmbedding, text: &TextEmbedding) -> f32 {
    image.0.iter().zip(&text.0).map(|(a, b)| a * b).sum()
}

/// Zero-shot scores of one image over the candidates' embeddings (their hypotheses), in
/// candidate order: softmax of `scale` × each similarity, as the pipeline computes them.
pub fn zero_shot_scores(image: &ImageEmbedding, candidates: &[TextEmbedding], scale: f32) -> Vec<f32> {
    let logits: Vec<f32> = candidates.iter().map(|text| scale * similarity(image, text)).collect();
    crate::classification::ClassificationFunction::Softmax.apply(&logits)
}

/// The hypothesis the pipeline builds from a candidate label, `template.format(label)`:
/// the template must hold exactly one `{}` and no other brace (Python's `format` would
/// read another as a field of its own and fail), else an error naming the template.
pub fn hypothesis(template: &str, label: &str) -> Result<String> {
    let braces = template.chars().filter(|c| matches!(c, '{' | '}')).count();
    if template.matches("{}").count() != 1 || braces != 2 {
        return Err(Error::Input(format!(
            "hypothesis_template {template:?} must hold exactly one `{{}}` (where the candidate label goes) and no other brace"
        )));
    }
    Ok(template.replacen("{}", label, 1))
}

/// A loaded image–text model: both towers' session pools, the tokenizer and the model's
/// metadata.
pub struct ImageTextModel {
    info: ModelInfo,
    spec: ImageTextSpec,
    images: SessionPool,
    texts: SessionPool,
    encoder: TextEncoder,
    max_batch_size: usize,
}

impl ImageTextModel {
    /// Loads the chosen variant's two files from `dir`, refusing an artifact whose
    /// signatures, preprocessing (`preprocessor_config.json`) or dimension, input size and
    /// text length (`config.json`) differ from `spec`.
    pub fn load(dir: &Path, spec: ImageTextSpec, options: &LoadOptions) -> Result<Self> {
        check_preprocessing(&dir.join("preprocessor_config.json"), &spec.preprocessing)?;
        let config = check_config(&dir.join("config.json"), &spec)?;
        let (variant, images) = variants::open_checked(dir, &spec.signature, options)?;
        let text_file = dir.join(format!("{TEXT_FILE_PREFIX}{}", variant.file));
        let texts = SessionPool::open(&text_file, options)?;
        texts.inspect(|session| spec.text_signature.check(session, &text_file))?;
        let encoder = TextEncoder::from_file(&dir.join("tokenizer.json"), spec.max_length)?;
        let info = ModelInfo {
            name: spec.name,
            task: Task::ZeroShotImageClassification,
            labels: &[],
            max_length: spec.max_length,
            problem_type: None,
            dimension: Some(spec.dimension),
            pooling: None,
            normalize: Some(true),
            image: Some(spec.preprocessing),
            detector: None,
            image_text: Some(ImageTextInfo {
                text_signature: spec.text_signature,
                logit_scale: config.logit_scale as f32,
            }),
            signature: spec.signature,
            head: None,
            variant,
            layout: images.layout(),
            sessions: images.size() + texts.size(),
        };
        Ok(Self {
            info,
            spec,
            images,
            texts,
            encoder,
            max_batch_size: options.max_batch_size.max(1),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    /// What similarities are multiplied by before a zero-shot softmax.
    pub fn scale(&self) -> f32 {
        self.info.image_text.map_or(1.0, |info| info.scale())
    }

    /// Decodes and prepares one image (at most `max_pixels` pixels): `[3, crop, crop]`.
    pub fn prepare(&self, bytes: &[u8], max_pixels: u64) -> std::result::Result<Array3<f32>, ImageError> {
        self.spec.preprocessing.prepare(bytes, max_pixels)
    }

    /// The image tower's vectors of a prepared batch `[n, 3, crop, crop]`: one
    /// `session.run` on a session of `lane`.
    pub fn image_vectors(&self, pixels: &Array4<f32>, lane: Lane) -> Result<Vec<Vec<f32>>> {
        self.images.with_session(lane, |session| {
            let inputs: Vec<(Cow<'static, str>, SessionInputValue<'_>)> = vec![(
                Cow::Borrowed(self.spec.pixels_input),
                TensorRef::from_array_view(pixels)?.into(),
            )];
            let outputs = session.run(inputs)?;
            rows_of(&outputs, self.spec.image_output, pixels.dim().0, self.spec.dimension)
        })
    }

    /// The text tower's vectors of a tokenized batch: one `session.run` on a session of
    /// `lane`.
    pub fn text_vectors(&self, batch: &EncodedBatch, lane: Lane) -> Result<Vec<Vec<f32>>> {
        self.texts.with_session(lane, |session| self.run_text(session, batch))
    }

    /// The embeddings of encoded images (PNG or JPEG bytes), in batches of at most
    /// `max_batch_size`.
    pub fn embed_images(&self, images: &[&[u8]]) -> Result<Vec<ImageEmbedding>> {
        let mut all = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.max_batch_size) {
            let prepared = chunk
                .iter()
                .map(|bytes| self.prepare(bytes, DEFAULT_MAX_PIXELS))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let vectors = self.image_vectors(&image::stack(&prepared.iter().collect::<Vec<_>>()), Lane::Any)?;
            all.extend(vectors.into_iter().map(ImageEmbedding));
        }
        Ok(all)
    }

    /// The embeddings of texts, in batches of at most `max_batch_size`.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<TextEmbedding>> {
        let mut all = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.max_batch_size) {
            let vectors = self.text_vectors(&self.encoder.encode(chunk)?, Lane::Any)?;
            all.extend(vectors.into_iter().map(TextEmbedding));
        }
        Ok(all)
    }

    /// Zero-shot scores of each image over `candidate_labels` put in `template`, in
    /// candidate order.
    pub fn zero_shot(&self, images: &[&[u8]], candidate_labels: &[&str], template: &str) -> Result<Vec<Vec<f32>>> {
        let hypotheses = candidate_labels
            .iter()
            .map(|label| hypothesis(template, label))
            .collect::<Result<Vec<_>>>()?;
        let candidates = self.embed_texts(&hypotheses.iter().map(String::as_str).collect::<Vec<_>>())?;
        let scale = self.scale();
        Ok(self
            .embed_images(images)?
            .iter()
            .map(|image| zero_shot_scores(image, &candidates, scale))
            .collect())
    }

    fn run_text(&self, session: &mut Session, batch: &EncodedBatch) -> Result<Vec<Vec<f32>>> {
        let outputs = session.run(batch.session_inputs(&self.spec.text_signature)?)?;
        rows_of(
            &outputs,
            self.spec.text_output,
            batch.lengths.len(),
            self.spec.dimension,
        )
    }
}

/// Output `name` as `rows` vectors of `dimension` values.
fn rows_of(
    outputs: &ort::session::SessionOutputs<'_>,
    name: &str,
    rows: usize,
    dimension: usize,
) -> Result<Vec<Vec<f32>>> {
    let output = outputs
        .get(name)
        .ok_or_else(|| Error::OutputShape(format!("no output named `{name}`")))?;
    let values: Array2<f32> = output
        .try_extract_array::<f32>()?
        .into_dimensionality::<Ix2>()
        .map_err(|error| Error::OutputShape(format!("`{name}`: {error}")))?
        .to_owned();
    if values.dim() != (rows, dimension) {
        return Err(Error::OutputShape(format!(
            "`{name}` is {:?}, expected ({rows}, {dimension})",
            values.dim()
        )));
    }
    Ok(values.rows().into_iter().map(|row| row.to_vec()).collect())
}

/// The artifact's `config.json` must give the dimension, input size and text length the
/// crate was generated for; its temperature is read from it.
fn check_config(path: &Path, spec: &ImageTextSpec) -> Result<ImageTextConfig> {
    let config: ImageTextConfig = crate::json_file::read(path)?;
    let found = (config.projection_dim, config.image_size, config.max_length);
    let wanted = (spec.dimension, spec.preprocessing.crop, spec.max_length);
    if found != wanted {
        return Err(Error::SignatureMismatch {
            path: path.to_path_buf(),
            mismatch: format!("(projection_dim, image_size, max_length) is {found:?}, expected {wanted:?}"),
        });
    }
    if !config.logit_scale.is_finite() {
        return Err(Error::SignatureMismatch {
            path: path.to_path_buf(),
            mismatch: format!("logit_scale {} is not a number", config.logit_scale),
        });
    }
    Ok(config)
}

impl TaskModel for ImageTextModel {
    fn info(&self) -> &ModelInfo {
        ImageTextModel::info(self)
    }

    fn encoder(&self) -> Option<&TextEncoder> {
        Some(ImageTextModel::encoder(self))
    }

    fn run_texts(&self, batch: &EncodedBatch, lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(self
            .text_vectors(batch, lane)?
            .into_iter()
            .map(RowOutput::Pooled)
            .collect())
    }

    fn run_images(&self, pixels: &Array4<f32>, lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(self
            .image_vectors(pixels, lane)?
            .into_iter()
            .map(RowOutput::Pooled)
            .collect())
    }

    /// Images go through the image tower, texts through the text tower: what warm-up
    /// and measurement run (a zero-shot request adds its hypotheses' text runs).
    fn process(&self, inputs: &[Input<'_>]) -> Result<()> {
        let images: Vec<&[u8]> = inputs.iter().filter_map(|input| input.image().ok()).collect();
        let texts: Vec<&str> = inputs.iter().filter_map(|input| input.text().ok()).collect();
        if images.len() + texts.len() != inputs.len() {
            return Err(Error::Input(format!(
                "model `{}` takes images and texts, not questions",
                self.info.name
            )));
        }
        self.embed_images(&images)?;
        self.embed_texts(&texts).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_shot_scores_are_the_softmax_of_the_scaled_similarities() {
        let image = ImageEmbedding(vec![0.6, 0.8]);
        let candidates = [TextEmbedding(vec![1.0, 0.0]), TextEmbedding(vec![0.0, 1.0])];
        assert!((similarity(&image, &candidates[0]) - 0.6).abs() < 1e-7);
        let scores = zero_shot_scores(&image, &candidates, 10.0);
        // softmax([6, 8]) = [1 / (1 + e²), e² / (1 + e²)]
        let e2 = 2f32.exp();
        assert!((scores[0] - 1.0 / (1.0 + e2)).abs() < 1e-6, "{scores:?}");
        assert!((scores[1] - e2 / (1.0 + e2)).abs() < 1e-6, "{scores:?}");
        assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_hypothesis_is_the_template_with_the_label_and_a_template_needs_a_slot() {
        assert_eq!(
            hypothesis(DEFAULT_HYPOTHESIS_TEMPLATE, "zebra").unwrap(),
            "This is a photo of zebra."
        );
        assert_eq!(
            hypothesis("{}", "a {cat}").unwrap(),
            "a {cat}",
            "a label is not a template"
        );
        for template in ["a photo", "{} or {}", "a {label}", "a {0}", "{{}} {}"] {
            let error = hypothesis(template, "cat").unwrap_err().to_string();
            assert!(
                error.contains(&format!(
                    "hypothesis_template {template:?} must hold exactly one `{{}}`"
                )),
                "{error}"
            );
        }
    }
}
