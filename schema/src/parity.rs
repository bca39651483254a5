//! `parity/<variant>.json`: a variant held to its gate against PyTorch by
//! `modelcrate-parity`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::task::VariantKind;

/// Which bounds a variant must meet (by its `variants.json` kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gate {
    /// FP32 and graph-optimized FP32: the FP32 bounds.
    Exact,
    /// INT8: identical tokens and a task-metric drop of at most 1.0 point vs PyTorch;
    /// drift, top-1 agreement and pipeline scores are reported.
    Int8,
}

impl From<VariantKind> for Gate {
    fn from(kind: VariantKind) -> Self {
        match kind {
            VariantKind::Fp32 => Self::Exact,
            VariantKind::Int8 => Self::Int8,
        }
    }
}

/// `parity/<variant>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityReport {
    pub model: String,
    pub variant: String,
    pub file: String,
    pub gate: Gate,
    /// The PyTorch checkpoint the reference outputs came from.
    pub checkpoint_sha256: String,
    pub passed: bool,
    /// Each failed check with its figure and bound.
    #[serde(default)]
    pub failures: Vec<String>,
    pub metric: ParityMetric,
    pub summary: ParitySummary,
    /// How the checked inputs went through the inference core.
    #[serde(default)]
    pub batching: ParityBatching,
    /// The task's own figures, per check (free-form: each task has its own).
    #[serde(default)]
    pub details: serde_json::Value,
}

impl ParityReport {
    /// Where `variant`'s report is in a model's artifact folder: `parity/<variant>.json`.
    pub fn path(model_dir: &Path, variant: &str) -> PathBuf {
        model_dir.join("parity").join(format!("{variant}.json"))
    }
}

/// The requests the gate sent through the inference core, as a server's clients would:
/// each input alone, all golden inputs at once, and the test split as many small
/// requests at once, merged by the engine into its batches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParityBatching {
    pub requests: usize,
    /// Rows of the engine's batches: a text, an image, or one window of a question's
    /// context.
    pub inputs: usize,
    /// Inputs that ran in a batch beside texts of other lengths (padded, or padded to).
    pub mixed_length_inputs: usize,
    /// The most inputs one engine batch held.
    pub largest_batch: usize,
}

/// The task metric on the test split, by which variants are compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityMetric {
    /// `accuracy`, `entity F1`, `recall@10`, …
    pub name: String,
    /// This variant's.
    pub value: f64,
    /// PyTorch's, on the same split.
    pub pytorch: f64,
    /// A distilled student's teacher's FP32 figure, which the student is held to as well.
    #[serde(default)]
    pub teacher: Option<f64>,
}

/// Task-independent headlines for `cargo xtask report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParitySummary {
    pub drift: Drift,
    pub golden: Agreement,
    pub test_agreement: Agreement,
}

/// The largest difference from PyTorch, by the task's measure of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub name: String,
    pub value: f64,
}

impl Drift {
    pub fn new(name: &str, value: f64) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }
}

/// How many of so many inputs agree with PyTorch, by the task's measure of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    pub name: String,
    pub agree: usize,
    pub of: usize,
}

impl Agreement {
    pub fn new(name: &str, agree: usize, of: usize) -> Self {
        Self {
            name: name.into(),
            agree,
            of,
        }
    }
}
