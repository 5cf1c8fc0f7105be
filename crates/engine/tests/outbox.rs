//! The relay delivery worker against a real receiver on 127.0.0.1 (port
//! 0), on every configured backend: what arrives (a Standard Webhooks
//! signature the receiver verifies, the same `webhook-id` on every
//! attempt, the subscription's method, format, auth and headers), what
//! each answer makes of the delivery (retry, `Retry-After`, 410, retries
//! used up), what is never sent (deleted, direct, disabled
//! subscriptions), leases taken over, two workers sharing one outbox, and
//! retention. Relay subscriptions are written straight into the store;
//! the provider behind them is an in-memory double, needed only by the
//! disable a 410 triggers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchboard_core::capabilities::Range;
use switchboard_core::policy::UrlPolicy;
use switchboard_core::subscription::{AuthKind, Delivery, DeliveryMode};
use switchboard_core::testing::draft;
use switchboard_core::{
    AccountRule, CallbackAuth, Capabilities, DeliveryFormat, DeliveryMethod, Error, EventCatalog,
    EventsPerResource, Ingress, IngressCredential, NativePlan, NativeRequest, NativeResource,
    ProviderAdapter, Secret, SpecDraft, SubscriptionSpec, SubscriptionStatus,
};
use switchboard_engine::{
    DeliveryPolicy, DeliveryWorker, Engine, ProviderInstance, RelaySettings, RouteCache, StepPolicy,
};
use switchboard_relay::{RetrySchedule, Sender, SigningSecret, verify};
use switchboard_store::{
    Accepted, DeliveryDetail, DeliveryStatus, NewEvent, NewRelayRoute, Store, StoreOptions,
    SubscriptionRecord, testing,
};
use tokio::sync::watch;

const TENANT: &str = "t";
const PAYLOAD: &str = r#"{"call":{"id":7,"tags":["vip"]},"note":"as received"}"#;

// ---------------------------------------------------------------- receiver

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn webhook_id(&self) -> &str {
        self.header("webhook-id")
    }

    /// Verifies the Standard Webhooks signature as a subscriber would.
    fn verify(&self, secret: &SigningSecret) -> Result<(), switchboard_relay::VerifyError> {
        verify(
            self.webhook_id(),
            self.header("webhook-timestamp"),
            self.header("webhook-signature"),
            &self.body,
            secret,
            Utc::now().timestamp(),
            300,
        )
    }
}

/// How the receiver answers one request.
#[derive(Clone)]
enum Reply {
    /// This status, `Retry-After` and body.
    Answer(u16, Option<&'static str>, &'static str),
    /// Waits until the gate opens, then answers 200.
    Hold(watch::Receiver<bool>),
}

/// A recording receiver: each path answers from its script, then 200.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<HashMap<String, VecDeque<Reply>>>>,
    base: String,
}

impl Receiver {
    async fn start() -> Self {
        let mut r = Self::default();
        let app = Router::new().fallback(answer).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        r.base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Queues `replies` for `path`, answered in order before the 200s.
    fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.script
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .extend(replies);
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }
}

async fn answer(
    State(r): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    r.seen.lock().unwrap().push(Seen {
        method,
        path: path.clone(),
        headers,
        body,
    });
    let next = r
        .script
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    match next {
        None => (StatusCode::OK, "ok").into_response(),
        Some(Reply::Answer(status, retry_after, body)) => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            if let Some(ra) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", ra.parse().unwrap());
            }
            response
        }
        Some(Reply::Hold(mut gate)) => {
            gate.wait_for(|open| *open).await.unwrap();
            (StatusCode::OK, "ok").into_response()
        }
    }
}

fn fail(status: u16, body: &'static str) -> Reply {
    Reply::Answer(status, None, body)
}

// ------------------------------------------------- provider double, engine

/// A provider that accepts whatever it is asked: the outbox never calls
/// it; a 410's disable and a re-enable do.
#[derive(Default)]
struct Accepting {
    natives: Mutex<BTreeMap<String, NativeResource>>,
}

fn caps() -> Capabilities {
    Capabilities {
        account: AccountRule::Forbidden,
        events_per_resource: EventsPerResource::Many,
        url_max_len: 2048,
        https_only: false,
        auth: vec![
            AuthKind::None,
            AuthKind::Basic,
            AuthKind::Bearer,
            AuthKind::ApiKey,
        ],
        signing_secret_max_len: Some(1024),
        headers: true,
        methods: vec![
            DeliveryMethod::Post,
            DeliveryMethod::Put,
            DeliveryMethod::Patch,
        ],
        formats: vec![DeliveryFormat::Json, DeliveryFormat::Xml],
        timeout_seconds: Some(Range { min: 1, max: 120 }),
        max_retries: Some(Range { min: 0, max: 20 }),
        filters: false,
        native_disable: false,
        serialize_account: false,
        list_is_complete: true,
        provider_options: vec![],
        unsigned_events: vec![],
    }
}

