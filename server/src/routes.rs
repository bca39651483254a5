//! The router: the table of every route and its handler (each protocol's module holds
//! its own), the server's own routes (health, readiness, the models listed, metrics),
//! and the fallbacks. Every response carries its `x-request-id` (see `request_log`).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use modelcrate_core::Engine;
use modelcrate_runtime::TensorSpec;
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::{ApiError, ErrorBody};
use crate::lifecycle::Phase;
use crate::metrics::ModelGauge;
use crate::served::{Generation, Outcome};
use crate::state::AppState;
use crate::{admin, hf, kserve, openai, openapi, request_log, tei};

/// One route: a path, the method it answers and its handler. [`app`] serves the table of
/// [`endpoints`], and the OpenAPI test reads the same table, so a route added without its
/// description in `/openapi.json` fails a test.
pub struct Endpoint {
    pub path: &'static str,
    pub method: Method,
    handler: MethodRouter<AppState>,
}

fn get_at<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Endpoint {
    Endpoint {
        path,
        method: Method::GET,
        handler: get(handler),
    }
}

fn post_at<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Endpoint {
    Endpoint {
        path,
        method: Method::POST,
        handler: post(handler),
    }
}

/// Every route the server answers.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get_at("/health", health),
        get_at("/health/live", live),
        get_at("/health/ready", ready),
        get_at("/models", list_models),
        get_at("/metrics", metrics),
        post_at("/models/{name}/predict", hf::predict),
        post_at("/v1/embeddings", openai::embeddings),
        get_at("/v1/models", openai::models),
        post_at("/embed", tei::embed),
        post_at("/predict", tei::predict),
        post_at("/tokenize", tei::tokenize),
        get_at("/info", tei::info),
        get_at("/openapi.json", openapi::document),
        get_at("/docs", openapi::docs),
        get_at("/docs/swagger-ui-bundle.js", openapi::swagger_js),
        get_at("/docs/swagger-ui.css", openapi::swagger_css),
        get_at("/v2", kserve::server),
        get_at("/v2/health/live", kserve::live),
        get_at("/v2/health/ready", kserve::ready),
        get_at("/v2/models/{name}", kserve::metadata),
        get_at("/v2/models/{name}/ready", kserve::model_ready),
        post_at("/v2/models/{name}/infer", kserve::infer),
        post_at("/admin/models/{name}/reload", admin::reload),
    ]
}

pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    endpoints()
        .into_iter()
        .fold(Router::new(), |router, endpoint| {
            router.route(endpoint.path, endpoint.handler)
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(crate::error::panicked))
        .layer(axum::middleware::from_fn(request_log::with_request_id))
        .with_state(state)
}

#[utoipa::path(get, path = "/health", tag = "Server", responses((status = 200, description = "phase, models, requests in flight")))]
pub(crate) async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "phase": state.lifecycle.phase().as_str(),
        "models": state.models.len(),
        "in_flight": state.lifecycle.in_flight(),
    }))
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "Server", responses((status = 200, description = "Prometheus metrics", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> (HeaderMap, String) {
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
pub(crate) async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// Readiness: 200 once every loaded model has warmed up and at least one serves, 503
/// before and while draining. The body names the models still coming (`--wait-for-models`).
#[utoipa::path(get, path = "/health/ready", tag = "Server",
    responses((status = 200, description = "warmed up with at least one model serving; `coming` names the models still coming"), (status = 503, description = "warming up, draining, or no model serving yet", body = ErrorBody)))]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
        Phase::Draining => Err(ApiError::Unavailable("the server is shutting down".into())),
    }
}

#[utoipa::path(get, path = "/models", tag = "Server",
    responses((status = 200, description = "every served model: task, labels, signature, variant, limits; `state` is `coming` for a model whose pipeline has not finished (--wait-for-models)")))]
pub(crate) async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let models: Vec<Value> = state
        .models
        .engines()
        .iter()
        .map(|engine| {
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
                "signature": {
                    "inputs": tensors(info.signature.inputs),
                    "outputs": tensors(info.signature.outputs),
                },
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
        })
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

/// Tensors as `/models` lists them; `null` marks a dynamic dimension.
fn tensors(specs: &[TensorSpec]) -> Vec<Value> {
    specs
        .iter()
        .map(|t| json!({"name": t.name, "dtype": t.dtype.as_str(), "dims": t.dims}))
        .collect()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
