//! The models being served, each in a slot whose engine a hot reload replaces (see
//! `reload`). A slot may start empty, its model still coming: the server was started with
//! `--wait-for-models` before that model's pipeline finished, and the watcher fills the
//! slot, behind the same canary as a reload, once the model's `serving.json` appears.
//!
//! A request takes its model's current engine (an `Arc` clone under a read lock) and
//! keeps it to its end: requests in flight finish on the model they started on, new ones
//! go to the engine swapped in. A swapped-out engine stops once the last request holding
//! it is answered, and its model is freed then.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use modelcrate_core::Engine;
use serde::Serialize;
use serde_json::Value;

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `POST /admin/models/{name}/reload`.
    Admin,
    /// The artifact watcher saw the model's files change.
    Watch,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Watch => "watch",
        }
    }
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The new model passed its canary and serves.
    Swapped,
    /// It failed to load, its canary or its warm-up: the old model keeps serving.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Swapped => "swapped",
            Self::Refused => "refused",
        }
    }
}

/// One reload attempt, as `/models` reports the last one.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub trigger: Trigger,
    pub outcome: Outcome,
    /// When it ended, in seconds since the Unix epoch.
    pub at: f64,
    /// Seconds each stage took: `load`, `canary`, `warm_up` (those reached).
    pub seconds: BTreeMap<&'static str, f64>,
    /// The variant loaded (`int8`, `fp32`, …), when loading got that far.
    pub variant: Option<String>,
    /// Why it was refused: the stage and what failed.
    pub error: Option<String>,
    /// The canary's failed checks, each with its figure and bound.
    pub failures: Vec<String>,
}

/// The files of a model's folder as last seen: name, length, modification time and, for
/// a symbolic link, its target. Any change to the folder changes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(OsString, u64, Option<SystemTime>, Option<PathBuf>)>);

impl Fingerprint {
    /// Reads `dir`'s entries (following links for their length and time).
    pub fn of(dir: &Path) -> std::io::Result<Self> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let metadata = std::fs::metadata(&path)?;
            let target = std::fs::read_link(&path).ok();
            files.push((entry.file_name(), metadata.len(), metadata.modified().ok(), target));
        }
        files.sort();
        Ok(Self(files))
    }
}

/// A served model's state beside its engine.
#[derive(Debug, Clone)]
pub struct Generation {
    /// 1 for the model loaded at start, one more for each swap; 0 while it is coming.
    pub number: u64,
    /// When this generation started serving, in seconds since the Unix epoch.
    pub since: f64,
    /// The folder as it was when this generation's files were read, or as a refused
    /// reload last found it: the watcher reloads when the folder differs.
    pub seen: Fingerprint,
    pub last_attempt: Option<Attempt>,
}

/// One served model, or one still coming (no engine yet).
pub struct Slot {
    engine: RwLock<Option<Arc<Engine>>>,
    generation: Mutex<Generation>,
    /// Held for the length of a reload: one at a time per model.
    reloading: Mutex<()>,
}

fn seconds_since_epoch(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

pub fn now() -> f64 {
    seconds_since_epoch(SystemTime::now())
}

impl Slot {
    /// A slot serving `engine`, or coming when it is `None`.
    fn new(engine: Option<Arc<Engine>>, seen: Fingerprint) -> Self {
        Self {
            generation: Mutex::new(Generation {
                number: u64::from(engine.is_some()),
                since: now(),
                seen,
                last_attempt: None,
            }),
            engine: RwLock::new(engine),
            reloading: Mutex::new(()),
        }
    }

    /// The engine serving now; `None` while the model is coming.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.engine.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn is_coming(&self) -> bool {
        self.engine.read().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    pub fn generation(&self) -> Generation {
        self.generation_lock().clone()
    }

    fn generation_lock(&self) -> MutexGuard<'_, Generation> {
        self.generation.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The right to reload this model, or `None` while another reload runs.
    pub fn try_reload(&self) -> Option<MutexGuard<'_, ()>> {
        match self.reloading.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Puts `engine` in service in one step; returns the new generation's number. The
    /// old engine, if any, is dropped here unless requests still hold it.
    pub fn swap(&self, engine: Arc<Engine>, seen: Fingerprint, attempt: Attempt) -> u64 {
        let old = self
            .engine
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(engine);
        drop(old);
        let mut generation = self.generation_lock();
        generation.number += 1;
        generation.since = attempt.at;
        generation.seen = seen;
        generation.last_attempt = Some(attempt);
        generation.number
    }

    /// Records a refused reload; the engine serving stays.
    pub fn refused(&self, seen: Fingerprint, attempt: Attempt) {
        let mut generation = self.generation_lock();
        generation.seen = seen;
        generation.last_attempt = Some(attempt);
    }
}

/// Every served model, by name.
pub struct Served {
    slots: BTreeMap<String, Slot>,
}

impl Served {
    /// `engines` as they start serving, and the models still `coming`; `seen` is each
    /// model's folder as read when it loaded (or was found not ready).
    pub fn new(
        engines: BTreeMap<String, Arc<Engine>>,
        coming: &[String],
        mut seen: BTreeMap<String, Fingerprint>,
    ) -> Self {
        let serving = engines.into_iter().map(|(name, engine)| (name, Some(engine)));
        let coming = coming.iter().map(|name| (name.clone(), None));
        let slots = serving
            .chain(coming)
            .map(|(name, engine)| {
                let fingerprint = seen.remove(&name).unwrap_or_default();
                (name, Slot::new(engine, fingerprint))
            })
            .collect();
        Self { slots }
    }

    /// How many models are served or coming.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.slots.keys().map(String::as_str).collect()
    }

    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.get(name)
    }

    pub fn slots(&self) -> impl Iterator<Item = (&str, &Slot)> {
        self.slots.iter().map(|(name, slot)| (name.as_str(), slot))
    }

    /// The engine serving `name` now (`None` for a model not served, or still coming).
    pub fn engine(&self, name: &str) -> Option<Arc<Engine>> {
        self.slots.get(name).and_then(Slot::engine)
    }

    /// Every model's engine serving now, by name; the coming ones have none yet.
    pub fn engines(&self) -> Vec<Arc<Engine>> {
        self.slots.values().filter_map(Slot::engine).collect()
    }

    /// The models still coming.
    pub fn coming(&self) -> Vec<&str> {
        self.slots()
            .filter(|(_, slot)| slot.is_coming())
            .map(|(name, _)| name)
            .collect()
    }

    /// What `/models` says of a model's generations and reloads.
    pub fn describe(&self, name: &str) -> Value {
        let Some(slot) = self.slots.get(name) else {
            return Value::Null;
        };
        let generation = slot.generation();
        serde_json::json!({
            "generation": generation.number,
            "serving_since": generation.since,
            "last_reload": generation.last_attempt,
        })
    }
}
