//! `cargo xtask bench`: Modelcrate's server against the peers a user would pick instead,
//! on 127.0.0.1, in one run, as ratios.
//!
//! Each peer is started in turn with the same model (the serving variant's ONNX file, or
//! for the PyTorch peer its checkpoint) and the same thread budget (the machine's cores:
//! one session with that many intra-op threads for Modelcrate, its default, and for the
//! Python ORT peer; as many torch threads for the pipeline), warmed up, and loaded by
//! `modelcrate-load` at each concurrency with texts of the model's test split; its peak
//! RSS is read from /proc when the load ends. The ceiling is ONNX Runtime alone on the
//! same texts, tokenized beforehand and batched. Writes `artifacts/bench/<model>.{json,md}`.
//!
//! `--smoke` (what the test command runs): two peers, short levels, to a separate file:
//! it proves the harness works, it measures nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::paths::Paths;
use crate::pipeline::{Environment, release_binary};
use crate::smoke::{Server, wait_healthy};

/// The default text model: what the README's main job serves.
pub const DEFAULT_MODEL: &str = "news-topic";

#[derive(clap::Args, Clone)]
pub struct BenchArgs {
    /// The text classifier to serve (a name under models/).
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    pub concurrency: Vec<usize>,
    /// Seconds measured per level.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Two peers, one-second levels, written to `smoke-<model>.json`: checks the harness.
    #[arg(long)]
    pub smoke: bool,
}

/// The machine's cores: the thread budget every peer gets.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

struct Peer {
    name: &'static str,
    command: Command,
    /// What answers 200 once the peer can be measured: Modelcrate's readiness (after its
    /// warm-up), the Python peers' `/health`.
    ready_path: &'static str,
}

/// Modelcrate's readiness route.
const READY: &str = "/health/ready";

