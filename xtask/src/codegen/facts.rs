//! What a model's crate is generated from: the spec and the files the export and train
//! steps wrote, read and checked against what the templates can render.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use modelcrate_schema::{
    DetectorConfig, Dim, ImageTextConfig, LETTERBOX_PAD_VALUE, LetterboxConfig, MAX_LOG_DISTANCE, PIL_BILINEAR,
    Pooling, PoolingFile, PreprocessorConfig, SignatureFile, Task, TensorFile,
};
use serde::Deserialize;

use crate::card_figures::{self, TrainingFigures};
use crate::paths::Paths;
use crate::spec::{ModelSpec, TrainSpec};

#[derive(Debug, Clone)]
pub struct LabelVariant {
    pub id: usize,
    pub label: String,
    pub variant: String,
}

#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    pub dtype: String,
    /// Rust `DType` variant.
    pub dtype_variant: &'static str,
    /// Rust literal of `&[Option<i64>]`.
    pub dims_rust: String,
    /// For the model card, e.g. `[batch_size, sequence_length]`.
    pub dims_shown: String,
}

/// Everything a model's crate is rendered from.
#[derive(Debug, Clone)]
pub struct ModelFacts {
    pub name: String,
    pub crate_name: String,
    pub description: String,
    pub task: String,
    pub problem_type: String,
    pub problem_type_variant: &'static str,
    pub base_model: String,
    pub base_package: String,
    pub data_description: String,
    /// The strategy in the model card's words, with the share of parameters trained and
    /// the schedule (or that nothing was trained).
    pub training: String,
    /// False for a base model served as it comes (strategy `pretrained`).
    pub trained: bool,
    pub max_length: usize,
    pub opset: u32,
    /// The spec's serving policy (`fastest`, `most_accurate`, `named`).
    pub serve_policy: String,
    pub train_examples: u64,
    pub test_examples: u64,
    pub test_accuracy: String,
    pub labels: Vec<LabelVariant>,
    pub inputs: Vec<Tensor>,
    pub outputs: Vec<Tensor>,
    pub logits_output: String,
    /// Sentence-embedding models only.
    pub embedding: Option<EmbeddingFacts>,
    /// Token classifiers only.
    pub entity: Option<EntityFacts>,
    /// Image classifiers only.
    pub image: Option<ImageFacts>,
    /// Object detectors only.
    pub detection: Option<DetectionFacts>,
    /// Image–text models only.
    pub image_text: Option<ImageTextFacts>,
    /// SetFit classifiers only.
    pub setfit: Option<SetFitFacts>,
    /// Question-answering models only.
    pub question: Option<QuestionFacts>,
    /// Models with a distilled student: the model card's sentence on it.
    pub student: Option<String>,
    /// `training.json`: the run whose figures the card quotes (see `card_figures`).
    pub training_record: String,
    /// When this run's figures differ from the recorded run's within the tolerance, how.
    pub kept_record: Option<String>,
}

/// How a transformer's token vectors become a sentence vector (`pooling.json`).
#[derive(Debug, Clone)]
pub struct PoolerFacts {
    pub dimension: usize,
    /// `mean` or `cls`, and the runtime's `Pooling` variant for it.
    pub pooling: String,
    pub pooling_variant: &'static str,
    pub normalize: bool,
    pub hidden_output: String,
}

/// What a SetFit classifier's crate adds: its body's pooling, its head's signature and
/// the few-shot figures.
#[derive(Debug, Clone)]
pub struct SetFitFacts {
    pub body: PoolerFacts,
    pub head_opset: u32,
    pub head_inputs: Vec<Tensor>,
    pub head_outputs: Vec<Tensor>,
    /// The head's `[batch, dimension]` input.
    pub embedding_input: String,
    pub examples_per_class: u64,
    pub contrastive_pairs: u64,
    pub head_parameters: u64,
    /// The same head fitted on the untuned body: what the contrastive phase adds.
    pub base_body_accuracy: String,
}

/// What an image classifier's crate adds: how an image becomes its input.
#[derive(Debug, Clone)]
pub struct ImageFacts {
    pub resize: u32,
    pub crop: u32,
    /// Rust `[f32; 3]` literals.
    pub mean: String,
    pub std: String,
    pub pixels_input: String,
}

