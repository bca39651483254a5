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
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use modelcrate_core::{Infer, Truncate};
use modelcrate_runtime::embedding::l2_normalize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{self, Count, Inputs, Text};

const ROUTE: &str = "/v1/embeddings";

/// An error in OpenAI's shape, with OpenAI's statuses: every invalid request is 400
/// (the `openai` client raises `BadRequestError`: a missing or wrong field, malformed
/// JSON, a text longer than the model takes, too many inputs), an unknown model 404
/// (`NotFoundError`, code `model_not_found`); overload, timeouts and failures keep the
/// other routes' 429, 503, 504 and 500.
pub struct OpenAiError(ApiError);

impl OpenAiError {
    /// The status OpenAI's API answers `error` with.
    pub fn status_of(error: &ApiError) -> StatusCode {
        match error {
            ApiError::Validation(_)
            | ApiError::MalformedJson(_)
            | ApiError::PayloadTooLarge(_)
            | ApiError::UnsupportedMediaType(_) => StatusCode::BAD_REQUEST,
            other => other.status(),
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let status = Self::status_of(&self.0);
        let error = &self.0;
        // The field a validation message names first (`input[2]` → `input`).
        let param = match error {
            ApiError::Validation(message) | ApiError::PayloadTooLarge(message) => message
                .split('`')
                .nth(1)
                .map(|field| field.split(['[', '.']).next().unwrap_or(field).to_string()),
            _ => None,
        };
        let kind = match status {
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            status if status.is_client_error() => "invalid_request_error",
            _ => "server_error",
        };
        error.respond(
            status,
            OpenAiErrorBody {
                error: OpenAiErrorDetail {
                    message: error.to_string(),
                    kind,
                    param,
                    code: error.kind(),
                },
            },
        )
    }
}

/// An error in OpenAI's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    pub error: OpenAiErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    pub message: String,
    /// `invalid_request_error`, `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault, when one is.
    pub param: Option<String>,
    pub code: &'static str,
}

/// `POST /v1/embeddings`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsRequest {
    /// The served embedding model.
    pub model: String,
    pub input: EmbeddingInput,
    /// `float` (default) or `base64`: little-endian float32s.
    pub encoding_format: Option<EncodingFormat>,
    /// Keep the first `dimensions` values, L2-normalised again when the model normalises.
    pub dimensions: Option<Count>,
    /// An end user's id: accepted, not used.
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    Float,
    Base64,
}

/// `input`: a text or a list of texts. Token ids are refused: ids are only meaningful in
/// the model's own vocabulary, and OpenAI's clients send tiktoken's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingInput(pub Inputs);

/// One text of a list, or a token id (or a list of them) refused by name.
struct EmbeddingText(String);

const TOKEN_IDS: &str = "as token ids is not accepted: send text, which the model's own tokenizer splits";

impl<'de> Deserialize<'de> for EmbeddingText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = EmbeddingText;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<EmbeddingText, E> {
                Text::deserialize(de::value::StrDeserializer::new(text)).map(|Text(text)| EmbeddingText(text))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<EmbeddingText, E> {
                Err(E::custom(TOKEN_IDS))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<EmbeddingText, E> {
                Err(E::custom(TOKEN_IDS))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<EmbeddingText, A::Error> {
                Err(de::Error::custom(TOKEN_IDS))
            }
        }

        deserializer.deserialize_any(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for EmbeddingInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        wire::one_or_many::<D, EmbeddingText>(deserializer).map(EmbeddingInput)
    }
}

impl From<EmbeddingText> for String {
    fn from(text: EmbeddingText) -> Self {
        text.0
    }
}

impl PartialSchema for EmbeddingInput {
    fn schema() -> RefOr<Schema> {
        Inputs::schema()
    }
}

impl ToSchema for EmbeddingInput {}

/// `POST /v1/embeddings`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsAnswer {
    /// `list`.
    pub object: &'static str,
    pub data: Vec<EmbeddingData>,
    pub model: String,
    pub usage: Usage,
}

