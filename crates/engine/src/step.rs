//! One upstream step of a change (create, update or delete one native
//! resource), safe against answers that never came.
//!
//! A request whose answer was lost (timeout, broken connection, a crash)
//! or that failed in a way a provider may show after applying it (5xx, an
//! unreadable 2xx) has an unknown outcome. It is journalled as `unknown`,
//! never taken as "did not happen", and resolved by looking:
//!
//! - a create waits until the request can no longer land (an answered
//!   request at once; an unanswered one after the attempt's timeout plus
//!   [`StepPolicy::margin`]), then looks for the resource it would have made
//!   ([`find_created`]: by the marker Switchboard writes into a free-text
//!   field where the provider has one, else by URL, events and filters,
//!   among resources nobody recorded). Found, it is adopted; absent, the
//!   create is retried. So a retry never makes a second resource.
//! - updates and deletes are idempotent by content (the same body, or a
//!   delete where "already gone" succeeds): they are simply retried.
//!
//! Transient failures (5xx, 408, 429, timeouts, dropped connections) are
//! retried with exponential backoff and full jitter, honouring
//! `Retry-After`, until [`StepPolicy::deadline`]. Every unknown step is
//! also written to the store's verifications, so the sweep (`sweep.rs`)
//! looks again for a while and removes or adopts what lands later still.
//! Before each change request the journal entry notes when that request
//! can no longer land, so recovery after a crash waits for it too.
//!
//! Steps whose outcome became unknown, how they ended, and the retries
//! of every step are counted (`switchboard_telemetry::record`).

use std::time::Duration;

use chrono::Utc;
use switchboard_core::operation::StepAction;
use switchboard_core::{
    Error, NativePlan, NativeResource, ProviderAdapter, SubscriptionSpec, UpstreamError,
    UpstreamErrorKind,
};
use switchboard_store::{NewVerification, Settle};
use switchboard_telemetry::record::{self, Resolution, RetryLayer};
use tokio::time::Instant;

use crate::apply::Target;

/// How steps wait, retry and are watched. Built from the transport's
/// timeouts, so "can no longer land" follows what the transport does.
#[derive(Debug, Clone)]
pub struct StepPolicy {
    /// Timeout of one transport attempt.
    pub attempt_timeout: Duration,
    /// The longest one adapter call can keep a request in flight: every
    /// request it sends, with the transport's own retries and waits.
    /// Written to the journal before each change request.
    pub call_bound: Duration,
    /// Added to every wait for a request to settle: a provider can still
    /// apply a request a little after its client gave up on it.
    pub margin: Duration,
    /// How long one step keeps retrying transient failures.
    pub deadline: Duration,
    /// First wait between retries; doubles, with full jitter.
    pub base_backoff: Duration,
    /// Longest single wait, `Retry-After` included.
    pub max_backoff: Duration,
    /// How long the sweep keeps re-verifying an unknown step.
    pub window: Duration,
}

impl Default for StepPolicy {
    fn default() -> Self {
        Self::from_transport(Duration::from_secs(10), 3, Duration::from_secs(5))
    }
}

impl StepPolicy {
    /// The policy for a transport with this attempt timeout, attempts and
    /// longest backoff; margin 5 s, deadline 60 s, window 15 minutes.
    pub fn from_transport(attempt_timeout: Duration, attempts: u32, max_backoff: Duration) -> Self {
        // An adapter call may send a few requests (token mint, read-check-
        // write, create then PATCH), each with the transport's attempts.
        let attempts = attempts.max(1);
        let per_request = attempt_timeout * attempts + max_backoff * (attempts - 1);
        Self {
            attempt_timeout,
            call_bound: per_request * 3,
            margin: Duration::from_secs(5),
            deadline: Duration::from_secs(60),
            base_backoff: Duration::from_millis(200),
            max_backoff,
            window: Duration::from_secs(15 * 60),
        }
    }

    /// Wait before retry `attempt` (1 = the first retry): exponential,
    /// full jitter, at least the provider's `Retry-After`, at most
    /// `max_backoff`.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        switchboard_core::transport::backoff(
            self.base_backoff,
            self.max_backoff,
            attempt,
            retry_after,
            rand::random::<f64>(),
        )
    }

    /// When a request that failed with `e` can no longer land: an answered
    /// request at once (the provider is done with it), a timed-out one
    /// after the margin (it was sent an attempt's timeout ago), one whose
    /// connection broke after the attempt's timeout and the margin.
    fn settles_after(&self, e: &UpstreamError) -> Duration {
        match (e.status, &e.kind) {
            (Some(_), _) => Duration::ZERO,
            (None, UpstreamErrorKind::Timeout) => self.margin,
            (None, _) => self.attempt_timeout + self.margin,
        }
    }
}

