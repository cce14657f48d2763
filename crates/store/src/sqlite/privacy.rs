//! SQLite: the privacy area ([`crate::PrivacyStore`]).

use super::*;

impl PrivacyStore for SqliteStore {
    async fn upsert_contact(&self, c: ContactRecord) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |tx| {
                let existed = tx
                    .prepare_cached("SELECT 1 FROM contacts WHERE tenant_id = ?1 AND rcpt_hash = ?2")
                    .and_then(|mut st| st.exists(params![c.tenant_id, c.rcpt_hash]))
                    .map_err(unavailable)?;
                tx.prepare_cached(
                    "INSERT INTO contacts (tenant_id, rcpt_hash, data_enc, restricted_at, created_at, \
                     updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant_id, rcpt_hash) DO UPDATE \
                     SET data_enc = excluded.data_enc, updated_at = excluded.updated_at",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        c.tenant_id,
                        c.rcpt_hash,
                        c.data_enc,
                        c.restricted_at,
                        c.created_at,
                        c.updated_at
                    ])
                })
                .map_err(unavailable)?;
                Ok(!existed)
            })
            .await
    }

    async fn get_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> StoreResult<Option<ContactRecord>> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        self.read(move |c| {
            c.prepare_cached(
                "SELECT data_enc, restricted_at, created_at, updated_at FROM contacts \
                 WHERE tenant_id = ?1 AND rcpt_hash = ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![tenant_id, rcpt_hash], |r| {
                    Ok(ContactRecord {
                        tenant_id: tenant_id.clone(),
                        rcpt_hash: rcpt_hash.clone(),
                        data_enc: r.get(0)?,
                        restricted_at: r.get(1)?,
                        created_at: r.get(2)?,
                        updated_at: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn restrict_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        restricted_at: Option<i64>,
    ) -> StoreResult<bool> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached("UPDATE contacts SET restricted_at = ?3 WHERE tenant_id = ?1 AND rcpt_hash = ?2")
                    .and_then(|mut st| st.execute(params![tenant_id, rcpt_hash, restricted_at]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }

    async fn add_consent(&self, k: ConsentRecord) -> StoreResult<i64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "INSERT INTO consents (tenant_id, rcpt_hash, purpose, status, at, record_enc) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        k.tenant_id,
                        k.rcpt_hash,
                        k.purpose,
                        k.status.as_str(),
                        k.at,
                        k.record_enc
                    ])
                })
                .map_err(unavailable)?;
                Ok(c.last_insert_rowid())
            })
            .await
    }

    async fn list_consents(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> StoreResult<Vec<ConsentRecord>> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        self.read(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT seq, purpose, status, at, record_enc FROM consents \
                     WHERE tenant_id = ?1 AND rcpt_hash = ?2 ORDER BY seq",
                )
                .and_then(|mut st| {
                    st.query_map(params![tenant_id, rcpt_hash], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get(3)?,
                            r.get(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<(i64, String, String, i64, Vec<u8>)>>>()
                })
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(seq, purpose, status, at, record_enc)| {
                    Ok(ConsentRecord {
                        seq,
                        tenant_id: tenant_id.clone(),
                        rcpt_hash: rcpt_hash.clone(),
                        purpose,
                        status: status
                            .parse::<ConsentStatus>()
                            .map_err(|_| corrupt("consent status"))?,
                        at,
                        record_enc,
                    })
                })
                .collect()
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
            let restricted = rows_by_hashes(
                &tx,
                "SELECT rcpt_hash FROM contacts WHERE tenant_id = ?1 AND restricted_at IS NOT NULL \
                 AND rcpt_hash IN",
                &[&tenant_id],
                &hashes,
                |r| r.get::<_, Vec<u8>>(0),
            )?;
            let consented = match &purpose {
                None => Vec::new(),
                Some(purpose) => {
                    let records = rows_by_hashes(
                        &tx,
                        "SELECT seq, rcpt_hash, status FROM consents WHERE tenant_id = ?1 AND purpose = ?2 \
                         AND rcpt_hash IN",
                        &[&tenant_id, purpose],
                        &hashes,
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?)),
                    )?;
                    latest_active(records)
                }
            };
            let mut suppressions = rows_by_hashes(
                &tx,
                &format!("SELECT {SUPPRESSION_COLS} FROM suppressions WHERE tenant_id = ?1 AND rcpt_hash IN"),
                &[&tenant_id],
                &hashes,
                |r| suppression_row(r),
            )?;
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
                let run = |sql: &str| c.prepare_cached(sql).and_then(|mut st| st.execute(t)).map_err(unavailable);
                let messages = run(
                    "UPDATE messages SET content_enc = NULL, mail_from_enc = NULL, meta_enc = X'' \
                     WHERE id IN (SELECT message_id FROM recipients WHERE tenant_id = ?1 AND rcpt_hash = ?2)",
                )?;
                let erasure = Erasure {
                    keys: run("DELETE FROM subject_keys WHERE tenant_id = ?1 AND rcpt_hash = ?2")? as u64,
                    contacts: run("DELETE FROM contacts WHERE tenant_id = ?1 AND rcpt_hash = ?2")? as u64,
                    consents: run("DELETE FROM consents WHERE tenant_id = ?1 AND rcpt_hash = ?2")? as u64,
                    events: run("DELETE FROM events WHERE tenant_id = ?1 AND rcpt_hash = ?2")? as u64,
                    suppressions: run(
                        "UPDATE suppressions SET address_enc = NULL WHERE tenant_id = ?1 AND rcpt_hash = ?2 \
                         AND address_enc IS NOT NULL",
                    )? as u64,
                    recipients: run(
                        "UPDATE recipients SET address_enc = X'', rcpt_hash = X'', next_attempt_at = NULL, \
                         lease_node = NULL, lease_until = NULL, \
                         status = CASE WHEN status IN ('queued', 'deferred') THEN 'suppressed' ELSE status END \
                         WHERE tenant_id = ?1 AND rcpt_hash = ?2",
                    )? as u64,
                    messages: messages as u64,
                    requests: run(
                        "UPDATE dsar_requests SET rcpt_hash = X'', detail_enc = X'' \
                         WHERE tenant_id = ?1 AND rcpt_hash = ?2",
                    )? as u64,
                    webhook_deliveries: webhooks::delete_deliveries(
                        c,
                        "tenant_id = ?1 AND rcpt_hash = ?2",
                        t,
                    )?,
                };
                Ok(erasure)
            })
            .await
    }

    async fn stop_subject_mail(&self, stop: MailStop) -> StoreResult<u64> {
        self.stop_subject_mail_tx(stop).await
    }

    async fn unkeyed_subjects(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        self.read(|c| {
            c.prepare(crate::UNKEYED_SUBJECTS_SQL)
                .and_then(|mut st| {
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)
        })
        .await
    }
}
