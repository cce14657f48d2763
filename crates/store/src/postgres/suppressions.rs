//! PostgreSQL: the suppressions area ([`crate::SuppressionStore`]).

use super::*;
use crate::run::FromRow;
use crate::suppressions::{ADD_SUPPRESSION, FIND_SUPPRESSIONS};

impl SuppressionStore for PgStore {
    async fn add_suppression(&self, s: SuppressionRecord) -> StoreResult<bool> {
        let s = &s;
        retrying(|| self.add_suppression_tx(s)).await
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
            rows.iter().map(SuppressionRecord::from_row).collect()
        })
        .await
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
}
