//! The relay's Standard Webhooks signatures checked by an independent
//! implementation: the Python library `standardwebhooks` verifies requests
//! built by `request::build`, in JSON and XML, across a rotation, and
//! refuses them when anything signed was changed.

mod support;

use bytes::Bytes;
use chrono::Utc;
use serde_json::json;
use switchboard_core::testing::draft;
use switchboard_core::{DeliveryFormat, EventName};
use switchboard_relay::{Envelope, SigningSecret, Target, build, event_id};

use support::{Case, header_map, python_verify};

fn envelope() -> Envelope {
    Envelope {
        id: event_id(),
        event_type: EventName::parse("message.received").unwrap(),
        provider: "bird".into(),
        subscription: "sub_01JNF7Q2ZK0000000000000001".into(),
        occurred_at: None,
        received_at: Utc::now(),
        data: json!({"text": "héllo <&> \"there\"", "n": [1, 2.5, null]}),
    }
}

/// A signed request for `format`, as the subscriber would receive it.
fn delivery(format: DeliveryFormat, secrets: &[SigningSecret]) -> (String, Case) {
    let mut spec = draft(
        "bird",
        "https://hooks.example.com/in",
        &["message.received"],
    );
    spec.format = Some(format);
    let e = envelope();
    let body = Bytes::from(e.body(format));
    let req = build(
        &Target::from_spec(&spec),
        &e.id,
        Utc::now().timestamp(),
        body.clone(),
        secrets,
    )
    .unwrap();
    let case = Case {
        secret: String::new(),
        headers: header_map(req.request().headers()),
        body: body.to_vec(),
        json: format == DeliveryFormat::Json,
    };
    (e.id, case)
}

fn with_secret(case: &Case, secret: &SigningSecret) -> Case {
    Case {
        secret: secret.to_secret().expose().to_owned(),
        headers: case.headers.clone(),
        body: case.body.clone(),
        json: case.json,
    }
}

#[test]
fn the_python_library_verifies_our_signatures() {
    let current = SigningSecret::generate();
    let previous = SigningSecret::generate();
    let stranger = SigningSecret::generate();
    let (json_id, json_case) = delivery(DeliveryFormat::Json, std::slice::from_ref(&current));
    let (_, xml_case) = delivery(DeliveryFormat::Xml, std::slice::from_ref(&current));
    let (_, rotated) = delivery(DeliveryFormat::Json, &[current.clone(), previous.clone()]);

    let mut tampered_body = with_secret(&json_case, &current);
    tampered_body.body = tampered_body
        .body
        .iter()
        .map(|b| if *b == b'h' { b'H' } else { *b })
        .collect();
    let mut tampered_id = with_secret(&json_case, &current);
    tampered_id.headers.insert("webhook-id".into(), event_id());

    let cases = vec![
        with_secret(&json_case, &current),
        with_secret(&xml_case, &current),
        with_secret(&rotated, &current),
        with_secret(&rotated, &previous),
        with_secret(&json_case, &stranger),
        with_secret(&rotated, &stranger),
        tampered_body,
        tampered_id,
    ];
    let Some(verdicts) = python_verify(&cases) else {
        return;
    };
    assert_eq!(verdicts[0], Ok(Some(json_id)), "JSON body");
    assert_eq!(verdicts[1], Ok(None), "XML body");
    assert!(
        verdicts[2].is_ok(),
        "rotation, new secret: {:?}",
        verdicts[2]
    );
    assert!(
        verdicts[3].is_ok(),
        "rotation, old secret: {:?}",
        verdicts[3]
    );
    for (i, what) in [
        (4, "wrong secret"),
        (5, "wrong secret, rotation"),
        (6, "changed body"),
        (7, "changed id"),
    ] {
        let err = verdicts[i].as_ref().expect_err(what);
        assert!(err.contains("No matching signature"), "{what}: {err}");
    }
}
