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
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{self, Inputs, Text};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use modelcrate_core::pipeline::{self, Classification};

/// An error as TEI answers it: `{"error": "...", "error_type": "Validation"}`, its
/// `error_type` one of TEI's names and its status TEI's for that type: a failed inference
/// is `Backend` with 424, a full queue `Overloaded` with 429, a model not ready
/// `Unhealthy` with 503, too many or too long inputs `Validation` with 413, an empty input
/// `Empty` with 400. A field of the wrong shape keeps 422, malformed JSON 400, a wrong
/// content type 415 (TEI's axum answers those the same, in plain text); all are
/// `Validation`.
pub struct TeiError(pub ApiError);

/// TEI's `error_type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum TeiErrorType {
    Unhealthy,
    Backend,
    Overloaded,
    Validation,
    Tokenizer,
    Empty,
}

/// Every TEI route's error.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeiErrorBody {
    pub error: String,
    pub error_type: TeiErrorType,
}

impl TeiError {
    /// TEI's type and status for `error`.
    pub fn kind_of(error: &ApiError) -> (TeiErrorType, StatusCode) {
        match error {
            ApiError::Inference(_) => (TeiErrorType::Backend, StatusCode::FAILED_DEPENDENCY),
            ApiError::Busy(_) => (TeiErrorType::Overloaded, StatusCode::TOO_MANY_REQUESTS),
            ApiError::Timeout(_) => (TeiErrorType::Overloaded, StatusCode::GATEWAY_TIMEOUT),
            ApiError::Unavailable(_) => (TeiErrorType::Unhealthy, StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Validation(message)
                if message.contains(wire::EMPTY_LIST) || message.contains(wire::EMPTY_TEXT) =>
            {
                (TeiErrorType::Empty, StatusCode::BAD_REQUEST)
            }
            other => (TeiErrorType::Validation, other.status()),
        }
    }

    /// TEI's status for `error`.
    pub fn status_of(error: &ApiError) -> StatusCode {
        Self::kind_of(error).1
    }
}

impl From<ApiError> for TeiError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for TeiError {
    fn into_response(self) -> Response {
        let (error_type, status) = Self::kind_of(&self.0);
        self.0.respond(
            status,
            TeiErrorBody {
                error: self.0.to_string(),
                error_type,
            },
        )
    }
}

/// `POST /embed`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeiEmbedRequest {
    pub inputs: Inputs,
    /// L2-normalise each vector (TEI's default: true).
    pub normalize: Option<bool>,
    /// Cut a text longer than the model's max length; refused with 413 otherwise (unless
    /// the server runs with `--auto-truncate`).
    pub truncate: Option<bool>,
    /// The served embedding model; may be left out when only one is served.
    pub model: Option<String>,
}

/// `POST /predict`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeiPredictRequest {
    pub inputs: PredictInputs,
    /// The logits instead of the scores.
    pub raw_scores: Option<bool>,
    /// As `/embed`'s.
    pub truncate: Option<bool>,
    /// The served classifier; may be left out when only one is served.
    pub model: Option<String>,
}

/// `POST /tokenize`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    pub inputs: Inputs,
    /// `[CLS]`, `[SEP]` and the like (default: true).
    pub add_special_tokens: Option<bool>,
    /// The served text model; may be left out when only one is served.
    pub model: Option<String>,
}

/// One token of `/tokenize`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: u32,
    /// The text's piece under the token (the token itself for a special one).
    pub text: String,
    pub special: bool,
    /// Byte offsets into the text; `null` for a special token.
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

/// `/predict`'s `inputs`: a text, `["text"]`, or a batch `[["text"], …]`. A pair of texts
/// (`["a", "b"]`, or `[["a", "b"]]` in a batch) is what a cross-encoder scores, and is
/// refused by name: the classifiers here take one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictInputs(pub Inputs);

/// One item of a `/predict` list: a text, or a batch row of texts.
enum PredictItem {
    Text(String),
    Row(String),
}

const PAIR: &str = "is a pair of texts, which only a cross-encoder scores; this model classifies one text: send \"text\", or a batch as [[\"text\"], …]";

impl<'de> Deserialize<'de> for PredictItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;

        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = PredictItem;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a text or an array of one text")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<PredictItem, E> {
                Text::deserialize(de::value::StrDeserializer::new(text)).map(|Text(text)| PredictItem::Text(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut row: A) -> Result<PredictItem, A::Error> {
                let mut texts = Vec::new();
                while let Some(Text(text)) = row.next_element()? {
                    texts.push(text);
                }
                match <[String; 1]>::try_from(texts) {
                    Ok([text]) => Ok(PredictItem::Row(text)),
                    Err(texts) if texts.len() == 2 => Err(de::Error::custom(PAIR)),
                    Err(texts) => Err(de::Error::custom(format!(
                        "must be an array of one text, got {} texts",
                        texts.len()
                    ))),
                }
            }
        }

        deserializer.deserialize_any(ItemVisitor)
    }
}

