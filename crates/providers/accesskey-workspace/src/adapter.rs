//! Sends Bird requests built by [`crate::translate`] through the shared
//! transport and parses the answers. The compound steps Bird's API forces
//! live here: create-then-deactivate (create has no `status`), recreate
//! (for changes PATCH cannot express) and following `nextPageToken`.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::{
    AdapterShell, Error, NativePlan, NativeRequest, NativeResource, PathSegment, ProviderAdapter,
    SubscriptionSpec, Transport, UpstreamErrorKind,
};

use crate::AccessKeyWorkspaceConfig;
use crate::translate::{self, Call, Scope, Update};

/// Pages followed before a list is declared endless: 10,000 pages of 100
/// is far beyond any workspace, so reaching it means the tokens loop.
const MAX_PAGES: usize = 10_000;

/// One `[providers.<key>]` instance of kind `accesskey-workspace`.
pub struct AccessKeyWorkspaceAdapter {
    shell: AdapterShell,
    config: AccessKeyWorkspaceConfig,
}

impl AccessKeyWorkspaceAdapter {
    /// An adapter for provider instance `key`.
    pub fn new(
        key: impl Into<String>,
        config: AccessKeyWorkspaceConfig,
        transport: Arc<dyn Transport>,
    ) -> Self {
        Self {
            shell: AdapterShell::new(crate::kind(), key, &config.base_url, transport),
            config,
        }
    }

    fn access_key(&self) -> &str {
        self.config.access_key.expose()
    }

    /// The workspace (and configured organization) as path segments. Only
    /// dot segments and the empty value are refused here:
    /// [`switchboard_core::Capabilities::check`] holds new subscriptions to
    /// the UUID form, while one stored before that rule must stay
    /// reachable to be changed or deleted. The organization was checked to
    /// be a UUID when the config was read.
    fn scope(&self, account: Option<&str>) -> Result<Scope, Error> {
        let workspace = self.shell.account(account, "the Bird workspace id")?;
        Ok(Scope {
            organization: self
                .config
                .organization_id
                .as_deref()
                .map(PathSegment::new)
                .transpose()?,
            workspace: PathSegment::account(self.shell.key(), workspace)?,
        })
    }

    fn subscription(&self, id: &str) -> Result<PathSegment, Error> {
        PathSegment::native_id(self.shell.key(), id)
    }

    /// Removes a subscription this adapter just created, when a later step
    /// of the same call failed. The caller's error is what matters; a
    /// failure here is logged, as the engine never learned the id.
    async fn discard(&self, scope: &Scope, id: &str) {
        let outcome = match self.subscription(id) {
            Ok(segment) => {
                let req = translate::delete_request(self.access_key(), scope, &segment);
                self.shell.send(&req).await
            }
            Err(e) => Err(e),
        };
        let gone = matches!(&outcome, Ok(resp) if resp.is_success() || resp.status == 404);
        if !gone {
            let status = outcome.as_ref().ok().map(|r| r.status);
            tracing::warn!(provider = %self.shell.key(), native_id = id, status, "could not remove a half-created Bird subscription");
        }
    }

    async fn create_in(&self, scope: &Scope, plan: &NativePlan) -> Result<NativeResource, Error> {
        let req = translate::create_request(self.access_key(), scope, plan);
        let created = translate::parse_subscription(
            self.shell.key(),
            &self.shell.send(&req).await?,
            Call::Create(plan),
        )?;
        if translate::plan_is_active(plan) {
            return Ok(created);
        }
        // Create has no `status` field (providers.md §3.2), so an inactive
        // subscription is created and then switched off. Bird may deliver
        // in between; if switching off fails, the subscription is removed so
        // the caller's error leaves nothing behind.
        let switched = self.switch_off(scope, &created.id, plan).await;
        if switched.is_err() {
            self.discard(scope, &created.id).await;
        }
        switched
    }

    /// `PATCH {"status": "inactive"}` of subscription `id`, now at `plan`.
    async fn switch_off(
        &self,
        scope: &Scope,
        id: &str,
        plan: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let req =
            translate::status_request(self.access_key(), scope, &self.subscription(id)?, false);
        let resp = self.shell.send(&req).await?;
        translate::parse_subscription(self.shell.key(), &resp, Call::Update(plan))
    }

