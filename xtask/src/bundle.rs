//! `cargo xtask bundle`: what the deployable image carries of the pipeline's outputs,
//! gathered in `artifacts/deploy/`: for each model, its serving variant's files alone
//! (`serving.json` names it; a variant's files are its ONNX file and the files named
//! `<prefix>_<file>` beside it, an image–text model's text tower) with every file that is
//! not a variant (tokenizer, configs, signatures, a SetFit head), and its golden outputs
//! (a hot reload's canary). `deploy/Dockerfile` copies it; the test command serves from it
//! behind a load balancer (`rolling`), which proves it holds all a model needs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use modelcrate_schema::{Serving, Variants};

use crate::paths::Paths;
use crate::spec;

/// The bundle's folder.
pub fn folder(paths: &Paths) -> PathBuf {
    paths.artifacts().join("deploy")
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not what `cargo xtask all` writes", path.display()))
}

/// Whether `file` belongs to the variant whose ONNX file is `variant_file`.
fn of_variant(file: &str, variant_file: &str) -> bool {
    file == variant_file
        || file
            .strip_suffix(variant_file)
            .is_some_and(|prefix| prefix.ends_with('_'))
}

/// The files of one model's ONNX folder the image carries.
pub fn kept_files(onnx: &Path) -> Result<Vec<String>> {
    let serving: Serving = read(&onnx.join(modelcrate_schema::SERVING_FILE))
        .with_context(|| format!("{} has no serving variant: run `cargo xtask all` first", onnx.display()))?;
    let mut others: Vec<String> = Vec::new();
    for listing in [
        modelcrate_schema::VARIANTS_FILE,
        modelcrate_schema::STUDENT_VARIANTS_FILE,
    ] {
        let path = onnx.join(listing);
        if path.is_file() {
            let variants: Variants = read(&path)?;
            others.extend(
                variants
                    .made()
                    .filter(|variant| variant.name != serving.variant)
                    .filter_map(|variant| variant.file.clone()),
            );
        }
    }
    let mut kept = Vec::new();
    for entry in std::fs::read_dir(onnx).with_context(|| format!("cannot list {}", onnx.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let other_variant = others.iter().any(|other| of_variant(&name, other)) && !of_variant(&name, &serving.file);
        if !other_variant {
            kept.push(name);
        }
    }
    kept.sort();
    if !kept.contains(&serving.file) {
        bail!(
            "{} names {} to serve, which is not in the folder",
            onnx.join(modelcrate_schema::SERVING_FILE).display(),
            serving.file
        );
    }
    Ok(kept)
}

/// Copies the files of `onnx` the image carries ([`kept_files`]) into `target`; returns
/// their size in bytes.
pub fn copy_kept(onnx: &Path, target: &Path) -> Result<u64> {
    let mut bytes = 0;
    for file in kept_files(onnx)? {
        bytes += std::fs::copy(onnx.join(&file), target.join(&file))
            .with_context(|| format!("cannot copy {} to {}", onnx.join(&file).display(), target.display()))?;
    }
    Ok(bytes)
}

/// Writes the bundle; returns its folder and its size in bytes.
pub fn write(paths: &Paths) -> Result<(PathBuf, u64)> {
    let out = folder(paths);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("cannot remove {}", out.display()))?;
    }
    let mut bytes = 0;
    for (_, spec) in spec::all(&paths.models())? {
        let name = spec.name;
        let onnx = paths.onnx(&name);
        let target = out.join("models").join(&name).join("onnx");
        std::fs::create_dir_all(&target)?;
        bytes += copy_kept(&onnx, &target)?;
        let golden = paths.golden(&name).join("reference.json");
        let target = out.join("golden").join(&name);
        std::fs::create_dir_all(&target)?;
        bytes += std::fs::copy(&golden, target.join("reference.json"))
            .with_context(|| format!("cannot copy {}", golden.display()))?;
    }
    eprintln!(
        "    bundle: {} ({:.0} MB: each model's serving variant, its tokenizer and configs, its golden outputs)",
        paths.relative(&out).display(),
        bytes as f64 / 1e6
    );
    Ok((out, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    #[test]
    fn only_the_serving_variants_files_and_the_rest_of_the_folder_are_kept() {
        let dir = ScratchDir::new("bundle");
        let onnx = dir.path();
        for file in [
            "model.onnx",
            "model.O2.onnx",
            "text_model.O2.onnx",
            "model.int8.onnx",
            "text_model.int8.onnx",
            "head.onnx",
            "tokenizer.json",
            "config.json",
        ] {
            std::fs::write(onnx.join(file), "x").unwrap();
        }
        std::fs::write(
            onnx.join("serving.json"),
            r#"{"model": "m", "policy": "fastest", "variant": "int8", "file": "model.int8.onnx", "kind": "int8", "reason": "fastest"}"#,
        )
        .unwrap();
        let made =
            |name: &str, file: &str| format!(r#"{{"name": "{name}", "kind": "fp32", "made": true, "file": "{file}"}}"#);
        std::fs::write(
            onnx.join("variants.json"),
            format!(
                r#"{{"model": "m", "variants": [{}, {}, {}]}}"#,
                made("fp32", "model.onnx"),
                made("O2", "model.O2.onnx"),
                made("int8", "model.int8.onnx")
            ),
        )
        .unwrap();
        let kept = kept_files(onnx).unwrap();
        assert_eq!(
            kept,
            [
                "config.json",
                "head.onnx",
                "model.int8.onnx",
                "serving.json",
                "text_model.int8.onnx",
                "tokenizer.json",
                "variants.json"
            ]
        );
    }
}
