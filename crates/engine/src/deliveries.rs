//! Relay deliveries after the fact (issue 13 §5): the use cases behind
//! `/v1/subscriptions/{id}/deliveries`, `/v1/deliveries/{id}`, redeliver,
//! replay and the test event. Each is scoped to a tenant: a subscription
//! of another tenant is not found (`Store::get`), and so is a delivery
//! (`Store::get_delivery` filters by tenant).
//!
//! Everything that makes a delivery due (redeliver, replay, a test event)
//! needs the subscription in relay mode, because a direct subscription's
//! events never pass through Switchboard, and wakes this process's
//! delivery workers so they send at once instead of at their next poll.

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::{Error, EventName};
use switchboard_store::{
    Accepted, Delivery, DeliveryFilter, NewEvent, RelayAttempt, RelayEvent, SubscriptionRecord,
};

pub use switchboard_relay::Envelope;

use crate::Engine;

/// The type of the event [`Engine::send_test_event`] sends. It is no
/// catalog event: a subscriber recognises it by this name alone.
pub const TEST_EVENT_TYPE: &str = "switchboard.test";

/// The payload (`data`) of a test event.
pub const TEST_EVENT_MESSAGE: &str =
    "A test event from Switchboard: this subscription's relay deliveries reach you.";

/// Page size used to find a test event's delivery among its subscription's
/// newest test deliveries.
const FIND_PAGE: u64 = 50;

/// One delivery as the API shows it: where it stands, the envelope it
/// carries (exactly as sent, JSON) and every attempt so far.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// The delivery.
    pub delivery: Delivery,
    /// The body it delivers.
    pub envelope: Envelope,
    /// Every attempt of every series, oldest first.
    pub attempts: Vec<RelayAttempt>,
}

/// The envelope of a stored event: its id (the `webhook-id`), type,
/// provider, subscription, times and the provider's payload unchanged. A
/// payload that is not JSON (no ingress stores one) is carried as a
/// string rather than lost.
pub fn envelope_of(event: &RelayEvent) -> Result<Envelope, Error> {
    let event_type = EventName::parse(&event.event_type)
        .map_err(|e| Error::Internal(format!("event `{}` has a bad type: {e}", event.id)))?;
    let data = serde_json::from_str(&event.payload)
        .unwrap_or_else(|_| Value::String(event.payload.clone()));
    Ok(Envelope {
        id: event.id.clone(),
        event_type,
        provider: event.provider.clone(),
        subscription: event.subscription_id.clone(),
        occurred_at: event.occurred_at,
        received_at: event.received_at,
        data,
    })
}

/// The 404 of delivery `id`.
fn not_found(id: &str) -> Error {
    Error::NotFound {
        what: "delivery",
        id: id.to_owned(),
    }
}

/// The 422 of re-driving a subscription that delivers directly.
fn direct(what: &str) -> Error {
    Error::field(
        "/delivery",
        format!("{what} travel the relay path; the subscription delivers directly"),
    )
}

impl Engine {
    /// One page of a subscription's deliveries, newest first, and the
    /// cursor of the next page. 404 when `tenant` has no such
    /// subscription.
    pub async fn list_deliveries(
        &self,
        tenant: &str,
        subscription_id: &str,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<Delivery>, Option<String>), Error> {
        self.store.get(tenant, subscription_id).await?;
        self.store
            .list_deliveries(tenant, subscription_id, filter, cursor, limit)
            .await
    }

