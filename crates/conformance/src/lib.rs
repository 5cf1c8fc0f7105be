//! The shared conformance suite: one set of behaviours every provider
//! adapter must show against its simulator, driven only through the
//! [`ProviderAdapter`] trait (the OpenDAL "behaviour test" idea).
//!
//! A provider plugs in by implementing [`Harness`] in a test file and
//! invoking [`conformance_suite!`], which expands into one `#[tokio::test]`
//! per case, so a failure names the case.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::{
    CallbackUrl, Error, NativePlan, ProviderAdapter, SubscriptionSpec, UpstreamErrorKind,
};
use switchboard_sim::faults::Fault;

/// What a provider kind's test file supplies.
#[async_trait]
pub trait Harness: Send + Sync {
    /// An adapter pointed at a fresh simulator; it must not retry (one
    /// attempt per call), so error classification is observable.
    fn adapter(&self) -> Arc<dyn ProviderAdapter>;
    /// An adapter whose management credentials the simulator refuses.
    fn adapter_with_bad_credentials(&self) -> Arc<dyn ProviderAdapter>;
    /// A valid subscription for this kind (account included when required).
    fn spec(&self) -> SubscriptionSpec;
    /// The native event names `spec()`'s events resolve to.
    fn native_events(&self) -> Vec<String>;
    /// The simulator's fault queue and request log.
    fn sim(&self) -> &switchboard_sim::faults::Harness;
    /// A path fragment shared by the operations under test, so faults and
    /// body checks skip side traffic such as token minting ("" = all).
    fn api_paths(&self) -> &str {
        ""
    }
    /// Makes the simulator fail its next request with `status`.
    async fn fail_next(&self, status: u16, retry_after: Option<u64>) {
        let fault = match retry_after {
            Some(secs) => Fault::rate_limited(secs),
            None => Fault::status(status),
        };
        self.inject(fault);
    }
    /// Makes the simulator drop the next connection without answering.
    async fn drop_next(&self) {
        self.inject(Fault::drop_connection());
    }
    /// Queues `fault` for the operations under test.
    fn inject(&self, fault: Fault) {
        let fault = match self.api_paths() {
            "" => fault,
            paths => fault.on_path(paths),
        };
        self.sim().faults.push(fault).expect("a valid fault");
    }
    /// Bodies the simulator received, oldest first (secrets unredacted).
    fn received_bodies(&self) -> Vec<serde_json::Value> {
        self.sim()
            .log
            .entries()
            .into_iter()
            .filter(|r| !r.faulted && r.path.contains(self.api_paths()))
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

fn plans(h: &dyn Harness, spec: &SubscriptionSpec) -> Vec<NativePlan> {
    h.adapter()
        .plan("sub_01CONFORMANCE0000000000000", spec, &h.native_events())
        .expect("the harness spec must translate")
}

fn upstream_kind(e: Error) -> UpstreamErrorKind {
    match e {
        Error::Upstream(u) => u.kind,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

/// Create → get → list → delete → get is NotFound → delete again succeeds.
pub async fn create_get_list_delete(h: &dyn Harness) {
    let a = h.adapter();
    let spec = h.spec();
    let account = spec.account.as_deref();
    let mut ids = Vec::new();
    for plan in plans(h, &spec) {
        let created = a.create(account, &plan).await.expect("create");
        assert_eq!(created.events, plan.events, "created events");
        assert!(created.enabled);
        let got = a.get(account, &created.id).await.expect("get");
        assert_eq!(got.id, created.id);
        assert_eq!(got.events, plan.events);
        assert_eq!(got.url.as_deref(), Some(spec.url.as_str()));
        ids.push(created.id);
    }
    let listed = a.list(account).await.expect("list");
    for id in &ids {
        assert!(listed.iter().any(|r| &r.id == id), "list contains {id}");
    }
    for id in &ids {
        a.delete(account, id).await.expect("delete");
        assert_eq!(
            upstream_kind(a.get(account, id).await.unwrap_err()),
            UpstreamErrorKind::NotFound
        );
        a.delete(account, id)
            .await
            .expect("deleting twice succeeds");
    }
}

/// What `preview` shows is exactly what `create` sends.
pub async fn preview_is_what_create_sends(h: &dyn Harness) {
    let a = h.adapter();
    let spec = h.spec();
    let plans = plans(h, &spec);
    let previewed: Vec<_> = a
        .preview(spec.account.as_deref(), &plans)
        .into_iter()
        .map(|r| r.body.expect("a create has a body"))
        .collect();
    let before = h.received_bodies().len();
    for plan in &plans {
        a.create(spec.account.as_deref(), plan)
            .await
            .expect("create");
    }
    let sent: Vec<_> = h.received_bodies()[before..].to_vec();
    assert_eq!(sent, previewed);
}

/// An update changes the callback URL; the resource is found under the id
/// the update returns (kinds whose identity is the URL get a new one, and
/// then the old identity is gone), and a no-op update changes nothing.
pub async fn update_changes_only_what_differs(h: &dyn Harness) {
    let a = h.adapter();
    let spec = h.spec();
    let account = spec.account.as_deref();
    let old = plans(h, &spec);
    let mut changed = spec.clone();
    changed.url = CallbackUrl::parse("https://changed.example.com/hooks").unwrap();
    let new = plans(h, &changed);
    for (o, n) in old.iter().zip(&new) {
        let created = a.create(account, o).await.expect("create");
        let updated = a.update(account, &created.id, o, n).await.expect("update");
        let got = a.get(account, &updated.id).await.expect("get");
        assert_eq!(
            got.url.as_deref(),
            Some("https://changed.example.com/hooks")
        );
        assert_eq!(got.events, n.events);
        if updated.id != created.id {
            assert_eq!(
                upstream_kind(a.get(account, &created.id).await.unwrap_err()),
                UpstreamErrorKind::NotFound,
                "a replaced resource is gone"
            );
        }
        let before = h.received_bodies().len();
        let unchanged = a
            .update(account, &updated.id, n, n)
            .await
            .expect("no-op update");
        assert_eq!(unchanged.id, updated.id);
        assert_eq!(
            h.received_bodies().len(),
            before,
            "a no-op update writes nothing"
        );
    }
    assert_eq!(a.list(account).await.expect("list").len(), new.len());
}

/// Disable and enable, where the kind can switch natively.
pub async fn disable_and_enable(h: &dyn Harness) {
    let a = h.adapter();
    if !a.capabilities().native_disable {
        return;
    }
    let spec = h.spec();
    let account = spec.account.as_deref();
    let on = plans(h, &spec);
    let mut off_spec = spec.clone();
    off_spec.enabled = false;
    let off = plans(h, &off_spec);
    for (p_on, p_off) in on.iter().zip(&off) {
        let created = a.create(account, p_on).await.expect("create");
        a.update(account, &created.id, p_on, p_off)
            .await
            .expect("disable");
        assert!(!a.get(account, &created.id).await.unwrap().enabled);
        a.update(account, &created.id, p_off, p_on)
            .await
            .expect("enable");
        assert!(a.get(account, &created.id).await.unwrap().enabled);
    }
}

/// Provider failures are classified the same way for every kind.
pub async fn errors_are_classified(h: &dyn Harness) {
    let a = h.adapter();
    let spec = h.spec();
    let account = spec.account.as_deref();
    let plan = plans(h, &spec).remove(0);

    h.fail_next(500, None).await;
    assert_eq!(
        upstream_kind(a.create(account, &plan).await.unwrap_err()),
        UpstreamErrorKind::Unavailable
    );
    h.fail_next(503, None).await;
    assert_eq!(
        upstream_kind(a.list(account).await.unwrap_err()),
        UpstreamErrorKind::Unavailable
    );
    h.fail_next(504, None).await;
    assert_eq!(
        upstream_kind(a.list(account).await.unwrap_err()),
        UpstreamErrorKind::Timeout
    );
    h.fail_next(429, Some(7)).await;
    assert_eq!(
        upstream_kind(a.list(account).await.unwrap_err()),
        UpstreamErrorKind::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(7))
        }
    );
    h.drop_next().await;
    assert_eq!(
        upstream_kind(a.list(account).await.unwrap_err()),
        UpstreamErrorKind::Unavailable
    );

    let bad = h.adapter_with_bad_credentials();
    assert_eq!(
        upstream_kind(bad.create(account, &plan).await.unwrap_err()),
        UpstreamErrorKind::Unauthorized
    );
    assert_eq!(
        upstream_kind(bad.list(account).await.unwrap_err()),
        UpstreamErrorKind::Unauthorized
    );

    assert_eq!(
        upstream_kind(
            a.get(account, "00000000-0000-4000-8000-000000000000")
                .await
                .unwrap_err()
        ),
        UpstreamErrorKind::NotFound
    );
    // After the injected faults the provider works again and nothing leaked.
    assert!(a.list(account).await.expect("list").is_empty());
}

/// Expands into one `#[tokio::test]` per case; `$make` is an async
/// expression yielding a value implementing [`Harness`].
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        #[tokio::test]
        async fn conformance_create_get_list_delete() {
            $crate::create_get_list_delete(&$make).await
        }
        #[tokio::test]
        async fn conformance_preview_is_what_create_sends() {
            $crate::preview_is_what_create_sends(&$make).await
        }
        #[tokio::test]
        async fn conformance_update_changes_only_what_differs() {
            $crate::update_changes_only_what_differs(&$make).await
        }
        #[tokio::test]
        async fn conformance_disable_and_enable() {
            $crate::disable_and_enable(&$make).await
        }
        #[tokio::test]
        async fn conformance_errors_are_classified() {
            $crate::errors_are_classified(&$make).await
        }
    };
}