impl<'de> Deserialize<'de> for PredictInputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputsVisitor;

        impl<'de> Visitor<'de> for InputsVisitor {
            type Value = PredictInputs;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a text, [\"text\"] or a batch [[\"text\"], …]")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<PredictInputs, E> {
                Text::deserialize(de::value::StrDeserializer::new(text))
                    .map(|Text(text)| PredictInputs(Inputs::One(text)))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<PredictInputs, A::Error> {
                let (mut texts, mut rows) = (Vec::new(), Vec::new());
                while let Some(item) = items.next_element()? {
                    match item {
                        PredictItem::Text(text) => texts.push(text),
                        PredictItem::Row(text) => rows.push(text),
                    }
                }
                match (texts.len(), rows.len()) {
                    (0, 0) => Err(de::Error::custom("is an empty array; send at least one text")),
                    (1, 0) => Ok(PredictInputs(Inputs::One(texts.remove(0)))),
                    (2, 0) => Err(de::Error::custom(PAIR)),
                    (count, 0) => Err(de::Error::custom(format!(
                        "has {count} strings: a text is \"text\" or [\"text\"], and a batch is [[\"text\"], …]"
                    ))),
                    (0, _) => Ok(PredictInputs(Inputs::Many(rows))),
                    _ => Err(de::Error::custom(
                        "mixes texts and one-text arrays: send a batch as [[\"text\"], …]",
                    )),
                }
            }
        }

        deserializer.deserialize_any(InputsVisitor)
    }
}

impl PartialSchema for PredictInputs {
    fn schema() -> RefOr<Schema> {
        let row = || {
            ArrayBuilder::new()
                .items(Text::schema())
                .min_items(Some(1))
                .max_items(Some(1))
        };
        OneOfBuilder::new()
            .item(Text::schema())
            .item(row())
            .item(ArrayBuilder::new().items(row()).min_items(Some(1)))
            .description(Some(
                "a text, [\"text\"], or a batch [[\"text\"], …] (answered as a list)",
            ))
            .into()
    }
}

impl ToSchema for PredictInputs {}

/// The served model a TEI route runs: the one `model` names, which must be of `task`, or
/// without a name the only served model of `task`.
fn chosen(state: &AppState, model: Option<&str>, task: Task, route: &str) -> Result<Arc<Engine>, ApiError> {
    if let Some(name) = model {
        let engine = state.engine(name)?;
        let found = engine.model().info().task;
        if found != task {
            return Err(ApiError::Validation(format!(
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
        [] => Err(ApiError::Validation(format!(
            "no {} model is served, so {route} has nothing to run",
            task.as_str()
        ))),
        several => {
            let names: Vec<&str> = several.iter().map(|engine| engine.model().info().name).collect();
            Err(ApiError::Validation(format!(
                "missing field `model`: {} {} models are served ({names:?}); name one",
                names.len(),
                task.as_str()
            )))
        }
    }
}

/// `POST /embed`: one vector per text, always a list of vectors.
#[utoipa::path(post, path = "/embed", tag = "TEI", operation_id = "tei_embed", request_body = TeiEmbedRequest,
    responses((status = 200, description = "one vector per text, always a list", body = Vec<Vec<f32>>)))]
pub async fn embed(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Vec<Vec<f32>>>), TeiError> {
    state
        .json_route("/embed", TeiError::status_of, body, async |request: TeiEmbedRequest| {
            embed_texts(&state, request).await
        })
        .await
        .map_err(TeiError)
}

async fn embed_texts(state: &AppState, request: TeiEmbedRequest) -> Result<(HeaderMap, Json<Vec<Vec<f32>>>), ApiError> {
    let started = Instant::now();
    let engine = chosen(state, request.model.as_deref(), Task::FeatureExtraction, "/embed")?;
    let inputs = request
        .inputs
        .at_most(state.limits.max_client_batch_size, "inputs", "text")?;
    let normalize = request.normalize.unwrap_or(true);
    let truncate = request.truncate;
    let infer = Infer::new(engine, state.limits.core());
    let name = infer.info().name;
    let truncate = Truncate::Asked {
        allowed: truncate,
        field: "inputs",
    };
    let embedded = infer.embed(inputs.into_texts(), truncate, Some(normalize)).await?;
    Ok((
        state.finish(name, &embedded.timings, started),
        Json(embedded.embeddings),
    ))
}

/// `POST /predict`: every label with its score, best first; a list of such lists for a batch.
#[utoipa::path(post, path = "/predict", tag = "TEI", operation_id = "tei_predict", request_body = TeiPredictRequest,
    responses((status = 200, description = "every label, best first; a list per text of a batch", body = Classification)))]
