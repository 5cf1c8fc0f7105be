//! The edge: what every request passes through once routed, before its
//! handler. In order: the `Authorization` header is marked sensitive (no
//! `Debug` prints it), the request gets its id (`x-request-id`, kept when
//! the caller sent one), a `request` span is entered, the request is
//! counted and timed by route template, its headers are checked against
//! the limits (431), it takes one of the concurrency permits or is shed
//! (503), and it gets at most the request timeout (503); the answer
//! carries the request id back.
//!
//! One middleware, not one layer each: as a stack of ten tower layers
//! (tower-http's request-id, trace and sensitive-header layers, tower's
//! load-shed, concurrency-limit and timeout, and four `from_fn`s) every
//! request cloned, boxed and moved each layer's service and future, and
//! the stack took about a third of preview's time (docs/benchmarks.md).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_telemetry::record;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::problem::ApiError;
use crate::routes::ingress::loggable_path;
use crate::{Limits, REQUEST_ID};

/// The most header fields a request may have (hyper's own default, which
/// the server's HTTP/1 parser is set above so that this answers).
/// `x-request-id` is not counted: Switchboard adds it when it is missing.
pub const MAX_HEADER_FIELDS: usize = 100;

/// The edge's settings and the permits it hands out.
pub(crate) struct Edge {
    /// One per request being served; none left means 503.
    permits: Semaphore,
    /// Longest a request is waited for.
    timeout: Duration,
    /// Largest total size of the request headers.
    header_bytes: usize,
    /// Where requests are counted and timed.
    requests: record::HttpRequests,
}

impl Edge {
    /// The edge for `limits`.
    pub(crate) fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            permits: Semaphore::new(limits.max_concurrent_requests),
            timeout: limits.request_timeout,
            header_bytes: limits.header_bytes,
            requests: record::HttpRequests::default(),
        })
    }
}

/// The middleware (see the module's documentation).
pub(crate) async fn edge(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    if let Some(token) = req.headers_mut().get_mut(header::AUTHORIZATION) {
        token.set_sensitive(true);
    }
    let id = match req.headers().get(REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = new_request_id();
            req.headers_mut().insert(REQUEST_ID, id.clone());
            id
        }
    };
    // The route is known here: axum routes before it runs the layers.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    // The path only: query strings are not logged, nor route tokens.
    let span = tracing::info_span!(
        "request",
        request_id = %id.to_str().unwrap_or_default(),
        method = %method,
        path = %loggable_path(req.uri().path()),
    );
    let started = Instant::now();
    let mut resp = answer(&edge, req, next).instrument(span.clone()).await;
    let status = resp.status();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    edge.requests
        .record(route, method.as_str(), status.as_u16(), started.elapsed());
    tracing::debug!(
        parent: &span,
        status = status.as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1e3,
        "finished processing request"
    );
    resp.headers_mut().entry(REQUEST_ID).or_insert(id);
    resp
}

/// The request's answer within the limits: a refusal when its headers
/// are too many or too large or every permit is taken, 503 when it takes
/// longer than the timeout. A change cut off by the timeout still
/// completes in the background (handlers run engine work detached).
async fn answer(edge: &Edge, req: Request, next: Next) -> Response {
    if let Err(refusal) = check_headers(req.headers(), edge.header_bytes) {
        return refusal.into_response();
    }
    let Ok(_permit) = edge.permits.try_acquire() else {
        return ApiError::Overloaded.into_response();
    };
    match tokio::time::timeout(edge.timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!("request timed out");
            ApiError::Overloaded.into_response()
        }
    }
}

/// Refuses more than [`MAX_HEADER_FIELDS`] header fields, or headers
/// larger than `limit` bytes in all.
fn check_headers(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    let fields = headers.len() - usize::from(headers.contains_key(REQUEST_ID));
    if fields > MAX_HEADER_FIELDS {
        return Err(ApiError::TooManyHeaders {
            limit: MAX_HEADER_FIELDS,
        });
    }
    let size: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > limit {
        return Err(ApiError::HeadersTooLarge { limit });
    }
    Ok(())
}

