//! The tenant-scoped repository functions.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement, TransactionTrait,
};
use sha2::{Digest, Sha256};
use switchboard_core::{Error, SubscriptionStatus};
use switchboard_migration::{Migrator, MigratorTrait};

use crate::entity::{audit, idempotency, native_resource, operation, subscription};
use crate::{AuditEntry, Cipher, ListQuery, NativeRecord, Page, SubscriptionRecord};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Postgres only: a schema to create and use (tests isolate themselves
    /// with one schema each).
    pub pg_schema: Option<String>,
    /// Seals every stored spec (secrets included).
    pub cipher: Cipher,
}

impl StoreOptions {
    /// Defaults for `url`, sealing with `cipher`.
    pub fn new(url: impl Into<String>, cipher: Cipher) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            pg_schema: None,
            cipher,
        }
    }
}

/// Handle to the database; cheap to clone (it is a pool).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    pub(crate) cipher: Arc<Cipher>,
    /// This process's identity in the journal (`op.owner`).
    pub(crate) replica_id: String,
}

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
    /// Releases the lock, ending its database transaction.
    pub async fn release(mut self) {
        if let Some(txn) = self.txn.take()
            && let Err(e) = txn.rollback().await
        {
            tracing::warn!(error = %e, "releasing an account lock failed; the connection drop releases it");
        }
    }
}

/// The Postgres advisory-lock key of an account lock name: the first 8
/// bytes of its SHA-256 (operators can look for it in `pg_locks`).
pub fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

pub(crate) fn db_err(e: DbErr) -> Error {
    Error::Store(e.to_string())
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Internal(format!("stored JSON is unreadable: {e}"))
}

/// Any value that fits in the advisory-lock key space; names the
/// migration lock so concurrent replicas migrate one at a time.
const MIGRATION_LOCK_KEY: i64 = 0x5357_4954_4348_0001;

