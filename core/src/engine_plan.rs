//! How each model's engine runs: the policy `cargo xtask select` measured for its serving
//! variant (`serving.json`'s `"engine"`: thread layout, how far requests merge by
//! length), with the operator's flags over it. A model served by a named variant, or
//! one whose `serving.json` predates measured policies, runs the unmeasured defaults.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use modelcrate_runtime::policy::layout_on;
use modelcrate_runtime::variants::read_serving;
use modelcrate_runtime::{EnginePolicy, Layout, LayoutChoice, LoadOptions, MergeLimits, VariantChoice};

use crate::engine::BatchingOptions;

/// `--layout`: a layout named by the operator instead of the measured one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutFlag {
    /// The measured choice (`serving.json`), else `adaptive`.
    Measured,
    /// A session of every core for a lone request, one single-thread session per core
    /// under load.
    Adaptive,
    /// One session of every core.
    Wide,
    /// One single-thread session per core.
    Narrow,
}

/// `--merge`: how far concurrent requests merge into one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MergeFlag {
    /// By the measured table of rows per length (`serving.json`), else never.
    Measured,
    /// Never: each request runs alone (its own texts still run together).
    Off,
    /// Up to `--max-batch-size` rows and `--max-batch-tokens` at every length.
    On,
}

/// The operator's say over every model's engine.
#[derive(Debug, Clone)]
pub struct EngineFlags {
    pub layout: LayoutFlag,
    /// `--sessions` / `--intra-threads`: a fixed layout, over `layout`.
    pub sessions: Option<usize>,
    pub intra_threads: Option<usize>,
    pub merge: MergeFlag,
    pub max_batch_size: usize,
    pub max_batch_tokens: usize,
    pub max_queue_delay: Duration,
    pub queue_capacity: usize,
    /// The machine's cores, which every layout is laid over.
    pub cores: usize,
}

/// One model's engine, resolved.
#[derive(Debug, Clone)]
pub struct EnginePlan {
    pub layout: Layout,
    pub batching: BatchingOptions,
}

impl EngineFlags {
    /// The plan for the model in `dir` loaded as `variant`: its measured policy when it
    /// serves the selected variant, each part a flag names replaced by the flag.
    pub fn plan(&self, dir: &Path, variant: &VariantChoice) -> Result<EnginePlan> {
        let measured = match variant {
            VariantChoice::Serving => read_serving(dir)
                .with_context(|| format!("cannot read the serving policy in {}", dir.display()))?
                .and_then(|serving| serving.engine),
            VariantChoice::Named(_) => None,
        };
        let policy = measured.unwrap_or_else(|| EnginePolicy::unmeasured(self.cores));
        let layout = match (self.sessions, self.intra_threads, self.layout) {
            (None, None, LayoutFlag::Measured) => layout_on(policy.layout, self.cores),
            (None, None, LayoutFlag::Adaptive) => layout_on(LayoutChoice::Adaptive, self.cores),
            (None, None, LayoutFlag::Wide) => layout_on(LayoutChoice::Wide, self.cores),
            (None, None, LayoutFlag::Narrow) => layout_on(LayoutChoice::Narrow, self.cores),
            (sessions, threads, _) => {
                let sessions = sessions.unwrap_or(1).max(1);
                Layout::Fixed {
                    sessions,
                    intra_threads: threads.unwrap_or((self.cores / sessions).max(1)),
                }
            }
        };
        let merge = match self.merge {
            MergeFlag::Measured => policy.merge,
            MergeFlag::Off => MergeLimits::never(),
            MergeFlag::On => MergeLimits::unlimited(),
        };
        Ok(EnginePlan {
            layout,
            batching: BatchingOptions {
                max_batch_size: self.max_batch_size,
                max_batch_tokens: self.max_batch_tokens,
                merge,
                max_queue_delay: self.max_queue_delay,
                queue_capacity: self.queue_capacity,
            },
        })
    }

