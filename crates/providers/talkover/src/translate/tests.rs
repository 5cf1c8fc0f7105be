//! Unit tests of the pure translation against the examples in seed 002.

use serde_json::json;
use switchboard_core::{
    CallbackAuth, CallbackUrl, Secret, SpecDraft, SubscriptionSpec, UpstreamErrorKind, testing,
};

use super::*;

fn spec() -> SubscriptionSpec {
    SpecDraft {
        account: Some(AGENT.into()),
        name: Some("My Webhook".into()),
        signing_secret: Some(Secret::new("optional_secret_for_hmac")),
        timeout_seconds: Some(30),
        max_retries: Some(3),
        ..testing::draft(
            "talkover",
            "https://example.com/webhook",
            &["call.started", "call.ended"],
        )
    }
    .validate()
    .unwrap()
}

const AGENT: &str = "9fbef0b7-8d4e-4a08-9207-66c22155721d";

fn seg(value: &str) -> PathSegment {
    PathSegment::new(value).unwrap()
}

fn events() -> Vec<String> {
    vec![
        "event_phone_call_started".into(),
        "event_phone_call_ended".into(),
    ]
}

fn response(status: u16, body: serde_json::Value) -> NativeResponse {
    NativeResponse {
        status,
        retry_after: None,
        body: body.to_string().into_bytes(),
    }
}

#[test]
fn create_request_matches_the_seed_example() {
    let plan = plan("sub_1", &spec(), &events()).unwrap();
    let req = create_request("talq_x", &seg(AGENT), &plan);
    assert_eq!(req.method, Method::POST);
    assert_eq!(
        req.path,
        "/agents/9fbef0b7-8d4e-4a08-9207-66c22155721d/webhooks"
    );
    let body = req.body.as_ref().unwrap();
    // The seed's cURL example body, plus the fields Switchboard always writes out.
    assert_eq!(body["name"], "My Webhook [sub_1]");
    assert_eq!(body["webhook_url"], "https://example.com/webhook");
    assert_eq!(body["webhook_secret"], "optional_secret_for_hmac");
    assert_eq!(
        body["events"],
        json!(["event_phone_call_started", "event_phone_call_ended"])
    );
    assert_eq!(body["timeout"], 30);
    assert_eq!(body["max_retries"], 3);
    assert_eq!(body["enabled"], true);
    assert_eq!(body["http_method"], "POST");
    assert_eq!(body["authorization_scheme"], "none");
    assert_eq!(body["custom_headers"], json!([]));
    let shown = req.redacted("https://app.talkover.ai/api/v1").to_string();
    assert!(!shown.contains("optional_secret_for_hmac") && !shown.contains("talq_x"));
    assert!(shown.contains("https://app.talkover.ai/api/v1/agents/9fbef0b7"));
}

#[test]
fn callback_auth_becomes_scheme_and_custom_header() {
    let s = spec()
        .with(|d| {
            d.auth = CallbackAuth::Basic {
                username: "u".into(),
                password: Secret::new("p"),
            };
            d.headers.insert("X-Team".into(), "billing".into());
        })
        .unwrap();
    let p = plan("sub_1", &s, &events()).unwrap();
    assert_eq!(p.body["authorization_scheme"], "basic");
    assert_eq!(
        p.body["custom_headers"],
        json!([{"key": "Authorization", "value": "Basic dTpw"}, {"key": "X-Team", "value": "billing"}])
    );
    assert!(
        p.secret_pointers
            .contains(&"/custom_headers/0/value".to_owned())
    );

    let s = s
        .with(|d| {
            d.auth = CallbackAuth::ApiKey {
                header: "X-Api-Key".into(),
                value: Secret::new("k"),
            }
        })
        .unwrap();
    let p = plan("sub_1", &s, &events()).unwrap();
    assert_eq!(p.body["authorization_scheme"], "api_key");
    assert_eq!(
        p.body["custom_headers"][0],
        json!({"key": "X-Api-Key", "value": "k"})
    );

    let s = s
        .with(|d| {
            d.headers.insert("x-api-key".into(), "clash".into());
        })
        .unwrap();
    let err = plan("sub_1", &s, &events()).unwrap_err();
    assert!(matches!(err, Error::Invalid(ref e) if e[0].pointer == "/headers/X-Api-Key"));
}

