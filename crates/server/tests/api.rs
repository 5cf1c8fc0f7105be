//! Black-box tests of the v1 API: a real server on port 0, a real database
//! (SQLite, and Postgres when configured) and the Talkover simulator over
//! real HTTP.

mod support;

use serde_json::{Value, json};
use switchboard_sim::faults::Fault;
use switchboard_store::StoreOptions;

use support::*;

async fn lifecycle(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;

    let created = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let sub = created.json();
    let id = sub["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sub_"));
    assert_eq!(
        created.headers["location"],
        format!("/v1/subscriptions/{id}").as_str()
    );
    assert_eq!(created.headers["etag"], "\"1\"");
    assert!(created.headers.contains_key("x-request-id"));
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["version"], 1);
    assert_eq!(
        sub["auth"],
        json!({"type": "basic", "username": "hook", "password_set": true})
    );
    assert_eq!(sub["signing_secret_set"], true);
    assert_eq!(sub["metadata"], json!({"team": "billing"}));
    assert_eq!(sub["native"].as_array().unwrap().len(), 1);
    assert!(!created.text.contains("SECRET"), "{}", created.text);

    // The simulator holds exactly one webhook with the translated fields.
    let hooks = env.sim_webhooks();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(sub["native"][0]["id"], hook["id"]);
    assert_eq!(hook["webhook_url"], "https://billing.example.com/hooks");
    assert_eq!(
        hook["events"],
        json!(["event_phone_call_ended", "event_action"])
    );
    assert_eq!(hook["webhook_secret"], "whsec-SECRET-2");
    assert_eq!(hook["timeout"], 20);
    assert_eq!(hook["authorization_scheme"], "basic");
    assert_eq!(hook["name"], format!("billing calls [{id}]"));

    let got = env
        .call("GET", &format!("/v1/subscriptions/{id}"), TOKEN_A, None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["url"], "https://billing.example.com/hooks");

    // PATCH sends only the changed field upstream.
    env.sim.clear_requests();
    let patched = env
        .call(
            "PATCH",
            &format!("/v1/subscriptions/{id}"),
            TOKEN_A,
            Some(json!({"url": "https://billing.example.com/v2", "metadata": {"owner": "ana"}})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["version"], 2);
    assert_eq!(
        patched.json()["metadata"],
        json!({"team": "billing", "owner": "ana"})
    );
    let sent = env.sim_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "PUT");
    assert_eq!(
        sent[0].body,
        Some(json!({"webhook_url": "https://billing.example.com/v2"}))
    );
    assert_eq!(
        env.sim_webhooks()[0]["webhook_url"],
        "https://billing.example.com/v2"
    );

    // Disable and enable switch the native webhook, not the toggle.
    let disabled = env
        .call(
            "POST",
            &format!("/v1/subscriptions/{id}/disable"),
            TOKEN_A,
            None,
        )
        .await;
    assert_eq!(disabled.status, 200);
    assert_eq!(disabled.json()["status"], "disabled");
    assert_eq!(disabled.json()["native"][0]["status"], "disabled");
    assert_eq!(env.sim_webhooks()[0]["enabled"], false);
    let enabled = env
        .call(
            "POST",
            &format!("/v1/subscriptions/{id}/enable"),
            TOKEN_A,
            None,
        )
        .await;
    assert_eq!(enabled.json()["status"], "active");
    assert_eq!(env.sim_webhooks()[0]["enabled"], true);
    assert!(
        env.sim_requests()
            .iter()
            .all(|r| !r.path.ends_with("/toggle"))
    );

    let deleted = env
        .call("DELETE", &format!("/v1/subscriptions/{id}"), TOKEN_A, None)
        .await;
    assert_eq!(deleted.status, 204);
    assert!(env.sim_webhooks().is_empty());
    let gone = env
        .call("GET", &format!("/v1/subscriptions/{id}"), TOKEN_A, None)
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.content_type(), "application/problem+json");
}

#[tokio::test]
async fn subscription_lifecycle() {
    each_backend!(lifecycle);
}

