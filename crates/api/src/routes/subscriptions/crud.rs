//! `/v1/subscriptions` and `/v1/subscriptions/{id}`: create, preview,
//! list, get, patch (JSON merge patch) and delete.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_core::operation::OperationKind;
use switchboard_core::{Error, SubscriptionStatus};
use switchboard_engine::Preview;
use switchboard_store::ListQuery;
use utoipa::IntoParams;

use super::change::Change;
use super::{ApiResult, SubscriptionCursors, with_etag};
use crate::AppState;
use crate::auth::{Caller, READ};
use crate::dto::{SubscriptionPage, SubscriptionRequest, SubscriptionView, merge_patch};
use crate::extract::{ApiJson, ApiQuery, Cursor, Limit, QueryParams, SubscriptionId, parse_json};
use crate::problem::{ApiError, Problem};

/// Create a subscription and its native resources.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    request_body = SubscriptionRequest,
    responses(
        (status = 201, description = "Created", body = SubscriptionView),
        (status = 202, description = "Still applying upstream after the budget; finishes in the background", body = SubscriptionView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unsupported field", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Provider failed or refused Switchboard's credentials", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Provider timed out", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubscriptionRequest>,
) -> ApiResult<Response> {
    let change = Change::create(&state, &caller, &headers)?;
    let ran = change
        .run(body.into_spec(), |job, spec| async move {
            job.engine
                .create_with_id(&job.tenant, &job.actor, &job.id, spec, &job.detached)
                .await
        })
        .await?;
    Ok(ran.answer(|rec| with_etag(StatusCode::CREATED, &rec, true)))
}

/// Dry run: the exact native requests a create would send, secrets redacted.
#[utoipa::path(post, path = "/v1/subscriptions/preview", tag = "subscriptions",
    request_body = SubscriptionRequest,
    responses(
        (status = 200, description = "What would be sent", body = Object),
        (status = 422, description = "Invalid or unsupported field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubscriptionRequest>,
) -> ApiResult<axum::Json<Preview>> {
    caller.require(READ)?;
    Ok(axum::Json(state.engine.preview(body.into_spec()?)?))
}

/// List filters and paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this provider instance.
    pub provider: Option<String>,
    /// Only this status.
    #[param(value_type = Option<String>)]
    pub status: Option<StatusParam>,
    /// 1..=200, default 50.
    #[param(value_type = Option<u64>)]
    pub limit: Option<Limit>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<Cursor<SubscriptionCursors>>,
    /// Admin tokens only: only this tenant (others' lists are their own).
    #[param(value_type = Option<String>)]
    pub tenant: Option<String>,
}

/// The detail for a parameter a caller may not use; `tenant` is named to
/// admins only.
const LIST_UNKNOWN: &str = "unknown query parameter; known: provider, status, limit, cursor";

impl QueryParams for ListParams {
    const UNKNOWN: &'static str = LIST_UNKNOWN;
}

/// A `status` filter.
#[derive(Debug, Clone, Copy)]
pub struct StatusParam(pub SubscriptionStatus);

impl<'de> Deserialize<'de> for StatusParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SubscriptionStatus::parse(&text).map(Self).ok_or_else(|| {
            serde::de::Error::custom("must be one of active, disabled, pending, degraded, failed")
        })
    }
}

/// List the tenant's subscriptions, oldest first.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions", params(ListParams),
    responses(
        (status = 200, description = "A page", body = SubscriptionPage),
        (status = 422, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<ApiQuery<ListParams>, ApiError>,
) -> ApiResult<axum::Json<SubscriptionPage>> {
    caller.require(READ)?;
    let ApiQuery(params) = params?;
    let scope = if caller.is_admin() {
        params.tenant.as_deref()
    } else if params.tenant.is_some() {
        return Err(Error::field("/tenant", LIST_UNKNOWN).into());
    } else {
        Some(caller.tenant.as_str())
    };
    let q = ListQuery {
        provider: params.provider.clone(),
        status: params.status.map(|s| s.0),
        limit: Limit::or_default(params.limit),
        after: Cursor::text(&params.cursor).map(str::to_owned),
    };
    let page = state.engine.list(scope, &q).await?;
    Ok(axum::Json(SubscriptionPage {
        data: page.data.iter().map(SubscriptionView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Read one subscription.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 404, description = "Not found for this tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    id: SubscriptionId,
) -> ApiResult<Response> {
    caller.require(READ)?;
    let id = id.get()?;
    let tenant = caller.tenant_for(&state, &id).await?;
    let rec = state.engine.get(&tenant, &id).await?;
    Ok(with_etag(StatusCode::OK, &rec, false))
}

/// Change mutable fields with a JSON merge patch (RFC 7386; `auth` is
/// replaced as a whole). `provider` and `account` cannot change.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id"),
           ("If-Match" = Option<String>, Header, description = "`*` or the ETags the change may be based on (RFC 9110 §13.1.1, strong comparison)")),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Updated", body = SubscriptionView),
        (status = 400, description = "Malformed JSON, or an If-Match outside RFC 9110's grammar", body = Problem, content_type = "application/problem+json"),
        (status = 202, description = "Still applying upstream after the budget; finishes in the background", body = SubscriptionView),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A change is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match lists no current strong ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    id: SubscriptionId,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> ApiResult<Response> {
    let (change, current) =
        Change::existing(&state, &caller, &headers, OperationKind::Update, id).await?;
    let input = patched(&current, &patch, &headers).map(|(spec, v)| (current, spec, v));
    let ran = change
        .run(input, |job, (current, spec, version)| async move {
            job.engine
                .update_with(&job.actor, current, spec, version, &job.detached)
                .await
        })
        .await?;
    Ok(ran.answer(|rec| with_etag(StatusCode::OK, &rec, false)))
}

/// The spec `patch` makes of `current`, and the version it is based on.
fn patched(
    current: &switchboard_store::SubscriptionRecord,
    patch: &serde_json::Value,
    headers: &HeaderMap,
) -> Result<(switchboard_core::SubscriptionSpec, Option<i64>), Error> {
    // Preconditions before the content (RFC 9110 §13.2.1).
    let version = crate::precondition::check(headers, current.version)?;
    if !patch.is_object() {
        return Err(Error::field("/", "a merge patch must be a JSON object"));
    }
    let mut merged = serde_json::to_value(SubscriptionRequest::from_spec(&current.spec))
        .map_err(|e| Error::Internal(e.to_string()))?;
    merge_patch(&mut merged, patch);
    let body: SubscriptionRequest = parse_json(merged.to_string().as_bytes())?;
    Ok((body.into_spec()?, version))
}

/// Delete the subscription after removing every native resource.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 202, description = "Still deleting upstream after the budget; finishes in the background", body = SubscriptionView),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Provider failed; nothing was deleted", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    id: SubscriptionId,
) -> ApiResult<Response> {
    let (change, current) =
        Change::existing(&state, &caller, &headers, OperationKind::Delete, id).await?;
    let ran = change
        .run(Ok(current), |job, current| async move {
            job.engine
                .delete_with(&job.actor, current, &job.detached)
                .await
        })
        .await?;
    Ok(ran.answer(|()| StatusCode::NO_CONTENT.into_response()))
}