/// `req_<ulid>`, for a request that arrives without an id.
fn new_request_id() -> HeaderValue {
    let mut text = String::with_capacity(30);
    text.push_str("req_");
    text.push_str(&ulid::Ulid::new().to_string());
    HeaderValue::try_from(text).expect("a ULID is a valid header value")
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tokio::sync::{mpsc, oneshot};
    use tower::ServiceExt as _;

    use super::*;

    /// `routes` behind the edge, with `limits`.
    fn behind_edge(routes: Router, limits: &Limits) -> Router {
        routes.layer(axum::middleware::from_fn_with_state(
            Edge::new(limits),
            edge,
        ))
    }

    fn get_req(path: &str) -> Request {
        Request::get(path).body(Body::empty()).unwrap()
    }

    async fn problem_type(resp: Response) -> String {
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        json["type"].as_str().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn requests_past_the_limit_are_shed_whatever_their_route() {
        let (entered_tx, mut entered) = mpsc::unbounded_channel::<()>();
        let (release, released) = oneshot::channel::<()>();
        let released = std::sync::Arc::new(tokio::sync::Mutex::new(Some(released)));
        let held = get(move || {
            let entered_tx = entered_tx.clone();
            let released = released.clone();
            async move {
                let _ = entered_tx.send(());
                if let Some(rx) = released.lock().await.take() {
                    let _ = rx.await;
                }
                "held"
            }
        });
        let limits = Limits {
            max_concurrent_requests: 1,
            ..Limits::default()
        };
        let app = behind_edge(
            Router::new()
                .route("/held", held)
                .route("/other", get(|| async { "other" })),
            &limits,
        );
        let first = tokio::spawn(app.clone().oneshot(get_req("/held")));
        entered.recv().await.unwrap();

        let shed = app.clone().oneshot(get_req("/other")).await.unwrap();
        assert_eq!(shed.status(), 503, "the one permit is taken");
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        assert!(shed.headers().contains_key(REQUEST_ID));
        assert_eq!(
            problem_type(shed).await,
            "urn:switchboard:problem:overloaded"
        );

        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap().status(), 200);
        let after = app.oneshot(get_req("/other")).await.unwrap();
        assert_eq!(after.status(), 200, "the permit is back");
    }

    #[tokio::test]
    async fn a_request_past_the_timeout_is_answered_503() {
        let limits = Limits {
            request_timeout: Duration::from_millis(20),
            ..Limits::default()
        };
        let app = behind_edge(
            Router::new().route("/never", get(std::future::pending::<&'static str>)),
            &limits,
        );
        let resp = app.oneshot(get_req("/never")).await.unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(
            problem_type(resp).await,
            "urn:switchboard:problem:overloaded"
        );
    }

    #[tokio::test]
    async fn the_request_id_is_kept_or_made_and_always_answered() {
        let seen = get(|headers: HeaderMap| async move {
            headers[REQUEST_ID].to_str().unwrap().to_owned()
        });
        let app = behind_edge(Router::new().route("/id", seen), &Limits::default());

        let made = app.clone().oneshot(get_req("/id")).await.unwrap();
        let answered = made.headers()[REQUEST_ID].to_str().unwrap().to_owned();
        assert!(
            answered.starts_with("req_") && answered.len() == 30,
            "{answered}"
        );
        let body = axum::body::to_bytes(made.into_body(), 1024).await.unwrap();
        assert_eq!(body, answered.as_bytes(), "the handler saw the id answered");

        let mut req = get_req("/id");
        req.headers_mut()
            .insert(REQUEST_ID, HeaderValue::from_static("caller-42"));
        let kept = app.clone().oneshot(req).await.unwrap();
        assert_eq!(kept.headers()[REQUEST_ID], "caller-42");

        let refused = app.oneshot(get_req("/nowhere")).await.unwrap();
        assert_eq!(refused.status(), 404);
        assert!(refused.headers().contains_key(REQUEST_ID));
    }

    #[tokio::test]
    async fn too_many_or_too_large_headers_are_refused() {
        let app = behind_edge(
            Router::new().route("/ok", get(|| async { "ok" })),
            &Limits {
                header_bytes: 1024,
                ..Limits::default()
            },
        );
        let mut many = get_req("/ok");
        for i in 0..=MAX_HEADER_FIELDS {
            many.headers_mut().insert(
                format!("x-f{i}").parse::<axum::http::HeaderName>().unwrap(),
                HeaderValue::from_static("1"),
            );
        }
        let resp = app.clone().oneshot(many).await.unwrap();
        assert_eq!(resp.status(), 431);

        let mut large = get_req("/ok");
        large.headers_mut().insert(
            "x-padding",
            HeaderValue::try_from("a".repeat(1024)).unwrap(),
        );
        assert_eq!(app.clone().oneshot(large).await.unwrap().status(), 431);
        assert_eq!(app.oneshot(get_req("/ok")).await.unwrap().status(), 200);
    }
}
