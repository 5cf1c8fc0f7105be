//! Running a script's statements on the SQLite writer's own thread, on the
//! connection sqlx opened, without sqlx in between.
//!
//! Through sqlx every call is a hand-off to the connection's worker thread
//! and back, and a multi-statement call is prepared anew each time (its
//! text is different for every batch), so a batched commit of 64 scripts
//! prepared about 130 statements and the writer spent most of its time in
//! preparing and in hand-offs (docs/benchmarks.md). Here the writer thread
//! locks sqlx's connection ([`LockedSqliteHandle`]), runs each statement
//! itself through rusqlite, and keeps the prepared statement of each
//! distinct SQL text for the rest of the batch: a batch of accepted relay
//! events prepares two statements, not 128.
//!
//! Values are bound exactly as sqlx binds them for SQLite (booleans as
//! integers, timestamps as RFC 3339 text with `+00:00`, JSON as text), so
//! what is written here reads back through sea-orm unchanged and compares
//! in SQL as rows sqlx wrote do.

use chrono::SecondsFormat;
use rusqlite::types::Value as Sql;
use sea_orm::Statement;
use sea_orm::sea_query::Value;
use sea_orm::sqlx::sqlite::LockedSqliteHandle;
use switchboard_core::Error;

use crate::script::Counts;
use crate::store::{key_taken, violates_key_index};

/// Calls `f` with a rusqlite view of the connection `handle` has locked.
#[allow(unsafe_code)]
pub(crate) fn with_connection<T>(
    handle: &mut LockedSqliteHandle<'_>,
    f: impl FnOnce(&rusqlite::Connection) -> T,
) -> Result<T, Error> {
    let raw = handle.as_raw_handle().as_ptr();
    // SAFETY: `raw` is sqlx's open connection, and while `handle` is
    // borrowed sqlx's worker thread cannot use it (the handle holds the
    // connection's lock), so this thread is its only user. `from_handle`
    // does not take ownership: dropping the rusqlite connection finalizes
    // the statements it prepared and never closes `raw`, and it is dropped
    // here, before the borrow of `handle` ends.
    let db = unsafe { rusqlite::Connection::from_handle(raw) }.map_err(sqlite_err)?;
    let out = f(&db);
    drop(db);
    Ok(out)
}

/// Runs `steps` between `BEGIN IMMEDIATE` and `COMMIT` on `db`, rolled
/// back on any error or failed guard; returns each step's changed-row
/// count.
pub(crate) fn run<'a>(
    db: &rusqlite::Connection,
    steps: impl IntoIterator<Item = &'a (Statement, Option<Error>)>,
) -> Result<Counts, Error> {
    db.execute_batch("BEGIN IMMEDIATE").map_err(sqlite_err)?;
    let ran = run_steps(db, steps).and_then(|counts| {
        db.execute_batch("COMMIT").map_err(sqlite_err)?;
        Ok(counts)
    });
    if ran.is_err() && !db.is_autocommit() {
        // Still inside the transaction: end it, so the connection goes
        // back to the pool clean.
        let _ = db.execute_batch("ROLLBACK");
    }
    ran
}

