//! The seam between adapters and the network. Adapters build
//! [`crate::NativeRequest`]s and hand them to a `Transport`; the production
//! implementation (pooled reqwest, timeouts, retries) lives in the
//! `switchboard-transport` crate, so this crate stays free of I/O.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;

use crate::NativeRequest;

/// What came back from a provider.
#[derive(Debug, Clone)]
pub struct NativeResponse {
    /// HTTP status.
    pub status: u16,
    /// Parsed `Retry-After`, if the provider sent one.
    pub retry_after: Option<Duration>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl NativeResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or `Null` when it is empty or not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Exponential backoff with full jitter, honouring a provider's
/// `Retry-After`: before retry `attempt` (1 = the first retry) wait
/// `jitter` (a random number in `[0, 1)`) × `base` × 2^attempt, at least
/// `retry_after`, at most `max`. Pure, so the transport's retries and the
/// engine's step retries wait by one rule.
pub fn backoff(
    base: Duration,
    max: Duration,
    attempt: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    let jittered = exp.mul_f64(jitter.clamp(0.0, 1.0));
    retry_after.map_or(jittered, |ra| ra.max(jittered)).min(max)
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// No answer within the configured timeout.
    #[error("timed out")]
    Timeout,
    /// No connection could be made: nothing was sent.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The request may have been sent but the answer was lost (reset,
    /// incomplete body): the provider may or may not have applied it.
    #[error("connection interrupted: {0}")]
    Interrupted(String),
}

/// Sends native requests to one provider's API root.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `req` relative to `base_url`. `provider` names the instance for
    /// logs and per-instance limits.
    async fn send(
        &self,
        provider: &str,
        base_url: &str,
        req: &NativeRequest,
    ) -> Result<NativeResponse, TransportError>;
}

/// Counts the upstream requests one piece of work sends (a reconciliation
/// pass reports its calls per account and spends a call budget by them).
/// Transports call [`count_call`] once per HTTP attempt; the count goes to
/// the meter of the [`metered`] future the attempt runs in, if any, so
/// concurrent API traffic to the same provider is not counted.
#[derive(Debug, Default)]
pub struct CallMeter(AtomicU64);

impl CallMeter {
    /// Requests counted so far.
    pub fn calls(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

thread_local! {
    /// The meter of the future being polled on this thread. A future moves
    /// between threads only between polls, so setting it around each poll
    /// is enough (what `tokio::task_local!` does, without tying this crate
    /// to a runtime).
    static CURRENT_METER: RefCell<Option<Arc<CallMeter>>> = const { RefCell::new(None) };
}

/// Counts one request sent to a provider against the current meter.
pub fn count_call() {
    CURRENT_METER.with(|m| {
        if let Some(meter) = m.borrow().as_ref() {
            meter.0.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// `fut`, with every [`count_call`] made while it is polled counted by `meter`.
pub fn metered<F: Future>(meter: Arc<CallMeter>, fut: F) -> Metered<F> {
    Metered {
        meter,
        inner: Box::pin(fut),
    }
}

/// A future whose upstream requests are counted (see [`metered`]).
pub struct Metered<F> {
    meter: Arc<CallMeter>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let meter = self.meter.clone();
        let outer = CURRENT_METER.with(|m| m.replace(Some(meter)));
        let polled = self.inner.as_mut().poll(cx);
        CURRENT_METER.with(|m| *m.borrow_mut() = outer);
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_jitters_and_honours_retry_after_within_the_cap() {
        let (base, max) = (Duration::from_millis(200), Duration::from_secs(5));
        assert_eq!(backoff(base, max, 1, None, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(base, max, 3, None, 0.5), Duration::from_millis(800));
        assert_eq!(backoff(base, max, 12, None, 1.0), max);
        let ra = Some(Duration::from_secs(2));
        assert_eq!(backoff(base, max, 1, ra, 0.0), Duration::from_secs(2));
        assert_eq!(
            backoff(base, max, 1, Some(Duration::from_secs(600)), 0.0),
            max
        );
    }

    #[test]
    fn calls_count_against_the_meter_of_the_future_polled() {
        let (outer, inner) = (
            Arc::new(CallMeter::default()),
            Arc::new(CallMeter::default()),
        );
        let inner_work = metered(inner.clone(), async {
            count_call();
            count_call();
        });
        let work = metered(outer.clone(), async move {
            count_call();
            inner_work.await;
            count_call();
        });
        let waker = std::task::Waker::noop();
        let mut work = std::pin::pin!(work);
        assert!(
            work.as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_ready()
        );
        assert_eq!((outer.calls(), inner.calls()), (2, 2));
        count_call();
        assert_eq!(outer.calls(), 2, "nothing counts outside a metered future");
    }
}
