//! The bench's physical limit: this CPU's matrix-product peak as ONNX Runtime reaches it
//! (`python/modelcrate/gemm_peak.py`), and the work the model a peer serves does per
//! sequence of a workload (`work.rs`, at the workload's own token counts), so that each
//! peer's rate reads as a fraction of what the CPU can do at all.

use std::process::Command;

use anyhow::{Context, Result, bail};
use modelcrate_schema::TokenMoments;
use serde_json::Value;

use crate::paths::Paths;
use crate::pipeline::Environment;
use crate::work::Encoder;

/// Times ONNX Runtime's INT8 and FP32 matrix products on `threads` threads for `seconds`
/// each; the JSON `gemm_peak.py` prints (`int8.gop_per_second`, `fp32.gop_per_second`, …).
pub fn measure_peak(paths: &Paths, environment: &Environment, threads: usize, seconds: f64) -> Result<Value> {
    let output = Command::new(environment.venv.python())
        .args(["-m", "modelcrate.gemm_peak", "--threads", &threads.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .env("PYTHONPATH", paths.root.join("python"))
        .output()
        .context("cannot run python -m modelcrate.gemm_peak")?;
    if !output.status.success() {
        bail!(
            "modelcrate.gemm_peak failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("modelcrate.gemm_peak printed no JSON")
}

/// Billions of operations one sequence of the workload costs the model `config` describes
/// with `kept_layers` (a student's) — `tokens` is the ceiling's mean and mean square of
/// the workload's token counts; `None` when the config says no encoder's sizes.
pub fn gop_per_sequence(config: &Value, kept_layers: Option<u64>, tokens: TokenMoments) -> Option<f64> {
    let encoder = Encoder::of(config, kept_layers)?;
    Some(encoder.gop_per_sequence(tokens.mean, tokens.mean_square))
}

/// The fraction of the CPU's INT8 peak a rate of `per_second` sequences of `gop` each
/// reaches.
pub fn fraction_of_peak(per_second: f64, gop: f64, peak: &Value) -> Option<f64> {
    let peak = peak["int8"]["gop_per_second"].as_f64().filter(|p| *p > 0.0)?;
    Some(per_second * gop / peak)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_peers_rate_is_read_against_the_peak_by_the_work_of_what_it_serves() {
        let config = json!({"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6});
        let tokens = TokenMoments {
            mean: 128.0,
            mean_square: 128.0 * 128.0,
        };
        let teacher = gop_per_sequence(&config, None, tokens).unwrap();
        let student = gop_per_sequence(&config, Some(3), tokens).unwrap();
        assert!((teacher - 2.868_903_936).abs() < 1e-9);
        let peak = json!({"int8": {"gop_per_second": 400.0}});
        // 100 sequences/s of the teacher's 2.87 GOP: 287 of 400 GOP/s.
        let fraction = fraction_of_peak(100.0, teacher, &peak).unwrap();
        assert!((fraction - 0.717_225_984).abs() < 1e-9, "{fraction}");
        assert!((fraction_of_peak(100.0, student, &peak).unwrap() * 2.0 - fraction).abs() < 1e-12);
        assert_eq!(gop_per_sequence(&json!({"num_classes": 10}), None, tokens), None);
        assert_eq!(fraction_of_peak(100.0, teacher, &json!({})), None);
    }
}
