//! Hot reload behind a parity gate.
//!
//! A model's folder (`<artifacts>/<name>/onnx`) may change while it serves: a retrained
//! export, another variant selected in `serving.json`. A reload — asked for with
//! `POST /admin/models/{name}/reload`, or started by the watcher when the folder's files
//! change and then stay unchanged for one more poll — loads the new files next to the
//! serving model, in three stages:
//!
//! 1. **load**: the folder's files checked against `checksums.json` (`integrity`: one cut
//!    short, corrupted or replaced is refused by name), then the variant `--variant` names
//!    (by default the one `serving.json` names), its signature checked against the
//!    generated crate's, as at start;
//! 2. **canary**: the gate of `modelcrate_parity` — the one the pipeline held that
//!    variant to — against the PyTorch outputs in `<golden>/<name>/reference.json` (a
//!    distilled student's in its own, `modelcrate_parity::reference_path`): every
//!    golden input and the test split, within the FP32 bounds or the INT8 gate;
//! 3. **warm-up**: a new engine, warmed up as at start.
//!
//! Only then does the new engine replace the old one, in one step. On any failure the old
//! model keeps serving, and the failure is in the logs, in `/models` (`last_reload`) and
//! in the metrics. Requests in flight finish on the engine they started on.
//!
//! A model still coming (`--wait-for-models`) has no engine to swap out: the watcher loads
//! it the same way, behind the same canary, once its folder holds a `serving.json` (what
//! `cargo xtask select` writes, with `checksums.json` after it) and has stopped changing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelcrate_core::{Engine, catalog};
use modelcrate_runtime::LoadOptions;

use modelcrate_core::engine_plan::EngineFlags;

use crate::admin::AdminToken;
use crate::integrity;
use crate::lifecycle::{self, Lifecycle, Phase};
use crate::metrics::Metrics;
use crate::served::{Attempt, Fingerprint, Outcome, Served, Trigger, now};

/// What a reload needs to load and check a model as the server loaded it at start.
#[derive(Debug, Clone)]
pub struct Reloader {
    /// Where each model's folder is (`<artifacts>/<name>/onnx`, its test split, …).
    pub artifacts: PathBuf,
    /// Where each model's golden outputs are (`<golden>/<name>/reference.json`).
    pub golden: PathBuf,
    /// How every model loads (its layout comes from its engine plan).
    pub load: LoadOptions,
    /// The operator's say over each model's engine.
    pub engines: EngineFlags,
    /// Bounds the warm-up of a new engine.
    pub warm_up_timeout: Duration,
    /// When set, the admin routes want `Authorization: Bearer <token>`; when not, they are off.
    pub admin_token: Option<AdminToken>,
}

/// Why a reload did not swap.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no model named `{0}` is served")]
    NotServed(String),
    #[error("a reload of model `{0}` is already running")]
    InProgress(String),
    /// Loading, the canary or the warm-up failed; the old model serves on (a coming one,
    /// generation 0, stays coming).
    #[error(
        "model `{model}` was not swapped: {stage} failed: {message}; {}",
        if *generation == 0 { "it is still coming".to_string() } else { format!("the serving model (generation {generation}) serves on") }
    )]
    Refused {
        model: String,
        stage: &'static str,
        message: String,
        /// The canary's failed checks.
        failures: Vec<String>,
        generation: u64,
    },
}

/// A reload that swapped.
#[derive(Debug, Clone)]
pub struct Swapped {
    pub generation: u64,
    pub attempt: Attempt,
    /// The canary's checks: (check, figure, bound).
    pub canary: Vec<(String, String, String)>,
}

