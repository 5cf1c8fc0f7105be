//! Aggregate counts of the stored subscriptions, for the operator's
//! metrics: one grouped query on the read pool, across every tenant.

use sea_orm::{ColumnTrait, EntityTrait, QuerySelect};
use switchboard_core::{Error, SubscriptionStatus};

use crate::entity::subscription;
use crate::store::{Store, db_err};

impl Store {
    /// How many subscriptions each provider instance has in each status
    /// (pairs with none are left out).
    pub async fn count_by_provider_and_status(
        &self,
    ) -> Result<Vec<(String, SubscriptionStatus, u64)>, Error> {
        let rows: Vec<(String, String, i64)> = subscription::Entity::find()
            .select_only()
            .column(subscription::Column::Provider)
            .column(subscription::Column::Status)
            .column_as(subscription::Column::Id.count(), "n")
            .group_by(subscription::Column::Provider)
            .group_by(subscription::Column::Status)
            .into_tuple()
            .all(&self.read)
            .await
            .map_err(db_err)?;
        rows.into_iter()
            .map(|(provider, status, n)| {
                let status = SubscriptionStatus::parse(&status).ok_or_else(|| {
                    Error::Internal(format!("stored status `{status}` is not a status"))
                })?;
                Ok((provider, status, u64::try_from(n).unwrap_or_default()))
            })
            .collect()
    }
}
