//! The HTTP/1 listener: hyper's connection builder with the limits that a server in
//! front of traffic needs and `axum::serve` does not expose. How many bytes a request's
//! head (request line and headers) may take: a larger one gets 431 with a JSON body
//! naming the flag (hyper's read buffer, held to [`HEAD_BUFFER_FACTOR`] times it, stops
//! reading a head far larger still with a bare 431, so that memory stays bounded). How
//! long a client may take to send that head: a slower one is disconnected, so that
//! clients sending a byte at a time, or never finishing, cannot hold the server's
//! connections. How many connections are open at once: more wait in the kernel's backlog
//! until one closes, so that descriptors and memory stay bounded.
//!
//! On `shutdown`, nothing new is accepted and every open connection finishes the request
//! it is in (idle keep-alive connections close at once).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The smallest head limit hyper accepts: its read buffer's own size.
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

/// hyper's read buffer, in multiples of the head limit: it cuts a head off once its
/// buffer is full, at a size that depends on how the head arrived, so it is given room
/// for the middleware to answer every head past the limit but a far larger one exactly.
pub const HEAD_BUFFER_FACTOR: usize = 4;

/// What each connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most bytes of a request's line and headers (at least [`MIN_HEADER_BYTES`]).
    pub max_header_bytes: usize,
    /// Longest a client may take to send a request's line and headers.
    pub header_read_timeout: Duration,
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes and the open
/// connections have finished their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let most = limits.max_header_bytes;
    let router = router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move { held_to(most, request, next).await },
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(
            limits
                .max_header_bytes
                .saturating_mul(HEAD_BUFFER_FACTOR)
                .max(MIN_HEADER_BYTES),
        );
    tokio::pin!(shutdown);
    loop {
        // A free place first, then a connection: past the limit, clients wait to be accepted.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors or a connection reset before it was accepted:
                    // the listener itself is fine; wait a moment rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
            drop(permit);
        });
    }
    graceful.shutdown().await;
}

/// Answers 431 when `request`'s head is larger than `most` bytes; runs it otherwise.
async fn held_to(most: usize, request: Request, next: Next) -> Response {
    let size = head_bytes(&request);
    if size > most {
        return ApiError::HeaderTooLarge(format!(
            "the request line and headers take {size} bytes, more than --max-header-bytes ({most})"
        ))
        .into_response();
    }
    next.run(request).await
}

/// The bytes of `request`'s line and headers as HTTP/1.1 sent them.
fn head_bytes(request: &Request) -> usize {
    let line = request.method().as_str().len() + 1 + request.uri().to_string().len() + " HTTP/1.1\r\n".len();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + "\r\n".len())
        .sum();
    line + headers + "\r\n".len()
}

#[cfg(test)]
mod tests {
    use super::head_bytes;

    #[test]
    fn a_head_is_counted_as_it_was_sent() {
        let request = axum::http::Request::get("/health?x=1")
            .header("host", "a")
            .body(axum::body::Body::empty())
            .unwrap();
        let sent = "GET /health?x=1 HTTP/1.1\r\nhost: a\r\n\r\n";
        assert_eq!(head_bytes(&request), sent.len());
    }
}