/// How a step ended without success.
#[derive(Debug)]
pub(crate) enum StepError {
    /// Nothing was applied: refused, or verified absent.
    Failed(Error),
    /// It may have been applied and could not be verified before the
    /// deadline; the sweep keeps watching it.
    Unknown(Error),
}

impl StepError {
    pub(crate) fn into_error(self) -> Error {
        match self {
            Self::Failed(e) | Self::Unknown(e) => e,
        }
    }
}

/// The plan of a step and the spec it was made from (whose URL and
/// filters identify a resource whose id never came back).
#[derive(Clone, Copy)]
pub(crate) struct Planned<'a> {
    pub plan: &'a NativePlan,
    pub spec: &'a SubscriptionSpec,
    /// The spec is the change's "before" (an undo recreating a resource).
    pub from_before: bool,
}

/// Whether `found` is what creating `plan` for subscription `sub_id` from
/// `spec` leaves at the provider: the marker where the kind writes one,
/// else the same URL and filters; the events always.
pub(crate) fn created_from(
    found: &NativeResource,
    sub_id: &str,
    spec: &SubscriptionSpec,
    plan: &NativePlan,
) -> bool {
    if found.events != plan.events {
        return false;
    }
    if let Some(marker) = &found.marker {
        return marker == sub_id;
    }
    let mut wanted: Vec<(String, String)> = spec
        .filters
        .iter()
        .map(|f| (f.key.clone(), f.value.clone()))
        .collect();
    wanted.sort();
    let mut filters = found.filters.clone();
    filters.sort();
    found.url.as_deref() == Some(spec.url.as_str()) && filters == wanted
}

/// The resources at the provider that creating `p` would have made and
/// that no subscription has recorded, oldest listing order first.
pub(crate) async fn find_created(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    p: Planned<'_>,
) -> Result<Vec<NativeResource>, Error> {
    let mut out = Vec::new();
    for found in adapter.list(target.account).await? {
        if created_from(&found, target.sub_id, p.spec, p.plan)
            && !target.store.native_is_recorded(&found.id).await?
        {
            out.push(found);
        }
    }
    Ok(out)
}

/// Who a step is, for the journal and the sweep.
#[derive(Clone, Copy)]
struct Watch<'a> {
    action: StepAction,
    key: &'a str,
    native_id: Option<&'a str>,
    from_before: bool,
}

/// The retry state of one step.
struct Attempts<'a> {
    policy: &'a StepPolicy,
    /// The provider instance, as metrics name it.
    provider: &'a str,
    started: Instant,
    made: u32,
    /// Whether this step was already written down for the sweep (its
    /// outcome became unknown at least once).
    watched: bool,
}

impl<'a> Attempts<'a> {
    fn new(target: &'a Target<'_>) -> Self {
        Self {
            policy: target.policy,
            provider: &target.before.provider,
            started: Instant::now(),
            made: 0,
            watched: false,
        }
    }

    /// Counts how a step whose outcome became unknown ended: a success
    /// took effect, a failure was verified not applied, an unknown error
    /// is left to the sweep.
    fn settle<T>(&self, ended: &Result<T, StepError>) {
        if !self.watched {
            return;
        }
        let resolution = match ended {
            Ok(_) => Resolution::Applied,
            Err(StepError::Failed(_)) => Resolution::NotApplied,
            Err(StepError::Unknown(_)) => Resolution::Unresolved,
        };
        record::unknown_resolved(self.provider, resolution);
    }

    /// Waits before the next retry after `e`, or says there is no time
    /// left for one.
    async fn wait(&mut self, e: &Error) -> bool {
        self.made += 1;
        let retry_after = match e {
            Error::Upstream(UpstreamError {
                kind: UpstreamErrorKind::RateLimited { retry_after },
                ..
            }) => *retry_after,
            _ => None,
        };
        let wait = self.policy.backoff(self.made, retry_after);
        if self.started.elapsed() + wait > self.policy.deadline {
            return false;
        }
        record::upstream_retry(self.provider, RetryLayer::Step);
        tokio::time::sleep(wait).await;
        true
    }
}

/// Whether a failure may go away by itself.
fn transient(e: &Error) -> bool {
    matches!(e, Error::Upstream(u) if u.is_transient())
}

/// The upstream error, when it leaves the outcome unknown.
fn unknown(e: &Error) -> Option<&UpstreamError> {
    match e {
        Error::Upstream(u) if u.may_have_applied() => Some(u),
        _ => None,
    }
}

