//! The inference core, what every protocol calls (text-embeddings-inference's `core` in
//! spirit): a model's engine (the bounded queue that admits a request or refuses it at
//! once, the workers that merge concurrent requests into length-sorted runs), its plan
//! (the measured policy under the operator's flags), the catalog of models a binary
//! links, and [`Infer`]: `classify`, `embed`, `entities`, `classify_images`, `tokenize`,
//! each with the truncation rules, the function to apply and the normalisation applied
//! once here, answering typed results with where their time went. Nothing here knows
//! HTTP or any protocol's wire format.

pub mod catalog;
pub mod engine;
pub mod engine_plan;
mod error;
pub mod infer;
pub mod pipeline;

pub use catalog::Catalog;
pub use engine::{Answered, BatchingOptions, Engine, Pending, Refused, Rows};
pub use engine_plan::{EngineFlags, EnginePlan, LayoutFlag, MergeFlag};
pub use error::CoreError;
pub use infer::{
    Answers, Classified, Detected, Embedded, Found, ImagesEmbedded, Infer, Limits, Prepared, Timings, Token, Truncate,
    ZeroShot,
};
pub use pipeline::TopK;
