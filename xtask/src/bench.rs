//! `cargo xtask bench`: Modelcrate's server against the peers a user would pick instead,
//! on 127.0.0.1, in one run, as ratios.
//!
//! By default it measures three models: the default text classifier, the embedding model
//! and the token classifier. For each, the ceiling comes first: ONNX Runtime alone on the
//! model's test-split texts, tokenized beforehand and batched. Then each peer is started in
//! turn with the same model (the serving variant's ONNX file, or for the PyTorch peer its
//! checkpoint) and the same thread budget (the machine's cores: one session with that many
//! intra-op threads for Modelcrate, its default, and for the Python ORT peer; as many torch
//! threads for PyTorch), warmed up, and loaded by `modelcrate-load` with the same texts:
//! closed loop at each concurrency, then for the default model open loop at fixed arrival
//! rates set as fractions of the ceiling (`--open-loop`), the same arrivals for every peer.
//! Its peak RSS is read from /proc when the load ends. The default model also gets
//! Modelcrate with batching off, and with the ceiling's other layout (one single-thread
//! session per core: the same thread budget); the other two run the levels up to 32 only,
//! so that the whole run stays within 15 minutes. Before any model, this CPU's
//! matrix-product peak is measured once (`bench_limit`): every peer's rate is also read
//! against it, by the work one sequence of the workload costs in what that peer serves.
//! Writes `artifacts/bench/<model>-<workload>.{json,md}`.
//!
//! `--smoke` (what the test command runs): the default model, two peers, short levels and
//! one open-loop level, to separate files: it proves the harness works, it measures nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use modelcrate_schema::{
    CeilingReport, FP32, LoadReport, ParityMetric, ParityReport, Policy, SERVING_FILE, Serving, Task,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::bench_chart;
use crate::bench_limit;
use crate::bench_table::{number, table};
use crate::bench_workload::{self, Workload};
use crate::paths::Paths;
use crate::pipeline::{Environment, release_binary};
use crate::process;
use crate::progress::Progress;
use crate::select;
use crate::smoke::{Server, free_port, wait_healthy};
use crate::spec::{self, ModelSpec};
use crate::variant_check::{Made, made_variants};

/// The default text model: what the README's main job serves.
pub const DEFAULT_MODEL: &str = "news-topic";
/// What `cargo xtask bench` measures when no `--model` is given: one model per text task.
pub const MODELS: [&str; 3] = [DEFAULT_MODEL, "news-embed", "release-ner"];
/// The other models' levels stop here (the default model's run to the end of `--concurrency`).
const OTHER_MODELS_MAX_CONCURRENCY: usize = 32;

#[derive(clap::Args, Clone)]
pub struct BenchArgs {
    /// A text model to measure (a name under models/; repeatable): the default text
    /// classifier, the embedding model and the token classifier when absent.
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// Closed-loop concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    pub concurrency: Vec<usize>,
    /// Seconds measured per level.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Open-loop arrival rates for the default model, as fractions of its ceiling's best
    /// sequences/s (0.5: half of what ONNX Runtime alone can do).
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.8")]
    pub open_loop: Vec<f64>,
    /// The default model unless `--model` is given, two peers, one-second levels at
    /// concurrency 1 and 4, one open-loop level at 30 % of the ceiling, written to
    /// `smoke-<model>.{json,md}`: checks the harness, measures nothing. Overrides
    /// `--concurrency`, `--seconds` and `--open-loop`.
    #[arg(long)]
    pub smoke: bool,
    /// Draw every report's table and charts again from its JSON in artifacts/bench/,
    /// measuring nothing.
    #[arg(long)]
    pub redraw: bool,
}

impl BenchArgs {
    /// What the test command runs: `cargo xtask bench --smoke`.
    pub fn smoke() -> Self {
        Self {
            models: Vec::new(),
            concurrency: vec![1, 4],
            seconds: 1.0,
            open_loop: vec![0.3],
            smoke: true,
            redraw: false,
        }
    }

    /// The models to measure, in order.
    pub fn models(&self) -> Vec<String> {
        if !self.models.is_empty() {
            self.models.clone()
        } else if self.smoke {
            vec![DEFAULT_MODEL.to_string()]
        } else {
            MODELS.iter().map(|model| (*model).to_string()).collect()
        }
    }
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
    /// What it serves, for its test metric: a variant of `variants.json`, or the PyTorch
    /// checkpoint.
    serves: Serves,
}

