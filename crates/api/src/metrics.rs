//! The API's side of the metrics: `GET /metrics`, which renders the
//! process's recorder in the Prometheus text format after refreshing the
//! subscription counts (at most once per refresh interval, so a scrape
//! costs one grouped query at most). Requests are counted at the edge
//! ([`crate::edge`]).
//!
//! `/metrics` is served on the API listener to admin tokens, or, when the
//! operator gives it a listener of its own, there without authentication
//! ([`open_router`]) and not on the API listener.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchboard_core::SubscriptionStatus;
use switchboard_store::Store;
use switchboard_telemetry::{Metrics, prometheus::CONTENT_TYPE, record};
use tokio::time::Instant;

use crate::AppState;
use crate::auth::{ADMIN, Caller};
use crate::problem::{ApiError, Problem};

/// What `/metrics` serves: the recorder, and the subscription counts
/// refreshed from the store.
pub struct Exposition {
    metrics: Metrics,
    store: Store,
    refresh: Duration,
    /// When the counts were last read, and every provider instance ever
    /// reported (its statuses are reported as 0 once they empty). An async
    /// lock: concurrent scrapes wait for one query instead of each running
    /// their own.
    counts: tokio::sync::Mutex<(Option<Instant>, BTreeSet<String>)>,
}

impl Exposition {
    /// Serves `metrics`, reading subscription counts from `store` at most
    /// once per `refresh`; `providers` are reported even with none.
    pub fn new(metrics: Metrics, store: Store, refresh: Duration, providers: Vec<String>) -> Self {
        Self {
            metrics,
            store,
            refresh,
            counts: tokio::sync::Mutex::new((None, providers.into_iter().collect())),
        }
    }

    /// The text exposition, subscription counts refreshed if due.
    pub async fn render(&self) -> String {
        self.refresh_counts().await;
        self.metrics.render()
    }

    async fn refresh_counts(&self) {
        let mut guard = self.counts.lock().await;
        let (refreshed, providers) = &mut *guard;
        if refreshed.is_some_and(|at| at.elapsed() < self.refresh) {
            return;
        }
        let counted = match self.store.count_by_provider_and_status().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "subscription counts not refreshed");
                return;
            }
        };
        let mut values: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for (provider, status, n) in counted {
            providers.insert(provider.clone());
            values.insert((provider, status.as_str()), n);
        }
        for provider in providers.iter() {
            for status in SubscriptionStatus::ALL {
                let n = values
                    .get(&(provider.clone(), status.as_str()))
                    .copied()
                    .unwrap_or_default();
                record::subscriptions(provider, status.as_str(), n);
            }
        }
        *refreshed = Some(Instant::now());
    }

    async fn respond(&self) -> Response {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], self.render().await).into_response()
    }
}

/// `GET /metrics` on the API listener, when the state serves it there.
pub fn router(state: &AppState) -> Router<AppState> {
    match state.metrics {
        Some(_) => Router::new().route("/metrics", get(get_metrics)),
        None => Router::new(),
    }
}

/// `GET /metrics` without authentication, for a listener of its own.
pub fn open_router(exposition: Arc<Exposition>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(e): State<Arc<Exposition>>| async move { e.respond().await }),
        )
        .with_state(exposition)
}

/// Prometheus metrics in the text exposition format (admin tokens only).
/// Served here unless `[metrics] listen` gives them a listener of their
/// own.
#[utoipa::path(get, path = "/metrics", tag = "metrics", operation_id = "getMetrics",
    responses(
        (status = 200, description = "The Prometheus text exposition format, version 0.0.4", body = String, content_type = "text/plain"),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_metrics(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(ADMIN)?;
    let exposition = state.metrics.as_ref().ok_or_else(|| {
        switchboard_core::Error::Internal("metrics are not served on this listener".into())
    })?;
    Ok(exposition.respond().await)
}
