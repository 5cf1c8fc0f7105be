//! Unit tests of the pure translation against seed 003 and providers.md §3.

use serde_json::json;
use switchboard_core::{
    CallbackAuth, CallbackUrl, Filter, OnUnsupported, Secret, SpecDraft, SubscriptionSpec, testing,
};

use super::*;

const WS: &str = "b4e02c85-c6d2-4b15-8885-e09671799c61";
const ORG: &str = "cb28a94e-8557-4394-80ea-5bbd2170d434";
const KEY: &str = "KeV+/HGoIQrxuE5YPCRR6AuQOJveldYNNhbVi1i22qk=";

fn spec() -> SubscriptionSpec {
    SpecDraft {
        account: Some(WS.into()),
        name: Some("sms hooks".into()),
        signing_secret: Some(Secret::new(KEY)),
        filters: vec![Filter {
            key: "channelId".into(),
            value: "58c44c1d-0000-4000-8000-000000000001".into(),
        }],
        ..testing::draft(
            "bird",
            "https://example.com/webhook",
            &["message.sent", "message.received"],
        )
    }
    .validate()
    .unwrap()
}

/// `spec()` with `provider_options.template` set to `template`.
fn templated(template: Value) -> SubscriptionSpec {
    spec()
        .with(|d| {
            d.provider_options.insert("template".into(), template);
        })
        .unwrap()
}

fn events() -> Vec<String> {
    vec![
        "channels:sms.outbound".into(),
        "channels:sms.inbound".into(),
    ]
}

fn seg(value: &str) -> PathSegment {
    PathSegment::new(value).unwrap()
}

fn scope() -> Scope {
    Scope {
        organization: None,
        workspace: seg(WS),
    }
}

fn response(status: u16, body: Value) -> NativeResponse {
    NativeResponse {
        status,
        retry_after: None,
        body: body.to_string().into_bytes(),
    }
}

