//! `modelcrate-load`: the load generator and ceiling of `cargo xtask bench`.
//!
//! `http`: closed-loop load on 127.0.0.1 — each of `concurrency` clients sends the next
//! text of a fixed corpus (a model's test split: real texts of mixed lengths), waits for
//! the answer, and sends again, for a fixed time after a warm-up; per concurrency level it
//! reports requests/s and p50/p90/p99 latency. Any server that takes the Inference API
//! request `{"inputs": text}` can be measured, whatever it is written in.
//!
//! `ceiling`: what ONNX Runtime alone does with the same texts, tokenized beforehand,
//! sorted by length and batched (no HTTP, no tokenization, no post-processing): one
//! thread per session of the model's serving variant, for each batch size.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use modelcrate_runtime::{LoadOptions, VariantChoice};
use modelcrate_server::stats::{machine, quantile_ms};
use modelcrate_server::test_split;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Closed-loop HTTP load against a running server.
    Http {
        /// The predict route, e.g. http://127.0.0.1:8080/models/news-topic/predict
        #[arg(long)]
        url: String,
        /// A JSON-lines file whose rows have a `text` (a model's data/test.jsonl).
        #[arg(long)]
        corpus: PathBuf,
        /// Concurrency levels, each measured in turn.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
        concurrency: Vec<usize>,
        /// Seconds measured per level.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Seconds of load before the first level, not measured.
        #[arg(long, default_value_t = 3.0)]
        warmup_seconds: f64,
    },
    /// Raw ONNX Runtime throughput of a model's serving variant on pre-tokenized batches.
    Ceiling {
        #[arg(long)]
        model: String,
        #[arg(long, env = "MODELCRATE_ARTIFACTS", default_value = "artifacts")]
        artifacts: PathBuf,
        #[arg(long, env = "ORT_DYLIB_PATH")]
        ort_dylib: Option<PathBuf>,
        /// Sessions, each run from its own thread (the server's `--sessions`).
        #[arg(long, default_value_t = 2)]
        sessions: usize,
        #[arg(long, default_value_t = 1)]
        intra_threads: usize,
        #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
        batch_sizes: Vec<usize>,
        /// Seconds per batch size.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
}

/// What the clients of one level saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

async fn client_loop(
    client: reqwest::Client,
    url: Arc<str>,
    bodies: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    until: Instant,
) -> Seen {
    let mut seen = Seen::default();
    while Instant::now() < until {
        let body = bodies[next.fetch_add(1, Ordering::Relaxed) % bodies.len()].clone();
        let started = Instant::now();
        let sent = client
            .post(&*url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let outcome = match sent {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(_) if status.is_success() => Ok(()),
                    Ok(body) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
                    Err(error) => Err(error.to_string()),
                }
            }
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(()) => seen.latencies.push(started.elapsed()),
            Err(error) => {
                seen.errors += 1;
                seen.first_error.get_or_insert(error);
            }
        }
    }
    seen
}

/// `concurrency` clients for `seconds`; everything they saw, merged.
async fn level(
    client: &reqwest::Client,
    url: &Arc<str>,
    bodies: &Arc<Vec<String>>,
    concurrency: usize,
    seconds: f64,
) -> Result<(Seen, f64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(client_loop(
                client.clone(),
                Arc::clone(url),
                Arc::clone(bodies),
                Arc::clone(&next),
                until,
            ))
        })
        .collect();
    let mut merged = Seen::default();
    for task in tasks {
        let seen = task.await.context("a client task failed")?;
        merged.latencies.extend(seen.latencies);
        merged.errors += seen.errors;
        if merged.first_error.is_none() {
            merged.first_error = seen.first_error;
        }
    }
    Ok((merged, started.elapsed().as_secs_f64()))
}

fn http(url: &str, corpus: &Path, concurrency: &[usize], seconds: f64, warmup_seconds: f64) -> Result<Value> {
    let rows: Vec<Value> = std::fs::read_to_string(corpus)
        .with_context(|| format!("cannot read {}", corpus.display()))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not JSON lines", corpus.display()))?;
    let bodies: Vec<String> = rows
        .iter()
        .filter_map(|row| row.get("text"))
        .map(|text| json!({"inputs": text}).to_string())
        .collect();
    if bodies.is_empty() {
        bail!("{} has no rows with a `text`", corpus.display());
    }
    let bodies = Arc::new(bodies);
    let url: Arc<str> = Arc::from(url);
    // One thread: the generator takes as little as it can of a machine the server shares.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        let busiest = concurrency.iter().copied().max().unwrap_or(1);
        if warmup_seconds > 0.0 {
            level(&client, &url, &bodies, busiest, warmup_seconds).await?;
        }
        let mut levels = Vec::new();
        for &clients in concurrency {
            let (mut seen, elapsed) = level(&client, &url, &bodies, clients.max(1), seconds).await?;
            seen.latencies.sort();
            let answered = seen.latencies.len();
            eprintln!(
                "    concurrency {clients:>3}: {:>7.1} requests/s, p50 {:>7.2} ms, p99 {:>7.2} ms{}",
                answered as f64 / elapsed,
                quantile_ms(&seen.latencies, 0.5),
                quantile_ms(&seen.latencies, 0.99),
                if seen.errors > 0 {
                    format!(", {} errors", seen.errors)
                } else {
                    String::new()
                }
            );
            levels.push(json!({
                "concurrency": clients,
                "seconds": elapsed,
                "requests": answered,
                "errors": seen.errors,
                "first_error": seen.first_error,
                "requests_per_second": answered as f64 / elapsed,
                "p50_ms": quantile_ms(&seen.latencies, 0.50),
                "p90_ms": quantile_ms(&seen.latencies, 0.90),
                "p99_ms": quantile_ms(&seen.latencies, 0.99),
            }));
        }
        Ok(json!({"url": &*url, "corpus": corpus, "texts": bodies.len(), "levels": levels}))
    })
}

