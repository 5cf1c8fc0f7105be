//! One write transaction as a list of statements, run in as few round
//! trips as the backend allows.
//!
//! On SQLite, scripts run on a thread of their own ([`Writer`]) that owns
//! the one writer connection: it locks sqlx's connection and runs the
//! statements itself ([`crate::direct`]), so a statement costs neither a
//! hand-off to sqlx's worker thread nor a fresh prepare, and the
//! connection never waits for a turn on the busy request workers.
//! Scripts without a guard (a create's opening, progress, audit entries,
//! closed journal entries, accepted relay events and attempt outcomes) are
//! committed together: while one commit runs, the scripts that arrive
//! wait in a queue, and the next commit takes them all. Each caller still
//! returns only once its own statements are committed; a batch that fails
//! is run again script by script, so one bad script fails alone. A guarded
//! statement (the version check, the claim) whose row count is not 1 rolls
//! its script back.
//!
//! On Postgres the same statements run one by one in a transaction
//! through sqlx, on a connection kept warm between uses
//! ([`crate::pg_warm`]); a script of one unguarded statement runs without
//! `BEGIN` and `COMMIT`, and one of unguarded inserts into distinct tables,
//! or one whose builder declares that it writes each row once, as one
//! statement ([`as_one`]).

use sea_orm::sqlx::{self, SqliteConnection};
use sea_orm::{DbBackend, QueryTrait, Statement};
use switchboard_core::Error;

use crate::direct;
use crate::store::{Store, key_taken, violates_key_index};

/// Most scripts one batched commit takes.
const BATCH: usize = 64;

/// Least time between two background checkpoints while writes go on.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// WAL frames after which the writer checkpoints itself (SQLite's
/// `wal_autocheckpoint`): only a backstop for when the background
/// checkpoints fall behind; set on the writer connection in `store.rs`.
pub(crate) const CHECKPOINT_BACKSTOP_PAGES: u32 = 20_000;

/// The statements of one transaction, in order.
pub(crate) struct Script {
    backend: DbBackend,
    steps: Vec<(Statement, Option<Error>)>,
    /// Set by [`Script::rows_written_once`]: on Postgres the script may
    /// run as one statement.
    written_once: bool,
}

impl Script {
    /// Appends `query`.
    pub(crate) fn push(&mut self, query: &impl QueryTrait) {
        self.steps.push((query.build(self.backend), None));
    }

    /// Appends a plain sea-query statement (one sea-orm's query builders
    /// cannot express, such as `INSERT … SELECT`).
    pub(crate) fn push_statement(&mut self, stmt: &impl sea_orm::StatementBuilder) {
        self.steps.push((self.backend.build(stmt), None));
    }

    /// Appends `query`, which must change exactly one row: otherwise the
    /// transaction is rolled back and fails with `refusal`.
    pub(crate) fn guard(&mut self, query: &impl QueryTrait, refusal: Error) {
        self.steps.push((query.build(self.backend), Some(refusal)));
    }

    /// Declares that no statement of the script reads or writes a row
    /// that another one writes, except that a row one deletes may be
    /// inserted again by a later one: then, on Postgres, a script whose
    /// first statement is its only guard may run as one statement
    /// ([`as_one`]), whose parts share one snapshot and cannot see each
    /// other's changes.
    pub(crate) fn rows_written_once(&mut self) {
        self.written_once = true;
    }
}

fn sqlx_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
        && violates_key_index(d.message())
    {
        return key_taken();
    }
    Error::Store(e.to_string())
}

/// Rows each statement of a script changed, in order.
pub(crate) type Counts = Vec<u64>;

/// A script waiting for the writer, and where its outcome goes.
struct Job {
    steps: Vec<(Statement, Option<Error>)>,
    done: tokio::sync::oneshot::Sender<Result<Counts, Error>>,
}

impl Job {
    fn is_guarded(&self) -> bool {
        self.steps.iter().any(|(_, guard)| guard.is_some())
    }
}

