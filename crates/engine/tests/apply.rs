//! Engine behaviour with a multi-resource provider: one native resource per
//! event, no native disable, and failures on demand. The in-memory provider
//! here is a test double for the engine's own logic (diff, record, undo);
//! real adapters are tested against their simulators elsewhere.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use switchboard_core::capabilities::Range;
use switchboard_core::operation::{OperationKind, OperationState, StepAction};
use switchboard_core::subscription::AuthKind;
use switchboard_core::testing::draft;
use switchboard_core::{
    AccountRule, CallbackUrl, Capabilities, Error, EventCatalog, EventsPerResource, NativePlan,
    NativeRequest, NativeResource, OnUnsupported, ProviderAdapter, SubscriptionSpec,
    SubscriptionStatus, UpstreamErrorKind,
};
use switchboard_engine::{Engine, ProviderInstance, StepPolicy};
use switchboard_store::{Store, testing};

#[derive(Default)]
struct State {
    resources: BTreeMap<String, (String, String)>, // id -> (event, url)
    next: u32,
    fail_create_of: Option<String>,
    /// That failure is an internal error rather than an upstream one.
    fail_internally: bool,
    /// Deletes succeed this many more times, then fail.
    deletes_left: Option<u32>,
    /// The next creates apply, then answer 500 (the answer is all that failed).
    applied_then_500: u32,
    /// The next creates answer 503 without applying.
    refused_503: u32,
    /// Listing fails (the provider cannot be asked).
    list_fails: bool,
    calls: Vec<String>,
}

#[derive(Clone)]
struct FanOut(Arc<Mutex<State>>, Arc<Capabilities>);

impl Default for FanOut {
    fn default() -> Self {
        Self(Arc::default(), Arc::new(caps()))
    }
}

fn caps() -> Capabilities {
    Capabilities {
        account: AccountRule::Forbidden,
        events_per_resource: EventsPerResource::One,
        url_max_len: 2048,
        https_only: true,
        auth: vec![AuthKind::None],
        signing_secret_max_len: None,
        headers: false,
        methods: vec![],
        formats: vec![],
        timeout_seconds: None::<Range>,
        max_retries: None,
        filters: false,
        native_disable: false,
        serialize_account: false,
        list_is_complete: true,
        provider_options: vec![],
        unsigned_events: vec![],
    }
}

/// A definite refusal: nothing was applied.
fn failed(msg: &str) -> Error {
    Error::upstream(
        "fan",
        UpstreamErrorKind::Rejected(Vec::new()),
        Some(422),
        msg,
    )
}

/// A failure that may follow an apply.
fn server_error(status: u16) -> Error {
    Error::upstream("fan", UpstreamErrorKind::Unavailable, Some(status), "oops")
}