/// A stage's failure: its name, its message, the canary's failed checks.
type StageError = (&'static str, String, Vec<String>);

impl Reloader {
    /// The folder whose files a model loads from.
    pub fn folder(&self, name: &str) -> PathBuf {
        self.artifacts.join(name).join("onnx")
    }

    /// Whether the pipeline has finished with a model's folder: `cargo xtask select` wrote
    /// its `serving.json`, the last file it gets. A model whose folder has none is still
    /// coming when the server waits for models.
    pub fn is_selected(&self, name: &str) -> bool {
        self.folder(name).join("serving.json").is_file()
    }

    /// Reloads `name` from its folder (blocking: seconds, mostly the canary). Refused at
    /// once when another reload of it runs.
    pub fn reload(
        &self,
        served: &Served,
        name: &str,
        trigger: Trigger,
        metrics: &Metrics,
    ) -> Result<Swapped, ReloadError> {
        let slot = served
            .slot(name)
            .ok_or_else(|| ReloadError::NotServed(name.to_string()))?;
        let Some(_reloading) = slot.try_reload() else {
            return Err(ReloadError::InProgress(name.to_string()));
        };
        // Read before the files are: a change while they load is seen at the next poll.
        let seen = Fingerprint::of(&self.folder(name)).unwrap_or_default();
        tracing::info!(model = name, trigger = trigger.as_str(), "reload: loading");
        let mut seconds = BTreeMap::new();
        let mut variant = None;
        let mut canary = Vec::new();
        let result = self.prepare(name, &mut seconds, &mut variant, &mut canary);
        let mut attempt = Attempt {
            trigger,
            outcome: Outcome::Refused,
            at: now(),
            seconds,
            variant,
            error: None,
            failures: Vec::new(),
        };
        let outcome = match result {
            Ok(engine) => {
                attempt.outcome = Outcome::Swapped;
                let generation = slot.swap(engine, seen, attempt.clone());
                tracing::info!(
                    model = name,
                    trigger = trigger.as_str(),
                    generation,
                    variant = attempt.variant.as_deref().unwrap_or(""),
                    seconds = ?attempt.seconds,
                    "reload: swapped in after its canary passed"
                );
                Ok(Swapped {
                    generation,
                    attempt: attempt.clone(),
                    canary,
                })
            }
            Err((stage, message, failures)) => {
                attempt.error = Some(format!("{stage}: {message}"));
                attempt.failures = failures.clone();
                slot.refused(seen, attempt.clone());
                let generation = slot.generation().number;
                tracing::error!(
                    model = name,
                    trigger = trigger.as_str(),
                    stage,
                    %message,
                    ?failures,
                    generation,
                    "reload: refused; the serving model serves on"
                );
                Err(ReloadError::Refused {
                    model: name.to_string(),
                    stage,
                    message,
                    failures,
                    generation,
                })
            }
        };
        metrics.reloaded(name, &attempt);
        outcome
    }

    /// Loads, checks and warms up a new engine for `name`, recording each stage's seconds.
    fn prepare(
        &self,
        name: &str,
        seconds: &mut BTreeMap<&'static str, f64>,
        variant: &mut Option<String>,
        canary: &mut Vec<(String, String, String)>,
    ) -> Result<Arc<Engine>, StageError> {
        let failed = |stage: &'static str| move |error: anyhow::Error| (stage, format!("{error:#}"), Vec::new());
        let started = Instant::now();
        let entry = crate::CATALOG.entry(name).map_err(failed("load"))?;
        integrity::check(name, &self.folder(name)).map_err(|error| failed("load")(error.into()))?;
        let plan = self
            .engines
            .plan(&self.folder(name), &self.load.variant)
            .map_err(failed("load"))?;
        let model = catalog::load(entry, &self.artifacts, &self.engines.load_options(&self.load, &plan))
            .map_err(failed("load"))?;
        seconds.insert("load", started.elapsed().as_secs_f64());
        *variant = Some(model.info().variant.name.clone());

        let started = Instant::now();
        let checked = modelcrate_parity::check(&model, name, &self.golden.join(name), &self.artifacts)
            .map_err(failed("canary"))?;
        seconds.insert("canary", started.elapsed().as_secs_f64());
        *canary = checked
            .rows
            .iter()
            .map(|row| (row.check.clone(), row.figure.clone(), row.bound.clone()))
            .collect();
        if !checked.passed() {
            let message = format!(
                "{} of {} checks of its {:?} gate failed against {}",
                checked.failures.len(),
                checked.rows.len(),
                checked.gate,
                modelcrate_parity::reference_path(model.info(), name, &self.golden.join(name), &self.artifacts)
                    .display()
            );
            return Err(("canary", message, checked.failures));
        }

        let started = Instant::now();
        let engine = Arc::new(Engine::start(model, plan.batching));
        lifecycle::warm_up_engine(name, &engine, self.warm_up_timeout).map_err(failed("warm_up"))?;
        seconds.insert("warm_up", started.elapsed().as_secs_f64());
        Ok(engine)
    }
}

/// Watches every served model's folder every `interval`: a folder whose files changed,
/// then stayed as they are for one more poll (an export writes for a while), is reloaded.
/// A coming model's folder is looked at only once it holds a `serving.json`. A refused
/// reload is not retried until the files change again. Runs while the server is ready;
/// returns when it drains.
pub async fn watch(
    served: Arc<Served>,
    reloader: Arc<Reloader>,
    metrics: Arc<Metrics>,
    lifecycle: Arc<Lifecycle>,
    interval: Duration,
) {
    let mut pending: BTreeMap<String, Fingerprint> = BTreeMap::new();
    loop {
        tokio::time::sleep(interval).await;
        match lifecycle.phase() {
            Phase::Leaving | Phase::Draining => return,
            Phase::WarmingUp => continue,
            Phase::Ready => {}
        }
        for name in served.names() {
            let Some(slot) = served.slot(name) else { continue };
            if slot.is_coming() && !reloader.is_selected(name) {
                continue;
            }
            let Ok(now) = Fingerprint::of(&reloader.folder(name)) else {
                // A folder being replaced may be missing for a moment.
                continue;
            };
            if now == slot.generation().seen {
                pending.remove(name);
                continue;
            }
            if pending.get(name) != Some(&now) {
                pending.insert(name.to_string(), now);
                continue;
            }
            pending.remove(name);
            tracing::info!(model = name, "watch: the model's files changed");
            let (served, reloader, metrics, name) = (
                Arc::clone(&served),
                Arc::clone(&reloader),
                Arc::clone(&metrics),
                name.to_string(),
            );
            // Its outcome is logged, recorded in `/models` and counted in the metrics.
            let _ =
                tokio::task::spawn_blocking(move || reloader.reload(&served, &name, Trigger::Watch, &metrics)).await;
        }
    }
}
