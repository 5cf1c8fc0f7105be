//! What reconciliation by account reads and keeps: the (provider instance,
//! account) pairs that have subscriptions, walked by index seeks; one
//! account's subscriptions in keyset chunks and the native ids all of them
//! recorded; the bulk "checked, nothing found" write; and each pass's
//! progress and resume point (`reconciliation_passes`), with what the last
//! check of every account found and cost (`reconciliation_accounts`).
//!
//! Accounts are keys here: the spec's account, or `""` where the kind has
//! none (the credentials are the account), so that every key compares and
//! sorts. [`account_of`] turns a key back into the spec's account.
//!
//! These functions work across tenants: the pass is Switchboard's own
//! background work, like the admin listing.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use switchboard_core::{Error, SubscriptionStatus};

use crate::SubscriptionRecord;
use crate::entity::{
    native_resource, operation, reconciliation_account, reconciliation_pass, subscription,
};
use crate::keyset::Direction;
use crate::store::{Store, db_err, json_err};
use crate::subscriptions::row_aad;

/// Rows whose account is filled in per statement.
const FILL_CHUNK: u64 = 500;

/// The spec's account behind an account key (`""` is none).
pub fn account_of(key: &str) -> Option<&str> {
    (!key.is_empty()).then_some(key)
}

/// Where a pass stands with one provider instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassCursor {
    /// The last account key checked; the pass resumes after it.
    pub after: Option<String>,
    /// Whether every account of the instance was checked.
    pub done: bool,
}

/// A reconciliation pass and its progress so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pass {
    /// `rcp_<ulid>`.
    pub id: String,
    /// When its first tick began.
    pub started_at: DateTime<Utc>,
    /// When its last account was checked; `None` while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// Intervals it has run in so far.
    pub ticks: u64,
    /// Accounts with subscriptions when it began.
    pub accounts_total: u64,
    /// Accounts checked so far.
    pub accounts_done: u64,
    /// Subscriptions compared so far.
    pub subscriptions_checked: u64,
    /// Differences found so far.
    pub findings: u64,
    /// Journalled per-subscription repairs so far.
    pub repairs: u64,
    /// Requests sent to providers so far.
    pub upstream_calls: u64,
    /// Accounts whose check failed so far.
    pub errors: u64,
    /// Per provider instance: where the pass resumes.
    pub cursors: BTreeMap<String, PassCursor>,
}

/// What checking one account found and cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountCheck {
    /// Provider instance key.
    pub provider: String,
    /// Account key (`""` for none).
    pub account: String,
    /// The pass that checked it.
    pub pass_id: String,
    /// When the check ended.
    pub checked_at: DateTime<Utc>,
    /// Subscriptions compared.
    pub subscriptions_checked: u64,
    /// Differences found.
    pub findings: u64,
    /// Journalled per-subscription repairs.
    pub repairs: u64,
    /// Requests sent to the provider, repairs included.
    pub upstream_calls: u64,
    /// Of those, the listing's (pages and token mints).
    pub list_calls: u64,
    /// Why the check failed, if it did.
    pub error: Option<String>,
}

/// The reconciler's state, for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconciliationStatus {
    /// The pass under way, if any.
    pub current: Option<Pass>,
    /// The last pass that finished.
    pub last_finished: Option<Pass>,
    /// The accounts checked last, newest first.
    pub recent_accounts: Vec<AccountCheck>,
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn pass_from_row(row: reconciliation_pass::Model) -> Result<Pass, Error> {
    Ok(Pass {
        cursors: serde_json::from_str(&row.cursors).map_err(json_err)?,
        id: row.id,
        started_at: row.started_at,
        finished_at: row.finished_at,
        ticks: count(row.ticks),
        accounts_total: count(row.accounts_total),
        accounts_done: count(row.accounts_done),
        subscriptions_checked: count(row.subscriptions_checked),
        findings: count(row.findings),
        repairs: count(row.repairs),
        upstream_calls: count(row.upstream_calls),
        errors: count(row.errors),
    })
}

fn check_from_row(row: reconciliation_account::Model) -> AccountCheck {
    AccountCheck {
        provider: row.provider,
        account: row.account,
        pass_id: row.pass_id,
        checked_at: row.checked_at,
        subscriptions_checked: count(row.subscriptions_checked),
        findings: count(row.findings),
        repairs: count(row.repairs),
        upstream_calls: count(row.upstream_calls),
        list_calls: count(row.list_calls),
        error: row.error,
    }
}

/// The subscriptions of one account.
fn of_account(provider: &str, account: &str) -> sea_orm::Select<subscription::Entity> {
    subscription::Entity::find()
        .filter(subscription::Column::Provider.eq(provider))
        .filter(subscription::Column::Account.eq(account))
}

