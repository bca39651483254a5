//! `serving.json`: the variant that serves, why, how its engine runs, and every variant
//! `cargo xtask select` weighed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::task::VariantKind;

/// A spec's `[serve] policy`: how `select` picks among the variants that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Highest batch-32 throughput measured here; of variants within 5 % of it, the most
    /// accurate, then the fastest.
    #[default]
    Fastest,
    /// Highest test metric, the faster on a tie.
    MostAccurate,
    /// The variant the spec names, if it passed.
    Named,
}

impl Policy {
    pub const ALL: [Self; 3] = [Self::Fastest, Self::MostAccurate, Self::Named];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fastest => "fastest",
            Self::MostAccurate => "most_accurate",
            Self::Named => "named",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `serving.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Serving {
    pub model: String,
    pub policy: Policy,
    pub variant: String,
    pub file: String,
    pub kind: VariantKind,
    /// One sentence on why this variant, with the figures that decided it.
    pub reason: String,
    /// How the engine runs this variant, chosen from its measured costs; absent when
    /// they were not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EnginePolicy>,
    /// Every made variant as `select` saw it when it chose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
}

/// A made variant as `select` saw it: its size of work, its test metric against the
/// teacher, its speed and memory here, and why it does or does not serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub name: String,
    pub kind: VariantKind,
    /// Encoder layers (a distilled student's kept ones).
    #[serde(default)]
    pub layers: Option<u64>,
    /// Billions of operations one sequence of so many tokens costs (keys are token counts).
    #[serde(default)]
    pub gop_per_sequence: Option<BTreeMap<u64, f64>>,
    pub test_metric: TestMetric,
    /// At batch 32, one thread; `None` for a variant that failed its gate (never measured).
    #[serde(default)]
    pub sequences_per_second: Option<f64>,
    /// One text per request.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
    pub passed: bool,
    /// `serves`, or why not.
    pub verdict: String,
}

/// A variant's task metric on the test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetric {
    pub name: String,
    pub value: f64,
    /// Percentage points against the teacher's FP32 export.
    #[serde(default)]
    pub points_vs_teacher: Option<f64>,
}

/// The thread layout, in terms of the machine's cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutChoice {
    /// A session of every core for a lone request, one single-thread session per core
    /// under load.
    Adaptive,
    /// One session of every core.
    Wide,
    /// One single-thread session per core.
    Narrow,
}

/// `serving.json`'s `"engine"`: how the engine runs the variant, chosen from its
/// measured costs (the runtime's `policy` module argues it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnginePolicy {
    pub layout: LayoutChoice,
    pub merge: MergeLimits,
    /// The cores the costs were measured on: on another machine the layout is taken
    /// over that machine's cores, and the choice may no longer be the best one.
    pub cores: usize,
    /// One sentence per choice, with the measured figures that made it.
    pub why: Vec<String>,
}

impl EnginePolicy {
    /// What runs before anything was measured: the adaptive layout (a lone request on
    /// every core, concurrent ones on a core each) and no merging, the choice that lost
    /// nowhere by much in the README's benchmark on either workload.
    pub fn unmeasured(cores: usize) -> Self {
        Self {
            layout: LayoutChoice::Adaptive,
            merge: MergeLimits::never(),
            cores,
            why: vec!["not measured for this variant: the defaults".into()],
        }
    }
}

/// How many rows a merged run may hold, by its padded length (tokens of its longest
/// row; an image counts as one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeLimits {
    /// `(up_to_tokens, max_rows)`, ascending by length; lengths past the last step take
    /// its rows. Empty: no limit beyond the batch options.
    pub steps: Vec<MergeStep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeStep {
    pub up_to_tokens: usize,
    pub max_rows: usize,
}

impl MergeLimits {
    /// Rows merge up to the batch options' limits, whatever their length.
    pub fn unlimited() -> Self {
        Self { steps: Vec::new() }
    }

    /// Every run holds one row: requests are never merged.
    pub fn never() -> Self {
        Self {
            steps: vec![MergeStep {
                up_to_tokens: usize::MAX,
                max_rows: 1,
            }],
        }
    }

    /// The most rows a run of padded length `tokens` may hold (at least one).
    pub fn max_rows(&self, tokens: usize) -> usize {
        let step = self
            .steps
            .iter()
            .find(|step| tokens <= step.up_to_tokens)
            .or(self.steps.last());
        step.map_or(usize::MAX, |step| step.max_rows.max(1))
    }

    /// `≤16 tokens: 8 rows, ≤64: 4, longer: 1`, or `no limit`.
    pub fn describe(&self) -> String {
        if self.steps.is_empty() {
            return "no limit by length".into();
        }
        self.steps
            .iter()
            .map(|step| match step.up_to_tokens {
                usize::MAX => format!("longer: {} row(s)", step.max_rows),
                tokens => format!("≤{tokens} tokens: {} row(s)", step.max_rows),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts_are_the_keys_of_the_work_per_sequence() {
        let json = r#"{"name": "int8", "kind": "int8", "layers": 6, "gop_per_sequence": {"32": 0.71, "128": 2.9},
            "test_metric": {"name": "accuracy", "value": 0.97, "points_vs_teacher": -0.2},
            "sequences_per_second": 91.5, "p50_ms": 4.1, "peak_rss_bytes": 1, "passed": true, "verdict": "serves"}"#;
        let candidate: Candidate = serde_json::from_str(json).unwrap();
        assert_eq!(candidate.gop_per_sequence.as_ref().unwrap()[&128], 2.9);
        let again: Candidate = serde_json::from_str(&serde_json::to_string(&candidate).unwrap()).unwrap();
        assert_eq!(again, candidate);
    }

    #[test]
    fn merge_limits_take_the_last_step_past_the_longest() {
        let limits = MergeLimits {
            steps: vec![
                MergeStep {
                    up_to_tokens: 16,
                    max_rows: 8,
                },
                MergeStep {
                    up_to_tokens: 64,
                    max_rows: 0,
                },
            ],
        };
        assert_eq!(limits.max_rows(10), 8);
        assert_eq!(limits.max_rows(64), 1, "a run holds at least one row");
        assert_eq!(limits.max_rows(500), 1);
        assert_eq!(MergeLimits::unlimited().max_rows(500), usize::MAX);
        assert_eq!(MergeLimits::never().max_rows(1), 1);
        assert_eq!(MergeLimits::never().max_rows(100_000), 1);
        assert_eq!(MergeLimits::never().describe(), "longer: 1 row(s)");
    }

    #[test]
    fn a_policy_reads_as_specs_write_it() {
        for policy in Policy::ALL {
            let json = format!("\"{}\"", policy.as_str());
            assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), policy);
        }
    }
}
