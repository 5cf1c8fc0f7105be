//! `GET /v1/subscriptions/{id}/operations`: the journal of changes.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchboard_core::operation::{OperationKind, OperationState, Step};
use utoipa::{IntoParams, ToSchema};

use super::ApiResult;
use crate::AppState;
use crate::auth::{Caller, READ};
use crate::dto::rfc3339;
use crate::extract::{ApiQuery, Cursor, CursorKind, Limit, QueryParams, SubscriptionId};
use crate::problem::{ApiError, Problem};

/// One journalled change, as shown in the history. The journal also keeps
/// the specs before and after (sealed, secrets included); they are not shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationView {
    /// `op_<ulid>`.
    pub id: String,
    /// What the change was.
    pub kind: OperationKind,
    /// Token name, or `switchboard` for recovery.
    pub actor: String,
    /// Where it stands.
    pub state: OperationState,
    /// Native steps as they completed, with native ids.
    pub steps: Vec<Step>,
    /// The upstream or internal error, when not `succeeded`.
    pub error: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, when finished.
    pub finished_at: Option<String>,
}

/// A page of history.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationPage {
    /// Newest first.
    pub data: Vec<OperationView>,
    /// Pass as `cursor` for older entries; null at the first change.
    pub next_cursor: Option<String>,
}

/// What was done to a subscription, when, by which token, with which
/// upstream outcome (newest first).
#[utoipa::path(get, path = "/v1/subscriptions/{id}/operations", tag = "subscriptions",
    operation_id = "listSubscriptionOperations",
    params(("id" = String, Path, description = "Subscription id"), OperationParams),
    responses(
        (status = 200, description = "History", body = OperationPage),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn operations(
    State(state): State<AppState>,
    caller: Caller,
    id: SubscriptionId,
    params: Result<ApiQuery<OperationParams>, ApiError>,
) -> ApiResult<axum::Json<OperationPage>> {
    caller.require(READ)?;
    let id = id.get()?;
    let ApiQuery(params) = params?;
    let tenant = caller.tenant_for(&state, &id).await?;
    // 404 for a subscription this tenant does not have, unless it had one:
    // the history of a deleted subscription stays readable.
    let store = &state.store;
    if let Err(e) = store.get(&tenant, &id).await {
        let (ops, _) = store.list_operations(&tenant, &id, 1, None).await?;
        if ops.is_empty() {
            return Err(e.into());
        }
    }
    let (ops, next_cursor) = store
        .list_operations(
            &tenant,
            &id,
            Limit::or_default(params.limit),
            Cursor::text(&params.cursor),
        )
        .await?;
    Ok(axum::Json(OperationPage {
        data: ops
            .into_iter()
            .map(|o| OperationView {
                id: o.id,
                kind: o.kind,
                actor: o.actor,
                state: o.state,
                steps: o.steps,
                error: o.error,
                started_at: rfc3339(o.started_at),
                finished_at: o.finished_at.map(rfc3339),
            })
            .collect(),
        next_cursor,
    }))
}

/// Query of the history.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperationParams {
    /// 1..=200, default 50.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    pub limit: Option<Limit>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<Cursor<OperationCursors>>,
}

impl QueryParams for OperationParams {
    const UNKNOWN: &'static str = "unknown query parameter; known: limit, cursor";
}

/// Cursors of the history: operation ids.
#[derive(Debug)]
pub struct OperationCursors;

impl CursorKind for OperationCursors {
    fn accepts(cursor: &str) -> bool {
        cursor.starts_with("op_")
    }
}