impl Target<'_> {
    /// Journals an unknown outcome and, once per step, hands it to the
    /// sweep, which looks from `settles_in` on until the window closes.
    async fn unknown(&self, attempts: &mut Attempts<'_>, who: &Watch<'_>, settles_in: Duration) {
        let Watch {
            action,
            key,
            native_id,
            from_before,
        } = *who;
        self.step(StepAction::Unknown, key, native_id.unwrap_or_default());
        // Written at once, with its in-flight mark kept: the request may
        // still land, and the sweep needs the entry to say so.
        self.write_progress(Settle::Keep).await;
        if attempts.watched {
            return;
        }
        attempts.watched = true;
        record::unknown_opened(attempts.provider);
        let now = Utc::now();
        let not_before = now + chrono::Duration::from_std(settles_in).unwrap_or_default();
        let until = now + chrono::Duration::from_std(self.policy.window).unwrap_or_default();
        let v = NewVerification {
            op_id: self.op_id,
            tenant: self.tenant,
            subscription_id: self.sub_id,
            key,
            action,
            native_id,
            from_before,
            not_before,
            until,
        };
        if let Err(e) = self.store.add_verification(&v).await {
            tracing::error!(op = self.op_id, key, error = %e, "unknown step not handed to the sweep");
        }
    }
}

/// Creates the resource of `p`, verifying before every retry that an
/// earlier attempt did not already make it. An adopted resource whose
/// on/off state is not the plan's (a create that was to be followed by a
/// "set inactive" call) is replaced.
pub(crate) async fn create(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    p: Planned<'_>,
) -> Result<NativeResource, StepError> {
    let mut attempts = Attempts::new(target);
    let created = create_with(adapter, target, p, &mut attempts).await;
    attempts.settle(&created);
    created
}

/// [`create`], with its retry state.
async fn create_with(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    p: Planned<'_>,
    attempts: &mut Attempts<'_>,
) -> Result<NativeResource, StepError> {
    let who = Watch {
        action: StepAction::Create,
        key: &p.plan.key,
        native_id: None,
        from_before: p.from_before,
    };
    loop {
        target.in_flight().await;
        let e = match adapter.create(target.account, p.plan).await {
            Ok(native) => return Ok(native),
            Err(e) => e,
        };
        if let Some(u) = unknown(&e) {
            let settles_in = target.policy.settles_after(u);
            target.unknown(attempts, &who, settles_in).await;
            tokio::time::sleep(settles_in).await;
            if let Some(native) = verify_create(adapter, target, p, attempts, &e).await? {
                return Ok(native);
            }
        }
        if !transient(&e) || !attempts.wait(&e).await {
            return Err(StepError::Failed(e));
        }
    }
}

/// Looks for what an unknown create made, retrying the look itself while
/// the provider cannot answer. `Some` is the resource, adopted; `None`
/// means verified absent.
async fn verify_create(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    p: Planned<'_>,
    attempts: &mut Attempts<'_>,
    cause: &Error,
) -> Result<Option<NativeResource>, StepError> {
    let key = p.plan.key.as_str();
    loop {
        match find_created(adapter, target, p).await {
            Ok(found) => {
                let mut found = found.into_iter();
                let Some(first) = found.next() else {
                    target.step(StepAction::Absent, key, "");
                    return Ok(None);
                };
                // More than one can only be lookalikes made by hand; the
                // sweep's window reports them through reconciliation.
                if first.enabled != p.spec.enabled {
                    adapter
                        .delete(target.account, &first.id)
                        .await
                        .map_err(StepError::Unknown)?;
                    target.step(StepAction::RemoveLate, key, &first.id);
                    return Ok(None);
                }
                target.step(StepAction::Adopt, key, &first.id);
                return Ok(Some(first));
            }
            Err(e) => {
                tracing::warn!(sub = target.sub_id, key, error = %e, "verifying an unknown create failed");
                if !attempts.wait(&e).await {
                    return Err(StepError::Unknown(cause.clone()));
                }
            }
        }
    }
}

/// Sends a request that carries its whole effect (an update, a delete:
/// repeating it cannot double it) until it succeeds, fails for good, or
/// the step's deadline passes. A failure returns the last error and, when
/// its outcome is unknown, how long until the request can no longer land.
async fn repeat<T, Fut>(
    target: &Target<'_>,
    who: &Watch<'_>,
    attempts: &mut Attempts<'_>,
    mut send: impl FnMut() -> Fut,
) -> Result<T, (Error, Option<Duration>)>
where
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    loop {
        target.in_flight().await;
        let e = match send().await {
            Ok(done) => return Ok(done),
            Err(e) => e,
        };
        let maybe = unknown(&e).map(|u| target.policy.settles_after(u));
        if let Some(settles_in) = maybe {
            target.unknown(attempts, who, settles_in).await;
        }
        if !transient(&e) || !attempts.wait(&e).await {
            return Err((e, maybe));
        }
    }
}

