//! Loading the generated models the server serves, through the entries the umbrella
//! crate lists: the same path `modelcrate-parity` checks against PyTorch.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use modelcrate_models::MODELS;
use modelcrate_runtime::{BatchingOptions, Engine, LoadOptions, LoadedModel, ModelEntry};

/// The entry of a model by name.
pub fn entry(name: &str) -> Result<&'static ModelEntry> {
    MODELS.iter().find(|entry| entry.name == name).with_context(|| {
        let known: Vec<&str> = MODELS.iter().map(|e| e.name).collect();
        format!("no generated model named `{name}`; generated models are {known:?}")
    })
}

/// Loads one model from `<artifacts>/<name>/onnx`.
pub fn load(entry: &ModelEntry, artifacts: &Path, options: &LoadOptions) -> Result<LoadedModel> {
    let dir = artifacts.join(entry.name).join("onnx");
    (entry.load)(&dir, options).with_context(|| format!("cannot load model `{}` from {}", entry.name, dir.display()))
}

/// The models to serve: `names` checked against the generated models, or every generated
/// model when `names` is empty.
pub fn names(names: &[String]) -> Result<Vec<String>> {
    let names: Vec<String> = if names.is_empty() {
        MODELS.iter().map(|entry| entry.name.to_string()).collect()
    } else {
        names
            .iter()
            .map(|name| entry(name).map(|entry| entry.name.to_string()))
            .collect::<Result<_>>()?
    };
    if names.is_empty() {
        bail!("no models to serve: generated/models lists none (run `cargo xtask gen`)");
    }
    Ok(names)
}

/// Loads `names` (every generated model when empty).
pub fn load_all(
    names: &[String],
    artifacts: &Path,
    options: &LoadOptions,
) -> Result<BTreeMap<String, Arc<LoadedModel>>> {
    load_each(&self::names(names)?, artifacts, options)
}

/// Loads exactly `names` (none when empty).
pub fn load_each(
    names: &[String],
    artifacts: &Path,
    options: &LoadOptions,
) -> Result<BTreeMap<String, Arc<LoadedModel>>> {
    let entries: Vec<&ModelEntry> = names.iter().map(|name| entry(name)).collect::<Result<_>>()?;
    let mut loaded = BTreeMap::new();
    for entry in entries {
        let started = Instant::now();
        let model = load(entry, artifacts, options)?;
        let info = model.info();
        tracing::info!(
            model = entry.name,
            variant = %info.variant.name,
            file = %info.variant.file,
            selection = %info.variant.selection,
            seconds = started.elapsed().as_secs_f64(),
            "loaded"
        );
        loaded.insert(entry.name.to_string(), Arc::new(model));
    }
    Ok(loaded)
}

/// Starts a batching engine for each loaded model.
pub fn start_engines(
    models: BTreeMap<String, Arc<LoadedModel>>,
    batching: BatchingOptions,
) -> BTreeMap<String, Arc<Engine>> {
    models
        .into_iter()
        .map(|(name, model)| (name, Arc::new(Engine::start(model, batching))))
        .collect()
}