/// One text's embedding.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingData {
    /// `embedding`.
    pub object: &'static str,
    pub index: usize,
    pub embedding: Embedding,
}

/// A vector, as floats or as base64 of little-endian float32s (`encoding_format`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Embedding {
    Float(Vec<f32>),
    Base64(String),
}

/// Tokens of all texts, special tokens included.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

/// `GET /v1/models`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// `list`.
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

/// One served model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelCard {
    pub id: String,
    /// `model`.
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
    /// Its task (`feature-extraction`, `text-classification`, …).
    pub task: &'static str,
    /// Whether `/v1/embeddings` serves it.
    pub embeddings: bool,
}

/// `POST /v1/embeddings`.
#[utoipa::path(post, path = "/v1/embeddings", tag = "OpenAI", operation_id = "openai_embeddings", request_body = EmbeddingsRequest,
    responses((status = 200, description = "one embedding per text", body = EmbeddingsAnswer)))]
pub async fn embeddings(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<EmbeddingsAnswer>), OpenAiError> {
    state
        .json_route(
            ROUTE,
            OpenAiError::status_of,
            body,
            async |request: EmbeddingsRequest| embed(&state, request).await,
        )
        .await
        .map_err(OpenAiError)
}

async fn embed(state: &AppState, request: EmbeddingsRequest) -> Result<(HeaderMap, Json<EmbeddingsAnswer>), ApiError> {
    let started = Instant::now();
    let name = request.model.as_str();
    let texts = request
        .input
        .0
        .at_most(state.limits.max_client_batch_size, "input", "text")?
        .into_texts();
    let dimensions = request.dimensions.map(|count| count.0);
    let base64 = request.encoding_format == Some(EncodingFormat::Base64);
    let engine = state.engine(name)?;
    let info = engine.model().info();
    if !info.embeds_texts() {
        return Err(ApiError::Validation(format!(
            "`model`: `{name}` is a {} model; /v1/embeddings serves feature-extraction models and the text towers of zero-shot-image-classification models",
            info.task.as_str()
        )));
    }
    let dimension = info.dimension.unwrap_or(0);
    if let Some(asked) = dimensions
        && asked > dimension
    {
        return Err(ApiError::Validation(format!(
            "`dimensions` is {asked}, more than the {dimension} of model `{name}`"
        )));
    }
    let infer = Infer::new(engine, state.limits.core());
    let truncate = Truncate::Server { field: "input" };
    let embedded = infer.embed(texts, truncate, None).await?;
    let (normalize, tokens) = (embedded.normalized, embedded.tokens);
    let data = embedded
        .embeddings
        .into_iter()
        .enumerate()
        .map(|(index, mut vector)| {
            if let Some(kept) = dimensions {
                vector.truncate(kept);
                if normalize {
                    l2_normalize(&mut vector);
                }
            }
            let embedding = if base64 {
                // Little-endian float32s, as OpenAI encodes them.
                let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Float(vector)
            };
            EmbeddingData {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let answer = EmbeddingsAnswer {
        object: "list",
        data,
        model: name.to_string(),
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    };
    Ok((state.finish(name, &embedded.timings, started), Json(answer)))
}

/// `GET /v1/models`: every served model, with its task.
#[utoipa::path(get, path = "/v1/models", tag = "OpenAI", operation_id = "openai_models", responses((status = 200, description = "every served model", body = ModelList)))]
pub async fn models(State(state): State<AppState>) -> Json<ModelList> {
    let data = state
        .models
        .engines()
        .iter()
        .map(|engine| {
            let info = engine.model().info();
            ModelCard {
                id: info.name.to_string(),
                object: "model",
                created: 0,
                owned_by: "modelcrate",
                task: info.task.as_str(),
                embeddings: info.embeds_texts(),
            }
        })
        .collect();
    Json(ModelList { object: "list", data })
}
