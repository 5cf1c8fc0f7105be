//! The conformance suite for the Sendblue adapter (kind `account-v2`)
//! against the Sendblue simulator, over real HTTP on loopback.
//!
//! The cases are listed one by one instead of through `conformance_suite!`
//! because the suite's `update_changes_only_what_differs` asserts that a URL
//! change keeps the native id. A Sendblue entry has no id: its identity is
//! (type, URL), so a new URL is a new identity, which `update` returns and
//! the engine records. Every other case runs unchanged; the update case runs
//! in the form below, which checks the same behaviour through the identity
//! `update` returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_account_v2::{AccountV2Adapter, AccountV2Config};
use switchboard_conformance::Harness;
use switchboard_core::{
    CallbackAuth, CallbackUrl, Error, EventName, OnUnsupported, ProviderAdapter, Secret,
    SubscriptionSpec, UpstreamErrorKind,
};
use switchboard_sim::faults::Fault;
use switchboard_sim::sendblue::{SendblueConfig, SendblueSim};
use switchboard_transport::{HttpTransport, TransportConfig};

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
        let transport = HttpTransport::new(
            TransportConfig {
                max_attempts: 1,
                ..TransportConfig::default()
            },
            Default::default(),
        )
        .unwrap();
        let cfg = AccountV2Config::from_json(serde_json::json!({
            "base_url": self.running.base_url,
            "api_key_id": KEY_ID,
            "api_secret_key": secret_key,
        }))
        .unwrap();
        Arc::new(AccountV2Adapter::new("sendblue", cfg, Arc::new(transport)))
    }
}

#[async_trait]
impl Harness for AccountV2 {
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

    async fn fail_next(&self, status: u16, retry_after: Option<u64>) {
        let fault = match retry_after {
            Some(secs) => Fault::rate_limited(secs),
            None => Fault::status(status),
        };
        self.sim.inject(fault).unwrap();
    }

    async fn drop_next(&self) {
        self.sim.inject(Fault::drop_connection()).unwrap();
    }

    fn received_bodies(&self) -> Vec<serde_json::Value> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| !r.faulted)
            .filter_map(|r| r.body)
            .collect()
    }
}

#[tokio::test]
async fn conformance_create_get_list_delete() {
    switchboard_conformance::create_get_list_delete(&AccountV2::start().await).await
}

#[tokio::test]
async fn conformance_preview_is_what_create_sends() {
    switchboard_conformance::preview_is_what_create_sends(&AccountV2::start().await).await
}

#[tokio::test]
async fn conformance_disable_and_enable() {
    switchboard_conformance::disable_and_enable(&AccountV2::start().await).await
}

#[tokio::test]
async fn conformance_errors_are_classified() {
    switchboard_conformance::errors_are_classified(&AccountV2::start().await).await
}

/// The suite's update case for a kind whose identity includes the URL: the
/// URL changes, the entry is found under the identity `update` returned,
/// the old identity is gone, and a no-op update keeps the identity.
#[tokio::test]
async fn conformance_update_changes_only_what_differs() {
    let h = AccountV2::start().await;
    let a = h.adapter();
    let spec = h.spec();
    let plan = |s: &SubscriptionSpec| {
        a.plan("sub_01CONFORMANCE0000000000000", s, &h.native_events())
            .unwrap()
    };
    let old = plan(&spec);
    let mut changed = spec.clone();
    changed.url = CallbackUrl::parse("https://changed.example.com/hooks").unwrap();
    let new = plan(&changed);
    for (o, n) in old.iter().zip(&new) {
        let created = a.create(None, o).await.expect("create");
        let updated = a.update(None, &created.id, o, n).await.expect("update");
        let got = a.get(None, &updated.id).await.expect("get");
        assert_eq!(
            got.url.as_deref(),
            Some("https://changed.example.com/hooks")
        );
        assert_eq!(got.events, n.events);
        match a.get(None, &created.id).await.unwrap_err() {
            Error::Upstream(u) => assert_eq!(u.kind, UpstreamErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
        let before = h.sim.requests().len();
        let unchanged = a
            .update(None, &updated.id, n, n)
            .await
            .expect("no-op update");
        assert_eq!(unchanged.id, updated.id);
        assert_eq!(
            h.sim.requests().len(),
            before,
            "a no-op update sends nothing"
        );
    }
    assert_eq!(a.list(None).await.unwrap().len(), new.len());
}
