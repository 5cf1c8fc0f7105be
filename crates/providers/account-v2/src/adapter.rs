//! Sends Sendblue requests built by [`crate::translate`] through the shared
//! transport and parses the answers.
//!
//! Every write is a read-check-write of the account's one webhook document:
//! the document is read, the entry looked up by its (bucket, URL) identity,
//! and only then is a single entry appended or removed. The engine holds the
//! per-account lock around each call (`serialize_account`), so no other
//! Switchboard write interleaves; entries other tools change in between are
//! the one race that remains, and they are never touched on purpose.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::{
    AdapterShell, Error, NativePlan, NativeRequest, NativeResource, ProviderAdapter,
    SubscriptionSpec, Transport, UpstreamErrorKind,
};

use crate::AccountV2Config;
use crate::translate::{self, Entry};

/// One `[providers.<key>]` instance of kind `account-v2`.
pub struct AccountV2Adapter {
    shell: AdapterShell,
    config: AccountV2Config,
}

impl AccountV2Adapter {
    /// An adapter for provider instance `key`.
    pub fn new(
        key: impl Into<String>,
        config: AccountV2Config,
        transport: Arc<dyn Transport>,
    ) -> Self {
        Self {
            shell: AdapterShell::new(crate::kind(), key, &config.base_url, transport),
            config,
        }
    }

    /// The entries of the account's document, secrets already dropped.
    async fn document(&self) -> Result<Vec<Entry>, Error> {
        let resp = self
            .shell
            .send(&translate::document_request(&self.config))
            .await?;
        translate::parse_document(self.shell.key(), &resp)
    }

    async fn add(&self, plan: &NativePlan) -> Result<(), Error> {
        let resp = self
            .shell
            .send(&translate::add_request(&self.config, plan))
            .await?;
        translate::parse_write(self.shell.key(), &resp)
    }

    async fn remove(&self, entry: &Entry) -> Result<(), Error> {
        let resp = self
            .shell
            .send(&translate::remove_request(&self.config, entry))
            .await?;
        translate::parse_write(self.shell.key(), &resp)
    }

    fn not_found(&self, id: &str) -> Error {
        Error::upstream(
            self.shell.key(),
            UpstreamErrorKind::NotFound,
            None,
            format!("the Sendblue webhook document has no entry `{id}`"),
        )
    }

    /// Puts back what a failed update removed or added, best effort: the
    /// update's own error is what the caller must see, and the engine marks
    /// the subscription failed if the provider state is still off.
    async fn compensate(&self, what: &str, outcome: Result<(), Error>) {
        if let Err(e) = outcome {
            tracing::error!(
                provider = %self.shell.key(),
                step = what,
                error = %e,
                "could not undo a half-applied Sendblue update"
            );
        }
    }
}

#[async_trait]
impl ProviderAdapter for AccountV2Adapter {
    switchboard_core::delegate_to_shell!();

    /// One plan per bucket; `id` is unused because a Sendblue entry has no
    /// free-text field to mark it with.
    fn plan(
        &self,
        _id: &str,
        spec: &SubscriptionSpec,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error> {
        translate::plan(spec, events)
    }

    /// The appends only: each create also reads the document first to check
    /// for a collision, which changes nothing and carries no body.
    fn preview(&self, _account: Option<&str>, plans: &[NativePlan]) -> Vec<NativeRequest> {
        plans
            .iter()
            .map(|p| translate::add_request(&self.config, p))
            .collect()
    }

    /// GET the document, refuse a (bucket, URL) that already exists
    /// (`Error::Conflict`), then POST the one entry.
    async fn create(
        &self,
        _account: Option<&str>,
        plan: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let planned = translate::planned_entry(plan)?;
        let document = self.document().await?;
        translate::check_collision(self.shell.key(), &document, &planned)?;
        self.add(plan).await?;
        Ok(planned.resource())
    }

    /// Nothing is sent when the entry's body is unchanged. A new secret for
    /// the same URL is remove-then-append (Sendblue cannot hold the URL
    /// twice without DELETE removing both); a new URL is append-then-remove,
    /// so deliveries never stop during the change. The returned resource
    /// carries the new identity.
    async fn update(
        &self,
        _account: Option<&str>,
        id: &str,
        old: &NativePlan,
        new: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let Some(current) = Entry::parse_identity(id) else {
            return Err(self.not_found(id));
        };
        let target = translate::planned_entry(new)?;
        if old.body == new.body && current.same_as(&target) {
            return Ok(current.resource());
        }
        let document = self.document().await?;
        let Some(stored) = document.iter().find(|e| e.same_as(&current)).cloned() else {
            // Removed behind Switchboard's back: the engine recreates it.
            return Err(self.not_found(id));
        };
        if stored.same_as(&target) {
            self.remove(&stored).await?;
            if let Err(e) = self.add(new).await {
                // Only the old plan knows the old secret; it is the entry
                // that was removed only if it names the same entry.
                if translate::planned_entry(old).is_ok_and(|o| o.same_as(&stored)) {
                    self.compensate("re-append the old entry", self.add(old).await)
                        .await;
                }
                return Err(e);
            }
        } else {
            translate::check_collision(self.shell.key(), &document, &target)?;
            self.add(new).await?;
            if let Err(e) = self.remove(&stored).await {
                self.compensate("remove the new entry", self.remove(&target).await)
                    .await;
                return Err(e);
            }
        }
        Ok(target.resource())
    }

    /// GET the document and DELETE the entry by (bucket, URL) if it is
    /// there. An id that names no entry (absent, or not an identity at all)
    /// is already deleted.
    async fn delete(&self, _account: Option<&str>, id: &str) -> Result<(), Error> {
        let Some(entry) = Entry::parse_identity(id) else {
            return Ok(());
        };
        let document = self.document().await?;
        match document.iter().find(|e| e.same_as(&entry)) {
            // The stored spelling: Sendblue's DELETE matches URL strings.
            Some(stored) => self.remove(stored).await,
            None => Ok(()),
        }
    }

    async fn get(&self, _account: Option<&str>, id: &str) -> Result<NativeResource, Error> {
        let Some(entry) = Entry::parse_identity(id) else {
            return Err(self.not_found(id));
        };
        self.document()
            .await?
            .iter()
            .find(|e| e.same_as(&entry))
            .map(Entry::resource)
            .ok_or_else(|| self.not_found(id))
    }

    /// Every entry in the account, including those other tools created.
    async fn list(&self, _account: Option<&str>) -> Result<Vec<NativeResource>, Error> {
        Ok(self.document().await?.iter().map(Entry::resource).collect())
    }
}
