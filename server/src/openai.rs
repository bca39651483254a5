//! The OpenAI embeddings API, as the `openai` client calls it: `POST /v1/embeddings`
//! (`model`, `input` a string or an array of strings, `encoding_format` `float` or
//! `base64`, `dimensions`, `user`) and `GET /v1/models`. Errors have OpenAI's shape,
//! `{"error": {"message", "type", "param", "code"}}`, with the statuses of the other routes.
//!
//! `input` as token ids is refused: ids are only meaningful in the model's own vocabulary,
//! and OpenAI's clients send tiktoken's. `dimensions` keeps the first `dimensions` values
//! and L2-normalises them again when the model normalises, as OpenAI does for its
//! text-embedding-3 models; a model not trained that way (MiniLM is not) loses more by
//! truncation than theirs do.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use modelcrate_core::{Infer, Truncate};
use modelcrate_runtime::Task;
use modelcrate_runtime::embedding::l2_normalize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::request::{invalid, kind, optional_string, texts};
use crate::state::AppState;

const ROUTE: &str = "/v1/embeddings";
const FIELDS: [&str; 5] = ["model", "input", "encoding_format", "dimensions", "user"];

/// An error in OpenAI's shape.
pub struct OpenAiError(ApiError);

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let error = &self.0;
        // The field a validation message names first (`input[2]` → `input`).
        let param = match error {
            ApiError::Validation(message) => message
                .split('`')
                .nth(1)
                .map(|field| field.split(['[', '.']).next().unwrap_or(field).to_string()),
            _ => None,
        };
        let kind = match error {
            ApiError::Validation(_) | ApiError::MalformedJson(_) | ApiError::PayloadTooLarge(_) => {
                "invalid_request_error"
            }
            ApiError::ModelNotFound(_) => "invalid_request_error",
            _ => "server_error",
        };
        error.respond_with(json!({
            "error": {
                "message": error.to_string(),
                "type": kind,
                "param": param,
                "code": error.kind(),
            }
        }))
    }
}

/// A validated embeddings request.
struct EmbeddingsRequest {
    texts: Vec<String>,
    base64: bool,
    dimensions: Option<usize>,
}

/// The request in `object` (whose fields are already known ones), with its model's name.
fn parse(object: &Map<String, Value>, max_inputs: usize) -> Result<(String, EmbeddingsRequest), ApiError> {
    let model = match object.get("model") {
        Some(Value::String(model)) => model.clone(),
        None => return Err(invalid("missing field `model`".into())),
        Some(value) => return Err(invalid(format!("`model` must be a string, got {}", kind(value)))),
    };
    if let Some(Value::Array(items)) = object.get("input")
        && items.iter().any(|item| item.is_number() || item.is_array())
    {
        return Err(invalid(
            "`input` as token ids is not accepted: send text, which the model's own tokenizer splits".into(),
        ));
    }
    let texts = texts(object.get("input"), "input", max_inputs, "text")?;
    let base64 = match optional_string(object, "encoding_format")? {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(invalid(format!(
                "`encoding_format` must be \"float\" or \"base64\", got {other:?}"
            )));
        }
    };
    let dimensions = match object.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return Err(invalid(format!("`dimensions` must be a positive integer, got {value}"))),
        },
    };
    optional_string(object, "user")?;
    let request = EmbeddingsRequest {
        texts: texts.texts().into_iter().map(str::to_string).collect(),
        base64,
        dimensions,
    };
    Ok((model, request))
}

/// `POST /v1/embeddings`.
pub async fn embeddings(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Value>), OpenAiError> {
    let max_inputs = state.limits.max_client_batch_size;
    state
        .json_route(ROUTE, body, &FIELDS, async |object| {
            let (model, request) = parse(&object, max_inputs)?;
            embed(&state, &model, request).await
        })
        .await
        .map_err(OpenAiError)
}

async fn embed(state: &AppState, name: &str, request: EmbeddingsRequest) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let started = Instant::now();
    let engine = state.engine(name)?;
    let info = engine.model().info();
    if info.task != Task::FeatureExtraction {
        return Err(invalid(format!(
            "`model`: `{name}` is a {} model; /v1/embeddings serves feature-extraction models",
            info.task.as_str()
        )));
    }
    let dimension = info.dimension.unwrap_or(0);
    if let Some(asked) = request.dimensions
        && asked > dimension
    {
        return Err(invalid(format!(
            "`dimensions` is {asked}, more than the {dimension} of model `{name}`"
        )));
    }
    let infer = Infer::new(engine, state.limits.core());
    let truncate = Truncate::Asked {
        allowed: None,
        field: "input",
    };
    let embedded = infer.embed(request.texts, truncate, None).await?;
    let (normalize, tokens) = (embedded.normalized, embedded.tokens);
    let data: Vec<Value> = embedded
        .embeddings
        .into_iter()
        .enumerate()
        .map(|(index, mut vector)| {
            if let Some(kept) = request.dimensions {
                vector.truncate(kept);
                if normalize {
                    l2_normalize(&mut vector);
                }
            }
            let embedding = if request.base64 {
                // Little-endian float32s, as OpenAI encodes them.
                let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let answer = json!({
        "object": "list",
        "data": data,
        "model": name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    Ok((state.finish(name, &embedded.timings, started), Json(answer)))
}

/// `GET /v1/models`: every served model, with its task.
pub async fn models(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .models
        .engines()
        .iter()
        .map(|engine| {
            let info = engine.model().info();
            json!({
                "id": info.name,
                "object": "model",
                "created": 0,
                "owned_by": "modelcrate",
                "task": info.task.as_str(),
                "embeddings": info.task == Task::FeatureExtraction,
            })
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}
