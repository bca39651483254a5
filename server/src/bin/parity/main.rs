//! `modelcrate-parity`: proves that a generated model predicts what PyTorch predicts,
//! through the same loading, tokenization, inference and answer shaping as the server.
//!
//! For a text classifier (`classification.rs`), against `golden/<name>/reference.json`
//! (written by `cargo xtask golden`):
//! token ids identical to Python's on every input; max |logit| difference ≤ 1e-4, each
//! input alone and all of them as one padded batch; the same top label on every input;
//! the pipeline's JSON for every recorded parameter set (labels and order identical,
//! scores within 1e-4); and, over the whole test split, the same accuracy as PyTorch.
//! FP32 and graph-optimized variants must meet those bounds; a dynamic INT8 variant must
//! keep token ids identical and lose at most 1.0 point of test accuracy, and its logit
//! drift, top-1 agreement and pipeline scores are reported.
//! For a sentence-embedding model (`embedding.rs`): token ids identical; every golden
//! embedding, alone and batched, within cosine ≥ 0.99999 and max |diff| ≤ 1e-5 of
//! `SentenceTransformer.encode` (INT8: cosine ≥ 0.99, min and mean reported); retrieval
//! recall@1/@10 over the test split equal to PyTorch's (INT8: recall@10 at most 1.0 point
//! below).
//! For a token classifier (`token.rs`): token ids and character offsets identical; per-token
//! logits within 1e-4, alone and batched; the pipeline's entity lists for every recorded
//! aggregation strategy and `ignore_labels` identical (labels, offsets, words; scores
//! within 1e-4); entity F1 over the test split equal to PyTorch's (INT8: at most 1.0 point
//! below, the rest reported).
//! For an image classifier (`image.rs`): decoded and resized pixels against PIL's (PNG
//! identical, JPEG within 8 levels), logits within 1e-4 on PNGs (JPEG decoding
//! differences reported and bounded), top labels identical, undecodable files refused by
//! both, and test-split accuracy equal to PyTorch's (INT8: at most 1.0 point below).
//! Writes `<artifacts>/<name>/parity/<variant>.json` and prints a table. Exits 0 when the
//! variant meets its gate, 2 when it does not (the report is written), 1 on an error.

mod classification;
mod embedding;
mod image;
mod token;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use modelcrate_runtime::text::TextEncoder;
use modelcrate_runtime::{LoadOptions, LoadedModel, VariantChoice, VariantKind};
use modelcrate_server::error::ApiError;
use modelcrate_server::test_split;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    model: String,
    /// The model's golden folder (inputs.json, reference.json).
    #[arg(long)]
    golden: PathBuf,
    #[arg(long, env = "MODELCRATE_ARTIFACTS", default_value = "artifacts")]
    artifacts: PathBuf,
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_dylib: Option<PathBuf>,
    /// A variant named in `onnx/variants.json` (`fp32` needs no manifest).
    #[arg(long, default_value = "fp32")]
    variant: String,
}

/// Which bounds a variant must meet (`variants.json`'s `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// FP32 and graph-optimized FP32: the FP32 bounds.
    Exact,
    /// Dynamic INT8: identical tokens and an accuracy drop of at most 1.0 point vs
    /// PyTorch; logit drift, top-1 agreement and pipeline scores are reported.
    Int8,
}

impl From<VariantKind> for Gate {
    fn from(kind: VariantKind) -> Self {
        match kind {
            VariantKind::Fp32 => Self::Exact,
            VariantKind::Int8 => Self::Int8,
        }
    }
}

/// When a row's bound applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Every variant must meet it.
    Every,
    /// Exact variants must meet it; for INT8 it is reported.
    Exact,
}

struct Figures {
    gate: Gate,
    failures: Vec<String>,
    rows: Vec<(String, String, String, bool)>,
}

impl Figures {
    fn row(&mut self, rule: Rule, check: &str, figure: String, bound: &str, pass: bool) {
        let (bound, pass) = match (rule, self.gate) {
            (Rule::Exact, Gate::Int8) => (format!("reported for INT8; FP32 bound {bound}"), true),
            _ => (bound.to_string(), pass),
        };
        if !pass {
            self.failures.push(format!("{check}: {figure} (bound {bound})"));
        }
        self.rows.push((check.into(), figure, bound, pass));
    }
}

