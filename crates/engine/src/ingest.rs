//! The relay ingress's use case (issue 13, items 2 and 6): a provider's
//! delivery to `server.public_url` + `/ingress/{token}`, from the route
//! token to a durably stored event and its pending delivery.
//!
//! Two steps, so the HTTP edge can answer an unknown token before it reads
//! a body and can label what it counts with the route's provider:
//!
//! 1. [`Engine::ingress_route`] finds the token's route through a
//!    [`RouteCache`] (the store keeps only the token's hash) and the
//!    [`Ingress`] of its provider instance. Relay mode off, a token that
//!    cannot be one Switchboard issued, an unknown token, a provider
//!    instance no longer configured or a kind that cannot be relayed are
//!    all [`IngestError::NotFound`]: an unverified caller learns nothing
//!    about which it was.
//! 2. [`Engine::ingest`] bounds the body, verifies the delivery with the
//!    kind's check and the route's credential, names the event (the
//!    catalog read in reverse), picks its dedup key and stores it with its
//!    delivery in one transaction. Only then is the provider answered 2xx.
//!    When this process's delivery worker has a free attempt slot, the
//!    delivery is stored already claimed by it and handed over in memory
//!    ([`Store::accept_claimed_event`]); otherwise it is stored pending
//!    ([`Store::accept_event`]) and an idle worker is woken to claim it.
//!
//! Nothing is relayed unless the kind's `verify` accepted it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use switchboard_core::{Error, EventCatalog, EventName, Ingress, IngressRefusal, IngressRequest};
use switchboard_store::{Accepted, AcceptedClaimed, NewEvent, RelayRoute, Store};

use crate::engine::Engine;

/// Longest route token looked up. Issued tokens are 43 characters
/// (32 bytes, base64url); anything much longer is refused before the store
/// is asked.
const MAX_TOKEN_LEN: usize = 128;

/// Longest event type stored: the `event_type` columns are
/// `VARCHAR(255)`, which Postgres enforces. A longer native name (a
/// provider's free-text field) is cut, so the delivery is still stored
/// instead of failing on every retry.
const MAX_EVENT_TYPE_LEN: usize = 255;

/// Longest provider id used as a dedup key as it is; a longer one is
/// replaced by its SHA-256, so the unique index entry stays small (a
/// Postgres B-tree refuses entries over about 2.7 kB).
const MAX_DEDUP_ID_LEN: usize = 128;

/// The event type of a delivery that names no event and arrived at a
/// native registered for several (or none).
const UNKNOWN_NATIVE: &str = "unknown";

/// A delivery stored, or recognised as a provider's retry of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The stored event's id (`evt_…`): the new one, or for a duplicate
    /// the first one's.
    pub event_id: String,
    /// The subscription already had an event with this dedup key; nothing
    /// was stored. The provider is still answered 2xx, so it stops
    /// retrying.
    pub duplicate: bool,
}

/// Why a delivery was not stored. The ingress answers each with a bare
/// status and no detail.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Relay mode is off, or no usable route has the token (404).
    #[error("no relay route has this token")]
    NotFound,
    /// The kind's verification refused the delivery (401).
    #[error("delivery refused: {0}")]
    Refused(IngressRefusal),
    /// The body is larger than `max_payload_bytes` (413).
    #[error("delivery body larger than the relay payload limit")]
    TooLarge,
    /// The store failed; the provider should retry (5xx).
    #[error(transparent)]
    Store(Error),
}

/// The route of a token, with what verifying its deliveries takes.
#[derive(Debug, Clone)]
pub struct IngressRoute {
    route: Arc<RelayRoute>,
    ingress: Ingress,
    /// The provider's kind, whose catalog names the native events.
    kind: &'static str,
}

impl IngressRoute {
    /// The provider instance key the route's native lives at (a bounded
    /// metrics label).
    pub fn provider(&self) -> &str {
        &self.route.provider
    }

    /// The subscription the route delivers to.
    pub fn subscription_id(&self) -> &str {
        &self.route.subscription_id
    }
}

/// Routes by token, kept in process for a short while so a busy route
/// costs no store read per delivery.
///
/// Entries are keyed by the token's SHA-256, so memory per entry is the
/// same whatever length a caller sends. Found routes are kept for `ttl`
/// (default 5 s), unknown tokens for `miss_ttl` (default 1 s), each map
/// bounded on its own so a flood of random tokens cannot push the live
/// routes out. A deleted route may thus still be served for up to `ttl`
/// (its events wait for a worker that finds the subscription gone); a route
/// written just after its token was asked for is found after `miss_ttl`.
/// Tokens are unguessable, so that only happens to a provider retrying a
/// delivery to a route that was gone.
#[derive(Debug)]
pub struct RouteCache {
    found: Bounded<Arc<RelayRoute>>,
    missing: Bounded<()>,
}

