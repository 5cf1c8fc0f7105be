//! Every adapter call observed at the one place all of them pass: the
//! engine wraps each provider instance's adapter in [`Observed`] when it is
//! built, so a change, a recovery, the sweep and the reconciliation pass
//! all call through it. Each call gets an `upstream_call` span (provider,
//! kind, operation, outcome: no URL, no body, no credential), is counted
//! and timed, and leaves its outcome in the instance's [`UpstreamHealth`],
//! which readiness reports.

use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_core::{
    Capabilities, Error, NativePlan, NativeRequest, NativeResource, ProviderAdapter,
    SubscriptionSpec, UpstreamErrorKind,
};
use switchboard_telemetry::record::{self, Outcome};
use tokio::time::Instant;
use tracing::Instrument;

/// The last call made to one provider instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LastCall {
    /// Its outcome (`ok`, `rejected`, `rate_limited`, `unavailable`,
    /// `timeout`, `unknown_outcome`).
    pub last_outcome: &'static str,
    /// When it ended.
    pub at: DateTime<Utc>,
}

/// What the last call to a provider instance said, kept in memory by the
/// process that made it.
#[derive(Debug, Default)]
pub struct UpstreamHealth(Mutex<Option<LastCall>>);

impl UpstreamHealth {
    /// The last call, if one was made since start-up.
    pub fn last(&self) -> Option<LastCall> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, outcome: Outcome) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(LastCall {
            last_outcome: outcome.as_str(),
            at: Utc::now(),
        });
    }
}

/// How an adapter call ended, as metrics and spans name it. Errors that
/// are not the provider's answer (the adapter refused before sending) count
/// as `rejected`.
fn outcome<T>(result: &Result<T, Error>) -> Outcome {
    let Err(e) = result else {
        return Outcome::Ok;
    };
    let Error::Upstream(u) = e else {
        return Outcome::Rejected;
    };
    match u.kind {
        UpstreamErrorKind::Rejected(_)
        | UpstreamErrorKind::Unauthorized
        | UpstreamErrorKind::NotFound => Outcome::Rejected,
        UpstreamErrorKind::RateLimited { .. } => Outcome::RateLimited,
        UpstreamErrorKind::Timeout => Outcome::Timeout,
        UpstreamErrorKind::Unreachable => Outcome::Unavailable,
        // A 5xx is an answer; a connection broken after sending is not.
        UpstreamErrorKind::Unavailable if u.status.is_some() => Outcome::Unavailable,
        UpstreamErrorKind::Unavailable => Outcome::UnknownOutcome,
        // An unreadable 2xx may have been applied; anything else was refused.
        UpstreamErrorKind::Protocol if u.may_have_applied() => Outcome::UnknownOutcome,
        UpstreamErrorKind::Protocol => Outcome::Rejected,
    }
}

/// A provider instance's adapter whose calls are observed.
pub(crate) struct Observed {
    key: String,
    inner: Arc<dyn ProviderAdapter>,
    health: Arc<UpstreamHealth>,
}

impl Observed {
    /// Wraps `inner`, the adapter of instance `key`; returns the wrapper
    /// and the health it keeps.
    pub(crate) fn wrap(
        key: &str,
        inner: Arc<dyn ProviderAdapter>,
    ) -> (Arc<dyn ProviderAdapter>, Arc<UpstreamHealth>) {
        let health = Arc::new(UpstreamHealth::default());
        let observed = Self {
            key: key.to_owned(),
            inner,
            health: health.clone(),
        };
        (Arc::new(observed), health)
    }

    async fn observe<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let kind = self.inner.kind();
        let span = tracing::info_span!(
            "upstream_call",
            provider = %self.key,
            kind,
            operation,
            outcome = tracing::field::Empty,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = call.instrument(span.clone()).await;
        let outcome = outcome(&result);
        span.record("outcome", outcome.as_str());
        if outcome != Outcome::Ok {
            span.record("otel.status_code", "ERROR");
        }
        record::upstream_call(&self.key, kind, operation, outcome, started.elapsed());
        self.health.set(outcome);
        result
    }
}

#[async_trait]
impl ProviderAdapter for Observed {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    fn plan(
        &self,
        id: &str,
        spec: &SubscriptionSpec,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error> {
        self.inner.plan(id, spec, events)
    }

    fn preview(&self, account: Option<&str>, plans: &[NativePlan]) -> Vec<NativeRequest> {
        self.inner.preview(account, plans)
    }

    fn base_url(&self) -> &str {
        self.inner.base_url()
    }

    async fn create(
        &self,
        account: Option<&str>,
        plan: &NativePlan,
    ) -> Result<NativeResource, Error> {
        self.observe("create", self.inner.create(account, plan))
            .await
    }

    async fn update(
        &self,
        account: Option<&str>,
        id: &str,
        old: &NativePlan,
        new: &NativePlan,
    ) -> Result<NativeResource, Error> {
        self.observe("update", self.inner.update(account, id, old, new))
            .await
    }

    async fn delete(&self, account: Option<&str>, id: &str) -> Result<(), Error> {
        self.observe("delete", self.inner.delete(account, id)).await
    }

    async fn get(&self, account: Option<&str>, id: &str) -> Result<NativeResource, Error> {
        self.observe("get", self.inner.get(account, id)).await
    }

    async fn list(&self, account: Option<&str>) -> Result<Vec<NativeResource>, Error> {
        self.observe("list", self.inner.list(account)).await
    }
}

#[cfg(test)]
mod tests {
    use switchboard_core::UpstreamError;

    use super::*;

    fn failed(kind: UpstreamErrorKind, status: Option<u16>) -> Result<(), Error> {
        Err(Error::Upstream(UpstreamError {
            provider: "p".into(),
            kind,
            status,
            message: "m".into(),
        }))
    }

    #[test]
    fn outcomes_say_whether_the_provider_answered() {
        use UpstreamErrorKind as K;
        assert_eq!(outcome(&Ok::<(), Error>(())), Outcome::Ok);
        assert_eq!(
            outcome(&failed(K::Rejected(vec![]), Some(422))),
            Outcome::Rejected
        );
        assert_eq!(
            outcome(&failed(K::Unauthorized, Some(401))),
            Outcome::Rejected
        );
        assert_eq!(
            outcome(&failed(K::RateLimited { retry_after: None }, Some(429))),
            Outcome::RateLimited
        );
        assert_eq!(
            outcome(&failed(K::Unavailable, Some(503))),
            Outcome::Unavailable
        );
        assert_eq!(outcome(&failed(K::Unreachable, None)), Outcome::Unavailable);
        assert_eq!(outcome(&failed(K::Timeout, None)), Outcome::Timeout);
        assert_eq!(
            outcome(&failed(K::Unavailable, None)),
            Outcome::UnknownOutcome
        );
        assert_eq!(
            outcome(&failed(K::Protocol, Some(201))),
            Outcome::UnknownOutcome
        );
        assert_eq!(outcome(&failed(K::Protocol, Some(302))), Outcome::Rejected);
        assert_eq!(
            outcome(&Err::<(), _>(Error::field("/account", "required"))),
            Outcome::Rejected
        );
    }

    #[test]
    fn health_keeps_the_last_outcome() {
        let h = UpstreamHealth::default();
        assert_eq!(h.last(), None);
        h.set(Outcome::Timeout);
        h.set(Outcome::Ok);
        assert_eq!(h.last().map(|c| c.last_outcome), Some("ok"));
    }
}
