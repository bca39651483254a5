//! `bench/<variant>.json`: one variant timed on this machine by `modelcrate-measure`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `bench/<variant>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureReport {
    pub model: String,
    pub variant: String,
    pub file: String,
    pub size_bytes: u64,
    pub layout: SessionLayout,
    /// Session creation, including ONNX Runtime's own graph optimization at load.
    pub load_seconds: f64,
    /// What was timed: the test split, how many texts or images, how prepared.
    pub inputs: String,
    /// One input per request.
    pub latency: Latency,
    pub throughput: Throughput,
    pub rss_bytes: Rss,
    pub machine: Machine,
}

impl MeasureReport {
    /// Where `variant`'s report is in a model's artifact folder: `bench/<variant>.json`.
    pub fn path(model_dir: &Path, variant: &str) -> PathBuf {
        model_dir.join("bench").join(format!("{variant}.json"))
    }
}

/// The sessions a measurement ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLayout {
    pub sessions: usize,
    pub intra_threads: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub requests: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub batch_size: usize,
    pub sequences: usize,
    pub seconds: f64,
    pub sequences_per_second: f64,
}

/// Resident memory, where `/proc` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rss {
    pub after_warmup: Option<u64>,
    pub peak: Option<u64>,
}

/// The machine figures belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub avx2: bool,
    pub avx512_vnni: bool,
}