static SQLITE_MIGRATIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Store {
    /// Connects, then runs pending migrations. On Postgres the migrations
    /// run under an advisory lock, so replicas starting together do not race.
    pub async fn connect(opts: &StoreOptions) -> Result<Self, Error> {
        let is_pg = opts.url.starts_with("postgres");
        if is_pg {
            let mut one = Self::options(opts, 1);
            one.connect_lazy(false);
            let conn = Database::connect(one).await.map_err(db_err)?;
            let lock = |sql: &str| {
                Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [MIGRATION_LOCK_KEY.into()],
                )
            };
            conn.execute_raw(lock("SELECT pg_advisory_lock($1)"))
                .await
                .map_err(db_err)?;
            let migrated = async {
                if let Some(schema) = &opts.pg_schema {
                    conn.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                        .await?;
                }
                Migrator::up(&conn, None).await
            }
            .await;
            conn.execute_raw(lock("SELECT pg_advisory_unlock($1)"))
                .await
                .map_err(db_err)?;
            migrated.map_err(db_err)?;
            let _ = conn.close().await;
            let db = Database::connect(Self::options(opts, opts.max_connections))
                .await
                .map_err(db_err)?;
            Ok(Self::from_db(db, opts))
        } else {
            let db = Database::connect(Self::options(opts, opts.max_connections))
                .await
                .map_err(db_err)?;
            // SQLite is the single-process embedded store; this lock keeps
            // two stores opened by one process (tests, tools) from racing.
            let _guard = SQLITE_MIGRATIONS.lock().await;
            Migrator::up(&db, None).await.map_err(db_err)?;
            Ok(Self::from_db(db, opts))
        }
    }

    fn from_db(db: DatabaseConnection, opts: &StoreOptions) -> Self {
        Self {
            db,
            cipher: Arc::new(opts.cipher.clone()),
            replica_id: format!("rep_{}", ulid::Ulid::new()),
        }
    }

    /// This process's identity in the journal.
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

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

    /// Whether replica `owner` still holds its liveness lock (Postgres);
    /// on SQLite every other owner is a previous, dead process.
    pub(crate) async fn replica_alive(&self, owner: &str) -> Result<bool, Error> {
        if self.db.get_database_backend() != DbBackend::Postgres || owner.is_empty() {
            return Ok(false);
        }
        let txn = self.db.begin().await.map_err(db_err)?;
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1) AS got",
                [lock_key(&format!("replica/{owner}")).into()],
            ))
            .await
            .map_err(db_err)?;
        let got = row
            .map(|r| r.try_get::<bool>("", "got"))
            .transpose()
            .map_err(db_err)?;
        // Rolling back releases the probe at once.
        txn.rollback().await.map_err(db_err)?;
        Ok(got != Some(true))
    }

    /// Serializes every writer of one shared provider document (an
    /// account). Within a process a tokio mutex queues the writers; on
    /// Postgres a transaction-scoped advisory lock also excludes every
    /// other replica until the guard is released. SQLite is the
    /// single-process store, so the mutex is the whole lock there.
    pub async fn lock_account(&self, name: &str) -> Result<AccountLock, Error> {
        let local = {
            let mut map = LOCAL_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(name.to_owned()).or_default().clone()
        };
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

    fn options(opts: &StoreOptions, max: u32) -> ConnectOptions {
        let mut o = ConnectOptions::new(opts.url.clone());
        o.max_connections(max)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        if let Some(schema) = &opts.pg_schema {
            o.set_schema_search_path(schema.clone());
        }
        // WAL lets readers proceed while one writer commits; the busy
        // timeout makes a second writer wait instead of failing at once.
        o.map_sqlx_sqlite_opts(|s| {
            s.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
        o
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), Error> {
        self.db.ping().await.map_err(db_err)
    }

    /// Which backend this is (`sqlite` or `postgres`).
    pub fn backend(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Postgres => "postgres",
            DbBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    /// Inserts a new subscription (with any natives it already has).
    pub async fn insert(&self, rec: &SubscriptionRecord) -> Result<(), Error> {
        let txn = self.db.begin().await.map_err(db_err)?;
        subscription::Entity::insert(self.to_active(rec)?)
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
        for n in &rec.natives {
            upsert_native(&txn, &rec.tenant, &rec.id, n).await?;
        }
        txn.commit().await.map_err(db_err)
    }

    /// One subscription of `tenant`.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<SubscriptionRecord, Error> {
        let row = subscription::Entity::find_by_id(id.to_owned())
            .filter(subscription::Column::Tenant.eq(tenant))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            })?;
        let natives = native_resource::Entity::find()
            .filter(native_resource::Column::Tenant.eq(tenant))
            .filter(native_resource::Column::SubscriptionId.eq(id))
            .order_by_asc(native_resource::Column::Key)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        self.record_from_rows(row, natives)
    }

    /// A page of `tenant`'s subscriptions ordered by id (creation time);
    /// `None` lists every tenant's (admin tokens only).
    pub async fn list(&self, tenant: Option<&str>, q: &ListQuery) -> Result<Page, Error> {
        let mut select = subscription::Entity::find();
        if let Some(t) = tenant {
            select = select.filter(subscription::Column::Tenant.eq(t));
        }
        if let Some(p) = &q.provider {
            select = select.filter(subscription::Column::Provider.eq(p.as_str()));
        }
        if let Some(s) = q.status {
            select = select.filter(subscription::Column::Status.eq(s.as_str()));
        }
        if let Some(after) = &q.after {
            select = select.filter(subscription::Column::Id.gt(after.as_str()));
        }
        let mut rows = select
            .order_by_asc(subscription::Column::Id)
            .limit(q.limit + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let has_more = rows.len() as u64 > q.limit;
        rows.truncate(q.limit as usize);
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut natives = if ids.is_empty() {
            Vec::new()
        } else {
            // The ids are already the tenant's (or any, for admins).
            native_resource::Entity::find()
                .filter(native_resource::Column::SubscriptionId.is_in(ids))
                .order_by_asc(native_resource::Column::Key)
                .all(&self.db)
                .await
                .map_err(db_err)?
        };
        let mut data = Vec::with_capacity(rows.len());
        for row in rows {
            let (mine, rest): (Vec<_>, Vec<_>) = natives
                .into_iter()
                .partition(|n| n.subscription_id == row.id);
            natives = rest;
            data.push(self.record_from_rows(row, mine)?);
        }
        let next_cursor = if has_more {
            data.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }

    /// Records one native resource the moment it exists upstream, so a
    /// crash right after leaves a trace of it.
    pub async fn record_native(
        &self,
        tenant: &str,
        sub_id: &str,
        n: &NativeRecord,
    ) -> Result<(), Error> {
        upsert_native(&self.db, tenant, sub_id, n).await
    }

    /// Whether any subscription has recorded native resource `native_id`.
    pub async fn native_is_recorded(&self, native_id: &str) -> Result<bool, Error> {
        Ok(native_resource::Entity::find()
            .filter(native_resource::Column::NativeId.eq(native_id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .is_some())
    }

    /// Forgets one native resource after it was deleted upstream.
    pub async fn forget_native(&self, tenant: &str, sub_id: &str, key: &str) -> Result<(), Error> {
        native_resource::Entity::delete_many()
            .filter(native_resource::Column::Tenant.eq(tenant))
            .filter(native_resource::Column::SubscriptionId.eq(sub_id))
            .filter(native_resource::Column::Key.eq(key))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Writes `rec` (state and the full native set) if the stored version
    /// is still `rec.version`; returns the record with its new version.
    /// A concurrent writer makes this a 409 rather than a lost update.
    pub async fn update(&self, rec: &SubscriptionRecord) -> Result<SubscriptionRecord, Error> {
        let txn = self.db.begin().await.map_err(db_err)?;
        let now = Utc::now();
        let spec = self.seal_spec(rec)?;
        let warnings = serde_json::to_string(&rec.warnings).map_err(json_err)?;
        let result = subscription::Entity::update_many()
            .col_expr(
                subscription::Column::Status,
                Expr::value(rec.status.as_str()),
            )
            .col_expr(subscription::Column::Spec, Expr::value(spec))
            .col_expr(subscription::Column::Warnings, Expr::value(warnings))
            .col_expr(
                subscription::Column::LastError,
                Expr::value(rec.last_error.clone()),
            )
            .col_expr(subscription::Column::Version, Expr::value(rec.version + 1))
            .col_expr(subscription::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                subscription::Column::LastReconciledAt,
                Expr::value(rec.last_reconciled_at),
            )
            .col_expr(
                subscription::Column::Findings,
                Expr::value(serde_json::to_string(&rec.findings).map_err(json_err)?),
            )
            .filter(subscription::Column::Tenant.eq(rec.tenant.as_str()))
            .filter(subscription::Column::Id.eq(rec.id.as_str()))
            .filter(subscription::Column::Version.eq(rec.version))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if result.rows_affected != 1 {
            return Err(Error::Conflict(format!(
                "subscription `{}` was changed concurrently; retry with its current state",
                rec.id
            )));
        }
        native_resource::Entity::delete_many()
            .filter(native_resource::Column::Tenant.eq(rec.tenant.as_str()))
            .filter(native_resource::Column::SubscriptionId.eq(rec.id.as_str()))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        for n in &rec.natives {
            upsert_native(&txn, &rec.tenant, &rec.id, n).await?;
        }
        txn.commit().await.map_err(db_err)?;
        let mut out = rec.clone();
        out.version += 1;
        out.updated_at = now;
        Ok(out)
    }

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
        subscription::Entity::update_many()
            .col_expr(subscription::Column::Status, Expr::value(status.as_str()))
            .col_expr(subscription::Column::LastError, Expr::value(last_error))
            .filter(subscription::Column::Tenant.eq(tenant))
            .filter(subscription::Column::Id.eq(id))
            .filter(subscription::Column::Status.eq(SubscriptionStatus::Pending.as_str()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

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
        audit::Entity::insert(am)
            .exec_without_returning(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
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
        if let Some(a) = after {
            q = q.filter(audit::Column::Id.gt(a));
        }
        let mut rows = q
            .order_by_asc(audit::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|r| r.id.clone())
        } else {
            None
        };
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

    /// The tenant owning subscription `id`, for admin tokens that act
    /// across tenants.
    pub async fn tenant_of(&self, id: &str) -> Result<String, Error> {
        subscription::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|r| r.tenant)
            .ok_or_else(|| Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            })
    }

    /// Takes the lock `name` if nobody holds it, without waiting: for
    /// background work that one replica at a time should do.
    pub async fn try_lock(&self, name: &str) -> Result<Option<AccountLock>, Error> {
        let local = {
            let mut map = LOCAL_LOCKS.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(name.to_owned()).or_default().clone()
        };
        let Ok(guard) = local.try_lock_owned() else {
            return Ok(None);
        };
        let txn = if self.db.get_database_backend() == DbBackend::Postgres {
            let txn = self.db.begin().await.map_err(db_err)?;
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
            if got != Some(true) {
                return Ok(None);
            }
            Some(txn)
        } else {
            None
        };
        Ok(Some(AccountLock { txn, _local: guard }))
    }

    /// Ends a reconciliation's claim with what it found, without changing
    /// the version: a pass that changed nothing the caller asked for must
    /// not invalidate their ETag. Repaired natives were recorded already.
    pub async fn finish_reconciliation(
        &self,
        tenant: &str,
        id: &str,
        status: SubscriptionStatus,
        findings: &[serde_json::Value],
    ) -> Result<(), Error> {
        subscription::Entity::update_many()
            .col_expr(subscription::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                subscription::Column::Findings,
                Expr::value(serde_json::to_string(findings).map_err(json_err)?),
            )
            .col_expr(
                subscription::Column::LastReconciledAt,
                Expr::value(Some(Utc::now())),
            )
            .filter(subscription::Column::Tenant.eq(tenant))
            .filter(subscription::Column::Id.eq(id))
            .filter(subscription::Column::Status.eq(SubscriptionStatus::Pending.as_str()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Deletes a subscription and its native records.
    pub async fn delete(&self, tenant: &str, id: &str) -> Result<(), Error> {
        let txn = self.db.begin().await.map_err(db_err)?;
        native_resource::Entity::delete_many()
            .filter(native_resource::Column::Tenant.eq(tenant))
            .filter(native_resource::Column::SubscriptionId.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let res = subscription::Entity::delete_many()
            .filter(subscription::Column::Tenant.eq(tenant))
            .filter(subscription::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            });
        }
        Ok(())
    }
}

async fn upsert_native<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    sub_id: &str,
    n: &NativeRecord,
) -> Result<(), Error> {
    let am = native_resource::ActiveModel {
        subscription_id: Set(sub_id.to_owned()),
        key: Set(n.key.clone()),
        tenant: Set(tenant.to_owned()),
        native_id: Set(n.native_id.clone()),
        events: Set(serde_json::to_string(&n.events).map_err(json_err)?),
        status: Set(if n.enabled { "active" } else { "disabled" }.to_owned()),
        created_at: Set(n.created_at),
    };
    native_resource::Entity::insert(am)
        .on_conflict(
            OnConflict::columns([
                native_resource::Column::SubscriptionId,
                native_resource::Column::Key,
            ])
            .update_columns([
                native_resource::Column::NativeId,
                native_resource::Column::Events,
                native_resource::Column::Status,
            ])
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Associated data of a row's sealed spec: it opens only on that row.
fn row_aad(tenant: &str, id: &str) -> Vec<u8> {
    format!("{tenant}\0{id}").into_bytes()
}

impl Store {
    fn seal_spec(&self, rec: &SubscriptionRecord) -> Result<String, Error> {
        let json = serde_json::to_vec(&rec.spec).map_err(json_err)?;
        self.cipher.seal(&json, &row_aad(&rec.tenant, &rec.id))
    }

    fn open_spec(
        &self,
        row: &subscription::Model,
    ) -> Result<switchboard_core::SubscriptionSpec, Error> {
        let json = self
            .cipher
            .open(&row.spec, &row_aad(&row.tenant, &row.id))?;
        serde_json::from_slice(&json).map_err(json_err)
    }

    /// Re-seals everything sealed with another key than the current one:
    /// subscription specs, journalled specs and kept idempotent replies
    /// (`switchboard secrets rotate`). Rows changed concurrently are left
    /// for the next run rather than overwritten. Returns how many values
    /// were re-sealed.
    pub async fn rotate_keys(&self) -> Result<u64, Error> {
        let current = self.cipher.current_key_id().to_owned();
        let stale = |v: &str| Cipher::key_id_of(v) != Some(current.as_str());
        let mut rotated = 0;

        let mut after: Option<String> = None;
        loop {
            let mut q = subscription::Entity::find();
            if let Some(a) = &after {
                q = q.filter(subscription::Column::Id.gt(a.as_str()));
            }
            let rows = q
                .order_by_asc(subscription::Column::Id)
                .limit(200)
                .all(&self.db)
                .await
                .map_err(db_err)?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            for row in rows.into_iter().filter(|r| stale(&r.spec)) {
                let aad = row_aad(&row.tenant, &row.id);
                let sealed = self
                    .cipher
                    .seal(&self.cipher.open(&row.spec, &aad)?, &aad)?;
                let res = subscription::Entity::update_many()
                    .col_expr(subscription::Column::Spec, Expr::value(sealed))
                    .filter(subscription::Column::Id.eq(row.id.as_str()))
                    .filter(subscription::Column::Spec.eq(row.spec.as_str()))
                    .exec(&self.db)
                    .await
                    .map_err(db_err)?;
                rotated += res.rows_affected;
            }
        }

        let mut after: Option<String> = None;
        loop {
            let mut q = operation::Entity::find();
            if let Some(a) = &after {
                q = q.filter(operation::Column::Id.gt(a.as_str()));
            }
            let rows = q
                .order_by_asc(operation::Column::Id)
                .limit(200)
                .all(&self.db)
                .await
                .map_err(db_err)?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            for row in rows {
                let aad = crate::journal::operation_aad(&row.id);
                for (col, value) in [
                    (operation::Column::BeforeSpec, &row.before_spec),
                    (operation::Column::AfterSpec, &row.after_spec),
                ] {
                    let Some(v) = value.as_deref().filter(|v| stale(v)) else {
                        continue;
                    };
                    let sealed = self.cipher.seal(&self.cipher.open(v, &aad)?, &aad)?;
                    let res = operation::Entity::update_many()
                        .col_expr(col, Expr::value(sealed))
                        .filter(operation::Column::Id.eq(row.id.as_str()))
                        .filter(col.eq(v))
                        .exec(&self.db)
                        .await
                        .map_err(db_err)?;
                    rotated += res.rows_affected;
                }
            }
        }

        // Kept replies live 24 h; there are few of them at any time.
        let rows = idempotency::Entity::find()
            .filter(idempotency::Column::ResponseBody.is_not_null())
            .all(&self.db)
            .await
            .map_err(db_err)?;
        for row in rows {
            let Some(v) = row.response_body.as_deref().filter(|v| stale(v)) else {
                continue;
            };
            let aad = crate::idempotency::reply_aad(&row.tenant, &row.key);
            let sealed = self.cipher.seal(&self.cipher.open(v, &aad)?, &aad)?;
            let res = idempotency::Entity::update_many()
                .col_expr(idempotency::Column::ResponseBody, Expr::value(sealed))
                .filter(idempotency::Column::Tenant.eq(row.tenant.as_str()))
                .filter(idempotency::Column::Key.eq(row.key.as_str()))
                .filter(idempotency::Column::ResponseBody.eq(v))
                .exec(&self.db)
                .await
                .map_err(db_err)?;
            rotated += res.rows_affected;
        }
        Ok(rotated)
    }

    fn to_active(&self, rec: &SubscriptionRecord) -> Result<subscription::ActiveModel, Error> {
        Ok(subscription::ActiveModel {
            id: Set(rec.id.clone()),
            tenant: Set(rec.tenant.clone()),
            provider: Set(rec.spec.provider.clone()),
            status: Set(rec.status.as_str().to_owned()),
            spec: Set(self.seal_spec(rec)?),
            warnings: Set(serde_json::to_string(&rec.warnings).map_err(json_err)?),
            last_error: Set(rec.last_error.clone()),
            version: Set(rec.version),
            created_at: Set(rec.created_at),
            updated_at: Set(rec.updated_at),
            last_reconciled_at: Set(rec.last_reconciled_at),
            findings: Set(serde_json::to_string(&rec.findings).map_err(json_err)?),
        })
    }

    fn record_from_rows(
        &self,
        row: subscription::Model,
        natives: Vec<native_resource::Model>,
    ) -> Result<SubscriptionRecord, Error> {
        let natives = natives
            .into_iter()
            .map(|n| {
                Ok(NativeRecord {
                    key: n.key,
                    native_id: n.native_id,
                    events: serde_json::from_str(&n.events).map_err(json_err)?,
                    enabled: n.status == "active",
                    created_at: n.created_at,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(SubscriptionRecord {
            status: SubscriptionStatus::parse(&row.status).ok_or_else(|| {
                Error::Internal(format!("unknown stored status `{}`", row.status))
            })?,
            spec: self.open_spec(&row)?,
            warnings: serde_json::from_str(&row.warnings).map_err(json_err)?,
            id: row.id,
            tenant: row.tenant,
            last_error: row.last_error,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_reconciled_at: row.last_reconciled_at,
            findings: serde_json::from_str(&row.findings).unwrap_or_default(),
            natives,
        })
    }
}
