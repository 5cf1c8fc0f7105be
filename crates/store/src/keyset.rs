//! Keyset pagination over a table's string primary key (`sub_…`, `op_…`,
//! `aud_…`: ULIDs, so id order is creation order). Every listing and the
//! key rotation walk their tables through this one function.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use switchboard_core::Error;

use crate::entity::{audit, operation, subscription};
use crate::store::{Store, db_err};

/// A table whose primary key is one string id.
pub(crate) trait Keyed: EntityTrait {
    /// The id column.
    const ID: Self::Column;
    /// A row's id.
    fn id(row: &Self::Model) -> &str;
}

impl Keyed for subscription::Entity {
    const ID: Self::Column = subscription::Column::Id;
    fn id(row: &Self::Model) -> &str {
        &row.id
    }
}

impl Keyed for operation::Entity {
    const ID: Self::Column = operation::Column::Id;
    fn id(row: &Self::Model) -> &str {
        &row.id
    }
}

impl Keyed for audit::Entity {
    const ID: Self::Column = audit::Column::Id;
    fn id(row: &Self::Model) -> &str {
        &row.id
    }
}

/// Which way a page walks the ids.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    /// Oldest first: the rows after the cursor.
    Ascending,
    /// Newest first: the rows before the cursor.
    Descending,
}

/// One page of rows and the cursor of the next, `None` on the last page.
pub(crate) type Rows<M> = (Vec<M>, Option<String>);

impl Store {
    /// Up to `limit` rows of `select` past `cursor` in `direction` of the
    /// ids, and the next page's cursor. One row more than asked is read, so
    /// the last page is known without a count.
    pub(crate) async fn keyset_page<E: Keyed>(
        &self,
        select: Select<E>,
        cursor: Option<&str>,
        limit: u64,
        direction: Direction,
    ) -> Result<Rows<E::Model>, Error> {
        let rows = page_select(select, cursor, limit, direction)
            .all(&self.read)
            .await
            .map_err(db_err)?;
        Ok(page_of(rows, limit, E::id))
    }
}

/// `select` narrowed to the page past `cursor`: ordered by id, one row
/// more than `limit` (see [`page_of`]).
pub(crate) fn page_select<E: Keyed>(
    select: Select<E>,
    cursor: Option<&str>,
    limit: u64,
    direction: Direction,
) -> Select<E> {
    let column = E::ID;
    let select = match (direction, cursor) {
        (Direction::Ascending, Some(c)) => select.filter(column.gt(c)),
        (Direction::Descending, Some(c)) => select.filter(column.lt(c)),
        (_, None) => select,
    };
    match direction {
        Direction::Ascending => select.order_by_asc(column),
        Direction::Descending => select.order_by_desc(column),
    }
    .limit(limit + 1)
}

/// The page of `rows` (read by [`page_select`]) and the next cursor.
pub(crate) fn page_of<T>(mut rows: Vec<T>, limit: u64, id: fn(&T) -> &str) -> Rows<T> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|r| id(r).to_owned())
    } else {
        None
    };
    (rows, next)
}
