//! Relay deliveries (issue 13 §5): a relayed event on its way to one
//! subscription is a *delivery*. `GET /v1/subscriptions/{id}/deliveries`
//! lists a subscription's, `GET /v1/deliveries/{id}` shows one with the
//! envelope it carries and its attempts, `POST /v1/deliveries/{id}/redeliver`
//! sends one again, `POST /v1/subscriptions/{id}/replay?since=…` sends a
//! subscription's recent events again, and `POST /v1/subscriptions/{id}/test`
//! sends a `switchboard.test` event down the whole relay path. All are
//! tenant-scoped (another tenant's subscription or delivery is a 404) and
//! the three re-drives are audited. `/v1/events` stays the catalog.

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::{Error, EventName};
use switchboard_engine::DeliveryRecord;
use switchboard_store::{Delivery, DeliveryFilter, DeliveryStatus, RelayAttempt};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::audit::{self, Change};
use crate::auth::{Caller, READ, WRITE};
use crate::dto::rfc3339;
use crate::extract::{ApiQuery, Cursor, CursorKind, Limit, QueryParams, SubscriptionId};
use crate::problem::{ApiError, Problem};

type ApiResult<T> = Result<T, ApiError>;

/// The router of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subscriptions/{id}/deliveries", get(list))
        .route("/v1/subscriptions/{id}/replay", post(replay))
        .route("/v1/subscriptions/{id}/test", post(send_test))
        .route("/v1/deliveries/{id}", get(fetch))
        .route("/v1/deliveries/{id}/redeliver", post(redeliver))
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatusView {
    /// Waiting for its next attempt (`next_attempt_at`).
    Pending,
    /// An attempt is under way.
    Delivering,
    /// The subscriber answered 2xx.
    Delivered,
    /// Dead-lettered: the retries are used up, or it was refused for good.
    Failed,
    /// The subscriber answered 410 Gone.
    Gone,
}

impl From<DeliveryStatus> for DeliveryStatusView {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Delivering => Self::Delivering,
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Failed => Self::Failed,
            DeliveryStatus::Gone => Self::Gone,
        }
    }
}

/// One delivery of an event to a subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// `dlv_<ulid>`.
    pub id: String,
    /// The event delivered (`evt_<ulid>`): the envelope's `id` and the
    /// `webhook-id` header, the same on every attempt, redelivery and
    /// replay, so a subscriber deduplicates by it.
    pub event_id: String,
    /// The subscription delivered to.
    pub subscription: String,
    /// The event's type: a catalog name, `native:<name>`, or
    /// `switchboard.test`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatusView,
    /// Delivered one at a time, in order, with the subscription's others.
    pub ordered: bool,
    /// Attempts made in the current series (a redelivery starts a new
    /// series at 0).
    pub attempts: u32,
    /// RFC 3339: when the next attempt is due; null once finished or
    /// while an attempt is under way.
    pub next_attempt_at: Option<String>,
    /// Status code of the subscriber's last answer.
    pub last_status_code: Option<u16>,
    /// What the last failed attempt ended with.
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            subscription: d.subscription_id.clone(),
            event_type: d.event_type.clone(),
            status: d.status.into(),
            ordered: d.ordered,
            attempts: d.attempts,
            next_attempt_at: (d.status == DeliveryStatus::Pending)
                .then(|| rfc3339(d.next_attempt_at)),
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// The deliveries, newest first.
    pub data: Vec<DeliveryView>,
    /// Pass as `cursor` for older deliveries; null on the last page.
    pub next_cursor: Option<String>,
}

/// The event envelope, exactly as the JSON body sent to the subscriber.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvelopeView {
    /// `evt_<ulid>`; also the `webhook-id` header.
    pub id: String,
    /// The normalized event name, `native:<name>`, or `switchboard.test`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The provider instance key.
    pub provider: String,
    /// The subscription (`sub_…`).
    pub subscription: String,
    /// RFC 3339: when it happened, as the provider says; null when it does
    /// not.
    pub occurred_at: Option<String>,
    /// RFC 3339: when Switchboard's ingress accepted it.
    pub received_at: String,
    /// The provider's payload, unchanged.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// One attempt to deliver.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// Its number in its series, from 1.
    pub attempt: u32,
    /// RFC 3339: when the request was started.
    pub started_at: String,
    /// Until the response head or the failure, in milliseconds.
    pub latency_ms: u64,
    /// The subscriber's status code, when it answered.
    pub status_code: Option<u16>,
    /// How it ended: `response`, `timeout`, `failed` or `refused`.
    pub outcome: String,
    /// The first KiB of the subscriber's answer.
    pub response_excerpt: Option<String>,
    /// The transport error or refusal reason.
    pub error: Option<String>,
}

