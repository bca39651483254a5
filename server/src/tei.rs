//! The routes of Hugging Face's text-embeddings-inference (TEI), for its clients:
//! `POST /embed` (`inputs`, `normalize` true by default, `truncate`), `POST /predict`
//! (`inputs` a text, or a batch `[["text"], …]`; `raw_scores`, `truncate`; every label,
//! best first), `POST /tokenize` (`inputs`, `add_special_tokens`; byte offsets) and
//! `GET /info`. TEI serves one model per process; here a body's `model` field (or `/info`'s
//! `?model=`) picks one, and may be left out when only one served model fits the route.
//!
//! Where TEI's semantics are its own they are kept: a text longer than the model's max
//! length is refused with 413 unless the request says `truncate: true` (or the server runs
//! with `--auto-truncate`), and on `/predict` a two-string array is a *pair* of texts, which
//! the classifiers here (single-text models, not cross-encoders) refuse.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use modelcrate_core::{Engine, Infer, TopK, Truncate};
use modelcrate_runtime::Task;
use modelcrate_runtime::classification::ClassificationFunction;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::request::{Inputs, batch_size, invalid, kind, optional_bool, optional_string, text, texts};
use crate::state::AppState;
use modelcrate_core::pipeline;

/// The served model a TEI route runs: the one `model` names, which must be of `task`, or
/// without a name the only served model of `task`.
fn chosen(state: &AppState, model: Option<&str>, task: Task, route: &str) -> Result<Arc<Engine>, ApiError> {
    if let Some(name) = model {
        let engine = state.engine(name)?;
        let found = engine.model().info().task;
        if found != task {
            return Err(invalid(format!(
                "`model`: `{name}` is a {} model; {route} serves {} models",
                found.as_str(),
                task.as_str()
            )));
        }
        return Ok(engine);
    }
    let fitting: Vec<Arc<Engine>> = state
        .models
        .engines()
        .into_iter()
        .filter(|engine| engine.model().info().task == task)
        .collect();
    match fitting.as_slice() {
        [only] => Ok(Arc::clone(only)),
        [] => Err(invalid(format!(
            "no {} model is served, so {route} has nothing to run",
            task.as_str()
        ))),
        several => {
            let names: Vec<&str> = several.iter().map(|engine| engine.model().info().name).collect();
            Err(invalid(format!(
                "missing field `model`: {} {} models are served ({names:?}); name one",
                names.len(),
                task.as_str()
            )))
        }
    }
}

/// `POST /embed`: one vector per text, always a list of vectors.
pub async fn embed(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    state
        .json_route(
            "/embed",
            body,
            &["inputs", "normalize", "truncate", "model"],
            async |object| embed_texts(&state, &object).await,
        )
        .await
}

async fn embed_texts(state: &AppState, object: &Map<String, Value>) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let started = Instant::now();
    let engine = chosen(
        state,
        optional_string(object, "model")?,
        Task::FeatureExtraction,
        "/embed",
    )?;
    let inputs = texts(
        object.get("inputs"),
        "inputs",
        state.limits.max_client_batch_size,
        "text",
    )?;
    let normalize = optional_bool(object, "normalize")?.unwrap_or(true);
    let truncate = optional_bool(object, "truncate")?;
    let infer = Infer::new(engine, state.limits.core());
    let name = infer.info().name;
    let truncate = Truncate::Asked {
        allowed: truncate,
        field: "inputs",
    };
    let embedded = infer.embed(inputs.into_texts(), truncate, Some(normalize)).await?;
    Ok((
        state.finish(name, &embedded.timings, started),
        Json(json!(embedded.embeddings)),
    ))
}

/// `/predict`'s `inputs`: a text, or a batch of one-text arrays. Pairs are refused by name.
fn predict_inputs(value: Option<&Value>, max_inputs: usize) -> Result<Inputs, ApiError> {
    let pair = |place: &str| {
        invalid(format!(
            "`{place}` is a pair of texts, which only a cross-encoder scores; this model classifies one text: send \"text\", or a batch as [[\"text\"], …]"
        ))
    };
    match value {
        Some(Value::Array(items)) if items.first().is_some_and(Value::is_string) => match items.as_slice() {
            [one] => Ok(Inputs::One(text(one, "inputs[0]")?)),
            [_, _] => Err(pair("inputs")),
            _ => Err(invalid(format!(
                "`inputs` has {} strings: a text is \"text\" or [\"text\"], and a batch is [[\"text\"], …]",
                items.len()
            ))),
        },
        Some(Value::Array(items)) => {
            batch_size(items.len(), "inputs", max_inputs, "text")?;
            let texts = items
                .iter()
                .enumerate()
                .map(|(i, item)| match item.as_array().map(Vec::as_slice) {
                    Some([one]) => text(one, &format!("inputs[{i}][0]")),
                    Some([_, _]) => Err(pair(&format!("inputs[{i}]"))),
                    _ => Err(invalid(format!(
                        "`inputs[{i}]` must be an array of one text, got {}",
                        kind(item)
                    ))),
                })
                .collect::<Result<_, _>>()?;
            Ok(Inputs::Many(texts))
        }
        other => texts(other, "inputs", max_inputs, "text"),
    }
}

