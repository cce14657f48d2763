//! SQLite: the privacy area ([`crate::PrivacyStore`]).

use super::suppressions::rows_by_hashes;
use super::*;
use crate::privacy::*;
use crate::run::FromRow;
use crate::suppressions::FIND_SUPPRESSIONS;

/// The stored keys of `hashes` (distinct) in a tenant.
fn select_subject_keys(
    c: &Connection,
    tenant_id: &str,
    hashes: &[Vec<u8>],
) -> StoreResult<Vec<SubjectKey>> {
    rows_by_hashes(c, &SUBJECT_KEYS_AMONG, &[&tenant_id], hashes, |r| {
        SubjectKey::from_row(r)
    })
}

impl PrivacyStore for SqliteStore {
    async fn upsert_contact(&self, c: ContactRecord) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |tx| {
                let existed = tx
                    .prepare_cached(CONTACT_EXISTS.sqlite())
                    .and_then(|mut st| st.exists(params![c.tenant_id, c.rcpt_hash]))
                    .map_err(unavailable)?;
                tx.prepare_cached(UPSERT_CONTACT.sqlite())
                    .and_then(|mut st| {
                        st.execute(params![
                            c.tenant_id,
                            c.rcpt_hash,
                            c.data_enc,
                            c.restricted_at,
                            c.created_at,
                            c.updated_at,
                            c.attr_tags,
                            c.deleted_at
                        ])
                    })
                    .map_err(unavailable)?;
                Ok(!existed)
            })
            .await
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
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(unavailable)?;
            let restricted = rows_by_hashes(&tx, &RESTRICTED_AMONG, &[&tenant_id], &hashes, |r| {
                hash_row(r)
            })?;
            let consented = match &purpose {
                None => Vec::new(),
                Some(purpose) => latest_active(rows_by_hashes(
                    &tx,
                    &CONSENTS_AMONG,
                    &[&tenant_id, purpose],
                    &hashes,
                    |r| consent_mark_row(r),
                )?),
            };
            let mut suppressions =
                rows_by_hashes(&tx, &FIND_SUPPRESSIONS, &[&tenant_id], &hashes, |r| {
                    SuppressionRecord::from_row(r)
                })?;
            suppressions.sort_unstable_by_key(|s| s.seq);
            Ok(ConsentScreen {
                suppressions,
                restricted,
                consented,
            })
        })
        .await
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
        let tenant_id = tenant_id.to_string();
        self.read(move |c| select_subject_keys(c, &tenant_id, &hashes))
            .await
    }

    async fn ensure_subject_keys(
        &self,
        tenant_id: &str,
        candidates: Vec<SubjectKey>,
    ) -> StoreResult<Vec<SubjectKey>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let tenant_id = tenant_id.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                // SQLite's own: one statement per candidate (PostgreSQL: one UNNEST).
                let mut insert = c
                    .prepare_cached(
                        "INSERT OR IGNORE INTO subject_keys (tenant_id, rcpt_hash, key_wrapped, created_at) \
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(unavailable)?;
                // The candidates stored now are their people's keys; only those that
                // lost to a stored key are read back.
                let (mut stored, mut lost) = (Vec::with_capacity(candidates.len()), Vec::new());
                for k in candidates {
                    let inserted = insert
                        .execute(params![tenant_id, k.rcpt_hash, k.key_wrapped, k.created_at])
                        .map_err(unavailable)?;
                    if inserted == 1 {
                        stored.push(k);
                    } else {
                        lost.push(k.rcpt_hash);
                    }
                }
                let won: std::collections::HashSet<&[u8]> =
                    stored.iter().map(|k| k.rcpt_hash.as_slice()).collect();
                lost.retain(|h| !won.contains(h.as_slice()));
                stored.extend(select_subject_keys(c, &tenant_id, &distinct_hashes(lost))?);
                Ok(stored)
            })
            .await
    }

    async fn erase_subject(&self, tenant_id: &str, rcpt_hash: &[u8]) -> StoreResult<Erasure> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        self.writer
            .write(Durability::Fsync, move |c| {
                let t = params![tenant_id, rcpt_hash];
                let mut counts = [0u64; 9];
                for (n, sql) in counts.iter_mut().zip(ERASE_SQLITE) {
                    *n = c
                        .prepare_cached(sql.sqlite())
                        .and_then(|mut st| st.execute(t))
                        .map_err(unavailable)? as u64;
                }
                let webhook_deliveries =
                    webhooks::delete_deliveries(c, ERASE_DELIVERIES_WHERE.sqlite(), t)?;
                Ok(erasure(counts, webhook_deliveries))
            })
            .await
    }

    async fn stop_subject_mail(&self, stop: MailStop) -> StoreResult<u64> {
        self.stop_subject_mail_tx(stop).await
    }
}
