//! How a model's engine runs, as `cargo xtask select` chose it from the variant's
//! measured costs and wrote it into `serving.json` (`"engine"`): the thread layout and
//! how far requests merge at each length. The server follows it unless a flag says
//! otherwise; a model without one runs [`EnginePolicy::unmeasured`].

use serde::{Deserialize, Serialize};

use crate::engine::{MergeLimits, MergeStep};
use crate::pool::Layout;

/// Merging must save at least this share of the cost per text to be worth the rows that
/// wait for a merged run: below it, the measurement noise of a busy machine decides.
const MERGE_GAIN: f64 = 0.10;

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

impl LayoutChoice {
    pub fn on(self, cores: usize) -> Layout {
        let cores = cores.max(1);
        match self {
            Self::Adaptive => Layout::Adaptive { cores },
            Self::Wide => Layout::Fixed {
                sessions: 1,
                intra_threads: cores,
            },
            Self::Narrow => Layout::Fixed {
                sessions: cores,
                intra_threads: 1,
            },
        }
    }
}

/// `serving.json`'s `"engine"`.
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
    fn at(&self, tokens: usize, rows: usize) -> Option<&CostPoint> {
        self.points.iter().find(|p| p.tokens == tokens && p.rows == rows)
    }

    fn lengths(&self) -> Vec<usize> {
        let mut lengths: Vec<usize> = self.points.iter().map(|p| p.tokens).collect();
        lengths.sort_unstable();
        lengths.dedup();
        lengths
    }
}

