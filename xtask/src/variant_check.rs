//! The checks run once per variant by a binary of the server crate: parity (the variant
//! against PyTorch's golden outputs, through the server's code path) and measure (its
//! speed and memory here). Each is a cached step: its key holds the Rust code that computes
//! it, the variant's bytes, the files the model loads with, the test split and the golden
//! folder, and for measure the CPU it is timed on.
//!
//! Parity runs as many variants at once as there are cores: its figures are counts and
//! differences, not timings, and each run uses one core. Measure runs one at a time, alone,
//! and only on the variants that passed their parity gate: the others can never serve.
//! Costs (by length and merge size, in both layouts: what the engine policy is chosen
//! from) are measured for the serving variant only, once `select` has chosen it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use modelcrate_schema::{
    CostsReport, MeasureReport, ParityReport, STUDENT_VARIANTS_FILE, VARIANTS_FILE, Variant, VariantKind, Variants,
};

use crate::Select;
use crate::build_inputs;
use crate::cache::{Key, KeyBuilder, Output};
use crate::paths::Paths;
use crate::pipeline::{Build, Environment, build, release_binary, selected, setup, with_runtime_env};
use crate::progress::Progress;
use crate::python_step::label;
use crate::select;
use crate::step::Step;
use crate::work::kept_layers;

pub fn parity(paths: &Paths, select: &Select) -> Result<()> {
    let environment = setup(paths, false)?;
    build(paths, Build::ServerBinaries)?;
    parity_with(paths, select, &environment)
}

pub fn parity_with(paths: &Paths, select: &Select, environment: &Environment) -> Result<()> {
    for spec in selected(paths, select)? {
        let reports = VariantCheck::Parity.run(paths, &spec.name, None, select.force, environment)?;
        summarize(paths, &spec.name, &reports)?;
    }
    Ok(())
}

pub fn measure(paths: &Paths, select: &Select) -> Result<()> {
    let environment = setup(paths, false)?;
    build(paths, Build::ServerBinaries)?;
    measure_with(paths, select, &environment)
}

pub fn measure_with(paths: &Paths, select: &Select, environment: &Environment) -> Result<()> {
    for spec in selected(paths, select)? {
        VariantCheck::Measure.run(paths, &spec.name, None, select.force, environment)?;
    }
    Ok(())
}

/// Measures the costs of `model`'s `variant` (the one `select` chose).
pub fn costs_with(paths: &Paths, model: &str, variant: &str, force: bool, environment: &Environment) -> Result<()> {
    VariantCheck::Costs.run(paths, model, Some(variant), force, environment)?;
    Ok(())
}

/// One variant the optimize step made, as `variants.json` lists it.
pub struct Made {
    pub name: String,
    pub file: String,
    pub kind: VariantKind,
    /// How many of the teacher's layers a distilled student's variant kept; `None` for
    /// the teacher's own variants.
    pub kept_layers: Option<u64>,
}

impl Made {
    /// A distilled student's variant: held to the student's own reference too.
    pub fn is_student(&self) -> bool {
        self.kept_layers.is_some()
    }
}

/// Every variant the optimize steps listed, made or not: `variants.json`'s, then a
/// distilled student's (`variants.student.json`) once its step has run; `None` before
/// the optimize step has run.
pub fn listed_variants(paths: &Paths, model: &str) -> Result<Option<Vec<Variant>>> {
    let onnx = paths.onnx(model);
    let teacher = onnx.join(VARIANTS_FILE);
    if !teacher.is_file() {
        return Ok(None);
    }
    let mut listed = select::read_json::<Variants>(&teacher, "cargo xtask optimize")?.variants;
    let student = onnx.join(STUDENT_VARIANTS_FILE);
    if student.is_file() {
        listed.extend(select::read_json::<Variants>(&student, "cargo xtask distill")?.variants);
    }
    Ok(Some(listed))
}

/// The variants the optimize steps made (`fp32` alone before they have run).
pub fn made_variants(paths: &Paths, model: &str) -> Result<Vec<Made>> {
    let listed = listed_variants(paths, model)?.unwrap_or_else(|| vec![Variant::fp32_export()]);
    Ok(listed
        .into_iter()
        .filter_map(|v| {
            let kept_layers = kept_layers(&v);
            v.file.filter(|_| v.made).map(|file| Made {
                name: v.name,
                file,
                kind: v.kind,
                kept_layers,
            })
        })
        .collect())
}

/// The keys of a variant's parity and measure steps.
#[cfg(test)]
pub fn keys(paths: &Paths, model: &str, made: &Made) -> Result<(Key, Key)> {
    let rust = rust_key(paths, model)?;
    Ok((
        VariantCheck::Parity.key(paths, model, made, &rust)?,
        VariantCheck::Measure.key(paths, model, made, &rust)?,
    ))
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
    /// `modelcrate-measure --costs`: the serving variant's costs by length and merge
    /// size in both layouts, and the engine policy they argue for.
    Costs,
}