fn run_steps<'a>(
    db: &rusqlite::Connection,
    steps: impl IntoIterator<Item = &'a (Statement, Option<Error>)>,
) -> Result<Counts, Error> {
    let mut counts = Vec::new();
    for (stmt, guard) in steps {
        let values = match &stmt.values {
            Some(v) => v.0.iter().map(to_sql).collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let mut prepared = db.prepare_cached(&stmt.sql).map_err(sqlite_err)?;
        let changed = prepared
            .execute(rusqlite::params_from_iter(values))
            .map_err(sqlite_err)? as u64;
        if let Some(refusal) = guard
            && changed != 1
        {
            return Err(refusal.clone());
        }
        counts.push(changed);
    }
    Ok(counts)
}

/// `v` as sqlx's SQLite encoding stores it (`sea-query-sqlx` and sqlx's
/// `Encode` for SQLite).
fn to_sql(v: &Value) -> Result<Sql, Error> {
    fn int(i: Option<impl Into<i64>>) -> Sql {
        i.map_or(Sql::Null, |i| Sql::Integer(i.into()))
    }
    fn text(s: Option<String>) -> Sql {
        s.map_or(Sql::Null, Sql::Text)
    }
    Ok(match v {
        Value::Bool(b) => int(*b),
        Value::TinyInt(i) => int(*i),
        Value::SmallInt(i) => int(*i),
        Value::Int(i) => int(*i),
        Value::BigInt(i) => int(*i),
        Value::TinyUnsigned(i) => int(*i),
        Value::SmallUnsigned(i) => int(*i),
        Value::Unsigned(i) => int(*i),
        Value::BigUnsigned(i) => match i.map(i64::try_from).transpose() {
            Ok(i) => int(i),
            Err(_) => return Err(Error::Internal("an unsigned value beyond i64".into())),
        },
        Value::Float(f) => f.map_or(Sql::Null, |f| Sql::Real(f.into())),
        Value::Double(f) => f.map_or(Sql::Null, Sql::Real),
        Value::String(s) => text(s.clone()),
        Value::Char(c) => text(c.map(String::from)),
        Value::Bytes(b) => b.clone().map_or(Sql::Null, Sql::Blob),
        Value::Json(j) => text(j.as_ref().map(|j| j.to_string())),
        Value::ChronoDate(d) => text(d.map(|d| d.format("%F").to_string())),
        Value::ChronoDateTime(t) => text(t.map(|t| t.format("%F %T%.f").to_string())),
        Value::ChronoDateTimeUtc(t) => {
            text(t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, false)))
        }
        Value::ChronoDateTimeWithTimeZone(t) => {
            text(t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, false)))
        }
        other => {
            return Err(Error::Internal(format!(
                "the SQLite writer cannot bind {other:?}"
            )));
        }
    })
}

/// A SQLite error as the store reports it: a unique violation of a
/// subscription's key is [`key_taken`], as through sqlx.
fn sqlite_err(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, Some(message)) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
        && violates_key_index(message)
    {
        return key_taken();
    }
    Error::Store(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use sea_orm::sqlx::{self, Row};

    /// Every value kind the store binds reads back through sqlx as what
    /// sqlx itself writes for it, so rows written either way compare
    /// alike in SQL.
    #[tokio::test]
    async fn values_are_stored_as_sqlx_stores_them() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap()
            + chrono::Duration::microseconds(123_456);
        let values = [
            Value::Bool(Some(true)),
            Value::Int(Some(-7)),
            Value::BigInt(Some(1 << 40)),
            Value::String(Some("text".into())),
            Value::String(None),
            Value::Bytes(Some(vec![0, 1, 2])),
            Value::ChronoDateTimeUtc(Some(at)),
            Value::Json(Some(Box::new(serde_json::json!({"a": [1, "b"]})))),
        ];
        let mut conn = pool.acquire().await.unwrap();
        let mut handle = conn.lock_handle().await.unwrap();
        let stored = with_connection(&mut handle, |db| {
            values
                .iter()
                .map(|v| {
                    let v = to_sql(v).unwrap();
                    db.query_row("SELECT quote(?1)", [v], |r| r.get::<_, String>(0))
                        .unwrap()
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
        drop(handle);
        let mut expected = Vec::new();
        for v in values {
            let values = sea_query_sqlx::SqlxValues(sea_orm::sea_query::Values(vec![v]));
            let row = sqlx::query_with("SELECT quote(?1)", values)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            expected.push(row.get::<String, _>(0));
        }
        assert_eq!(stored, expected);
    }

    #[tokio::test]
    async fn a_failed_guard_rolls_the_transaction_back() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let mut handle = conn.lock_handle().await.unwrap();
        let plain = |sql: &str| {
            (
                Statement::from_string(sea_orm::DbBackend::Sqlite, sql),
                None,
            )
        };
        let (left, refused) = with_connection(&mut handle, |db| {
            run(db, &[plain("CREATE TABLE t (x INTEGER)")]).unwrap();
            let guarded = (
                Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    "UPDATE t SET x = 2 WHERE x = 5",
                ),
                Some(Error::Conflict("moved on".into())),
            );
            let refused = run(db, &[plain("INSERT INTO t VALUES (1)"), guarded]);
            let left: i64 = db
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap();
            (left, refused)
        })
        .unwrap();
        assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
        assert_eq!(left, 0, "the insert before the failed guard is undone");
    }
}
