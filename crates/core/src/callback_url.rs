//! Callback URLs: parsed once with a WHATWG parser, held and sent in
//! normalized form, and refused when their spelling is one that URL
//! parsers read differently. Caller input goes through the strict
//! [`CallbackUrl::parse`]; stored specs read back through `Deserialize`
//! with the rules of every earlier version.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::subscription::MAX_URL_LEN;

/// An absolute `http(s)` URL with a host, held as the `url` crate's (WHATWG)
/// parse. What it shows, stores, compares and sends upstream is the
/// normalized serialization ([`url::Url::as_str`]: lower-case scheme and
/// host, default port dropped, dot segments resolved, IDN as punycode,
/// `0x7f.1` as `127.0.0.1`), never the caller's spelling, so the host the
/// URL policy judges ([`CallbackUrl::host`]) is the host every later reader
/// of the URL sees.
///
/// Caller input goes through the strict [`CallbackUrl::parse`]. Serde's
/// `Deserialize` is the read path of stored specs (see [`SubscriptionSpec`])
/// and accepts every URL an earlier version accepted, normalizing it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct CallbackUrl(url::Url);

impl CallbackUrl {
    /// Validates caller input. Besides the rules of an earlier version
    /// (length, `http`/`https`, a host, no credentials) it refuses, before
    /// parsing, every spelling on which common URL parsers disagree about
    /// the host (see `check_unambiguous`), so that the WHATWG reading, the
    /// one judged and sent, is also the one an RFC 3986 parser would make.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters"));
        }
        check_unambiguous(raw)?;
        let url = Self::from_whatwg(raw)?;
        if let url::Host::Domain(name) = url.host() {
            check_domain(name)?;
        }
        let normalized = url.as_str();
        if normalized.len() > MAX_URL_LEN {
            return Err(format!(
                "is {} bytes long once normalized (`{normalized}`); at most {MAX_URL_LEN} are allowed",
                normalized.len()
            ));
        }
        // The url crate has had inputs whose serialization parses to
        // something else; such a URL would change between store and send.
        // A URL given in its normalized form was that parse already.
        if normalized != raw && url::Url::parse(normalized).ok().as_ref() != Some(&url.0) {
            return Err(format!(
                "has no stable normalized form (`{normalized}` reads differently)"
            ));
        }
        Ok(url)
    }

    /// The rules every version has applied: WHATWG-parsable, `http` or
    /// `https`, a non-empty host, no credentials. Alone, this is the read
    /// path of stored URLs, so tightening [`Self::parse`] never makes a
    /// stored subscription unreadable; read back, the URL is normalized.
    fn from_whatwg(raw: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(raw).map_err(|e| format!("is not an absolute URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("must use http or https, not `{}`", parsed.scheme()));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("must have a host".into());
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not contain credentials; use `auth` instead".into());
        }
        Ok(Self(parsed))
    }

    /// The normalized URL: what is stored and sent upstream.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// The host as WHATWG parsed it (a domain, IPv4 or IPv6 address): what
    /// the URL policy judges and `url::Url::parse(self.as_str()).host()`.
    pub fn host(&self) -> url::Host<&str> {
        // `from_whatwg` admits only http(s), and WHATWG refuses an http(s)
        // URL without a host, so every CallbackUrl has one.
        self.0
            .host()
            .expect("an http(s) URL always has a host (WHATWG special scheme)")
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
}

/// Refuses the spellings on which URL parsers disagree (WHATWG, RFC 3986,
/// Python's `urllib`, curl, naive "host is between `//` and `/`" code), so
/// that nobody downstream reads a host other than the one the policy judged:
///
/// - `\`: WHATWG reads it as `/` in http(s) URLs, RFC 3986 as data, so
///   `https://good.example\@127.0.0.1/` has two hosts;
/// - control characters and whitespace: WHATWG strips tab, CR and LF
///   anywhere and C0/space at the ends, others keep, cut or reject them;
/// - invisible formatting characters (zero-width, bidi controls, BOM):
///   IDNA drops some of them, and they hide what a URL says;
/// - no `//` after the scheme (`https:/x`, `https:x`), or an empty
///   authority (`https:///x`): WHATWG finds a host there, RFC 3986 none;
/// - `@` before the path (userinfo, several `@`, `https://a?@b/`,
///   `https://a#@b/`): parsers pick different `@`s or end the authority at
///   different characters;
/// - `%` in the authority: WHATWG percent-decodes hosts, others do not;
/// - `[`/`]` other than around a whole IPv6 literal, more than one `:`
///   outside brackets, a port that is not digits.
fn check_unambiguous(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    check_characters(raw)?;
    let (scheme, rest) = raw
        .split_once(':')
        .filter(|(s, _)| is_scheme(s))
        .ok_or("is not an absolute URL: write it as `https://host/path`")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("must use http or https, not `{scheme}`"));
    }
    let after = rest
        .strip_prefix("//")
        .ok_or_else(|| format!("must have `//` after `{scheme}:`: write `{scheme}://host/path`"))?;
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    if authority.contains('@') {
        return Err(
            "must not contain credentials (`user:password@` before the host); use `auth` instead"
                .into(),
        );
    }
    // `https://good.example?@evil.example/`: the host ends at `?` for
    // WHATWG and RFC 3986, at the `@` for code that looks only for `/`.
    if after[..after.find('/').unwrap_or(after.len())].contains('@') {
        return Err(
            "must have a `/` after the host when the query or fragment contains `@` (`https://host/?…`)".into(),
        );
    }
    if authority.contains('%') {
        return Err("must not percent-encode the host (`%` before the path)".into());
    }
    check_host_and_port(authority)
}