#[async_trait]
impl ProviderAdapter for Accepting {
    fn kind(&self) -> &'static str {
        "accepting"
    }
    fn capabilities(&self) -> &Capabilities {
        static CAPS: std::sync::OnceLock<Capabilities> = std::sync::OnceLock::new();
        CAPS.get_or_init(caps)
    }
    fn plan(
        &self,
        _: &str,
        spec: &SubscriptionSpec,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error> {
        Ok(vec![NativePlan {
            key: "hook".into(),
            events: events.to_vec(),
            body: json!({"url": spec.url.as_str()}),
            secret_pointers: vec![],
        }])
    }
    fn preview(&self, _: Option<&str>, plans: &[NativePlan]) -> Vec<NativeRequest> {
        plans
            .iter()
            .map(|p| NativeRequest::new(http::Method::POST, "/hooks").json(p.body.clone(), vec![]))
            .collect()
    }
    fn base_url(&self) -> &str {
        "memory://accepting"
    }
    async fn create(&self, _: Option<&str>, plan: &NativePlan) -> Result<NativeResource, Error> {
        let mut natives = self.natives.lock().unwrap();
        let r = NativeResource {
            id: format!("n{}", natives.len() + 1),
            events: plan.events.clone(),
            enabled: true,
            url: plan.body["url"].as_str().map(str::to_owned),
            ..NativeResource::default()
        };
        natives.insert(r.id.clone(), r.clone());
        Ok(r)
    }
    async fn update(
        &self,
        a: Option<&str>,
        id: &str,
        _: &NativePlan,
        new: &NativePlan,
    ) -> Result<NativeResource, Error> {
        self.delete(a, id).await?;
        self.create(a, new).await
    }
    async fn delete(&self, _: Option<&str>, id: &str) -> Result<(), Error> {
        self.natives.lock().unwrap().remove(id);
        Ok(())
    }
    async fn get(&self, _: Option<&str>, id: &str) -> Result<NativeResource, Error> {
        self.natives
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| {
                Error::upstream(
                    "acc",
                    switchboard_core::UpstreamErrorKind::NotFound,
                    Some(404),
                    "gone",
                )
            })
    }
    async fn list(&self, _: Option<&str>) -> Result<Vec<NativeResource>, Error> {
        Ok(self.natives.lock().unwrap().values().cloned().collect())
    }
}

/// Deliveries carrying `Authorization: Bearer <credential>`, any JSON.
fn bearer_delivery(
    request: &switchboard_core::IngressRequest<'_>,
    credential: &str,
    _: DateTime<Utc>,
) -> Result<switchboard_core::InboundEvent, switchboard_core::IngressRefusal> {
    switchboard_core::ingress::check_bearer(request, credential)?;
    Ok(switchboard_core::InboundEvent {
        native_event: Some("a".into()),
        dedup_id: None,
        occurred_at: None,
        payload: request.json_body()?,
    })
}

fn engine(store: Store) -> Engine {
    let catalog = EventCatalog::from_toml("[native]\naccepting = [\"a\"]\n").unwrap();
    Engine::new(
        store,
        Arc::new(catalog),
        vec![ProviderInstance {
            key: "acc".into(),
            adapter: Arc::new(Accepting::default()),
            ingress: Some(Ingress {
                credential: IngressCredential::BearerToken,
                verify: bearer_delivery,
                max_age: None,
                names_event: true,
            }),
        }],
    )
    .with_relay(RelaySettings {
        public_url: "https://sb.example.com".into(),
        max_payload_bytes: 1 << 20,
        max_retries: 9,
    })
    .with_step_policy(StepPolicy {
        margin: Duration::ZERO,
        deadline: Duration::from_secs(1),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..StepPolicy::default()
    })
}

/// Three millisecond retries, so a test sees them without waiting, then
/// one an hour later: the schedule spans an hour, how long a disabled
/// subscription's deliveries wait.
fn policy() -> DeliveryPolicy {
    let ms = Duration::from_millis(5);
    let delays = vec![ms, ms, ms, Duration::from_secs(3600)];
    DeliveryPolicy {
        concurrency: 16,
        batch_size: 16,
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_millis(10),
        schedule: RetrySchedule::new(delays, Duration::from_secs(3600)).unwrap(),
        disabled_recheck: Duration::from_millis(50),
        maintenance_interval: Duration::from_millis(50),
        ..DeliveryPolicy::default()
    }
}

