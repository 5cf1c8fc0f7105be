//! `GET /v1/audit`: the audit log, for admin tokens only.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use switchboard_store::AuditEntry;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{ADMIN, Caller};
use crate::extract::{ApiQuery, Cursor, CursorKind, Limit, QueryParams};
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
    operation_id = "listAuditEntries",
    params(AuditParams),
    responses(
        (status = 200, description = "A page", body = AuditPage),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<ApiQuery<AuditParams>, ApiError>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    caller.require(ADMIN)?;
    let ApiQuery(params) = params?;
    let (data, next_cursor) = state
        .store
        .list_audit(
            params.tenant.as_deref(),
            Limit::or_default(params.limit),
            Cursor::text(&params.cursor),
        )
        .await?;
    Ok(axum::Json(AuditPage { data, next_cursor }))
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// 1..=200, default 50.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    pub limit: Option<Limit>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<Cursor<AuditCursors>>,
    /// Only this tenant.
    pub tenant: Option<String>,
}

impl QueryParams for AuditParams {
    const UNKNOWN: &'static str = "unknown query parameter; known: limit, cursor, tenant";
}

/// Cursors of the audit log: entry ids.
#[derive(Debug)]
pub struct AuditCursors;

impl CursorKind for AuditCursors {
    fn accepts(cursor: &str) -> bool {
        cursor.starts_with("aud_")
    }
}