fn peers(paths: &Paths, environment: &Environment, model: &str, variant_file: &str, smoke: bool) -> Vec<Peer> {
    let server = |extra: &[&str]| {
        let mut command = Command::new(release_binary(paths, "modelcrate-server"));
        command
            .args([
                "--model",
                model,
                "--sessions",
                "1",
                "--intra-threads",
                &cores().to_string(),
            ])
            .arg("--artifacts")
            .arg(paths.artifacts())
            .args(extra)
            .env("ORT_DYLIB_PATH", &environment.ort_dylib);
        command
    };
    let python = |backend: &str| {
        let mut command = Command::new(environment.venv.python());
        command
            .args([
                "-m",
                "modelcrate.bench_server",
                "--backend",
                backend,
                "--onnx",
                variant_file,
            ])
            .args(["--threads", &cores().to_string(), "--model-dir"])
            .arg(paths.artifact(model))
            .env("PYTHONPATH", paths.root.join("python"));
        command
    };
    let mut peers = vec![
        Peer {
            name: "Modelcrate, batching on",
            command: server(&[]),
            ready_path: READY,
        },
        Peer {
            name: "FastAPI + onnxruntime (Python)",
            command: python("onnxruntime"),
            ready_path: "/health",
        },
    ];
    if !smoke {
        peers.insert(
            1,
            Peer {
                name: "Modelcrate, batching off",
                command: server(&["--max-batch-size", "1", "--max-queue-delay-ms", "0"]),
                ready_path: READY,
            },
        );
        peers.push(Peer {
            name: "FastAPI + transformers pipeline (PyTorch)",
            command: python("transformers"),
            ready_path: "/health",
        });
    }
    peers
}

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn load(paths: &Paths, arguments: &[String], environment: &Environment) -> Result<Value> {
    let output = Command::new(release_binary(paths, "modelcrate-load"))
        .args(arguments)
        .current_dir(&paths.root)
        .env("ORT_DYLIB_PATH", &environment.ort_dylib)
        .env("MODELCRATE_ARTIFACTS", paths.artifacts())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run modelcrate-load (cargo build --release)")?;
    if !output.status.success() {
        bail!("modelcrate-load {} failed ({})", arguments.join(" "), output.status);
    }
    serde_json::from_slice(&output.stdout).context("modelcrate-load printed no JSON report")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn measure_peer(
    paths: &Paths,
    environment: &Environment,
    mut peer: Peer,
    args: &BenchArgs,
    log_dir: &Path,
) -> Result<Value> {
    eprintln!("  {}", peer.name);
    let port = free_port()?;
    // One log per peer: `modelcrate--batching-on.log`, `fastapi---onnxruntime--python-.log`, …
    let file_name: String = peer
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let log_path = log_dir.join(format!("{file_name}.log"));
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let child = peer
        .command
        .args(["--port", &port.to_string()])
        .current_dir(&paths.root)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", peer.name))?;
    let server = Server::new(child);
    let started = Instant::now();
    wait_healthy(port, peer.ready_path, Duration::from_secs(120))
        .with_context(|| format!("{} did not come up (its log: {})", peer.name, log_path.display()))?;
    let startup_seconds = started.elapsed().as_secs_f64();
    let concurrency: Vec<String> = args.concurrency.iter().map(usize::to_string).collect();
    let report = load(
        paths,
        &[
            "http".into(),
            "--url".into(),
            format!("http://127.0.0.1:{port}/models/{}/predict", args.model),
            "--corpus".into(),
            paths
                .artifact(&args.model)
                .join("data/test.jsonl")
                .display()
                .to_string(),
            "--concurrency".into(),
            concurrency.join(","),
            "--seconds".into(),
            args.seconds.to_string(),
            "--warmup-seconds".into(),
            (args.seconds / 3.0).max(0.5).to_string(),
        ],
        environment,
    )?;
    let rss = peak_rss(server.id());
    drop(server);
    Ok(json!({
        "peer": peer.name,
        "startup_seconds": startup_seconds,
        "peak_rss_bytes": rss,
        "levels": report["levels"],
    }))
}

pub fn run(paths: &Paths, environment: &Environment, args: &BenchArgs) -> Result<()> {
    let onnx = paths.onnx(&args.model);
    let serving: Value =
        serde_json::from_str(&std::fs::read_to_string(onnx.join("serving.json")).with_context(|| {
            format!(
                "no {}: run the main job (`cargo xtask all`) first",
                onnx.join("serving.json").display()
            )
        })?)?;
    let variant_file = serving["file"]
        .as_str()
        .context("serving.json names no file")?
        .to_string();
    let out_dir = paths.artifacts().join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let log_dir = out_dir.join("logs");
    std::fs::create_dir_all(&log_dir)?;

    let mut results = Vec::new();
    for peer in peers(paths, environment, &args.model, &variant_file, args.smoke) {
        results.push(measure_peer(paths, environment, peer, args, &log_dir)?);
    }
    eprintln!("  ceiling: ONNX Runtime alone");
    let seconds = if args.smoke { 0.5 } else { args.seconds / 2.0 };
    // The ceiling is the better of the two layouts of the thread budget.
    let mut ceilings = Vec::new();
    for (sessions, threads) in [(1, cores()), (cores(), 1)] {
        ceilings.push(load(
            paths,
            &[
                "ceiling".into(),
                "--model".into(),
                args.model.clone(),
                "--sessions".into(),
                sessions.to_string(),
                "--intra-threads".into(),
                threads.to_string(),
                "--batch-sizes".into(),
                if args.smoke { "1,8".into() } else { "1,8,32".into() },
                "--seconds".into(),
                seconds.to_string(),
            ],
            environment,
        )?);
    }
    let ceiling = ceilings
        .iter()
        .max_by(|a, b| number(&a["best_sequences_per_second"]).total_cmp(&number(&b["best_sequences_per_second"])))
        .cloned()
        .unwrap_or_default();
    let report = json!({
        "model": args.model,
        "variant": serving["variant"],
        "file": variant_file,
        "seconds_per_level": args.seconds,
        "thread_budget": cores(),
        "peers": results,
        "ceiling": ceiling,
        "ceiling_layouts": ceilings,
        "machine": ceiling["machine"],
    });
    let stem = if args.smoke {
        format!("smoke-{}", args.model)
    } else {
        args.model.clone()
    };
    let markdown = table(&report);
    std::fs::write(
        out_dir.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    std::fs::write(out_dir.join(format!("{stem}.md")), &markdown)?;
    println!("{markdown}");
    if args.smoke {
        check_smoke(&report)?;
    }
    Ok(())
}

/// The smoke run proves each peer answered, without error: nothing about speed.
fn check_smoke(report: &Value) -> Result<()> {
    for peer in report["peers"].as_array().into_iter().flatten() {
        for level in peer["levels"].as_array().into_iter().flatten() {
            let answered = level["requests"].as_u64().unwrap_or(0);
            let errors = level["errors"].as_u64().unwrap_or(u64::MAX);
            if answered == 0 || errors != 0 {
                bail!(
                    "bench smoke: {} at concurrency {} answered {answered} requests with {errors} errors ({})",
                    peer["peer"],
                    level["concurrency"],
                    level["first_error"]
                );
            }
        }
    }
    if report["ceiling"]["best_sequences_per_second"].as_f64().unwrap_or(0.0) <= 0.0 {
        bail!("bench smoke: the ceiling ran nothing");
    }
    Ok(())
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// The table of every peer and level, with ratios to the Python ONNX Runtime peer at the
/// same concurrency and to the ceiling.
pub fn table(report: &Value) -> String {
    let peers = report["peers"].as_array().cloned().unwrap_or_default();
    let baseline = peers
        .iter()
        .find(|p| p["peer"].as_str().is_some_and(|n| n.contains("onnxruntime")));
    let baseline_rps = |concurrency: &Value| {
        baseline
            .and_then(|b| b["levels"].as_array())
            .and_then(|levels| levels.iter().find(|l| &l["concurrency"] == concurrency))
            .map(|l| number(&l["requests_per_second"]))
    };
    let ceiling = number(&report["ceiling"]["best_sequences_per_second"]);
    let machine = &report["machine"];
    let mut out = format!(
        "# `cargo xtask bench`: {} ({}, `{}`)\n\nMachine: {}, {} cores (AVX2 {}, AVX-512 VNNI {}); thread budget {} per peer; {} s per level, closed loop, one text per request from the test split.\n\n",
        report["model"].as_str().unwrap_or("?"),
        report["variant"].as_str().unwrap_or("?"),
        report["file"].as_str().unwrap_or("?"),
        machine["cpu"].as_str().unwrap_or("?"),
        machine["cores"],
        machine["avx2"],
        machine["avx512_vnni"],
        report["thread_budget"],
        report["seconds_per_level"],
    );
    out.push_str("| peer | concurrency | requests/s | × Python ORT | × ceiling | p50 ms | p90 ms | p99 ms | errors | peak RSS MB |\n");
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for peer in &peers {
        let rss = peer["peak_rss_bytes"]
            .as_f64()
            .map_or("?".into(), |b| format!("{:.0}", b / 1e6));
        for level in peer["levels"].as_array().into_iter().flatten() {
            let rps = number(&level["requests_per_second"]);
            let versus = baseline_rps(&level["concurrency"]).map_or("—".into(), |b| format!("{:.2}×", rps / b));
            out.push_str(&format!(
                "| {} | {} | {rps:.1} | {versus} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {rss} |\n",
                peer["peer"].as_str().unwrap_or("?"),
                level["concurrency"],
                rps / ceiling,
                number(&level["p50_ms"]),
                number(&level["p90_ms"]),
                number(&level["p99_ms"]),
                level["errors"],
            ));
        }
    }
    let batches: Vec<String> = report["ceiling"]["batches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| format!("batch {}: {:.1}", b["batch_size"], number(&b["sequences_per_second"])))
        .collect();
    out.push_str(&format!(
        "\nCeiling (ONNX Runtime alone, pre-tokenized, length-sorted batches; the better layout, {} session(s) × {} thread(s)): {} sequences/s; one text alone {:.2} ms + tokenization {:.2} ms.\n",
        report["ceiling"]["layout"]["sessions"],
        report["ceiling"]["layout"]["intra_threads"],
        batches.join(", "),
        number(&report["ceiling"]["single_inference_p50_ms"]),
        number(&report["ceiling"]["single_tokenization_p50_ms"]),
    ));
    out
}
