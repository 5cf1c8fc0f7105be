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

impl Caller {
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
