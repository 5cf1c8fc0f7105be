//! The Bird adapter against the Bird simulator over real HTTP: fan-out,
//! pagination, the organization prefix, the five-per-combination limit,
//! validation before any upstream call, and the compound steps the adapter
//! performs itself (create-then-deactivate, recreate).

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_accesskey_workspace::translate::LIMIT_PHRASE;
use switchboard_accesskey_workspace::{AccessKeyWorkspaceAdapter, AccessKeyWorkspaceConfig};
use switchboard_core::{
    CallbackUrl, Error, Filter, NativePlan, ProviderAdapter, Secret, SpecDraft, SubscriptionSpec,
    UpstreamErrorKind, testing,
};
use switchboard_sim::bird::{
    BirdConfig, BirdSim, DEFAULT_ACCESS_KEY, DEFAULT_ORGANIZATION, DEFAULT_WORKSPACE,
};
use switchboard_sim::faults::Fault;
use switchboard_sim::{Running, serve};
use switchboard_transport::{HttpTransport, TransportConfig};

const SUB_ID: &str = "sub_01TESTBIRD00000000000000000";

struct Ctx {
    sim: BirdSim,
    running: Running,
}

impl Ctx {
    async fn start(cfg: BirdConfig) -> Self {
        let sim = BirdSim::new(cfg);
        let running = serve(
            sim.router(),
            "127.0.0.1:0".parse().expect("literal address"),
        )
        .await
        .expect("bind");
        Self { sim, running }
    }

    fn adapter(&self, organization: Option<&str>) -> AccessKeyWorkspaceAdapter {
        let transport = HttpTransport::new(
            TransportConfig {
                max_attempts: 1,
                ..TransportConfig::default()
            },
            Default::default(),
        )
        .expect("transport");
        let mut table = json!({
            "base_url": self.running.base_url,
            "access_key": DEFAULT_ACCESS_KEY,
        });
        if let Some(org) = organization {
            table["organization_id"] = json!(org);
        }
        let cfg = AccessKeyWorkspaceConfig::from_json(table).expect("config");
        AccessKeyWorkspaceAdapter::new("bird", cfg, Arc::new(transport))
    }

    async fn shutdown(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }
}

fn spec() -> SubscriptionSpec {
    SpecDraft {
        account: Some(DEFAULT_WORKSPACE.into()),
        signing_secret: Some(Secret::new("whsec_switchboard_kept")),
        ..testing::draft(
            "bird",
            "https://billing.example.com/hooks/bird",
            &["message.sent", "message.received", "conversation.created"],
        )
    }
    .validate()
    .expect("spec")
}

fn natives() -> Vec<String> {
    vec![
        "channels:sms.outbound".into(),
        "channels:sms.inbound".into(),
        "conversations:conversation.created".into(),
    ]
}

fn channel_spec(channel: &str) -> SubscriptionSpec {
    spec()
        .with(|d| {
            d.events.truncate(1);
            d.filters = vec![Filter {
                key: "channelId".into(),
                value: channel.into(),
            }];
        })
        .expect("spec")
}

fn plans_of(
    adapter: &AccessKeyWorkspaceAdapter,
    s: &SubscriptionSpec,
    events: &[String],
) -> Vec<NativePlan> {
    adapter.plan(SUB_ID, s, events).expect("plan")
}

fn account() -> Option<&'static str> {
    Some(DEFAULT_WORKSPACE)
}

#[tokio::test]
async fn n_events_become_n_identical_native_subscriptions() {
    let ctx = Ctx::start(BirdConfig::default()).await;
    let a = ctx.adapter(None);
    let plans = plans_of(&a, &spec(), &natives());
    assert_eq!(plans.len(), 3);
    for plan in &plans {
        let created = a.create(account(), plan).await.expect("create");
        assert_eq!(created.events, plan.events);
        assert!(created.enabled);
    }
    let stored = ctx.sim.subscriptions(DEFAULT_WORKSPACE);
    assert_eq!(stored.len(), 3);
    let pairs: Vec<(String, String)> = stored
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap_or_default().to_owned(),
                s["event"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("channels".to_owned(), "sms.outbound".to_owned()),
            ("channels".to_owned(), "sms.inbound".to_owned()),
            (
                "conversations".to_owned(),
                "conversation.created".to_owned()
            ),
        ]
    );
    for s in &stored {
        assert_eq!(s["url"], "https://billing.example.com/hooks/bird");
        assert_eq!(s["signingKey"], "whsec_switchboard_kept");
        assert_eq!(s["eventFilters"], json!([]));
        assert_eq!(s["status"], "active");
    }
    let ids: std::collections::BTreeSet<&str> =
        stored.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids.len(), 3);
    ctx.shutdown().await;
}