async fn paging(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut body = sub_body();
        body["url"] = json!(format!("https://billing.example.com/{i}"));
        let r = env
            .call("POST", "/v1/subscriptions", TOKEN_A, Some(body))
            .await;
        assert_eq!(r.status, 201);
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    env.call(
        "POST",
        &format!("/v1/subscriptions/{}/disable", ids[3]),
        TOKEN_A,
        None,
    )
    .await;
    let mut seen = Vec::new();
    let mut path = "/v1/subscriptions?limit=2".to_owned();
    loop {
        let page = env.call("GET", &path, TOKEN_A, None).await.json();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/subscriptions?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let disabled = env
        .call("GET", "/v1/subscriptions?status=disabled", TOKEN_A, None)
        .await
        .json();
    assert_eq!(disabled["data"].as_array().unwrap().len(), 1);
    let none = env
        .call("GET", "/v1/subscriptions?provider=other", TOKEN_A, None)
        .await
        .json();
    assert_eq!(none["data"], json!([]));
    let bad = env
        .call(
            "GET",
            "/v1/subscriptions?limit=0&cursor=x&colour=red",
            TOKEN_A,
            None,
        )
        .await;
    assert_eq!(bad.status, 422);
    let mut pointers = bad.pointers();
    pointers.sort();
    assert_eq!(pointers, ["/colour", "/cursor", "/limit"]);
}

#[tokio::test]
async fn list_pages_and_filters() {
    each_backend!(paging);
}

async fn tenancy(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let id = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/subscriptions/{id}");
    for (method, p) in [
        ("GET", path.clone()),
        ("DELETE", path.clone()),
        ("POST", format!("{path}/disable")),
    ] {
        let r = env.call(method, &p, TOKEN_B, None).await;
        assert_eq!(r.status, 404, "{method} {p}: {}", r.text);
    }
    let r = env
        .call("PATCH", &path, TOKEN_B, Some(json!({"name": "x"})))
        .await;
    assert_eq!(r.status, 404);
    assert!(env.list_all(TOKEN_B).await.is_empty());
    assert_eq!(env.list_all(TOKEN_A).await.len(), 1);
    assert_eq!(env.sim_webhooks().len(), 1, "nothing touched upstream");

    // A read-only token reads but cannot write.
    assert_eq!(env.call("GET", &path, TOKEN_A_READ, None).await.status, 200);
    let r = env.call("DELETE", &path, TOKEN_A_READ, None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["type"], "urn:switchboard:problem:forbidden");

    for token in ["", "wrong-token-0000"] {
        let r = env.call("GET", "/v1/subscriptions", token, None).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.content_type(), "application/problem+json");
    }
}

#[tokio::test]
async fn tenants_are_isolated_and_scopes_enforced() {
    each_backend!(tenancy);
}

async fn bad_input(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let post = |body: Value| env.call("POST", "/v1/subscriptions", TOKEN_A, Some(body));

    let r = env
        .raw(
            "POST",
            "/v1/subscriptions",
            TOKEN_A,
            "application/json",
            b"{\"provider\": ".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type(), "application/problem+json");
    assert_eq!(r.json()["type"], "urn:switchboard:problem:malformed");

    let r = env
        .raw(
            "POST",
            "/v1/subscriptions",
            TOKEN_A,
            "text/plain",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, 415);

    let big = json!({"provider": "talkover", "url": "https://x.example.com", "events": ["call.ended"], "metadata": {"x": "a".repeat(70_000)}});
    let r = post(big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.content_type(), "application/problem+json");

    let mut b = sub_body();
    b["colour"] = json!("red");
    let r = post(b).await;
    assert_eq!((r.status, r.pointers()), (422, vec!["/colour".to_owned()]));

    let mut b = sub_body();
    b["timeout_seconds"] = json!("soon");
    let r = post(b).await;
    assert_eq!(
        (r.status, r.pointers()),
        (422, vec!["/timeout_seconds".to_owned()])
    );

    let mut b = sub_body();
    b.as_object_mut().unwrap().remove("url");
    let r = post(b).await;
    assert_eq!((r.status, r.pointers()), (422, vec!["/url".to_owned()]));

    let mut b = sub_body();
    b["provider"] = json!("nope");
    let r = post(b).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.pointers(), ["/provider"]);
    assert!(
        r.text.contains("talkover"),
        "lists configured providers: {}",
        r.text
    );

    let mut b = sub_body();
    b["events"] = json!([
        "call.ended",
        "order.updated",
        "nope.nope",
        "native:Call_Completed"
    ]);
    let r = post(b).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.pointers(), ["/events/1", "/events/2", "/events/3"]);

    // Capabilities Talkover lacks: named field and provider.
    let mut b = sub_body();
    b["format"] = json!("xml");
    b["filters"] = json!([{"key": "channelId", "value": "c1"}]);
    b["url"] = json!(format!("https://example.com/{}", "a".repeat(500)));
    b["timeout_seconds"] = json!(200);
    let r = post(b).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.pointers(),
        ["/url", "/timeout_seconds", "/format", "/filters"]
    );
    assert!(
        r.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["provider"] == "talkover")
    );

    // Nothing reached the provider and nothing was stored.
    assert!(env.sim_requests().is_empty());
    assert!(env.list_all(TOKEN_A).await.is_empty());

    // Under `ignore` the unsupported fields are dropped with warnings.
    let mut b = sub_body();
    b["format"] = json!("xml");
    b["filters"] = json!([{"key": "channelId", "value": "c1"}]);
    b["on_unsupported"] = json!("ignore");
    let r = post(b).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let warnings = r.json()["warnings"].as_array().unwrap().clone();
    assert_eq!(warnings.len(), 2);
    assert!(warnings[0].as_str().unwrap().contains("format"));
    assert!(r.json().get("format").is_none());
    assert_eq!(r.json()["filters"], json!([]));

    let r = env.call("GET", "/v1/nothing-here", TOKEN_A, None).await;
    assert_eq!(
        (r.status, r.content_type()),
        (404, "application/problem+json")
    );
    let r = env.call("PUT", "/v1/subscriptions", TOKEN_A, None).await;
    assert_eq!(
        (r.status, r.content_type()),
        (405, "application/problem+json")
    );
}

