//! The operations journal: each change is written here before its first
//! upstream call, its native steps are appended as they complete, and its
//! outcome closes it. A `running` entry whose lease has passed belongs to
//! a process that died; recovery claims it (one replica at a time, by a
//! compare-and-set on the lease) and finishes or undoes the change.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use switchboard_core::operation::{OperationKind, OperationState, Step, StepAction};
use switchboard_core::{Error, SubscriptionSpec};

use crate::entity::operation;
use crate::keyset::Direction;
use crate::script::Script;
use crate::store::{Store, db_err};

/// A journal entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// `op_<ulid>`.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Subscription.
    pub subscription_id: String,
    /// What it changes.
    pub kind: OperationKind,
    /// Token name, or `switchboard`.
    pub actor: String,
    /// Where it stands.
    pub state: OperationState,
    /// Spec before (none for a create).
    pub before: Option<SubscriptionSpec>,
    /// Spec after (none for a delete).
    pub after: Option<SubscriptionSpec>,
    /// Completed native steps, oldest first.
    pub steps: Vec<Step>,
    /// Last error.
    pub error: Option<String>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A change about to start.
pub struct NewOperation<'a> {
    /// Tenant.
    pub tenant: &'a str,
    /// Subscription.
    pub subscription_id: &'a str,
    /// Kind of change.
    pub kind: OperationKind,
    /// Token name.
    pub actor: &'a str,
    /// Spec before.
    pub before: Option<&'a SubscriptionSpec>,
    /// Spec after.
    pub after: Option<&'a SubscriptionSpec>,
}

/// Associated data of an operation's sealed specs.
pub(crate) fn operation_aad(id: &str) -> Vec<u8> {
    aad(id)
}

fn aad(id: &str) -> Vec<u8> {
    format!("operation\0{id}").into_bytes()
}

/// A stored kind or state this version does not know: a newer version
/// wrote it, or the row is damaged.
fn unknown(what: &str, value: &str) -> Error {
    Error::Internal(format!("unknown journal {what} `{value}`"))
}

/// A new journal entry id, `op_<ulid>`.
pub(crate) fn new_operation_id() -> String {
    format!("op_{}", ulid::Ulid::new())
}

/// What a journal write does to the entry's in-flight mark (`settle_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Leaves it as it is.
    Keep,
    /// Sets it: a request that may change the provider is about to be
    /// sent, and can be applied until then.
    At(DateTime<Utc>),
    /// Clears it: nothing of the change is in flight.
    Clear,
}

/// One write to a journal entry: steps to append, its in-flight mark and,
/// when the change is over, its close. Made with one `UPDATE` (and, when
/// the entry may hold steps already, one read of them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryWrite<'a> {
    /// Completed steps to append.
    pub steps: &'a [Step],
    /// The entry holds no steps yet (this process opened it and has
    /// written none): `steps` become its list without reading it.
    pub first_steps: bool,
    /// The in-flight mark.
    pub settle: Settle,
    /// The state (and error) the entry closes with.
    pub close: Option<(OperationState, Option<&'a str>)>,
}

impl EntryWrite<'_> {
    fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.settle == Settle::Keep && self.close.is_none()
    }
}

