//! Security behaviour over the real API: secret rotation pushed to the
//! provider, admin scope across tenants, the audit log, per-token rate
//! limits and header limits.

mod support;

use serde_json::json;
use switchboard_sim::faults::Fault;
use switchboard_store::StoreOptions;

use support::*;

async fn rotation(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let sub = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await
        .json();
    let id = sub["id"].as_str().unwrap();
    let path = format!("/v1/subscriptions/{id}/rotate-secret");

    env.sim.clear_requests();
    let r = env.call("POST", &path, TOKEN_A, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    let secret = r.json()["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    assert_eq!(env.sim_webhooks()[0]["webhook_secret"], secret.as_str());
    let sent = env.sim_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "PUT");
    assert_eq!(sent[0].body, Some(json!({"webhook_secret": secret})));
    let got = env
        .call("GET", &format!("/v1/subscriptions/{id}"), TOKEN_A, None)
        .await;
    assert!(!got.text.contains(&secret), "shown once only");

    let r = env
        .call(
            "POST",
            &path,
            TOKEN_A,
            Some(json!({"signing_secret": "whsec_chosen_by_caller"})),
        )
        .await;
    assert_eq!(r.json()["signing_secret"], "whsec_chosen_by_caller");
    assert_eq!(
        env.sim_webhooks()[0]["webhook_secret"],
        "whsec_chosen_by_caller"
    );

    // Refused: nothing changes.
    env.sim
        .inject(
            Fault::status(422)
                .with_body(json!({"message": "no", "errors": {"webhook_secret": ["bad"]}}))
                .on_method("PUT"),
        )
        .unwrap();
    let r = env.call("POST", &path, TOKEN_A, None).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        env.sim_webhooks()[0]["webhook_secret"],
        "whsec_chosen_by_caller"
    );
    let sub_path = format!("/v1/subscriptions/{id}");
    assert_eq!(
        env.call("GET", &sub_path, TOKEN_A, None).await.json()["status"],
        "active"
    );

    // Every write answered 500: whether the secret was applied cannot be
    // read back, and undoing fails the same way, so the subscription says
    // so (`failed`) rather than guess; the next rotation settles it.
    env.sim
        .inject(Fault::status(500).on_method("PUT").times(100))
        .unwrap();
    let r = env.call("POST", &path, TOKEN_A, None).await;
    assert_eq!(r.status, 500, "{}", r.text);
    env.sim.clear_faults();
    assert_eq!(
        env.call("GET", &sub_path, TOKEN_A, None).await.json()["status"],
        "failed"
    );
    let r = env.call("POST", &path, TOKEN_A, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        env.sim_webhooks()[0]["webhook_secret"],
        r.json()["signing_secret"]
    );
    assert_eq!(
        env.call("GET", &sub_path, TOKEN_A, None).await.json()["status"],
        "active"
    );
    let r = env
        .call("POST", &path, TOKEN_A, Some(json!({"signing_secret": ""})))
        .await;
    assert_eq!(
        (r.status, r.pointers()),
        (422, vec!["/signing_secret".to_owned()])
    );
    let r = env.call("POST", &path, TOKEN_B, None).await;
    assert_eq!(r.status, 404, "another tenant's subscription");
}

#[tokio::test]
async fn rotate_secret_is_pushed_to_the_provider_and_shown_once() {
    each_backend!(rotation);
}

