//! How the steps chain: setup, the Python steps (`python_step`), gen, the release build,
//! the per-variant checks (`variant_check`), select, report, serve, and the test command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use modelcrate_schema::{SERVING_FILE, Serving};

use crate::bench::{self, BenchArgs};
use crate::beside::{self, Beside};
use crate::cache::Cache;
use crate::paths::Paths;
use crate::python::Venv;
use crate::python_host::StepHost;
use crate::python_step::{self, PyStep};
use crate::spec::{self, ModelSpec};
use crate::step::{Runner, Tally};
use crate::variant_check::{costs_with, made_variants, measure_with, parity_with};
use crate::{
    Select, ServeArgs, bundle, card_figures, chaos, checksums, codegen, deploy_check, report, rolling, select, smoke,
    system,
};

/// Runs `work` under a heading, then says how long it took.
pub fn timed<T>(what: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("==> {what}");
    let started = Instant::now();
    let result = work();
    match &result {
        Ok(_) => eprintln!("    {what}: done in {:.1}s", started.elapsed().as_secs_f64()),
        Err(_) => eprintln!("    {what}: FAILED after {:.1}s", started.elapsed().as_secs_f64()),
    }
    result
}

/// What the steps run with: the venv, ONNX Runtime, the machine's artifact cache (`None`
/// when `MODELCRATE_CACHE=off`), and this run's count of steps run, restored and skipped.
pub struct Environment {
    pub venv: Venv,
    /// Runs the Python steps (started on the first one that must run).
    pub python: StepHost,
    pub ort_dylib: PathBuf,
    pub cache: Option<Cache>,
    pub tally: Tally,
}

impl Environment {
    pub fn runner<'a>(&'a self, paths: &'a Paths) -> Runner<'a> {
        Runner {
            root: &paths.root,
            cache: self.cache.as_ref(),
            tally: &self.tally,
        }
    }
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
        let cache = Cache::open()?;
        match &cache {
            Some(cache) => eprintln!("    artifact cache {}", cache.dir().display()),
            None => eprintln!("    artifact cache off (MODELCRATE_CACHE=off)"),
        }
        let python = StepHost::new(
            venv.python(),
            paths.root.clone(),
            paths.artifacts().join("step-host.log"),
        );
        Ok(Environment {
            venv,
            python,
            ort_dylib,
            cache,
            tally: Tally::default(),
        })
    })
}

pub fn selected(paths: &Paths, select: &Select) -> Result<Vec<ModelSpec>> {
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

/// Renders generated/ (or, with `check`, fails naming what is stale); returns how many
/// files it changed.
pub fn generate(paths: &Paths, check: bool) -> Result<usize> {
    let what = if check { "gen --check" } else { "gen" };
    timed(what, || {
        let specs = spec::all(&paths.models())?;
        let facts = specs
            .iter()
            .map(|(_, spec)| codegen::ModelFacts::read(paths, spec))
            .collect::<Result<Vec<_>>>()?;
        for model in &facts {
            if let Some(moved) = &model.kept_record {
                eprintln!(
                    "    {}: the card keeps the recorded run's figures; this run's differ within {} ({moved})",
                    model.name,
                    card_figures::TOLERANCE
                );
            }
        }
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
            Ok(0)
        } else {
            let written = codegen::write(&generated, &rendered)?;
            eprintln!("    {written} of {} files changed", rendered.len());
            Ok(written)
        }
    })
}

/// Whether `generated/<model>/` is what the model's export renders: then a server built
/// from the checked-in crates can serve it before the other models are exported.
fn crate_is_current(paths: &Paths, spec: &ModelSpec) -> Result<bool> {
    let facts = codegen::ModelFacts::read(paths, spec)?;
    let rendered = codegen::render(std::slice::from_ref(&facts), &paths.root.join("rustfmt.toml"))?;
    let own: std::collections::BTreeMap<PathBuf, String> = rendered
        .into_iter()
        .filter(|(path, _)| path.starts_with(&spec.name))
        .collect();
    // `stale_files` also names every file it was not given: the other models' crates.
    let stale = codegen::stale_files(&paths.generated(), &own)?;
    Ok(!stale.iter().any(|path| path.starts_with(&spec.name)))
}