impl Store {
    /// Adds `w` to entry `op_id` to `script`. Steps are appended as JSON
    /// values, so a step this version cannot read is kept as it was
    /// written; unless `w.first_steps`, the entry's steps are read first
    /// (only the change that owns a running entry writes its steps, so
    /// reading before the script runs loses none).
    pub(crate) async fn entry_write_into(
        &self,
        script: &mut Script,
        op_id: &str,
        w: EntryWrite<'_>,
    ) -> Result<(), Error> {
        if w.is_empty() {
            return Ok(());
        }
        let mut update = operation::Entity::update_many();
        if !w.steps.is_empty() {
            let mut all: Vec<serde_json::Value> = if w.first_steps {
                Vec::with_capacity(w.steps.len())
            } else {
                let Some(row) = operation::Entity::find_by_id(op_id.to_owned())
                    .select_only()
                    .column(operation::Column::Steps)
                    .into_tuple::<String>()
                    .one(&self.db)
                    .await
                    .map_err(db_err)?
                else {
                    return Ok(());
                };
                serde_json::from_str(&row).unwrap_or_default()
            };
            for step in w.steps {
                all.push(serde_json::to_value(step).map_err(|e| Error::Internal(e.to_string()))?);
            }
            update = update.col_expr(
                operation::Column::Steps,
                Expr::value(serde_json::Value::Array(all).to_string()),
            );
        }
        match w.settle {
            Settle::Keep => {}
            Settle::At(at) => {
                update = update.col_expr(operation::Column::SettleAt, Expr::value(Some(at)))
            }
            Settle::Clear => {
                update = update.col_expr(
                    operation::Column::SettleAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
            }
        }
        if let Some((state, error)) = w.close {
            update = update
                .col_expr(operation::Column::State, Expr::value(state.as_str()))
                .col_expr(
                    operation::Column::Error,
                    Expr::value(error.map(str::to_owned)),
                )
                .col_expr(operation::Column::FinishedAt, Expr::value(Some(Utc::now())));
        }
        script.push(&update.filter(operation::Column::Id.eq(op_id)));
        Ok(())
    }

    /// Adds the close of entry `op_id` in `state` to `script`.
    pub(crate) fn finish_operation_into(
        script: &mut Script,
        op_id: &str,
        state: OperationState,
        error: Option<&str>,
    ) {
        script.push(
            &operation::Entity::update_many()
                .col_expr(operation::Column::State, Expr::value(state.as_str()))
                .col_expr(
                    operation::Column::Error,
                    Expr::value(error.map(str::to_owned)),
                )
                .col_expr(operation::Column::FinishedAt, Expr::value(Some(Utc::now())))
                .filter(operation::Column::Id.eq(op_id)),
        );
    }
}

pub(crate) fn lease_end(lease: std::time::Duration) -> DateTime<Utc> {
    Utc::now() + Duration::from_std(lease).unwrap_or(Duration::seconds(60))
}

impl Store {
    fn seal_opt(&self, id: &str, spec: Option<&SubscriptionSpec>) -> Result<Option<String>, Error> {
        spec.map(|s| {
            let json = serde_json::to_vec(s).map_err(|e| Error::Internal(e.to_string()))?;
            self.cipher.seal(&json, &aad(id))
        })
        .transpose()
    }

    fn open_opt(&self, id: &str, sealed: Option<&str>) -> Result<Option<SubscriptionSpec>, Error> {
        sealed
            .map(|s| {
                let json = self.cipher.open(s, &aad(id))?;
                serde_json::from_slice(&json).map_err(|e| Error::Internal(e.to_string()))
            })
            .transpose()
    }

    fn to_operation(&self, m: operation::Model) -> Result<Operation, Error> {
        Ok(Operation {
            before: self.open_opt(&m.id, m.before_spec.as_deref())?,
            after: self.open_opt(&m.id, m.after_spec.as_deref())?,
            kind: OperationKind::parse(&m.kind).ok_or_else(|| unknown("kind", &m.kind))?,
            state: OperationState::parse(&m.state).ok_or_else(|| unknown("state", &m.state))?,
            steps: serde_json::from_str(&m.steps).unwrap_or_else(|e| {
                // History only: an unreadable list must not hide the entry.
                tracing::warn!(op = %m.id, error = %e, "journal steps unreadable");
                Vec::new()
            }),
            id: m.id,
            tenant: m.tenant,
            subscription_id: m.subscription_id,
            actor: m.actor,
            error: m.error,
            started_at: m.started_at,
            finished_at: m.finished_at,
        })
    }

    /// Journals a change before its first upstream call; returns its id.
    pub async fn start_operation(
        &self,
        op: &NewOperation<'_>,
        lease: std::time::Duration,
    ) -> Result<String, Error> {
        self.insert_operation(op, OperationState::Running, &[], lease_end(lease))
            .await
    }

    /// Journals a change that is already over (the sweep's findings):
    /// one row, closed in `state`, with its steps.
    pub async fn record_operation(
        &self,
        op: &NewOperation<'_>,
        state: OperationState,
        steps: &[Step],
    ) -> Result<String, Error> {
        self.insert_operation(op, state, steps, Utc::now()).await
    }

    /// Writes a journal row; one that is not `running` is closed at once.
    async fn insert_operation(
        &self,
        op: &NewOperation<'_>,
        state: OperationState,
        steps: &[Step],
        lease_until: DateTime<Utc>,
    ) -> Result<String, Error> {
        let id = new_operation_id();
        let mut script = self.script();
        self.insert_operation_into(&mut script, &id, op, state, steps, lease_until, None)?;
        self.run(script).await?;
        Ok(id)
    }

    /// Adds journal row `id` to `script`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert_operation_into(
        &self,
        script: &mut Script,
        id: &str,
        op: &NewOperation<'_>,
        state: OperationState,
        steps: &[Step],
        lease_until: DateTime<Utc>,
        settle_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error> {
        let now = Utc::now();
        let steps = serde_json::to_string(steps).map_err(|e| Error::Internal(e.to_string()))?;
        let am = operation::ActiveModel {
            id: Set(id.to_owned()),
            tenant: Set(op.tenant.to_owned()),
            subscription_id: Set(op.subscription_id.to_owned()),
            kind: Set(op.kind.as_str().to_owned()),
            actor: Set(op.actor.to_owned()),
            state: Set(state.as_str().to_owned()),
            before_spec: Set(self.seal_opt(id, op.before)?),
            after_spec: Set(self.seal_opt(id, op.after)?),
            steps: Set(steps),
            error: Set(None),
            started_at: Set(now),
            finished_at: Set((state != OperationState::Running).then_some(now)),
            lease_until: Set(lease_until),
            owner: Set(self.replica_id.clone()),
            settle_at: Set(settle_at),
        };
        script.push(&operation::Entity::insert(am));
        Ok(())
    }

