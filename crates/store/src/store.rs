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
use crate::inline::InlineReads;
use crate::pg_warm::Warm;
use crate::script::{CHECKPOINT_BACKSTOP_PAGES, Writer};

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

/// Handle to the database; cheap to clone (one reference count).
#[derive(Debug, Clone)]
pub struct Store(Arc<Pools>);

impl std::ops::Deref for Store {
    type Target = Pools;

    fn deref(&self) -> &Pools {
        &self.0
    }
}

/// What a [`Store`] holds; read through `Deref`.
#[derive(Debug)]
pub struct Pools {
    /// Where every write (and every read that decides a write) goes. On
    /// SQLite this is one connection: SQLite admits one writer at a time,
    /// and writers on several connections meet `SQLITE_BUSY` and sleep in
    /// the busy handler, which is what made tail latency hundreds of ms.
    /// Waiting for the pool instead is a fair FIFO queue.
    pub(crate) db: DatabaseConnection,
    /// Runs every script on a thread of its own (SQLite files only; see
    /// `script.rs`).
    pub(crate) writer: Option<Arc<Writer>>,
    /// Read-only queries that serve the API (get, list, history). On
    /// SQLite a pool beside the writer (WAL lets readers proceed while it
    /// commits); on Postgres, and for in-memory SQLite, the same pool.
    pub(crate) read: DatabaseConnection,
    /// The hottest API reads, on the calling thread (SQLite files only;
    /// see `inline.rs`).
    pub(crate) inline: Option<InlineReads>,
    /// Connections kept between the scripts and hot reads that run
    /// through sqlx directly (Postgres only; see `pg_warm.rs`).
    pub(crate) warm: Option<Warm>,
    pub(crate) cipher: Arc<Cipher>,
    /// This process's identity in the journal (`op.owner`).
    pub(crate) replica_id: String,
}

pub(crate) fn db_err(e: DbErr) -> Error {
    if let Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) = e.sql_err()
        && violates_key_index(&message)
    {
        return key_taken();
    }
    Error::Store(e.to_string())
}

/// Whether a unique violation's message is about a subscription's key:
/// Postgres names the index, SQLite the columns.
pub(crate) fn violates_key_index(message: &str) -> bool {
    message.contains("idx_subscriptions_tenant_key") || message.contains("subscriptions.key")
}

/// A key another subscription of the tenant has: the unique index refused
/// it (a concurrent writer got there between the check and the write).
pub(crate) fn key_taken() -> Error {
    Error::Taken(switchboard_core::FieldError::new(
        "/key",
        "is already the key of another subscription of this tenant",
    ))
}

pub(crate) fn json_err(e: serde_json::Error) -> Error {
    Error::Internal(format!("stored JSON is unreadable: {e}"))
}

/// Any value that fits in the advisory-lock key space; names the
/// migration lock so concurrent replicas migrate one at a time.
const MIGRATION_LOCK_KEY: i64 = 0x5357_4954_4348_0001;

static SQLITE_MIGRATIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Size of SQLite's read pool: `max_connections`, but no more than two per
/// core. A SQLite read runs on its connection's own thread and uses the CPU
/// only, so connections beyond that add thread switches and no throughput
/// (measured in docs/benchmarks.md).
fn sqlite_readers(max_connections: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    max_connections.clamp(1, (2 * cores).max(2))
}

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
            let db = Database::connect(Self::options(opts, 1))
                .await
                .map_err(db_err)?;
            {
                // SQLite is the single-process embedded store; this lock
                // keeps two stores opened by one process (tests, tools)
                // from racing.
                let _guard = SQLITE_MIGRATIONS.lock().await;
                Migrator::up(&db, None).await.map_err(db_err)?;
            }
            // An in-memory database lives in its connections' pool: a
            // second pool would open a second, empty database.
            let in_memory = opts.url.contains(":memory:") || opts.url.contains("mode=memory");
            if in_memory {
                return Ok(Self::from_db(db, opts));
            }
            let readers = Self::options(opts, sqlite_readers(opts.max_connections));
            let read = Database::connect(readers).await.map_err(db_err)?;
            let writer = Writer::start(
                db.get_sqlite_connection_pool().clone(),
                read.get_sqlite_connection_pool().clone(),
            )?;
            let file = db
                .get_sqlite_connection_pool()
                .connect_options()
                .get_filename()
                .to_owned();
            let sqlite_file = Some((Arc::new(writer), InlineReads::new(file)));
            Ok(Self::from_parts(db, read, sqlite_file, opts))
        }
    }

    fn from_db(db: DatabaseConnection, opts: &StoreOptions) -> Self {
        Self::from_parts(db.clone(), db, None, opts)
    }

    fn from_parts(
        db: DatabaseConnection,
        read: DatabaseConnection,
        sqlite_file: Option<(Arc<Writer>, InlineReads)>,
        opts: &StoreOptions,
    ) -> Self {
        let (writer, inline) = sqlite_file.unzip();
        // Three quarters of the pool at most, so the rest stays free for
        // the work that goes through sea-orm (claims, relay deliveries,
        // reconciliation).
        let warm = (db.get_database_backend() == DbBackend::Postgres).then(|| {
            let max = opts.max_connections as usize;
            let keep = (max - max / 4).min(max.saturating_sub(1)).max(1);
            Warm::new(db.get_postgres_connection_pool().clone(), keep)
        });
        Self(Arc::new(Pools {
            db,
            read,
            writer,
            inline,
            warm,
            cipher: Arc::new(opts.cipher.clone()),
            replica_id: format!("rep_{}", ulid::Ulid::new()),
        }))
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
        // A connection is pinged before use only where it can go stale: a
        // Postgres connection idle long enough for a proxy or firewall to
        // have dropped it. Each ping is a round trip (on SQLite a hand-off
        // to the connection's thread), which on the hot path doubled the
        // cost of a read and added one to every batched commit.
        if opts.url.starts_with("postgres") {
            o.test_before_acquire_if_idle_for(Duration::from_secs(30));
        } else {
            o.test_before_acquire(false);
        }
        // WAL lets readers proceed while the writer commits; NORMAL
        // synchronisation is durable across process crashes (a power loss
        // may lose the last commits, never corrupt); the busy timeout only
        // matters for another process (the CLI) opening the file. The
        // writer's page cache keeps the hot index pages; readers keep the
        // default, so memory stays flat however large the table grows.
        let cache_kib = if max == 1 { "-16384" } else { "-2048" };
        // The writer leaves checkpoints to a reader (see `Writer`) and
        // checkpoints itself only past a backstop.
        let checkpoint_pages = if max == 1 {
            CHECKPOINT_BACKSTOP_PAGES.to_string()
        } else {
            "1000".to_owned()
        };
        o.map_sqlx_sqlite_opts(move |s| {
            s.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("cache_size", cache_kib)
                .pragma("temp_store", "memory")
                .pragma("wal_autocheckpoint", checkpoint_pages.clone())
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
