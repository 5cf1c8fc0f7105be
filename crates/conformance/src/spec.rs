//! The subscriptions the suite sends, derived for any kind from its
//! capabilities, the shipped event catalog and the kind's test fixture, and
//! translated the way the engine does (capability check → catalog
//! resolution → plan). Nothing here is written per kind: a new kind is
//! covered as soon as it is registered and has catalog entries.

use std::sync::LazyLock;

use switchboard_core::subscription::AuthKind;
use switchboard_core::{
    AccountRule, CallbackAuth, EventCatalog, EventName, NativePlan, ProviderAdapter, Secret,
    SpecDraft, SubscriptionSpec,
};

/// The shipped catalog, `config/events.toml`: the suite resolves events
/// through it, so a native name the simulator refuses fails a case.
pub fn catalog() -> &'static EventCatalog {
    static CATALOG: LazyLock<EventCatalog> = LazyLock::new(|| {
        EventCatalog::from_toml(include_str!("../../../config/events.toml"))
            .expect("config/events.toml is a valid catalog")
    });
    &CATALOG
}

/// The subscription id every plan is made for.
pub const SUBSCRIPTION_ID: &str = "sub_01CONFORMANCE0000000000000";

/// The callback URL of every derived spec: https, a fully qualified DNS
/// name and a path, so every kind's URL rules accept it.
pub const URL: &str = "https://hooks.example.com/conformance";

/// The URL [`crate::cases::update_changes_only_what_differs`] moves to.
pub const CHANGED_URL: &str = "https://changed.example.com/hooks";

/// Every native event `kind` accepts, in catalog order; panics when the
/// catalog lists none, as a kind without events cannot be subscribed to.
pub fn natives(kind: &str) -> &'static [String] {
    match catalog().native.get(kind) {
        Some(natives) if !natives.is_empty() => natives,
        _ => panic!("kind `{kind}`: config/events.toml has no [native] events for it"),
    }
}

/// How a caller names `native`: its first normalized name in the catalog,
/// or `native:<name>` when no normalized event maps to it.
pub fn caller_name(kind: &str, native: &str) -> EventName {
    let normalized = catalog()
        .events
        .iter()
        .find(|(_, e)| e.native.get(kind).is_some_and(|n| n == native));
    match normalized {
        Some((name, _)) => EventName::Normalized(name.clone()),
        None => EventName::Native(native.to_owned()),
    }
}

/// The everyday subscription: every option the kind supports set to a
/// valid value, and up to three of its events that can be signed (two
/// normalized ones and one that only a `native:` name reaches, where the
/// catalog has them).
///
/// `account` is the fixture's, used where the kind requires one.
pub fn spec(adapter: &dyn ProviderAdapter, account: Option<&str>) -> SubscriptionSpec {
    let (kind, caps) = (adapter.kind(), adapter.capabilities());
    let candidates: Vec<EventName> = natives(kind)
        .iter()
        .filter(|n| !caps.unsigned_events.contains(&n.as_str()))
        .map(|n| caller_name(kind, n))
        .collect();
    let mut events: Vec<EventName> = candidates
        .iter()
        .filter(|e| matches!(e, EventName::Normalized(_)))
        .take(2)
        .cloned()
        .collect();
    events.extend(
        candidates
            .iter()
            .find(|e| matches!(e, EventName::Native(_)))
            .cloned(),
    );
    assert!(
        !events.is_empty(),
        "kind `{kind}` offers no event to subscribe"
    );
    with_events(adapter, account, events)
}

/// A subscription to every native event of the kind, each under the
/// catalog's normalized name where it has one.
pub fn every_event_spec(adapter: &dyn ProviderAdapter, account: Option<&str>) -> SubscriptionSpec {
    let kind = adapter.kind();
    let events = natives(kind).iter().map(|n| caller_name(kind, n)).collect();
    with_events(adapter, account, events)
}

/// A spec for `events` (caller names) with every option the kind's
/// capabilities allow. It carries a signing secret where the kind signs
/// and every event resolves to a native event it can sign.
pub fn with_events(
    adapter: &dyn ProviderAdapter,
    account: Option<&str>,
    events: Vec<EventName>,
) -> SubscriptionSpec {
    let (kind, caps) = (adapter.kind(), adapter.capabilities());
    let names: Vec<String> = events.iter().map(ToString::to_string).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let account = match caps.account {
        AccountRule::Required { .. } => Some(
            account
                .unwrap_or_else(|| {
                    panic!("kind `{kind}` requires an account; its fixture names none")
                })
                .to_owned(),
        ),
        AccountRule::Forbidden => None,
    };
    let signed = caps.signing_secret_max_len.is_some()
        && catalog().resolve(kind, kind, &events).is_ok_and(|n| {
            n.iter()
                .all(|n| !caps.unsigned_events.contains(&n.as_str()))
        });
    let midpoint = |r: switchboard_core::capabilities::Range| r.min + (r.max - r.min) / 2;
    SpecDraft {
        account,
        name: Some("conformance".into()),
        auth: strongest_auth(&caps.auth),
        signing_secret: signed.then(|| Secret::new("whsec_conformance")),
        headers: if caps.headers {
            [("X-Conformance".to_owned(), "yes".to_owned())].into()
        } else {
            Default::default()
        },
        timeout_seconds: caps.timeout_seconds.map(midpoint),
        max_retries: caps.max_retries.map(midpoint),
        ..switchboard_core::testing::draft(kind, URL, &names)
    }
    .validate()
    .unwrap_or_else(|e| panic!("kind `{kind}`: the derived spec is invalid: {e:?}"))
}

/// A credential-carrying callback auth the kind supports, so the plan has
/// secrets to mark; `none` when that is all it supports.
fn strongest_auth(supported: &[AuthKind]) -> CallbackAuth {
    if supported.contains(&AuthKind::Basic) {
        CallbackAuth::Basic {
            username: "hook-user".into(),
            password: Secret::new("callback-password"),
        }
    } else if supported.contains(&AuthKind::Bearer) {
        CallbackAuth::Bearer {
            token: Secret::new("callback-token"),
        }
    } else if supported.contains(&AuthKind::ApiKey) {
        CallbackAuth::ApiKey {
            header: "X-Callback-Key".into(),
            value: Secret::new("callback-key"),
        }
    } else {
        CallbackAuth::None
    }
}

/// `spec` translated as the engine translates it: the capability check
/// must pass without warnings (the spec asks only for what the kind
/// supports), the catalog resolves its events, and the adapter plans them.
pub fn plans(adapter: &dyn ProviderAdapter, spec: &SubscriptionSpec) -> Vec<NativePlan> {
    let kind = adapter.kind();
    let mut draft = spec.clone().into_draft();
    let warnings = adapter
        .capabilities()
        .check(kind, kind, &mut draft)
        .unwrap_or_else(|e| panic!("kind `{kind}`: capability check refused the spec: {e:?}"));
    assert!(warnings.is_empty(), "kind `{kind}`: {warnings:?}");
    let checked = draft.validate().expect("a checked spec stays valid");
    adapter
        .plan(SUBSCRIPTION_ID, &checked, &resolve(kind, &checked))
        .unwrap_or_else(|e| panic!("kind `{kind}`: the spec must translate: {e:?}"))
}

/// The native names `spec`'s events resolve to through the shipped catalog.
pub fn resolve(kind: &str, spec: &SubscriptionSpec) -> Vec<String> {
    catalog()
        .resolve(kind, &spec.provider, &spec.events)
        .unwrap_or_else(|e| panic!("kind `{kind}`: the catalog does not resolve the spec: {e:?}"))
}
