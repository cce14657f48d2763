//! PostgreSQL: the stats area ([`crate::StatsStore`]).

use super::*;

impl StatsStore for PgStore {
    async fn stats(&self, f: StatsFilter) -> StoreResult<Vec<StatRow>> {
        let f = &f;
        retrying(|| self.stats_q(f)).await
    }

    async fn attempts_by_source(&self, since: i64) -> StoreResult<Vec<(String, u64)>> {
        retrying(|| async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&crate::stats::by_source_sql("$1"))
                .await
                .map_err(pg("attempts_by_source"))?;
            let rows = client
                .query(&stmt, &[&since])
                .await
                .map_err(pg("attempts_by_source"))?;
            rows.iter()
                .map(|r| Ok((col(r, "source")?, col::<i64>(r, "count")? as u64)))
                .collect()
        })
        .await
    }
}

/// Adds statistics increments in `tx` (in key order: no deadlocks between writers).
pub(super) async fn add_stats(
    tx: &deadpool_postgres::Transaction<'_>,
    op: &'static str,
    adds: &[crate::stats::StatAdd<'_>],
) -> PgResult<()> {
    if adds.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(&crate::stats::upsert_sql(|n| format!("${n}")))
        .await
        .map_err(pg(op))?;
    for a in adds {
        let d = a.dims;
        tx.execute(
            &stmt,
            &[
                &a.tenant_id,
                &a.bucket,
                &d.stream,
                &d.pool,
                &d.source,
                &d.site,
                &a.event,
                &d.reason,
                &a.count,
            ],
        )
        .await
        .map_err(pg(op))?;
    }
    Ok(())
}
