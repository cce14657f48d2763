//! SQLite queries for a tenant's life cycle: listing, cancellation and the deletion of
//! a cancelled tenant's data.

use rusqlite::{OptionalExtension, params};

use super::streams::{apply, hold};
use super::writer::Durability;
use super::{SqliteStore, unavailable};
use crate::StoreResult;
use crate::model::*;
use crate::tenants::*;

impl SqliteStore {
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
}