#[tokio::test]
async fn shared_filters_reach_every_native_subscription() {
    let ctx = Ctx::start(BirdConfig::default()).await;
    let a = ctx.adapter(None);
    let s = spec()
        .with(|d| {
            d.events.truncate(2);
            d.filters = vec![
                Filter {
                    key: "channelId".into(),
                    value: "c-1".into(),
                },
                Filter {
                    key: "messageStatus".into(),
                    value: "delivered".into(),
                },
            ];
        })
        .expect("spec");
    for plan in plans_of(&a, &s, &natives()[..2]) {
        a.create(account(), &plan).await.expect("create");
    }
    let stored = ctx.sim.subscriptions(DEFAULT_WORKSPACE);
    assert_eq!(stored.len(), 2);
    let want = json!([{"key": "channelId", "value": "c-1"}, {"key": "messageStatus", "value": "delivered"}]);
    assert!(stored.iter().all(|s| s["eventFilters"] == want));
    ctx.shutdown().await;
}

#[tokio::test]
async fn list_follows_next_page_token() {
    let ctx = Ctx::start(BirdConfig {
        page_size_max: 3,
        ..BirdConfig::default()
    })
    .await;
    let a = ctx.adapter(None);
    let mut created = Vec::new();
    for i in 0..8 {
        let plan = plans_of(&a, &channel_spec(&format!("c-{i}")), &natives()[..1]).remove(0);
        created.push(a.create(account(), &plan).await.expect("create").id);
    }
    ctx.sim.clear_requests();
    let listed = a.list(account()).await.expect("list");
    let ids: Vec<String> = listed.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, created);
    let gets: Vec<_> = ctx.sim.requests();
    assert_eq!(gets.len(), 3, "8 subscriptions in pages of 3");
    assert!(gets.iter().all(|r| r.method == "GET"));
    let queries: Vec<String> = gets
        .iter()
        .map(|r| r.query.clone().unwrap_or_default())
        .collect();
    assert_eq!(queries[0], "limit=100");
    assert!(
        queries[1].starts_with("limit=100&pageToken="),
        "{}",
        queries[1]
    );
    assert!(
        queries[2].starts_with("limit=100&pageToken="),
        "{}",
        queries[2]
    );
    assert_ne!(queries[1], queries[2]);
    ctx.shutdown().await;
}

