//! The request extractors: the JSON body (a size limit, a JSON media type,
//! and parse errors turned into problem+json with a pointer to the offending
//! field: unknown fields and wrong types are 422 at `/field`, broken JSON or
//! bytes after the JSON value are 400), the typed query string
//! ([`ApiQuery`], every bad parameter reported at once at `/parameter`) and
//! the `{id}` of a subscription route ([`SubscriptionId`]: an id no
//! subscription can have is 404 without a database query).

use std::marker::PhantomData;

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use switchboard_core::{Error, FieldError};

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

/// Parses bytes as `T`, mapping errors to the domain error. The bytes must
/// be one JSON value (RFC 8259 §2: `JSON-text = ws value ws`), checked
/// before any field is judged: broken JSON, or anything but whitespace
/// after the value, is malformed (400), never a field error or silently
/// dropped.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let malformed = |what: &str, e: serde_json::Error| Error::Malformed {
        detail: format!("{what}: {e}"),
        pointer: None,
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde::de::IgnoredAny::deserialize(&mut *de)
        .map_err(|e| malformed("the body is not valid JSON", e))?;
    de.end()
        .map_err(|e| malformed("the body must be one JSON value", e))?;
    deserialize(&mut serde_json::Deserializer::from_slice(bytes))
}

fn deserialize<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, Error> {
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
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = state.limits.body_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::Domain(Error::Malformed {
                    detail: format!("the body could not be read: {rejection}"),
                    pointer: None,
                })
            }
        })?;
        parse_json(&bytes).map(ApiJson).map_err(ApiError::Domain)
    }
}

/// The query parameters of one route: a `#[serde(deny_unknown_fields)]`
/// struct of optional fields whose types check their own values (below).
pub trait QueryParams: DeserializeOwned + Default {
    /// The detail reported at an unknown parameter.
    const UNKNOWN: &'static str;
}

/// A query string parsed into `T`. Every bad parameter is reported at once,
/// as a field error at `/<name>` (422); a query string that is not
/// `application/x-www-form-urlencoded` is 400. A repeated parameter's last
/// value counts. A value with a control character (`%00` included) is a
/// 422 at its parameter whatever the type: no id, name or cursor has one,
/// and PostgreSQL cannot even compare text with a NUL in it.
pub struct ApiQuery<T>(pub T);

/// The detail at a query value with a control character.
pub const CONTROL_CHARACTERS: &str = "must not contain control characters";

impl<T: QueryParams, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) =
            Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|e| {
                Error::Malformed {
                    detail: format!("the query string could not be parsed: {e}"),
                    pointer: None,
                }
            })?;
        let params: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        // One parameter at a time, so that each bad one is reported.
        let errors: Vec<FieldError> = params
            .iter()
            .filter_map(|(k, v)| {
                if v.as_str().is_some_and(|v| v.chars().any(char::is_control)) {
                    return Some(FieldError::new(format!("/{k}"), CONTROL_CHARACTERS));
                }
                let one = serde_json::json!({ k: v });
                query_value::<T>(one).err()
            })
            .collect();
        if !errors.is_empty() {
            return Err(Error::Invalid(errors).into());
        }
        query_value(serde_json::Value::Object(params))
            .map(ApiQuery)
            .map_err(|e| Error::Invalid(vec![e]).into())
    }
}

fn query_value<T: QueryParams>(value: serde_json::Value) -> Result<T, FieldError> {
    match parse_json(value.to_string().as_bytes()) {
        Ok(t) => Ok(t),
        Err(Error::Invalid(mut errors)) if !errors.is_empty() => {
            let mut e = errors.swap_remove(0);
            if e.detail.starts_with("unknown field") {
                e.detail = T::UNKNOWN.to_owned();
            }
            Err(e)
        }
        Err(other) => Err(FieldError::new("/", other.to_string())),
    }
}

/// The `{id}` of a `/v1/subscriptions/{id}` route, checked when the
/// handler asks ([`SubscriptionId::get`]), after the caller's scope, so a
/// token without the scope gets 403 whatever the id. An id that is not
/// `sub_<ulid>` is 404 without a database query: a NUL (`%00`, which
/// PostgreSQL refuses in text) and percent-encoded bytes that are not UTF-8
/// (`%ff`, which axum's `Path` refuses with a plain-text 400) name no
/// subscription either.
#[derive(Debug)]
pub struct SubscriptionId(Result<String, Error>);

impl SubscriptionId {
    /// The id, or 404 for one no subscription can have.
    pub fn get(self) -> Result<String, Error> {
        self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SubscriptionId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let id = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => id,
            // Not UTF-8 once decoded: named as sent, still percent-encoded.
            Err(_) => raw_id(parts).unwrap_or_default(),
        };
        Ok(Self(if switchboard_core::ids::is_subscription_id(&id) {
            Ok(id)
        } else {
            Err(Error::NotFound {
                what: "subscription",
                id,
            })
        }))
    }
}

/// The `{id}` segment of the request's path as sent (axum's
/// `RawPathParams` decodes, and refuses what is not UTF-8).
fn raw_id(parts: &Parts) -> Option<String> {
    let route = parts.extensions.get::<MatchedPath>()?.as_str();
    let at = route.split('/').position(|s| s == "{id}")?;
    parts.uri.path().split('/').nth(at).map(str::to_owned)
}

/// A page size: 1 to 200 (`limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub u64);

