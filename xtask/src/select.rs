//! Choosing the variant that serves, by measurement: among the variants that passed their
//! parity gate (`artifacts/<name>/parity/<variant>.json`), the one the spec's policy
//! prefers by the figures `modelcrate-measure` wrote (`artifacts/<name>/bench/`). The
//! choice is written to `artifacts/<name>/onnx/serving.json`, which the runtime reads.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use modelcrate_schema::{
    CostsReport, EnginePolicy, FP32, MeasureReport, ParityReport, Policy, TestMetric, VariantKind,
};

use crate::paths::Paths;
use crate::spec::ModelSpec;
use crate::variant_check::Made;
use crate::work::{self, Encoder};

/// Variants whose throughput is within this share of the best count as equally fast.
pub const SAME_SPEED: f64 = 0.05;

/// A made variant with its parity verdict and its figures here, as `select` weighs it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    pub file: String,
    pub kind: VariantKind,
    pub passed: bool,
    pub failures: Vec<String>,
    pub metric: f64,
    pub metric_name: String,
    pub throughput: f64,
    pub p50_ms: f64,
    pub peak_rss_bytes: Option<u64>,
    pub layers: Option<u64>,
    pub gop_per_sequence: Option<BTreeMap<u64, f64>>,
    pub engine: Option<EnginePolicy>,
}

/// Every candidate as `serving.json` lists it, with its verdict under `policy`.
pub fn considered(policy: Policy, chosen: usize, candidates: &[Candidate]) -> Vec<modelcrate_schema::Candidate> {
    let teacher = candidates.iter().find(|c| c.name == FP32).map(|c| c.metric);
    let verdicts = verdicts(policy, chosen, candidates);
    candidates
        .iter()
        .zip(verdicts)
        .map(|(c, verdict)| modelcrate_schema::Candidate {
            name: c.name.clone(),
            kind: c.kind,
            layers: c.layers,
            gop_per_sequence: c.gop_per_sequence.clone(),
            test_metric: TestMetric {
                name: c.metric_name.clone(),
                value: c.metric,
                points_vs_teacher: teacher.map(|teacher| (c.metric - teacher) * 100.0),
            },
            sequences_per_second: c.passed.then_some(c.throughput),
            p50_ms: Some(c.p50_ms).filter(|ms| ms.is_finite()),
            peak_rss_bytes: c.peak_rss_bytes,
            passed: c.passed,
            verdict,
        })
        .collect()
}

/// Why each candidate does or does not serve, `chosen` being the one `choose` picked
/// under `policy`.
pub fn verdicts(policy: Policy, chosen: usize, candidates: &[Candidate]) -> Vec<String> {
    let serving = &candidates[chosen];
    let best = candidates
        .iter()
        .filter(|c| c.passed)
        .map(|c| c.throughput)
        .fold(f64::NEG_INFINITY, f64::max);
    let speed = |c: &Candidate| {
        format!(
            "{:.2}× the serving variant's {:.1} sequences/s",
            c.throughput / serving.throughput,
            serving.throughput
        )
    };
    let accuracy = |c: &Candidate| format!("test {} {:.4} against {:.4}", c.metric_name, c.metric, serving.metric);
    candidates
        .iter()
        .enumerate()
        .map(|(index, c)| {
            if index == chosen {
                "serves".to_string()
            } else if !c.passed {
                format!("fails its {} gate: {}", c.kind, c.failures.join("; "))
            } else {
                match policy {
                    Policy::Named => format!("not the variant the spec names ({})", speed(c)),
                    Policy::MostAccurate if c.metric < serving.metric => format!("less accurate: {}", accuracy(c)),
                    Policy::MostAccurate => format!("as accurate, slower: {}", speed(c)),
                    _ if c.throughput < best * (1.0 - SAME_SPEED) => format!("slower: {}", speed(c)),
                    _ if c.metric < serving.metric => format!(
                        "as fast within {:.0}%, less accurate: {}",
                        SAME_SPEED * 100.0,
                        accuracy(c)
                    ),
                    _ => format!(
                        "as fast within {:.0}% and as accurate, slower: {}",
                        SAME_SPEED * 100.0,
                        speed(c)
                    ),
                }
            }
        })
        .collect()
}