/// What an image–text model's crate adds: the image tower's preprocessing and output, the
/// text tower's signature, tokenizer length and base model, and the zero-shot figures.
#[derive(Debug, Clone)]
pub struct ImageTextFacts {
    pub image: ImageFacts,
    pub image_output: String,
    pub text_opset: u32,
    pub text_inputs: Vec<Tensor>,
    pub text_outputs: Vec<Tensor>,
    pub text_output: String,
    pub dimension: usize,
    pub text_base_model: String,
    pub text_base_package: String,
    /// Mean zero-shot accuracy of PyTorch on the test images over the held-out templates.
    pub zero_shot_accuracy: String,
}

/// What a detector's crate adds: its letterbox, its grid, its three outputs and its mAP.
#[derive(Debug, Clone)]
pub struct DetectionFacts {
    pub size: u32,
    pub stride: u32,
    /// Rust `[f32; 3]` literals.
    pub mean: String,
    pub std: String,
    pub pixels_input: String,
    pub distances_output: String,
    pub centerness_output: String,
    pub classes_output: String,
    pub map_50: String,
    pub map_50_95: String,
    pub test_boxes: u64,
}

/// What a token classifier's crate adds: its entity types and entity-level figures.
#[derive(Debug, Clone)]
pub struct EntityFacts {
    /// The labels' types without `B-`/`I-`, `O` left out, in first-seen label order.
    pub types: Vec<LabelVariant>,
    /// Each label's variant and the variant of the type it marks (`None` for `O`).
    pub label_types: Vec<LabelType>,
    pub f1: String,
    pub precision: String,
    pub recall: String,
    pub test_entities: u64,
}

/// A question-answering model's outputs, window and test figures.
#[derive(Debug, Clone)]
pub struct QuestionFacts {
    pub start_output: String,
    pub end_output: String,
    /// `config.json`'s `max_position_embeddings`: the longest window the model can take.
    pub max_positions: usize,
    pub exact_match: String,
    pub f1: String,
}

/// A BIO label's enum variant and the entity type's it marks.
#[derive(Debug, Clone)]
pub struct LabelType {
    pub variant: String,
    pub entity_type: Option<String>,
}

/// What an embedding model's crate adds: its vector, pooling and retrieval figures.
#[derive(Debug, Clone)]
pub struct EmbeddingFacts {
    pub dimension: usize,
    /// `mean` or `cls`, and the runtime's `Pooling` variant for it.
    pub pooling: String,
    pub pooling_variant: &'static str,
    pub normalize: bool,
    pub hidden_output: String,
    pub recall_at_1: String,
    pub recall_at_10: String,
    pub base_recall_at_1: String,
    pub base_recall_at_10: String,
}

#[derive(Deserialize)]
struct ConfigJson {
    id2label: BTreeMap<String, String>,
}

/// The model card's sentence on a distilled student, from `[distill]` and the teacher's
/// export: what the student is and what it is held to. Its measured figures are the
/// student steps' (`student/metrics.json`, `cargo xtask report`), which run after the
/// teacher serves, so the crate does not wait for them.
fn student_facts(paths: &Paths, spec: &ModelSpec) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Layers {
        num_hidden_layers: usize,
    }
    let Some(distill) = &spec.distill else {
        return Ok(None);
    };
    let config: Layers = read_json(&paths.onnx(&spec.name).join("config.json"), "export")?;
    let kept: Vec<String> = distill.keep_layers.iter().map(usize::to_string).collect();
    let embeddings = spec.task == Task::FeatureExtraction;
    let pieces = match distill.short_pieces {
        0 => String::new(),
        n => format!(
            " and {n} piece(s) of one to three sentences of each{}",
            if embeddings { " body" } else { "" }
        ),
    };
    let (targets, texts, metric) = match spec.task {
        Task::FeatureExtraction => (
            format!(
                "the teacher's embeddings (cosine distance, weight {}) and the title–body pairs",
                distill.soft_weight
            ),
            format!("the training titles and bodies{pieces}"),
            "recall@10",
        ),
        Task::TokenClassification => (
            format!(
                "the teacher's outputs for every token at temperature {} (weight {}) and the BIO labels",
                distill.temperature, distill.soft_weight
            ),
            "the training sentences".to_string(),
            "entity F1",
        ),
        _ => (
            format!(
                "the teacher's outputs at temperature {} (weight {}) and the labels",
                distill.temperature, distill.soft_weight
            ),
            format!("the training texts{pieces}"),
            "accuracy",
        ),
    };
    Ok(Some(format!(
        "layers {} of the teacher's {}, trained {} epoch(s) at learning rate {:e} on {targets}, over {texts}. Its variants ({}) load through this crate and serve only when they match its own PyTorch outputs within the usual bounds and score a test {metric} at most 1.0 point below the teacher's; its figures are in `cargo xtask report`",
        kept.join(", "),
        config.num_hidden_layers,
        distill.epochs,
        distill.learning_rate,
        crate::spec::variants_for(spec.task, crate::spec::STUDENT_VARIANTS)
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", "),
    )))
}

