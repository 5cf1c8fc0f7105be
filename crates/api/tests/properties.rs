//! Property tests for the request path a caller controls: arbitrary JSON and
//! mutated subscription bodies go through `parse_json` and `into_spec`, and
//! every spec that passes goes through the Talkover translation. Nothing may
//! panic, and every rejection must be one the problem mapper renders as a
//! 400 or a 422 with usable field pointers (a panic or an `Internal` error
//! would be a 500 for bad input).

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchboard_api::dto::SubscriptionRequest;
use switchboard_api::extract::parse_json;
use switchboard_core::{Error, FieldError};
use switchboard_core::{EventCatalog, EventName, SubscriptionSpec};
use switchboard_talkover::translate;

const CATALOG: &str = include_str!("../../../config/events.toml");

/// Moderate: the suite runs on 2 cores in CI.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// Strings that tend to break things: empty, whitespace, control
/// characters, non-ASCII, JSON-pointer escapes, very long.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[ -~]{0,40}",
        1 => Just(String::new()),
        1 => Just(" \t\n".to_owned()),
        1 => Just("a/b~c~1~0".to_owned()),
        1 => Just("\u{0}\u{1b}[31m\u{202e}\u{feff}".to_owned()),
        1 => Just("ｈｔｔｐｓ://例え.テスト/フック".to_owned()),
        1 => (0usize..70_000).prop_map(|n| "x".repeat(n)),
        1 => (0usize..3_000).prop_map(|n| "é".repeat(n)),
    ]
}

/// Any JSON value, nested a few levels, with awkward numbers and strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN/inf become null
        prop::sample::select(vec![-1i64, 0, 1, 4_294_967_295, 4_294_967_296]).prop_map(Value::from),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(nasty_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A plausible, usually valid, subscription body.
fn valid_body() -> impl Strategy<Value = Value> {
    let events = prop::sample::subsequence(
        vec![
            "call.ended",
            "call.started",
            "call.failed",
            "message.received",
            "native:event_action",
            "native:event_recording",
        ],
        1..4,
    );
    let auth = prop_oneof![
        Just(Value::Null),
        Just(json!({"type": "none"})),
        Just(json!({"type": "basic", "username": "u", "password": "p"})),
        Just(json!({"type": "bearer", "token": "t0k"})),
        Just(json!({"type": "api_key", "header": "X-Key", "value": "v"})),
    ];
    (
        prop::sample::select(vec!["talkover", "telegent", "p"]),
        prop::option::of("[a-f0-9-]{1,36}"),
        prop::option::of("[ -~]{0,40}"),
        prop::sample::select(vec![
            "https://billing.example.com/hooks",
            "https://example.com:8443/h?x=1",
            "http://127.0.0.1:9000/x",
            "https://[::1]/",
        ]),
        events,
        auth,
        prop::option::of("[ -~]{1,40}"),
        prop::option::of(prop::sample::select(vec!["POST", "PUT", "PATCH"])),
        prop::option::of(0u32..200),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(provider, account, name, url, events, auth, secret, method, timeout, enabled)| {
                let mut body = json!({"provider": provider, "url": url, "events": events});
                let obj = body.as_object_mut().unwrap();
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v.filter(|v| !v.is_null()) {
                        obj.insert(k.to_owned(), v);
                    }
                };
                put("account", account.map(Value::from));
                put("name", name.map(Value::from));
                put("auth", Some(auth));
                put("signing_secret", secret.map(Value::from));
                put("method", method.map(Value::from));
                put("timeout_seconds", timeout.map(Value::from));
                put("enabled", enabled.map(Value::from));
                put("headers", Some(json!({"X-Team": "billing"})));
                put("metadata", Some(json!({"team": "billing", "n": [1, 2]})));
                put(
                    "provider_options",
                    Some(json!({"payload_templates": {"event_action": {"a": 1}}})),
                );
                body
            },
        )
}

const FIELDS: &[&str] = &[
    "provider",
    "account",
    "name",
    "url",
    "events",
    "auth",
    "signing_secret",
    "headers",
    "method",
    "format",
    "timeout_seconds",
    "max_retries",
    "enabled",
    "filters",
    "provider_options",
    "metadata",
    "on_unsupported",
];

