//! The callback URL policy (`[policy]` in config): which callback URLs a
//! tenant may register, beyond the shape rules of [`CallbackUrl::parse`].
//!
//! A subscription makes a *provider* send HTTP requests, with Switchboard's
//! provider credentials, to a URL the caller chose. Without a policy a
//! tenant can aim those deliveries at loopback, private networks or a cloud
//! metadata endpoint (server-side request forgery by proxy). The defaults
//! therefore allow only `https` URLs whose host is a public address or an
//! ordinary DNS name.
//!
//! **DNS is not resolved at subscription time.** Switchboard never connects
//! to a callback URL: the provider resolves the name and connects, from its
//! own network, at delivery time. A lookup here would answer for the wrong
//! network, at the wrong moment (a name can be re-pointed after it was
//! checked: DNS rebinding), and would add a network dependency to a pure
//! validation. The check is still worth doing: it refuses, up front and with
//! a precise message, every URL whose host *itself* says it is internal: IP
//! literals in non-public ranges (however the `url` crate's WHATWG parser
//! lets them be spelled: `0x7f.1`, `2130706433`, `[::ffff:10.0.0.1]`; the
//! policy judges the host [`CallbackUrl`] parsed, which is also the host of
//! the normalized URL stored and sent upstream) and
//! names that by convention only resolve inside a private network
//! (`localhost`, `*.local`, `*.internal`, single-label names). Those are the
//! cheap, common SSRF attempts and the common mistakes; what remains (a
//! public name that resolves to a private address) is the provider's egress
//! filtering to enforce.
//!
//! Operators who deliver to internal receivers on purpose list those
//! networks in `allowed_subnets` (IP literals only), or set `allow_private`
//! to switch the address and host-name rules off entirely.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer};
use url::{Host, Url};

use crate::CallbackUrl;
use crate::subscription::MAX_URL_LEN;

/// Why a refused address is refused, said once so every message agrees.
const ADDRESS_HINT: &str = "loopback/private/link-local/metadata ranges are refused unless listed in [policy] allowed_subnets";

/// Why a refused host name is refused. `allowed_subnets` cannot help here:
/// a name is never resolved, so it never has an address to compare.
const NAME_HINT: &str = "names that only resolve inside a private network are refused unless [policy] allow_private is set; DNS is not resolved here, so allowed_subnets does not apply to names";

/// Which callback URLs are accepted. Deserialized from the `[policy]` table;
/// every key is optional and the defaults are the safe choice.
///
/// ```toml
/// [policy]
/// allow_http = false
/// allow_private = false
/// allowed_subnets = ["10.1.0.0/16", "fd12:3456::/48", "192.168.7.20"]
/// max_len = 2048
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UrlPolicy {
    /// Accept `http://` callbacks. Default false: deliveries carry event
    /// data and often credentials, so plain text is opt-in.
    pub allow_http: bool,
    /// Accept any host: private, loopback, link-local, metadata addresses
    /// and internal host names. Default false. Meant for development setups
    /// where the receiver runs next to the provider simulator.
    pub allow_private: bool,
    /// Networks that are accepted even though they are not public, while
    /// `allow_private` stays false (an explicit allow-list, e.g. the subnet
    /// of an internal receiver that a self-hosted provider can reach).
    /// Written as strings: `"10.1.0.0/16"`, `"fd12::/48"`, or a bare address
    /// for a single host. Applies to IP literals only.
    #[serde(deserialize_with = "deserialize_subnets")]
    pub allowed_subnets: Vec<IpNet>,
    /// Longest accepted URL in bytes. Default 2048; [`CallbackUrl::parse`]
    /// already refuses anything longer than that, so this can only tighten.
    pub max_len: usize,
}

impl Default for UrlPolicy {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private: false,
            allowed_subnets: Vec::new(),
            max_len: MAX_URL_LEN,
        }
    }
}

/// Parses `allowed_subnets` entries, naming the entry that is wrong (serde's
/// own `IpNet` support would need a feature flag and says less).
fn deserialize_subnets<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<IpNet>, D::Error> {
    let raw = Vec::<String>::deserialize(de)?;
    raw.iter()
        .enumerate()
        .map(|(i, s)| {
            parse_subnet(s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "allowed_subnets[{i}]: `{s}` is not a subnet like \"10.1.0.0/16\" or an IP address"
                ))
            })
        })
        .collect()
}