/// The SQLite writer: a thread of its own, with a single-threaded runtime,
/// that runs every script on the writer connection itself
/// ([`crate::direct`]), so the connection never waits for a turn on the
/// busy request workers; scripts that queue up while one runs are taken
/// together. The thread ends when the last store handle is
/// dropped.
///
/// WAL checkpoints are taken off the writer's path: SQLite's automatic
/// checkpoint runs in the committing connection, copying pages back to the
/// database file and syncing it twice, and under relay load it ran about
/// 40 times a second inside the writer's commits. Instead, after writes,
/// a passive checkpoint runs on a read-pool connection (at most every
/// [`CHECKPOINT_EVERY`]), which SQLite allows beside a writing connection;
/// the writer's own automatic checkpoint stays as a backstop at
/// [`CHECKPOINT_BACKSTOP_PAGES`] frames.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the thread writing on `pool`'s connection and checkpointing
    /// on one of `readers`.
    pub(crate) fn start(pool: sqlx::SqlitePool, readers: sqlx::SqlitePool) -> Result<Self, Error> {
        let (queue, jobs) = tokio::sync::mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Store(format!("cannot start the SQLite writer: {e}")))?;
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let wrote = tokio::sync::Notify::new();
                    // The checkpoints never end on their own; they stop
                    // with the writer.
                    tokio::select! {
                        () = write(pool, jobs, &wrote) => {}
                        () = checkpoint(readers, &wrote) => {}
                    }
                })
            })
            .map_err(|e| Error::Store(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { queue })
    }

    async fn run(&self, steps: Vec<(Statement, Option<Error>)>) -> Result<Counts, Error> {
        let stopped = || Error::Store("the SQLite writer has stopped".into());
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.queue
            .send(Job { steps, done })
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

async fn write(
    pool: sqlx::SqlitePool,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
    wrote: &tokio::sync::Notify,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let failed = |batch: Vec<Job>, e: Error| {
            for job in batch {
                let _ = job.done.send(Err(e.clone()));
            }
        };
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                failed(batch, sqlx_err(e));
                continue;
            }
        };
        let mut handle = match conn.lock_handle().await {
            Ok(h) => h,
            Err(e) => {
                failed(batch, sqlx_err(e));
                continue;
            }
        };
        let mut left = Some(batch);
        let ran = direct::with_connection(&mut handle, |db| {
            if let Some(batch) = left.take() {
                run_batch(db, batch);
            }
        });
        if let (Err(e), Some(batch)) = (ran, left) {
            failed(batch, e);
        }
        wrote.notify_one();
    }
}

/// A passive checkpoint on a connection of `readers` after writes (each
/// `wrote`), at most every [`CHECKPOINT_EVERY`]. Passive: it copies what
/// no reader still needs and waits for nobody. Never returns.
async fn checkpoint(readers: sqlx::SqlitePool, wrote: &tokio::sync::Notify) {
    loop {
        wrote.notified().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&readers)
            .await
        {
            tracing::warn!(error = %e, "SQLite checkpoint failed; the writer checkpoints once the log is long");
        }
        tokio::time::sleep(CHECKPOINT_EVERY).await;
    }
}

/// Runs a batch of jobs on `db`: those without a guard in one
/// transaction (each job again on its own if that fails), then the
/// guarded ones, each in its own.
fn run_batch(db: &rusqlite::Connection, batch: Vec<Job>) {
    let (plain, guarded): (Vec<Job>, Vec<Job>) = batch.into_iter().partition(|j| !j.is_guarded());
    let together = if plain.len() > 1 {
        direct::run(db, plain.iter().flat_map(|j| &j.steps)).ok()
    } else {
        None
    };
    let mut counts = together.unwrap_or_default().into_iter();
    for job in plain.into_iter().chain(guarded) {
        let outcome = if together_ran(&counts, &job) {
            Ok(counts.by_ref().take(job.steps.len()).collect())
        } else {
            direct::run(db, &job.steps)
        };
        let _ = job.done.send(outcome);
    }
}

/// Whether `job` was committed with the batch whose remaining counts are
/// `counts` (a guarded job never is).
fn together_ran(counts: &std::vec::IntoIter<u64>, job: &Job) -> bool {
    !job.is_guarded() && counts.len() >= job.steps.len() && counts.len() > 0
}

