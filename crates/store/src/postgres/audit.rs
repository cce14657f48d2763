//! PostgreSQL: the audit area ([`crate::AuditStore`]).

use super::*;
use crate::audit::*;
use crate::row::Columns;

impl AuditStore for PgStore {
    async fn append_audit(&self, d: AuditDraft) -> StoreResult<AuditRecord> {
        let d = &d;
        retrying(|| self.append_audit_tx(d)).await
    }

    async fn prune_audit(&self, before: i64, limit: usize) -> StoreResult<u64> {
        retrying(|| self.prune_audit_tx(before, limit)).await
    }
}

impl PgStore {
    /// Appends `d` under [`AUDIT_LOCK`] (PostgreSQL's own: each entry chains to the
    /// one committed before it).
    async fn append_audit_tx(&self, d: &AuditDraft) -> PgResult<AuditRecord> {
        const OP: &str = "append_audit";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
            .await
            .map_err(pg(OP))?;
        let prev: Vec<u8> = tx
            .query_opt(LAST_AUDIT_HASH.pg(), &[])
            .await
            .map_err(pg(OP))?
            .map(|r| Columns::get(&r, "hash"))
            .transpose()?
            .unwrap_or_else(|| crate::audit::GENESIS.to_vec());
        let hash = crate::audit::chain_hash(&prev, d);
        let stmt = tx.prepare_cached(INSERT_AUDIT.pg()).await.map_err(pg(OP))?;
        let row = tx
            .query_one(
                &stmt,
                &[
                    &d.at,
                    &d.tenant_id,
                    &d.actor,
                    &d.action,
                    &d.target,
                    &d.ip,
                    &prev,
                    &hash,
                ],
            )
            .await
            .map_err(pg(OP))?;
        let seq: i64 = Columns::get(&row, "seq")?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(AuditRecord::from_draft(seq, d.clone(), prev, hash))
    }

    /// Prunes under [`AUDIT_LOCK`], as [`AuditStore::prune_audit`].
    async fn prune_audit_tx(&self, before: i64, limit: usize) -> PgResult<u64> {
        const OP: &str = "prune_audit";
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
            .await
            .map_err(pg(OP))?;
        let oldest = tx
            .query(OLDEST_AUDIT.pg(), &[&limit])
            .await
            .map_err(pg(OP))?
            .iter()
            .map(prune_row)
            .collect::<PgResult<Vec<_>>>()?;
        let Some((seq, hash)) = crate::audit::prune_point(&oldest, before) else {
            return Ok(0);
        };
        tx.execute(
            SET_AUDIT_ANCHOR.pg(),
            &[
                &crate::audit::ANCHOR_KEY,
                &crate::audit::anchor_text(seq, &hash),
            ],
        )
        .await
        .map_err(pg(OP))?;
        let n = tx
            .execute(PRUNE_AUDIT.pg(), &[&seq])
            .await
            .map_err(pg(OP))?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(n)
    }
}