/// The cargo this xtask was run by.
fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn cargo() -> Command {
    Command::new(cargo_program())
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

pub fn with_runtime_env<'c>(command: &'c mut Command, paths: &Paths, environment: &Environment) -> &'c mut Command {
    command
        .current_dir(&paths.root)
        .env("ORT_DYLIB_PATH", &environment.ort_dylib)
        .env("MODELCRATE_ARTIFACTS", paths.artifacts())
        // What a hot reload's canary holds a model to.
        .env("MODELCRATE_GOLDEN", paths.root.join("golden"))
}

/// `cargo xtask select`: chooses each model's serving variant, measures the costs of the
/// one chosen, and writes its engine policy with it.
pub fn select_serving(paths: &Paths, select: &Select) -> Result<()> {
    let environment = setup(paths, false)?;
    build(paths, Build::ServerBinaries)?;
    select_with(paths, select, &environment)
}

/// Chooses each model's serving variant, measures its costs (cached), and writes
/// `onnx/serving.json` with the engine policy they argue for. The second choice reads the
/// same figures, so it names the same variant; `serving.json` is written once, after the
/// timing, so a server watching the folder reloads once and never during it.
pub fn select_with(paths: &Paths, select: &Select, environment: &Environment) -> Result<()> {
    for spec in selected(paths, select)? {
        let (candidates, chosen, _) = choose_serving(paths, &spec)?;
        costs_with(paths, &spec.name, &candidates[chosen].name, select.force, environment)?;
        timed(&format!("select {}", spec.name), || write_serving(paths, &spec))?;
    }
    Ok(())
}

/// What is known of `spec`'s made variants, the index of the one its policy picks among
/// those that passed parity, by the figures measured here, and why.
fn choose_serving(paths: &Paths, spec: &ModelSpec) -> Result<(Vec<select::Candidate>, usize, String)> {
    let made = made_variants(paths, &spec.name)?;
    let candidates = select::candidates(paths, spec, &made)?;
    let (index, reason) = select::choose(spec.serve.policy, spec.serve.variant.as_deref(), &candidates)
        .with_context(|| format!("models/{}.toml, [serve]", spec.name))?;
    Ok((candidates, index, reason))
}

/// Writes `onnx/serving.json`: the chosen variant, why, its engine policy, and every
/// variant's figures and verdict; then `onnx/checksums.json` of what the server loads.
fn write_serving(paths: &Paths, spec: &ModelSpec) -> Result<()> {
    let (candidates, index, reason) = choose_serving(paths, spec)?;
    let chosen = &candidates[index];
    let serving = Serving {
        model: spec.name.clone(),
        policy: spec.serve.policy,
        variant: chosen.name.clone(),
        file: chosen.file.clone(),
        kind: chosen.kind,
        reason,
        engine: chosen.engine.clone(),
        candidates: select::considered(spec.serve.policy, index, &candidates),
    };
    let path = paths.onnx(&spec.name).join(SERVING_FILE);
    let text = serde_json::to_string_pretty(&serving)? + "\n";
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    // What the server loads, recorded for it to check before loading (and last: the
    // watcher loads a folder once it stops changing).
    checksums::write(&paths.onnx(&spec.name))?;
    eprintln!("    serves {}: {}", chosen.name, serving.reason);
    for line in chosen.engine.iter().flat_map(|engine| &engine.why) {
        eprintln!("        engine: {line}");
    }
    Ok(())
}

