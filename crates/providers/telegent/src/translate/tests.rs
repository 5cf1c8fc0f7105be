//! Unit tests of the pure translation against seed 000 (the OpenAPI
//! document of "Create Webhook") and providers.md §1.

use std::time::Duration;

use chrono::TimeZone;
use serde_json::json;
use switchboard_core::{CallbackUrl, OnUnsupported, SpecDraft, SubscriptionSpec, testing};

use super::*;

/// seed 000 `components.schemas.Webhook_Request`: every property with its
/// `maxLength`; `additionalProperties: false`; each value `string | null`.
const WEBHOOK_REQUEST_SCHEMA: [(&str, usize); 9] = [
    ("AccountId", 100),
    ("WebhookUrl", 255),
    ("Method", 10),
    ("DataFormat", 50),
    ("AuthenticationType", 10),
    ("AuthenticationUsername", 255),
    ("AuthenticationPassword", 255),
    ("AuthenticationToken", 255),
    ("SubscribedEvents", 255),
];

/// Checks `body` against a schema given as (property, maxLength), with
/// `additionalProperties: false` and `string | null` values; `no_max`
/// properties are strings without a documented limit.
fn assert_validates(body: &Value, schema: &[(&str, usize)], no_max: &[&str]) {
    let obj = body.as_object().expect("a JSON object");
    for (name, value) in obj {
        if no_max.contains(&name.as_str()) {
            assert!(value.is_string(), "{name} must be a string");
            continue;
        }
        let (_, max) = schema.iter().find(|(n, _)| n == name).unwrap_or_else(|| {
            panic!("`{name}` is not in the schema (additionalProperties: false)")
        });
        match value {
            Value::Null => {}
            Value::String(s) => assert!(
                s.chars().count() <= *max,
                "{name} has {} characters, max {max}",
                s.chars().count()
            ),
            other => panic!("{name} must be string or null, got {other}"),
        }
    }
}

/// `Webhook_Request` (create).
fn assert_create_body(body: &Value) {
    assert_validates(body, &WEBHOOK_REQUEST_SCHEMA, &[]);
}

/// `Update_Webhook_Request`: the same nine fields and limits plus
/// `WebhookId` (providers.md §1.2).
fn assert_update_body(body: &Value) {
    assert_validates(body, &WEBHOOK_REQUEST_SCHEMA, &["WebhookId"]);
    assert!(body["WebhookId"].is_string(), "WebhookId is sent");
}

/// The seed's example subscription, before validation.
fn draft() -> SpecDraft {
    SpecDraft {
        account: Some("AID-1234567".into()),
        name: Some("billing".into()),
        auth: CallbackAuth::Basic {
            username: "webhook_user".into(),
            password: Secret::new("s3cureP@ss"),
        },
        ..testing::draft(
            "tg",
            "https://api.example.com/telegent/events",
            &["native:Order_Update", "call.ended"],
        )
    }
}

fn spec() -> SubscriptionSpec {
    draft().validate().unwrap()
}

fn events() -> Vec<String> {
    vec!["Order_Update".into(), "Call_Completed".into()]
}