#[allow(clippy::too_many_arguments)]
fn ceiling(
    model: &str,
    artifacts: &Path,
    ort_dylib: Option<PathBuf>,
    sessions: usize,
    intra_threads: usize,
    batch_sizes: &[usize],
    seconds: f64,
) -> Result<Value> {
    let entry = modelcrate_server::models::entry(model)?;
    let options = LoadOptions {
        ort_dylib,
        variant: VariantChoice::Serving,
        sessions: sessions.max(1),
        intra_threads,
        ..LoadOptions::default()
    };
    let loaded = Arc::new(modelcrate_server::models::load(entry, artifacts, &options)?);
    // The ceiling is measured for text models (the HTTP peers are text servers too).
    let encoder = loaded.text_encoder()?;
    let texts = test_split::texts(artifacts, model)?;
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut encodings = loaded.encode(&texts)?;

    // One request's inference alone, in test-split order: the floor of batch-1 latency.
    let single: Vec<_> = encodings.iter().map(|e| encoder.pad(&[e])).collect();
    encodings.sort_by_key(|encoding| encoding.len());
    for batch in single.iter().take(10) {
        loaded.run_encoded(batch)?;
    }
    let mut alone = Vec::with_capacity(single.len());
    for batch in single.iter().take(200) {
        let started = Instant::now();
        loaded.run_encoded(batch)?;
        alone.push(started.elapsed());
    }
    alone.sort();
    let mut tokenize = Vec::with_capacity(200);
    for text in texts.iter().take(200) {
        let started = Instant::now();
        loaded.encode(&[text])?;
        tokenize.push(started.elapsed());
    }
    tokenize.sort();

    let mut results = Vec::new();
    for &size in batch_sizes {
        let batches: Arc<Vec<_>> = Arc::new(encodings.chunks(size.max(1)).map(|chunk| encoder.pad(chunk)).collect());
        for batch in batches.iter().take(2) {
            loaded.run_encoded(batch)?;
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(seconds);
        let workers: Vec<_> = (0..sessions.max(1))
            .map(|_| {
                let (loaded, batches, next) = (Arc::clone(&loaded), Arc::clone(&batches), Arc::clone(&next));
                std::thread::spawn(move || -> Result<usize> {
                    let mut sequences = 0;
                    while Instant::now() < until {
                        let batch = &batches[next.fetch_add(1, Ordering::Relaxed) % batches.len()];
                        loaded.run_encoded(batch)?;
                        sequences += batch.lengths.len();
                    }
                    Ok(sequences)
                })
            })
            .collect();
        let mut sequences = 0;
        for worker in workers {
            sequences += worker
                .join()
                .map_err(|_| anyhow::anyhow!("a ceiling thread panicked"))??;
        }
        let per_second = sequences as f64 / started.elapsed().as_secs_f64();
        eprintln!("    ceiling batch {size:>3}: {per_second:>7.1} sequences/s");
        results.push(json!({"batch_size": size, "sequences": sequences, "sequences_per_second": per_second}));
    }
    let best = results
        .iter()
        .filter_map(|r| r["sequences_per_second"].as_f64())
        .fold(0.0, f64::max);
    Ok(json!({
        "model": model,
        "variant": loaded.info().variant.name,
        "layout": {"sessions": sessions, "intra_threads": intra_threads},
        "inputs": format!("test split, {} texts, tokenized beforehand and sorted by length", texts.len()),
        "batches": results,
        "best_sequences_per_second": best,
        "single_inference_p50_ms": quantile_ms(&alone, 0.5),
        "single_tokenization_p50_ms": quantile_ms(&tokenize, 0.5),
        "machine": machine(),
    }))
}

fn main() {
    let args = Args::parse();
    let result = match &args.mode {
        Mode::Http {
            url,
            corpus,
            concurrency,
            seconds,
            warmup_seconds,
        } => http(url, corpus, concurrency, *seconds, *warmup_seconds),
        Mode::Ceiling {
            model,
            artifacts,
            ort_dylib,
            sessions,
            intra_threads,
            batch_sizes,
            seconds,
        } => ceiling(
            model,
            artifacts,
            ort_dylib.clone(),
            *sessions,
            *intra_threads,
            batch_sizes,
            *seconds,
        ),
    };
    match result.and_then(|report| Ok(serde_json::to_string(&report)?)) {
        Ok(report) => println!("{report}"),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    }
}
