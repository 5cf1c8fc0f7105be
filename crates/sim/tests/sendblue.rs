//! The Sendblue simulator over real HTTP: authentication, the shared
//! document behind both paths, append/delete/replace-all semantics, the
//! documented quirks, fault injection and the control routes.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use switchboard_sim::faults::{Fault, REDACTED};
use switchboard_sim::sendblue::{
    DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, SendblueConfig, SendblueSim, V1_PATH, V2_PATH,
};

struct Sim {
    sim: SendblueSim,
    running: switchboard_sim::Running,
    client: Client,
}

impl Sim {
    async fn start() -> Self {
        let sim = SendblueSim::new(SendblueConfig::default());
        let running = switchboard_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self {
            sim,
            running,
            client: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url)
    }

    /// A request with the documented key headers.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("sb-api-key-id", DEFAULT_KEY_ID)
            .header("sb-api-secret-key", DEFAULT_SECRET_KEY);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn both_key_headers_are_required() {
    let s = Sim::start().await;
    let url = s.url(V2_PATH);
    let cases = [
        vec![],
        vec![("sb-api-key-id", DEFAULT_KEY_ID)],
        vec![("sb-api-secret-key", DEFAULT_SECRET_KEY)],
        vec![
            ("sb-api-key-id", DEFAULT_KEY_ID),
            ("sb-api-secret-key", "wrong"),
        ],
        vec![
            ("sb-api-key-id", "wrong"),
            ("sb-api-secret-key", DEFAULT_SECRET_KEY),
        ],
    ];
    for headers in cases {
        let mut req = s.client.get(&url);
        for (name, value) in &headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "ERROR");
        assert!(body["message"].is_string());
    }
    for (key_header, secret_header) in [
        ("SB-API-KEY-ID", "SB-API-SECRET-KEY"),
        ("x-sb-api-key-id", "x-sb-api-secret-key"),
    ] {
        let resp = s
            .client
            .get(&url)
            .header(key_header, DEFAULT_KEY_ID)
            .header(secret_header, DEFAULT_SECRET_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{key_header}");
    }
    // Unknown routes are 404 even without credentials.
    let resp = s.client.get(s.url("/api/v2/nope")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_fresh_account_lists_every_bucket_empty() {
    let s = Sim::start().await;
    let (status, body) = s.call(Method::GET, V2_PATH, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "OK");
    for bucket in [
        "receive",
        "outbound",
        "call_log",
        "line_blocked",
        "line_assigned",
        "contact_created",
        "typing_indicator",
    ] {
        assert_eq!(body["webhooks"][bucket], json!([]), "{bucket}");
    }
    let (status, body) = s.call(Method::PATCH, V2_PATH, Some(json!({}))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["status"], "ERROR");
}

#[tokio::test]
async fn both_paths_share_one_document() {
    let s = Sim::start().await;
    let (status, body) = s
        .call(
            Method::POST,
            V2_PATH,
            Some(json!({"webhooks": ["https://a.example.com/in"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Webhooks added successfully");
    let (_, v1) = s.call(Method::GET, V1_PATH, None).await;
    assert_eq!(
        v1["webhooks"]["receive"],
        json!(["https://a.example.com/in"])
    );
    s.call(
        Method::DELETE,
        V1_PATH,
        Some(json!({"webhooks": ["https://a.example.com/in"]})),
    )
    .await;
    let (_, v2) = s.call(Method::GET, V2_PATH, None).await;
    assert_eq!(v2["webhooks"]["receive"], json!([]));
}

#[tokio::test]
async fn post_appends_to_one_bucket_with_upgrade_and_secrets() {
    let s = Sim::start().await;
    s.sim
        .seed_foreign("call_log", "https://other.example.com/calls", None);
    let (status, body) = s
        .call(
            Method::POST,
            V2_PATH,
            Some(json!({
                "type": "call_log",
                "webhooks": ["http://a.example.com/calls", {"url": "https://b.example.com/calls", "secret": "per-url"}],
                "globalSecret": "whsec_global",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = json!([
        "https://other.example.com/calls",
        "https://a.example.com/calls",
        {"url": "https://b.example.com/calls", "secret": "per-url"}
    ]);
    assert_eq!(body["webhooks"]["call_log"], expected);
    // List echoes the secrets (providers.md §4.2).
    let (_, listed) = s.call(Method::GET, V2_PATH, None).await;
    assert_eq!(listed["webhooks"]["call_log"], expected);
    assert_eq!(listed["webhooks"]["globalSecret"], "whsec_global");
    assert_eq!(listed["webhooks"]["receive"], json!([]));
}

#[tokio::test]
async fn invalid_requests_are_refused_whole() {
    let s = Sim::start().await;
    for body in [
        json!({"type": "contact_created", "webhooks": [{"url": "https://a.example.com", "secret": "s"}]}),
        json!({"type": "sms", "webhooks": ["https://a.example.com"]}),
        json!({"webhooks": ["https://a.example.com", "ftp://b.example.com"]}),
        json!({"webhooks": []}),
        json!({"webhooks": "https://a.example.com"}),
        json!({}),
    ] {
        let (status, resp) = s.call(Method::POST, V2_PATH, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp["status"], "ERROR", "{body}");
        assert!(resp["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, listed) = s.call(Method::GET, V2_PATH, None).await;
    assert_eq!(listed["webhooks"]["receive"], json!([]));
    assert_eq!(listed["webhooks"]["contact_created"], json!([]));

    let resp = s
        .client
        .post(s.url(V2_PATH))
        .header("sb-api-key-id", DEFAULT_KEY_ID)
        .header("sb-api-secret-key", DEFAULT_SECRET_KEY)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // A URL string is fine on contact_created.
    let (status, _) = s
        .call(
            Method::POST,
            V2_PATH,
            Some(json!({"type": "contact_created", "webhooks": ["https://a.example.com"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn duplicates_are_appended_and_delete_removes_every_copy() {
    let s = Sim::start().await;
    for secret in ["one", "two"] {
        s.call(
            Method::POST,
            V2_PATH,
            Some(json!({"type": "outbound", "webhooks": [{"url": "https://a.example.com/o", "secret": secret}]})),
        )
        .await;
    }
    s.call(
        Method::POST,
        V2_PATH,
        Some(json!({"type": "outbound", "webhooks": ["https://keep.example.com/o"]})),
    )
    .await;
    let (_, listed) = s.call(Method::GET, V2_PATH, None).await;
    assert_eq!(listed["webhooks"]["outbound"].as_array().unwrap().len(), 3);

    // DELETE without `type` is about `receive`: nothing happens to outbound.
    let (status, body) = s
        .call(
            Method::DELETE,
            V2_PATH,
            Some(json!({"webhooks": ["https://a.example.com/o"]})),
        )
        .await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("OK"))
    );
    let (_, listed) = s.call(Method::GET, V2_PATH, None).await;
    assert_eq!(listed["webhooks"]["outbound"].as_array().unwrap().len(), 3);

    // By URL, after the same http upgrade as on input.
    let (status, body) = s
        .call(
            Method::DELETE,
            V2_PATH,
            Some(json!({"type": "outbound", "webhooks": ["http://a.example.com/o"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Webhooks deleted successfully");
    let (_, listed) = s.call(Method::GET, V2_PATH, None).await;
    assert_eq!(
        listed["webhooks"]["outbound"],
        json!(["https://keep.example.com/o"])
    );

    // Absent URLs are not an error; objects are not URLs.
    let (status, _) = s
        .call(
            Method::DELETE,
            V2_PATH,
            Some(json!({"type": "outbound", "webhooks": ["https://gone.example.com"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .call(
            Method::DELETE,
            V2_PATH,
            Some(json!({"type": "outbound", "webhooks": [{"url": "https://keep.example.com/o"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn put_replaces_the_whole_configuration() {
    let s = Sim::start().await;
    s.sim
        .seed_foreign("receive", "https://foreign.example.com/in", Some("theirs"));
    s.call(
        Method::POST,
        V2_PATH,
        Some(json!({"type": "line_blocked", "webhooks": ["https://a.example.com/b"], "globalSecret": "g"})),
    )
    .await;
    let (status, body) = s
        .call(
            Method::PUT,
            V2_PATH,
            Some(json!({"webhooks": {"outbound": ["http://only.example.com/o"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Webhooks updated successfully");
    let doc = s.sim.document();
    assert_eq!(doc["outbound"], json!(["https://only.example.com/o"]));
    assert_eq!(doc["receive"], json!([]));
    assert_eq!(doc["line_blocked"], json!([]));
    assert!(doc.get("globalSecret").is_none());

    let (status, _) = s
        .call(Method::PUT, V2_PATH, Some(json!({"webhooks": {"sms": []}})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.sim.document()["outbound"],
        json!(["https://only.example.com/o"])
    );
}

#[tokio::test]
async fn faults_and_the_request_log() {
    let s = Sim::start().await;
    s.sim.inject(Fault::status(503).on_method("GET")).unwrap();
    let (status, _) = s.call(Method::GET, V2_PATH, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = s.call(Method::GET, V2_PATH, None).await;
    assert_eq!(status, StatusCode::OK);
    s.call(
        Method::POST,
        V1_PATH,
        Some(json!({"webhooks": [{"url": "https://a.example.com", "secret": "s"}]})),
    )
    .await;

    let log = s.sim.requests();
    assert_eq!(log.len(), 3);
    assert!(log[0].faulted && !log[1].faulted);
    assert_eq!(log[2].method, "POST");
    assert_eq!(log[2].path, V1_PATH);
    assert_eq!(log[2].headers["sb-api-key-id"], REDACTED);
    assert_eq!(log[2].headers["sb-api-secret-key"], REDACTED);
    assert_eq!(log[2].body.as_ref().unwrap()["webhooks"][0]["secret"], "s");
    s.sim.clear_requests();
    assert!(s.sim.requests().is_empty());
}

#[tokio::test]
async fn control_routes_show_and_seed_the_document() {
    let s = Sim::start().await;
    let resp = s
        .client
        .post(s.url("/_sim/sendblue/foreign"))
        .json(&json!({"type": "receive", "url": "http://f.example.com", "secret": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let doc: Value = s
        .client
        .get(s.url("/_sim/sendblue/document"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["receive"],
        json!([{"url": "https://f.example.com", "secret": "x"}])
    );
    // Control requests are neither logged nor faulted.
    assert!(s.sim.requests().is_empty());
}