#[test]
fn names_fit_255_with_the_marker_or_are_refused() {
    let id = "sub_01JABCDEFGHJKMNPQRSTVWXYZ0";
    let named = |n: usize| spec().with(|d| d.name = Some("n".repeat(n))).unwrap();
    let p = plan(id, &named(222), &events()).unwrap();
    let name = p.body["name"].as_str().unwrap();
    assert_eq!(name.chars().count(), 255);
    assert!(name.ends_with("[sub_01JABCDEFGHJKMNPQRSTVWXYZ0]"));
    let err = plan(id, &named(223), &events()).unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref e) if e[0].pointer == "/name" && e[0].detail.contains("222"))
    );
}

#[test]
fn update_sends_only_changed_fields() {
    let old = plan("sub_1", &spec(), &events()).unwrap();
    let s = spec()
        .with(|d| {
            d.url = CallbackUrl::parse("https://example.com/new").unwrap();
            d.timeout_seconds = None;
            d.signing_secret = None;
        })
        .unwrap();
    let new = plan("sub_1", &s, &events()).unwrap();
    let req = update_request("t", &seg("a"), &seg("w"), &old, &new).unwrap();
    assert_eq!(req.method, Method::PUT);
    assert_eq!(req.path, "/agents/a/webhooks/w");
    assert_eq!(
        req.body.unwrap(),
        json!({"webhook_url": "https://example.com/new", "webhook_secret": null})
    );
    assert!(update_request("t", &seg("a"), &seg("w"), &old, &old).is_none());

    let s2 = spec()
        .with(|d| d.signing_secret = Some(Secret::new("rotated")))
        .unwrap();
    let new = plan("sub_1", &s2, &events()).unwrap();
    let req = update_request("t", &seg("a"), &seg("w"), &old, &new).unwrap();
    assert_eq!(
        req.body.as_ref().unwrap(),
        &json!({"webhook_secret": "rotated"})
    );
    assert!(!format!("{req:?}").contains("rotated"));
}

#[test]
fn disable_is_a_put_of_enabled_not_the_toggle() {
    let old = plan("sub_1", &spec(), &events()).unwrap();
    let s = spec().with(|d| d.enabled = false).unwrap();
    let new = plan("sub_1", &s, &events()).unwrap();
    let req = update_request("t", &seg("a"), &seg("w"), &old, &new).unwrap();
    assert_eq!(req.method, Method::PUT);
    assert_eq!(req.path, "/agents/a/webhooks/w");
    assert_eq!(req.body.unwrap(), json!({"enabled": false}));
}

#[test]
fn parses_the_seed_create_response() {
    let resp = response(
        201,
        json!({
          "success": true, "message": "Webhook created successfully",
          "data": {
            "id": "9fcafbf2-7593-44d6-8cd7-1b221beba62a",
            "agent_id": "9fbef0b7-8d4e-4a08-9207-66c22155721d",
            "name": "My Webhook", "webhook_url": "https://example.com/webhook",
            "events": ["event_phone_call_started", "event_phone_call_ended"],
            "timeout": 30, "max_retries": 3, "enabled": true,
            "created_at": "2025-09-03T23:19:51.000000Z", "updated_at": "2025-09-03T23:19:51.000000Z",
            "events_count": 2, "status": "active"
          }
        }),
    );
    let w = parse_webhook("tk", &resp).unwrap();
    assert_eq!(w.id, "9fcafbf2-7593-44d6-8cd7-1b221beba62a");
    assert_eq!(w.events, events());
    assert!(w.enabled);
    assert_eq!(w.url.as_deref(), Some("https://example.com/webhook"));
}

