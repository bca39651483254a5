//! The kinds every file and step agrees on: a model's task and a variant's kind.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a model does, by the Hugging Face pipeline's name for it (a spec's `task`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// A label (or several) per text.
    TextClassification,
    /// Sentence embeddings (the pipeline's name for it).
    FeatureExtraction,
    /// Named entities: a label per token, aggregated into entities.
    TokenClassification,
    /// A label per image.
    ImageClassification,
    /// Extractive question answering: the span of a context that answers a question.
    QuestionAnswering,
    /// Labelled boxes around the objects an image shows.
    ObjectDetection,
    /// Images and texts in one space (a CLIP-style dual encoder): an image's scores over
    /// candidate labels it was never trained on, and each tower's embeddings.
    ZeroShotImageClassification,
}

impl Task {
    /// Every task, in the order specs and tables list them.
    pub const ALL: [Self; 7] = [
        Self::TextClassification,
        Self::FeatureExtraction,
        Self::TokenClassification,
        Self::QuestionAnswering,
        Self::ImageClassification,
        Self::ObjectDetection,
        Self::ZeroShotImageClassification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TextClassification => "text-classification",
            Self::FeatureExtraction => "feature-extraction",
            Self::TokenClassification => "token-classification",
            Self::ImageClassification => "image-classification",
            Self::QuestionAnswering => "question-answering",
            Self::ObjectDetection => "object-detection",
            Self::ZeroShotImageClassification => "zero-shot-image-classification",
        }
    }

    /// The task named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|task| task.as_str() == name)
    }

    /// Whether its inputs are images (else texts). An image–text model's are both; its
    /// task's input is the image.
    pub fn is_image(self) -> bool {
        matches!(
            self,
            Self::ImageClassification | Self::ObjectDetection | Self::ZeroShotImageClassification
        )
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a variant's outputs may drift from PyTorch's, by how it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariantKind {
    /// The FP32 export or a graph-optimized copy of it: FP32 parity bounds.
    Fp32,
    /// Quantized to INT8 (dynamically, or statically with calibration): the INT8 gate
    /// (task metric within 1.0 point).
    Int8,
}

impl VariantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Int8 => "int8",
        }
    }
}

impl fmt::Display for VariantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_reads_and_writes_as_the_pipeline_names_it() {
        for task in Task::ALL {
            let json = serde_json::to_string(&task).unwrap();
            assert_eq!(json, format!("\"{}\"", task.as_str()));
            assert_eq!(serde_json::from_str::<Task>(&json).unwrap(), task);
            assert_eq!(Task::parse(task.as_str()), Some(task));
        }
        assert_eq!(Task::parse("text-to-speech"), None);
        assert!(serde_json::from_str::<Task>("\"text_classification\"").is_err());
    }
}
