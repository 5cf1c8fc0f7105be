//! Stripe-style idempotency keys, stored so they hold across replicas: the
//! key is scoped to the tenant; the same key with the same request replays
//! the first response for 24 h; the same key with another request is
//! refused; a second request while the first runs is a conflict.

use chrono::{Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use switchboard_core::Error;

/// A key whose request is still being answered (`state` column).
const RUNNING: &str = "running";
/// A key whose answer is kept for replay (`state` column).
const DONE: &str = "done";

use crate::entity::idempotency;
use crate::store::{Store, db_err};

/// How long a key replays its first response.
pub const KEY_LIFETIME_HOURS: i64 = 24;

/// What to do with a keyed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use (or the previous use expired or died): run it.
    Run,
    /// Done before with the same request: answer this.
    Replay {
        /// Status of the first response.
        status: u16,
        /// Body of the first response.
        body: Vec<u8>,
    },
    /// Used before with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// Associated data of a kept reply.
pub(crate) fn reply_aad(tenant: &str, key: &str) -> Vec<u8> {
    aad(tenant, key)
}

fn aad(tenant: &str, key: &str) -> Vec<u8> {
    format!("idempotency\0{tenant}\0{key}").into_bytes()
}

impl Store {
    /// Claims `key` for a request whose hash is `hash`. `running_for` bounds
    /// how long a claim holds if its request never finishes (process
    /// killed): after it, a retry takes the key over.
    pub async fn begin_idempotent(
        &self,
        tenant: &str,
        key: &str,
        hash: &str,
        running_for: std::time::Duration,
    ) -> Result<Begin, Error> {
        let now = Utc::now();
        let lock = now + Duration::from_std(running_for).unwrap_or(Duration::seconds(60));
        let fresh = idempotency::ActiveModel {
            tenant: Set(tenant.to_owned()),
            key: Set(key.to_owned()),
            request_hash: Set(hash.to_owned()),
            state: Set(RUNNING.into()),
            response_status: Set(None),
            response_body: Set(None),
            created_at: Set(now),
            locked_until: Set(lock),
        };
        let inserted = idempotency::Entity::insert(fresh.clone())
            .on_conflict(
                OnConflict::columns([idempotency::Column::Tenant, idempotency::Column::Key])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(db_err)?;
        if inserted == 1 {
            return Ok(Begin::Run);
        }
        let Some(row) = idempotency::Entity::find_by_id((tenant.to_owned(), key.to_owned()))
            .one(&self.db)
            .await
            .map_err(db_err)?
        else {
            // Deleted between the insert and the read: a retry will insert.
            return Ok(Begin::InProgress);
        };
        let expired = row.created_at + Duration::hours(KEY_LIFETIME_HOURS) < now;
        let abandoned = row.state == RUNNING && row.locked_until < now;
        if expired || abandoned {
            // Take the key over only if nobody else did in the meantime.
            let res = idempotency::Entity::update_many()
                .col_expr(idempotency::Column::RequestHash, Expr::value(hash))
                .col_expr(idempotency::Column::State, Expr::value(RUNNING))
                .col_expr(
                    idempotency::Column::ResponseStatus,
                    Expr::value(Option::<i32>::None),
                )
                .col_expr(
                    idempotency::Column::ResponseBody,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(idempotency::Column::CreatedAt, Expr::value(now))
                .col_expr(idempotency::Column::LockedUntil, Expr::value(lock))
                .filter(idempotency::Column::Tenant.eq(tenant))
                .filter(idempotency::Column::Key.eq(key))
                .filter(idempotency::Column::CreatedAt.eq(row.created_at))
                .filter(idempotency::Column::State.eq(row.state.as_str()))
                .exec(&self.db)
                .await
                .map_err(db_err)?;
            return Ok(if res.rows_affected == 1 {
                Begin::Run
            } else {
                Begin::InProgress
            });
        }
        if row.request_hash != hash {
            return Ok(Begin::Mismatch);
        }
        match (row.state.as_str(), row.response_status, row.response_body) {
            (DONE, Some(status), Some(body)) => Ok(Begin::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body: self.cipher.open(&body, &aad(tenant, key))?,
            }),
            _ => Ok(Begin::InProgress),
        }
    }

    /// Records the response of a claimed key.
    pub async fn finish_idempotent(
        &self,
        tenant: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), Error> {
        let sealed = self.cipher.seal(body, &aad(tenant, key))?;
        idempotency::Entity::update_many()
            .col_expr(idempotency::Column::State, Expr::value(DONE))
            .col_expr(
                idempotency::Column::ResponseStatus,
                Expr::value(i32::from(status)),
            )
            .col_expr(idempotency::Column::ResponseBody, Expr::value(sealed))
            .filter(idempotency::Column::Tenant.eq(tenant))
            .filter(idempotency::Column::Key.eq(key))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Releases a claimed key without a response to keep (the request was
    /// refused for a transient reason), so a retry runs it again.
    pub async fn abandon_idempotent(&self, tenant: &str, key: &str) -> Result<(), Error> {
        idempotency::Entity::delete_many()
            .filter(idempotency::Column::Tenant.eq(tenant))
            .filter(idempotency::Column::Key.eq(key))
            .filter(idempotency::Column::State.eq(RUNNING))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
