//! URL path segments built from values Switchboard does not control: a
//! caller's `account` and the ids providers return. [`PathSegment`] is the
//! only way such a value enters a request path, so it can never add a
//! segment (`/`), end the path (`?`, `#`) or climb out of it (`.`, `..`).

use std::fmt;

use crate::{Error, FieldError, UpstreamErrorKind};

/// One percent-encoded path segment.
///
/// Every byte outside RFC 3986 §2.3 unreserved characters (`A–Z a–z 0–9 -
/// . _ ~`) is percent-encoded, so `/`, `?`, `#` and `%` stay inside the
/// segment (`%2e%2e` becomes `%252e%252e`, which no server decodes to
/// `..`). The dot segments `.` and `..` consist of unreserved characters
/// only and would survive encoding, and RFC 3986 §5.2.4 removes them from
/// a path (`/agents/../webhooks` is `/webhooks`), so they are refused, as
/// is the empty segment, which would turn `/agents/{id}/webhooks` into
/// another route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSegment(String);

impl PathSegment {
    /// `value` as one safe path segment; an error for `""`, `.` and `..`.
    ///
    /// Caller input is checked before it gets here ([`crate::Capabilities`])
    /// and provider ids when they are parsed, so a refusal means a value
    /// skipped those checks: [`Error::Internal`]. Where the value's origin
    /// is known, [`PathSegment::account`] and [`PathSegment::native_id`]
    /// give the error that names it.
    pub fn new(value: &str) -> Result<Self, Error> {
        match value {
            "" | "." | ".." => Err(Error::Internal(format!(
                "`{value}` cannot be a URL path segment: RFC 3986 §5.2.4 removes dot segments and an empty one changes the route"
            ))),
            _ => Ok(Self(crate::adapter::encode(value))),
        }
    }

    /// The caller's `account` as a segment; refused as a 422 at `/account`
    /// naming `provider`.
    pub fn account(provider: &str, value: &str) -> Result<Self, Error> {
        Self::new(value).map_err(|_| {
            Error::Invalid(vec![FieldError::provider(
                "/account",
                format!("`{value}` cannot address anything at provider `{provider}`: it would not stay one URL path segment"),
                provider,
            )])
        })
    }

    /// A provider's own id as a segment; refused as an answer the
    /// provider's documentation does not describe ([`UpstreamErrorKind::Protocol`]).
    pub fn native_id(provider: &str, id: &str) -> Result<Self, Error> {
        Self::new(id).map_err(|_| {
            Error::upstream(
                provider,
                UpstreamErrorKind::Protocol,
                None,
                format!(
                    "the provider answered the id `{id}`, which cannot be one URL path segment"
                ),
            )
        })
    }

    /// The encoded segment, ready to be placed between two `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PathSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_characters_pass_and_everything_else_is_encoded() {
        let ok = |v: &str| PathSegment::new(v).unwrap().to_string();
        assert_eq!(
            ok("9fbef0b7-8d4e-4a08-9207-66c22155721d"),
            "9fbef0b7-8d4e-4a08-9207-66c22155721d"
        );
        assert_eq!(ok("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(ok("a/b"), "a%2Fb");
        assert_eq!(ok("%2e%2e"), "%252e%252e");
        assert_eq!(ok("a b?c#d"), "a%20b%3Fc%23d");
        assert_eq!(ok("..."), "...");
        assert_eq!(ok("./"), ".%2F");
        assert_eq!(ok("é"), "%C3%A9");
    }

    #[test]
    fn empty_and_dot_segments_are_refused() {
        for bad in ["", ".", ".."] {
            assert!(
                matches!(PathSegment::new(bad), Err(Error::Internal(_))),
                "{bad:?}"
            );
            match PathSegment::account("tk", bad) {
                Err(Error::Invalid(errors)) => {
                    assert_eq!(errors.len(), 1);
                    assert_eq!(errors[0].pointer, "/account");
                    assert_eq!(errors[0].provider.as_deref(), Some("tk"));
                }
                other => panic!("{bad:?}: {other:?}"),
            }
            match PathSegment::native_id("tk", bad) {
                Err(Error::Upstream(u)) => assert_eq!(u.kind, UpstreamErrorKind::Protocol),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