impl Store {
    /// Fills in the account key of `provider`'s rows that have none yet
    /// (written before the column existed, or by a writer that left it
    /// out), from their sealed specs; returns how many. A spec that cannot
    /// be opened is skipped (and logged), not fatal: the pass goes on.
    pub async fn fill_accounts(&self, provider: &str) -> Result<u64, Error> {
        let mut after = String::new();
        let mut filled = 0;
        loop {
            let rows = subscription::Entity::find()
                .filter(subscription::Column::Provider.eq(provider))
                .filter(subscription::Column::Account.is_null())
                .filter(subscription::Column::Id.gt(after.as_str()))
                .order_by_asc(subscription::Column::Id)
                .limit(FILL_CHUNK)
                .all(&self.db)
                .await
                .map_err(db_err)?;
            let Some(last) = rows.last() else {
                return Ok(filled);
            };
            after = last.id.clone();
            let mut by_account: HashMap<String, Vec<String>> = HashMap::new();
            for row in &rows {
                match self.sealed_account(row) {
                    Ok(key) => by_account.entry(key).or_default().push(row.id.clone()),
                    Err(e) => {
                        tracing::warn!(sub = %row.id, error = %e, "cannot read the account of a subscription")
                    }
                }
            }
            for (key, ids) in by_account {
                filled += subscription::Entity::update_many()
                    .col_expr(subscription::Column::Account, Expr::value(Some(key)))
                    .filter(subscription::Column::Id.is_in(ids))
                    .filter(subscription::Column::Account.is_null())
                    .exec(&self.db)
                    .await
                    .map_err(db_err)?
                    .rows_affected;
            }
        }
    }

    /// The account key in a row's sealed spec.
    fn sealed_account(&self, row: &subscription::Model) -> Result<String, Error> {
        let json = self
            .cipher
            .open(&row.spec, &row_aad(&row.tenant, &row.id))?;
        let spec: serde_json::Value = serde_json::from_slice(&json).map_err(json_err)?;
        Ok(spec["account"].as_str().unwrap_or_default().to_owned())
    }

    /// How many (provider, account) pairs of `providers` have
    /// subscriptions (rows whose account is known).
    pub async fn count_accounts(&self, providers: &[String]) -> Result<u64, Error> {
        subscription::Entity::find()
            .select_only()
            .column(subscription::Column::Provider)
            .column(subscription::Column::Account)
            .distinct()
            .filter(subscription::Column::Provider.is_in(providers.iter().cloned()))
            .filter(subscription::Column::Account.is_not_null())
            .count(&self.read)
            .await
            .map_err(db_err)
    }

    /// The first account key of `provider` after `after` (from the start
    /// with `None`), in key order: one seek on the (provider, account)
    /// index.
    pub async fn next_account(
        &self,
        provider: &str,
        after: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let mut select = subscription::Entity::find()
            .select_only()
            .column(subscription::Column::Account)
            .filter(subscription::Column::Provider.eq(provider))
            .filter(subscription::Column::Account.is_not_null());
        if let Some(a) = after {
            select = select.filter(subscription::Column::Account.gt(a));
        }
        let next: Option<Option<String>> = select
            .order_by_asc(subscription::Column::Account)
            .limit(1)
            .into_tuple()
            .one(&self.read)
            .await
            .map_err(db_err)?;
        Ok(next.flatten())
    }

    /// Up to `limit` subscriptions of one account after id `after`, with
    /// their native records, and the cursor of the next chunk.
    pub async fn account_subscriptions(
        &self,
        provider: &str,
        account: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<SubscriptionRecord>, Option<String>), Error> {
        let (rows, next) = self
            .keyset_page(
                of_account(provider, account),
                after,
                limit,
                Direction::Ascending,
            )
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut natives: HashMap<String, Vec<native_resource::Model>> = HashMap::new();
        if !ids.is_empty() {
            for n in native_resource::Entity::find()
                .filter(native_resource::Column::SubscriptionId.is_in(ids))
                .order_by_asc(native_resource::Column::Key)
                .all(&self.read)
                .await
                .map_err(db_err)?
            {
                natives
                    .entry(n.subscription_id.clone())
                    .or_default()
                    .push(n);
            }
        }
        let records = rows
            .into_iter()
            .map(|row| {
                let mine = natives.remove(&row.id).unwrap_or_default();
                self.record_from_rows(row, mine)
            })
            .collect::<Result<_, _>>()?;
        Ok((records, next))
    }

