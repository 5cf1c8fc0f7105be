//! Unknown outcomes over the real API: a provider that applies a request
//! and loses the answer, answers 500 after applying, or applies it after
//! Switchboard gave up. Every change must end with the store and the
//! provider agreeing, with exactly one webhook per subscription.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_sim::faults::Fault;
use switchboard_store::StoreOptions;

use support::*;

/// Creates a subscription; returns its path.
async fn create(env: &Env) -> String {
    format!("/v1/subscriptions/{}", env.create_sub().await)
}

/// The store's view and the provider's agree on the one webhook.
async fn assert_agree(env: &Env, path: &str) -> Value {
    let sub = env.call("GET", path, TOKEN_A, None).await.json();
    let hooks = env.sim_webhooks();
    assert_eq!(hooks.len(), 1, "exactly one webhook: {hooks:?}");
    assert_eq!(sub["native"][0]["id"], hooks[0]["id"], "{sub}");
    assert_eq!(hooks[0]["webhook_url"], sub["url"]);
    assert_eq!(hooks[0]["enabled"], sub["enabled"]);
    sub
}

async fn lost_answers(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;

    // Create: applied, then answered 500.
    env.sim
        .inject(Fault::status(500).on_method("POST").after_apply())
        .unwrap();
    let path = create(&env).await;
    assert_agree(&env, &path).await;

    // PATCH: applied, answer lost. The update is sent again (it carries
    // the whole change) and both sides show the new URL.
    env.sim
        .inject(Fault::drop_connection().on_method("PUT").after_apply())
        .unwrap();
    let r = env
        .call(
            "PATCH",
            &path,
            TOKEN_A,
            Some(json!({"url": "https://billing.example.com/v2"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sub = assert_agree(&env, &path).await;
    assert_eq!(sub["url"], "https://billing.example.com/v2");

    // Disable: applied, then answered 502.
    env.sim
        .inject(Fault::status(502).on_method("PUT").after_apply())
        .unwrap();
    let r = env
        .call("POST", &format!("{path}/disable"), TOKEN_A, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sub = assert_agree(&env, &path).await;
    assert_eq!(sub["status"], "disabled");

    // Delete: applied, answer lost; the repeat finds it gone.
    env.sim
        .inject(Fault::drop_connection().on_method("DELETE").after_apply())
        .unwrap();
    let r = env.call("DELETE", &path, TOKEN_A, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(env.sim_webhooks().is_empty());
    assert!(env.list_all(TOKEN_A).await.is_empty());
}

#[tokio::test]
async fn lost_answers_leave_both_sides_agreeing() {
    each_backend!(lost_answers);
}

/// Verification cannot tell a PATCH refused by a 5xx storm from one
/// applied, so it reads the webhook: still at the old URL, the change
/// failed cleanly and nothing is marked failed.
async fn refused_update(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let path = create(&env).await;
    env.sim
        .inject(Fault::status(503).on_method("PUT").times(100))
        .unwrap();
    let r = env
        .call(
            "PATCH",
            &path,
            TOKEN_A,
            Some(json!({"url": "https://billing.example.com/v2"})),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    env.sim.clear_faults();
    let sub = assert_agree(&env, &path).await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["url"], "https://billing.example.com/hooks");
    let ops = env
        .call("GET", &format!("{path}/operations"), TOKEN_A, None)
        .await
        .json();
    let steps: Vec<&str> = ops["data"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"unknown"), "{steps:?}");
    assert_eq!(steps.last(), Some(&"absent"), "{steps:?}");
}

#[tokio::test]
async fn a_refused_update_is_verified_not_guessed() {
    each_backend!(refused_update);
}

/// A provider slower than the attempt timeout plus the margin: the look
/// after the timeout finds nothing, the create is sent again, and the
/// first one lands afterwards. The sweep finds the late one (by the
/// marker in its name), removes it, and says so in the history.
async fn late_landing(store: &StoreOptions) {
    let env = start(
        store,
        Opts {
            tweak: Some(|c| {
                c.limits.upstream_timeout_ms = 500;
                c.reliability.unknown_outcome_margin_ms = 100;
                c.reliability.verify_window_ms = 10_000;
                c.reliability.maintenance_interval_ms = 100;
                c.reliability.operation_lease_ms = 1_000;
            }),
            ..Default::default()
        },
    )
    .await;
    env.sim
        .inject(Fault::latency(1_500).on_method("POST"))
        .unwrap();
    let path = create(&env).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // First the late one lands (two webhooks), then the sweep removes it.
    while env.sim_webhooks().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "it never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while env.sim_webhooks().len() > 1 {
        assert!(std::time::Instant::now() < deadline, "never swept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_agree(&env, &path).await;
    let ops = env
        .call("GET", &format!("{path}/operations"), TOKEN_A, None)
        .await
        .json();
    let verify = ops["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "verify")
        .cloned()
        .expect("the sweep journals what it did");
    assert_eq!(verify["steps"][0]["action"], "remove-late", "{verify}");
}

#[tokio::test]
async fn a_create_landing_after_its_retry_is_swept() {
    each_backend!(late_landing);
}
