//! Modelcrate's HTTP server. It links the umbrella crate of generated models and knows
//! none by name: routes are per task, and models come from `modelcrate_models::MODELS`.

pub mod admin;
pub mod config;
pub mod error;
pub mod hf;
pub mod image_request;
pub mod kserve;
pub mod lifecycle;
pub mod metrics;
pub mod openai;
pub mod openapi;
pub mod parity;
pub mod reload;
pub mod request;
pub mod request_log;
pub mod routes;
pub mod served;
pub mod state;
pub mod stats;
pub mod tei;
pub mod test_split;

pub use config::Config;
use modelcrate_core::Catalog;

/// The models this server links, from the umbrella crate.
pub const CATALOG: Catalog = Catalog::new(modelcrate_models::MODELS);
pub use routes::app;
pub use state::AppState;