/// Loopback and plain http allowed: the receiver is local.
fn sender() -> Arc<Sender> {
    let policy = UrlPolicy {
        allow_http: true,
        allow_private: true,
        ..UrlPolicy::default()
    };
    Arc::new(Sender::new(policy).unwrap())
}

// ------------------------------------------------------- records, events

/// A relay subscription of `url`, adjusted by `tweak`, written straight
/// into the store; its signing secret.
async fn relay_sub(
    store: &Store,
    url: &str,
    tweak: impl FnOnce(&mut SpecDraft),
) -> (SubscriptionRecord, SigningSecret) {
    let secret = SigningSecret::generate();
    let mut spec = SpecDraft {
        signing_secret: Some(secret.to_secret()),
        auth: CallbackAuth::Bearer {
            token: Secret::new("receiver-token"),
        },
        headers: BTreeMap::from([("X-Team".to_owned(), "billing".to_owned())]),
        delivery: Delivery {
            mode: DeliveryMode::Relay,
            seed: Some(Secret::new("a-test-seed-of-some-length")),
            ..Delivery::default()
        },
        ..draft("acc", url, &["native:a"])
    };
    tweak(&mut spec);
    let now = Utc::now();
    let status = if spec.enabled {
        SubscriptionStatus::Active
    } else {
        SubscriptionStatus::Disabled
    };
    let rec = SubscriptionRecord {
        id: switchboard_core::ids::subscription_id(),
        tenant: TENANT.into(),
        key: None,
        status,
        spec: spec.validate().unwrap(),
        warnings: vec![],
        last_error: None,
        version: 1,
        created_at: now,
        updated_at: now,
        natives: vec![],
        last_reconciled_at: None,
        findings: vec![],
    };
    store.insert(&rec).await.unwrap();
    (rec, secret)
}

/// Accepts one event for `sub`, received at `at`; its id.
async fn accept_at(store: &Store, sub: &str, ordered: bool, at: DateTime<Utc>) -> String {
    let dedup = ulid::Ulid::new().to_string();
    let event = NewEvent {
        tenant: TENANT,
        subscription_id: sub,
        event_type: "native:a",
        provider: "acc",
        occurred_at: None,
        received_at: at,
        payload: PAYLOAD,
        dedup_key: &dedup,
        ordered,
    };
    match store.accept_event(&event).await.unwrap() {
        Accepted::New(id) => id,
        other => panic!("expected a new event, got {other:?}"),
    }
}

async fn accept(store: &Store, sub: &str) -> String {
    accept_at(store, sub, false, Utc::now()).await
}

/// The one delivery of event `event` of `sub`.
async fn delivery_of(store: &Store, sub: &str, event: &str) -> DeliveryDetail {
    let (page, _) = store
        .list_deliveries(TENANT, sub, &Default::default(), None, 200)
        .await
        .unwrap();
    let d = page
        .into_iter()
        .find(|d| d.event_id == event)
        .unwrap_or_else(|| panic!("no delivery of {event}"));
    store.get_delivery(TENANT, &d.id).await.unwrap().unwrap()
}

