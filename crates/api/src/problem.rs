//! The one place where an error becomes an HTTP answer: RFC 9457
//! `application/problem+json` with `errors: [{pointer, detail, provider}]`
//! for field problems and `provider` where an upstream said it. Domain
//! errors ([`Error`]) and the HTTP layer's own refusals ([`ApiError`]'s
//! other variants: method, media type, sizes, load) are mapped here alike.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_core::{Error, FieldError, UpstreamError, UpstreamErrorKind};
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Problem type (`urn:switchboard:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened here.
    pub detail: String,
    /// Field problems, each with a JSON pointer into the request body.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Provider instance that answered, for upstream problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider's HTTP status, for upstream problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
}

/// An error on its way out of a handler or middleware: a domain error, or
/// a refusal that only exists at the HTTP layer.
#[derive(Debug)]
pub enum ApiError {
    /// What the domain (engine, store, validation, auth) reported.
    Domain(Error),
    /// The route exists but not with this method (405).
    MethodNotAllowed,
    /// The request body is not JSON (415).
    UnsupportedMediaType,
    /// The request body exceeds the configured limit (413).
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request headers exceed the configured limit (431).
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request has more header fields than allowed (431).
    TooManyHeaders {
        /// The most header fields a request may have.
        limit: usize,
    },
    /// The server is at its concurrency limit or the request timed out (503).
    Overloaded,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self::Domain(e)
    }
}

impl ApiError {
    /// The problem document and optional `Retry-After`.
    pub fn to_problem(self) -> (Problem, Option<u64>) {
        let (status, slug, title, detail, retry) = match self {
            Self::Domain(e) => return to_problem(e),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this path does not accept this method".to_owned(),
                None,
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media-type",
                "Unsupported media type",
                "send the body as application/json".to_owned(),
                None,
            ),
            Self::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "The request body is too large",
                format!("the body must be at most {limit} bytes"),
                None,
            ),
            Self::HeadersTooLarge { limit } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "Request headers too large",
                format!("the request headers must be at most {limit} bytes"),
                None,
            ),
            Self::TooManyHeaders { limit } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "Request headers too large",
                format!("a request may have at most {limit} header fields"),
                None,
            ),
            Self::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Server busy",
                "too many requests are in flight; retry shortly".to_owned(),
                Some(1),
            ),
        };
        (problem(status, slug, title, detail), retry)
    }
}

fn problem(status: StatusCode, slug: &str, title: &str, detail: String) -> Problem {
    Problem {
        kind: format!("urn:switchboard:problem:{slug}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        errors: Vec::new(),
        provider: None,
        upstream_status: None,
    }
}

fn upstream(e: UpstreamError) -> (Problem, Option<u64>) {
    let who = format!("provider `{}`", e.provider);
    let (status, slug, title, detail, retry) = match e.kind {
        UpstreamErrorKind::Rejected(errors) => {
            let mut p = problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "provider-rejected",
                "The provider rejected the request",
                format!("{who} rejected the subscription: {}", e.message),
            );
            p.errors = errors;
            p.provider = Some(e.provider);
            p.upstream_status = e.status;
            return (p, None);
        }
        UpstreamErrorKind::Unauthorized => (
            StatusCode::BAD_GATEWAY,
            "provider-credentials",
            "Switchboard's provider credentials were refused",
            format!(
                "{who} refused Switchboard's credentials; an operator must fix the provider configuration"
            ),
            None,
        ),
        UpstreamErrorKind::NotFound => (
            StatusCode::BAD_GATEWAY,
            "provider-resource-gone",
            "A native resource is gone at the provider",
            format!(
                "{who} no longer has a native resource Switchboard created: {}",
                e.message
            ),
            None,
        ),
        UpstreamErrorKind::RateLimited { retry_after } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "provider-rate-limited",
            "The provider is rate limiting",
            format!("{who} asked to slow down; retry later"),
            Some(retry_after.map_or(30, |d| d.as_secs().max(1))),
        ),
        UpstreamErrorKind::Unavailable | UpstreamErrorKind::Unreachable => (
            StatusCode::BAD_GATEWAY,
            "provider-unavailable",
            "The provider is unavailable",
            format!("{who} failed or could not be reached: {}", e.message),
            None,
        ),
        UpstreamErrorKind::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "provider-timeout",
            "The provider did not answer in time",
            format!("{who} did not answer in time"),
            None,
        ),
        UpstreamErrorKind::Protocol => (
            StatusCode::BAD_GATEWAY,
            "provider-protocol",
            "The provider answered unexpectedly",
            format!(
                "{who} answered in a way its documentation does not describe: {}",
                e.message
            ),
            None,
        ),
    };
    let mut p = problem(status, slug, title, detail);
    p.provider = Some(e.provider);
    p.upstream_status = e.status;
    (p, retry)
}

/// Maps a domain error to its problem document and optional `Retry-After`.
pub fn to_problem(err: Error) -> (Problem, Option<u64>) {
    let (status, slug, title, detail, retry) = match err {
        Error::Invalid(errors) => return (invalid(errors), None),
        Error::Malformed { detail, pointer } => return (malformed(detail, pointer), None),
        Error::Upstream(u) => return upstream(u),
        Error::Taken(field) => return (taken(field), None),
        Error::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
            "send `Authorization: Bearer <token>` with a configured token".into(),
            None,
        ),
        Error::Forbidden { scope } => (
            StatusCode::FORBIDDEN,
            "forbidden",
            "Missing scope",
            format!("this token lacks the `{scope}` scope"),
            None,
        ),
        Error::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!("this token exceeded its request rate; retry in {retry_after_secs} s"),
            Some(retry_after_secs),
        ),
        e @ Error::NotFound { .. } => (
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            e.to_string(),
            None,
        ),
        Error::Conflict(d) => (StatusCode::CONFLICT, "conflict", "Conflict", d, None),
        Error::PreconditionFailed(d) => (
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Version mismatch",
            d,
            None,
        ),
        Error::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "storage",
            "Storage unavailable",
            "the database failed; the request was not completed".into(),
            Some(5),
        ),
        Error::Internal(d) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            d,
            None,
        ),
    };
    (problem(status, slug, title, detail), retry)
}

/// 422 listing every invalid field; names the provider when one of the
/// fields was judged by a provider's capabilities.
fn invalid(errors: Vec<FieldError>) -> Problem {
    let detail = match errors.as_slice() {
        [one] => format!("{} {}", one.pointer, one.detail),
        many => format!("{} fields are invalid", many.len()),
    };
    let mut p = problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "The request is invalid",
        detail,
    );
    p.provider = errors.iter().find_map(|e| e.provider.clone());
    p.errors = errors;
    p
}

/// 409 for a value that must be unique and is already in use, naming its
/// field.
fn taken(field: FieldError) -> Problem {
    let mut p = problem(
        StatusCode::CONFLICT,
        "taken",
        "Already in use",
        format!("{} {}", field.pointer, field.detail),
    );
    p.errors.push(field);
    p
}

/// 400 for a body or query that could not be parsed, with the pointer of
/// the offending field when known.
fn malformed(detail: String, pointer: Option<String>) -> Problem {
    let mut p = problem(
        StatusCode::BAD_REQUEST,
        "malformed",
        "The request could not be parsed",
        detail.clone(),
    );
    if let Some(pointer) = pointer {
        p.errors.push(FieldError::new(pointer, detail));
    }
    p
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The one log line of a failed request (inside the request span, so
        // it carries the request id). Storage errors keep their cause here
        // only: the caller sees a generic detail.
        match &self {
            Self::Domain(Error::Store(cause) | Error::Internal(cause)) => {
                tracing::error!(error = %cause, "request failed")
            }
            Self::Domain(Error::Upstream(u)) => tracing::warn!(
                provider = %u.provider,
                upstream_status = u.status,
                message = %u.message,
                "provider call failed"
            ),
            _ => {}
        }
        let (p, retry_after) = self.to_problem();
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&p).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
