//! Image classification: torchvision's evaluation transform (see [`crate::image`]), one
//! `session.run` per batch, and the scores the Hugging Face image-classification pipeline
//! returns (softmax, labels by descending score, `top_k` 5 by default).

use std::borrow::Cow;
use std::path::Path;

use modelcrate_schema::{PreprocessorConfig, Task};
use ndarray::{Array2, Array3, Array4, Axis};
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;

use crate::classification::{
    ClassificationFunction, Prediction, ProblemType, best, check_labels, fixed, logits_output,
};
use crate::error::{Error, Result};
use crate::image::{self, DEFAULT_MAX_PIXELS, ImageError, Preprocessing};
use crate::labels::{Labels, label};
use crate::pool::{Lane, SessionPool};
use crate::registry::{Input, LoadOptions, ModelInfo, RowOutput, TaskModel};
use crate::signature::Signature;
use crate::variants;

/// The pipeline's default number of labels in an answer.
pub const DEFAULT_TOP_K: usize = 5;

/// What a generated crate knows of its image classifier, as constants.
#[derive(Debug, Clone, Copy)]
pub struct ImageClassifierSpec {
    pub name: &'static str,
    pub signature: Signature,
    pub pixels_input: &'static str,
    pub logits_output: &'static str,
    pub labels: &'static [&'static str],
    pub preprocessing: Preprocessing,
}

/// A loaded image classifier: its session pool and the model's metadata.
pub struct ImageClassifier {
    info: ModelInfo,
    spec: ImageClassifierSpec,
    pool: SessionPool,
    max_batch_size: usize,
}

impl ImageClassifier {
    /// Loads the chosen variant of `dir`, refusing an artifact whose signature, labels
    /// (`config.json`) or preprocessing (`preprocessor_config.json`) differ from `spec`.
    pub fn load(dir: &Path, spec: ImageClassifierSpec, options: &LoadOptions) -> Result<Self> {
        check_labels(&dir.join("config.json"), spec.labels)?;
        check_preprocessing(&dir.join("preprocessor_config.json"), &spec.preprocessing)?;
        let (variant, pool) = variants::open_checked(dir, &spec.signature, options)?;
        let info = ModelInfo {
            name: spec.name,
            task: Task::ImageClassification,
            labels: spec.labels,
            max_length: 0,
            problem_type: Some(ProblemType::SingleLabel),
            dimension: None,
            pooling: None,
            normalize: None,
            image: Some(spec.preprocessing),
            detector: None,
            image_text: None,
            signature: spec.signature,
            head: None,
            variant,
            layout: pool.layout(),
            sessions: pool.size(),
        };
        Ok(Self {
            info,
            spec,
            pool,
            max_batch_size: options.max_batch_size.max(1),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn preprocessing(&self) -> &Preprocessing {
        &self.spec.preprocessing
    }

    /// Decodes and prepares one image (at most `max_pixels` pixels): `[3, crop, crop]`.
    pub fn prepare(&self, bytes: &[u8], max_pixels: u64) -> std::result::Result<Array3<f32>, ImageError> {
        self.spec.preprocessing.prepare(bytes, max_pixels)
    }

    /// Logits of a prepared batch `[n, 3, crop, crop]`: one `session.run` on a session of
    /// `lane`.
    pub fn logits_of(&self, pixels: &Array4<f32>, lane: Lane) -> Result<Array2<f32>> {
        self.pool.with_session(lane, |session| self.run(session, pixels))
    }

    /// Logits `[images, labels]` of encoded images (PNG or JPEG bytes), in batches of at
    /// most `max_batch_size`.
    pub fn logits(&self, images: &[&[u8]]) -> Result<Array2<f32>> {
        let mut all = Array2::zeros((0, self.spec.labels.len()));
        for chunk in images.chunks(self.max_batch_size) {
            let prepared = chunk
                .iter()
                .map(|bytes| self.prepare(bytes, DEFAULT_MAX_PIXELS))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let logits = self.logits_of(&image::stack(&prepared.iter().collect::<Vec<_>>()), Lane::Any)?;
            all.append(Axis(0), logits.view())
                .map_err(|error| Error::OutputShape(error.to_string()))?;
        }
        Ok(all)
    }

    /// Logits per image as fixed-size rows.
    pub fn logits_fixed<const N: usize>(&self, images: &[&[u8]]) -> Result<Vec<[f32; N]>> {
        let logits = self.logits(images)?;
        logits.rows().into_iter().map(|row| fixed(&row.to_vec())).collect()
    }

    /// Softmax scores per image, by label id.
    pub fn scores(&self, images: &[&[u8]]) -> Result<Vec<Vec<f32>>> {
        let logits = self.logits(images)?;
        Ok(logits
            .rows()
            .into_iter()
            .map(|row| ClassificationFunction::Softmax.apply(&row.to_vec()))
            .collect())
    }

    /// Typed predictions: the label of logit column `id` is `L::from_id(id)`.
    pub fn predict<L: Labels, const N: usize>(&self, images: &[&[u8]]) -> Result<Vec<Prediction<L, N>>> {
        self.scores(images)?
            .into_iter()
            .map(|scores| {
                let scores: [f32; N] = fixed(&scores)?;
                let top = best(&scores);
                Ok(Prediction {
                    label: label(top.id)?,
                    score: top.score,
                    scores,
                })
            })
            .collect()
    }

    fn run(&self, session: &mut Session, pixels: &Array4<f32>) -> Result<Array2<f32>> {
        let inputs: Vec<(Cow<'static, str>, SessionInputValue<'_>)> = vec![(
            Cow::Borrowed(self.spec.pixels_input),
            TensorRef::from_array_view(pixels)?.into(),
        )];
        let outputs = session.run(inputs)?;
        logits_output(
            &outputs,
            self.spec.logits_output,
            pixels.dim().0,
            self.spec.labels.len(),
        )
    }
}

/// The artifact's `preprocessor_config.json` must describe the transform the crate was
/// generated with: a model fed other pixels than it was trained on fails silently.
pub(crate) fn check_preprocessing(path: &Path, expected: &Preprocessing) -> Result<()> {
    let config: PreprocessorConfig = crate::json_file::read(path)?;
    let single = |triple: [f64; 3]| triple.map(|value| value as f32);
    let found = (
        config.size.shortest_edge,
        config.crop_size.height,
        config.crop_size.width,
        single(config.image_mean),
        single(config.image_std),
    );
    let wanted = (
        expected.resize_shortest,
        expected.crop,
        expected.crop,
        expected.mean,
        expected.std,
    );
    if found == wanted {
        Ok(())
    } else {
        Err(Error::SignatureMismatch {
            path: path.to_path_buf(),
            mismatch: format!("(resize, crop height, crop width, mean, std) is {found:?}, expected {wanted:?}"),
        })
    }
}

impl TaskModel for ImageClassifier {
    fn info(&self) -> &ModelInfo {
        ImageClassifier::info(self)
    }

    fn run_images(&self, pixels: &Array4<f32>, lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(self
            .logits_of(pixels, lane)?
            .rows()
            .into_iter()
            .map(|row| RowOutput::Logits(row.to_vec()))
            .collect())
    }

    fn process(&self, inputs: &[Input<'_>]) -> Result<()> {
        let images = inputs.iter().map(Input::image).collect::<Result<Vec<_>>>()?;
        self.scores(&images).map(drop)
    }
}
