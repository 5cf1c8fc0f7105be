//! Property tests over every kind in `switchboard_registry::kinds()`: the
//! shipped catalog resolves any event list for a registered kind without
//! panicking and consistently, and any subset of a kind's events plans into
//! resources that carry each resolved native event exactly once, split as
//! the kind's capabilities say. Kind-independent properties (URL, policy,
//! event-name grammar) stay in `crates/core/tests/properties.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use switchboard_conformance::spec::{self, catalog};
use switchboard_core::{EventName, EventsPerResource, ProviderAdapter};
use switchboard_registry::{Registered, kinds};

/// Enough cases to find the usual edge cases, few enough that the suite
/// stays fast on a 2-core CI machine.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    }
}

/// An adapter of `kind` built from its fixture's accepted table; planning
/// is pure, so nothing is served and nothing is sent.
fn adapter(kind: &Registered) -> Arc<dyn ProviderAdapter> {
    let table = (kind.simulator.fixture.accepted)();
    kind.build(
        kind.name,
        table,
        switchboard_conformance::single_attempt_transport(),
    )
    .unwrap_or_else(|e| panic!("kind `{}`: {e}", kind.name))
}

/// Event names around the catalog: every normalized name, every kind's
/// natives as `native:` names (so other kinds' names are tried too), and
/// grammar-shaped and arbitrary text.
fn event_like() -> impl Strategy<Value = String> {
    let mut known: Vec<String> = catalog().events.keys().cloned().collect();
    for natives in catalog().native.values() {
        known.extend(natives.iter().map(|n| format!("native:{n}")));
    }
    prop_oneof![
        prop::sample::select(known),
        "(native:)?[a-zA-Z0-9_.:\\- ]{0,24}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn catalog_resolve_is_consistent_for_every_kind(
        raws in prop::collection::vec(event_like(), 0..8),
        kind in 0..kinds().len(),
    ) {
        let kind = kinds()[kind].name;
        let events: Vec<EventName> = raws.iter().filter_map(|r| EventName::parse(r).ok()).collect();
        match catalog().resolve(kind, "prop", &events) {
            Ok(natives) => {
                prop_assert_eq!(natives.len(), events.len());
                let known = spec::natives(kind);
                for (i, n) in natives.iter().enumerate() {
                    prop_assert!(known.contains(n), "{} not native to {}", n, kind);
                    prop_assert!(!natives[..i].contains(n), "duplicate {}", n);
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in &errors {
                    let i: usize = e.pointer.strip_prefix("/events/").and_then(|i| i.parse().ok())
                        .unwrap_or_else(|| panic!("bad pointer {}", e.pointer));
                    prop_assert!(i < events.len());
                    prop_assert!(!e.detail.is_empty());
                }
            }
        }
    }

    /// Whatever events of a kind are asked for, in whatever order, the
    /// plans carry exactly the resolved natives once each, in order, split
    /// as `events_per_resource` says, under distinct keys; and a kind
    /// without native disable plans the same whether enabled or not (the
    /// engine deletes instead).
    #[test]
    fn any_events_of_a_kind_plan_consistently(
        kind in 0..kinds().len(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..8),
    ) {
        let registered = &kinds()[kind];
        let adapter = adapter(registered);
        let natives = spec::natives(registered.name);
        let mut chosen: Vec<&String> = picks.iter().map(|i| i.get(natives)).collect();
        let mut seen = BTreeSet::new();
        chosen.retain(|n| seen.insert(*n));
        let events = chosen.iter().map(|n| EventName::Native((*n).clone())).collect();
        let spec = spec::with_events(&*adapter, registered.simulator.fixture.account, events);
        let caps = adapter.capabilities();
        let plans = spec::plans(&*adapter, &spec);
        let planned: Vec<&String> = plans.iter().flat_map(|p| &p.events).collect();
        prop_assert_eq!(&planned, &chosen);
        let keys: BTreeSet<&str> = plans.iter().map(|p| p.key.as_str()).collect();
        prop_assert_eq!(keys.len(), plans.len(), "distinct plan keys");
        for plan in &plans {
            match caps.events_per_resource {
                EventsPerResource::Many => prop_assert_eq!(plans.len(), 1),
                EventsPerResource::One => prop_assert_eq!(plan.events.len(), 1),
                EventsPerResource::JoinedMaxChars { max_chars } => {
                    prop_assert!(plan.events.join(",").chars().count() <= max_chars)
                }
            }
        }
        if !caps.native_disable {
            let off = spec.with(|d| d.enabled = false).unwrap();
            prop_assert_eq!(spec::plans(&*adapter, &off), plans);
        }
    }
}
