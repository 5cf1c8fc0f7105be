//! The claim: a change marks its subscription `pending` under a version
//! check before its first upstream call, so two writers (in any replica)
//! never apply upstream changes to one subscription at once; the change
//! ends its claim by writing the new state (`Store::update`, in
//! `subscriptions`), by releasing it, or with a reconciliation's findings.
//! Each write has an `*_into` form adding it to a [`Script`], so a change's
//! opening and closing transactions (`changes`) carry it with the
//! journal's.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, UpdateMany};
use switchboard_core::operation::Finding;
use switchboard_core::{Error, SubscriptionStatus};

use crate::entity::subscription;
use crate::script::Script;
use crate::store::{Store, json_err};

impl Store {
    /// Ends a claim whose change was abandoned: sets `status` (and
    /// `last_error`) on a pending subscription, version untouched.
    pub async fn release(
        &self,
        tenant: &str,
        id: &str,
        status: SubscriptionStatus,
        last_error: Option<String>,
    ) -> Result<(), Error> {
        let mut script = self.script();
        release_into(&mut script, tenant, id, status, last_error, None);
        self.run(script).await
    }
}

/// Adds the claim to `script`: marks a subscription `pending` if it is at
/// `version` and not already pending, without changing its version, so two
/// writers (in any replica) never apply upstream changes at once. A refused
/// claim is a 409. With `key`, the claim also sets the subscription's key
/// (the unique index refuses a taken one here, before any upstream call);
/// a change that does not complete gives the old one back on release.
pub(crate) fn claim_into(
    script: &mut Script,
    tenant: &str,
    id: &str,
    version: i64,
    key: Option<Option<&str>>,
) {
    let mut claim = subscription::Entity::update_many().col_expr(
        subscription::Column::Status,
        Expr::value(SubscriptionStatus::Pending.as_str()),
    );
    if let Some(key) = key {
        claim = claim.col_expr(
            subscription::Column::Key,
            Expr::value(key.map(str::to_owned)),
        );
    }
    let claim = claim
        .filter(subscription::Column::Tenant.eq(tenant))
        .filter(subscription::Column::Id.eq(id))
        .filter(subscription::Column::Version.eq(version))
        .filter(subscription::Column::Status.ne(SubscriptionStatus::Pending.as_str()));
    script.guard(
        &claim,
        Error::Conflict(format!(
            "subscription `{id}` has a change in progress or was just changed; retry with its current state"
        )),
    );
}

/// Adds [`Store::release`] to `script`; with `key`, the subscription's
/// key is set back to it too.
pub(crate) fn release_into(
    script: &mut Script,
    tenant: &str,
    id: &str,
    status: SubscriptionStatus,
    last_error: Option<String>,
    key: Option<Option<&str>>,
) {
    let mut release = claimed(tenant, id)
        .col_expr(subscription::Column::Status, Expr::value(status.as_str()))
        .col_expr(subscription::Column::LastError, Expr::value(last_error));
    if let Some(key) = key {
        release = release.col_expr(
            subscription::Column::Key,
            Expr::value(key.map(str::to_owned)),
        );
    }
    script.push(&release);
}

/// Adds the end of a reconciliation's claim to `script`: its findings,
/// without changing the version (a pass that changed nothing the caller
/// asked for must not invalidate their ETag).
pub(crate) fn finish_reconciliation_into(
    script: &mut Script,
    tenant: &str,
    id: &str,
    status: SubscriptionStatus,
    findings: &[Finding],
) -> Result<(), Error> {
    script.push(
        &claimed(tenant, id)
            .col_expr(subscription::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                subscription::Column::Findings,
                Expr::value(serde_json::to_string(findings).map_err(json_err)?),
            )
            .col_expr(
                subscription::Column::LastReconciledAt,
                Expr::value(Some(Utc::now())),
            ),
    );
    Ok(())
}

/// An update of `tenant`'s subscription `id` that applies only while it is
/// claimed (`pending`): how a claim ends.
fn claimed(tenant: &str, id: &str) -> UpdateMany<subscription::Entity> {
    subscription::Entity::update_many()
        .filter(subscription::Column::Tenant.eq(tenant))
        .filter(subscription::Column::Id.eq(id))
        .filter(subscription::Column::Status.eq(SubscriptionStatus::Pending.as_str()))
}
