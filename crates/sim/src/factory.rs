//! How one kind's simulator is started from provider configuration, for the
//! server's demo mode and for the tests.
//!
//! A provider crate fills in a [`SimFactory`] (behind its `simulator`
//! feature): it reads its *own* typed config from the provider tables and
//! builds its simulator's config from that, so no crate reads another's
//! config keys. This crate only carries the tables as JSON and stays free of
//! the adapters' types.

use std::net::SocketAddr;

use serde_json::Value;

use crate::faults::Harness;
use crate::{Running, Simulator};

/// How the server (demo mode) and the tests start one kind's simulator.
pub struct SimFactory {
    /// Path of the API below the served root, part of the provider's
    /// `base_url` (`/api/v1` for Talkover, empty for the others).
    pub api_prefix: &'static str,
    /// Accounts the simulator knows unless `[simulators.accounts] <kind>`
    /// says otherwise; empty for a kind without accounts.
    pub default_accounts: &'static [&'static str],
    /// Builds a simulator that accepts the credentials of `setup.tables`;
    /// errors name `providers.<key>.<path>`.
    pub build: fn(&SimSetup<'_>) -> Result<Box<dyn Simulator>, String>,
    /// What the test fixture configures.
    pub fixture: FixtureSpec,
}

/// What [`SimFactory::build`] starts from.
#[derive(Debug, Clone, Copy)]
pub struct SimSetup<'a> {
    /// `(provider key, kind-specific table)` of every configured provider
    /// of the kind.
    pub tables: &'a [(&'a str, &'a Value)],
    /// Accounts that exist (agents, `AccountId`s, workspaces); ignored by a
    /// kind without accounts.
    pub accounts: &'a [String],
    /// Largest page a list returns where the simulator pages (Bird); `None`
    /// keeps the simulator's default.
    pub page_size: Option<usize>,
}

impl SimSetup<'_> {
    /// Every table parsed with the kind's own config parser, whose errors
    /// are relative to the table; the result's name `providers.<key>.`.
    pub fn parse<T>(&self, parse: fn(Value) -> Result<T, String>) -> Result<Vec<T>, String> {
        self.tables
            .iter()
            .map(|(key, table)| parse((*table).clone()).map_err(|e| format!("providers.{key}.{e}")))
            .collect()
    }
}

/// Per-kind data of the test fixture.
#[derive(Debug, Clone, Copy)]
pub struct FixtureSpec {
    /// A kind-specific table (without `base_url`) whose credentials the
    /// simulator accepts.
    pub accepted: fn() -> Value,
    /// The same table with credentials the simulator refuses.
    pub refused: fn() -> Value,
    /// An account the simulator knows; `None` for a kind without accounts.
    pub account: Option<&'static str>,
    /// A path fragment every webhook operation contains and side traffic
    /// (Telegent's token minting) does not; empty matches every request.
    /// Meant for [`crate::faults::Fault::on_path`] and log filters.
    pub operations_path: &'static str,
}

/// A fresh simulator on `127.0.0.1:<free port>` for one test. Dropping it
/// stops the server.
pub struct Fixture {
    /// Base URL for the provider table, API prefix included.
    pub base_url: String,
    /// The simulator's fault queue and request log.
    pub harness: Harness,
    /// [`FixtureSpec::accepted`] with `base_url`: an adapter built from it
    /// works.
    pub table: Value,
    /// [`FixtureSpec::refused`] with `base_url`: an adapter built from it is
    /// refused by the simulator.
    pub refused_table: Value,
    /// [`FixtureSpec::account`].
    pub account: Option<String>,
    /// [`FixtureSpec::operations_path`].
    pub operations_path: &'static str,
    /// The simulator.
    pub simulator: Box<dyn Simulator>,
    /// The server it runs on.
    pub running: Running,
}

impl SimFactory {
    /// Starts a fresh test fixture: the simulator accepting
    /// [`FixtureSpec::accepted`], knowing the default accounts, with
    /// one-item pages (so every list follows its pagination), served on a
    /// free loopback port.
    ///
    /// # Panics
    ///
    /// When the simulator cannot be built or bound: a test cannot go on.
    pub async fn fixture(&self) -> Fixture {
        let spec = self.fixture;
        let accepted = (spec.accepted)();
        let accounts: Vec<String> = self
            .default_accounts
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        let setup = SimSetup {
            tables: &[("fixture", &accepted)],
            accounts: &accounts,
            page_size: Some(1),
        };
        let simulator = (self.build)(&setup).expect("the fixture's simulator builds");
        let running = crate::serve(simulator.router(), SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free loopback port");
        let base_url = format!("{}{}", running.base_url, self.api_prefix);
        let with_base = |mut table: Value| {
            if let Some(map) = table.as_object_mut() {
                map.insert("base_url".into(), Value::String(base_url.clone()));
            }
            table
        };
        Fixture {
            table: with_base(accepted),
            refused_table: with_base((spec.refused)()),
            harness: simulator.harness().clone(),
            account: spec.account.map(str::to_owned),
            operations_path: spec.operations_path,
            simulator,
            running,
            base_url,
        }
    }
}

impl std::fmt::Debug for SimFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFactory")
            .field("api_prefix", &self.api_prefix)
            .field("default_accounts", &self.default_accounts)
            .finish_non_exhaustive()
    }
}
