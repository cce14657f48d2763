//! PostgreSQL queries for webhook endpoints, their delivery queue and attempt log.

use tokio_postgres::types::ToSql;

use super::PgStore;
use super::error::{PgResult, corrupt, pg};
use super::*;
use crate::model::*;
use crate::run::FromRow;
use crate::webhooks::*;

/// Deletes deliveries selected by `where_clause` (over `webhook_deliveries`) and their
/// attempts, in `tx`; returns how many deliveries went.
pub(super) async fn delete_deliveries(
    tx: &deadpool_postgres::Transaction<'_>,
    op: &'static str,
    where_clause: &str,
    params: &[&(dyn ToSql + Sync)],
) -> PgResult<u64> {
    let sql = format!(
        "WITH gone AS (DELETE FROM webhook_deliveries WHERE {where_clause} RETURNING seq), \
         a AS (DELETE FROM webhook_attempts WHERE delivery_seq IN (SELECT seq FROM gone)) \
         SELECT count(*) FROM gone"
    );
    let stmt = tx.prepare_cached(&sql).await.map_err(pg(op))?;
    let row = tx.query_one(&stmt, params).await.map_err(pg(op))?;
    row.try_get::<_, i64>(0)
        .map(|n| n as u64)
        .map_err(|_| corrupt("count"))
}

impl PgStore {
    pub(super) async fn delete_webhook_tx(&self, tenant_id: &str, id: &str) -> PgResult<bool> {
        const OP: &str = "delete_webhook";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let params: [&(dyn ToSql + Sync); 2] = [&tenant_id, &id];
        delete_deliveries(&tx, OP, "tenant_id = $1 AND webhook_id = $2", &params).await?;
        let stmt = tx
            .prepare_cached(DELETE_WEBHOOK.pg())
            .await
            .map_err(pg(OP))?;
        let n = tx.execute(&stmt, &params).await.map_err(pg(OP))?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(n > 0)
    }

    pub(super) async fn claim_webhook_deliveries_q(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> PgResult<Vec<WebhookDelivery>> {
        const OP: &str = "claim_webhook_deliveries";
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(CLAIM_DELIVERIES_LOCKED.pg())
            .await
            .map_err(pg(OP))?;
        let rows = client
            .query(&stmt, &[&node, &lease_until, &now, &limit])
            .await
            .map_err(pg(OP))?;
        let mut deliveries = rows
            .iter()
            .map(WebhookDelivery::from_row)
            .collect::<PgResult<Vec<_>>>()?;
        deliveries.sort_by_key(|d| d.seq);
        Ok(deliveries)
    }

    pub(super) async fn finish_webhook_delivery_tx(&self, o: &WebhookOutcome) -> PgResult<bool> {
        const OP: &str = "finish_webhook_delivery";
        let a = &o.attempt;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        if o.record {
            let stmt = tx
                .prepare_cached(INSERT_ATTEMPT.pg())
                .await
                .map_err(pg(OP))?;
            tx.execute(
                &stmt,
                &[
                    &a.delivery_seq,
                    &a.webhook_id,
                    &a.tenant_id,
                    &a.event_seq,
                    &a.at,
                    &a.status_code,
                    &a.error,
                    &a.duration_ms,
                    &a.state.as_str(),
                ],
            )
            .await
            .map_err(pg(OP))?;
        }
        let stmt = tx
            .prepare_cached(FINISH_DELIVERY.pg())
            .await
            .map_err(pg(OP))?;
        tx.execute(
            &stmt,
            &[
                &a.delivery_seq,
                &a.state.as_str(),
                &i64::from(o.record),
                &o.next_attempt_at,
            ],
        )
        .await
        .map_err(pg(OP))?;
        let mut disabled = false;
        if o.record {
            if a.state == WebhookDeliveryState::Delivered {
                let stmt = tx
                    .prepare_cached(CLEAR_FAILING.pg())
                    .await
                    .map_err(pg(OP))?;
                tx.execute(&stmt, &[&a.webhook_id]).await.map_err(pg(OP))?;
            } else {
                // PostgreSQL's own: the failure run and the disabling in one statement
                // that says whether it disabled (SQLite: two statements).
                let stmt = tx
                    .prepare_cached(
                        "UPDATE webhooks SET failing_since = COALESCE(failing_since, $2), \
                         disabled_at = CASE WHEN disabled_at IS NULL AND failing_since < $3 \
                           THEN $2 ELSE disabled_at END \
                         WHERE id = $1 RETURNING disabled_at IS NOT DISTINCT FROM $2 AS now_disabled",
                    )
                    .await
                    .map_err(pg(OP))?;
                let row = tx
                    .query_opt(&stmt, &[&a.webhook_id, &a.at, &o.disable_failing_before])
                    .await
                    .map_err(pg(OP))?;
                disabled = row.is_some_and(|r| r.try_get::<_, bool>(0).unwrap_or(false));
            }
        }
        tx.commit().await.map_err(pg(OP))?;
        Ok(disabled)
    }
}

impl WebhookStore for PgStore {
    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        retrying(|| self.delete_webhook_tx(tenant_id, id)).await
    }

    async fn claim_webhook_deliveries(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        retrying(|| self.claim_webhook_deliveries_q(node, now, lease_until, limit)).await
    }

    async fn finish_webhook_delivery(&self, outcome: WebhookOutcome) -> StoreResult<bool> {
        let o = &outcome;
        retrying(|| self.finish_webhook_delivery_tx(o)).await
    }
}
