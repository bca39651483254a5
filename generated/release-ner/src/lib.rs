#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! let model = release_ner::load("artifacts/release-ner/onnx".as_ref())?;
//! for entity in &model.entities(&["PostgreSQL 16.2 is now available."])?[0] {
//!     println!("{} `{}` at {}..{} ({:.3})", entity.entity_type, entity.word, entity.start, entity.end, entity.score);
//! }
//! # Ok::<(), modelcrate_runtime::Error>(())
//! ```

use std::path::Path;

use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::token_classification::{TokenClassifier, TokenClassifierSpec};
use modelcrate_runtime::{
    AggregationStrategy, Error, LoadOptions, ModelEntry, ModelInfo, Result, Task, TaskModel, labels,
};

/// The model's name: its spec file, artifact folder and route.
pub const NAME: &str = "release-ner";
/// Longest input in tokens, special tokens included; longer texts are truncated.
pub const MAX_LENGTH: usize = 128;
/// ONNX input names, in the graph's order.
pub const INPUT_NAMES: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];
/// The ONNX output of `[batch, tokens, labels]` logits this crate reads.
pub const LOGITS_OUTPUT: &str = "logits";
pub const LABEL_COUNT: usize = 5;
pub const ENTITY_TYPE_COUNT: usize = 2;

/// The ONNX signature this crate was generated from; [`load`] refuses any other.
pub const SIGNATURE: Signature = Signature {
    inputs: &[
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
        TensorSpec {
            name: "token_type_ids",
            dtype: DType::Int64,
            dims: &[None, None],
        },
    ],
    outputs: &[TensorSpec {
        name: "logits",
        dtype: DType::Float32,
        dims: &[None, None, Some(5)],
    }],
};

/// The model's labels, in `config.json` id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Label {
    /// `O` (id 0)
    #[serde(rename = "O")]
    O = 0,
    /// `B-PRODUCT` (id 1)
    #[serde(rename = "B-PRODUCT")]
    BProduct = 1,
    /// `I-PRODUCT` (id 2)
    #[serde(rename = "I-PRODUCT")]
    IProduct = 2,
    /// `B-VERSION` (id 3)
    #[serde(rename = "B-VERSION")]
    BVersion = 3,
    /// `I-VERSION` (id 4)
    #[serde(rename = "I-VERSION")]
    IVersion = 4,
}

impl Label {
    /// Every label, in id order.
    pub const ALL: [Label; LABEL_COUNT] = [
        Label::O,
        Label::BProduct,
        Label::IProduct,
        Label::BVersion,
        Label::IVersion,
    ];
    /// Label strings in id order, as `config.json`'s `id2label` has them.
    pub const NAMES: [&str; LABEL_COUNT] = ["O", "B-PRODUCT", "I-PRODUCT", "B-VERSION", "I-VERSION"];

    /// The id in `config.json`, which is also the logit's column.
    pub const fn id(self) -> usize {
        self as usize
    }

    pub fn from_id(id: usize) -> Option<Self> {
        Self::ALL.get(id).copied()
    }

    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl modelcrate_runtime::Labels for Label {
    const NAMES: &'static [&'static str] = &Label::NAMES;

    fn from_id(id: usize) -> Option<Self> {
        Label::from_id(id)
    }

    fn id(self) -> usize {
        Label::id(self)
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Label {
    type Err = modelcrate_runtime::labels::UnknownLabel;

    /// A label string (a user's, or a reference file's), as `config.json` spells it.
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        modelcrate_runtime::labels::parse_label(text, &Self::NAMES).map(|id| Self::ALL[id])
    }
}

/// What the model finds: the labels' entity types, without their `B-`/`I-` prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum EntityType {
    /// `PRODUCT`
    #[serde(rename = "PRODUCT")]
    Product,
    /// `VERSION`
    #[serde(rename = "VERSION")]
    Version,
}

impl EntityType {
    pub const ALL: [EntityType; ENTITY_TYPE_COUNT] = [EntityType::Product, EntityType::Version];
    pub const NAMES: [&str; ENTITY_TYPE_COUNT] = ["PRODUCT", "VERSION"];

    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::fmt::Display for EntityType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EntityType {
    type Err = modelcrate_runtime::labels::UnknownLabel;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        modelcrate_runtime::labels::parse_label(text, &Self::NAMES).map(|id| Self::ALL[id])
    }
}