/// A metric the train step must have written for this task.
fn metric(value: Option<f64>, name: &str, path: &Path) -> Result<String> {
    value
        .map(|v| format!("{v:.4}"))
        .with_context(|| format!("{}: no `{name}` (run `cargo xtask train --force`)", path.display()))
}

/// A count the train step must have written for this task.
fn count(value: Option<u64>, name: &str, path: &Path) -> Result<u64> {
    value.with_context(|| format!("{}: no `{name}` (run `cargo xtask train --force`)", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, made_by: &str) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}: run `cargo xtask {made_by}` first", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not what `{made_by}` writes", path.display()))
}

/// `business` → `Business`, `sci/tech` → `SciTech`, `B-PRODUCT` → `BProduct`, `3d` → `Label3d`.
pub fn variant_name(label: &str) -> String {
    let mut name: String = label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            // An all-capitals part (`PRODUCT`) is a word, not an acronym to keep.
            let part = if part.chars().all(|c| !c.is_ascii_lowercase()) {
                part.to_ascii_lowercase()
            } else {
                part.to_string()
            };
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "Label");
    }
    name
}

fn tensor(json: &TensorFile, path: &Path) -> Result<Tensor> {
    let dtype_variant = match json.dtype.as_str() {
        "float32" => "Float32",
        "int64" => "Int64",
        "int32" => "Int32",
        other => bail!(
            "{}: tensor `{}` has element type {other}, which generated crates do not support",
            path.display(),
            json.name
        ),
    };
    let mut rust = Vec::new();
    let mut shown = Vec::new();
    for dim in &json.dims {
        match dim {
            Dim::Fixed(n) if *n > 0 => {
                rust.push(format!("Some({n})"));
                shown.push(n.to_string());
            }
            Dim::Named(symbol) => {
                rust.push("None".into());
                shown.push(symbol.clone());
            }
            Dim::Fixed(_) => {
                rust.push("None".into());
                shown.push("?".into());
            }
        }
    }
    Ok(Tensor {
        name: json.name.clone(),
        dtype: json.dtype.clone(),
        dtype_variant,
        dims_rust: format!("&[{}]", rust.join(", ")),
        dims_shown: format!("[{}]", shown.join(", ")),
    })
}

