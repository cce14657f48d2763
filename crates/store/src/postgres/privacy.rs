//! PostgreSQL queries for contacts, consents, erasure and the retention purge.

use tokio_postgres::types::ToSql;

use super::PgStore;
use super::error::{PgResult, pg};
use super::*;
use crate::model::*;
use crate::privacy::*;
use crate::row::Columns;
use crate::run::FromRow;
use crate::suppressions::FIND_SUPPRESSIONS;

impl PgStore {
    pub(super) async fn upsert_contact_q(&self, c: &ContactRecord) -> PgResult<bool> {
        let params: [&(dyn ToSql + Sync); 8] = [
            &c.tenant_id,
            &c.rcpt_hash,
            &c.data_enc,
            &c.restricted_at,
            &c.created_at,
            &c.updated_at,
            &c.attr_tags,
            &c.deleted_at,
        ];
        let row = self
            .one_opt("upsert_contact", UPSERT_CONTACT_RETURNING.pg(), &params)
            .await?;
        row.map_or(Ok(false), |r| Columns::get(&r, "inserted"))
    }

    pub(super) async fn screen_subjects_q(
        &self,
        tenant_id: &str,
        hashes: &[Vec<u8>],
        purpose: Option<&str>,
    ) -> PgResult<ConsentScreen> {
        const OP: &str = "screen_subjects";
        let client = self.client().await?;
        let restricted = client
            .prepare_cached(RESTRICTED_AMONG.pg())
            .await
            .map_err(pg(OP))?;
        let consents = client
            .prepare_cached(CONSENTS_AMONG.pg())
            .await
            .map_err(pg(OP))?;
        let restricted = client
            .query(&restricted, &[&tenant_id, &hashes])
            .await
            .map_err(pg(OP))?
            .iter()
            .map(hash_row)
            .collect::<PgResult<Vec<_>>>()?;
        let consented = match purpose {
            None => Vec::new(),
            Some(purpose) => {
                let rows = client
                    .query(&consents, &[&tenant_id, &purpose, &hashes])
                    .await
                    .map_err(pg(OP))?;
                let records = rows
                    .iter()
                    .map(consent_mark_row)
                    .collect::<PgResult<Vec<_>>>()?;
                latest_active(records)
            }
        };
        let suppressions = client
            .prepare_cached(FIND_SUPPRESSIONS.pg())
            .await
            .map_err(pg(OP))?;
        let suppressions = client
            .query(&suppressions, &[&tenant_id, &hashes])
            .await
            .map_err(pg(OP))?
            .iter()
            .map(SuppressionRecord::from_row)
            .collect::<PgResult<Vec<_>>>()?;
        Ok(ConsentScreen {
            suppressions,
            restricted,
            consented,
        })
    }

    pub(super) async fn subject_keys_q(
        &self,
        tenant_id: &str,
        hashes: &[Vec<u8>],
    ) -> PgResult<Vec<SubjectKey>> {
        self.list(
            "subject_keys",
            SUBJECT_KEYS_AMONG.pg(),
            &[&tenant_id, &hashes],
            SubjectKey::from_row,
        )
        .await
    }

    pub(super) async fn ensure_subject_keys_q(
        &self,
        tenant_id: &str,
        candidates: &[SubjectKey],
    ) -> PgResult<Vec<SubjectKey>> {
        const OP: &str = "ensure_subject_keys";
        let hashes: Vec<&[u8]> = candidates.iter().map(|k| k.rcpt_hash.as_slice()).collect();
        let wrapped: Vec<&[u8]> = candidates
            .iter()
            .map(|k| k.key_wrapped.as_slice())
            .collect();
        let created: Vec<i64> = candidates.iter().map(|k| k.created_at).collect();
        let client = self.client().await?;
        // PostgreSQL's own: the candidates in one statement (SQLite: one each).
        let insert = client
            .prepare_cached(
                "INSERT INTO subject_keys (tenant_id, rcpt_hash, key_wrapped, created_at) \
                 SELECT $1, h, k, c FROM unnest($2::bytea[], $3::bytea[], $4::int8[]) AS u(h, k, c) \
                 ON CONFLICT DO NOTHING RETURNING rcpt_hash, key_wrapped, created_at",
            )
            .await
            .map_err(pg(OP))?;
        // The candidates stored now are their people's keys; only the people whose
        // candidate lost to a stored key are read back.
        let mut stored = client
            .query(&insert, &[&tenant_id, &hashes, &wrapped, &created])
            .await
            .map_err(pg(OP))?
            .iter()
            .map(SubjectKey::from_row)
            .collect::<PgResult<Vec<_>>>()?;
        let won: std::collections::HashSet<&[u8]> =
            stored.iter().map(|k| k.rcpt_hash.as_slice()).collect();
        let lost = distinct_hashes(
            hashes
                .into_iter()
                .filter(|h| !won.contains(h))
                .map(<[u8]>::to_vec)
                .collect(),
        );
        if !lost.is_empty() {
            stored.extend(self.subject_keys_q(tenant_id, &lost).await?);
        }
        Ok(stored)
    }

