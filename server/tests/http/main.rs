//! The server over real HTTP on 127.0.0.1, with the exported models, one module per
//! protocol (and the batching engine's and the server's own behaviour): answers equal
//! the `transformers` pipeline's own JSON, and every bad request gets a 4xx JSON error.
//! One test binary: each module would otherwise link the server and every model again.
//!
//! Needs the exported models and `ORT_DYLIB_PATH`, which `cargo xtask test` provides.
//! The protocols' shapes alone, without artifacts, are `protocols.rs`'s.

#[path = "../common/mod.rs"]
mod common;

mod batching;
mod hf;
mod kserve;
mod openai;
mod served;
mod tei;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use modelcrate_core::BatchingOptions;
use modelcrate_core::pipeline;
use modelcrate_runtime::variants::{read_serving, read_variants};
use modelcrate_runtime::{Layout, MergeLimits, MergeStep, VariantChoice};
use serde_json::{Value, json};

const SCORE_BOUND: f64 = 1e-4;

fn reference() -> Value {
    reference_of("news-topic")
}

/// Starts the server with the FP32 export, whose answers must equal the pipeline's.
async fn start() -> String {
    start_with(VariantChoice::Named("fp32".into())).await
}

/// Starts the server with only `names` (their FP32 variants): a test about one model's
/// answers need not load and warm up all ten (about 30 s of both cores each time, in a
/// process of its own under nextest).
async fn start_only(names: &[&str]) -> String {
    start_serving(
        names,
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await
}

/// Starts the server with every model on a free loopback port; returns its base URL.
async fn start_with(variant: VariantChoice) -> String {
    start_serving(&[], variant, BatchingOptions::default(), REQUEST_TIMEOUT).await
}

/// Max |score difference| of two pipeline answers; panics on any other difference.
fn compare(rust: &Value, python: &Value, place: &str) -> f64 {
    pipeline::difference(rust, python, place).unwrap_or_else(|problem| panic!("{problem}"))
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn vector(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an embedding is an array")
        .iter()
        .map(|v| v.as_f64().expect("of numbers"))
        .collect()
}

async fn post_status(base: &str, path: &str, body: &Value, status: u16, says: &str) {
    let (got, answer) = post(base, path, body).await;
    assert_eq!(got, status, "{body}: {answer}");
    let message = answer["error"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{body}: {message}");
}