impl ModelFacts {
    pub fn read(paths: &Paths, spec: &ModelSpec) -> Result<Self> {
        let onnx = paths.onnx(&spec.name);
        let signature_path = onnx.join("signature.json");
        let signature: SignatureFile = read_json(&signature_path, "export")?;
        let metrics_path = paths.artifact(&spec.name).join("metrics.json");
        let run: TrainingFigures = read_json(&metrics_path, "train")?;
        let record_path = paths.generated().join(&spec.name).join(card_figures::FILE);
        let card_figures::Quoted {
            figures: metrics,
            record: training_record,
            kept_record,
        } = card_figures::quoted(&record_path, run)?;
        let inputs = signature
            .inputs
            .iter()
            .map(|t| tensor(t, &signature_path))
            .collect::<Result<Vec<_>>>()?;
        let outputs = signature
            .outputs
            .iter()
            .map(|t| tensor(t, &signature_path))
            .collect::<Result<Vec<_>>>()?;
        let config = onnx.join("config.json");
        let (mut labels, mut logits_output, mut test_accuracy) = (Vec::new(), String::new(), String::new());
        let (mut embedding, mut entity, mut image, mut setfit, mut question) = (None, None, None, None, None);
        let (mut detection, mut image_text) = (None, None);
        match spec.task {
            _ if spec.is_setfit() => {
                let facts = setfit_facts(&onnx, &signature_path, &outputs, &metrics, &metrics_path)?;
                let head_signature = onnx.join("head_signature.json");
                (labels, logits_output) = classifier_facts(&config, &head_signature, &facts.head_outputs, 2)?;
                test_accuracy = metric(metrics.test_accuracy, "test_accuracy", &metrics_path)?;
                setfit = Some(facts);
            }
            Task::ImageClassification => {
                (labels, logits_output) = classifier_facts(&config, &signature_path, &outputs, 2)?;
                test_accuracy = metric(metrics.test_accuracy, "test_accuracy", &metrics_path)?;
                image = Some(image_facts(&onnx, &signature_path, &inputs)?);
            }
            Task::ObjectDetection => {
                labels = detector_labels(&config)?;
                detection = Some(detection_facts(
                    &onnx,
                    &signature_path,
                    (&inputs, &outputs),
                    labels.len(),
                    &metrics,
                    &metrics_path,
                )?);
            }
            Task::ZeroShotImageClassification => {
                image_text = Some(image_text_facts(
                    spec,
                    &onnx,
                    &signature_path,
                    (&inputs, &outputs),
                    &metrics,
                    &metrics_path,
                )?);
            }
            Task::FeatureExtraction => {
                embedding = Some(embedding_facts(
                    &onnx,
                    &signature_path,
                    &outputs,
                    &metrics,
                    &metrics_path,
                )?);
            }
            Task::TokenClassification => {
                (labels, logits_output) = classifier_facts(&config, &signature_path, &outputs, 3)?;
                entity = Some(entity_facts(&labels, &metrics, &metrics_path)?);
            }
            Task::QuestionAnswering => {
                question = Some(question_facts(
                    &config,
                    &signature_path,
                    &outputs,
                    &metrics,
                    &metrics_path,
                )?);
            }
            _ => {
                (labels, logits_output) = classifier_facts(&config, &signature_path, &outputs, 2)?;
                test_accuracy = metric(metrics.test_accuracy, "test_accuracy", &metrics_path)?;
            }
        }
        Ok(Self {
            name: spec.name.clone(),
            crate_name: spec.name.replace('-', "_"),
            description: spec.description.clone(),
            task: spec.task.to_string(),
            problem_type: spec.problem_type.clone(),
            problem_type_variant: match spec.problem_type.as_str() {
                "multi_label_classification" => "MultiLabel",
                _ => "SingleLabel",
            },
            base_model: spec.base.model.clone(),
            base_package: spec.base.package.clone(),
            data_description: spec.data_description().to_string(),
            training: training(spec.task, &spec.train, &metrics),
            trained: !spec.is_pretrained(),
            max_length: spec.max_length(),
            opset: signature.opset,
            serve_policy: match &spec.serve.variant {
                Some(variant) => format!("{} {variant}", spec.serve.policy),
                None => spec.serve.policy.to_string(),
            },
            train_examples: metrics.train_examples,
            test_examples: metrics.test_examples,
            test_accuracy,
            labels,
            logits_output,
            inputs,
            outputs,
            embedding,
            entity,
            image,
            detection,
            image_text,
            setfit,
            question,
            student: student_facts(paths, spec)?,
            training_record,
            kept_record,
        })
    }
}

/// How the model was trained, for the model card: the strategy, the share of parameters it
/// trained, the precision and the schedule.
fn training(task: Task, train: &TrainSpec, metrics: &TrainingFigures) -> String {
    let (Some(epochs), Some(rate)) = (train.epochs, train.learning_rate) else {
        return format!(
            "none: the base model's weights served as they come (strategy `pretrained`; 0 of {} parameters trained)",
            metrics.total_parameters
        );
    };
    let how = match train.strategy.as_str() {
        "full" => "full fine-tune",
        "lora" => {
            "LoRA (PEFT, rank 8 on attention query and value, classifier head trained; merged into the weights before export)"
        }
        "head-only" => "head-only (frozen backbone, classifier head trained)",
        "contrastive" if task == Task::ZeroShotImageClassification => {
            "contrastive (CLIP's symmetric InfoNCE: each image against its caption and the batch's other captions, each caption against the batch's images; the text tower locked, the image tower, both projections and the temperature trained)"
        }
        "contrastive" => {
            "contrastive (sentence-transformers `MultipleNegativesRankingLoss`: a title against its own body and the other bodies of its batch)"
        }
        "setfit" => {
            "SetFit (the body tuned contrastively with `CosineSimilarityLoss` on pairs of the few examples, then a scikit-learn logistic-regression head fitted on its embeddings of them)"
        }
        other => other,
    };
    let share = 100.0 * metrics.trainable_parameters as f64 / metrics.total_parameters.max(1) as f64;
    let precision = match train.precision.as_str() {
        "bf16" => "; bf16 mixed precision (forward passes in bfloat16, weights and exported model fp32)",
        _ => "",
    };
    format!(
        "{how}; {} of {} parameters trained ({share:.2} %){precision}; {epochs} epoch(s), learning rate {rate:e}",
        metrics.trainable_parameters, metrics.total_parameters
    )
}

