//! SQLite: the audit area ([`crate::AuditStore`]).

use super::*;
use crate::audit::*;

impl AuditStore for SqliteStore {
    async fn append_audit(&self, d: AuditDraft) -> StoreResult<AuditRecord> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let prev: Vec<u8> = c
                    .prepare_cached(LAST_AUDIT_HASH.sqlite())
                    .and_then(|mut st| st.query_row([], |r| r.get("hash")).optional())
                    .map_err(unavailable)?
                    .unwrap_or_else(|| GENESIS.to_vec());
                let hash = chain_hash(&prev, &d);
                let seq = c
                    .prepare_cached(INSERT_AUDIT.sqlite())
                    .and_then(|mut st| {
                        st.query_row(
                            params![
                                d.at,
                                d.tenant_id,
                                d.actor,
                                d.action,
                                d.target,
                                d.ip,
                                prev,
                                hash
                            ],
                            |r| r.get("seq"),
                        )
                    })
                    .map_err(unavailable)?;
                Ok(AuditRecord::from_draft(seq, d, prev, hash))
            })
            .await
    }

    async fn prune_audit(&self, before: i64, limit: usize) -> StoreResult<u64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let oldest = c
                    .prepare_cached(OLDEST_AUDIT.sqlite())
                    .and_then(|mut st| {
                        st.query_map([limit.max(1) as i64], |r| prune_row(r))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(unavailable)?;
                let Some((seq, hash)) = prune_point(&oldest, before) else {
                    return Ok(0);
                };
                c.execute(
                    SET_AUDIT_ANCHOR.sqlite(),
                    params![ANCHOR_KEY, anchor_text(seq, &hash)],
                )
                .and_then(|_| c.execute(PRUNE_AUDIT.sqlite(), [seq]))
                .map(|n| n as u64)
                .map_err(unavailable)
            })
            .await
    }
}