impl EnginePolicy {
    /// The policy `costs` argue for, each choice with its figures:
    /// - a lone request runs wide when, over the measured lengths, one run of one text on
    ///   every core takes less time than on one core (the narrow session's run time under
    ///   load is its upper bound);
    /// - under load the layout that serves more texts per second over the lengths runs:
    ///   narrow sessions, or the wide one;
    /// - at each length, requests merge up to the rows whose cost per text in the
    ///   busy layout is lowest, if that saves at least 10 % against one text per run.
    pub fn from_costs(costs: &Costs) -> Option<Self> {
        let lengths = costs.lengths();
        let cores = costs.cores.max(1);
        let singles: Vec<&CostPoint> = lengths.iter().filter_map(|&tokens| costs.at(tokens, 1)).collect();
        if singles.is_empty() {
            return None;
        }
        let geometric_mean = |ratios: &mut dyn Iterator<Item = f64>| {
            let (sum, n) = ratios.fold((0.0, 0usize), |(sum, n), r| (sum + r.ln(), n + 1));
            (sum / n.max(1) as f64).exp()
        };
        // Below 1: the wide session answers a lone text sooner.
        let lone = geometric_mean(&mut singles.iter().map(|p| p.wide_seconds / p.narrow_seconds(cores)));
        let best = |tokens: usize, texts_per_second: &dyn Fn(&CostPoint) -> f64| -> Option<(usize, f64)> {
            costs
                .points
                .iter()
                .filter(|p| p.tokens == tokens)
                .map(|p| (p.rows, texts_per_second(p)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        };
        // Above 1: narrow sessions serve more under load, each layout merging as it best can.
        let busy = geometric_mean(&mut lengths.iter().filter_map(|&tokens| {
            let narrow = best(tokens, &|p| p.narrow_texts_per_second)?.1;
            let wide = best(tokens, &|p| p.wide_texts_per_second())?.1;
            Some(narrow / wide)
        }));
        let (lone_wide, busy_narrow) = (lone < 1.0, busy >= 1.0);
        let layout = match (lone_wide, busy_narrow) {
            (true, true) => LayoutChoice::Adaptive,
            (false, true) => LayoutChoice::Narrow,
            (_, false) => LayoutChoice::Wide,
        };
        let mut why = vec![
            format!(
                "a lone text: the session of {cores} cores takes {:.2}× the time of one core's (geometric mean over {} lengths), so it runs {}",
                lone,
                singles.len(),
                if lone_wide { "wide" } else { "narrow" }
            ),
            format!(
                "under load: {cores} single-thread sessions serve {:.2}× the texts per second of one session of {cores} threads, so they run {}",
                busy,
                if busy_narrow { "narrow" } else { "wide" }
            ),
        ];
        let busy_rate = |p: &CostPoint| {
            if busy_narrow {
                p.narrow_texts_per_second
            } else {
                p.wide_texts_per_second()
            }
        };
        let mut steps = Vec::new();
        for &tokens in &lengths {
            let (Some(single), Some((rows, rate))) = (costs.at(tokens, 1), best(tokens, &busy_rate)) else {
                continue;
            };
            let gain = 1.0 - busy_rate(single) / rate;
            let max_rows = if rows > 1 && gain >= MERGE_GAIN { rows } else { 1 };
            why.push(format!(
                "at {tokens} tokens: {rows} text(s) per run serve {:.2}× one per run, so runs hold up to {max_rows}",
                rate / busy_rate(single)
            ));
            steps.push(MergeStep {
                up_to_tokens: tokens,
                max_rows,
            });
        }
        Some(Self {
            layout,
            merge: MergeLimits { steps },
            cores,
            why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(tokens: usize, rows: usize, wide_seconds: f64, narrow_texts_per_second: f64) -> CostPoint {
        CostPoint {
            tokens,
            rows,
            wide_seconds,
            narrow_texts_per_second,
        }
    }

    #[test]
    fn a_graph_that_merges_badly_runs_adaptive_and_never_merges() {
        // As the INT8 classifier measured here: 2 cores halve a lone run's time, but
        // concurrent single-thread runs serve more, and more rows per run cost more per text.
        let costs = Costs {
            cores: 2,
            points: vec![
                point(16, 1, 0.004, 400.0),
                point(16, 4, 0.018, 380.0),
                point(128, 1, 0.012, 110.0),
                point(128, 4, 0.055, 100.0),
            ],
        };
        let policy = EnginePolicy::from_costs(&costs).unwrap();
        assert_eq!(policy.layout, LayoutChoice::Adaptive);
        assert_eq!(policy.merge.max_rows(16), 1);
        assert_eq!(policy.merge.max_rows(128), 1);
    }

    #[test]
    fn a_graph_that_merges_well_merges_where_it_saves_and_only_there() {
        let costs = Costs {
            cores: 2,
            points: vec![
                point(16, 1, 0.004, 300.0),
                point(16, 4, 0.008, 600.0),
                point(16, 16, 0.030, 640.0),
                point(128, 1, 0.012, 100.0),
                point(128, 4, 0.046, 104.0),
                point(128, 16, 0.19, 102.0),
            ],
        };
        let policy = EnginePolicy::from_costs(&costs).unwrap();
        // Short texts: 16 per run serve 2.13× one per run; long ones gain 4 %: no merging.
        assert_eq!(policy.merge.max_rows(10), 16);
        assert_eq!(policy.merge.max_rows(100), 1);
        assert_eq!(policy.merge.max_rows(500), 1);
    }

    #[test]
    fn when_one_wide_session_serves_more_under_load_it_serves_alone() {
        let costs = Costs {
            cores: 2,
            points: vec![point(64, 1, 0.004, 200.0), point(64, 4, 0.012, 220.0)],
        };
        let policy = EnginePolicy::from_costs(&costs).unwrap();
        // Wide: 250 texts/s alone, 333 merging 4; narrow: at most 220.
        assert_eq!(policy.layout, LayoutChoice::Wide);
        assert_eq!(policy.merge.max_rows(64), 4);
    }

    #[test]
    fn no_single_text_point_gives_no_policy() {
        let costs = Costs {
            cores: 2,
            points: vec![point(64, 4, 0.012, 220.0)],
        };
        assert_eq!(EnginePolicy::from_costs(&costs), None);
    }
}
