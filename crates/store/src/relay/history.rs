//! What the API and the operator do with relay deliveries after the fact:
//! list and show them (with their event and attempts), drive one again
//! (`redeliver`), deliver a subscription's recent events again (`replay`),
//! measure the outbox, and delete finished deliveries after their
//! retention (`prune`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    TransactionTrait,
};
use switchboard_core::Error;

use super::{
    Delivery, DeliveryStatus, NewEvent, RelayEvent, new_delivery, open_statuses, to_delivery,
    to_event,
};
use crate::entity::{relay_attempt, relay_delivery, relay_event};
use crate::keyset::Direction;
use crate::store::{Store, db_err};

/// Rows one prune or replay transaction handles at most, so a large one
/// holds the SQLite writer for a short while at a time.
const BATCH: u64 = 500;

/// Filters of [`Store::list_deliveries`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries of events of this type.
    pub event_type: Option<String>,
}

/// One attempt, as the attempts log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAttempt {
    /// Its number in its series, from 1.
    pub attempt: u32,
    /// When the request was started.
    pub started_at: DateTime<Utc>,
    /// Until the response head or the failure, in milliseconds.
    pub latency_ms: u64,
    /// The answer's status code, when there was one.
    pub status_code: Option<u16>,
    /// How it ended.
    pub outcome: String,
    /// The first KiB of the answer's body.
    pub response_excerpt: Option<String>,
    /// Transport error or refusal reason.
    pub error: Option<String>,
}

/// A delivery with its event and its attempts, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryDetail {
    /// The delivery.
    pub delivery: Delivery,
    /// Its event (the envelope's content).
    pub event: RelayEvent,
    /// Every attempt of every series, oldest first.
    pub attempts: Vec<RelayAttempt>,
}

/// What [`Store::prune_relay`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneCounts {
    /// Finished deliveries.
    pub deliveries: u64,
    /// Their attempts.
    pub attempts: u64,
    /// Events left without any delivery.
    pub events: u64,
}

impl Store {
    /// One page of a subscription's deliveries, newest first, and the
    /// cursor of the next (`cursor`: the previous page's). Read on the read
    /// pool through `idx_relay_deliveries_list`.
    pub async fn list_deliveries(
        &self,
        tenant: &str,
        subscription_id: &str,
        filter: &DeliveryFilter,
        cursor: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<Delivery>, Option<String>), Error> {
        use relay_delivery::Column as C;
        let q = relay_delivery::Entity::find()
            .filter(C::Tenant.eq(tenant))
            .filter(C::SubscriptionId.eq(subscription_id))
            .apply_if(filter.status, |q, s| q.filter(C::Status.eq(s.as_str())))
            .apply_if(filter.event_type.as_deref(), |q, t| {
                q.filter(C::EventType.eq(t))
            });
        let (rows, next) = self
            .keyset_page(q, cursor, limit, Direction::Descending)
            .await?;
        let page = rows
            .into_iter()
            .map(to_delivery)
            .collect::<Result<_, _>>()?;
        Ok((page, next))
    }

    /// One of `tenant`'s deliveries with its event and attempts; `None`
    /// when it has none with that id.
    pub async fn get_delivery(
        &self,
        tenant: &str,
        delivery_id: &str,
    ) -> Result<Option<DeliveryDetail>, Error> {
        let Some(row) = relay_delivery::Entity::find_by_id(delivery_id.to_owned())
            .filter(relay_delivery::Column::Tenant.eq(tenant))
            .one(&self.read)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let event = relay_event::Entity::find_by_id(row.event_id.clone())
            .one(&self.read)
            .await
            .map_err(db_err)?
            .ok_or_else(|| {
                Error::Internal(format!("relay delivery `{}` lost its event", row.id))
            })?;
        let attempts = relay_attempt::Entity::find()
            .filter(relay_attempt::Column::DeliveryId.eq(delivery_id))
            .order_by_asc(relay_attempt::Column::Id)
            .all(&self.read)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(to_attempt)
            .collect();
        Ok(Some(DeliveryDetail {
            delivery: to_delivery(row)?,
            event: to_event(event),
            attempts,
        }))
    }

