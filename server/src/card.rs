//! `GET /models/{name}`: a model's card. An API client gets JSON (what `/models` lists of
//! it, its Markdown card and every variant with its figures); a browser, which asks for
//! HTML first, gets the card as a page. The card's text is the generated crate's
//! `README.md` (task, base model, data, training, test figures, labels); the variants'
//! figures are `serving.json`'s, as `cargo xtask select` weighed them (test metric, speed,
//! memory, gate, why each does or does not serve), with each file's size from
//! `variants.json`; the limits are this server's.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use modelcrate_core::Engine;
use modelcrate_runtime::variants::read_variants;
use modelcrate_runtime::{ModelInfo, Task};
use modelcrate_schema::{Candidate, VariantKind};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::page::{self, escape};
use crate::state::AppState;
use crate::status;

/// One variant of a model, as the card shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VariantRow {
    pub name: String,
    pub kind: String,
    pub file: Option<String>,
    pub size_bytes: Option<u64>,
    /// How it was made (optimization level, quantizer).
    pub how: Option<String>,
    /// The test metric as `select` saw it, and its points against the teacher's FP32.
    pub test_metric: Option<Value>,
    pub sequences_per_second: Option<f64>,
    pub p50_ms: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// Whether it passed its parity gate; `None` when it was never weighed.
    pub passed: Option<bool>,
    /// `serves`, or why not.
    pub verdict: Option<String>,
    pub serves: bool,
}

impl VariantRow {
    /// A variant with no figures yet.
    fn new(name: &str, kind: VariantKind, serves: bool) -> Self {
        Self {
            name: name.to_string(),
            kind: kind.as_str().to_string(),
            file: None,
            size_bytes: None,
            how: None,
            test_metric: None,
            sequences_per_second: None,
            p50_ms: None,
            peak_rss_bytes: None,
            passed: None,
            verdict: None,
            serves,
        }
    }

    /// The figures `select` weighed it by.
    fn weighed(&mut self, candidate: &Candidate) {
        self.test_metric = Some(json!({
            "name": candidate.test_metric.name,
            "value": candidate.test_metric.value,
            "points_vs_teacher": candidate.test_metric.points_vs_teacher,
        }));
        self.sequences_per_second = candidate.sequences_per_second;
        self.p50_ms = candidate.p50_ms;
        self.peak_rss_bytes = candidate.peak_rss_bytes;
        self.passed = Some(candidate.passed);
        self.verdict = Some(candidate.verdict.clone());
    }
}

/// Every variant of `name`: those `variants.json` lists as made, with the figures of
/// `select`'s candidates; a candidate missing from `variants.json` (a folder holding the
/// serving files only) still shows. Also a note when `variants.json` cannot be read.
fn variant_rows(state: &AppState, name: &str, info: &ModelInfo) -> (Vec<VariantRow>, Option<String>) {
    let folder = state.reloader.folder(name);
    let (made, note) = match read_variants(&folder) {
        Ok(Some(variants)) => (variants.made().cloned().collect::<Vec<_>>(), None),
        Ok(None) => (Vec::new(), None),
        Err(error) => (Vec::new(), Some(format!("variants.json could not be read: {error}"))),
    };
    let serving = &info.variant.name;
    let weighed = |variant: &str| info.variant.candidates.iter().find(|c| c.name == variant);
    let mut rows: Vec<VariantRow> = made
        .iter()
        .map(|variant| {
            let mut row = VariantRow::new(&variant.name, variant.kind, variant.name == *serving);
            row.file = variant.file.clone();
            row.size_bytes = variant.size_bytes;
            row.how = variant.how.clone();
            if let Some(candidate) = weighed(&variant.name) {
                row.weighed(candidate);
            }
            row
        })
        .collect();
    for candidate in &info.variant.candidates {
        if rows.iter().all(|row| row.name != candidate.name) {
            let mut row = VariantRow::new(&candidate.name, candidate.kind, candidate.name == *serving);
            row.weighed(candidate);
            rows.push(row);
        }
    }
    if rows.iter().all(|row| !row.serves) {
        // Served by name or as the FP32 fallback: not among the weighed variants.
        let mut row = VariantRow::new(serving, info.variant.kind, true);
        row.file = Some(info.variant.file.clone());
        row.size_bytes = std::fs::metadata(folder.join(&info.variant.file)).ok().map(|m| m.len());
        row.verdict = Some(info.variant.selection.clone());
        rows.push(row);
    }
    (rows, note)
}

