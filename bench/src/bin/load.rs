//! `modelcrate-load`: the load generator and ceiling of `cargo xtask bench`.
//!
//! `http`: load on 127.0.0.1 with the texts of a fixed corpus (a model's test split: real
//! texts of mixed lengths), for a fixed time per level after a warm-up. Closed loop: each
//! of `concurrency` clients sends the next text, waits for the answer, and sends again;
//! per level it reports requests/s and p50/p90/p99 latency. Open loop: requests arrive at
//! a fixed mean `rate` whatever the server does (Poisson arrivals from a seeded generator),
//! and each latency runs from the request's *scheduled* time, so a server that falls
//! behind shows it in its tail instead of slowing its clients down (no coordinated
//! omission). A 429 counts as shed load, apart from errors: it is a server saying it is
//! full, at once, as it should when arrivals outrun it. Any server that takes the Inference API request `{"inputs": text}` can be
//! measured, whatever it is written in.
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
use modelcrate_bench::stats::{machine, quantile_ms};
use modelcrate_parity::test_split;
use modelcrate_runtime::{Lane, Layout, LoadOptions, VariantChoice};
use modelcrate_schema::{
    CeilingBatch, CeilingReport, ClosedLevel, LevelFigures, LoadReport, OpenLevel, SessionLayout, TokenMoments,
};
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
        /// Open-loop arrival rates (requests/s), each measured in turn after the closed-loop
        /// levels.
        #[arg(long, value_delimiter = ',')]
        rates: Vec<f64>,
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
        /// The texts: a JSON-lines file whose rows have a `text` (the model's test split
        /// when absent).
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Seconds per batch size.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
}

/// What the clients of one level saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    /// Requests the server refused with 429: load shed by design, not a failure.
    shed: usize,
    errors: usize,
    first_error: Option<String>,
}

/// Why a request got no answer.
enum Failure {
    /// 429 Too Many Requests: the server's queue was full and it said so at once.
    Shed,
    /// Anything else: another status, a transport error, no answer in time.
    Error(String),
}

/// One request: `Ok` for a success status with its whole body read, otherwise what went wrong.
async fn send(client: &reqwest::Client, url: &str, body: String) -> Result<(), Failure> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|error| Failure::Error(error.to_string()))?;
    let status = response.status();
    match response.bytes().await {
        Ok(_) if status.is_success() => Ok(()),
        Ok(_) if status == reqwest::StatusCode::TOO_MANY_REQUESTS => Err(Failure::Shed),
        Ok(body) => Err(Failure::Error(format!("{status}: {}", String::from_utf8_lossy(&body)))),
        Err(error) => Err(Failure::Error(error.to_string())),
    }
}

impl Seen {
    fn record(&mut self, outcome: Result<(), Failure>, latency: Duration) {
        match outcome {
            Ok(()) => self.latencies.push(latency),
            Err(Failure::Shed) => self.shed += 1,
            Err(Failure::Error(error)) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    /// Adds what another client saw.
    fn merge(&mut self, other: Seen) {
        self.latencies.extend(other.latencies);
        self.shed += other.shed;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
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
        let outcome = send(&client, &url, body).await;
        seen.record(outcome, started.elapsed());
    }
    seen
}

/// Requests in flight beyond which an open-loop level stops sending and counts the rest
/// as dropped: a server that far behind has failed the level anyway.
const OPEN_LOOP_MAX_IN_FLIGHT: usize = 4096;
/// How long an open-loop level waits for its last answers after its last arrival.
const OPEN_LOOP_GRACE: Duration = Duration::from_secs(30);

/// xorshift64*: a seeded uniform in (0, 1], so every peer sees the same arrivals.
fn uniform(state: &mut u64) -> f64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
    (bits as f64 + 1.0) / (1u64 << 53) as f64
}

/// Open loop: requests arrive at mean `rate` per second (exponential gaps) for `seconds`;
/// each latency counts from its scheduled arrival. Returns what was seen, the seconds
/// until the last answer, and the arrivals dropped at the in-flight cap.
async fn open_level(
    client: &reqwest::Client,
    url: &Arc<str>,
    bodies: &Arc<Vec<String>>,
    rate: f64,
    seconds: f64,
) -> Result<(Seen, f64, usize)> {
    if rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        bail!("an open-loop rate must be above 0 requests/s, got {rate}");
    }
    let mut random = 0x9E37_79B9_7F4A_7C15_u64;
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut scheduled = started;
    let (mut tasks, mut dropped) = (Vec::new(), 0);
    for index in 0.. {
        scheduled += Duration::from_secs_f64(-uniform(&mut random).ln() / rate);
        if scheduled >= until {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        if in_flight.load(Ordering::Relaxed) >= OPEN_LOOP_MAX_IN_FLIGHT {
            dropped += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (client, url, in_flight) = (client.clone(), Arc::clone(url), Arc::clone(&in_flight));
        let body = bodies[index % bodies.len()].clone();
        tasks.push(tokio::spawn(async move {
            let outcome = send(&client, &url, body).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            (outcome, scheduled.elapsed())
        }));
    }
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::from(until + OPEN_LOOP_GRACE);
    for task in tasks {
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok((outcome, latency))) => seen.record(outcome, latency),
            Ok(Err(error)) => seen.record(
                Err(Failure::Error(format!("a request task failed: {error}"))),
                Duration::ZERO,
            ),
            Err(_) => seen.record(
                Err(Failure::Error(format!(
                    "no answer within {OPEN_LOOP_GRACE:?} after the last arrival"
                ))),
                Duration::ZERO,
            ),
        }
    }
    Ok((seen, started.elapsed().as_secs_f64(), dropped))
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
        merged.merge(task.await.context("a client task failed")?);
    }
    Ok((merged, started.elapsed().as_secs_f64()))
}

