//! The steps themselves, and how they chain.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::bench::{self, BenchArgs};
use crate::paths::Paths;
use crate::python::Venv;
use crate::spec::{self, ModelSpec};
use crate::stamp::{Stamp, hash_paths};
use crate::{Select, ServeArgs, codegen, report, select, smoke};

/// Runs `work` under a heading, then says how long it took.
fn timed<T>(what: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("==> {what}");
    let started = Instant::now();
    let result = work();
    match &result {
        Ok(_) => eprintln!("    {what}: done in {:.1}s", started.elapsed().as_secs_f64()),
        Err(_) => eprintln!("    {what}: FAILED after {:.1}s", started.elapsed().as_secs_f64()),
    }
    result
}

pub struct Environment {
    pub venv: Venv,
    pub ort_dylib: PathBuf,
}

pub fn setup(paths: &Paths, force: bool) -> Result<Environment> {
    timed("setup", || {
        if force {
            let dir = Venv::location()?;
            eprintln!("    removing {}", dir.display());
            let _ = std::fs::remove_dir_all(&dir);
        }
        let venv = Venv::ensure(paths)?;
        let ort_dylib = venv.ort_dylib()?;
        eprintln!(
            "    venv {}\n    ONNX Runtime {}",
            venv.dir.display(),
            ort_dylib.display()
        );
        Ok(Environment { venv, ort_dylib })
    })
}

fn selected(paths: &Paths, select: &Select) -> Result<Vec<ModelSpec>> {
    let all = spec::all(&paths.models())?;
    let specs: Vec<ModelSpec> = all
        .into_iter()
        .map(|(_, spec)| spec)
        .filter(|spec| select.model.as_ref().is_none_or(|name| &spec.name == name))
        .collect();
    match (&select.model, specs.is_empty()) {
        (Some(name), true) => bail!("no model `{name}`: there is no models/{name}.toml"),
        (None, true) => bail!("no model specs under {}", paths.models().display()),
        _ => Ok(specs),
    }
}

/// What the export step writes into `onnx/` (the optimize step adds variants beside them).
const EXPORTED_FILES: [&str; 7] = [
    "model.onnx",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "signature.json",
];

/// What the export step adds for a SetFit model: its scikit-learn head.
const SETFIT_HEAD_FILES: [&str; 2] = ["head.onnx", "head_signature.json"];

