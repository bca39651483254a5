//! The models a binary can load, without the core naming any: the entries the umbrella
//! crate (`modelcrate_models::MODELS`) lists, each a generated crate's loader. The server,
//! the parity gate and the bench all load models through here, so that what is checked
//! and timed is what serves.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use modelcrate_runtime::{LoadOptions, ModelEntry, TaskModel};

use crate::engine::Engine;
use crate::engine_plan::EngineFlags;

/// The generated models a binary links.
#[derive(Clone, Copy)]
pub struct Catalog {
    entries: &'static [ModelEntry],
}

impl Catalog {
    pub const fn new(entries: &'static [ModelEntry]) -> Self {
        Self { entries }
    }

    /// The entry of a model by name.
    pub fn entry(&self, name: &str) -> Result<&'static ModelEntry> {
        self.entries.iter().find(|entry| entry.name == name).with_context(|| {
            let known: Vec<&str> = self.entries.iter().map(|e| e.name).collect();
            format!("no generated model named `{name}`; generated models are {known:?}")
        })
    }

    /// The models to serve: `names` checked against the catalog, or every model in it
    /// when `names` is empty.
    pub fn names(&self, names: &[String]) -> Result<Vec<String>> {
        let names: Vec<String> = if names.is_empty() {
            self.entries.iter().map(|entry| entry.name.to_string()).collect()
        } else {
            names
                .iter()
                .map(|name| self.entry(name).map(|entry| entry.name.to_string()))
                .collect::<Result<_>>()?
        };
        if names.is_empty() {
            bail!("no models to serve: generated/models lists none (run `cargo xtask gen`)");
        }
        Ok(names)
    }

    /// Loads and starts exactly `names` (none when empty).
    pub fn start_each(
        &self,
        names: &[String],
        artifacts: &Path,
        options: &LoadOptions,
        flags: &EngineFlags,
    ) -> Result<BTreeMap<String, Arc<Engine>>> {
        let entries: Vec<&ModelEntry> = names.iter().map(|name| self.entry(name)).collect::<Result<_>>()?;
        entries
            .into_iter()
            .map(|entry| {
                Ok((
                    entry.name.to_string(),
                    Arc::new(start(entry, artifacts, options, flags)?),
                ))
            })
            .collect()
    }
}

/// Loads one model from `<artifacts>/<name>/onnx`.
pub fn load(entry: &ModelEntry, artifacts: &Path, options: &LoadOptions) -> Result<Arc<dyn TaskModel>> {
    let dir = artifacts.join(entry.name).join("onnx");
    let model = (entry.load)(&dir, options)
        .with_context(|| format!("cannot load model `{}` from {}", entry.name, dir.display()))?;
    Ok(Arc::from(model))
}

/// Loads `entry` laid out by its engine plan (its measured policy under the operator's
/// flags) and starts its engine.
pub fn start(entry: &ModelEntry, artifacts: &Path, options: &LoadOptions, flags: &EngineFlags) -> Result<Engine> {
    let started = Instant::now();
    let dir = artifacts.join(entry.name).join("onnx");
    let plan = flags.plan(&dir, &options.variant)?;
    let model = load(entry, artifacts, &flags.load_options(options, &plan))?;
    let info = model.info();
    tracing::info!(
        model = entry.name,
        variant = %info.variant.name,
        file = %info.variant.file,
        selection = %info.variant.selection,
        layout = %plan.layout.describe(),
        merge = %plan.batching.merge.describe(),
        seconds = started.elapsed().as_secs_f64(),
        "loaded"
    );
    Ok(Engine::start(model, plan.batching))
}
