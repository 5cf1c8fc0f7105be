//! Unit tests of the pure translation against the examples in seed 004 and
//! providers.md §4.

use std::time::Duration;

use serde_json::json;
use switchboard_core::{CallbackUrl, Secret, SpecDraft, testing};

use super::*;

fn spec() -> SubscriptionSpec {
    SpecDraft {
        name: Some("billing".into()),
        signing_secret: Some(Secret::new("webhook-secret")),
        ..testing::draft(
            "sendblue",
            "https://example.com/webhook",
            &["message.received", "call.ended"],
        )
    }
    .validate()
    .unwrap()
}

fn events(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn config() -> AccountV2Config {
    AccountV2Config::from_json(json!({"api_key_id": "kid_4711", "api_secret_key": "ksec_0815"}))
        .unwrap()
}

fn response(status: u16, body: serde_json::Value) -> NativeResponse {
    NativeResponse {
        status,
        retry_after: None,
        body: body.to_string().into_bytes(),
    }
}

fn kind_of(e: Error) -> UpstreamErrorKind {
    match e {
        Error::Upstream(u) => u.kind,
        other => panic!("not upstream: {other:?}"),
    }
}

fn entry(bucket: &str, url: &str) -> Entry {
    Entry {
        bucket: bucket.into(),
        url: url.into(),
    }
}

#[test]
fn capabilities_are_an_account_document() {
    let c = capabilities();
    assert!(matches!(c.account, AccountRule::Forbidden));
    assert!(c.serialize_account);
    assert!(!c.native_disable);
    assert!(c.https_only);
    assert_eq!(c.auth, [AuthKind::None]);
    assert!(!c.headers && !c.filters);
    assert!(c.timeout_seconds.is_none() && c.max_retries.is_none());
}

#[test]
fn one_plan_per_bucket_keyed_by_the_bucket() {
    let plans = plan(&spec(), &events(&["receive", "call_log"])).unwrap();
    let keys: Vec<_> = plans.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["receive", "call_log"]);
    assert_eq!(plans[1].events, ["call_log"]);
    assert_eq!(
        plans[0].body,
        json!({"webhooks": [{"url": "https://example.com/webhook", "secret": "webhook-secret"}], "type": "receive"})
    );
    assert_eq!(plans[0].secret_pointers, ["/webhooks/0/secret"]);
    assert!(!format!("{:?}", plans[0]).contains("webhook-secret"));
}

#[test]
fn buckets_come_from_the_catalog_not_the_code() {
    // A type this crate has never heard of plans like any other.
    let plans = plan(&spec(), &events(&["typing_indicator"])).unwrap();
    assert_eq!(plans[0].body["type"], "typing_indicator");
}

#[test]
fn without_a_secret_the_url_is_a_bare_string() {
    let s = spec().with(|d| d.signing_secret = None).unwrap();
    let plans = plan(&s, &events(&["outbound"])).unwrap();
    assert_eq!(
        plans[0].body,
        json!({"webhooks": ["https://example.com/webhook"], "type": "outbound"})
    );
    assert!(plans[0].secret_pointers.is_empty());
}

#[test]
fn only_unrelated_changes_leave_the_plan_equal() {
    let before = plan(&spec(), &events(&["receive"])).unwrap();
    let s = spec()
        .with(|d| {
            d.name = Some("renamed".into());
            d.enabled = false;
            d.metadata.insert("team".into(), json!("x"));
        })
        .unwrap();
    assert_eq!(plan(&s, &events(&["receive"])).unwrap(), before);
    let s = s
        .with(|d| d.signing_secret = Some(Secret::new("rotated")))
        .unwrap();
    assert_ne!(plan(&s, &events(&["receive"])).unwrap(), before);
}

#[test]
fn contact_created_refuses_a_secret_or_drops_it_under_ignore() {
    let err = plan(&spec(), &events(&["receive", "contact_created"])).unwrap_err();
    match err {
        Error::Invalid(errs) => {
            assert_eq!(errs.len(), 1);
            assert_eq!(errs[0].pointer, "/signing_secret");
            assert_eq!(errs[0].provider.as_deref(), Some("sendblue"));
            assert!(
                errs[0].detail.contains("contact_created"),
                "{}",
                errs[0].detail
            );
            assert!(errs[0].detail.contains("provider `sendblue`"));
        }
        other => panic!("{other:?}"),
    }

    let s = spec()
        .with(|d| d.on_unsupported = OnUnsupported::Ignore)
        .unwrap();
    let plans = plan(&s, &events(&["receive", "contact_created"])).unwrap();
    assert_eq!(plans[0].body["webhooks"][0]["secret"], "webhook-secret");
    assert_eq!(
        plans[1].body,
        json!({"webhooks": ["https://example.com/webhook"], "type": "contact_created"})
    );
    assert!(plans[1].secret_pointers.is_empty());

    let s = s
        .with(|d| {
            d.signing_secret = None;
            d.on_unsupported = OnUnsupported::Reject;
        })
        .unwrap();
    assert!(plan(&s, &events(&["contact_created"])).is_ok());
}