impl Default for RouteCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(5), Duration::from_secs(1), 10_000)
    }
}

impl RouteCache {
    /// A cache keeping found routes for `ttl` and unknown tokens for
    /// `miss_ttl`, at most `capacity` found routes and a tenth as many
    /// unknown tokens (at least one of each).
    pub fn new(ttl: Duration, miss_ttl: Duration, capacity: usize) -> Self {
        Self {
            found: Bounded::new(ttl, capacity.max(1)),
            missing: Bounded::new(miss_ttl, (capacity / 10).max(1)),
        }
    }

    /// The route of `token`: cached, else read from `store` and cached.
    async fn route(&self, store: &Store, token: &str) -> Result<Option<Arc<RelayRoute>>, Error> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(route) = self.found.get(&key, now) {
            return Ok(Some(route));
        }
        if self.missing.get(&key, now).is_some() {
            return Ok(None);
        }
        let route = store.relay_route_by_token(token).await?.map(Arc::new);
        let now = Instant::now();
        match &route {
            Some(r) => self.found.put(key, r.clone(), now),
            None => self.missing.put(key, (), now),
        }
        Ok(route)
    }
}

/// A map whose entries expire after `ttl` and which never holds more than
/// `capacity` of them.
#[derive(Debug)]
struct Bounded<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], (Instant, V)>>,
}

