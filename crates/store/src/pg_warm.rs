//! Postgres connections the hot path keeps between uses, so that handing
//! one back costs nothing.
//!
//! sqlx pings every connection returned to its pool (one round trip, a
//! `Sync` answered by `ReadyForQuery`) to flush whatever a cancelled query
//! left behind. A get is one statement, so the ping doubled its round
//! trips; a create paid three (docs/benchmarks.md). Here a connection
//! whose work finished is kept on a shelf instead. It is taken from the
//! same pool (so every session setting, such as the schema search path,
//! is the pool's) and counted by sqlx as in use while kept.
//!
//! Only a connection whose work finished goes back on the shelf. One whose
//! holder was dropped early (a cancelled request) or failed goes back to
//! sqlx's pool, whose ping flushes the rollback sqlx queued for an
//! unfinished transaction, or closes it when broken. So does every
//! connection while the pool has none idle and cannot open more: the
//! work that goes through sea-orm (account locks, claims, relay
//! deliveries) takes its connections from the pool alone, and must not
//! wait while connections sit idle here.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::{PgConnection, PgPool};
use sea_orm::sqlx::{self, Postgres};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Longest a connection waits on the shelf before it goes back to sqlx's
/// pool (checked once per this interval). Under load a kept connection is
/// taken again within milliseconds; after a burst the pool has its
/// connections back within two intervals, so sea-orm's work never waits
/// long for connections that sit idle here, and sqlx's pool again tests a
/// connection idle long enough for a proxy or firewall to have dropped it.
const IDLE_BACK: Duration = Duration::from_secs(1);

/// Longest a connection stays out of sqlx's pool, so that the pool's own
/// lifetime and idle rules still apply to it.
const RETURN_AFTER: Duration = Duration::from_secs(300);

/// A connection on the shelf.
struct Kept {
    conn: PoolConnection<Postgres>,
    /// When it was taken from sqlx's pool.
    taken: Instant,
    /// When its last work finished.
    since: Instant,
}

/// The kept connections.
type Shelf = Mutex<Vec<Kept>>;

/// The shelf in front of sqlx's pool.
pub(crate) struct Warm {
    pool: PgPool,
    /// Most recently finished last (taken first, so a few stay hot), so
    /// the longest idle are first.
    shelf: Arc<Shelf>,
    /// One per connection the hot path may hold, in use or on the shelf:
    /// the rest of the pool stays free for the work that goes through
    /// sea-orm (claims, relay deliveries, reconciliation). Takers queue
    /// here in order, so a connection put on the shelf always finds the
    /// next taker, which never waits for sqlx's pool while connections
    /// sit idle on the shelf.
    permits: Semaphore,
}

impl std::fmt::Debug for Warm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warm")
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

impl Warm {
    /// Holds up to `keep` connections of `pool`; gives idle ones back
    /// from a task of its own, which ends with the shelf.
    pub(crate) fn new(pool: PgPool, keep: usize) -> Self {
        let shelf = Arc::new(Mutex::new(Vec::with_capacity(keep)));
        tokio::spawn(give_back_idle(Arc::downgrade(&shelf)));
        Self {
            pool,
            shelf,
            permits: Semaphore::new(keep),
        }
    }

    /// A connection: a kept one, or one from sqlx's pool.
    pub(crate) async fn take(&self) -> Result<Held<'_>, sqlx::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let kept = self.shelf.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (conn, taken) = match kept {
            Some(kept) => (kept.conn, kept.taken),
            None => (self.pool.acquire().await?, Instant::now()),
        };
        Ok(Held {
            warm: self,
            conn: Some(conn),
            taken,
            finished: false,
            _permit: permit,
        })
    }
}

/// Every [`IDLE_BACK`], drops the connections kept longer than that into
/// sqlx's pool; ends when the shelf does.
async fn give_back_idle(shelf: Weak<Shelf>) {
    let mut tick = tokio::time::interval(IDLE_BACK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Some(shelf) = shelf.upgrade() else {
            return;
        };
        let idle: Vec<Kept> = {
            let mut kept = shelf.lock().unwrap_or_else(|p| p.into_inner());
            let n = kept
                .iter()
                .take_while(|k| k.since.elapsed() >= IDLE_BACK)
                .count();
            kept.drain(..n).collect()
        };
        drop(idle);
    }
}

/// A connection taken from [`Warm`]; see the module documentation for
/// where it goes when dropped.
pub(crate) struct Held<'a> {
    warm: &'a Warm,
    /// `None` only inside `drop`.
    conn: Option<PoolConnection<Postgres>>,
    taken: Instant,
    /// Set by [`Held::finished`]: the last statement's answer was read
    /// in full and no transaction is open.
    finished: bool,
    /// Released after the connection is shelved (fields drop after
    /// `drop` runs).
    _permit: SemaphorePermit<'a>,
}

impl Held<'_> {
    /// The connection, to run statements on.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("held until dropped")
    }

    /// Says the work is done and the connection idle, so it may be kept.
    pub(crate) fn finished(mut self) {
        self.finished = true;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // With the pool at its size and none idle, sea-orm's work may be
        // waiting for a connection, which it cannot take from the shelf.
        let pool = &self.warm.pool;
        let starved = pool.num_idle() == 0 && pool.size() >= pool.options().get_max_connections();
        if self.finished && !starved && self.taken.elapsed() < RETURN_AFTER {
            let kept = Kept {
                conn,
                taken: self.taken,
                since: Instant::now(),
            };
            let mut shelf = self.warm.shelf.lock().unwrap_or_else(|p| p.into_inner());
            shelf.push(kept);
        }
    }
}
