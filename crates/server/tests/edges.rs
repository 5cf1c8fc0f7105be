//! HTTP edge cases against a real server (SQLite, and Postgres when
//! configured): every refusal is RFC 9457 problem+json with a body that
//! names what was wrong, and conditional requests follow RFC 9110. Bytes
//! an HTTP client library would not send as given go over a plain TCP
//! connection.

mod support;

use std::io::{Read, Write};

use serde_json::{Value, json};
use switchboard_store::StoreOptions;

use support::*;

const PROBLEM: &str = "application/problem+json";

/// Asserts that `r` is a problem of `status` and `slug`, and returns it.
fn problem(r: &Resp, status: u16, slug: &str) -> Value {
    assert_eq!(
        (r.status, r.content_type()),
        (status, PROBLEM),
        "{}",
        r.text
    );
    let p = r.json();
    assert_eq!(p["type"], format!("urn:switchboard:problem:{slug}"), "{p}");
    assert_eq!(p["status"], status, "{p}");
    p
}

/// Sends `head` (a request without a body, `Connection: close`) as bytes
/// and reads the whole answer.
async fn raw_request(base: &str, head: String) -> Resp {
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().split(' ').nth(1).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        let (k, v) = line.split_once(':').unwrap();
        headers.append(
            reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
            v.trim().parse().unwrap(),
        );
    }
    Resp {
        status: status.parse().unwrap(),
        headers,
        text: body.to_owned(),
    }
}

/// `GET /healthz` with `fields` header fields in all (`Host` and
/// `Connection` included).
async fn with_fields(base: &str, fields: usize) -> Resp {
    let mut head = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_owned();
    for i in 2..fields {
        head.push_str(&format!("x-f{i}: 1\r\n"));
    }
    head.push_str("\r\n");
    raw_request(base, head).await
}

