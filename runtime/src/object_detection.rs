//! Object detection: images letterboxed as YOLO does (see [`crate::detection`]), one
//! `session.run` per batch of the three raw head outputs, and each image's outputs decoded
//! into scored, labelled boxes in its own pixels with class-wise NMS.

use std::borrow::Cow;
use std::path::Path;

use modelcrate_schema::{DetectorConfig, LetterboxConfig, PIL_BILINEAR, Task};
use ndarray::{Array3, Array4, Axis, Ix3};
use ort::session::{Session, SessionInputValue, SessionOutputs};
use ort::value::TensorRef;

use crate::classification::check_labels;
use crate::detection::{
    BoundingBox, DecodeOptions, DetectorInfo, Grid, Letterbox, Letterboxing, MAX_LOG_DISTANCE, PAD_LEVEL, RawDetection,
    RawOutputs,
};
use crate::error::{Error, Result};
use crate::image::{DEFAULT_MAX_PIXELS, ImageError, stack};
use crate::labels::{Labels, label};
use crate::pool::{Lane, SessionPool};
use crate::registry::{Input, LoadOptions, ModelInfo, RowOutput, TaskModel};
use crate::signature::Signature;
use crate::variants;

/// The names of a detector's three outputs.
#[derive(Debug, Clone, Copy)]
pub struct DetectorOutputs {
    /// `[batch, cells, 4]`: log-distances from each cell's centre to the box's sides.
    pub distances: &'static str,
    /// `[batch, cells, 1]`.
    pub centerness: &'static str,
    /// `[batch, cells, labels]`.
    pub classes: &'static str,
}

/// What a generated crate knows of its detector, as constants.
#[derive(Debug, Clone, Copy)]
pub struct ObjectDetectorSpec {
    pub name: &'static str,
    pub signature: Signature,
    pub pixels_input: &'static str,
    pub outputs: DetectorOutputs,
    pub labels: &'static [&'static str],
    pub letterboxing: Letterboxing,
    pub stride: u32,
}

/// One detected object, its label typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection<L> {
    pub label: L,
    /// `sqrt(sigmoid(class logit) × sigmoid(centerness logit))`, in (0, 1).
    pub score: f64,
    /// In the image's pixels.
    pub bbox: BoundingBox,
}

/// A loaded detector: its session pool and the model's metadata.
pub struct ObjectDetector {
    info: ModelInfo,
    spec: ObjectDetectorSpec,
    pool: SessionPool,
    max_batch_size: usize,
}

