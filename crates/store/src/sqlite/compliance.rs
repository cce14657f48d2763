//! SQLite: the compliance area ([`crate::ComplianceStore`]).

use super::*;

impl ComplianceStore for SqliteStore {
    async fn add_request(&self, r: DsarRecord) -> StoreResult<i64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "INSERT INTO dsar_requests (tenant_id, kind, rcpt_hash, received_at, due_at, status, closed_at, \
                     detail_enc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        r.tenant_id,
                        r.kind.as_str(),
                        r.rcpt_hash,
                        r.received_at,
                        r.due_at,
                        r.status.as_str(),
                        r.closed_at,
                        r.detail_enc
                    ])
                })
                .map_err(unavailable)?;
                Ok(c.last_insert_rowid())
            })
            .await
    }

    async fn close_request(
        &self,
        tenant_id: &str,
        seq: i64,
        status: DsarStatus,
        at: i64,
    ) -> StoreResult<bool> {
        let tenant_id = tenant_id.to_string();
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "UPDATE dsar_requests SET status = ?3, closed_at = ?4 \
                     WHERE tenant_id = ?1 AND seq = ?2 AND status = 'open'",
                )
                .and_then(|mut st| st.execute(params![tenant_id, seq, status.as_str(), at]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn list_requests(
        &self,
        tenant_id: &str,
        open_due_before: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<DsarRecord>> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT seq, kind, rcpt_hash, received_at, due_at, status, closed_at, detail_enc FROM dsar_requests \
                     WHERE tenant_id = ?1 AND seq > ?2 AND (?3 IS NULL OR (status = 'open' AND due_at < ?3)) \
                     ORDER BY seq LIMIT ?4",
                )
                .and_then(|mut st| {
                    st.query_map(
                        params![tenant_id, after_seq.unwrap_or(0), open_due_before, limit.max(1) as i64],
                        |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, Vec<u8>>(2)?,
                                r.get::<_, i64>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, String>(5)?,
                                r.get::<_, Option<i64>>(6)?,
                                r.get::<_, Vec<u8>>(7)?,
                            ))
                        },
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(seq, kind, rcpt_hash, received_at, due_at, status, closed_at, detail_enc)| {
                    Ok(DsarRecord {
                        seq,
                        tenant_id: tenant_id.clone(),
                        kind: kind.parse::<DsarKind>().map_err(|_| corrupt("request kind"))?,
                        rcpt_hash,
                        received_at,
                        due_at,
                        status: status.parse::<DsarStatus>().map_err(|_| corrupt("request status"))?,
                        closed_at,
                        detail_enc,
                    })
                })
                .collect()
        })
        .await
    }

    async fn add_incident(&self, r: IncidentRecord) -> StoreResult<i64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "INSERT INTO incidents (tenant_id, detected_at, authority_due_at, customers_due_at, \
                     authority_notified_at, customers_notified_at, closed_at, detail_enc) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        r.tenant_id,
                        r.detected_at,
                        r.authority_due_at,
                        r.customers_due_at,
                        r.authority_notified_at,
                        r.customers_notified_at,
                        r.closed_at,
                        r.detail_enc
                    ])
                })
                .map_err(unavailable)?;
                Ok(c.last_insert_rowid())
            })
            .await
    }

    async fn step_incident(
        &self,
        tenant_id: &str,
        seq: i64,
        step: IncidentStep,
        at: i64,
    ) -> StoreResult<bool> {
        let tenant_id = tenant_id.to_string();
        self.writer
            .write(Durability::Fsync, move |c| {
                let column = step.column();
                c.prepare_cached(&format!(
                    "UPDATE incidents SET {column} = ?3 WHERE tenant_id = ?1 AND seq = ?2 AND {column} IS NULL"
                ))
                .and_then(|mut st| st.execute(params![tenant_id, seq, at]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn list_incidents(
        &self,
        tenant_id: &str,
        overdue_at: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<IncidentRecord>> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT seq, detected_at, authority_due_at, customers_due_at, authority_notified_at, \
                 customers_notified_at, closed_at, detail_enc FROM incidents \
                 WHERE tenant_id = ?1 AND seq > ?2 AND (?3 IS NULL OR (authority_notified_at IS NULL AND authority_due_at < ?3) OR (customers_notified_at IS NULL AND customers_due_at < ?3)) ORDER BY seq LIMIT ?4",
            )
            .and_then(|mut st| {
                st.query_map(
                    params![tenant_id, after_seq.unwrap_or(0), overdue_at, limit.max(1) as i64],
                    |r| {
                        Ok(IncidentRecord {
                            seq: r.get(0)?,
                            tenant_id: tenant_id.clone(),
                            detected_at: r.get(1)?,
                            authority_due_at: r.get(2)?,
                            customers_due_at: r.get(3)?,
                            authority_notified_at: r.get(4)?,
                            customers_notified_at: r.get(5)?,
                            closed_at: r.get(6)?,
                            detail_enc: r.get(7)?,
                        })
                    },
                )?
                .collect()
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn purge(&self, r: Retention) -> StoreResult<Purged> {
        use crate::model::RetentionKind::{Content, Events, WebhookLogs};
        use crate::queue_sql::SQLITE;
        use crate::retention_sql as sql;
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute_batch(&format!(
                    "CREATE TEMP TABLE IF NOT EXISTS {}; DELETE FROM temp.retention_policy; \
                     CREATE TEMP TABLE IF NOT EXISTS purge_ids (id TEXT PRIMARY KEY); DELETE FROM temp.purge_ids;",
                    sql::POLICY_TABLE
                ))
                .map_err(unavailable)?;
                let mut insert = c
                    .prepare_cached("INSERT INTO temp.retention_policy VALUES (?1, ?2, ?3, ?4, ?5)")
                    .map_err(unavailable)?;
                for (tenant, stream, [content, events, webhook_logs]) in r.policies.iter().map(sql::policy_row) {
                    insert
                        .execute(params![tenant, stream, content, events, webhook_logs])
                        .map_err(unavailable)?;
                }
                let run = |statement: String, kind| {
                    c.prepare_cached(&statement)
                        .and_then(|mut st| st.execute(sql::params(&r, kind)))
                        .map(|n| n as u64)
                        .map_err(unavailable)
                };
                let contents = run(sql::content(&SQLITE), Content)?;
                let events = run(sql::events(&SQLITE), Events)?;
                run(format!("INSERT INTO temp.purge_ids {}", sql::messages(&SQLITE)), Events)?;
                c.execute("DELETE FROM recipients WHERE message_id IN (SELECT id FROM temp.purge_ids)", [])
                    .map_err(unavailable)?;
                c.execute("DELETE FROM message_tags WHERE message_id IN (SELECT id FROM temp.purge_ids)", [])
                    .map_err(unavailable)?;
                let messages = c
                    .execute("DELETE FROM messages WHERE id IN (SELECT id FROM temp.purge_ids)", [])
                    .map_err(unavailable)? as u64;
                let idempotency = c
                    .prepare_cached(
                        "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE created_at < ?1 LIMIT ?2)",
                    )
                    .and_then(|mut st| st.execute(params![r.idempotency_before, sql::params(&r, Events)[3]]))
                    .map_err(unavailable)? as u64;
                let webhook_deliveries = webhooks::delete_deliveries(
                    c,
                    &sql::webhook_deliveries(&SQLITE),
                    sql::params(&r, WebhookLogs),
                )?;
                Ok(Purged { contents, events, messages, idempotency, webhook_deliveries, audit: 0 })
            })
            .await
    }
}
