//! Black-box tests of the Talkover simulator over real HTTP.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_sim::faults::{Fault, REDACTED};
use switchboard_sim::talkover::{
    API_PREFIX, DEFAULT_AGENT, DEFAULT_TOKEN, TalkoverConfig, TalkoverSim,
};
use switchboard_sim::{Running, serve};

struct Ctx {
    sim: TalkoverSim,
    running: Running,
    client: reqwest::Client,
}

impl Ctx {
    async fn start() -> Self {
        let sim = TalkoverSim::new(TalkoverConfig::default());
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

    fn webhooks_url(&self) -> String {
        self.url(&format!("/agents/{DEFAULT_AGENT}/webhooks"))
    }

    fn webhook_url(&self, id: &str) -> String {
        format!("{}/{id}", self.webhooks_url())
    }

    fn authed(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.client.request(method, url).bearer_auth(DEFAULT_TOKEN)
    }

    async fn create(&self, body: Value) -> Value {
        let response = self
            .authed(reqwest::Method::POST, self.webhooks_url())
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    async fn shutdown(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }
}

fn sample() -> Value {
    json!({
        "name": "My Webhook",
        "webhook_url": "https://example.com/webhook",
        "webhook_secret": "optional_secret_for_hmac",
        "events": ["event_phone_call_started", "event_phone_call_ended"],
        "timeout": 30,
        "max_retries": 3,
        "enabled": true
    })
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let ctx = Ctx::start().await;
    let (status, body) = json_of(
        ctx.client
            .get(ctx.webhooks_url())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({ "message": "Missing Bearer Token" }));

    let (status, body) = json_of(
        ctx.client
            .get(ctx.webhooks_url())
            .bearer_auth("talq_wrong")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].is_string());
    ctx.shutdown().await;
}

#[tokio::test]
async fn unknown_agent_is_404() {
    let ctx = Ctx::start().await;
    let (status, body) = json_of(
        ctx.authed(
            reqwest::Method::GET,
            ctx.url("/agents/00000000-0000-4000-8000-000000000000/webhooks"),
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "success": false, "message": "Agent not found in this environment." })
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn create_returns_documented_object_without_secret() {
    let ctx = Ctx::start().await;
    let body = ctx
        .create(json!({
            "name": "My Webhook",
            "webhook_url": "https://example.com/webhook",
            "webhook_secret": "optional_secret_for_hmac",
            "events": ["event_phone_call_started", "event_phone_call_ended"],
            "http_method": "PUT",
            "authorization_scheme": "bearer",
            "custom_headers": [{ "key": "X-Route", "value": "a" }],
            "payload_templates": { "event_phone_call_ended": { "id": "{{call.id}}" } },
            "not_a_field": 1
        }))
        .await;
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["message"], json!("Webhook created successfully"));
    let data = body["data"].as_object().expect("data object");
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "agent_id",
            "created_at",
            "enabled",
            "events",
            "events_count",
            "id",
            "max_retries",
            "name",
            "status",
            "timeout",
            "updated_at",
            "webhook_url"
        ]
    );
    let id = data["id"].as_str().expect("id string");
    assert_eq!(id.len(), 36);
    assert_eq!(id.as_bytes()[14], b'4');
    assert_eq!(data["agent_id"], json!(DEFAULT_AGENT));
    assert_eq!(data["name"], json!("My Webhook"));
    assert_eq!(data["webhook_url"], json!("https://example.com/webhook"));
    assert_eq!(
        data["events"],
        json!(["event_phone_call_started", "event_phone_call_ended"])
    );
    assert_eq!(data["timeout"], json!(30));
    assert_eq!(data["max_retries"], json!(3));
    assert_eq!(data["enabled"], json!(true));
    assert_eq!(data["events_count"], json!(2));
    assert_eq!(data["status"], json!("active"));
    let created = data["created_at"].as_str().expect("timestamp");
    assert_eq!(created.len(), "2025-09-03T23:19:51.000000Z".len());
    assert!(created.ends_with(".000000Z"));
    assert_eq!(data["updated_at"], data["created_at"]);

    let stored = ctx.sim.webhooks(DEFAULT_AGENT);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0]["webhook_secret"],
        json!("optional_secret_for_hmac")
    );
    assert_eq!(stored[0]["http_method"], json!("PUT"));
    assert_eq!(stored[0]["authorization_scheme"], json!("bearer"));
    assert_eq!(
        stored[0]["custom_headers"],
        json!([{ "key": "X-Route", "value": "a" }])
    );
    assert_eq!(
        stored[0]["payload_templates"],
        json!({ "event_phone_call_ended": { "id": "{{call.id}}" } })
    );
    assert!(stored[0].get("not_a_field").is_none());

    let (status, fetched) = json_of(
        ctx.authed(reqwest::Method::GET, ctx.webhook_url(id))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, json!({ "success": true, "data": body["data"] }));

    let (status, control) = json_of(
        ctx.client
            .get(format!(
                "{}/_sim/talkover/agents/{DEFAULT_AGENT}/webhooks",
                ctx.running.base_url
            ))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(control, json!(stored));
    ctx.shutdown().await;
}

