//! `onnx/checksums.json`: the size and SHA-256 of every file the server loads of a model
//! (its serving variant's and every file that is not a variant: tokenizer, configs,
//! signatures, a SetFit head; what the bundle carries, `bundle::kept_files`), written by
//! `select` right after `serving.json`. The server checks them before it loads a model,
//! at start and at every reload (`server/src/integrity.rs`, which reads this format), so
//! a file cut short, corrupted or replaced on disk is refused by name instead of served.
//! `serving.json` itself is left out: it is a choice an operator may edit.
//!
//! The format: `{"files": {"model.int8.onnx": {"bytes": 23456789, "sha256": "…"}, …}}`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{bundle, stamp};

/// The file's name in each model's ONNX folder.
pub const FILE: &str = "checksums.json";

/// Records the checksums of the files the server loads from `onnx`; returns how many.
pub fn write(onnx: &Path) -> Result<usize> {
    let mut files = BTreeMap::new();
    for name in bundle::kept_files(onnx)? {
        if name == modelcrate_schema::SERVING_FILE || name == FILE {
            continue;
        }
        let path = onnx.join(&name);
        let (bytes, sha256) = digest(&path)?;
        files.insert(name, json!({"bytes": bytes, "sha256": sha256}));
    }
    let count = files.len();
    let text = serde_json::to_string_pretty(&json!({"files": files}))? + "\n";
    // Written aside and renamed: a reader never sees half a file.
    let partial = onnx.join(format!(".{FILE}.partial"));
    std::fs::write(&partial, text).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, onnx.join(FILE))
        .with_context(|| format!("cannot write {}", onnx.join(FILE).display()))?;
    Ok(count)
}

/// `path`'s size and SHA-256 (lower-case hex).
pub fn digest(path: &Path) -> Result<(u64, String)> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let bytes = stamp::feed(&mut hasher, file).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((bytes, format!("{:x}", hasher.finalize())))
}
