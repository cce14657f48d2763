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