impl ObjectDetector {
    /// Loads the chosen variant of `dir`, refusing an artifact whose signature, labels and
    /// grid (`config.json`) or letterbox (`preprocessor_config.json`) differ from `spec`.
    pub fn load(dir: &Path, spec: ObjectDetectorSpec, options: &LoadOptions) -> Result<Self> {
        check_labels(&dir.join("config.json"), spec.labels)?;
        check_grid(&dir.join("config.json"), &spec)?;
        check_letterbox(&dir.join("preprocessor_config.json"), &spec.letterboxing)?;
        let (variant, pool) = variants::open_checked(dir, &spec.signature, options)?;
        let info = ModelInfo {
            name: spec.name,
            task: Task::ObjectDetection,
            labels: spec.labels,
            max_length: 0,
            problem_type: None,
            dimension: None,
            pooling: None,
            normalize: None,
            image: None,
            detector: Some(DetectorInfo {
                letterboxing: spec.letterboxing,
                grid: spec.grid(),
            }),
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

    /// Decodes and letterboxes one image (at most `max_pixels` pixels): `[3, size, size]`
    /// and the geometry its boxes map back through.
    pub fn prepare(&self, bytes: &[u8], max_pixels: u64) -> std::result::Result<(Array3<f32>, Letterbox), ImageError> {
        self.spec.letterboxing.prepare(bytes, max_pixels)
    }

    /// The raw outputs of a prepared batch `[n, 3, size, size]`: one `session.run` on a
    /// session of `lane`.
    pub fn outputs_of(&self, pixels: &Array4<f32>, lane: Lane) -> Result<Vec<RawOutputs>> {
        self.pool.with_session(lane, |session| self.run(session, pixels))
    }

    /// Each image's detections (PNG or JPEG bytes), best first, in batches of at most
    /// `max_batch_size`.
    pub fn raw_detections(&self, images: &[&[u8]], options: DecodeOptions) -> Result<Vec<Vec<RawDetection>>> {
        let grid = self.spec.grid();
        let mut all = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.max_batch_size) {
            let prepared = chunk
                .iter()
                .map(|bytes| self.prepare(bytes, DEFAULT_MAX_PIXELS))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let tensors: Vec<&Array3<f32>> = prepared.iter().map(|(tensor, _)| tensor).collect();
            let outputs = self.outputs_of(&stack(&tensors), Lane::Any)?;
            for (raw, (_, geometry)) in outputs.iter().zip(&prepared) {
                all.push(raw.decode(grid, geometry, options)?);
            }
        }
        Ok(all)
    }

    /// Typed detections: the label of class column `id` is `L::from_id(id)`.
    pub fn detect<L: Labels>(&self, images: &[&[u8]], options: DecodeOptions) -> Result<Vec<Vec<Detection<L>>>> {
        self.raw_detections(images, options)?
            .into_iter()
            .map(|found| {
                found
                    .into_iter()
                    .map(|raw| {
                        Ok(Detection {
                            label: label(raw.label_id)?,
                            score: raw.score,
                            bbox: raw.bbox,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    fn run(&self, session: &mut Session, pixels: &Array4<f32>) -> Result<Vec<RawOutputs>> {
        let inputs: Vec<(Cow<'static, str>, SessionInputValue<'_>)> = vec![(
            Cow::Borrowed(self.spec.pixels_input),
            TensorRef::from_array_view(pixels)?.into(),
        )];
        let outputs = session.run(inputs)?;
        let (images, cells) = (pixels.dim().0, self.spec.grid().cells());
        let output = |name, columns| output3(&outputs, name, (images, cells, columns));
        let distances = output(self.spec.outputs.distances, 4)?;
        let centerness = output(self.spec.outputs.centerness, 1)?;
        let classes = output(self.spec.outputs.classes, self.spec.labels.len())?;
        Ok((0..images)
            .map(|image| RawOutputs {
                distances: distances.index_axis(Axis(0), image).to_owned(),
                centerness: centerness.index_axis(Axis(0), image).to_owned(),
                classes: classes.index_axis(Axis(0), image).to_owned(),
            })
            .collect())
    }
}

impl ObjectDetectorSpec {
    /// The grid of the model's outputs.
    pub fn grid(&self) -> Grid {
        Grid {
            size: self.letterboxing.size,
            stride: self.stride,
        }
    }
}

/// Output `name`, which must be f32 of shape `expected`.
fn output3(outputs: &SessionOutputs<'_>, name: &str, expected: (usize, usize, usize)) -> Result<Array3<f32>> {
    let output = outputs
        .get(name)
        .ok_or_else(|| Error::OutputShape(format!("no output named `{name}`")))?;
    let values = output
        .try_extract_array::<f32>()?
        .into_dimensionality::<Ix3>()
        .map_err(|error| Error::OutputShape(format!("`{name}`: {error}")))?;
    if values.dim() != expected {
        return Err(Error::OutputShape(format!(
            "`{name}` is {:?}, expected {expected:?}",
            values.dim()
        )));
    }
    Ok(values.to_owned())
}

/// The artifact's `config.json` must lay its outputs on the grid the crate was generated
/// for: another stride or input size puts every box elsewhere.
fn check_grid(path: &Path, spec: &ObjectDetectorSpec) -> Result<()> {
    let config: DetectorConfig = crate::json_file::read(path)?;
    let found = (config.image_size, config.stride, config.max_log_distance);
    let wanted = (spec.letterboxing.size, spec.stride, MAX_LOG_DISTANCE);
    if found == wanted {
        Ok(())
    } else {
        Err(Error::SignatureMismatch {
            path: path.to_path_buf(),
            mismatch: format!("(image_size, stride, max_log_distance) is {found:?}, expected {wanted:?}"),
        })
    }
}

/// The artifact's `preprocessor_config.json` must describe the letterbox the crate was
/// generated with: a model fed other pixels than it was trained on fails silently.
fn check_letterbox(path: &Path, expected: &Letterboxing) -> Result<()> {
    let config: LetterboxConfig = crate::json_file::read(path)?;
    let single = |triple: [f64; 3]| triple.map(|value| value as f32);
    let found = (
        config.size.longest_edge,
        config.pad_size.height,
        config.pad_size.width,
        config.pad_value,
        config.resample,
        config.do_convert_rgb,
        single(config.image_mean),
        single(config.image_std),
    );
    let wanted = (
        expected.size,
        expected.size,
        expected.size,
        PAD_LEVEL,
        PIL_BILINEAR,
        true,
        expected.mean,
        expected.std,
    );
    if found == wanted {
        Ok(())
    } else {
        Err(Error::SignatureMismatch {
            path: path.to_path_buf(),
            mismatch: format!(
                "(longest edge, pad height, pad width, pad value, resample, RGB, mean, std) is {found:?}, expected {wanted:?}"
            ),
        })
    }
}

impl TaskModel for ObjectDetector {
    fn info(&self) -> &ModelInfo {
        ObjectDetector::info(self)
    }

    fn run_images(&self, pixels: &Array4<f32>, lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(self
            .outputs_of(pixels, lane)?
            .into_iter()
            .map(RowOutput::Detection)
            .collect())
    }

    fn process(&self, inputs: &[Input<'_>]) -> Result<()> {
        let images = inputs.iter().map(Input::image).collect::<Result<Vec<_>>>()?;
        self.raw_detections(&images, crate::detection::DEFAULT_DECODE).map(drop)
    }
}