/// What the optimize step writes into `onnx/`, besides `variants.json`.
const VARIANT_FILES: [&str; 5] = [
    "model.O1.onnx",
    "model.O2.onnx",
    "model.O3.onnx",
    "model.int8.onnx",
    "model.O2.int8.onnx",
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PyStep {
    Train,
    Export,
    Optimize,
    Golden,
}

impl PyStep {
    fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Export => "export",
            Self::Optimize => "optimize",
            Self::Golden => "golden",
        }
    }

    /// The Python module that runs the step: its own, or `vision` for an image model.
    fn module(self, spec: &ModelSpec) -> &'static str {
        if spec.is_image() { "vision" } else { self.name() }
    }

    /// (inputs, outputs) whose hashes decide whether the step must run.
    fn io(self, paths: &Paths, spec: &ModelSpec) -> (Vec<PathBuf>, Vec<PathBuf>) {
        if spec.is_image() {
            return self.image_io(paths, spec);
        }
        let art = paths.artifact(&spec.name);
        let onnx = paths.onnx(&spec.name);
        // A SetFit body is a sentence-embedding model: both export `pooling.json`.
        let embeddings = spec.task == "feature-extraction" || spec.is_setfit();
        // The modules a task (or SetFit) adds to every step's code.
        let task_modules: &[&str] = match spec.task.as_str() {
            _ if spec.is_setfit() => &["fewshot", "embed"],
            "feature-extraction" => &["embed"],
            "token-classification" => &["ner"],
            _ => &[],
        };
        let code = |modules: &[&str]| -> Vec<PathBuf> {
            let mut files: Vec<PathBuf> = modules
                .iter()
                .chain(task_modules)
                .copied()
                .map(|m| paths.root.join(format!("python/modelcrate/{m}.py")))
                .collect();
            files.push(paths.root.join("python/modelcrate/__init__.py"));
            files.push(paths.root.join("python/requirements.lock"));
            files.push(art.join("spec.json"));
            files
        };
        match self {
            Self::Train => (
                code(&["spec", "bbc", "release_notes", "train"]),
                vec![art.join("checkpoint"), art.join("metrics.json"), art.join("data")],
            ),
            Self::Export => {
                let mut inputs = code(&["spec", "export"]);
                inputs.push(art.join("checkpoint"));
                let pooling = embeddings.then_some("pooling.json");
                let head = spec.is_setfit().then_some(SETFIT_HEAD_FILES).into_iter().flatten();
                let outputs = EXPORTED_FILES
                    .iter()
                    .copied()
                    .chain(pooling)
                    .chain(head)
                    .map(|f| onnx.join(f));
                (inputs, outputs.collect())
            }
            Self::Optimize => {
                let mut inputs = code(&["spec", "optimize"]);
                inputs.push(onnx.join("model.onnx"));
                let mut outputs: Vec<PathBuf> = VARIANT_FILES.iter().map(|f| onnx.join(f)).collect();
                outputs.push(onnx.join("variants.json"));
                (inputs, outputs)
            }
            Self::Golden => {
                let mut inputs = code(&["spec", "bbc", "release_notes", "train", "golden"]);
                inputs.extend([
                    art.join("checkpoint"),
                    art.join("data/test.jsonl"),
                    paths.golden(&spec.name).join("inputs.json"),
                ]);
                (inputs, vec![paths.golden(&spec.name).join("reference.json")])
            }
        }
    }
}

impl PyStep {
    /// An image model's steps: the `vision` module and what it borrows from the others.
    fn image_io(self, paths: &Paths, spec: &ModelSpec) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let art = paths.artifact(&spec.name);
        let onnx = paths.onnx(&spec.name);
        let golden = paths.golden(&spec.name);
        let code = |modules: &[&str]| -> Vec<PathBuf> {
            let mut files: Vec<PathBuf> = ["__init__", "spec", "vision"]
                .iter()
                .chain(modules)
                .map(|m| paths.root.join(format!("python/modelcrate/{m}.py")))
                .collect();
            files.extend([paths.root.join("python/requirements.lock"), art.join("spec.json")]);
            files
        };
        match self {
            Self::Train => (
                code(&["fit"]),
                vec![art.join("checkpoint"), art.join("metrics.json"), art.join("data")],
            ),
            Self::Export => {
                let mut inputs = code(&["export"]);
                inputs.push(art.join("checkpoint"));
                let outputs = IMAGE_EXPORTED_FILES.iter().map(|f| onnx.join(f)).collect();
                (inputs, outputs)
            }
            Self::Optimize => {
                let mut inputs = code(&["optimize"]);
                inputs.extend([onnx.join("model.onnx"), art.join("data/split.json")]);
                let outputs = ["model.O1.onnx", "model.O2.onnx", "model.int8.onnx", "variants.json"]
                    .iter()
                    .map(|f| onnx.join(f))
                    .collect();
                (inputs, outputs)
            }
            Self::Golden => {
                // `golden` brings `train` and what it reads, for the checkpoint digest.
                let mut inputs = code(&["golden", "train", "bbc", "release_notes", "fit"]);
                inputs.extend([
                    art.join("checkpoint"),
                    art.join("data"),
                    golden.join("inputs.json"),
                    golden.join("images"),
                ]);
                let outputs = vec![golden.join("reference.json"), art.join("golden-pixels")];
                (inputs, outputs)
            }
        }
    }
}

/// What an image model's export writes into `onnx/`.
const IMAGE_EXPORTED_FILES: [&str; 4] = [
    "model.onnx",
    "config.json",
    "preprocessor_config.json",
    "signature.json",
];

