//! Fuzz target: `EventName::parse` and `EventCatalog::resolve` against the
//! shipped catalog. Input: UTF-8 lines. The first line picks the provider
//! kind (a number `i` stands for the catalog's i-th `[native]` kind, so the
//! fuzzer reaches every kind easily; any other line is used as the kind
//! itself); every further line is an event name. The kinds come from the
//! catalog rather than the registry, which would pull every provider and
//! the HTTP stack into the fuzz build; `switchboard_registry::check_catalog`
//! (tested on the shipped catalog) holds the two lists equal.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchboard_core::{EventCatalog, EventName};

static CATALOG: LazyLock<EventCatalog> = LazyLock::new(|| {
    EventCatalog::from_toml(include_str!("../../config/events.toml"))
        .expect("the shipped catalog is valid")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let kind = first
        .parse::<usize>()
        .ok()
        .and_then(|i| CATALOG.native.keys().nth(i))
        .map_or(first, String::as_str);
    let mut events = Vec::new();
    for raw in lines {
        if let Ok(event) = EventName::parse(raw) {
            // Display is the wire form and must parse back to the same event.
            assert_eq!(event.to_string(), raw);
            assert_eq!(EventName::parse(&event.to_string()).as_ref(), Ok(&event));
            events.push(event);
        }
    }
    match CATALOG.resolve(kind, "fuzz", &events) {
        Ok(natives) => assert_eq!(natives.len(), events.len()),
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(e.pointer.starts_with("/events/"), "{}", e.pointer);
            }
        }
    }
});
