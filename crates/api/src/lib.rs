//! The v1 HTTP API: one router per resource, extractors that turn bad input
//! into problem+json with field pointers, bearer-token tenancy, and the
//! OpenAPI document generated from the handlers.

pub mod auth;
pub mod dto;
pub mod extract;
pub mod openapi;
pub mod problem;
pub mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, header};
use axum::response::IntoResponse;
use switchboard_core::Error;
use switchboard_engine::Engine;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

pub use auth::TokenEntry;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub engine: Engine,
    /// Configured API tokens.
    pub tokens: Arc<Vec<TokenEntry>>,
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
}

/// Header carrying the request id in both directions.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `req_<ulid>` for requests that arrive without an id.
#[derive(Clone, Copy, Default)]
struct MakeUlid;

impl MakeRequestId for MakeUlid {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        axum::http::HeaderValue::from_str(&format!("req_{}", ulid::Ulid::new()))
            .ok()
            .map(RequestId::new)
    }
}

async fn not_found() -> impl IntoResponse {
    problem::ApiError(Error::NotFound {
        what: "route",
        id: "this path".into(),
    })
}

async fn method_not_allowed() -> impl IntoResponse {
    problem::ApiError(Error::MethodNotAllowed)
}

/// The whole application with its middleware.
pub fn router(state: AppState) -> Router {
    let body_limit = state.body_limit;
    Router::new()
        .merge(routes::subscriptions::router())
        .merge(routes::catalog::router())
        .merge(routes::health::router())
        .merge(openapi::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                // Failures are logged once, with their cause, by problem.rs.
                .on_failure(())
                .make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                // The path only: query strings are not logged.
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeUlid))
        // Marked before tracing sees the request, so no layer prints it.
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION]))
}
