//! The one error type of the HTTP layer: each failure has a status and a JSON body
//! `{"error": "...", "error_type": "..."}` that names the problem.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use modelcrate_core::CoreError;
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
    #[error("{0}")]
    HeaderTooLarge(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("{0}; retry later")]
    Busy(String),
    #[error("the request took longer than {0:?} (--request-timeout-ms)")]
    Timeout(std::time::Duration),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// A hot reload refused its new model (see `reload`): the old one serves on.
    #[error("{0}")]
    ReloadRefused(String),
}

/// Every route's error, but OpenAI's: what went wrong, naming the field, and its kind.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// `validation`, `model_not_found`, `payload_too_large`, `overloaded`, `timeout`, …
    pub error_type: &'static str,
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
            Self::HeaderTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Inference(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::ReloadRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The `error_type` of the JSON body, also the metrics' `error_type` label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ModelNotFound(_) => "model_not_found",
            Self::RouteNotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MalformedJson(_) => "malformed_json",
            Self::Validation(_) => "validation",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::HeaderTooLarge(_) => "header_too_large",
            Self::Inference(_) => "inference",
            Self::Busy(_) => "overloaded",
            Self::Timeout(_) => "timeout",
            Self::Unavailable(_) => "unavailable",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::ReloadRefused(_) => "reload_refused",
        }
    }
}

/// Why a request was refused, as the logging layer reads it from the response.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub kind: &'static str,
    pub message: String,
}

/// Seconds a client told 429 or 503 should wait before it tries again.
const RETRY_AFTER_SECONDS: &str = "1";

impl ApiError {
    /// This error's status, with `Retry-After` on 429 and 503, and `body` (a protocol's
    /// own error shape). The response carries the error as a [`Refusal`] for the logging
    /// layer (`request_log`), which logs a 5xx with its message.
    pub fn respond_with(&self, body: impl Serialize) -> Response {
        self.respond(self.status(), body)
    }

    /// As [`ApiError::respond_with`], with a protocol's own status for this error.
    pub fn respond(&self, status: StatusCode, body: impl Serialize) -> Response {
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(Refusal {
            kind: self.kind(),
            message: self.to_string(),
        });
        if matches!(self, Self::Busy(_) | Self::Unavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        if let Self::Unauthorized(_) = self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
            error_type: self.kind(),
        };
        self.respond_with(body)
    }
}

/// The answer to a request whose handler panicked: a 500 in the JSON error shape (the
/// connection is kept, and the logging layer logs the message), not a dropped connection.
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    ApiError::Inference(format!("the server failed while answering: {message}")).into_response()
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::Invalid(message) => Self::Validation(message),
            CoreError::TooLarge(message) => Self::PayloadTooLarge(message),
            CoreError::Busy(message) => Self::Busy(message),
            CoreError::Timeout(after) => Self::Timeout(after),
            CoreError::Stopped(message) => Self::Unavailable(message),
            CoreError::Failed(message) => Self::Inference(message),
        }
    }
}

impl From<modelcrate_core::Refused> for ApiError {
    fn from(refused: modelcrate_core::Refused) -> Self {
        CoreError::from(refused).into()
    }
}

impl From<modelcrate_runtime::Error> for ApiError {
    fn from(error: modelcrate_runtime::Error) -> Self {
        CoreError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_a_json_500_that_carries_its_message_to_the_log() {
        let response = panicked(Box::new(String::from("index out of bounds")));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let refusal = response.extensions().get::<Refusal>().cloned();
        assert_eq!(
            refusal.map(|r| (r.kind, r.message)),
            Some((
                "inference",
                "inference failed: the server failed while answering: index out of bounds".to_string()
            ))
        );
        let response = panicked(Box::new(7_u8));
        let refusal = response
            .extensions()
            .get::<Refusal>()
            .map(|r| r.message.clone())
            .unwrap_or_default();
        assert!(refusal.ends_with("a panic without a message"), "{refusal}");
    }

    #[test]
    fn busy_and_unavailable_say_when_to_retry() {
        for error in [ApiError::Busy("full".into()), ApiError::Unavailable("draining".into())] {
            let response = error.into_response();
            assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        }
        let response = ApiError::Validation("`inputs` is empty".into()).into_response();
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