/// Whether the client asks for HTML before JSON (a browser's `Accept` lists
/// `text/html` first; an API client's lists JSON, `*/*` or nothing).
pub fn wants_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let quality = |wanted: &str| -> f32 {
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let media = parts.next()?.trim();
                (media == wanted).then(|| {
                    parts
                        .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
                        .unwrap_or(1.0)
                })
            })
            .fold(0.0, f32::max)
    };
    let html = quality("text/html");
    html > 0.0 && html >= quality("application/json")
}

#[utoipa::path(get, path = "/models/{name}", tag = "Server",
    params(("name" = String, Path, description = "a served model")),
    responses(
        (status = 200, description = "the model as `/models` lists it, its Markdown `card` and every variant with its figures; HTML for a browser that asks for it (`Accept: text/html`)"),
        (status = 404, description = "unknown model", body = crate::error::ErrorBody),
    ))]
pub async fn card(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    match card_of(&state, &name, wants_html(&headers)) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn card_of(state: &AppState, name: &str, html: bool) -> Result<Response, ApiError> {
    let slot = state
        .models
        .slot(name)
        .ok_or_else(|| ApiError::ModelNotFound(name.to_string()))?;
    // Every model a server serves is a generated crate's, with its card.
    let entry = crate::CATALOG.entry(name).ok();
    let markdown = entry.map_or("", |entry| entry.card);
    let Some(engine) = slot.engine() else {
        let task = entry.map(|entry| entry.task);
        let coming = json!({
            "name": name,
            "task": task.map(Task::as_str),
            "state": "coming",
            "reload": state.models.describe(name),
            "card": markdown,
        });
        return Ok(if html {
            Html(page::document(name, &page::article(&coming_page(name, task, markdown)))).into_response()
        } else {
            Json(coming).into_response()
        });
    };
    let info = engine.model().info();
    let (rows, note) = variant_rows(state, name, info);
    if html {
        let body = serving_page(state, &engine, markdown, &rows, note.as_deref());
        return Ok(Html(page::document(name, &page::article(&body))).into_response());
    }
    let mut described = status::described(state, &engine);
    described["card"] = json!(markdown);
    described["variants"] = json!(rows);
    if let Some(note) = note {
        described["variants_note"] = json!(note);
    }
    Ok(Json(described).into_response())
}

fn coming_page(name: &str, task: Option<Task>, card: &str) -> String {
    format!(
        "<header><h1>{}</h1><p><span class=\"task\">{}</span> <span class=\"state coming\">coming</span>: \
         its pipeline has not finished; it serves once its <code>serving.json</code> appears.</p></header>\n\
         <section class=\"card\">{}</section>",
        escape(name),
        escape(task.map_or("", Task::as_str)),
        page::markdown(card)
    )
}

fn serving_page(state: &AppState, engine: &Engine, card: &str, rows: &[VariantRow], note: Option<&str>) -> String {
    let info = engine.model().info();
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<header><h1>{}</h1><p><span class=\"task\">{}</span> <span class=\"state serving\">serving</span> \
         <code>{}</code> · <a href=\"/#{}\">try it in the playground</a> · <a href=\"/models/{}\" type=\"application/json\" \
         data-json>JSON</a> · <a href=\"/docs\">API</a></p></header>",
        escape(info.name),
        escape(info.task.as_str()),
        escape(&info.variant.name),
        escape(info.name),
        escape(info.name),
    );
    let _ = writeln!(html, "<section class=\"card\">{}</section>", page::markdown(card));
    html.push_str("<section><h2>Variants</h2>\n");
    html.push_str(&variants_table(rows));
    if let Some(note) = note {
        let _ = write!(html, "<p class=\"note\">{}</p>", escape(note));
    }
    let _ = writeln!(
        html,
        "<p class=\"why\"><strong>Why <code>{}</code> serves:</strong> {}</p></section>",
        escape(&info.variant.name),
        escape(&info.variant.selection)
    );
    html.push_str("<section><h2>Limits</h2>\n<table class=\"limits\">\n");
    for (what, value) in limits(state, engine) {
        let _ = writeln!(html, "<tr><th>{}</th><td>{}</td></tr>", escape(&what), escape(&value));
    }
    html.push_str("</table></section>\n");
    html
}