    /// A change PATCH cannot express: the new subscription is created first,
    /// so a refusal leaves the old one untouched, then the old one deleted.
    async fn recreate(
        &self,
        scope: &Scope,
        id: &str,
        new: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let created = self.create_in(scope, new).await?;
        if let Err(e) = self.delete_in(scope, id).await {
            self.discard(scope, &created.id).await;
            return Err(e);
        }
        Ok(created)
    }

    async fn delete_in(&self, scope: &Scope, id: &str) -> Result<(), Error> {
        let req = translate::delete_request(self.access_key(), scope, &self.subscription(id)?);
        let resp = self.shell.send(&req).await?;
        // Gone already: the goal of a delete is reached. The success status
        // is undocumented (providers.md §3.2), so any 2xx counts.
        if resp.is_success() || resp.status == 404 {
            return Ok(());
        }
        Err(translate::classify_error(
            self.shell.key(),
            &resp,
            Call::Delete,
        ))
    }
}

#[async_trait]
impl ProviderAdapter for AccessKeyWorkspaceAdapter {
    switchboard_core::delegate_to_shell!();

    /// Bird subscriptions have no free-text field, so the subscription id
    /// cannot be marked on them; the engine's records are the mapping.
    fn plan(
        &self,
        _id: &str,
        spec: &SubscriptionSpec,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error> {
        translate::plan(spec, events)
    }

    /// Nothing for an account no request could address; the engine checks
    /// the account before it asks for a preview.
    fn preview(&self, account: Option<&str>, plans: &[NativePlan]) -> Vec<NativeRequest> {
        match self.scope(account) {
            Ok(scope) => translate::preview_requests(self.access_key(), &scope, plans),
            Err(_) => Vec::new(),
        }
    }

    async fn create(
        &self,
        account: Option<&str>,
        plan: &NativePlan,
    ) -> Result<NativeResource, Error> {
        self.create_in(&self.scope(account)?, plan).await
    }

    async fn update(
        &self,
        account: Option<&str>,
        id: &str,
        old: &NativePlan,
        new: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let scope = self.scope(account)?;
        let segment = self.subscription(id)?;
        match translate::update_request(self.access_key(), &scope, &segment, old, new) {
            Update::Unchanged => self.get(account, id).await,
            Update::Patch(req) => translate::parse_subscription(
                self.shell.key(),
                &self.shell.send(&req).await?,
                Call::Update(new),
            ),
            Update::Recreate => self.recreate(&scope, id, new).await,
        }
    }

    async fn delete(&self, account: Option<&str>, id: &str) -> Result<(), Error> {
        self.delete_in(&self.scope(account)?, id).await
    }

    async fn get(&self, account: Option<&str>, id: &str) -> Result<NativeResource, Error> {
        let req = translate::get_request(
            self.access_key(),
            &self.scope(account)?,
            &self.subscription(id)?,
        );
        translate::parse_subscription(self.shell.key(), &self.shell.send(&req).await?, Call::Get)
    }

    /// Every subscription of the workspace, following `nextPageToken` until
    /// a page has none (providers.md §3.6).
    async fn list(&self, account: Option<&str>) -> Result<Vec<NativeResource>, Error> {
        let scope = self.scope(account)?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_PAGES {
            let req = translate::list_request(self.access_key(), &scope, token.as_deref());
            let page = translate::parse_list_page(self.shell.key(), &self.shell.send(&req).await?)?;
            out.extend(page.resources);
            match page.next_page_token {
                None => return Ok(out),
                Some(next) if !seen.insert(next.clone()) => {
                    return Err(Error::upstream(
                        self.shell.key(),
                        UpstreamErrorKind::Protocol,
                        None,
                        "Bird repeated a nextPageToken; the list would never end",
                    ));
                }
                Some(next) => token = Some(next),
            }
        }
        Err(Error::upstream(
            self.shell.key(),
            UpstreamErrorKind::Protocol,
            None,
            format!("Bird's list did not end after {MAX_PAGES} pages"),
        ))
    }
}