fn invalid(e: Error) -> Vec<FieldError> {
    match e {
        Error::Invalid(errors) => errors,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn kind_of(e: Error) -> UpstreamErrorKind {
    match e {
        Error::Upstream(u) => u.kind,
        other => panic!("not upstream: {other:?}"),
    }
}

#[test]
fn url_pattern_accepts_dns_names_over_https() {
    for ok in [
        "https://example.com",
        "https://example.com/",
        "https://example.com/webhook",
        "https://a.b.example.co.uk/hooks/bird?tenant=x&y=1#frag",
        "https://my-host.example.io/a%20b/ü",
        "https://xn--bcher-kva.example/hook",
        "https://-odd-.example.com/",
        "https://123.example.com/x",
        "https://10.0.0.1.nip.io/x",
        "https://example.com//double",
    ] {
        assert_eq!(check_url(ok), Ok(()), "{ok}");
    }
}

#[test]
fn url_pattern_refusals_name_the_reason() {
    let cases = [
        ("http://example.com/hook", "https://"),
        ("HTTPS://example.com/hook", "https://"),
        ("https://192.168.1.10/hook", "IP address"),
        ("https://8.8.8.8", "IP address"),
        ("https://[::1]/hook", "IP address"),
        ("https://example.com:8443/hook", "port"),
        ("https://example.com:443/hook", "port"),
        ("https://localhost/hook", "single label"),
        ("https://intranet", "single label"),
        ("https://example.123/hook", "top-level domain"),
        ("https://example.c/hook", "top-level domain"),
        ("https://example.xn--p1ai/hook", "top-level domain"),
        ("https://user:pw@example.com/hook", "user info"),
        ("https://user@example.com/hook", "user info"),
        ("https://example.com/a b", "whitespace"),
        ("https://example.com/a\tb", "whitespace"),
        ("https://example.com/a\u{a0}b", "whitespace"),
        ("https://exa mple.com/", "whitespace"),
        ("https://example.com?x=1", "query"),
        ("https://example.com#top", "query"),
        ("https://example..com/", "empty label"),
        ("https://.example.com/", "empty label"),
        ("https://example.com./", "empty label"),
        ("https://exa_mple.com/", "`exa_mple`"),
        ("https://bücher.example/", "punycode"),
        ("https:///hook", "no host"),
        ("https://", "no host"),
    ];
    for (url, needle) in cases {
        let err = check_url(url).expect_err(url);
        assert!(err.contains(needle), "{url}: {err}");
    }
}

#[test]
fn plan_fans_out_one_subscription_per_event() {
    let plans = plan(&spec(), &events()).unwrap();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[0].key, "channels:sms.outbound");
    assert_eq!(plans[0].events, ["channels:sms.outbound"]);
    assert_eq!(plans[1].key, "channels:sms.inbound");
    // The seed's create example, plus the fields Switchboard always writes.
    assert_eq!(
        plans[0].body,
        json!({
            "service": "channels",
            "event": "sms.outbound",
            "url": "https://example.com/webhook",
            "signingKey": KEY,
            "eventFilters": [{"key": "channelId", "value": "58c44c1d-0000-4000-8000-000000000001"}],
            "status": "active",
        })
    );
    for shared in ["url", "signingKey", "eventFilters"] {
        assert_eq!(plans[0].body[shared], plans[1].body[shared], "{shared}");
    }
    assert_eq!(plans[1].body["event"], "sms.inbound");
    assert_eq!(plans[0].secret_pointers, ["/signingKey"]);
    assert!(!format!("{:?}", plans[0]).contains(KEY));
}

#[test]
fn no_secret_no_filters_no_template_means_none_sent() {
    let s = spec()
        .with(|d| {
            d.signing_secret = None;
            d.filters.clear();
        })
        .unwrap();
    let plans = plan(&s, &events()).unwrap();
    let body = plans[0].body.as_object().unwrap();
    assert!(!body.contains_key("signingKey"));
    assert!(!body.contains_key("template"));
    assert_eq!(body["eventFilters"], json!([]));
    assert!(plans[0].secret_pointers.is_empty());
}

#[test]
fn template_is_validated_and_shared() {
    let plans = plan(&templated(json!("text")), &events()).unwrap();
    assert!(plans.iter().all(|p| p.body["template"] == "text"));

    for bad in [
        json!(""),
        json!(7),
        json!("two words"),
        json!("x".repeat(65)),
        json!({"a": 1}),
    ] {
        let errors = invalid(plan(&templated(bad.clone()), &events()).unwrap_err());
        assert_eq!(errors.len(), 1, "{bad}");
        assert_eq!(errors[0].pointer, "/provider_options/template");
        assert_eq!(errors[0].provider.as_deref(), Some("bird"));
    }
}

#[test]
fn invalid_url_is_a_422_naming_the_pattern() {
    let s = spec()
        .with(|d| d.url = CallbackUrl::parse("https://10.1.2.3:8443/hook").unwrap())
        .unwrap();
    let errors = invalid(plan(&s, &events()).unwrap_err());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].pointer, "/url");
    assert_eq!(errors[0].provider.as_deref(), Some("bird"));
    assert!(
        errors[0].detail.contains(URL_PATTERN),
        "{}",
        errors[0].detail
    );
    assert!(
        errors[0].detail.contains("IP address"),
        "{}",
        errors[0].detail
    );
}

#[test]
fn bad_native_names_point_at_their_event() {
    let errors = invalid(
        plan(
            &spec(),
            &[
                "channels:sms.outbound".into(),
                "sms.outbound".into(),
                "mail:sms.outbound".into(),
                "channels:".into(),
            ],
        )
        .unwrap_err(),
    );
    let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/events/1", "/events/2", "/events/3"]);
    assert!(errors[0].detail.contains("service:event"));
    assert!(errors[1].detail.contains("conversations"));
}