/// Polls `check` until it holds, for at most 15 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status_is(store: &Store, sub: &str, event: &str, status: DeliveryStatus) -> bool {
    delivery_of(store, sub, event).await.delivery.status == status
}

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Store, StoreOptions) -> Fut,
    Fut: Future<Output = ()>,
{
    for (name, opts) in testing::backends() {
        eprintln!("backend: {name}");
        let store = Store::connect(&opts).await.unwrap();
        f(store, opts).await;
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn a_500_is_retried_with_the_same_signed_id_until_delivered() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, secret) = relay_sub(&store, &rx.url("/retry"), |_| {}).await;
        rx.script("/retry", [fail(500, "boom")]);
        let event = accept(&store, &sub.id).await;
        let worker = engine(store.clone()).spawn_delivery_workers(policy(), sender());
        eventually("the delivery", || {
            status_is(&store, &sub.id, &event, DeliveryStatus::Delivered)
        })
        .await;
        worker.abort();

        let seen = rx.seen("/retry");
        assert_eq!(seen.len(), 2, "one failure, one retry");
        for s in &seen {
            assert_eq!(s.webhook_id(), event, "the same webhook-id every attempt");
            assert_eq!(s.verify(&secret), Ok(()));
            assert_eq!(s.method, Method::POST);
            assert_eq!(s.header("content-type"), "application/json");
            assert_eq!(s.header("authorization"), "Bearer receiver-token");
            assert_eq!(s.header("x-team"), "billing");
            let body: Value = serde_json::from_slice(&s.body).unwrap();
            assert_eq!(body["id"], json!(event));
            assert_eq!(body["type"], json!("native:a"));
            assert_eq!(body["provider"], json!("acc"));
            assert_eq!(body["subscription"], json!(sub.id));
            assert_eq!(
                body["data"],
                serde_json::from_str::<Value>(PAYLOAD).unwrap()
            );
        }
        let other = SigningSecret::generate();
        assert!(
            seen[0].verify(&other).is_err(),
            "only the subscription's secret verifies"
        );

        let detail = delivery_of(&store, &sub.id, &event).await;
        assert_eq!(detail.delivery.attempts, 2);
        assert_eq!(detail.delivery.last_status_code, Some(200));
        let codes: Vec<_> = detail.attempts.iter().map(|a| a.status_code).collect();
        assert_eq!(codes, [Some(500), Some(200)]);
        assert_eq!(detail.attempts[0].response_excerpt.as_deref(), Some("boom"));
        assert_eq!(detail.attempts[0].outcome, "response");
        assert_eq!(detail.attempts[1].response_excerpt.as_deref(), Some("ok"));
    })
    .await;
}

#[tokio::test]
async fn retry_after_sets_the_next_attempt() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, _) = relay_sub(&store, &rx.url("/busy"), |_| {}).await;
        rx.script("/busy", [Reply::Answer(429, Some("120"), "slow down")]);
        let event = accept(&store, &sub.id).await;
        let worker = engine(store.clone()).delivery_worker(policy(), sender());
        let before = Utc::now();
        let report = worker.deliver_due().await.unwrap();
        let after = Utc::now();
        assert_eq!((report.claimed, report.retried), (1, 1), "{report:?}");

        let d = delivery_of(&store, &sub.id, &event).await.delivery;
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(d.last_status_code, Some(429));
        let wait = chrono::Duration::seconds(120);
        // The schedule alone would retry in 5 ms: the receiver's 120 s won.
        assert!(
            d.next_attempt_at >= before + wait && d.next_attempt_at <= after + wait,
            "{} not 120 s after {before}..{after}",
            d.next_attempt_at
        );
        // Not due: the next pass leaves it alone.
        assert_eq!(worker.deliver_due().await.unwrap().claimed, 0);
        assert_eq!(rx.seen("/busy").len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_410_ends_gone_disables_the_subscription_and_the_rest_wait_for_enable() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, _) = relay_sub(&store, &rx.url("/gone"), |_| {}).await;
        rx.script("/gone", [fail(410, "no such endpoint")]);
        let first = accept(&store, &sub.id).await;
        let engine = engine(store.clone());
        let worker = engine.spawn_delivery_workers(policy(), sender());
        eventually("the 410 to end the delivery gone", || {
            status_is(&store, &sub.id, &first, DeliveryStatus::Gone)
        })
        .await;
        eventually("the subscription to be disabled", || async {
            let rec = store.get(TENANT, &sub.id).await.unwrap();
            !rec.spec.enabled && rec.status == SubscriptionStatus::Disabled
        })
        .await;

        // Left, not dead-lettered: it waits, unsent, no attempt counted.
        let second = accept(&store, &sub.id).await;
        eventually("the next delivery to wait", || async {
            let d = delivery_of(&store, &sub.id, &second).await.delivery;
            d.status == DeliveryStatus::Pending
                && d.last_error.as_deref() == Some("the subscription is disabled")
        })
        .await;
        let waiting = delivery_of(&store, &sub.id, &second).await;
        assert_eq!(waiting.delivery.attempts, 0);
        assert!(waiting.attempts.is_empty());
        assert_eq!(rx.seen("/gone").len(), 1, "nothing sent while disabled");

        // The receiver is back (it answers 200 now) and so is the
        // subscription: the waiting delivery goes out.
        engine
            .set_enabled(TENANT, "test", &sub.id, true)
            .await
            .unwrap();
        eventually("the waiting delivery", || {
            status_is(&store, &sub.id, &second, DeliveryStatus::Delivered)
        })
        .await;
        worker.abort();
        let seen = rx.seen("/gone");
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].webhook_id(), second);
        let gone = delivery_of(&store, &sub.id, &first).await;
        assert_eq!(gone.delivery.last_status_code, Some(410));
        assert_eq!(gone.attempts.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn retries_used_up_dead_letter_the_delivery() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, _) = relay_sub(&store, &rx.url("/down"), |d| d.max_retries = Some(2)).await;
        rx.script("/down", (0..10).map(|_| fail(503, "down")));
        let event = accept(&store, &sub.id).await;
        let worker = engine(store.clone()).spawn_delivery_workers(policy(), sender());
        eventually("the dead letter", || {
            status_is(&store, &sub.id, &event, DeliveryStatus::Failed)
        })
        .await;
        worker.abort();
        let detail = delivery_of(&store, &sub.id, &event).await;
        // max_retries 2: the first attempt and two retries, then no more.
        assert_eq!(detail.delivery.attempts, 3);
        assert_eq!(detail.attempts.len(), 3);
        assert!(detail.attempts.iter().all(|a| a.status_code == Some(503)));
        assert_eq!(rx.seen("/down").len(), 3);
        assert_eq!(store.outbox_depth().await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn an_xml_subscription_gets_a_signed_xml_body_with_its_method() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, secret) = relay_sub(&store, &rx.url("/xml"), |d| {
            d.format = Some(DeliveryFormat::Xml);
            d.method = Some(DeliveryMethod::Put);
            d.auth = CallbackAuth::ApiKey {
                header: "X-Api-Key".into(),
                value: Secret::new("k-456"),
            };
        })
        .await;
        let event = accept(&store, &sub.id).await;
        let worker = engine(store.clone()).delivery_worker(policy(), sender());
        let report = worker.deliver_due().await.unwrap();
        assert_eq!(report.delivered, 1, "{report:?}");
        let seen = rx.seen("/xml");
        assert_eq!(seen.len(), 1);
        let s = &seen[0];
        assert_eq!(s.method, Method::PUT);
        assert_eq!(s.header("content-type"), "application/xml");
        assert_eq!(s.header("x-api-key"), "k-456");
        assert_eq!(s.verify(&secret), Ok(()));
        let xml = std::str::from_utf8(&s.body).unwrap();
        assert!(
            xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><event>"#),
            "{xml}"
        );
        assert!(xml.contains(&format!("<id>{event}</id>")), "{xml}");
        assert!(xml.contains(r#"<note>as received</note>"#), "{xml}");
    })
    .await;
}

