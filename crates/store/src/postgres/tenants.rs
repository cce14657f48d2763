//! PostgreSQL queries for a tenant's life cycle: listing, cancellation and the
//! deletion of a cancelled tenant's data.

use super::PgStore;
use super::error::{PgResult, pg};
use super::streams::{apply, hold};
use super::*;
use crate::model::*;
use crate::row::Columns;
use crate::tenants::*;

impl PgStore {
    pub(super) async fn set_tenant_cancelled_tx(
        &self,
        tenant_id: &str,
        cancelled_at: Option<i64>,
        at: i64,
    ) -> PgResult<bool> {
        const OP: &str = "set_tenant_cancelled";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let row = tx
            .query_opt(CANCELLED_AT_FOR_UPDATE.pg(), &[&tenant_id])
            .await
            .map_err(pg(OP))?;
        let Some(row) = row else {
            return Ok(false);
        };
        let current: Option<i64> = Columns::get(&row, "cancelled_at")?;
        if current.is_some() == cancelled_at.is_some() {
            return Ok(false);
        }
        let sql = match cancelled_at {
            Some(_) => CANCEL_TENANTS.pg(),
            None => REACTIVATE_TENANTS.pg(),
        };
        // $2: the new cancellation time, or the one being lifted.
        let changed = tx
            .query(sql, &[&tenant_id, &cancelled_at.or(current)])
            .await
            .map_err(pg(OP))?;
        for row in &changed {
            let sel = QueueSelector {
                tenant_id: Some(Columns::get(row, "id")?),
                ..QueueSelector::default()
            };
            match cancelled_at {
                Some(_) => hold(&tx, OP, &sel, at).await?,
                None => apply(&tx, &sel, QueueAction::Resume, at).await?,
            };
        }
        tx.commit().await.map_err(pg(OP))?;
        Ok(true)
    }

    pub(super) async fn delete_tenant_data_tx(
        &self,
        tenant_id: &str,
        limit: usize,
    ) -> PgResult<u64> {
        const OP: &str = "delete_tenant_data";
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let mut deleted = 0;
        for sql in TENANT_DATA_PG.iter() {
            let stmt = tx.prepare_cached(sql).await.map_err(pg(OP))?;
            deleted = tx
                .execute(&stmt, &[&tenant_id, &limit])
                .await
                .map_err(pg(OP))?;
            if deleted > 0 {
                break;
            }
        }
        if deleted == 0 {
            deleted = tx
                .execute(DELETE_TENANT.pg(), &[&tenant_id])
                .await
                .map_err(pg(OP))?;
        }
        tx.commit().await.map_err(pg(OP))?;
        Ok(deleted)
    }
}

impl TenantStore for PgStore {
    async fn set_tenant_cancelled(
        &self,
        tenant_id: &str,
        cancelled_at: Option<i64>,
        at: i64,
    ) -> StoreResult<bool> {
        retrying(|| self.set_tenant_cancelled_tx(tenant_id, cancelled_at, at)).await
    }

    async fn delete_tenant_data(&self, tenant_id: &str, limit: usize) -> StoreResult<u64> {
        retrying(|| self.delete_tenant_data_tx(tenant_id, limit)).await
    }

    async fn touch_api_key(&self, id: &str, at: i64) -> StoreResult<()> {
        retrying(|| async move {
            self.exec("touch_api_key", None, TOUCH_API_KEY.pg(), &[&id, &at])
                .await
        })
        .await
        .map(drop)
    }
}
