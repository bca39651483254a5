//! How the server finds models without knowing any by name: each generated crate
//! exports a [`ModelEntry`], and the umbrella crate lists them all.

use std::path::{Path, PathBuf};

use crate::classification::{ProblemType, TextClassifier};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    TextClassification,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TextClassification => "text-classification",
        }
    }
}

/// How to load a model: which ONNX file of its folder, and the thread layout.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `libonnxruntime.so.1.31.1`; `ORT_DYLIB_PATH` when `None`.
    pub ort_dylib: Option<PathBuf>,
    /// ONNX file name inside the model's folder.
    pub variant: String,
    /// Sessions in the pool: how many batches may run at once.
    pub sessions: usize,
    /// Intra-op threads of each session.
    pub intra_threads: usize,
    /// Largest batch given to one `session.run`; longer inputs are split.
    pub max_batch_size: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            ort_dylib: None,
            variant: "model.onnx".into(),
            sessions: 2,
            intra_threads: 1,
            max_batch_size: 32,
        }
    }
}

/// What `GET /models` reports of a loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: &'static str,
    pub task: Task,
    pub labels: &'static [&'static str],
    pub max_length: usize,
    pub problem_type: ProblemType,
    pub variant: String,
    pub sessions: usize,
}

/// A loaded model, by task.
pub enum LoadedModel {
    TextClassification(TextClassifier),
}

impl LoadedModel {
    pub fn info(&self) -> &ModelInfo {
        match self {
            Self::TextClassification(model) => model.info(),
        }
    }
}

/// One generated model, as the umbrella crate lists it.
#[derive(Debug, Clone, Copy)]
pub struct ModelEntry {
    pub name: &'static str,
    pub task: Task,
    /// Loads the model from its ONNX folder (`artifacts/<name>/onnx`).
    pub load: fn(&Path, &LoadOptions) -> Result<LoadedModel>,
}
