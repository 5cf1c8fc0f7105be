//! Small pieces of HTTP and id handling several simulators share. Only
//! behaviour that is the same for every provider lives here; each
//! provider's own quirks stay in its module.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

/// A random (version 4) UUID, lower-case hex with dashes.
pub(crate) fn uuid_v4() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Whether the request says its body is JSON (`…/json` or `…+json`), the
/// loose check frameworks like Laravel make before parsing a body.
pub(crate) fn says_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("/json") || ct.contains("+json"))
}

/// `*field = value` when the request sent a value: the partial update
/// Talkover's and Bird's PATCH make.
pub(crate) fn set_if_sent<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, uuid_v4());
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!says_json(&h));
        h.insert(CONTENT_TYPE, "application/vnd.api+json".parse().unwrap());
        assert!(says_json(&h));
        h.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!says_json(&h));
    }
}
