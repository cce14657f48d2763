//! PostgreSQL: the suppressions area ([`crate::SuppressionStore`]).

use super::*;

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
            let sql = "DELETE FROM suppressions WHERE tenant_id = $1 AND rcpt_hash = $2 AND stream = $3 \
                       AND ($4 OR reason <> 'erasure')";
            self.exec(
                "remove_suppression",
                None,
                sql,
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
                .prepare_cached(&format!(
                    "SELECT {SUPPRESSION_COLS} FROM suppressions \
                     WHERE tenant_id = $1 AND rcpt_hash = ANY($2::bytea[]) ORDER BY seq"
                ))
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
