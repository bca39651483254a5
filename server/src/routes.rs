//! HTTP routes. Handlers are thin: parse and validate, run inference off the async
//! runtime, shape the answer as the `transformers` pipeline does.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Uri, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use modelcrate_runtime::{LoadedModel, TensorSpec};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::pipeline_json;
use crate::request::{ClassifyRequest, EmbedRequest, EntitiesRequest, Inputs};

/// Limits a request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_client_batch_size: usize,
    pub max_body_bytes: usize,
}

#[derive(Clone)]
pub struct AppState {
    pub models: Arc<BTreeMap<String, Arc<LoadedModel>>>,
    pub limits: Limits,
}

pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/models", get(list_models))
        .route("/models/{name}/predict", post(predict))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"status": "ok", "models": state.models.len()}))
}

async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let models: Vec<Value> = state
        .models
        .values()
        .map(|model| {
            let info = model.info();
            json!({
                "name": info.name,
                "task": info.task.as_str(),
                "labels": info.labels,
                "problem_type": info.problem_type.map(|p| p.as_str()),
                "dimension": info.dimension,
                "signature": {
                    "inputs": tensors(info.signature.inputs),
                    "outputs": tensors(info.signature.outputs),
                },
                "max_length": info.max_length,
                // name, file, kind, and why it serves
                "variant": info.variant,
                "sessions": info.sessions,
                "max_client_batch_size": state.limits.max_client_batch_size,
            })
        })
        .collect();
    Json(Value::Array(models))
}

/// Tensors as `/models` lists them; `null` marks a dynamic dimension.
fn tensors(specs: &[TensorSpec]) -> Vec<Value> {
    specs
        .iter()
        .map(|t| json!({"name": t.name, "dtype": t.dtype.as_str(), "dims": t.dims}))
        .collect()
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    match content_type {
        Some(value)
            if value
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) =>
        {
            Ok(())
        }
        Some(value) => Err(ApiError::UnsupportedMediaType(value.to_string())),
        None => Err(ApiError::UnsupportedMediaType("none".into())),
    }
}

async fn predict(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let model = state.models.get(&name).cloned().ok_or(ApiError::ModelNotFound(name))?;
    require_json(&headers)?;
    let body = body.map_err(|rejection| {
        ApiError::PayloadTooLarge(format!(
            "the body is over {} bytes (--max-body-bytes): {}",
            state.limits.max_body_bytes,
            rejection.body_text()
        ))
    })?;
    let max_inputs = state.limits.max_client_batch_size;
    // Parsing is cheap; it runs with inference, off the async runtime.
    let answer = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        match model.as_ref() {
            LoadedModel::TextClassification(classifier) => {
                let request = ClassifyRequest::parse(&body, max_inputs)?;
                let scores = classifier.scores(&request.inputs.texts(), request.function)?;
                let single = matches!(request.inputs, Inputs::One(_));
                Ok(pipeline_json::answer(
                    classifier.info().labels,
                    &scores,
                    request.top_k,
                    single,
                ))
            }
            LoadedModel::FeatureExtraction(embedder) => {
                let request = EmbedRequest::parse(&body, max_inputs)?;
                let texts = request.inputs.texts();
                let embeddings = match request.normalize {
                    Some(normalize) => embedder.embed_with(&texts, normalize)?,
                    None => embedder.embed(&texts)?,
                };
                // As the Inference API: one vector for one text, a list of vectors for a list.
                Ok(match (&request.inputs, embeddings.as_slice()) {
                    (Inputs::One(_), [embedding]) => json!(embedding),
                    _ => json!(embeddings),
                })
            }
            LoadedModel::TokenClassification(tagger) => {
                let request = EntitiesRequest::parse(&body, max_inputs)?;
                let ignore: Option<Vec<&str>> = request
                    .ignore_labels
                    .as_ref()
                    .map(|labels| labels.iter().map(String::as_str).collect());
                let found = tagger.entities(&request.inputs.texts(), request.strategy, ignore.as_deref())?;
                Ok(pipeline_json::entities(
                    &found,
                    matches!(request.inputs, Inputs::One(_)),
                ))
            }
        }
    })
    .await
    .map_err(|error| ApiError::Inference(error.to_string()))??;
    Ok(Json(answer))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