/// One variant's check, with its key computed.
struct Pending<'a> {
    variant: String,
    step: Step<'a>,
    report: PathBuf,
}

impl VariantCheck {
    fn step(self) -> &'static str {
        match self {
            Self::Parity => "parity",
            Self::Measure => "measure",
            Self::Costs => "costs",
        }
    }

    /// Where the check writes its report on `variant` of the model whose artifacts are `art`.
    fn report(self, art: &Path, variant: &str) -> PathBuf {
        match self {
            Self::Parity => ParityReport::path(art, variant),
            Self::Measure => MeasureReport::path(art, variant),
            Self::Costs => CostsReport::path(art, variant),
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Self::Parity => "modelcrate-parity",
            Self::Measure | Self::Costs => "modelcrate-measure",
        }
    }

    /// How many variants run at once: parity's figures allow one per core, measure's
    /// timings need the machine to themselves.
    fn jobs(self) -> usize {
        match self {
            Self::Parity => std::thread::available_parallelism().map_or(1, usize::from),
            Self::Measure | Self::Costs => 1,
        }
    }

    /// What can change the check's report, besides the variant file: the Rust that loads
    /// and runs the model and computes the figures, the compiler, ONNX Runtime, the files
    /// the model loads with, the test split and the golden folder (for measure, the CPU).
    fn key(self, paths: &Paths, model: &str, made: &Made, rust: &Key) -> Result<Key> {
        let onnx = paths.onnx(model);
        let mut key = KeyBuilder::new(self.step())
            .text("rust", rust.as_str())
            .text("variant", &made.name);
        let files = [
            "config.json",
            "tokenizer.json",
            "pooling.json",
            "preprocessor_config.json",
            "head.onnx",
            "variants.json",
            &made.file,
        ]
        .map(|f| onnx.join(f));
        let art = paths.artifact(model);
        // The PyTorch outputs it is held to: the golden folder's, and for a distilled
        // student's variant (`variants.json` marks it) the student's own too.
        let student = made.is_student().then(|| art.join("student/reference.json"));
        for input in files
            .iter()
            .chain([&art.join("data"), &paths.golden(model)])
            .chain(&student)
        {
            key = key.path(&label(paths, model, input), input)?;
        }
        if let Self::Measure | Self::Costs = self {
            key = key.text("cpu", &cpu());
        }
        Ok(key.finish())
    }

    /// Runs the check on every made variant of `model`, or on `only` (restored from the
    /// cache, or skipped, where it can be); returns (variant, report) pairs in the
    /// manifest's order.
    fn run(
        self,
        paths: &Paths,
        model: &str,
        only: Option<&str>,
        force: bool,
        environment: &Environment,
    ) -> Result<Vec<(String, PathBuf)>> {
        let art = paths.artifact(model);
        let stamps = art.join(".stamps");
        let rust = rust_key(paths, model)?;
        let mut made = made_variants(paths, model)?;
        if let Self::Measure = self {
            made.retain(
                |Made { name: variant, .. }| match passed_parity(paths, model, variant) {
                    Ok(true) => true,
                    Ok(false) => {
                        eprintln!(
                            "    measure {model} {variant}: skipped, it missed its parity gate (it never serves)"
                        );
                        // Figures of an earlier, passing file would describe another variant.
                        let _ = std::fs::remove_file(self.report(&art, variant));
                        false
                    }
                    // No parity report: measure it; `select` asks for parity anyway.
                    Err(_) => true,
                },
            );
        }
        if let Some(only) = only {
            made.retain(|variant| variant.name == only);
            if made.is_empty() {
                bail!("{model} has no made variant `{only}` (see onnx/variants.json)");
            }
        }
        let names: Vec<String> = made
            .iter()
            .map(|variant| format!("{}-{}", self.step(), variant.name))
            .collect();
        let mut pending = Vec::new();
        for (variant, name) in made.iter().zip(&names) {
            let report = self.report(&art, &variant.name);
            pending.push(Pending {
                variant: variant.name.clone(),
                step: Step {
                    name,
                    model,
                    key: self.key(paths, model, variant, &rust)?,
                    outputs: vec![Output::new(label(paths, model, &report), report.clone())],
                    stamps: &stamps,
                },
                report,
            });
        }
        let reports = pending.iter().map(|p| (p.variant.clone(), p.report.clone())).collect();
        let jobs = self.jobs().min(pending.len());
        let all_started = Instant::now();
        let queue = Mutex::new(pending.iter());
        let printing = Mutex::new(());
        let progress = Progress::new(pending.len() as u64, &format!("{} checks of {model}", self.step()));
        let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                        let Some(check) = next else { break };
                        if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                            break;
                        }
                        let started = Instant::now();
                        let mut said = String::new();
                        let outcome = environment.runner(paths).run(&check.step, force, || {
                            said = self.spawn(paths, model, &check.variant, environment)?;
                            Ok(())
                        });
                        let _guard = printing.lock();
                        progress.println(&format!("==> {} {model} {}", self.step(), check.variant));
                        if !said.trim().is_empty() {
                            progress.println(said.trim_end_matches('\n'));
                        }
                        let seconds = started.elapsed().as_secs_f64();
                        match outcome {
                            Ok(outcome) => {
                                if let Some(line) = outcome.describe() {
                                    progress.println(line);
                                }
                                progress.println(&format!(
                                    "    {} {model} {}: done in {seconds:.1}s",
                                    self.step(),
                                    check.variant
                                ));
                                progress.advance(&format!("{} {model} {}", self.step(), check.variant));
                            }
                            Err(error) => {
                                progress.println(&format!(
                                    "    {} {model} {}: FAILED after {seconds:.1}s",
                                    self.step(),
                                    check.variant
                                ));
                                if let Ok(mut failure) = failure.lock() {
                                    failure.get_or_insert(error);
                                }
                            }
                        }
                    }
                });
            }
        });
        eprintln!(
            "    {} {model}: {} variants in {:.1}s, {jobs} at once",
            self.step(),
            pending.len(),
            all_started.elapsed().as_secs_f64()
        );
        match failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(error) => Err(error),
            None => Ok(reports),
        }
    }

    /// Runs the check's binary on one variant; returns what it printed (shown in one block,
    /// since variants may run side by side). A report with a missed gate is a result, not
    /// an error.
    fn spawn(self, paths: &Paths, model: &str, variant: &str, environment: &Environment) -> Result<String> {
        let mut command = Command::new(release_binary(paths, self.binary()));
        command.args(["--model", model, "--variant", variant]);
        match self {
            Self::Parity => drop(command.arg("--golden").arg(paths.golden(model))),
            Self::Costs => drop(command.arg("--costs")),
            Self::Measure => {}
        }
        let output = with_runtime_env(&mut command, paths, environment)
            .output()
            .with_context(|| format!("cannot run {}", self.binary()))?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        match (self, output.status.code()) {
            (_, Some(0)) | (Self::Parity, Some(GATE_NOT_MET)) => Ok(said),
            _ => bail!(
                "{} of {model} variant {variant} could not run ({}):\n{said}",
                self.step(),
                output.status
            ),
        }
    }
}