async fn header_fields(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    assert_eq!(with_fields(&env.base, 100).await.status, 200);
    // hyper alone answered these with a bare 431.
    for fields in [101, 500] {
        let r = with_fields(&env.base, fields).await;
        let p = problem(&r, 431, "headers-too-large");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("at most 100 header fields"),
            "{p}"
        );
        assert!(r.headers.contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn too_many_header_fields_is_a_problem() {
    each_backend!(header_fields);
}

async fn ids_no_subscription_can_have(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let created = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    // PostgreSQL refuses NUL in text: this was a 503 `storage` there.
    for token in [TOKEN_A, TOKEN_ADMIN] {
        for (method, path) in [
            ("GET", "/v1/subscriptions/sub_%00"),
            ("GET", "/v1/subscriptions/%00"),
            ("PATCH", "/v1/subscriptions/sub_%00"),
            ("DELETE", "/v1/subscriptions/sub_%00"),
            ("POST", "/v1/subscriptions/sub_%00/enable"),
            ("POST", "/v1/subscriptions/sub_%00/rotate-secret"),
            ("GET", "/v1/subscriptions/sub_%00/operations"),
        ] {
            let body = (method == "PATCH").then(|| json!({"name": "x"}));
            let r = env.call(method, path, token, body).await;
            let p = problem(&r, 404, "not-found");
            assert!(
                p["detail"].as_str().unwrap().starts_with("subscription `"),
                "{method} {path}: {p}"
            );
        }
    }
    // Not UTF-8 once decoded: was axum's text/plain 400.
    for (method, path) in [
        ("GET", "/v1/subscriptions/%ff"),
        ("POST", "/v1/subscriptions/sub_%ff%fe/disable"),
    ] {
        let r = env.call(method, path, TOKEN_A, None).await;
        let p = problem(&r, 404, "not-found");
        assert!(p["detail"].as_str().unwrap().contains("%ff"), "{p}");
    }
    // The scope is checked before the id.
    let r = env
        .call("DELETE", "/v1/subscriptions/sub_%00", TOKEN_A_READ, None)
        .await;
    problem(&r, 403, "forbidden");
    assert_eq!(env.list_all(TOKEN_A).await.len(), 1, "nothing changed");
    assert_eq!(env.sim_webhooks().len(), 1);
}

#[tokio::test]
async fn an_id_with_nul_or_bytes_that_are_not_utf8_is_not_found() {
    each_backend!(ids_no_subscription_can_have);
}

async fn query_values(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let id = env.create_sub().await;
    for (token, path, param) in [
        (
            TOKEN_A,
            "/v1/subscriptions?provider=talk%00over",
            "/provider",
        ),
        (TOKEN_ADMIN, "/v1/subscriptions?tenant=%00", "/tenant"),
        (TOKEN_ADMIN, "/v1/audit?tenant=tenant-a%00", "/tenant"),
        (TOKEN_ADMIN, "/v1/audit?cursor=aud_%00", "/cursor"),
        (
            TOKEN_A,
            &format!("/v1/subscriptions/{id}/operations?cursor=op_%00"),
            "/cursor",
        ),
    ] {
        let r = env.call("GET", path, token, None).await;
        let p = problem(&r, 422, "validation");
        assert_eq!(r.pointers(), [param], "{path}: {p}");
        assert_eq!(
            p["errors"][0]["detail"], "must not contain control characters",
            "{path}"
        );
    }
    let r = env
        .call(
            "POST",
            &format!("/v1/subscriptions/{id}/reconcile?remove_unknown=%00"),
            TOKEN_A,
            None,
        )
        .await;
    problem(&r, 422, "validation");
    assert_eq!(r.pointers(), ["/remove_unknown"]);
    // Every bad parameter at once.
    let r = env
        .call(
            "GET",
            "/v1/subscriptions?provider=%00&status=%01&limit=0",
            TOKEN_A,
            None,
        )
        .await;
    problem(&r, 422, "validation");
    let mut pointers = r.pointers();
    pointers.sort();
    assert_eq!(pointers, ["/limit", "/provider", "/status"]);
}

#[tokio::test]
async fn a_nul_in_a_query_parameter_is_a_field_error() {
    each_backend!(query_values);
}

async fn trailing_bytes(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let body = |tail: &str| format!("{}{tail}", sub_body()).into_bytes();
    for tail in [" x", "{}", "\n{\"name\": \"two\"}", " ]"] {
        let r = env
            .raw(
                "POST",
                "/v1/subscriptions",
                TOKEN_A,
                "application/json",
                body(tail),
            )
            .await;
        let p = problem(&r, 400, "malformed");
        assert!(
            p["detail"].as_str().unwrap().contains("one JSON value"),
            "{tail:?}: {p}"
        );
    }
    assert!(env.list_all(TOKEN_A).await.is_empty(), "nothing created");
    assert!(env.sim_webhooks().is_empty());
    // Whitespace after the value is JSON.
    let r = env
        .raw(
            "POST",
            "/v1/subscriptions",
            TOKEN_A,
            "application/json",
            body(" \r\n\t"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/subscriptions/{id}");
    for (method, path, bytes) in [
        ("PATCH", path.clone(), &br#"{"name": "x"} x"#[..]),
        (
            "POST",
            format!("{path}/rotate-secret"),
            br#"{"signing_secret": "whsec-1"} {}"#,
        ),
        ("POST", "/v1/subscriptions/preview".to_owned(), br#"{} {}"#),
    ] {
        let r = env
            .raw(method, &path, TOKEN_A, "application/json", bytes.to_vec())
            .await;
        problem(&r, 400, "malformed");
    }
    let after = env.call("GET", &path, TOKEN_A, None).await.json();
    assert_eq!(after["version"], 1, "nothing changed: {after}");
}

#[tokio::test]
async fn bytes_after_the_json_body_are_malformed() {
    each_backend!(trailing_bytes);
}

async fn if_match(store: &StoreOptions) {
    let env = start(store, Opts::default()).await;
    let id = env.create_sub().await;
    let path = format!("/v1/subscriptions/{id}");
    let patch = |if_match: &'static str, name: &'static str| {
        let env = &env;
        let path = &path;
        async move {
            let r = env
                .client
                .patch(format!("{}{path}", env.base))
                .bearer_auth(TOKEN_A)
                .header("If-Match", if_match)
                .json(&json!({ "name": name }))
                .send()
                .await
                .unwrap();
            Resp::read(r).await
        }
    };
    env.sim.clear_requests();
    // Well-formed entity tags that are not the current one (`"1"`), and
    // weak tags, which the strong comparison never matches: 412.
    for value in [
        "\"some-other-tag\"",
        "\"2\"",
        "\"01\"",
        "W/\"1\"",
        "W/\"2\", \"3\"",
    ] {
        let r = patch(value, "refused").await;
        let p = problem(&r, 412, "precondition-failed");
        assert!(
            p["detail"].as_str().unwrap().contains("\"1\""),
            "{value}: {p}"
        );
        if value == "W/\"1\"" {
            assert!(
                p["detail"].as_str().unwrap().contains("strong comparison"),
                "{p}"
            );
        }
    }
    // Outside RFC 9110's grammar: 400.
    for value in ["some-other-tag", "1", "\"1", "*, \"1\"", "\"1\" \"2\""] {
        let r = patch(value, "refused").await;
        let p = problem(&r, 400, "malformed");
        assert!(p["detail"].as_str().unwrap().contains("If-Match"), "{p}");
    }
    assert!(env.sim_requests().is_empty(), "nothing was sent upstream");
    let r = env.call("GET", &path, TOKEN_A, None).await.json();
    assert_eq!(
        (r["version"].clone(), r["name"].clone()),
        (json!(1), json!("billing calls"))
    );

    // A list that names the current tag, and `*` (the subscription exists).
    let r = patch("\"7\", W/\"1\",, \"1\"", "first").await;
    assert_eq!(
        (r.status, r.headers["etag"].to_str().unwrap()),
        (200, "\"2\""),
        "{}",
        r.text
    );
    let r = patch("*", "second").await;
    assert_eq!(
        (r.status, r.headers["etag"].to_str().unwrap()),
        (200, "\"3\""),
        "{}",
        r.text
    );
    let r = patch("\"2\"", "stale").await;
    problem(&r, 412, "precondition-failed");
    let r = env.call("GET", &path, TOKEN_A, None).await.json();
    assert_eq!(r["name"], "second");

    // `*` on a subscription that does not exist is 404, as without it.
    let r = env
        .client
        .patch(format!(
            "{}/v1/subscriptions/{}",
            env.base,
            switchboard_core::ids::subscription_id()
        ))
        .bearer_auth(TOKEN_A)
        .header("If-Match", "*")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn if_match_follows_rfc_9110() {
    each_backend!(if_match);
}

async fn graceful_shutdown(store: &StoreOptions) {
    let mut env = start(store, Opts::default()).await;
    env.sim
        .inject(switchboard_sim::faults::Fault::latency(1_000).on_method("POST"))
        .unwrap();
    let (client, base) = (env.client.clone(), env.base.clone());
    let create = tokio::spawn(async move {
        let r = client
            .post(format!("{base}/v1/subscriptions"))
            .bearer_auth(TOKEN_A)
            .json(&sub_body())
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    });
    // The create is in flight once the provider has it.
    while env.sim_requests().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    env.server.take().unwrap().shutdown().await.unwrap();
    assert_eq!(
        create.await.unwrap(),
        201,
        "the request under way was answered"
    );
    let after = reqwest::Client::new()
        .get(format!("{}/healthz", env.base))
        .send()
        .await;
    assert!(after.is_err(), "nothing listens after the shutdown");
}

#[tokio::test]
async fn shutdown_answers_requests_under_way_then_stops_listening() {
    each_backend!(graceful_shutdown);
}