#[tokio::test]
async fn deliveries_nobody_should_receive_are_not_sent() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let url = rx.url("/never");
        let deleted = switchboard_core::ids::subscription_id();
        let (direct, _) = relay_sub(&store, &url, |d| d.delivery = Delivery::default()).await;
        let (disabled, _) = relay_sub(&store, &url, |d| d.enabled = false).await;
        let (stale, _) = relay_sub(&store, &url, |d| d.enabled = false).await;
        let e_deleted = accept(&store, &deleted).await;
        let e_direct = accept(&store, &direct.id).await;
        let e_disabled = accept(&store, &disabled.id).await;
        // Older than the whole retry schedule (an hour).
        let long_ago = Utc::now() - chrono::Duration::hours(2);
        let e_stale = accept_at(&store, &stale.id, false, long_ago).await;

        let worker = engine(store.clone()).delivery_worker(policy(), sender());
        let before = Utc::now();
        let report = worker.deliver_due().await.unwrap();
        assert_eq!(
            (report.claimed, report.failed, report.postponed),
            (4, 3, 1),
            "{report:?}"
        );
        assert!(rx.seen("/never").is_empty(), "nothing was sent");

        for (sub, event, needle) in [
            (&deleted, &e_deleted, "was deleted"),
            (&direct.id, &e_direct, "no longer relayed"),
            (
                &stale.id,
                &e_stale,
                "disabled for longer than the retry schedule",
            ),
        ] {
            let d = delivery_of(&store, sub, event).await;
            assert_eq!(d.delivery.status, DeliveryStatus::Failed, "{needle}");
            let error = d.delivery.last_error.unwrap_or_default();
            assert!(error.contains(needle), "{error}");
            assert_eq!(d.attempts.len(), 1, "the refusal is in the attempts log");
            assert_eq!(d.attempts[0].outcome, "refused");
            assert_eq!(d.attempts[0].status_code, None);
        }
        let waiting = delivery_of(&store, &disabled.id, &e_disabled)
            .await
            .delivery;
        assert_eq!(waiting.status, DeliveryStatus::Pending);
        assert_eq!(waiting.attempts, 0);
        assert!(
            waiting.next_attempt_at >= before + chrono::Duration::milliseconds(50),
            "looked at again a disabled_recheck later"
        );
        assert_eq!(
            waiting.last_error.as_deref(),
            Some("the subscription is disabled")
        );
    })
    .await;
}