#[test]
fn http_is_refused_with_the_upgraded_url_named() {
    let s = spec()
        .with(|d| d.url = CallbackUrl::parse("http://example.com/webhook").unwrap())
        .unwrap();
    match plan(&s, &events(&["receive"])).unwrap_err() {
        Error::Invalid(errs) => {
            assert_eq!(errs[0].pointer, "/url");
            assert!(errs[0].detail.contains("https://example.com/webhook"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn secrets_must_survive_as_a_header_value() {
    let s = spec()
        .with(|d| d.signing_secret = Some(Secret::new("line1\nline2")))
        .unwrap();
    match plan(&s, &events(&["receive"])).unwrap_err() {
        Error::Invalid(errs) => {
            assert_eq!(errs[0].pointer, "/signing_secret");
            assert!(!errs[0].detail.contains("line1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn identities_round_trip_and_match_after_the_upgrade() {
    let e = entry("receive", "https://example.com/a?b=c");
    assert_eq!(e.identity(), "receive https://example.com/a?b=c");
    assert_eq!(Entry::parse_identity(&e.identity()), Some(e.clone()));
    for bad in [
        "",
        "receive",
        "receive ",
        " https://x",
        "00000000-0000-4000-8000-000000000000",
    ] {
        assert_eq!(Entry::parse_identity(bad), None, "{bad:?}");
    }
    assert!(e.same_as(&entry("receive", "http://example.com/a?b=c")));
    assert!(e.same_as(&entry("receive", "HTTP://example.com/a?b=c")));
    assert!(!e.same_as(&entry("outbound", "https://example.com/a?b=c")));
    assert!(!e.same_as(&entry("receive", "https://example.com/a?b=c/")));
    assert_eq!(upgrade_http("ftp://x"), "ftp://x");
    assert_eq!(upgrade_http("http:/"), "http:/");
}

#[test]
fn planned_entry_reads_back_either_shape() {
    let plans = plan(&spec(), &events(&["receive"])).unwrap();
    assert_eq!(
        planned_entry(&plans[0]).unwrap(),
        entry("receive", "https://example.com/webhook")
    );
    let s = spec().with(|d| d.signing_secret = None).unwrap();
    let plans = plan(&s, &events(&["line_blocked"])).unwrap();
    assert_eq!(
        planned_entry(&plans[0]).unwrap(),
        entry("line_blocked", "https://example.com/webhook")
    );
}

#[test]
fn requests_carry_both_key_headers_redacted() {
    let cfg = config();
    let get = document_request(&cfg);
    assert_eq!(get.method, Method::GET);
    assert_eq!(get.path, "/api/v2/account/webhooks");
    assert!(get.body.is_none());
    let names: Vec<_> = get
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.sensitive))
        .collect();
    assert!(names.contains(&("sb-api-key-id", true)));
    assert!(names.contains(&("sb-api-secret-key", true)));

    let plans = plan(&spec(), &events(&["receive"])).unwrap();
    let post = add_request(&cfg, &plans[0]);
    assert_eq!(post.method, Method::POST);
    let shown = post.redacted("https://api.sendblue.co").to_string();
    assert!(shown.contains("https://api.sendblue.co/api/v2/account/webhooks"));
    for secret in ["webhook-secret", "kid_4711", "ksec_0815"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }

    let delete = remove_request(&cfg, &entry("call_log", "https://example.com/webhook"));
    assert_eq!(delete.method, Method::DELETE);
    assert_eq!(
        delete.body,
        Some(json!({"webhooks": ["https://example.com/webhook"], "type": "call_log"}))
    );
}

#[test]
fn parses_the_documented_list_example_without_secrets() {
    // providers.md §4.2, "Example GET response".
    let resp = response(
        200,
        json!({ "status": "OK",
          "webhooks": { "globalSecret": "whsec_global123", "secret": "legacy",
            "receive": ["https://example.com/webhook", {"url": "https://example.com/webhook2", "secret": "webhook-secret"}],
            "outbound": ["https://example.com/webhook"], "line_assigned": ["https://example.com"],
            "line_blocked": ["https://example.com"], "call_log": ["https://example.com/webhook"],
            "contact_created": ["https://example.com"], "typing_indicator": [] } }),
    );
    let entries = parse_document("sb", &resp).unwrap();
    assert_eq!(entries.len(), 7);
    assert!(entries.contains(&entry("receive", "https://example.com/webhook2")));
    assert!(entries.contains(&entry("contact_created", "https://example.com")));
    let dump = format!("{entries:?}");
    for secret in ["whsec_global123", "legacy", "webhook-secret"] {
        assert!(!dump.contains(secret));
    }
}

#[test]
fn an_empty_account_is_an_empty_document() {
    assert!(
        parse_document("sb", &response(200, json!({"status": "OK"})))
            .unwrap()
            .is_empty()
    );
    assert!(
        parse_document(
            "sb",
            &response(200, json!({"status": "OK", "webhooks": null}))
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn malformed_documents_are_protocol_errors() {
    for body in [
        json!({"status": "OK", "webhooks": {"receive": [42]}}),
        json!({"status": "OK", "webhooks": ["https://x.io"]}),
        json!(["https://x.io"]),
    ] {
        assert_eq!(
            kind_of(parse_document("sb", &response(200, body.clone())).unwrap_err()),
            UpstreamErrorKind::Protocol,
            "{body}"
        );
    }
    let not_json = NativeResponse {
        status: 200,
        retry_after: None,
        body: b"<html>".to_vec(),
    };
    assert_eq!(
        kind_of(parse_document("sb", &not_json).unwrap_err()),
        UpstreamErrorKind::Protocol
    );
}

#[test]
fn collisions_name_the_entry() {
    let document = [entry("receive", "https://example.com/webhook")];
    let err = check_collision(
        "sb",
        &document,
        &entry("receive", "http://example.com/webhook"),
    )
    .unwrap_err();
    match err {
        Error::Conflict(msg) => {
            assert!(msg.contains("`receive`"), "{msg}");
            assert!(msg.contains("receive https://example.com/webhook"), "{msg}");
            assert!(msg.contains("provider `sb`"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        check_collision(
            "sb",
            &document,
            &entry("outbound", "https://example.com/webhook")
        )
        .is_ok()
    );
}

#[test]
fn error_status_with_http_200_is_an_error() {
    let resp = response(
        200,
        json!({"status": "ERROR", "message": "Invalid webhook URL"}),
    );
    match kind_of(parse_write("sb", &resp).unwrap_err()) {
        UpstreamErrorKind::Rejected(errs) => {
            assert_eq!(errs[0].pointer, "/url");
            assert_eq!(errs[0].detail, "Sendblue: Invalid webhook URL");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(
        kind_of(parse_document("sb", &resp).unwrap_err()),
        kind_of(parse_write("sb", &resp).unwrap_err())
    );
    let creds = response(
        200,
        json!({"status": "ERROR", "message": "Invalid API key"}),
    );
    assert_eq!(
        kind_of(parse_write("sb", &creds).unwrap_err()),
        UpstreamErrorKind::Unauthorized
    );
    assert!(
        parse_write(
            "sb",
            &response(
                200,
                json!({"status": "OK", "message": "Webhooks added successfully"})
            )
        )
        .is_ok()
    );
    let empty = NativeResponse {
        status: 204,
        retry_after: None,
        body: Vec::new(),
    };
    assert!(parse_write("sb", &empty).is_ok());
}

#[test]
fn http_errors_are_classified() {
    let bad_request = response(
        400,
        json!({"status": "ERROR", "message": "contact_created webhooks must be URL strings; secrets are not supported"}),
    );
    match kind_of(classify_error("sb", &bad_request)) {
        UpstreamErrorKind::Rejected(errs) => {
            assert_eq!(errs[0].pointer, "/signing_secret");
            assert_eq!(errs[0].provider.as_deref(), Some("sb"));
        }
        k => panic!("{k:?}"),
    }
    match kind_of(classify_error(
        "sb",
        &response(
            422,
            json!({"status": "ERROR", "message": "Invalid webhook type"}),
        ),
    )) {
        UpstreamErrorKind::Rejected(errs) => assert_eq!(errs[0].pointer, "/events"),
        k => panic!("{k:?}"),
    }
    match kind_of(classify_error("sb", &response(400, json!({})))) {
        UpstreamErrorKind::Rejected(errs) => assert_eq!(errs[0].pointer, ""),
        k => panic!("{k:?}"),
    }
    assert_eq!(
        kind_of(classify_error(
            "sb",
            &response(401, json!({"status": "ERROR", "message": "Unauthorized"}))
        )),
        UpstreamErrorKind::Unauthorized
    );
    assert_eq!(
        kind_of(classify_error("sb", &response(403, json!({})))),
        UpstreamErrorKind::Unauthorized
    );
    assert_eq!(
        kind_of(classify_error("sb", &response(404, json!({})))),
        UpstreamErrorKind::Protocol
    );
    let mut limited = response(429, json!({"message": "Too many requests"}));
    limited.retry_after = Some(Duration::from_secs(3));
    assert_eq!(
        kind_of(classify_error("sb", &limited)),
        UpstreamErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert_eq!(
        kind_of(classify_error("sb", &response(502, json!({})))),
        UpstreamErrorKind::Unavailable
    );
    assert_eq!(
        kind_of(classify_error("sb", &response(504, json!({})))),
        UpstreamErrorKind::Timeout
    );
    match classify_error("sb", &response(500, json!({"message": "boom"}))) {
        Error::Upstream(u) => {
            assert_eq!(u.status, Some(500));
            assert_eq!(u.message, "boom");
        }
        other => panic!("{other:?}"),
    }
}
