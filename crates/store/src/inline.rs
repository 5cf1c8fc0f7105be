//! The API's hottest reads on a SQLite file (a subscription by id or by
//! key, a page of the list), run on the calling thread through rusqlite
//! connections of their own.
//!
//! Through sqlx each query is a hand-off to its connection's worker thread
//! and back (a futex wake each way), and every value of every row is copied
//! (`sqlite3_value_dup`) before sea-orm decodes it. In a profile of get by
//! id the hand-off was a quarter of the samples; in list the copies and the
//! re-preparing of the join were a third (docs/benchmarks.md). Here the
//! statement is prepared once per connection, its columns are read in place
//! and decoded straight into the row models.
//!
//! Running on the async runtime's thread is deliberate and bounded: in WAL
//! mode a reader never waits for the writer (it reads the snapshot at its
//! start), and each query here is one indexed lookup of at most one page
//! (≤ 201 rows), a few tens of microseconds of CPU against cached pages,
//! less than encoding the response afterwards. Nothing here awaits, so a
//! connection is never held across a suspension point.
//!
//! Each lookup is one statement (the row joined with its natives), so it
//! reads one consistent snapshot, as the sea-orm query it replaces did.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{Connection, OpenFlags, Row};
use switchboard_core::Error;

use crate::ListQuery;
use crate::entity::{native_resource, subscription};

/// Idle connections kept: one per thread that reads at the same time
/// (the runtime's workers); more are opened on demand and closed after.
const KEEP_IDLE: usize = 8;

/// Prepared statements kept per connection: the two lookups and the list
/// page's variants (one per combination of its four optional filters).
const STATEMENTS: usize = 32;

/// Page cache per connection, as the read pool's (`store.rs`): memory stays
/// flat however large the table grows.
const CACHE_KIB: i64 = 2048;

/// A subscription with its natives, in key order.
pub(crate) type WithNatives = (subscription::Model, Vec<native_resource::Model>);

/// Read-only connections to one SQLite file, taken and returned within one
/// synchronous call.
pub(crate) struct InlineReads {
    path: PathBuf,
    /// Connections not in use. Invariant: each is outside any transaction.
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for InlineReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReads")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The subscription columns, in [`subscription_at`]'s order (and
/// `pg_reads`').
pub(crate) const SUBSCRIPTION: &str = "s.id, s.tenant, s.provider, s.account, s.status, s.spec, s.warnings, \
     s.last_error, s.version, s.created_at, s.updated_at, s.last_reconciled_at, s.findings, s.key";
/// How many there are: the natives' columns follow.
pub(crate) const SUBSCRIPTION_COLUMNS: usize = 14;
/// The native columns, in [`native_at`]'s order.
pub(crate) const NATIVE: &str =
    "n.subscription_id, n.key, n.tenant, n.native_id, n.events, n.status, n.created_at";

impl InlineReads {
    /// Reads of the database file at `path` (opened on first use).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The subscription `id` of `tenant`, with its natives.
    pub(crate) fn by_id(&self, tenant: &str, id: &str) -> Result<Option<WithNatives>, Error> {
        self.one("s.id = ?1 AND s.tenant = ?2", &[&id, &tenant])
    }

    /// The subscription of `tenant` whose key is `key`, with its natives.
    pub(crate) fn by_key(&self, tenant: &str, key: &str) -> Result<Option<WithNatives>, Error> {
        self.one("s.tenant = ?1 AND s.key = ?2", &[&tenant, &key])
    }

    /// The one subscription `filter` admits (a unique index), with its
    /// natives.
    fn one(
        &self,
        filter: &str,
        values: &[&dyn rusqlite::ToSql],
    ) -> Result<Option<WithNatives>, Error> {
        self.rows(&one_sql(filter), values)
            .map(|rows| rows.into_iter().next())
    }

    /// Up to `q.limit + 1` subscriptions past the cursor in id order, with
    /// their natives (the extra row tells `page_of` whether a next page
    /// exists).
    pub(crate) fn page(
        &self,
        tenant: Option<&str>,
        q: &ListQuery,
    ) -> Result<Vec<WithNatives>, Error> {
        let page = PageSql::new(tenant, q, |_| "?".to_owned());
        let mut values: Vec<&dyn rusqlite::ToSql> = page
            .bound
            .iter()
            .map(|v| v as &dyn rusqlite::ToSql)
            .collect();
        values.push(&page.limit);
        self.rows(&page.sql, &values)
    }

    /// Runs `sql` and folds its rows (a subscription's columns, then one
    /// native's or nulls) into subscriptions with their natives.
    fn rows(&self, sql: &str, values: &[&dyn rusqlite::ToSql]) -> Result<Vec<WithNatives>, Error> {
        self.with(|db| {
            let mut stmt = db.prepare_cached(sql)?;
            let mut rows = stmt.query(values)?;
            let mut out: Vec<WithNatives> = Vec::new();
            while let Some(row) = rows.next()? {
                let id = row.get_ref(0)?.as_str()?;
                fold(
                    &mut out,
                    id,
                    || subscription_at(row),
                    native_at(row, SUBSCRIPTION_COLUMNS)?,
                )?;
            }
            Ok(out)
        })
    }

