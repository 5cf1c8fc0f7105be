//! `/v1/subscriptions`: create, list, get, patch, delete, enable, disable,
//! preview.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use switchboard_core::{Error, Secret, SubscriptionStatus};
use switchboard_engine::{Detached, Preview};
use switchboard_store::ListQuery;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, READ, WRITE};
use crate::dto::{SubscriptionPage, SubscriptionRequest, SubscriptionView, merge_patch};
use crate::extract::{ApiJson, parse_json};
use crate::problem::{ApiError, Problem};
use crate::{AppState, audit};

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
        .route("/v1/subscriptions/{id}/rotate-secret", post(rotate_secret))
        .route("/v1/subscriptions/{id}/operations", get(operations))
        .route("/v1/subscriptions/{id}/reconcile", post(reconcile))
}

/// Compare the subscription with what its provider reports and repair
/// drift: a native resource deleted or changed at the provider is
/// recreated. Lookalike resources nobody recorded are reported, and
/// removed with `?remove_unknown=true`.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/reconcile", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id"),
           ("remove_unknown" = Option<bool>, Query, description = "also delete unrecorded lookalikes")),
    responses(
        (status = 200, description = "Compared; `findings` says what differed", body = SubscriptionView),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A change is in progress", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Provider failed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn reconcile(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Result<Query<std::collections::HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    let Query(params) = params.map_err(|e| Error::Malformed {
        detail: format!("the query string could not be parsed: {e}"),
        pointer: None,
    })?;
    let mut remove_unknown = false;
    for (k, v) in params {
        match (k.as_str(), v.as_str()) {
            ("remove_unknown", "true") => remove_unknown = true,
            ("remove_unknown", "false") => remove_unknown = false,
            (other, _) => {
                return Err(Error::field(
                    format!("/{other}"),
                    "unknown query parameter or value; known: remove_unknown=true|false",
                )
                .into());
            }
        }
    }
    let tenant = caller.tenant_for(&state, &id).await?;
    let current = state.engine.get(&tenant, &id).await?;
    let (engine, t, i, actor) = (
        state.engine.clone(),
        tenant.clone(),
        id.clone(),
        caller.name.clone(),
    );
    let result =
        detached(async move { engine.reconcile(&t, &actor, &i, remove_unknown).await }).await;
    audit::Audited {
        state: &state,
        caller: &caller,
        headers: &headers,
        operation: "reconcile",
        tenant: &tenant,
        subscription_id: Some(&id),
        before: Some(view_json(&current)),
    }
    .result(&result, 200, result.as_ref().ok().map(view_json))
    .await;
    let rec = result?;
    Ok(with_etag(
        StatusCode::OK,
        SubscriptionView::from(&rec),
        false,
    ))
}

/// One journalled change, as shown in the history. The journal also keeps
/// the specs before and after (sealed, secrets included); they are not shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationView {
    /// `op_<ulid>`.
    pub id: String,
    /// `create`, `update`, `enable`, `disable`, `rotate_secret`, `delete`.
    pub kind: String,
    /// Token name, or `switchboard` for recovery.
    pub actor: String,
    /// `running`, `succeeded`, `failed`, `undone`, `recovered`.
    pub state: String,
    /// Native steps as they completed (`create`, `update`, `delete`,
    /// `adopt`, `undo-create`, `undo-update`), with native ids.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<serde_json::Value>,
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
    params(("id" = String, Path, description = "Subscription id"),
           ("limit" = Option<u64>, Query, description = "1..=200, default 50"),
           ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses(
        (status = 200, description = "History", body = OperationPage),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn operations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<std::collections::HashMap<String, String>>, QueryRejection>,
) -> ApiResult<axum::Json<OperationPage>> {
    caller.require(READ)?;
    let Query(params) = params.map_err(|e| Error::Malformed {
        detail: format!("the query string could not be parsed: {e}"),
        pointer: None,
    })?;
    let mut limit = 50;
    let mut cursor = None;
    let mut errors = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "limit" => match v.parse::<u64>() {
                Ok(n) if (1..=200).contains(&n) => limit = n,
                _ => errors.push(switchboard_core::FieldError::new(
                    "/limit",
                    "must be an integer from 1 to 200",
                )),
            },
            "cursor" if v.starts_with("op_") => cursor = Some(v),
            "cursor" => errors.push(switchboard_core::FieldError::new(
                "/cursor",
                "is not a cursor returned by this API",
            )),
            other => errors.push(switchboard_core::FieldError::new(
                format!("/{other}"),
                "unknown query parameter; known: limit, cursor",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors).into());
    }
    let tenant = caller.tenant_for(&state, &id).await?;
    // 404 for a subscription this tenant does not have, even if history of
    // a deleted one exists.
    let store = state.engine.store();
    if let Err(e) = store.get(&tenant, &id).await {
        let (ops, _) = store.list_operations(&tenant, &id, 1, None).await?;
        if ops.is_empty() {
            return Err(e.into());
        }
    }
    let (ops, next_cursor) = store
        .list_operations(&tenant, &id, limit, cursor.as_deref())
        .await?;
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
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
                started_at: fmt(o.started_at),
                finished_at: o.finished_at.map(fmt),
            })
            .collect(),
        next_cursor,
    }))
}

