//! Black-box tests of the Telegent simulator over real HTTP.

use std::net::SocketAddr;

use chrono::{NaiveDateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_sim::faults::{Fault, REDACTED};
use switchboard_sim::telegent::{
    API_PREFIX, DEFAULT_ACCOUNT, DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_SECRET, TOKEN_EXPIRY_FORMAT,
    TelegentConfig, TelegentSim,
};
use switchboard_sim::{Running, serve};

const CREATE: &str = "/v1.0/webhook/create";
const UPDATE: &str = "/v1.0/webhook/update";
const DELETE: &str = "/v1.0/webhook/delete";
const GET: &str = "/v1.0/webhook";
const LIST: &str = "/v1.0/account/webhooks";

struct Ctx {
    sim: TelegentSim,
    running: Running,
    client: reqwest::Client,
}

impl Ctx {
    async fn start(cfg: TelegentConfig) -> Self {
        let sim = TelegentSim::new(cfg);
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        let running = serve(sim.router(), addr).await.expect("bind");
        Self {
            sim,
            running,
            client: reqwest::Client::new(),
        }
    }

    async fn default() -> Self {
        Self::start(TelegentConfig::default()).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.running.base_url)
    }

    async fn mint_raw(&self, body: Value) -> (StatusCode, Value) {
        json_of(
            self.client
                .post(self.url("/v1.0/oauth2/tokens"))
                .json(&body)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// A token minted for `path` with the default key.
    async fn token(&self, path: &str) -> String {
        let (status, body) = self
            .mint_raw(json!({
                "AccountKey": DEFAULT_ACCOUNT_KEY,
                "AccountSecret": DEFAULT_ACCOUNT_SECRET,
                "ApiEndpoint": self.url(path),
            }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        json_of(
            self.client
                .post(self.url(path))
                .bearer_auth(token)
                .json(body)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    async fn get(&self, path: &str, token: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        json_of(
            self.client
                .get(self.url(path))
                .bearer_auth(token)
                .query(query)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// Creates the seed example and returns the result.
    async fn create(&self, body: &Value) -> Value {
        let token = self.token(CREATE).await;
        let (status, result) = self.post(CREATE, &token, body).await;
        assert_eq!(status, StatusCode::OK, "{result}");
        result
    }

    async fn shutdown(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.expect("json body"))
}

/// The seed 000 create example.
fn seed_example() -> Value {
    json!({
        "AccountId": "AID-1234567",
        "WebhookUrl": "https://api.example.com/telegent/events",
        "Method": "POST",
        "DataFormat": "json",
        "AuthenticationType": "Basic",
        "AuthenticationUsername": "webhook_user",
        "AuthenticationPassword": "s3cureP@ss",
        "AuthenticationToken": "",
        "SubscribedEvents": "Order_Update"
    })
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["StatusCode"], expected.as_u16(), "{body}");
    assert!(body["Message"].is_string(), "{body}");
}

#[tokio::test]
async fn create_returns_the_webhook_result_with_echoed_credentials() {
    let ctx = Ctx::default().await;
    let result = ctx.create(&seed_example()).await;
    let id = result["WebhookId"].as_str().expect("WebhookId");
    assert!(id.starts_with("WID-"));
    assert_eq!(result["Active"], true);
    let mut expected = seed_example();
    expected["WebhookId"] = json!(id);
    expected["Active"] = json!(true);
    assert_eq!(result, expected);
    assert_eq!(ctx.sim.webhooks(DEFAULT_ACCOUNT), vec![expected]);
    assert!(ctx.sim.webhooks("AID-0000000").is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn tokens_are_scoped_to_one_endpoint() {
    let ctx = Ctx::default().await;
    let create_token = ctx.token(CREATE).await;
    let (status, body) = ctx
        .get(LIST, &create_token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    assert!(
        body["Message"]
            .as_str()
            .is_some_and(|m| m.ends_with("Check the ApiEndpoint scope.")),
        "{body}"
    );
    let list_token = ctx.token(LIST).await;
    let (status, body) = ctx
        .get(LIST, &list_token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
    // The token for the get endpoint is not valid on its sub-path either.
    let get_token = ctx.token(GET).await;
    let (status, _) = ctx.post(CREATE, &get_token, &seed_example()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(ctx.sim.token_mints(), 3);
    assert_eq!(
        ctx.sim.minted_endpoints(),
        [ctx.url(CREATE), ctx.url(LIST), ctx.url(GET)]
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn token_requests_are_validated() {
    let ctx = Ctx::default().await;
    let (status, body) = ctx
        .mint_raw(json!({"AccountKey": DEFAULT_ACCOUNT_KEY, "AccountSecret": "wrong", "ApiEndpoint": ctx.url(LIST)}))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = ctx
        .mint_raw(
            json!({"AccountKey": DEFAULT_ACCOUNT_KEY, "AccountSecret": DEFAULT_ACCOUNT_SECRET}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["Message"],
        "Bad request: The ApiEndpoint field is required."
    );
    let (status, body) = ctx
        .mint_raw(json!({"AccountKey": DEFAULT_ACCOUNT_KEY, "AccountSecret": DEFAULT_ACCOUNT_SECRET, "ApiEndpoint": "webhook/create"}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = ctx
        .mint_raw(json!({"AccountKey": DEFAULT_ACCOUNT_KEY, "AccountSecret": DEFAULT_ACCOUNT_SECRET, "ApiEndpoint": ctx.url(LIST), "Scope": "all"}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        body["Message"]
            .as_str()
            .is_some_and(|m| m.contains("'Scope'"))
    );
    assert_eq!(ctx.sim.token_mints(), 0);

    // The spec's spelling of the path works too.
    let (status, body) = json_of(
        ctx.client
            .post(ctx.url("/v1.0/OAuth2/tokens"))
            .json(&json!({"AccountKey": DEFAULT_ACCOUNT_KEY, "AccountSecret": DEFAULT_ACCOUNT_SECRET, "ApiEndpoint": ctx.url(LIST)}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["successful"], true);
    let expiry = NaiveDateTime::parse_from_str(
        body["tokenExpiry"].as_str().expect("tokenExpiry"),
        TOKEN_EXPIRY_FORMAT,
    )
    .expect("documented format")
    .and_utc();
    let lifetime = expiry - Utc::now();
    assert!(
        lifetime.num_seconds() > 3590 && lifetime.num_seconds() <= 3600,
        "{lifetime}"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn missing_unknown_or_expired_tokens_are_401() {
    let ctx = Ctx::default().await;
    let (status, body) = json_of(
        ctx.client
            .get(ctx.url(LIST))
            .query(&[("AccountId", DEFAULT_ACCOUNT)])
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["Message"],
        "Unauthorized: Bearer token is missing, expired, or invalid. Re-authenticate via POST /v1.0/oauth2/tokens."
    );
    let (status, _) = ctx
        .get(LIST, "not-a-token", &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let token = ctx.token(LIST).await;
    let (status, _) = ctx
        .get(LIST, &token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::OK);
    ctx.sim.expire_tokens();
    let (status, body) = ctx
        .get(LIST, &token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    let fresh = ctx.token(LIST).await;
    let (status, _) = ctx
        .get(LIST, &fresh, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::OK);

    // The control route does the same.
    let response = ctx
        .client
        .post(ctx.url("/_sim/telegent/tokens/expire"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = ctx
        .get(LIST, &fresh, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_zero_lifetime_token_is_expired_at_once() {
    let ctx = Ctx::start(TelegentConfig {
        token_ttl_seconds: 0,
        ..TelegentConfig::default()
    })
    .await;
    let token = ctx.token(LIST).await;
    let (status, _) = ctx
        .get(LIST, &token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    ctx.shutdown().await;
}

#[tokio::test]
async fn create_bodies_are_validated_against_the_schema() {
    let ctx = Ctx::default().await;
    let token = ctx.token(CREATE).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"Name": "x"}),
            "'Name' is not a property of Webhook_Request",
        ),
        (
            json!({"WebhookUrl": format!("https://e.io/{}", "a".repeat(243))}),
            "WebhookUrl must be at most 255 characters",
        ),
        (
            json!({"AccountId": "A".repeat(101)}),
            "AccountId must be at most 100 characters",
        ),
        (json!({"Method": "PATCH"}), "Method must be POST or PUT"),
        (
            json!({"DataFormat": "yaml"}),
            "DataFormat must be json or xml",
        ),
        (
            json!({"AuthenticationType": "Bearer"}),
            "None, Basic or Token",
        ),
        (
            json!({"AuthenticationUsername": ""}),
            "AuthenticationUsername is required when AuthenticationType is Basic",
        ),
        (
            json!({"AuthenticationType": "Token"}),
            "AuthenticationToken is required when AuthenticationType is Token",
        ),
        (json!({"WebhookUrl": "http://api.example.com/x"}), "HTTPS"),
        (
            json!({"SubscribedEvents": "Order_Update,Message_Status"}),
            "'Message_Status'",
        ),
        (
            json!({"SubscribedEvents": null}),
            "The SubscribedEvents field is required",
        ),
        (json!({"Method": 1}), "Method must be a string or null"),
    ];
    for (patch, expected) in cases {
        let mut body = seed_example();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, answer) = ctx.post(CREATE, &token, &body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
        let message = answer["Message"].as_str().unwrap_or_default();
        assert!(message.starts_with("Bad request: "), "{message}");
        assert!(message.contains(expected), "{message} / {expected}");
    }
    let mut unknown_account = seed_example();
    unknown_account["AccountId"] = json!("AID-7654321");
    let (status, body) = ctx.post(CREATE, &token, &unknown_account).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    let (status, body) = json_of(
        ctx.client
            .post(ctx.url(CREATE))
            .bearer_auth(&token)
            .header("Content-Type", "text/plain")
            .body(seed_example().to_string())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_error(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = json_of(
        ctx.client
            .post(ctx.url(CREATE))
            .bearer_auth(&token)
            .header("Content-Type", "text/json")
            .body(seed_example().to_string())
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctx.sim.webhooks(DEFAULT_ACCOUNT).len(), 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn update_replaces_every_field() {
    let ctx = Ctx::default().await;
    let created = ctx.create(&seed_example()).await;
    let id = created["WebhookId"].as_str().expect("id").to_owned();
    let token = ctx.token(UPDATE).await;

    // A partial body fails validation: the fields are replaced, not merged.
    let (status, body) = ctx
        .post(
            UPDATE,
            &token,
            &json!({"WebhookId": id, "AccountId": DEFAULT_ACCOUNT, "DataFormat": "xml"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    let full = json!({
        "WebhookId": id,
        "AccountId": DEFAULT_ACCOUNT,
        "WebhookUrl": "https://new.example.com/hooks",
        "Method": "PUT",
        "DataFormat": "xml",
        "AuthenticationType": "Bearer",
        "AuthenticationToken": "cb-token",
        "SubscribedEvents": "Call_Completed,New_Sms"
    });
    let (status, body) = ctx.post(UPDATE, &token, &full).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["WebhookId"], id.as_str());
    assert_eq!(body["WebhookUrl"], "https://new.example.com/hooks");
    // Fields not sent are cleared.
    assert_eq!(body["AuthenticationUsername"], Value::Null);
    assert_eq!(body["AuthenticationPassword"], Value::Null);
    assert_eq!(ctx.sim.webhooks(DEFAULT_ACCOUNT), vec![body]);

    // `Token` (the create value) is accepted on update too.
    let mut token_auth = full.clone();
    token_auth["AuthenticationType"] = json!("Token");
    let (status, _) = ctx.post(UPDATE, &token, &token_auth).await;
    assert_eq!(status, StatusCode::OK);

    let mut missing = full.clone();
    missing["WebhookId"] = json!("WID-9999999");
    let (status, body) = ctx.post(UPDATE, &token, &missing).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    ctx.sim.add_account("AID-7654321");
    let mut other_account = full;
    other_account["AccountId"] = json!("AID-7654321");
    let (status, _) = ctx.post(UPDATE, &token, &other_account).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn get_list_and_delete() {
    let ctx = Ctx::default().await;
    let first = ctx.create(&seed_example()).await;
    let second = ctx.create(&seed_example()).await;
    let id = first["WebhookId"].as_str().expect("id").to_owned();
    assert_ne!(first["WebhookId"], second["WebhookId"]);

    let get_token = ctx.token(GET).await;
    let (status, body) = ctx
        .get(
            GET,
            &get_token,
            &[("WebhookId", id.as_str()), ("AccountId", DEFAULT_ACCOUNT)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, first);
    let (status, body) = ctx
        .get(GET, &get_token, &[("WebhookId", id.as_str())])
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = ctx
        .get(
            GET,
            &get_token,
            &[("WebhookId", id.as_str()), ("AccountId", "AID-0")],
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    let list_token = ctx.token(LIST).await;
    let (status, body) = ctx
        .get(LIST, &list_token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([first, second]));
    let (status, body) = ctx.get(LIST, &list_token, &[("AccountId", "AID-0")]).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = ctx.get(LIST, &list_token, &[]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    let delete_token = ctx.token(DELETE).await;
    let (status, body) = ctx
        .post(
            DELETE,
            &delete_token,
            &json!({"WebhookId": id, "AccountId": DEFAULT_ACCOUNT, "Force": true}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = ctx
        .post(
            DELETE,
            &delete_token,
            &json!({"WebhookId": id, "AccountId": DEFAULT_ACCOUNT}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"WebhookId": id, "WebhookStatus": "Deleted"}));
    let (status, _) = ctx
        .post(
            DELETE,
            &delete_token,
            &json!({"WebhookId": id, "AccountId": DEFAULT_ACCOUNT}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = ctx
        .get(
            GET,
            &get_token,
            &[("WebhookId", id.as_str()), ("AccountId", DEFAULT_ACCOUNT)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ctx.sim.webhooks(DEFAULT_ACCOUNT), vec![second]);
    ctx.shutdown().await;
}

#[tokio::test]
async fn wrapped_responses() {
    let ctx = Ctx::start(TelegentConfig {
        wrap_responses: true,
        ..TelegentConfig::default()
    })
    .await;
    let created = ctx.create(&seed_example()).await;
    assert_eq!(created["Successful"], true);
    let id = created["Data"]["WebhookId"]
        .as_str()
        .expect("id")
        .to_owned();
    let list_token = ctx.token(LIST).await;
    let (_, body) = ctx
        .get(LIST, &list_token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(body["Successful"], true);
    assert_eq!(body["Data"][0]["WebhookId"], id.as_str());
    let (_, body) = ctx
        .post(
            DELETE,
            &ctx.token(DELETE).await,
            &json!({"WebhookId": id, "AccountId": DEFAULT_ACCOUNT}),
        )
        .await;
    assert_eq!(body["Data"]["WebhookStatus"], "Deleted");
    // Errors keep the documented flat shape.
    let (status, body) = ctx.get(LIST, &list_token, &[("AccountId", "AID-0")]).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn the_rate_limit_counts_every_request() {
    let ctx = Ctx::start(TelegentConfig {
        rate_limit_per_minute: Some(3),
        ..TelegentConfig::default()
    })
    .await;
    let token = ctx.token(LIST).await;
    for _ in 0..2 {
        let (status, _) = ctx
            .get(LIST, &token, &[("AccountId", DEFAULT_ACCOUNT)])
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = ctx
        .get(LIST, &token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = ctx
        .mint_raw(json!({"AccountKey": DEFAULT_ACCOUNT_KEY, "AccountSecret": DEFAULT_ACCOUNT_SECRET, "ApiEndpoint": ctx.url(GET)}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Control routes are never limited.
    let response = ctx
        .client
        .get(ctx.url("/_sim/telegent/tokens"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    ctx.shutdown().await;
}

#[tokio::test]
async fn no_rate_limit_by_default() {
    let ctx = Ctx::default().await;
    let token = ctx.token(LIST).await;
    for _ in 0..60 {
        let (status, _) = ctx
            .get(LIST, &token, &[("AccountId", DEFAULT_ACCOUNT)])
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn faults_log_and_control_routes() {
    let ctx = Ctx::default().await;
    let token = ctx.token(LIST).await;
    ctx.sim
        .inject(Fault::status(503).on_path("/account/webhooks"))
        .expect("valid fault");
    let (status, _) = ctx
        .get(LIST, &token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = ctx
        .get(LIST, &token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::OK);

    let log = ctx.sim.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].path, "/v1.0/oauth2/tokens");
    assert_eq!(log[1].path, LIST);
    assert!(log[1].faulted);
    assert_eq!(log[1].status, Some(503));
    assert_eq!(log[2].query.as_deref(), Some("AccountId=AID-1234567"));
    assert_eq!(log[2].headers["authorization"], REDACTED);

    let response = ctx
        .client
        .get(ctx.url("/_sim/telegent/tokens"))
        .send()
        .await
        .expect("send");
    let (_, tokens) = json_of(response).await;
    assert_eq!(tokens, json!({"mints": 1, "endpoints": [ctx.url(LIST)]}));
    let response = ctx
        .client
        .post(ctx.url("/_sim/telegent/accounts"))
        .json(&json!({"id": "AID-7654321"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, body) = json_of(
        ctx.client
            .get(ctx.url("/_sim/telegent/accounts/AID-7654321/webhooks"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
    assert_eq!(ctx.sim.requests().len(), 3, "control routes are not logged");
    ctx.sim.clear_requests();
    assert!(ctx.sim.requests().is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn wrong_methods_and_paths() {
    let ctx = Ctx::default().await;
    let token = ctx.token(CREATE).await;
    let (status, body) = ctx.get(CREATE, &token, &[]).await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        body["Message"],
        "Method not allowed: verify the HTTP method required for this endpoint."
    );
    // The spec's `servers` URL plus the path doubles `/v1.0`
    // (providers.md §1.1): there is nothing there.
    let (status, body) = ctx
        .post("/v1.0/v1.0/webhook/create", &token, &seed_example())
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn an_unbounded_lifetime_does_not_overflow() {
    let ctx = Ctx::start(TelegentConfig {
        token_ttl_seconds: u64::MAX,
        ..TelegentConfig::default()
    })
    .await;
    let token = ctx.token(LIST).await;
    let (status, _) = ctx
        .get(LIST, &token, &[("AccountId", DEFAULT_ACCOUNT)])
        .await;
    assert_eq!(status, StatusCode::OK);
    ctx.shutdown().await;
}