    /// Every native id recorded by any subscription of one account (the
    /// owners reconciliation checks a listing against), in one query.
    pub async fn account_native_ids(
        &self,
        provider: &str,
        account: &str,
    ) -> Result<HashSet<String>, Error> {
        let ids: Vec<String> = native_resource::Entity::find()
            .select_only()
            .column(native_resource::Column::NativeId)
            .inner_join(subscription::Entity)
            .filter(subscription::Column::Provider.eq(provider))
            .filter(subscription::Column::Account.eq(account))
            .into_tuple()
            .all(&self.read)
            .await
            .map_err(db_err)?;
        Ok(ids.into_iter().collect())
    }

    /// Whether a journalled change of subscription `id` was running at or
    /// after `since` (or still is): what it did upstream may postdate a
    /// listing taken at `since`.
    pub async fn changed_since(
        &self,
        tenant: &str,
        id: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, Error> {
        Ok(operation::Entity::find()
            .filter(operation::Column::Tenant.eq(tenant))
            .filter(operation::Column::SubscriptionId.eq(id))
            .filter(
                Condition::any()
                    .add(operation::Column::FinishedAt.is_null())
                    .add(operation::Column::FinishedAt.gte(since)),
            )
            .one(&self.db)
            .await
            .map_err(db_err)?
            .is_some())
    }

    /// Marks subscriptions `ids` as compared with nothing found, in one
    /// statement: `last_reconciled_at` now, findings cleared, and `status`
    /// (a `degraded` one that is clean again becomes `status`). Only rows
    /// still at `status` or `degraded` and unchanged since `unchanged_since`
    /// (when the listing was taken) are written; version and `updated_at`
    /// stay, so no caller's ETag moves. Returns how many were written.
    pub async fn mark_reconciled(
        &self,
        status: SubscriptionStatus,
        ids: &[String],
        unchanged_since: DateTime<Utc>,
    ) -> Result<u64, Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        let res = subscription::Entity::update_many()
            .col_expr(subscription::Column::Status, Expr::value(status.as_str()))
            .col_expr(subscription::Column::Findings, Expr::value("[]"))
            .col_expr(
                subscription::Column::LastReconciledAt,
                Expr::value(Some(Utc::now())),
            )
            .filter(subscription::Column::Id.is_in(ids.iter().cloned()))
            .filter(
                subscription::Column::Status
                    .is_in([status.as_str(), SubscriptionStatus::Degraded.as_str()]),
            )
            .filter(subscription::Column::UpdatedAt.lt(unchanged_since))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected)
    }

    /// The pass under way, or a new one over `providers` (counting their
    /// accounts); either way this tick is counted.
    pub async fn begin_tick(&self, providers: &[String]) -> Result<Pass, Error> {
        let current = reconciliation_pass::Entity::find()
            .filter(reconciliation_pass::Column::FinishedAt.is_null())
            .order_by_desc(reconciliation_pass::Column::Id)
            .one(&self.db)
            .await
            .map_err(db_err)?;
        let id = match current {
            Some(row) => row.id,
            None => {
                let id = format!("rcp_{}", ulid::Ulid::new());
                let total = self.count_accounts(providers).await?;
                reconciliation_pass::Entity::insert(reconciliation_pass::ActiveModel {
                    id: Set(id.clone()),
                    started_at: Set(Utc::now()),
                    finished_at: Set(None),
                    ticks: Set(0),
                    accounts_total: Set(signed(total)),
                    accounts_done: Set(0),
                    subscriptions_checked: Set(0),
                    findings: Set(0),
                    repairs: Set(0),
                    upstream_calls: Set(0),
                    errors: Set(0),
                    cursors: Set("{}".into()),
                })
                .exec_without_returning(&self.db)
                .await
                .map_err(db_err)?;
                id
            }
        };
        reconciliation_pass::Entity::update_many()
            .col_expr(
                reconciliation_pass::Column::Ticks,
                Expr::col(reconciliation_pass::Column::Ticks).add(1),
            )
            .filter(reconciliation_pass::Column::Id.eq(id.as_str()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        self.reconciliation_pass(&id).await
    }

    /// One pass.
    pub async fn reconciliation_pass(&self, id: &str) -> Result<Pass, Error> {
        let row = reconciliation_pass::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::NotFound {
                what: "reconciliation pass",
                id: id.to_owned(),
            })?;
        pass_from_row(row)
    }

    /// What the last check of one account cost in listing calls, if it
    /// was ever checked.
    pub async fn account_list_calls(
        &self,
        provider: &str,
        account: &str,
    ) -> Result<Option<u64>, Error> {
        let row =
            reconciliation_account::Entity::find_by_id((provider.to_owned(), account.to_owned()))
                .one(&self.read)
                .await
                .map_err(db_err)?;
        Ok(row.map(|r| count(r.list_calls)))
    }

    /// Records one account's check in one transaction: the account's row,
    /// the pass's counters, and its cursor (the pass resumes after this
    /// account, on any replica, after a restart).
    pub async fn record_account_check(&self, check: &AccountCheck) -> Result<(), Error> {
        let txn = self.db.begin().await.map_err(db_err)?;
        let row = reconciliation_account::ActiveModel {
            provider: Set(check.provider.clone()),
            account: Set(check.account.clone()),
            pass_id: Set(check.pass_id.clone()),
            checked_at: Set(check.checked_at),
            subscriptions_checked: Set(signed(check.subscriptions_checked)),
            findings: Set(signed(check.findings)),
            repairs: Set(signed(check.repairs)),
            upstream_calls: Set(signed(check.upstream_calls)),
            list_calls: Set(signed(check.list_calls)),
            error: Set(check.error.clone()),
        };
        use reconciliation_account::Column as A;
        reconciliation_account::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([A::Provider, A::Account])
                    .update_columns([
                        A::PassId,
                        A::CheckedAt,
                        A::SubscriptionsChecked,
                        A::Findings,
                        A::Repairs,
                        A::UpstreamCalls,
                        A::ListCalls,
                        A::Error,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
        let mut cursors = self.cursors_in(&txn, &check.pass_id).await?;
        cursors.entry(check.provider.clone()).or_default().after = Some(check.account.clone());
        use reconciliation_pass::Column as P;
        let add = |c: P, n: u64| (c, Expr::col(c).add(signed(n)));
        let mut update = reconciliation_pass::Entity::update_many().col_expr(
            P::Cursors,
            Expr::value(serde_json::to_string(&cursors).map_err(json_err)?),
        );
        for (c, e) in [
            add(P::AccountsDone, 1),
            add(P::SubscriptionsChecked, check.subscriptions_checked),
            add(P::Findings, check.findings),
            add(P::Repairs, check.repairs),
            add(P::UpstreamCalls, check.upstream_calls),
            add(P::Errors, u64::from(check.error.is_some())),
        ] {
            update = update.col_expr(c, e);
        }
        update
            .filter(P::Id.eq(check.pass_id.as_str()))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        txn.commit().await.map_err(db_err)
    }

    async fn cursors_in(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        pass_id: &str,
    ) -> Result<BTreeMap<String, PassCursor>, Error> {
        let row = reconciliation_pass::Entity::find_by_id(pass_id.to_owned())
            .one(txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::NotFound {
                what: "reconciliation pass",
                id: pass_id.to_owned(),
            })?;
        serde_json::from_str(&row.cursors).map_err(json_err)
    }

    /// Marks every account of `provider` checked in pass `pass_id`; once
    /// all of `providers` are, the pass is finished. Returns the pass.
    pub async fn finish_provider(
        &self,
        pass_id: &str,
        provider: &str,
        providers: &[String],
    ) -> Result<Pass, Error> {
        let txn = self.db.begin().await.map_err(db_err)?;
        let mut cursors = self.cursors_in(&txn, pass_id).await?;
        cursors.entry(provider.to_owned()).or_default().done = true;
        let finished = providers
            .iter()
            .all(|p| cursors.get(p).is_some_and(|c| c.done));
        use reconciliation_pass::Column as P;
        reconciliation_pass::Entity::update_many()
            .col_expr(
                P::Cursors,
                Expr::value(serde_json::to_string(&cursors).map_err(json_err)?),
            )
            .col_expr(P::FinishedAt, Expr::value(finished.then(Utc::now)))
            .filter(P::Id.eq(pass_id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        self.reconciliation_pass(pass_id).await
    }

    /// The pass under way, the last finished one, and the `recent`
    /// accounts checked last.
    pub async fn reconciliation_status(&self, recent: u64) -> Result<ReconciliationStatus, Error> {
        use reconciliation_pass::Column as P;
        let latest = |finished: bool| {
            let done = if finished {
                P::FinishedAt.is_not_null()
            } else {
                P::FinishedAt.is_null()
            };
            reconciliation_pass::Entity::find()
                .filter(done)
                .order_by_desc(P::Id)
                .one(&self.read)
        };
        let current = latest(false)
            .await
            .map_err(db_err)?
            .map(pass_from_row)
            .transpose()?;
        let last_finished = latest(true)
            .await
            .map_err(db_err)?
            .map(pass_from_row)
            .transpose()?;
        let recent_accounts = reconciliation_account::Entity::find()
            .order_by_desc(reconciliation_account::Column::CheckedAt)
            .limit(recent)
            .all(&self.read)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(check_from_row)
            .collect();
        Ok(ReconciliationStatus {
            current,
            last_finished,
            recent_accounts,
        })
    }
}
