//! `/v1/providers` and `/v1/events`: what is configured and what it can do.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;
use switchboard_core::Capabilities;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, READ};
use crate::problem::ApiError;

/// The router of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/providers", get(providers))
        .route("/v1/events", get(events))
}

/// One configured provider instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    /// Config key; the `provider` of a subscription.
    pub key: String,
    /// Provider kind.
    pub kind: &'static str,
    /// What the kind can do natively.
    #[schema(value_type = Object)]
    pub capabilities: Capabilities,
    /// Normalized event → native name, for the events this kind offers.
    pub events: BTreeMap<String, String>,
    /// What a `"delivery": "relay"` subscription of this provider can ask
    /// for (Switchboard honours the callback fields itself); absent when
    /// relay mode is off or the kind cannot be relayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub relay: Option<switchboard_engine::RelayCapabilities>,
}

/// Provider instances.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    /// Every configured instance.
    pub data: Vec<ProviderView>,
}

/// Configured provider instances with capabilities and event mapping.
#[utoipa::path(get, path = "/v1/providers", tag = "catalog",
    operation_id = "listProviders",
    responses((status = 200, description = "Providers", body = ProviderList)),
    security(("bearer" = [])))]
pub async fn providers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<ProviderList>, ApiError> {
    caller.require(READ)?;
    let catalog = state.engine.catalog();
    let data = state
        .engine
        .providers()
        .map(|p| {
            let kind = p.adapter.kind();
            ProviderView {
                key: p.key.clone(),
                kind,
                capabilities: p.adapter.capabilities().clone(),
                relay: state.engine.relay_capabilities(p),
                events: catalog
                    .events
                    .iter()
                    .filter_map(|(name, e)| e.native.get(kind).map(|n| (name.clone(), n.clone())))
                    .collect(),
            }
        })
        .collect();
    Ok(axum::Json(ProviderList { data }))
}

/// One normalized event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Normalized name.
    pub name: String,
    /// Meaning.
    pub description: String,
    /// Provider kind → native name.
    pub native: BTreeMap<String, String>,
}

/// The catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Normalized events.
    pub data: Vec<EventView>,
    /// Provider kind → every native name usable as `native:<name>`.
    pub native: BTreeMap<String, Vec<String>>,
}

/// The normalized event catalog and each kind's native names.
#[utoipa::path(get, path = "/v1/events", tag = "catalog",
    operation_id = "listEvents",
    responses((status = 200, description = "Events", body = EventList)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<EventList>, ApiError> {
    caller.require(READ)?;
    let catalog = state.engine.catalog();
    Ok(axum::Json(EventList {
        data: catalog
            .events
            .iter()
            .map(|(name, e)| EventView {
                name: name.clone(),
                description: e.description.clone(),
                native: e.native.clone(),
            })
            .collect(),
        native: catalog.native.clone(),
    }))
}