    /// Starts a new attempt series of one of `tenant`'s deliveries:
    /// `pending`, due at `now`, attempts back to 0, lease released; the
    /// `webhook-id` stays the same, and the attempts of earlier series are
    /// kept. A delivery being attempted right now (claimed, lease not yet
    /// expired) is a 409: two attempts must not run at once. An unknown id
    /// is a 404.
    pub async fn redeliver(
        &self,
        tenant: &str,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Delivery, Error> {
        use relay_delivery::Column as C;
        let not_found = || Error::NotFound {
            what: "delivery",
            id: delivery_id.to_owned(),
        };
        let busy = Expr::col(C::Status)
            .eq(DeliveryStatus::Delivering.as_str())
            .and(Expr::col(C::LeaseUntil).gte(now));
        let update = relay_delivery::Entity::update_many()
            .col_expr(C::Status, Expr::value(DeliveryStatus::Pending.as_str()))
            .col_expr(C::Attempts, Expr::value(0))
            .col_expr(C::NextAttemptAt, Expr::value(now))
            .col_expr(C::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(C::LeasedBy, Expr::value(Option::<String>::None))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::Tenant.eq(tenant))
            .filter(C::Id.eq(delivery_id))
            .filter(busy.not());
        let mut script = self.script();
        script.guard(
            &update,
            Error::Conflict(format!(
                "delivery `{delivery_id}` is being attempted; redeliver it once the attempt ends"
            )),
        );
        let ran = self.run(script).await;
        let row = relay_delivery::Entity::find_by_id(delivery_id.to_owned())
            .filter(C::Tenant.eq(tenant))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or_else(not_found)?;
        ran?;
        to_delivery(row)
    }

    /// Delivers again every event of `tenant`'s subscription received at
    /// or after `since` that has no open delivery: one new `pending`
    /// delivery each (a new `dlv_` id, due at `now`, `ordered` as given),
    /// whose `webhook-id` is the event's id as on the first delivery, so a
    /// subscriber that processed the event recognises it. Events already
    /// pruned are not replayed. Written a batch at a time; returns how many
    /// deliveries were created.
    pub async fn replay_since(
        &self,
        tenant: &str,
        subscription_id: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        ordered: bool,
    ) -> Result<u64, Error> {
        use relay_event::Column as E;
        let mut created = 0;
        let mut after: Option<String> = None;
        loop {
            let q = relay_event::Entity::find()
                .filter(E::Tenant.eq(tenant))
                .filter(E::SubscriptionId.eq(subscription_id))
                .filter(E::ReceivedAt.gte(since));
            let (events, next) = self
                .keyset_page(q, after.as_deref(), BATCH, Direction::Ascending)
                .await?;
            created += self.replay_batch(&events, now, ordered).await?;
            match next {
                Some(n) => after = Some(n),
                None => return Ok(created),
            }
        }
    }

    /// New deliveries for those of `events` without an open one.
    async fn replay_batch(
        &self,
        events: &[relay_event::Model],
        now: DateTime<Utc>,
        ordered: bool,
    ) -> Result<u64, Error> {
        use relay_delivery::Column as C;
        let open: std::collections::HashSet<String> = relay_delivery::Entity::find()
            .select_only()
            .column(C::EventId)
            .filter(C::EventId.is_in(events.iter().map(|e| e.id.clone())))
            .filter(C::Status.is_in(open_statuses()))
            .into_tuple::<String>()
            .all(&self.read)
            .await
            .map_err(db_err)?
            .into_iter()
            .collect();
        let mut script = self.script();
        let mut created = 0;
        for e in events.iter().filter(|e| !open.contains(&e.id)) {
            let new = NewEvent {
                tenant: &e.tenant,
                subscription_id: &e.subscription_id,
                event_type: &e.event_type,
                provider: &e.provider,
                occurred_at: e.occurred_at,
                received_at: e.received_at,
                payload: "",
                dedup_key: &e.dedup_key,
                ordered,
            };
            script.push(&relay_delivery::Entity::insert(
                relay_delivery::ActiveModel::from(new_delivery(&e.id, &new, now)),
            ));
            created += 1;
        }
        if created > 0 {
            self.run(script).await?;
        }
        Ok(created)
    }

    /// How many deliveries are `pending` or `delivering`, across tenants
    /// (the outbox depth gauge). Counted on `idx_relay_deliveries_due`
    /// alone: cost grows with the depth, never with the history.
    pub async fn outbox_depth(&self) -> Result<u64, Error> {
        relay_delivery::Entity::find()
            .filter(relay_delivery::Column::Status.is_in(open_statuses()))
            .count(&self.read)
            .await
            .map_err(db_err)
    }

    /// Deletes deliveries `delivered` before `delivered_before` and those
    /// `failed` or `gone` before `failed_before` (a finished delivery's
    /// `next_attempt_at` is when it finished), with their attempts and
    /// the events left without any delivery. Each batch of at most 500
    /// deliveries is one short transaction; a delivery redelivered
    /// meanwhile is kept. Returns what was deleted.
    pub async fn prune_relay(
        &self,
        delivered_before: DateTime<Utc>,
        failed_before: DateTime<Utc>,
    ) -> Result<PruneCounts, Error> {
        let mut total = PruneCounts::default();
        for (statuses, before) in [
            (&[DeliveryStatus::Delivered][..], delivered_before),
            (
                &[DeliveryStatus::Failed, DeliveryStatus::Gone][..],
                failed_before,
            ),
        ] {
            loop {
                let batch = self.prune_batch(statuses, before).await?;
                total.deliveries += batch.deliveries;
                total.attempts += batch.attempts;
                total.events += batch.events;
                if batch.deliveries < BATCH {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// One prune transaction: up to [`BATCH`] deliveries, then their
    /// attempts, then their events that have no delivery left.
    async fn prune_batch(
        &self,
        statuses: &[DeliveryStatus],
        before: DateTime<Utc>,
    ) -> Result<PruneCounts, Error> {
        use relay_delivery::Column as C;
        let backend = self.db.get_database_backend();
        let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let finished = Query::select()
            .column(C::Id)
            .from(relay_delivery::Entity)
            .and_where(Expr::col(C::Status).is_in(names.clone()))
            .and_where(Expr::col(C::NextAttemptAt).lt(before))
            .limit(BATCH)
            .to_owned();
        // The status is checked again by the delete itself, so a delivery
        // redelivered since the select is kept.
        let delete = Query::delete()
            .from_table(relay_delivery::Entity)
            .and_where(Expr::col(C::Id).in_subquery(finished))
            .and_where(Expr::col(C::Status).is_in(names))
            .returning_all()
            .to_owned();
        let txn = self.db.begin().await.map_err(db_err)?;
        let gone = relay_delivery::Entity::find()
            .from_raw_sql(backend.build(&delete))
            .all(&txn)
            .await
            .map_err(db_err)?;
        if gone.is_empty() {
            return Ok(PruneCounts::default());
        }
        let (ids, event_ids): (Vec<String>, Vec<String>) =
            gone.into_iter().map(|d| (d.id, d.event_id)).unzip();
        let attempts = relay_attempt::Entity::delete_many()
            .filter(relay_attempt::Column::DeliveryId.is_in(ids.iter().cloned()))
            .exec(&txn)
            .await
            .map_err(db_err)?
            .rows_affected;
        let still_delivered = Query::select()
            .expr(Expr::val(1))
            .from(relay_delivery::Entity)
            .and_where(
                Expr::col((relay_delivery::Entity, C::EventId))
                    .equals((relay_event::Entity, relay_event::Column::Id)),
            )
            .to_owned();
        let events = relay_event::Entity::delete_many()
            .filter(relay_event::Column::Id.is_in(event_ids))
            .filter(Expr::exists(still_delivered).not())
            .exec(&txn)
            .await
            .map_err(db_err)?
            .rows_affected;
        txn.commit().await.map_err(db_err)?;
        Ok(PruneCounts {
            deliveries: ids.len() as u64,
            attempts,
            events,
        })
    }
}

fn to_attempt(m: relay_attempt::Model) -> RelayAttempt {
    RelayAttempt {
        attempt: u32::try_from(m.attempt).unwrap_or_default(),
        started_at: m.started_at,
        latency_ms: u64::try_from(m.latency_ms).unwrap_or_default(),
        status_code: m.status_code.and_then(|c| u16::try_from(c).ok()),
        outcome: m.outcome,
        response_excerpt: m.response_excerpt,
        error: m.error,
    }
}
