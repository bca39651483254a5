//! A request id for every request: the client's `x-request-id` when it sent a usable one
//! (1–128 visible ASCII characters), a fresh one otherwise. It is echoed in the response's
//! `x-request-id` header and is a field of the tracing span the request runs in, so every
//! log line a request causes carries it. Errors are logged here, not where they are
//! answered: a 5xx answer at `error` with its message (from the response's
//! [`Refusal`]), every answer at `debug` (`RUST_LOG=modelcrate_server=debug`) with its
//! status, duration and, when refused, why.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::error::Refusal;

pub const HEADER: &str = "x-request-id";
const MAX_LENGTH: usize = 128;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// `<seconds since the epoch, hex>-<counter>`: unique within a process, and across
/// restarts that are a second apart.
fn fresh() -> String {
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let started = *STARTED.get_or_init(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    format!("{started:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The client's id, when it is one a log line and a header can carry as it is.
fn usable(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let fits = (1..=MAX_LENGTH).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
    fits.then(|| text.to_string())
}

/// The middleware: runs the request inside a span with its id, then tags the answer.
pub async fn with_request_id(request: Request, next: Next) -> Response {
    let id = request.headers().get(HEADER).and_then(usable).unwrap_or_else(fresh);
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let milliseconds = started.elapsed().as_secs_f64() * 1e3;
    let refusal = response.extensions().get::<Refusal>();
    span.in_scope(|| match refusal {
        Some(refusal) if status >= 500 => {
            tracing::error!(status, milliseconds, kind = refusal.kind, message = %refusal.message, "failed");
        }
        Some(refusal) => {
            tracing::debug!(status, milliseconds, kind = refusal.kind, message = %refusal.message, "refused")
        }
        None if status >= 500 => tracing::error!(status, milliseconds, "failed"),
        None => tracing::debug!(status, milliseconds, "answered"),
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_ids_are_short_visible_ascii_and_fresh_ones_differ() {
        assert_eq!(usable(&HeaderValue::from_static("abc-123")), Some("abc-123".into()));
        assert_eq!(usable(&HeaderValue::from_static("has space")), None);
        assert_eq!(usable(&HeaderValue::from_str(&"x".repeat(129)).unwrap()), None);
        assert_ne!(fresh(), fresh());
    }
}