#[async_trait]
impl ProviderAdapter for FanOut {
    fn kind(&self) -> &'static str {
        "fanout"
    }
    fn capabilities(&self) -> &Capabilities {
        &self.1
    }
    fn plan(
        &self,
        _id: &str,
        spec: &SubscriptionSpec,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error> {
        Ok(events
            .iter()
            .map(|e| NativePlan {
                key: e.clone(),
                events: vec![e.clone()],
                body: json!({"event": e, "url": spec.url.as_str()}),
                secret_pointers: vec![],
            })
            .collect())
    }
    fn preview(&self, _: Option<&str>, plans: &[NativePlan]) -> Vec<NativeRequest> {
        plans
            .iter()
            .map(|p| NativeRequest::new(http::Method::POST, "/subs").json(p.body.clone(), vec![]))
            .collect()
    }
    fn base_url(&self) -> &str {
        "memory://fanout"
    }
    async fn create(&self, _: Option<&str>, plan: &NativePlan) -> Result<NativeResource, Error> {
        let mut s = self.0.lock().unwrap();
        s.calls.push(format!("create {}", plan.key));
        if s.fail_create_of.as_deref() == Some(plan.key.as_str()) {
            if s.fail_internally {
                return Err(Error::Internal("create broke".into()));
            }
            return Err(failed("create refused"));
        }
        if s.refused_503 > 0 {
            s.refused_503 -= 1;
            return Err(server_error(503));
        }
        s.next += 1;
        let id = format!("n{}", s.next);
        let url = plan.body["url"].as_str().unwrap().to_owned();
        s.resources
            .insert(id.clone(), (plan.key.clone(), url.clone()));
        if s.applied_then_500 > 0 {
            s.applied_then_500 -= 1;
            return Err(server_error(500));
        }
        Ok(NativeResource {
            id,
            events: plan.events.clone(),
            enabled: true,
            url: Some(url),
            ..Default::default()
        })
    }
    async fn update(
        &self,
        _: Option<&str>,
        id: &str,
        _old: &NativePlan,
        new: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let mut s = self.0.lock().unwrap();
        s.calls.push(format!("update {}", new.key));
        let url = new.body["url"].as_str().unwrap().to_owned();
        let entry = s.resources.get_mut(id).ok_or_else(|| {
            Error::upstream("fan", UpstreamErrorKind::NotFound, Some(404), "gone")
        })?;
        entry.1 = url.clone();
        Ok(NativeResource {
            id: id.to_owned(),
            events: new.events.clone(),
            enabled: true,
            url: Some(url),
            ..Default::default()
        })
    }
    async fn delete(&self, _: Option<&str>, id: &str) -> Result<(), Error> {
        let mut s = self.0.lock().unwrap();
        s.calls.push(format!("delete {id}"));
        match s.deletes_left {
            Some(0) => return Err(failed("delete refused")),
            Some(n) => s.deletes_left = Some(n - 1),
            None => {}
        }
        s.resources.remove(id);
        Ok(())
    }
    async fn get(&self, _: Option<&str>, id: &str) -> Result<NativeResource, Error> {
        let s = self.0.lock().unwrap();
        let (event, url) = s.resources.get(id).ok_or_else(|| {
            Error::upstream("fan", UpstreamErrorKind::NotFound, Some(404), "gone")
        })?;
        Ok(NativeResource {
            id: id.to_owned(),
            events: vec![event.clone()],
            enabled: true,
            url: Some(url.clone()),
            ..Default::default()
        })
    }
    async fn list(&self, _: Option<&str>) -> Result<Vec<NativeResource>, Error> {
        let s = self.0.lock().unwrap();
        if s.list_fails {
            return Err(server_error(503));
        }
        Ok(s.resources
            .iter()
            .map(|(id, (event, url))| NativeResource {
                id: id.clone(),
                events: vec![event.clone()],
                enabled: true,
                url: Some(url.clone()),
                ..Default::default()
            })
            .collect())
    }
}

const CATALOG: &str = r#"
[native]
fanout = ["a", "b", "c", "d"]
"#;

fn engine_on(store: Store, fake: &FanOut, catalog: &str) -> Engine {
    Engine::new(
        store,
        Arc::new(EventCatalog::from_toml(catalog).unwrap()),
        vec![ProviderInstance {
            key: "fan".into(),
            adapter: Arc::new(fake.clone()),
            ingress: None,
        }],
    )
    .with_step_policy(quick())
}

/// Retries within a second, nothing in flight to wait for (the fake
/// answers every request it applies).
fn quick() -> StepPolicy {
    StepPolicy {
        margin: Duration::ZERO,
        deadline: Duration::from_secs(1),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..StepPolicy::default()
    }
}

async fn engine() -> (Engine, FanOut) {
    let store = Store::connect(&testing::sqlite()).await.unwrap();
    let fake = FanOut::default();
    (engine_on(store, &fake, CATALOG), fake)
}

#[tokio::test]
async fn a_subscription_outlives_an_event_removed_from_the_catalog() {
    let store = Store::connect(&testing::sqlite()).await.unwrap();
    let fake = FanOut::default();
    let before = engine_on(store.clone(), &fake, CATALOG);
    let rec = before.create("t", "test", spec(&["a", "b"])).await.unwrap();
    let after = engine_on(store, &fake, "[native]\nfanout = [\"a\", \"c\"]\n");
    // Changing it to valid events works: b's resource is removed.
    let changed = after
        .update("t", "test", &rec.id, spec(&["a", "c"]), None)
        .await
        .unwrap();
    assert_eq!(events_at_provider(&fake), ["a", "c"]);
    assert_eq!(changed.natives.len(), 2);
    let rec = before.create("t", "test", spec(&["b"])).await.unwrap();
    after.delete("t", "test", &rec.id).await.unwrap();
    assert_eq!(events_at_provider(&fake), ["a", "c"]);
}

fn spec(events: &[&str]) -> SubscriptionSpec {
    let events: Vec<String> = events.iter().map(|e| format!("native:{e}")).collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    draft("fan", "https://hooks.example.com/a", &events)
        .validate()
        .unwrap()
}

