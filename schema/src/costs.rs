//! `bench/<variant>.costs.json`: a variant's measured costs by length and merge size in
//! both layouts, and the engine policy they argue for.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::measure::Machine;
use crate::serving::EnginePolicy;

/// `bench/<variant>.costs.json`, as `modelcrate-measure --costs` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostsReport {
    pub model: String,
    pub variant: String,
    pub costs: Costs,
    /// `None` when the costs hold no single-text point to argue from.
    pub engine: Option<EnginePolicy>,
    pub machine: Machine,
}

impl CostsReport {
    /// Where `variant`'s costs are in a model's artifact folder: `bench/<variant>.costs.json`.
    pub fn path(model_dir: &Path, variant: &str) -> PathBuf {
        model_dir.join("bench").join(format!("{variant}.costs.json"))
    }
}

/// One point of a variant's measured costs: runs of `rows` texts padded to `tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostPoint {
    pub tokens: usize,
    pub rows: usize,
    /// One run on the session of every core, alone on the machine: seconds per run.
    pub wide_seconds: f64,
    /// One single-thread session per core, all running at once: texts per second in
    /// all (what the machine serves under load in that layout).
    pub narrow_texts_per_second: f64,
}

impl CostPoint {
    /// Texts per second on the wide session (runs one after another).
    pub fn wide_texts_per_second(&self) -> f64 {
        self.rows as f64 / self.wide_seconds
    }

    /// Seconds one narrow run takes while the other cores run theirs.
    pub fn narrow_seconds(&self, cores: usize) -> f64 {
        (self.rows * cores.max(1)) as f64 / self.narrow_texts_per_second
    }
}

/// A variant's costs over lengths and batch sizes, in both layouts, on `cores` cores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    pub cores: usize,
    pub points: Vec<CostPoint>,
}

impl Costs {
    /// The point of runs of `rows` texts at `tokens`, if measured.
    pub fn at(&self, tokens: usize, rows: usize) -> Option<&CostPoint> {
        self.points.iter().find(|p| p.tokens == tokens && p.rows == rows)
    }

    /// The measured lengths, ascending.
    pub fn lengths(&self) -> Vec<usize> {
        let mut lengths: Vec<usize> = self.points.iter().map(|p| p.tokens).collect();
        lengths.sort_unstable();
        lengths.dedup();
        lengths
    }
}
