//! The delivery-time half of the callback URL policy: a DNS resolver that
//! hands the HTTP client only the addresses `[policy]` admits.
//!
//! At subscription time the policy judges the URL's text alone (core's
//! `policy.rs`: no DNS there). The relay is the one who connects, so here
//! the name is resolved and every address judged by the same ranges and
//! `allowed_subnets`. Because the filtering happens inside the client's
//! resolver, the connection is made to exactly the addresses that were
//! checked: there is no second lookup an attacker's DNS could answer
//! differently (DNS rebinding). Addresses the policy refuses are dropped;
//! when none is left, resolution fails with [`AddressRefused`], which the
//! sender reports as a refused attempt. IP-literal URLs never reach a
//! resolver; the sender judges them directly.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use switchboard_core::policy::UrlPolicy;

/// Every address a host name resolved to was refused by the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{host}` resolves only to refused addresses: {reason}")]
pub struct AddressRefused {
    /// The host name.
    pub host: String,
    /// The policy's reason for the first refused address.
    pub reason: String,
}

/// The operating system's resolver (`getaddrinfo` on tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Resolves with `inner` and keeps only the addresses `policy` admits.
pub struct PolicyResolver {
    policy: Arc<UrlPolicy>,
    inner: Arc<dyn Resolve>,
}

impl PolicyResolver {
    /// A resolver filtering `inner`'s answers through `policy`.
    pub fn new(policy: Arc<UrlPolicy>, inner: Arc<dyn Resolve>) -> Self {
        Self { policy, inner }
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let policy = Arc::clone(&self.policy);
        let answer = self.inner.resolve(name);
        Box::pin(async move {
            let mut first_refusal = None;
            let admitted: Vec<SocketAddr> = answer
                .await?
                .filter(|addr| match policy.check_address(addr.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        first_refusal.get_or_insert(reason);
                        false
                    }
                })
                .collect();
            if admitted.is_empty() {
                let reason = first_refusal.unwrap_or_else(|| "no addresses".into());
                return Err(Box::new(AddressRefused { host, reason }) as _);
            }
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use super::*;

    /// Answers from a fixed table, like a DNS server under test control.
    struct Table(HashMap<&'static str, Vec<IpAddr>>);

    impl Resolve for Table {
        fn resolve(&self, name: Name) -> Resolving {
            let addrs: Vec<SocketAddr> = self
                .0
                .get(name.as_str())
                .into_iter()
                .flatten()
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            Box::pin(async move { Ok(Box::new(addrs.into_iter()) as Addrs) })
        }
    }

    fn resolver(policy: UrlPolicy) -> PolicyResolver {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let table = Table(HashMap::from([
            ("public.example", vec![ip("93.184.216.34")]),
            ("metadata.example", vec![ip("169.254.169.254")]),
            ("mixed.example", vec![ip("10.0.0.5"), ip("93.184.216.34")]),
            ("loopback.example", vec![ip("127.0.0.1"), ip("::1")]),
        ]));
        PolicyResolver::new(Arc::new(policy), Arc::new(table))
    }

    async fn resolve(r: &PolicyResolver, host: &str) -> Result<Vec<IpAddr>, String> {
        match r.resolve(host.parse().unwrap()).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(e) => Err(e
                .downcast_ref::<AddressRefused>()
                .map_or_else(|| format!("other: {e}"), |r| r.reason.clone())),
        }
    }

    #[tokio::test]
    async fn only_admitted_addresses_are_handed_out() {
        let r = resolver(UrlPolicy::default());
        assert_eq!(
            resolve(&r, "public.example").await,
            Ok(vec!["93.184.216.34".parse().unwrap()])
        );
        assert_eq!(
            resolve(&r, "mixed.example").await,
            Ok(vec!["93.184.216.34".parse().unwrap()])
        );
        let err = resolve(&r, "metadata.example").await.unwrap_err();
        assert!(
            err.starts_with("points at a cloud metadata address"),
            "{err}"
        );
        let err = resolve(&r, "loopback.example").await.unwrap_err();
        assert!(err.starts_with("points at a loopback address"), "{err}");
        assert_eq!(
            resolve(&r, "nowhere.example").await,
            Err("no addresses".into())
        );
    }

    #[tokio::test]
    async fn allowed_subnets_and_allow_private_admit_addresses() {
        let subnets: UrlPolicy = toml::from_str(r#"allowed_subnets = ["127.0.0.1"]"#).unwrap();
        let r = resolver(subnets);
        assert_eq!(
            resolve(&r, "loopback.example").await,
            Ok(vec!["127.0.0.1".parse().unwrap()])
        );
        let open = UrlPolicy {
            allow_private: true,
            ..UrlPolicy::default()
        };
        assert_eq!(
            resolve(&resolver(open), "loopback.example")
                .await
                .map(|a| a.len()),
            Ok(2)
        );
    }
}