/// Changes `id` from `from` to `to`, retrying what may pass. When the
/// retries run out with the outcome unknown, the resource is read once
/// the last request can no longer land: at the target state the update
/// succeeded, at the previous state it failed, and only otherwise (or
/// when the two look alike) it stays unknown.
pub(crate) async fn update(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    id: &str,
    from: Planned<'_>,
    to: Planned<'_>,
) -> Result<NativeResource, StepError> {
    let who = Watch {
        action: StepAction::Update,
        key: &to.plan.key,
        native_id: Some(id),
        from_before: to.from_before,
    };
    let mut attempts = Attempts::new(target);
    let send = || adapter.update(target.account, id, from.plan, to.plan);
    let updated = match repeat(target, &who, &mut attempts, send).await {
        Ok(native) => Ok(native),
        Err((e, None)) => Err(StepError::Failed(e)),
        Err((e, Some(settles_in))) => {
            tokio::time::sleep(settles_in).await;
            match adapter.get(target.account, id).await {
                Ok(found) if looks_like(&found, to) && !looks_like(&found, from) => Ok(found),
                Ok(found) if looks_like(&found, from) && !looks_like(&found, to) => {
                    target.step(StepAction::Absent, who.key, id);
                    Err(StepError::Failed(e))
                }
                _ => Err(StepError::Unknown(e)),
            }
        }
    };
    attempts.settle(&updated);
    updated
}

/// Whether what the provider shows of `found` is what `p` asks for: its
/// URL, events and on/off state (what every kind reads back).
fn looks_like(found: &NativeResource, p: Planned<'_>) -> bool {
    found.url.as_deref() == Some(p.spec.url.as_str())
        && found.events == p.plan.events
        && found.enabled == p.spec.enabled
}

/// Deletes `id`, retrying what may pass ("already gone" is success, so a
/// repeat is harmless). When the retries run out with the outcome
/// unknown, the resource is read: gone means deleted, there means not.
pub(crate) async fn delete(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    key: &str,
    id: &str,
) -> Result<(), StepError> {
    let who = Watch {
        action: StepAction::Delete,
        key,
        native_id: Some(id),
        from_before: false,
    };
    let mut attempts = Attempts::new(target);
    let send = || adapter.delete(target.account, id);
    let deleted = match repeat(target, &who, &mut attempts, send).await {
        Ok(()) => Ok(()),
        Err((e, None)) => Err(StepError::Failed(e)),
        Err((e, Some(settles_in))) => {
            tokio::time::sleep(settles_in).await;
            match adapter.get(target.account, id).await {
                Err(Error::Upstream(u)) if u.kind == UpstreamErrorKind::NotFound => Ok(()),
                Ok(_) => {
                    target.step(StepAction::Absent, key, id);
                    Err(StepError::Failed(e))
                }
                Err(_) => Err(StepError::Unknown(e)),
            }
        }
    };
    attempts.settle(&deleted);
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(kind: UpstreamErrorKind, status: Option<u16>) -> UpstreamError {
        UpstreamError {
            provider: "p".into(),
            kind,
            status,
            message: "m".into(),
        }
    }

    #[test]
    fn an_answered_request_settles_at_once_an_unanswered_one_later() {
        let p = StepPolicy::default();
        assert_eq!(
            p.settles_after(&upstream(UpstreamErrorKind::Unavailable, Some(500))),
            Duration::ZERO
        );
        assert_eq!(
            p.settles_after(&upstream(UpstreamErrorKind::Timeout, None)),
            p.margin
        );
        assert_eq!(
            p.settles_after(&upstream(UpstreamErrorKind::Unavailable, None)),
            p.attempt_timeout + p.margin
        );
    }

    #[test]
    fn backoff_honours_retry_after_within_the_cap() {
        let p = StepPolicy::default();
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(p.backoff(1, Some(Duration::from_secs(600))), p.max_backoff);
        assert!(p.backoff(12, None) <= p.max_backoff);
    }

    #[test]
    fn what_leaves_an_outcome_unknown() {
        let e = |kind, status| Error::Upstream(upstream(kind, status));
        assert!(unknown(&e(UpstreamErrorKind::Timeout, None)).is_some());
        assert!(unknown(&e(UpstreamErrorKind::Unavailable, Some(503))).is_some());
        assert!(unknown(&e(UpstreamErrorKind::Protocol, Some(201))).is_some());
        assert!(unknown(&e(UpstreamErrorKind::Protocol, Some(302))).is_none());
        assert!(unknown(&e(UpstreamErrorKind::Unreachable, None)).is_none());
        assert!(
            unknown(&e(
                UpstreamErrorKind::RateLimited { retry_after: None },
                Some(429)
            ))
            .is_none()
        );
        assert!(unknown(&e(UpstreamErrorKind::Rejected(vec![]), Some(422))).is_none());
    }
}