#[test]
fn capabilities_declare_what_bird_lacks() {
    let c = capabilities();
    assert_eq!(c.auth, [AuthKind::None]);
    assert!(!c.headers);
    assert_eq!(c.methods, [DeliveryMethod::Post]);
    assert_eq!(c.formats, [DeliveryFormat::Json]);
    assert!(c.timeout_seconds.is_none() && c.max_retries.is_none());
    assert!(c.filters && c.native_disable && c.https_only);
    assert!(matches!(c.events_per_resource, EventsPerResource::One));
    assert_eq!(c.provider_options, ["template"]);

    let mut s = SpecDraft {
        auth: CallbackAuth::Bearer {
            token: Secret::new("t"),
        },
        headers: [("X-Team".to_owned(), "billing".to_owned())].into(),
        method: Some(DeliveryMethod::Put),
        format: Some(DeliveryFormat::Xml),
        timeout_seconds: Some(10),
        max_retries: Some(2),
        ..spec().into_draft()
    };
    let errors = invalid(c.check("bird", crate::KIND, &mut s.clone()).unwrap_err());
    let mut pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
    pointers.sort_unstable();
    assert_eq!(
        pointers,
        [
            "/auth",
            "/format",
            "/headers",
            "/max_retries",
            "/method",
            "/timeout_seconds"
        ]
    );
    s.on_unsupported = OnUnsupported::Ignore;
    let warnings = c.check("bird", crate::KIND, &mut s).unwrap();
    assert_eq!(warnings.len(), 6);
    assert!(plan(&s.validate().unwrap(), &events()).is_ok());
}

#[test]
fn create_request_drops_status_and_uses_accesskey() {
    let plans = plan(&spec(), &events()).unwrap();
    let req = create_request("ak_secret", &scope(), &plans[0]);
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, format!("/workspaces/{WS}/webhook-subscriptions"));
    let body = req.body.as_ref().unwrap();
    assert!(body.get("status").is_none());
    assert_eq!(body["service"], "channels");
    let auth = req
        .headers
        .iter()
        .find(|h| h.name == "Authorization")
        .unwrap();
    assert_eq!(auth.value, "AccessKey ak_secret");
    assert!(auth.sensitive);
    let shown = req.redacted("https://api.bird.com").to_string();
    assert!(
        !shown.contains("ak_secret") && !shown.contains(KEY),
        "{shown}"
    );
    assert!(shown.contains(&format!(
        "https://api.bird.com/workspaces/{WS}/webhook-subscriptions"
    )));
}

#[test]
fn organization_prefix() {
    let s = Scope {
        organization: Some(seg(ORG)),
        workspace: seg(WS),
    };
    assert_eq!(
        collection_path(&s),
        format!("/organizations/{ORG}/workspaces/{WS}/webhook-subscriptions")
    );
    assert_eq!(
        get_request("k", &s, &seg("id 1")).path,
        format!("/organizations/{ORG}/workspaces/{WS}/webhook-subscriptions/id%201")
    );
}

#[test]
fn inactive_plans_preview_the_follow_up_patch() {
    let s = spec().with(|d| d.enabled = false).unwrap();
    let plans = plan(&s, &events()).unwrap();
    assert!(!plan_is_active(&plans[0]));
    let reqs = preview_requests("k", &scope(), &plans);
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[0].method, Method::POST);
    assert!(reqs[0].body.as_ref().unwrap().get("status").is_none());
    assert_eq!(reqs[1].method, Method::PATCH);
    assert_eq!(
        reqs[1].path,
        format!("/workspaces/{WS}/webhook-subscriptions/{{webhookSubscriptionId}}")
    );
    assert_eq!(reqs[1].body, Some(json!({"status": "inactive"})));
    let active = plan(&spec(), &events()).unwrap();
    assert_eq!(preview_requests("k", &scope(), &active).len(), 2);
}

fn patch_body(update: Update) -> Value {
    match update {
        Update::Patch(req) => {
            assert_eq!(req.method, Method::PATCH);
            req.body.unwrap()
        }
        other => panic!("expected a PATCH, got {other:?}"),
    }
}

