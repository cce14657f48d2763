//! SQLite queries for webhook endpoints, their delivery queue and attempt log.

use rusqlite::{Connection, params};

use super::writer::Durability;
use super::{SqliteStore, unavailable};
use crate::StoreResult;
use crate::model::*;
use crate::run::FromRow;
use crate::webhooks::*;

/// Deletes a tenant's deliveries (and their attempts) selected by `where_clause` over
/// `webhook_deliveries`, with `?1` = tenant; returns how many deliveries went.
pub(crate) fn delete_deliveries(
    c: &Connection,
    where_clause: &str,
    args: impl rusqlite::Params + Clone,
) -> StoreResult<u64> {
    c.prepare_cached(&format!(
        "DELETE FROM webhook_attempts WHERE delivery_seq IN \
         (SELECT seq FROM webhook_deliveries WHERE {where_clause})"
    ))
    .and_then(|mut st| st.execute(args.clone()))
    .map_err(unavailable)?;
    c.prepare_cached(&format!(
        "DELETE FROM webhook_deliveries WHERE {where_clause}"
    ))
    .and_then(|mut st| st.execute(args))
    .map(|n| n as u64)
    .map_err(unavailable)
}

impl SqliteStore {
    pub(super) async fn delete_webhook_tx(
        &self,
        tenant_id: String,
        id: String,
    ) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                delete_deliveries(
                    c,
                    "tenant_id = ?1 AND webhook_id = ?2",
                    params![tenant_id, id],
                )?;
                c.prepare_cached(DELETE_WEBHOOK.sqlite())
                    .and_then(|mut st| st.execute(params![tenant_id, id]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }

    pub(super) async fn claim_webhook_deliveries_tx(
        &self,
        node: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        self.writer
            .write(Durability::Process, move |c| {
                let mut st = c
                    .prepare_cached(CLAIM_DELIVERIES.sqlite())
                    .map_err(unavailable)?;
                let mut rows = st
                    .query_map(params![node, lease_until, now, limit as i64], |r| {
                        WebhookDelivery::from_row(r)
                    })
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(unavailable)?;
                rows.sort_by_key(|d| d.seq);
                Ok(rows)
            })
            .await
    }

    pub(super) async fn finish_webhook_delivery_tx(&self, o: WebhookOutcome) -> StoreResult<bool> {
        self.writer
            .write(Durability::Process, move |c| {
                let a = &o.attempt;
                if o.record {
                    c.prepare_cached(INSERT_ATTEMPT.sqlite())
                        .and_then(|mut st| {
                            st.execute(params![
                                a.delivery_seq,
                                a.webhook_id,
                                a.tenant_id,
                                a.event_seq,
                                a.at,
                                a.status_code,
                                a.error,
                                a.duration_ms,
                                a.state.as_str()
                            ])
                        })
                        .map_err(unavailable)?;
                }
                c.prepare_cached(FINISH_DELIVERY.sqlite())
                    .and_then(|mut st| {
                        st.execute(params![
                            a.delivery_seq,
                            a.state.as_str(),
                            i64::from(o.record),
                            o.next_attempt_at
                        ])
                    })
                    .map_err(unavailable)?;
                if !o.record {
                    return Ok(false);
                }
                if a.state == WebhookDeliveryState::Delivered {
                    c.prepare_cached(CLEAR_FAILING.sqlite())
                        .and_then(|mut st| st.execute(params![a.webhook_id]))
                        .map_err(unavailable)?;
                    return Ok(false);
                }
                // SQLite's own: the failure run, then the disabling, whose row count
                // says whether it disabled (PostgreSQL: one statement).
                c.prepare_cached(
                    "UPDATE webhooks SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1",
                )
                .and_then(|mut st| st.execute(params![a.webhook_id, a.at]))
                .map_err(unavailable)?;
                c.prepare_cached(
                    "UPDATE webhooks SET disabled_at = ?2 \
                     WHERE id = ?1 AND disabled_at IS NULL AND failing_since < ?3",
                )
                .and_then(|mut st| {
                    st.execute(params![a.webhook_id, a.at, o.disable_failing_before])
                })
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }
}

impl WebhookStore for SqliteStore {
    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        self.delete_webhook_tx(tenant_id.to_string(), id.to_string())
            .await
    }

    async fn claim_webhook_deliveries(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        self.claim_webhook_deliveries_tx(node.to_string(), now, lease_until, limit)
            .await
    }

    async fn finish_webhook_delivery(&self, outcome: WebhookOutcome) -> StoreResult<bool> {
        self.finish_webhook_delivery_tx(outcome).await
    }
}