/// `"10.1.0.0/16"`, or a bare address meaning just that host. Host bits
/// below the prefix are dropped (`10.1.2.3/16` is `10.1.0.0/16`), which is
/// what `contains` would do with them anyway.
fn parse_subnet(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

impl UrlPolicy {
    /// Checks a (shape-valid) callback URL against the policy. The error is
    /// a message for the `/url` field, naming the rule and the config key
    /// that relaxes it. The host judged is [`CallbackUrl::host`], the parse
    /// the URL holds (where `0x7f.1` already became `127.0.0.1`), never a
    /// second parse of some other spelling of the URL.
    pub fn check(&self, url: &CallbackUrl) -> Result<(), String> {
        self.check_parsed(url.as_url())
    }

    /// [`Self::check`] on any parsed URL, so the rules that
    /// `CallbackUrl::parse` makes unreachable are still exercised by the tests.
    fn check_parsed(&self, url: &Url) -> Result<(), String> {
        let text = url.as_str();
        if text.len() > self.max_len {
            return Err(format!(
                "is {} bytes long; at most {} are allowed ([policy] max_len)",
                text.len(),
                self.max_len
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err("must use https (set [policy] allow_http to permit http)".into());
            }
            other => return Err(format!("must use https, not `{other}`")),
        }
        // CallbackUrl::parse refuses these already; checked again so the
        // policy holds for any URL, however it was built.
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain credentials; use `auth` instead".into());
        }
        if self.allow_private {
            return Ok(());
        }
        match url.host() {
            None => Err("must have a host".into()),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(name)) => check_name(name),
        }
    }

    /// Checks one resolved address of a callback host, for a sender that
    /// resolves the name itself and must connect only to addresses this
    /// policy admits (relay deliveries: `switchboard-relay`'s resolver).
    /// The same ranges and `allowed_subnets` as an IP-literal URL;
    /// `allow_private` admits every address.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        self.check_ip(ip)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        let Some(found) = classify(ip) else {
            return Ok(());
        };
        let listed = |addr: IpAddr| self.allowed_subnets.iter().any(|n| n.contains(&addr));
        // An embedded IPv4 address is where the connection really goes, so
        // an allow-list entry for it counts as well as one for the v6 form.
        if listed(ip) || found.embedded.is_some_and(|v4| listed(IpAddr::V4(v4))) {
            return Ok(());
        }
        let shown = found.embedded.map_or(ip, IpAddr::V4);
        let mut msg = format!("points at {} address {shown}", found.kind);
        // Say how an IPv6 address carries the IPv4 host it was judged as.
        if let (Some(via), IpAddr::V6(v6)) = (found.via, ip) {
            let _ = write!(msg, ", {via} {v6}");
        }
        let _ = write!(msg, " ({ADDRESS_HINT})");
        Err(msg)
    }
}

/// A non-public range an address fell in.
struct Found {
    /// Article and adjective: "a private", "an unspecified".
    kind: &'static str,
    /// The IPv4 address a v6 address carries (mapped, NAT64, 6to4).
    embedded: Option<Ipv4Addr>,
    /// How the v4 address was carried, for the message.
    via: Option<&'static str>,
}

