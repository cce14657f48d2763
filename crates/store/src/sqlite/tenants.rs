//! SQLite queries for a tenant's life cycle: listing, cancellation and the deletion of
//! a cancelled tenant's data.

use rusqlite::{OptionalExtension, params};

use super::streams::{apply, hold};
use super::writer::Durability;
use super::{SqliteStore, TENANT_COLS, tenant_row, unavailable};
use crate::StoreResult;
use crate::model::*;

impl SqliteStore {
    pub(super) async fn list_tenants_r(
        &self,
        cancelled_before: Option<i64>,
    ) -> StoreResult<Vec<TenantRecord>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TENANT_COLS} FROM tenants WHERE ?1 IS NULL OR cancelled_at < ?1 \
                 ORDER BY created_at, id"
            ))
            .and_then(|mut s| s.query_map([cancelled_before], tenant_row)?.collect())
            .map_err(unavailable)
        })
        .await
    }

    pub(super) async fn set_tenant_cancelled_w(
        &self,
        tenant_id: String,
        cancelled_at: Option<i64>,
        at: i64,
    ) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let current: Option<Option<i64>> = c
                    .prepare_cached("SELECT cancelled_at FROM tenants WHERE id = ?1")
                    .and_then(|mut s| s.query_row([&tenant_id], |r| r.get(0)).optional())
                    .map_err(unavailable)?;
                let Some(current) = current else {
                    return Ok(false);
                };
                if current.is_some() == cancelled_at.is_some() {
                    return Ok(false);
                }
                let changed: Vec<String> = match cancelled_at {
                    Some(_) => c.prepare_cached(
                        "UPDATE tenants SET cancelled_at = ?2 WHERE (id = ?1 OR parent_id = ?1) \
                         AND cancelled_at IS NULL RETURNING id",
                    ),
                    None => c.prepare_cached(
                        "UPDATE tenants SET cancelled_at = NULL WHERE id = ?1 \
                         OR (parent_id = ?1 AND cancelled_at >= ?2) RETURNING id",
                    ),
                }
                // ?2: the new cancellation time, or the one being lifted.
                .and_then(|mut s| {
                    s.query_map(params![tenant_id, cancelled_at.or(current)], |r| r.get(0))?
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

    pub(super) async fn delete_tenant_data_w(
        &self,
        tenant_id: String,
        limit: usize,
    ) -> StoreResult<u64> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.writer
            .write(Durability::Fsync, move |c| {
                for sql in crate::tenant_data_sql("?1", "?2") {
                    let deleted = c
                        .prepare_cached(&sql)
                        .and_then(|mut s| s.execute(params![tenant_id, limit]))
                        .map_err(unavailable)?;
                    if deleted > 0 {
                        return Ok(deleted as u64);
                    }
                }
                c.prepare_cached("DELETE FROM tenants WHERE id = ?1")
                    .and_then(|mut s| s.execute([&tenant_id]))
                    .map(|n| n as u64)
                    .map_err(unavailable)
            })
            .await
    }
}