    /// `base` with `plan`'s layout.
    pub fn load_options(&self, base: &LoadOptions, plan: &EnginePlan) -> LoadOptions {
        LoadOptions {
            layout: plan.layout,
            ..base.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelcrate_schema::{MergeStep, Policy, Serving, VariantKind};

    fn flags() -> EngineFlags {
        EngineFlags {
            layout: LayoutFlag::Measured,
            sessions: None,
            intra_threads: None,
            merge: MergeFlag::Measured,
            max_batch_size: 32,
            max_batch_tokens: 4096,
            max_queue_delay: Duration::ZERO,
            queue_capacity: 256,
            cores: 4,
        }
    }

    /// A model folder, removed when the test ends, whose `serving.json` holds `engine`.
    fn folder_with(engine: Option<EnginePolicy>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let serving = Serving {
            model: "m".into(),
            policy: Policy::Fastest,
            variant: "int8".into(),
            file: "model.int8.onnx".into(),
            kind: VariantKind::Int8,
            reason: "fastest".into(),
            engine,
            candidates: Vec::new(),
        };
        std::fs::write(
            dir.path().join("serving.json"),
            serde_json::to_string(&serving).unwrap(),
        )
        .unwrap();
        dir
    }

    fn measured() -> EnginePolicy {
        EnginePolicy {
            layout: LayoutChoice::Narrow,
            merge: MergeLimits {
                steps: vec![MergeStep {
                    up_to_tokens: 32,
                    max_rows: 4,
                }],
            },
            cores: 2,
            why: vec![],
        }
    }

    #[test]
    fn the_measured_policy_runs_unless_a_flag_names_another() {
        let dir = folder_with(Some(measured()));
        let plan = flags().plan(dir.path(), &VariantChoice::Serving).unwrap();
        // Laid over this machine's cores (4), not the measuring machine's (2).
        assert_eq!(
            plan.layout,
            Layout::Fixed {
                sessions: 4,
                intra_threads: 1
            }
        );
        assert_eq!(plan.batching.merge, measured().merge);

        let wide = EngineFlags {
            layout: LayoutFlag::Wide,
            merge: MergeFlag::Off,
            ..flags()
        };
        let plan = wide.plan(dir.path(), &VariantChoice::Serving).unwrap();
        assert_eq!(
            plan.layout,
            Layout::Fixed {
                sessions: 1,
                intra_threads: 4
            }
        );
        assert_eq!(plan.batching.merge, MergeLimits::never());

        let fixed = EngineFlags {
            sessions: Some(2),
            layout: LayoutFlag::Adaptive,
            ..flags()
        };
        let plan = fixed.plan(dir.path(), &VariantChoice::Serving).unwrap();
        assert_eq!(
            plan.layout,
            Layout::Fixed {
                sessions: 2,
                intra_threads: 2
            }
        );
    }

    #[test]
    fn a_named_variant_or_an_old_serving_file_runs_the_unmeasured_defaults() {
        let unmeasured = EnginePolicy::unmeasured(4);
        let dir = folder_with(Some(measured()));
        let plan = flags().plan(dir.path(), &VariantChoice::Named("fp32".into())).unwrap();
        assert_eq!(
            (plan.layout, plan.batching.merge),
            (layout_on(unmeasured.layout, 4), unmeasured.merge.clone())
        );
        let dir = folder_with(None);
        let plan = flags().plan(dir.path(), &VariantChoice::Serving).unwrap();
        assert_eq!(
            (plan.layout, plan.batching.merge),
            (layout_on(unmeasured.layout, 4), unmeasured.merge)
        );
    }

    #[test]
    fn a_malformed_serving_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("serving.json"), "{").unwrap();
        let error = format!("{:#}", flags().plan(dir.path(), &VariantChoice::Serving).unwrap_err());
        assert!(error.contains("serving.json"), "{error}");
    }
}
