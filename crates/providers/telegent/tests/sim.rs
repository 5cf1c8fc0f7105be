//! The Telegent adapter against the Telegent simulator over real HTTP:
//! per-endpoint token minting and reuse, re-minting on refusal, shared
//! mints under concurrency, read-merge-write updates, wrapped responses, and
//! that credentials never reach a log.

use std::io;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use switchboard_core::{
    CallbackAuth, CallbackUrl, Error, EventName, NativeRequest, NativeResponse, ProviderAdapter,
    Secret, SpecDraft, SubscriptionSpec, Transport, TransportError, UpstreamErrorKind, testing,
};
use switchboard_sim::faults::Fault;
use switchboard_sim::telegent::{
    DEFAULT_ACCOUNT, DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_SECRET, TelegentConfig as SimConfig,
    TelegentSim,
};
use switchboard_sim::{Running, serve};
use switchboard_telegent::{TelegentAdapter, TelegentConfig};
use switchboard_transport::{HttpTransport, TransportConfig};

const KEY: &str = "tg-main";
const CALLBACK_PASSWORD: &str = "callback-pa55word";
const TOKEN_PATH: &str = "/v1.0/oauth2/tokens";

/// Records the provider key and path of every request, then sends it.
struct Recording {
    inner: HttpTransport,
    seen: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl Transport for Recording {
    async fn send(
        &self,
        provider: &str,
        base_url: &str,
        req: &NativeRequest,
    ) -> Result<NativeResponse, TransportError> {
        self.seen
            .lock()
            .expect("not poisoned")
            .push((provider.to_owned(), req.path.clone()));
        self.inner.send(provider, base_url, req).await
    }
}

struct Ctx {
    sim: TelegentSim,
    running: Running,
    transport: Arc<Recording>,
}

impl Ctx {
    async fn start(cfg: SimConfig) -> Self {
        let sim = TelegentSim::new(cfg);
        let running = serve(sim.router(), "127.0.0.1:0".parse().expect("address"))
            .await
            .expect("bind");
        let inner = HttpTransport::new(
            TransportConfig {
                max_attempts: 1,
                ..TransportConfig::default()
            },
            Default::default(),
        )
        .expect("transport");
        Self {
            sim,
            running,
            transport: Arc::new(Recording {
                inner,
                seen: Mutex::new(Vec::new()),
            }),
        }
    }

    async fn default() -> Self {
        Self::start(SimConfig::default()).await
    }

    fn adapter_with(&self, credentials: Value) -> Arc<TelegentAdapter> {
        let mut table = json!({ "base_url": self.running.base_url });
        if let (Some(t), Some(c)) = (table.as_object_mut(), credentials.as_object()) {
            t.extend(c.clone());
        }
        let cfg = TelegentConfig::from_json(table).expect("config");
        Arc::new(TelegentAdapter::new(KEY, cfg, self.transport.clone()))
    }

    fn adapter(&self) -> Arc<TelegentAdapter> {
        self.adapter_with(json!({
            "account_key": DEFAULT_ACCOUNT_KEY,
            "account_secret": DEFAULT_ACCOUNT_SECRET,
        }))
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url)
    }

    /// Paths the simulator answered, oldest first, with their status.
    fn answered(&self) -> Vec<(String, Option<u16>)> {
        self.sim
            .requests()
            .into_iter()
            .map(|r| (r.path, r.status))
            .collect()
    }
}

fn spec() -> SubscriptionSpec {
    SpecDraft {
        account: Some(DEFAULT_ACCOUNT.into()),
        auth: CallbackAuth::Basic {
            username: "hook-user".into(),
            password: Secret::new(CALLBACK_PASSWORD),
        },
        ..testing::draft(
            KEY,
            "https://hooks.example.com/telegent",
            &["call.ended", "native:Order_Update"],
        )
    }
    .validate()
    .expect("spec")
}