#[test]
fn parses_list_response() {
    let resp = response(
        200,
        json!({"success": true, "data": {"webhooks": [
            {"id": "a", "events": ["event_action"], "enabled": false, "webhook_url": "https://x.io"}
        ], "available_events": {"event_action": "…"}}}),
    );
    let list = parse_list("tk", &resp).unwrap();
    assert_eq!(list.len(), 1);
    assert!(!list[0].enabled);
}

fn kind_of(e: Error) -> UpstreamErrorKind {
    match e {
        Error::Upstream(u) => u.kind,
        other => panic!("not upstream: {other:?}"),
    }
}

#[test]
fn every_documented_error_shape_is_classified() {
    assert_eq!(
        kind_of(classify_error(
            "tk",
            &response(401, json!({"message": "Missing Bearer Token"}))
        )),
        UpstreamErrorKind::Unauthorized
    );
    match kind_of(classify_error(
        "tk",
        &response(
            404,
            json!({"success": false, "message": "Agent not found in this environment."}),
        ),
    )) {
        UpstreamErrorKind::Rejected(errs) => assert_eq!(errs[0].pointer, "/account"),
        k => panic!("{k:?}"),
    }
    assert_eq!(
        kind_of(classify_error(
            "tk",
            &response(
                404,
                json!({"success": false, "message": "Webhook not found."})
            )
        )),
        UpstreamErrorKind::NotFound
    );
    match kind_of(classify_error(
        "tk",
        &response(
            422,
            json!({"message": "The given data was invalid.", "errors": {
                "webhook_url": ["The webhook url field is required."],
                "events.1": ["The selected events.1 is invalid."],
                "timeout": ["The timeout must be between 5 and 120."]
            }}),
        ),
    )) {
        UpstreamErrorKind::Rejected(errs) => {
            let pointers: Vec<_> = errs.iter().map(|e| e.pointer.as_str()).collect();
            assert_eq!(pointers, ["/events/1", "/timeout_seconds", "/url"]);
            assert!(
                errs[2]
                    .detail
                    .contains("The webhook url field is required.")
            );
            assert_eq!(errs[0].provider.as_deref(), Some("tk"));
        }
        k => panic!("{k:?}"),
    }
    let mut limited = response(429, json!({"message": "Too Many Attempts."}));
    limited.retry_after = Some(std::time::Duration::from_secs(7));
    assert_eq!(
        kind_of(classify_error("tk", &limited)),
        UpstreamErrorKind::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(7))
        }
    );
    assert_eq!(
        kind_of(classify_error("tk", &response(500, json!({})))),
        UpstreamErrorKind::Unavailable
    );
    assert_eq!(
        kind_of(classify_error("tk", &response(504, json!({})))),
        UpstreamErrorKind::Timeout
    );
    assert_eq!(
        kind_of(classify_error("tk", &response(418, json!({})))),
        UpstreamErrorKind::Protocol
    );
}

#[test]
fn payload_templates_must_name_subscribed_events() {
    let templated = |templates: serde_json::Value| {
        spec()
            .with(|d| {
                d.provider_options
                    .insert("payload_templates".into(), templates);
            })
            .unwrap()
    };
    let s = templated(json!({"event_action": {"x": "{{call.id}}"}}));
    let err = plan("sub_1", &s, &events()).unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref e) if e[0].pointer == "/provider_options/payload_templates/event_action")
    );
    let s = templated(json!({"event_phone_call_ended": {"x": "{{call.id}}"}}));
    let p = plan("sub_1", &s, &events()).unwrap();
    assert_eq!(
        p.body["payload_templates"]["event_phone_call_ended"]["x"],
        "{{call.id}}"
    );
}

