//! `/healthz` (the process answers) and `/readyz` (the database answers;
//! each provider instance's last upstream outcome is shown beside it).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// The router of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The answer of a probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (liveness), `ready` or `unavailable` (readiness).
    pub status: &'static str,
    /// Readiness only: the database backend checked, `sqlite` or `postgres`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    /// Readiness only: each provider instance's last upstream call seen by
    /// this process, by key. Informational: a provider's outage does not
    /// make Switchboard unready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub providers: Option<BTreeMap<String, ProviderHealth>>,
}

/// The last upstream call to one provider instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderHealth {
    /// `ok`, `rejected`, `rate_limited`, `unavailable`, `timeout` or
    /// `unknown_outcome`; null before the first call.
    pub last_outcome: Option<&'static str>,
    /// When that call ended (RFC 3339); null before the first call.
    pub at: Option<DateTime<Utc>>,
}

/// Every provider instance's last call, as readiness shows it.
fn providers(state: &AppState) -> BTreeMap<String, ProviderHealth> {
    state
        .engine
        .upstream_health()
        .into_iter()
        .map(|(key, last)| {
            let health = ProviderHealth {
                last_outcome: last.map(|c| c.last_outcome),
                at: last.map(|c| c.at),
            };
            (key, health)
        })
        .collect()
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "getHealth",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        database: None,
        providers: None,
    })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "getReadiness",
    responses((status = 200, description = "Ready", body = Health),
              (status = 503, description = "Database unavailable", body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    let store = &state.store;
    let (code, status) = match store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    let body = Health {
        status,
        database: Some(store.backend()),
        providers: Some(providers(&state)),
    };
    (code, axum::Json(body))
}