/// The index of the serving candidate under `policy`, and why.
pub fn choose(policy: Policy, named: Option<&str>, candidates: &[Candidate]) -> Result<(usize, String)> {
    let passing: Vec<usize> = (0..candidates.len()).filter(|&i| candidates[i].passed).collect();
    if passing.is_empty() {
        bail!("no variant passes its parity gate, so none can serve");
    }
    let reference = candidates.iter().find(|c| c.name == FP32);
    let versus_fp32 = |c: &Candidate| match reference {
        Some(fp32) if c.name != FP32 && fp32.throughput > 0.0 => {
            format!(", {:.2}× fp32's {:.1}", c.throughput / fp32.throughput, fp32.throughput)
        }
        _ => String::new(),
    };
    let describe = |c: &Candidate| {
        format!(
            "{:.1} sequences/s at batch 32{}, p50 {:.2} ms at batch 1, test {} {:.4}; passes its {} gate",
            c.throughput,
            versus_fp32(c),
            c.p50_ms,
            c.metric_name,
            c.metric,
            c.kind
        )
    };
    match policy {
        Policy::Named => {
            let name = named.context("policy `named` needs serve.variant")?;
            let index = candidates
                .iter()
                .position(|c| c.name == name)
                .with_context(|| format!("serve.variant `{name}` was not made (see onnx/variants.json)"))?;
            let candidate = &candidates[index];
            if !candidate.passed {
                bail!(
                    "serve.variant `{name}` fails its parity gate, so it cannot serve: {}",
                    candidate.failures.join("; ")
                );
            }
            Ok((index, format!("named in the spec; {}", describe(candidate))))
        }
        Policy::Fastest => {
            let best = passing
                .iter()
                .map(|&i| candidates[i].throughput)
                .fold(f64::NEG_INFINITY, f64::max);
            let index = passing
                .iter()
                .copied()
                .filter(|&i| candidates[i].throughput >= best * (1.0 - SAME_SPEED))
                .max_by(|&a, &b| by_metric_then_speed(&candidates[a], &candidates[b]))
                .unwrap_or(passing[0]);
            let close = passing
                .iter()
                .filter(|&&i| i != index && candidates[i].throughput >= best * (1.0 - SAME_SPEED))
                .count();
            let tie = if close > 0 {
                format!(
                    " ({close} other passing variant(s) within {:.0}% of the best throughput; of those, the more accurate, then the faster, serves)",
                    SAME_SPEED * 100.0
                )
            } else {
                String::new()
            };
            Ok((
                index,
                format!(
                    "fastest of {} passing variants{tie}: {}",
                    passing.len(),
                    describe(&candidates[index])
                ),
            ))
        }
        Policy::MostAccurate => {
            let index = passing
                .iter()
                .copied()
                .max_by(|&a, &b| by_metric_then_speed(&candidates[a], &candidates[b]))
                .unwrap_or(passing[0]);
            Ok((
                index,
                format!(
                    "most accurate of {} passing variants (the faster on a tie): {}",
                    passing.len(),
                    describe(&candidates[index])
                ),
            ))
        }
    }
}

fn by_metric_then_speed(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    a.metric
        .total_cmp(&b.metric)
        .then(a.throughput.total_cmp(&b.throughput))
}

