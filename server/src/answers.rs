//! The `transformers` pipelines' answers as the wire describes them: the schemas of what
//! the Inference API and TEI's `/predict` answer (the JSON itself is built by
//! `modelcrate_core::pipeline`, which parity also compares with the pipelines' own, and
//! `tests/protocols.rs` checks the answers against these descriptions). Shared by the
//! protocols that answer in these shapes and by the OpenAPI document.

use serde::Serialize;
use utoipa::ToSchema;

/// A label and its score: one entry of a classifier's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabelScore {
    pub label: String,
    pub score: f64,
}

/// A classifier's answer: without `top_k`, the best label of each text in one list;
/// with it (or from TEI's `/predict`), each text's labels best first, in a list per text
/// when a list was sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Ranked {
    Labels(Vec<LabelScore>),
    PerText(Vec<Vec<LabelScore>>),
}

/// An entity of aggregation `simple`, `first`, `average` or `max`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntityGroup {
    /// The entity type (`PRODUCT`).
    pub entity_group: String,
    /// The mean of its tokens' (or words') scores.
    pub score: f64,
    /// Its words as the tokenizer decodes them.
    pub word: String,
    /// Character offsets into the text (not bytes).
    pub start: usize,
    pub end: usize,
}

/// A token's label (aggregation `none`).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenEntity {
    /// The BIO label (`B-PRODUCT`).
    pub entity: String,
    pub score: f64,
    /// Its position in the model input (`[CLS]` is 0).
    pub index: usize,
    pub word: String,
    pub start: usize,
    pub end: usize,
}