/// Runs `steps` as one transaction on `conn` from the calling task (the
/// store without a writer thread: an in-memory database).
async fn run_on(
    conn: &mut SqliteConnection,
    steps: &[(Statement, Option<Error>)],
) -> Result<Counts, Error> {
    let mut handle = conn.lock_handle().await.map_err(sqlx_err)?;
    direct::with_connection(&mut handle, |db| direct::run(db, steps))?
}

impl Store {
    /// An empty script for the writer's backend.
    pub(crate) fn script(&self) -> Script {
        Script {
            backend: self.db.get_database_backend(),
            steps: Vec::new(),
            written_once: false,
        }
    }

    /// Runs `script` as one transaction on the writer.
    pub(crate) async fn run(&self, script: Script) -> Result<(), Error> {
        self.run_counted(script).await.map(drop)
    }

    /// [`Store::run`], returning the rows each statement changed: for a
    /// script that decides from a count without a guard, so that on SQLite
    /// it is still committed together with others.
    pub(crate) async fn run_counted(&self, script: Script) -> Result<Counts, Error> {
        match script.backend {
            DbBackend::Sqlite => match &self.writer {
                Some(writer) => writer.run(script.steps).await,
                None => {
                    let pool = self.db.get_sqlite_connection_pool();
                    let mut conn = pool.acquire().await.map_err(sqlx_err)?;
                    run_on(&mut conn, &script.steps).await
                }
            },
            _ => self.run_statements(script.steps, script.written_once).await,
        }
    }

    async fn run_statements(
        &self,
        mut steps: Vec<(Statement, Option<Error>)>,
        written_once: bool,
    ) -> Result<Counts, Error> {
        let Some(warm) = &self.warm else {
            return Err(Error::Internal(
                "a script for a backend without a writer".into(),
            ));
        };
        let mut held = warm.take().await.map_err(sqlx_err)?;
        if let Some(one) = as_one(&steps, written_once) {
            let row = match pg_query(&one).fetch_one(held.conn()).await {
                Ok(row) => row,
                Err(e) => return Err(guard_refused(&steps, &e).unwrap_or_else(|| sqlx_err(e))),
            };
            let counts = (0..steps.len())
                .map(|i| sqlx::Row::try_get::<i64, _>(&row, i).map(|n| n as u64))
                .collect::<Result<Counts, _>>()
                .map_err(sqlx_err)?;
            held.finished();
            return Ok(counts);
        }
        // One statement is a transaction of its own: without `BEGIN` and
        // `COMMIT` it is one round trip, not three. A guarded one keeps
        // them, so that a count other than 1 is rolled back.
        if let [(_, None)] = steps.as_slice()
            && let Some((stmt, _)) = steps.pop()
        {
            let done = pg_query(&stmt)
                .execute(held.conn())
                .await
                .map_err(sqlx_err)?;
            held.finished();
            return Ok(vec![done.rows_affected()]);
        }
        // Dropped without a commit (a refused guard, an error, a
        // cancelled caller), sqlx queues its rollback, and the connection
        // goes back to sqlx's pool, whose ping sends it.
        let mut txn = sqlx::Connection::begin(held.conn())
            .await
            .map_err(sqlx_err)?;
        let mut counts = Vec::with_capacity(steps.len());
        for (stmt, guard) in steps {
            let done = pg_query(&stmt).execute(&mut *txn).await.map_err(sqlx_err)?;
            if let Some(refusal) = guard
                && done.rows_affected() != 1
            {
                return Err(refusal);
            }
            counts.push(done.rows_affected());
        }
        txn.commit().await.map_err(sqlx_err)?;
        held.finished();
        Ok(counts)
    }
}