/// All seven documented events (seed 000).
fn all_events() -> Vec<String> {
    [
        "Order_Update",
        "New_Sms",
        "Call_Completed",
        "Call_On_Hold",
        "Call_Recording",
        "Call_In_Progress",
        "Call_Ringing",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn response(status: u16, body: Value) -> NativeResponse {
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

fn invalid_pointers(e: Error) -> Vec<String> {
    match e {
        Error::Invalid(errs) => errs.into_iter().map(|e| e.pointer).collect(),
        other => panic!("not invalid: {other:?}"),
    }
}

/// A `Webhook_Result` as Telegent returns it, secrets echoed (seed 000).
fn result_json(id: &str) -> Value {
    json!({
        "AccountId": "AID-1234567",
        "WebhookUrl": "https://api.example.com/telegent/events",
        "Method": "POST",
        "DataFormat": "json",
        "AuthenticationType": "Basic",
        "AuthenticationUsername": "webhook_user",
        "AuthenticationPassword": "s3cureP@ss",
        "AuthenticationToken": "echoed-token",
        "SubscribedEvents": "Order_Update,Call_Completed",
        "WebhookId": id,
        "Active": true
    })
}

#[test]
fn capabilities_declare_what_telegent_lacks() {
    let c = capabilities();
    assert!(!c.native_disable);
    assert!(c.https_only);
    assert_eq!(c.url_max_len, 255);
    assert!(c.signing_secret_max_len.is_none());
    assert!(!c.headers && !c.filters);
    assert!(c.timeout_seconds.is_none() && c.max_retries.is_none());
    assert_eq!(c.methods, vec![DeliveryMethod::Post, DeliveryMethod::Put]);
    assert_eq!(c.formats, vec![DeliveryFormat::Json, DeliveryFormat::Xml]);
    assert_eq!(
        c.auth,
        vec![AuthKind::None, AuthKind::Basic, AuthKind::Bearer]
    );
    assert!(matches!(
        c.account,
        AccountRule::Required {
            max_len: 100,
            shape: AccountShape::Prefixed { prefix: "AID-" },
            ..
        }
    ));
    assert!(matches!(
        c.events_per_resource,
        EventsPerResource::JoinedMaxChars { max_chars: 255 }
    ));
}

#[test]
fn unsupported_fields_are_refused_by_the_capability_check() {
    let mut s = SpecDraft {
        signing_secret: Some(Secret::new("whsec")),
        headers: [("X-Team".to_owned(), "billing".to_owned())].into(),
        method: Some(DeliveryMethod::Patch),
        timeout_seconds: Some(30),
        max_retries: Some(3),
        filters: vec![switchboard_core::Filter {
            key: "k".into(),
            value: "v".into(),
        }],
        auth: CallbackAuth::ApiKey {
            header: "X-Key".into(),
            value: Secret::new("k"),
        },
        ..draft()
    };
    let mut pointers = invalid_pointers(
        capabilities()
            .check("tg", crate::KIND, &mut s.clone())
            .unwrap_err(),
    );
    pointers.sort();
    assert_eq!(
        pointers,
        [
            "/auth",
            "/filters",
            "/headers",
            "/max_retries",
            "/method",
            "/signing_secret",
            "/timeout_seconds"
        ]
    );
    s.on_unsupported = OnUnsupported::Ignore;
    let warnings = capabilities().check("tg", crate::KIND, &mut s).unwrap();
    assert_eq!(warnings.len(), 7);
    let plans = plan("sub_1", &s.validate().unwrap(), &events()).unwrap();
    assert_eq!(plans[0].body["Method"], "POST");
    assert_eq!(plans[0].body["AuthenticationType"], "None");
}

#[test]
fn create_body_matches_the_seed_example() {
    let plans = plan("sub_1", &spec(), &events()).unwrap();
    assert_eq!(plans.len(), 1);
    let p = &plans[0];
    assert_eq!(p.key, "webhook-0");
    assert_eq!(p.events, events());
    assert_eq!(
        p.body,
        json!({
            "AccountId": "AID-1234567",
            "WebhookUrl": "https://api.example.com/telegent/events",
            "Method": "POST",
            "DataFormat": "json",
            "AuthenticationType": "Basic",
            "AuthenticationUsername": "webhook_user",
            "AuthenticationPassword": "s3cureP@ss",
            "AuthenticationToken": "",
            "SubscribedEvents": "Order_Update,Call_Completed"
        })
    );
    assert_create_body(&p.body);
    assert_eq!(
        p.secret_pointers,
        ["/AuthenticationPassword", "/AuthenticationToken"]
    );
    assert!(!format!("{p:?}").contains("s3cureP@ss"));

    let req = create_request("tok-abc", p);
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, "/v1.0/webhook/create");
    assert!(req.query.is_empty());
    let auth = req
        .headers
        .iter()
        .find(|h| h.name == "Authorization")
        .unwrap();
    assert!(auth.sensitive);
    assert_eq!(auth.value, "Bearer tok-abc");
    assert!(
        req.headers
            .iter()
            .any(|h| h.name == "Accept" && h.value == "application/json" && !h.sensitive)
    );
    let shown = req.redacted("https://api.telegent.com").to_string();
    assert!(shown.contains("https://api.telegent.com/v1.0/webhook/create"));
    assert!(!shown.contains("/v1.0/v1.0"));
    assert!(!shown.contains("s3cureP@ss") && !shown.contains("tok-abc"));
}

#[test]
fn every_auth_method_and_format_validates() {
    for auth in [
        CallbackAuth::None,
        CallbackAuth::Basic {
            username: "u".repeat(255),
            password: Secret::new("p".repeat(255)),
        },
        CallbackAuth::Bearer {
            token: Secret::new("t".repeat(255)),
        },
    ] {
        for method in [None, Some(DeliveryMethod::Post), Some(DeliveryMethod::Put)] {
            for format in [None, Some(DeliveryFormat::Json), Some(DeliveryFormat::Xml)] {
                let url = format!("https://example.com/{}", "u".repeat(235));
                let s = SpecDraft {
                    auth: auth.clone(),
                    method,
                    format,
                    account: Some(format!("AID-{}", "1".repeat(96))),
                    url: CallbackUrl::parse(&url).unwrap(),
                    ..draft()
                }
                .validate()
                .unwrap();
                for p in plan("sub_1", &s, &all_events()).unwrap() {
                    assert_create_body(&p.body);
                    let req = create_request("t", &p);
                    assert_create_body(req.body.as_ref().unwrap());
                    let upd = update_body("WID-1", &Map::new(), &p);
                    assert_update_body(&upd);
                }
            }
        }
    }
    let s = SpecDraft {
        auth: CallbackAuth::Bearer {
            token: Secret::new("cb-token"),
        },
        method: Some(DeliveryMethod::Put),
        format: Some(DeliveryFormat::Xml),
        ..draft()
    }
    .validate()
    .unwrap();
    let p = plan("sub_1", &s, &events()).unwrap().remove(0);
    assert_eq!(p.body["AuthenticationType"], "Token");
    assert_eq!(p.body["AuthenticationToken"], "cb-token");
    assert_eq!(p.body["AuthenticationUsername"], "");
    assert_eq!(p.body["AuthenticationPassword"], "");
    assert_eq!(p.body["Method"], "PUT");
    assert_eq!(p.body["DataFormat"], "xml");
}

#[test]
fn values_beyond_the_schema_limits_are_refused() {
    let refused = |d: SpecDraft, events: &[String]| {
        invalid_pointers(plan("sub_1", &d.validate().unwrap(), events).unwrap_err())
    };
    let too_long = SpecDraft {
        account: Some(format!("AID-{}", "1".repeat(97))),
        url: CallbackUrl::parse(&format!("https://example.com/{}", "u".repeat(236))).unwrap(),
        auth: CallbackAuth::Basic {
            username: "u".repeat(255),
            password: Secret::new("p".repeat(256)),
        },
        ..draft()
    };
    assert_eq!(
        refused(too_long, &events()),
        ["/account", "/url", "/auth/password"]
    );
    let long_token = SpecDraft {
        auth: CallbackAuth::Bearer {
            token: Secret::new("t".repeat(256)),
        },
        ..draft()
    };
    assert_eq!(refused(long_token, &events()), ["/auth/token"]);
    let no_account = SpecDraft {
        account: None,
        ..draft()
    };
    assert_eq!(refused(no_account, &events()), ["/account"]);
    assert_eq!(
        refused(draft(), &["Order_Update".into(), "A,B".into()]),
        ["/events/1"]
    );
    // A user name over Telegent's 255 characters is over the core limit
    // too, and no provider takes an empty password: `validate` refuses
    // both before a plan is made.
    let core_refused = SpecDraft {
        auth: CallbackAuth::Basic {
            username: "u".repeat(256),
            password: Secret::new(""),
        },
        ..draft()
    };
    assert_eq!(
        invalid_pointers(core_refused.validate().unwrap_err()),
        ["/auth/username", "/auth/password"]
    );
}

#[test]
fn all_seven_events_fit_one_webhook() {
    let plans = plan("sub_1", &spec(), &all_events()).unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(
        plans[0].body["SubscribedEvents"],
        "Order_Update,New_Sms,Call_Completed,Call_On_Hold,Call_Recording,Call_In_Progress,Call_Ringing"
    );
}

/// `n` distinct synthetic native names of `len` characters each.
fn long_names(n: usize, len: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let prefix = format!("Ev{i:03}_");
            format!("{prefix}{}", "X".repeat(len - prefix.len()))
        })
        .collect()
}