fn events_at_provider(fake: &FanOut) -> Vec<String> {
    let mut v: Vec<String> = fake
        .0
        .lock()
        .unwrap()
        .resources
        .values()
        .map(|(e, _)| e.clone())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_failed_fan_out_leaves_nothing_behind() {
    let (engine, fake) = engine().await;
    fake.0.lock().unwrap().fail_create_of = Some("c".into());
    let err = engine
        .create("t", "test", spec(&["a", "b", "c", "d"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Upstream(_)));
    assert!(
        events_at_provider(&fake).is_empty(),
        "a and b were removed again"
    );
    let page = engine.list(Some("t"), &all()).await.unwrap();
    assert!(page.data.is_empty(), "nothing stored");
    let calls = fake.0.lock().unwrap().calls.clone();
    assert_eq!(
        calls,
        ["create a", "create b", "create c", "delete n2", "delete n1"]
    );
}

fn all() -> switchboard_store::ListQuery {
    switchboard_store::ListQuery {
        limit: 50,
        ..Default::default()
    }
}

#[tokio::test]
async fn an_event_change_touches_only_the_affected_resources() {
    let (engine, fake) = engine().await;
    let rec = engine
        .create("t", "test", spec(&["a", "b", "c"]))
        .await
        .unwrap();
    assert_eq!(rec.natives.len(), 3);
    let a_id = rec
        .natives
        .iter()
        .find(|n| n.key == "a")
        .unwrap()
        .native_id
        .clone();
    fake.0.lock().unwrap().calls.clear();

    let rec = engine
        .update("t", "test", &rec.id, spec(&["a", "d"]), None)
        .await
        .unwrap();
    let calls = fake.0.lock().unwrap().calls.clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0], "create d");
    assert!(calls[1..].iter().all(|c| c.starts_with("delete ")));
    assert!(!calls.iter().any(|c| c.contains(&a_id) || c == "update a"));
    assert_eq!(events_at_provider(&fake), ["a", "d"]);
    let keys: Vec<_> = rec.natives.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys, ["a", "d"]);
    assert_eq!(rec.version, 2);
}

#[tokio::test]
async fn a_failed_update_is_undone_and_the_store_is_unchanged() {
    let (engine, fake) = engine().await;
    let rec = engine.create("t", "test", spec(&["a", "b"])).await.unwrap();
    fake.0.lock().unwrap().fail_create_of = Some("d".into());
    let next = spec(&["a", "c", "d"])
        .with(|d| d.url = CallbackUrl::parse("https://hooks.example.com/new").unwrap())
        .unwrap();
    let err = engine
        .update("t", "test", &rec.id, next, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Upstream(_)));
    // a's URL change and c's creation were undone; b was never deleted.
    assert_eq!(events_at_provider(&fake), ["a", "b"]);
    assert!(
        fake.0
            .lock()
            .unwrap()
            .resources
            .values()
            .all(|(_, u)| u == "https://hooks.example.com/a")
    );
    let after = engine.get("t", &rec.id).await.unwrap();
    assert_eq!(after.spec, rec.spec);
    assert_eq!(after.natives, rec.natives);
    assert_eq!(after.status, SubscriptionStatus::Active);
    assert_eq!(after.version, rec.version);
}

#[tokio::test]
async fn disable_without_a_native_switch_deletes_and_enable_recreates() {
    let (engine, fake) = engine().await;
    let rec = engine.create("t", "test", spec(&["a", "b"])).await.unwrap();
    let off = engine
        .set_enabled("t", "test", &rec.id, false)
        .await
        .unwrap();
    assert_eq!(off.status, SubscriptionStatus::Disabled);
    assert!(off.natives.is_empty());
    assert!(events_at_provider(&fake).is_empty());
    let on = engine
        .set_enabled("t", "test", &rec.id, true)
        .await
        .unwrap();
    assert_eq!(on.status, SubscriptionStatus::Active);
    assert_eq!(on.natives.len(), 2);
    assert_eq!(events_at_provider(&fake), ["a", "b"]);

    // Creating disabled creates nothing upstream.
    let s = spec(&["c"]).with(|d| d.enabled = false).unwrap();
    let rec = engine.create("t", "test", s).await.unwrap();
    assert_eq!(rec.status, SubscriptionStatus::Disabled);
    assert!(rec.natives.is_empty());
}

