//! `switchboard simulate`: the built-in provider simulators served on
//! their own, in a process of their own, from the same configuration as
//! the server (the `[providers.*]` tables and `[simulators]`). A load run
//! keeps their memory and CPU out of the server's figures, and a team
//! developing against Switchboard gets the providers without the server.
//! The simulators are started exactly as demo mode starts them
//! ([`Simulators::start`]); this module adds the address printed for each
//! provider and the URL file.

use std::net::SocketAddr;
use std::path::Path;

use crate::app::StartError;
use crate::config::Config;
use crate::demo::Simulators;

/// What `simulate` says in a build without simulators.
pub const NOT_BUILT: &str =
    "simulate: this build has no provider simulators (built without the `demo` feature)";

/// Running simulators and the `base_url` each provider should use.
#[derive(Debug)]
pub struct Served {
    simulators: Simulators,
}

impl Served {
    /// `(provider key, base_url)`, by key: one per configured provider.
    pub fn providers(&self) -> Vec<(String, String)> {
        self.simulators.providers()
    }

    /// The line printed for each provider: `<key> <base_url>`.
    pub fn lines(&self) -> Vec<String> {
        self.providers()
            .into_iter()
            .map(|(key, url)| format!("{key} {url}"))
            .collect()
    }

    /// Writes `{ "<provider key>": "<base_url>" }` to `path`. The file
    /// appears whole (written beside it, then renamed), so a tool waiting
    /// for it never reads half of it.
    pub fn write_urls(&self, path: &Path) -> std::io::Result<()> {
        let map: serde_json::Map<String, serde_json::Value> = self
            .providers()
            .into_iter()
            .map(|(key, url)| (key, serde_json::Value::String(url)))
            .collect();
        let text = serde_json::to_string_pretty(&map).map_err(std::io::Error::other)?;
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        std::fs::write(&partial, text + "\n")?;
        std::fs::rename(&partial, path)
    }

    /// Stops every simulator, letting in-flight requests finish.
    pub async fn shutdown(self) {
        self.simulators.shutdown().await;
    }
}

/// Starts one simulator per provider kind in `config`, each on its own
/// socket at `listen` (port 0: a free port each). At least one provider
/// must be configured.
pub async fn start(mut config: Config, listen: SocketAddr) -> Result<Served, StartError> {
    if !cfg!(feature = "demo") {
        return Err(StartError::Config(NOT_BUILT.into()));
    }
    if config.providers.is_empty() {
        return Err(StartError::Config(
            "providers: simulate needs at least one [providers.<key>] table".into(),
        ));
    }
    config.simulators.listen = listen;
    let simulators = Simulators::start(&mut config).await?;
    Ok(Served { simulators })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "demo"))]
    #[tokio::test]
    async fn a_build_without_simulators_says_so() {
        let mut config = Config::default();
        let table = r#"{"kind": "talkover", "token": "talq_x"}"#;
        config
            .providers
            .insert("tk".into(), serde_json::from_str(table).unwrap());
        let err = start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap_err();
        assert!(matches!(err, StartError::Config(m) if m == NOT_BUILT));
    }

    #[cfg(feature = "demo")]
    #[tokio::test]
    async fn every_provider_gets_its_simulator() {
        let mut config = Config::default();
        let table = r#"{"kind": "talkover", "token": "talq_x"}"#;
        config
            .providers
            .insert("tk".into(), serde_json::from_str(table).unwrap());
        let served = start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let lines = served.lines();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("tk http://127.0.0.1:"), "{lines:?}");
        served.shutdown().await;
    }
}