/// Token ids of every golden text against Python's (`(id, ids)` per case, in order):
/// the row every variant of every task must pass. Returns the ids of mismatched cases.
fn check_token_ids<'a>(
    encoder: &TextEncoder,
    texts: &[&str],
    golden: impl Iterator<Item = (&'a str, &'a [u32])>,
    figures: &mut Figures,
) -> Result<Vec<&'a str>> {
    let token_ids = encoder.token_ids(texts)?;
    let mismatched: Vec<&str> = golden
        .zip(&token_ids)
        .filter(|((_, python), rust)| python != &rust.as_slice())
        .map(|((id, _), _)| id)
        .collect();
    figures.row(
        Rule::Every,
        "token ids identical",
        format!("{}/{} inputs", texts.len() - mismatched.len(), texts.len()),
        "all",
        mismatched.is_empty(),
    );
    Ok(mismatched)
}

/// Max |difference| of a row of logits; infinite when the widths differ.
pub(crate) fn max_abs_difference(rust: &[f32], python: &[f64]) -> f64 {
    rust.iter()
        .zip(python)
        .map(|(r, p)| (f64::from(*r) - p).abs())
        .fold(0.0, f64::max)
        + if rust.len() == python.len() { 0.0 } else { f64::INFINITY }
}

/// A recorded pipeline call's parameters, read by the server's own request parser (`parse`
/// is a task's `…Request::parse`), so that parity replays exactly what the server accepts.
fn call_parameters<T>(call: &Value, parse: impl Fn(&[u8], usize) -> Result<T, ApiError>) -> Result<T> {
    let body = json!({"inputs": "-", "parameters": call}).to_string();
    parse(body.as_bytes(), 1).map_err(|error| anyhow::anyhow!("recorded call {call}: {error}"))
}

/// What a task's check found, for the report.
struct Checked {
    checkpoint: String,
    /// The task metric on the test split, by which variants are compared:
    /// `{"name", "value", "pytorch"}`.
    metric: Value,
    /// Task-independent headlines for `cargo xtask report`: drift, golden agreement,
    /// test-split agreement.
    summary: Value,
    details: Value,
}

fn run(args: &Args) -> Result<bool> {
    let reference_path = args.golden.join("reference.json");
    let reference = std::fs::read_to_string(&reference_path)
        .with_context(|| format!("cannot read {}: run `cargo xtask golden`", reference_path.display()))?;
    let entry = modelcrate_server::models::entry(&args.model)?;
    let options = LoadOptions {
        ort_dylib: args.ort_dylib.clone(),
        variant: VariantChoice::Named(args.variant.clone()),
        ..LoadOptions::default()
    };
    let model = modelcrate_server::models::load(entry, &args.artifacts, &options)?;
    let file = model.info().variant.file.clone();
    let gate = Gate::from(model.info().variant.kind);

    let mut figures = Figures {
        gate,
        failures: Vec::new(),
        rows: Vec::new(),
    };
    let checked = match &model {
        LoadedModel::TextClassification(classifier) => {
            let test = test_split::read(&args.artifacts, &args.model)?;
            classification::check(classifier, &reference, &test, &mut figures)
        }
        LoadedModel::FeatureExtraction(embedder) => {
            let pairs = test_split::read_pairs(&args.artifacts, &args.model)?;
            embedding::check(embedder, &reference, &pairs, &mut figures)
        }
        LoadedModel::TokenClassification(tagger) => {
            let test = test_split::read_tagged(&args.artifacts, &args.model)?;
            token::check(tagger, &reference, &test, &mut figures)
        }
        LoadedModel::ImageClassification(classifier) => {
            let test = test_split::read_images(&args.artifacts, &args.model)?;
            let pixels = args.artifacts.join(&args.model).join("golden-pixels");
            image::check(classifier, &reference, &args.golden, &pixels, &test, &mut figures)
        }
    }
    .with_context(|| format!("checking against {}", reference_path.display()))?;

    println!(
        "parity: {} variant {} ({file}, {gate:?} gate) vs PyTorch checkpoint {}",
        args.model,
        args.variant,
        checked.checkpoint.get(..12).unwrap_or(&checked.checkpoint)
    );
    let width = figures.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (check, figure, bound, pass) in &figures.rows {
        println!(
            "  {} {check:<width$}  {figure}  (bound: {bound})",
            if *pass { "ok  " } else { "FAIL" }
        );
    }
    let passed = figures.failures.is_empty();
    let report = json!({
        "model": args.model,
        "variant": args.variant,
        "file": file,
        "gate": format!("{gate:?}"),
        "checkpoint_sha256": checked.checkpoint,
        "passed": passed,
        "failures": figures.failures,
        "metric": checked.metric,
        "summary": checked.summary,
        "details": checked.details,
    });
    let out_dir = args.artifacts.join(&args.model).join("parity");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let out = out_dir.join(format!("{}.json", args.variant));
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(passed)
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => {
            eprintln!(
                "{} variant {} misses its gate (see the FAIL rows above)",
                args.model, args.variant
            );
            // Distinct from an error: the report was written.
            std::process::exit(2);
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    }
}
