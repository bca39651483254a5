//! Modelcrate's HTTP server. It links the umbrella crate of generated models and knows
//! none by name: routes are per task, and models come from `modelcrate_models::MODELS`.

pub mod admin;
pub mod config;
pub mod engine_plan;
pub mod error;
pub mod image_request;
pub mod kserve;
pub mod lifecycle;
pub mod metrics;
pub mod models;
pub mod openai;
pub mod openapi;
pub mod parity;
pub mod pipeline_json;
pub mod reload;
pub mod request;
pub mod request_log;
pub mod routes;
pub mod served;
pub mod stats;
pub mod tei;
pub mod test_split;

pub use config::Config;
pub use routes::{AppState, app};