fn events() -> Vec<String> {
    vec!["Call_Completed".into(), "Order_Update".into()]
}

fn upstream(e: Error) -> switchboard_core::UpstreamError {
    match e {
        Error::Upstream(u) => u,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

fn account() -> Option<&'static str> {
    Some(DEFAULT_ACCOUNT)
}

#[tokio::test]
async fn tokens_are_minted_once_per_endpoint_and_reused() {
    let ctx = Ctx::default().await;
    let a = ctx.adapter();
    let plan = a.plan("sub_1", &spec(), &events()).expect("plan").remove(0);
    let created = a.create(account(), &plan).await.expect("create");
    for _ in 0..3 {
        a.get(account(), &created.id).await.expect("get");
        a.list(account()).await.expect("list");
    }
    let changed = spec()
        .with(|d| d.format = Some(switchboard_core::DeliveryFormat::Xml))
        .expect("spec");
    let new = a
        .plan("sub_1", &changed, &events())
        .expect("plan")
        .remove(0);
    a.update(account(), &created.id, &plan, &new)
        .await
        .expect("update");
    a.update(account(), &created.id, &new, &plan)
        .await
        .expect("update back");
    a.delete(account(), &created.id).await.expect("delete");
    a.delete(account(), &created.id)
        .await
        .expect("delete again");

    assert_eq!(
        ctx.sim.minted_endpoints(),
        [
            ctx.endpoint("/v1.0/webhook/create"),
            ctx.endpoint("/v1.0/webhook"),
            ctx.endpoint("/v1.0/account/webhooks"),
            ctx.endpoint("/v1.0/webhook/update"),
            ctx.endpoint("/v1.0/webhook/delete"),
        ]
    );
    // Every request, minting included, went out under the provider key, so
    // the instance's rate limit counts them all.
    let seen = ctx.transport.seen.lock().expect("not poisoned").clone();
    assert!(seen.iter().all(|(provider, _)| provider == KEY));
    assert_eq!(seen.iter().filter(|(_, p)| p == TOKEN_PATH).count(), 5);
    assert_eq!(seen.len(), ctx.sim.requests().len());
}

#[tokio::test]
async fn an_expired_token_is_reminted_once() {
    let ctx = Ctx::default().await;
    let a = ctx.adapter();
    a.list(account()).await.expect("list");
    ctx.sim.expire_tokens();
    ctx.sim.clear_requests();
    a.list(account()).await.expect("list after expiry");
    assert_eq!(ctx.sim.token_mints(), 2);
    let list = "/v1.0/account/webhooks".to_owned();
    assert_eq!(
        ctx.answered(),
        [
            (list.clone(), Some(401)),
            (TOKEN_PATH.to_owned(), Some(200)),
            (list.clone(), Some(200)),
        ]
    );
    // The new token is cached in turn.
    a.list(account()).await.expect("list again");
    assert_eq!(ctx.sim.token_mints(), 2);
}

#[tokio::test]
async fn a_persistently_refused_token_is_unauthorized_after_one_remint() {
    let ctx = Ctx::default().await;
    let a = ctx.adapter();
    let refused = json!({"StatusCode": 401, "Message": "Unauthorized: Bearer token is missing, expired, or invalid."});
    ctx.sim
        .inject(
            Fault::status(401)
                .with_body(refused)
                .times(2)
                .on_path("/account/webhooks"),
        )
        .expect("fault");
    let e = upstream(a.list(account()).await.unwrap_err());
    assert_eq!(e.kind, UpstreamErrorKind::Unauthorized);
    assert_eq!(e.status, Some(401));
    assert!(e.message.contains("re-minted"), "{}", e.message);
    assert_eq!(ctx.sim.token_mints(), 2, "one mint and one re-mint");
    let lists = ctx
        .answered()
        .into_iter()
        .filter(|(p, _)| p == "/v1.0/account/webhooks")
        .count();
    assert_eq!(lists, 2, "no third attempt");

    // A scope refusal (403) is handled the same way.
    let forbidden =
        json!({"StatusCode": 403, "Message": "Forbidden: … Check the ApiEndpoint scope."});
    ctx.sim
        .inject(
            Fault::status(403)
                .with_body(forbidden)
                .times(2)
                .on_path("/v1.0/webhook"),
        )
        .expect("fault");
    let e = upstream(a.get(account(), "WID-1").await.unwrap_err());
    assert_eq!(e.kind, UpstreamErrorKind::Unauthorized);
    assert!(e.message.contains("ApiEndpoint scope"), "{}", e.message);
    assert_eq!(ctx.sim.token_mints(), 4);
}

#[tokio::test]
async fn a_refusal_then_success_needs_only_the_remint() {
    let ctx = Ctx::default().await;
    let a = ctx.adapter();
    ctx.sim
        .inject(Fault::status(401).on_path("/webhook/create"))
        .expect("fault");
    let plan = a.plan("sub_1", &spec(), &events()).expect("plan").remove(0);
    let created = a.create(account(), &plan).await.expect("create");
    assert_eq!(ctx.sim.webhooks(DEFAULT_ACCOUNT).len(), 1, "created once");
    assert_eq!(
        ctx.sim.webhooks(DEFAULT_ACCOUNT)[0]["WebhookId"],
        created.id.as_str()
    );
    assert_eq!(ctx.sim.token_mints(), 2);
}

#[tokio::test]
async fn concurrent_calls_to_one_endpoint_share_one_mint() {
    let ctx = Ctx::default().await;
    let a = ctx.adapter();
    // A slow token endpoint keeps every caller waiting on the same mint.
    ctx.sim
        .inject(Fault::latency(100).on_path("oauth2"))
        .expect("fault");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let a = a.clone();
        tasks.spawn(async move { a.list(account()).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("list");
    }
    assert_eq!(ctx.sim.token_mints(), 1);

    // After expiry, concurrent refusals share one re-mint too.
    ctx.sim.expire_tokens();
    ctx.sim
        .inject(Fault::latency(100).on_path("oauth2"))
        .expect("fault");
    for _ in 0..16 {
        let a = a.clone();
        tasks.spawn(async move { a.list(account()).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("list");
    }
    assert_eq!(ctx.sim.token_mints(), 2);
}

#[tokio::test]
async fn a_token_about_to_expire_is_not_reused() {
    // 30 s is inside the adapter's 60 s refresh margin.
    let ctx = Ctx::start(SimConfig {
        token_ttl_seconds: 30,
        ..SimConfig::default()
    })
    .await;
    let a = ctx.adapter();
    a.list(account()).await.expect("list");
    a.list(account()).await.expect("list");
    assert_eq!(ctx.sim.token_mints(), 2);
}

#[tokio::test]
async fn all_seven_events_make_one_webhook() {
    let ctx = Ctx::default().await;
    let a = ctx.adapter();
    let s = spec()
        .with(|d| {
            d.events = [
                "order.updated",
                "message.received",
                "call.ended",
                "call.on_hold",
                "call.recording",
                "call.started",
                "call.ringing",
            ]
            .iter()
            .map(|e| EventName::parse(e).expect("event"))
            .collect();
        })
        .expect("spec");
    let natives: Vec<String> = [
        "Order_Update",
        "New_Sms",
        "Call_Completed",
        "Call_On_Hold",
        "Call_Recording",
        "Call_In_Progress",
        "Call_Ringing",
    ]
    .map(str::to_owned)
    .to_vec();
    let plans = a.plan("sub_1", &s, &natives).expect("plan");
    assert_eq!(plans.len(), 1);
    let created = a.create(account(), &plans[0]).await.expect("create");
    assert_eq!(created.events, natives);
    let stored = ctx.sim.webhooks(DEFAULT_ACCOUNT);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["SubscribedEvents"], natives.join(","));
}

#[tokio::test]
async fn wrapped_responses_parse() {
    let ctx = Ctx::start(SimConfig {
        wrap_responses: true,
        ..SimConfig::default()
    })
    .await;
    let a = ctx.adapter();
    let plan = a.plan("sub_1", &spec(), &events()).expect("plan").remove(0);
    let created = a.create(account(), &plan).await.expect("create");
    assert!(created.id.starts_with("WID-"));
    assert_eq!(created.events, events());
    let got = a.get(account(), &created.id).await.expect("get");
    assert_eq!(got, created);
    let listed = a.list(account()).await.expect("list");
    assert_eq!(listed, vec![created.clone()]);
    let changed = spec()
        .with(|d| d.url = CallbackUrl::parse("https://changed.example.com/x").expect("url"))
        .expect("spec");
    let new = a
        .plan("sub_1", &changed, &events())
        .expect("plan")
        .remove(0);
    let updated = a
        .update(account(), &created.id, &plan, &new)
        .await
        .expect("update");
    assert_eq!(
        updated.url.as_deref(),
        Some("https://changed.example.com/x")
    );
    a.delete(account(), &created.id).await.expect("delete");
    assert!(a.list(account()).await.expect("list").is_empty());
}

#[tokio::test]
async fn update_is_read_merge_write_with_every_field() {
    let ctx = Ctx::default().await;
    let a = ctx.adapter();
    let plan = a.plan("sub_1", &spec(), &events()).expect("plan").remove(0);
    let created = a.create(account(), &plan).await.expect("create");
    ctx.sim.clear_requests();

    let changed = spec()
        .with(|d| {
            d.auth = CallbackAuth::Bearer {
                token: Secret::new("cb-token"),
            };
            d.method = Some(switchboard_core::DeliveryMethod::Put);
        })
        .expect("spec");
    let new = a
        .plan("sub_1", &changed, &events())
        .expect("plan")
        .remove(0);
    let updated = a
        .update(account(), &created.id, &plan, &new)
        .await
        .expect("update");
    assert_eq!(updated.id, created.id);

    let log = ctx.sim.requests();
    let calls: Vec<(&str, &str)> = log
        .iter()
        .filter(|r| r.path != TOKEN_PATH)
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [("GET", "/v1.0/webhook"), ("POST", "/v1.0/webhook/update")]
    );
    let body = log
        .iter()
        .find(|r| r.path == "/v1.0/webhook/update")
        .and_then(|r| r.body.clone())
        .expect("update body");
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 10, "{keys:?}");
    assert_eq!(body["WebhookId"], created.id.as_str());
    // The old password echoed by the GET is not written back.
    assert_eq!(body["AuthenticationPassword"], "");
    assert_eq!(body["AuthenticationType"], "Token");
    let stored = &ctx.sim.webhooks(DEFAULT_ACCOUNT)[0];
    assert_eq!(stored["AuthenticationToken"], "cb-token");
    assert_eq!(stored["AuthenticationPassword"], "");
    assert_eq!(stored["Method"], "PUT");

    // Nothing to change: only the read is sent.
    ctx.sim.clear_requests();
    a.update(account(), &created.id, &new, &new)
        .await
        .expect("no-op update");
    assert!(
        ctx.sim
            .requests()
            .iter()
            .all(|r| r.path != "/v1.0/webhook/update")
    );
}

#[tokio::test]
async fn a_vanished_webhook_and_an_unknown_account() {
    let ctx = Ctx::default().await;
    let a = ctx.adapter();
    let plan = a.plan("sub_1", &spec(), &events()).expect("plan").remove(0);
    let e = upstream(
        a.update(account(), "WID-404", &plan, &plan)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.kind, UpstreamErrorKind::NotFound);
    a.delete(account(), "WID-404")
        .await
        .expect("deleting what is gone succeeds");
    let elsewhere = spec()
        .with(|d| d.account = Some("AID-0000000".into()))
        .expect("spec");
    let plan = a
        .plan("sub_1", &elsewhere, &events())
        .expect("plan")
        .remove(0);
    match upstream(a.create(Some("AID-0000000"), &plan).await.unwrap_err()).kind {
        UpstreamErrorKind::Rejected(errors) => assert_eq!(errors[0].pointer, "/account"),
        k => panic!("{k:?}"),
    }
    match upstream(a.list(Some("AID-0000000")).await.unwrap_err()).kind {
        UpstreamErrorKind::Rejected(errors) => assert_eq!(errors[0].pointer, "/account"),
        k => panic!("{k:?}"),
    }
}

#[tokio::test]
async fn a_static_token_is_used_as_is_and_never_reminted() {
    let ctx = Ctx::default().await;
    let minted: Value = mint_for_list(&ctx).await;
    let token = minted["token"].as_str().expect("token").to_owned();
    let a = ctx.adapter_with(json!({ "token": token }));
    a.list(account()).await.expect("list with the static token");
    let e = upstream(a.get(account(), "WID-1").await.unwrap_err());
    assert_eq!(e.kind, UpstreamErrorKind::Unauthorized);
    assert_eq!(e.status, Some(403));
    assert!(e.message.contains("static token"), "{}", e.message);
    assert_eq!(ctx.sim.token_mints(), 1, "only the test's own mint");
}

/// Mints a token for the list endpoint through the adapter crate's own
/// request builder and the shared transport (no extra HTTP client needed).
async fn mint_for_list(ctx: &Ctx) -> Value {
    let req = switchboard_telegent::translate::token_request(
        DEFAULT_ACCOUNT_KEY,
        &Secret::new(DEFAULT_ACCOUNT_SECRET),
        &ctx.endpoint("/v1.0/account/webhooks"),
    );
    let resp = ctx
        .transport
        .send("setup", &ctx.running.base_url, &req)
        .await
        .expect("mint");
    assert_eq!(resp.status, 200);
    resp.json()
}

/// A writer into a shared buffer, for capturing log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn credentials_never_reach_a_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let ctx = Ctx::start(SimConfig {
        // An unreadable reuse window triggers the warning path as well.
        token_ttl_seconds: 0,
        ..SimConfig::default()
    })
    .await;
    let a = ctx.adapter();
    let plan = a.plan("sub_1", &spec(), &events()).expect("plan").remove(0);
    let created = a.create(account(), &plan).await;
    // A zero-lifetime token is refused, re-minted once, refused again.
    let e = upstream(created.unwrap_err());
    assert_eq!(e.kind, UpstreamErrorKind::Unauthorized);
    assert!(!format!("{e:?}").contains(DEFAULT_ACCOUNT_SECRET));

    let ctx = Ctx::default().await;
    let a = ctx.adapter();
    let created = a.create(account(), &plan).await.expect("create");
    a.get(account(), &created.id).await.expect("get");
    ctx.sim.expire_tokens();
    a.update(account(), &created.id, &plan, &plan)
        .await
        .expect("update");
    a.delete(account(), &created.id).await.expect("delete");
    assert!(!format!("{:?}", a.preview(account(), &[plan])).contains(CALLBACK_PASSWORD));

    let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf8");
    assert!(
        text.contains("minted a Telegent management token"),
        "{text}"
    );
    assert!(text.contains("re-minting once"), "{text}");
    assert!(text.contains("upstream call"), "{text}");
    assert!(!text.contains(DEFAULT_ACCOUNT_SECRET));
    assert!(!text.contains(CALLBACK_PASSWORD));
    // The simulator's tokens are 32 hex digits; none appears.
    let hex_run = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .any(|w| w.len() >= 32);
    assert!(!hex_run, "a token-like value was logged");
}