    pub(super) async fn erase_subject_tx(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> PgResult<Erasure> {
        const OP: &str = "erase_subject";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let t: [&(dyn ToSql + Sync); 2] = [&tenant_id, &rcpt_hash];
        let mut counts = [0u64; 9];
        for (n, sql) in counts.iter_mut().zip(ERASE_PG) {
            let stmt = tx.prepare_cached(sql.pg()).await.map_err(pg(OP))?;
            *n = tx.execute(&stmt, &t).await.map_err(pg(OP))?;
        }
        let webhook_deliveries =
            super::webhooks::delete_deliveries(&tx, OP, ERASE_DELIVERIES_WHERE.pg(), &t).await?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(erasure(counts, webhook_deliveries))
    }

    pub(super) async fn purge_tx(&self, r: &Retention) -> PgResult<Purged> {
        use crate::model::RetentionKind::{Content, Events, WebhookLogs};
        use crate::retention_sql as sql;
        const OP: &str = "purge";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS",
            sql::POLICY_TABLE
        ))
        .await
        .map_err(pg(OP))?;
        let rows: Vec<_> = r.policies.iter().map(sql::policy_row).collect();
        let tenants: Vec<&str> = rows.iter().map(|(t, _, _)| t.as_str()).collect();
        let streams: Vec<&str> = rows.iter().map(|(_, s, _)| s.as_str()).collect();
        let [contents, events, webhook_logs]: [Vec<Option<i64>>; 3] =
            std::array::from_fn(|k| rows.iter().map(|(_, _, p)| p[k]).collect());
        tx.execute(
            "INSERT INTO retention_policy SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], \
             $4::int8[], $5::int8[])",
            &[&tenants, &streams, &contents, &events, &webhook_logs],
        )
        .await
        .map_err(pg(OP))?;
        let statements = [
            (sql::CONTENT.pg().to_string(), Content),
            (sql::EVENTS.pg().to_string(), Events),
            (
                format!(
                    "WITH gone AS ({}), \
                     r AS (DELETE FROM recipients WHERE message_id IN (SELECT id FROM gone)), \
                     t AS (DELETE FROM message_tags WHERE message_id IN (SELECT id FROM gone)) \
                     DELETE FROM messages WHERE id IN (SELECT id FROM gone)",
                    sql::MESSAGES.pg()
                ),
                Events,
            ),
        ];
        let mut counts = [0u64; 3];
        for (n, (statement, kind)) in counts.iter_mut().zip(statements) {
            let stmt = tx.prepare_cached(&statement).await.map_err(pg(OP))?;
            let [now, shortest, default, limit] = sql::params(r, kind);
            *n = tx
                .execute(&stmt, &[&now, &shortest, &default, &limit])
                .await
                .map_err(pg(OP))?;
        }
        let limit = sql::params(r, Events)[3];
        let idempotency = tx
            .execute(
                "DELETE FROM idempotency WHERE (tenant_id, key_hash) IN (\
                 SELECT tenant_id, key_hash FROM idempotency WHERE created_at < $1 LIMIT $2)",
                &[&r.idempotency_before, &limit],
            )
            .await
            .map_err(pg(OP))?;
        let [now, shortest, default, limit] = sql::params(r, WebhookLogs);
        let webhook_deliveries = super::webhooks::delete_deliveries(
            &tx,
            OP,
            sql::WEBHOOK_DELIVERIES.pg(),
            &[&now, &shortest, &default, &limit],
        )
        .await?;
        tx.commit().await.map_err(pg(OP))?;
        let [contents, events, messages] = counts;
        Ok(Purged {
            contents,
            events,
            messages,
            idempotency,
            webhook_deliveries,
            audit: 0,
        })
    }
}

impl PrivacyStore for PgStore {
    async fn upsert_contact(&self, c: ContactRecord) -> StoreResult<bool> {
        let c = &c;
        retrying(|| self.upsert_contact_q(c)).await
    }

    async fn screen_subjects(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
        purpose: Option<String>,
    ) -> StoreResult<ConsentScreen> {
        let hashes = distinct_hashes(hashes);
        if hashes.is_empty() {
            return Ok(ConsentScreen::default());
        }
        let (hashes, purpose) = (&hashes, purpose.as_deref());
        retrying(|| self.screen_subjects_q(tenant_id, hashes, purpose)).await
    }

    async fn subject_keys(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<Vec<SubjectKey>> {
        let hashes = distinct_hashes(hashes);
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let hashes = &hashes;
        retrying(|| self.subject_keys_q(tenant_id, hashes)).await
    }

    async fn ensure_subject_keys(
        &self,
        tenant_id: &str,
        candidates: Vec<SubjectKey>,
    ) -> StoreResult<Vec<SubjectKey>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let candidates = &candidates;
        retrying(|| self.ensure_subject_keys_q(tenant_id, candidates)).await
    }

    async fn erase_subject(&self, tenant_id: &str, rcpt_hash: &[u8]) -> StoreResult<Erasure> {
        retrying(|| self.erase_subject_tx(tenant_id, rcpt_hash)).await
    }

    async fn stop_subject_mail(&self, stop: MailStop) -> StoreResult<u64> {
        let stop = &stop;
        retrying(|| self.stop_subject_mail_tx(stop)).await
    }
}
