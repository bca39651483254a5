//! Content hashes that let a step skip work whose inputs and outputs are unchanged.
//!
//! A step's stamp records the hash of its inputs (spec, code, data, upstream artifacts)
//! and of its outputs. It is skipped only when both still match, so an edited input
//! or a damaged output makes it run again.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Hash of files and folders (recursively, in sorted order, names relative to `root`).
/// A missing path hashes as missing, so a step whose output vanished runs again.
pub fn hash_paths(root: &Path, paths: &[PathBuf]) -> Result<String> {
    let mut hasher = Sha256::new();
    for path in paths {
        hash_tree(&mut hasher, root, path)?;
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Names no hash or cache entry includes: Python's bytecode, and scratch files.
pub fn ignored(name: &OsStr) -> bool {
    name == "__pycache__" || name.to_string_lossy().ends_with(".tmp")
}

/// Feeds `path` (a file, a folder, or nothing) into `hasher`, naming each file by its path
/// relative to `base`.
pub fn hash_tree(hasher: &mut Sha256, base: &Path, path: &Path) -> Result<()> {
    let shown = path.strip_prefix(base).unwrap_or(path).to_string_lossy().into_owned();
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| !p.file_name().is_some_and(ignored))
            .collect();
        entries.sort();
        for entry in entries {
            hash_tree(hasher, base, &entry)?;
        }
    } else if path.is_file() {
        let file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        hash_file(hasher, &shown, file).with_context(|| format!("cannot read {}", path.display()))?;
    } else {
        hasher.update(format!("missing:{shown}").as_bytes());
    }
    Ok(())
}

/// One file of a tree: its name under the tree's root (empty for a lone file), then its
/// content, read in chunks.
pub fn hash_file(hasher: &mut Sha256, shown: &str, content: impl Read) -> std::io::Result<()> {
    hasher.update(shown.as_bytes());
    hasher.update([0]);
    feed(hasher, content)?;
    hasher.update([0]);
    Ok(())
}

/// Feeds all of `content` to `hasher`, a MiB at a time; returns how many bytes it held.
pub fn feed(hasher: &mut Sha256, mut content: impl Read) -> std::io::Result<u64> {
    let mut buffer = vec![0; 1 << 20];
    let mut bytes = 0;
    loop {
        let read = content.read(&mut buffer)?;
        if read == 0 {
            return Ok(bytes);
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
}

/// A step's record: `<artifacts>/<model>/.stamps/<step>`.
pub struct Stamp {
    path: PathBuf,
    inputs: String,
}

impl Stamp {
    pub fn new(stamps_dir: &Path, step: &str, inputs: String) -> Self {
        Self {
            path: stamps_dir.join(step),
            inputs,
        }
    }

    /// True when the recorded inputs and outputs both match.
    pub fn is_fresh(&self, outputs: &str) -> bool {
        fs::read_to_string(&self.path).is_ok_and(|recorded| recorded == self.record(outputs))
    }

    pub fn write(&self, outputs: &str) -> Result<()> {
        if let Some(parent) = self.path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&self.path, self.record(outputs)).with_context(|| format!("cannot write {}", self.path.display()))
    }

    pub fn clear(&self) {
        let _ = fs::remove_file(&self.path);
    }

    fn record(&self, outputs: &str) -> String {
        format!("inputs {}\noutputs {outputs}\n", self.inputs)
    }
}
