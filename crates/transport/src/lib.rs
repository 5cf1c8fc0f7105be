//! The production [`Transport`]: one pooled reqwest client for every
//! provider (connections are reused), a per-request timeout, a per-instance
//! rate limit, and retries with exponential backoff and full jitter that
//! honour `Retry-After`.
//!
//! Retries are only made where repeating cannot create a second native
//! resource: any request after a failed connect (nothing was sent) or a
//! 429 (the provider refused before acting), and idempotent methods (GET,
//! PUT, PATCH, DELETE) after 5xx, 408, a timeout or an interrupted answer.
//! A POST whose answer was lost, timed out or was a 5xx may have been
//! applied (providers can fail after applying): it is returned to the
//! engine, which verifies at the provider before it retries
//! (`engine/src/step.rs`).
//!
//! Every attempt, retry and wait for a rate limit or concurrency cap is
//! counted (`switchboard_telemetry::record`), per provider instance.
//!
//! Redirects are never followed: a provider's management credentials and
//! the signing secrets in a body must not reach another origin, and a 3xx
//! from a management API is an error the adapter classifies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use switchboard_core::{NativeRequest, NativeResponse, Transport, TransportError};
use switchboard_telemetry::record::{self, Limit, RetryLayer};
use tokio::time::Instant;

/// Retry and timeout settings.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Timeout of one attempt.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Attempts in total (1 = no retry).
    pub max_attempts: u32,
    /// First backoff; doubles each attempt, with full jitter.
    pub base_backoff: Duration,
    /// Longest single wait, including a provider's `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_attempts: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// A token bucket per provider instance: `per_minute` requests, spread evenly.
#[derive(Debug)]
struct RateLimit {
    interval: Duration,
    next_free: Mutex<Instant>,
}

impl RateLimit {
    fn new(per_minute: u32) -> Self {
        Self {
            interval: Duration::from_secs(60) / per_minute.max(1),
            next_free: Mutex::new(Instant::now()),
        }
    }

    /// Reserves the next slot and returns when it starts; the lock is never
    /// held across an await.
    fn reserve(&self) -> Instant {
        let mut next = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let slot = (*next).max(now);
        *next = slot + self.interval;
        slot
    }
}

/// reqwest-backed transport shared by every adapter.
#[derive(Debug)]
pub struct HttpTransport {
    client: reqwest::Client,
    config: TransportConfig,
    limits: HashMap<String, RateLimit>,
    /// Requests in flight per provider instance (a cap the provider's
    /// tolerance, not ours, sets); instances not listed are uncapped.
    in_flight: HashMap<String, Arc<tokio::sync::Semaphore>>,
}

impl HttpTransport {
    /// Builds the shared client. `rate_limits` maps provider keys to a
    /// requests-per-minute budget; instances not listed are unlimited.
    pub fn new(config: TransportConfig, rate_limits: HashMap<String, u32>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let limits = rate_limits
            .into_iter()
            .map(|(k, per_minute)| (k, RateLimit::new(per_minute)))
            .collect();
        Ok(Self {
            client,
            config,
            limits,
            in_flight: HashMap::new(),
        })
    }

    /// Caps the requests in flight to each listed provider instance.
    pub fn with_concurrency(mut self, caps: HashMap<String, usize>) -> Self {
        self.in_flight = caps
            .into_iter()
            .map(|(k, n)| (k, Arc::new(tokio::sync::Semaphore::new(n.max(1)))))
            .collect();
        self
    }

    async fn attempt(
        &self,
        base_url: &str,
        req: &NativeRequest,
    ) -> Result<NativeResponse, TransportError> {
        let url = format!("{}{}", base_url.trim_end_matches('/'), req.path);
        let mut builder = self.client.request(req.method.clone(), url);
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        for h in &req.headers {
            builder = builder.header(&h.name, &h.value);
        }
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let resp = builder.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = resp.bytes().await.map_err(classify)?.to_vec();
        Ok(NativeResponse {
            status,
            retry_after,
            body,
        })
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        switchboard_core::transport::backoff(
            self.config.base_backoff,
            self.config.max_backoff,
            attempt,
            retry_after,
            rand::random::<f64>(),
        )
    }
}

