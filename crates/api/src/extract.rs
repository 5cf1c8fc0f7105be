//! The JSON body extractor: a size limit, a JSON media type, and parse
//! errors turned into problem+json with a pointer to the offending field
//! (unknown fields and wrong types are 422 at `/field`, broken JSON is 400).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use switchboard_core::Error;

use crate::AppState;
use crate::problem::ApiError;

/// A JSON body parsed into `T` with field-pointer errors.
pub struct ApiJson<T>(pub T);

/// serde_path_to_error's `a.b[0]` → JSON pointer `/a/b/0`.
pub fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out.push('/');
        match seg {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

/// Parses bytes as `T`, mapping errors to the domain error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let pointer = path_to_pointer(e.path());
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return Error::Malformed {
                detail: format!("the body is not valid JSON: {inner}"),
                pointer: None,
            };
        }
        let msg = inner.to_string();
        // serde reports the unknown field's name in the message, not the path.
        let named = msg
            .strip_prefix("unknown field `")
            .map(|rest| ("unknown field", rest))
            .or_else(|| {
                msg.strip_prefix("missing field `")
                    .map(|rest| ("missing field", rest))
            });
        let (pointer, detail) = match named {
            Some((what, rest)) => {
                let field = rest.split('`').next().unwrap_or_default();
                // The path already ends at an unknown field, but stops at
                // the parent of a missing one.
                if what == "missing field" {
                    (format!("{pointer}/{field}"), "is required".to_owned())
                } else {
                    (pointer, format!("unknown field `{field}`"))
                }
            }
            None => (
                if pointer.is_empty() {
                    "/".to_owned()
                } else {
                    pointer
                },
                strip_position(&msg),
            ),
        };
        Error::field(pointer, detail)
    })
}

/// serde_json appends " at line L column C"; the pointer says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let mime = ct
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(Error::UnsupportedMediaType.into());
        }
        let limit = state.limits.body_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge { limit }
            } else {
                Error::Malformed {
                    detail: format!("the body could not be read: {rejection}"),
                    pointer: None,
                }
            }
        })?;
        parse_json(&bytes).map(ApiJson).map_err(ApiError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
        b: Option<Vec<Inner>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        x: String,
    }

    fn pointer_of(json: &str) -> (String, String) {
        match parse_json::<T>(json.as_bytes()).unwrap_err() {
            Error::Invalid(e) => (e[0].pointer.clone(), e[0].detail.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_types_and_unknown_fields_point_at_the_field() {
        assert_eq!(pointer_of(r#"{"a": "x"}"#).0, "/a");
        assert_eq!(pointer_of(r#"{"a": 1, "b": [{"x": 1}]}"#).0, "/b/0/x");
        let (p, d) = pointer_of(r#"{"a": 1, "zzz": 1}"#);
        assert_eq!(p, "/zzz");
        assert_eq!(d, "unknown field `zzz`");
        assert_eq!(
            pointer_of(r#"{"a": 1, "b": [{"x": "s", "y": 1}]}"#).0,
            "/b/0/y"
        );
        let (p, d) = pointer_of(r#"{}"#);
        assert_eq!(p, "/a");
        assert_eq!(d, "is required");
    }

    #[test]
    fn broken_json_is_malformed() {
        assert!(matches!(
            parse_json::<T>(b"{\"a\": "),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            parse_json::<T>(b"nope"),
            Err(Error::Malformed { .. })
        ));
    }
}
