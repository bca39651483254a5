//! The files Modelcrate's steps hand to each other, declared once: what the Python steps
//! write and the xtask, the runtime, the parity gate and the bench read, or what one Rust
//! step writes for another. Types and their small pure helpers only (serde, no I/O), so
//! that every reader and writer of a file agrees on its shape by construction.
//!
//! | file | written by | read by |
//! |---|---|---|
//! | `models/<name>.toml`'s `task` ([`Task`]) | a person | xtask, runtime, server |
//! | `onnx/signature.json` ([`SignatureFile`]) | export | codegen |
//! | `onnx/pooling.json` ([`PoolingFile`]) | export | codegen, runtime |
//! | `onnx/preprocessor_config.json` ([`PreprocessorConfig`]) | vision export | codegen, runtime |
//! | `onnx/variants.json`, `variants.student.json` ([`Variants`]) | optimize, student | xtask, runtime |
//! | `onnx/serving.json` ([`Serving`]) | `xtask select` | runtime, server, xtask report and bench |
//! | `parity/<variant>.json` ([`ParityReport`]) | `modelcrate-parity` | `xtask select`, report, bench |
//! | `bench/<variant>.json` ([`MeasureReport`]) | `modelcrate-measure` | `xtask select`, report |
//! | `bench/<variant>.costs.json` ([`CostsReport`]) | `modelcrate-measure --costs` | `xtask select` |
//! | `modelcrate-load`'s output ([`LoadReport`], [`CeilingReport`]) | `modelcrate-load` | `xtask bench` |

mod costs;
mod export;
mod load;
mod measure;
mod parity;
mod serving;
mod task;
mod variants;

pub use costs::{CostPoint, Costs, CostsReport};
pub use export::{
    CropSize, DetectorConfig, Dim, ImageTextConfig, LETTERBOX_PAD_VALUE, LetterboxConfig, LongestEdge,
    MAX_LOG_DISTANCE, PIL_BILINEAR, Pooling, PoolingFile, PreprocessorConfig, ShortestEdge, SignatureFile, TensorFile,
};
pub use load::{CeilingBatch, CeilingReport, ClosedLevel, LevelFigures, LoadReport, OpenLevel, TokenMoments};
pub use measure::{Latency, Machine, MeasureReport, Rss, SessionLayout, Throughput};
pub use parity::{Agreement, Drift, Gate, ParityBatching, ParityMetric, ParityReport, ParitySummary};
pub use serving::{Candidate, EnginePolicy, LayoutChoice, MergeLimits, MergeStep, Policy, Serving, TestMetric};
pub use task::{Task, VariantKind};
pub use variants::{FP32, FP32_FILE, SERVING_FILE, STUDENT_VARIANTS_FILE, Student, VARIANTS_FILE, Variant, Variants};