fn classify(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        return TransportError::Timeout;
    }
    // The source chain says why (refused, reset); it never holds headers.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    if e.is_connect() {
        TransportError::Connect(msg)
    } else {
        TransportError::Interrupted(msg)
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A permit of `provider`'s concurrency cap; a wait for one is counted.
async fn acquire(
    provider: &str,
    sem: &Arc<tokio::sync::Semaphore>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if let Ok(permit) = sem.clone().try_acquire_owned() {
        return Some(permit);
    }
    let started = Instant::now();
    let permit = sem.clone().acquire_owned().await.ok();
    record::upstream_wait(provider, Limit::Concurrency, started.elapsed());
    permit
}

/// What an attempt got, as the request counter labels it.
fn answer(outcome: &Result<NativeResponse, TransportError>) -> Result<u16, &'static str> {
    match outcome {
        Ok(r) => Ok(r.status),
        Err(TransportError::Timeout) => Err("timeout"),
        Err(TransportError::Connect(_)) => Err("connect_error"),
        Err(TransportError::Interrupted(_)) => Err("interrupted"),
    }
}

/// Whether an outcome may be retried for this method (see the module doc).
pub fn retryable(method: &Method, outcome: &Result<NativeResponse, TransportError>) -> bool {
    let idempotent = matches!(
        *method,
        Method::GET | Method::PUT | Method::PATCH | Method::DELETE | Method::HEAD
    );
    match outcome {
        Ok(r) => r.status == 429 || (idempotent && matches!(r.status, 408 | 500..=599)),
        Err(TransportError::Connect(_)) => true,
        Err(TransportError::Timeout | TransportError::Interrupted(_)) => idempotent,
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(
        &self,
        provider: &str,
        base_url: &str,
        req: &NativeRequest,
    ) -> Result<NativeResponse, TransportError> {
        let mut attempt = 0;
        loop {
            if let Some(limit) = self.limits.get(provider) {
                let slot = limit.reserve();
                let waited = slot.saturating_duration_since(Instant::now());
                if !waited.is_zero() {
                    record::upstream_wait(provider, Limit::Rate, waited);
                    tokio::time::sleep_until(slot).await;
                }
            }
            let permit = match self.in_flight.get(provider) {
                Some(sem) => acquire(provider, sem).await,
                None => None,
            };
            let started = Instant::now();
            switchboard_core::transport::count_call();
            let outcome = self.attempt(base_url, req).await;
            drop(permit);
            record::upstream_request(provider, answer(&outcome));
            let status = outcome.as_ref().map(|r| r.status).ok();
            tracing::debug!(
                provider,
                method = %req.method,
                path = %req.path,
                status,
                elapsed_ms = started.elapsed().as_millis() as u64,
                attempt,
                "upstream call"
            );
            attempt += 1;
            if attempt >= self.config.max_attempts || !retryable(&req.method, &outcome) {
                return outcome;
            }
            let retry_after = outcome.as_ref().ok().and_then(|r| r.retry_after);
            let wait = self.backoff(attempt, retry_after);
            record::upstream_retry(provider, RetryLayer::Transport);
            tracing::info!(
                provider,
                status,
                wait_ms = wait.as_millis() as u64,
                "retrying upstream call"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16) -> Result<NativeResponse, TransportError> {
        Ok(NativeResponse {
            status,
            retry_after: None,
            body: Vec::new(),
        })
    }

    #[test]
    fn post_is_retried_only_when_provably_not_applied() {
        assert!(retryable(&Method::POST, &resp(429)));
        assert!(!retryable(&Method::POST, &resp(503)));
        assert!(retryable(
            &Method::POST,
            &Err(TransportError::Connect("refused".into()))
        ));
        assert!(!retryable(&Method::POST, &resp(500)));
        assert!(!retryable(&Method::POST, &Err(TransportError::Timeout)));
        assert!(!retryable(
            &Method::POST,
            &Err(TransportError::Interrupted("reset".into()))
        ));
        assert!(retryable(
            &Method::GET,
            &Err(TransportError::Interrupted("reset".into()))
        ));
        assert!(!retryable(&Method::POST, &resp(422)));
    }

    #[test]
    fn idempotent_methods_retry_server_errors() {
        for m in [Method::GET, Method::PUT, Method::DELETE] {
            assert!(retryable(&m, &resp(500)));
            assert!(retryable(&m, &resp(504)));
            assert!(retryable(&m, &Err(TransportError::Timeout)));
            assert!(!retryable(&m, &resp(404)));
            assert!(!retryable(&m, &resp(200)));
        }
    }

    #[test]
    fn backoff_honours_retry_after_within_cap() {
        let t = HttpTransport::new(TransportConfig::default(), HashMap::new()).unwrap();
        assert_eq!(
            t.backoff(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            t.backoff(1, Some(Duration::from_secs(600))),
            Duration::from_secs(5)
        );
        assert!(t.backoff(10, None) <= Duration::from_secs(5));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        let soon = std::time::SystemTime::now() + Duration::from_secs(30);
        let d = parse_retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test]
    async fn the_concurrency_cap_holds_requests_back() {
        let t = HttpTransport::new(TransportConfig::default(), HashMap::new())
            .unwrap()
            .with_concurrency(HashMap::from([("p".to_owned(), 2)]));
        let sem = t.in_flight["p"].clone();
        let held = sem.clone().acquire_many_owned(2).await.unwrap();
        assert_eq!(sem.available_permits(), 0, "a third request would wait");
        drop(held);
        assert_eq!(sem.available_permits(), 2);
    }

    #[tokio::test]
    async fn attempts_and_waits_are_counted_per_provider() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // The runtime of this test has one thread: every record lands here.
        let _local = metrics::set_default_local_recorder(&recorder);
        let config = TransportConfig {
            max_attempts: 1,
            ..TransportConfig::default()
        };
        // `r` is rate limited (one request per 100 ms), `c` capped at one
        // request in flight.
        let t = Arc::new(
            HttpTransport::new(config, HashMap::from([("r".to_owned(), 600)]))
                .unwrap()
                .with_concurrency(HashMap::from([("c".to_owned(), 1)])),
        );
        // Nothing listens on port 1: each attempt fails to connect at once.
        let base = "http://127.0.0.1:1";
        let req = NativeRequest::new(Method::GET, "/x");
        t.send("r", base, &req).await.unwrap_err();
        t.send("r", base, &req).await.unwrap_err();
        let held = t.in_flight["c"].clone().acquire_owned().await.unwrap();
        let waiting = tokio::spawn({
            let t = t.clone();
            async move { t.send("c", base, &req).await }
        });
        // The spawned request runs until it waits for the permit.
        tokio::task::yield_now().await;
        drop(held);
        waiting.await.unwrap().unwrap_err();
        let text = handle.render();
        for line in [
            "switchboard_upstream_requests_total{provider=\"r\",status_class=\"connect_error\"} 2",
            "switchboard_upstream_waits_total{provider=\"r\",limit=\"rate\"} 1",
            "switchboard_upstream_waits_total{provider=\"c\",limit=\"concurrency\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert!(!text.contains("provider=\"c\",limit=\"rate\""));
    }

    #[test]
    fn rate_limit_spaces_reservations() {
        let rl = RateLimit::new(60);
        let a = rl.reserve();
        let b = rl.reserve();
        assert_eq!(b - a, Duration::from_secs(1));
    }
}
