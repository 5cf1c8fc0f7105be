//! Starts the Sendblue simulator for `account-v2` providers (feature
//! `simulator`): it accepts every configured `api_key_id` +
//! `api_secret_key` pair. Sendblue has no accounts: the credentials pick
//! the one webhook document.

use serde_json::json;
use switchboard_sim::Simulator;
use switchboard_sim::factory::{FixtureSpec, SimFactory, SimSetup};
use switchboard_sim::sendblue::{API_PREFIX, SendblueConfig, SendblueSim};

use crate::AccountV2Config;

/// The Sendblue simulator factory the registry lists.
pub const SIMULATOR: SimFactory = SimFactory {
    api_prefix: API_PREFIX,
    default_accounts: &[],
    build,
    fixture: FixtureSpec {
        accepted: || json!({"api_key_id": "sb_conformance_key", "api_secret_key": "sb_conformance_secret"}),
        refused: || json!({"api_key_id": "sb_conformance_key", "api_secret_key": "sb_revoked_secret"}),
        account: None,
        operations_path: "",
    },
};

fn build(setup: &SimSetup<'_>) -> Result<Box<dyn Simulator>, String> {
    let credentials = setup
        .parse(AccountV2Config::from_json)?
        .into_iter()
        .map(|c| {
            (
                c.api_key_id.expose().to_owned(),
                c.api_secret_key.expose().to_owned(),
            )
        })
        .collect();
    Ok(Box::new(SendblueSim::new(SendblueConfig { credentials })))
}