#[test]
fn patch_sends_only_changed_fields() {
    let old = plan(&spec(), &events()).unwrap().remove(0);
    assert_eq!(
        update_request("k", &scope(), &seg("s1"), &old, &old),
        Update::Unchanged
    );

    let s = spec()
        .with(|d| d.url = CallbackUrl::parse("https://new.example.com/hook").unwrap())
        .unwrap();
    let new = plan(&s, &events()).unwrap().remove(0);
    let update = update_request("k", &scope(), &seg("s1"), &old, &new);
    if let Update::Patch(req) = &update {
        assert_eq!(
            req.path,
            format!("/workspaces/{WS}/webhook-subscriptions/s1")
        );
        assert!(req.secret_pointers.is_empty());
    }
    assert_eq!(
        patch_body(update),
        json!({"url": "https://new.example.com/hook"})
    );

    let s = spec().with(|d| d.enabled = false).unwrap();
    let new = plan(&s, &events()).unwrap().remove(0);
    assert_eq!(
        patch_body(update_request("k", &scope(), &seg("s1"), &old, &new)),
        json!({"status": "inactive"})
    );

    let s = spec()
        .with(|d| {
            d.filters.clear();
            d.signing_secret = Some(Secret::new("rotated"));
        })
        .unwrap();
    let new = plan(&s, &events()).unwrap().remove(0);
    let update = update_request("k", &scope(), &seg("s1"), &old, &new);
    assert!(!format!("{update:?}").contains("rotated"));
    assert_eq!(
        patch_body(update),
        json!({"eventFilters": [], "signingKey": "rotated"})
    );

    // A template change is PATCHed: the update page lists `template`.
    let new = plan(&templated(json!("twilio")), &events())
        .unwrap()
        .remove(0);
    assert_eq!(
        patch_body(update_request("k", &scope(), &seg("s1"), &old, &new)),
        json!({"template": "twilio"})
    );
}

#[test]
fn changes_patch_cannot_express_recreate() {
    let old = plan(&spec(), &events()).unwrap();
    // service/event are immutable.
    assert_eq!(
        update_request("k", &scope(), &seg("s1"), &old[0], &old[1]),
        Update::Recreate
    );
    // signingKey and template cannot be cleared by PATCH.
    let s = spec().with(|d| d.signing_secret = None).unwrap();
    let new = plan(&s, &events()).unwrap();
    assert_eq!(
        update_request("k", &scope(), &seg("s1"), &old[0], &new[0]),
        Update::Recreate
    );
    let with_template = plan(&templated(json!("text")), &events()).unwrap();
    assert_eq!(
        update_request("k", &scope(), &seg("s1"), &with_template[0], &old[0]),
        Update::Recreate
    );
}

#[test]
fn parses_the_seed_subscription_object() {
    let resp = response(
        201,
        json!({
            "id": "123e4567-e89b-12d3-a456-426614174000",
            "organizationId": ORG,
            "workspaceId": WS,
            "service": "channels", "event": "sms.outbound",
            "eventFilters": [{"key": "channelId", "value": "58c44c1d"}],
            "template": "text", "url": "https://example.com/webhook",
            "signingKey": KEY, "status": "active"
        }),
    );
    let plans = plan(&spec(), &events()).unwrap();
    let r = parse_subscription("bird", &resp, Call::Create(&plans[0])).unwrap();
    assert_eq!(r.id, "123e4567-e89b-12d3-a456-426614174000");
    assert_eq!(r.events, ["channels:sms.outbound"]);
    assert!(r.enabled);
    assert_eq!(r.url.as_deref(), Some("https://example.com/webhook"));
    assert_eq!(r.filters, [("channelId".to_owned(), "58c44c1d".to_owned())]);
    assert_eq!(r.marker, None);

    let inactive = response(
        200,
        json!({"id": "x", "service": "channels", "event": "sms.outbound", "status": "inactive"}),
    );
    assert!(
        !parse_subscription("bird", &inactive, Call::Get)
            .unwrap()
            .enabled
    );
    let no_status = response(
        200,
        json!({"id": "x", "service": "channels", "event": "sms.outbound"}),
    );
    assert!(
        parse_subscription("bird", &no_status, Call::Get)
            .unwrap()
            .enabled
    );
    let broken = response(200, json!({"id": "x"}));
    assert_eq!(
        kind_of(parse_subscription("bird", &broken, Call::Get).unwrap_err()),
        UpstreamErrorKind::Protocol
    );
}

