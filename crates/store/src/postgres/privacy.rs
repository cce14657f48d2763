//! PostgreSQL queries for contacts, consents, erasure and the retention purge.

use postwerk_core::model::ConsentStatus;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::error::{PgResult, corrupt, pg};
use super::*;
use super::{PgStore, col};
use crate::model::*;
use crate::suppressions::{SUPPRESSION_COLS, suppression_row};

fn contact_row(r: &Row) -> PgResult<ContactRecord> {
    Ok(ContactRecord {
        tenant_id: col(r, "tenant_id")?,
        rcpt_hash: col(r, "rcpt_hash")?,
        data_enc: col(r, "data_enc")?,
        restricted_at: col(r, "restricted_at")?,
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
    })
}

fn subject_key_row(r: &Row) -> PgResult<SubjectKey> {
    Ok(SubjectKey {
        rcpt_hash: col(r, "rcpt_hash")?,
        key_wrapped: col(r, "key_wrapped")?,
        created_at: col(r, "created_at")?,
    })
}

fn consent_row(r: &Row) -> PgResult<ConsentRecord> {
    Ok(ConsentRecord {
        seq: col(r, "seq")?,
        tenant_id: col(r, "tenant_id")?,
        rcpt_hash: col(r, "rcpt_hash")?,
        purpose: col(r, "purpose")?,
        status: col::<&str>(r, "status")?
            .parse::<ConsentStatus>()
            .map_err(|_| corrupt("consent status"))?,
        at: col(r, "at")?,
        record_enc: col(r, "record_enc")?,
    })
}

impl PgStore {
    pub(super) async fn upsert_contact_q(&self, c: &ContactRecord) -> PgResult<bool> {
        let sql = "INSERT INTO contacts (tenant_id, rcpt_hash, data_enc, restricted_at, created_at, \
                   updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, rcpt_hash) DO UPDATE \
                   SET data_enc = excluded.data_enc, updated_at = excluded.updated_at \
                   RETURNING (xmax = 0) AS inserted";
        let params: [&(dyn ToSql + Sync); 6] = [
            &c.tenant_id,
            &c.rcpt_hash,
            &c.data_enc,
            &c.restricted_at,
            &c.created_at,
            &c.updated_at,
        ];
        let row = self.one_opt("upsert_contact", sql, &params).await?;
        row.map_or(Ok(false), |r| col(&r, "inserted"))
    }