/// The variants as a table: size, test metric, speed, memory, gate, verdict.
fn variants_table(rows: &[VariantRow]) -> String {
    let mut html = String::from(
        "<table class=\"variants\"><thead><tr><th>variant</th><th>kind</th><th>size</th><th>test metric</th>\
         <th>vs teacher</th><th>texts/s (batch 32, 1 thread)</th><th>p50, one input</th><th>peak RSS</th>\
         <th>parity gate</th><th>verdict</th></tr></thead><tbody>\n",
    );
    let dash = || "–".to_string();
    for row in rows {
        let metric = row.test_metric.as_ref();
        let value = metric
            .and_then(|m| Some(format!("{} {:.4}", m["name"].as_str()?, m["value"].as_f64()?)))
            .unwrap_or_else(dash);
        let points = metric
            .and_then(|m| m["points_vs_teacher"].as_f64())
            .map_or_else(dash, |p| format!("{p:+.2} pt"));
        let gate = match row.passed {
            Some(true) => "<span class=\"pass\">passed</span>",
            Some(false) => "<span class=\"fail\">failed</span>",
            None => "–",
        };
        let _ = writeln!(
            html,
            "<tr{}><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if row.serves { " class=\"serves\"" } else { "" },
            escape(&row.name),
            escape(&row.kind),
            row.size_bytes.map_or_else(dash, megabytes),
            escape(&value),
            escape(&points),
            row.sequences_per_second.map_or_else(dash, |s| format!("{s:.1}")),
            row.p50_ms.map_or_else(dash, |ms| format!("{ms:.2} ms")),
            row.peak_rss_bytes.map_or_else(dash, megabytes),
            gate,
            escape(row.verdict.as_deref().unwrap_or("–")),
        );
    }
    html.push_str("</tbody></table>\n");
    html
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// What a request to this model is held to here.
fn limits(state: &AppState, engine: &Engine) -> Vec<(String, String)> {
    let info = engine.model().info();
    let limits = &state.limits;
    let batching = engine.options();
    let mut rows = Vec::new();
    let images = info.image.is_some() || info.detector.is_some() || info.image_text.is_some();
    let texts = !matches!(info.task, Task::ImageClassification | Task::ObjectDetection);
    if texts {
        let cut = if info.task == Task::QuestionAnswering {
            "a longer context is read in overlapping windows".to_string()
        } else if limits.auto_truncate {
            "longer texts are cut on every route (--auto-truncate)".to_string()
        } else {
            "longer texts are cut on the Inference API route, refused on TEI's and OpenAI's unless the request asks to truncate".to_string()
        };
        rows.push(("text length".into(), format!("{} tokens; {cut}", info.max_length)));
    }
    if images {
        rows.push((
            "image size".into(),
            format!(
                "{} pixels at most (--max-image-pixels), PNG or JPEG",
                limits.max_image_pixels
            ),
        ));
    }
    rows.push((
        "inputs per request".into(),
        format!("{} (--max-client-batch-size)", limits.max_client_batch_size),
    ));
    rows.push((
        "request body".into(),
        format!("{} (--max-body-bytes)", megabytes(limits.max_body_bytes as u64)),
    ));
    rows.push((
        "waiting requests".into(),
        format!(
            "{} (--queue-capacity); beyond it 429 with Retry-After",
            batching.queue_capacity
        ),
    ));
    rows.push((
        "answer within".into(),
        format!(
            "{} ms (--request-timeout-ms); then 504",
            limits.request_timeout.as_millis()
        ),
    ));
    rows.push(("engine".into(), engine.layout().describe()));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        // Chromium's and Firefox's navigation Accept.
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(wants_html(&accept(chromium)));
        assert!(wants_html(&accept("text/html")));
        for api in [
            "application/json",
            "*/*",
            "application/json, text/html;q=0.5",
            "text/html;q=0",
        ] {
            assert!(!wants_html(&accept(api)), "{api}");
        }
        assert!(!wants_html(&HeaderMap::new()), "no Accept: JSON");
    }
}
