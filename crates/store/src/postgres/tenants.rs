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
    pub(super) async fn list_tenants_q(
        &self,
        cancelled_before: Option<i64>,
    ) -> PgResult<Vec<TenantRecord>> {
        const OP: &str = "list_tenants";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(LIST_TENANTS.pg())
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
    async fn insert_tenant(&self, t: TenantRecord) -> StoreResult<()> {
        let t = &t;
        retrying(|| async move {
            let params: [&(dyn ToSql + Sync); 6] = [
                &t.id,
                &t.name,
                &t.wrapped_key,
                &t.created_at,
                &t.parent_id,
                &t.cancelled_at,
            ];
            self.exec("insert_tenant", Some("tenant"), INSERT_TENANT.pg(), &params)
                .await
        })
        .await
        .map(drop)
    }

    async fn get_tenant(&self, id: &str) -> StoreResult<Option<TenantRecord>> {
        retrying(|| async move {
            self.one_opt("get_tenant", GET_TENANT.pg(), &[&id])
                .await?
                .as_ref()
                .map(tenant_row)
                .transpose()
        })
        .await
    }

    async fn list_subaccounts(&self, parent_id: &str) -> StoreResult<Vec<TenantRecord>> {
        retrying(|| async move {
            const OP: &str = "list_subaccounts";
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(LIST_SUBACCOUNTS.pg())
                .await
                .map_err(pg(OP))?;
            let rows = client.query(&stmt, &[&parent_id]).await.map_err(pg(OP))?;
            rows.iter().map(tenant_row).collect()
        })
        .await
    }

    async fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        retrying(|| async move {
            self.one_opt("get_tenant_by_name", GET_TENANT_BY_NAME.pg(), &[&name])
                .await?
                .as_ref()
                .map(tenant_row)
                .transpose()
        })
        .await
    }

    async fn list_tenants(&self, cancelled_before: Option<i64>) -> StoreResult<Vec<TenantRecord>> {
        retrying(|| self.list_tenants_q(cancelled_before)).await
    }

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

    async fn insert_api_key(&self, k: ApiKeyRecord) -> StoreResult<()> {
        let scopes = &scopes_text(&k.scopes);
        let allowed_ips = &crate::model::join_list(&k.allowed_ips);
        let rate_limit = &k.rate_limit.map(i64::from);
        let k = &k;
        retrying(|| async move {
            let params: [&(dyn ToSql + Sync); 9] = [
                &k.id,
                &k.tenant_id,
                &k.name,
                &k.secret_hash,
                scopes,
                &k.created_at,
                &k.expires_at,
                allowed_ips,
                rate_limit,
            ];
            self.exec(
                "insert_api_key",
                Some("api key"),
                INSERT_API_KEY.pg(),
                &params,
            )
            .await
        })
        .await
        .map(drop)
    }

    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        retrying(|| async move {
            let Some(r) = self
                .one_opt("get_api_key", GET_API_KEY.pg(), &[&id])
                .await?
            else {
                return Ok(None);
            };
            Ok(Some(api_key_row(&r)?))
        })
        .await
    }

    async fn touch_api_key(&self, id: &str, at: i64) -> StoreResult<()> {
        retrying(|| async move {
            self.exec("touch_api_key", None, TOUCH_API_KEY.pg(), &[&id, &at])
                .await
        })
        .await
        .map(drop)
    }

    async fn list_api_keys(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyRecord>> {
        retrying(|| async move {
            const OP: &str = "list_api_keys";
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(LIST_API_KEYS.pg())
                .await
                .map_err(pg(OP))?;
            let rows = client.query(&stmt, &[&tenant_id]).await.map_err(pg(OP))?;
            rows.iter().map(api_key_row).collect()
        })
        .await
    }

    async fn end_api_key(
        &self,
        tenant_id: &str,
        id: &str,
        at: i64,
        revoke: bool,
    ) -> StoreResult<bool> {
        retrying(|| async move {
            let sql = if revoke {
                &REVOKE_API_KEY
            } else {
                &EXPIRE_API_KEY
            };
            let n = self
                .exec("end_api_key", None, sql.pg(), &[&tenant_id, &id, &at])
                .await?;
            Ok(n > 0)
        })
        .await
    }
}