#[tokio::test]
async fn a_failed_delete_restores_what_it_removed() {
    let (engine, fake) = engine().await;
    let rec = engine.create("t", "test", spec(&["a", "b"])).await.unwrap();
    fake.0.lock().unwrap().deletes_left = Some(1);
    let err = engine.delete("t", "test", &rec.id).await.unwrap_err();
    assert!(matches!(err, Error::Upstream(_)));
    // The first resource was deleted, the second refused: the first is
    // recreated (with a new native id) and the subscription is kept.
    assert_eq!(events_at_provider(&fake), ["a", "b"]);
    let after = engine.get("t", &rec.id).await.unwrap();
    assert_eq!(after.status, SubscriptionStatus::Active);
    assert_eq!(after.natives.len(), 2);
    let at_provider: Vec<String> = fake.0.lock().unwrap().resources.keys().cloned().collect();
    for n in &after.natives {
        assert!(
            at_provider.contains(&n.native_id),
            "store knows {} which exists upstream",
            n.native_id
        );
    }

    fake.0.lock().unwrap().deletes_left = None;
    engine.delete("t", "test", &rec.id).await.unwrap();
    assert!(events_at_provider(&fake).is_empty());
    assert!(matches!(
        engine.get("t", &rec.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_secret_an_event_cannot_carry_is_dropped_with_a_warning() {
    let store = Store::connect(&testing::sqlite()).await.unwrap();
    let mut signing = caps();
    signing.signing_secret_max_len = Some(64);
    signing.unsigned_events = vec!["c"];
    let fake = FanOut(Arc::default(), Arc::new(signing));
    let engine = engine_on(store, &fake, CATALOG);
    let s = signed_ignoring(&["a", "c"]);
    let rec = engine.create("t", "test", s).await.unwrap();
    assert_eq!(rec.warnings.len(), 1, "{:?}", rec.warnings);
    assert!(rec.warnings[0].contains("`c`"));
    let s = signed_ignoring(&["a"]);
    assert!(
        engine
            .create("t", "test", s)
            .await
            .unwrap()
            .warnings
            .is_empty()
    );
}

/// The undo decides how a failed change ends, not the kind of error that
/// stopped it: an internal error whose steps were all undone is `undone`,
/// with the subscription as it was (a create: gone).
#[tokio::test]
async fn an_internal_error_whose_undo_succeeded_is_undone() {
    let store = Store::connect(&testing::sqlite()).await.unwrap();
    let fake = FanOut::default();
    let engine = engine_on(store.clone(), &fake, CATALOG);
    {
        let mut s = fake.0.lock().unwrap();
        s.fail_create_of = Some("b".into());
        s.fail_internally = true;
    }
    let err = engine
        .create("t", "test", spec(&["a", "b"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
    assert!(events_at_provider(&fake).is_empty());
    let page = engine.list(Some("t"), &all()).await.unwrap();
    assert!(
        page.data.is_empty(),
        "the undone create is not kept as failed"
    );

    fake.0.lock().unwrap().fail_create_of = None;
    let rec = engine.create("t", "test", spec(&["a"])).await.unwrap();
    fake.0.lock().unwrap().fail_create_of = Some("b".into());
    engine
        .update("t", "test", &rec.id, spec(&["a", "b"]), None)
        .await
        .unwrap_err();
    let after = engine.get("t", &rec.id).await.unwrap();
    assert_eq!(after.status, SubscriptionStatus::Active, "not failed");
    assert_eq!(after.version, rec.version);
    let (ops, _) = store.list_operations("t", &rec.id, 10, None).await.unwrap();
    assert_eq!(ops[0].kind, OperationKind::Update);
    assert_eq!(ops[0].state, OperationState::Undone);
    assert_eq!(ops[1].kind, OperationKind::Create);
    assert_eq!(ops[1].state, OperationState::Succeeded);
}

/// When the undo fails too, the change is `failed` and so is the
/// subscription, with the journal showing the steps that were made.
#[tokio::test]
async fn a_failed_undo_leaves_the_subscription_failed() {
    let store = Store::connect(&testing::sqlite()).await.unwrap();
    let fake = FanOut::default();
    let engine = engine_on(store.clone(), &fake, CATALOG);
    let rec = engine.create("t", "test", spec(&["a"])).await.unwrap();
    {
        let mut s = fake.0.lock().unwrap();
        s.fail_create_of = Some("c".into());
        s.deletes_left = Some(0);
    }
    let err = engine
        .update("t", "test", &rec.id, spec(&["a", "b", "c"]), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
    let after = engine.get("t", &rec.id).await.unwrap();
    assert_eq!(after.status, SubscriptionStatus::Failed);
    assert!(after.last_error.unwrap().contains("create refused"));
    // b exists upstream and is recorded.
    assert_eq!(events_at_provider(&fake), ["a", "b"]);
    assert!(after.natives.iter().any(|n| n.key == "b"));
    let (ops, _) = store.list_operations("t", &rec.id, 1, None).await.unwrap();
    assert_eq!(ops[0].state, OperationState::Failed);
    let actions: Vec<StepAction> = ops[0].steps.iter().map(|s| s.action).collect();
    assert_eq!(actions, [StepAction::Create]);
}

/// A spec with a signing secret, under `on_unsupported: ignore`.
fn signed_ignoring(events: &[&str]) -> SubscriptionSpec {
    spec(events)
        .with(|d| {
            d.signing_secret = Some(switchboard_core::Secret::new("whsec_x"));
            d.on_unsupported = OnUnsupported::Ignore;
        })
        .unwrap()
}

fn actions_of(op: &switchboard_store::Operation) -> Vec<StepAction> {
    op.steps.iter().map(|s| s.action).collect()
}

/// "Applied, then answered 500": the create is verified, found and
/// adopted; it is not created a second time.
#[tokio::test]
async fn a_create_applied_but_answered_500_is_adopted_not_duplicated() {
    let store = Store::connect(&testing::sqlite()).await.unwrap();
    let fake = FanOut::default();
    let engine = engine_on(store.clone(), &fake, CATALOG);
    fake.0.lock().unwrap().applied_then_500 = 1;
    let rec = engine.create("t", "test", spec(&["a", "b"])).await.unwrap();
    assert_eq!(
        events_at_provider(&fake),
        ["a", "b"],
        "one resource per plan"
    );
    assert_eq!(rec.natives.len(), 2);
    let (ops, _) = store.list_operations("t", &rec.id, 1, None).await.unwrap();
    // `a`: unknown, found and adopted, then recorded; `b`: created.
    assert_eq!(
        actions_of(&ops[0]),
        [
            StepAction::Unknown,
            StepAction::Adopt,
            StepAction::Create,
            StepAction::Create
        ]
    );
}

/// A 5xx storm the provider did not act on: each retry is preceded by a
/// look, and the create converges to exactly one resource.
#[tokio::test]
async fn a_5xx_storm_on_create_converges_to_one_resource() {
    let store = Store::connect(&testing::sqlite()).await.unwrap();
    let fake = FanOut::default();
    let engine = engine_on(store.clone(), &fake, CATALOG);
    fake.0.lock().unwrap().refused_503 = 3;
    let rec = engine.create("t", "test", spec(&["a"])).await.unwrap();
    assert_eq!(events_at_provider(&fake), ["a"]);
    let (ops, _) = store.list_operations("t", &rec.id, 1, None).await.unwrap();
    let actions = actions_of(&ops[0]);
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == StepAction::Unknown)
            .count(),
        3
    );
    assert_eq!(
        actions.iter().filter(|a| **a == StepAction::Absent).count(),
        3
    );
    assert_eq!(actions.last(), Some(&StepAction::Create));
}

/// A create whose outcome cannot be verified (the provider cannot even
/// list) fails and leaves the subscription `failed`; once the provider
/// answers again, the sweep finds the resource that did land and
/// removes it, and says so in the subscription's history.
#[tokio::test]
async fn an_unverifiable_create_is_swept_once_the_provider_answers() {
    let store = Store::connect(&testing::sqlite()).await.unwrap();
    let fake = FanOut::default();
    let engine = engine_on(store.clone(), &fake, CATALOG);
    let rec = engine.create("t", "test", spec(&["a"])).await.unwrap();
    {
        let mut s = fake.0.lock().unwrap();
        s.applied_then_500 = 1;
        s.list_fails = true;
    }
    engine
        .update("t", "test", &rec.id, spec(&["a", "b"]), None)
        .await
        .unwrap_err();
    let after = engine.get("t", &rec.id).await.unwrap();
    assert_eq!(
        after.status,
        SubscriptionStatus::Failed,
        "undo could not look"
    );
    assert_eq!(events_at_provider(&fake), ["a", "b"], "b landed unrecorded");
    assert_eq!(store.pending_verifications(&rec.id).await.unwrap(), 1);

    fake.0.lock().unwrap().list_fails = false;
    assert_eq!(engine.sweep().await.unwrap(), 1);
    assert_eq!(events_at_provider(&fake), ["a"], "the late one is removed");
    let (ops, _) = store.list_operations("t", &rec.id, 1, None).await.unwrap();
    assert_eq!(ops[0].kind, OperationKind::Verify);
    assert_eq!(actions_of(&ops[0]), [StepAction::RemoveLate]);
}