#[tokio::test]
async fn an_expired_lease_loses_the_write_and_another_worker_delivers() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, secret) = relay_sub(&store, &rx.url("/slow"), |_| {}).await;
        let (open, gate) = watch::channel(false);
        rx.script("/slow", [Reply::Hold(gate)]);
        let event = accept(&store, &sub.id).await;
        let engine = engine(store.clone());
        let short = DeliveryPolicy {
            lease: Duration::from_millis(200),
            ..policy()
        };
        let a = engine.delivery_worker(short, sender());
        let b = engine.delivery_worker(policy(), sender());
        assert_ne!(a.id(), b.id());
        let first = {
            let a = a.clone();
            tokio::spawn(async move { a.deliver_due().await.unwrap() })
        };
        eventually("the first attempt to arrive", || async {
            rx.seen("/slow").len() == 1
        })
        .await;
        // A's attempt hangs past its lease; B takes the delivery over.
        eventually("another worker to deliver", || {
            let b: DeliveryWorker = b.clone();
            async move { b.deliver_due().await.unwrap().delivered == 1 }
        })
        .await;
        open.send(true).unwrap();
        let report = first.await.unwrap();
        assert_eq!((report.claimed, report.lease_lost), (1, 1), "{report:?}");

        let seen = rx.seen("/slow");
        assert_eq!(
            seen.len(),
            2,
            "at least once: both attempts reached the receiver"
        );
        assert!(seen.iter().all(|s| s.webhook_id() == event));
        assert!(seen.iter().all(|s| s.verify(&secret).is_ok()));
        let detail = delivery_of(&store, &sub.id, &event).await;
        assert_eq!(detail.delivery.status, DeliveryStatus::Delivered);
        assert_eq!(detail.delivery.leased_by.as_deref(), Some(b.id()));
        assert_eq!(detail.attempts.len(), 1, "the lost write left no attempt");
    })
    .await;
}

#[tokio::test]
async fn an_ordered_subscription_receives_its_events_in_order() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, _) = relay_sub(&store, &rx.url("/ordered"), |d| d.delivery.ordered = true).await;
        rx.script("/ordered", [fail(500, "first try fails")]);
        let mut events = Vec::new();
        for _ in 0..5 {
            events.push(accept_at(&store, &sub.id, true, Utc::now()).await);
        }
        let worker = engine(store.clone()).spawn_delivery_workers(policy(), sender());
        eventually("every delivery", || async {
            store.outbox_depth().await.unwrap() == 0
        })
        .await;
        worker.abort();
        let ids: Vec<String> = rx
            .seen("/ordered")
            .iter()
            .map(|s| s.webhook_id().to_owned())
            .collect();
        let mut expected = vec![events[0].clone()];
        expected.extend(events.iter().cloned());
        assert_eq!(ids, expected, "the failed first event held the others back");
    })
    .await;
}