#[tokio::test]
async fn bad_input_gets_precise_problems_and_changes_nothing() {
    each_backend!(bad_input);
}

async fn upstream_rejection(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    env.sim
        .inject(Fault::status(422).with_body(json!({
            "message": "The given data was invalid.",
            "errors": {"webhook_url": ["The webhook url format is invalid."]}
        })))
        .unwrap();
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.pointers(), ["/url"]);
    assert_eq!(r.json()["provider"], "talkover");
    assert!(
        r.json()["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("format is invalid")
    );

    let mut b = sub_body();
    b["account"] = json!("00000000-0000-4000-8000-00000000dead");
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(b))
        .await;
    assert_eq!((r.status, r.pointers()), (422, vec!["/account".to_owned()]));

    // Failures that outlast the step's retries (each create retry is
    // preceded by a look that finds nothing: the faults replace the
    // provider's handler, so nothing was applied).
    env.sim
        .inject(Fault::status(500).on_method("POST").times(100))
        .unwrap();
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.json()["type"],
        "urn:switchboard:problem:provider-unavailable"
    );

    env.sim.clear_faults();

    env.sim
        .inject(Fault::status(504).on_method("POST").times(100))
        .unwrap();
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 504);
    env.sim.clear_faults();

    // A Retry-After longer than the step may wait is passed on.

    env.sim.inject(Fault::rate_limited(9)).unwrap();
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "9");

    assert!(env.list_all(TOKEN_A).await.is_empty(), "nothing stored");
    assert!(
        env.sim_webhooks().is_empty(),
        "nothing left at the provider"
    );
}

#[tokio::test]
async fn provider_errors_map_to_problems_and_leave_nothing() {
    each_backend!(upstream_rejection);
}

async fn bad_credentials(store: &StoreOptions) {
    let env = start(
        store,
        Opts {
            provider_token: Some("talq_revoked".into()),
            ..Default::default()
        },
    )
    .await;
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(
        r.json()["type"],
        "urn:switchboard:problem:provider-credentials"
    );
    assert!(!r.text.contains("talq_revoked"));
    assert!(env.list_all(TOKEN_A).await.is_empty());

    // A provider nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let env = start(
        store,
        Opts {
            talkover_base_url: Some(format!("http://127.0.0.1:{port}/api/v1")),
            ..Default::default()
        },
    )
    .await;
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(
        r.json()["type"],
        "urn:switchboard:problem:provider-unavailable"
    );
    assert!(env.list_all(TOKEN_A).await.is_empty());
}

#[tokio::test]
async fn refused_credentials_and_unreachable_providers_are_502() {
    each_backend!(bad_credentials);
}

