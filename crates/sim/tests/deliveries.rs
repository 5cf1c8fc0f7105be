//! Black-box tests of `POST /_sim/deliveries` over real HTTP: each
//! simulator delivers to a webhook registered through its own API, with
//! the method, headers and body its provider documents, to a capturing
//! receiver reached through `deliver_to`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use switchboard_sim::deliveries::DELIVERIES_PATH;
use switchboard_sim::{Running, Simulator, bird, sendblue, serve, talkover, telegent};

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Value,
}

type Captured = Arc<Mutex<Vec<Got>>>;

async fn capture(
    State(got): State<Captured>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    got.lock().expect("not poisoned").push(Got {
        method: method.to_string(),
        path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    StatusCode::OK
}

struct Ctx {
    sim: Running,
    receiver: Running,
    got: Captured,
    client: reqwest::Client,
}

impl Ctx {
    async fn start(sim: &dyn Simulator) -> Self {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        let got = Captured::default();
        let receiver = axum::Router::new()
            .fallback(capture)
            .with_state(got.clone());
        Self {
            sim: serve(sim.router(), addr).await.expect("bind"),
            receiver: serve(receiver, addr).await.expect("bind"),
            got,
            client: reqwest::Client::new(),
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("not poisoned").clone()
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let response = req.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Runs a delivery order through the receiver.
    async fn deliver(&self, mut order: Value) -> (u16, Value) {
        order["deliver_to"] = json!(self.receiver.base_url);
        let url = format!("{}{DELIVERIES_PATH}", self.sim.base_url);
        self.call(self.client.post(url).json(&order)).await
    }
}

fn header<'a>(got: &'a Got, name: &str) -> Option<&'a str> {
    got.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn bird_signs_as_documented_and_repeats_identically() {
    let sim = bird::BirdSim::new(bird::BirdConfig::default());
    let ctx = Ctx::start(&sim).await;
    let url = "https://hooks.example.com/bird?tenant=billing";
    let create = ctx
        .client
        .post(format!(
            "{}/workspaces/{}/webhook-subscriptions",
            ctx.sim.base_url,
            bird::DEFAULT_WORKSPACE
        ))
        .header("authorization", format!("AccessKey {}", bird::DEFAULT_ACCESS_KEY))
        .json(&json!({"service": "channels", "event": "sms.outbound", "url": url, "signingKey": "k3y"}));
    assert_eq!(ctx.call(create).await.0, 201);

    let (status, report) = ctx
        .deliver(
            json!({"url": url, "payload": {"id": "m1"}, "timestamp": 1_700_000_000, "repeat": 2}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["event"], "sms.outbound");
    assert_eq!(report["attempts"][1]["status"], 200);
    let got = ctx.got();
    assert_eq!(got.len(), 2);
    let (a, b) = (&got[0], &got[1]);
    assert_eq!(a.method, "POST");
    assert_eq!(a.path, "/bird?tenant=billing", "path and query kept");
    assert_eq!(header(a, "host"), Some("hooks.example.com"));
    assert_eq!(header(a, "x-forwarded-proto"), Some("https"));
    assert_eq!(
        a.body,
        json!({"service": "channels", "event": "sms.outbound", "payload": {"id": "m1"}})
    );
    assert_eq!(
        header(a, "messagebird-request-timestamp"),
        Some("1700000000")
    );
    let signature = header(a, "messagebird-signature").expect("signed");
    assert_eq!(signature.len(), 44, "base64 of 32 bytes");
    let id = header(a, "messagebird-request-id").expect("a request id");
    assert_eq!(
        header(b, "messagebird-request-id"),
        Some(id),
        "a repeat is the same delivery"
    );
    assert_eq!(header(b, "messagebird-signature"), Some(signature));

    ctx.deliver(
        json!({"url": url, "payload": {"id": "m1"}, "timestamp": 1_700_000_000, "corrupt": true}),
    )
    .await;
    let corrupt = &ctx.got()[2];
    assert_ne!(header(corrupt, "messagebird-signature"), Some(signature));
    assert_ne!(
        header(corrupt, "messagebird-request-id"),
        Some(id),
        "a new delivery"
    );

    let (status, _) = ctx
        .deliver(json!({"url": "https://other.example.com/x"}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = ctx
        .deliver(json!({"url": url, "event": "sms.inbound"}))
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn sendblue_sends_the_entry_secret_or_the_global_one() {
    let sim = sendblue::SendblueSim::new(sendblue::SendblueConfig::default());
    let ctx = Ctx::start(&sim).await;
    let add = |body: Value| {
        ctx.client
            .post(format!("{}{}", ctx.sim.base_url, sendblue::V2_PATH))
            .header("sb-api-key-id", sendblue::DEFAULT_KEY_ID)
            .header("sb-api-secret-key", sendblue::DEFAULT_SECRET_KEY)
            .json(&body)
    };
    let own = "https://hooks.example.com/own";
    let global = "https://hooks.example.com/global";
    let body = json!({"webhooks": [{"url": own, "secret": "entry-secret"}], "type": "receive"});
    assert_eq!(ctx.call(add(body)).await.0, 200);
    let body = json!({"webhooks": [global], "type": "outbound", "globalSecret": "global-secret"});
    assert_eq!(ctx.call(add(body)).await.0, 200);

    let (status, report) = ctx.deliver(json!({"url": own})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["event"], "receive");
    assert_eq!(
        report["headers"]["sb-signing-secret"], "***",
        "reports hide secrets"
    );
    let (status, _) = ctx
        .deliver(json!({"url": global, "timestamp": 1_765_554_080}))
        .await;
    assert_eq!(status, 200);
    let got = ctx.got();
    assert_eq!(header(&got[0], "sb-signing-secret"), Some("entry-secret"));
    assert_eq!(got[0].body["status"], "RECEIVED");
    assert!(got[0].body["message_handle"].is_string());
    assert_eq!(header(&got[1], "sb-signing-secret"), Some("global-secret"));
    assert_eq!(got[1].body["is_outbound"], true);
    assert_eq!(got[1].body["date_updated"], "2025-12-12T15:41:20.000Z");
    let (status, _) = ctx.deliver(json!({"url": own, "event": "outbound"})).await;
    assert_eq!(status, 404, "the URL is not in that bucket");
}

#[tokio::test]
async fn talkover_sends_custom_headers_with_the_webhook_method() {
    let sim = talkover::TalkoverSim::new(talkover::TalkoverConfig::default());
    let ctx = Ctx::start(&sim).await;
    let url = "https://hooks.example.com/talkover";
    let base = format!(
        "{}{}/agents/{}/webhooks",
        ctx.sim.base_url,
        talkover::API_PREFIX,
        talkover::DEFAULT_AGENT
    );
    let create = ctx.client.post(&base).bearer_auth(talkover::DEFAULT_TOKEN).json(&json!({
        "name": "relay", "webhook_url": url, "events": ["event_phone_call_ended", "event_action"],
        "http_method": "PUT", "authorization_scheme": "bearer",
        "custom_headers": [{"key": "Authorization", "value": "Bearer relay-token"}, {"key": "X-Team", "value": "ops"}],
    }));
    let (status, created) = ctx.call(create).await;
    assert_eq!(status, 201, "{created}");

    let (status, _) = ctx
        .deliver(json!({"url": url, "event": "event_action", "timestamp": 1_756_941_591}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = ctx.deliver(json!({"url": url, "corrupt": true})).await;
    assert_eq!(status, 200);
    let got = ctx.got();
    assert_eq!(got[0].method, "PUT");
    assert_eq!(header(&got[0], "authorization"), Some("Bearer relay-token"));
    assert_eq!(header(&got[0], "x-team"), Some("ops"));
    assert_eq!(got[0].body["event"], "event_action");
    assert_eq!(got[0].body["webhook_id"], created["data"]["id"]);
    assert_eq!(got[0].body["timestamp"], "2025-09-03T23:19:51.000Z");
    assert_ne!(header(&got[1], "authorization"), Some("Bearer relay-token"));
    assert_eq!(
        header(&got[1], "x-team"),
        Some("ops"),
        "only credentials are corrupted"
    );
    assert_eq!(
        got[1].body["event"], "event_phone_call_ended",
        "the first event by default"
    );

    let toggle = ctx
        .client
        .patch(format!(
            "{base}/{}/toggle",
            created["data"]["id"].as_str().expect("an id")
        ))
        .bearer_auth(talkover::DEFAULT_TOKEN);
    assert_eq!(ctx.call(toggle).await.0, 200);
    let (status, _) = ctx.deliver(json!({"url": url})).await;
    assert_eq!(status, 409, "a disabled webhook gets nothing");
}

#[tokio::test]
async fn telegent_authenticates_with_basic_or_bearer() {
    let sim = telegent::TelegentSim::new(telegent::TelegentConfig::default());
    let ctx = Ctx::start(&sim).await;
    let create = format!("{}/v1.0/webhook/create", ctx.sim.base_url);
    let mint = ctx
        .client
        .post(format!("{}/v1.0/oauth2/tokens", ctx.sim.base_url))
        .json(&json!({
            "AccountKey": telegent::DEFAULT_ACCOUNT_KEY,
            "AccountSecret": telegent::DEFAULT_ACCOUNT_SECRET,
            "ApiEndpoint": create,
        }));
    let (_, minted) = ctx.call(mint).await;
    let token = minted["token"].as_str().expect("a token").to_owned();
    let webhook = |url: &str, auth: Value| {
        let mut body = json!({
            "AccountId": telegent::DEFAULT_ACCOUNT, "WebhookUrl": url, "Method": "POST",
            "DataFormat": "json", "SubscribedEvents": "New_Sms,Call_Completed",
        });
        body.as_object_mut()
            .expect("an object")
            .extend(auth.as_object().expect("an object").clone());
        ctx.client.post(&create).bearer_auth(&token).json(&body)
    };
    let basic = "https://hooks.example.com/basic";
    let bearer = "https://hooks.example.com/bearer";
    let body = json!({"AuthenticationType": "Basic", "AuthenticationUsername": "u", "AuthenticationPassword": "p"});
    assert_eq!(ctx.call(webhook(basic, body)).await.0, 200);
    let body = json!({"AuthenticationType": "Token", "AuthenticationToken": "tg-token"});
    assert_eq!(ctx.call(webhook(bearer, body)).await.0, 200);

    let (status, report) = ctx.deliver(json!({"url": basic})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["event"], "New_Sms");
    ctx.deliver(json!({"url": bearer, "event": "Call_Completed", "payload": {"x": 1}}))
        .await;
    let got = ctx.got();
    assert_eq!(
        header(&got[0], "authorization"),
        Some("Basic dTpw"),
        "base64(u:p)"
    );
    assert!(
        got[0].body["Message_ID"].is_string(),
        "the onboarding guide's fields"
    );
    assert_eq!(header(&got[1], "authorization"), Some("Bearer tg-token"));
    assert_eq!(got[1].body, json!({"x": 1}));
    let (status, _) = ctx
        .deliver(json!({"url": bearer, "event": "Order_Update"}))
        .await;
    assert_eq!(status, 422, "not subscribed");
}
