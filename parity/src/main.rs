//! `modelcrate-parity`: proves that a generated model predicts what PyTorch predicts,
//! through the inference core the server calls (the same loading, tokenization, batching,
//! post-processing and answer shapes). The gate itself, task by task, is this crate's
//! library (the server's hot reload runs the same one as its canary).
//! Writes `<artifacts>/<name>/parity/<variant>.json` and prints a table. Exits 0 when the
//! variant meets its gate, 2 when it does not (the report is written), 1 on an error.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use modelcrate_core::{Catalog, catalog};
use modelcrate_parity as parity;
use modelcrate_runtime::{LoadOptions, VariantChoice, json_file};
use modelcrate_schema::ParityReport;

/// The models this binary checks, from the umbrella crate.
const CATALOG: Catalog = Catalog::new(modelcrate_models::MODELS);

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

fn run(args: &Args) -> Result<bool> {
    let entry = CATALOG.entry(&args.model)?;
    let options = LoadOptions {
        ort_dylib: args.ort_dylib.clone(),
        variant: VariantChoice::Named(args.variant.clone()),
        ..LoadOptions::default()
    };
    let model = catalog::load(entry, &args.artifacts, &options)?;
    let file = model.info().variant.file.clone();
    let outcome = parity::check(&model, &args.model, &args.golden, &args.artifacts)?;
    let gate = outcome.gate;
    let checked = &outcome.checked;

    println!(
        "parity: {} variant {} ({file}, {gate:?} gate) vs PyTorch checkpoint {}",
        args.model,
        args.variant,
        checked.checkpoint.get(..12).unwrap_or(&checked.checkpoint)
    );
    let width = outcome.rows.iter().map(|row| row.check.len()).max().unwrap_or(0);
    for parity::Row {
        check,
        figure,
        bound,
        pass,
    } in &outcome.rows
    {
        println!(
            "  {} {check:<width$}  {figure}  (bound: {bound})",
            if *pass { "ok  " } else { "FAIL" }
        );
    }
    let passed = outcome.passed();
    let report = ParityReport {
        model: args.model.clone(),
        variant: args.variant.clone(),
        file,
        gate,
        checkpoint_sha256: checked.checkpoint.clone(),
        passed,
        failures: outcome.failures.clone(),
        metric: checked.metric.clone(),
        summary: checked.summary.clone(),
        details: checked.details.clone(),
        batching: outcome.batching.clone(),
    };
    json_file::write(
        &ParityReport::path(&args.artifacts.join(&args.model), &args.variant),
        &report,
    )?;
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