/// Control characters, whitespace, `\` and invisible formatting characters,
/// anywhere in the URL.
fn check_characters(raw: &str) -> Result<(), String> {
    let Some((at, c)) = raw
        .char_indices()
        .find(|&(_, c)| c.is_control() || c.is_whitespace() || c == '\\' || is_invisible_format(c))
    else {
        return Ok(());
    };
    let what = if c == '\\' {
        "a backslash (`\\`), which parsers read as `/` or as data"
    } else if c.is_control() {
        "a control character"
    } else if c.is_whitespace() {
        "whitespace"
    } else {
        "an invisible formatting character"
    };
    Err(format!(
        "must not contain {what} (U+{:04X} at byte {at})",
        u32::from(c)
    ))
}

/// Unicode format characters (general category Cf) that can sit in a URL
/// unseen: soft hyphen, zero-width and joiner characters, bidi embeddings,
/// overrides and isolates, word joiner and invisible operators, BOM,
/// interlinear annotation marks.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The authority (no `@`, no `%` left) as `host[:port]`, where the host is
/// a bracketed IPv6 literal or has no brackets and no `:`.
fn check_host_and_port(authority: &str) -> Result<(), String> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (v6, after) = inner
            .split_once(']')
            .ok_or("must close an IPv6 address with `]`")?;
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("`[{v6}]` is not an IPv6 address"));
        }
        if !after.is_empty() && !after.starts_with(':') {
            return Err("must have only a `:port` after an IPv6 address's `]`".into());
        }
        (v6, after.strip_prefix(':'))
    } else {
        if authority.contains(['[', ']']) {
            return Err("may use `[` and `]` only around a whole IPv6 address".into());
        }
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(
                    "has more than one `:` in the host; write an IPv6 address in `[` `]`".into(),
                );
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("must have a host".into());
    }
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err("must have a port of digits after `:` (or no `:`)".into());
    }
    Ok(())
}

/// The WHATWG-parsed domain (lower-case, IDNA-mapped, punycode) must be a
/// DNS-style name. WHATWG lets `;`, `*`, `"`, `{`, `=`, … through (written
/// or produced by IDNA from full-width forms such as `；`), which other
/// parsers end the host at or refuse.
fn check_domain(name: &str) -> Result<(), String> {
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        Ok(())
    } else {
        Err(format!(
            "has host `{name}`; a host name may contain only letters, digits, `-`, `_` and `.`"
        ))
    }
}

/// The read path of stored specs: the rules of every earlier version, not
/// today's stricter ones (see `CallbackUrl::from_whatwg`).
impl<'de> Deserialize<'de> for CallbackUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::from_whatwg(&raw).map_err(|e| serde::de::Error::custom(format!("url {e}")))
    }
}

impl From<CallbackUrl> for String {
    fn from(u: CallbackUrl) -> String {
        u.0.into()
    }
}

