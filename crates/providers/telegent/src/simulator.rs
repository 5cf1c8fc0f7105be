//! Starts the Telegent simulator for `telegent` providers (feature
//! `simulator`): it lets every configured `account_key` + `account_secret`
//! mint tokens and knows the configured accounts. A provider with a static
//! `token` gets none: the simulator only honours tokens it minted itself.

use serde_json::json;
use switchboard_sim::Simulator;
use switchboard_sim::factory::{FixtureSpec, SimFactory, SimSetup};
use switchboard_sim::telegent::{
    API_PREFIX, DEFAULT_ACCOUNT, TelegentConfig as SimConfig, TelegentSim,
};

use crate::{Credentials, TelegentConfig};

/// The Telegent simulator factory the registry lists.
pub const SIMULATOR: SimFactory = SimFactory {
    api_prefix: API_PREFIX,
    default_accounts: &[DEFAULT_ACCOUNT],
    build,
    fixture: FixtureSpec {
        accepted: || json!({"account_key": "DID-CONFORMANCE", "account_secret": "conformance-secret"}),
        refused: || json!({"account_key": "DID-CONFORMANCE", "account_secret": "revoked-secret"}),
        account: Some(DEFAULT_ACCOUNT),
        // Every webhook path has it (`/v1.0/webhook…`,
        // `/v1.0/account/webhooks`); the token mint does not.
        operations_path: "webhook",
    },
};

fn build(setup: &SimSetup<'_>) -> Result<Box<dyn Simulator>, String> {
    let account_keys = setup
        .parse(TelegentConfig::from_json)?
        .into_iter()
        .filter_map(|cfg| match cfg.credentials {
            Credentials::AccountKey {
                account_key,
                account_secret,
            } => Some((account_key, account_secret.expose().to_owned())),
            Credentials::Token(_) => None,
        })
        .collect();
    Ok(Box::new(TelegentSim::new(SimConfig {
        account_keys,
        accounts: setup.accounts.to_vec(),
        ..SimConfig::default()
    })))
}