pub fn report(paths: &Paths) -> Result<()> {
    timed("report", || {
        let specs: Vec<ModelSpec> = spec::all(&paths.models())?.into_iter().map(|(_, spec)| spec).collect();
        report::write(paths, &specs)
    })
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

/// The main job, serving as early as it can: the server is built first from the
/// checked-in generated crates; the default model goes through its teacher's path (Python
/// steps, parity, measure, select) and the server starts with it, waiting for the others
/// (`--wait-for-models`), which its watcher loads behind their canary as each one's
/// `select` finishes. Distilled students come last: each model's student steps and checks
/// run once every model serves, and when `select` then picks a student's variant the
/// watcher swaps it in behind its canary. (A spec whose `[serve] variant` names a
/// student's variant has its student made before its first `select`.) No gate is
/// skipped: every variant still passes parity here before it is selected, and its canary
/// in the server. When a model's generated crate is not what its export renders (a spec
/// changed), the server that serves already serves on, the other models' checks wait for
/// gen and a rebuild, and the server restarts on the new code at the end.
pub fn all(paths: &Paths, select: &Select, serve: &ServeArgs) -> Result<()> {
    let started = Instant::now();
    let environment = setup(paths, false)?;
    build(paths, Build::ServerBinaries)?;
    let mut specs = selected(paths, select)?;
    specs.sort_by_key(|spec| spec.name != bench::DEFAULT_MODEL);
    let mut server = None;
    let mut early = true;
    for spec in &specs {
        python_step::run_model(paths, &environment, spec, &PyStep::TEACHER, select.force)?;
        if spec.serves_student_by_name() {
            python_step::run_model(paths, &environment, spec, &PyStep::STUDENT, select.force)?;
        }
        if early && !crate_is_current(paths, spec)? {
            eprintln!(
                "    generated/{} differs from what its export renders: serving waits for gen and a rebuild",
                spec.name
            );
            early = false;
        }
        if early {
            checks(paths, &environment, spec, select.force)?;
            if server.is_none() {
                server = Some(start_serving(paths, serve, &environment, &spec.name, started)?);
            }
        }
    }
    if early {
        eprintln!(
            "every model selected after {:.0}s (the server loads the last behind its canary); distilled students next",
            started.elapsed().as_secs_f64()
        );
    }
    for spec in specs
        .iter()
        .filter(|spec| spec.distill.is_some() && !spec.serves_student_by_name())
    {
        python_step::run_model(paths, &environment, spec, &PyStep::STUDENT, select.force)?;
        if early {
            checks(paths, &environment, spec, select.force)?;
        }
    }
    environment.python.stop();
    if generate(paths, false)? > 0 || !early {
        // The server links generated/: rebuilt, every model checked on the new code (what did
        // not change restores from the cache), and the server restarted on it.
        build(paths, Build::ServerBinaries)?;
        for spec in &specs {
            checks(paths, &environment, spec, select.force)?;
        }
        drop(server.take());
    }
    report(paths)?;
    eprintln!(
        "pipeline: {} in {:.0}s",
        environment.tally.summary(),
        started.elapsed().as_secs_f64()
    );
    match server {
        Some(server) => {
            eprintln!("every model is done; the server loads the last ones behind their canary");
            server.wait()
        }
        None => serve_with(paths, serve, &environment),
    }
}

/// A model's checks after its Python steps: parity, measure, select.
fn checks(paths: &Paths, environment: &Environment, spec: &ModelSpec, force: bool) -> Result<()> {
    let one = Select {
        model: Some(spec.name.clone()),
        force,
    };
    parity_with(paths, &one, environment)?;
    measure_with(paths, &one, environment)?;
    select_with(paths, &one, environment)
}

/// Starts the server in the background once `first` is ready, the other models coming;
/// returns when it answers `/health/ready`.
fn start_serving(
    paths: &Paths,
    args: &ServeArgs,
    environment: &Environment,
    first: &str,
    started: Instant,
) -> Result<smoke::Server> {
    eprintln!(
        "==> serve on http://{}:{} (the other models as they come)",
        args.host, args.port
    );
    let binary = release_binary(paths, "modelcrate-server");
    let mut command = Command::new(&binary);
    command
        .args([
            "--host",
            &args.host,
            "--port",
            &args.port.to_string(),
            "--wait-for-models",
        ])
        .args(&args.server_args);
    let child = with_runtime_env(&mut command, paths, environment)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut server = smoke::Server::new(child);
    let probe = if args.host == "0.0.0.0" {
        "127.0.0.1"
    } else {
        args.host.as_str()
    };
    server.wait_ready(probe, args.port, "/health/ready", std::time::Duration::from_secs(300))?;
    eprintln!(
        "first model serving after {:.0}s: {first} on http://{}:{}/models/{first}/predict",
        started.elapsed().as_secs_f64(),
        args.host,
        args.port
    );
    Ok(server)
}

/// The test command's pipeline: setup → train → export → optimize → golden (→ the
/// student's distill, export, optimize, golden) → gen --check, with `rust` (the lint and
/// the release build of every target) running beside the Python steps → parity → measure
/// → select → report.
fn pipeline_to_parity(paths: &Paths, select: &Select, mut rust: Beside) -> Result<Environment> {
    let started = Instant::now();
    let environment = setup(paths, false)?;
    for spec in selected(paths, select)? {
        rust.check()?;
        python_step::run_model(paths, &environment, &spec, &PyStep::IN_ORDER, select.force)?;
    }
    environment.python.stop();
    generate(paths, true)?;
    rust.finish()?;
    parity_with(paths, select, &environment)?;
    measure_with(paths, select, &environment)?;
    select_with(paths, select, &environment)?;
    report(paths)?;
    eprintln!(
        "pipeline: {} in {:.0}s",
        environment.tally.summary(),
        started.elapsed().as_secs_f64()
    );
    Ok(environment)
}

/// What a release build builds.
#[derive(Clone, Copy)]
pub enum Build {
    /// The binaries the pipeline runs: the server, parity, measure, the load generator.
    ServerBinaries,
    /// Every target of the workspace, tests and benches included.
    Everything,
}

pub fn build(paths: &Paths, targets: Build) -> Result<()> {
    timed("build (release)", || {
        run(
            cargo().current_dir(&paths.root).args(targets.cargo_args()),
            "cargo build",
        )
    })
}

impl Build {
    fn cargo_args(self) -> &'static [&'static str] {
        match self {
            Build::ServerBinaries => &[
                "build",
                "--release",
                "-p",
                "modelcrate-server",
                "-p",
                "modelcrate-parity",
                "-p",
                "modelcrate-bench",
                "--bins",
            ],
            Build::Everything => &["build", "--release", "--workspace", "--all-targets"],
        }
    }
}