#[tokio::test]
async fn defaults_apply_and_list_has_the_catalogue() {
    let ctx = Ctx::start().await;
    let created = ctx
        .create(json!({
            "name": "Minimal",
            "webhook_url": "http://localhost:9000/hook",
            "events": ["event_action"]
        }))
        .await;
    let stored = ctx.sim.webhooks(DEFAULT_AGENT);
    assert_eq!(stored[0]["webhook_secret"], Value::Null);
    assert_eq!(stored[0]["http_method"], json!("POST"));
    assert_eq!(stored[0]["authorization_scheme"], json!("none"));

    let (status, body) = json_of(
        ctx.authed(reqwest::Method::GET, ctx.webhooks_url())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["data"]["webhooks"], json!([created["data"]]));
    let events = body["data"]["available_events"]
        .as_object()
        .expect("catalogue");
    assert_eq!(events.len(), 19);
    assert!(events.contains_key("event_phone_call_started"));
    assert!(events.contains_key("event_user_connected"));
    ctx.shutdown().await;
}

#[tokio::test]
async fn validation_reports_every_field_at_once() {
    let ctx = Ctx::start().await;
    let long_url = format!("https://example.com/{}", "a".repeat(500));
    let (status, body) = json_of(
        ctx.authed(reqwest::Method::POST, ctx.webhooks_url())
            .json(&json!({
                "webhook_url": long_url,
                "events": ["event_phone_call_started", "event_not_real"],
                "timeout": 200
            }))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({
            "message": "The given data was invalid.",
            "errors": {
                "name": ["The name field is required."],
                "webhook_url": ["The webhook url field must not be greater than 500 characters."],
                "events.1": ["The selected events.1 is invalid."],
                "timeout": ["The timeout field must be between 5 and 120."]
            }
        })
    );
    assert!(ctx.sim.webhooks(DEFAULT_AGENT).is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn malformed_json_is_empty_input() {
    let ctx = Ctx::start().await;
    let (status, body) = json_of(
        ctx.authed(reqwest::Method::POST, ctx.webhooks_url())
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = body["errors"].as_object().expect("errors");
    let mut keys: Vec<&str> = errors.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["events", "name", "webhook_url"]);
    ctx.shutdown().await;
}

#[tokio::test]
async fn put_changes_only_sent_fields() {
    let ctx = Ctx::start().await;
    let created = ctx.create(sample()).await;
    let id = created["data"]["id"].as_str().expect("id");
    let (status, body) = json_of(
        ctx.authed(reqwest::Method::PUT, ctx.webhook_url(id))
            .json(&json!({ "timeout": 60, "events": ["event_action"] }))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], json!("Webhook updated successfully"));
    let data = &body["data"];
    assert_eq!(data["timeout"], json!(60));
    assert_eq!(data["events"], json!(["event_action"]));
    assert_eq!(data["events_count"], json!(1));
    assert_eq!(data["name"], created["data"]["name"]);
    assert_eq!(data["webhook_url"], created["data"]["webhook_url"]);
    assert_eq!(data["max_retries"], created["data"]["max_retries"]);
    assert_eq!(data["enabled"], json!(true));
    assert_eq!(data["created_at"], created["data"]["created_at"]);
    assert_eq!(
        ctx.sim.webhooks(DEFAULT_AGENT)[0]["webhook_secret"],
        json!("optional_secret_for_hmac")
    );

    let (status, body) = json_of(
        ctx.authed(reqwest::Method::PUT, ctx.webhook_url(id))
            .json(&json!({ "max_retries": 11, "name": "" }))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"],
        json!({
            "max_retries": ["The max retries field must be between 0 and 10."],
            "name": ["The name field is required."]
        })
    );
    assert_eq!(ctx.sim.webhooks(DEFAULT_AGENT)[0]["max_retries"], json!(3));
    ctx.shutdown().await;
}

#[tokio::test]
async fn toggle_flips_enabled() {
    let ctx = Ctx::start().await;
    let created = ctx.create(sample()).await;
    let id = created["data"]["id"].as_str().expect("id");
    let toggle = format!("{}/toggle", ctx.webhook_url(id));

    let (status, body) = json_of(
        ctx.authed(reqwest::Method::PATCH, toggle.clone())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], json!("Webhook disabled"));
    assert_eq!(body["data"]["enabled"], json!(false));
    assert_eq!(body["data"]["status"], json!("disabled"));

    let (_, body) = json_of(
        ctx.authed(reqwest::Method::PATCH, toggle)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(body["message"], json!("Webhook enabled"));
    assert_eq!(body["data"]["enabled"], json!(true));
    assert_eq!(body["data"]["status"], json!("active"));
    ctx.shutdown().await;
}

#[tokio::test]
async fn test_endpoint_reports_without_calling_out() {
    let ctx = Ctx::start().await;
    let created = ctx.create(sample()).await;
    let id = created["data"]["id"].as_str().expect("id");
    let (status, body) = json_of(
        ctx.authed(
            reqwest::Method::POST,
            format!("{}/test", ctx.webhook_url(id)),
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], json!("Test webhook sent successfully"));
    assert_eq!(body["data"]["status_code"], json!(200));
    assert!(body["data"]["response_time"].is_u64());
    ctx.shutdown().await;
}

#[tokio::test]
async fn delete_then_get_is_404() {
    let ctx = Ctx::start().await;
    let created = ctx.create(sample()).await;
    let id = created["data"]["id"].as_str().expect("id");
    let (status, body) = json_of(
        ctx.authed(reqwest::Method::DELETE, ctx.webhook_url(id))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "success": true, "message": "Webhook deleted successfully" })
    );
    let (status, body) = json_of(
        ctx.authed(reqwest::Method::GET, ctx.webhook_url(id))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "success": false, "message": "Webhook not found." })
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn webhook_of_another_agent_is_404() {
    let ctx = Ctx::start().await;
    let created = ctx.create(sample()).await;
    let id = created["data"]["id"].as_str().expect("id");
    let other = "11111111-1111-4111-8111-111111111111";
    let response = ctx
        .client
        .post(format!("{}/_sim/talkover/agents", ctx.running.base_url))
        .json(&json!({ "id": other }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, body) = json_of(
        ctx.authed(
            reqwest::Method::GET,
            ctx.url(&format!("/agents/{other}/webhooks/{id}")),
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], json!("Webhook not found."));
    ctx.shutdown().await;
}

#[tokio::test]
async fn injected_failures_then_success() {
    let ctx = Ctx::start().await;
    ctx.sim
        .inject(Fault::status(503).times(2))
        .expect("valid fault");
    for _ in 0..2 {
        let (status, body) = json_of(
            ctx.authed(reqwest::Method::GET, ctx.webhooks_url())
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, json!({ "message": "Injected fault" }));
    }
    let response = ctx
        .authed(reqwest::Method::GET, ctx.webhooks_url())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);

    let log = ctx.sim.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log.iter()
            .map(|r| (r.status, r.faulted))
            .collect::<Vec<_>>(),
        [(Some(503), true), (Some(503), true), (Some(200), false)]
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn rate_limit_fault_via_control_api_has_retry_after() {
    let ctx = Ctx::start().await;
    let response = ctx
        .client
        .post(format!("{}/_sim/faults", ctx.running.base_url))
        .json(&json!({
            "status": 429,
            "retry_after": 7,
            "method": "POST",
            "path_contains": "/webhooks",
            "body": { "message": "Too Many Attempts." }
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::CREATED);

    let listed = ctx
        .authed(reqwest::Method::GET, ctx.webhooks_url())
        .send()
        .await
        .expect("send");
    assert_eq!(
        listed.status(),
        StatusCode::OK,
        "GET does not match the fault"
    );

    let response = ctx
        .authed(reqwest::Method::POST, ctx.webhooks_url())
        .json(&sample())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({ "message": "Too Many Attempts." }));
    assert!(ctx.sim.webhooks(DEFAULT_AGENT).is_empty());

    ctx.create(sample()).await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn invalid_fault_is_refused_by_control_api() {
    let ctx = Ctx::start().await;
    let response = ctx
        .client
        .post(format!("{}/_sim/faults", ctx.running.base_url))
        .json(&json!({ "status": 503, "count": 0 }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = ctx
        .client
        .get(format!("{}/_sim/faults", ctx.running.base_url))
        .send()
        .await
        .expect("send");
    let pending: Value = response.json().await.expect("json");
    assert_eq!(pending, json!([]));
    ctx.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_is_a_client_error() {
    let ctx = Ctx::start().await;
    ctx.sim
        .inject(Fault::drop_connection())
        .expect("valid fault");
    let result = ctx
        .authed(reqwest::Method::GET, ctx.webhooks_url())
        .send()
        .await;
    let err = result.expect_err("the connection is dropped before any response");
    assert!(!err.is_status());

    let response = ctx
        .authed(reqwest::Method::GET, ctx.webhooks_url())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let log = ctx.sim.requests();
    assert_eq!(log[0].status, None);
    assert!(log[0].faulted);
    ctx.shutdown().await;
}

#[tokio::test]
async fn latency_fault_runs_the_real_handler() {
    let ctx = Ctx::start().await;
    ctx.sim.inject(Fault::latency(50)).expect("valid fault");
    let started = std::time::Instant::now();
    let response = ctx
        .authed(reqwest::Method::GET, ctx.webhooks_url())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    assert!(!ctx.sim.requests()[0].faulted);
    ctx.shutdown().await;
}

#[tokio::test]
async fn request_log_redacts_credentials_and_skips_control_routes() {
    let ctx = Ctx::start().await;
    ctx.create(sample()).await;
    let response = ctx
        .client
        .get(format!("{}/_sim/requests", ctx.running.base_url))
        .send()
        .await
        .expect("send");
    let log: Value = response.json().await.expect("json");
    let entries = log.as_array().expect("array");
    assert_eq!(entries.len(), 1, "control routes are not logged");
    let entry = &entries[0];
    assert_eq!(entry["method"], json!("POST"));
    assert_eq!(
        entry["path"],
        json!(format!("{API_PREFIX}/agents/{DEFAULT_AGENT}/webhooks"))
    );
    assert_eq!(entry["headers"]["authorization"], json!(REDACTED));
    assert_eq!(entry["headers"]["content-type"], json!("application/json"));
    assert_eq!(entry["body"], sample());
    assert_eq!(entry["status"], json!(201));
    assert!(!log.to_string().contains(DEFAULT_TOKEN));

    let response = ctx
        .client
        .delete(format!("{}/_sim/requests", ctx.running.base_url))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(ctx.sim.requests().is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_are_logged_404s() {
    let ctx = Ctx::start().await;
    let response = ctx.client.get(ctx.url("/nope")).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "message": "The route api/v1/nope could not be found." })
    );
    assert_eq!(ctx.sim.requests().len(), 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn wrong_method_is_405() {
    let ctx = Ctx::start().await;
    let created = ctx.create(sample()).await;
    let id = created["data"]["id"].as_str().expect("id");
    let (status, body) = json_of(
        ctx.authed(
            reqwest::Method::GET,
            format!("{}/toggle", ctx.webhook_url(id)),
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The GET method is not supported"))
    );
    ctx.shutdown().await;
}