#[test]
fn list_pages_and_their_end() {
    let page = parse_list_page(
        "bird",
        &response(
            200,
            json!({"results": [{"id": "a", "service": "conversations", "event": "conversation.created", "status": "active"}],
                   "nextPageToken": "tok-2"}),
        ),
    )
    .unwrap();
    assert_eq!(
        page.resources[0].events,
        ["conversations:conversation.created"]
    );
    assert_eq!(page.next_page_token.as_deref(), Some("tok-2"));
    for end in [
        json!({"results": []}),
        json!({"results": [], "nextPageToken": null}),
        json!({"results": [], "nextPageToken": ""}),
    ] {
        assert_eq!(
            parse_list_page("bird", &response(200, end))
                .unwrap()
                .next_page_token,
            None
        );
    }
    assert_eq!(
        kind_of(parse_list_page("bird", &response(200, json!({"items": []}))).unwrap_err()),
        UpstreamErrorKind::Protocol
    );

    let first = list_request("k", &scope(), None);
    assert_eq!(first.query, [("limit".to_owned(), "100".to_owned())]);
    let next = list_request("k", &scope(), Some("tok 2"));
    assert_eq!(next.query[1], ("pageToken".to_owned(), "tok 2".to_owned()));
}

#[test]
fn limit_refusal_names_the_limit() {
    let plans = plan(&spec(), &events()).unwrap();
    for body in [
        json!({"code": "SubscriptionLimitExceeded", "message": "Maximum of 5 webhook subscriptions reached for this event and filter combination"}),
        json!({"error": {"message": "Too many subscriptions for the same filters"}}),
        json!({"message": "Webhook subscription limit reached"}),
    ] {
        for status in [400, 409, 422] {
            let e = classify_error(
                "bird",
                &response(status, body.clone()),
                Call::Create(&plans[0]),
            );
            match kind_of(e) {
                UpstreamErrorKind::Rejected(errors) => {
                    assert_eq!(errors.len(), 1);
                    assert_eq!(errors[0].pointer, "/filters");
                    assert!(
                        errors[0].detail.contains(LIMIT_PHRASE),
                        "{}",
                        errors[0].detail
                    );
                    assert!(errors[0].detail.contains("channels:sms.outbound"));
                    assert!(errors[0].detail.contains("channelId=58c44c1d"));
                }
                k => panic!("{k:?}"),
            }
        }
    }
    let s = spec().with(|d| d.filters.clear()).unwrap();
    let unfiltered = plan(&s, &events()).unwrap();
    let body = json!({"message": "Webhook subscription limit reached"});
    match kind_of(classify_error(
        "bird",
        &response(422, body),
        Call::Update(&unfiltered[1]),
    )) {
        UpstreamErrorKind::Rejected(errors) => {
            assert_eq!(errors[0].pointer, "/events");
            assert!(errors[0].detail.contains("without filters"));
        }
        k => panic!("{k:?}"),
    }
    // A length limit is a field problem, not the combination limit.
    let body = json!({"message": "The webhook url exceeds the maximum length"});
    match kind_of(classify_error(
        "bird",
        &response(422, body),
        Call::Create(&plans[0]),
    )) {
        UpstreamErrorKind::Rejected(errors) => assert!(!errors[0].detail.contains(LIMIT_PHRASE)),
        k => panic!("{k:?}"),
    }
}

