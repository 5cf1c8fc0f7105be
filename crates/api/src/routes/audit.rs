//! `GET /v1/audit`: the audit log, for admin tokens only.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Serialize;
use switchboard_core::{Error, FieldError};
use switchboard_store::AuditEntry;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{ADMIN, Caller};
use crate::problem::{ApiError, Problem};

/// The router of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit", get(list))
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Who changed what, when, with which outcome (admin tokens only).
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(
        ("limit" = Option<u64>, Query, description = "1..=200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("tenant" = Option<String>, Query, description = "only this tenant"),
    ),
    responses(
        (status = 200, description = "A page", body = AuditPage),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    caller.require(ADMIN)?;
    let Query(params) = params.map_err(|e| Error::Malformed {
        detail: format!("the query string could not be parsed: {e}"),
        pointer: None,
    })?;
    let mut limit = 50;
    let (mut cursor, mut tenant) = (None, None);
    let mut errors = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "limit" => match v.parse::<u64>() {
                Ok(n) if (1..=200).contains(&n) => limit = n,
                _ => errors.push(FieldError::new(
                    "/limit",
                    "must be an integer from 1 to 200",
                )),
            },
            "cursor" if v.starts_with("aud_") => cursor = Some(v),
            "cursor" => errors.push(FieldError::new(
                "/cursor",
                "is not a cursor returned by this API",
            )),
            "tenant" => tenant = Some(v),
            other => errors.push(FieldError::new(
                format!("/{other}"),
                "unknown query parameter; known: limit, cursor, tenant",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors).into());
    }
    let (data, next_cursor) = state
        .engine
        .store()
        .list_audit(tenant.as_deref(), limit, cursor.as_deref())
        .await?;
    Ok(axum::Json(AuditPage { data, next_cursor }))
}
