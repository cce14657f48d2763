//! PostgreSQL: the stats area ([`crate::StatsStore`]).

use super::*;
use crate::stats::*;

impl StatsStore for PgStore {
    async fn stats(&self, f: StatsFilter) -> StoreResult<Vec<StatRow>> {
        let f = &f;
        retrying(|| self.stats_q(f)).await
    }

    async fn attempts_by_source(&self, since: i64) -> StoreResult<Vec<(String, u64)>> {
        retrying(|| async move {
            self.list(
                "attempts_by_source",
                ATTEMPTS_BY_SOURCE.pg(),
                &[&since],
                source_row,
            )
            .await
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
    let stmt = tx.prepare_cached(UPSERT_STAT.pg()).await.map_err(pg(op))?;
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

impl PgStore {
    pub(super) async fn stats_q(&self, f: &StatsFilter) -> PgResult<Vec<StatRow>> {
        let params: [&(dyn ToSql + Sync); 7] = [
            &f.tenant_id,
            &f.from,
            &f.to,
            &f.stream,
            &f.pool,
            &f.source,
            &f.site,
        ];
        self.list("stats", STATS_QUERY.pg(), &params, stat_row)
            .await
    }
}