/// Writes `artifacts/<name>/spec.json` for the Python steps, only when it changed.
fn write_resolved_spec(paths: &Paths, spec: &ModelSpec) -> Result<PathBuf> {
    let art = paths.artifact(&spec.name);
    std::fs::create_dir_all(&art).with_context(|| format!("cannot create {}", art.display()))?;
    let json = spec.resolved_json(&paths.relative(&art), &paths.relative(&paths.golden(&spec.name)))?;
    let path = art.join("spec.json");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(json.as_str()) {
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path)
}

fn run_python_step(paths: &Paths, venv: &Venv, spec: &ModelSpec, step: PyStep, force: bool) -> Result<()> {
    let spec_json = write_resolved_spec(paths, spec)?;
    let (inputs, outputs) = step.io(paths, spec);
    let stamp = Stamp::new(
        &paths.artifact(&spec.name).join(".stamps"),
        step.name(),
        hash_paths(&paths.root, &inputs)?,
    );
    timed(&format!("{} {}", step.name(), spec.name), || {
        if !force && stamp.is_fresh(&hash_paths(&paths.root, &outputs)?) {
            eprintln!("    up to date (inputs and outputs unchanged; --force to redo)");
            return Ok(());
        }
        stamp.clear();
        venv.run_step(
            paths,
            &spec.name,
            step.name(),
            step.module(spec),
            &paths.relative(&spec_json),
        )?;
        stamp.write(&hash_paths(&paths.root, &outputs)?)
    })
}

pub fn python_steps(paths: &Paths, select: &Select, steps: &[PyStep]) -> Result<()> {
    let specs = selected(paths, select)?;
    let environment = setup(paths, false)?;
    for spec in &specs {
        for &step in steps {
            run_python_step(paths, &environment.venv, spec, step, select.force)?;
        }
    }
    Ok(())
}

