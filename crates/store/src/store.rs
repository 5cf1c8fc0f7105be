//! The store handle: connecting (and migrating) SQLite or Postgres, the
//! pool settings, readiness, and the error conversions the other modules
//! share. What the store keeps lives beside it, one module per concern:
//! `subscriptions` (rows and their sealed specs), `claims` (the `pending`
//! protocol), `natives` (native-resource records), `locks` (account and
//! liveness locks), `audit`, `keys` (key rotation), `journal`,
//! `idempotency` and `verifications` (steps whose outcome was unknown);
//! `keyset` pages through a table by id for all of them.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};
use switchboard_core::Error;
use switchboard_migration::{Migrator, MigratorTrait};

use crate::Cipher;

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

pub(crate) fn db_err(e: DbErr) -> Error {
    Error::Store(e.to_string())
}

pub(crate) fn json_err(e: serde_json::Error) -> Error {
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
}