/// Runs engine work in its own task: a client that disconnects or a
/// request that times out must not cancel a change half way through its
/// upstream calls; it completes (or is undone) regardless.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    tokio::spawn(work)
        .await
        .map_err(|e| Error::Internal(format!("a change task failed: {e}")))?
}

/// The result of engine work given the request's upstream budget.
enum Budgeted<T> {
    /// Finished within the budget.
    Done(Result<T, Error>),
    /// Still running; the caller is answered `202` and the work goes on.
    Pending,
}

/// Waits for detached engine work up to `limits.upstream_budget`. Past it,
/// `flag` is set before answering, so a later failure stays visible on the
/// subscription; a task that finished in that instant is still reported.
async fn within_budget<T: Send + 'static>(
    state: &AppState,
    flag: &Detached,
    work: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> Budgeted<T> {
    let mut handle = tokio::spawn(work);
    let joined = match tokio::time::timeout(state.limits.upstream_budget, &mut handle).await {
        Ok(joined) => joined,
        Err(_) => {
            flag.set();
            if !handle.is_finished() {
                return Budgeted::Pending;
            }
            handle.await
        }
    };
    Budgeted::Done(
        joined
            .map_err(|e| Error::Internal(format!("a change task failed: {e}")))
            .and_then(|r| r),
    )
}

/// Audits a change answered `202` and builds that answer.
async fn pending_answer(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    operation: &'static str,
    tenant: &str,
    id: &str,
    before: Option<serde_json::Value>,
) -> Response {
    audit::Audited {
        state,
        caller,
        headers,
        operation,
        tenant,
        subscription_id: Some(id),
        before,
    }
    .pending()
    .await;
    accepted(state, tenant, id).await
}

