//! `/v1/subscriptions/{id}/…` actions: enable, disable, rotate-secret and
//! reconcile.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_core::operation::OperationKind;
use switchboard_core::subscription::MAX_SECRET_LEN;
use switchboard_core::{Error, Secret};
use utoipa::{IntoParams, ToSchema};

use super::change::Change;
use super::{ApiResult, with_etag};
use crate::AppState;
use crate::auth::{Caller, WRITE};
use crate::dto::SubscriptionView;
use crate::extract::{ApiQuery, QueryParams, SubscriptionId, parse_json};
use crate::openapi::ChangeProblems;
use crate::problem::{ApiError, Problem};

async fn set_enabled(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    id: SubscriptionId,
    enabled: bool,
) -> ApiResult<Response> {
    let kind = if enabled {
        OperationKind::Enable
    } else {
        OperationKind::Disable
    };
    let (change, current) = Change::existing(&state, &caller, &headers, kind, id).await?;
    let ran = change
        .run(Ok(current), |job, current| async move {
            job.engine
                .set_enabled_with(&job.actor, current, enabled, &job.detached)
                .await
        })
        .await?;
    Ok(ran.answer(|rec| with_etag(StatusCode::OK, &rec, false)))
}

/// Switch deliveries on (recreating native resources where the provider
/// has no native switch).
#[utoipa::path(post, path = "/v1/subscriptions/{id}/enable", tag = "subscriptions",
    operation_id = "enableSubscription",
    params(("id" = String, Path, description = "Subscription id")),
    responses(ChangeProblems,
              (status = 200, description = "Enabled", body = SubscriptionView),
              (status = 202, description = "Still applying upstream after the budget", body = SubscriptionView),
              (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    id: SubscriptionId,
) -> ApiResult<Response> {
    set_enabled(state, caller, headers, id, true).await
}

/// Switch deliveries off, keeping the subscription.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/disable", tag = "subscriptions",
    operation_id = "disableSubscription",
    params(("id" = String, Path, description = "Subscription id")),
    responses(ChangeProblems,
              (status = 200, description = "Disabled", body = SubscriptionView),
              (status = 202, description = "Still applying upstream after the budget", body = SubscriptionView),
              (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    id: SubscriptionId,
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
    operation_id = "rotateSubscriptionSecret",
    params(("id" = String, Path, description = "Subscription id")),
    request_body(content = Option<RotateRequest>, content_type = "application/json",
        description = "Optional: an empty body has a secret generated"),
    responses(
        ChangeProblems,
        (status = 200, description = "Rotated; the secret is shown once", body = RotatedSecret,
            headers(("Cache-Control" = String, description = "`no-store`: the body carries a secret"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid secret, or the provider does not sign deliveries", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Provider failed; nothing changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    id: SubscriptionId,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    // The scope before the body is looked at, as for every route.
    caller.require(WRITE)?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: state.limits.body_bytes,
            }
        } else {
            Error::Malformed {
                detail: format!("the body could not be read: {r}"),
                pointer: None,
            }
            .into()
        }
    })?;
    let (change, _) =
        Change::existing(&state, &caller, &headers, OperationKind::RotateSecret, id).await?;
    let ran = change
        .run(given_secret(&body), |job, given| async move {
            job.engine
                .rotate_secret(&job.tenant, &job.actor, &job.id, given)
                .await
        })
        .await?;
    Ok(ran.answer(|(rec, secret)| {
        let body = RotatedSecret {
            subscription: SubscriptionView::from(&rec),
            signing_secret: secret.expose().to_owned(),
        };
        let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
        // The body carries a secret: keep it out of every cache.
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }))
}

/// The secret a rotate-secret body names; none (an empty body) means
/// "generate one".
fn given_secret(body: &[u8]) -> Result<Option<Secret>, Error> {
    let req: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        parse_json(body)?
    };
    match req.signing_secret {
        Some(s) if s.is_empty() || s.chars().count() > MAX_SECRET_LEN => Err(Error::field(
            "/signing_secret",
            format!("must be 1 to {MAX_SECRET_LEN} characters"),
        )),
        other => Ok(other.map(Secret::new)),
    }
}

/// Compare the subscription with what its provider reports and repair
/// drift: a native resource deleted or changed at the provider is
/// recreated. Lookalike resources nobody recorded are reported, and
/// removed with `?remove_unknown=true`.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/reconcile", tag = "subscriptions",
    operation_id = "reconcileSubscription",
    params(("id" = String, Path, description = "Subscription id"), ReconcileParams),
    responses(
        ChangeProblems,
        (status = 200, description = "Compared; `findings` says what differed", body = SubscriptionView),
        (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown query parameter or value, or the provider rejected a repair", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn reconcile(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    id: SubscriptionId,
    params: Result<ApiQuery<ReconcileParams>, ApiError>,
) -> ApiResult<Response> {
    // The scope before the query is looked at, as for every route.
    caller.require(WRITE)?;
    let ApiQuery(params) = params?;
    let remove_unknown = params.remove_unknown.is_some_and(|b| b.0);
    let (change, _) =
        Change::existing(&state, &caller, &headers, OperationKind::Reconcile, id).await?;
    let ran = change
        .run(Ok(remove_unknown), |job, remove| async move {
            job.engine
                .reconcile(&job.tenant, &job.actor, &job.id, remove)
                .await
        })
        .await?;
    Ok(ran.answer(|rec| with_etag(StatusCode::OK, &rec, false)))
}

/// The detail at an unknown parameter of reconcile, or a bad value.
const RECONCILE_UNKNOWN: &str =
    "unknown query parameter or value; known: remove_unknown=true|false";

/// Query of `reconcile`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReconcileParams {
    /// Also delete unrecorded lookalikes.
    #[param(value_type = Option<bool>)]
    pub remove_unknown: Option<Flag>,
}

impl QueryParams for ReconcileParams {
    const UNKNOWN: &'static str = RECONCILE_UNKNOWN;
}

/// A boolean parameter, spelled `true` or `false` only.
#[derive(Debug, Clone, Copy)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "true" => Ok(Self(true)),
            "false" => Ok(Self(false)),
            _ => Err(serde::de::Error::custom(RECONCILE_UNKNOWN)),
        }
    }
}
