//! What the bench binaries share: `modelcrate-measure` times one variant through the
//! inference core's loading path, `modelcrate-load` loads a server over HTTP and measures
//! the ceiling (ONNX Runtime alone); both report latency quantiles and the machine.

use modelcrate_core::Catalog;

pub mod stats;

/// The models the bench binaries link, from the umbrella crate.
pub const CATALOG: Catalog = Catalog::new(modelcrate_models::MODELS);