#[test]
fn long_event_lists_split_at_255_characters() {
    // 60-character names: four joined take 4 * 60 + 3 = 243, a fifth would
    // need 304, so ten names make chunks of 4, 4 and 2.
    let names = long_names(10, 60);
    let plans = plan("sub_1", &spec(), &names).unwrap();
    let keys: Vec<_> = plans.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["webhook-0", "webhook-1", "webhook-2"]);
    let sizes: Vec<_> = plans.iter().map(|p| p.events.len()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    let mut rejoined = Vec::new();
    for p in &plans {
        let joined = p.body["SubscribedEvents"].as_str().unwrap();
        assert!(joined.chars().count() <= 255, "{}", joined.len());
        assert!(!joined.contains(' '));
        assert_eq!(joined, p.events.join(","));
        assert_create_body(&p.body);
        // Every chunk carries the same delivery settings.
        assert_eq!(p.body["WebhookUrl"], plans[0].body["WebhookUrl"]);
        rejoined.extend(p.events.iter().cloned());
    }
    assert_eq!(rejoined, names, "order kept, nothing lost or duplicated");
}

#[test]
fn the_split_is_exact_at_the_boundary() {
    // 5 names of 51 characters: 5 * 51 + 4 = 259 > 255, so 4 + 1.
    assert_eq!(
        chunk_events(&long_names(5, 51), 255)
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>(),
        [4, 1]
    );
    // 5 names of 50 characters: 5 * 50 + 4 = 254 ≤ 255, one chunk.
    assert_eq!(chunk_events(&long_names(5, 50), 255).unwrap().len(), 1);
    // Exactly 255: 2 * 127 + 1 comma.
    let exact = chunk_events(&long_names(2, 127), 255).unwrap();
    assert_eq!(exact.len(), 1);
    assert_eq!(exact[0].join(",").len(), 255);
    assert_eq!(chunk_events(&long_names(3, 127), 255).unwrap().len(), 2);
    assert_eq!(chunk_events(&["x".repeat(256)], 255), Err(0));
    assert_eq!(chunk_events(&[], 255).unwrap().len(), 0);
}

