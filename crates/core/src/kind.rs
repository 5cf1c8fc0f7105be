//! A provider kind as data: the one value each provider crate exports and
//! the registry lists. Everything the server needs to know about a kind
//! (its name, capabilities, part of the event catalog, how to build an
//! adapter from a config table, its default request budget, how its
//! deliveries are verified in relay mode) lives here, so
//! no crate special-cases a kind or reads another crate's config keys.

use std::fmt;
use std::sync::Arc;

use crate::{Capabilities, EventCatalog, Ingress, ProviderAdapter, Transport};

/// Builds one adapter from its `[providers.<key>]` table: the kind-specific
/// keys only (`kind`, `rate_limit_per_minute` and `max_concurrent_requests`
/// are the server's). The error is relative to the table
/// (`token: is required`).
pub type NewAdapter = fn(
    key: &str,
    table: serde_json::Value,
    transport: Arc<dyn Transport>,
) -> Result<Arc<dyn ProviderAdapter>, String>;

/// One provider kind: what it is called, what it can do and how to build it.
///
/// Every kind's table takes `base_url`, its API root: the one key outside
/// `kind`'s own parser that others write, when demo mode and the test
/// fixtures point a provider at its simulator.
#[derive(Clone, Copy)]
pub struct ProviderKind {
    /// `kind = "<name>"` in config, and the key of the kind's `[native]`
    /// list in `events.toml`.
    pub name: &'static str,
    /// What the kind can do natively (the value its adapters report).
    pub capabilities: fn() -> Capabilities,
    /// The kind's part of the event catalog: the syntax every native event
    /// name of this kind has (Bird: `service:event`). The names themselves
    /// stay in `events.toml`.
    pub native_event: fn(&str) -> Result<(), String>,
    /// Parses the table with the kind's typed config and builds the adapter.
    pub new_adapter: NewAdapter,
    /// Requests per minute a provider of this kind gets when its table sets
    /// no `rate_limit_per_minute`; `None` is unlimited.
    pub default_rate_limit_per_minute: Option<u32>,
    /// How the kind's deliveries are verified in relay mode, and where the
    /// credential Switchboard generates for them goes.
    pub ingress: Ingress,
}

impl ProviderKind {
    /// Builds the adapter of `[providers.<key>]`; errors name the key path
    /// (`providers.tk.token: is required`).
    pub fn build(
        &self,
        key: &str,
        table: serde_json::Value,
        transport: Arc<dyn Transport>,
    ) -> Result<Arc<dyn ProviderAdapter>, String> {
        (self.new_adapter)(key, table, transport).map_err(|e| format!("providers.{key}.{e}"))
    }

    /// Checks this kind's part of `catalog`: its `[native]` list exists and
    /// every name in it has the kind's syntax. Errors name `native.<kind>`.
    pub fn check_catalog(&self, catalog: &EventCatalog) -> Result<(), String> {
        let names = catalog.native.get(self.name).ok_or_else(|| {
            format!(
                "native.{}: kind `{}` is registered but has no native event list",
                self.name, self.name
            )
        })?;
        for (i, name) in names.iter().enumerate() {
            (self.native_event)(name).map_err(|e| format!("native.{}[{i}]: {e}", self.name))?;
        }
        Ok(())
    }
}

/// The [`ProviderKind`] of a provider crate laid out the usual way:
/// `provider_kind!(NAME, translate, ingress, Adapter(Config), default_rate_limit)`
/// where module `translate` has `capabilities()` and
/// `check_native_event(&str)`, module `ingress` has the const `INGRESS`
/// ([`Ingress`]), the adapter is built by
/// `Adapter::new(key, Config::from_json(table)?, transport)`, and the last
/// argument is [`ProviderKind::default_rate_limit_per_minute`]. Usable in a
/// `const fn`.
#[macro_export]
macro_rules! provider_kind {
    ($name:expr, $translate:ident, $ingress:ident, $adapter:ident($config:ident), $rate:expr $(,)?) => {
        $crate::ProviderKind {
            name: $name,
            capabilities: $translate::capabilities,
            native_event: $translate::check_native_event,
            new_adapter: |key, table, transport| {
                let config = $config::from_json(table)?;
                Ok(::std::sync::Arc::new($adapter::new(key, config, transport)))
            },
            default_rate_limit_per_minute: $rate,
            ingress: $ingress::INGRESS,
        }
    };
}