async fn admin_and_audit(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let a = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await
        .json();
    let a_id = a["id"].as_str().unwrap().to_owned();
    let mut b_body = sub_body();
    b_body["url"] = json!("https://other.example.com/hooks");
    let b = env
        .call("POST", "/v1/subscriptions", TOKEN_B, Some(b_body))
        .await
        .json();
    let b_id = b["id"].as_str().unwrap().to_owned();

    // Admins see and act on every tenant's subscriptions.
    let all = env
        .call("GET", "/v1/subscriptions", TOKEN_ADMIN, None)
        .await
        .json();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let only_b = env
        .call(
            "GET",
            "/v1/subscriptions?tenant=tenant-b",
            TOKEN_ADMIN,
            None,
        )
        .await
        .json();
    assert_eq!(only_b["data"][0]["id"], b_id.as_str());
    let r = env
        .call(
            "GET",
            &format!("/v1/subscriptions/{a_id}"),
            TOKEN_ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = env
        .call(
            "PATCH",
            &format!("/v1/subscriptions/{a_id}"),
            TOKEN_ADMIN,
            Some(json!({"name": "by ops"})),
        )
        .await;
    assert_eq!(r.status, 200);
    // Tenants still cannot filter by tenant.
    let r = env
        .call("GET", "/v1/subscriptions?tenant=tenant-b", TOKEN_A, None)
        .await;
    assert_eq!(r.status, 422);

    let r = env
        .call(
            "PATCH",
            &format!("/v1/subscriptions/{a_id}"),
            TOKEN_A,
            Some(json!({"timeout_seconds": 999})),
        )
        .await;
    assert_eq!(r.status, 422);
    env.call(
        "DELETE",
        &format!("/v1/subscriptions/{b_id}"),
        TOKEN_B,
        None,
    )
    .await;

    // The audit log is for admins only.
    let r = env.call("GET", "/v1/audit", TOKEN_A, None).await;
    assert_eq!(r.status, 403);
    let log = env
        .call("GET", "/v1/audit?limit=200", TOKEN_ADMIN, None)
        .await;
    assert_eq!(log.status, 200, "{}", log.text);
    let entries = log.json()["data"].as_array().unwrap().clone();
    let ops: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("create".into(), "a".into(), "201".into()),
            ("create".into(), "b".into(), "201".into()),
            ("update".into(), "ops".into(), "200".into()),
            ("update".into(), "a".into(), "422 validation".into()),
            ("delete".into(), "b".into(), "204".into()),
        ]
    );
    let rename = &entries[2];
    assert_eq!(
        rename["tenant"], "tenant-a",
        "recorded under the subscription's tenant"
    );
    assert_eq!(
        rename["diff"],
        json!({"name": {"from": "billing calls", "to": "by ops"}})
    );
    assert!(rename["request_id"].as_str().unwrap().starts_with("req_"));
    assert!(!log.text.contains("SECRET"), "no secret in the audit log");
    let page = env
        .call("GET", "/v1/audit?limit=2", TOKEN_ADMIN, None)
        .await
        .json();
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = env
        .call(
            "GET",
            &format!("/v1/audit?limit=2&cursor={cursor}"),
            TOKEN_ADMIN,
            None,
        )
        .await
        .json();
    assert_eq!(next["data"][0]["id"], entries[2]["id"]);
    let only_b = env
        .call("GET", "/v1/audit?tenant=tenant-b", TOKEN_ADMIN, None)
        .await
        .json();
    assert_eq!(only_b["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn admins_cross_tenants_and_every_change_is_audited() {
    each_backend!(admin_and_audit);
}

#[tokio::test]
async fn per_token_rate_limit_and_header_limit() {
    let store = switchboard_store::testing::sqlite();
    let env = start(
        &store,
        Opts {
            tweak: Some(|c| {
                c.limits.per_token_rps = 1;
                c.limits.per_token_burst = 3;
            }),
            ..Default::default()
        },
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            env.call("GET", "/v1/subscriptions", TOKEN_A, None)
                .await
                .status,
            200
        );
    }
    let r = env.call("GET", "/v1/subscriptions", TOKEN_A, None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.json()["type"], "urn:switchboard:problem:rate-limited");
    // Another token has its own budget.
    assert_eq!(
        env.call("GET", "/v1/subscriptions", TOKEN_B, None)
            .await
            .status,
        200
    );

    let big = env
        .client
        .get(format!("{}/healthz", env.base))
        .header("x-padding", "a".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 431);
    assert_eq!(big.headers()["content-type"], "application/problem+json");
}

async fn url_policy(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    for (url, says) in [
        ("http://billing.example.com/hooks", "https"),
        ("https://10.1.2.3/hooks", "private"),
        (
            "https://169.254.169.254/latest/meta-data",
            "169.254.169.254",
        ),
        ("https://localhost:8443/hooks", "localhost"),
        ("https://[::ffff:10.0.0.1]/x", "10.0.0.1"),
    ] {
        let mut b = sub_body();
        b["url"] = json!(url);
        let r = env
            .call("POST", "/v1/subscriptions", TOKEN_A, Some(b.clone()))
            .await;
        assert_eq!(
            (r.status, r.pointers()),
            (422, vec!["/url".to_owned()]),
            "{url}: {}",
            r.text
        );
        assert!(r.text.contains(says), "{url}: {}", r.text);
        let r = env
            .call("POST", "/v1/subscriptions/preview", TOKEN_A, Some(b))
            .await;
        assert_eq!(r.status, 422, "preview applies the policy too");
    }
    assert!(
        env.sim_requests().is_empty(),
        "refused before any upstream call"
    );
    let sub = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await
        .json();
    let r = env
        .call(
            "PATCH",
            &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()),
            TOKEN_A,
            Some(json!({"url": "https://192.168.0.10/hooks"})),
        )
        .await;
    assert_eq!((r.status, r.pointers()), (422, vec!["/url".to_owned()]));

    // An operator can allow-list a subnet.
    let env = start(
        store,
        Opts {
            tweak: Some(|c| c.policy.allowed_subnets = vec!["10.1.0.0/16".into()]),
            ..Default::default()
        },
    )
    .await;
    let mut b = sub_body();
    b["url"] = json!("https://10.1.2.3/hooks");
    assert_eq!(
        env.call("POST", "/v1/subscriptions", TOKEN_A, Some(b))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn the_callback_url_policy_applies_to_create_patch_and_preview() {
    each_backend!(url_policy);
}

/// A provider that redirects is an upstream error naming it; the redirect
/// is never followed, so the provider's credentials and the signing secret
/// in the body never reach the other origin.
async fn redirects(store: &StoreOptions) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let collector = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { axum::http::StatusCode::CREATED }
    });
    let collector = switchboard_sim::serve(collector, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let elsewhere = collector.base_url.clone();
    let redirector = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let to = format!("{elsewhere}{uri}");
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, to)],
            )
        }
    });
    let redirector = switchboard_sim::serve(redirector, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let env = start(
        store,
        Opts {
            talkover_base_url: Some(format!("{}/api/v1", redirector.base_url)),
            ..Default::default()
        },
    )
    .await;
    let r = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    let problem = r.json();
    assert_eq!(problem["type"], "urn:switchboard:problem:provider-protocol");
    assert_eq!(problem["provider"], "talkover");
    assert_eq!(problem["upstream_status"], 307);
    assert_eq!(seen.load(Ordering::SeqCst), 0, "the redirect was followed");
    assert!(env.list_all(TOKEN_A).await.is_empty());
}

#[tokio::test]
async fn provider_redirects_are_never_followed() {
    each_backend!(redirects);
}