#[test]
fn agent_ids_must_be_uuids() {
    let caps = capabilities();
    let check = |account: &str| {
        let mut draft = spec().into_draft();
        draft.account = Some(account.to_owned());
        caps.check("tk", "talkover", &mut draft)
    };
    assert!(check(AGENT).is_ok());
    assert!(check(&AGENT.to_ascii_uppercase()).is_ok());
    for bad in [
        ".",
        "..",
        "a/b",
        "%2e%2e",
        "agent-1",
        "9fbef0b7-8d4e-4a08-9207-66c22155721d0",
        "9fbef0b7-8d4e-4a08-9207-66c22155721",
    ] {
        match check(bad) {
            Err(Error::Invalid(e)) => {
                assert_eq!(e.len(), 1, "{bad}: {e:?}");
                assert_eq!(e[0].pointer, "/account", "{bad}");
                assert_eq!(e[0].provider.as_deref(), Some("tk"), "{bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let Err(Error::Invalid(e)) = check(&format!("{AGENT}0")) else {
        panic!("a 37-character agent id passed");
    };
    assert!(
        e[0].detail.contains("at most 36 characters"),
        "{}",
        e[0].detail
    );
}

#[test]
fn path_segments_are_encoded() {
    let old = plan("sub_1", &spec(), &events()).unwrap();
    let new = plan(
        "sub_1",
        &spec().with(|d| d.enabled = false).unwrap(),
        &events(),
    )
    .unwrap();
    let req = update_request("t", &seg("a/b"), &seg("../w x"), &old, &new).unwrap();
    assert_eq!(req.path, "/agents/a%2Fb/webhooks/..%2Fw%20x");
    assert_eq!(
        list_request("t", &seg("%2e%2e")).path,
        "/agents/%252e%252e/webhooks"
    );
}

#[test]
fn the_marker_is_the_last_bracketed_subscription_id_of_the_name() {
    for (name, want) in [
        (
            "My Webhook [sub_01JABCDEFGHJKMNPQRSTVWXYZ0]",
            Some("sub_01JABCDEFGHJKMNPQRSTVWXYZ0"),
        ),
        ("switchboard [sub_1]", Some("sub_1")),
        ("[sub_a] billing [sub_b]", Some("sub_b")),
        ("billing [sub_a] [v2]", Some("sub_a")),
        ("calls [team] [sub_9]", Some("sub_9")),
        ("My Webhook", None),
        ("billing [v2]", None),
        ("billing [sub_]", None),
        ("billing [sub_a b]", None),
        ("billing [sub_1", None),
        ("billing sub_1]", None),
    ] {
        assert_eq!(marker(name).as_deref(), want, "{name}");
    }
    // What the plan writes comes back from a parse.
    let planned = plan("sub_01JABCDEFGHJKMNPQRSTVWXYZ0", &spec(), &events()).unwrap();
    let data = json!({"id": "w1", "events": events(), "name": planned.body["name"]});
    let parsed =
        parse_webhook("tk", &response(200, json!({"success": true, "data": data}))).unwrap();
    assert_eq!(
        parsed.marker.as_deref(),
        Some("sub_01JABCDEFGHJKMNPQRSTVWXYZ0")
    );
    let foreign = json!({"id": "w2", "events": events(), "name": "My Webhook"});
    let parsed = parse_webhook(
        "tk",
        &response(200, json!({"success": true, "data": foreign})),
    )
    .unwrap();
    assert_eq!(parsed.marker, None);
    assert!(parsed.filters.is_empty());
}

#[test]
fn an_id_that_cannot_be_a_path_segment_is_a_protocol_error() {
    for id in ["", ".", ".."] {
        let resp = response(
            201,
            json!({"success": true, "data": {"id": id, "events": []}}),
        );
        let err = parse_webhook("tk", &resp).unwrap_err();
        match err {
            Error::Upstream(u) => {
                assert_eq!(u.kind, UpstreamErrorKind::Protocol);
                // The status of the answer is kept: after a 2xx create
                // the webhook may exist.
                assert_eq!(u.status, Some(201), "{id:?}");
            }
            other => panic!("{id:?}: {other:?}"),
        }
    }
}