impl Limit {
    /// The size of a page when the caller names none.
    pub const DEFAULT: u64 = 50;

    /// The size asked for, or the default.
    pub fn or_default(limit: Option<Self>) -> u64 {
        limit.map_or(Self::DEFAULT, |l| l.0)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.parse::<u64>() {
            Ok(n) if (1..=200).contains(&n) => Ok(Self(n)),
            _ => Err(serde::de::Error::custom("must be an integer from 1 to 200")),
        }
    }
}

/// Which cursors a list hands out, so a cursor from another list (or made
/// up) is refused instead of silently restarting the listing.
pub trait CursorKind {
    /// Whether `cursor` is one of this list's.
    fn accepts(cursor: &str) -> bool;
}

/// A `cursor` parameter: the `next_cursor` of a previous page of list `K`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor<K>(pub String, PhantomData<K>);

impl<'de, K: CursorKind> Deserialize<'de> for Cursor<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if K::accepts(&text) {
            Ok(Self(text, PhantomData))
        } else {
            Err(serde::de::Error::custom(
                "is not a cursor returned by this API",
            ))
        }
    }
}

impl<K> Cursor<K> {
    /// The cursor text, if one was given.
    pub fn text(cursor: &Option<Self>) -> Option<&str> {
        cursor.as_ref().map(|c| c.0.as_str())
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

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        limit: Option<Limit>,
        cursor: Option<Cursor<OpCursors>>,
        name: Option<String>,
    }

    impl QueryParams for Q {
        const UNKNOWN: &'static str = "unknown query parameter; known: limit, cursor, name";
    }

    #[derive(Debug)]
    struct OpCursors;

    impl CursorKind for OpCursors {
        fn accepts(cursor: &str) -> bool {
            cursor.starts_with("op_")
        }
    }

    async fn query(uri: &str) -> Result<Q, Error> {
        let (mut parts, ()) = axum::http::Request::get(uri).body(()).unwrap().into_parts();
        match ApiQuery::<Q>::from_request_parts(&mut parts, &()).await {
            Ok(ApiQuery(q)) => Ok(q),
            Err(ApiError::Domain(e)) => Err(e),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_typed_query_reports_every_bad_parameter() {
        let q = query("/x?limit=7&cursor=op_1&name=a%20b&limit=9")
            .await
            .unwrap();
        assert_eq!(q.limit, Some(Limit(9)), "the last value counts");
        assert_eq!(Cursor::text(&q.cursor), Some("op_1"));
        assert_eq!(q.name.as_deref(), Some("a b"));
        assert_eq!(Limit::or_default(query("/x").await.unwrap().limit), 50);

        let Err(Error::Invalid(mut errors)) = query("/x?limit=0&cursor=sub_1&colour=red").await
        else {
            panic!("not a field error");
        };
        errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        let got: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("/colour", Q::UNKNOWN),
                ("/cursor", "is not a cursor returned by this API"),
                ("/limit", "must be an integer from 1 to 200"),
            ]
        );
    }

    #[tokio::test]
    async fn a_control_character_in_a_query_value_is_a_field_error() {
        let Err(Error::Invalid(errors)) = query("/x?name=a%00b&limit=3").await else {
            panic!("not a field error");
        };
        assert_eq!(errors, [FieldError::new("/name", CONTROL_CHARACTERS)]);
        let Err(Error::Invalid(errors)) = query("/x?cursor=op_%00").await else {
            panic!("not a field error");
        };
        assert_eq!(errors[0].pointer, "/cursor");
    }

    /// What a route with a [`SubscriptionId`] makes of the id in `uri`.
    async fn subscription_id(uri: &str) -> String {
        let router = axum::Router::new().route(
            "/v1/s/{id}/x",
            axum::routing::get(|id: SubscriptionId| async move {
                match id.get() {
                    Ok(id) => format!("ok {id}"),
                    Err(Error::NotFound { id, .. }) => format!("404 {id}"),
                    Err(e) => format!("other {e}"),
                }
            }),
        );
        let req = axum::http::Request::get(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(router, req).await.unwrap();
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_id_no_subscription_can_have_is_not_found() {
        let id = switchboard_core::ids::subscription_id();
        assert_eq!(
            subscription_id(&format!("/v1/s/{id}/x")).await,
            format!("ok {id}")
        );
        assert_eq!(subscription_id("/v1/s/sub_%00/x").await, "404 sub_\0");
        assert_eq!(subscription_id("/v1/s/%ff/x").await, "404 %ff");
        assert_eq!(subscription_id("/v1/s/sub_nope/x").await, "404 sub_nope");
    }

    #[test]
    fn bytes_after_the_json_value_are_malformed() {
        let Err(Error::Malformed { detail, .. }) = parse_json::<T>(br#"{"a": 1} x"#) else {
            panic!("trailing bytes were accepted");
        };
        assert!(detail.contains("one JSON value"), "{detail}");
        assert!(matches!(
            parse_json::<T>(br#"{"a": 1}{"a": 2}"#),
            Err(Error::Malformed { .. })
        ));
        assert!(
            parse_json::<T>(b" {\"a\": 1} \r\n").is_ok(),
            "whitespace is JSON"
        );
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
        // Broken JSON is 400 even where a field before the break is wrong.
        assert!(matches!(
            parse_json::<T>(br#"{"a": "x", "b": [{"#),
            Err(Error::Malformed { .. })
        ));
    }
}