#[tokio::test]
async fn two_workers_share_the_outbox_and_deliver_each_event_once() {
    each_backend(|store, opts| async move {
        // Postgres: two stores, as two replicas would have, each holding
        // its liveness lock as a server does (a replica without one looks
        // dead to the other, which would hand its claims back); SQLite has
        // one writer per file, so both workers share the store.
        let other = if store.backend() == "postgres" {
            Store::connect(&opts).await.unwrap()
        } else {
            store.clone()
        };
        let _alive = (
            store.hold_liveness().await.unwrap(),
            other.hold_liveness().await.unwrap(),
        );
        let rx = Receiver::start().await;
        let (gated, _) = relay_sub(&store, &rx.url("/gated"), |_| {}).await;
        let (open, gate) = watch::channel(false);
        rx.script("/gated", (0..20).map(|_| Reply::Hold(gate.clone())));
        let mut events = Vec::new();
        for _ in 0..20 {
            events.push(accept(&store, &gated.id).await);
        }
        let few = DeliveryPolicy {
            batch_size: 10,
            ..policy()
        };
        let a = engine(store.clone()).delivery_worker(few.clone(), sender());
        let b = engine(other.clone()).delivery_worker(few, sender());
        // A's ten attempts are held open; B's claim skips them.
        let a_pass = tokio::spawn({
            let a = a.clone();
            async move { a.deliver_due().await.unwrap() }
        });
        eventually("A's attempts", || async { rx.seen("/gated").len() == 10 }).await;
        let b_pass = tokio::spawn({
            let b = b.clone();
            async move { b.deliver_due().await.unwrap() }
        });
        eventually("B's attempts", || async { rx.seen("/gated").len() == 20 }).await;
        open.send(true).unwrap();
        assert_eq!(a_pass.await.unwrap().delivered, 10);
        assert_eq!(b_pass.await.unwrap().delivered, 10);

        // Both loops running on a stream of events.
        let (busy, _) = relay_sub(&store, &rx.url("/busy"), |_| {}).await;
        let run_a = engine(store.clone()).spawn_delivery_workers(policy(), sender());
        let run_b = engine(other.clone()).spawn_delivery_workers(policy(), sender());
        for _ in 0..100 {
            events.push(accept(&store, &busy.id).await);
        }
        eventually("the outbox to drain", || async {
            store.outbox_depth().await.unwrap() == 0
        })
        .await;
        run_a.abort();
        run_b.abort();

        let mut seen: Vec<String> = rx
            .seen("/gated")
            .into_iter()
            .chain(rx.seen("/busy"))
            .map(|s| s.webhook_id().to_owned())
            .collect();
        seen.sort();
        let mut expected = events.clone();
        expected.sort();
        assert_eq!(seen, expected, "every event exactly once");
        let mut leased_by = std::collections::HashSet::new();
        for (sub, ids) in [(&gated.id, &events[..20]), (&busy.id, &events[20..])] {
            for e in ids {
                let d = delivery_of(&store, sub, e).await.delivery;
                assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));
                leased_by.insert(d.leased_by.unwrap());
            }
        }
        assert!(leased_by.contains(a.id()) && leased_by.contains(b.id()));
    })
    .await;
}

#[tokio::test]
async fn maintenance_prunes_finished_deliveries_and_measures_the_outbox() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, _) = relay_sub(&store, &rx.url("/ok"), |_| {}).await;
        let (off, _) = relay_sub(&store, &rx.url("/ok"), |d| d.enabled = false).await;
        let done = accept(&store, &sub.id).await;
        let engine = engine(store.clone());
        let keep = engine.delivery_worker(policy(), sender());
        assert_eq!(keep.deliver_due().await.unwrap().delivered, 1);
        let waiting = accept(&store, &off.id).await;

        // Within its retention the delivered one stays.
        let m = keep.maintain().await.unwrap();
        assert_eq!((m.pruned.deliveries, m.depth), (0, 1));
        assert!(
            store
                .get_delivery(
                    TENANT,
                    &delivery_of(&store, &sub.id, &done).await.delivery.id
                )
                .await
                .unwrap()
                .is_some()
        );

        let prune = engine.delivery_worker(
            DeliveryPolicy {
                delivered_retention: Duration::ZERO,
                failed_retention: Duration::ZERO,
                ..policy()
            },
            sender(),
        );
        let m = prune.maintain().await.unwrap();
        assert_eq!(m.pruned.deliveries, 1);
        assert_eq!(m.pruned.events, 1);
        assert_eq!(
            m.depth, 1,
            "the open delivery is neither pruned nor forgotten"
        );
        let (page, _) = store
            .list_deliveries(TENANT, &sub.id, &Default::default(), None, 10)
            .await
            .unwrap();
        assert!(page.is_empty());
        assert_eq!(
            delivery_of(&store, &off.id, &waiting).await.delivery.status,
            DeliveryStatus::Pending
        );
    })
    .await;
}

#[tokio::test]
async fn the_ingress_wake_up_starts_a_delivery_without_waiting_for_the_poll() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, _) = relay_sub(&store, &rx.url("/wake"), |_| {}).await;
        let engine = engine(store.clone());
        let idle = DeliveryPolicy {
            poll_interval: Duration::from_secs(3600),
            ..policy()
        };
        let first = accept(&store, &sub.id).await;
        let worker = engine.spawn_delivery_workers(idle, sender());
        // The first claim at start-up finds it.
        eventually("the first delivery", || {
            status_is(&store, &sub.id, &first, DeliveryStatus::Delivered)
        })
        .await;
        // Now idle until the poll, an hour away, or a wake-up.
        let second = accept(&store, &sub.id).await;
        engine.relay().unwrap().wake.notify_one();
        eventually("the woken delivery", || {
            status_is(&store, &sub.id, &second, DeliveryStatus::Delivered)
        })
        .await;
        worker.abort();
        assert_eq!(rx.seen("/wake").len(), 2);
    })
    .await;
}

