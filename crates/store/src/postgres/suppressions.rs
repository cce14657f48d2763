//! PostgreSQL: the suppressions area ([`crate::SuppressionStore`]).

use super::*;
use crate::suppressions::{
    ADD_SUPPRESSION, FIND_SUPPRESSIONS, REMOVE_SUPPRESSION, list_suppressions,
};

impl SuppressionStore for PgStore {
    async fn add_suppression(&self, s: SuppressionRecord) -> StoreResult<bool> {
        let s = &s;
        retrying(|| self.add_suppression_tx(s)).await
    }

    async fn remove_suppression(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        stream: Option<&str>,
        erasure: bool,
    ) -> StoreResult<u64> {
        let stream = stream_scope(stream);
        retrying(|| async move {
            self.exec(
                "remove_suppression",
                None,
                REMOVE_SUPPRESSION.pg(),
                &[&tenant_id, &rcpt_hash, &stream, &erasure],
            )
            .await
        })
        .await
    }

    async fn find_suppressions(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<Vec<SuppressionRecord>> {
        let hashes = distinct_hashes(hashes);
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let hashes = &hashes;
        retrying(|| async move {
            const OP: &str = "find_suppressions";
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(FIND_SUPPRESSIONS.pg())
                .await
                .map_err(pg(OP))?;
            let rows = client
                .query(&stmt, &[&tenant_id, hashes])
                .await
                .map_err(pg(OP))?;
            rows.iter().map(suppression_row).collect()
        })
        .await
    }

    async fn list_suppressions(
        &self,
        tenant_id: &str,
        rcpt_hash: Option<Vec<u8>>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<SuppressionRecord>> {
        let rcpt_hash = rcpt_hash.as_deref();
        retrying(|| self.list_suppressions_q(tenant_id, rcpt_hash, after_seq, limit)).await
    }
}

impl PgStore {
    /// Adds `s` under [`SUPPRESSIONS_LOCK`] (PostgreSQL's own: `seq` order is then
    /// commit order).
    async fn add_suppression_tx(&self, s: &SuppressionRecord) -> PgResult<bool> {
        const OP: &str = "add_suppression";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let lock = tx
            .prepare_cached("SELECT pg_advisory_xact_lock($1)")
            .await
            .map_err(pg(OP))?;
        let insert = tx
            .prepare_cached(ADD_SUPPRESSION.pg())
            .await
            .map_err(pg(OP))?;
        tx.execute(&lock, &[&SUPPRESSIONS_LOCK])
            .await
            .map_err(pg(OP))?;
        let n = tx
            .execute(
                &insert,
                &[
                    &s.tenant_id,
                    &s.rcpt_hash,
                    &stream_scope(s.stream.as_deref()),
                    &s.reason.as_str(),
                    &s.created_at,
                    &s.address_enc,
                    &s.source,
                ],
            )
            .await
            .map_err(pg(OP))?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(n > 0)
    }

    async fn list_suppressions_q(
        &self,
        tenant_id: &str,
        rcpt_hash: Option<&[u8]>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> PgResult<Vec<SuppressionRecord>> {
        const OP: &str = "list_suppressions";
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let sql = list_suppressions(rcpt_hash.is_some(), after_seq.is_some());
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&tenant_id];
        if let Some(h) = &rcpt_hash {
            args.push(h);
        }
        if let Some(a) = &after_seq {
            args.push(a);
        }
        args.push(&limit);
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql.pg()).await.map_err(pg(OP))?;
        let rows = client.query(&stmt, &args).await.map_err(pg(OP))?;
        rows.iter().map(suppression_row).collect()
    }
}
