//! `/v1/subscriptions/by-key/{key}`: subscriptions as code. A team names
//! each subscription with a key of its own, unique within its tenant, and
//! `PUT`s the desired state under it: created when no subscription has the
//! key, replaced when one has and differs, left alone (no journal entry,
//! no audit entry, no upstream call, the same version) when it already is
//! that state. `GET` and `DELETE` act like their by-id counterparts. The
//! work itself is the create, update and delete of [`super::crud`].

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use switchboard_core::Error;
use switchboard_core::operation::OperationKind;
use switchboard_core::record::check_key;
use switchboard_store::SubscriptionRecord;

use super::change::Change;
use super::crud::{Keyed, created, deleted, updated};
use super::{ApiResult, with_etag};
use crate::AppState;
use crate::auth::{Caller, READ, WRITE};
use crate::dto::{SubscriptionRequest, SubscriptionView};
use crate::extract::ApiJson;
use crate::openapi::ChangeProblems;
use crate::problem::Problem;

/// The routes of subscriptions by key.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/subscriptions/by-key/{key}",
        put(put_by_key).get(get_by_key).delete(delete_by_key),
    )
}

/// The `{key}` as sent; a segment that is not UTF-8 once decoded is no key.
fn path_key(path: Result<Path<String>, PathRejection>) -> String {
    path.map(|Path(key)| key).unwrap_or_default()
}

/// The `{key}` of a route that reads: one no subscription can have is 404
/// without a database query.
fn known_key(path: Result<Path<String>, PathRejection>) -> Result<String, Error> {
    let key = path_key(path);
    match check_key(&key) {
        Ok(()) => Ok(key),
        Err(_) => Err(Error::NotFound {
            what: "subscription with key",
            id: key,
        }),
    }
}

/// Create or replace the subscription with this key: the body is its whole
/// desired state (as for a create, absent fields take their defaults).
#[utoipa::path(put, path = "/v1/subscriptions/by-key/{key}", tag = "subscriptions",
    operation_id = "putSubscriptionByKey",
    params(("key" = String, Path, description = "The subscription's key: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit"),
           ("If-Match" = Option<String>, Header, description = "`*` or the ETags the change may be based on (RFC 9110 §13.1.1, strong comparison); fails when no subscription has the key")),
    request_body(content = SubscriptionRequest, description = "The desired state; a `key` in the body must be the key in the path"),
    responses(
        ChangeProblems,
        (status = 200, description = "Replaced, or already in the desired state (then nothing was changed: same version, nothing sent upstream)", body = SubscriptionView),
        (status = 201, description = "Created: no subscription had the key", body = SubscriptionView),
        (status = 202, description = "Still applying upstream after the budget; finishes in the background", body = SubscriptionView),
        (status = 409, description = "A change is in progress, or a concurrent request took the key", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match lists no current strong ETag, or no subscription has the key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid key or field, a body `key` other than the path's, a `provider` or `account` other than the subscription's (they cannot change; delete and re-create), or the provider rejected the change", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn put_by_key(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SubscriptionRequest>,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    let key = path_key(path);
    check_key(&key)?;
    let desired = desired(&key, body);
    match state.engine.find_by_key(&caller.tenant, &key).await? {
        None => create(&state, &caller, &headers, desired).await,
        Some(current) => replace(&state, &caller, &headers, current, desired).await,
    }
}

/// The body as the desired state of the subscription with `key`.
fn desired(key: &str, body: SubscriptionRequest) -> Result<Keyed, Error> {
    if body.key.as_deref().is_some_and(|k| k != key) {
        return Err(Error::field("/key", "must be the key in the path"));
    }
    let (_, spec) = body.into_keyed()?;
    Ok((Some(key.to_owned()), spec))
}

/// No subscription has the key: a create, exactly as `POST` makes one.
async fn create(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    desired: Result<Keyed, Error>,
) -> ApiResult<Response> {
    // `If-Match` asks for a current representation, and there is none
    // (RFC 9110 §13.1.1).
    if crate::precondition::parse(headers)?.is_some() {
        return Err(Error::PreconditionFailed(
            "If-Match cannot match: no subscription has this key".into(),
        )
        .into());
    }
    let change = Change::create(state, caller, headers)?;
    let ran = change.run(desired, created).await?;
    Ok(ran.answer(|rec| with_etag(StatusCode::CREATED, &rec, true)))
}

/// The subscription with the key exists: replaced as `PATCH` changes it,
/// unless it already is the desired state.
async fn replace(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    current: SubscriptionRecord,
    desired: Result<Keyed, Error>,
) -> ApiResult<Response> {
    let change = Change::of(state, caller, headers, OperationKind::Update, &current)?;
    let input = match decide(state, headers, &current, desired) {
        Ok(None) => return Ok(with_etag(StatusCode::OK, &current, false)),
        Ok(Some((desired, version))) => Ok((current, desired, version)),
        Err(e) => Err(e),
    };
    let ran = change.run(input, updated).await?;
    Ok(ran.answer(|rec| with_etag(StatusCode::OK, &rec, false)))
}

/// The change a PUT asks of `current`, and the version it is based on;
/// `None` when `current` already is the desired state.
fn decide(
    state: &AppState,
    headers: &HeaderMap,
    current: &SubscriptionRecord,
    desired: Result<Keyed, Error>,
) -> Result<Option<(Keyed, Option<i64>)>, Error> {
    // Preconditions before the content (RFC 9110 §13.2.1).
    let version = crate::precondition::check(headers, current.version)?;
    let (key, spec) = desired?;
    // The key is the one `current` was found by.
    if state.engine.is_unchanged(current, spec.clone())? {
        return Ok(None);
    }
    Ok(Some(((key, spec), version)))
}

/// Read the subscription with this key.
#[utoipa::path(get, path = "/v1/subscriptions/by-key/{key}", tag = "subscriptions",
    operation_id = "getSubscriptionByKey",
    params(("key" = String, Path, description = "The subscription's key")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 404, description = "No subscription of this tenant has the key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_by_key(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    caller.require(READ)?;
    let rec = state
        .engine
        .get_by_key(&caller.tenant, &known_key(path)?)
        .await?;
    Ok(with_etag(StatusCode::OK, &rec, false))
}

/// Delete the subscription with this key after removing every native
/// resource.
#[utoipa::path(delete, path = "/v1/subscriptions/by-key/{key}", tag = "subscriptions",
    operation_id = "deleteSubscriptionByKey",
    params(("key" = String, Path, description = "The subscription's key")),
    responses(
        ChangeProblems,
        (status = 204, description = "Deleted"),
        (status = 202, description = "Still deleting upstream after the budget; finishes in the background", body = SubscriptionView),
        (status = 404, description = "No subscription of this tenant has the key", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Provider failed; nothing was deleted", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_by_key(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    let key = known_key(path)?;
    let current = state.engine.get_by_key(&caller.tenant, &key).await?;
    let change = Change::of(&state, &caller, &headers, OperationKind::Delete, &current)?;
    let ran = change.run(Ok(current), deleted).await?;
    Ok(ran.answer(|()| StatusCode::NO_CONTENT.into_response()))
}
