//! Starts the Bird simulator for `accesskey-workspace` providers (feature
//! `simulator`): it accepts every configured `access_key`, serves every
//! configured `organization_id` path prefix and knows the configured
//! workspaces.

use serde_json::json;
use switchboard_sim::Simulator;
use switchboard_sim::bird::{API_PREFIX, BirdConfig, BirdSim, DEFAULT_WORKSPACE, MAX_LIMIT};
use switchboard_sim::factory::{FixtureSpec, SimFactory, SimSetup};

use crate::AccessKeyWorkspaceConfig;

/// The Bird simulator factory the registry lists.
pub const SIMULATOR: SimFactory = SimFactory {
    api_prefix: API_PREFIX,
    default_accounts: &[DEFAULT_WORKSPACE],
    build,
    fixture: FixtureSpec {
        accepted: || json!({"access_key": "ak_conformance"}),
        refused: || json!({"access_key": "ak_revoked"}),
        account: Some(DEFAULT_WORKSPACE),
        operations_path: "",
    },
};

fn build(setup: &SimSetup<'_>) -> Result<Box<dyn Simulator>, String> {
    let configs = setup.parse(AccessKeyWorkspaceConfig::from_json)?;
    Ok(Box::new(BirdSim::new(BirdConfig {
        access_keys: configs
            .iter()
            .map(|c| c.access_key.expose().to_owned())
            .collect(),
        workspaces: setup.accounts.to_vec(),
        organizations: configs
            .into_iter()
            .filter_map(|c| c.organization_id)
            .collect(),
        page_size_max: setup.page_size.unwrap_or(MAX_LIMIT),
    })))
}
