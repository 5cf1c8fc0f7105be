//! The one list of provider kinds this build serves. The server, its demo
//! mode, the conformance suite and the property tests iterate
//! [`kinds`]; registering a kind is one line in [`KINDS`] (plus its crate in
//! this crate's `Cargo.toml`).
//!
//! With the `simulators` feature every kind also carries its simulator
//! factory and test fixture ([`switchboard_sim::factory::SimFactory`]).

use std::ops::Deref;
use std::sync::Arc;

use switchboard_core::{EventCatalog, ProviderAdapter, ProviderKind, Transport};

/// One registered kind: its descriptor and, with the `simulators` feature,
/// its simulator. Derefs to the descriptor (`k.name`, `k.build(…)`).
#[derive(Debug)]
pub struct Registered {
    /// What the kind is and how to build its adapters.
    pub kind: ProviderKind,
    /// How to start its simulator (demo mode) and its test fixture.
    #[cfg(feature = "simulators")]
    pub simulator: &'static switchboard_sim::factory::SimFactory,
}

impl Deref for Registered {
    type Target = ProviderKind;

    fn deref(&self) -> &ProviderKind {
        &self.kind
    }
}

/// A provider crate's descriptor, and its simulator when simulators are on.
macro_rules! register {
    ($krate:ident) => {
        Registered {
            kind: $krate::kind(),
            #[cfg(feature = "simulators")]
            simulator: &$krate::simulator::SIMULATOR,
        }
    };
}

/// Every kind this build serves, one line each, in the order error
/// messages list them.
static KINDS: &[Registered] = &[
    register!(switchboard_telegent),
    register!(switchboard_talkover),
    register!(switchboard_accesskey_workspace),
    register!(switchboard_account_v2),
];

/// Every kind this build serves.
pub fn kinds() -> &'static [Registered] {
    KINDS
}

/// The registered kind called `name`.
pub fn find(name: &str) -> Option<&'static Registered> {
    KINDS.iter().find(|k| k.name == name)
}

/// The names of every registered kind, comma-separated (for messages).
fn known() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// Builds the adapter of `[providers.<key>]`, a provider of kind `kind`;
/// errors name the key path (`providers.<key>.kind` for an unknown kind).
pub fn build(
    key: &str,
    kind: &str,
    table: serde_json::Value,
    transport: Arc<dyn Transport>,
) -> Result<Arc<dyn ProviderAdapter>, String> {
    let registered = find(kind).ok_or_else(|| {
        format!(
            "providers.{key}.kind: `{kind}` is not a provider kind of this build; known: {}",
            known()
        )
    })?;
    registered.build(key, table, transport)
}

/// Checks the catalog against the registered kinds: every `[native]` list
/// belongs to one, and every kind's list exists and has its syntax.
pub fn check_catalog(catalog: &EventCatalog) -> Result<(), String> {
    if let Some(stray) = catalog.native.keys().find(|k| find(k).is_none()) {
        return Err(format!(
            "native.{stray}: `{stray}` is not a provider kind of this build; known: {}",
            known()
        ));
    }
    KINDS.iter().try_for_each(|k| k.check_catalog(catalog))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = include_str!("../../../config/events.toml");

    #[test]
    fn names_are_unique_and_found() {
        for (i, k) in kinds().iter().enumerate() {
            assert!(std::ptr::eq(find(k.name).unwrap(), k));
            assert!(kinds()[..i].iter().all(|other| other.name != k.name));
        }
        assert!(find("carrier-pigeon").is_none());
    }

    #[test]
    fn the_shipped_catalog_fits_every_kind() {
        let catalog = EventCatalog::from_toml(CATALOG).unwrap();
        check_catalog(&catalog).unwrap();
    }

    #[test]
    fn catalog_mistakes_are_caught() {
        let bad = CATALOG.replace("\"channels:sms.inbound\"", "\"sms.inbound\"");
        let err = check_catalog(&EventCatalog::from_toml(&bad).unwrap()).unwrap_err();
        assert!(err.starts_with("native.accesskey-workspace[0]:"), "{err}");
        let stray = format!("{CATALOG}\n").replace("[native]\n", "[native]\npigeon = [\"coo\"]\n");
        let err = check_catalog(&EventCatalog::from_toml(&stray).unwrap()).unwrap_err();
        assert!(err.starts_with("native.pigeon:"), "{err}");
    }

    #[test]
    fn unknown_kinds_name_the_key() {
        struct Offline;
        #[async_trait::async_trait]
        impl Transport for Offline {
            async fn send(
                &self,
                _: &str,
                _: &str,
                _: &switchboard_core::NativeRequest,
            ) -> Result<switchboard_core::NativeResponse, switchboard_core::TransportError>
            {
                Err(switchboard_core::TransportError::Connect("offline".into()))
            }
        }
        let err = build(
            "tk",
            "carrier-pigeon",
            serde_json::json!({}),
            Arc::new(Offline),
        )
        .err()
        .unwrap();
        assert!(
            err.starts_with("providers.tk.kind: `carrier-pigeon`"),
            "{err}"
        );
        assert!(err.contains("talkover"), "{err}");
        let err = build("tk", "talkover", serde_json::json!({}), Arc::new(Offline))
            .err()
            .unwrap();
        assert_eq!(err, "providers.tk.token: is required");
    }

    #[test]
    fn only_telegent_has_a_default_rate_limit() {
        for k in kinds() {
            let expected = (k.name == "telegent").then_some(50);
            assert_eq!(k.default_rate_limit_per_minute, expected, "{}", k.name);
        }
    }
}