impl fmt::Debug for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderKind")
            .field("name", &self.name)
            .field(
                "default_rate_limit_per_minute",
                &self.default_rate_limit_per_minute,
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, NativePlan, NativeRequest, NativeResource, SubscriptionSpec};

    struct Never;

    #[async_trait::async_trait]
    impl ProviderAdapter for Never {
        fn kind(&self) -> &'static str {
            "x"
        }
        fn capabilities(&self) -> &Capabilities {
            unreachable!("not called by these tests")
        }
        fn plan(
            &self,
            _: &str,
            _: &SubscriptionSpec,
            _: &[String],
        ) -> Result<Vec<NativePlan>, Error> {
            Ok(Vec::new())
        }
        fn preview(&self, _: Option<&str>, _: &[NativePlan]) -> Vec<NativeRequest> {
            Vec::new()
        }
        fn base_url(&self) -> &str {
            ""
        }
        async fn create(&self, _: Option<&str>, _: &NativePlan) -> Result<NativeResource, Error> {
            Err(Error::Internal("never".into()))
        }
        async fn update(
            &self,
            _: Option<&str>,
            _: &str,
            _: &NativePlan,
            _: &NativePlan,
        ) -> Result<NativeResource, Error> {
            Err(Error::Internal("never".into()))
        }
        async fn delete(&self, _: Option<&str>, _: &str) -> Result<(), Error> {
            Ok(())
        }
        async fn get(&self, _: Option<&str>, _: &str) -> Result<NativeResource, Error> {
            Err(Error::Internal("never".into()))
        }
        async fn list(&self, _: Option<&str>) -> Result<Vec<NativeResource>, Error> {
            Ok(Vec::new())
        }
    }

    struct NoSend;

    #[async_trait::async_trait]
    impl Transport for NoSend {
        async fn send(
            &self,
            _: &str,
            _: &str,
            _: &NativeRequest,
        ) -> Result<crate::NativeResponse, crate::TransportError> {
            Err(crate::TransportError::Connect("offline".into()))
        }
    }

    const X: ProviderKind = ProviderKind {
        name: "x",
        capabilities: || unreachable!("not called by these tests"),
        native_event: |n| {
            if n.starts_with("x_") {
                Ok(())
            } else {
                Err(format!("`{n}` does not start with x_"))
            }
        },
        new_adapter: |_, table, _| {
            if table.get("token").is_some() {
                Ok(Arc::new(Never))
            } else {
                Err("token: is required".into())
            }
        },
        default_rate_limit_per_minute: None,
        ingress: crate::Ingress {
            credential: crate::IngressCredential::BearerToken,
            verify: |_, _, _| Err(crate::IngressRefusal::Unauthenticated),
            max_age: None,
            names_event: true,
        },
    };

    #[test]
    fn build_errors_name_the_key_path() {
        let err = X
            .build("tk", serde_json::json!({}), Arc::new(NoSend))
            .err()
            .unwrap();
        assert_eq!(err, "providers.tk.token: is required");
        assert!(
            X.build("tk", serde_json::json!({"token": "t"}), Arc::new(NoSend))
                .is_ok()
        );
    }

    #[test]
    fn catalog_check_names_the_bad_entry() {
        let ok = EventCatalog::from_toml("[native]\nx = [\"x_a\", \"x_b\"]").unwrap();
        X.check_catalog(&ok).unwrap();
        let bad = EventCatalog::from_toml("[native]\nx = [\"x_a\", \"y\"]").unwrap();
        let err = X.check_catalog(&bad).unwrap_err();
        assert!(err.starts_with("native.x[1]: `y`"), "{err}");
        let none = EventCatalog::from_toml("[native]\ny = [\"a\"]").unwrap();
        assert!(X.check_catalog(&none).unwrap_err().starts_with("native.x:"));
    }
}
