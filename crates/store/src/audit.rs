//! The audit log: who changed what, when, with which outcome. Appended by
//! the API after each change; listed oldest first, per tenant or for all.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use switchboard_core::Error;

use crate::AuditEntry;
use crate::entity::audit;
use crate::keyset::Direction;
use crate::store::Store;

impl Store {
    /// Appends an audit entry.
    pub async fn append_audit(&self, e: &AuditEntry) -> Result<(), Error> {
        let am = audit::ActiveModel {
            id: Set(e.id.clone()),
            at: Set(e.at),
            tenant: Set(e.tenant.clone()),
            actor: Set(e.actor.clone()),
            subscription_id: Set(e.subscription_id.clone()),
            operation: Set(e.operation.clone()),
            diff: Set(e.diff.to_string()),
            outcome: Set(e.outcome.clone()),
            request_id: Set(e.request_id.clone()),
        };
        let mut script = self.script();
        script.push(&audit::Entity::insert(am));
        self.run(script).await
    }

    /// A page of the audit log, oldest first; `tenant` narrows it.
    pub async fn list_audit(
        &self,
        tenant: Option<&str>,
        limit: u64,
        after: Option<&str>,
    ) -> Result<(Vec<AuditEntry>, Option<String>), Error> {
        let mut q = audit::Entity::find();
        if let Some(t) = tenant {
            q = q.filter(audit::Column::Tenant.eq(t));
        }
        let (rows, next) = self
            .keyset_page(q, after, limit, Direction::Ascending)
            .await?;
        let entries = rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: r.at,
                tenant: r.tenant,
                actor: r.actor,
                subscription_id: r.subscription_id,
                operation: r.operation,
                diff: serde_json::from_str(&r.diff).unwrap_or(serde_json::Value::Null),
                outcome: r.outcome,
                request_id: r.request_id,
            })
            .collect();
        Ok((entries, next))
    }
}
