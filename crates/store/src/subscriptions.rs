//! Subscription rows: insert, read (by id or by key), list, the versioned
//! write of a change's result, delete, and the admin lookup of a row's
//! tenant. The
//! spec is sealed with the row's tenant and id as associated data, so it
//! opens only on that row.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use switchboard_core::{Error, SubscriptionSpec, SubscriptionStatus};

use crate::entity::{native_resource, subscription};
use crate::inline::WithNatives;
use crate::keyset::{Direction, page_of, page_select};
use crate::natives::{native_from_row, upsert_native_into};
use crate::pg_reads;
use crate::script::Script;
use crate::store::{Store, db_err, json_err};
use crate::{ListQuery, Page, SubscriptionRecord};

/// How a single subscription is found: both are unique within a tenant.
#[derive(Clone, Copy)]
enum Lookup<'a> {
    /// By its id.
    Id(&'a str),
    /// By its key.
    Key(&'a str),
}

impl Store {
    /// Inserts a new subscription (with any natives it already has).
    pub async fn insert(&self, rec: &SubscriptionRecord) -> Result<(), Error> {
        let mut script = self.script();
        self.insert_into(&mut script, rec)?;
        self.run(script).await
    }

    /// Adds the insert of `rec` and its natives to `script`.
    pub(crate) fn insert_into(
        &self,
        script: &mut Script,
        rec: &SubscriptionRecord,
    ) -> Result<(), Error> {
        script.push(&subscription::Entity::insert(self.to_active(rec)?));
        for n in &rec.natives {
            upsert_native_into(script, &rec.tenant, &rec.id, n)?;
        }
        Ok(())
    }

    /// One subscription of `tenant`.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<SubscriptionRecord, Error> {
        self.one_with_natives(Lookup::Id(id), tenant)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            })
    }

    /// The subscription of `tenant` whose key is `key`, if there is one.
    /// On the read pool: a caller that decides a write on it (whether a
    /// key is free) has the unique index as its final guard.
    pub async fn find_by_key(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<SubscriptionRecord>, Error> {
        self.one_with_natives(Lookup::Key(key), tenant).await
    }

    /// The subscription of `tenant` that `lookup` names, with its natives,
    /// in one statement (the row joined with them): on the calling thread
    /// where the store has inline reads, through sqlx on Postgres, else
    /// through sea-orm.
    async fn one_with_natives(
        &self,
        lookup: Lookup<'_>,
        tenant: &str,
    ) -> Result<Option<SubscriptionRecord>, Error> {
        let found = match (&self.inline, &self.warm, lookup) {
            (Some(inline), _, Lookup::Id(id)) => inline.by_id(tenant, id)?,
            (Some(inline), _, Lookup::Key(key)) => inline.by_key(tenant, key)?,
            (None, Some(warm), Lookup::Id(id)) => pg_reads::by_id(warm, tenant, id).await?,
            (None, Some(warm), Lookup::Key(key)) => pg_reads::by_key(warm, tenant, key).await?,
            (None, None, lookup) => {
                let select = match lookup {
                    Lookup::Id(id) => subscription::Entity::find_by_id(id.to_owned()),
                    Lookup::Key(key) => {
                        subscription::Entity::find().filter(subscription::Column::Key.eq(key))
                    }
                };
                select
                    .filter(subscription::Column::Tenant.eq(tenant))
                    .find_with_related(native_resource::Entity)
                    .order_by_asc(native_resource::Column::Key)
                    .all(&self.read)
                    .await
                    .map_err(db_err)?
                    .into_iter()
                    .next()
            }
        };
        found
            .map(|(row, natives)| self.record_from_rows(row, natives))
            .transpose()
    }

    /// A page of `tenant`'s subscriptions ordered by id (creation time);
    /// `None` lists every tenant's (admin tokens only).
    pub async fn list(&self, tenant: Option<&str>, q: &ListQuery) -> Result<Page, Error> {
        let rows = match (&self.inline, &self.warm) {
            (Some(inline), _) => inline.page(tenant, q)?,
            (None, Some(warm)) => pg_reads::page(warm, tenant, q).await?,
            (None, None) => self.page_through_sqlx(tenant, q).await?,
        };
        let (rows, next_cursor) = page_of(rows, q.limit, |(row, _)| &row.id);
        let data = rows
            .into_iter()
            .map(|(row, natives)| self.record_from_rows(row, natives))
            .collect::<Result<_, _>>()?;
        Ok(Page { data, next_cursor })
    }

    /// The rows of a list page (one more than its limit) through sea-orm
    /// (an in-memory SQLite database).
    async fn page_through_sqlx(
        &self,
        tenant: Option<&str>,
        q: &ListQuery,
    ) -> Result<Vec<WithNatives>, Error> {
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
        // One query: the page's ids in a subquery, joined with their
        // natives (a second query per page cost as much as the first).
        let ids = page_select(select, q.after.as_deref(), q.limit, Direction::Ascending)
            .select_only()
            .column(subscription::Column::Id)
            .into_query();
        subscription::Entity::find()
            .filter(subscription::Column::Id.in_subquery(ids))
            .find_with_related(native_resource::Entity)
            .order_by_asc(subscription::Column::Id)
            .order_by_asc(native_resource::Column::Key)
            .all(&self.read)
            .await
            .map_err(db_err)
    }

    /// Writes `rec` (state and the full native set) if the stored version
    /// is still `rec.version`; returns the record with its new version.
    /// A concurrent writer makes this a 409 rather than a lost update.
    pub async fn update(&self, rec: &SubscriptionRecord) -> Result<SubscriptionRecord, Error> {
        let mut script = self.script();
        if natives_written_once(rec) {
            script.rows_written_once();
        }
        let out = self.update_into(&mut script, rec)?;
        self.run(script).await?;
        Ok(out)
    }

    /// Adds [`Store::update`] to `script`; returns the record as it will
    /// be once the script ran.
    pub(crate) fn update_into(
        &self,
        script: &mut Script,
        rec: &SubscriptionRecord,
    ) -> Result<SubscriptionRecord, Error> {
        let now = Utc::now();
        let spec = self.seal_spec(rec)?;
        let warnings = serde_json::to_string(&rec.warnings).map_err(json_err)?;
        let findings = serde_json::to_string(&rec.findings).map_err(json_err)?;
        let row = subscription::Entity::update_many()
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
            .col_expr(subscription::Column::Findings, Expr::value(findings))
            .col_expr(subscription::Column::Key, Expr::value(rec.key.clone()))
            .filter(subscription::Column::Tenant.eq(rec.tenant.as_str()))
            .filter(subscription::Column::Id.eq(rec.id.as_str()))
            .filter(subscription::Column::Version.eq(rec.version));
        script.guard(
            &row,
            Error::Conflict(format!(
                "subscription `{}` was changed concurrently; retry with its current state",
                rec.id
            )),
        );
        script.push(
            &native_resource::Entity::delete_many()
                .filter(native_resource::Column::Tenant.eq(rec.tenant.as_str()))
                .filter(native_resource::Column::SubscriptionId.eq(rec.id.as_str())),
        );
        for n in &rec.natives {
            upsert_native_into(script, &rec.tenant, &rec.id, n)?;
        }
        let mut out = rec.clone();
        out.version += 1;
        out.updated_at = now;
        Ok(out)
    }

    /// Deletes a subscription and its native records.
    pub async fn delete(&self, tenant: &str, id: &str) -> Result<(), Error> {
        let mut script = self.script();
        Self::delete_into(&mut script, tenant, id);
        self.run(script).await
    }

    /// Adds [`Store::delete`] to `script`.
    pub(crate) fn delete_into(script: &mut Script, tenant: &str, id: &str) {
        script.push(
            &native_resource::Entity::delete_many()
                .filter(native_resource::Column::Tenant.eq(tenant))
                .filter(native_resource::Column::SubscriptionId.eq(id)),
        );
        script.guard(
            &subscription::Entity::delete_many()
                .filter(subscription::Column::Tenant.eq(tenant))
                .filter(subscription::Column::Id.eq(id)),
            Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            },
        );
    }

    /// The tenant owning subscription `id`, for admin tokens that act
    /// across tenants.
    pub async fn tenant_of(&self, id: &str) -> Result<String, Error> {
        subscription::Entity::find_by_id(id.to_owned())
            .one(&self.read)
            .await
            .map_err(db_err)?
            .map(|r| r.tenant)
            .ok_or_else(|| Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            })
    }
}

