//! Steps whose outcome was unknown, kept for the sweep.
//!
//! A request that may have been applied although its answer never came
//! (timeout, lost reply, crash) is verified at once by the change that sent
//! it. The provider may still apply it later than anyone can wait for, so
//! the step is also written here: the sweep looks at it again, from
//! `not_before` (the request can no longer be in flight) until `until`,
//! and removes or adopts what landed late. Taking a due row pushes its
//! `next_check_at` on with a compare-and-set, so one replica checks it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use switchboard_core::Error;
use switchboard_core::operation::StepAction;

use crate::entity::verification;
use crate::store::{Store, db_err};

/// A step to re-verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// `vf_<ulid>`.
    pub id: String,
    /// The journal entry whose spec describes the plan.
    pub op_id: String,
    /// Tenant.
    pub tenant: String,
    /// Subscription.
    pub subscription_id: String,
    /// Plan key.
    pub key: String,
    /// What the step asked for: [`StepAction::Create`], `Update` or `Delete`.
    pub action: StepAction,
    /// The resource an update or delete addressed.
    pub native_id: Option<String>,
    /// The plan is the entry's "before" spec (an undo recreating it).
    pub from_before: bool,
    /// Until then the request may be in flight.
    pub not_before: DateTime<Utc>,
    /// The last moment the step is watched.
    pub until: DateTime<Utc>,
    /// How many times it was checked before this one.
    pub checks: i32,
}

/// A step to watch, as the engine describes it.
#[derive(Debug, Clone)]
pub struct NewVerification<'a> {
    /// The journal entry.
    pub op_id: &'a str,
    /// Tenant.
    pub tenant: &'a str,
    /// Subscription.
    pub subscription_id: &'a str,
    /// Plan key.
    pub key: &'a str,
    /// What the step asked for.
    pub action: StepAction,
    /// The resource an update or delete addressed.
    pub native_id: Option<&'a str>,
    /// The plan is the entry's "before" spec.
    pub from_before: bool,
    /// Until then the request may be in flight.
    pub not_before: DateTime<Utc>,
    /// The last moment the step is watched.
    pub until: DateTime<Utc>,
}

impl Store {
    /// Writes a step to re-verify; the sweep first looks at `not_before`.
    pub async fn add_verification(&self, v: &NewVerification<'_>) -> Result<(), Error> {
        let am = verification::ActiveModel {
            id: Set(format!("vf_{}", ulid::Ulid::new())),
            op_id: Set(v.op_id.to_owned()),
            tenant: Set(v.tenant.to_owned()),
            subscription_id: Set(v.subscription_id.to_owned()),
            key: Set(v.key.to_owned()),
            action: Set(v.action.as_str().to_owned()),
            native_id: Set(v.native_id.map(str::to_owned)),
            from_before: Set(v.from_before),
            not_before: Set(v.not_before),
            until: Set(v.until),
            next_check_at: Set(v.not_before),
            checks: Set(0),
        };
        verification::Entity::insert(am)
            .exec_without_returning(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Claims up to `limit` due steps: each claimed row's next check moves
    /// to `retry_at`, so if this replica dies the step comes due again.
    pub async fn claim_due_verifications(
        &self,
        limit: u64,
        retry_at: DateTime<Utc>,
    ) -> Result<Vec<Verification>, Error> {
        let now = Utc::now();
        let rows = verification::Entity::find()
            .filter(verification::Column::NextCheckAt.lte(now))
            .order_by_asc(verification::Column::NextCheckAt)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut claimed = Vec::new();
        for row in rows {
            let res = verification::Entity::update_many()
                .col_expr(verification::Column::NextCheckAt, Expr::value(retry_at))
                .filter(verification::Column::Id.eq(row.id.as_str()))
                .filter(verification::Column::NextCheckAt.eq(row.next_check_at))
                .exec(&self.db)
                .await
                .map_err(db_err)?;
            if res.rows_affected != 1 {
                continue;
            }
            let Some(action) = StepAction::parse(&row.action) else {
                tracing::warn!(id = %row.id, action = %row.action, "unknown verification action; dropped");
                self.finish_verification(&row.id).await?;
                continue;
            };
            claimed.push(Verification {
                id: row.id,
                op_id: row.op_id,
                tenant: row.tenant,
                subscription_id: row.subscription_id,
                key: row.key,
                action,
                native_id: row.native_id,
                from_before: row.from_before,
                not_before: row.not_before,
                until: row.until,
                checks: row.checks,
            });
        }
        Ok(claimed)
    }

    /// Schedules the next check of a step.
    pub async fn reschedule_verification(
        &self,
        id: &str,
        next_check_at: DateTime<Utc>,
    ) -> Result<(), Error> {
        verification::Entity::update_many()
            .col_expr(
                verification::Column::NextCheckAt,
                Expr::value(next_check_at),
            )
            .col_expr(
                verification::Column::Checks,
                Expr::col(verification::Column::Checks).add(1),
            )
            .filter(verification::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Stops watching a step.
    pub async fn finish_verification(&self, id: &str) -> Result<(), Error> {
        verification::Entity::delete_by_id(id.to_owned())
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Steps of one subscription still watched (tests, and the API's view).
    pub async fn pending_verifications(&self, subscription_id: &str) -> Result<usize, Error> {
        let n = verification::Entity::find()
            .filter(verification::Column::SubscriptionId.eq(subscription_id))
            .count(&self.read)
            .await
            .map_err(db_err)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
