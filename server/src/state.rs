//! What every route shares: the server's state (the served models, the reloader, the
//! limits, the lifecycle, the metrics), how a request is admitted and counted, and the
//! timing headers every answer carries (`x-tokenization-time` — `x-preparation-time` for
//! images —, `x-queue-time`, `x-inference-time`, `x-total-time` in milliseconds,
//! `x-batch-size`: rows in the batch it ran in). Protocol modules use it; it uses none.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use modelcrate_core::{Engine, Infer, Prepared, Timings};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::lifecycle::{Lifecycle, Phase};
use crate::metrics::{Metrics, Timing};
use crate::reload::Reloader;
use crate::served::Served;
use crate::wire;

/// Limits a request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_client_batch_size: usize,
    pub max_body_bytes: usize,
    /// Largest image, in pixels, decoded for an image model.
    pub max_image_pixels: u64,
    /// How long a request may wait for its answer before it gets a 504.
    pub request_timeout: Duration,
    /// Whether the TEI and OpenAI routes truncate a text longer than the model's max
    /// length when the request does not say (TEI's `--auto-truncate`); otherwise they
    /// refuse it with 413. The Inference API route always truncates, as the pipeline does.
    pub auto_truncate: bool,
}

impl Limits {
    /// The limits the inference core holds a request to.
    pub fn core(&self) -> modelcrate_core::Limits {
        modelcrate_core::Limits {
            request_timeout: self.request_timeout,
            auto_truncate: self.auto_truncate,
            max_image_pixels: self.max_image_pixels,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    /// Each served model behind its batching engine, by name; a hot reload swaps one.
    pub models: Arc<Served>,
    /// How a model is reloaded, and who may ask.
    pub reloader: Arc<Reloader>,
    pub limits: Limits,
    /// Warming up, ready or draining, and the predictions in flight.
    pub lifecycle: Arc<Lifecycle>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Runs one prediction as every protocol's route does: refused with 503 while the
    /// server drains, counted in flight until answered (a drain waits for it), and counted
    /// in the metrics by the model `work` names (`model`, from the path, when refused
    /// before it ran), the route, the status and the error kind.
    pub(crate) async fn counted<T>(
        &self,
        route: &'static str,
        model: &str,
        work: impl Future<Output = (String, Result<T, ApiError>)>,
    ) -> Result<T, ApiError> {
        self.counted_as(route, model, ApiError::status, work).await
    }

    /// As [`AppState::counted`], for a protocol that answers an error with its own status
    /// (`status_of`: OpenAI's, TEI's): the metrics count the status the client got.
    pub(crate) async fn counted_as<T>(
        &self,
        route: &'static str,
        model: &str,
        status_of: fn(&ApiError) -> StatusCode,
        work: impl Future<Output = (String, Result<T, ApiError>)>,
    ) -> Result<T, ApiError> {
        // Counted in before the phase is read: a drain either sees this request or it is refused.
        let in_flight = self.lifecycle.enter();
        let (model, result) = if self.lifecycle.phase() == Phase::Draining {
            let refused = ApiError::Unavailable(
                "the server is shutting down and takes no new requests; retry on another instance".into(),
            );
            (model.to_string(), Err(refused))
        } else {
            work.await
        };
        drop(in_flight);
        let label = if self.models.contains(&model) {
            model.as_str()
        } else {
            "_unknown"
        };
        match &result {
            Ok(_) => self.metrics.request(label, route, 200, ""),
            Err(error) => self
                .metrics
                .request(label, route, status_of(error).as_u16(), error.kind()),
        }
        result
    }

    /// A route whose body is a JSON request naming its model in `model` (OpenAI, TEI):
    /// the body, read as an `R` (see [`wire::parse`]), is given to `answer`, and the
    /// request is counted (see [`AppState::counted`]) under the model the body names, even
    /// when the rest of it is refused.
    pub(crate) async fn json_route<R: DeserializeOwned, T>(
        &self,
        route: &'static str,
        status_of: fn(&ApiError) -> StatusCode,
        body: Result<Bytes, BytesRejection>,
        answer: impl AsyncFnOnce(R) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let work = async {
            let value: Value = match self.body(body).and_then(|body| wire::parse(&body)) {
                Ok(value) => value,
                Err(error) => return (String::new(), Err(error)),
            };
            let model = value
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let result = match wire::from_value(value) {
                Ok(request) => answer(request).await,
                Err(error) => Err(error),
            };
            (model, result)
        };
        self.counted_as(route, "", status_of, work).await
    }

    /// The inference core of a served model, on the engine serving it now.
    pub(crate) fn infer(&self, name: &str) -> Result<Infer, ApiError> {
        Ok(Infer::new(self.engine(name)?, self.limits.core()))
    }

    /// The engine of a served model; 503 (with Retry-After) for one still coming, 404 for
    /// a name not served.
    pub(crate) fn engine(&self, name: &str) -> Result<Arc<Engine>, ApiError> {
        match self.models.slot(name) {
            Some(slot) => slot.engine().ok_or_else(|| {
                ApiError::Unavailable(format!(
                    "model `{name}` is still coming: the server waits for its pipeline to finish (GET /models says when it serves)"
                ))
            }),
            None => Err(ApiError::ModelNotFound(name.to_string())),
        }
    }

    /// The request body, or 413 when it was over `--max-body-bytes`.
    pub(crate) fn body(&self, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
        body.map_err(|rejection| {
            ApiError::PayloadTooLarge(format!(
                "the body is over {} bytes (--max-body-bytes): {}",
                self.limits.max_body_bytes,
                rejection.body_text()
            ))
        })
    }
}

impl AppState {
    /// Records an answer's timing and batch in the metrics; returns its timing headers.
    pub(crate) fn finish(&self, model: &str, timings: &Timings, started: Instant) -> HeaderMap {
        let total = started.elapsed();
        self.metrics.answered(
            model,
            Timing {
                total,
                preparation: timings.preparation,
                queue: timings.queue,
                inference: timings.inference,
                batch_rows: timings.batch_rows,
            },
        );
        timing_headers(timings, total)
    }
}

fn timing_headers(timings: &Timings, total: Duration) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let milliseconds = |duration: Duration| HeaderValue::from(duration.as_millis().min(u128::from(u64::MAX)) as u64);
    // TEI's name for texts; an image model's decoding and resizing has its own.
    let preparation = match timings.prepared {
        Prepared::Images => "x-preparation-time",
        Prepared::Texts => "x-tokenization-time",
    };
    headers.insert(preparation, milliseconds(timings.preparation));
    headers.insert("x-queue-time", milliseconds(timings.queue));
    headers.insert("x-inference-time", milliseconds(timings.inference));
    headers.insert("x-total-time", milliseconds(total));
    headers.insert("x-batch-size", HeaderValue::from(timings.batch_rows as u64));
    headers
}