pub async fn predict(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Classification>), TeiError> {
    state
        .json_route(
            "/predict",
            TeiError::status_of,
            body,
            async |request: TeiPredictRequest| classify_texts(&state, request).await,
        )
        .await
        .map_err(TeiError)
}

async fn classify_texts(
    state: &AppState,
    request: TeiPredictRequest,
) -> Result<(HeaderMap, Json<Classification>), ApiError> {
    let started = Instant::now();
    let engine = chosen(state, request.model.as_deref(), Task::TextClassification, "/predict")?;
    let inputs = request
        .inputs
        .0
        .at_most(state.limits.max_client_batch_size, "inputs", "text")?;
    let raw_scores = request.raw_scores.unwrap_or(false);
    let truncate = request.truncate;
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
    let answer = pipeline::classification(infer.info().labels, &classified.scores, TopK::All, single);
    Ok((state.finish(name, &classified.timings, started), Json(answer)))
}

/// `POST /tokenize`: each text's tokens as the model sees them (truncated at its max
/// length), with byte offsets into the text; special tokens have none.
#[utoipa::path(post, path = "/tokenize", tag = "TEI", operation_id = "tei_tokenize", request_body = TokenizeRequest,
    responses((status = 200, description = "each text's tokens, with byte offsets", body = Vec<Vec<Token>>)))]
pub async fn tokenize(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<Vec<Token>>>, TeiError> {
    state
        .json_route(
            "/tokenize",
            TeiError::status_of,
            body,
            async |request: TokenizeRequest| tokens(&state, request).await,
        )
        .await
        .map_err(TeiError)
}

async fn tokens(state: &AppState, request: TokenizeRequest) -> Result<Json<Vec<Vec<Token>>>, ApiError> {
    let engine = match request.model.as_deref() {
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
                    return Err(ApiError::Validation(format!(
                        "missing field `model`: name one of the text models {names:?}"
                    )));
                }
            }
        }
    };
    let inputs = request
        .inputs
        .at_most(state.limits.max_client_batch_size, "inputs", "text")?;
    let special = request.add_special_tokens.unwrap_or(true);
    let tokenized = Infer::new(engine, state.limits.core())
        .tokenize(inputs.into_texts(), special)
        .await?;
    let answer = tokenized
        .into_iter()
        .map(|tokens| {
            tokens
                .into_iter()
                .map(|token| Token {
                    id: token.id,
                    text: token.text,
                    special: token.special,
                    start: token.start,
                    stop: token.stop,
                })
                .collect()
        })
        .collect();
    Ok(Json(answer))
}

/// `GET /info[?model=name]`: TEI's description of one model (the only one, or the one
/// named) with the server's limits; with several served and none named, the limits and
/// every model's name.
#[utoipa::path(get, path = "/info", tag = "TEI", operation_id = "tei_info",
    params(("model" = Option<String>, Query, description = "the model to describe; the server's limits and models when absent and several are served")),
    responses(
        (status = 200, description = "TEI's description of the model, or the server's limits"),
        (status = 404, description = "no model of that name is served", body = TeiErrorBody),
        (status = 422, description = "a query parameter other than `model`, or a query string that is not form-encoded", body = TeiErrorBody),
    ))]
pub async fn info(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Json<Value>, TeiError> {
    let named: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|error| ApiError::Validation(format!("the query string is not form-encoded: {error}")))?;
    let mut model = None;
    for (key, value) in named {
        match key.as_str() {
            "model" => model = Some(value),
            other => {
                return Err(
                    ApiError::Validation(format!("unknown query parameter `{other}`; expected `model`")).into(),
                );
            }
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
            // TEI knows no question answering; its type is named as this server names it.
            None if info.task == Task::QuestionAnswering => json!({"question_answering": {}}),
            // Nor image–text models: named as this server names them, with their space's size.
            None if info.task == Task::ZeroShotImageClassification => {
                json!({"zero_shot_image_classifier": {"dimension": info.dimension}})
            }
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
                    Task::TokenClassification => "token_classifier",
                    Task::ImageClassification => "image_classifier",
                    Task::ObjectDetection => "object_detector",
                    _ => "classifier",
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
