//! The rendered files against `generated/`: which differ, and writing them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Files in `generated/` that differ from `rendered`, or that nothing renders any more.
pub fn stale_files(generated: &Path, rendered: &BTreeMap<PathBuf, String>) -> Result<Vec<PathBuf>> {
    let mut stale: Vec<PathBuf> = rendered
        .iter()
        .filter(|(path, contents)| std::fs::read_to_string(generated.join(path)).ok().as_ref() != Some(*contents))
        .map(|(path, _)| path.clone())
        .collect();
    for path in existing_files(generated) {
        if !rendered.contains_key(&path) {
            stale.push(path);
        }
    }
    Ok(stale)
}

fn existing_files(generated: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![generated.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(generated) {
                found.push(relative.to_path_buf());
            }
        }
    }
    found
}

/// Writes `rendered` into `generated/` and removes files nothing renders any more.
pub fn write(generated: &Path, rendered: &BTreeMap<PathBuf, String>) -> Result<usize> {
    let stale = stale_files(generated, rendered)?;
    for path in &stale {
        let full = generated.join(path);
        match rendered.get(path) {
            Some(contents) => {
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&full, contents).with_context(|| format!("cannot write {}", full.display()))?;
            }
            None => std::fs::remove_file(&full).with_context(|| format!("cannot remove {}", full.display()))?,
        }
    }
    Ok(stale.len())
}