#[test]
fn the_split_is_deterministic_and_appending_keeps_earlier_chunks() {
    let names = long_names(10, 60);
    let first = plan("sub_1", &spec(), &names).unwrap();
    assert_eq!(first, plan("sub_1", &spec(), &names).unwrap());
    let mut more = names.clone();
    more.extend(long_names(13, 60).into_iter().skip(10));
    let second = plan("sub_1", &spec(), &more).unwrap();
    assert_eq!(
        second.iter().map(|p| p.events.len()).collect::<Vec<_>>(),
        [4, 4, 4, 1]
    );
    // The two full chunks are unchanged, so the engine leaves them alone.
    assert_eq!(second[0], first[0]);
    assert_eq!(second[1], first[1]);
    assert_ne!(second[2], first[2]);
}

#[test]
fn token_request_is_scoped_to_one_endpoint() {
    let req = token_request(
        "DID-1",
        &Secret::new("acct-secret"),
        &Endpoint::Get.api_endpoint("https://api.telegent.com/"),
    );
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, "/v1.0/oauth2/tokens");
    assert_eq!(
        req.body.as_ref().unwrap(),
        &json!({
            "AccountKey": "DID-1",
            "AccountSecret": "acct-secret",
            "ApiEndpoint": "https://api.telegent.com/v1.0/webhook"
        })
    );
    assert_eq!(req.secret_pointers, ["/AccountSecret"]);
    assert!(!format!("{req:?}").contains("acct-secret"));
    assert!(
        !req.redacted("https://api.telegent.com")
            .to_string()
            .contains("acct-secret")
    );
    let endpoints: Vec<_> = [
        Endpoint::Create,
        Endpoint::Update,
        Endpoint::Delete,
        Endpoint::Get,
        Endpoint::List,
    ]
    .iter()
    .map(|e| e.api_endpoint("https://api.telegent.com"))
    .collect();
    assert_eq!(
        endpoints,
        [
            "https://api.telegent.com/v1.0/webhook/create",
            "https://api.telegent.com/v1.0/webhook/update",
            "https://api.telegent.com/v1.0/webhook/delete",
            "https://api.telegent.com/v1.0/webhook",
            "https://api.telegent.com/v1.0/account/webhooks",
        ]
    );
}

#[test]
fn token_expiry_is_read_as_utc() {
    let at = |y, mo, d, h, mi, s| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
    // The documented example (providers.md §1.1).
    assert_eq!(
        parse_token_expiry("05/02/2025 06:36:13 PM"),
        Some(at(2025, 5, 2, 18, 36, 13))
    );
    assert_eq!(
        parse_token_expiry("12/31/2025 12:00:00 AM"),
        Some(at(2025, 12, 31, 0, 0, 0))
    );
    assert_eq!(
        parse_token_expiry("01/01/2026 12:30:00 PM"),
        Some(at(2026, 1, 1, 12, 30, 0))
    );
    assert_eq!(
        parse_token_expiry("5/2/2025 6:36:13 pm"),
        Some(at(2025, 5, 2, 18, 36, 13))
    );
    assert_eq!(
        parse_token_expiry("2025-05-02T18:36:13Z"),
        Some(at(2025, 5, 2, 18, 36, 13))
    );
    for bad in ["", "soon", "13/02/2025 06:36:13 PM", "05/02/2025"] {
        assert_eq!(parse_token_expiry(bad), None, "{bad}");
    }
}