#[tokio::test]
async fn organization_prefix_is_used_when_configured() {
    let ctx = Ctx::start(BirdConfig::default()).await;
    let a = ctx.adapter(Some(DEFAULT_ORGANIZATION));
    let plan = plans_of(&a, &spec(), &natives()).remove(0);
    let created = a.create(account(), &plan).await.expect("create");
    a.get(account(), &created.id).await.expect("get");
    assert_eq!(a.list(account()).await.expect("list").len(), 1);
    a.delete(account(), &created.id).await.expect("delete");
    let log = ctx.sim.requests();
    assert_eq!(log.len(), 4);
    let prefix = format!(
        "/organizations/{DEFAULT_ORGANIZATION}/workspaces/{DEFAULT_WORKSPACE}/webhook-subscriptions"
    );
    for r in &log {
        assert!(r.path.starts_with(&prefix), "{} {}", r.method, r.path);
        assert_eq!(
            r.status.map(|s| s / 100),
            Some(2),
            "{} {}",
            r.method,
            r.path
        );
    }
    // The preview shows the same paths.
    let preview = a.preview(account(), std::slice::from_ref(&plan));
    assert_eq!(preview[0].path, prefix);

    // Without the setting, the seed's workspace-only form.
    ctx.sim.clear_requests();
    let plain = ctx.adapter(None);
    plain.list(account()).await.expect("list");
    assert_eq!(
        ctx.sim.requests()[0].path,
        format!("/workspaces/{DEFAULT_WORKSPACE}/webhook-subscriptions")
    );

    // An organization Bird does not know is the caller's account problem.
    let wrong = ctx.adapter(Some("00000000-0000-4000-8000-00000000000f"));
    match wrong.create(account(), &plan).await {
        Err(Error::Upstream(u)) => match u.kind {
            UpstreamErrorKind::Rejected(errors) => assert_eq!(errors[0].pointer, "/account"),
            k => panic!("{k:?}"),
        },
        other => panic!("{other:?}"),
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn the_sixth_identical_subscription_is_refused_naming_the_limit() {
    let ctx = Ctx::start(BirdConfig::default()).await;
    let a = ctx.adapter(None);
    for i in 0..5 {
        let s = channel_spec("c-full")
            .with(|d| {
                d.url = CallbackUrl::parse(&format!("https://h{i}.example.com/bird")).expect("url");
            })
            .expect("spec");
        let plan = plans_of(&a, &s, &natives()[..1]).remove(0);
        a.create(account(), &plan).await.expect("five are allowed");
    }
    let plan = plans_of(&a, &channel_spec("c-full"), &natives()[..1]).remove(0);
    let err = a
        .create(account(), &plan)
        .await
        .expect_err("the sixth is refused");
    let Error::Upstream(u) = err else {
        panic!("expected an upstream error");
    };
    assert_eq!(u.status, Some(422));
    let UpstreamErrorKind::Rejected(errors) = u.kind else {
        panic!("expected a rejection, got {:?}", u.kind);
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].pointer, "/filters");
    assert_eq!(errors[0].provider.as_deref(), Some("bird"));
    assert!(
        errors[0].detail.contains(LIMIT_PHRASE),
        "{}",
        errors[0].detail
    );
    assert!(errors[0].detail.contains("channels:sms.outbound"));
    assert!(errors[0].detail.contains("channelId=c-full"));
    assert_eq!(ctx.sim.subscriptions(DEFAULT_WORKSPACE).len(), 5);

    // Another filter value is another combination.
    let plan = plans_of(&a, &channel_spec("c-other"), &natives()[..1]).remove(0);
    a.create(account(), &plan)
        .await
        .expect("another combination");
    ctx.shutdown().await;
}

#[tokio::test]
async fn invalid_urls_are_refused_before_any_upstream_call() {
    let ctx = Ctx::start(BirdConfig::default()).await;
    let a = ctx.adapter(None);
    // No query right after the host here: the core normalizes
    // `https://host?q` to `https://host/?q`, which the pattern accepts
    // (`check_url`'s unit test covers the raw spelling).
    for (url, reason) in [
        ("https://203.0.113.7/hooks", "IP address"),
        ("https://hooks.example.com:8443/bird", "port"),
        ("https://localhost/bird", "single label"),
        ("https://hooks.example.c0m/bird", "top-level domain"),
        ("http://hooks.example.com/bird", "https"),
    ] {
        let mut d = spec().into_draft();
        d.url = CallbackUrl::parse(url).expect("a URL the core accepts");
        // The engine's order: capabilities, validation, then the adapter's plan.
        let caps = a.capabilities().check("bird", a.kind(), &mut d);
        let planned = caps
            .and_then(|_| d.validate())
            .and_then(|s| a.plan(SUB_ID, &s, &natives()));
        let errors = match planned {
            Err(Error::Invalid(errors)) => errors,
            other => panic!("{url}: expected a 422, got {other:?}"),
        };
        assert_eq!(errors.len(), 1, "{url}");
        assert_eq!(errors[0].pointer, "/url", "{url}");
        assert_eq!(errors[0].provider.as_deref(), Some("bird"));
        assert!(
            errors[0].detail.contains(reason),
            "{url}: {}",
            errors[0].detail
        );
    }
    assert!(ctx.sim.requests().is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_disabled_subscription_is_created_then_switched_off() {
    let ctx = Ctx::start(BirdConfig::default()).await;
    let a = ctx.adapter(None);
    let s = spec().with(|d| d.enabled = false).expect("spec");
    let plan = plans_of(&a, &s, &natives()).remove(0);
    let created = a.create(account(), &plan).await.expect("create");
    assert!(!created.enabled);
    let stored = ctx.sim.subscriptions(DEFAULT_WORKSPACE);
    assert_eq!(stored[0]["status"], "inactive");
    let log = ctx.sim.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].method, "POST");
    assert!(
        log[0]
            .body
            .as_ref()
            .is_some_and(|b| b.get("status").is_none())
    );
    assert_eq!(log[1].method, "PATCH");
    assert_eq!(log[1].body, Some(json!({"status": "inactive"})));
    // The preview announces the same two requests.
    let preview = a.preview(account(), std::slice::from_ref(&plan));
    assert_eq!(preview.len(), 2);
    assert_eq!(preview[0].body, log[0].body);
    assert_eq!(preview[1].body, log[1].body);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_failed_switch_off_leaves_nothing_behind() {
    let ctx = Ctx::start(BirdConfig::default()).await;
    let a = ctx.adapter(None);
    let s = spec().with(|d| d.enabled = false).expect("spec");
    let plan = plans_of(&a, &s, &natives()).remove(0);
    ctx.sim
        .inject(Fault::status(500).on_method("PATCH"))
        .expect("valid fault");
    let err = a
        .create(account(), &plan)
        .await
        .expect_err("the PATCH fails");
    assert!(matches!(err, Error::Upstream(ref u) if u.kind == UpstreamErrorKind::Unavailable));
    assert!(ctx.sim.subscriptions(DEFAULT_WORKSPACE).is_empty());
    let methods: Vec<String> = ctx
        .sim
        .requests()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["POST", "PATCH", "DELETE"]);
    ctx.shutdown().await;
}

#[tokio::test]
async fn updates_patch_in_place_or_recreate() {
    let ctx = Ctx::start(BirdConfig::default()).await;
    let a = ctx.adapter(None);
    let old = plans_of(&a, &spec(), &natives()).remove(0);
    let created = a.create(account(), &old).await.expect("create");

    // Rotating the secret and changing filters: one PATCH, same id.
    let rotated = spec()
        .with(|d| {
            d.signing_secret = Some(Secret::new("whsec_rotated"));
            d.filters = vec![Filter {
                key: "channelId".into(),
                value: "c-9".into(),
            }];
        })
        .expect("spec");
    let new = plans_of(&a, &rotated, &natives()).remove(0);
    ctx.sim.clear_requests();
    let updated = a
        .update(account(), &created.id, &old, &new)
        .await
        .expect("update");
    assert_eq!(updated.id, created.id);
    let log = ctx.sim.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].body,
        Some(
            json!({"signingKey": "whsec_rotated", "eventFilters": [{"key": "channelId", "value": "c-9"}]})
        )
    );
    assert_eq!(
        ctx.sim.subscriptions(DEFAULT_WORKSPACE)[0]["signingKey"],
        "whsec_rotated"
    );

    // Removing the secret cannot be PATCHed: a new subscription replaces it.
    let unsigned = rotated.with(|d| d.signing_secret = None).expect("spec");
    let newer = plans_of(&a, &unsigned, &natives()).remove(0);
    let replaced = a
        .update(account(), &created.id, &new, &newer)
        .await
        .expect("recreate");
    assert_ne!(replaced.id, created.id);
    let stored = ctx.sim.subscriptions(DEFAULT_WORKSPACE);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], json!(replaced.id));
    assert_eq!(stored[0]["signingKey"], Value::Null);
    assert_eq!(
        stored[0]["eventFilters"],
        json!([{"key": "channelId", "value": "c-9"}])
    );

    // A subscription deleted behind our back is NotFound, so the engine recreates it.
    a.delete(account(), &replaced.id).await.expect("delete");
    let err = a
        .update(account(), &replaced.id, &newer, &old)
        .await
        .expect_err("gone");
    assert!(matches!(err, Error::Upstream(ref u) if u.kind == UpstreamErrorKind::NotFound));
    ctx.shutdown().await;
}