pub fn generate(paths: &Paths, check: bool) -> Result<()> {
    let what = if check { "gen --check" } else { "gen" };
    timed(what, || {
        let specs = spec::all(&paths.models())?;
        let facts = specs
            .iter()
            .map(|(_, spec)| codegen::ModelFacts::read(paths, spec))
            .collect::<Result<Vec<_>>>()?;
        let rendered = codegen::render(&facts, &paths.root.join("rustfmt.toml"))?;
        let generated = paths.generated();
        if check {
            let stale = codegen::stale_files(&generated, &rendered)?;
            if !stale.is_empty() {
                let list: Vec<String> = stale.iter().map(|p| format!("    generated/{}", p.display())).collect();
                bail!(
                    "generated/ is stale: these files differ from what templates/ and the models render:\n{}\nrun `{}` and commit the result",
                    list.join("\n"),
                    codegen::COMMAND
                );
            }
            eprintln!("    generated/ is up to date ({} files)", rendered.len());
        } else {
            let written = codegen::write(&generated, &rendered)?;
            eprintln!("    {written} of {} files changed", rendered.len());
        }
        Ok(())
    })
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cargo run` of a binary of the server crate, in the one (release) profile.
fn server_crate_binary(binary: &str) -> Command {
    let mut command = cargo();
    command.args([
        "run",
        "--release",
        "--quiet",
        "-p",
        "modelcrate-server",
        "--bin",
        binary,
        "--",
    ]);
    command
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command.status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn with_runtime_env<'c>(command: &'c mut Command, paths: &Paths, environment: &Environment) -> &'c mut Command {
    command
        .current_dir(&paths.root)
        .env("ORT_DYLIB_PATH", &environment.ort_dylib)
        .env("MODELCRATE_ARTIFACTS", paths.artifacts())
        // What a hot reload's canary holds a model to.
        .env("MODELCRATE_GOLDEN", paths.root.join("golden"))
}

pub fn parity(paths: &Paths, select: &Select) -> Result<()> {
    let environment = setup(paths, false)?;
    parity_with(paths, select, &environment)
}

/// The variants the optimize step made (`fp32` alone before it has run): (name, file, kind).
fn made_variants(paths: &Paths, model: &str) -> Result<Vec<(String, String, String)>> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        variants: Vec<Variant>,
    }
    #[derive(serde::Deserialize)]
    struct Variant {
        name: String,
        kind: String,
        made: bool,
        file: Option<String>,
    }
    let path = paths.onnx(model).join("variants.json");
    if !path.is_file() {
        return Ok(vec![("fp32".into(), "model.onnx".into(), "fp32".into())]);
    }
    let manifest: Manifest = select::read_json(&path, "cargo xtask optimize")?;
    Ok(manifest
        .variants
        .into_iter()
        .filter_map(|v| v.file.filter(|_| v.made).map(|file| (v.name, file, v.kind)))
        .collect())
}

/// The parity binary's exit code when it ran and wrote its report, but a bound failed.
const GATE_NOT_MET: i32 = 2;

/// A check run once per variant, by a binary of the server crate, that writes
/// `artifacts/<name>/<reports>/<variant>.json`.
#[derive(Clone, Copy)]
enum VariantCheck {
    /// `modelcrate-parity`: the variant against PyTorch's golden outputs.
    Parity,
    /// `modelcrate-measure`: the variant's latency, throughput and memory here.
    Measure,
}

impl VariantCheck {
    fn step(self) -> &'static str {
        match self {
            Self::Parity => "parity",
            Self::Measure => "measure",
        }
    }

    fn reports(self) -> &'static str {
        match self {
            Self::Parity => "parity",
            Self::Measure => "bench",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Self::Parity => "modelcrate-parity",
            Self::Measure => "modelcrate-measure",
        }
    }

    /// Runs the check on every made variant of `model`, skipping a variant whose inputs
    /// and report are unchanged; returns (variant, report) pairs.
    fn run(self, paths: &Paths, model: &str, force: bool, environment: &Environment) -> Result<Vec<(String, PathBuf)>> {
        let art = paths.artifact(model);
        let onnx = paths.onnx(model);
        let mut reports = Vec::new();
        for (variant, file, _) in made_variants(paths, model)? {
            // The lock pins onnxruntime, whose library the check runs on.
            let inputs: Vec<PathBuf> = [
                "runtime",
                "server",
                "generated",
                "Cargo.lock",
                "python/requirements.lock",
            ]
            .iter()
            .map(|p| paths.root.join(p))
            .chain(
                [
                    "config.json",
                    "tokenizer.json",
                    "pooling.json",
                    "preprocessor_config.json",
                    "head.onnx",
                    "variants.json",
                    file.as_str(),
                ]
                .map(|f| onnx.join(f)),
            )
            .chain([art.join("data"), paths.golden(model)])
            .collect();
            let report = art.join(self.reports()).join(format!("{variant}.json"));
            let outputs = [report.clone()];
            let stamp = Stamp::new(
                &art.join(".stamps"),
                &format!("{}-{variant}", self.step()),
                hash_paths(&paths.root, &inputs)?,
            );
            timed(&format!("{} {model} {variant}", self.step()), || {
                if !force && stamp.is_fresh(&hash_paths(&paths.root, &outputs)?) {
                    eprintln!(
                        "    up to date ({}; --force to redo)",
                        paths.relative(&report).display()
                    );
                    return Ok(());
                }
                stamp.clear();
                let mut command = server_crate_binary(self.binary());
                command.args(["--model", model, "--variant", &variant]);
                if let Self::Parity = self {
                    command.arg("--golden").arg(paths.golden(model));
                }
                let status = with_runtime_env(&mut command, paths, environment)
                    .status()
                    .with_context(|| format!("cannot run {}", self.binary()))?;
                match (self, status.code()) {
                    (_, Some(0)) | (Self::Parity, Some(GATE_NOT_MET)) => {
                        stamp.write(&hash_paths(&paths.root, &outputs)?)
                    }
                    _ => bail!("{} of {model} variant {variant} could not run ({status})", self.step()),
                }
            })?;
            reports.push((variant, report));
        }
        Ok(reports)
    }
}

fn parity_with(paths: &Paths, select: &Select, environment: &Environment) -> Result<()> {
    for spec in selected(paths, select)? {
        let reports = VariantCheck::Parity.run(paths, &spec.name, select.force, environment)?;
        summarize(paths, &spec.name, &reports)?;
    }
    Ok(())
}

pub fn measure(paths: &Paths, select: &Select) -> Result<()> {
    let environment = setup(paths, false)?;
    measure_with(paths, select, &environment)
}

fn measure_with(paths: &Paths, select: &Select, environment: &Environment) -> Result<()> {
    for spec in selected(paths, select)? {
        VariantCheck::Measure.run(paths, &spec.name, select.force, environment)?;
    }
    Ok(())
}

/// Writes each model's `onnx/serving.json`: the variant its policy picks among those that
/// passed parity, by the figures measured here.
pub fn choose_serving(paths: &Paths, select: &Select) -> Result<()> {
    for spec in selected(paths, select)? {
        timed(&format!("select {}", spec.name), || {
            let made = made_variants(paths, &spec.name)?;
            let candidates = select::candidates(paths, &spec, &made)?;
            let (index, reason) = select::choose(&spec.serve.policy, spec.serve.variant.as_deref(), &candidates)
                .with_context(|| format!("models/{}.toml, [serve]", spec.name))?;
            let chosen = &candidates[index];
            let serving = select::Serving {
                model: &spec.name,
                policy: &spec.serve.policy,
                variant: &chosen.name,
                file: &chosen.file,
                kind: &chosen.kind,
                reason,
            };
            let path = paths.onnx(&spec.name).join("serving.json");
            let text = serde_json::to_string_pretty(&serving)? + "\n";
            std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("    serves {}: {}", chosen.name, serving.reason);
            Ok(())
        })?;
    }
    Ok(())
}

pub fn report(paths: &Paths) -> Result<()> {
    timed("report", || {
        let specs: Vec<ModelSpec> = spec::all(&paths.models())?.into_iter().map(|(_, spec)| spec).collect();
        report::write(paths, &specs)
    })
}

/// One line per variant; fails when the FP32 export misses its bounds, since every
/// other variant is judged against the same PyTorch outputs through the same code.
fn summarize(paths: &Paths, model: &str, reports: &[(String, PathBuf)]) -> Result<()> {
    let mut fp32_passed = false;
    for (index, (variant, path)) in reports.iter().enumerate() {
        let report: serde_json::Value = select::read_json(path, "cargo xtask parity")?;
        let summary = &report["summary"];
        let metric = &report["metric"];
        if index == 0 {
            eprintln!(
                "    {model}: variant   gate   passed  {:>12}  golden {:<10}  test {} (PyTorch)  test agreement",
                summary["drift"]["name"].as_str().unwrap_or("drift"),
                summary["golden"]["name"].as_str().unwrap_or("agreement"),
                metric["name"].as_str().unwrap_or("metric"),
            );
        }
        let passed = report["passed"].as_bool().unwrap_or(false);
        let count = |of: &serde_json::Value| format!("{}/{}", of["agree"], of["of"]);
        eprintln!(
            "    {model}: {variant:<9} {:<6} {:<7} {:>12.2e}  {:>17}  {:.4} ({:.4})          {}",
            report["gate"].as_str().unwrap_or("?"),
            if passed { "yes" } else { "NO" },
            summary["drift"]["value"].as_f64().unwrap_or(f64::NAN),
            count(&summary["golden"]),
            metric["value"].as_f64().unwrap_or(f64::NAN),
            metric["pytorch"].as_f64().unwrap_or(f64::NAN),
            count(&summary["test_agreement"]),
        );
        if !passed {
            let failures: Vec<&str> = report["failures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .collect();
            eprintln!(
                "        fails its gate, so it is never selected: {}",
                failures.join("; ")
            );
        }
        fp32_passed |= variant == "fp32" && passed;
    }
    eprintln!(
        "    reports: {}",
        paths.relative(&paths.artifact(model).join("parity")).display()
    );
    if !fp32_passed {
        bail!(
            "the FP32 export of {model} does not match PyTorch: see {}/fp32.json",
            paths.relative(&paths.artifact(model).join("parity")).display()
        );
    }
    Ok(())
}

pub fn serve(paths: &Paths, args: &ServeArgs) -> Result<()> {
    let environment = setup(paths, false)?;
    serve_with(paths, args, &environment)
}

fn serve_with(paths: &Paths, args: &ServeArgs, environment: &Environment) -> Result<()> {
    eprintln!("==> serve on http://{}:{}", args.host, args.port);
    let mut command = server_crate_binary("modelcrate-server");
    command
        .args(["--host", &args.host, "--port", &args.port.to_string()])
        .args(&args.server_args);
    run(with_runtime_env(&mut command, paths, environment), "the server")
}

pub fn all(paths: &Paths, select: &Select, serve: &ServeArgs) -> Result<()> {
    let started = Instant::now();
    let environment = pipeline_to_parity(paths, select, false)?;
    eprintln!("pipeline done in {:.0}s; serving", started.elapsed().as_secs_f64());
    serve_with(paths, serve, &environment)
}

/// setup → train → export → optimize → golden → gen (or gen --check) → build → parity →
/// measure → select → report.
fn pipeline_to_parity(paths: &Paths, select: &Select, check_generated: bool) -> Result<Environment> {
    let environment = setup(paths, false)?;
    for spec in selected(paths, select)? {
        for step in [PyStep::Train, PyStep::Export, PyStep::Optimize, PyStep::Golden] {
            run_python_step(paths, &environment.venv, &spec, step, select.force)?;
        }
    }
    generate(paths, check_generated)?;
    timed("build (release)", || {
        run(
            cargo()
                .current_dir(&paths.root)
                .args(["build", "--release", "--workspace", "--all-targets"]),
            "cargo build",
        )
    })?;
    parity_with(paths, select, &environment)?;
    measure_with(paths, select, &environment)?;
    choose_serving(paths, select)?;
    report(paths)?;
    Ok(environment)
}

pub fn test(paths: &Paths) -> Result<()> {
    let started = Instant::now();
    timed("lint", || {
        run(
            cargo().current_dir(&paths.root).args(["fmt", "--all", "--check"]),
            "cargo fmt --check",
        )?;
        run(
            cargo().current_dir(&paths.root).args([
                "clippy",
                "--release",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
            "cargo clippy",
        )
    })?;
    let environment = pipeline_to_parity(paths, &Select::default(), true)?;
    timed("tests", || {
        let nextest = Command::new("cargo-nextest")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let mut command = cargo();
        if nextest {
            command.args(["nextest", "run", "--release", "--workspace", "--no-fail-fast"]);
        } else {
            command.args(["test", "--release", "--workspace", "--no-fail-fast"]);
        }
        run(with_runtime_env(&mut command, paths, &environment), "the tests")
    })?;
    timed("serve smoke test", || {
        smoke::run(paths, &environment.ort_dylib, &environment.venv.python())
    })?;
    timed("bench smoke test", || {
        bench::run(paths, &environment, &BenchArgs::smoke())
    })?;
    eprintln!("test: everything passed in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

pub fn bench(paths: &Paths, args: &BenchArgs) -> Result<()> {
    let environment = setup(paths, false)?;
    timed("build (release)", || {
        run(
            cargo()
                .current_dir(&paths.root)
                .args(["build", "--release", "-p", "modelcrate-server", "--bins"]),
            "cargo build",
        )
    })?;
    timed(&format!("bench {}", args.models().join(", ")), || {
        bench::run(paths, &environment, args)
    })
}

/// The release binary of `name` in the workspace's target dir.
pub fn release_binary(paths: &Paths, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| paths.root.join("target"), PathBuf::from);
    target.join("release").join(name)
}
