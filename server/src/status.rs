//! The server's own routes: health, liveness, readiness, the models it serves (`/models`)
//! and its Prometheus metrics.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use modelcrate_core::Engine;
use modelcrate_runtime::TensorSpec;
use modelcrate_runtime::detection::DEFAULT_DECODE;
use modelcrate_runtime::image_text::DEFAULT_HYPOTHESIS_TEMPLATE;
use serde_json::{Value, json};

use crate::error::{ApiError, ErrorBody};
use crate::lifecycle::Phase;
use crate::metrics::ModelGauge;
use crate::served::{Generation, Outcome};
use crate::state::AppState;

#[utoipa::path(get, path = "/health", tag = "Server", responses((status = 200, description = "phase, models, requests in flight")))]
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "phase": state.lifecycle.phase().as_str(),
        "models": state.models.len(),
        "in_flight": state.lifecycle.in_flight(),
    }))
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "Server", responses((status = 200, description = "Prometheus metrics", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> (HeaderMap, String) {
    let engines: Vec<(Arc<Engine>, Generation)> = state
        .models
        .slots()
        .filter_map(|(_, slot)| slot.engine().map(|engine| (engine, slot.generation())))
        .collect();
    let gauges: Vec<ModelGauge> = engines
        .iter()
        .map(|(engine, generation)| {
            let info = engine.model().info();
            ModelGauge {
                model: info.name,
                task: info.task.as_str(),
                variant: &info.variant.name,
                kind: info.variant.kind.as_str(),
                waiting: engine.waiting(),
                generation: generation.number,
                reload_refused: generation
                    .last_attempt
                    .as_ref()
                    .is_some_and(|attempt| attempt.outcome == Outcome::Refused),
            }
        })
        .collect();
    let text = state
        .metrics
        .render(&gauges, state.lifecycle.in_flight(), state.lifecycle.phase().as_str());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    (headers, text)
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "Server", responses((status = 200, description = "live")))]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// Readiness: 200 once every loaded model has warmed up and at least one serves, 503
/// before and while draining. The body names the models still coming (`--wait-for-models`).
#[utoipa::path(get, path = "/health/ready", tag = "Server",
    responses((status = 200, description = "warmed up with at least one model serving; `coming` names the models still coming"), (status = 503, description = "warming up, draining, or no model serving yet", body = ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let coming = state.models.coming();
    match state.lifecycle.phase() {
        Phase::Ready if coming.len() == state.models.len() => Err(ApiError::Unavailable(format!(
            "no model serves yet; still coming: {}",
            coming.join(", ")
        ))),
        Phase::Ready => Ok(Json(json!({
            "status": "ready",
            "models": state.models.len() - coming.len(),
            "coming": coming,
        }))),
        Phase::WarmingUp => Err(ApiError::Unavailable("the models are warming up".into())),
        Phase::Leaving | Phase::Draining => Err(ApiError::Unavailable("the server is shutting down".into())),
    }
}

#[utoipa::path(get, path = "/models", tag = "Server",
    responses((status = 200, description = "every served model: task, labels, signature, variant, limits; `state` is `coming` for a model whose pipeline has not finished (--wait-for-models)")))]
pub async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let models: Vec<Value> = state
        .models
        .engines()
        .iter()
        .map(|engine| described(&state, engine))
        .collect();
    // Models still coming have no engine yet: their name, task and last load attempt.
    let coming = state.models.coming().into_iter().map(|name| {
        json!({
            "name": name,
            "task": crate::CATALOG.entry(name).map(|entry| entry.task.as_str()).ok(),
            "state": "coming",
            "reload": state.models.describe(name),
        })
    });
    Json(Value::Array(models.into_iter().chain(coming).collect()))
}

/// A served model as `/models` lists it (and `/models/{name}` describes it): task,
/// labels, signature, the variant serving and why, its engine and the limits.
pub(crate) fn described(state: &AppState, engine: &Engine) -> Value {
    let info = engine.model().info();
    let batching = engine.options();
    json!({
        "name": info.name,
        "task": info.task.as_str(),
        "labels": info.labels,
        "problem_type": info.problem_type.map(|p| p.as_str()),
        "dimension": info.dimension,
        "image": info.image.map(|image| json!({
            "resize_shortest_edge": image.resize_shortest,
            "crop_size": image.crop,
            "image_mean": image.mean,
            "image_std": image.std,
            "max_pixels": state.limits.max_image_pixels,
        })),
        "detector": info.detector.map(|detector| json!({
            "letterbox_size": detector.letterboxing.size,
            "stride": detector.grid.stride,
            "image_mean": detector.letterboxing.mean,
            "image_std": detector.letterboxing.std,
            "max_pixels": state.limits.max_image_pixels,
            "threshold": DEFAULT_DECODE.threshold,
            "iou_threshold": DEFAULT_DECODE.iou_threshold,
        })),
        "signature": {
            "inputs": tensors(info.signature.inputs),
            "outputs": tensors(info.signature.outputs),
        },
        // An image–text model's text tower, and the temperature of its zero-shot scores.
        "image_text": info.image_text.map(|towers| json!({
            "text_signature": {
                "inputs": tensors(towers.text_signature.inputs),
                "outputs": tensors(towers.text_signature.outputs),
            },
            "logit_scale": towers.logit_scale,
            "hypothesis_template": DEFAULT_HYPOTHESIS_TEMPLATE,
        })),
        // A SetFit classifier's second session, run on the body's embeddings.
        "head_signature": info.head.map(|head| json!({
            "inputs": tensors(head.inputs),
            "outputs": tensors(head.outputs),
        })),
        "max_length": info.max_length,
        // name, file, kind, and why it serves
        "variant": info.variant,
        "sessions": info.sessions,
        // the serving policy (measured, or the flags'), as it runs
        "layout": engine.layout().describe(),
        "max_client_batch_size": state.limits.max_client_batch_size,
        "batching": {
            "max_batch_size": batching.max_batch_size,
            "max_batch_tokens": batching.max_batch_tokens,
            "merge": batching.merge.describe(),
            "merge_steps": batching.merge.steps,
            "max_queue_delay_ms": batching.max_queue_delay.as_secs_f64() * 1e3,
            "queue_capacity": batching.queue_capacity,
            "workers": engine.workers(),
            "waiting": engine.waiting(),
        },
        "request_timeout_ms": state.limits.request_timeout.as_millis(),
        // generation, serving_since, last_reload (see `reload`)
        "reload": state.models.describe(info.name),
        "state": "serving",
    })
}

/// Tensors as `/models` lists them; `null` marks a dynamic dimension.
fn tensors(specs: &[TensorSpec]) -> Vec<Value> {
    specs
        .iter()
        .map(|t| json!({"name": t.name, "dtype": t.dtype.as_str(), "dims": t.dims}))
        .collect()
}