#[test]
fn validation_errors_map_to_caller_fields_in_any_shape() {
    let plans = plan(&spec(), &events()).unwrap();
    let shapes = [
        json!({"code": "InvalidPayload", "message": "invalid", "details": {"url": ["does not match pattern"], "eventFilters.0.key": "unknown filter"}}),
        json!({"message": "invalid", "errors": [{"field": "url", "message": "does not match pattern"}, {"instancePath": "/eventFilters/0/key", "message": "unknown filter"}]}),
        json!({"error": {"message": "invalid", "details": [{"param": "url", "message": "does not match pattern"}, {"param": "eventFilters[0].key", "message": "unknown filter"}]}}),
    ];
    for body in shapes {
        match kind_of(classify_error(
            "bird",
            &response(422, body.clone()),
            Call::Create(&plans[0]),
        )) {
            UpstreamErrorKind::Rejected(errors) => {
                let mut pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
                pointers.sort_unstable();
                assert_eq!(pointers, ["/filters/0", "/url"], "{body}");
                assert!(errors.iter().all(|e| e.detail.starts_with("Bird: ")));
            }
            k => panic!("{k:?}"),
        }
    }
    let e = classify_error(
        "bird",
        &response(400, json!({"title": "Bad Request"})),
        Call::Create(&plans[0]),
    );
    match &e {
        Error::Upstream(u) => assert_eq!(u.message, "Bad Request"),
        other => panic!("{other:?}"),
    }
    match kind_of(e) {
        UpstreamErrorKind::Rejected(errors) => {
            assert_eq!(errors[0].pointer, "");
            assert_eq!(errors[0].detail, "Bird: Bad Request");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(field_pointer("signingKey"), "/signing_secret");
    assert_eq!(field_pointer("body.template"), "/provider_options/template");
    assert_eq!(field_pointer("status"), "/enabled");
    assert_eq!(field_pointer("event"), "/events");
    assert_eq!(field_pointer("mystery"), "");
}

#[test]
fn echoed_signing_keys_are_scrubbed() {
    let plans = plan(&spec(), &events()).unwrap();
    let body = json!({"message": format!("signingKey {KEY} is invalid"), "details": {"signingKey": [format!("bad value {KEY}")]}});
    let e = classify_error("bird", &response(422, body), Call::Create(&plans[0]));
    let shown = format!("{e:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("/signing_secret"));
}

#[test]
fn statuses_are_classified() {
    let plans = plan(&spec(), &events()).unwrap();
    let create = Call::Create(&plans[0]);
    let cases = [
        (401, Call::List, UpstreamErrorKind::Unauthorized),
        (403, create, UpstreamErrorKind::Unauthorized),
        (404, Call::Get, UpstreamErrorKind::NotFound),
        (404, Call::Update(&plans[0]), UpstreamErrorKind::NotFound),
        (500, create, UpstreamErrorKind::Unavailable),
        (503, Call::List, UpstreamErrorKind::Unavailable),
        (504, Call::Get, UpstreamErrorKind::Timeout),
        (400, Call::List, UpstreamErrorKind::Protocol),
        (422, Call::Delete, UpstreamErrorKind::Protocol),
        (418, Call::Get, UpstreamErrorKind::Protocol),
    ];
    for (status, call, want) in cases {
        assert_eq!(
            kind_of(classify_error(
                "bird",
                &response(status, json!({"message": "m"})),
                call
            )),
            want,
            "{status} {call:?}"
        );
    }
    let mut limited = response(429, json!({}));
    limited.retry_after = Some(std::time::Duration::from_secs(7));
    assert_eq!(
        kind_of(classify_error("bird", &limited, Call::List)),
        UpstreamErrorKind::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(7))
        }
    );
    // A 404 on the collection is the workspace, i.e. the caller's account.
    for call in [create, Call::List] {
        match kind_of(classify_error(
            "bird",
            &response(404, json!({"message": "Workspace not found"})),
            call,
        )) {
            UpstreamErrorKind::Rejected(errors) => {
                assert_eq!(errors[0].pointer, "/account");
                assert!(errors[0].detail.contains("Workspace not found"));
            }
            k => panic!("{k:?}"),
        }
    }
}

#[test]
fn messages_come_from_any_plausible_field() {
    assert_eq!(
        error_message(&json!({"message": "a"})).as_deref(),
        Some("a")
    );
    assert_eq!(
        error_message(&json!({"error": {"message": "b"}})).as_deref(),
        Some("b")
    );
    assert_eq!(error_message(&json!({"error": "c"})).as_deref(), Some("c"));
    assert_eq!(error_message(&json!({"detail": "d"})).as_deref(), Some("d"));
    assert_eq!(
        error_message(&json!({"x": [{"y": "e"}]})).as_deref(),
        Some("e")
    );
    assert_eq!(error_message(&json!({"code": 5})), None);
    assert_eq!(error_message(&Value::Null), None);
    let plain = NativeResponse {
        status: 502,
        retry_after: None,
        body: b"Bad Gateway".to_vec(),
    };
    match classify_error("bird", &plain, Call::Get) {
        Error::Upstream(u) => {
            assert_eq!(u.message, "Bad Gateway");
            assert_eq!(u.kind, UpstreamErrorKind::Unavailable);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn event_filters_parse_sorted_by_key_then_value() {
    let with_filters = |filters: Value| {
        let resp = response(
            200,
            json!({"id": "x", "service": "channels", "event": "sms.inbound", "eventFilters": filters}),
        );
        parse_subscription("bird", &resp, Call::Get)
            .unwrap()
            .filters
    };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        with_filters(json!([
            {"key": "to", "value": "+31"},
            {"key": "channelId", "value": "b"},
            {"key": "channelId", "value": "a"}
        ])),
        [
            pair("channelId", "a"),
            pair("channelId", "b"),
            pair("to", "+31")
        ]
    );
    assert!(with_filters(json!([])).is_empty());
    assert!(with_filters(Value::Null).is_empty());
    // Not a documented filter item: left out, the rest kept.
    assert_eq!(
        with_filters(
            json!([{"key": "channelId"}, {"key": 1, "value": "x"}, "k=v", {"key": "to", "value": "+31"}])
        ),
        [pair("to", "+31")]
    );
    let resp = response(
        200,
        json!({"results": [{"id": "a", "service": "channels", "event": "sms.inbound",
                            "eventFilters": [{"key": "z", "value": "1"}, {"key": "a", "value": "2"}]}]}),
    );
    let page = parse_list_page("bird", &resp).unwrap();
    assert_eq!(page.resources[0].filters, [pair("a", "2"), pair("z", "1")]);
}

#[test]
fn workspace_ids_must_be_uuids() {
    let caps = capabilities();
    let check = |account: &str| {
        let mut draft = spec().into_draft();
        draft.account = Some(account.to_owned());
        caps.check("bird", "accesskey-workspace", &mut draft)
    };
    assert!(check(WS).is_ok());
    for bad in [
        ".",
        "..",
        "a/b",
        "%2e%2e",
        "workspace-1",
        "b4e02c85c6d24b158885e09671799c61",
        &format!("{WS}/.."),
    ] {
        match check(bad) {
            Err(Error::Invalid(e)) => {
                assert_eq!(e.len(), 1, "{bad}: {e:?}");
                assert_eq!(e[0].pointer, "/account", "{bad}");
                assert_eq!(e[0].provider.as_deref(), Some("bird"), "{bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let Err(Error::Invalid(e)) = check(&format!("{WS}1")) else {
        panic!("a 37-character workspace id passed");
    };
    assert!(
        e[0].detail.contains("at most 36 characters"),
        "{}",
        e[0].detail
    );
}

#[test]
fn path_segments_are_encoded_and_dot_ids_refused() {
    let s = Scope {
        organization: Some(seg("%2e%2e")),
        workspace: seg("a b"),
    };
    assert_eq!(
        delete_request("k", &s, &seg("a/../b")).path,
        "/organizations/%252e%252e/workspaces/a%20b/webhook-subscriptions/a%2F..%2Fb"
    );
    for id in ["", ".", ".."] {
        let resp = response(
            201,
            json!({"id": id, "service": "channels", "event": "sms.inbound"}),
        );
        let err = parse_subscription("bird", &resp, Call::Get).unwrap_err();
        assert_eq!(kind_of(err), UpstreamErrorKind::Protocol, "{id:?}");
    }
}
