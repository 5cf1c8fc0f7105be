//! Key rotation (`switchboard secrets rotate`): re-sealing, with the
//! current key, everything sealed with an older one: subscription specs,
//! journalled specs, relay route credentials and kept idempotent replies. Each value is rewritten
//! with a compare-and-set on its old text, so a row changed concurrently is
//! left for the next run rather than overwritten.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use switchboard_core::Error;

use crate::Cipher;
use crate::entity::{idempotency, operation, relay_route, subscription};
use crate::keyset::{Direction, Keyed};
use crate::store::{Store, db_err};
use crate::subscriptions::row_aad;

/// Rows read per page while rotating.
const PAGE: u64 = 200;

/// One sealed value: the column and row it is in, its text, and the
/// associated data it was sealed with.
struct Sealed<'a, E: EntityTrait> {
    column: E::Column,
    row: Condition,
    text: &'a str,
    aad: Vec<u8>,
}

impl Store {
    /// Re-seals everything sealed with another key than the current one.
    /// Returns how many values were re-sealed.
    pub async fn rotate_keys(&self) -> Result<u64, Error> {
        let specs = self.rotate_table(sealed_spec).await?;
        let journal = self.rotate_table(sealed_journal).await?;
        let routes = self.rotate_table(sealed_route).await?;
        Ok(specs + journal + routes + self.rotate_replies().await?)
    }

    /// Whether `sealed` was sealed with another key than the current one.
    fn is_stale(&self, sealed: &str) -> bool {
        Cipher::key_id_of(sealed) != Some(self.cipher.current_key_id())
    }

    /// Walks a table in id order, a page at a time, and re-seals each
    /// stale value that `sealed_in` finds in a row.
    async fn rotate_table<E: Keyed>(
        &self,
        sealed_in: for<'r> fn(&'r E::Model) -> Vec<Sealed<'r, E>>,
    ) -> Result<u64, Error> {
        let mut rotated = 0;
        let mut after: Option<String> = None;
        loop {
            let (rows, next) = self
                .keyset_page(E::find(), after.as_deref(), PAGE, Direction::Ascending)
                .await?;
            for row in &rows {
                for sealed in sealed_in(row) {
                    rotated += self.reseal(sealed).await?;
                }
            }
            let Some(next) = next else {
                return Ok(rotated);
            };
            after = Some(next);
        }
    }

    /// Rewrites a stale value sealed with the current key, by a
    /// compare-and-set on its old text; returns the rows rewritten (0 when
    /// the value is current or changed meanwhile).
    async fn reseal<E: EntityTrait>(&self, sealed: Sealed<'_, E>) -> Result<u64, Error> {
        if !self.is_stale(sealed.text) {
            return Ok(0);
        }
        let opened = self.cipher.open(sealed.text, &sealed.aad)?;
        let res = E::update_many()
            .col_expr(
                sealed.column,
                Expr::value(self.cipher.seal(&opened, &sealed.aad)?),
            )
            .filter(sealed.row)
            .filter(sealed.column.eq(sealed.text))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected)
    }

    /// Kept idempotent replies, keyed by tenant and key rather than an id.
    async fn rotate_replies(&self) -> Result<u64, Error> {
        // Kept replies live 24 h; there are few of them at any time.
        let rows = idempotency::Entity::find()
            .filter(idempotency::Column::ResponseBody.is_not_null())
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut rotated = 0;
        for row in &rows {
            let Some(text) = row.response_body.as_deref() else {
                continue;
            };
            rotated += self
                .reseal(Sealed::<idempotency::Entity> {
                    column: idempotency::Column::ResponseBody,
                    row: Condition::all()
                        .add(idempotency::Column::Tenant.eq(row.tenant.as_str()))
                        .add(idempotency::Column::Key.eq(row.key.as_str())),
                    text,
                    aad: crate::idempotency::reply_aad(&row.tenant, &row.key),
                })
                .await?;
        }
        Ok(rotated)
    }
}

/// The sealed spec of a subscription row.
fn sealed_spec(r: &subscription::Model) -> Vec<Sealed<'_, subscription::Entity>> {
    vec![Sealed {
        column: subscription::Column::Spec,
        row: Condition::all().add(subscription::Column::Id.eq(r.id.as_str())),
        text: &r.spec,
        aad: row_aad(&r.tenant, &r.id),
    }]
}

/// The sealed specs (before and after the change) of a journal row.
fn sealed_journal(r: &operation::Model) -> Vec<Sealed<'_, operation::Entity>> {
    [
        (operation::Column::BeforeSpec, &r.before_spec),
        (operation::Column::AfterSpec, &r.after_spec),
    ]
    .into_iter()
    .filter_map(|(column, text)| {
        Some(Sealed {
            column,
            row: Condition::all().add(operation::Column::Id.eq(r.id.as_str())),
            text: text.as_deref()?,
            aad: crate::journal::operation_aad(&r.id),
        })
    })
    .collect()
}

/// The sealed credential of a relay route.
fn sealed_route(r: &relay_route::Model) -> Vec<Sealed<'_, relay_route::Entity>> {
    vec![Sealed {
        column: relay_route::Column::Credential,
        row: Condition::all().add(relay_route::Column::TokenSha256.eq(r.token_sha256.as_str())),
        text: &r.credential,
        aad: crate::relay::route_aad(r),
    }]
}
