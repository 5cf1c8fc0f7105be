//! The conformance suite for the Sendblue adapter (kind `account-v2`)
//! against the Sendblue simulator, over real HTTP on loopback. A Sendblue
//! entry's identity is (type, URL), so the suite's update case sees a new
//! id after a URL change, which it allows for.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_account_v2::{AccountV2Adapter, AccountV2Config};
use switchboard_conformance::{Harness, conformance_suite};
use switchboard_core::{
    CallbackAuth, CallbackUrl, EventName, OnUnsupported, ProviderAdapter, Secret, SubscriptionSpec,
};
use switchboard_sim::sendblue::{SendblueConfig, SendblueSim};

const KEY_ID: &str = "sb_conformance_key";
const SECRET_KEY: &str = "sb_conformance_secret";

struct AccountV2 {
    sim: SendblueSim,
    running: switchboard_sim::Running,
}

impl AccountV2 {
    async fn start() -> Self {
        let sim = SendblueSim::new(SendblueConfig {
            credentials: vec![(KEY_ID.into(), SECRET_KEY.into())],
        });
        let running = switchboard_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self { sim, running }
    }

    fn adapter_with(&self, secret_key: &str) -> Arc<dyn ProviderAdapter> {
        let transport = switchboard_conformance::single_attempt_transport();
        let cfg = AccountV2Config::from_json(serde_json::json!({
            "base_url": self.running.base_url,
            "api_key_id": KEY_ID,
            "api_secret_key": secret_key,
        }))
        .unwrap();
        Arc::new(AccountV2Adapter::new("sendblue", cfg, transport))
    }
}

#[async_trait]
impl Harness for AccountV2 {
    fn sim(&self) -> &switchboard_sim::faults::Harness {
        self.sim.harness()
    }

    fn adapter(&self) -> Arc<dyn ProviderAdapter> {
        self.adapter_with(SECRET_KEY)
    }

    fn adapter_with_bad_credentials(&self) -> Arc<dyn ProviderAdapter> {
        self.adapter_with("sb_revoked_secret")
    }

    fn spec(&self) -> SubscriptionSpec {
        SubscriptionSpec {
            provider: "sendblue".into(),
            account: None,
            name: Some("conformance".into()),
            url: CallbackUrl::parse("https://hooks.example.com/sendblue").unwrap(),
            events: vec![
                EventName::parse("message.received").unwrap(),
                EventName::parse("call.ended").unwrap(),
                EventName::parse("native:typing_indicator").unwrap(),
            ],
            auth: CallbackAuth::None,
            signing_secret: Some(Secret::new("whsec_conformance")),
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
        vec![
            "receive".into(),
            "call_log".into(),
            "typing_indicator".into(),
        ]
    }
}

conformance_suite!(AccountV2::start().await);
