//! `modelcrate-measure`: times one variant of a generated model on this machine, through
//! the generated crate and the runtime the server uses, on the model's held-out test split.
//!
//! One process per variant, so that its peak RSS is its own. After a warm-up it measures
//! latency of single-input requests (p50/p90/p99: tokenization or image decoding, inference
//! and scoring, as a batch-1 request costs) and throughput in batches of 32 test-split
//! inputs (texts or image files), with
//! one session of `--intra-threads` threads. Writes `<artifacts>/<name>/bench/<variant>.json`;
//! `cargo xtask select` compares variants by these figures, measured in the same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use modelcrate_runtime::{LoadOptions, VariantChoice};
use modelcrate_server::stats::{machine, quantile_ms};
use modelcrate_server::test_split;
use serde_json::json;

/// The fewest batches a throughput figure is measured over.
const MIN_THROUGHPUT_BATCHES: usize = 4;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    model: String,
    /// A variant named in `onnx/variants.json`.
    #[arg(long)]
    variant: String,
    #[arg(long, env = "MODELCRATE_ARTIFACTS", default_value = "artifacts")]
    artifacts: PathBuf,
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_dylib: Option<PathBuf>,
    /// Intra-op threads of the one session (the server's default layout is 2 sessions × 1).
    #[arg(long, default_value_t = 1)]
    intra_threads: usize,
    /// Single-input requests timed for the latency figures.
    #[arg(long, default_value_t = 200)]
    latency_requests: usize,
    /// Rows per run for the throughput figure.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Throughput runs over the test split last at least this long (and 4 batches).
    #[arg(long, default_value_t = 5.0)]
    min_seconds: f64,
}

/// `VmRSS` and `VmHWM` (peak) of this process, in bytes; `None` where /proc is absent.
fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn run(args: &Args) -> Result<serde_json::Value> {
    if args.batch_size == 0 || args.latency_requests == 0 {
        bail!("--batch-size and --latency-requests must be at least 1");
    }
    let entry = modelcrate_server::models::entry(&args.model)?;
    let rows = test_split::inputs(&args.artifacts, &args.model, entry.task)?;
    let texts = rows.as_inputs();
    if texts.is_empty() {
        bail!("the test split of {} is empty", args.model);
    }
    let options = LoadOptions {
        ort_dylib: args.ort_dylib.clone(),
        variant: VariantChoice::Named(args.variant.clone()),
        sessions: 1,
        intra_threads: args.intra_threads,
        max_batch_size: args.batch_size,
    };
    let loading = Instant::now();
    let model = modelcrate_server::models::load(entry, &args.artifacts, &options)?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let info = model.info();
    let file = args.artifacts.join(&args.model).join("onnx").join(&info.variant.file);
    let size_bytes = std::fs::metadata(&file)
        .with_context(|| format!("cannot stat {}", file.display()))?
        .len();

    // Warm-up: the first runs allocate arenas and pick kernels for each shape.
    model.process(&texts[..args.batch_size.min(texts.len())])?;
    for text in texts.iter().take(10) {
        model.process(&[*text])?;
    }
    let rss_after_warmup = memory().map(|(rss, _)| rss);

    let mut latencies = Vec::with_capacity(args.latency_requests);
    for text in texts.iter().cycle().take(args.latency_requests) {
        let started = Instant::now();
        model.process(&[*text])?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let mean_ms = latencies.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / latencies.len() as f64;

    let mut sequences = 0usize;
    let started = Instant::now();
    // Whole batches in test-split order, round and round, for at least `min_seconds`.
    let mut batches = texts.chunks(args.batch_size).cycle();
    while sequences < MIN_THROUGHPUT_BATCHES * args.batch_size || started.elapsed().as_secs_f64() < args.min_seconds {
        let batch = batches.next().unwrap_or_default();
        model.process(batch)?;
        sequences += batch.len().max(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss = memory().map(|(_, peak)| peak);

    Ok(json!({
        "model": args.model,
        "variant": info.variant.name,
        "file": info.variant.file,
        "size_bytes": size_bytes,
        "layout": {"sessions": 1, "intra_threads": args.intra_threads},
        // Session creation, including ONNX Runtime's own graph optimization at load.
        "load_seconds": load_seconds,
        "inputs": match info.image {
            Some(image) => format!("test split, {} image files, prepared to {}×{}", texts.len(), image.crop, image.crop),
            None => format!("test split, {} texts, truncated to {} tokens", texts.len(), info.max_length),
        },
        "latency": {
            "requests": latencies.len(),
            "p50_ms": quantile_ms(&latencies, 0.50),
            "p90_ms": quantile_ms(&latencies, 0.90),
            "p99_ms": quantile_ms(&latencies, 0.99),
            "mean_ms": mean_ms,
        },
        "throughput": {
            "batch_size": args.batch_size,
            "sequences": sequences,
            "seconds": seconds,
            "sequences_per_second": sequences as f64 / seconds,
        },
        "rss_bytes": {"after_warmup": rss_after_warmup, "peak": peak_rss},
        "machine": machine(),
    }))
}

fn main() {
    let args = Args::parse();
    let result = run(&args).and_then(|report| {
        let dir = args.artifacts.join(&args.model).join("bench");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{}.json", args.variant));
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(report)
    });
    match result {
        Ok(report) => println!(
            "measure: {} {}: batch 1 p50 {:.2} ms p99 {:.2} ms; batch {} {:.1} sequences/s; peak RSS {:.0} MB",
            args.model,
            args.variant,
            report["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
            report["latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN),
            args.batch_size,
            report["throughput"]["sequences_per_second"]
                .as_f64()
                .unwrap_or(f64::NAN),
            report["rss_bytes"]["peak"].as_f64().unwrap_or(f64::NAN) / 1e6,
        ),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    }
}
