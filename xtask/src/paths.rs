//! Where things are, from the workspace root.

use std::path::{Path, PathBuf};

pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn new() -> Self {
        // xtask/ sits directly under the workspace root.
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        Self {
            root: manifest.parent().unwrap_or(manifest).to_path_buf(),
        }
    }

    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }

    pub fn artifacts(&self) -> PathBuf {
        std::env::var_os("MODELCRATE_ARTIFACTS")
            .filter(|v| !v.is_empty())
            .map_or_else(|| self.root.join("artifacts"), PathBuf::from)
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