#[test]
fn tokens_are_reused_until_shortly_before_expiry() {
    let now = Utc.with_ymd_and_hms(2025, 5, 2, 17, 36, 13).unwrap();
    let in_an_hour = now + TimeDelta::hours(1);
    assert_eq!(
        token_reuse(Some(in_an_hour), now),
        TokenReuse::Until(in_an_hour - TimeDelta::seconds(60))
    );
    // Expiring within the margin: serves only the call that minted it.
    let soon = now + TimeDelta::seconds(30);
    match token_reuse(Some(soon), now) {
        TokenReuse::Until(deadline) => assert!(deadline <= now),
        other => panic!("{other:?}"),
    }
    // Past at minting time: the time zone is not UTC; rely on the 401.
    assert_eq!(
        token_reuse(Some(now - TimeDelta::hours(5)), now),
        TokenReuse::UntilRefused
    );
    assert_eq!(token_reuse(None, now), TokenReuse::UntilRefused);
}

#[test]
fn token_responses_are_parsed() {
    let ok = response(
        200,
        json!({"token": "eyJ.tok", "successful": true, "tokenExpiry": "05/02/2025 06:36:13 PM"}),
    );
    let minted = parse_token("tg", &ok).unwrap();
    assert_eq!(minted.token.expose(), "eyJ.tok");
    assert_eq!(
        minted.expiry,
        Some(Utc.with_ymd_and_hms(2025, 5, 2, 18, 36, 13).unwrap())
    );
    assert!(!format!("{minted:?}").contains("eyJ.tok"));
    let wrapped = response(
        200,
        json!({"Successful": true, "Data": {"token": "t2", "tokenExpiry": "bad"}}),
    );
    let minted = parse_token("tg", &wrapped).unwrap();
    assert_eq!(minted.token.expose(), "t2");
    assert_eq!(minted.expiry, None);

    for status in [400, 401, 403] {
        let e = parse_token(
            "tg",
            &response(
                status,
                json!({"StatusCode": status, "Message": "Invalid AccountKey or AccountSecret."}),
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("Invalid AccountKey"), "{e}");
        assert_eq!(kind_of(e), UpstreamErrorKind::Unauthorized);
    }
    assert_eq!(
        kind_of(parse_token("tg", &response(200, json!({"successful": false}))).unwrap_err()),
        UpstreamErrorKind::Unauthorized
    );
    assert_eq!(
        kind_of(parse_token("tg", &response(200, json!({"successful": true}))).unwrap_err()),
        UpstreamErrorKind::Protocol
    );
    assert_eq!(
        kind_of(parse_token("tg", &response(503, json!({}))).unwrap_err()),
        UpstreamErrorKind::Unavailable
    );
    let mut limited = response(429, json!({"StatusCode": 429}));
    limited.retry_after = Some(Duration::from_secs(3));
    assert_eq!(
        kind_of(parse_token("tg", &limited).unwrap_err()),
        UpstreamErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
}

#[test]
fn flat_and_wrapped_results_parse_alike_and_drop_secrets() {
    let flat = response(200, result_json("WID-1234567"));
    let wrapped = response(
        200,
        json!({"Successful": true, "Data": result_json("WID-1234567")}),
    );
    for resp in [&flat, &wrapped] {
        for endpoint in [Endpoint::Create, Endpoint::Update, Endpoint::Get] {
            let w = parse_webhook("tg", resp, endpoint).unwrap();
            assert_eq!(w.resource.id, "WID-1234567");
            assert_eq!(w.resource.events, events());
            assert!(w.resource.enabled);
            assert_eq!(
                w.resource.url.as_deref(),
                Some("https://api.example.com/telegent/events")
            );
            assert!(!w.fields.contains_key("AuthenticationPassword"));
            assert!(!w.fields.contains_key("AuthenticationToken"));
            assert_eq!(w.fields.len(), 7);
            let dump = format!("{w:?}");
            assert!(!dump.contains("s3cureP@ss") && !dump.contains("echoed-token"));
        }
    }
    let list_flat = response(200, json!([result_json("WID-1"), result_json("WID-2")]));
    let list_wrapped = response(
        200,
        json!({"Successful": true, "Data": [result_json("WID-1"), result_json("WID-2")]}),
    );
    for resp in [&list_flat, &list_wrapped] {
        let ids: Vec<_> = parse_list("tg", resp)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["WID-1", "WID-2"]);
    }
    assert!(
        parse_list("tg", &response(200, json!([])))
            .unwrap()
            .is_empty()
    );
    assert!(
        parse_list(
            "tg",
            &response(200, json!({"Successful": true, "Data": []}))
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn odd_results_are_protocol_errors_or_tolerated() {
    let mut spaced = result_json("WHID-1");
    spaced["SubscribedEvents"] = json!("Order_Update, New_Sms");
    spaced["Active"] = Value::Null;
    let w = parse_webhook("tg", &response(200, spaced), Endpoint::Get).unwrap();
    assert_eq!(w.resource.events, ["Order_Update", "New_Sms"]);
    assert!(w.resource.enabled);
    let mut inactive = result_json("WID-1");
    inactive["Active"] = json!(false);
    assert!(
        !parse_webhook("tg", &response(200, inactive), Endpoint::Get)
            .unwrap()
            .resource
            .enabled
    );
    let no_id = json!({"WebhookUrl": "https://x.io"});
    assert_eq!(
        kind_of(parse_webhook("tg", &response(200, no_id), Endpoint::Get).unwrap_err()),
        UpstreamErrorKind::Protocol
    );
    assert_eq!(
        kind_of(
            parse_webhook(
                "tg",
                &response(200, json!({"Successful": true})),
                Endpoint::Get
            )
            .unwrap_err()
        ),
        UpstreamErrorKind::Protocol
    );
    assert_eq!(
        kind_of(parse_list("tg", &response(200, json!({"x": 1}))).unwrap_err()),
        UpstreamErrorKind::Protocol
    );
    // A wrapped failure carries its own status.
    let failed = response(
        200,
        json!({"Successful": false, "StatusCode": 400, "Message": "The WebhookUrl field is required."}),
    );
    match kind_of(parse_webhook("tg", &failed, Endpoint::Create).unwrap_err()) {
        UpstreamErrorKind::Rejected(errs) => assert_eq!(errs[0].pointer, "/url"),
        k => panic!("{k:?}"),
    }
    assert_eq!(
        kind_of(
            parse_webhook(
                "tg",
                &response(200, json!({"Successful": false})),
                Endpoint::Get
            )
            .unwrap_err()
        ),
        UpstreamErrorKind::Protocol
    );
}

fn error(status: u16, message: &str) -> NativeResponse {
    response(status, json!({"StatusCode": status, "Message": message}))
}

#[test]
fn every_documented_error_status_is_classified() {
    // seed 000 examples, one per declared status.
    let bad = "Bad request: one or more required fields are missing or contain an invalid value.";
    match kind_of(classify_error("tg", &error(400, bad), Endpoint::Create)) {
        UpstreamErrorKind::Rejected(errs) => {
            assert_eq!(errs.len(), 1);
            assert_eq!(errs[0].pointer, "");
            assert_eq!(errs[0].detail, format!("Telegent: {bad}"));
            assert_eq!(errs[0].provider.as_deref(), Some("tg"));
        }
        k => panic!("{k:?}"),
    }
    let e = classify_error("tg", &error(400, bad), Endpoint::Create);
    match e {
        Error::Upstream(u) => {
            assert_eq!(u.status, Some(400));
            assert_eq!(u.message, bad);
        }
        other => panic!("{other:?}"),
    }
    for endpoint in [Endpoint::Get, Endpoint::Update, Endpoint::Delete] {
        assert_eq!(
            kind_of(classify_error(
                "tg",
                &error(
                    404,
                    "Not found: the requested resource does not exist or belongs to a different account."
                ),
                endpoint
            )),
            UpstreamErrorKind::NotFound
        );
    }
    for endpoint in [Endpoint::Create, Endpoint::List] {
        match kind_of(classify_error("tg", &error(404, "Not found"), endpoint)) {
            UpstreamErrorKind::Rejected(errs) => assert_eq!(errs[0].pointer, "/account"),
            k => panic!("{k:?}"),
        }
    }
    let cases = [
        (401, UpstreamErrorKind::Unauthorized),
        (403, UpstreamErrorKind::Unauthorized),
        (405, UpstreamErrorKind::Protocol),
        (408, UpstreamErrorKind::Timeout),
        (429, UpstreamErrorKind::RateLimited { retry_after: None }),
        (500, UpstreamErrorKind::Unavailable),
        (503, UpstreamErrorKind::Unavailable),
        (504, UpstreamErrorKind::Timeout),
    ];
    for (status, kind) in cases {
        assert_eq!(
            kind_of(classify_error("tg", &error(status, "x"), Endpoint::Get)),
            kind,
            "{status}"
        );
    }
    let mut limited = error(429, "Too many requests");
    limited.retry_after = Some(Duration::from_secs(9));
    assert_eq!(
        kind_of(classify_error("tg", &limited, Endpoint::List)),
        UpstreamErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(9))
        }
    );
    // The knowledge bank's 422 (business rule) is a rejection too.
    assert!(matches!(
        kind_of(classify_error("tg", &error(422, "SubscribedEvents: Message_Status is not available."), Endpoint::Create)),
        UpstreamErrorKind::Rejected(ref e) if e[0].pointer == "/events"
    ));
    // A body that is not JSON still classifies by status.
    let html = NativeResponse {
        status: 502,
        retry_after: None,
        body: b"<html>bad gateway</html>".to_vec(),
    };
    assert_eq!(
        kind_of(classify_error("tg", &html, Endpoint::Get)),
        UpstreamErrorKind::Unavailable
    );
}

#[test]
fn messages_map_to_the_most_specific_pointer() {
    let cases = [
        ("The WebhookUrl field is required.", "/url"),
        (
            "The field AuthenticationPassword must be a string with a maximum length of 255.",
            "/auth/password",
        ),
        (
            "AuthenticationToken is required when AuthenticationType is Token.",
            "/auth/token",
        ),
        (
            "AuthenticationType must be None, Basic or Token.",
            "/auth/type",
        ),
        ("Invalid value for 'DataFormat'.", "/format"),
        ("$.Method: POST or PUT expected", "/method"),
        ("SubscribedEvents contains an unknown event", "/events"),
        ("AccountId AID-9 is unknown", "/account"),
        ("AuthenticationUsername is required", "/auth/username"),
        ("WebhookId is required", ""),
        ("Bad request: one or more required fields are missing.", ""),
        // Whole words only: no field here.
        ("WebhookUrls and Methods", ""),
    ];
    for (message, pointer) in cases {
        assert_eq!(field_pointer(message), pointer, "{message}");
    }
}

#[test]
fn refusals_are_unauthorized_and_say_what_was_tried() {
    let resp = error(
        401,
        "Unauthorized: Bearer token is missing, expired, or invalid.",
    );
    let e = refusal_error("tg", &resp, Endpoint::List, true);
    assert!(e.to_string().contains("re-minted"), "{e}");
    assert!(e.to_string().contains("/v1.0/account/webhooks"), "{e}");
    assert_eq!(kind_of(e), UpstreamErrorKind::Unauthorized);
    let e = refusal_error(
        "tg",
        &error(403, "Check the ApiEndpoint scope."),
        Endpoint::Get,
        false,
    );
    assert!(e.to_string().contains("static token"), "{e}");
    assert!(is_token_refusal(401) && is_token_refusal(403));
    assert!(!is_token_refusal(404) && !is_token_refusal(400));
}

#[test]
fn update_sends_every_field_and_never_an_echoed_secret() {
    let current = parse_webhook("tg", &response(200, result_json("WID-7")), Endpoint::Get).unwrap();
    let s = spec()
        .with(|d| {
            d.auth = CallbackAuth::None;
            d.url = CallbackUrl::parse("https://new.example.com/hooks").unwrap();
        })
        .unwrap();
    let new = plan("sub_1", &s, &events()).unwrap().remove(0);
    let body = update_body("WID-7", &current.fields, &new);
    assert_update_body(&body);
    assert_eq!(body.as_object().unwrap().len(), 10);
    assert_eq!(body["WebhookId"], "WID-7");
    assert_eq!(body["WebhookUrl"], "https://new.example.com/hooks");
    assert_eq!(body["AuthenticationType"], "None");
    // The old password is overwritten, not carried over from the echo.
    assert_eq!(body["AuthenticationPassword"], "");
    assert_eq!(body["AuthenticationToken"], "");
    let req = update_request("tok", body);
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, "/v1.0/webhook/update");
    assert_eq!(
        req.secret_pointers,
        ["/AuthenticationPassword", "/AuthenticationToken"]
    );

    // A plan without a field takes the current visible value, never a secret.
    let mut partial = new.clone();
    let obj = partial.body.as_object_mut().unwrap();
    obj.remove("DataFormat");
    obj.remove("AuthenticationToken");
    let body = update_body("WID-7", &current.fields, &partial);
    assert_eq!(body["DataFormat"], "json");
    assert_eq!(body["AuthenticationToken"], Value::Null);
    assert_update_body(&body);
}

#[test]
fn an_update_that_changes_nothing_is_skipped() {
    let current = parse_webhook("tg", &response(200, result_json("WID-7")), Endpoint::Get).unwrap();
    let p = plan("sub_1", &spec(), &events()).unwrap().remove(0);
    assert!(update_is_noop(&current, &p, &p));
    let s = spec()
        .with(|d| d.format = Some(DeliveryFormat::Xml))
        .unwrap();
    let q = plan("sub_1", &s, &events()).unwrap().remove(0);
    assert!(!update_is_noop(&current, &p, &q));
    // Drift at Telegent is written back even when the plans are equal.
    let mut drifted = current.clone();
    drifted
        .fields
        .insert("WebhookUrl".into(), json!("https://elsewhere.example.com"));
    assert!(!update_is_noop(&drifted, &p, &p));
}

#[test]
fn delete_get_and_list_requests() {
    let d = delete_request("tok", "AID-1234567", "WID-1");
    assert_eq!(d.method, Method::POST);
    assert_eq!(d.path, "/v1.0/webhook/delete");
    assert_eq!(
        d.body.unwrap(),
        json!({"WebhookId": "WID-1", "AccountId": "AID-1234567"})
    );
    let g = get_request("tok", "AID-1234567", "WID-1");
    assert_eq!(g.method, Method::GET);
    assert_eq!(g.path, "/v1.0/webhook");
    assert_eq!(
        g.query,
        [
            ("WebhookId".to_owned(), "WID-1".to_owned()),
            ("AccountId".to_owned(), "AID-1234567".to_owned())
        ]
    );
    assert!(g.body.is_none());
    let l = list_request("tok", "AID-1234567");
    assert_eq!(l.method, Method::GET);
    assert_eq!(l.path, "/v1.0/account/webhooks");
    assert_eq!(
        l.query,
        [("AccountId".to_owned(), "AID-1234567".to_owned())]
    );
    for req in [&g, &l] {
        assert!(
            req.headers
                .iter()
                .any(|h| h.name == "Authorization" && h.sensitive && h.value == "Bearer tok")
        );
    }
    assert!(
        parse_delete(
            "tg",
            &response(
                200,
                json!({"WebhookId": "WID-1", "WebhookStatus": "Deleted"})
            )
        )
        .is_ok()
    );
    assert!(parse_delete("tg", &error(404, "Not found")).is_ok());
    assert_eq!(
        kind_of(parse_delete("tg", &error(500, "x")).unwrap_err()),
        UpstreamErrorKind::Unavailable
    );
}

#[test]
fn account_ids_are_aid_and_letters_or_digits() {
    let caps = capabilities();
    let check = |account: &str| {
        let mut d = draft();
        d.account = Some(account.to_owned());
        caps.check("tg", "telegent", &mut d)
    };
    for ok in [
        "AID-1234567",
        "AID-0000000",
        "AID-7a",
        &format!("AID-{}", "9".repeat(96)),
    ] {
        assert!(check(ok).is_ok(), "{ok}");
    }
    for bad in [
        ".",
        "..",
        "a/b",
        "%2e%2e",
        "AID-",
        "AID-../x",
        "AID-123 4567",
        "aid-1234567",
        "DID-1234567",
        "1234567",
    ] {
        match check(bad) {
            Err(Error::Invalid(e)) => {
                assert_eq!(e.len(), 1, "{bad}: {e:?}");
                assert_eq!(e[0].pointer, "/account", "{bad}");
                assert_eq!(e[0].provider.as_deref(), Some("tg"), "{bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let Err(Error::Invalid(e)) = check(&format!("AID-{}", "9".repeat(97))) else {
        panic!("a 101-character AccountId passed");
    };
    assert!(
        e[0].detail.contains("at most 100 characters"),
        "{}",
        e[0].detail
    );
}