/// Sends `body` to the ingress of route `token` as the provider would.
async fn ingest(engine: &Engine, token: &str, body: &str) -> String {
    let headers = vec![("authorization".to_owned(), "Bearer cred".to_owned())];
    let request = switchboard_core::IngressRequest {
        url: "https://sb.example.com/ingress/x",
        headers: &headers,
        body: body.as_bytes(),
        received_at: Utc::now(),
    };
    let route = engine
        .ingress_route(&RouteCache::default(), token)
        .await
        .unwrap();
    engine.ingest(&route, &request).await.unwrap().event_id
}

#[tokio::test]
async fn the_ingress_hands_its_delivery_to_the_running_worker_already_claimed() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let (sub, _) = relay_sub(&store, &rx.url("/handed"), |_| {}).await;
        let credential = Secret::new("cred");
        let route = |token, ordered| NewRelayRoute {
            token,
            tenant: TENANT,
            subscription_id: &sub.id,
            native_key: token,
            provider: "acc",
            credential: &credential,
            events: &[],
            ordered,
        };
        store
            .put_relay_routes(&[route("unordered", false), route("ordered", true)])
            .await
            .unwrap();
        let engine = engine(store.clone());
        // No claim after the one at start-up: neither the poll nor a
        // wake-up (which waits out the coalescing first) comes within the
        // test, so only a handed delivery can go out.
        let never = DeliveryPolicy {
            poll_interval: Duration::from_secs(3600),
            claim_coalesce: Duration::from_secs(3600),
            ..policy()
        };
        let worker = engine.delivery_worker(never, sender());
        let first = accept(&store, &sub.id).await;
        let running = tokio::spawn({
            let worker = worker.clone();
            async move { worker.run().await }
        });
        eventually("the delivery claimed at start-up", || {
            status_is(&store, &sub.id, &first, DeliveryStatus::Delivered)
        })
        .await;

        let handed = ingest(&engine, "unordered", r#"{"n":1}"#).await;
        let d = delivery_of(&store, &sub.id, &handed).await.delivery;
        assert_eq!(d.leased_by.as_deref(), Some(worker.id()), "stored claimed");
        eventually("the handed delivery", || {
            status_is(&store, &sub.id, &handed, DeliveryStatus::Delivered)
        })
        .await;
        assert_eq!(rx.seen("/handed").len(), 2);

        // An ordered event waits for a claim, which keeps its order.
        let ordered = ingest(&engine, "ordered", r#"{"n":2}"#).await;
        let d = delivery_of(&store, &sub.id, &ordered).await.delivery;
        assert_eq!((d.status, d.leased_by), (DeliveryStatus::Pending, None));

        // A stopped worker takes nothing: the next event is stored pending.
        running.abort();
        assert!(running.await.unwrap_err().is_cancelled());
        let unclaimed = ingest(&engine, "unordered", r#"{"n":3}"#).await;
        let d = delivery_of(&store, &sub.id, &unclaimed).await.delivery;
        assert_eq!((d.status, d.leased_by), (DeliveryStatus::Pending, None));
        assert_eq!(rx.seen("/handed").len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_rotated_secret_signs_too_while_its_overlap_lasts() {
    each_backend(|store, _| async move {
        let rx = Receiver::start().await;
        let old = SigningSecret::generate();
        let rotated = |until: DateTime<Utc>| {
            let old = old.to_secret();
            move |d: &mut SpecDraft| {
                d.delivery.previous_secret = Some(old);
                d.delivery.previous_until = Some(until);
            }
        };
        let soon = Utc::now() + chrono::Duration::hours(1);
        let (overlap, new) = relay_sub(&store, &rx.url("/overlap"), rotated(soon)).await;
        let past = Utc::now() - chrono::Duration::seconds(1);
        let (after, newer) = relay_sub(&store, &rx.url("/after"), rotated(past)).await;
        accept(&store, &overlap.id).await;
        accept(&store, &after.id).await;
        let worker = engine(store.clone()).delivery_worker(policy(), sender());
        assert_eq!(worker.deliver_due().await.unwrap().delivered, 2);

        let s = &rx.seen("/overlap")[0];
        assert_eq!(s.header("webhook-signature").split(' ').count(), 2);
        assert_eq!(s.verify(&new), Ok(()));
        assert_eq!(s.verify(&old), Ok(()), "a receiver still on the old secret");
        let s = &rx.seen("/after")[0];
        assert_eq!(s.header("webhook-signature").split(' ').count(), 1);
        assert_eq!(s.verify(&newer), Ok(()));
        assert!(s.verify(&old).is_err(), "the overlap is over");
    })
    .await;
}
