//! Black-box tests of the Bird simulator over real HTTP.

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_sim::bird::{
    API_PREFIX, BirdConfig, BirdSim, DEFAULT_ACCESS_KEY, DEFAULT_ORGANIZATION, DEFAULT_WORKSPACE,
};
use switchboard_sim::faults::{Fault, REDACTED};
use switchboard_sim::{Running, serve};

struct Ctx {
    sim: BirdSim,
    running: Running,
    client: reqwest::Client,
}

impl Ctx {
    async fn start() -> Self {
        Self::with(BirdConfig::default()).await
    }

    async fn with(cfg: BirdConfig) -> Self {
        let sim = BirdSim::new(cfg);
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        let running = serve(sim.router(), addr).await.expect("bind");
        Self {
            sim,
            running,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.running.base_url)
    }

    fn subs_url(&self) -> String {
        self.url(&format!(
            "/workspaces/{DEFAULT_WORKSPACE}/webhook-subscriptions"
        ))
    }

    fn sub_url(&self, id: &str) -> String {
        format!("{}/{id}", self.subs_url())
    }

    fn authed(&self, method: Method, url: String) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .header("Authorization", format!("AccessKey {DEFAULT_ACCESS_KEY}"))
    }

    async fn call(&self, method: Method, url: String, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.authed(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await.expect("send");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("json body")
        };
        (status, value)
    }

    async fn create(&self, body: Value) -> Value {
        let (status, created) = self.call(Method::POST, self.subs_url(), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    async fn shutdown(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }
}

/// Seed 003's create example.
fn sample() -> Value {
    json!({
        "service": "channels",
        "event": "sms.outbound",
        "url": "https://example.com/webhook",
        "signingKey": "KeV+/HGoIQrxuE5YPCRR6AuQOJveldYNNhbVi1i22qk=",
        "eventFilters": [{"key": "channelId", "value": "58c44c1d-0000-4000-8000-000000000001"}],
        "template": "text"
    })
}

#[tokio::test]
async fn access_key_is_required() {
    let ctx = Ctx::start().await;
    for auth in [
        None,
        Some("AccessKey wrong"),
        Some(format!("Bearer {DEFAULT_ACCESS_KEY}").as_str()),
    ] {
        let mut req = ctx.client.get(ctx.subs_url());
        if let Some(value) = auth {
            req = req.header("Authorization", value);
        }
        let response = req.send().await.expect("send");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["code"], "Unauthorized");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("AccessKey"))
        );
    }
    assert_eq!(ctx.sim.requests().len(), 3);
    ctx.shutdown().await;
}