/// A level's report: throughput and latency quantiles of what it saw.
fn report(seen: &mut Seen, elapsed: f64, label: &str) -> LevelFigures {
    seen.latencies.sort();
    let answered = seen.latencies.len();
    eprintln!(
        "    {label}: {:>7.1} requests/s, p50 {:>7.2} ms, p99 {:>7.2} ms{}",
        answered as f64 / elapsed,
        quantile_ms(&seen.latencies, 0.5),
        quantile_ms(&seen.latencies, 0.99),
        [(seen.shed, "shed (429)"), (seen.errors, "errors")]
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, what)| format!(", {count} {what}"))
            .collect::<String>()
    );
    LevelFigures {
        seconds: elapsed,
        requests: answered,
        shed: seen.shed,
        errors: seen.errors,
        first_error: seen.first_error.clone(),
        requests_per_second: answered as f64 / elapsed,
        p50_ms: quantile_ms(&seen.latencies, 0.50),
        p90_ms: quantile_ms(&seen.latencies, 0.90),
        p99_ms: quantile_ms(&seen.latencies, 0.99),
    }
}

fn http(
    url: &str,
    corpus: &Path,
    concurrency: &[usize],
    seconds: f64,
    warmup_seconds: f64,
    rates: &[f64],
) -> Result<LoadReport> {
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
            let label = format!("concurrency {clients:>3}");
            levels.push(ClosedLevel {
                concurrency: clients,
                seen: report(&mut seen, elapsed, &label),
            });
        }
        let mut open = Vec::new();
        for &rate in rates {
            let (mut seen, elapsed, dropped) = open_level(&client, &url, &bodies, rate, seconds).await?;
            let label = format!("open loop {rate:>6.1}/s");
            open.push(OpenLevel {
                offered_per_second: rate,
                dropped,
                seen: report(&mut seen, elapsed, &label),
            });
        }
        Ok(LoadReport {
            url: url.to_string(),
            corpus: corpus.display().to_string(),
            texts: bodies.len(),
            levels,
            open_loop: open,
        })
    })
}

fn ceiling(
    model: &str,
    artifacts: &Path,
    ort_dylib: Option<PathBuf>,
    (sessions, intra_threads): (usize, usize),
    batch_sizes: &[usize],
    corpus: Option<&Path>,
    seconds: f64,
) -> Result<CeilingReport> {
    let entry = modelcrate_bench::CATALOG.entry(model)?;
    let options = LoadOptions {
        ort_dylib,
        variant: VariantChoice::Serving,
        layout: Layout::Fixed {
            sessions: sessions.max(1),
            intra_threads,
        },
        ..LoadOptions::default()
    };
    let loaded = modelcrate_core::catalog::load(entry, artifacts, &options)?;
    // The ceiling is measured for text models (the HTTP peers are text servers too).
    let encoder = loaded.text_encoder()?;
    let texts = match corpus {
        Some(corpus) => test_split::texts_of(corpus)?,
        None => test_split::texts(artifacts, model)?,
    };
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut encodings = loaded.encode(&texts)?;
    // The corpus's token counts (no padding): what the bench counts each sequence's work by.
    let count = encodings.len().max(1) as f64;
    let mean_tokens = encodings.iter().map(|e| e.len() as f64).sum::<f64>() / count;
    let mean_square_tokens = encodings.iter().map(|e| (e.len() as f64).powi(2)).sum::<f64>() / count;

    // One request's inference alone, in test-split order: the floor of batch-1 latency.
    let single: Vec<_> = encodings.iter().map(|e| encoder.pad(&[e])).collect();
    encodings.sort_by_key(|encoding| encoding.len());
    for batch in single.iter().take(10) {
        loaded.run_encoded(batch, Lane::Any)?;
    }
    let mut alone = Vec::with_capacity(single.len());
    for batch in single.iter().take(200) {
        let started = Instant::now();
        loaded.run_encoded(batch, Lane::Any)?;
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
            loaded.run_encoded(batch, Lane::Any)?;
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
                        loaded.run_encoded(batch, Lane::Any)?;
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
        results.push(CeilingBatch {
            batch_size: size,
            sequences,
            sequences_per_second: per_second,
        });
    }
    let best = results.iter().map(|r| r.sequences_per_second).fold(0.0, f64::max);
    Ok(CeilingReport {
        model: model.to_string(),
        variant: loaded.info().variant.name.clone(),
        layout: SessionLayout {
            sessions,
            intra_threads,
        },
        inputs: format!(
            "test split, {} texts, tokenized beforehand and sorted by length",
            texts.len()
        ),
        tokens: TokenMoments {
            mean: mean_tokens,
            mean_square: mean_square_tokens,
        },
        batches: results,
        best_sequences_per_second: best,
        single_inference_p50_ms: quantile_ms(&alone, 0.5),
        single_tokenization_p50_ms: quantile_ms(&tokenize, 0.5),
        machine: machine(),
    })
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
            rates,
        } => http(url, corpus, concurrency, *seconds, *warmup_seconds, rates)
            .and_then(|report| Ok(serde_json::to_string(&report)?)),
        Mode::Ceiling {
            model,
            artifacts,
            ort_dylib,
            sessions,
            intra_threads,
            batch_sizes,
            corpus,
            seconds,
        } => ceiling(
            model,
            artifacts,
            ort_dylib.clone(),
            (*sessions, *intra_threads),
            batch_sizes,
            corpus.as_deref(),
            *seconds,
        )
        .and_then(|report| Ok(serde_json::to_string(&report)?)),
    };
    match result {
        Ok(report) => println!("{report}"),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    }
}
