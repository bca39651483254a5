//! Prometheus metrics, in the text exposition format at `GET /metrics`: requests by model,
//! route, status and error kind; request, tokenization, queue and inference durations and batch sizes per model
//! (histograms); queue length and requests in flight (read live); which variant of which
//! model is loaded, its generation, and its reloads (by trigger and outcome, with the
//! seconds of each stage of the last one). Written by hand: a few counters and histograms
//! need no registry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::served::Attempt;

/// Seconds: from a millisecond to a request timeout.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Rows in a batch.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations at most each bound, cumulative as Prometheus wants them.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.buckets.len() != bounds.len() {
            self.buckets = vec![0; bounds.len()];
        }
        for (bound, bucket) in bounds.iter().zip(&mut self.buckets) {
            if value <= *bound {
                *bucket += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let separator = if labels.is_empty() { "" } else { "," };
        for (bound, count) in bounds.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{separator}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// One answered batch share, as the engine timed it.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub total: Duration,
    /// Tokenizing the request's texts, or decoding and resizing its images.
    pub preparation: Duration,
    pub queue: Duration,
    pub inference: Duration,
    pub batch_rows: usize,
}

#[derive(Default)]
struct Recorded {
    /// (model, route, status, error kind) → requests.
    requests: BTreeMap<(String, &'static str, u16, &'static str), u64>,
    /// Per model: request, tokenization, queue and inference seconds, batch rows.
    timings: BTreeMap<String, [Histogram; 5]>,
    /// (model, trigger, outcome) → reloads.
    reloads: BTreeMap<(String, &'static str, &'static str), u64>,
    /// (model, stage) → seconds the stage took in the model's last reload.
    reload_stages: BTreeMap<(String, &'static str), f64>,
}

/// What the server counts. Cheap to update: one short lock per request.
#[derive(Default)]
pub struct Metrics {
    recorded: Mutex<Recorded>,
}

/// What is read live when `/metrics` is scraped, per model.
pub struct ModelGauge<'a> {
    pub model: &'a str,
    pub task: &'a str,
    pub variant: &'a str,
    pub kind: &'a str,
    pub waiting: usize,
    /// 1 for the model loaded at start, one more per swap.
    pub generation: u64,
    /// Whether the last reload was refused (the model serving is older than its files).
    pub reload_refused: bool,
}

/// A label value as the exposition format quotes it.
fn quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A gauge with one value per served model, labelled by the model alone.
fn per_model_gauge(
    out: &mut String,
    name: &str,
    help: &str,
    models: &[ModelGauge<'_>],
    value: impl Fn(&ModelGauge<'_>) -> u64,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for gauge in models {
        let _ = writeln!(out, "{name}{{model=\"{}\"}} {}", quoted(gauge.model), value(gauge));
    }
}

impl Metrics {
    /// Counts one prediction request on `route` (a route template such as
    /// `/models/{name}/predict`). The caller passes `_unknown` for a model not served, so
    /// that made-up names cannot grow the label set.
    pub fn request(&self, model: &str, route: &'static str, status: u16, error: &'static str) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *recorded
            .requests
            .entry((model.to_string(), route, status, error))
            .or_default() += 1;
    }

    pub fn answered(&self, model: &str, timing: Timing) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let [total, preparation, queue, inference, rows] = recorded.timings.entry(model.to_string()).or_default();
        total.observe(&SECONDS_BUCKETS, timing.total.as_secs_f64());
        preparation.observe(&SECONDS_BUCKETS, timing.preparation.as_secs_f64());
        queue.observe(&SECONDS_BUCKETS, timing.queue.as_secs_f64());
        inference.observe(&SECONDS_BUCKETS, timing.inference.as_secs_f64());
        rows.observe(&BATCH_BUCKETS, timing.batch_rows as f64);
    }

    /// Counts a reload of `model` and keeps its stages' seconds.
    pub fn reloaded(&self, model: &str, attempt: &Attempt) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *recorded
            .reloads
            .entry((model.to_string(), attempt.trigger.as_str(), attempt.outcome.as_str()))
            .or_default() += 1;
        recorded.reload_stages.retain(|(name, _), _| name != model);
        for (stage, seconds) in &attempt.seconds {
            recorded.reload_stages.insert((model.to_string(), stage), *seconds);
        }
    }

    /// The exposition text.
    pub fn render(&self, models: &[ModelGauge<'_>], in_flight: usize, phase: &str) -> String {
        let mut out = String::new();
        let recorded = self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        out.push_str(
            "# HELP modelcrate_requests_total Prediction requests by model, route, HTTP status and error kind.\n",
        );
        out.push_str("# TYPE modelcrate_requests_total counter\n");
        for ((model, route, status, error), count) in &recorded.requests {
            let _ = writeln!(
                out,
                "modelcrate_requests_total{{model=\"{}\",route=\"{route}\",status=\"{status}\",error_type=\"{error}\"}} {count}",
                quoted(model)
            );
        }
        let families = [
            (
                "modelcrate_request_duration_seconds",
                "Time from a request's arrival to its answer.",
                &SECONDS_BUCKETS[..],
            ),
            (
                "modelcrate_tokenization_duration_seconds",
                "Time to tokenize a request's texts (for an image model: to decode and resize its images).",
                &SECONDS_BUCKETS[..],
            ),
            (
                "modelcrate_queue_duration_seconds",
                "Time a request waited for its batch to start.",
                &SECONDS_BUCKETS[..],
            ),
            (
                "modelcrate_inference_duration_seconds",
                "Time the batch a request ran in took in ONNX Runtime.",
                &SECONDS_BUCKETS[..],
            ),
            (
                "modelcrate_batch_size",
                "Rows (texts or images) in the batch a request ran in.",
                &BATCH_BUCKETS[..],
            ),
        ];
        for (index, (name, help, bounds)) in families.iter().enumerate() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (model, histograms) in &recorded.timings {
                histograms[index].render(&mut out, name, &format!("model=\"{}\"", quoted(model)), bounds);
            }
        }
        per_model_gauge(
            &mut out,
            "modelcrate_queue_waiting",
            "Requests queued for a model's engine, not yet in a batch.",
            models,
            |gauge| gauge.waiting as u64,
        );
        out.push_str(
            "# HELP modelcrate_model_info The variant each model serves.\n# TYPE modelcrate_model_info gauge\n",
        );
        for gauge in models {
            let _ = writeln!(
                out,
                "modelcrate_model_info{{model=\"{}\",task=\"{}\",variant=\"{}\",kind=\"{}\"}} 1",
                quoted(gauge.model),
                quoted(gauge.task),
                quoted(gauge.variant),
                quoted(gauge.kind)
            );
        }
        per_model_gauge(
            &mut out,
            "modelcrate_model_generation",
            "Generations of each model: 1 at start, one more per hot swap.",
            models,
            |gauge| gauge.generation,
        );
        per_model_gauge(
            &mut out,
            "modelcrate_model_reload_refused",
            "1 when a model's last reload was refused and an older model serves.",
            models,
            |gauge| u64::from(gauge.reload_refused),
        );
        out.push_str(
            "# HELP modelcrate_model_reloads_total Hot reloads by model, trigger (admin, watch) and outcome (swapped, refused).\n# TYPE modelcrate_model_reloads_total counter\n",
        );
        for ((model, trigger, outcome), count) in &recorded.reloads {
            let _ = writeln!(
                out,
                "modelcrate_model_reloads_total{{model=\"{}\",trigger=\"{trigger}\",outcome=\"{outcome}\"}} {count}",
                quoted(model)
            );
        }
        out.push_str(
            "# HELP modelcrate_model_reload_stage_seconds Seconds each stage (load, canary, warm_up) of a model's last reload took.\n# TYPE modelcrate_model_reload_stage_seconds gauge\n",
        );
        for ((model, stage), seconds) in &recorded.reload_stages {
            let _ = writeln!(
                out,
                "modelcrate_model_reload_stage_seconds{{model=\"{}\",stage=\"{stage}\"}} {seconds}",
                quoted(model)
            );
        }
        out.push_str(
            "# HELP modelcrate_in_flight Prediction requests being answered.\n# TYPE modelcrate_in_flight gauge\n",
        );
        let _ = writeln!(out, "modelcrate_in_flight {in_flight}");
        out.push_str(
            "# HELP modelcrate_phase The server's phase (1 for the current one).\n# TYPE modelcrate_phase gauge\n",
        );
        for name in ["warming_up", "ready", "draining"] {
            let _ = writeln!(out, "modelcrate_phase{{phase=\"{name}\"}} {}", u8::from(name == phase));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::served::{Outcome, Trigger};

    #[test]
    fn histograms_are_cumulative_and_requests_counted_by_label() {
        let metrics = Metrics::default();
        metrics.request("news-topic", "/models/{name}/predict", 200, "");
        metrics.request("news-topic", "/models/{name}/predict", 200, "");
        metrics.request("news-embed", "/v1/embeddings", 200, "");
        metrics.request("_unknown", "/models/{name}/predict", 404, "model_not_found");
        let timing = |ms: u64, rows: usize| Timing {
            total: Duration::from_millis(ms),
            preparation: Duration::from_micros(300),
            queue: Duration::from_millis(1),
            inference: Duration::from_millis(ms),
            batch_rows: rows,
        };
        metrics.answered("news-topic", timing(20, 3));
        metrics.answered("news-topic", timing(200, 32));
        let attempt = |outcome, seconds: &[(&'static str, f64)]| Attempt {
            trigger: Trigger::Watch,
            outcome,
            at: 0.0,
            seconds: seconds.iter().copied().collect(),
            variant: None,
            error: None,
            failures: Vec::new(),
        };
        metrics.reloaded(
            "news-topic",
            &attempt(Outcome::Refused, &[("load", 0.5), ("canary", 9.0)]),
        );
        metrics.reloaded("news-topic", &attempt(Outcome::Refused, &[("load", 3.0)]));
        let text = metrics.render(&[], 0, "ready");
        assert!(
            text.contains(
                "modelcrate_model_reloads_total{model=\"news-topic\",trigger=\"watch\",outcome=\"refused\"} 2"
            )
        );
        // The stages of the last reload only.
        assert!(text.contains("modelcrate_model_reload_stage_seconds{model=\"news-topic\",stage=\"load\"} 3\n"));
        assert!(!text.contains("stage=\"canary\""), "{text}");
        assert!(
            text.contains(
                "modelcrate_requests_total{model=\"news-topic\",route=\"/models/{name}/predict\",status=\"200\",error_type=\"\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("status=\"404\",error_type=\"model_not_found\"} 1"));
        assert!(text.contains("{model=\"news-embed\",route=\"/v1/embeddings\",status=\"200\",error_type=\"\"} 1"));
        assert!(text.contains("modelcrate_request_duration_seconds_bucket{model=\"news-topic\",le=\"0.025\"} 1"));
        assert!(text.contains("modelcrate_request_duration_seconds_bucket{model=\"news-topic\",le=\"0.25\"} 2"));
        assert!(text.contains("modelcrate_batch_size_bucket{model=\"news-topic\",le=\"4\"} 1"));
        assert!(text.contains("modelcrate_batch_size_bucket{model=\"news-topic\",le=\"+Inf\"} 2"));
        assert!(text.contains("modelcrate_batch_size_sum{model=\"news-topic\"} 35"));
        assert!(text.contains("modelcrate_phase{phase=\"ready\"} 1"));
    }
}