#[derive(Clone)]
enum Serves {
    Variant(String),
    /// The serving variant (`serving.json`).
    Selected,
    Checkpoint,
}

/// The teacher's variant that the Python peer of the equal-quality comparison serves when
/// a distilled student serves: the one the spec's policy picks among the teacher's
/// variants that passed their gate — what this pipeline serves without a student, and
/// (for news-topic, the INT8 `ORTQuantizer` makes) what a user gets from optimum alone.
fn teacher_variant(paths: &Paths, spec: &ModelSpec) -> Result<Made> {
    let teachers: Vec<Made> = made_variants(paths, &spec.name)?
        .into_iter()
        .filter(|made| !made.is_student())
        .collect();
    let candidates = select::candidates(paths, spec, &teachers)?;
    // A named student variant has no teacher to compare with: the fastest one stands in.
    let policy = match spec.serve.policy {
        Policy::Named => Policy::Fastest,
        policy => policy,
    };
    let (index, _) = select::choose(policy, None, &candidates)
        .with_context(|| format!("{}: no teacher variant for the equal-quality peer", spec.name))?;
    teachers
        .into_iter()
        .find(|made| made.name == candidates[index].name)
        .context("select chose a variant it was not given")
}

/// Modelcrate's readiness route.
const READY: &str = "/health/ready";

