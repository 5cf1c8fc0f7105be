//! `If-Match` (RFC 9110 §13.1.1) on a subscription, whose `ETag` is its
//! version as a strong entity tag (`"3"`): the header's grammar, and its
//! evaluation with the strong comparison (§8.8.3.2) against the current
//! version. A well-formed value that does not match is 412; only a value
//! outside the grammar is 400.

use axum::http::{HeaderMap, header};
use switchboard_core::Error;

/// One entity tag of an `If-Match` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    /// `W/"…"`: a weak tag, which the strong comparison never matches.
    pub weak: bool,
    /// The opaque tag between the quotes.
    pub opaque: Vec<u8>,
}

/// What an `If-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current representation.
    Any,
    /// A list of entity tags (RFC 9110's `#entity-tag`, which may be
    /// empty and then matches nothing).
    Tags(Vec<EntityTag>),
}

/// The 400 detail for a value outside the grammar.
const MALFORMED: &str = "If-Match must be `*` or a comma-separated list of entity tags such as \"3\" (RFC 9110 §13.1.1)";

/// Parses the `If-Match` field value; several field lines are one list
/// (RFC 9110 §5.3).
pub fn parse(headers: &HeaderMap) -> Result<Option<IfMatch>, Error> {
    let mut lines = headers.get_all(header::IF_MATCH).iter().peekable();
    if lines.peek().is_none() {
        return Ok(None);
    }
    let mut value = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            value.push(b',');
        }
        value.extend_from_slice(line.as_bytes());
    }
    parse_value(&value)
        .map(Some)
        .ok_or_else(|| Error::Malformed {
            detail: MALFORMED.to_owned(),
            pointer: None,
        })
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `If-Match = "*" / #entity-tag`, with the empty list elements and
/// optional whitespace of §5.6.1; `None` outside the grammar.
fn parse_value(value: &[u8]) -> Option<IfMatch> {
    let trimmed = value.trim_ascii();
    if trimmed == b"*" {
        return Some(IfMatch::Any);
    }
    let mut tags = Vec::new();
    let mut rest = trimmed;
    loop {
        // Empty elements and the separators around them.
        while let [b, tail @ ..] = rest
            && (*b == b',' || is_ows(*b))
        {
            rest = tail;
        }
        if rest.is_empty() {
            return Some(IfMatch::Tags(tags));
        }
        let (tag, tail) = entity_tag(rest)?;
        tags.push(tag);
        rest = tail;
        while let [b, tail @ ..] = rest
            && is_ows(*b)
        {
            rest = tail;
        }
        match rest {
            [] => return Some(IfMatch::Tags(tags)),
            [b',', ..] => {}
            _ => return None,
        }
    }
}

/// `entity-tag = [ %s"W/" ] DQUOTE *etagc DQUOTE` (§8.8.3), with
/// `etagc = %x21 / %x23-7E / obs-text`, and what follows it.
fn entity_tag(input: &[u8]) -> Option<(EntityTag, &[u8])> {
    let (weak, quoted) = match input.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let body = quoted.strip_prefix(b"\"")?;
    let end = body.iter().position(|&b| b == b'"')?;
    let opaque = &body[..end];
    let etagc = |b: &u8| *b == 0x21 || (0x23..=0x7e).contains(b) || *b >= 0x80;
    if !opaque.iter().all(etagc) {
        return None;
    }
    let tag = EntityTag {
        weak,
        opaque: opaque.to_vec(),
    };
    Some((tag, &body[end + 1..]))
}

/// Evaluates `If-Match` against the subscription at `current` (its ETag is
/// `"<current>"`). `Ok(None)`: no header, or `*` (the subscription exists);
/// `Ok(Some(current))`: a listed tag matches, and the change must still be
/// based on `current` when it is written; otherwise 412, or 400 for a value
/// outside the grammar.
pub fn check(headers: &HeaderMap, current: i64) -> Result<Option<i64>, Error> {
    let tags = match parse(headers)? {
        None | Some(IfMatch::Any) => return Ok(None),
        Some(IfMatch::Tags(tags)) => tags,
    };
    let etag = current.to_string();
    // The strong comparison: both tags strong and their opaque tags equal
    // octet by octet (RFC 9110 §8.8.3.2), so `"01"` is not `"1"`.
    if tags.iter().any(|t| !t.weak && t.opaque == etag.as_bytes()) {
        return Ok(Some(current));
    }
    let weak = tags.iter().any(|t| t.weak && t.opaque == etag.as_bytes());
    Err(Error::PreconditionFailed(if weak {
        format!(
            "If-Match uses the strong comparison (RFC 9110 §13.1.1): the weak W/\"{etag}\" never matches; send \"{etag}\""
        )
    } else {
        format!("If-Match does not list the current ETag \"{etag}\"")
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_MATCH, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn tag(weak: bool, opaque: &str) -> EntityTag {
        EntityTag {
            weak,
            opaque: opaque.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_grammar_of_rfc_9110() {
        let parsed = |v: &[u8]| parse_value(v);
        assert_eq!(parsed(b"*"), Some(IfMatch::Any));
        assert_eq!(parsed(b" * "), Some(IfMatch::Any));
        assert_eq!(parsed(b"\"3\""), Some(IfMatch::Tags(vec![tag(false, "3")])));
        assert_eq!(
            parsed(b"W/\"1\", \"xyzzy\" ,,\t\"\""),
            Some(IfMatch::Tags(vec![
                tag(true, "1"),
                tag(false, "xyzzy"),
                tag(false, ""),
            ]))
        );
        assert_eq!(parsed(b""), Some(IfMatch::Tags(vec![])));
        assert_eq!(parsed(b" , "), Some(IfMatch::Tags(vec![])));
        assert_eq!(
            parsed(b"\"caf\xc3\xa9\""),
            Some(IfMatch::Tags(vec![tag(false, "café")])),
            "obs-text is allowed"
        );
        for bad in [
            &b"3"[..],
            b"\"3",
            b"\"3\" \"4\"",
            b"\"3\"x",
            b"*, \"3\"",
            b"w/\"3\"",
            b"W/3",
            b"\"a b\"",
            b"\"a\\\"b\"",
        ] {
            assert_eq!(parsed(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn strong_comparison_against_the_current_version() {
        let at = |values: &[&[u8]]| check(&headers(values), 3);
        assert_eq!(check(&HeaderMap::new(), 3).unwrap(), None);
        assert_eq!(at(&[b"*"]).unwrap(), None);
        assert_eq!(at(&[b"\"3\""]).unwrap(), Some(3));
        assert_eq!(at(&[b"\"1\", \"3\""]).unwrap(), Some(3));
        assert_eq!(at(&[b"\"1\"", b"\"3\""]).unwrap(), Some(3), "two lines");
        for stale in [
            &b"\"1\""[..],
            b"\"some-other-tag\"",
            b"\"03\"",
            b"W/\"3\"",
            b"",
        ] {
            assert!(
                matches!(at(&[stale]), Err(Error::PreconditionFailed(_))),
                "{}",
                String::from_utf8_lossy(stale)
            );
        }
        let Err(Error::PreconditionFailed(weak)) = at(&[b"W/\"3\""]) else {
            panic!("not 412");
        };
        assert!(weak.contains("strong comparison"), "{weak}");
        for malformed in [
            &[&b"3"[..]][..],
            &[b"some-other-tag"],
            &[b"\"3\" \"4\""],
            &[b"*", b"\"3\""],
            &[b"\"3\"", b"x"],
        ] {
            let got = at(malformed);
            assert!(matches!(got, Err(Error::Malformed { .. })), "{got:?}");
        }
    }
}
