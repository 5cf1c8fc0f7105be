//! The shared conformance suite: one set of behaviours every provider
//! adapter must show against its simulator, driven only through the
//! [`ProviderAdapter`] trait (the OpenDAL "behaviour test" idea).
//!
//! It covers every kind in `switchboard_registry::kinds()` with no per-kind
//! code: each registered kind brings a simulator fixture (credentials the
//! simulator accepts and refuses, an account it knows), the subscriptions
//! are derived from the kind's capabilities and the shipped catalog
//! ([`spec`]), and the cases ([`cases`]) check each kind on the path its
//! capabilities select. [`for_every_kind`] runs one case against a fresh
//! [`Harness`] per kind. The relay-mode case receives the simulators'
//! deliveries on a local [`receiver`].

pub mod cases;
pub mod receiver;
pub mod spec;

use std::future::Future;
use std::sync::Arc;

use switchboard_core::ProviderAdapter;
use switchboard_registry::Registered;
use switchboard_sim::factory::Fixture;
use switchboard_sim::faults::Fault;

/// One registered kind under test: its adapters against a fresh simulator.
pub struct Harness {
    kind: &'static str,
    adapter: Arc<dyn ProviderAdapter>,
    refused: Arc<dyn ProviderAdapter>,
    fixture: Fixture,
}

impl Harness {
    /// Starts `kind`'s simulator fixture and builds, through the kind's own
    /// config parser, one adapter with the credentials it accepts and one
    /// with credentials it refuses. Neither retries (one attempt per call),
    /// so error classification is observable.
    pub async fn start(kind: &'static Registered) -> Self {
        let fixture = kind.simulator.fixture().await;
        let build = |table: &serde_json::Value| {
            kind.build(kind.name, table.clone(), single_attempt_transport())
                .unwrap_or_else(|e| panic!("kind `{}`: fixture table: {e}", kind.name))
        };
        let adapter = build(&fixture.table);
        assert_eq!(adapter.kind(), kind.name, "the adapter reports its kind");
        Self {
            kind: kind.name,
            adapter,
            refused: build(&fixture.refused_table),
            fixture,
        }
    }

    /// The provider kind (`talkover`).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The adapter the simulator accepts.
    pub fn adapter(&self) -> &dyn ProviderAdapter {
        &*self.adapter
    }

    /// An adapter whose management credentials the simulator refuses.
    pub fn adapter_with_bad_credentials(&self) -> &dyn ProviderAdapter {
        &*self.refused
    }

    /// The account the simulator knows (None for account-less kinds).
    pub fn account(&self) -> Option<&str> {
        self.fixture.account.as_deref()
    }

    /// Makes the simulator fail its next operation with `status`.
    pub fn fail_next(&self, status: u16, retry_after: Option<u64>) {
        self.inject(match retry_after {
            Some(secs) => Fault::rate_limited(secs),
            None => Fault::status(status),
        });
    }

    /// Makes the simulator drop the next operation's connection unanswered.
    pub fn drop_next(&self) {
        self.inject(Fault::drop_connection());
    }

    /// Queues `fault` for the webhook operations only, so side traffic
    /// (Telegent's token minting) does not absorb it.
    fn inject(&self, fault: Fault) {
        let fault = match self.fixture.operations_path {
            "" => fault,
            paths => fault.on_path(paths),
        };
        self.fixture
            .harness
            .faults
            .push(fault)
            .expect("a valid fault");
    }

    /// Asks the simulator to deliver to one of its registered webhooks
    /// (`POST /_sim/deliveries`, a `switchboard_sim::deliveries::DeliveryOrder`)
    /// and returns its report.
    ///
    /// # Panics
    ///
    /// When the simulator refuses the order: the case set it up wrongly.
    pub async fn deliver(
        &self,
        order: serde_json::Value,
    ) -> switchboard_sim::deliveries::DeliveryReport {
        let url = format!(
            "{}{}",
            self.fixture.running.base_url,
            switchboard_sim::deliveries::DELIVERIES_PATH
        );
        let response = reqwest::Client::new()
            .post(url)
            .json(&order)
            .send()
            .await
            .expect("the simulator answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert!(
            status.is_success(),
            "delivery order {order} refused: {status} {text}"
        );
        serde_json::from_str(&text).expect("a delivery report")
    }

    /// Bodies of the webhook operations the simulator answered, oldest
    /// first (secrets unredacted).
    pub fn received_bodies(&self) -> Vec<serde_json::Value> {
        self.fixture
            .harness
            .log
            .entries()
            .into_iter()
            .filter(|r| !r.faulted && r.path.contains(self.fixture.operations_path))
            .filter_map(|r| r.body)
            .collect()
    }
}

/// A transport that sends each request once, so that every classification
/// of a provider failure is observable (retries would hide them).
pub fn single_attempt_transport() -> Arc<dyn switchboard_core::Transport> {
    let config = switchboard_transport::TransportConfig {
        max_attempts: 1,
        ..Default::default()
    };
    Arc::new(
        switchboard_transport::HttpTransport::new(config, Default::default())
            .expect("an HTTP client"),
    )
}

/// Runs `case` against a fresh [`Harness`] of every registered kind, each
/// in its own task so one kind's failure does not hide another's, and
/// panics naming the case and every kind that failed.
pub async fn for_every_kind<F, Fut>(case: &str, run: F)
where
    F: Fn(Harness) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let kinds = switchboard_registry::kinds();
    assert!(!kinds.is_empty(), "no kind is registered");
    let mut failed = Vec::new();
    for kind in kinds {
        let task = tokio::spawn(async move { run(Harness::start(kind).await).await });
        if let Err(e) = task.await {
            let why = match e.try_into_panic() {
                Ok(payload) => panic_text(payload),
                Err(e) => e.to_string(),
            };
            failed.push(format!("{}: {why}", kind.name));
        }
    }
    assert!(
        failed.is_empty(),
        "case `{case}` failed for {} of {} kinds:\n{}",
        failed.len(),
        kinds.len(),
        failed.join("\n")
    );
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast_ref::<&str>()
            .map_or_else(|| "(non-text panic)".to_owned(), |s| (*s).to_owned()),
    }
}

/// Expands into one `#[tokio::test]` per case of [`cases`], each run for
/// every registered kind, so a failure names the case and the kinds. The
/// case list lives here, beside the cases, so a driver cannot miss one.
#[macro_export]
macro_rules! conformance_suite {
    () => {
        $crate::conformance_suite!(
            create_get_list_delete,
            every_catalog_event_is_accepted,
            preview_is_what_create_sends,
            update_changes_only_what_differs,
            disable_and_enable,
            errors_are_classified,
            ingress_verifies_simulated_deliveries,
        );
    };
    ($($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::for_every_kind(stringify!($case), |h| async move {
                    $crate::cases::$case(&h).await
                })
                .await
            }
        )+
    };
}