/// One change to a body: drop a field, give it any value, a huge or
/// unicode string, junk inside a nested object, or an unknown field.
#[derive(Debug, Clone)]
enum Mutation {
    Drop(&'static str),
    Set(&'static str, Value),
    Nested(&'static str, String, Value),
    Unknown(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = prop::sample::select(FIELDS);
    prop_oneof![
        field.clone().prop_map(Mutation::Drop),
        (field.clone(), json_value()).prop_map(|(f, v)| Mutation::Set(f, v)),
        (field.clone(), nasty_string()).prop_map(|(f, s)| Mutation::Set(f, Value::String(s))),
        (
            prop::sample::select(vec![
                "auth",
                "headers",
                "metadata",
                "provider_options",
                "filters"
            ]),
            prop_oneof![
                prop::sample::select(vec![
                    "type",
                    "username",
                    "password",
                    "token",
                    "header",
                    "value",
                    "key",
                    "payload_templates"
                ])
                .prop_map(str::to_owned),
                nasty_string(),
            ],
            json_value(),
        )
            .prop_map(|(f, k, v)| Mutation::Nested(f, k, v)),
        (nasty_string(), json_value()).prop_map(|(k, v)| Mutation::Unknown(k, v)),
    ]
}

fn apply(body: &mut Value, m: &Mutation) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    match m {
        Mutation::Drop(f) => {
            obj.remove(*f);
        }
        Mutation::Set(f, v) => {
            obj.insert((*f).to_owned(), v.clone());
        }
        Mutation::Nested(f, k, v) => {
            let slot = obj
                .entry((*f).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match slot {
                Value::Object(inner) => {
                    inner.insert(k.clone(), v.clone());
                }
                Value::Array(items) => items.push(json!({k.clone(): v.clone()})),
                other => *other = json!({k.clone(): v.clone()}),
            }
        }
        Mutation::Unknown(k, v) => {
            obj.insert(k.clone(), v.clone());
        }
    }
}

/// Bodies as bytes: mutated valid bodies (most), arbitrary JSON, and
/// byte-level damage (truncation, stray bytes) to a valid body.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (valid_body(), prop::collection::vec(mutation(), 0..4)).prop_map(|(mut b, ms)| {
            for m in &ms {
                apply(&mut b, m);
            }
            serde_json::to_vec(&b).unwrap()
        }),
        2 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => (valid_body(), any::<prop::sample::Index>()).prop_map(|(b, i)| {
            let bytes = serde_json::to_vec(&b).unwrap();
            bytes[..i.index(bytes.len() + 1)].to_vec()
        }),
        1 => (valid_body(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(b, i, byte)| {
            let mut bytes = serde_json::to_vec(&b).unwrap();
            let at = i.index(bytes.len() + 1);
            bytes.insert(at, byte);
            bytes
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn check_field_errors(errors: &[FieldError]) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty(), "Invalid without field errors");
    for e in errors {
        prop_assert!(
            e.pointer.starts_with('/'),
            "pointer {:?} does not start with /",
            e.pointer
        );
        prop_assert!(!e.detail.is_empty(), "empty detail at {}", e.pointer);
    }
    Ok(())
}

/// A rejection is acceptable only as a 422 with pointers or a 400.
fn check_rejection(err: &Error) -> Result<(), TestCaseError> {
    match err {
        Error::Invalid(errors) => check_field_errors(errors),
        Error::Malformed { detail, .. } => {
            prop_assert!(!detail.is_empty());
            Ok(())
        }
        other => Err(TestCaseError::fail(format!(
            "unexpected rejection {other:?}"
        ))),
    }
}

/// The Talkover plan for an accepted spec: events as the catalog resolves
/// them (or, when they do not resolve for Talkover, some native names).
fn check_talkover_plan(
    spec: &SubscriptionSpec,
    catalog: &EventCatalog,
) -> Result<(), TestCaseError> {
    let events = catalog
        .resolve("talkover", "talkover", &spec.events)
        .unwrap_or_else(|_| vec!["event_action".to_owned(), "event_recording".to_owned()]);
    match translate::plan("sub_01J0000000000000000000000", spec, &events) {
        Ok(plan) => {
            prop_assert_eq!(plan.body["webhook_url"].as_str(), Some(spec.url.as_str()));
            prop_assert_eq!(&plan.events, &events);
            for p in &plan.secret_pointers {
                prop_assert!(
                    plan.body.pointer(p).is_some(),
                    "secret pointer {} missing",
                    p
                );
            }
            Ok(())
        }
        Err(Error::Invalid(errors)) => check_field_errors(&errors),
        Err(other) => Err(TestCaseError::fail(format!("plan failed with {other:?}"))),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn subscription_bodies_never_panic_and_reject_cleanly(bytes in body_bytes()) {
        let catalog = EventCatalog::from_toml(CATALOG).unwrap();
        match parse_json::<SubscriptionRequest>(&bytes) {
            Err(e) => check_rejection(&e)?,
            Ok(req) => match req.into_spec() {
                Err(e) => check_rejection(&e)?,
                Ok(spec) => {
                    // Whatever was accepted is internally consistent.
                    prop_assert!(!spec.events.is_empty());
                    for e in &spec.events {
                        prop_assert_eq!(&EventName::parse(&e.to_string()), &Ok(e.clone()));
                    }
                    // And round-trips through the PATCH base.
                    let back = SubscriptionRequest::from_spec(&spec).into_spec();
                    prop_assert_eq!(back.as_ref().ok(), Some(&spec));
                    check_talkover_plan(&spec, &catalog)?;
                }
            },
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        match parse_json::<SubscriptionRequest>(&bytes) {
            Err(e) => check_rejection(&e)?,
            Ok(req) => if let Err(e) = req.into_spec() { check_rejection(&e)? },
        }
    }
}