    /// One of `tenant`'s deliveries with its envelope and attempts; 404
    /// for an unknown id and for another tenant's delivery alike.
    pub async fn delivery(&self, tenant: &str, id: &str) -> Result<DeliveryRecord, Error> {
        let detail = self
            .store
            .get_delivery(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(DeliveryRecord {
            envelope: envelope_of(&detail.event)?,
            delivery: detail.delivery,
            attempts: detail.attempts,
        })
    }

    /// Delivers one of `tenant`'s deliveries again, as a new attempt
    /// series due now with the same `webhook-id`; the attempts of earlier
    /// series stay in its log. A finished delivery (`delivered`, `failed`,
    /// `gone`) goes back to `pending`; a `pending` one waiting out its
    /// backoff is made due now, its attempt count restarting. A delivery
    /// being attempted right now is a 409 (two attempts must not run at
    /// once), a deleted subscription's a 409, a subscription now in direct
    /// mode a 422 at `/delivery`.
    pub async fn redeliver(&self, tenant: &str, id: &str) -> Result<Delivery, Error> {
        let current = self
            .store
            .get_delivery(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let subscription = &current.delivery.subscription_id;
        match self.store.get(tenant, subscription).await {
            Ok(rec) => relay_only(&rec, "redeliveries")?,
            Err(Error::NotFound { .. }) => {
                return Err(Error::Conflict(format!(
                    "subscription `{subscription}` of delivery `{id}` was deleted; nothing can deliver it"
                )));
            }
            Err(e) => return Err(e),
        }
        let delivery = self.store.redeliver(tenant, id, Utc::now()).await?;
        self.wake_workers();
        Ok(delivery)
    }

    /// Delivers again every event of `tenant`'s relay subscription
    /// received at or after `since` that has no open delivery: one new
    /// delivery each, due now, with the event's own `webhook-id`. Returns
    /// how many were created. 404 for an unknown subscription, 422 at
    /// `/delivery` for a direct one.
    pub async fn replay(
        &self,
        tenant: &str,
        subscription_id: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let rec = self.store.get(tenant, subscription_id).await?;
        relay_only(&rec, "replays")?;
        let created = self
            .store
            .replay_since(
                tenant,
                subscription_id,
                since,
                Utc::now(),
                rec.spec.delivery.ordered,
            )
            .await?;
        if created > 0 {
            self.wake_workers();
        }
        Ok(created)
    }

    /// Stores a `switchboard.test` event for `tenant`'s relay subscription
    /// as the ingress stores a provider's (`Store::accept_event`), so it
    /// travels the whole outbox → worker → subscriber path, and returns
    /// its delivery. Its `data` is `{"test": true, "message": …}`
    /// ([`TEST_EVENT_MESSAGE`]), its provider the subscription's. 404 for
    /// an unknown subscription, 422 at `/delivery` for a direct one.
    pub async fn send_test_event(
        &self,
        tenant: &str,
        subscription_id: &str,
    ) -> Result<Delivery, Error> {
        let rec = self.store.get(tenant, subscription_id).await?;
        relay_only(&rec, "test events")?;
        let now = Utc::now();
        let payload = serde_json::json!({"test": true, "message": TEST_EVENT_MESSAGE}).to_string();
        // Unique, so a test event is never taken for a provider's retry.
        let dedup_key = format!("{TEST_EVENT_TYPE}:{}", switchboard_relay::event_id());
        let accepted = self
            .store
            .accept_event(&NewEvent {
                tenant,
                subscription_id,
                event_type: TEST_EVENT_TYPE,
                provider: &rec.spec.provider,
                occurred_at: Some(now),
                received_at: now,
                payload: &payload,
                dedup_key: &dedup_key,
                ordered: rec.spec.delivery.ordered,
            })
            .await?;
        let (Accepted::New(event_id) | Accepted::Duplicate(event_id)) = accepted;
        self.wake_workers();
        self.delivery_of_test_event(tenant, subscription_id, &event_id)
            .await
    }

    /// The delivery of test event `event_id`: among the subscription's
    /// newest test deliveries, so normally on the first page.
    async fn delivery_of_test_event(
        &self,
        tenant: &str,
        subscription_id: &str,
        event_id: &str,
    ) -> Result<Delivery, Error> {
        let filter = DeliveryFilter {
            status: None,
            event_type: Some(TEST_EVENT_TYPE.to_owned()),
        };
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = self
                .store
                .list_deliveries(
                    tenant,
                    subscription_id,
                    &filter,
                    cursor.as_deref(),
                    FIND_PAGE,
                )
                .await?;
            if let Some(d) = page.into_iter().find(|d| d.event_id == event_id) {
                return Ok(d);
            }
            match next {
                Some(n) => cursor = Some(n),
                None => {
                    return Err(Error::Internal(format!(
                        "test event `{event_id}` was stored without its delivery"
                    )));
                }
            }
        }
    }

    /// Wakes one idle delivery worker of this process, when relay mode is
    /// on (other replicas find the delivery at their next poll).
    fn wake_workers(&self) {
        if let Some(relay) = &self.relay {
            relay.wake.notify_one();
        }
    }
}

/// 422 at `/delivery` unless `rec` is a relay subscription; `what` names
/// the refused re-drive in the detail.
fn relay_only(rec: &SubscriptionRecord, what: &str) -> Result<(), Error> {
    if rec.spec.delivery.is_relay() {
        Ok(())
    } else {
        Err(direct(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, payload: &str) -> RelayEvent {
        RelayEvent {
            id: "evt_01JNF7Q2ZK0000000000000000".into(),
            tenant: "t".into(),
            subscription_id: "sub_01JNF7Q2ZK0000000000000001".into(),
            event_type: event_type.into(),
            provider: "talkover".into(),
            occurred_at: None,
            received_at: "2025-03-01T12:00:00.250Z".parse().unwrap(),
            payload: payload.into(),
            dedup_key: "k".into(),
        }
    }

    #[test]
    fn the_envelope_carries_the_stored_event() {
        let e = envelope_of(&event("call.ended", r#"{"call":{"id":7}}"#)).unwrap();
        let body: Value =
            serde_json::from_slice(&e.body(switchboard_core::DeliveryFormat::Json)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "id": "evt_01JNF7Q2ZK0000000000000000",
                "type": "call.ended",
                "provider": "talkover",
                "subscription": "sub_01JNF7Q2ZK0000000000000001",
                "occurred_at": null,
                "received_at": "2025-03-01T12:00:00.250Z",
                "data": {"call": {"id": 7}}
            })
        );
    }

    #[test]
    fn a_payload_that_is_not_json_is_kept_as_text() {
        let e = envelope_of(&event("native:x", "not json")).unwrap();
        assert_eq!(e.data, Value::String("not json".into()));
        assert_eq!(e.event_type.to_string(), "native:x");
    }

    #[test]
    fn the_test_event_type_is_an_event_name() {
        assert!(matches!(
            EventName::parse(TEST_EVENT_TYPE),
            Ok(EventName::Normalized(_))
        ));
        assert!(envelope_of(&event("Not A Type", "{}")).is_err());
    }
}
