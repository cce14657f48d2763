//! SQLite: the compliance area ([`crate::ComplianceStore`]).

use super::*;
use crate::compliance::*;

impl ComplianceStore for SqliteStore {
    async fn purge(&self, r: Retention) -> StoreResult<Purged> {
        use crate::model::RetentionKind::{Content, Events, WebhookLogs};
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
                let contents = run(sql::CONTENT.sqlite().to_string(), Content)?;
                let events = run(sql::EVENTS.sqlite().to_string(), Events)?;
                run(format!("INSERT INTO temp.purge_ids {}", sql::MESSAGES.sqlite()), Events)?;
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
                    sql::WEBHOOK_DELIVERIES.sqlite(),
                    sql::params(&r, WebhookLogs),
                )?;
                Ok(Purged { contents, events, messages, idempotency, webhook_deliveries, audit: 0 })
            })
            .await
    }
}
