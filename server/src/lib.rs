//! Modelcrate's HTTP server, and only that: the router, the state every route shares,
//! one module per protocol (`hf`, `tei`, `openai`, `kserve`, `admin`, `openapi`), the
//! pages a browser gets (`playground`, `card`, on `page`), the errors, the lifecycle and the hot reload. Inference is the core's (`modelcrate_core`),
//! the reload's canary is the parity gate's (`modelcrate_parity`). It links the umbrella
//! crate of generated models and knows none by name: routes are per task, and models come
//! from `modelcrate_models::MODELS`.

pub mod admin;
pub mod card;
pub mod config;
pub mod error;
pub mod hf;
pub mod image_request;
pub mod integrity;
pub mod kserve;
pub mod lifecycle;
pub mod listen;
pub mod metrics;
pub mod openai;
pub mod openapi;
pub mod page;
pub mod playground;
pub mod reload;
pub mod request;
pub mod request_log;
pub mod routes;
pub mod served;
pub mod state;
pub mod status;
pub mod tei;
pub mod wire;

pub use config::Config;
use modelcrate_core::Catalog;
pub use routes::app;
pub use state::AppState;

/// The models this server links, from the umbrella crate.
pub const CATALOG: Catalog = Catalog::new(modelcrate_models::MODELS);
