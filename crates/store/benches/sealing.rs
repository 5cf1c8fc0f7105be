//! Sealing cost: a realistic subscription spec (bearer auth, signing
//! secret, headers, metadata, three events) sealed and opened with the
//! row's associated data, alone and together with the JSON encoding the
//! store does around it on every write and read.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use switchboard_core::testing::draft;
use switchboard_core::{CallbackAuth, Secret, SpecDraft, SubscriptionSpec};
use switchboard_store::{Cipher, SecretKey};

fn spec() -> SubscriptionSpec {
    SpecDraft {
        account: Some("9fbef0b7-8d4e-4a08-9207-66c22155721d".into()),
        name: Some("billing calls".into()),
        auth: CallbackAuth::Bearer {
            token: Secret::new("crm-token-0123456789"),
        },
        signing_secret: Some(Secret::new("whsec_0123456789abcdefghijklmnopqrstuv")),
        headers: [("X-Team".to_owned(), "billing".to_owned())].into(),
        metadata: json!({"team": "billing", "cost_center": "4711", "owner": "ops@example.com"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..draft(
            "talkover",
            "https://billing.example.com/hooks/calls",
            &["call.ended", "call.started", "native:event_action"],
        )
    }
    .validate()
    .expect("a valid spec")
}

fn sealing(c: &mut Criterion) {
    let cipher = Cipher::new(vec![SecretKey::generate("k1").0]).expect("one key");
    let spec = spec();
    let json = serde_json::to_vec(&spec).expect("JSON");
    let aad = b"billing\0sub_01M84PMRQE7NV54GVD489A56K1";
    let sealed = cipher.seal(&json, aad).expect("sealed");
    c.bench_function("seal", |b| {
        b.iter(|| cipher.seal(black_box(&json), black_box(aad)))
    });
    c.bench_function("open", |b| {
        b.iter(|| cipher.open(black_box(&sealed), black_box(aad)))
    });
    c.bench_function("encode+seal", |b| {
        b.iter(|| {
            let json = serde_json::to_vec(black_box(&spec)).expect("JSON");
            cipher.seal(&json, aad)
        })
    });
    c.bench_function("open+decode", |b| {
        b.iter(|| {
            let json = cipher.open(black_box(&sealed), aad).expect("opens");
            serde_json::from_slice::<SubscriptionSpec>(&json).expect("a spec")
        })
    });
}

criterion_group!(benches, sealing);
criterion_main!(benches);
