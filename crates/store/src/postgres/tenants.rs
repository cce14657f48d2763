//! PostgreSQL queries for a tenant's life cycle: listing, cancellation and the
//! deletion of a cancelled tenant's data.

use super::error::{PgResult, pg};
use super::streams::{apply, hold};
use super::{PgStore, TENANT_COLS, col, tenant_row};
use crate::model::*;

impl PgStore {
    pub(super) async fn list_tenants_q(
        &self,
        cancelled_before: Option<i64>,
    ) -> PgResult<Vec<TenantRecord>> {
        const OP: &str = "list_tenants";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {TENANT_COLS} FROM tenants WHERE $1::int8 IS NULL OR cancelled_at < $1 \
                 ORDER BY created_at, id"
            ))
            .await
            .map_err(pg(OP))?;
        let rows = client
            .query(&stmt, &[&cancelled_before])
            .await
            .map_err(pg(OP))?;
        rows.iter().map(tenant_row).collect()
    }

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
            .query_opt(
                "SELECT cancelled_at FROM tenants WHERE id = $1 FOR UPDATE",
                &[&tenant_id],
            )
            .await
            .map_err(pg(OP))?;
        let Some(row) = row else {
            return Ok(false);
        };
        let current: Option<i64> = col(&row, "cancelled_at")?;
        if current.is_some() == cancelled_at.is_some() {
            return Ok(false);
        }
        let sql = match cancelled_at {
            Some(_) => {
                "UPDATE tenants SET cancelled_at = $2 WHERE (id = $1 OR parent_id = $1) \
                 AND cancelled_at IS NULL RETURNING id"
            }
            None => {
                "UPDATE tenants SET cancelled_at = NULL WHERE id = $1 \
                 OR (parent_id = $1 AND cancelled_at >= $2) RETURNING id"
            }
        };
        // $2: the new cancellation time, or the one being lifted.
        let changed = tx
            .query(sql, &[&tenant_id, &cancelled_at.or(current)])
            .await
            .map_err(pg(OP))?;
        for row in &changed {
            let sel = QueueSelector {
                tenant_id: Some(col(row, "id")?),
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
        for sql in crate::tenant_data_sql("$1", "$2") {
            let stmt = tx.prepare_cached(&sql).await.map_err(pg(OP))?;
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
                .execute("DELETE FROM tenants WHERE id = $1", &[&tenant_id])
                .await
                .map_err(pg(OP))?;
        }
        tx.commit().await.map_err(pg(OP))?;
        Ok(deleted)
    }
}
