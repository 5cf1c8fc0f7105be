//! The API's hottest reads on Postgres (a subscription by id or by key, a
//! page of the list) through sqlx directly: the statements of
//! [`crate::inline`], their columns decoded by position into the row
//! models.
//!
//! Through sea-orm's related-model select, every column of every row was
//! looked up by an alias built with `format!` (`A_id`, `B_key`, …) and
//! decoded through its generic getters: a quarter of a list page's
//! profile on Postgres, more than opening the page's 50 sealed specs
//! (docs/benchmarks.md). The statements are the same one-statement joins
//! as on SQLite, so each lookup still reads one snapshot; sqlx prepares
//! each once per connection, and the connection is kept warm between
//! reads ([`crate::pg_warm`]).

use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::{self, Row};
use switchboard_core::Error;

use crate::ListQuery;
use crate::entity::{native_resource, subscription};
use crate::inline::{self, PageSql, SUBSCRIPTION_COLUMNS, WithNatives};
use crate::pg_warm::Warm;

/// The subscription `id` of `tenant`, with its natives.
pub(crate) async fn by_id(
    warm: &Warm,
    tenant: &str,
    id: &str,
) -> Result<Option<WithNatives>, Error> {
    one(warm, "s.id = $1 AND s.tenant = $2", [id, tenant]).await
}

/// The subscription of `tenant` whose key is `key`, with its natives.
pub(crate) async fn by_key(
    warm: &Warm,
    tenant: &str,
    key: &str,
) -> Result<Option<WithNatives>, Error> {
    one(warm, "s.tenant = $1 AND s.key = $2", [tenant, key]).await
}

/// The one subscription `filter` admits (a unique index), with its
/// natives; `values` are its placeholders' in order.
async fn one(warm: &Warm, filter: &str, values: [&str; 2]) -> Result<Option<WithNatives>, Error> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(inline::one_sql(filter)));
    for value in values {
        query = query.bind(value);
    }
    Ok(rows(query, warm).await?.into_iter().next())
}

/// Up to `q.limit + 1` subscriptions past the cursor in id order, with
/// their natives.
pub(crate) async fn page(
    warm: &Warm,
    tenant: Option<&str>,
    q: &ListQuery,
) -> Result<Vec<WithNatives>, Error> {
    let page = PageSql::new(tenant, q, |n| format!("${n}"));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(page.sql));
    for value in page.bound {
        query = query.bind(value);
    }
    rows(query.bind(page.limit), warm).await
}

async fn rows(
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    warm: &Warm,
) -> Result<Vec<WithNatives>, Error> {
    let read_err = |e: sqlx::Error| Error::Store(e.to_string());
    let mut held = warm.take().await.map_err(read_err)?;
    let fetched = query.fetch_all(held.conn()).await.map_err(read_err)?;
    held.finished();
    let mut out = Vec::new();
    for row in &fetched {
        let id: &str = row.try_get(0).map_err(read_err)?;
        inline::fold(
            &mut out,
            id,
            || subscription_of(row),
            native_of(row, SUBSCRIPTION_COLUMNS).map_err(read_err)?,
        )
        .map_err(read_err)?;
    }
    Ok(out)
}

/// The subscription in the row's first columns.
fn subscription_of(row: &PgRow) -> Result<subscription::Model, sqlx::Error> {
    Ok(subscription::Model {
        id: row.try_get(0)?,
        tenant: row.try_get(1)?,
        provider: row.try_get(2)?,
        account: row.try_get(3)?,
        status: row.try_get(4)?,
        spec: row.try_get(5)?,
        warnings: row.try_get(6)?,
        last_error: row.try_get(7)?,
        version: row.try_get(8)?,
        created_at: row.try_get(9)?,
        updated_at: row.try_get(10)?,
        last_reconciled_at: row.try_get(11)?,
        findings: row.try_get(12)?,
        key: row.try_get(13)?,
    })
}

/// The native in the columns from `at`, or `None` where the left join
/// found none.
fn native_of(row: &PgRow, at: usize) -> Result<Option<native_resource::Model>, sqlx::Error> {
    let Some(subscription_id) = row.try_get::<Option<String>, _>(at)? else {
        return Ok(None);
    };
    Ok(Some(native_resource::Model {
        subscription_id,
        key: row.try_get(at + 1)?,
        tenant: row.try_get(at + 2)?,
        native_id: row.try_get(at + 3)?,
        events: row.try_get(at + 4)?,
        status: row.try_get(at + 5)?,
        created_at: row.try_get(at + 6)?,
    }))
}