/// Labels from `config.json`'s `id2label`, and the `logits` output that must match them:
/// `[batch, labels]` (rank 2) for a sequence classifier, `[batch, tokens, labels]` (rank
/// 3) for a token classifier.
fn classifier_facts(
    config_path: &Path,
    signature_path: &Path,
    outputs: &[Tensor],
    rank: usize,
) -> Result<(Vec<LabelVariant>, String)> {
    let config: ConfigJson = read_json(config_path, "export")?;
    let labels = labels_of(&config, config_path)?;
    let logits = outputs.iter().find(|t| t.name == "logits").with_context(|| {
        format!(
            "{}: a classifier needs an output named `logits`",
            signature_path.display()
        )
    })?;
    let dynamic = "None, ".repeat(rank - 1);
    if logits.dims_rust != format!("&[{dynamic}Some({})]", labels.len()) {
        let shown = if rank == 3 { "[batch, tokens, " } else { "[batch, " };
        bail!(
            "{}: `logits` has dimensions {}, expected {shown}{}] for {} labels",
            signature_path.display(),
            logits.dims_shown,
            labels.len(),
            labels.len()
        );
    }
    Ok((labels, logits.name.clone()))
}

/// Entity types from BIO labels (`B-PRODUCT` → `PRODUCT`), and the entity-level figures.
pub(super) fn entity_facts(
    labels: &[LabelVariant],
    metrics: &TrainingFigures,
    metrics_path: &Path,
) -> Result<EntityFacts> {
    let mut types: Vec<LabelVariant> = Vec::new();
    let mut label_types = Vec::new();
    for label in labels {
        let kind = label
            .label
            .strip_prefix("B-")
            .or_else(|| label.label.strip_prefix("I-"))
            .unwrap_or(&label.label);
        if kind != "O" && !types.iter().any(|t| t.label == kind) {
            types.push(LabelVariant {
                id: types.len(),
                label: kind.to_string(),
                variant: variant_name(kind),
            });
        }
        label_types.push(LabelType {
            variant: label.variant.clone(),
            entity_type: (kind != "O").then(|| variant_name(kind)),
        });
    }
    Ok(EntityFacts {
        types,
        label_types,
        f1: metric(metrics.test_entity_f1, "test_entity_f1", metrics_path)?,
        precision: metric(metrics.test_precision, "test_precision", metrics_path)?,
        recall: metric(metrics.test_recall, "test_recall", metrics_path)?,
        test_entities: count(metrics.test_entities, "test_entities", metrics_path)?,
    })
}

/// A question-answering model's `start_logits` and `end_logits` outputs, which must be
/// `[batch, tokens]`, and its position embeddings from `config.json`.
fn question_facts(
    config_path: &Path,
    signature_path: &Path,
    outputs: &[Tensor],
    metrics: &TrainingFigures,
    metrics_path: &Path,
) -> Result<QuestionFacts> {
    #[derive(Deserialize)]
    struct Positions {
        max_position_embeddings: usize,
    }
    let positions: Positions = read_json(config_path, "export")?;
    for name in ["start_logits", "end_logits"] {
        let output = outputs.iter().find(|t| t.name == name).with_context(|| {
            format!(
                "{}: a question-answering model needs an output named `{name}`",
                signature_path.display()
            )
        })?;
        if output.dtype != "float32" || output.dims_rust != "&[None, None]" {
            bail!(
                "{}: `{name}` is {} {}, expected float32 [batch, tokens]",
                signature_path.display(),
                output.dtype,
                output.dims_shown
            );
        }
    }
    Ok(QuestionFacts {
        start_output: "start_logits".into(),
        end_output: "end_logits".into(),
        max_positions: positions.max_position_embeddings,
        exact_match: metric(metrics.test_exact_match, "test_exact_match", metrics_path)?,
        f1: metric(metrics.test_f1, "test_f1", metrics_path)?,
    })
}

