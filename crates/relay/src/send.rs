//! The one HTTP sender of relay deliveries: sends one [`AttemptRequest`]
//! and reports what happened as an [`Attempt`], never as an error (every
//! ending is something the attempts log records and the schedule decides
//! on).
//!
//! - The callback URL policy is applied again at delivery time: the URL
//!   text by [`UrlPolicy::check`] (an IP literal is judged here), the
//!   resolved addresses by [`PolicyResolver`], so the connection goes only
//!   to checked addresses.
//! - Redirects are never followed (a 3xx is the answer, and a failed
//!   attempt): following one would send the signed event, and the auth
//!   header, to a URL nobody checked.
//! - Proxies from the environment are ignored: through a proxy the client
//!   resolves only the proxy's name, and the policy would judge the wrong
//!   host.
//! - One deadline per attempt covers connecting, sending and the response
//!   head; the body excerpt is read until the same deadline at most, and a
//!   late body does not undo an answer already received.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::dns::Resolve;
use switchboard_core::policy::UrlPolicy;
use tokio::time::Instant;

use crate::attempt::{Attempt, AttemptOutcome, EXCERPT_BYTES};
use crate::request::AttemptRequest;
use crate::resolve::{AddressRefused, PolicyResolver, SystemResolver};

/// Sends relay attempts through one pooled client bound to a policy.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: Arc<UrlPolicy>,
}

/// The HTTP client could not be built (TLS backend initialisation).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the relay's HTTP client: {0}")]
pub struct SenderError(#[source] reqwest::Error);

impl Sender {
    /// A sender resolving names with the operating system's resolver.
    pub fn new(policy: UrlPolicy) -> Result<Self, SenderError> {
        Self::with_resolver(policy, Arc::new(SystemResolver))
    }

    /// A sender whose name lookups go to `resolver` (then through the
    /// policy): for a dedicated DNS client, or a fixed table in tests.
    pub fn with_resolver(
        policy: UrlPolicy,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Self, SenderError> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver::new(Arc::clone(&policy), resolver)))
            .build()
            .map_err(SenderError)?;
        Ok(Self { client, policy })
    }

    /// Sends one attempt and reports how it ended.
    pub async fn send(&self, attempt: AttemptRequest) -> Attempt {
        let started_at = Utc::now();
        let start = Instant::now();
        let (outcome, latency) = self.outcome(attempt, start).await;
        Attempt {
            started_at,
            latency,
            outcome,
        }
    }

    /// The outcome and the latency up to the response head (or the failure).
    async fn outcome(&self, attempt: AttemptRequest, start: Instant) -> (AttemptOutcome, Duration) {
        if let Err(reason) = self.policy.check(&attempt.url) {
            let refused = AttemptOutcome::Refused {
                permanent: true,
                reason,
            };
            return (refused, start.elapsed());
        }
        let deadline = start + attempt.timeout;
        let request = match reqwest::Request::try_from(attempt.request) {
            Ok(r) => r,
            Err(e) => return (failed(&e), start.elapsed()),
        };
        let response = match tokio::time::timeout_at(deadline, self.client.execute(request)).await {
            Err(_elapsed) => return (AttemptOutcome::Timeout, start.elapsed()),
            Ok(Err(e)) => return (classify(&e), start.elapsed()),
            Ok(Ok(response)) => response,
        };
        let latency = start.elapsed();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let excerpt = excerpt(response, deadline).await;
        let answered = AttemptOutcome::Response {
            status,
            retry_after,
            excerpt,
        };
        (answered, latency)
    }
}

/// The first [`EXCERPT_BYTES`] of the body, read until `deadline` at most,
/// UTF-8 lossy, without a character cut in half at the end.
async fn excerpt(mut response: reqwest::Response, deadline: Instant) -> String {
    let mut kept = Vec::new();
    while kept.len() < EXCERPT_BYTES {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = EXCERPT_BYTES - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            // The end, a broken body or the deadline: keep what arrived.
            _ => break,
        }
    }
    if let Err(e) = std::str::from_utf8(&kept)
        && e.error_len().is_none()
    {
        kept.truncate(e.valid_up_to());
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// A client error as an outcome: a refusal by the resolver (only ever
/// asked about DNS names, whose answers can change: not permanent), a
/// timeout inside the client, or any other failure with its cause chain.
fn classify(e: &reqwest::Error) -> AttemptOutcome {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<AddressRefused>() {
            return AttemptOutcome::Refused {
                permanent: false,
                reason: refused.to_string(),
            };
        }
        source = err.source();
    }
    if e.is_timeout() {
        return AttemptOutcome::Timeout;
    }
    failed(e)
}

fn failed(e: &dyn std::error::Error) -> AttemptOutcome {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    AttemptOutcome::Failed { message }
}
