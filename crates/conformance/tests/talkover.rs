//! The conformance suite for the Talkover adapter against the Talkover
//! simulator, over real HTTP on loopback.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_conformance::{Harness, conformance_suite};
use switchboard_core::{
    CallbackAuth, CallbackUrl, EventName, OnUnsupported, ProviderAdapter, Secret, SubscriptionSpec,
};
use switchboard_sim::talkover::{DEFAULT_AGENT, TalkoverConfig as SimConfig, TalkoverSim};
use switchboard_talkover::{TalkoverAdapter, TalkoverConfig};

struct Talkover {
    sim: TalkoverSim,
    running: switchboard_sim::Running,
}

impl Talkover {
    async fn start() -> Self {
        let sim = TalkoverSim::new(SimConfig {
            tokens: vec!["talq_conformance".into()],
            agents: vec![DEFAULT_AGENT.into()],
        });
        let running = switchboard_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self { sim, running }
    }

    fn adapter_with(&self, token: &str) -> Arc<dyn ProviderAdapter> {
        let transport = switchboard_conformance::single_attempt_transport();
        let cfg = TalkoverConfig::from_json(serde_json::json!({
            "base_url": format!("{}/api/v1", self.running.base_url),
            "token": token,
        }))
        .unwrap();
        Arc::new(TalkoverAdapter::new("talkover", cfg, transport))
    }
}

#[async_trait]
impl Harness for Talkover {
    fn sim(&self) -> &switchboard_sim::faults::Harness {
        self.sim.harness()
    }

    fn adapter(&self) -> Arc<dyn ProviderAdapter> {
        self.adapter_with("talq_conformance")
    }

    fn adapter_with_bad_credentials(&self) -> Arc<dyn ProviderAdapter> {
        self.adapter_with("talq_revoked")
    }

    fn spec(&self) -> SubscriptionSpec {
        SubscriptionSpec {
            provider: "talkover".into(),
            account: Some(DEFAULT_AGENT.into()),
            name: Some("conformance".into()),
            url: CallbackUrl::parse("https://hooks.example.com/talkover").unwrap(),
            events: vec![
                EventName::parse("call.ended").unwrap(),
                EventName::parse("native:event_action").unwrap(),
            ],
            auth: CallbackAuth::Bearer {
                token: Secret::new("callback-token"),
            },
            signing_secret: Some(Secret::new("whsec_conformance")),
            headers: BTreeMap::from([("X-Team".to_owned(), "billing".to_owned())]),
            method: None,
            format: None,
            timeout_seconds: Some(20),
            max_retries: Some(5),
            enabled: true,
            filters: vec![],
            provider_options: Default::default(),
            metadata: Default::default(),
            on_unsupported: OnUnsupported::Reject,
        }
    }

    fn native_events(&self) -> Vec<String> {
        vec!["event_phone_call_ended".into(), "event_action".into()]
    }
}

conformance_suite!(Talkover::start().await);