/// Reads what parity and measurement wrote for every made variant of `spec`.
pub fn candidates(paths: &Paths, spec: &ModelSpec, variants: &[Made]) -> Result<Vec<Candidate>> {
    let art = paths.artifact(&spec.name);
    // The sizes the work is counted from (every export writes it; without it, no count).
    let config_path = paths.onnx(&spec.name).join("config.json");
    let config: serde_json::Value = if config_path.is_file() {
        read_json(&config_path, "cargo xtask export")?
    } else {
        serde_json::Value::Null
    };
    variants
        .iter()
        .map(
            |Made {
                 name,
                 file,
                 kind,
                 kept_layers,
             }| {
                let parity: ParityReport = read_json(&ParityReport::path(&art, name), "cargo xtask parity")?;
                // A variant that failed its gate is never measured.
                let bench = if parity.passed {
                    Some(read_json::<MeasureReport>(
                        &MeasureReport::path(&art, name),
                        "cargo xtask measure",
                    )?)
                } else {
                    None
                };
                let costs = CostsReport::path(&art, name);
                let engine = if costs.is_file() {
                    read_json::<CostsReport>(&costs, "cargo xtask select")?.engine
                } else {
                    None
                };
                let encoder = Encoder::of(&config, *kept_layers);
                Ok(Candidate {
                    name: name.clone(),
                    file: file.clone(),
                    kind: *kind,
                    passed: parity.passed,
                    failures: parity.failures,
                    metric: parity.metric.value,
                    metric_name: parity.metric.name,
                    throughput: bench
                        .as_ref()
                        .map_or(0.0, |bench| bench.throughput.sequences_per_second),
                    p50_ms: bench.as_ref().map_or(f64::NAN, |bench| bench.latency.p50_ms),
                    peak_rss_bytes: bench.and_then(|bench| bench.rss_bytes.peak),
                    layers: work::layers(&config, *kept_layers),
                    gop_per_sequence: encoder.map(|encoder| encoder.gop_at_work_lengths()),
                    engine,
                })
            },
        )
        .collect()
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, writer: &str) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}: run `{writer}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not what `{writer}` writes", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, kind: VariantKind, passed: bool, metric: f64, throughput: f64) -> Candidate {
        Candidate {
            name: name.into(),
            file: format!("model.{name}.onnx"),
            kind,
            passed,
            failures: if passed {
                vec![]
            } else {
                vec!["max |logit diff| 1.6e-3".into()]
            },
            metric,
            metric_name: "accuracy".into(),
            throughput,
            p50_ms: 1000.0 / throughput,
            peak_rss_bytes: Some(250_000_000),
            layers: Some(6),
            gop_per_sequence: None,
            engine: None,
        }
    }

    fn field() -> Vec<Candidate> {
        vec![
            candidate("fp32", VariantKind::Fp32, true, 0.973, 100.0),
            candidate("O2", VariantKind::Fp32, true, 0.973, 120.0),
            candidate("O3", VariantKind::Fp32, false, 0.973, 400.0),
            candidate("int8", VariantKind::Int8, true, 0.966, 200.0),
            candidate("O2-int8", VariantKind::Int8, true, 0.964, 230.0),
        ]
    }

    #[test]
    fn fastest_never_picks_a_variant_that_failed_its_gate() {
        let (index, reason) = choose(Policy::Fastest, None, &field()).unwrap();
        assert_eq!(field()[index].name, "O2-int8");
        assert!(reason.contains("2.30× fp32's 100.0"), "{reason}");
    }

    #[test]
    fn fastest_prefers_the_more_accurate_of_variants_within_the_noise() {
        let mut field = field();
        field[4].throughput = 205.0;
        let (index, reason) = choose(Policy::Fastest, None, &field).unwrap();
        assert_eq!(field[index].name, "int8");
        assert!(reason.contains("1 other passing variant(s) within 5%"), "{reason}");
    }

    #[test]
    fn most_accurate_takes_the_faster_of_equally_accurate_variants() {
        let (index, _) = choose(Policy::MostAccurate, None, &field()).unwrap();
        assert_eq!(field()[index].name, "O2");
    }

    #[test]
    fn a_named_variant_serves_only_if_it_passed() {
        let (index, reason) = choose(Policy::Named, Some("int8"), &field()).unwrap();
        assert_eq!(field()[index].name, "int8");
        assert!(reason.starts_with("named in the spec"), "{reason}");
        let error = choose(Policy::Named, Some("O3"), &field()).unwrap_err().to_string();
        assert!(
            error.contains("fails its parity gate") && error.contains("1.6e-3"),
            "{error}"
        );
        let error = choose(Policy::Named, Some("O1"), &field()).unwrap_err().to_string();
        assert!(error.contains("was not made"), "{error}");
    }

    #[test]
    fn every_variant_is_told_why_it_does_not_serve() {
        let field = field();
        let (index, _) = choose(Policy::Fastest, None, &field).unwrap();
        let verdicts = verdicts(Policy::Fastest, index, &field);
        assert_eq!(verdicts[4], "serves");
        assert!(
            verdicts[0].starts_with("slower: 0.43× the serving variant's 230.0"),
            "{}",
            verdicts[0]
        );
        assert!(
            verdicts[2].starts_with("fails its fp32 gate: max |logit diff|"),
            "{}",
            verdicts[2]
        );
        let mut close = field.clone();
        close[4].throughput = 205.0;
        let (index, _) = choose(Policy::Fastest, None, &close).unwrap();
        let verdicts = self::verdicts(Policy::Fastest, index, &close);
        assert_eq!(verdicts[3], "serves");
        assert!(
            verdicts[4].starts_with("as fast within 5%, less accurate: test accuracy 0.9640 against 0.9660"),
            "{}",
            verdicts[4]
        );
        let (index, _) = choose(Policy::MostAccurate, None, &field).unwrap();
        let verdicts = self::verdicts(Policy::MostAccurate, index, &field);
        assert!(verdicts[0].starts_with("as accurate, slower"), "{}", verdicts[0]);
        assert!(verdicts[3].starts_with("less accurate"), "{}", verdicts[3]);
    }

    #[test]
    fn serving_json_lists_each_variant_against_the_teacher() {
        let field = field();
        let listed = considered(Policy::Fastest, 4, &field);
        let json = serde_json::to_value(&listed).unwrap();
        let points = json[4]["test_metric"]["points_vs_teacher"].as_f64().unwrap();
        assert!((points - -0.9).abs() < 1e-9, "{points}");
        // A variant that failed its gate was never measured: no speed is claimed for it.
        assert_eq!(json[2]["sequences_per_second"], serde_json::Value::Null);
        assert_eq!(json[2]["passed"], false);
        assert_eq!(json[4]["verdict"], "serves");
    }

    #[test]
    fn nothing_serves_when_nothing_passed() {
        let field: Vec<Candidate> = field().into_iter().map(|c| Candidate { passed: false, ..c }).collect();
        assert!(choose(Policy::Fastest, None, &field).is_err());
    }
}