    pub(super) async fn get_contact_q(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> PgResult<Option<ContactRecord>> {
        let sql = "SELECT * FROM contacts WHERE tenant_id = $1 AND rcpt_hash = $2";
        self.one_opt("get_contact", sql, &[&tenant_id, &rcpt_hash])
            .await?
            .map(|r| contact_row(&r))
            .transpose()
    }

    pub(super) async fn restrict_contact_q(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        restricted_at: Option<i64>,
    ) -> PgResult<bool> {
        let sql = "UPDATE contacts SET restricted_at = $3 WHERE tenant_id = $1 AND rcpt_hash = $2";
        let n = self
            .exec(
                "restrict_contact",
                None,
                sql,
                &[&tenant_id, &rcpt_hash, &restricted_at],
            )
            .await?;
        Ok(n > 0)
    }

    pub(super) async fn add_consent_q(&self, c: &ConsentRecord) -> PgResult<i64> {
        let sql = "INSERT INTO consents (tenant_id, rcpt_hash, purpose, status, at, record_enc) \
                   VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq";
        let params: [&(dyn ToSql + Sync); 6] = [
            &c.tenant_id,
            &c.rcpt_hash,
            &c.purpose,
            &c.status.as_str(),
            &c.at,
            &c.record_enc,
        ];
        let row = self.one_opt("add_consent", sql, &params).await?;
        row.map_or(Err(corrupt("consent seq")), |r| col(&r, "seq"))
    }

    pub(super) async fn list_consents_q(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> PgResult<Vec<ConsentRecord>> {
        const OP: &str = "list_consents";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT * FROM consents WHERE tenant_id = $1 AND rcpt_hash = $2 ORDER BY seq",
            )
            .await
            .map_err(pg(OP))?;
        let rows = client
            .query(&stmt, &[&tenant_id, &rcpt_hash])
            .await
            .map_err(pg(OP))?;
        rows.iter().map(consent_row).collect()
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
            .prepare_cached(
                "SELECT rcpt_hash FROM contacts WHERE tenant_id = $1 AND restricted_at IS NOT NULL \
                 AND rcpt_hash = ANY($2::bytea[])",
            )
            .await
            .map_err(pg(OP))?;
        let consents = client
            .prepare_cached(
                "SELECT seq, rcpt_hash, status FROM consents WHERE tenant_id = $1 AND purpose = $3 \
                 AND rcpt_hash = ANY($2::bytea[])",
            )
            .await
            .map_err(pg(OP))?;
        let restricted = client
            .query(&restricted, &[&tenant_id, &hashes])
            .await
            .map_err(pg(OP))?
            .iter()
            .map(|r| col(r, "rcpt_hash"))
            .collect::<PgResult<Vec<Vec<u8>>>>()?;
        let consented = match purpose {
            None => Vec::new(),
            Some(purpose) => {
                let rows = client
                    .query(&consents, &[&tenant_id, &hashes, &purpose])
                    .await
                    .map_err(pg(OP))?;
                let records = rows
                    .iter()
                    .map(|r| Ok((col(r, "seq")?, col(r, "rcpt_hash")?, col(r, "status")?)))
                    .collect::<PgResult<Vec<(i64, Vec<u8>, String)>>>()?;
                latest_active(records)
            }
        };
        let suppressions = client
            .prepare_cached(&format!(
                "SELECT {SUPPRESSION_COLS} FROM suppressions \
                 WHERE tenant_id = $1 AND rcpt_hash = ANY($2::bytea[]) ORDER BY seq"
            ))
            .await
            .map_err(pg(OP))?;
        let suppressions = client
            .query(&suppressions, &[&tenant_id, &hashes])
            .await
            .map_err(pg(OP))?
            .iter()
            .map(suppression_row)
            .collect::<PgResult<Vec<_>>>()?;
        Ok(ConsentScreen {
            suppressions,
            restricted,
            consented,
        })
    }

    pub(super) async fn unkeyed_subjects_q(&self) -> PgResult<Vec<(String, Vec<u8>)>> {
        const OP: &str = "unkeyed_subjects";
        let client = self.client().await?;
        let rows = client
            .query(crate::UNKEYED_SUBJECTS_SQL, &[])
            .await
            .map_err(pg(OP))?;
        rows.iter()
            .map(|r| Ok((col(r, "tenant_id")?, col(r, "rcpt_hash")?)))
            .collect()
    }

    pub(super) async fn subject_keys_q(
        &self,
        tenant_id: &str,
        hashes: &[Vec<u8>],
    ) -> PgResult<Vec<SubjectKey>> {
        let sql = "SELECT rcpt_hash, key_wrapped, created_at FROM subject_keys \
                   WHERE tenant_id = $1 AND rcpt_hash = ANY($2::bytea[])";
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(pg("subject_keys"))?;
        let rows = client
            .query(&stmt, &[&tenant_id, &hashes])
            .await
            .map_err(pg("subject_keys"))?;
        rows.iter().map(subject_key_row).collect()
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
            .map(subject_key_row)
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
        let mut counts = [0u64; 8];
        let statements = [
            "DELETE FROM subject_keys WHERE tenant_id = $1 AND rcpt_hash = $2",
            "UPDATE messages SET content_enc = NULL, mail_from_enc = NULL, meta_enc = ''::bytea \
             WHERE id IN (SELECT message_id FROM recipients WHERE tenant_id = $1 AND rcpt_hash = $2)",
            "DELETE FROM contacts WHERE tenant_id = $1 AND rcpt_hash = $2",
            "DELETE FROM consents WHERE tenant_id = $1 AND rcpt_hash = $2",
            "DELETE FROM events WHERE tenant_id = $1 AND rcpt_hash = $2",
            "UPDATE suppressions SET address_enc = NULL WHERE tenant_id = $1 AND rcpt_hash = $2 \
             AND address_enc IS NOT NULL",
            "UPDATE recipients SET address_enc = ''::bytea, rcpt_hash = ''::bytea, next_attempt_at = NULL, \
             lease_node = NULL, lease_until = NULL, \
             status = CASE WHEN status IN ('queued', 'deferred') THEN 'suppressed' ELSE status END \
             WHERE tenant_id = $1 AND rcpt_hash = $2",
            "UPDATE dsar_requests SET rcpt_hash = ''::bytea, detail_enc = ''::bytea \
             WHERE tenant_id = $1 AND rcpt_hash = $2",
        ];
        for (n, sql) in counts.iter_mut().zip(statements) {
            let stmt = tx.prepare_cached(sql).await.map_err(pg(OP))?;
            *n = tx.execute(&stmt, &t).await.map_err(pg(OP))?;
        }
        let webhook_deliveries =
            super::webhooks::delete_deliveries(&tx, OP, "tenant_id = $1 AND rcpt_hash = $2", &t)
                .await?;
        tx.commit().await.map_err(pg(OP))?;
        let [
            keys,
            messages,
            contacts,
            consents,
            events,
            suppressions,
            recipients,
            requests,
        ] = counts;
        Ok(Erasure {
            keys,
            contacts,
            consents,
            recipients,
            messages,
            events,
            suppressions,
            requests,
            webhook_deliveries,
        })
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

    async fn get_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> StoreResult<Option<ContactRecord>> {
        retrying(|| self.get_contact_q(tenant_id, rcpt_hash)).await
    }

    async fn restrict_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        restricted_at: Option<i64>,
    ) -> StoreResult<bool> {
        retrying(|| self.restrict_contact_q(tenant_id, rcpt_hash, restricted_at)).await
    }

    async fn add_consent(&self, c: ConsentRecord) -> StoreResult<i64> {
        let c = &c;
        retrying(|| self.add_consent_q(c)).await
    }

    async fn list_consents(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> StoreResult<Vec<ConsentRecord>> {
        retrying(|| self.list_consents_q(tenant_id, rcpt_hash)).await
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

    async fn unkeyed_subjects(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        retrying(|| self.unkeyed_subjects_q()).await
    }
}
