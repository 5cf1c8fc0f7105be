//! Locks: the account lock that serializes every writer of one shared
//! provider document, the non-blocking try-lock of background work, and
//! each Postgres replica's liveness lock. Within a process a tokio mutex
//! per name queues the holders; on Postgres a transaction-scoped advisory
//! lock also excludes the other replicas.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};
use sha2::{Digest, Sha256};
use switchboard_core::Error;

use crate::store::{Store, db_err};

/// In-process account locks, by name, shared by every store of the process
/// (one SQLite database is one process's). Entries are never removed: there
/// is one per (provider, account) ever written, a few bytes each.
static LOCAL_LOCKS: LazyLock<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

/// A held account lock (see [`Store::lock_account`]). Dropping it releases
/// the lock; [`AccountLock::release`] does so and waits for the database.
pub struct AccountLock {
    txn: Option<DatabaseTransaction>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl AccountLock {
    /// Whether the lock's connection still answers, within
    /// [`LIVENESS_ANSWER`] (always, for a lock without one). The bound
    /// matters: a connection a proxy dropped without a word does not fail,
    /// it hangs until TCP gives up, minutes later.
    async fn answers(&self) -> bool {
        match &self.txn {
            Some(txn) => matches!(
                tokio::time::timeout(LIVENESS_ANSWER, txn.execute_unprepared("SELECT 1")).await,
                Ok(Ok(_))
            ),
            None => true,
        }
    }

    /// Releases the lock, ending its database transaction.
    pub async fn release(mut self) {
        if let Some(txn) = self.txn.take()
            && let Err(e) = txn.rollback().await
        {
            tracing::warn!(error = %e, "releasing an account lock failed; the connection drop releases it");
        }
    }
}

/// Longest wait for the liveness lock's connection to answer before it is
/// taken for lost (see [`Store::keep_liveness`]): far above a healthy
/// round trip, even under load.
const LIVENESS_ANSWER: Duration = Duration::from_secs(10);

/// The Postgres advisory-lock key of an account lock name: the first 8
/// bytes of its SHA-256 (operators can look for it in `pg_locks`).
pub fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

impl Store {
    /// On Postgres, takes this replica's liveness lock for as long as the
    /// returned guard lives (a transaction that stays open, holding one
    /// pooled connection). When the process dies its connection closes and
    /// the lock is released, which tells the other replicas, at once, that
    /// its running changes are abandoned. `None` on SQLite (one process).
    pub async fn hold_liveness(&self) -> Result<Option<AccountLock>, Error> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return Ok(None);
        }
        self.lock_account(&format!("replica/{}", self.replica_id))
            .await
            .map(Some)
    }

    /// Keeps this replica's liveness lock, `held`, for as long as the
    /// returned future runs: every `check_every` it asks the lock's
    /// connection for an answer, and when none comes in time (Postgres
    /// restarted, a proxy dropped the idle connection) it takes the lock
    /// again on a fresh connection, retrying every `check_every` while the
    /// database is away. Without this the replica would go on working while the others,
    /// finding its lock free, take it for dead and recover its work.
    /// Returns at once on SQLite (no lock to keep).
    pub async fn keep_liveness(&self, held: Option<AccountLock>, check_every: Duration) {
        let Some(mut held) = held else {
            return;
        };
        loop {
            tokio::time::sleep(check_every).await;
            if held.answers().await {
                continue;
            }
            tracing::warn!(replica = %self.replica_id, "the liveness lock's connection was lost; taking the lock again");
            drop(held);
            held = loop {
                match self.hold_liveness().await {
                    Ok(Some(lock)) => break lock,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(replica = %self.replica_id, error = %e, "taking the liveness lock again failed; retrying");
                        tokio::time::sleep(check_every).await;
                    }
                }
            };
            tracing::info!(replica = %self.replica_id, "liveness lock held again");
        }
    }

    /// Whether replica `owner` still holds its liveness lock (Postgres);
    /// on SQLite every other owner is a previous, dead process.
    pub(crate) async fn replica_alive(&self, owner: &str) -> Result<bool, Error> {
        if self.db.get_database_backend() != DbBackend::Postgres || owner.is_empty() {
            return Ok(false);
        }
        let txn = self.db.begin().await.map_err(db_err)?;
        let got = try_advisory_lock(&txn, &format!("replica/{owner}")).await?;
        // Rolling back releases the probe at once.
        txn.rollback().await.map_err(db_err)?;
        Ok(!got)
    }

    /// Serializes every writer of one shared provider document (an
    /// account). Within a process a tokio mutex queues the writers; on
    /// Postgres a transaction-scoped advisory lock also excludes every
    /// other replica until the guard is released. SQLite is the
    /// single-process store, so the mutex is the whole lock there.
    pub async fn lock_account(&self, name: &str) -> Result<AccountLock, Error> {
        let local = local_lock(name);
        let guard = local.lock_owned().await;
        let txn = if self.db.get_database_backend() == DbBackend::Postgres {
            let txn = self.db.begin().await.map_err(db_err)?;
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [lock_key(name).into()],
            ))
            .await
            .map_err(db_err)?;
            Some(txn)
        } else {
            None
        };
        Ok(AccountLock { txn, _local: guard })
    }

    /// Takes the lock `name` if nobody holds it, without waiting: for
    /// background work that one replica at a time should do.
    pub async fn try_lock(&self, name: &str) -> Result<Option<AccountLock>, Error> {
        let local = local_lock(name);
        let Ok(guard) = local.try_lock_owned() else {
            return Ok(None);
        };
        let txn = if self.db.get_database_backend() == DbBackend::Postgres {
            let txn = self.db.begin().await.map_err(db_err)?;
            if !try_advisory_lock(&txn, name).await? {
                return Ok(None);
            }
            Some(txn)
        } else {
            None
        };
        Ok(Some(AccountLock { txn, _local: guard }))
    }
}

/// The in-process mutex of lock `name`.
fn local_lock(name: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut map = LOCAL_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(name.to_owned()).or_default().clone()
}

/// Takes the Postgres advisory lock `name` for the rest of `txn` if no
/// other session holds it, without waiting; whether it was taken.
async fn try_advisory_lock(txn: &DatabaseTransaction, name: &str) -> Result<bool, Error> {
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS got",
            [lock_key(name).into()],
        ))
        .await
        .map_err(db_err)?;
    let got = row
        .map(|r| r.try_get::<bool>("", "got"))
        .transpose()
        .map_err(db_err)?;
    Ok(got == Some(true))
}
