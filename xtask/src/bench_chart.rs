//! The bench's charts, beside its tables: each peer's requests/s against concurrency, its
//! latency percentiles (p50 solid, p99 dashed) against concurrency, and, when the bench
//! ran open-loop levels, p99 latency against the offered load.

use anyhow::Result;
use serde_json::Value;

use crate::bench_table::number;
use crate::chart::{self, Line, Scale};

/// `(file suffix, SVG)` of each chart `report` has data for.
pub fn charts(report: &Value) -> Result<Vec<(&'static str, String)>> {
    let peers = report["peers"].as_array().cloned().unwrap_or_default();
    let title = format!(
        "{}, {} workload",
        report["model"].as_str().unwrap_or("?"),
        report["workload"]["name"].as_str().unwrap_or("?")
    );
    let series = |levels: &str, x: &str, y: &str, peer: &Value| -> Vec<(f64, f64)> {
        peer[levels]
            .as_array()
            .into_iter()
            .flatten()
            .map(|level| (number(&level[x]), number(&level[y])))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let name = |peer: &Value| peer["peer"].as_str().unwrap_or("?").to_string();
    let throughput: Vec<Line> = peers
        .iter()
        .enumerate()
        .map(|(index, peer)| Line {
            name: name(peer),
            points: series("levels", "concurrency", "requests_per_second", peer),
            dashed: false,
            colour: index,
        })
        .collect();
    let latency: Vec<Line> = peers
        .iter()
        .enumerate()
        .flat_map(|(index, peer)| {
            ["p50_ms", "p99_ms"].map(|percentile| Line {
                name: format!("{} {}", name(peer), &percentile[..3]),
                points: series("levels", "concurrency", percentile, peer),
                dashed: percentile == "p99_ms",
                colour: index,
            })
        })
        .collect();
    let mut charts = vec![
        (
            "throughput",
            chart::lines(
                &format!("{title}: requests/s by concurrency (closed loop)"),
                "concurrent clients",
                "requests/s",
                &throughput,
                Scale::Log,
                Scale::Linear,
            )?,
        ),
        (
            "latency",
            chart::lines(
                &format!("{title}: latency by concurrency (p50 solid, p99 dashed)"),
                "concurrent clients",
                "milliseconds (log)",
                &latency,
                Scale::Log,
                Scale::Log,
            )?,
        ),
    ];
    let open: Vec<Line> = peers
        .iter()
        .enumerate()
        .map(|(index, peer)| Line {
            name: format!("{} p99", name(peer)),
            points: series("open_loop", "offered_per_second", "p99_ms", peer),
            dashed: false,
            colour: index,
        })
        .filter(|line| !line.points.is_empty())
        .collect();
    if !open.is_empty() {
        charts.push((
            "open-loop",
            chart::lines(
                &format!("{title}: p99 latency by offered load (open loop)"),
                "offered requests/s",
                "p99 milliseconds (log)",
                &open,
                Scale::Linear,
                Scale::Log,
            )?,
        ));
    }
    Ok(charts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_report_gives_throughput_latency_and_open_loop_charts() {
        let level = |c: u32, rps: f64| json!({"concurrency": c, "requests_per_second": rps, "p50_ms": 2.0 * f64::from(c), "p99_ms": 3.0 * f64::from(c)});
        let report = json!({
            "model": "news-topic",
            "workload": {"name": "mixed"},
            "peers": [
                {"peer": "modelcrate", "levels": [level(1, 300.0), level(8, 900.0)],
                 "open_loop": [{"offered_per_second": 400.0, "p99_ms": 5.0}, {"offered_per_second": 700.0, "p99_ms": 9.0}]},
                {"peer": "python onnxruntime", "levels": [level(1, 250.0), level(8, 600.0)]},
            ],
        });
        let charts = charts(&report).unwrap();
        let names: Vec<&str> = charts.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["throughput", "latency", "open-loop"]);
        assert!(charts[0].1.contains("python onnxruntime") && charts[0].1.contains("news-topic, mixed workload"));
        assert!(charts[1].1.contains("modelcrate p99"));
        let without_open = charts_of_closed(&report);
        assert_eq!(without_open, 2);
    }

    fn charts_of_closed(report: &Value) -> usize {
        let mut closed = report.clone();
        closed["peers"][0]["open_loop"] = json!([]);
        charts(&closed).unwrap().len()
    }
}
