//! Sends Telegent requests built by [`crate::translate`] through the shared
//! transport, and owns the per-endpoint token cache: one token per
//! `ApiEndpoint` (providers.md §1.1), minted once however many calls need it
//! at the same time, reused until shortly before `tokenExpiry`, and re-minted
//! once when Telegent refuses it.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use switchboard_core::{
    AdapterShell, Error, NativePlan, NativeRequest, NativeResource, NativeResponse,
    ProviderAdapter, Secret, SubscriptionSpec, Transport,
};
use tokio::sync::Mutex;

use crate::TelegentConfig;
use crate::config::Credentials;
use crate::translate::{self, Endpoint, TokenReuse};

/// Shown by `preview` in place of a token that is minted when the request
/// is really sent (redacted like any credential).
const PREVIEW_TOKEN: &str = "minted-per-endpoint";

/// A token in the cache.
struct Cached {
    token: Secret,
    reuse: TokenReuse,
}

impl Cached {
    fn usable(&self) -> bool {
        match self.reuse {
            TokenReuse::Until(deadline) => Utc::now() < deadline,
            TokenReuse::UntilRefused => true,
        }
    }
}

/// One slot per endpoint. The async mutex is held while minting, so calls
/// that need the same endpoint's token wait for that one mint and reuse it.
#[derive(Default)]
struct TokenCache {
    slots: [Mutex<Option<Cached>>; 5],
}

impl TokenCache {
    fn slot(&self, endpoint: Endpoint) -> &Mutex<Option<Cached>> {
        let index = match endpoint {
            Endpoint::Create => 0,
            Endpoint::Update => 1,
            Endpoint::Delete => 2,
            Endpoint::Get => 3,
            Endpoint::List => 4,
        };
        &self.slots[index]
    }
}

/// One `[providers.<key>]` instance of kind `telegent`.
pub struct TelegentAdapter {
    shell: AdapterShell,
    config: TelegentConfig,
    tokens: TokenCache,
}

impl TelegentAdapter {
    /// An adapter for provider instance `key`. Every request, token minting
    /// included, goes through `transport` under `key`, so the instance's
    /// rate limit counts them all (providers.md §1.6: 50/min).
    pub fn new(
        key: impl Into<String>,
        config: TelegentConfig,
        transport: Arc<dyn Transport>,
    ) -> Self {
        Self {
            shell: AdapterShell::new(crate::kind(), key, &config.base_url, transport),
            config,
            tokens: TokenCache::default(),
        }
    }

    fn account<'a>(&self, account: Option<&'a str>) -> Result<&'a str, Error> {
        self.shell.account(account, "the Telegent AccountId")
    }

    /// The token for `endpoint`: the cached one while usable and not the
    /// one just `refused`, else a new one.
    async fn token(&self, endpoint: Endpoint, refused: Option<&Secret>) -> Result<Secret, Error> {
        let (account_key, account_secret) = match &self.config.credentials {
            Credentials::Token(token) => return Ok(token.clone()),
            Credentials::AccountKey {
                account_key,
                account_secret,
            } => (account_key, account_secret),
        };
        let mut slot = self.tokens.slot(endpoint).lock().await;
        if let Some(cached) = slot.as_ref() {
            let is_refused = refused.is_some_and(|r| r == &cached.token);
            if !is_refused && cached.usable() {
                return Ok(cached.token.clone());
            }
        }
        *slot = None;
        let req = translate::token_request(
            account_key,
            account_secret,
            &endpoint.api_endpoint(&self.config.base_url),
        );
        let minted = translate::parse_token(self.shell.key(), &self.shell.send(&req).await?)?;
        let reuse = translate::token_reuse(minted.expiry, Utc::now());
        match reuse {
            TokenReuse::Until(deadline) => tracing::debug!(
                provider = %self.shell.key(),
                endpoint = endpoint.path(),
                reuse_until = %deadline,
                "minted a Telegent management token"
            ),
            TokenReuse::UntilRefused => tracing::warn!(
                provider = %self.shell.key(),
                endpoint = endpoint.path(),
                expiry = ?minted.expiry,
                "Telegent's tokenExpiry is missing, unreadable or already past when read as UTC; the token is reused until refused"
            ),
        }
        *slot = Some(Cached {
            token: minted.token.clone(),
            reuse,
        });
        Ok(minted.token)
    }

    /// Sends the request `build` makes with `endpoint`'s token. A token
    /// Telegent refuses (401/403) is re-minted once and the request sent
    /// again: an unauthorized request was not applied, so repeating even a
    /// create is safe. A second refusal is an operator problem (502).
    async fn call(
        &self,
        endpoint: Endpoint,
        build: impl Fn(&str) -> NativeRequest,
    ) -> Result<NativeResponse, Error> {
        let token = self.token(endpoint, None).await?;
        let resp = self.shell.send(&build(token.expose())).await?;
        if !translate::is_token_refusal(resp.status) {
            return Ok(resp);
        }
        if let Credentials::Token(_) = self.config.credentials {
            return Err(translate::refusal_error(
                self.shell.key(),
                &resp,
                endpoint,
                false,
            ));
        }
        tracing::info!(
            provider = %self.shell.key(),
            endpoint = endpoint.path(),
            status = resp.status,
            "Telegent refused the management token; re-minting once"
        );
        let token = self.token(endpoint, Some(&token)).await?;
        let resp = self.shell.send(&build(token.expose())).await?;
        if translate::is_token_refusal(resp.status) {
            return Err(translate::refusal_error(
                self.shell.key(),
                &resp,
                endpoint,
                true,
            ));
        }
        Ok(resp)
    }
}

