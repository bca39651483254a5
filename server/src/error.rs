//! The one error type of the HTTP layer: each failure has a status and a JSON body
//! `{"error": "...", "error_type": "..."}` that names the problem.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no model named `{0}`; GET /models lists them")]
    ModelNotFound(String),
    #[error("no route for {0}; see GET /models")]
    RouteNotFound(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    Validation(String),
    #[error("Content-Type must be application/json, got {0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
    error_type: &'static str,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::ModelNotFound(_) | Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Inference(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::ModelNotFound(_) => "model_not_found",
            Self::RouteNotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MalformedJson(_) => "malformed_json",
            Self::Validation(_) => "validation",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Inference(_) => "inference",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Inference(message) = &self {
            tracing::error!(%message, "inference failed");
        }
        let body = ErrorBody {
            error: self.to_string(),
            error_type: self.kind(),
        };
        (self.status(), Json(body)).into_response()
    }
}

impl From<modelcrate_runtime::Error> for ApiError {
    fn from(error: modelcrate_runtime::Error) -> Self {
        Self::Inference(error.to_string())
    }
}