/// The transform from `preprocessor_config.json`, and the pixel input it feeds, which must
/// be `[batch, 3, crop, crop]` float32.
fn image_facts(onnx: &Path, signature_path: &Path, inputs: &[Tensor]) -> Result<ImageFacts> {
    let path = onnx.join("preprocessor_config.json");
    let config: PreprocessorConfig = read_json(&path, "export")?;
    if config.crop_size.height != config.crop_size.width {
        bail!("{}: crop_size must be square", path.display());
    }
    if config.resample != PIL_BILINEAR || !config.do_convert_rgb {
        bail!(
            "{}: the runtime implements RGB conversion and PIL bilinear resampling (resample {PIL_BILINEAR}) only",
            path.display()
        );
    }
    let crop = config.crop_size.height;
    let [input] = inputs else {
        bail!(
            "{}: an image classifier has one input, the pixels",
            signature_path.display()
        );
    };
    if input.dtype != "float32" || input.dims_rust != format!("&[None, Some(3), Some({crop}), Some({crop})]") {
        bail!(
            "{}: `{}` is {} {}, expected float32 [batch, 3, {crop}, {crop}] as preprocessor_config.json says",
            signature_path.display(),
            input.name,
            input.dtype,
            input.dims_shown
        );
    }
    Ok(ImageFacts {
        resize: config.size.shortest_edge,
        crop,
        mean: f32_triple(config.image_mean),
        std: f32_triple(config.image_std),
        pixels_input: input.name.clone(),
    })
}

