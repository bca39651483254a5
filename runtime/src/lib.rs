//! What every generated model crate shares: the ONNX Runtime environment and session
//! pools, the check of an artifact against the signature a crate was generated from,
//! tokenization into batched tensors, torchvision's image preprocessing and a detector's
//! letterboxing (pixel for pixel), a detector's box decoding and NMS,
//! and the Hugging Face post-processing (pipeline scores for classifiers, entity
//! aggregation for token classifiers, sentence-transformers pooling for embedding models).
//!
//! Generated crates hold only model-specific constants and types, and call in here;
//! the server reaches models only through [`registry`].

pub mod classification;
pub mod detection;
pub mod embedding;
pub mod environment;
pub mod error;
pub mod image;
pub mod image_classification;
pub mod image_text;
pub mod json_file;
pub mod labels;
pub mod object_detection;
pub mod policy;
pub mod pool;
pub mod question_answering;
pub mod registry;
pub mod signature;
pub mod text;
pub mod token_classification;
pub mod variants;

pub use classification::{ClassificationFunction, LabelScore, ProblemType, TextClassifier};
pub use embedding::{Pooling, SentenceEmbedder};
pub use error::{Error, Result};
pub use image::{ImageError, Preprocessing};
pub use image_classification::ImageClassifier;
pub use image_text::{ImageEmbedding, ImageTextModel, TextEmbedding};
pub use labels::Labels;
pub use modelcrate_schema::Task;
pub use object_detection::ObjectDetector;
pub use policy::{CostPoint, Costs, EnginePolicy, LayoutChoice, MergeLimits, MergeStep};
pub use pool::{Lane, Layout};
pub use question_answering::{Answer, AnswerOptions, QuestionAnswerer};
pub use registry::{Input, LoadOptions, ModelEntry, ModelInfo, RowOutput, TaskModel};
pub use signature::{Signature, TensorSpec};
pub use token_classification::{AggregationStrategy, Entity, TokenClassifier};
pub use variants::{VariantChoice, VariantKind};