    /// Calls `f` with an idle connection (or a new one) and returns it to
    /// the idle list after.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, Error> {
        let idle = self.lock().pop();
        let db = match idle {
            Some(db) => db,
            None => self.open().map_err(read_err)?,
        };
        let out = f(&db);
        let mut idle = self.lock();
        if idle.len() < KEEP_IDLE && db.is_autocommit() {
            idle.push(db);
        }
        out.map_err(read_err)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The list is consistent whatever a panicking holder was doing.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let db = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The busy timeout matters only while another process recovers the
        // WAL after a crash; the store's own checkpoints are passive.
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.pragma_update(None, "cache_size", -CACHE_KIB)?;
        db.pragma_update(None, "query_only", true)?;
        db.set_prepared_statement_cache_capacity(STATEMENTS);
        // Plans that do not depend on the bound values: without it a
        // page's statement was prepared again at every step whose cursor or
        // limit differed from the last (`sqlite3Reprepare`, 15% of a list's
        // profile).
        db.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        Ok(db)
    }
}

/// The statement of a single subscription's lookup; `filter` (on `s`)
/// picks it by a unique index.
pub(crate) fn one_sql(filter: &str) -> String {
    format!(
        "SELECT {SUBSCRIPTION}, {NATIVE} FROM subscriptions s \
         LEFT JOIN native_resources n ON n.subscription_id = s.id \
         WHERE {filter} ORDER BY n.key"
    )
}

/// The statement of a list page: up to `q.limit + 1` subscriptions past the
/// cursor in id order, joined with their natives.
pub(crate) struct PageSql<'a> {
    /// The statement; its placeholders are the filters' values, then the
    /// limit.
    pub(crate) sql: String,
    /// The filters' values, in placeholder order.
    pub(crate) bound: Vec<&'a str>,
    /// The last placeholder's value.
    pub(crate) limit: i64,
}

impl<'a> PageSql<'a> {
    /// The page of `q` (and `tenant`, unless listing every tenant's), the
    /// `n`-th placeholder (from 1) written by `placeholder`.
    pub(crate) fn new(
        tenant: Option<&'a str>,
        q: &'a ListQuery,
        placeholder: impl Fn(usize) -> String,
    ) -> Self {
        let status = q.status.map(|s| s.as_str());
        let (conditions, bound): (Vec<&str>, Vec<&str>) = [
            ("tenant =", tenant),
            ("provider =", q.provider.as_deref()),
            ("status =", status),
            ("id >", q.after.as_deref()),
        ]
        .into_iter()
        .filter_map(|(condition, value)| Some((condition, value?)))
        .unzip();
        let filters: Vec<String> = conditions
            .iter()
            .enumerate()
            .map(|(i, condition)| format!("{condition} {}", placeholder(i + 1)))
            .collect();
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let limit_at = placeholder(bound.len() + 1);
        let sql = format!(
            "SELECT {SUBSCRIPTION}, {NATIVE} FROM \
             (SELECT * FROM subscriptions {filter} ORDER BY id LIMIT {limit_at}) s \
             LEFT JOIN native_resources n ON n.subscription_id = s.id \
             ORDER BY s.id, n.key"
        );
        Self {
            sql,
            bound,
            limit: i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX),
        }
    }
}

/// Adds one row of a lookup or page (a subscription's columns, then one
/// native's or nulls; rows of one subscription are adjacent) to `out`.
pub(crate) fn fold<E>(
    out: &mut Vec<WithNatives>,
    id: &str,
    subscription: impl FnOnce() -> Result<subscription::Model, E>,
    native: Option<native_resource::Model>,
) -> Result<(), E> {
    if out.last().is_none_or(|(s, _)| s.id != id) {
        out.push((subscription()?, Vec::new()));
    }
    if let (Some(native), Some((_, natives))) = (native, out.last_mut()) {
        natives.push(native);
    }
    Ok(())
}

fn read_err(e: rusqlite::Error) -> Error {
    Error::Store(e.to_string())
}

/// The subscription in the row's first columns.
fn subscription_at(row: &Row<'_>) -> rusqlite::Result<subscription::Model> {
    Ok(subscription::Model {
        id: row.get(0)?,
        tenant: row.get(1)?,
        provider: row.get(2)?,
        account: row.get(3)?,
        status: row.get(4)?,
        spec: row.get(5)?,
        warnings: row.get(6)?,
        last_error: row.get(7)?,
        version: row.get(8)?,
        created_at: time_at(row, 9)?,
        updated_at: time_at(row, 10)?,
        last_reconciled_at: optional_time_at(row, 11)?,
        findings: row.get(12)?,
        key: row.get(13)?,
    })
}

/// The native in the columns from `at`, or `None` where the left join
/// found none.
fn native_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<native_resource::Model>> {
    let Some(subscription_id) = row.get::<_, Option<String>>(at)? else {
        return Ok(None);
    };
    Ok(Some(native_resource::Model {
        subscription_id,
        key: row.get(at + 1)?,
        tenant: row.get(at + 2)?,
        native_id: row.get(at + 3)?,
        events: row.get(at + 4)?,
        status: row.get(at + 5)?,
        created_at: time_at(row, at + 6)?,
    }))
}

fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    optional_time_at(row, idx)?.ok_or(rusqlite::Error::InvalidColumnType(
        idx,
        "timestamp".into(),
        rusqlite::types::Type::Null,
    ))
}

/// A timestamp as sqlx stores one in SQLite: RFC 3339 text (what the
/// store writes), or SQLite's own `YYYY-MM-DD HH:MM:SS[.fff]` in UTC.
fn optional_time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let Some(text) = row.get_ref(idx)?.as_str_or_null()? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map(Some)
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
        })
}