/// `id2label`'s labels in id order, each with its Rust variant (no two the same).
fn labels_of(config: &ConfigJson, config_path: &Path) -> Result<Vec<LabelVariant>> {
    let mut labels = Vec::new();
    for id in 0..config.id2label.len() {
        let label = config
            .id2label
            .get(&id.to_string())
            .with_context(|| format!("{}: id2label has no id {id}", config_path.display()))?;
        labels.push(LabelVariant {
            id,
            label: label.clone(),
            variant: variant_name(label),
        });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(clash) = labels.iter().find(|l| !seen.insert(l.variant.clone())) {
        bail!(
            "{}: two labels map to the Rust variant `{}`",
            config_path.display(),
            clash.variant
        );
    }
    Ok(labels)
}

/// A detector's labels, from `config.json`'s `id2label` (its class logits are checked
/// against them in [`detection_facts`]).
fn detector_labels(config_path: &Path) -> Result<Vec<LabelVariant>> {
    let config: ConfigJson = read_json(config_path, "export")?;
    labels_of(&config, config_path)
}

/// The letterbox from `preprocessor_config.json`, the grid from `config.json`, and the
/// signature they must fit: pixels `[batch, 3, size, size]` in, `box_distances` `[batch,
/// cells, 4]`, `centerness_logits` `[batch, cells, 1]` and `class_logits` `[batch, cells,
/// labels]` out, with `cells = (size / stride)²`.
/// An image–text model's towers: the image tower's one pixels input and one `[batch,
/// dimension]` output, the text tower's text inputs and one output of the same dimension,
/// and `config.json` agreeing with both.
fn image_text_facts(
    spec: &ModelSpec,
    onnx: &Path,
    signature_path: &Path,
    (inputs, outputs): (&[Tensor], &[Tensor]),
    metrics: &TrainingFigures,
    metrics_path: &Path,
) -> Result<ImageTextFacts> {
    let image = image_facts(onnx, signature_path, inputs)?;
    let config_path = onnx.join("config.json");
    let config: ImageTextConfig = read_json(&config_path, "export")?;
    let embeddings = |tensors: &[Tensor], path: &Path, tower: &str| -> Result<String> {
        let [output] = tensors else {
            bail!("{}: the {tower} tower has one output, its embeddings", path.display());
        };
        let wanted = format!("&[None, Some({})]", config.projection_dim);
        if output.dtype != "float32" || output.dims_rust != wanted {
            bail!(
                "{}: `{}` is {} {}, expected float32 [batch, {}] as config.json's projection_dim says",
                path.display(),
                output.name,
                output.dtype,
                output.dims_shown,
                config.projection_dim
            );
        }
        Ok(output.name.clone())
    };
    let image_output = embeddings(outputs, signature_path, "image")?;
    let text_path = onnx.join("text_signature.json");
    let text: SignatureFile = read_json(&text_path, "export")?;
    let text_inputs = text
        .inputs
        .iter()
        .map(|t| tensor(t, &text_path))
        .collect::<Result<Vec<_>>>()?;
    let text_outputs = text
        .outputs
        .iter()
        .map(|t| tensor(t, &text_path))
        .collect::<Result<Vec<_>>>()?;
    let text_output = embeddings(&text_outputs, &text_path, "text")?;
    if config.image_size != image.crop || config.max_length != spec.max_length() {
        bail!(
            "{}: image_size {} and max_length {} must be the crop ({}) and the spec's train.max_length ({})",
            config_path.display(),
            config.image_size,
            config.max_length,
            image.crop,
            spec.max_length()
        );
    }
    let tower = spec
        .text_tower
        .as_ref()
        .with_context(|| format!("models/{}.toml: no [text_tower]", spec.name))?;
    Ok(ImageTextFacts {
        image,
        image_output,
        text_opset: text.opset,
        text_inputs,
        text_outputs,
        text_output,
        dimension: config.projection_dim,
        text_base_model: tower.model.clone(),
        text_base_package: tower.package.clone(),
        zero_shot_accuracy: metric(metrics.test_accuracy, "test_accuracy", metrics_path)?,
    })
}

fn detection_facts(
    onnx: &Path,
    signature_path: &Path,
    (inputs, outputs): (&[Tensor], &[Tensor]),
    labels: usize,
    metrics: &TrainingFigures,
    metrics_path: &Path,
) -> Result<DetectionFacts> {
    let path = onnx.join("preprocessor_config.json");
    let letterbox: LetterboxConfig = read_json(&path, "export")?;
    let grid: DetectorConfig = read_json(&onnx.join("config.json"), "export")?;
    let size = letterbox.pad_size.height;
    if letterbox.pad_size.width != size || letterbox.size.longest_edge != size || grid.image_size != size {
        bail!(
            "{}: the letterbox must fill a square of config.json's image_size ({}): longest edge {}, pad size {}×{}",
            path.display(),
            grid.image_size,
            letterbox.size.longest_edge,
            letterbox.pad_size.width,
            letterbox.pad_size.height
        );
    }
    if letterbox.resample != PIL_BILINEAR || !letterbox.do_convert_rgb || letterbox.pad_value != LETTERBOX_PAD_VALUE {
        bail!(
            "{}: the runtime implements RGB conversion, PIL bilinear resampling (resample {PIL_BILINEAR}) and padding with gray {LETTERBOX_PAD_VALUE} only",
            path.display()
        );
    }
    if grid.stride == 0 || !size.is_multiple_of(grid.stride) || grid.max_log_distance != MAX_LOG_DISTANCE {
        bail!(
            "{}: stride {} must divide image_size {size}, and max_log_distance ({}) be the runtime's {MAX_LOG_DISTANCE}",
            onnx.join("config.json").display(),
            grid.stride,
            grid.max_log_distance
        );
    }
    let cells = (size / grid.stride).pow(2);
    let [input] = inputs else {
        bail!("{}: a detector has one input, the pixels", signature_path.display());
    };
    if input.dtype != "float32" || input.dims_rust != format!("&[None, Some(3), Some({size}), Some({size})]") {
        bail!(
            "{}: `{}` is {} {}, expected float32 [batch, 3, {size}, {size}] as preprocessor_config.json says",
            signature_path.display(),
            input.name,
            input.dtype,
            input.dims_shown
        );
    }
    let [distances, centerness, classes] = outputs else {
        bail!(
            "{}: a detector has three outputs (box distances, centerness logits, class logits), not {}",
            signature_path.display(),
            outputs.len()
        );
    };
    for (output, columns) in [(distances, 4), (centerness, 1), (classes, labels)] {
        if output.dtype != "float32" || output.dims_rust != format!("&[None, Some({cells}), Some({columns})]") {
            bail!(
                "{}: `{}` is {} {}, expected float32 [batch, {cells}, {columns}] ({cells} cells of stride {} on {size}²)",
                signature_path.display(),
                output.name,
                output.dtype,
                output.dims_shown,
                grid.stride
            );
        }
    }
    Ok(DetectionFacts {
        size,
        stride: grid.stride,
        mean: f32_triple(letterbox.image_mean),
        std: f32_triple(letterbox.image_std),
        pixels_input: input.name.clone(),
        distances_output: distances.name.clone(),
        centerness_output: centerness.name.clone(),
        classes_output: classes.name.clone(),
        map_50: metric(metrics.test_map_50, "test_map_50", metrics_path)?,
        map_50_95: metric(metrics.test_map_50_95, "test_map_50_95", metrics_path)?,
        test_boxes: count(metrics.test_boxes, "test_boxes", metrics_path)?,
    })
}

/// `{:?}` of an f32 is the shortest literal that reads back as the same f32.
fn f32_triple(values: [f64; 3]) -> String {
    format!(
        "[{:?}, {:?}, {:?}]",
        values[0] as f32, values[1] as f32, values[2] as f32
    )
}

/// Pooling from `pooling.json`, and the `last_hidden_state` output it pools.
fn embedding_facts(
    onnx: &Path,
    signature_path: &Path,
    outputs: &[Tensor],
    metrics: &TrainingFigures,
    metrics_path: &Path,
) -> Result<EmbeddingFacts> {
    let pooler = pooler_facts(onnx, signature_path, outputs)?;
    Ok(EmbeddingFacts {
        dimension: pooler.dimension,
        pooling: pooler.pooling,
        pooling_variant: pooler.pooling_variant,
        normalize: pooler.normalize,
        hidden_output: pooler.hidden_output,
        recall_at_1: metric(metrics.test_recall_at_1, "test_recall_at_1", metrics_path)?,
        recall_at_10: metric(metrics.test_recall_at_10, "test_recall_at_10", metrics_path)?,
        base_recall_at_1: metric(metrics.base_test_recall_at_1, "base_test_recall_at_1", metrics_path)?,
        base_recall_at_10: metric(metrics.base_test_recall_at_10, "base_test_recall_at_10", metrics_path)?,
    })
}

/// A SetFit body's pooling, and its head from `head_signature.json`: one `[batch,
/// dimension]` float input the body's embeddings fill.
fn setfit_facts(
    onnx: &Path,
    signature_path: &Path,
    outputs: &[Tensor],
    metrics: &TrainingFigures,
    metrics_path: &Path,
) -> Result<SetFitFacts> {
    let body = pooler_facts(onnx, signature_path, outputs)?;
    let head_path = onnx.join("head_signature.json");
    let head: SignatureFile = read_json(&head_path, "export")?;
    let tensors = |list: &[TensorFile]| list.iter().map(|t| tensor(t, &head_path)).collect::<Result<Vec<_>>>();
    let (head_inputs, head_outputs) = (tensors(&head.inputs)?, tensors(&head.outputs)?);
    let [input] = head_inputs.as_slice() else {
        bail!("{}: a SetFit head takes one input, the embeddings", head_path.display());
    };
    if input.dtype != "float32" || input.dims_rust != format!("&[None, Some({})]", body.dimension) {
        bail!(
            "{}: input `{}` is {} {}, expected float32 [batch, {}] (the body's embedding)",
            head_path.display(),
            input.name,
            input.dtype,
            input.dims_shown,
            body.dimension
        );
    }
    let count = |value: Option<u64>, name: &str| {
        value.with_context(|| {
            format!(
                "{}: no `{name}` (run `cargo xtask train --force`)",
                metrics_path.display()
            )
        })
    };
    Ok(SetFitFacts {
        embedding_input: input.name.clone(),
        head_opset: head.opset,
        examples_per_class: count(metrics.examples_per_class, "examples_per_class")?,
        contrastive_pairs: count(metrics.contrastive_pairs, "contrastive_pairs")?,
        head_parameters: count(metrics.head_parameters, "head_parameters")?,
        base_body_accuracy: metric(metrics.base_body_test_accuracy, "base_body_test_accuracy", metrics_path)?,
        body,
        head_inputs,
        head_outputs,
    })
}

/// Pooling from `pooling.json`, and the `last_hidden_state` output it pools.
fn pooler_facts(onnx: &Path, signature_path: &Path, outputs: &[Tensor]) -> Result<PoolerFacts> {
    let pooling_path = onnx.join("pooling.json");
    let pooling: PoolingFile = read_json(&pooling_path, "export")?;
    let pooling_variant = match pooling.mode {
        Pooling::Mean => "Mean",
        Pooling::Cls => "Cls",
    };
    let hidden = outputs
        .iter()
        .find(|t| t.name == "last_hidden_state")
        .with_context(|| {
            format!(
                "{}: an embedding model (or a SetFit body) needs an output named `last_hidden_state`",
                signature_path.display()
            )
        })?;
    if hidden.dims_rust != format!("&[None, None, Some({})]", pooling.dimension) {
        bail!(
            "{}: `last_hidden_state` has dimensions {}, expected [batch, tokens, {}] as pooling.json says",
            signature_path.display(),
            hidden.dims_shown,
            pooling.dimension
        );
    }
    Ok(PoolerFacts {
        dimension: pooling.dimension,
        pooling: pooling.mode.as_str().to_string(),
        pooling_variant,
        normalize: pooling.normalize,
        hidden_output: hidden.name.clone(),
    })
}
