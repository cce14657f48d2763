//! SQLite queries for a tenant's life cycle: listing, cancellation and the deletion of
//! a cancelled tenant's data.

use rusqlite::{OptionalExtension, params};

use super::streams::{apply, hold};
use super::writer::Durability;
use super::*;
use super::{SqliteStore, unavailable};
use crate::StoreResult;
use crate::model::*;
use crate::tenants::*;

impl SqliteStore {
    pub(super) async fn list_tenants_q(
        &self,
        cancelled_before: Option<i64>,
    ) -> StoreResult<Vec<TenantRecord>> {
        self.read(move |c| {
            c.prepare_cached(LIST_TENANTS.sqlite())
                .and_then(|mut s| {
                    s.query_map([cancelled_before], |r| tenant_row(r))?
                        .collect()
                })
                .map_err(unavailable)
        })
        .await
    }

    pub(super) async fn set_tenant_cancelled_tx(
        &self,
        tenant_id: String,
        cancelled_at: Option<i64>,
        at: i64,
    ) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let current: Option<Option<i64>> = c
                    .prepare_cached(CANCELLED_AT.sqlite())
                    .and_then(|mut s| {
                        s.query_row([&tenant_id], |r| r.get("cancelled_at"))
                            .optional()
                    })
                    .map_err(unavailable)?;
                let Some(current) = current else {
                    return Ok(false);
                };
                if current.is_some() == cancelled_at.is_some() {
                    return Ok(false);
                }
                let changed: Vec<String> = match cancelled_at {
                    Some(_) => c.prepare_cached(CANCEL_TENANTS.sqlite()),
                    None => c.prepare_cached(REACTIVATE_TENANTS.sqlite()),
                }
                // ?2: the new cancellation time, or the one being lifted.
                .and_then(|mut s| {
                    s.query_map(params![tenant_id, cancelled_at.or(current)], |r| {
                        r.get("id")
                    })?
                    .collect()
                })
                .map_err(unavailable)?;
                for id in changed {
                    let sel = QueueSelector {
                        tenant_id: Some(id),
                        ..QueueSelector::default()
                    };
                    match cancelled_at {
                        Some(_) => hold(c, &sel, at)?,
                        None => apply(c, &sel, QueueAction::Resume, at)?,
                    };
                }
                Ok(true)
            })
            .await
    }

    pub(super) async fn delete_tenant_data_tx(
        &self,
        tenant_id: String,
        limit: usize,
    ) -> StoreResult<u64> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.writer
            .write(Durability::Fsync, move |c| {
                for sql in TENANT_DATA_SQLITE.iter() {
                    let deleted = c
                        .prepare_cached(sql)
                        .and_then(|mut s| s.execute(params![tenant_id, limit]))
                        .map_err(unavailable)?;
                    if deleted > 0 {
                        return Ok(deleted as u64);
                    }
                }
                c.prepare_cached(DELETE_TENANT.sqlite())
                    .and_then(|mut s| s.execute([&tenant_id]))
                    .map(|n| n as u64)
                    .map_err(unavailable)
            })
            .await
    }
}

impl TenantStore for SqliteStore {
    async fn insert_tenant(&self, t: TenantRecord) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute(
                    INSERT_TENANT.sqlite(),
                    params![
                        t.id,
                        t.name,
                        t.wrapped_key,
                        t.created_at,
                        t.parent_id,
                        t.cancelled_at
                    ],
                )
                .map_err(|e| conflict_or(e, "tenant"))?;
                Ok(())
            })
            .await
    }

    async fn get_tenant(&self, id: &str) -> StoreResult<Option<TenantRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(GET_TENANT.sqlite())
                .and_then(|mut s| s.query_row([id], |r| tenant_row(r)).optional())
                .map_err(unavailable)
        })
        .await
    }

    async fn list_subaccounts(&self, parent_id: &str) -> StoreResult<Vec<TenantRecord>> {
        let parent_id = parent_id.to_string();
        self.read(move |c| {
            c.prepare_cached(LIST_SUBACCOUNTS.sqlite())
                .and_then(|mut s| s.query_map([parent_id], |r| tenant_row(r))?.collect())
                .map_err(unavailable)
        })
        .await
    }

    async fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        let name = name.to_string();
        self.read(move |c| {
            c.prepare_cached(GET_TENANT_BY_NAME.sqlite())
                .and_then(|mut s| s.query_row([name], |r| tenant_row(r)).optional())
                .map_err(unavailable)
        })
        .await
    }

    async fn list_tenants(&self, cancelled_before: Option<i64>) -> StoreResult<Vec<TenantRecord>> {
        self.list_tenants_q(cancelled_before).await
    }

    async fn set_tenant_cancelled(
        &self,
        tenant_id: &str,
        cancelled_at: Option<i64>,
        at: i64,
    ) -> StoreResult<bool> {
        self.set_tenant_cancelled_tx(tenant_id.to_string(), cancelled_at, at)
            .await
    }

    async fn delete_tenant_data(&self, tenant_id: &str, limit: usize) -> StoreResult<u64> {
        self.delete_tenant_data_tx(tenant_id.to_string(), limit)
            .await
    }

    async fn insert_api_key(&self, k: ApiKeyRecord) -> StoreResult<()> {
        let scopes = scopes_text(&k.scopes);
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute(
                    INSERT_API_KEY.sqlite(),
                    params![
                        k.id,
                        k.tenant_id,
                        k.name,
                        k.secret_hash,
                        scopes,
                        k.created_at,
                        k.expires_at,
                        crate::model::join_list(&k.allowed_ips),
                        k.rate_limit
                    ],
                )
                .map_err(|e| conflict_or(e, "api key"))?;
                Ok(())
            })
            .await
    }

    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(GET_API_KEY.sqlite())
                .and_then(|mut s| s.query_row([id], |r| api_key_row(r)).optional())
                .map_err(unavailable)
        })
        .await
    }

    async fn touch_api_key(&self, id: &str, at: i64) -> StoreResult<()> {
        let id = id.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                c.execute(TOUCH_API_KEY.sqlite(), params![id, at])
                    .map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    async fn list_api_keys(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyRecord>> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            c.prepare_cached(LIST_API_KEYS.sqlite())
                .and_then(|mut s| {
                    s.query_map([tenant_id], |r| api_key_row(r))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)
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
        let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
        self.writer
            .write(Durability::Fsync, move |c| {
                let sql = if revoke {
                    &REVOKE_API_KEY
                } else {
                    &EXPIRE_API_KEY
                };
                c.prepare_cached(sql.sqlite())
                    .and_then(|mut st| st.execute(params![tenant_id, id, at]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }
}
