//! The conformance suite for the Bird (`accesskey-workspace`) adapter
//! against the Bird simulator, over real HTTP on loopback.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_accesskey_workspace::{AccessKeyWorkspaceAdapter, AccessKeyWorkspaceConfig};
use switchboard_conformance::{Harness, conformance_suite};
use switchboard_core::{
    CallbackAuth, CallbackUrl, EventName, Filter, OnUnsupported, ProviderAdapter, Secret,
    SubscriptionSpec,
};
use switchboard_sim::bird::{BirdConfig, BirdSim, DEFAULT_ORGANIZATION, DEFAULT_WORKSPACE};

struct Bird {
    sim: BirdSim,
    running: switchboard_sim::Running,
}

impl Bird {
    async fn start() -> Self {
        let sim = BirdSim::new(BirdConfig {
            access_keys: vec!["ak_conformance".into()],
            workspaces: vec![DEFAULT_WORKSPACE.into()],
            organizations: vec![DEFAULT_ORGANIZATION.into()],
            // Small pages, so every list in the suite follows nextPageToken.
            page_size_max: 1,
        });
        let running = switchboard_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self { sim, running }
    }

    fn adapter_with(&self, access_key: &str) -> Arc<dyn ProviderAdapter> {
        let transport = switchboard_conformance::single_attempt_transport();
        let cfg = AccessKeyWorkspaceConfig::from_json(serde_json::json!({
            "base_url": self.running.base_url,
            "access_key": access_key,
        }))
        .unwrap();
        Arc::new(AccessKeyWorkspaceAdapter::new("bird", cfg, transport))
    }
}

#[async_trait]
impl Harness for Bird {
    fn sim(&self) -> &switchboard_sim::faults::Harness {
        self.sim.harness()
    }

    fn adapter(&self) -> Arc<dyn ProviderAdapter> {
        self.adapter_with("ak_conformance")
    }

    fn adapter_with_bad_credentials(&self) -> Arc<dyn ProviderAdapter> {
        self.adapter_with("ak_revoked")
    }

    fn spec(&self) -> SubscriptionSpec {
        SubscriptionSpec {
            provider: "bird".into(),
            account: Some(DEFAULT_WORKSPACE.into()),
            name: Some("conformance".into()),
            url: CallbackUrl::parse("https://hooks.example.com/bird").unwrap(),
            events: vec![
                EventName::parse("message.sent").unwrap(),
                EventName::parse("message.received").unwrap(),
            ],
            auth: CallbackAuth::None,
            signing_secret: Some(Secret::new("whsec_conformance")),
            headers: BTreeMap::new(),
            method: None,
            format: None,
            timeout_seconds: None,
            max_retries: None,
            enabled: true,
            filters: vec![Filter {
                key: "channelId".into(),
                value: "58c44c1d-0000-4000-8000-000000000001".into(),
            }],
            provider_options: serde_json::Map::from_iter([(
                "template".to_owned(),
                serde_json::json!("text"),
            )]),
            metadata: Default::default(),
            on_unsupported: OnUnsupported::Reject,
        }
    }

    fn native_events(&self) -> Vec<String> {
        vec![
            "channels:sms.outbound".into(),
            "channels:sms.inbound".into(),
        ]
    }
}

conformance_suite!(Bird::start().await);
