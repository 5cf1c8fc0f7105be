//! The one domain error enum. Every crate returns it; `api/src/problem.rs`
//! maps it to RFC 9457 problem+json exactly once. Refusals that only exist
//! at the HTTP layer (method, media type, body and header sizes, load
//! shedding) are the API's own (`switchboard_api::problem::ApiError`). Messages never contain a
//! secret: callers build them from field names and provider messages only.

use std::time::Duration;

/// A problem with one field of the caller's request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// JSON pointer into the caller's request body (`/url`, `/events/1`).
    pub pointer: String,
    /// What is wrong, in words a caller can act on.
    pub detail: String,
    /// The provider instance (config key) that raised or imposes the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl FieldError {
    /// A field error raised by Switchboard's own validation.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
            provider: None,
        }
    }

    /// A field error imposed by a provider (its capabilities or its answer).
    pub fn provider(
        pointer: impl Into<String>,
        detail: impl Into<String>,
        provider: impl Into<String>,
    ) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
            provider: Some(provider.into()),
        }
    }
}

/// How an upstream provider call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// The provider refused the request's content; mapped to the caller's fields.
    Rejected(Vec<FieldError>),
    /// The provider refused Switchboard's own credentials: an operator problem.
    Unauthorized,
    /// The native resource (or its parent) does not exist at the provider.
    NotFound,
    /// The provider asked to slow down.
    RateLimited {
        /// The provider's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
    },
    /// The provider failed (5xx), or the connection broke after the
    /// request was sent: it may have been applied.
    Unavailable,
    /// The provider could not be reached: the connection failed before the
    /// request was sent, so nothing was applied.
    Unreachable,
    /// The provider did not answer in time.
    Timeout,
    /// The provider answered something its documentation does not describe.
    Protocol,
}

impl UpstreamErrorKind {
    /// The classification an HTTP status implies on its own. Adapters call
    /// this for every status their provider documents no special meaning
    /// for, and handle the rest (validation bodies, "parent not found")
    /// themselves.
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> Self {
        match status {
            401 | 403 => Self::Unauthorized,
            404 => Self::NotFound,
            429 => Self::RateLimited { retry_after },
            408 | 504 => Self::Timeout,
            500..=599 => Self::Unavailable,
            _ => Self::Protocol,
        }
    }
}

/// An upstream provider call that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// Provider instance key from config.
    pub provider: String,
    /// Classified failure.
    pub kind: UpstreamErrorKind,
    /// HTTP status the provider answered, if it answered.
    pub status: Option<u16>,
    /// The provider's own message (never contains our secrets: providers do
    /// not echo credentials in error bodies, and we never add them).
    pub message: String,
}

impl UpstreamError {
    /// Whether repeating the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            UpstreamErrorKind::RateLimited { .. }
                | UpstreamErrorKind::Unavailable
                | UpstreamErrorKind::Unreachable
                | UpstreamErrorKind::Timeout
        )
    }

    /// Whether a change request that failed this way may still have been
    /// applied by the provider, so its outcome is unknown until verified:
    /// no answer came (timeout, connection broken after sending), the
    /// provider answered 5xx (it may fail after applying), or it answered
    /// 2xx with a body Switchboard could not read. A refusal (4xx, 429),
    /// a failed connect and a redirect are definite: nothing was applied.
    pub fn may_have_applied(&self) -> bool {
        match self.kind {
            UpstreamErrorKind::Timeout | UpstreamErrorKind::Unavailable => true,
            UpstreamErrorKind::Protocol => self.status.is_some_and(|s| (200..300).contains(&s)),
            UpstreamErrorKind::Rejected(_)
            | UpstreamErrorKind::Unauthorized
            | UpstreamErrorKind::NotFound
            | UpstreamErrorKind::RateLimited { .. }
            | UpstreamErrorKind::Unreachable => false,
        }
    }
}

/// Everything that can go wrong in Switchboard, classified once.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is well-formed JSON but its content is invalid (422).
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    /// The request could not be parsed (400).
    #[error("malformed request: {detail}")]
    Malformed {
        /// What could not be parsed.
        detail: String,
        /// Where, when known.
        pointer: Option<String>,
    },
    /// No or an unknown bearer token (401).
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    /// The token lacks a scope (403).
    #[error("the token lacks the `{scope}` scope")]
    Forbidden {
        /// The scope the operation needs.
        scope: &'static str,
    },
    /// The caller exceeded its request rate (429).
    #[error("too many requests")]
    RateLimited {
        /// Seconds until a request will be accepted.
        retry_after_secs: u64,
    },
    /// Nothing with that id exists for this tenant (404).
    #[error("{what} `{id}` was not found")]
    NotFound {
        /// The kind of thing.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The request conflicts with current state (409).
    #[error("{0}")]
    Conflict(String),
    /// A field whose value must be unique (a subscription's `key` within
    /// its tenant) names a value already taken (409, with the pointer).
    #[error("{} {}", .0.pointer, .0.detail)]
    Taken(FieldError),
    /// The caller's `If-Match` version is not the current one (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// An upstream provider call failed.
    #[error("provider `{}` failed: {}", .0.provider, .0.message)]
    Upstream(UpstreamError),
    /// The database failed.
    #[error("storage error: {0}")]
    Store(String),
    /// A bug or an impossible state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// One field error, as a 422.
    pub fn field(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(pointer, detail)])
    }

    /// A request to `provider` that got no HTTP answer.
    pub fn transport(provider: impl Into<String>, e: crate::TransportError) -> Self {
        let kind = match e {
            crate::TransportError::Timeout => UpstreamErrorKind::Timeout,
            crate::TransportError::Connect(_) => UpstreamErrorKind::Unreachable,
            crate::TransportError::Interrupted(_) => UpstreamErrorKind::Unavailable,
        };
        Self::upstream(provider, kind, None, e.to_string())
    }

    /// Constructs an upstream error.
    pub fn upstream(
        provider: impl Into<String>,
        kind: UpstreamErrorKind,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        Self::Upstream(UpstreamError {
            provider: provider.into(),
            kind,
            status,
            message: message.into(),
        })
    }
}

/// Result alias used across the workspace.
pub type Result<T, E = Error> = std::result::Result<T, E>;
