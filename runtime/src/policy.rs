//! How a model's engine runs, as `cargo xtask select` chose it from the variant's
//! measured costs and wrote it into `serving.json` (`"engine"`): the thread layout and
//! how far requests merge at each length. The server follows it unless a flag says
//! otherwise; a model without one runs [`EnginePolicy::unmeasured`]. The file's types are
//! `modelcrate_schema`'s; the argument from costs to a policy is here.

pub use modelcrate_schema::{CostPoint, Costs, EnginePolicy, LayoutChoice, MergeLimits, MergeStep};

use crate::pool::Layout;

/// Merging must save at least this share of the cost per text to be worth the rows that
/// wait for a merged run: below it, the measurement noise of a busy machine decides.
const MERGE_GAIN: f64 = 0.10;

/// `choice` laid over `cores` cores.
pub fn layout_on(choice: LayoutChoice, cores: usize) -> Layout {
    let cores = cores.max(1);
    match choice {
        LayoutChoice::Adaptive => Layout::Adaptive { cores },
        LayoutChoice::Wide => Layout::Fixed {
            sessions: 1,
            intra_threads: cores,
        },
        LayoutChoice::Narrow => Layout::Fixed {
            sessions: cores,
            intra_threads: 1,
        },
    }
}

/// The policy `costs` argue for, each choice with its figures:
/// - a lone request runs wide when, over the measured lengths, one run of one text on
///   every core takes less time than on one core (the narrow session's run time under
///   load is its upper bound);
/// - under load the layout that serves more texts per second over the lengths runs:
///   narrow sessions, or the wide one;
/// - at each length, requests merge up to the rows whose cost per text in the
///   busy layout is lowest, if that saves at least 10 % against one text per run.
pub fn from_costs(costs: &Costs) -> Option<EnginePolicy> {
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
    Some(EnginePolicy {
        layout,
        merge: MergeLimits { steps },
        cores,
        why,
    })
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
        let policy = from_costs(&costs).unwrap();
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
        let policy = from_costs(&costs).unwrap();
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
        let policy = from_costs(&costs).unwrap();
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
        assert_eq!(from_costs(&costs), None);
    }
}
