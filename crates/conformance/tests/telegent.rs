//! The conformance suite for the Telegent adapter against the Telegent
//! simulator, over real HTTP on loopback.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_conformance::{Harness, conformance_suite};
use switchboard_core::{
    CallbackAuth, CallbackUrl, EventName, OnUnsupported, ProviderAdapter, Secret, SubscriptionSpec,
};
use switchboard_sim::telegent::{DEFAULT_ACCOUNT, TelegentConfig as SimConfig, TelegentSim};
use switchboard_telegent::{TelegentAdapter, TelegentConfig};

const ACCOUNT_KEY: &str = "DID-CONFORMANCE";
const ACCOUNT_SECRET: &str = "conformance-secret";

/// Faults target the webhook operations, not the token mint that may
/// precede them, so each case observes the classification of the operation
/// itself. Every webhook path contains this (`/v1.0/webhook…`,
/// `/v1.0/account/webhooks`); the token path does not.
const WEBHOOK_PATHS: &str = "webhook";

struct Telegent {
    sim: TelegentSim,
    running: switchboard_sim::Running,
}

impl Telegent {
    async fn start() -> Self {
        let sim = TelegentSim::new(SimConfig {
            account_keys: vec![(ACCOUNT_KEY.into(), ACCOUNT_SECRET.into())],
            accounts: vec![DEFAULT_ACCOUNT.into()],
            ..SimConfig::default()
        });
        let running = switchboard_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self { sim, running }
    }

    fn adapter_with(&self, secret: &str) -> Arc<dyn ProviderAdapter> {
        let transport = switchboard_conformance::single_attempt_transport();
        let cfg = TelegentConfig::from_json(serde_json::json!({
            "base_url": self.running.base_url,
            "account_key": ACCOUNT_KEY,
            "account_secret": secret,
        }))
        .unwrap();
        Arc::new(TelegentAdapter::new("telegent", cfg, transport))
    }
}

#[async_trait]
impl Harness for Telegent {
    fn sim(&self) -> &switchboard_sim::faults::Harness {
        self.sim.harness()
    }

    /// Webhook operations only: token mints are side traffic, and preview
    /// shows only the webhook requests.
    fn api_paths(&self) -> &str {
        WEBHOOK_PATHS
    }

    fn adapter(&self) -> Arc<dyn ProviderAdapter> {
        self.adapter_with(ACCOUNT_SECRET)
    }

    fn adapter_with_bad_credentials(&self) -> Arc<dyn ProviderAdapter> {
        self.adapter_with("revoked-secret")
    }

    fn spec(&self) -> SubscriptionSpec {
        SubscriptionSpec {
            provider: "telegent".into(),
            account: Some(DEFAULT_ACCOUNT.into()),
            name: Some("conformance".into()),
            url: CallbackUrl::parse("https://hooks.example.com/telegent").unwrap(),
            events: vec![
                EventName::parse("call.ended").unwrap(),
                EventName::parse("native:Order_Update").unwrap(),
            ],
            auth: CallbackAuth::Basic {
                username: "hook-user".into(),
                password: Secret::new("callback-password"),
            },
            signing_secret: None,
            headers: BTreeMap::new(),
            method: None,
            format: None,
            timeout_seconds: None,
            max_retries: None,
            enabled: true,
            filters: vec![],
            provider_options: Default::default(),
            metadata: Default::default(),
            on_unsupported: OnUnsupported::Reject,
        }
    }

    fn native_events(&self) -> Vec<String> {
        vec!["Call_Completed".into(), "Order_Update".into()]
    }
}

conformance_suite!(Telegent::start().await);