impl From<&RelayAttempt> for AttemptView {
    fn from(a: &RelayAttempt) -> Self {
        Self {
            attempt: a.attempt,
            started_at: rfc3339(a.started_at),
            latency_ms: a.latency_ms,
            status_code: a.status_code,
            outcome: a.outcome.clone(),
            response_excerpt: a.response_excerpt.clone(),
            error: a.error.clone(),
        }
    }
}

/// A delivery with the envelope it carries and its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetailView {
    /// Where it stands.
    pub delivery: DeliveryView,
    /// The body it delivers (JSON; a subscription asking for XML gets the
    /// same envelope in the XML mapping).
    pub envelope: EnvelopeView,
    /// Every attempt of every series, oldest first.
    pub attempts: Vec<AttemptView>,
}

impl From<&DeliveryRecord> for DeliveryDetailView {
    fn from(r: &DeliveryRecord) -> Self {
        let e = &r.envelope;
        Self {
            delivery: DeliveryView::from(&r.delivery),
            envelope: EnvelopeView {
                id: e.id.clone(),
                event_type: e.event_type.to_string(),
                provider: e.provider.clone(),
                subscription: e.subscription.clone(),
                occurred_at: e.occurred_at.map(rfc3339),
                received_at: rfc3339(e.received_at),
                data: e.data.clone(),
            },
            attempts: r.attempts.iter().map(AttemptView::from).collect(),
        }
    }
}

/// What a replay did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayView {
    /// RFC 3339: the `since` replayed from.
    pub since: String,
    /// New deliveries created: one per event received at or after `since`
    /// that had no delivery waiting or under way.
    pub replayed: u64,
}

/// The `{id}` of a `/v1/deliveries/{id}` route, checked when the handler
/// asks (after the caller's scope): an id that is not `dlv_<ulid>` is 404
/// without a database query, as [`SubscriptionId`] does for subscriptions.
#[derive(Debug)]
pub struct DeliveryId(Result<String, Error>);

impl DeliveryId {
    /// The id, or 404 for one no delivery can have.
    pub fn get(self) -> Result<String, Error> {
        self.0
    }
}

/// Whether `s` has the shape of a delivery id.
fn is_delivery_id(s: &str) -> bool {
    s.strip_prefix("dlv_")
        .is_some_and(|rest| rest.len() == 26 && ulid::Ulid::from_string(rest).is_ok())
}

impl<S: Send + Sync> FromRequestParts<S> for DeliveryId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A segment that is not UTF-8 once decoded names no delivery
        // either (axum's `Path` would refuse it with a plain-text 400).
        let id = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => id,
            Err(_) => parts
                .uri
                .path()
                .split('/')
                .nth(3)
                .unwrap_or_default()
                .to_owned(),
        };
        Ok(Self(if is_delivery_id(&id) {
            Ok(id)
        } else {
            Err(Error::NotFound {
                what: "delivery",
                id,
            })
        }))
    }
}

/// Query of the deliveries list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only deliveries in this status.
    #[param(value_type = Option<DeliveryStatusView>, inline)]
    pub status: Option<StatusParam>,
    /// Only deliveries of this event type (`call.ended`, `native:<name>`,
    /// `switchboard.test`).
    #[serde(rename = "type")]
    #[param(value_type = Option<String>)]
    pub event_type: Option<TypeParam>,
    /// 1..=200, default 50.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    pub limit: Option<Limit>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<Cursor<DeliveryCursors>>,
}

impl QueryParams for ListParams {
    const UNKNOWN: &'static str = "unknown query parameter; known: status, type, limit, cursor";
}

/// A `status` filter.
#[derive(Debug, Clone, Copy)]
pub struct StatusParam(pub DeliveryStatus);

impl<'de> Deserialize<'de> for StatusParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DeliveryStatus::parse(&text).map(Self).ok_or_else(|| {
            serde::de::Error::custom("must be one of pending, delivering, delivered, failed, gone")
        })
    }
}

/// A `type` filter: an event name.
#[derive(Debug, Clone)]
pub struct TypeParam(pub String);