async fn failed_update_is_undone(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let sub = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await
        .json();
    let path = format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap());

    env.sim
        .inject(Fault::status(500).on_method("PUT").times(100))
        .unwrap();
    let r = env
        .call(
            "PATCH",
            &path,
            TOKEN_A,
            Some(json!({"url": "https://billing.example.com/v3"})),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    env.sim.clear_faults();
    let after = env.call("GET", &path, TOKEN_A, None).await;
    assert_eq!(after.json()["url"], "https://billing.example.com/hooks");
    assert_eq!(after.json()["status"], "active");
    assert_eq!(after.json()["version"], 1);
    assert_eq!(
        env.sim_webhooks()[0]["webhook_url"],
        "https://billing.example.com/hooks"
    );

    // A stale If-Match is refused before anything is sent.
    env.sim.clear_requests();
    let stale = env
        .client
        .patch(format!("{}{path}", env.base))
        .bearer_auth(TOKEN_A)
        .header("If-Match", "\"7\"")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let ok = env
        .client
        .patch(format!("{}{path}", env.base))
        .bearer_auth(TOKEN_A)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");

    let r = env
        .call(
            "PATCH",
            &path,
            TOKEN_A,
            Some(json!({"provider": "other", "account": "x"})),
        )
        .await;
    assert_eq!(
        (r.status, r.pointers()),
        (422, vec!["/provider".to_owned(), "/account".to_owned()])
    );

    // Deleting while the provider fails keeps the subscription.
    env.sim
        .inject(Fault::status(503).on_method("DELETE").times(100))
        .unwrap();
    // The sweep may hold the subscription for a moment, re-verifying the
    // unknown outcome of the failed PUT above (a 409 while it does).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let r = loop {
        let r = env.call("DELETE", &path, TOKEN_A, None).await;
        if r.status != 409 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(r.status, 502, "{}", r.text);
    env.sim.clear_faults();
    assert_eq!(
        env.call("GET", &path, TOKEN_A, None).await.json()["status"],
        "active"
    );
    assert_eq!(env.sim_webhooks().len(), 1);
}

#[tokio::test]
async fn failed_changes_are_undone() {
    each_backend!(failed_update_is_undone);
}

async fn preview_and_catalog(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let r = env
        .call(
            "POST",
            "/v1/subscriptions/preview",
            TOKEN_A,
            Some(sub_body()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = r.json();
    assert_eq!(p["requests"][0]["method"], "POST");
    assert!(
        p["requests"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/agents/{AGENT}/webhooks"))
    );
    assert_eq!(p["requests"][0]["body"]["webhook_secret"], "***");
    assert_eq!(p["requests"][0]["headers"]["Authorization"], "***");
    assert!(!r.text.contains("SECRET") && !r.text.contains(PROVIDER_TOKEN));
    assert!(env.sim_requests().is_empty(), "preview sends nothing");
    assert!(
        env.list_all(TOKEN_A).await.is_empty(),
        "preview stores nothing"
    );

    let providers = env.call("GET", "/v1/providers", TOKEN_A, None).await.json();
    assert_eq!(providers["data"][0]["key"], "talkover");
    assert_eq!(providers["data"][0]["capabilities"]["url_max_len"], 500);
    assert_eq!(
        providers["data"][0]["events"]["call.ended"],
        "event_phone_call_ended"
    );
    assert!(!providers.to_string().contains(PROVIDER_TOKEN));

    let events = env.call("GET", "/v1/events", TOKEN_A, None).await.json();
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "call.ended")
    );
    assert_eq!(events["native"]["talkover"].as_array().unwrap().len(), 19);

    let openapi = env
        .client
        .get(format!("{}/openapi.json", env.base))
        .send()
        .await
        .unwrap();
    let doc: Value = openapi.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/subscriptions",
        "/v1/subscriptions/{id}",
        "/v1/subscriptions/preview",
        "/v1/providers",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let health = env
        .client
        .get(format!("{}/healthz", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = env
        .client
        .get(format!("{}/readyz", env.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
}

#[tokio::test]
async fn preview_catalog_openapi_and_health() {
    each_backend!(preview_and_catalog);
}

async fn concurrent_changes(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let sub = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await
        .json();
    let path = format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap());
    // Hold the first change at the provider so the second arrives while it
    // is in flight; the second must be refused, not interleaved.
    env.sim
        .inject(Fault::latency(2000).on_method("PUT"))
        .unwrap();
    let first = env.call("PATCH", &path, TOKEN_A, Some(json!({"name": "first"})));
    let second = async {
        // Wait until the first change holds the claim (it is held at the
        // provider for two seconds, so this sees it long before it ends).
        let mut seen = false;
        for _ in 0..10_000 {
            if env.call("GET", &path, TOKEN_A, None).await.json()["status"] == "pending" {
                seen = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(seen, "the first change never showed as pending");
        env.call("PATCH", &path, TOKEN_A, Some(json!({"name": "second"})))
            .await
    };
    let (a, b) = tokio::join!(first, second);
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(b.status, 409, "{}", b.text);
    let now = env.call("GET", &path, TOKEN_A, None).await.json();
    assert_eq!(now["name"], "first");
    assert_eq!(now["status"], "active");
}

#[tokio::test]
async fn concurrent_changes_to_one_subscription_conflict() {
    each_backend!(concurrent_changes);
}