    /// One journal entry.
    pub async fn operation(&self, op_id: &str) -> Result<Option<Operation>, Error> {
        operation::Entity::find_by_id(op_id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| self.to_operation(m))
            .transpose()
    }

    /// Appends one completed native step.
    pub async fn add_step(&self, op_id: &str, step: &Step) -> Result<(), Error> {
        // A completed step means nothing of this change is in flight any
        // more (an unknown one may be: its request can still land), so a
        // crash from here on is recovered without waiting; the next change
        // request marks itself in flight again.
        let settle = if step.action == StepAction::Unknown {
            Settle::Keep
        } else {
            Settle::Clear
        };
        let w = EntryWrite {
            steps: std::slice::from_ref(step),
            first_steps: false,
            settle,
            close: None,
        };
        let mut script = self.script();
        self.entry_write_into(&mut script, op_id, w).await?;
        self.run(script).await
    }

    /// Closes an operation.
    pub async fn finish_operation(
        &self,
        op_id: &str,
        state: OperationState,
        error: Option<String>,
    ) -> Result<(), Error> {
        let mut script = self.script();
        Self::finish_operation_into(&mut script, op_id, state, error.as_deref());
        self.run(script).await
    }

    /// Extends the leases of operations this process is running.
    pub async fn renew_leases(
        &self,
        ids: &[String],
        lease: std::time::Duration,
    ) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        operation::Entity::update_many()
            .col_expr(operation::Column::LeaseUntil, Expr::value(lease_end(lease)))
            .filter(operation::Column::Id.is_in(ids.iter().cloned()))
            .filter(operation::Column::State.eq(OperationState::Running.as_str()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Claims running operations whose owner is gone: all of them when
    /// `all` is set (a single-process store, where no other process can be
    /// running); otherwise those whose lease has passed and, on Postgres,
    /// at once those whose owning replica no longer holds its liveness lock
    /// (it died; see [`Store::hold_liveness`]). Either way an entry whose
    /// last request may still land (`settle_at` not yet passed) is left
    /// for a later scan. Each claim is a compare-and-set on the lease and
    /// owner, so one replica wins each.
    pub async fn claim_abandoned(
        &self,
        lease: std::time::Duration,
        all: bool,
    ) -> Result<Vec<Operation>, Error> {
        let now = Utc::now();
        let candidates = operation::Entity::find()
            .filter(operation::Column::State.eq(OperationState::Running.as_str()))
            .filter(operation::Column::Owner.ne(self.replica_id.as_str()))
            .order_by_asc(operation::Column::Id)
            .limit(100)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut rows = Vec::new();
        for row in candidates {
            if row.settle_at.is_some_and(|t| t > now) {
                continue;
            }
            if all || row.lease_until < now || !self.replica_alive(&row.owner).await? {
                rows.push(row);
            }
        }
        let mut claimed = Vec::new();
        for row in rows {
            let res = operation::Entity::update_many()
                .col_expr(operation::Column::LeaseUntil, Expr::value(lease_end(lease)))
                .col_expr(
                    operation::Column::Owner,
                    Expr::value(self.replica_id.as_str()),
                )
                .filter(operation::Column::Id.eq(row.id.as_str()))
                .filter(operation::Column::LeaseUntil.eq(row.lease_until))
                .filter(operation::Column::Owner.eq(row.owner.as_str()))
                .filter(operation::Column::State.eq(OperationState::Running.as_str()))
                .exec(&self.db)
                .await
                .map_err(db_err)?;
            if res.rows_affected == 1 {
                claimed.push(self.to_operation(row)?);
            }
        }
        Ok(claimed)
    }

    /// The operations of one subscription, newest first.
    pub async fn list_operations(
        &self,
        tenant: &str,
        subscription_id: &str,
        limit: u64,
        before: Option<&str>,
    ) -> Result<(Vec<Operation>, Option<String>), Error> {
        let q = operation::Entity::find()
            .filter(operation::Column::Tenant.eq(tenant))
            .filter(operation::Column::SubscriptionId.eq(subscription_id));
        let (rows, next) = self
            .keyset_page(q, before, limit, Direction::Descending)
            .await?;
        let ops = rows
            .into_iter()
            .map(|r| self.to_operation(r))
            .collect::<Result<_, _>>()?;
        Ok((ops, next))
    }
}