/// IPv4 ranges that are not public unicast, most specific first (the
/// metadata addresses sit inside link-local, CGNAT and IETF ranges and get
/// their own, clearer name). Sources: the IANA special-purpose registry
/// (RFC 6890 and successors) and the cloud vendors' documentation.
const V4_RANGES: &[(Ipv4Net, &str)] = &[
    // AWS, GCP, Azure, OpenStack, DigitalOcean instance metadata.
    (v4(169, 254, 169, 254, 32), "a cloud metadata"),
    // Alibaba Cloud instance metadata.
    (v4(100, 100, 100, 200, 32), "a cloud metadata"),
    // Oracle Cloud instance metadata (v1 endpoint).
    (v4(192, 0, 0, 192, 32), "a cloud metadata"),
    (v4(0, 0, 0, 0, 32), "an unspecified"),
    (v4(0, 0, 0, 0, 8), "a \"this network\" (0.0.0.0/8)"),
    (v4(127, 0, 0, 0, 8), "a loopback"),
    (v4(10, 0, 0, 0, 8), "a private"),
    (v4(172, 16, 0, 0, 12), "a private"),
    (v4(192, 168, 0, 0, 16), "a private"),
    (v4(100, 64, 0, 0, 10), "a carrier-grade NAT (100.64.0.0/10)"),
    (v4(169, 254, 0, 0, 16), "a link-local"),
    (
        v4(192, 0, 0, 0, 24),
        "an IETF protocol assignment (192.0.0.0/24)",
    ),
    (v4(192, 0, 2, 0, 24), "a documentation"),
    (v4(198, 51, 100, 0, 24), "a documentation"),
    (v4(203, 0, 113, 0, 24), "a documentation"),
    (
        v4(192, 88, 99, 0, 24),
        "a deprecated 6to4 relay (192.88.99.0/24)",
    ),
    (v4(198, 18, 0, 0, 15), "a benchmarking (198.18.0.0/15)"),
    (v4(224, 0, 0, 0, 4), "a multicast"),
    (v4(255, 255, 255, 255, 32), "a broadcast"),
    (v4(240, 0, 0, 0, 4), "a reserved (240.0.0.0/4)"),
];

/// IPv6 ranges that are not public unicast and carry no IPv4 address.
/// Anything outside 2000::/3 that is not listed here is refused as well:
/// IANA allocates global unicast from 2000::/3 only.
const V6_RANGES: &[(Ipv6Net, &str)] = &[
    // AWS instance metadata over IPv6 (Nitro).
    (
        v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        "a cloud metadata",
    ),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "an unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "a loopback"),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "a private (unique local)",
    ),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "a link-local"),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "a private (deprecated site-local)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "a multicast"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "a documentation"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "a documentation"),
    (
        v6([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48),
        "a benchmarking (2001:2::/48)",
    ),
    // Teredo embeds an obfuscated client address: refuse rather than guess.
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        "a Teredo tunnel (2001::/32)",
    ),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "a private (local-use NAT64 64:ff9b:1::/48)",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "a discard-only (100::/64)",
    ),
    // Deprecated IPv4-compatible addresses (::a.b.c.d); `::` and `::1`
    // matched above.
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "a reserved (IPv4-compatible ::/96)",
    ),
];

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(s: [u16; 8], prefix: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        prefix,
    )
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4_RANGES
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, kind)| *kind)
}

/// The IPv4 address an IPv6 address stands for, where connecting to the v6
/// address reaches that v4 host: IPv4-mapped (`::ffff:a.b.c.d`), the NAT64
/// well-known prefix (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<(Ipv4Addr, &'static str)> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some((v4, "as IPv4-mapped IPv6"));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some((tail(), "as NAT64 IPv6"));
    }
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return Some((v4, "as 6to4 IPv6"));
    }
    None
}

fn classify(ip: IpAddr) -> Option<Found> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4).map(|kind| Found {
            kind,
            embedded: None,
            via: None,
        }),
        IpAddr::V6(v6) => {
            if let Some((v4, via)) = embedded_v4(v6) {
                // The carrier prefix is public plumbing; the v4 host decides.
                return classify_v4(v4).map(|kind| Found {
                    kind,
                    embedded: Some(v4),
                    via: Some(via),
                });
            }
            let kind = V6_RANGES
                .iter()
                .find(|(net, _)| net.contains(&v6))
                .map(|(_, kind)| *kind)
                .or_else(|| {
                    (v6.segments()[0] & 0xe000 != 0x2000)
                        .then_some("a reserved (outside global unicast 2000::/3)")
                })?;
            Some(Found {
                kind,
                embedded: None,
                via: None,
            })
        }
    }
}

