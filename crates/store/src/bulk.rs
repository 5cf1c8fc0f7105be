//! Bulk import of subscription records: many rows per statement, one
//! transaction per call. The seeding step of the benchmarks
//! (`switchboard-bench seed`) fills a database with a million rows through
//! it in well under the time a million single inserts would take. Rows
//! are built (and specs sealed) by the same helpers as
//! [`Store::insert`], so an imported row reads back like any other.

use sea_orm::{EntityTrait, TransactionTrait};
use switchboard_core::Error;

use crate::SubscriptionRecord;
use crate::entity::{native_resource, subscription};
use crate::natives::native_active;
use crate::store::{Store, db_err};

/// Rows per `INSERT`: well below SQLite's 32,766 bound parameters and
/// Postgres's 65,535 at 14 columns a row, and large enough that the
/// per-statement cost no longer shows.
const ROWS_PER_STATEMENT: usize = 1_000;

impl Store {
    /// Inserts `records` and their native records in one transaction and
    /// returns the number of subscriptions inserted. Nothing is written
    /// when any of them fails (an id that exists already, say). Meant for
    /// seeding and migrations, not the API: no journal, no audit entry.
    pub async fn import(&self, records: &[SubscriptionRecord]) -> Result<u64, Error> {
        let txn = self.db.begin().await.map_err(db_err)?;
        let mut inserted = 0;
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let rows = chunk
                .iter()
                .map(|rec| self.to_active(rec))
                .collect::<Result<Vec<_>, _>>()?;
            inserted += subscription::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        let natives = records
            .iter()
            .flat_map(|rec| rec.natives.iter().map(move |n| (rec, n)))
            .collect::<Vec<_>>();
        for chunk in natives.chunks(ROWS_PER_STATEMENT) {
            let rows = chunk
                .iter()
                .map(|(rec, n)| native_active(&rec.tenant, &rec.id, n))
                .collect::<Result<Vec<native_resource::ActiveModel>, _>>()?;
            native_resource::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        Ok(inserted)
    }
}
