//! SQLite: the stats area ([`crate::StatsStore`]).

use super::*;
use crate::stats::*;

/// Adds the statistics of `events` (tenant, time, dimensions, type) in the writer's
/// transaction.
pub(super) fn add_stats<'a>(
    c: &Connection,
    events: impl Iterator<Item = (&'a str, i64, &'a StatDims, EventType)>,
) -> StoreResult<()> {
    let mut st = c
        .prepare_cached(UPSERT_STAT.sqlite())
        .map_err(unavailable)?;
    for a in aggregate(events) {
        let d = a.dims;
        st.execute(params![
            a.tenant_id,
            a.bucket,
            d.stream,
            d.pool,
            d.source,
            d.site,
            a.event,
            d.reason,
            a.count
        ])
        .map_err(unavailable)?;
    }
    Ok(())
}

impl StatsStore for SqliteStore {
    async fn stats(&self, f: StatsFilter) -> StoreResult<Vec<StatRow>> {
        self.stats_q(f).await
    }

    async fn attempts_by_source(&self, since: i64) -> StoreResult<Vec<(String, u64)>> {
        self.read(move |c| {
            c.prepare_cached(ATTEMPTS_BY_SOURCE.sqlite())
                .and_then(|mut st| st.query_map([since], |r| source_row(r))?.collect())
                .map_err(unavailable)
        })
        .await
    }
}

impl SqliteStore {
    pub(super) async fn stats_q(&self, f: StatsFilter) -> StoreResult<Vec<StatRow>> {
        self.read(move |c| {
            c.prepare_cached(STATS_QUERY.sqlite())
                .and_then(|mut st| {
                    st.query_map(
                        params![
                            f.tenant_id,
                            f.from,
                            f.to,
                            f.stream,
                            f.pool,
                            f.source,
                            f.site
                        ],
                        |r| stat_row(r),
                    )?
                    .collect()
                })
                .map_err(unavailable)
        })
        .await
    }
}
