//! Translation cost per provider kind: `plan` (normalized subscription →
//! native resources) and `preview` (those resources → the native requests
//! a create would send), the pure half of every adapter, as a create and
//! a preview run them. Every registered kind is measured; a new kind
//! without credentials below fails here rather than going unmeasured.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use switchboard_core::testing::draft;
use switchboard_core::{
    CallbackAuth, EventCatalog, OnUnsupported, ProviderAdapter, Secret, SpecDraft,
    SubscriptionSpec, Transport,
};

const CATALOG: &str = include_str!("../../../config/events.toml");

/// A provider table and an account each kind accepts.
fn setup(kind: &str) -> (Value, Option<&'static str>) {
    match kind {
        "telegent" => (
            json!({"account_key": "DID-BENCH", "account_secret": "bench-secret"}),
            Some("AID-1234567"),
        ),
        "talkover" => (
            json!({"token": "talq_bench"}),
            Some("9fbef0b7-8d4e-4a08-9207-66c22155721d"),
        ),
        "accesskey-workspace" => (
            json!({"access_key": "bird_bench"}),
            Some("2f4a7c1e-8b5d-4e6f-9a0b-1c2d3e4f5a6b"),
        ),
        "account-v2" => (
            json!({"api_key_id": "sb_key", "api_secret_key": "sb_secret"}),
            None,
        ),
        other => panic!("no benchmark setup for kind `{other}`: add one to translation.rs"),
    }
}

/// A subscription of the size callers send: a name, bearer auth, a
/// signing secret, a header, metadata and up to three of the kind's
/// catalog events, with what the kind cannot take dropped as
/// `on_unsupported: ignore` does. Returns the spec and its native events.
fn subscription(
    adapter: &dyn ProviderAdapter,
    account: Option<&str>,
    catalog: &EventCatalog,
) -> (SubscriptionSpec, Vec<String>) {
    let kind = adapter.kind();
    let events: Vec<&str> = catalog
        .events
        .iter()
        .filter(|(_, e)| e.native.contains_key(kind))
        .map(|(name, _)| name.as_str())
        .take(3)
        .collect();
    let mut spec = SpecDraft {
        account: account.map(str::to_owned),
        name: Some("billing calls".into()),
        auth: CallbackAuth::Bearer {
            token: Secret::new("crm-token-0123456789"),
        },
        signing_secret: Some(Secret::new("whsec_0123456789abcdefghijklmnopqrstuv")),
        headers: [("X-Team".to_owned(), "billing".to_owned())].into(),
        metadata: json!({"team": "billing", "cost_center": "4711"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        on_unsupported: OnUnsupported::Ignore,
        ..draft("bench", "https://billing.example.com/hooks/calls", &events)
    };
    adapter
        .capabilities()
        .check("bench", kind, &mut spec)
        .expect("the spec fits the kind");
    let natives = catalog
        .resolve(kind, "bench", &spec.events)
        .expect("catalog events");
    (spec.validate().expect("a valid spec"), natives)
}

fn translation(c: &mut Criterion) {
    let catalog = EventCatalog::from_toml(CATALOG).expect("the shipped catalog");
    let transport: Arc<dyn Transport> = Arc::new(
        switchboard_transport::HttpTransport::new(Default::default(), Default::default())
            .expect("a transport"),
    );
    for kind in switchboard_registry::kinds() {
        let (table, account) = setup(kind.name);
        let adapter = switchboard_registry::build("bench", kind.name, table, transport.clone())
            .expect("the adapter builds");
        let (spec, events) = subscription(adapter.as_ref(), account, &catalog);
        let id = "sub_01M84PMRQE7NV54GVD489A56K1";
        c.bench_function(&format!("plan/{}", kind.name), |b| {
            b.iter(|| adapter.plan(black_box(id), black_box(&spec), black_box(&events)))
        });
        let plans = adapter.plan(id, &spec, &events).expect("a plan");
        c.bench_function(&format!("preview/{}", kind.name), |b| {
            b.iter(|| adapter.preview(black_box(account), black_box(&plans)))
        });
    }
}

criterion_group!(benches, translation);
criterion_main!(benches);
