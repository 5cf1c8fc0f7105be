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
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
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
    env.sim.inject(Fault::rate_limited(1)).unwrap();
    let limited = post_keyed(&env, TOKEN_A, "key-4", &sub_body()).await;
    assert_eq!(limited.status, 503);
    let retried = post_keyed(&env, TOKEN_A, "key-4", &sub_body()).await;
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert!(retried.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_and_conflict() {
    each_backend!(idempotency);
}