/// Whether the variant's parity report says it passed its gate.
fn passed_parity(paths: &Paths, model: &str, variant: &str) -> Result<bool> {
    let path = ParityReport::path(&paths.artifact(model), variant);
    let parity: ParityReport = select::read_json(&path, "cargo xtask parity")?;
    Ok(parity.passed)
}

/// The workspace's files every check's key reads (see [`rust_key`]).
pub const RUST_SOURCES: [&str; 11] = [
    "schema/Cargo.toml",
    "schema/src",
    "runtime/Cargo.toml",
    "runtime/src",
    "core/Cargo.toml",
    "core/src",
    "parity/Cargo.toml",
    "parity/src",
    "bench/Cargo.toml",
    "bench/src",
    "python/requirements.lock",
];

/// The Rust side of a check's key: the schema of the files the checks read and write,
/// the runtime, the inference core, the parity and bench crates (whose binaries the
/// checks are), the model's generated crate, the registry crates those binaries are
/// built against and their entries of the workspace manifest (`build_inputs`: not a
/// crate only the server or the xtask uses), the compiler, and the Python lock (it pins
/// onnxruntime, whose library the checks run on). Another model's crate, and the umbrella
/// crate that lists them, are left out: adding a model re-runs no other model's checks.
fn rust_key(paths: &Paths, model: &str) -> Result<Key> {
    let root = &paths.root;
    let mut key = KeyBuilder::new("rust");
    for part in RUST_SOURCES {
        key = key.path(part, &root.join(part))?;
    }
    let crate_dir = paths.generated().join(model);
    let (registry, names) = build_inputs::closure(&root.join("Cargo.lock"), &build_inputs::CHECK_CRATES)?;
    key = key
        .path("generated/model/Cargo.toml", &crate_dir.join("Cargo.toml"))?
        .path("generated/model/src", &crate_dir.join("src"))?
        .text("registry crates", &registry)
        .text(
            "workspace manifest",
            &build_inputs::manifest_for(&root.join("Cargo.toml"), &names)?,
        )
        .text("rustc", &rustc_version()?);
    Ok(key.finish())
}

fn rustc_version() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("cannot run {}", rustc.to_string_lossy()))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The CPU a measurement is made on: its model name and the cores this process may use.
fn cpu() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    format!("{model}, {cores} cores")
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
