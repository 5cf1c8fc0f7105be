//! Sends Talkover requests built by [`crate::translate`] through the shared
//! transport and parses the answers.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::{
    AdapterShell, Error, NativePlan, NativeRequest, NativeResource, PathSegment, ProviderAdapter,
    SubscriptionSpec, Transport,
};

use crate::{TalkoverConfig, translate};

/// One `[providers.<key>]` instance of kind `talkover`.
pub struct TalkoverAdapter {
    shell: AdapterShell,
    config: TalkoverConfig,
}

impl TalkoverAdapter {
    /// An adapter for provider instance `key`.
    pub fn new(
        key: impl Into<String>,
        config: TalkoverConfig,
        transport: Arc<dyn Transport>,
    ) -> Self {
        Self {
            shell: AdapterShell::new(crate::kind(), key, &config.base_url, transport),
            config,
        }
    }

    fn token(&self) -> &str {
        self.config.token.expose()
    }

    /// The agent as a path segment. Only dot segments and the empty value
    /// are refused here: [`switchboard_core::Capabilities::check`] holds new
    /// subscriptions to the UUID form, while one stored before that rule
    /// must stay reachable to be changed or deleted.
    fn agent(&self, account: Option<&str>) -> Result<PathSegment, Error> {
        let agent = self.shell.account(account, "the Talkover agent_id")?;
        PathSegment::account(self.shell.key(), agent)
    }

    fn webhook(&self, id: &str) -> Result<PathSegment, Error> {
        PathSegment::native_id(self.shell.key(), id)
    }
}

#[async_trait]
impl ProviderAdapter for TalkoverAdapter {
    switchboard_core::delegate_to_shell!();

    fn plan(
        &self,
        id: &str,
        spec: &SubscriptionSpec,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error> {
        translate::plan(id, spec, events).map(|p| vec![p])
    }

    /// Nothing for an account no request could address; the engine checks
    /// the account before it asks for a preview.
    fn preview(&self, account: Option<&str>, plans: &[NativePlan]) -> Vec<NativeRequest> {
        let Ok(agent) = self.agent(account) else {
            return Vec::new();
        };
        plans
            .iter()
            .map(|p| translate::create_request(self.token(), &agent, p))
            .collect()
    }

    async fn create(
        &self,
        account: Option<&str>,
        plan: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let req = translate::create_request(self.token(), &self.agent(account)?, plan);
        translate::parse_webhook(self.shell.key(), &self.shell.send(&req).await?)
    }

    async fn update(
        &self,
        account: Option<&str>,
        id: &str,
        old: &NativePlan,
        new: &NativePlan,
    ) -> Result<NativeResource, Error> {
        let (agent, webhook) = (self.agent(account)?, self.webhook(id)?);
        match translate::update_request(self.token(), &agent, &webhook, old, new) {
            Some(req) => translate::parse_webhook(self.shell.key(), &self.shell.send(&req).await?),
            None => self.get(account, id).await,
        }
    }

    async fn delete(&self, account: Option<&str>, id: &str) -> Result<(), Error> {
        let req =
            translate::delete_request(self.token(), &self.agent(account)?, &self.webhook(id)?);
        let resp = self.shell.send(&req).await?;
        // Gone already (the webhook, or its whole agent): the goal of a
        // delete is reached.
        if resp.is_success() || resp.status == 404 {
            return Ok(());
        }
        Err(translate::classify_error(self.shell.key(), &resp))
    }

    async fn get(&self, account: Option<&str>, id: &str) -> Result<NativeResource, Error> {
        let req = translate::get_request(self.token(), &self.agent(account)?, &self.webhook(id)?);
        translate::parse_webhook(self.shell.key(), &self.shell.send(&req).await?)
    }

    async fn list(&self, account: Option<&str>) -> Result<Vec<NativeResource>, Error> {
        let req = translate::list_request(self.token(), &self.agent(account)?);
        translate::parse_list(self.shell.key(), &self.shell.send(&req).await?)
    }
}
