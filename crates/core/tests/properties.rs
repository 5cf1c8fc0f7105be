//! Property tests for the core's parsers: the callback URL, event names and
//! the URL policy never panic on arbitrary text, and what they accept
//! round-trips. A panic here is a 500 (or a crashed task) in the API, where
//! these run on untrusted input. Properties over the provider kinds (catalog
//! resolution, planning) need the registry, which depends on this crate, so
//! they live in `crates/conformance/tests/properties.rs`.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use switchboard_core::policy::UrlPolicy;
use switchboard_core::{CallbackUrl, EventCatalog, EventName};

const CATALOG: &str = include_str!("../../../config/events.toml");

fn catalog() -> EventCatalog {
    EventCatalog::from_toml(CATALOG).expect("the shipped catalog is valid")
}

/// Enough cases to find the usual edge cases, few enough that the suite
/// stays fast on a 2-core CI machine.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// Policies worth checking against: the default and every relaxation.
fn policy() -> impl Strategy<Value = UrlPolicy> {
    (any::<bool>(), any::<bool>(), 0usize..2100, any::<bool>()).prop_map(
        |(allow_http, allow_private, max_len, subnets)| UrlPolicy {
            allow_http,
            allow_private,
            allowed_subnets: if subnets {
                vec![
                    "10.0.0.0/8".parse().unwrap(),
                    "fd00::/8".parse().unwrap(),
                    "127.0.0.1/32".parse().unwrap(),
                ]
            } else {
                Vec::new()
            },
            max_len,
        },
    )
}

/// An IPv4 address written the many ways the WHATWG parser accepts.
fn ipv4_spelling(ip: u32, style: u8) -> String {
    let [a, b, c, d] = ip.to_be_bytes();
    match style % 6 {
        0 => Ipv4Addr::from(ip).to_string(),
        1 => ip.to_string(),
        2 => format!("0x{ip:x}"),
        3 => format!("0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}"),
        4 => format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        _ => format!("{a}.{}", u32::from_be_bytes([0, b, c, d])),
    }
}

/// Hosts of every kind: DNS names (public-looking and internal), IPv4 in
/// odd spellings, bracketed IPv6 (plain and IPv4-mapped), and junk.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,12}){0,3}\\.?",
        prop::sample::select(vec![
            "localhost",
            "api.localhost",
            "printer.local",
            "metadata.google.internal",
            "metadata",
            "example.com",
            "xn--bcher-kva.example",
        ])
        .prop_map(str::to_owned),
        (any::<u32>(), any::<u8>()).prop_map(|(ip, s)| ipv4_spelling(ip, s)),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
        any::<u32>().prop_map(|ip| format!("[::ffff:{}]", Ipv4Addr::from(ip))),
        "[^/?#]{0,16}",
    ]
}

/// URL-shaped strings: mostly well-formed, with userinfo, ports, paths and
/// unicode mixed in, so that both acceptance and rejection are exercised.
fn url_like() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "https://", "http://", "HTTPS://", "ftp://", "https:", "",
        ]),
        prop::option::of("[a-z:]{0,5}@"),
        host(),
        prop::option::of(0u32..70000),
        "(/[^ ]{0,20}){0,2}",
        prop::option::of("\\?[a-z=&%0-9]{0,10}"),
    )
        .prop_map(|(scheme, user, host, port, path, query)| {
            let mut s = format!("{scheme}{}{host}", user.unwrap_or_default());
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            s.push_str(&path);
            s.push_str(&query.unwrap_or_default());
            s
        })
}

/// Event-name-shaped strings around the grammar's edges.
fn event_like() -> impl Strategy<Value = String> {
    let catalog = catalog();
    let mut known: Vec<String> = catalog.events.keys().cloned().collect();
    for natives in catalog.native.values() {
        known.extend(natives.iter().map(|n| format!("native:{n}")));
    }
    prop_oneof![
        prop::sample::select(known),
        "(native:)?[a-zA-Z0-9_.:\\- ]{0,24}",
        "[a-z][a-z0-9_]{0,8}(\\.[a-z][a-z0-9_]{0,8}){1,3}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn callback_url_never_panics_and_round_trips(raw in prop_oneof![any::<String>(), url_like()]) {
        if let Ok(url) = CallbackUrl::parse(&raw) {
            // Held normalized; normalizing again changes nothing.
            prop_assert_eq!(CallbackUrl::parse(url.as_str()), Ok(url.clone()));
            prop_assert!(url.as_str().len() <= switchboard_core::subscription::MAX_URL_LEN);
            // Serde reads the normalized text back unchanged.
            let json = serde_json::to_string(&url).unwrap();
            let back: CallbackUrl = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, url);
        }
    }

    #[test]
    fn policy_never_panics_and_holds_its_rules(raw in url_like(), policy in policy()) {
        let Ok(url) = CallbackUrl::parse(&raw) else { return Ok(()) };
        match policy.check(&url) {
            Ok(()) => {
                prop_assert!(url.as_str().len() <= policy.max_len);
                let parsed = url::Url::parse(&raw).unwrap();
                prop_assert!(policy.allow_http || parsed.scheme() == "https");
                if !policy.allow_private {
                    // Whatever the spelling, an accepted host is not loopback.
                    if let Some(url::Host::Ipv4(ip)) = parsed.host() {
                        prop_assert!(!ip.is_loopback() || policy.allowed_subnets.iter().any(|n| n.contains(&std::net::IpAddr::V4(ip))));
                    }
                }
            }
            Err(msg) => prop_assert!(!msg.is_empty()),
        }
    }

    #[test]
    fn policy_never_panics_on_arbitrary_text(raw in any::<String>()) {
        if let Ok(url) = CallbackUrl::parse(&raw) {
            let _ = UrlPolicy::default().check(&url);
        }
    }

    /// The verdict on an IPv4 literal does not depend on how it is spelled:
    /// `2130706433` and `0x7f.1` are judged exactly like `127.0.0.1`.
    #[test]
    fn policy_verdict_is_spelling_independent(ip in any::<u32>(), style in any::<u8>(), port in prop::option::of(1u16..)) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let plain = CallbackUrl::parse(&format!("https://{}{port}/h", Ipv4Addr::from(ip))).unwrap();
        let odd = CallbackUrl::parse(&format!("https://{}{port}/h", ipv4_spelling(ip, style))).unwrap();
        let policy = UrlPolicy::default();
        prop_assert_eq!(policy.check(&plain).is_ok(), policy.check(&odd).is_ok());
        // And an IPv4-mapped IPv6 literal is judged like its IPv4 host.
        let mapped = CallbackUrl::parse(&format!("https://[::ffff:{}]{port}/h", Ipv4Addr::from(ip))).unwrap();
        prop_assert_eq!(policy.check(&plain).is_ok(), policy.check(&mapped).is_ok());
    }

    #[test]
    fn event_name_never_panics_and_round_trips(raw in event_like()) {
        if let Ok(event) = EventName::parse(&raw) {
            prop_assert_eq!(event.to_string(), raw.clone());
            prop_assert_eq!(EventName::parse(&event.to_string()), Ok(event.clone()));
            let json = serde_json::to_string(&event).unwrap();
            prop_assert_eq!(serde_json::from_str::<EventName>(&json).unwrap(), event);
        }
    }
}
