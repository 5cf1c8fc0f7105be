//! Accepting connections and serving the router on them (HTTP/1.1, and
//! HTTP/2 with prior knowledge), with graceful shutdown: what `axum::serve`
//! does, with hyper's HTTP/1 parser configured. hyper refuses a request
//! with more than 100 header fields itself, with a 431 and an empty body,
//! before any middleware runs; here it parses up to [`PARSER_MAX_HEADERS`]
//! so that the API's own limits (`switchboard_api::MAX_HEADER_FIELDS` and
//! `limits.header_bytes`) answer, with problem+json. A head beyond what the
//! parser holds (more fields than that, or over its ~400 KiB buffer) still
//! gets hyper's bare 431.

use std::future::Future;

use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Header fields hyper's HTTP/1 parser accepts in one request head, well
/// above the API's limit. It is also the size of the array hyper allocates
/// for every request head it parses (about 64 bytes a field), so it is not
/// unbounded.
pub const PARSER_MAX_HEADERS: usize = 1024;

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, lets each connection finish the requests it has under way
/// and returns once every connection is closed.
pub async fn serve(
    mut listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().max_headers(PARSER_MAX_HEADERS);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // axum's `Listener` retries failed accepts (and backs off when out
        // of file descriptors), as `axum::serve` does.
        let (stream, peer) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
