//! SQLite: the audit area ([`crate::AuditStore`]).

use super::*;

impl AuditStore for SqliteStore {
    async fn append_audit(&self, d: AuditDraft) -> StoreResult<AuditRecord> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let prev: Vec<u8> = c
                    .prepare_cached("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
                    .and_then(|mut st| st.query_row([], |r| r.get(0)).optional())
                    .map_err(unavailable)?
                    .unwrap_or_else(|| crate::audit::GENESIS.to_vec());
                let hash = crate::audit::chain_hash(&prev, &d);
                c.prepare_cached(
                    "INSERT INTO audit (at, tenant_id, actor, action, target, ip, prev_hash, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        d.at,
                        d.tenant_id,
                        d.actor,
                        d.action,
                        d.target,
                        d.ip,
                        prev,
                        hash
                    ])
                })
                .map_err(unavailable)?;
                Ok(AuditRecord::from_draft(
                    c.last_insert_rowid(),
                    d,
                    prev,
                    hash,
                ))
            })
            .await
    }

    async fn prune_audit(&self, before: i64, limit: usize) -> StoreResult<u64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let oldest = c
                    .prepare_cached("SELECT seq, at, hash FROM audit ORDER BY seq LIMIT ?1")
                    .and_then(|mut st| {
                        st.query_map([limit.max(1) as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(unavailable)?;
                let Some((seq, hash)) = crate::audit::prune_point(&oldest, before) else {
                    return Ok(0);
                };
                c.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![crate::audit::ANCHOR_KEY, crate::audit::anchor_text(seq, &hash)],
                )
                .and_then(|_| c.execute("DELETE FROM audit WHERE seq <= ?1", [seq]))
                .map(|n| n as u64)
                .map_err(unavailable)
            })
            .await
    }

    async fn audit_anchor(&self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        let text: Option<String> = self
            .read(|c| {
                c.query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [crate::audit::ANCHOR_KEY],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)
            })
            .await?;
        text.map(|t| {
            crate::audit::parse_anchor(&t).ok_or(StoreError::Corrupt("audit anchor".into()))
        })
        .transpose()
    }

    async fn list_audit(
        &self,
        tenant_id: Option<&str>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>> {
        let tenant_id = tenant_id.map(str::to_string);
        self.read(move |c| {
            c.prepare_cached(
                "SELECT seq, at, tenant_id, actor, action, target, ip, prev_hash, hash FROM audit \
                 WHERE seq > ?1 AND (?2 IS NULL OR tenant_id = ?2) ORDER BY seq LIMIT ?3",
            )
            .and_then(|mut st| {
                st.query_map(
                    params![after_seq.unwrap_or(0), tenant_id, limit.max(1) as i64],
                    |r| {
                        Ok(AuditRecord {
                            seq: r.get(0)?,
                            at: r.get(1)?,
                            tenant_id: r.get(2)?,
                            actor: r.get(3)?,
                            action: r.get(4)?,
                            target: r.get(5)?,
                            ip: r.get(6)?,
                            prev_hash: r.get(7)?,
                            hash: r.get(8)?,
                        })
                    },
                )?
                .collect()
            })
            .map_err(unavailable)
        })
        .await
    }
}