impl Label {
    /// The entity type this BIO label marks; `None` for `O`.
    pub const fn entity_type(self) -> Option<EntityType> {
        match self {
            Label::O => None,
            Label::BProduct => Some(EntityType::Product),
            Label::IProduct => Some(EntityType::Product),
            Label::BVersion => Some(EntityType::Version),
            Label::IVersion => Some(EntityType::Version),
        }
    }
}

/// One entity in a text: its type, its words, where it is, and the model's confidence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entity {
    pub entity_type: EntityType,
    /// The pipeline's score: the mean over the entity's tokens (or words).
    pub score: f32,
    /// The entity as the tokenizer decodes it (lower-cased by this uncased model).
    pub word: String,
    /// Character offsets into the text (not bytes).
    pub start: usize,
    pub end: usize,
}

/// One token's label (strategy `none`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenLabel {
    pub label: Label,
    pub score: f32,
    /// Position in the model input (`[CLS]` is 0).
    pub index: usize,
    /// The token, e.g. `##s`.
    pub word: String,
    pub start: usize,
    pub end: usize,
}

const SPEC: TokenClassifierSpec = TokenClassifierSpec {
    name: NAME,
    signature: SIGNATURE,
    logits_output: LOGITS_OUTPUT,
    labels: &Label::NAMES,
    max_length: MAX_LENGTH,
};

/// The loaded model. Cheap to share: clone an `Arc` of it across threads.
pub struct Model {
    classifier: TokenClassifier,
}

/// Loads the serving variant of `dir` (the one `dir/serving.json` names; `model.onnx`
/// without it) with its tokenizer and config, checking them against this crate.
pub fn load(dir: &Path) -> Result<Model> {
    load_with(dir, &LoadOptions::default())
}

/// Loads with a chosen variant (`LoadOptions::variant`: any of `dir/variants.json`, which
/// share this crate's signature) and thread layout.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<Model> {
    Ok(Model {
        classifier: TokenClassifier::load(dir, SPEC, options)?,
    })
}

impl Model {
    /// The entities of each text, grouped as the pipeline's `aggregation_strategy="simple"`.
    pub fn entities(&self, texts: &[&str]) -> Result<Vec<Vec<Entity>>> {
        self.entities_with(texts, AggregationStrategy::Simple)
    }

    /// The entities of each text under `strategy`; with `AggregationStrategy::None` each
    /// token labelled as part of an entity is one (see [`Model::token_labels`] for its BIO label).
    pub fn entities_with(&self, texts: &[&str], strategy: AggregationStrategy) -> Result<Vec<Vec<Entity>>> {
        self.classifier
            .entities(texts, strategy, None)?
            .into_iter()
            .map(|found| {
                found
                    .into_iter()
                    .map(|entity| {
                        let label: Label = labels::label(entity.label_id)?;
                        let entity_type = label.entity_type().ok_or_else(|| {
                            Error::OutputShape(format!("an entity labelled `{label}`, which marks none"))
                        })?;
                        Ok(Entity {
                            entity_type,
                            score: entity.score,
                            word: entity.word,
                            start: entity.start,
                            end: entity.end,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Every token's label, `O` included (strategy `none`, nothing ignored).
    pub fn token_labels(&self, texts: &[&str]) -> Result<Vec<Vec<TokenLabel>>> {
        self.classifier
            .entities(texts, AggregationStrategy::None, Some(&[]))?
            .into_iter()
            .map(|tokens| {
                tokens
                    .into_iter()
                    .map(|token| {
                        Ok(TokenLabel {
                            label: labels::label(token.label_id)?,
                            score: token.score,
                            index: token.index.unwrap_or_default(),
                            word: token.word,
                            start: token.start,
                            end: token.end,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// What was loaded: name, task, variant (and why it serves), signature.
    pub fn info(&self) -> &ModelInfo {
        self.classifier.info()
    }
}

/// The model card (`README.md`, Markdown): what the server shows at `/models/{name}`.
pub const CARD: &str = include_str!("../README.md");

/// This model as the umbrella crate lists it for the server.
pub const ENTRY: ModelEntry = ModelEntry {
    name: NAME,
    task: Task::TokenClassification,
    card: CARD,
    load: load_entry,
};

fn load_entry(dir: &Path, options: &LoadOptions) -> Result<Box<dyn TaskModel>> {
    Ok(Box::new(load_with(dir, options)?.classifier))
}
