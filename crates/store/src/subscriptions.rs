//! Subscription rows: insert, read, list, the versioned write of a
//! change's result, delete, and the admin lookup of a row's tenant. The
//! spec is sealed with the row's tenant and id as associated data, so it
//! opens only on that row.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use switchboard_core::{Error, SubscriptionSpec, SubscriptionStatus};

use crate::entity::{native_resource, subscription};
use crate::keyset::Direction;
use crate::natives::{native_from_row, upsert_native};
use crate::store::{Store, db_err, json_err};
use crate::{ListQuery, Page, SubscriptionRecord};

impl Store {
    /// Inserts a new subscription (with any natives it already has).
    pub async fn insert(&self, rec: &SubscriptionRecord) -> Result<(), Error> {
        let txn = self.db.begin().await.map_err(db_err)?;
        subscription::Entity::insert(self.to_active(rec)?)
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
        for n in &rec.natives {
            upsert_native(&txn, &rec.tenant, &rec.id, n).await?;
        }
        txn.commit().await.map_err(db_err)
    }

    /// One subscription of `tenant`.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<SubscriptionRecord, Error> {
        let row = subscription::Entity::find_by_id(id.to_owned())
            .filter(subscription::Column::Tenant.eq(tenant))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            })?;
        let natives = native_resource::Entity::find()
            .filter(native_resource::Column::Tenant.eq(tenant))
            .filter(native_resource::Column::SubscriptionId.eq(id))
            .order_by_asc(native_resource::Column::Key)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        self.record_from_rows(row, natives)
    }

    /// A page of `tenant`'s subscriptions ordered by id (creation time);
    /// `None` lists every tenant's (admin tokens only).
    pub async fn list(&self, tenant: Option<&str>, q: &ListQuery) -> Result<Page, Error> {
        let mut select = subscription::Entity::find();
        if let Some(t) = tenant {
            select = select.filter(subscription::Column::Tenant.eq(t));
        }
        if let Some(p) = &q.provider {
            select = select.filter(subscription::Column::Provider.eq(p.as_str()));
        }
        if let Some(s) = q.status {
            select = select.filter(subscription::Column::Status.eq(s.as_str()));
        }
        let (rows, next_cursor) = self
            .keyset_page(select, q.after.as_deref(), q.limit, Direction::Ascending)
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut natives = if ids.is_empty() {
            Vec::new()
        } else {
            // The ids are already the tenant's (or any, for admins).
            native_resource::Entity::find()
                .filter(native_resource::Column::SubscriptionId.is_in(ids))
                .order_by_asc(native_resource::Column::Key)
                .all(&self.db)
                .await
                .map_err(db_err)?
        };
        let mut data = Vec::with_capacity(rows.len());
        for row in rows {
            let (mine, rest): (Vec<_>, Vec<_>) = natives
                .into_iter()
                .partition(|n| n.subscription_id == row.id);
            natives = rest;
            data.push(self.record_from_rows(row, mine)?);
        }
        Ok(Page { data, next_cursor })
    }

    /// Writes `rec` (state and the full native set) if the stored version
    /// is still `rec.version`; returns the record with its new version.
    /// A concurrent writer makes this a 409 rather than a lost update.
    pub async fn update(&self, rec: &SubscriptionRecord) -> Result<SubscriptionRecord, Error> {
        let txn = self.db.begin().await.map_err(db_err)?;
        let now = Utc::now();
        let spec = self.seal_spec(rec)?;
        let warnings = serde_json::to_string(&rec.warnings).map_err(json_err)?;
        let result = subscription::Entity::update_many()
            .col_expr(
                subscription::Column::Status,
                Expr::value(rec.status.as_str()),
            )
            .col_expr(subscription::Column::Spec, Expr::value(spec))
            .col_expr(subscription::Column::Warnings, Expr::value(warnings))
            .col_expr(
                subscription::Column::LastError,
                Expr::value(rec.last_error.clone()),
            )
            .col_expr(subscription::Column::Version, Expr::value(rec.version + 1))
            .col_expr(subscription::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                subscription::Column::LastReconciledAt,
                Expr::value(rec.last_reconciled_at),
            )
            .col_expr(
                subscription::Column::Findings,
                Expr::value(serde_json::to_string(&rec.findings).map_err(json_err)?),
            )
            .filter(subscription::Column::Tenant.eq(rec.tenant.as_str()))
            .filter(subscription::Column::Id.eq(rec.id.as_str()))
            .filter(subscription::Column::Version.eq(rec.version))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if result.rows_affected != 1 {
            return Err(Error::Conflict(format!(
                "subscription `{}` was changed concurrently; retry with its current state",
                rec.id
            )));
        }
        native_resource::Entity::delete_many()
            .filter(native_resource::Column::Tenant.eq(rec.tenant.as_str()))
            .filter(native_resource::Column::SubscriptionId.eq(rec.id.as_str()))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        for n in &rec.natives {
            upsert_native(&txn, &rec.tenant, &rec.id, n).await?;
        }
        txn.commit().await.map_err(db_err)?;
        let mut out = rec.clone();
        out.version += 1;
        out.updated_at = now;
        Ok(out)
    }

    /// Deletes a subscription and its native records.
    pub async fn delete(&self, tenant: &str, id: &str) -> Result<(), Error> {
        let txn = self.db.begin().await.map_err(db_err)?;
        native_resource::Entity::delete_many()
            .filter(native_resource::Column::Tenant.eq(tenant))
            .filter(native_resource::Column::SubscriptionId.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let res = subscription::Entity::delete_many()
            .filter(subscription::Column::Tenant.eq(tenant))
            .filter(subscription::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// The tenant owning subscription `id`, for admin tokens that act
    /// across tenants.
    pub async fn tenant_of(&self, id: &str) -> Result<String, Error> {
        subscription::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|r| r.tenant)
            .ok_or_else(|| Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            })
    }
}