impl<V: Clone> Bounded<V> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Instant, V)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key` if it was put less than `ttl` before `now`.
    fn get(&self, key: &[u8; 32], now: Instant) -> Option<V> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((at, v)) if now.saturating_duration_since(*at) < self.ttl => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Puts `value` at `now`. When full, expired entries go first, then an
    /// arbitrary one: O(capacity) per insert into a full map, which only a
    /// map whose every entry is live (or a flood of misses into the small
    /// one) sees.
    fn put(&self, key: [u8; 32], value: V, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| now.saturating_duration_since(*at) < self.ttl);
            while entries.len() >= self.capacity {
                let Some(victim) = entries.keys().next().copied() else {
                    break;
                };
                entries.remove(&victim);
            }
        }
        entries.insert(key, (now, value));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Engine {
    /// The route of `token` and its provider's ingress check, looked up
    /// through `routes`. [`IngestError::NotFound`] when relay mode is off,
    /// the token is not shaped like an issued one, no route has it, or its
    /// provider instance is gone or cannot be relayed.
    pub async fn ingress_route(
        &self,
        routes: &RouteCache,
        token: &str,
    ) -> Result<IngressRoute, IngestError> {
        if self.relay().is_none() || !plausible_token(token) {
            return Err(IngestError::NotFound);
        }
        let route = routes
            .route(self.store(), token)
            .await
            .map_err(IngestError::Store)?
            .ok_or(IngestError::NotFound)?;
        let Ok(provider) = self.provider(&route.provider) else {
            tracing::warn!(provider = %route.provider, subscription = %route.subscription_id,
                "relay delivery for a provider instance that is no longer configured");
            return Err(IngestError::NotFound);
        };
        let ingress = provider.ingress.ok_or(IngestError::NotFound)?;
        Ok(IngressRoute {
            kind: provider.adapter.kind(),
            route,
            ingress,
        })
    }

    /// Verifies `request`, a delivery to `route`, and stores it as an event
    /// with its delivery: claimed by this process's delivery worker and
    /// handed to it when it has a free attempt slot, else pending, with an
    /// idle worker woken. Staleness is judged at `request.received_at`. A
    /// delivery whose dedup key the subscription already has is a
    /// duplicate: nothing is stored and the first event's id is returned.
    pub async fn ingest(
        &self,
        route: &IngressRoute,
        request: &IngressRequest<'_>,
    ) -> Result<Ingested, IngestError> {
        let relay = self.relay().ok_or(IngestError::NotFound)?;
        if request.body.len() > relay.settings.max_payload_bytes {
            return Err(IngestError::TooLarge);
        }
        let r = &route.route;
        let verified = (route.ingress.verify)(request, r.credential.expose(), request.received_at)
            // The body is stored and relayed as text; JSON is UTF-8.
            .and_then(|inbound| match std::str::from_utf8(request.body) {
                Ok(body) => Ok((inbound, body)),
                Err(_) => Err(IngressRefusal::Malformed("body is not UTF-8")),
            });
        let (inbound, payload) = verified.map_err(|refusal| {
            tracing::debug!(provider = %r.provider, subscription = %r.subscription_id,
                reason = refusal.reason(), detail = %refusal, "relay delivery refused");
            IngestError::Refused(refusal)
        })?;
        let native = inbound.native_event.as_deref();
        let event_type = event_type(self.catalog(), route.kind, native, &r.events);
        let dedup_key = dedup_key(inbound.dedup_id.as_deref(), request.body);
        let event = NewEvent {
            tenant: &r.tenant,
            subscription_id: &r.subscription_id,
            event_type: &event_type,
            provider: &r.provider,
            occurred_at: inbound.occurred_at,
            received_at: request.received_at,
            payload,
            dedup_key: &dedup_key,
            ordered: r.ordered,
        };
        // Handed straight to this process's worker when it has a free slot
        // (an ordered event waits for its subscription's older ones).
        let reserved = if r.ordered {
            None
        } else {
            relay.reserve_handoff()
        };
        if let Some(reserved) = reserved {
            let stored = self
                .store()
                .accept_claimed_event(&event, reserved.worker_id(), reserved.lease_until())
                .await
                .map_err(IngestError::Store)?;
            return Ok(match stored {
                AcceptedClaimed::New(claimed) => {
                    let event_id = claimed.event.id.clone();
                    reserved.hand(*claimed);
                    Ingested {
                        event_id,
                        duplicate: false,
                    }
                }
                AcceptedClaimed::Duplicate(event_id) => Ingested {
                    event_id,
                    duplicate: true,
                },
            });
        }
        match self.store().accept_event(&event).await {
            Ok(Accepted::New(event_id)) => {
                relay.wake.notify_one();
                Ok(Ingested {
                    event_id,
                    duplicate: false,
                })
            }
            Ok(Accepted::Duplicate(event_id)) => Ok(Ingested {
                event_id,
                duplicate: true,
            }),
            Err(e) => Err(IngestError::Store(e)),
        }
    }
}

/// Whether `token` could be one Switchboard issued: 1 to
/// [`MAX_TOKEN_LEN`] characters of the base64url alphabet.
fn plausible_token(token: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The stored event type: the native event the delivery names, else the
/// one its native was registered for when that is a single one, through
/// the catalog in reverse (`native:<name>` when it has no normalized
/// name); `native:unknown` when neither says. Cut to
/// [`MAX_EVENT_TYPE_LEN`] bytes.
fn event_type(
    catalog: &EventCatalog,
    kind: &str,
    named: Option<&str>,
    registered: &[String],
) -> String {
    let native = named.or(match registered {
        [only] => Some(only.as_str()),
        _ => None,
    });
    let mut name = match native {
        Some(native) => catalog.normalized_name(kind, native),
        None => EventName::Native(UNKNOWN_NATIVE.to_owned()).to_string(),
    };
    if name.len() > MAX_EVENT_TYPE_LEN {
        let mut end = MAX_EVENT_TYPE_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// The dedup key: the provider's delivery or event id when it sends one
/// (hashed when longer than [`MAX_DEDUP_ID_LEN`]), else the body's
/// SHA-256, so a provider's retry with the same bytes is recognised.
fn dedup_key(provider_id: Option<&str>, body: &[u8]) -> String {
    match provider_id {
        Some(id) if id.len() <= MAX_DEDUP_ID_LEN => id.to_owned(),
        Some(id) => hex::encode(Sha256::digest(id.as_bytes())),
        None => hex::encode(Sha256::digest(body)),
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use chrono::Utc;
    use switchboard_core::ingress::check_bearer;
    use switchboard_core::{
        Capabilities, InboundEvent, IngressCredential, NativePlan, NativeRequest, NativeResource,
        ProviderAdapter, Secret, SubscriptionSpec,
    };
    use switchboard_store::{DeliveryFilter, DeliveryStatus, NewRelayRoute};

    use super::*;
    use crate::{ProviderInstance, RelaySettings};

    const CATALOG: &str = r#"
[native]
fake = ["ring", "hangup", "sms"]

[events."call.ended"]
description = "A call ended."
fake = "hangup"
"#;

    fn catalog() -> EventCatalog {
        EventCatalog::from_toml(CATALOG).unwrap()
    }

    #[test]
    fn the_event_type_comes_from_the_delivery_then_the_native() {
        let c = catalog();
        let one = ["hangup".to_owned()];
        let two = ["hangup".to_owned(), "ring".to_owned()];
        assert_eq!(event_type(&c, "fake", Some("hangup"), &two), "call.ended");
        assert_eq!(event_type(&c, "fake", Some("ring"), &one), "native:ring");
        assert_eq!(event_type(&c, "fake", None, &one), "call.ended");
        assert_eq!(event_type(&c, "fake", None, &two), "native:unknown");
        assert_eq!(event_type(&c, "fake", None, &[]), "native:unknown");
        // Another kind's mapping is not this one's.
        assert_eq!(
            event_type(&c, "other", Some("hangup"), &[]),
            "native:hangup"
        );
    }

    #[test]
    fn event_types_fit_their_column() {
        let long = "é".repeat(200);
        let t = event_type(&catalog(), "fake", Some(&long), &[]);
        assert!(t.len() <= MAX_EVENT_TYPE_LEN, "{}", t.len());
        assert!(t.len() >= MAX_EVENT_TYPE_LEN - 1);
        assert!(t.starts_with("native:éé"));
    }

    #[test]
    fn dedup_keys_prefer_the_providers_id() {
        assert_eq!(dedup_key(Some("req-42"), b"{}"), "req-42");
        assert_eq!(
            dedup_key(None, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = "x".repeat(MAX_DEDUP_ID_LEN + 1);
        let hashed = dedup_key(Some(&long), b"{}");
        assert_eq!(hashed.len(), 64);
        assert_ne!(hashed, dedup_key(None, b"{}"));
        let fits = "x".repeat(MAX_DEDUP_ID_LEN);
        assert_eq!(dedup_key(Some(&fits), b"{}"), fits);
    }

    #[test]
    fn only_token_shaped_paths_are_looked_up() {
        assert!(plausible_token("AbC-_09"));
        assert!(plausible_token(&"a".repeat(MAX_TOKEN_LEN)));
        for bad in [
            "",
            "a.b",
            "a/b",
            "a%20",
            "tok en",
            "é",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(!plausible_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn cached_entries_expire() {
        let map = Bounded::new(Duration::from_secs(5), 10);
        let t0 = Instant::now();
        map.put([1; 32], "a", t0);
        assert_eq!(map.get(&[1; 32], t0 + Duration::from_secs(4)), Some("a"));
        assert_eq!(map.get(&[1; 32], t0 + Duration::from_secs(5)), None);
        assert_eq!(map.len(), 0, "an expired entry is dropped when seen");
        assert_eq!(map.get(&[2; 32], t0), None);
    }

    #[test]
    fn the_cache_never_outgrows_its_capacity() {
        let map = Bounded::new(Duration::from_secs(5), 4);
        let t0 = Instant::now();
        for i in 0..4u8 {
            map.put([i; 32], i, t0);
        }
        // Full of live entries: one makes room.
        map.put([9; 32], 9, t0);
        assert_eq!(map.len(), 4);
        assert_eq!(map.get(&[9; 32], t0), Some(9));
        // Expired entries go before live ones.
        let later = t0 + Duration::from_secs(6);
        map.put([10; 32], 10, later);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&[10; 32], later), Some(10));
        // Replacing a key does not evict.
        map.put([10; 32], 11, later);
        assert_eq!(map.get(&[10; 32], later), Some(11));
    }

    #[test]
    fn misses_cannot_push_routes_out() {
        let cache = RouteCache::new(Duration::from_secs(5), Duration::from_secs(5), 20);
        let t0 = Instant::now();
        let route = Arc::new(RelayRoute {
            tenant: "t".into(),
            subscription_id: "sub_1".into(),
            native_key: "n".into(),
            provider: "fk".into(),
            credential: Secret::new("c"),
            events: Vec::new(),
            ordered: false,
            created_at: Utc::now(),
        });
        cache.found.put([0; 32], route.clone(), t0);
        for i in 1..=200u8 {
            cache.missing.put([i; 32], (), t0);
        }
        assert_eq!(cache.missing.len(), 2, "a tenth of the capacity");
        assert_eq!(cache.found.get(&[0; 32], t0), Some(route));
        let tiny = RouteCache::new(Duration::ZERO, Duration::ZERO, 0);
        assert_eq!((tiny.found.capacity, tiny.missing.capacity), (1, 1));
    }

    /// A kind whose deliveries carry `Authorization: Bearer <credential>`
    /// and a JSON body naming `event` and `id`.
    fn verify(
        request: &IngressRequest<'_>,
        secret: &str,
        _now: chrono::DateTime<Utc>,
    ) -> Result<InboundEvent, IngressRefusal> {
        check_bearer(request, secret)?;
        let payload = request.json_body()?;
        let field = |n: &str| payload.get(n).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(InboundEvent {
            native_event: field("event"),
            dedup_id: field("id"),
            occurred_at: None,
            payload,
        })
    }

    const INGRESS: Ingress = Ingress {
        credential: IngressCredential::BearerToken,
        verify,
        max_age: None,
        names_event: true,
    };

    /// Only its kind is used by the ingress.
    struct Fake;

    #[async_trait]
    impl ProviderAdapter for Fake {
        fn kind(&self) -> &'static str {
            "fake"
        }
        fn capabilities(&self) -> &Capabilities {
            unreachable!("the ingress does not read capabilities")
        }
        fn plan(
            &self,
            _: &str,
            _: &SubscriptionSpec,
            _: &[String],
        ) -> Result<Vec<NativePlan>, Error> {
            Ok(Vec::new())
        }
        fn preview(&self, _: Option<&str>, _: &[NativePlan]) -> Vec<NativeRequest> {
            Vec::new()
        }
        fn base_url(&self) -> &str {
            "memory://fake"
        }
        async fn create(&self, _: Option<&str>, _: &NativePlan) -> Result<NativeResource, Error> {
            Err(Error::Internal("not called".into()))
        }
        async fn update(
            &self,
            _: Option<&str>,
            _: &str,
            _: &NativePlan,
            _: &NativePlan,
        ) -> Result<NativeResource, Error> {
            Err(Error::Internal("not called".into()))
        }
        async fn delete(&self, _: Option<&str>, _: &str) -> Result<(), Error> {
            Err(Error::Internal("not called".into()))
        }
        async fn get(&self, _: Option<&str>, _: &str) -> Result<NativeResource, Error> {
            Err(Error::Internal("not called".into()))
        }
        async fn list(&self, _: Option<&str>) -> Result<Vec<NativeResource>, Error> {
            Ok(Vec::new())
        }
    }

    const TOKEN: &str = "route-token-1";
    const CREDENTIAL: &str = "cred-1";
    const LIMIT: usize = 256;

    /// An engine with provider `fk` (ingress [`INGRESS`]) and `plain` (no
    /// ingress), relay on unless `relay` is false.
    async fn engine(relay: bool) -> Engine {
        let store = Store::connect(&switchboard_store::testing::sqlite())
            .await
            .unwrap();
        let instance = |key: &str, ingress| ProviderInstance {
            key: key.into(),
            adapter: Arc::new(Fake),
            ingress,
        };
        let engine = Engine::new(
            store,
            Arc::new(catalog()),
            vec![instance("fk", Some(INGRESS)), instance("plain", None)],
        );
        if !relay {
            return engine;
        }
        engine.with_relay(RelaySettings {
            public_url: "https://sb.example.com".into(),
            max_payload_bytes: LIMIT,
            max_retries: 9,
        })
    }

    async fn put_route(engine: &Engine, token: &str, provider: &str, events: &[&str]) {
        let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
        let credential = Secret::new(CREDENTIAL);
        let route = NewRelayRoute {
            token,
            tenant: "t",
            subscription_id: "sub_1",
            native_key: token,
            provider,
            credential: &credential,
            events: &events,
            ordered: true,
        };
        engine.store().put_relay_routes(&[route]).await.unwrap();
    }

    fn headers(credential: &str) -> Vec<(String, String)> {
        vec![("authorization".into(), format!("Bearer {credential}"))]
    }

    fn request<'a>(headers: &'a [(String, String)], body: &'a str) -> IngressRequest<'a> {
        IngressRequest {
            url: "https://sb.example.com/ingress/route-token-1",
            headers,
            body: body.as_bytes(),
            received_at: Utc::now(),
        }
    }

    /// Whether a wake-up is waiting for the next worker.
    async fn woken(engine: &Engine) -> bool {
        let wake = &engine.relay().unwrap().wake;
        tokio::select! {
            biased;
            () = wake.notified() => true,
            () = std::future::ready(()) => false,
        }
    }

    async fn ingest(engine: &Engine, creds: &str, body: &str) -> Result<Ingested, IngestError> {
        let route = engine.ingress_route(&RouteCache::default(), TOKEN).await?;
        engine.ingest(&route, &request(&headers(creds), body)).await
    }

    #[tokio::test]
    async fn a_verified_delivery_is_stored_once_and_wakes_a_worker() {
        let engine = engine(true).await;
        put_route(&engine, TOKEN, "fk", &["hangup", "ring"]).await;
        let body = r#"{"event":"hangup","id":"d-1"}"#;
        let first = ingest(&engine, CREDENTIAL, body).await.unwrap();
        assert!(!first.duplicate);
        assert!(first.event_id.starts_with("evt_"));
        assert!(woken(&engine).await);
        let again = ingest(&engine, CREDENTIAL, body).await.unwrap();
        assert_eq!(
            again,
            Ingested {
                event_id: first.event_id.clone(),
                duplicate: true
            }
        );
        assert!(!woken(&engine).await, "a duplicate wakes nobody");
        let (deliveries, _) = engine
            .store()
            .list_deliveries("t", "sub_1", &DeliveryFilter::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(deliveries.len(), 1);
        let d = &deliveries[0];
        assert_eq!(
            (d.status, d.event_type.as_str(), d.ordered),
            (DeliveryStatus::Pending, "call.ended", true)
        );
        let detail = engine
            .store()
            .get_delivery("t", &d.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.event.id, first.event_id);
        assert_eq!(detail.event.payload, body);
        assert_eq!(detail.event.dedup_key, "d-1");
        assert_eq!(detail.event.provider, "fk");
    }

    #[tokio::test]
    async fn refusals_store_nothing() {
        let engine = engine(true).await;
        put_route(&engine, TOKEN, "fk", &["hangup"]).await;
        let forged = ingest(&engine, "cred-2", r#"{"id":"x"}"#).await;
        assert!(matches!(
            forged,
            Err(IngestError::Refused(IngressRefusal::Unauthenticated))
        ));
        let not_json = ingest(&engine, CREDENTIAL, "id=x").await;
        assert!(matches!(
            not_json,
            Err(IngestError::Refused(IngressRefusal::Malformed(_)))
        ));
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(LIMIT));
        assert!(matches!(
            ingest(&engine, CREDENTIAL, &big).await,
            Err(IngestError::TooLarge)
        ));
        assert!(!woken(&engine).await);
        let (deliveries, _) = engine
            .store()
            .list_deliveries("t", "sub_1", &DeliveryFilter::default(), None, 10)
            .await
            .unwrap();
        assert!(deliveries.is_empty());
    }

    #[tokio::test]
    async fn routes_that_cannot_be_used_are_not_found() {
        let off = engine(false).await;
        put_route(&off, TOKEN, "fk", &[]).await;
        let cache = RouteCache::default();
        assert!(matches!(
            off.ingress_route(&cache, TOKEN).await,
            Err(IngestError::NotFound)
        ));
        let on = engine(true).await;
        put_route(&on, "plain-route", "plain", &[]).await;
        put_route(&on, "gone-route", "removed", &[]).await;
        for token in ["plain-route", "gone-route", "unknown", "not/a/token"] {
            let found = on.ingress_route(&cache, token).await;
            assert!(matches!(found, Err(IngestError::NotFound)), "{token}");
        }
    }

    #[tokio::test]
    async fn unknown_tokens_are_remembered_only_briefly() {
        let engine = engine(true).await;
        let remembers = RouteCache::new(Duration::from_secs(60), Duration::from_secs(60), 10);
        let forgets = RouteCache::new(Duration::from_secs(60), Duration::ZERO, 10);
        for cache in [&remembers, &forgets] {
            assert!(engine.ingress_route(cache, TOKEN).await.is_err());
        }
        put_route(&engine, TOKEN, "fk", &[]).await;
        assert!(
            engine.ingress_route(&remembers, TOKEN).await.is_err(),
            "the miss is still cached"
        );
        let route = engine.ingress_route(&forgets, TOKEN).await.unwrap();
        assert_eq!((route.provider(), route.subscription_id()), ("fk", "sub_1"));
        // Found routes are served from the cache: gone from the store, the
        // route is still used until its entry expires.
        engine.store().delete_relay_routes("sub_1").await.unwrap();
        assert!(engine.ingress_route(&forgets, TOKEN).await.is_ok());
    }
}
