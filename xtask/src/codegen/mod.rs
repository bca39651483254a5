//! `cargo xtask gen`: renders one crate per model into `generated/<name>/`, and the
//! umbrella crate `generated/models/` that lists them, from `templates/`.
//!
//! Three steps, one module each: `facts` reads what a crate is generated from (the spec
//! and the files the export step wrote: `config.json`, `signature.json`, `metrics.json` as
//! `card_figures` quotes it, `pooling.json`, `preprocessor_config.json`) and checks it
//! fits a template; `render` fills the templates with askama and formats them with
//! rustfmt; `files` compares the rendered files with `generated/` (`--check` fails,
//! naming the stale files) or writes them. The output is checked in, with each model's
//! `training.json`, the run its card quotes.

mod facts;
mod files;
mod render;
#[cfg(test)]
mod tests;

pub use facts::ModelFacts;
pub use files::{stale_files, write};
pub use render::render;

pub const COMMAND: &str = "cargo xtask gen";