/// `POST /predict`: every label with its score, best first; a list of such lists for a batch.
pub async fn predict(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    state
        .json_route(
            "/predict",
            body,
            &["inputs", "raw_scores", "truncate", "model"],
            async |object| classify_texts(&state, &object).await,
        )
        .await
}

async fn classify_texts(state: &AppState, object: &Map<String, Value>) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let started = Instant::now();
    let engine = chosen(
        state,
        optional_string(object, "model")?,
        Task::TextClassification,
        "/predict",
    )?;
    let inputs = predict_inputs(object.get("inputs"), state.limits.max_client_batch_size)?;
    let raw_scores = optional_bool(object, "raw_scores")?.unwrap_or(false);
    let truncate = optional_bool(object, "truncate")?;
    let infer = Infer::new(engine, state.limits.core());
    let name = infer.info().name;
    let single = inputs.is_one();
    let truncate = Truncate::Asked {
        allowed: truncate,
        field: "inputs",
    };
    // Raw scores are the logits; otherwise the model's function (the pipeline's default).
    let function = raw_scores.then_some(ClassificationFunction::None);
    let classified = infer.classify(inputs.into_texts(), truncate, function).await?;
    let answer = pipeline::answer(infer.info().labels, &classified.scores, TopK::All, single);
    Ok((state.finish(name, &classified.timings, started), Json(answer)))
}

/// `POST /tokenize`: each text's tokens as the model sees them (truncated at its max
/// length), with byte offsets into the text; special tokens have none.
pub async fn tokenize(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    state
        .json_route(
            "/tokenize",
            body,
            &["inputs", "add_special_tokens", "model"],
            async |object| tokens(&state, &object).await,
        )
        .await
}

async fn tokens(state: &AppState, object: &Map<String, Value>) -> Result<Json<Value>, ApiError> {
    let engine = match optional_string(object, "model")? {
        Some(name) => state.engine(name)?,
        None => {
            let text_models: Vec<Arc<Engine>> = state
                .models
                .engines()
                .into_iter()
                .filter(|e| e.model().encoder().is_some())
                .collect();
            match text_models.as_slice() {
                [only] => Arc::clone(only),
                _ => {
                    let names: Vec<&str> = text_models.iter().map(|e| e.model().info().name).collect();
                    return Err(invalid(format!(
                        "missing field `model`: name one of the text models {names:?}"
                    )));
                }
            }
        }
    };
    let inputs = texts(
        object.get("inputs"),
        "inputs",
        state.limits.max_client_batch_size,
        "text",
    )?;
    let special = optional_bool(object, "add_special_tokens")?.unwrap_or(true);
    let tokenized = Infer::new(engine, state.limits.core())
        .tokenize(inputs.into_texts(), special)
        .await?;
    let answer = tokenized
        .iter()
        .map(|tokens| {
            tokens
                .iter()
                .map(|token| {
                    json!({"id": token.id, "text": token.text, "special": token.special, "start": token.start, "stop": token.stop})
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    Ok(Json(json!(answer)))
}

/// `GET /info[?model=name]`: TEI's description of one model (the only one, or the one
/// named) with the server's limits; with several served and none named, the limits and
/// every model's name.
pub async fn info(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let named: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|error| invalid(format!("the query string is not form-encoded: {error}")))?;
    let mut model = None;
    for (key, value) in named {
        match key.as_str() {
            "model" => model = Some(value),
            other => return Err(invalid(format!("unknown query parameter `{other}`; expected `model`"))),
        }
    }
    let engine = match (model, state.models.len()) {
        (Some(name), _) => Some(state.engine(&name)?),
        (None, 1) => state.models.engines().into_iter().next(),
        (None, _) => None,
    };
    let limits = &state.limits;
    let mut answer = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "max_client_batch_size": limits.max_client_batch_size,
        "max_body_bytes": limits.max_body_bytes,
        "auto_truncate": limits.auto_truncate,
        "request_timeout_ms": limits.request_timeout.as_millis(),
        "models": state.models.names(),
    });
    if let Some(engine) = engine {
        let info = engine.model().info();
        let batching = engine.options();
        let model_type = match info.pooling {
            Some(pooling) => json!({"embedding": {
                "pooling": pooling.as_str(),
                "dimension": info.dimension,
            }}),
            None => {
                let id2label: Map<String, Value> = info
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(id, label)| (id.to_string(), json!(label)))
                    .collect();
                let label2id: Map<String, Value> = info
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(id, label)| ((*label).to_string(), json!(id)))
                    .collect();
                let kind = match info.task {
                    Task::TextClassification => "classifier",
                    Task::TokenClassification => "token_classifier",
                    _ => "image_classifier",
                };
                json!({kind: {"id2label": id2label, "label2id": label2id}})
            }
        };
        let extra = json!({
            "model_id": info.name,
            "model_sha": null,
            "model_dtype": info.variant.kind.as_str(),
            "model_type": model_type,
            "variant": info.variant.name,
            "max_concurrent_requests": batching.queue_capacity,
            "max_input_length": info.max_length,
            "max_batch_tokens": batching.max_batch_tokens,
            "max_batch_requests": batching.max_batch_size,
            "tokenization_workers": null,
        });
        if let (Value::Object(answer), Value::Object(extra)) = (&mut answer, extra) {
            answer.extend(extra);
        }
    }
    Ok(Json(answer))
}