/// Refuses host names that by convention resolve only inside a private
/// network or to the machine itself. `name` is the `url` crate's normalized
/// form: lowercase, IDNA-mapped, percent-decoded.
fn check_name(name: &str) -> Result<(), String> {
    // `localhost.` and `localhost..` name the same host as `localhost`.
    let bare = name.trim_end_matches('.');
    let kind = if bare == "localhost" || bare.ends_with(".localhost") {
        "a loopback host name"
    } else if matches!(
        bare,
        "metadata" | "metadata.google.internal" | "instance-data" | "instance-data.ec2.internal"
    ) {
        "a cloud metadata host name"
    } else if bare.ends_with(".local") {
        "an mDNS (.local) host name"
    } else if bare.ends_with(".internal") {
        "an internal (.internal) host name"
    } else if bare.ends_with(".home.arpa") {
        "a home network (.home.arpa) host name"
    } else if !bare.contains('.') {
        "a single-label host name"
    } else {
        return Ok(());
    };
    Err(format!("points at {kind} `{name}` ({NAME_HINT})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> CallbackUrl {
        CallbackUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn check(policy: &UrlPolicy, s: &str) -> Result<(), String> {
        policy.check(&url(s))
    }

    fn refused(s: &str) -> String {
        check(&UrlPolicy::default(), s).expect_err(s)
    }

    fn with_subnets(subnets: &[&str]) -> UrlPolicy {
        UrlPolicy {
            allowed_subnets: subnets.iter().map(|s| parse_subnet(s).unwrap()).collect(),
            ..UrlPolicy::default()
        }
    }

    #[test]
    fn defaults_are_the_safe_choice() {
        let p = UrlPolicy::default();
        assert!(!p.allow_http && !p.allow_private && p.allowed_subnets.is_empty());
        assert_eq!(p.max_len, 2048);
    }

    #[test]
    fn public_https_urls_pass() {
        for ok in [
            "https://billing.example.com/hooks",
            "https://example.com:8443/hooks?x=1#f",
            "https://8.8.8.8/x",
            "https://[2606:4700::1111]/x",
            "https://[::ffff:8.8.8.8]/x",
            "https://[2002:808:808::1]/x",
            "https://[64:ff9b::808:808]/x",
            "https://xn--bcher-kva.example/",
            "https://a.b.c.d.example.co.uk./hooks",
            "https://172.32.0.1/",
            "https://100.128.0.1/",
            "https://192.169.0.1/",
        ] {
            assert_eq!(check(&UrlPolicy::default(), ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn http_needs_allow_http() {
        assert_eq!(
            refused("http://example.com/hooks"),
            "must use https (set [policy] allow_http to permit http)"
        );
        let p = UrlPolicy {
            allow_http: true,
            ..UrlPolicy::default()
        };
        assert_eq!(check(&p, "http://example.com/hooks"), Ok(()));
        // allow_http does not relax the address rules.
        assert!(check(&p, "http://127.0.0.1/").is_err());
    }

    #[test]
    fn length_is_limited_by_max_len() {
        let p = UrlPolicy {
            max_len: 30,
            ..UrlPolicy::default()
        };
        assert_eq!(check(&p, "https://example.com/1234567890"), Ok(()));
        let err = check(&p, "https://example.com/12345678901").unwrap_err();
        assert_eq!(
            err,
            "is 31 bytes long; at most 30 are allowed ([policy] max_len)"
        );
    }

    #[test]
    fn ports_are_allowed() {
        assert_eq!(
            check(&UrlPolicy::default(), "https://example.com:1/"),
            Ok(())
        );
        assert_eq!(
            check(&UrlPolicy::default(), "https://example.com:65535/"),
            Ok(())
        );
    }

    #[test]
    fn private_address_message_is_precise() {
        assert_eq!(
            refused("https://10.0.0.5/hooks"),
            "points at a private address 10.0.0.5 (loopback/private/link-local/metadata ranges are refused unless listed in [policy] allowed_subnets)"
        );
    }

    #[test]
    fn non_public_ipv4_ranges_are_refused() {
        for (u, kind) in [
            ("https://127.0.0.1/", "a loopback"),
            ("https://127.255.255.254:8443/", "a loopback"),
            ("https://10.255.255.255/", "a private"),
            ("https://172.16.0.1/", "a private"),
            ("https://172.31.255.255/", "a private"),
            ("https://192.168.1.1/", "a private"),
            ("https://169.254.1.1/", "a link-local"),
            (
                "https://169.254.169.254/latest/meta-data/",
                "a cloud metadata",
            ),
            ("https://100.100.100.200/", "a cloud metadata"),
            ("https://192.0.0.192/", "a cloud metadata"),
            ("https://100.64.0.1/", "a carrier-grade NAT"),
            ("https://100.127.255.255/", "a carrier-grade NAT"),
            ("https://0.0.0.0/", "an unspecified"),
            ("https://0.1.2.3/", "a \"this network\""),
            ("https://255.255.255.255/", "a broadcast"),
            ("https://224.0.0.1/", "a multicast"),
            ("https://239.255.255.250/", "a multicast"),
            ("https://192.0.2.10/", "a documentation"),
            ("https://198.51.100.10/", "a documentation"),
            ("https://203.0.113.10/", "a documentation"),
            ("https://198.18.0.1/", "a benchmarking"),
            ("https://192.0.0.8/", "an IETF protocol assignment"),
            ("https://192.88.99.1/", "a deprecated 6to4 relay"),
            ("https://240.0.0.1/", "a reserved"),
        ] {
            let err = refused(u);
            assert!(err.starts_with(&format!("points at {kind}")), "{u}: {err}");
            assert!(err.contains("allowed_subnets"), "{u}: {err}");
        }
    }

    #[test]
    fn non_public_ipv6_ranges_are_refused() {
        for (u, kind) in [
            ("https://[::1]/", "a loopback"),
            ("https://[::1]:8443/x", "a loopback"),
            ("https://[::]/", "an unspecified"),
            ("https://[fc00::1]/", "a private"),
            ("https://[fd12:3456::1]/", "a private"),
            ("https://[fe80::1]/", "a link-local"),
            ("https://[febf::1]/", "a link-local"),
            ("https://[fec0::1]/", "a private (deprecated site-local)"),
            ("https://[fd00:ec2::254]/", "a cloud metadata"),
            ("https://[ff02::1]/", "a multicast"),
            ("https://[2001:db8::1]/", "a documentation"),
            ("https://[3fff::1]/", "a documentation"),
            ("https://[2001:2::1]/", "a benchmarking"),
            ("https://[2001::1]/", "a Teredo tunnel"),
            ("https://[100::1]/", "a discard-only"),
            ("https://[64:ff9b:1::1]/", "a private (local-use NAT64"),
            ("https://[::10.0.0.1]/", "a reserved (IPv4-compatible"),
            ("https://[4000::1]/", "a reserved (outside global unicast"),
        ] {
            let err = refused(u);
            assert!(err.starts_with(&format!("points at {kind}")), "{u}: {err}");
        }
    }

    #[test]
    fn ipv6_carrying_ipv4_is_judged_by_the_ipv4_host() {
        assert_eq!(
            refused("https://[::ffff:10.0.0.1]/"),
            "points at a private address 10.0.0.1, as IPv4-mapped IPv6 ::ffff:10.0.0.1 (loopback/private/link-local/metadata ranges are refused unless listed in [policy] allowed_subnets)"
        );
        let err = refused("https://[::ffff:7f00:1]/");
        assert!(
            err.starts_with("points at a loopback address 127.0.0.1"),
            "{err}"
        );
        let err = refused("https://[::ffff:169.254.169.254]/");
        assert!(
            err.starts_with("points at a cloud metadata address"),
            "{err}"
        );
        let err = refused("https://[64:ff9b::a9fe:a9fe]/");
        assert!(
            err.starts_with("points at a cloud metadata address 169.254.169.254, as NAT64 IPv6"),
            "{err}"
        );
        let err = refused("https://[2002:c0a8:101::1]/");
        assert!(
            err.starts_with("points at a private address 192.168.1.1, as 6to4 IPv6"),
            "{err}"
        );
    }

    /// What the WHATWG parser makes of odd IPv4 spellings: the URL holds
    /// (and the policy judges) the normalized address, so none slips through.
    #[test]
    fn odd_ipv4_spellings_are_normalized_first() {
        let p = UrlPolicy {
            allow_http: true,
            ..UrlPolicy::default()
        };
        for (spelling, ip) in [
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://2130706433/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://0x7f000001/", "127.0.0.1"),
            ("http://127.0.0.1./", "127.0.0.1"),
            ("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254"),
            ("http://2852039166/", "169.254.169.254"),
            ("http://10.0.1/", "10.0.0.1"),
            ("http://0/", "0.0.0.0"),
            ("http://127\u{3002}0\u{3002}0\u{3002}1/", "127.0.0.1"),
            ("http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/", "127.0.0.1"),
        ] {
            let parsed = url(spelling);
            assert_eq!(
                parsed.host(),
                Host::<&str>::Ipv4(ip.parse().unwrap()),
                "{spelling}"
            );
            assert_eq!(parsed.as_str(), format!("http://{ip}/"), "{spelling}");
            let err = p.check(&parsed).expect_err(spelling);
            assert!(
                err.starts_with("points at a") && err.contains(&format!(" address {ip} (")),
                "{spelling}: {err}"
            );
        }
        // A percent-encoded host never reaches the policy.
        assert!(CallbackUrl::parse("http://%31%32%37.0.0.1/").is_err());
    }

    #[test]
    fn internal_host_names_are_refused() {
        for (u, kind) in [
            ("https://localhost/", "a loopback host name"),
            ("https://LOCALHOST:8443/", "a loopback host name"),
            ("https://localhost./", "a loopback host name"),
            ("https://localhost../", "a loopback host name"),
            ("https://api.localhost/", "a loopback host name"),
            (
                "https://\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}/",
                "a loopback host name",
            ),
            ("https://printer.local/", "an mDNS (.local) host name"),
            (
                "https://db.corp.internal/",
                "an internal (.internal) host name",
            ),
            (
                "https://metadata.google.internal/computeMetadata/v1/",
                "a cloud metadata host name",
            ),
            ("https://metadata/", "a cloud metadata host name"),
            ("https://instance-data/", "a cloud metadata host name"),
            (
                "https://nas.home.arpa/",
                "a home network (.home.arpa) host name",
            ),
            ("https://intranet/", "a single-label host name"),
            ("https://example./", "a single-label host name"),
        ] {
            let err = refused(u);
            assert!(
                err.starts_with(&format!("points at {kind} `")),
                "{u}: {err}"
            );
            assert!(err.contains("[policy] allow_private"), "{u}: {err}");
        }
        // Look-alikes that are ordinary public names.
        for ok in [
            "https://localhost.example.com/",
            "https://local.example.com/",
            "https://internal.example.com/",
            "https://metadata.example.com/",
        ] {
            assert_eq!(check(&UrlPolicy::default(), ok), Ok(()), "{ok}");
        }
        // A dotted path does not make a single-label host dotted.
        assert!(refused("https://intranet/x.example.com").contains("single-label"));
    }

    #[test]
    fn allow_private_permits_every_host_but_not_http() {
        let p = UrlPolicy {
            allow_private: true,
            ..UrlPolicy::default()
        };
        for ok in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/",
            "https://localhost:9000/",
            "https://svc.internal/",
            "https://intranet/",
        ] {
            assert_eq!(check(&p, ok), Ok(()), "{ok}");
        }
        assert!(check(&p, "http://localhost/").is_err());
    }

    #[test]
    fn allowed_subnets_admit_exactly_their_addresses() {
        let p = with_subnets(&["10.1.0.0/16", "fd12:3456::/32", "192.168.7.20"]);
        assert_eq!(check(&p, "https://10.1.2.3/"), Ok(()));
        assert_eq!(check(&p, "https://[fd12:3456::9]/"), Ok(()));
        assert_eq!(check(&p, "https://192.168.7.20:8443/"), Ok(()));
        // The embedded v4 of a mapped address is what gets reached.
        assert_eq!(check(&p, "https://[::ffff:10.1.0.1]/"), Ok(()));
        assert!(check(&p, "https://10.2.0.1/").is_err());
        assert!(check(&p, "https://192.168.7.21/").is_err());
        assert!(check(&p, "https://[fd12:3457::1]/").is_err());
        // Names are never resolved, so subnets do not admit them.
        assert!(check(&p, "https://localhost/").is_err());
        // An allow-list entry does not relax https.
        assert!(check(&p, "http://10.1.2.3/").is_err());
        // Metadata can be admitted deliberately, but only explicitly.
        let meta = with_subnets(&["169.254.169.254/32"]);
        assert_eq!(check(&meta, "https://169.254.169.254/"), Ok(()));
        assert!(check(&meta, "https://169.254.169.253/").is_err());
    }

    #[test]
    fn resolved_addresses_follow_the_literal_rules() {
        let p = with_subnets(&["10.1.0.0/16"]);
        assert_eq!(p.check_address("10.1.2.3".parse().unwrap()), Ok(()));
        assert_eq!(p.check_address("93.184.216.34".parse().unwrap()), Ok(()));
        let err = p.check_address("127.0.0.1".parse().unwrap()).unwrap_err();
        assert!(
            err.starts_with("points at a loopback address 127.0.0.1"),
            "{err}"
        );
        assert!(
            p.check_address("::ffff:169.254.169.254".parse().unwrap())
                .is_err()
        );
        let open = UrlPolicy {
            allow_private: true,
            ..UrlPolicy::default()
        };
        assert_eq!(
            open.check_address("169.254.169.254".parse().unwrap()),
            Ok(())
        );
    }

    #[test]
    fn credentials_are_refused_even_past_parse() {
        // CallbackUrl::parse (and serde, which reads stored URLs) refuses
        // userinfo, so the policy's own check is exercised on a bare Url.
        let p = UrlPolicy {
            allow_private: true,
            allow_http: true,
            ..UrlPolicy::default()
        };
        let judge = |s: &str| p.check_parsed(&Url::parse(s).unwrap());
        for creds in [
            "https://u:p@example.com/",
            "http://u@localhost/",
            "https://:p@example.com/",
        ] {
            assert_eq!(
                judge(creds),
                Err("must not contain credentials; use `auth` instead".into()),
                "{creds}"
            );
        }
        assert!(judge("ftp://example.com/").unwrap_err().contains("`ftp`"));
        let strict = UrlPolicy::default();
        assert_eq!(
            strict.check_parsed(&Url::parse("data:text/plain,x").unwrap()),
            Err("must use https, not `data`".into())
        );
    }

    /// The policy judges the host the URL holds, which is the host of its
    /// normalized text: the caller's spelling is not parsed a second time.
    #[test]
    fn the_judged_host_is_the_normalized_one() {
        for raw in [
            "https://Hooks.Example.COM:443/a/./b/../c",
            "https://0x7f.1/",
            "https://[::FFFF:10.0.0.1]/",
            "https://bücher.example/",
        ] {
            let u = url(raw);
            let reparsed = Url::parse(u.as_str()).unwrap();
            assert_eq!(Some(u.host()), reparsed.host(), "{raw}");
            assert_eq!(
                check(&UrlPolicy::default(), raw),
                UrlPolicy::default().check_parsed(&reparsed),
                "{raw}"
            );
        }
        // The length limit applies to what is stored and sent.
        let p = UrlPolicy {
            max_len: 20,
            ..UrlPolicy::default()
        };
        assert_eq!(check(&p, "https://x.example:443"), Ok(()));
        assert!(check(&p, "https://x.example/1234").is_err());
    }

    #[test]
    fn deserializes_from_toml_with_defaults() {
        let p: UrlPolicy = toml::from_str("").unwrap();
        assert_eq!(p, UrlPolicy::default());
        let p: UrlPolicy = toml::from_str(
            r#"
allow_http = true
allowed_subnets = ["10.1.0.0/16", "fd00::/8", "192.168.7.20", "10.9.8.7/8"]
max_len = 500
"#,
        )
        .unwrap();
        assert!(p.allow_http && !p.allow_private);
        assert_eq!(p.max_len, 500);
        let nets: Vec<String> = p.allowed_subnets.iter().map(ToString::to_string).collect();
        assert_eq!(
            nets,
            ["10.1.0.0/16", "fd00::/8", "192.168.7.20/32", "10.0.0.0/8"]
        );
    }

    #[test]
    fn deserialize_rejects_unknown_keys_and_bad_subnets() {
        let err = toml::from_str::<UrlPolicy>("allow_https = true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `allow_https`"), "{err}");
        let err = toml::from_str::<UrlPolicy>(r#"allowed_subnets = ["10.0.0.0/8", "10.0.0.0/33"]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("allowed_subnets[1]: `10.0.0.0/33`"), "{err}");
        assert!(toml::from_str::<UrlPolicy>(r#"allowed_subnets = ["intranet"]"#).is_err());
    }
}
