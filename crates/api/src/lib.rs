//! The v1 HTTP API: one router per resource, extractors that turn bad input
//! into problem+json with field pointers, bearer-token tenancy, and the
//! OpenAPI document generated from the handlers.

pub mod audit;
pub mod auth;
pub mod dto;
pub mod edge;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod precondition;
pub mod problem;
pub mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::response::IntoResponse;
use switchboard_core::Error;
use switchboard_engine::Engine;
use switchboard_store::Store;

pub use auth::TokenEntry;
pub use edge::MAX_HEADER_FIELDS;

/// Request limits (`[limits]` in config).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body.
    pub body_bytes: usize,
    /// Largest total size of the request headers.
    pub header_bytes: usize,
    /// Longest a request may take before the caller gets a 503; a change
    /// already under way upstream still completes in the background.
    pub request_timeout: std::time::Duration,
    /// Requests served at once; more are refused with 503.
    pub max_concurrent_requests: usize,
    /// How long a create waits for its upstream work before answering
    /// `202` with `status: pending` (the work finishes in the background).
    pub upstream_budget: std::time::Duration,
    /// Sustained requests per second per token (0: unlimited).
    pub per_token_rps: u32,
    /// Burst per token.
    pub per_token_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            header_bytes: 16 * 1024,
            request_timeout: std::time::Duration::from_secs(30),
            max_concurrent_requests: 512,
            upstream_budget: std::time::Duration::from_secs(10),
            per_token_rps: 50,
            per_token_burst: 100,
        }
    }
}

/// Everything a handler needs, behind one reference count: axum clones the
/// state for every middleware layer and extractor of every request, and a
/// field-by-field clone (the engine's and the store's handles, each several
/// `Arc`s and a `String`) was a sixth of preview's profile.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares; read through `Deref` (`state.engine`).
#[derive(Clone)]
pub struct Shared {
    /// The use cases: every change and read of a subscription.
    pub engine: Engine,
    /// The database, for what is the API's own and not a use case:
    /// the audit log, idempotency keys, tenant lookups, readiness and the
    /// operations history.
    pub store: Store,
    /// Configured API tokens.
    pub tokens: Arc<Vec<TokenEntry>>,
    /// Request limits.
    pub limits: Arc<Limits>,
    /// Per-token request rate.
    pub rate_limiter: Arc<auth::RateLimiter>,
    /// What `GET /metrics` serves on this listener; `None` when metrics
    /// are off or served on a listener of their own.
    pub metrics: Option<Arc<metrics::Exposition>>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State with its rate limiter built from `limits`. `store` is the
    /// handle the engine was built with (the caller owns both), passed
    /// explicitly so the API never reaches the database through the engine.
    pub fn new(engine: Engine, store: Store, tokens: Vec<TokenEntry>, limits: Limits) -> Self {
        Self(Arc::new(Shared {
            store,
            engine,
            tokens: Arc::new(tokens),
            rate_limiter: Arc::new(auth::RateLimiter::new(
                limits.per_token_rps,
                limits.per_token_burst,
            )),
            limits: Arc::new(limits),
            metrics: None,
        }))
    }

    /// Serves `GET /metrics` (admin tokens) on the API listener.
    pub fn with_metrics(mut self, exposition: Arc<metrics::Exposition>) -> Self {
        Arc::make_mut(&mut self.0).metrics = Some(exposition);
        self
    }
}

/// Header carrying the request id in both directions.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    problem::ApiError::Domain(Error::NotFound {
        what: "route",
        id: uri.path().to_owned(),
    })
}

async fn method_not_allowed() -> impl IntoResponse {
    problem::ApiError::MethodNotAllowed
}

/// The whole application with its middleware.
pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    Router::new()
        .merge(routes::subscriptions::router())
        .merge(routes::deliveries::router())
        .merge(routes::audit::router())
        .merge(routes::reconciliation::router())
        .merge(routes::catalog::router())
        .merge(routes::health::router())
        .merge(routes::ingress::router(&state))
        .merge(openapi::router())
        .merge(metrics::router(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .with_state(state)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            edge::Edge::new(&limits),
            edge::edge,
        ))
}
