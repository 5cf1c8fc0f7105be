//! Bearer tokens → callers. Tokens are configured as SHA-256 hashes; a
//! presented token is hashed and compared against every configured hash in
//! constant time, so neither a match nor its position leaks through timing.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_core::Error;

use crate::AppState;

/// Scope for reading subscriptions.
pub const READ: &str = "subscriptions:read";
/// Scope for changing subscriptions.
pub const WRITE: &str = "subscriptions:write";
/// Scope that implies every other.
pub const ADMIN: &str = "admin";

/// One configured API token.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    /// Human name (appears in logs).
    pub name: String,
    /// Tenant whose subscriptions the token reaches.
    pub tenant: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// Granted scopes.
    pub scopes: Vec<String>,
}

/// SHA-256 of a token, as configured in `token_sha256` (hex).
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Token name.
    pub name: String,
    /// Tenant.
    pub tenant: String,
    scopes: Vec<String>,
}

/// Per-token request rate: a token bucket of `burst` requests refilled at
/// `per_second`, one bucket per token name. Held in memory, so with
/// several replicas each enforces it separately.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl RateLimiter {
    /// `per_second` sustained, `burst` at once; `per_second == 0` disables it.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Default::default(),
        }
    }

    /// Takes one request from `key`'s bucket, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), Error> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = std::time::Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = map.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.per_second).ceil().max(1.0);
            Err(Error::RateLimited {
                retry_after_secs: wait as u64,
            })
        }
    }
}

impl Caller {
    /// Whether the token may act on every tenant.
    pub fn is_admin(&self) -> bool {
        self.scopes.iter().any(|s| s == ADMIN)
    }

    /// The tenant whose subscription `id` this caller may act on: its own,
    /// or for an admin the subscription's owner. Another tenant's
    /// subscription is then simply not found (404, not 403).
    pub async fn tenant_for(&self, state: &AppState, id: &str) -> Result<String, Error> {
        if self.is_admin() {
            state.store.tenant_of(id).await
        } else {
            Ok(self.tenant.clone())
        }
    }

    /// Fails with 403 unless the token has `scope` (or `admin`).
    pub fn require(&self, scope: &'static str) -> Result<(), Error> {
        if self.scopes.iter().any(|s| s == scope || s == ADMIN) {
            Ok(())
        } else {
            Err(Error::Forbidden { scope })
        }
    }
}

/// Finds the token entry for a presented token.
pub fn authenticate<'a>(tokens: &'a [TokenEntry], presented: &str) -> Option<&'a TokenEntry> {
    let hash = hash_token(presented);
    let mut found = None;
    for t in tokens {
        if bool::from(t.sha256.ct_eq(&hash)) {
            found = Some(t);
        }
    }
    found
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = crate::problem::ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())
            })
            .ok_or(Error::Unauthenticated)?;
        let entry = authenticate(&state.tokens, presented).ok_or(Error::Unauthenticated)?;
        state.rate_limiter.check(&entry.name)?;
        Ok(Caller {
            name: entry.name.clone(),
            tenant: entry.tenant.clone(),
            scopes: entry.scopes.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_the_burst_then_asks_to_wait() {
        let rl = RateLimiter::new(1, 3);
        for _ in 0..3 {
            rl.check("a").unwrap();
        }
        assert!(matches!(
            rl.check("a"),
            Err(Error::RateLimited {
                retry_after_secs: 1
            })
        ));
        rl.check("b").unwrap();
        RateLimiter::new(0, 0).check("a").unwrap();
    }

    #[test]
    fn finds_the_matching_token_only() {
        let tokens = vec![
            TokenEntry {
                name: "a".into(),
                tenant: "ta".into(),
                sha256: hash_token("alpha"),
                scopes: vec![READ.into()],
            },
            TokenEntry {
                name: "b".into(),
                tenant: "tb".into(),
                sha256: hash_token("beta"),
                scopes: vec![ADMIN.into()],
            },
        ];
        assert_eq!(authenticate(&tokens, "beta").unwrap().tenant, "tb");
        assert!(authenticate(&tokens, "gamma").is_none());
        assert!(authenticate(&tokens, "").is_none());
    }
}