#[async_trait]
impl ProviderAdapter for TelegentAdapter {
    switchboard_core::delegate_to_shell!();

    fn plan(
        &self,
        id: &str,
        spec: &SubscriptionSpec,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error> {
        translate::plan(id, spec, events)
    }

    /// The create requests only: a token mint precedes each endpoint's
    /// first call and is not shown.
    fn preview(&self, _account: Option<&str>, plans: &[NativePlan]) -> Vec<NativeRequest> {
        let token = match &self.config.credentials {
            Credentials::Token(token) => token.expose(),
            Credentials::AccountKey { .. } => PREVIEW_TOKEN,
        };
        plans
            .iter()
            .map(|p| translate::create_request(token, p))
            .collect()
    }

    async fn create(
        &self,
        _account: Option<&str>,
        plan: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let resp = self
            .call(Endpoint::Create, |t| translate::create_request(t, plan))
            .await?;
        translate::parse_webhook(self.shell.key(), &resp, Endpoint::Create).map(|c| c.resource)
    }

    /// Read-merge-write: Telegent's update semantics are undocumented
    /// (providers.md §1.6), so the current webhook is read, the new plan is
    /// laid over its fields and every field is sent.
    async fn update(
        &self,
        account: Option<&str>,
        id: &str,
        old: &NativePlan,
        new: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let account = self.account(account)?;
        let resp = self
            .call(Endpoint::Get, |t| translate::get_request(t, account, id))
            .await?;
        let current = translate::parse_webhook(self.shell.key(), &resp, Endpoint::Get)?;
        if translate::update_is_noop(&current, old, new) {
            return Ok(current.resource);
        }
        let body = translate::update_body(id, &current.fields, new);
        let resp = self
            .call(Endpoint::Update, |t| {
                translate::update_request(t, body.clone())
            })
            .await?;
        translate::parse_webhook(self.shell.key(), &resp, Endpoint::Update).map(|c| c.resource)
    }

    async fn delete(&self, account: Option<&str>, id: &str) -> Result<(), Error> {
        let account = self.account(account)?;
        let resp = self
            .call(Endpoint::Delete, |t| {
                translate::delete_request(t, account, id)
            })
            .await?;
        translate::parse_delete(self.shell.key(), &resp)
    }

    async fn get(&self, account: Option<&str>, id: &str) -> Result<NativeResource, Error> {
        let account = self.account(account)?;
        let resp = self
            .call(Endpoint::Get, |t| translate::get_request(t, account, id))
            .await?;
        translate::parse_webhook(self.shell.key(), &resp, Endpoint::Get).map(|c| c.resource)
    }

    async fn list(&self, account: Option<&str>) -> Result<Vec<NativeResource>, Error> {
        let account = self.account(account)?;
        let resp = self
            .call(Endpoint::List, |t| translate::list_request(t, account))
            .await?;
        translate::parse_list(self.shell.key(), &resp)
    }
}
