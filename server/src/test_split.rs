//! The held-out test split the train step wrote (`<artifacts>/<name>/data/test.jsonl`):
//! what `modelcrate-parity` scores accuracy on and `modelcrate-measure` times, so both
//! use realistic inputs that no model was trained on.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// One labelled article.
#[derive(Debug, Clone, Deserialize)]
pub struct TestRow {
    pub text: String,
    pub label_id: usize,
}

/// Reads the test split of `model`.
pub fn read(artifacts: &Path, model: &str) -> Result<Vec<TestRow>> {
    let path = artifacts.join(model).join("data/test.jsonl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}: run `cargo xtask train`", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(number, line)| {
            serde_json::from_str(line).with_context(|| format!("{} line {}: malformed", path.display(), number + 1))
        })
        .collect()
}