/// A Postgres script of two or more statements as one statement, each a
/// data-modifying `WITH` part and the statement's one row their counts;
/// `None` for a script that does not qualify.
///
/// One statement is one transaction and one round trip, where `BEGIN`,
/// each statement and `COMMIT` were one each: a create's opening (its
/// journal entry and its row) went from four to one, its close from six
/// to one. The parts of one statement run on one snapshot and cannot see
/// each other's changes, so a script qualifies when it is
/// - inserts only, none naming a table that an earlier one writes (which
///   also rules out two into one table), or
/// - declared [`Script::rows_written_once`] by its builder, with at most
///   one guard, on its first statement. The guard's count is checked in
///   the statement itself: any other count than 1 divides by zero, which
///   fails the whole statement, so nothing of it is written
///   ([`guard_refused`] turns that back into the guard's refusal).
///
/// Foreign keys are checked at the end of the statement, so a row may
/// still refer to one inserted before it. Parts carry no literal text,
/// whose `$` could be mistaken for a placeholder when renumbering.
fn as_one(steps: &[(Statement, Option<Error>)], written_once: bool) -> Option<Statement> {
    if steps.len() < 2 {
        return None;
    }
    let mut written: Vec<&str> = Vec::with_capacity(steps.len());
    let mut sql = String::from("WITH ");
    let mut values = Vec::new();
    for (i, (stmt, guard)) in steps.iter().enumerate() {
        let text = stmt.sql.as_str();
        if text.contains('\'') || text.contains("RETURNING") {
            return None;
        }
        if written_once {
            let writes = ["INSERT INTO ", "UPDATE ", "DELETE FROM "];
            if (guard.is_some() && i > 0) || !writes.iter().any(|w| text.starts_with(w)) {
                return None;
            }
        } else {
            let table = text.strip_prefix("INSERT INTO \"")?.split('"').next()?;
            if guard.is_some() || written.iter().any(|t| text.contains(&format!("\"{t}\""))) {
                return None;
            }
            written.push(table);
        }
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("s{i} AS ("));
        renumber_into(&mut sql, text, values.len());
        sql.push_str(" RETURNING 1)");
        values.extend(stmt.values.iter().flat_map(|v| v.0.iter().cloned()));
    }
    let mut columns: Vec<String> = (0..steps.len())
        .map(|i| format!("(SELECT count(*) FROM s{i})"))
        .collect();
    if steps[0].1.is_some() {
        columns.push("1 / ((SELECT count(*) FROM s0) = 1)::int".to_owned());
    }
    sql.push_str(" SELECT ");
    sql.push_str(&columns.join(", "));
    Some(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
}

/// The refusal of the guard of `steps` when `e` is the division by zero
/// with which [`as_one`]'s statement fails a guard; `None` for any other
/// error.
fn guard_refused(steps: &[(Statement, Option<Error>)], e: &sqlx::Error) -> Option<Error> {
    const DIVISION_BY_ZERO: &str = "22012";
    match e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some(DIVISION_BY_ZERO) => {
            steps.first()?.1.clone()
        }
        _ => None,
    }
}

/// Appends `text` to `sql` with each placeholder `$n` written `$(n + by)`.
fn renumber_into(sql: &mut String, text: &str, by: usize) {
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        sql.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => sql.push_str(&(n + by).to_string()),
            Err(_) => sql.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    sql.push_str(rest);
}

/// `stmt` as a sqlx query on Postgres, its values bound in order.
fn pg_query(
    stmt: &Statement,
) -> sqlx::query::Query<'_, sqlx::Postgres, sea_query_sqlx::SqlxValues> {
    let values = stmt.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
    sqlx::query_with(
        sqlx::AssertSqlSafe(stmt.sql.as_str()),
        sea_query_sqlx::SqlxValues(values),
    )
}

#[cfg(test)]
mod tests {
    use sea_orm::Value;

    use super::*;

