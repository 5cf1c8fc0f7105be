//! `/v1/subscriptions`: create, list, get, patch, delete, enable, disable,
//! preview.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use switchboard_core::{Error, SubscriptionStatus};
use switchboard_engine::Preview;
use switchboard_store::ListQuery;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Caller, READ, WRITE};
use crate::dto::{SubscriptionPage, SubscriptionRequest, SubscriptionView, merge_patch};
use crate::extract::{ApiJson, parse_json};
use crate::problem::{ApiError, Problem};

/// The router of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subscriptions", post(create).get(list))
        .route("/v1/subscriptions/preview", post(preview))
        .route(
            "/v1/subscriptions/{id}",
            get(fetch).patch(patch).delete(remove),
        )
        .route("/v1/subscriptions/{id}/enable", post(enable))
        .route("/v1/subscriptions/{id}/disable", post(disable))
}

type ApiResult<T> = Result<T, ApiError>;

fn with_etag(status: StatusCode, view: SubscriptionView, location: bool) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", view.version)).ok();
    let loc = location
        .then(|| HeaderValue::from_str(&format!("/v1/subscriptions/{}", view.id)).ok())
        .flatten();
    let mut resp = (status, axum::Json(view)).into_response();
    if let Some(v) = etag {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if let Some(v) = loc {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Create a subscription and its native resources.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    request_body = SubscriptionRequest,
    responses(
        (status = 201, description = "Created", body = SubscriptionView),
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
    ApiJson(body): ApiJson<SubscriptionRequest>,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    let spec = body.into_spec()?;
    let rec = state.engine.create(&caller.tenant, spec).await?;
    tracing::info!(tenant = %caller.tenant, token = %caller.name, id = %rec.id, "subscription created");
    Ok(with_etag(
        StatusCode::CREATED,
        SubscriptionView::from(&rec),
        true,
    ))
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
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this provider instance.
    pub provider: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
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
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<axum::Json<SubscriptionPage>> {
    caller.require(READ)?;
    let q = list_query(params)?;
    let page = state.engine.list(&caller.tenant, &q).await?;
    Ok(axum::Json(SubscriptionPage {
        data: page.data.iter().map(SubscriptionView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn list_query(params: std::collections::HashMap<String, String>) -> Result<ListQuery, Error> {
    let mut q = ListQuery {
        limit: 50,
        ..Default::default()
    };
    let mut errors = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "provider" => q.provider = Some(v),
            "status" => match SubscriptionStatus::parse(&v) {
                Some(s) => q.status = Some(s),
                None => errors.push(switchboard_core::FieldError::new(
                    "/status",
                    "must be one of active, disabled, pending, degraded, failed",
                )),
            },
            "limit" => match v.parse::<u64>() {
                Ok(n) if (1..=200).contains(&n) => q.limit = n,
                _ => errors.push(switchboard_core::FieldError::new(
                    "/limit",
                    "must be an integer from 1 to 200",
                )),
            },
            "cursor" => {
                if switchboard_core::ids::is_subscription_id(&v) {
                    q.after = Some(v);
                } else {
                    errors.push(switchboard_core::FieldError::new(
                        "/cursor",
                        "is not a cursor returned by this API",
                    ));
                }
            }
            other => errors.push(switchboard_core::FieldError::new(
                format!("/{other}"),
                "unknown query parameter; known: provider, status, limit, cursor",
            )),
        }
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(Error::Invalid(errors))
    }
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
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(READ)?;
    let rec = state.engine.get(&caller.tenant, &id).await?;
    Ok(with_etag(
        StatusCode::OK,
        SubscriptionView::from(&rec),
        false,
    ))
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Error> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| Error::Malformed {
            detail: "If-Match must be the ETag of the subscription, e.g. \"3\"".into(),
            pointer: None,
        })
}

/// Change mutable fields with a JSON merge patch (RFC 7386; `auth` is
/// replaced as a whole). `provider` and `account` cannot change.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id"),
           ("If-Match" = Option<String>, Header, description = "ETag the change is based on")),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "Updated", body = SubscriptionView),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A change is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<serde_json::Value>,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    if !patch.is_object() {
        return Err(Error::field("/", "a merge patch must be a JSON object").into());
    }
    let version = if_match(&headers)?;
    let current = state.engine.get(&caller.tenant, &id).await?;
    let mut merged = serde_json::to_value(SubscriptionRequest::from_spec(&current.spec))
        .map_err(|e| Error::Internal(e.to_string()))?;
    merge_patch(&mut merged, &patch);
    let body: SubscriptionRequest = parse_json(merged.to_string().as_bytes())?;
    let spec = body.into_spec()?;
    let rec = state
        .engine
        .update(&caller.tenant, &id, spec, version)
        .await?;
    tracing::info!(tenant = %caller.tenant, token = %caller.name, id = %rec.id, "subscription updated");
    Ok(with_etag(
        StatusCode::OK,
        SubscriptionView::from(&rec),
        false,
    ))
}

/// Delete the subscription after removing every native resource.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Provider failed; nothing was deleted", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(WRITE)?;
    state.engine.delete(&caller.tenant, &id).await?;
    tracing::info!(tenant = %caller.tenant, token = %caller.name, %id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(
    state: AppState,
    caller: Caller,
    id: String,
    enabled: bool,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    let rec = state
        .engine
        .set_enabled(&caller.tenant, &id, enabled)
        .await?;
    tracing::info!(tenant = %caller.tenant, token = %caller.name, %id, enabled, "subscription switched");
    Ok(with_etag(
        StatusCode::OK,
        SubscriptionView::from(&rec),
        false,
    ))
}

/// Switch deliveries on (recreating native resources where the provider
/// has no native switch).
#[utoipa::path(post, path = "/v1/subscriptions/{id}/enable", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, description = "Enabled", body = SubscriptionView),
              (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    set_enabled(state, caller, id, true).await
}

/// Switch deliveries off, keeping the subscription.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/disable", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, description = "Disabled", body = SubscriptionView),
              (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    set_enabled(state, caller, id, false).await
}