/// [`cargo`] at the lowest CPU priority.
fn niced_cargo() -> Command {
    beside::niced(cargo_program())
}

pub fn test(paths: &Paths) -> Result<()> {
    let started = Instant::now();
    crate::system::enough_disk(&paths.root)?;
    let mut fmt = niced_cargo();
    fmt.current_dir(&paths.root).args(["fmt", "--all", "--check"]);
    let mut clippy = niced_cargo();
    clippy.current_dir(&paths.root).args([
        "clippy",
        "--release",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    let mut everything = niced_cargo();
    everything.current_dir(&paths.root).args(Build::Everything.cargo_args());
    let rust = Beside::start(
        "lint and build (release)",
        paths.artifacts().join("logs").join("lint-and-build.log"),
        vec![
            ("cargo fmt --check", fmt),
            ("cargo clippy", clippy),
            ("cargo build", everything),
        ],
    )?;
    // The Debian packages of the browser test and the rolling restart install beside the
    // pipeline (a fresh machine downloads them while it trains), waited for before the
    // smoke step needs them.
    let packages = std::thread::spawn(|| system::ensure(&[system::CHROMIUM, system::HAPROXY]));
    let environment = pipeline_to_parity(paths, &Select::default(), rust)?;
    packages
        .join()
        .map_err(|_| anyhow::anyhow!("the Debian packages' install panicked"))??;
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
    deploy_with(paths, &environment.ort_dylib)?;
    timed("chaos (short)", || {
        chaos::run(paths, &environment.ort_dylib, chaos::Length::SHORT)
    })?;
    timed("bench smoke test", || {
        bench::run(paths, &environment, &BenchArgs::smoke())
    })?;
    eprintln!("test: everything passed in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `cargo xtask chaos`: faults and load on the release server, after the main job.
pub fn chaos(paths: &Paths, long: bool) -> Result<()> {
    let environment = setup(paths, false)?;
    build(paths, Build::ServerBinaries)?;
    let length = if long {
        chaos::Length::LONG
    } else {
        chaos::Length::SHORT
    };
    timed("chaos", || chaos::run(paths, &environment.ort_dylib, length))
}

/// `cargo xtask deploy`: `deploy/` checked here, after the main job.
pub fn deploy(paths: &Paths) -> Result<()> {
    let environment = setup(paths, false)?;
    build(paths, Build::ServerBinaries)?;
    deploy_with(paths, &environment.ort_dylib)
}

/// The bundle, a rolling restart of two replicas serving it behind HAProxy, then the
/// manifests checked against the schemas and the memory the replicas were measured at.
fn deploy_with(paths: &Paths, ort_dylib: &Path) -> Result<()> {
    timed(
        "deploy: the bundle, a rolling restart behind HAProxy, the manifests",
        || {
            let (bundle, _) = bundle::write(paths)?;
            let peak_rss = rolling::run(paths, ort_dylib, &bundle)?;
            deploy_check::manifests(paths, peak_rss)
        },
    )
}

pub fn bench(paths: &Paths, args: &BenchArgs) -> Result<()> {
    if args.redraw {
        return bench::redraw(paths);
    }
    let environment = setup(paths, false)?;
    build(paths, Build::ServerBinaries)?;
    timed(&format!("bench {}", args.models().join(", ")), || {
        bench::run(paths, &environment, args)
    })
}

/// The release binary of `name` in the workspace's target dir.
pub fn release_binary(paths: &Paths, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| paths.root.join("target"), PathBuf::from);
    target.join("release").join(name)
}