impl fmt::Debug for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallbackUrl({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> String {
        CallbackUrl::parse(raw).expect_err(raw)
    }

    #[test]
    fn callback_url_rules() {
        assert!(CallbackUrl::parse("https://billing.example.com/hooks").is_ok());
        assert!(CallbackUrl::parse("http://localhost:9000/x").is_ok());
        assert_eq!(
            refused("ftp://example.com"),
            "must use http or https, not `ftp`"
        );
        assert!(refused("example.com/hooks").starts_with("is not an absolute URL"));
        assert!(refused("https://user:pw@example.com").contains("credentials"));
        assert_eq!(refused(""), "must not be empty");
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(refused(&long).contains("2048"));
    }

    /// What is held, stored and sent is WHATWG's serialization.
    #[test]
    fn callback_urls_are_normalized() {
        for (raw, normalized) in [
            (
                "https://Hooks.Example.COM:443/a/./b/../c",
                "https://hooks.example.com/a/c",
            ),
            ("HTTPS://example.com", "https://example.com/"),
            ("http://example.com:80/x", "http://example.com/x"),
            ("https://example.com:8443/x", "https://example.com:8443/x"),
            ("https://example.com:08443/x", "https://example.com:8443/x"),
            ("https://bücher.example/", "https://xn--bcher-kva.example/"),
            ("https://0x7f.1/", "https://127.0.0.1/"),
            (
                "https://[0:0:0:0:0:FFFF:10.0.0.1]/",
                "https://[::ffff:a00:1]/",
            ),
            (
                "https://example.com/é?q=é#é",
                "https://example.com/%C3%A9?q=%C3%A9#%C3%A9",
            ),
            ("https://example.com/%2e%2e/x", "https://example.com/x"),
            ("https://example.com?a=1", "https://example.com/?a=1"),
            ("https://example.com./h", "https://example.com./h"),
        ] {
            let url = CallbackUrl::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(url.as_str(), normalized, "{raw}");
            assert_eq!(CallbackUrl::parse(normalized).unwrap(), url, "{raw}");
            assert_eq!(String::from(url), normalized);
        }
        let url = CallbackUrl::parse("https://0x7f.1/").unwrap();
        assert_eq!(url.host(), url::Host::<&str>::Ipv4([127, 0, 0, 1].into()));
        assert!(url.is_https());
        assert!(!CallbackUrl::parse("HTTP://x.io/").unwrap().is_https());
    }

    /// The examples of issue #11 item 5: parsers disagree on these hosts.
    #[test]
    fn ambiguous_spellings_are_refused() {
        for (raw, says) in [
            (
                "https://good.example.com\\@127.0.0.1/latest/meta-data",
                "backslash",
            ),
            ("https:\\\\example.com/h", "backslash"),
            ("https://example.com/a\\b", "backslash"),
            ("https://example.com/?a=\\", "backslash"),
            ("https:/example.com/h", "must have `//` after `https:`"),
            ("https:example.com/h", "must have `//` after `https:`"),
            ("https:///example.com/h", "must have a host"),
            (
                "https://exa\tmple.com/h",
                "control character (U+0009 at byte 11)",
            ),
            ("https://exa mple.com/h", "whitespace (U+0020"),
            ("https://example.com/h\0", "control character (U+0000"),
            ("https://example.com/h\r\n", "control character (U+000D"),
            ("https://example.com/\u{7f}", "control character (U+007F"),
            ("https://example.com/\u{85}", "control character (U+0085"),
            ("https://example.com\u{3000}/h", "whitespace (U+3000"),
            ("https://example.com/\u{a0}", "whitespace (U+00A0"),
            (" https://example.com", "whitespace (U+0020 at byte 0)"),
            (
                "https://exa\u{200b}mple.com/",
                "invisible formatting character",
            ),
            (
                "https://exa\u{ad}mple.com/",
                "invisible formatting character",
            ),
            (
                "https://example.com/\u{202e}lmth.exe",
                "invisible formatting",
            ),
        ] {
            let err = refused(raw);
            assert!(err.contains(says), "{raw:?}: {err}");
        }
    }

    #[test]
    fn userinfo_and_at_tricks_are_refused() {
        for raw in [
            "https://user@example.com/",
            "https://user:pw@example.com/",
            "https://:pw@example.com/",
            "https://@example.com/",
            "https://a@b@127.0.0.1/",
            "https://good.example.com@127.0.0.1/",
        ] {
            assert!(refused(raw).contains("credentials"), "{raw}");
        }
        for raw in [
            "https://good.example.com?x=@127.0.0.1/",
            "https://good.example.com#@127.0.0.1",
            "https://127.0.0.1?@good.example.com/",
        ] {
            assert!(
                refused(raw).contains("must have a `/` after the host"),
                "{raw}"
            );
        }
        // After a `/`, an `@` is path, query or fragment for every parser.
        for ok in [
            "https://example.com/@me",
            "https://example.com/?mail=a@b.example",
            "https://example.com/#a@b",
        ] {
            assert!(CallbackUrl::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn host_and_port_tricks_are_refused() {
        for (raw, says) in [
            ("https://%31%32%37.0.0.1/", "percent-encode the host"),
            (
                "https://%6c%6f%63%61%6c%68%6f%73%74/",
                "percent-encode the host",
            ),
            ("https://[fe80::1%25eth0]/", "percent-encode the host"),
            ("https://:443/", "must have a host"),
            ("https://", "must have a host"),
            ("https://?x", "must have a host"),
            ("https://[]/", "is not an IPv6 address"),
            ("https://[::1/", "close an IPv6 address"),
            ("https://[::1]evil.example/", "only a `:port` after"),
            ("https://[::1]@good.example/", "credentials"),
            ("https://[v1.x]/", "is not an IPv6 address"),
            ("https://good.example[::1]/", "only around a whole IPv6"),
            ("https://good.example]/", "only around a whole IPv6"),
            ("https://example.com:80:90/", "more than one `:`"),
            ("https://::1/", "more than one `:`"),
            ("https://example.com:/", "port of digits"),
            ("https://example.com:8o/", "port of digits"),
            ("https://example.com:+80/", "port of digits"),
            ("https://[::1]:/", "port of digits"),
            ("https://example.com:65536/", "is not an absolute URL"),
            (
                "https://evil.example;good.example/",
                "may contain only letters",
            ),
            (
                "https://evil.example\u{ff1b}good.example/",
                "may contain only letters",
            ),
            ("https://a*b.example/", "may contain only letters"),
            ("https://a\"b.example/", "may contain only letters"),
            ("https://a{b}.example/", "may contain only letters"),
            ("https://a=b.example/", "may contain only letters"),
            ("https://ex\u{ff0f}ample.com/", "is not an absolute URL"),
            ("https://ex\u{ff20}ample.com/", "is not an absolute URL"),
        ] {
            let err = refused(raw);
            assert!(err.contains(says), "{raw:?}: {err}");
        }
        for ok in [
            "https://[::1]:8443/",
            "https://[::ffff:1.2.3.4]/",
            "https://my_host.example.com/",
            "https://example.com:1/",
        ] {
            assert!(CallbackUrl::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn normalized_length_is_limited_too() {
        // 2048 bytes as written, three times that once percent-encoded.
        let raw = format!("https://example.com/{}", "é".repeat(1000));
        assert!(raw.len() <= MAX_URL_LEN);
        assert!(refused(&raw).contains("once normalized"));
    }

    /// Stored specs were written by versions with looser rules; reading one
    /// normalizes its URL instead of failing.
    #[test]
    fn stored_urls_read_back_normalized() {
        for (stored, read) in [
            (
                "https://good.example.com\\@127.0.0.1/latest/meta-data",
                "https://good.example.com/@127.0.0.1/latest/meta-data",
            ),
            ("https:/example.com/h", "https://example.com/h"),
            ("https:example.com/h", "https://example.com/h"),
            ("https://exa\tmple.com/h", "https://example.com/h"),
            ("https://example.com/h\0", "https://example.com/h"),
            ("https://%6c%6f%63%61%6c%68%6f%73%74/", "https://localhost/"),
            ("https://a;b.example/", "https://a;b.example/"),
        ] {
            let json = serde_json::to_string(stored).unwrap();
            let url: CallbackUrl =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{stored:?}: {e}"));
            assert_eq!(url.as_str(), read, "{stored:?}");
            assert!(CallbackUrl::parse(stored).is_err(), "{stored:?}");
        }
        // What no version accepted still fails to read.
        for never in ["ftp://x.example/", "https://u:p@x.example/", "nope"] {
            let json = serde_json::to_string(never).unwrap();
            let err = serde_json::from_str::<CallbackUrl>(&json).unwrap_err();
            assert!(err.to_string().starts_with("url "), "{never}: {err}");
        }
    }
}