#[tokio::test]
async fn unknown_workspace_or_organization_is_404() {
    let ctx = Ctx::start().await;
    let (status, body) = ctx
        .call(
            Method::GET,
            ctx.url("/workspaces/00000000-0000-4000-8000-000000000000/webhook-subscriptions"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "The specified workspace was not found.");
    let (status, _) = ctx
        .call(
            Method::POST,
            ctx.url(&format!(
                "/organizations/nope/workspaces/{DEFAULT_WORKSPACE}/webhook-subscriptions"
            )),
            Some(sample()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(ctx.sim.subscriptions(DEFAULT_WORKSPACE).is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn create_returns_the_documented_object() {
    let ctx = Ctx::start().await;
    let created = ctx.create(sample()).await;
    let object = created.as_object().expect("object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "createdAt",
            "event",
            "eventFilters",
            "id",
            "organizationId",
            "reason",
            "service",
            "signingKey",
            "status",
            "template",
            "updatedAt",
            "url",
            "workspaceId"
        ]
    );
    let id = created["id"].as_str().expect("id");
    assert_eq!(id.len(), 36);
    assert_eq!(id.as_bytes()[14], b'4');
    assert_eq!(created["organizationId"], DEFAULT_ORGANIZATION);
    assert_eq!(created["workspaceId"], DEFAULT_WORKSPACE);
    assert_eq!(created["status"], "active");
    assert_eq!(created["signingKey"], sample()["signingKey"]);
    assert_eq!(created["eventFilters"], sample()["eventFilters"]);
    assert_eq!(created["template"], "text");

    // GET does not give the signing key back (third-party report, providers.md §3.2).
    let (status, fetched) = ctx.call(Method::GET, ctx.sub_url(id), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(fetched.get("signingKey").is_none());
    assert_eq!(fetched["url"], "https://example.com/webhook");
    assert_eq!(fetched["createdAt"], created["createdAt"]);

    let stored = ctx.sim.subscriptions(DEFAULT_WORKSPACE);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["signingKey"], sample()["signingKey"]);

    let control: Value = ctx
        .client
        .get(format!(
            "{}/_sim/bird/workspaces/{DEFAULT_WORKSPACE}/subscriptions",
            ctx.running.base_url
        ))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(control, json!(stored));
    ctx.shutdown().await;
}

#[tokio::test]
async fn organization_prefix_reaches_the_same_workspace() {
    let ctx = Ctx::start().await;
    let org_subs = ctx.url(&format!(
        "/organizations/{DEFAULT_ORGANIZATION}/workspaces/{DEFAULT_WORKSPACE}/webhook-subscriptions"
    ));
    let (status, created) = ctx
        .call(Method::POST, org_subs.clone(), Some(sample()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().expect("id");
    let (status, _) = ctx.call(Method::GET, ctx.sub_url(id), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ctx
        .call(Method::DELETE, format!("{org_subs}/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    ctx.shutdown().await;
}

#[tokio::test]
async fn schema_violations_are_400_with_details() {
    let ctx = Ctx::start().await;
    let (status, body) = ctx
        .call(
            Method::POST,
            ctx.subs_url(),
            Some(json!({
                "service": "email",
                "url": "https://127.0.0.1:8443/hook",
                "status": "inactive",
                "events": ["sms.outbound"]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "InvalidPayload");
    let details = body["details"].as_object().expect("details");
    let mut fields: Vec<&str> = details.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["event", "events", "service", "status", "url"]);
    assert!(
        details["url"][0]
            .as_str()
            .is_some_and(|m| m.contains("pattern"))
    );

    let response = ctx
        .authed(Method::POST, ctx.subs_url())
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(ctx.sim.subscriptions(DEFAULT_WORKSPACE).is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn unknown_events_and_filter_keys_are_422() {
    let ctx = Ctx::start().await;
    let mut body = sample();
    body["event"] = json!("sms.sideways");
    body["eventFilters"] = json!([{"key": "colour", "value": "red"}]);
    let (status, answer) = ctx.call(Method::POST, ctx.subs_url(), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["details"]["event"].is_array());
    assert!(answer["details"]["eventFilters.0.key"].is_array());
    ctx.shutdown().await;
}

#[tokio::test]
async fn five_per_event_and_filter_combination() {
    let ctx = Ctx::start().await;
    for i in 0..5 {
        let mut body = sample();
        body["url"] = json!(format!("https://h{i}.example.com/webhook"));
        ctx.create(body).await;
    }
    let (status, refused) = ctx.call(Method::POST, ctx.subs_url(), Some(sample())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["code"], "SubscriptionLimitExceeded");
    assert!(refused["message"].as_str().is_some_and(|m| m.contains('5')));

    // Another filter set, or another event, is another combination.
    let mut other = sample();
    other["eventFilters"] = json!([{"key": "channelId", "value": "other"}]);
    let moved = ctx.create(other).await;
    let mut inbound = sample();
    inbound["event"] = json!("sms.inbound");
    ctx.create(inbound).await;
    assert_eq!(ctx.sim.subscriptions(DEFAULT_WORKSPACE).len(), 7);

    // Moving a subscription into the full combination is refused too; the
    // filters' order does not make a new combination.
    let id = moved["id"].as_str().expect("id");
    let (status, _) = ctx
        .call(
            Method::PATCH,
            ctx.sub_url(id),
            Some(json!({"eventFilters": sample()["eventFilters"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, fetched) = ctx.call(Method::GET, ctx.sub_url(id), None).await;
    assert_eq!(fetched["eventFilters"][0]["value"], "other");
    ctx.shutdown().await;
}

#[tokio::test]
async fn filter_order_does_not_make_a_new_combination() {
    let ctx = Ctx::start().await;
    let filters = |a: &str, b: &str| {
        let mut body = sample();
        body["eventFilters"] = json!([{"key": a, "value": "x"}, {"key": b, "value": "y"}]);
        body
    };
    for _ in 0..3 {
        ctx.create(filters("channelId", "messageStatus")).await;
    }
    // Same pairs in another order: still the same combination.
    let mut reordered = filters("channelId", "messageStatus");
    reordered["eventFilters"] =
        json!([{"key": "messageStatus", "value": "y"}, {"key": "channelId", "value": "x"}]);
    ctx.create(reordered.clone()).await;
    ctx.create(reordered.clone()).await;
    let (status, _) = ctx
        .call(Method::POST, ctx.subs_url(), Some(reordered))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    ctx.shutdown().await;
}

#[tokio::test]
async fn patch_changes_only_the_fields_sent() {
    let ctx = Ctx::start().await;
    let created = ctx.create(sample()).await;
    let id = created["id"].as_str().expect("id");
    let (status, body) = ctx
        .call(
            Method::PATCH,
            ctx.sub_url(id),
            Some(json!({"status": "inactive", "url": "https://new.example.com/hook"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "inactive");
    assert_eq!(body["url"], "https://new.example.com/hook");
    assert_eq!(body["eventFilters"], created["eventFilters"]);
    assert_eq!(body["template"], "text");
    assert!(body.get("signingKey").is_none());
    let stored = &ctx.sim.subscriptions(DEFAULT_WORKSPACE)[0];
    assert_eq!(stored["signingKey"], sample()["signingKey"]);

    let (status, _) = ctx
        .call(
            Method::PATCH,
            ctx.sub_url(id),
            Some(json!({"signingKey": "rotated", "eventFilters": null, "template": "twilio"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let stored = &ctx.sim.subscriptions(DEFAULT_WORKSPACE)[0];
    assert_eq!(stored["signingKey"], "rotated");
    assert_eq!(stored["eventFilters"], Value::Null);
    assert_eq!(stored["template"], "twilio");

    // service and event are immutable; nothing changes.
    let (status, body) = ctx
        .call(
            Method::PATCH,
            ctx.sub_url(id),
            Some(json!({"event": "sms.inbound", "url": "https://x.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["details"]["event"][0]
            .as_str()
            .is_some_and(|m| m.contains("cannot be changed"))
    );
    let (status, _) = ctx
        .call(
            Method::PATCH,
            ctx.sub_url(id),
            Some(json!({"status": "paused"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let stored = &ctx.sim.subscriptions(DEFAULT_WORKSPACE)[0];
    assert_eq!(stored["event"], "sms.outbound");
    assert_eq!(stored["url"], "https://new.example.com/hook");
    assert_eq!(stored["status"], "inactive");

    let (status, _) = ctx
        .call(
            Method::PATCH,
            ctx.sub_url("00000000-0000-4000-8000-000000000000"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn delete_is_204_then_404() {
    let ctx = Ctx::start().await;
    let created = ctx.create(sample()).await;
    let id = created["id"].as_str().expect("id");
    let (status, body) = ctx.call(Method::DELETE, ctx.sub_url(id), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, body) = ctx.call(Method::GET, ctx.sub_url(id), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["message"],
        "The specified webhook subscription was not found."
    );
    let (status, _) = ctx.call(Method::DELETE, ctx.sub_url(id), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn list_pages_with_limit_and_page_token() {
    let ctx = Ctx::with(BirdConfig {
        page_size_max: 2,
        ..BirdConfig::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut body = sample();
        body["url"] = json!(format!("https://h{i}.example.com/webhook"));
        body["eventFilters"] = json!([{"key": "channelId", "value": format!("c{i}")}]);
        ids.push(
            ctx.create(body).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{}?limit=100", ctx.subs_url());
        if let Some(t) = &token {
            url.push_str(&format!("&pageToken={t}"));
        }
        let (status, page) = ctx.call(Method::GET, url, None).await;
        assert_eq!(status, StatusCode::OK);
        pages += 1;
        let results = page["results"].as_array().expect("results");
        assert!(results.len() <= 2);
        assert!(results.iter().all(|r| r.get("signingKey").is_none()));
        seen.extend(
            results
                .iter()
                .map(|r| r["id"].as_str().expect("id").to_owned()),
        );
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);

    let (_, first) = ctx
        .call(Method::GET, format!("{}?limit=1", ctx.subs_url()), None)
        .await;
    assert_eq!(first["results"].as_array().map(Vec::len), Some(1));
    for bad in ["limit=0", "limit=101", "limit=ten", "pageToken=garbage"] {
        let (status, body) = ctx
            .call(Method::GET, format!("{}?{bad}", ctx.subs_url()), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["details"].is_object(), "{bad}");
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn default_limit_is_ten() {
    let ctx = Ctx::start().await;
    for i in 0..11 {
        let mut body = sample();
        body["eventFilters"] = json!([{"key": "channelId", "value": format!("c{i}")}]);
        ctx.create(body).await;
    }
    let (_, page) = ctx.call(Method::GET, ctx.subs_url(), None).await;
    assert_eq!(page["results"].as_array().map(Vec::len), Some(10));
    assert!(page["nextPageToken"].is_string());
    ctx.shutdown().await;
}

#[tokio::test]
async fn available_webhooks_lists_events_and_filter_keys() {
    let ctx = Ctx::start().await;
    let url = ctx.url(&format!(
        "/workspaces/{DEFAULT_WORKSPACE}/available-webhooks"
    ));
    let (status, all) = ctx.call(Method::GET, url.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    let services: Vec<&str> = all["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["service"].as_str())
        .collect();
    assert_eq!(
        services,
        ["channels", "numbers", "payments", "conversations"]
    );

    let (_, channels) = ctx
        .call(Method::GET, format!("{url}?service=channels"), None)
        .await;
    let results = channels["results"].as_array().expect("results");
    assert_eq!(results.len(), 1);
    let outbound = results[0]["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["name"] == "sms.outbound")
        .expect("sms.outbound is offered");
    assert!(
        outbound["filterKeys"]
            .as_array()
            .expect("keys")
            .contains(&json!("channelId"))
    );

    let (status, _) = ctx
        .call(Method::GET, format!("{url}?service=mail"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    ctx.shutdown().await;
}

#[tokio::test]
async fn faults_and_the_request_log() {
    let ctx = Ctx::start().await;
    ctx.sim
        .inject(Fault::status(503).on_method("POST"))
        .expect("valid fault");
    let (status, _) = ctx.call(Method::POST, ctx.subs_url(), Some(sample())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ctx.sim.subscriptions(DEFAULT_WORKSPACE).is_empty());
    ctx.sim.inject(Fault::rate_limited(3)).expect("valid fault");
    let response = ctx
        .authed(Method::GET, ctx.subs_url())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "3");
    ctx.create(sample()).await;

    let log = ctx.sim.requests();
    assert_eq!(log.len(), 3);
    assert!(log[0].faulted && log[1].faulted && !log[2].faulted);
    assert_eq!(log[2].method, "POST");
    assert_eq!(
        log[2].path,
        format!("/workspaces/{DEFAULT_WORKSPACE}/webhook-subscriptions")
    );
    assert_eq!(log[2].headers["authorization"], REDACTED);
    assert_eq!(log[2].body.as_ref(), Some(&sample()));
    assert_eq!(log[2].status, Some(201));
    ctx.sim.clear_requests();
    assert!(ctx.sim.requests().is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let ctx = Ctx::start().await;
    let response = ctx.client.get(ctx.url("/nope")).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (status, body) = ctx
        .call(Method::PUT, ctx.sub_url("x"), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "MethodNotAllowed");
    ctx.shutdown().await;
}

#[tokio::test]
async fn workspaces_can_be_added_through_the_control_api() {
    let ctx = Ctx::start().await;
    let other = "11111111-1111-4111-8111-111111111111";
    let response = ctx
        .client
        .post(format!("{}/_sim/bird/workspaces", ctx.running.base_url))
        .json(&json!({"id": other}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, created) = ctx
        .call(
            Method::POST,
            ctx.url(&format!("/workspaces/{other}/webhook-subscriptions")),
            Some(sample()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // A subscription is scoped by its workspace.
    let id = created["id"].as_str().expect("id");
    let (status, _) = ctx.call(Method::GET, ctx.sub_url(id), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ctx.sim.subscriptions(other).len(), 1);
    assert!(ctx.sim.subscriptions(DEFAULT_WORKSPACE).is_empty());
    ctx.shutdown().await;
}
