//! The OTLP trace export of the `switchboard` binary: a collector on port
//! 0 receives protobuf over HTTP at `/v1/traces`, and the spans of a create
//! are there after a SIGTERM, the upstream call a child of its request,
//! with provider, operation and outcome and no secret.

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;

use support::spawn_process;

/// What the collector received: content type and body of each export.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// An OTLP/HTTP collector on a free loopback port; returns its base URL.
async fn collector(received: Received) -> String {
    async fn traces(State(r): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        r.lock().unwrap().push((content_type, body));
        ""
    }
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Any::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

const SECRETS: [&str; 4] = [
    "ops-token-for-traces",
    "talq_PROVIDER_SECRET",
    "CALLBACK_BEARER_SECRET",
    "SIGNING_SECRET_VALUE",
];

// Several threads: the collector answers while the test waits for the
// process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_a_create_reach_the_collector_without_secrets() {
    let received = Received::default();
    let endpoint = collector(received.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("switchboard.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "sqlite://{db}?mode=rwc"
[[auth.tokens]]
name = "ops"
tenant = "ops"
token = "{token}"
[providers.talkover]
kind = "talkover"
token = "{provider_token}"
[simulators]
enabled = true
[secrets]
demo_key_file = "{key}"
[telemetry]
otlp_endpoint = "{endpoint}"
service_name = "switchboard-under-test"
"#,
            db = dir.path().join("sb.db").display(),
            key = dir.path().join("demo.key").display(),
            token = SECRETS[0],
            provider_token = SECRETS[1],
        ),
    )
    .unwrap();
    let server = spawn_process(&cfg);
    let created = reqwest::Client::new()
        .post(format!("{}/v1/subscriptions", server.base))
        .bearer_auth(SECRETS[0])
        .json(&json!({
            "provider": "talkover",
            "account": "9fbef0b7-8d4e-4a08-9207-66c22155721d",
            "url": "https://billing.example.com/hooks",
            "events": ["call.ended"],
            "auth": {"type": "bearer", "token": SECRETS[2]},
            "signing_secret": SECRETS[3]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // The batch still held is sent before the process exits.
    assert!(server.terminate().success(), "graceful shutdown exits 0");

    let exports = received.lock().unwrap().clone();
    assert!(!exports.is_empty(), "the collector received an export");
    let mut spans: Vec<Span> = Vec::new();
    for (content_type, body) in &exports {
        assert_eq!(content_type, "application/x-protobuf");
        for secret in SECRETS {
            let leaked = body.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!leaked, "`{secret}` was exported");
        }
        let request = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
        for rs in request.resource_spans {
            let resource = rs.resource.unwrap_or_default();
            assert_eq!(
                attr(&resource.attributes, "service.name"),
                Some("switchboard-under-test")
            );
            spans.extend(rs.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    let request = spans
        .iter()
        .find(|s| s.name == "request" && attr(&s.attributes, "method") == Some("POST"))
        .expect("the create's request span");
    assert_eq!(attr(&request.attributes, "path"), Some("/v1/subscriptions"));
    let call = spans
        .iter()
        .find(|s| s.name == "upstream_call" && s.trace_id == request.trace_id)
        .expect("an upstream call in the request's trace");
    assert_eq!(
        call.parent_span_id, request.span_id,
        "a child of the request"
    );
    for (key, value) in [
        ("provider", "talkover"),
        ("kind", "talkover"),
        ("operation", "create"),
        ("outcome", "ok"),
    ] {
        assert_eq!(attr(&call.attributes, key), Some(value), "{key}");
    }
    for s in &spans {
        for kv in &s.attributes {
            if let Some(v) = attr(std::slice::from_ref(kv), &kv.key) {
                assert!(
                    !v.contains("://"),
                    "span {} has a URL in {}",
                    s.name,
                    kv.key
                );
            }
        }
    }
}
