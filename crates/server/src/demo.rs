//! Demo mode (`[simulators] enabled = true`): one built-in simulator per
//! registered kind in use, accepting the configured credentials, with every
//! provider of that kind pointed at it. Each kind's simulator is started
//! through the registry, so this module names no kind and reads no kind's
//! config keys. Without the `demo` cargo feature the binary links no
//! simulator and demo mode is a configuration error.

use std::collections::BTreeMap;

use crate::app::StartError;
use crate::config::Config;

/// What asking for demo mode in a build without it says.
pub const NOT_BUILT: &str = "simulators.enabled: this build has no provider simulators (built without the `demo` feature); set it to false";

/// The simulators of a running server (none outside demo mode).
#[derive(Debug, Default)]
pub struct Simulators {
    #[cfg(feature = "demo")]
    running: Vec<switchboard_sim::Running>,
    /// `(provider key, simulator base URL)`, by key.
    providers: BTreeMap<String, String>,
}

/// `[simulators.accounts]` by default: each simulated kind's own default
/// accounts (kinds without accounts are left out).
pub fn default_accounts() -> BTreeMap<String, Vec<String>> {
    #[cfg(feature = "demo")]
    {
        switchboard_registry::kinds()
            .iter()
            .filter(|k| !k.simulator.default_accounts.is_empty())
            .map(|k| {
                let accounts = k.simulator.default_accounts.iter();
                (
                    k.name.to_owned(),
                    accounts.map(|a| (*a).to_owned()).collect(),
                )
            })
            .collect()
    }
    #[cfg(not(feature = "demo"))]
    BTreeMap::new()
}

impl Simulators {
    /// The providers pointed at a simulator and its base URL, by key.
    pub fn providers(&self) -> Vec<(String, String)> {
        self.providers.clone().into_iter().collect()
    }

    /// Starts one simulator per registered kind that a provider uses and
    /// rewrites those providers' `base_url` to it. A provider table the
    /// kind cannot parse is a configuration error; a socket that cannot be
    /// bound makes the server unavailable.
    #[cfg(feature = "demo")]
    pub async fn start(config: &mut Config) -> Result<Self, StartError> {
        use switchboard_sim::factory::SimSetup;
        let mut started = Self::default();
        for kind in switchboard_registry::kinds() {
            let tables: Vec<(String, serde_json::Value)> = config
                .providers
                .iter()
                .filter(|(_, p)| p.kind == kind.name)
                .map(|(key, p)| (key.clone(), p.table()))
                .collect();
            if tables.is_empty() {
                continue;
            }
            let tables: Vec<(&str, &serde_json::Value)> =
                tables.iter().map(|(k, t)| (k.as_str(), t)).collect();
            let defaults = || {
                kind.simulator
                    .default_accounts
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect()
            };
            let accounts: Vec<String> = config
                .simulators
                .accounts
                .get(kind.name)
                .cloned()
                .unwrap_or_else(defaults);
            let setup = SimSetup {
                tables: &tables,
                accounts: &accounts,
                page_size: None,
            };
            let sim = (kind.simulator.build)(&setup).map_err(StartError::Config)?;
            let served = switchboard_sim::serve(sim.router(), config.simulators.listen)
                .await
                .map_err(|e| StartError::Unavailable(format!("simulators.listen: {e}")))?;
            tracing::info!(kind = kind.name, url = %served.base_url, "simulator listening");
            let base = format!("{}{}", served.base_url, kind.simulator.api_prefix);
            let of_kind = config
                .providers
                .iter_mut()
                .filter(|(_, p)| p.kind == kind.name);
            for (key, p) in of_kind {
                p.settings
                    .insert("base_url".into(), serde_json::Value::String(base.clone()));
                started.providers.insert(key.clone(), base.clone());
            }
            started.running.push(served);
        }
        Ok(started)
    }

    /// Demo mode is not compiled in: always [`NOT_BUILT`].
    #[cfg(not(feature = "demo"))]
    pub async fn start(_config: &mut Config) -> Result<Self, StartError> {
        Err(StartError::Config(NOT_BUILT.into()))
    }

    /// Stops every simulator.
    pub async fn shutdown(self) {
        #[cfg(feature = "demo")]
        for sim in self.running {
            let _ = sim.shutdown().await;
        }
    }
}
