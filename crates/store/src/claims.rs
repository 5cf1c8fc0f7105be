//! The claim: a change marks its subscription `pending` under a version
//! check before its first upstream call, so two writers (in any replica)
//! never apply upstream changes to one subscription at once; the change
//! ends its claim by writing the new state (`Store::update`, in
//! `subscriptions`), by releasing it, or with a reconciliation's findings.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, UpdateMany};
use switchboard_core::operation::Finding;
use switchboard_core::{Error, SubscriptionStatus};

use crate::entity::subscription;
use crate::store::{Store, db_err, json_err};

impl Store {
    /// Marks a subscription `pending` if it is at `version` and not already
    /// pending, without changing its version: the claim that keeps two
    /// writers (in any replica) from applying upstream changes at once.
    pub async fn claim(&self, tenant: &str, id: &str, version: i64) -> Result<(), Error> {
        let res = subscription::Entity::update_many()
            .col_expr(
                subscription::Column::Status,
                Expr::value(SubscriptionStatus::Pending.as_str()),
            )
            .filter(subscription::Column::Tenant.eq(tenant))
            .filter(subscription::Column::Id.eq(id))
            .filter(subscription::Column::Version.eq(version))
            .filter(subscription::Column::Status.ne(SubscriptionStatus::Pending.as_str()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 1 {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "subscription `{id}` has a change in progress or was just changed; retry with its current state"
            )))
        }
    }

    /// Ends a claim whose change was abandoned: sets `status` (and
    /// `last_error`) on a pending subscription, version untouched.
    pub async fn release(
        &self,
        tenant: &str,
        id: &str,
        status: SubscriptionStatus,
        last_error: Option<String>,
    ) -> Result<(), Error> {
        claimed(tenant, id)
            .col_expr(subscription::Column::Status, Expr::value(status.as_str()))
            .col_expr(subscription::Column::LastError, Expr::value(last_error))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Ends a reconciliation's claim with what it found, without changing
    /// the version: a pass that changed nothing the caller asked for must
    /// not invalidate their ETag. Repaired natives were recorded already.
    pub async fn finish_reconciliation(
        &self,
        tenant: &str,
        id: &str,
        status: SubscriptionStatus,
        findings: &[Finding],
    ) -> Result<(), Error> {
        claimed(tenant, id)
            .col_expr(subscription::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                subscription::Column::Findings,
                Expr::value(serde_json::to_string(findings).map_err(json_err)?),
            )
            .col_expr(
                subscription::Column::LastReconciledAt,
                Expr::value(Some(Utc::now())),
            )
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// An update of `tenant`'s subscription `id` that applies only while it is
/// claimed (`pending`): how a claim ends.
fn claimed(tenant: &str, id: &str) -> UpdateMany<subscription::Entity> {
    subscription::Entity::update_many()
        .filter(subscription::Column::Tenant.eq(tenant))
        .filter(subscription::Column::Id.eq(id))
        .filter(subscription::Column::Status.eq(SubscriptionStatus::Pending.as_str()))
}
