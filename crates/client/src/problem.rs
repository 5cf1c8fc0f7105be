//! RFC 9457 problem details as the API sends them
//! (`crates/api/src/problem.rs`), read back and rendered for a person:
//! title and status, the detail, every field pointer with its message, and
//! the provider when one is named.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A problem document. Fields the server may add later are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Problem type (`urn:switchboard:problem:<slug>`).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Short summary of the type.
    #[serde(default)]
    pub title: String,
    /// HTTP status.
    #[serde(default)]
    pub status: u16,
    /// What happened here.
    #[serde(default)]
    pub detail: String,
    /// Field problems, each with a JSON pointer into the request body.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// Provider instance that answered, for upstream problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider's HTTP status, for upstream problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
}

/// One field problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    /// JSON pointer into the request body (`/url`, `/events/1`).
    pub pointer: String,
    /// What is wrong.
    pub detail: String,
    /// The provider that raised or imposes the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl Problem {
    /// Several lines: `<title> (HTTP <status>[, provider `p` answered <n>])`,
    /// then the detail and one line per field, indented. A field names its
    /// provider only where the problem as a whole names another (or none).
    pub fn render(&self) -> String {
        let mut out = format!("{} (HTTP {}", self.title_or_type(), self.status);
        match (&self.provider, self.upstream_status) {
            (Some(p), Some(s)) => {
                let _ = write!(out, ", provider `{p}` answered {s}");
            }
            (Some(p), None) => {
                let _ = write!(out, ", provider `{p}`");
            }
            (None, _) => {}
        }
        out.push(')');
        // A one-field problem's detail is that field's line again.
        let repeats_field = matches!(self.errors.as_slice(),
            [one] if self.detail == format!("{} {}", one.pointer, one.detail));
        if !self.detail.is_empty() && !repeats_field {
            let _ = write!(out, "\n  {}", self.detail);
        }
        for e in &self.errors {
            let _ = write!(out, "\n  {}: {}", display_pointer(&e.pointer), e.detail);
            if let Some(p) = &e.provider
                && self.provider.as_ref() != Some(p)
            {
                let _ = write!(out, " (provider `{p}`)");
            }
        }
        out
    }

    fn title_or_type(&self) -> &str {
        if self.title.is_empty() {
            &self.kind
        } else {
            &self.title
        }
    }
}

/// A pointer as a person reads it: `/` stands for the whole body.
fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Problem {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn renders_title_status_detail_fields_and_provider() {
        let p = parse(json!({
            "type": "urn:switchboard:problem:validation", "title": "The request is invalid",
            "status": 422, "detail": "2 fields are invalid",
            "errors": [
                {"pointer": "/timeout_seconds", "detail": "must be between 5 and 120", "provider": "talkover"},
                {"pointer": "/events/1", "detail": "is not a known event"}
            ],
            "provider": "talkover"
        }));
        assert_eq!(
            p.render(),
            "The request is invalid (HTTP 422, provider `talkover`)\n  \
             2 fields are invalid\n  \
             /timeout_seconds: must be between 5 and 120\n  \
             /events/1: is not a known event"
        );
    }

    #[test]
    fn a_single_field_is_not_repeated_by_the_detail() {
        let p = parse(json!({
            "type": "urn:switchboard:problem:validation", "title": "The request is invalid",
            "status": 422, "detail": "/url must be https",
            "errors": [{"pointer": "/url", "detail": "must be https"}]
        }));
        assert_eq!(
            p.render(),
            "The request is invalid (HTTP 422)\n  /url: must be https"
        );
    }

    #[test]
    fn upstream_problems_name_the_provider_status_and_other_providers() {
        let p = parse(json!({
            "type": "urn:switchboard:problem:provider-rejected",
            "title": "The provider rejected the request", "status": 422,
            "detail": "provider `bird` rejected the subscription: bad url",
            "errors": [{"pointer": "/url", "detail": "invalid", "provider": "bird-eu"}],
            "provider": "bird", "upstream_status": 400
        }));
        assert_eq!(
            p.render(),
            "The provider rejected the request (HTTP 422, provider `bird` answered 400)\n  \
             provider `bird` rejected the subscription: bad url\n  \
             /url: invalid (provider `bird-eu`)"
        );
    }

    #[test]
    fn a_problem_without_title_shows_its_type() {
        let p = parse(json!({"type": "urn:x", "status": 500}));
        assert_eq!(p.render(), "urn:x (HTTP 500)");
    }
}