impl<'de> Deserialize<'de> for TypeParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        EventName::parse(&text)
            .map(|_| Self(text))
            .map_err(serde::de::Error::custom)
    }
}

/// Cursors of the deliveries list: delivery ids.
#[derive(Debug)]
pub struct DeliveryCursors;

impl CursorKind for DeliveryCursors {
    fn accepts(cursor: &str) -> bool {
        is_delivery_id(cursor)
    }
}

/// A subscription's deliveries, newest first.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/deliveries", tag = "deliveries",
    operation_id = "listSubscriptionDeliveries",
    params(("id" = String, Path, description = "Subscription id"), ListParams),
    responses(
        (status = 200, description = "A page", body = DeliveryPage),
        (status = 404, description = "Not found for this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    id: SubscriptionId,
    params: Result<ApiQuery<ListParams>, ApiError>,
) -> ApiResult<axum::Json<DeliveryPage>> {
    caller.require(READ)?;
    let id = id.get()?;
    let ApiQuery(params) = params?;
    let tenant = caller.tenant_for(&state, &id).await?;
    let filter = DeliveryFilter {
        status: params.status.map(|s| s.0),
        event_type: params.event_type.map(|t| t.0),
    };
    let (rows, next_cursor) = state
        .engine
        .list_deliveries(
            &tenant,
            &id,
            &filter,
            Cursor::text(&params.cursor),
            Limit::or_default(params.limit),
        )
        .await?;
    Ok(axum::Json(DeliveryPage {
        data: rows.iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}

/// One delivery: where it stands, the envelope it carries and every
/// attempt (status code, latency, outcome, the first KiB of the answer).
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries",
    operation_id = "getDelivery",
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetailView),
        (status = 404, description = "Not found for this tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    id: DeliveryId,
) -> ApiResult<axum::Json<DeliveryDetailView>> {
    caller.require(READ)?;
    let id = id.get()?;
    let record = state.engine.delivery(&caller.tenant, &id).await?;
    Ok(axum::Json(DeliveryDetailView::from(&record)))
}

/// Deliver again, as a new series of attempts due now, with the same
/// `webhook-id`: a finished delivery (`delivered`, `failed`, `gone`) goes
/// back to `pending`; a `pending` one skips the rest of its backoff. The
/// attempts of earlier series stay in its log. A delivery being attempted
/// right now is a 409: retry once the attempt has ended.
#[utoipa::path(post, path = "/v1/deliveries/{id}/redeliver", tag = "deliveries",
    operation_id = "redeliverDelivery",
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Pending again, due now", body = DeliveryView),
        (status = 404, description = "Not found for this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An attempt is under way, or the subscription was deleted", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The subscription delivers directly (`/delivery`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    id: DeliveryId,
) -> ApiResult<axum::Json<DeliveryView>> {
    caller.require(WRITE)?;
    let id = id.get()?;
    let result = state
        .engine
        .redeliver(&caller.tenant, &id)
        .await
        .map(|d| DeliveryView::from(&d));
    let subscription = result.as_ref().ok().map(|d| d.subscription.clone());
    let after = result
        .as_ref()
        .ok()
        .map(|d| serde_json::json!({"delivery": d.id, "event_id": d.event_id, "status": d.status}));
    let change = Change {
        operation: "redeliver",
        subscription_id: subscription.as_deref(),
        tenant: &caller.tenant,
        before: None,
        after,
        outcome: audit::outcome(&result, 200),
    };
    audit::record(&state, &caller, &headers, change).await;
    Ok(axum::Json(result?))
}

/// Query of `replay`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReplayParams {
    /// RFC 3339 date-time: replay the events received at or after it
    /// (encode a `+` offset as `%2B`; `Z` needs no encoding).
    #[param(value_type = String, format = DateTime, required = true)]
    pub since: Option<Since>,
}

impl QueryParams for ReplayParams {
    const UNKNOWN: &'static str = "unknown query parameter; known: since";
}

/// The detail at a missing or unreadable `since`.
const SINCE: &str = "must be an RFC 3339 date-time, such as 2025-03-01T12:00:00Z";

/// A `since` parameter.
#[derive(Debug, Clone, Copy)]
pub struct Since(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Since {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        // An unencoded `+` in a query string arrives as a space.
        let parsed = DateTime::parse_from_rfc3339(&text)
            .or_else(|_| DateTime::parse_from_rfc3339(&text.replace(' ', "+")));
        parsed
            .map(|t| Self(t.with_timezone(&Utc)))
            .map_err(|_| serde::de::Error::custom(SINCE))
    }
}

/// Deliver again every event of a relay subscription received at or after
/// `since` that has no delivery waiting or under way: one new delivery
/// each, due now, with the event's own `webhook-id` (so a subscriber that
/// processed an event recognises it). Events already pruned by retention
/// are not replayed.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/replay", tag = "deliveries",
    operation_id = "replaySubscriptionEvents",
    params(("id" = String, Path, description = "Subscription id"), ReplayParams),
    responses(
        (status = 200, description = "How many deliveries were created", body = ReplayView),
        (status = 404, description = "Not found for this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`since` is missing or not RFC 3339, or the subscription delivers directly (`/delivery`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    id: SubscriptionId,
    params: Result<ApiQuery<ReplayParams>, ApiError>,
) -> ApiResult<axum::Json<ReplayView>> {
    caller.require(WRITE)?;
    let id = id.get()?;
    let ApiQuery(params) = params?;
    let since = params
        .since
        .ok_or_else(|| Error::field("/since", format!("is required; {SINCE}")))?
        .0;
    let tenant = caller.tenant_for(&state, &id).await?;
    let result = state.engine.replay(&tenant, &id, since).await;
    let after = result
        .as_ref()
        .ok()
        .map(|n| serde_json::json!({"since": rfc3339(since), "replayed": n}));
    let change = Change {
        operation: "replay",
        subscription_id: Some(&id),
        tenant: &tenant,
        before: None,
        after,
        outcome: audit::outcome(&result, 200),
    };
    audit::record(&state, &caller, &headers, change).await;
    Ok(axum::Json(ReplayView {
        since: rfc3339(since),
        replayed: result?,
    }))
}

/// Send a `switchboard.test` event to a relay subscription. It is stored
/// as the ingress stores a provider's event and travels the same path
/// (outbox, signing, retries) to the subscriber; its `data` is
/// `{"test": true, "message": "…"}` and its `provider` the subscription's.
/// Follow it at `Location`.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/test", tag = "deliveries",
    operation_id = "sendSubscriptionTestEvent",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 202, description = "Accepted for delivery", body = DeliveryView,
            headers(("Location" = String, description = "The delivery's URL"))),
        (status = 404, description = "Not found for this tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The subscription delivers directly (`/delivery`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn send_test(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    id: SubscriptionId,
) -> ApiResult<Response> {
    caller.require(WRITE)?;
    let id = id.get()?;
    let tenant = caller.tenant_for(&state, &id).await?;
    let result = state
        .engine
        .send_test_event(&tenant, &id)
        .await
        .map(|d| DeliveryView::from(&d));
    let after = result.as_ref().ok().map(
        |d| serde_json::json!({"delivery": d.id, "event_id": d.event_id, "type": d.event_type}),
    );
    let change = Change {
        operation: "test_event",
        subscription_id: Some(&id),
        tenant: &tenant,
        before: None,
        after,
        outcome: audit::outcome(&result, 202),
    };
    audit::record(&state, &caller, &headers, change).await;
    let view = result?;
    let location = HeaderValue::from_str(&format!("/v1/deliveries/{}", view.id)).ok();
    let mut resp = (StatusCode::ACCEPTED, axum::Json(view)).into_response();
    if let Some(v) = location {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_prefixed_ulids() {
        assert!(is_delivery_id("dlv_01JNF7Q2ZK0000000000000000"));
        assert!(!is_delivery_id("dlv_nope"));
        assert!(!is_delivery_id("evt_01JNF7Q2ZK0000000000000000"));
        assert!(!is_delivery_id("dlv_01JNF7Q2ZK0000000000000000x"));
    }

    #[test]
    fn since_reads_rfc3339_and_an_unencoded_plus() {
        let read = |s: &str| serde_json::from_value::<Since>(Value::String(s.into())).map(|s| s.0);
        let want: DateTime<Utc> = "2025-03-01T11:00:00Z".parse().unwrap();
        assert_eq!(read("2025-03-01T11:00:00Z").unwrap(), want);
        assert_eq!(read("2025-03-01T12:00:00+01:00").unwrap(), want);
        assert_eq!(read("2025-03-01T12:00:00 01:00").unwrap(), want);
        for bad in ["yesterday", "2025-03-01", "1740826800", ""] {
            let e = read(bad).unwrap_err().to_string();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
    }
}
