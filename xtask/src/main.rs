//! `cargo xtask`: the pipeline driver. Each step is a subcommand, usable alone, and
//! skips work whose inputs and outputs are unchanged (`--force` redoes it).
//!
//! spec → train → export → optimize → golden → gen → parity → measure → select → serve, and
//! for a spec with `[distill]` a student (distill, then its export, variants and
//! reference) checked and selected the same way; `all` runs them in order, serving as soon
//! as the default model's teacher is selected, and ends serving; `test` runs the pipeline,
//! checks `generated/`, parity and the tests. `report` tabulates every model and variant.

mod bench;
mod bench_chart;
mod bench_limit;
mod bench_table;
mod bench_workload;
mod beside;
mod browser;
mod build_inputs;
mod bundle;
mod cache;
mod cache_command;
mod card_figures;
mod chaos;
mod chart;
mod checksums;
mod codegen;
mod deploy_check;
#[cfg(test)]
mod invalidation_tests;
mod paths;
mod pipeline;
mod process;
mod progress;
mod python;
mod python_host;
mod python_step;
mod report;
mod rolling;
mod schemathesis;
#[cfg(test)]
mod scratch;
mod select;
mod smoke;
mod spec;
mod stamp;
mod step;
mod system;
mod variant_check;
mod work;

use clap::{Args, Parser, Subcommand};
use python_step::PyStep;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Modelcrate's pipeline: train, export, golden, gen, parity, serve"
)]
struct Cli {
    #[command(subcommand)]
    command: Step,
}

#[derive(Args, Clone, Default)]
pub struct Select {
    /// Only this model (a name under models/); every model when absent.
    #[arg(long)]
    pub model: Option<String>,
    /// Redo the step even when its inputs and outputs are unchanged.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Further flags for the server (see `modelcrate-server --help`), after `--`.
    #[arg(last = true)]
    pub server_args: Vec<String>,
}

#[derive(Subcommand)]
enum Step {
    /// Create the Python venv from python/requirements.lock and locate ONNX Runtime.
    Setup {
        #[arg(long)]
        force: bool,
    },
    /// Fine-tune each model from its spec (artifacts/<name>/checkpoint, metrics.json).
    Train(Select),
    /// Distil each model with a `[distill]` section into a smaller student
    /// (artifacts/<name>/student/checkpoint, metrics.json), then export it beside the
    /// teacher, make its O2 and INT8 variants (onnx/variants.student.json) and its PyTorch
    /// reference (student/reference.json). Needs the teacher's export and golden.
    Distill(Select),
    /// Export each checkpoint to ONNX with optimum (artifacts/<name>/onnx/).
    Export(Select),
    /// Make graph-optimized (O1, O2; O3 where the spec asks) and INT8 (dynamic, static; selective for embeddings) variants beside each export.
    Optimize(Select),
    /// Write PyTorch's outputs for the golden inputs (golden/<name>/reference.json).
    Golden(Select),
    /// Render generated/ from templates/ and the exported models.
    Gen {
        /// Render in memory and fail if generated/ differs.
        #[arg(long)]
        check: bool,
    },
    /// Check every variant of every model against PyTorch, through the server's code path.
    Parity(Select),
    /// Time every variant here: latency at batch 1, throughput at batch 32, peak RSS.
    Measure(Select),
    /// Choose each model's serving variant by its spec's policy, measure its costs, and
    /// write both with its engine policy (onnx/serving.json).
    #[command(name = "select")]
    Choose(Select),
    /// One table of every model and variant (artifacts/report.md and report.json).
    Report,
    /// Gather what the deployable image carries (deploy/Dockerfile): each model's serving
    /// variant, tokenizer and configs, and its golden outputs, in artifacts/deploy/.
    Bundle,
    /// Check deploy/ here: gather the bundle, serve it from two replicas behind HAProxy
    /// and restart both under load (every request must be answered), then validate the
    /// manifests against Kubernetes's and KServe's schemas and the measured memory.
    Deploy,
    /// The server under faults and load, as a table (case, expected, observed, held):
    /// damaged files at start and reload, a full disk, SIGKILL, twice the capacity, slow
    /// clients, and a soak of every task. The test command runs it short.
    Chaos {
        /// The overload for 60 s and the soak for 20 minutes (else 20 s and 60 s).
        #[arg(long)]
        long: bool,
    },
    /// Serve every model over HTTP.
    Serve(ServeArgs),
    /// The main job: setup, train, distill, export, optimize, golden, gen, parity, measure, select, then serve.
    All {
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// The test command: lints, the pipeline, gen --check, parity, every test, a served request.
    Test,
    /// The machine's artifact cache: its size, hits and misses; `--prune SIZE`, `--clear`.
    Cache(cache_command::CacheArgs),
    /// Modelcrate's server against FastAPI + onnxruntime, the transformers pipeline and ONNX
    /// Runtime alone, over HTTP on 127.0.0.1 (after the main job).
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let paths = paths::Paths::new();
    let result = match cli.command {
        Step::Setup { force } => pipeline::setup(&paths, force).map(drop),
        Step::Train(select) => python_step::run_all(&paths, &select, &[PyStep::Train]),
        Step::Distill(select) => python_step::run_all(&paths, &select, &PyStep::STUDENT),
        Step::Export(select) => python_step::run_all(&paths, &select, &[PyStep::Export]),
        Step::Optimize(select) => python_step::run_all(&paths, &select, &[PyStep::Optimize]),
        Step::Golden(select) => python_step::run_all(&paths, &select, &[PyStep::Golden]),
        Step::Gen { check } => pipeline::generate(&paths, check).map(drop),
        Step::Parity(select) => variant_check::parity(&paths, &select),
        Step::Measure(select) => variant_check::measure(&paths, &select),
        Step::Choose(select) => pipeline::select_serving(&paths, &select),
        Step::Report => pipeline::report(&paths),
        Step::Bundle => bundle::write(&paths).map(drop),
        Step::Deploy => pipeline::deploy(&paths),
        Step::Chaos { long } => pipeline::chaos(&paths, long),
        Step::Serve(serve) => pipeline::serve(&paths, &serve),
        Step::All { select, serve } => pipeline::all(&paths, &select, &serve),
        Step::Test => pipeline::test(&paths),
        Step::Bench(args) => pipeline::bench(&paths, &args),
        Step::Cache(args) => cache_command::run(&args),
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
