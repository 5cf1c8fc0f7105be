//! `/v1/subscriptions` and `/v1/subscriptions/{id}`: create, preview,
//! list, get, patch (JSON merge patch) and delete.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_core::operation::OperationKind;
use switchboard_core::{Error, SubscriptionSpec, SubscriptionStatus};
use switchboard_store::{ListQuery, SubscriptionRecord};
use utoipa::IntoParams;

use super::change::{Change, Job};
use super::{ApiResult, SubscriptionCursors, with_etag};
use crate::AppState;
use crate::auth::{Caller, READ};
use crate::dto::{
    PreviewView, SubscriptionPage, SubscriptionRequest, SubscriptionView, merge_patch,
};
use crate::extract::{ApiJson, ApiQuery, Cursor, Limit, QueryParams, SubscriptionId, parse_json};
use crate::openapi::ChangeProblems;
use crate::problem::{ApiError, Problem};

/// Create a subscription and its native resources.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    operation_id = "createSubscription",
    request_body = SubscriptionRequest,
    responses(
        ChangeProblems,
        (status = 201, description = "Created", body = SubscriptionView),
        (status = 202, description = "Still applying upstream after the budget; finishes in the background", body = SubscriptionView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unsupported field, or the provider rejected the subscription", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubscriptionRequest>,
) -> ApiResult<Response> {
    let change = Change::create(&state, &caller, &headers)?;
    let ran = change.run(body.into_keyed(), created).await?;
    Ok(ran.answer(|rec| with_etag(StatusCode::CREATED, &rec, true)))
}

/// The engine work of a create: the subscription with its key.
pub(super) async fn created(job: Job, (key, spec): Keyed) -> Result<SubscriptionRecord, Error> {
    job.engine
        .create_keyed(&job.tenant, &job.actor, &job.id, key, spec, &job.detached)
        .await
}

/// Dry run: the exact native requests a create would send, secrets
/// redacted. With a `key`, what `PUT /v1/subscriptions/by-key/{key}` of
/// the same body would do: create, update (which fields, which native
/// resources) or leave unchanged.
#[utoipa::path(post, path = "/v1/subscriptions/preview", tag = "subscriptions",
    operation_id = "previewSubscription",
    request_body = SubscriptionRequest,
    responses(
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "What would be done; nothing was sent", body = PreviewView),
        (status = 422, description = "Invalid or unsupported field, or a `provider` or `account` other than those of the subscription with the key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubscriptionRequest>,
) -> ApiResult<axum::Json<PreviewView>> {
    caller.require(READ)?;
    let (key, spec) = body.into_keyed()?;
    let current = match &key {
        Some(key) => state.engine.find_by_key(&caller.tenant, key).await?,
        None => None,
    };
    let preview = match &current {
        Some(current) => state.engine.preview_change(current, spec)?,
        None => state.engine.preview(spec)?,
    };
    Ok(axum::Json(preview.into()))
}

/// List filters and paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this provider instance.
    pub provider: Option<String>,
    /// Only this status.
    #[param(value_type = Option<SubscriptionStatus>, inline)]
    pub status: Option<StatusParam>,
    /// 1..=200, default 50.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    pub limit: Option<Limit>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<Cursor<SubscriptionCursors>>,
    /// Admin tokens only: only this tenant (others' lists are their own).
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
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions",
    operation_id = "listSubscriptions",
    params(ListParams),
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
    operation_id = "getSubscription",
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
/// replaced as a whole), `key` included (`null` removes it). `provider`
/// and `account` cannot change.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    operation_id = "updateSubscription",
    params(("id" = String, Path, description = "Subscription id"),
           ("If-Match" = Option<String>, Header, description = "`*` or the ETags the change may be based on (RFC 9110 §13.1.1, strong comparison)")),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses(
        ChangeProblems,
        (status = 200, description = "Updated", body = SubscriptionView),
        (status = 400, description = "Malformed JSON, or an If-Match outside RFC 9110's grammar", body = Problem, content_type = "application/problem+json"),
        (status = 202, description = "Still applying upstream after the budget; finishes in the background", body = SubscriptionView),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match lists no current strong ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, or the provider rejected the change", body = Problem, content_type = "application/problem+json"),
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
    let input = patched(&current, &patch, &headers).map(|(desired, v)| (current, desired, v));
    let ran = change.run(input, updated).await?;
    Ok(ran.answer(|rec| with_etag(StatusCode::OK, &rec, false)))
}

/// The engine work of an update: `current` (as read) to the desired key
/// and spec, based on the `If-Match` version when one was given.
pub(super) async fn updated(
    job: Job,
    (current, (key, spec), version): (SubscriptionRecord, Keyed, Option<i64>),
) -> Result<SubscriptionRecord, Error> {
    job.engine
        .update_keyed(&job.actor, current, key, spec, version, &job.detached)
        .await
}

/// A subscription's key and spec as a request describes them.
pub(super) type Keyed = (Option<String>, SubscriptionSpec);

/// The key and spec `patch` makes of `current`, and the version it is
/// based on. `key` is patched like any field (`null` removes it).
fn patched(
    current: &SubscriptionRecord,
    patch: &serde_json::Value,
    headers: &HeaderMap,
) -> Result<(Keyed, Option<i64>), Error> {
    // Preconditions before the content (RFC 9110 §13.2.1).
    let version = crate::precondition::check(headers, current.version)?;
    if !patch.is_object() {
        return Err(Error::field("/", "a merge patch must be a JSON object"));
    }
    let base = SubscriptionRequest {
        key: current.key.clone(),
        ..SubscriptionRequest::from_spec(&current.spec)
    };
    let mut merged = serde_json::to_value(base).map_err(|e| Error::Internal(e.to_string()))?;
    merge_patch(&mut merged, patch);
    let body: SubscriptionRequest = parse_json(merged.to_string().as_bytes())?;
    Ok((body.into_keyed()?, version))
}

/// Delete the subscription after removing every native resource.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    operation_id = "deleteSubscription",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        ChangeProblems,
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
    let ran = change.run(Ok(current), deleted).await?;
    Ok(ran.answer(|()| StatusCode::NO_CONTENT.into_response()))
}

/// The engine work of a delete of `current` (as read).
pub(super) async fn deleted(job: Job, current: SubscriptionRecord) -> Result<(), Error> {
    job.engine
        .delete_with(&job.actor, current, &job.detached)
        .await
}
