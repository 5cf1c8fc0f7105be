//! What one delivery attempt produced, as plain data: the sender
//! ([`crate::send`]) fills it in, the retry schedule
//! ([`crate::schedule`]) decides on it, and the attempts log keeps it.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Most response-body bytes kept for the attempts log.
pub const EXCERPT_BYTES: usize = 1024;

/// The result of one attempt, with what the attempts log shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When the request was started.
    pub started_at: DateTime<Utc>,
    /// From the start until the response head arrived or the attempt failed.
    pub latency: Duration,
    /// What happened.
    pub outcome: AttemptOutcome,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The subscriber answered (any status, redirects included: they are
    /// never followed).
    Response {
        /// HTTP status code.
        status: u16,
        /// The raw `Retry-After` value, if sent; the schedule interprets it.
        retry_after: Option<String>,
        /// The first [`EXCERPT_BYTES`] of the body, UTF-8 lossy, cut at a
        /// character boundary.
        excerpt: String,
    },
    /// No answer within the attempt's timeout.
    Timeout,
    /// No answer: connect failure, reset, TLS or protocol error.
    Failed {
        /// The transport's message (never contains a secret: the URL holds
        /// no credentials and headers are not part of it).
        message: String,
    },
    /// The `[policy]` refused every address of the callback host, so
    /// nothing was sent (SSRF and DNS-rebinding defence).
    Refused {
        /// True when the URL itself is refused (an IP literal in a refused
        /// range, an internal host name, a scheme the policy refuses):
        /// nothing but a changed URL or policy alters the verdict. False
        /// when a DNS name resolved only to refused addresses, which a
        /// later answer may change.
        permanent: bool,
        /// The policy's reason, naming the address.
        reason: String,
    },
}

impl AttemptOutcome {
    /// The status code, when the subscriber answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Response { status, .. } => Some(*status),
            _ => None,
        }
    }
}
