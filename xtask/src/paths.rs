//! Where things are, from the workspace root.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// `$XDG_CACHE_HOME/modelcrate`, else `~/.cache/modelcrate`: what every clone on the
/// machine shares (the venv, uv, the artifact cache).
pub fn machine_cache() -> Result<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set: cannot place the machine's cache")?;
    Ok(cache.join("modelcrate"))
}

pub struct Paths {
    pub root: PathBuf,
    artifacts: PathBuf,
}

impl Paths {
    pub fn new() -> Self {
        // xtask/ sits directly under the workspace root.
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest.parent().unwrap_or(manifest).to_path_buf();
        let artifacts = std::env::var_os("MODELCRATE_ARTIFACTS")
            .filter(|v| !v.is_empty())
            .map_or_else(|| root.join("artifacts"), PathBuf::from);
        Self { root, artifacts }
    }

    /// A workspace at `root` with its artifacts in `root/artifacts` (for tests).
    #[cfg(test)]
    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            artifacts: root.join("artifacts"),
        }
    }

    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }

    /// `MODELCRATE_ARTIFACTS`, else `artifacts/` under the root.
    pub fn artifacts(&self) -> PathBuf {
        self.artifacts.clone()
    }

    pub fn artifact(&self, model: &str) -> PathBuf {
        self.artifacts().join(model)
    }

    pub fn onnx(&self, model: &str) -> PathBuf {
        self.artifact(model).join("onnx")
    }

    pub fn golden(&self, model: &str) -> PathBuf {
        self.root.join("golden").join(model)
    }

    pub fn generated(&self) -> PathBuf {
        self.root.join("generated")
    }

    /// A path relative to the root where it lies under it, for messages and spec JSON.
    pub fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root)
            .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
    }
}
