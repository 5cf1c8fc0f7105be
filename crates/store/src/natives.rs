//! Native-resource records: each resource is recorded the moment it exists
//! upstream and forgotten once deleted, so a crash leaves a trace of what
//! the provider holds; `native_is_recorded` tells recovery and
//! reconciliation whether anybody owns a resource they found.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use switchboard_core::Error;

use crate::NativeRecord;
use crate::entity::native_resource;
use crate::script::Script;
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
        let mut script = self.script();
        upsert_native_into(&mut script, tenant, sub_id, n)?;
        self.run(script).await
    }

    /// Whether any subscription has recorded native resource `native_id`.
    pub async fn native_is_recorded(&self, native_id: &str) -> Result<bool, Error> {
        Ok(native_resource::Entity::find()
            .filter(native_resource::Column::NativeId.eq(native_id))
            .one(&self.read)
            .await
            .map_err(db_err)?
            .is_some())
    }

    /// Forgets one native resource after it was deleted upstream.
    pub async fn forget_native(&self, tenant: &str, sub_id: &str, key: &str) -> Result<(), Error> {
        let mut script = self.script();
        forget_native_into(&mut script, tenant, sub_id, key);
        self.run(script).await
    }
}

/// Adds [`Store::forget_native`] to `script`.
pub(crate) fn forget_native_into(script: &mut Script, tenant: &str, sub_id: &str, key: &str) {
    script.push(
        &native_resource::Entity::delete_many()
            .filter(native_resource::Column::Tenant.eq(tenant))
            .filter(native_resource::Column::SubscriptionId.eq(sub_id))
            .filter(native_resource::Column::Key.eq(key)),
    );
}

/// Adds the insert (or replacement) of the record of `n` (one per
/// subscription and key) to `script`.
pub(crate) fn upsert_native_into(
    script: &mut Script,
    tenant: &str,
    sub_id: &str,
    n: &NativeRecord,
) -> Result<(), Error> {
    script.push(
        &native_resource::Entity::insert(native_active(tenant, sub_id, n)?).on_conflict(
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
        ),
    );
    Ok(())
}

/// The row of native record `n` of subscription `sub_id`.
pub(crate) fn native_active(
    tenant: &str,
    sub_id: &str,
    n: &NativeRecord,
) -> Result<native_resource::ActiveModel, Error> {
    Ok(native_resource::ActiveModel {
        subscription_id: Set(sub_id.to_owned()),
        key: Set(n.key.clone()),
        tenant: Set(tenant.to_owned()),
        native_id: Set(n.native_id.clone()),
        events: Set(serde_json::to_string(&n.events).map_err(json_err)?),
        status: Set(if n.enabled { "active" } else { "disabled" }.to_owned()),
        created_at: Set(n.created_at),
    })
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
