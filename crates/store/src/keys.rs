//! Key rotation (`switchboard secrets rotate`): re-sealing, with the
//! current key, everything sealed with an older one: subscription specs,
//! journalled specs and kept idempotent replies. Each value is rewritten
//! with a compare-and-set on its old text, so a row changed concurrently is
//! left for the next run rather than overwritten.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use switchboard_core::Error;

use crate::Cipher;
use crate::entity::{idempotency, operation, subscription};
use crate::store::{Store, db_err};
use crate::subscriptions::row_aad;

/// Rows read per page while rotating.
const PAGE: u64 = 200;

impl Store {
    /// Re-seals everything sealed with another key than the current one.
    /// Returns how many values were re-sealed.
    pub async fn rotate_keys(&self) -> Result<u64, Error> {
        Ok(self.rotate_subscriptions().await?
            + self.rotate_journal().await?
            + self.rotate_replies().await?)
    }

    /// Whether `sealed` was sealed with another key than the current one.
    fn is_stale(&self, sealed: &str) -> bool {
        Cipher::key_id_of(sealed) != Some(self.cipher.current_key_id())
    }

    /// `sealed` opened and sealed again with the current key.
    fn reseal(&self, sealed: &str, aad: &[u8]) -> Result<String, Error> {
        self.cipher.seal(&self.cipher.open(sealed, aad)?, aad)
    }

    async fn rotate_subscriptions(&self) -> Result<u64, Error> {
        let mut rotated = 0;
        let mut after: Option<String> = None;
        loop {
            let mut q = subscription::Entity::find();
            if let Some(a) = &after {
                q = q.filter(subscription::Column::Id.gt(a.as_str()));
            }
            let rows = q
                .order_by_asc(subscription::Column::Id)
                .limit(PAGE)
                .all(&self.db)
                .await
                .map_err(db_err)?;
            let Some(last) = rows.last() else {
                return Ok(rotated);
            };
            after = Some(last.id.clone());
            for row in rows.into_iter().filter(|r| self.is_stale(&r.spec)) {
                let sealed = self.reseal(&row.spec, &row_aad(&row.tenant, &row.id))?;
                let res = subscription::Entity::update_many()
                    .col_expr(subscription::Column::Spec, Expr::value(sealed))
                    .filter(subscription::Column::Id.eq(row.id.as_str()))
                    .filter(subscription::Column::Spec.eq(row.spec.as_str()))
                    .exec(&self.db)
                    .await
                    .map_err(db_err)?;
                rotated += res.rows_affected;
            }
        }
    }

    async fn rotate_journal(&self) -> Result<u64, Error> {
        let mut rotated = 0;
        let mut after: Option<String> = None;
        loop {
            let mut q = operation::Entity::find();
            if let Some(a) = &after {
                q = q.filter(operation::Column::Id.gt(a.as_str()));
            }
            let rows = q
                .order_by_asc(operation::Column::Id)
                .limit(PAGE)
                .all(&self.db)
                .await
                .map_err(db_err)?;
            let Some(last) = rows.last() else {
                return Ok(rotated);
            };
            after = Some(last.id.clone());
            for row in rows {
                let aad = crate::journal::operation_aad(&row.id);
                for (col, value) in [
                    (operation::Column::BeforeSpec, &row.before_spec),
                    (operation::Column::AfterSpec, &row.after_spec),
                ] {
                    let Some(v) = value.as_deref().filter(|v| self.is_stale(v)) else {
                        continue;
                    };
                    let res = operation::Entity::update_many()
                        .col_expr(col, Expr::value(self.reseal(v, &aad)?))
                        .filter(operation::Column::Id.eq(row.id.as_str()))
                        .filter(col.eq(v))
                        .exec(&self.db)
                        .await
                        .map_err(db_err)?;
                    rotated += res.rows_affected;
                }
            }
        }
    }

    async fn rotate_replies(&self) -> Result<u64, Error> {
        // Kept replies live 24 h; there are few of them at any time.
        let rows = idempotency::Entity::find()
            .filter(idempotency::Column::ResponseBody.is_not_null())
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut rotated = 0;
        for row in rows {
            let Some(v) = row.response_body.as_deref().filter(|v| self.is_stale(v)) else {
                continue;
            };
            let aad = crate::idempotency::reply_aad(&row.tenant, &row.key);
            let res = idempotency::Entity::update_many()
                .col_expr(
                    idempotency::Column::ResponseBody,
                    Expr::value(self.reseal(v, &aad)?),
                )
                .filter(idempotency::Column::Tenant.eq(row.tenant.as_str()))
                .filter(idempotency::Column::Key.eq(row.key.as_str()))
                .filter(idempotency::Column::ResponseBody.eq(v))
                .exec(&self.db)
                .await
                .map_err(db_err)?;
            rotated += res.rows_affected;
        }
        Ok(rotated)
    }
}
