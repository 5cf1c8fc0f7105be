//! Starts the Talkover simulator for `talkover` providers (feature
//! `simulator`): it accepts every configured provider's `token` and knows
//! the configured agents.

use serde_json::json;
use switchboard_sim::Simulator;
use switchboard_sim::factory::{FixtureSpec, SimFactory, SimSetup};
use switchboard_sim::talkover::{
    API_PREFIX, DEFAULT_AGENT, TalkoverConfig as SimConfig, TalkoverSim,
};

use crate::TalkoverConfig;

/// The Talkover simulator factory the registry lists.
pub const SIMULATOR: SimFactory = SimFactory {
    api_prefix: API_PREFIX,
    default_accounts: &[DEFAULT_AGENT],
    build,
    fixture: FixtureSpec {
        accepted: || json!({"token": "talq_conformance"}),
        refused: || json!({"token": "talq_revoked"}),
        account: Some(DEFAULT_AGENT),
        operations_path: "",
    },
};

fn build(setup: &SimSetup<'_>) -> Result<Box<dyn Simulator>, String> {
    let tokens = setup
        .parse(TalkoverConfig::from_json)?
        .into_iter()
        .map(|cfg| cfg.token.expose().to_owned())
        .collect();
    Ok(Box::new(TalkoverSim::new(SimConfig {
        tokens,
        agents: setup.accounts.to_vec(),
    })))
}
