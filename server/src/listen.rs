//! The HTTP/1 listener: hyper's connection builder with the limits that a server in
//! front of traffic needs and `axum::serve` does not expose. How many bytes a request's
//! head (request line and headers) may take: a larger one gets 431 and the connection
//! closes. How long a client may take to send that head: a slower one is disconnected,
//! so that clients sending a byte at a time, or never finishing, cannot hold the server's
//! connections. How many connections are open at once: more wait in the kernel's backlog
//! until one closes, so that descriptors and memory stay bounded.
//!
//! On `shutdown`, nothing new is accepted and every open connection finishes the request
//! it is in (idle keep-alive connections close at once).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The smallest head limit hyper accepts: its read buffer's own size.
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

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
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
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