/// Associated data of a row's sealed spec: it opens only on that row.
pub(crate) fn row_aad(tenant: &str, id: &str) -> Vec<u8> {
    format!("{tenant}\0{id}").into_bytes()
}

impl Store {
    fn seal_spec(&self, rec: &SubscriptionRecord) -> Result<String, Error> {
        let json = serde_json::to_vec(&rec.spec).map_err(json_err)?;
        self.cipher.seal(&json, &row_aad(&rec.tenant, &rec.id))
    }

    fn open_spec(&self, row: &subscription::Model) -> Result<SubscriptionSpec, Error> {
        let json = self
            .cipher
            .open(&row.spec, &row_aad(&row.tenant, &row.id))?;
        serde_json::from_slice(&json).map_err(json_err)
    }

    fn to_active(&self, rec: &SubscriptionRecord) -> Result<subscription::ActiveModel, Error> {
        Ok(subscription::ActiveModel {
            id: Set(rec.id.clone()),
            tenant: Set(rec.tenant.clone()),
            provider: Set(rec.spec.provider.clone()),
            status: Set(rec.status.as_str().to_owned()),
            spec: Set(self.seal_spec(rec)?),
            warnings: Set(serde_json::to_string(&rec.warnings).map_err(json_err)?),
            last_error: Set(rec.last_error.clone()),
            version: Set(rec.version),
            created_at: Set(rec.created_at),
            updated_at: Set(rec.updated_at),
            last_reconciled_at: Set(rec.last_reconciled_at),
            findings: Set(serde_json::to_string(&rec.findings).map_err(json_err)?),
        })
    }

    fn record_from_rows(
        &self,
        row: subscription::Model,
        natives: Vec<native_resource::Model>,
    ) -> Result<SubscriptionRecord, Error> {
        let natives = natives
            .into_iter()
            .map(native_from_row)
            .collect::<Result<_, Error>>()?;
        Ok(SubscriptionRecord {
            status: SubscriptionStatus::parse(&row.status).ok_or_else(|| {
                Error::Internal(format!("unknown stored status `{}`", row.status))
            })?,
            spec: self.open_spec(&row)?,
            warnings: serde_json::from_str(&row.warnings).map_err(json_err)?,
            id: row.id,
            tenant: row.tenant,
            last_error: row.last_error,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_reconciled_at: row.last_reconciled_at,
            findings: serde_json::from_str(&row.findings).unwrap_or_default(),
            natives,
        })
    }
}