/// `202 Accepted` with the subscription as it stands (status `pending`).
async fn accepted(state: &AppState, tenant: &str, id: &str) -> Response {
    let body = match state.engine.get(tenant, id).await {
        Ok(rec) => serde_json::to_value(SubscriptionView::from(&rec)).unwrap_or_default(),
        Err(_) => serde_json::json!({"id": id, "status": "pending"}),
    };
    let mut resp = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/subscriptions/{id}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn view_json(rec: &switchboard_store::SubscriptionRecord) -> serde_json::Value {
    serde_json::to_value(SubscriptionView::from(rec)).unwrap_or_default()
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
    caller.require(WRITE)?;
    let id = switchboard_core::ids::subscription_id();
    let flag = Detached::default();
    let outcome = match body.into_spec() {
        Ok(spec) => {
            let (engine, tenant, actor, i, f) = (
                state.engine.clone(),
                caller.tenant.clone(),
                caller.name.clone(),
                id.clone(),
                flag.clone(),
            );
            within_budget(&state, &flag, async move {
                engine.create_with_id(&tenant, &actor, &i, spec, &f).await
            })
            .await
        }
        Err(e) => Budgeted::Done(Err(e)),
    };
    let Budgeted::Done(result) = outcome else {
        return Ok(pending_answer(
            &state,
            &caller,
            &headers,
            "create",
            &caller.tenant,
            &id,
            None,
        )
        .await);
    };
    audit::Audited {
        state: &state,
        caller: &caller,
        headers: &headers,
        operation: "create",
        tenant: &caller.tenant,
        subscription_id: result.as_ref().ok().map(|r| r.id.as_str()),
        before: None,
    }
    .result(&result, 201, result.as_ref().ok().map(view_json))
    .await;
    let rec = result?;
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
    params: Result<Query<std::collections::HashMap<String, String>>, QueryRejection>,
) -> ApiResult<axum::Json<SubscriptionPage>> {
    caller.require(READ)?;
    let Query(params) = params.map_err(|e| Error::Malformed {
        detail: format!("the query string could not be parsed: {e}"),
        pointer: None,
    })?;
    let (q, tenant) = list_query(params, caller.is_admin())?;
    let scope = if caller.is_admin() {
        tenant.as_deref()
    } else {
        Some(caller.tenant.as_str())
    };
    let page = state.engine.list(scope, &q).await?;
    Ok(axum::Json(SubscriptionPage {
        data: page.data.iter().map(SubscriptionView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn list_query(
    params: std::collections::HashMap<String, String>,
    admin: bool,
) -> Result<(ListQuery, Option<String>), Error> {
    let mut q = ListQuery {
        limit: 50,
        ..Default::default()
    };
    let mut tenant = None;
    let mut errors = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "tenant" if admin => tenant = Some(v),
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
        Ok((q, tenant))
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
    let tenant = caller.tenant_for(&state, &id).await?;
    let rec = state.engine.get(&tenant, &id).await?;
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
    let text = v.to_str().unwrap_or_default().trim();
    // If-Match uses the strong comparison (RFC 9110 §13.1.1): a weak
    // validator never matches.
    if text.starts_with("W/") {
        return Err(Error::PreconditionFailed(
            "If-Match needs the strong ETag (\"3\"), not a weak one".into(),
        ));
    }
    text.trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| Error::Malformed {
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
        (status = 202, description = "Still applying upstream after the budget; finishes in the background", body = SubscriptionView),
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
    let tenant = caller.tenant_for(&state, &id).await?;
    let current = state.engine.get(&tenant, &id).await?;
    let parsed = (|| {
        if !patch.is_object() {
            return Err(Error::field("/", "a merge patch must be a JSON object"));
        }
        let version = if_match(&headers)?;
        let mut merged = serde_json::to_value(SubscriptionRequest::from_spec(&current.spec))
            .map_err(|e| Error::Internal(e.to_string()))?;
        merge_patch(&mut merged, &patch);
        let body: SubscriptionRequest = parse_json(merged.to_string().as_bytes())?;
        Ok((body.into_spec()?, version))
    })();
    let flag = Detached::default();
    let outcome = match parsed {
        Ok((spec, version)) => {
            let (engine, t, i, actor, f) = (
                state.engine.clone(),
                tenant.clone(),
                id.clone(),
                caller.name.clone(),
                flag.clone(),
            );
            within_budget(&state, &flag, async move {
                engine.update_with(&t, &actor, &i, spec, version, &f).await
            })
            .await
        }
        Err(e) => Budgeted::Done(Err(e)),
    };
    let Budgeted::Done(result) = outcome else {
        let before = Some(view_json(&current));
        return Ok(pending_answer(&state, &caller, &headers, "update", &tenant, &id, before).await);
    };
    audit::Audited {
        state: &state,
        caller: &caller,
        headers: &headers,
        operation: "update",
        tenant: &tenant,
        subscription_id: Some(&id),
        before: Some(view_json(&current)),
    }
    .result(&result, 200, result.as_ref().ok().map(view_json))
    .await;
    let rec = result?;
    tracing::info!(%tenant, token = %caller.name, id = %rec.id, "subscription updated");
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
        (status = 202, description = "Still deleting upstream after the budget; finishes in the background", body = SubscriptionView),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Provider failed; nothing was deleted", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    let tenant = caller.tenant_for(&state, &id).await?;
    let current = state.engine.get(&tenant, &id).await?;
    let (engine, t, i, actor) = (
        state.engine.clone(),
        tenant.clone(),
        id.clone(),
        caller.name.clone(),
    );
    let flag = Detached::default();
    let f = flag.clone();
    let outcome = within_budget(&state, &flag, async move {
        engine.delete_with(&t, &actor, &i, &f).await
    })
    .await;
    let Budgeted::Done(result) = outcome else {
        let before = Some(view_json(&current));
        return Ok(pending_answer(&state, &caller, &headers, "delete", &tenant, &id, before).await);
    };
    audit::Audited {
        state: &state,
        caller: &caller,
        headers: &headers,
        operation: "delete",
        tenant: &tenant,
        subscription_id: Some(&id),
        before: Some(view_json(&current)),
    }
    .result(&result, 204, None)
    .await;
    result?;
    tracing::info!(%tenant, token = %caller.name, %id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_enabled(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    id: String,
    enabled: bool,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    let tenant = caller.tenant_for(&state, &id).await?;
    let current = state.engine.get(&tenant, &id).await?;
    let (engine, t, i, actor) = (
        state.engine.clone(),
        tenant.clone(),
        id.clone(),
        caller.name.clone(),
    );
    let flag = Detached::default();
    let f = flag.clone();
    let outcome = within_budget(&state, &flag, async move {
        engine.set_enabled_with(&t, &actor, &i, enabled, &f).await
    })
    .await;
    let Budgeted::Done(result) = outcome else {
        let operation = if enabled { "enable" } else { "disable" };
        let before = Some(view_json(&current));
        return Ok(
            pending_answer(&state, &caller, &headers, operation, &tenant, &id, before).await,
        );
    };
    audit::Audited {
        state: &state,
        caller: &caller,
        headers: &headers,
        operation: if enabled { "enable" } else { "disable" },
        tenant: &tenant,
        subscription_id: Some(&id),
        before: Some(view_json(&current)),
    }
    .result(&result, 200, result.as_ref().ok().map(view_json))
    .await;
    let rec = result?;
    tracing::info!(%tenant, token = %caller.name, %id, enabled, "subscription switched");
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
              (status = 202, description = "Still applying upstream after the budget", body = SubscriptionView),
              (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    set_enabled(state, caller, headers, id, true).await
}

/// Switch deliveries off, keeping the subscription.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/disable", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, description = "Disabled", body = SubscriptionView),
              (status = 202, description = "Still applying upstream after the budget", body = SubscriptionView),
              (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    set_enabled(state, caller, headers, id, false).await
}

/// Body of `rotate-secret`: a secret to use, or none to have one generated.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// The new signing secret; generated when absent.
    pub signing_secret: Option<String>,
}

/// The subscription and its new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The subscription after the rotation.
    pub subscription: SubscriptionView,
    /// The new signing secret. It is never returned again.
    pub signing_secret: String,
}

/// Replace the signing secret at every native resource and return the new
/// secret once. On failure nothing changes.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/rotate-secret", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    request_body(content = Option<RotateRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "Rotated; the secret is shown once", body = RotatedSecret),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The provider does not sign deliveries", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Provider failed; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge {
                limit: state.limits.body_bytes,
            }
        } else {
            Error::Malformed {
                detail: format!("the body could not be read: {r}"),
                pointer: None,
            }
        }
    })?;
    let tenant = caller.tenant_for(&state, &id).await?;
    let current = state.engine.get(&tenant, &id).await?;
    let result = async {
        let req: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
            RotateRequest::default()
        } else {
            parse_json(&body)?
        };
        let given = match req.signing_secret {
            Some(s) if s.is_empty() || s.chars().count() > crate::dto::MAX_SECRET_LEN => {
                return Err(Error::field(
                    "/signing_secret",
                    format!("must be 1 to {} characters", crate::dto::MAX_SECRET_LEN),
                ));
            }
            other => other.map(Secret::new),
        };
        let (engine, t, i, actor) = (
            state.engine.clone(),
            tenant.clone(),
            id.clone(),
            caller.name.clone(),
        );
        detached(async move { engine.rotate_secret(&t, &actor, &i, given).await }).await
    }
    .await;
    audit::Audited {
        state: &state,
        caller: &caller,
        headers: &headers,
        operation: "rotate_secret",
        tenant: &tenant,
        subscription_id: Some(&id),
        before: Some(view_json(&current)),
    }
    .result(
        &result,
        200,
        result.as_ref().ok().map(|(r, _)| view_json(r)),
    )
    .await;
    let (rec, secret) = result?;
    tracing::info!(%tenant, token = %caller.name, %id, "signing secret rotated");
    let body = RotatedSecret {
        subscription: SubscriptionView::from(&rec),
        signing_secret: secret.expose().to_owned(),
    };
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    // The body carries a secret: keep it out of every cache.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