    fn pg(sql: &str, values: &[&str]) -> Statement {
        let values = values.iter().map(|v| Value::from(*v));
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    fn unguarded(statements: Vec<Statement>) -> Vec<(Statement, Option<Error>)> {
        statements.into_iter().map(|s| (s, None)).collect()
    }

    #[test]
    fn inserts_into_distinct_tables_become_one_statement() {
        let steps = unguarded(vec![
            pg(
                r#"INSERT INTO "ops" ("a", "b") VALUES ($1, $2)"#,
                &["1", "2"],
            ),
            pg(
                r#"INSERT INTO "subs" ("a", "b") VALUES ($1, $2), ($3, $4)"#,
                &["3", "4", "5", "6"],
            ),
        ]);
        let one = as_one(&steps, false).unwrap();
        assert_eq!(
            one.sql,
            r#"WITH s0 AS (INSERT INTO "ops" ("a", "b") VALUES ($1, $2) RETURNING 1), s1 AS (INSERT INTO "subs" ("a", "b") VALUES ($3, $4), ($5, $6) RETURNING 1) SELECT (SELECT count(*) FROM s0), (SELECT count(*) FROM s1)"#
        );
        let bound: Vec<Value> = ["1", "2", "3", "4", "5", "6"].map(Value::from).into();
        assert_eq!(one.values.unwrap().0, bound);
    }

    #[test]
    fn placeholders_past_nine_are_renumbered_whole() {
        let mut sql = String::new();
        renumber_into(&mut sql, "VALUES ($1, $10, $2)", 9);
        assert_eq!(sql, "VALUES ($10, $19, $11)");
    }

    #[test]
    fn other_scripts_keep_their_statements() {
        let ops = || pg(r#"INSERT INTO "ops" ("a") VALUES ($1)"#, &["1"]);
        let alone = unguarded(vec![ops()]);
        assert!(as_one(&alone, false).is_none(), "one statement");
        let guarded = vec![
            (ops(), None),
            (
                pg(r#"INSERT INTO "subs" ("a") VALUES ($1)"#, &["2"]),
                Some(Error::Conflict("taken".into())),
            ),
        ];
        assert!(as_one(&guarded, false).is_none(), "a guard");
        let twice = unguarded(vec![ops(), ops()]);
        assert!(as_one(&twice, false).is_none(), "one table twice");
        let reads_earlier = unguarded(vec![
            ops(),
            pg(r#"INSERT INTO "subs" ("a") SELECT "a" FROM "ops""#, &[]),
        ]);
        assert!(
            as_one(&reads_earlier, false).is_none(),
            "reads a table written before"
        );
        let update = unguarded(vec![ops(), pg(r#"UPDATE "subs" SET "a" = $1"#, &["2"])]);
        assert!(as_one(&update, false).is_none(), "not an insert");
        let literal = unguarded(vec![
            ops(),
            pg(r#"INSERT INTO "subs" ("a") VALUES ('$1')"#, &[]),
        ]);
        assert!(as_one(&literal, false).is_none(), "literal text");
    }

    #[test]
    fn a_script_writing_rows_once_is_one_statement_that_checks_its_guard() {
        let steps = vec![
            (
                pg(
                    r#"UPDATE "subs" SET "v" = $1 WHERE "id" = $2 AND "v" = $3"#,
                    &["2", "s", "1"],
                ),
                Some(Error::Conflict("moved on".into())),
            ),
            (
                pg(r#"DELETE FROM "natives" WHERE "sub" = $1"#, &["s"]),
                None,
            ),
            (
                pg(
                    r#"INSERT INTO "natives" ("sub", "key") VALUES ($1, $2) ON CONFLICT ("sub", "key") DO UPDATE SET "key" = "excluded"."key""#,
                    &["s", "k"],
                ),
                None,
            ),
        ];
        assert!(as_one(&steps, false).is_none(), "not declared");
        let one = as_one(&steps, true).unwrap();
        assert_eq!(
            one.sql,
            r#"WITH s0 AS (UPDATE "subs" SET "v" = $1 WHERE "id" = $2 AND "v" = $3 RETURNING 1), s1 AS (DELETE FROM "natives" WHERE "sub" = $4 RETURNING 1), s2 AS (INSERT INTO "natives" ("sub", "key") VALUES ($5, $6) ON CONFLICT ("sub", "key") DO UPDATE SET "key" = "excluded"."key" RETURNING 1) SELECT (SELECT count(*) FROM s0), (SELECT count(*) FROM s1), (SELECT count(*) FROM s2), 1 / ((SELECT count(*) FROM s0) = 1)::int"#
        );
        assert_eq!(one.values.unwrap().0.len(), 6);

        let mut late_guard = steps.clone();
        late_guard.swap(0, 1);
        assert!(
            as_one(&late_guard, true).is_none(),
            "a guard after the first statement"
        );
        let read = vec![
            (
                pg(r#"DELETE FROM "natives" WHERE "sub" = $1"#, &["s"]),
                None,
            ),
            (pg(r#"SELECT 1"#, &[]), None),
        ];
        assert!(as_one(&read, true).is_none(), "not a write");
    }
}
