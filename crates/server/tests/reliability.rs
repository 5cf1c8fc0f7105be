//! Reliability behaviour over the real API: idempotency keys.

mod support;

use serde_json::json;
use switchboard_sim::faults::Fault;
use switchboard_store::StoreOptions;

use support::*;

async fn post_keyed(env: &Env, token: &str, key: &str, body: &serde_json::Value) -> Resp {
    let r = env
        .client
        .post(format!("{}/v1/subscriptions", env.base))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    Resp::read(r).await
}

async fn idempotency(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let first = post_keyed(&env, TOKEN_A, "key-1", &sub_body()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = post_keyed(&env, TOKEN_A, "key-1", &sub_body()).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.text, first.text, "the first response, replayed");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert_eq!(env.list_all(TOKEN_A).await.len(), 1, "created once");
    assert_eq!(env.sim_webhooks().len(), 1);

    let mut other = sub_body();
    other["name"] = json!("something else");
    let r = post_keyed(&env, TOKEN_A, "key-1", &other).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("different request"));

    // Keys are scoped to the tenant.
    let b = post_keyed(&env, TOKEN_B, "key-1", &sub_body()).await;
    assert_eq!(b.status, 201);
    assert_ne!(b.json()["id"], first.json()["id"]);

    // A refused request is replayed as refused.
    let mut bad = sub_body();
    bad["timeout_seconds"] = json!(999);
    let r1 = post_keyed(&env, TOKEN_A, "key-2", &bad).await;
    let r2 = post_keyed(&env, TOKEN_A, "key-2", &bad).await;
    assert_eq!((r1.status, r2.status), (422, 422));
    assert_eq!(r2.headers["content-type"], "application/problem+json");

    // A second request while the first is running is a conflict.
    env.sim
        .inject(Fault::latency(1500).on_method("POST"))
        .unwrap();
    let body = sub_body();
    let slow = post_keyed(&env, TOKEN_A, "key-3", &body);
    let racing = async {
        // The first request holds the key once the simulator has it.
        let mut seen = false;
        for _ in 0..10_000 {
            if env
                .sim_requests()
                .iter()
                .any(|r| r.method == "POST" && r.status.is_none())
            {
                seen = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(seen, "the first request reached the provider");
        post_keyed(&env, TOKEN_A, "key-3", &sub_body()).await
    };
    let (a, b) = tokio::join!(slow, racing);
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(b.status, 409, "{}", b.text);
    // After the first finished, the key replays.
    let c = post_keyed(&env, TOKEN_A, "key-3", &sub_body()).await;
    assert_eq!(c.text, a.text);

    // A provider outage is not kept: the retry runs again and succeeds.
    env.sim.inject(Fault::rate_limited(1).times(100)).unwrap();
    let limited = post_keyed(&env, TOKEN_A, "key-4", &sub_body()).await;
    assert_eq!(limited.status, 503);
    env.sim.clear_faults();
    let retried = post_keyed(&env, TOKEN_A, "key-4", &sub_body()).await;
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert!(retried.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_and_conflict() {
    each_backend!(idempotency);
}

/// Calls the Talkover simulator directly, as someone changing things at the
/// provider behind Switchboard's back.
async fn at_provider(
    env: &Env,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let base = env.sim_base.clone();
    let mut req = env
        .client
        .request(
            method.parse().unwrap(),
            format!("{base}/api/v1/agents/{AGENT}/webhooks{path}"),
        )
        .bearer_auth(PROVIDER_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    assert!(
        r.status().is_success(),
        "provider call {method} {path}: {}",
        r.status()
    );
    r.json().await.unwrap_or(serde_json::Value::Null)
}

async fn reconciliation(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let sub = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await
        .json();
    let id = sub["id"].as_str().unwrap().to_owned();
    let native = sub["native"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/subscriptions/{id}/reconcile");

    // Nothing differs: nothing found.
    let r = env.call("POST", &path, TOKEN_A, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["findings"], json!([]));
    assert!(r.json()["last_reconciled_at"].is_string());

    // Deleted at the provider: recreated.
    at_provider(&env, "DELETE", &format!("/{native}"), None).await;
    let r = env.call("POST", &path, TOKEN_A, None).await.json();
    assert_eq!(r["status"], "active");
    assert_eq!(r["findings"][0]["kind"], "missing");
    assert_eq!(r["findings"][0]["repaired"], true);
    let hooks = env.sim_webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(r["native"][0]["id"], hooks[0]["id"]);
    assert_eq!(
        hooks[0]["webhook_secret"], "whsec-SECRET-2",
        "recreated from the plan, secret included"
    );

    // Changed at the provider: replaced by one matching the plan.
    let current = hooks[0]["id"].as_str().unwrap().to_owned();
    at_provider(
        &env,
        "PUT",
        &format!("/{current}"),
        Some(json!({"webhook_url": "https://evil.example.com/x"})),
    )
    .await;
    let r = env.call("POST", &path, TOKEN_A, None).await.json();
    assert_eq!(r["findings"][0]["kind"], "drifted");
    assert!(
        r["findings"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("evil.example.com")
    );
    let hooks = env.sim_webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["webhook_url"], "https://billing.example.com/hooks");

    // A lookalike nobody recorded: reported, removed only on request.
    at_provider(
        &env,
        "POST",
        "",
        Some(json!({"name": "copy", "webhook_url": "https://billing.example.com/hooks", "events": ["event_action"]})),
    )
    .await;
    let r = env.call("POST", &path, TOKEN_A, None).await.json();
    assert_eq!(r["findings"][0]["kind"], "unknown");
    assert_eq!(r["findings"][0]["repaired"], false);
    assert_eq!(
        r["status"], "active",
        "an unknown lookalike does not degrade"
    );
    assert_eq!(env.sim_webhooks().len(), 2);
    let r = env
        .call(
            "POST",
            &format!("{path}?remove_unknown=true"),
            TOKEN_A,
            None,
        )
        .await
        .json();
    assert_eq!(r["findings"][0]["repaired"], true);
    assert_eq!(env.sim_webhooks().len(), 1);

    // A repair the provider refuses leaves the subscription degraded.
    let current = env.sim_webhooks()[0]["id"].as_str().unwrap().to_owned();
    at_provider(&env, "DELETE", &format!("/{current}"), None).await;
    env.sim
        .inject(Fault::status(500).on_method("POST").times(100))
        .unwrap();
    let r = env.call("POST", &path, TOKEN_A, None).await.json();
    assert_eq!(r["status"], "degraded", "{r}");
    assert_eq!(r["findings"][0]["repaired"], false);
    env.sim.clear_faults();
    // The next pass repairs it.
    let r = env.call("POST", &path, TOKEN_A, None).await.json();
    assert_eq!(r["status"], "active");
    assert_eq!(env.sim_webhooks().len(), 1);

    let history = env
        .call(
            "GET",
            &format!("/v1/subscriptions/{id}/operations"),
            TOKEN_A,
            None,
        )
        .await
        .json();
    let kinds: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.last(), Some(&"create"));
    assert_eq!(kinds.iter().filter(|k| **k == "reconcile").count(), 7);
    assert_eq!(history["data"][0]["actor"], "a");
}

#[tokio::test]
async fn reconcile_repairs_drift_and_reports_lookalikes() {
    each_backend!(reconciliation);
}

/// Reads a subscription until `done` holds (the work runs on in the
/// server after a 202), for at most 30 s.
async fn until(
    env: &Env,
    path: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v = env.call("GET", path, TOKEN_A, None).await.json();
        if done(&v) || std::time::Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn budget(store: &StoreOptions) {
    let env = start(
        store,
        Opts {
            tweak: Some(|c| c.limits.upstream_budget_ms = 200),
            ..Default::default()
        },
    )
    .await;
    // Slower than the budget: 202 pending, then it completes.
    env.sim
        .inject(Fault::latency(800).on_method("POST"))
        .unwrap();
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json()["status"], "pending");
    let location = r.headers["location"].to_str().unwrap().to_owned();
    let done = until(&env, &location, |v| v["status"] != "pending").await;
    assert_eq!(done["status"], "active");
    assert_eq!(done["native"].as_array().unwrap().len(), 1);
    assert_eq!(env.sim_webhooks().len(), 1);

    // Slower than the budget and then refused: the subscription stays,
    // `failed` with the provider's error, and nothing is left upstream.
    env.sim
        .inject(Fault {
            latency_ms: 800,
            ..Fault::status(422)
                .with_body(json!({"message": "upstream exploded"}))
                .on_method("POST")
        })
        .unwrap();
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    let location = r.headers["location"].to_str().unwrap().to_owned();
    let ended = until(&env, &location, |v| v["status"] != "pending").await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert!(
        ended["last_error"]
            .as_str()
            .unwrap()
            .contains("upstream exploded")
    );
    assert_eq!(ended["native"], json!([]));
    assert_eq!(
        env.sim_webhooks().len(),
        1,
        "only the first subscription's webhook"
    );
}

#[tokio::test]
async fn slow_creates_answer_202_and_finish_in_the_background() {
    each_backend!(budget);
}

async fn converge(store: &StoreOptions) {
    let env = start(
        store,
        Opts {
            tweak: Some(|c| c.limits.upstream_attempts = 4),
            ..Default::default()
        },
    )
    .await;
    // A 5xx storm the provider says it did not act on, then success.
    env.sim
        .inject(Fault::status(503).on_method("POST").times(2))
        .unwrap();
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(env.sim_webhooks().len(), 1, "retried, created once");
    let id = r.json()["id"].as_str().unwrap().to_owned();

    // 429 with Retry-After is honoured, then the change goes through.
    env.sim
        .inject(Fault::rate_limited(1).on_method("PUT"))
        .unwrap();
    let r = env
        .call(
            "PATCH",
            &format!("/v1/subscriptions/{id}"),
            TOKEN_A,
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let puts: Vec<_> = env
        .sim_requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 2, "one refused, one applied");
    assert!(puts[0].faulted && !puts[1].faulted);

    // A dropped connection on an idempotent call is retried.
    env.sim
        .inject(Fault::drop_connection().on_method("PUT"))
        .unwrap();
    let r = env
        .call(
            "POST",
            &format!("/v1/subscriptions/{id}/disable"),
            TOKEN_A,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(env.sim_webhooks()[0]["enabled"], false);

    // A create whose connection dropped before the provider acted: once
    // it can no longer land, a look finds nothing, and it is sent again.
    env.sim
        .inject(Fault::drop_connection().on_method("POST"))
        .unwrap();
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(env.sim_webhooks().len(), 2);

    // Applied, then the answer lost: the look finds it and it is adopted,
    // not created twice.
    env.sim
        .inject(Fault::drop_connection().on_method("POST").after_apply())
        .unwrap();
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(env.sim_webhooks().len(), 3, "one webhook per subscription");
    let adopted = r.json()["native"][0]["id"].clone();
    assert!(
        env.sim_webhooks().iter().any(|w| w["id"] == adopted),
        "the recorded id is the provider's"
    );
    assert_eq!(env.list_all(TOKEN_A).await.len(), 3);
}

#[tokio::test]
async fn transient_provider_failures_converge() {
    each_backend!(converge);
}
