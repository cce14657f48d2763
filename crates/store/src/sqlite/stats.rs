//! SQLite: the stats area ([`crate::StatsStore`]).

use super::*;

impl StatsStore for SqliteStore {
    async fn stats(&self, f: StatsFilter) -> StoreResult<Vec<StatRow>> {
        self.stats_q(f).await
    }

    async fn attempts_by_source(&self, since: i64) -> StoreResult<Vec<(String, u64)>> {
        self.read(move |c| {
            c.prepare_cached(&crate::stats::by_source_sql("?1"))
                .and_then(|mut st| {
                    st.query_map([since], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                        .collect()
                })
                .map_err(unavailable)
        })
        .await
    }
}
