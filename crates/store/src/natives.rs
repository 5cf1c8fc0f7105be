//! Native-resource records: each resource is recorded the moment it exists
//! upstream and forgotten once deleted, so a crash leaves a trace of what
//! the provider holds; `native_is_recorded` tells recovery and
//! reconciliation whether anybody owns a resource they found.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use switchboard_core::Error;

use crate::NativeRecord;
use crate::entity::native_resource;
use crate::store::{Store, db_err, json_err};

impl Store {
    /// Records one native resource the moment it exists upstream, so a
    /// crash right after leaves a trace of it.
    pub async fn record_native(
        &self,
        tenant: &str,
        sub_id: &str,
        n: &NativeRecord,
    ) -> Result<(), Error> {
        upsert_native(&self.db, tenant, sub_id, n).await
    }

    /// Whether any subscription has recorded native resource `native_id`.
    pub async fn native_is_recorded(&self, native_id: &str) -> Result<bool, Error> {
        Ok(native_resource::Entity::find()
            .filter(native_resource::Column::NativeId.eq(native_id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .is_some())
    }

    /// Forgets one native resource after it was deleted upstream.
    pub async fn forget_native(&self, tenant: &str, sub_id: &str, key: &str) -> Result<(), Error> {
        native_resource::Entity::delete_many()
            .filter(native_resource::Column::Tenant.eq(tenant))
            .filter(native_resource::Column::SubscriptionId.eq(sub_id))
            .filter(native_resource::Column::Key.eq(key))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// Inserts or replaces the record of `n` (one per subscription and key).
pub(crate) async fn upsert_native<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    sub_id: &str,
    n: &NativeRecord,
) -> Result<(), Error> {
    let am = native_resource::ActiveModel {
        subscription_id: Set(sub_id.to_owned()),
        key: Set(n.key.clone()),
        tenant: Set(tenant.to_owned()),
        native_id: Set(n.native_id.clone()),
        events: Set(serde_json::to_string(&n.events).map_err(json_err)?),
        status: Set(if n.enabled { "active" } else { "disabled" }.to_owned()),
        created_at: Set(n.created_at),
    };
    native_resource::Entity::insert(am)
        .on_conflict(
            OnConflict::columns([
                native_resource::Column::SubscriptionId,
                native_resource::Column::Key,
            ])
            .update_columns([
                native_resource::Column::NativeId,
                native_resource::Column::Events,
                native_resource::Column::Status,
            ])
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// A native record as stored.
pub(crate) fn native_from_row(n: native_resource::Model) -> Result<NativeRecord, Error> {
    Ok(NativeRecord {
        key: n.key,
        native_id: n.native_id,
        events: serde_json::from_str(&n.events).map_err(json_err)?,
        enabled: n.status == "active",
        created_at: n.created_at,
    })
}