/// The peers for `model` (of `task`): Modelcrate and the Python ORT peer on the same file
/// always; when a distilled student serves, the Python ORT peer on `teacher`'s variant too
/// (equal quality); for the default model, Modelcrate's fixed layouts; PyTorch unless
/// `smoke`.
fn peers(
    paths: &Paths,
    environment: &Environment,
    model: &str,
    task: Task,
    variant_file: &str,
    teacher: Option<&Made>,
    smoke: bool,
) -> Vec<Peer> {
    let server = |extra: &[&str]| {
        let mut command = Command::new(release_binary(paths, "modelcrate-server"));
        command
            .args(["--model", model])
            .arg("--artifacts")
            .arg(paths.artifacts())
            .args(extra)
            .env("ORT_DYLIB_PATH", &environment.ort_dylib);
        command
    };
    let python = |backend: &str, variant_file: &str| {
        let mut command = Command::new(environment.venv.python());
        command
            .args([
                "-m",
                "modelcrate.bench_server",
                "--backend",
                backend,
                "--task",
                task.as_str(),
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
            name: "Modelcrate, defaults (the measured policy)",
            command: server(&[]),
            ready_path: READY,
            serves: Serves::Selected,
        },
        Peer {
            // The table's baseline: the first peer whose name says `onnxruntime`.
            name: if task == Task::TokenClassification {
                "FastAPI + onnxruntime in the optimum pipeline (Python)"
            } else {
                "FastAPI + onnxruntime (Python)"
            },
            command: python("onnxruntime", variant_file),
            ready_path: "/health",
            serves: Serves::Selected,
        },
    ];
    if let Some(teacher) = teacher {
        peers.push(Peer {
            name: "FastAPI + onnxruntime (Python), the teacher's variant: equal quality",
            command: python("onnxruntime", &teacher.file),
            ready_path: "/health",
            serves: Serves::Variant(teacher.name.clone()),
        });
    }
    if !smoke && model == DEFAULT_MODEL {
        // Right after the defaults, the fixed layouts a user could pick instead: one
        // session of every core merging up to 32 (the defaults before policies were
        // measured), and one single-thread session per core that never merges.
        peers.splice(
            1..1,
            [
                Peer {
                    name: "Modelcrate, one session of every core, merging on",
                    command: server(&["--layout", "wide", "--merge", "on"]),
                    ready_path: READY,
                    serves: Serves::Selected,
                },
                Peer {
                    name: "Modelcrate, one single-thread session per core, merging off",
                    command: server(&["--layout", "narrow", "--merge", "off"]),
                    ready_path: READY,
                    serves: Serves::Selected,
                },
            ],
        );
    }
    if !smoke {
        peers.push(Peer {
            name: if task == Task::FeatureExtraction {
                "FastAPI + sentence-transformers (PyTorch)"
            } else {
                "FastAPI + transformers pipeline (PyTorch)"
            },
            command: python("transformers", variant_file),
            ready_path: "/health",
            serves: Serves::Checkpoint,
        });
    }
    peers
}

fn load<T: DeserializeOwned>(paths: &Paths, arguments: &[String], environment: &Environment) -> Result<T> {
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

/// What one model's peers are loaded with.
struct Plan<'a> {
    model: &'a str,
    workload: Workload,
    /// The workload's texts (JSON lines with a `text`).
    corpus: PathBuf,
    concurrency: Vec<usize>,
    /// Open-loop arrival rates, requests/s.
    rates: Vec<f64>,
    seconds: f64,
}

fn measure_peer(
    paths: &Paths,
    environment: &Environment,
    mut peer: Peer,
    plan: &Plan<'_>,
    log_dir: &Path,
) -> Result<Value> {
    eprintln!("  {}", peer.name);
    let port = free_port()?;
    // One log per model and peer: `news-topic-modelcrate--batching-on.log`, …
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
    let log_path = log_dir.join(format!("{}-{}-{file_name}.log", plan.model, plan.workload.name()));
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
    let list = |values: Vec<String>| values.join(",");
    let mut arguments = vec![
        "http".to_string(),
        "--url".into(),
        format!("http://127.0.0.1:{port}/models/{}/predict", plan.model),
        "--corpus".into(),
        plan.corpus.display().to_string(),
        "--concurrency".into(),
        list(plan.concurrency.iter().map(usize::to_string).collect()),
        "--seconds".into(),
        plan.seconds.to_string(),
        "--warmup-seconds".into(),
        (plan.seconds / 3.0).max(0.5).to_string(),
    ];
    if !plan.rates.is_empty() {
        arguments.push("--rates".into());
        arguments.push(list(plan.rates.iter().map(|rate| format!("{rate:.1}")).collect()));
    }
    let report: LoadReport = load(paths, &arguments, environment)?;
    let rss = process::peak_rss(server.id());
    drop(server);
    Ok(json!({
        "peer": peer.name,
        "startup_seconds": startup_seconds,
        "peak_rss_bytes": rss,
        "levels": report.levels,
        "open_loop": report.open_loop,
    }))
}

pub fn run(paths: &Paths, environment: &Environment, args: &BenchArgs) -> Result<()> {
    let smoke = BenchArgs {
        models: args.models.clone(),
        ..BenchArgs::smoke()
    };
    let args = if args.smoke { &smoke } else { args };
    let specs = spec::all(&paths.models())?;
    eprintln!(
        "==> bench: this CPU's matrix-product peak, ONNX Runtime on {} threads",
        cores()
    );
    let peak = bench_limit::measure_peak(paths, environment, cores(), if args.smoke { 0.3 } else { 3.0 })?;
    eprintln!(
        "  INT8 {:.1} GOP/s, FP32 {:.1} GOP/s",
        number(&peak["int8"]["gop_per_second"]),
        number(&peak["fp32"]["gop_per_second"])
    );
    for model in args.models() {
        let (_, spec) = specs
            .iter()
            .find(|(_, spec)| spec.name == model)
            .with_context(|| format!("no model named `{model}` under models/"))?;
        if spec.is_image() {
            bail!("`{model}` is an image model: the bench's load is texts from a test split");
        }
        run_model(paths, environment, args, spec, &peak)?;
    }
    Ok(())
}

/// For each workload: the ceiling, then every peer, for one model; writes its report and
/// table, with each peer's rate against `peak` (this CPU's, `bench_limit::measure_peak`).
fn run_model(paths: &Paths, environment: &Environment, args: &BenchArgs, spec: &ModelSpec, peak: &Value) -> Result<()> {
    let (model, task) = (spec.name.as_str(), spec.task);
    let onnx = paths.onnx(model);
    let serving: Serving = select::read_json(&onnx.join(SERVING_FILE), "cargo xtask all")?;
    let variant_file = serving.file.clone();
    let out_dir = paths.artifacts().join("bench");
    let (log_dir, corpora) = (out_dir.join("logs"), out_dir.join("corpora"));
    for dir in [&log_dir, &corpora] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let test_split = paths.artifact(model).join("data/test.jsonl");
    let config_path = onnx.join("config.json");
    let config: Value = select::read_json(&config_path, "cargo xtask export")?;
    for workload in Workload::ALL {
        eprintln!("==> bench {model}, {} workload", workload.name());
        let corpus = workload.corpus(&test_split, &corpora, model)?;
        let (texts, p10, p50, p90, mean) = bench_workload::word_counts(&corpus)?;
        let workload_report = json!({
            "name": workload.name(),
            "description": workload.describe(),
            "texts": texts,
            "words": {"p10": p10, "p50": p50, "p90": p90, "mean": mean},
        });

        eprintln!("  ceiling: ONNX Runtime alone");
        let seconds = if args.smoke { 0.5 } else { args.seconds / 2.0 };
        // The ceiling is the better of the two layouts of the thread budget.
        let mut ceilings: Vec<CeilingReport> = Vec::new();
        for (sessions, threads) in [(1, cores()), (cores(), 1)] {
            ceilings.push(load(
                paths,
                &[
                    "ceiling".into(),
                    "--model".into(),
                    model.to_string(),
                    "--corpus".into(),
                    corpus.display().to_string(),
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
            .max_by(|a, b| a.best_sequences_per_second.total_cmp(&b.best_sequences_per_second))
            .cloned()
            .context("modelcrate-load measured no ceiling")?;
        let best = ceiling.best_sequences_per_second;
        let default_model = model == DEFAULT_MODEL;
        let plan = Plan {
            model,
            workload,
            corpus,
            concurrency: args
                .concurrency
                .iter()
                .copied()
                .filter(|&c| default_model || c <= OTHER_MODELS_MAX_CONCURRENCY)
                .collect(),
            rates: if default_model && best > 0.0 {
                args.open_loop.iter().map(|fraction| fraction * best).collect()
            } else {
                Vec::new()
            },
            seconds: args.seconds,
        };

        let serving_variant = serving.variant.as_str();
        let made = made_variants(paths, model)?;
        let kept_layers_of = |variant: &str| {
            made.iter()
                .find(|made| made.name == variant)
                .and_then(|made| made.kept_layers)
        };
        let student_serves = kept_layers_of(serving_variant).is_some();
        let teacher = if student_serves {
            Some(teacher_variant(paths, spec)?)
        } else {
            None
        };
        let mut results = Vec::new();
        let peers = peers(
            paths,
            environment,
            model,
            task,
            &variant_file,
            teacher.as_ref(),
            args.smoke,
        );
        let progress = Progress::new(peers.len() as u64, &format!("peers of {model}, {}", workload.name()));
        for peer in peers {
            let name = peer.name;
            let (serves, metric) = served_metric(paths, model, serving_variant, peer.serves.clone())?;
            // The work of one of the workload's sequences in what it serves: a student's
            // layers, or the teacher's (the PyTorch checkpoint is the teacher).
            let kept_layers = match &peer.serves {
                Serves::Selected => kept_layers_of(serving_variant),
                Serves::Variant(variant) => kept_layers_of(variant),
                Serves::Checkpoint => None,
            };
            let gop = bench_limit::gop_per_sequence(&config, kept_layers, ceiling.tokens);
            let mut result = measure_peer(paths, environment, peer, &plan, &log_dir)?;
            result["serves"] = json!(serves);
            result["test_metric"] = metric;
            result["gop_per_sequence"] = json!(gop);
            results.push(result);
            progress.advance(&format!("{name} measured"));
        }
        progress.finish();
        let report = json!({
            "model": model,
            "task": task,
            "workload": workload_report,
            "variant": serving.variant,
            "file": variant_file,
            "engine": serving.engine,
            "seconds_per_level": args.seconds,
            "thread_budget": cores(),
            "open_loop_fractions_of_ceiling": if plan.rates.is_empty() { json!([]) } else { json!(args.open_loop) },
            "peers": results,
            "ceiling": ceiling,
            "ceiling_layouts": ceilings,
            "peak": peak,
            "machine": ceiling.machine,
        });
        let stem = if args.smoke {
            format!("smoke-{model}-{}", workload.name())
        } else {
            format!("{model}-{}", workload.name())
        };
        std::fs::write(
            out_dir.join(format!("{stem}.json")),
            serde_json::to_string_pretty(&report)? + "\n",
        )?;
        println!("{}", draw(&out_dir, &stem, &report)?);
        if args.smoke {
            check_smoke(&report)?;
        }
    }
    Ok(())
}

/// Writes a report's table (`<stem>.md`) and its charts beside it; returns the table.
fn draw(out_dir: &Path, stem: &str, report: &Value) -> Result<String> {
    let mut markdown = table(report);
    for (chart, svg) in bench_chart::charts(report)? {
        let file = format!("{stem}.{chart}.svg");
        std::fs::write(out_dir.join(&file), svg)?;
        markdown.push_str(&format!("\n![{chart}]({file})\n"));
    }
    std::fs::write(out_dir.join(format!("{stem}.md")), &markdown)?;
    Ok(markdown)
}

/// `cargo xtask bench --redraw`: every report of `artifacts/bench/` drawn again (tables
/// and charts) from its JSON, measuring nothing.
pub fn redraw(paths: &Paths) -> Result<()> {
    let out_dir = paths.artifacts().join("bench");
    let entries = std::fs::read_dir(&out_dir)
        .with_context(|| format!("cannot list {}: run `cargo xtask bench` first", out_dir.display()))?;
    let mut drawn = 0;
    for entry in entries {
        let path = entry?.path();
        let (Some(stem), Some("json")) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        let report: Value = select::read_json(&path, "cargo xtask bench")?;
        draw(&out_dir, stem, &report)?;
        drawn += 1;
    }
    eprintln!(
        "    redrew {drawn} reports' tables and charts in {}",
        paths.relative(&out_dir).display()
    );
    Ok(())
}

/// What a peer serves, and its test metric as parity measured it (`{"name", "value"}`;
/// the PyTorch checkpoint's is what PyTorch scored in the FP32 variant's parity).
fn served_metric(paths: &Paths, model: &str, serving_variant: &str, serves: Serves) -> Result<(String, Value)> {
    let parity = |variant: &str| -> Result<ParityMetric> {
        let path = ParityReport::path(&paths.artifact(model), variant);
        Ok(select::read_json::<ParityReport>(&path, "cargo xtask parity")?.metric)
    };
    let (serves, name, value) = match serves {
        Serves::Selected => {
            let metric = parity(serving_variant)?;
            (serving_variant.to_string(), metric.name, metric.value)
        }
        Serves::Variant(variant) => {
            let metric = parity(&variant)?;
            (variant, metric.name, metric.value)
        }
        Serves::Checkpoint => {
            let metric = parity(FP32)?;
            ("PyTorch checkpoint".to_string(), metric.name, metric.pytorch)
        }
    };
    Ok((serves, json!({"name": name, "value": value})))
}

/// The smoke run proves each peer answered, without error (a 429 is an answer: the server
/// shedding load it cannot take): nothing about speed.
fn check_smoke(report: &Value) -> Result<()> {
    for peer in report["peers"].as_array().into_iter().flatten() {
        let closed = peer["levels"].as_array().into_iter().flatten();
        for level in closed.chain(peer["open_loop"].as_array().into_iter().flatten()) {
            let answered = level["requests"].as_u64().unwrap_or(0);
            let errors = level["errors"].as_u64().unwrap_or(u64::MAX);
            if answered == 0 || errors != 0 {
                bail!(
                    "bench smoke: {} at {} answered {answered} requests with {errors} errors ({})",
                    peer["peer"],
                    level.get("concurrency").map_or_else(
                        || format!("{} requests/s, open loop", level["offered_per_second"]),
                        |c| format!("concurrency {c}")
                    ),
                    level["first_error"]
                );
            }
        }
    }
    if report["ceiling"]["best_sequences_per_second"].as_f64().unwrap_or(0.0) <= 0.0 {
        bail!("bench smoke: the ceiling ran nothing");
    }
    // Every peer's work is counted (news-topic is an encoder), so its share of the peak is.
    for peer in report["peers"].as_array().into_iter().flatten() {
        if peer["gop_per_sequence"].as_f64().unwrap_or(0.0) <= 0.0 {
            bail!("bench smoke: no work per sequence counted for {}", peer["peer"]);
        }
    }
    if report["peak"]["int8"]["gop_per_second"].as_f64().unwrap_or(0.0) <= 0.0 {
        bail!("bench smoke: the CPU's INT8 peak was not measured: {}", report["peak"]);
    }
    Ok(())
}
