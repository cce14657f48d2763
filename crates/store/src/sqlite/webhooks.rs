//! SQLite queries for webhook endpoints, their delivery queue and attempt log.

use rusqlite::{Connection, params};

use super::writer::Durability;
use super::*;
use super::{SqliteStore, unavailable};
use crate::StoreResult;
use crate::model::encode_list;
use crate::model::*;
use crate::webhooks::{WEBHOOK_COLS, webhook_row};

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
    pub(super) async fn insert_webhook_tx(&self, w: WebhookRecord) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(&format!(
                    "INSERT INTO webhooks ({WEBHOOK_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ))
                .and_then(|mut st| {
                    st.execute(params![
                        w.id,
                        w.tenant_id,
                        w.url,
                        encode_list(&w.events),
                        encode_list(&w.streams),
                        w.secret_enc,
                        w.previous_secret_enc,
                        w.previous_until,
                        w.created_at,
                        w.disabled_at,
                        w.failing_since
                    ])
                })
                .map(|_| ())
                .map_err(|e| super::conflict_or(e, "webhook"))
            })
            .await
    }

    pub(super) async fn list_webhooks_q(
        &self,
        tenant_id: Option<String>,
    ) -> StoreResult<Vec<WebhookRecord>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {WEBHOOK_COLS} FROM webhooks WHERE ?1 IS NULL OR tenant_id = ?1 \
                     ORDER BY created_at, id"
                ))
                .map_err(unavailable)?;
            st.query_map(params![tenant_id], |r| webhook_row(r))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(unavailable)
        })
        .await
    }

    pub(super) async fn update_webhook_tx(&self, w: WebhookRecord) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "UPDATE webhooks SET url = ?3, events = ?4, streams = ?5, secret_enc = ?6, \
                     previous_secret_enc = ?7, previous_until = ?8, disabled_at = ?9, failing_since = ?10 \
                     WHERE tenant_id = ?1 AND id = ?2",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        w.tenant_id,
                        w.id,
                        w.url,
                        encode_list(&w.events),
                        encode_list(&w.streams),
                        w.secret_enc,
                        w.previous_secret_enc,
                        w.previous_until,
                        w.disabled_at,
                        w.failing_since
                    ])
                })
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

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
                c.prepare_cached("DELETE FROM webhooks WHERE tenant_id = ?1 AND id = ?2")
                    .and_then(|mut st| st.execute(params![tenant_id, id]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }

    pub(super) async fn replay_webhook_tx(
        &self,
        tenant_id: String,
        id: String,
        from: i64,
        to: i64,
        now: i64,
    ) -> StoreResult<u64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "INSERT INTO webhook_deliveries (webhook_id, tenant_id, event_seq, message_id, rcpt_hash, \
                       state, next_attempt_at, created_at) \
                     SELECT w.id, e.tenant_id, e.seq, e.message_id, e.rcpt_hash, 'pending', ?5, ?5 \
                     FROM webhooks w JOIN events e ON e.tenant_id = w.tenant_id \
                     WHERE w.tenant_id = ?1 AND w.id = ?2 AND e.at >= ?3 AND e.at < ?4 \
                       AND (w.events = '' OR instr(w.events, ',' || e.type || ',') > 0) \
                       AND (w.streams = '' OR instr(w.streams, \
                            ',' || (SELECT m.stream FROM messages m WHERE m.id = e.message_id) || ',') > 0) \
                     ORDER BY e.seq",
                )
                .and_then(|mut st| st.execute(params![tenant_id, id, from, to, now]))
                .map(|n| n as u64)
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
                    .prepare_cached(
                        "UPDATE webhook_deliveries SET lease_node = ?1, lease_until = ?2 WHERE seq IN (\
                           SELECT d.seq FROM webhook_deliveries d \
                           WHERE d.next_attempt_at <= ?3 AND (d.lease_until IS NULL OR d.lease_until < ?3) \
                             AND d.webhook_id IN (SELECT id FROM webhooks WHERE disabled_at IS NULL) \
                             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
                               WHERE p.webhook_id = d.webhook_id AND p.message_id = d.message_id \
                                 AND p.next_attempt_at IS NOT NULL AND p.event_seq < d.event_seq) \
                           ORDER BY d.next_attempt_at LIMIT ?4) \
                         RETURNING seq, webhook_id, tenant_id, event_seq, message_id, attempts",
                    )
                    .map_err(unavailable)?;
                let mut rows = st
                    .query_map(params![node, lease_until, now, limit as i64], |r| {
                        Ok(WebhookDelivery {
                            seq: r.get(0)?,
                            webhook_id: r.get(1)?,
                            tenant_id: r.get(2)?,
                            event_seq: r.get(3)?,
                            message_id: r.get(4)?,
                            attempts: r.get(5)?,
                        })
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
                    c.prepare_cached(
                        "INSERT INTO webhook_attempts (delivery_seq, webhook_id, tenant_id, event_seq, at, \
                         status_code, error, duration_ms, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
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
                c.prepare_cached(
                    "UPDATE webhook_deliveries SET state = ?2, attempts = attempts + ?3, next_attempt_at = ?4, \
                     lease_node = NULL, lease_until = NULL WHERE seq = ?1",
                )
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
                    c.prepare_cached("UPDATE webhooks SET failing_since = NULL WHERE id = ?1")
                        .and_then(|mut st| st.execute(params![a.webhook_id]))
                        .map_err(unavailable)?;
                    return Ok(false);
                }
                c.prepare_cached(
                    "UPDATE webhooks SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1",
                )
                .and_then(|mut st| st.execute(params![a.webhook_id, a.at]))
                .map_err(unavailable)?;
                c.prepare_cached(
                    "UPDATE webhooks SET disabled_at = ?2 \
                     WHERE id = ?1 AND disabled_at IS NULL AND failing_since < ?3",
                )
                .and_then(|mut st| st.execute(params![a.webhook_id, a.at, o.disable_failing_before]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    pub(super) async fn list_webhook_attempts_q(
        &self,
        tenant_id: String,
        webhook_id: String,
        before_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<WebhookAttemptRecord>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT seq, delivery_seq, webhook_id, tenant_id, event_seq, at, status_code, error, \
                     duration_ms, state FROM webhook_attempts \
                     WHERE tenant_id = ?1 AND webhook_id = ?2 AND (?3 IS NULL OR seq < ?3) \
                     ORDER BY seq DESC LIMIT ?4",
                )
                .map_err(unavailable)?;
            let rows = st
                .query_map(
                    params![tenant_id, webhook_id, before_seq, limit.max(1) as i64],
                    |r| {
                        Ok((
                            WebhookAttemptRecord {
                                seq: r.get(0)?,
                                delivery_seq: r.get(1)?,
                                webhook_id: r.get(2)?,
                                tenant_id: r.get(3)?,
                                event_seq: r.get(4)?,
                                at: r.get(5)?,
                                status_code: r.get(6)?,
                                error: r.get(7)?,
                                duration_ms: r.get(8)?,
                                state: WebhookDeliveryState::Pending,
                            },
                            r.get::<_, String>(9)?,
                        ))
                    },
                )
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(mut a, state)| {
                    a.state = WebhookDeliveryState::parse(&state)?;
                    Ok(a)
                })
                .collect()
        })
        .await
    }
}

impl WebhookStore for SqliteStore {
    async fn insert_webhook(&self, w: WebhookRecord) -> StoreResult<()> {
        self.insert_webhook_tx(w).await
    }

    async fn list_webhooks(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRecord>> {
        self.list_webhooks_q(tenant_id.map(str::to_string)).await
    }

    async fn update_webhook(&self, w: WebhookRecord) -> StoreResult<bool> {
        self.update_webhook_tx(w).await
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        self.delete_webhook_tx(tenant_id.to_string(), id.to_string())
            .await
    }

    async fn replay_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        from: i64,
        to: i64,
        now: i64,
    ) -> StoreResult<u64> {
        self.replay_webhook_tx(tenant_id.to_string(), id.to_string(), from, to, now)
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

    async fn list_webhook_attempts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        before_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<WebhookAttemptRecord>> {
        self.list_webhook_attempts_q(
            tenant_id.to_string(),
            webhook_id.to_string(),
            before_seq,
            limit,
        )
        .await
    }
}
