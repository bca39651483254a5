//! What `modelcrate-load` prints for `cargo xtask bench`: a server loaded over HTTP
//! ([`LoadReport`]), or ONNX Runtime alone on the workload's texts ([`CeilingReport`]).

use serde::{Deserialize, Deserializer, Serialize};

use crate::measure::{Machine, SessionLayout};

/// A server under load: closed loop at each concurrency, then open loop at each rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub url: String,
    /// The file of the texts sent (JSON lines).
    pub corpus: String,
    pub texts: usize,
    pub levels: Vec<ClosedLevel>,
    pub open_loop: Vec<OpenLevel>,
}

/// `concurrency` clients, each sending its next request when answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedLevel {
    pub concurrency: usize,
    #[serde(flatten)]
    pub seen: LevelFigures,
}

/// Requests sent at `offered_per_second` whatever the answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenLevel {
    pub offered_per_second: f64,
    /// Arrivals not sent: the generator fell behind its schedule.
    pub dropped: usize,
    #[serde(flatten)]
    pub seen: LevelFigures,
}

/// What a level saw: answers, refusals, errors, throughput and latency quantiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelFigures {
    pub seconds: f64,
    /// Answered with 200.
    pub requests: usize,
    /// Answered 429 (load shed).
    pub shed: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub requests_per_second: f64,
    /// NaN (`null` in JSON) when nothing was answered: a quantile of no latencies.
    #[serde(deserialize_with = "nan_if_null")]
    pub p50_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p90_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p99_ms: f64,
}

/// A quantile of no samples is NaN, which JSON writes as `null`: `null` reads back as NaN
/// (a level where a peer answered nothing must not make its report unreadable).
fn nan_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// ONNX Runtime alone on the workload's texts, tokenized beforehand: what no server
/// can beat on these sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CeilingReport {
    pub model: String,
    pub variant: String,
    pub layout: SessionLayout,
    pub inputs: String,
    pub tokens: TokenMoments,
    pub batches: Vec<CeilingBatch>,
    pub best_sequences_per_second: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub single_inference_p50_ms: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub single_tokenization_p50_ms: f64,
    pub machine: Machine,
}

/// The mean and mean square of the workload's token counts (what a sequence's work
/// grows with).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenMoments {
    pub mean: f64,
    pub mean_square: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CeilingBatch {
    pub batch_size: usize,
    pub sequences: usize,
    pub sequences_per_second: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_reads_flat_as_the_bench_tables_read_it() {
        let json = r#"{"concurrency": 8, "seconds": 10.0, "requests": 9000, "shed": 0, "errors": 0,
            "first_error": null, "requests_per_second": 900.0, "p50_ms": 8.1, "p90_ms": 9.0, "p99_ms": 12.5}"#;
        let level: ClosedLevel = serde_json::from_str(json).unwrap();
        assert_eq!((level.concurrency, level.seen.requests), (8, 9000));
        let again = serde_json::to_value(&level).unwrap();
        assert_eq!(again["requests_per_second"], 900.0);
        assert!(again.get("seen").is_none());
    }
}