/// Whether the natives of `rec` have distinct keys: then the script of
/// [`Store::update_into`] writes each row once (the natives deleted, then
/// inserted again), as [`Script::rows_written_once`] asks. Two natives
/// with one key would have the second insert rewrite the first's row.
pub(crate) fn natives_written_once(rec: &SubscriptionRecord) -> bool {
    let mut keys: Vec<&str> = rec.natives.iter().map(|n| n.key.as_str()).collect();
    keys.sort_unstable();
    keys.windows(2).all(|pair| pair[0] != pair[1])
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

    pub(crate) fn to_active(
        &self,
        rec: &SubscriptionRecord,
    ) -> Result<subscription::ActiveModel, Error> {
        Ok(subscription::ActiveModel {
            id: Set(rec.id.clone()),
            tenant: Set(rec.tenant.clone()),
            provider: Set(rec.spec.provider.clone()),
            account: Set(Some(rec.spec.account.clone().unwrap_or_default())),
            status: Set(rec.status.as_str().to_owned()),
            spec: Set(self.seal_spec(rec)?),
            warnings: Set(serde_json::to_string(&rec.warnings).map_err(json_err)?),
            last_error: Set(rec.last_error.clone()),
            version: Set(rec.version),
            created_at: Set(rec.created_at),
            updated_at: Set(rec.updated_at),
            last_reconciled_at: Set(rec.last_reconciled_at),
            findings: Set(serde_json::to_string(&rec.findings).map_err(json_err)?),
            key: Set(rec.key.clone()),
        })
    }

    pub(crate) fn record_from_rows(
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
            key: row.key,
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
