//! Deliverability statistics: event counts per hour, tenant, stream, egress pool and
//! source, destination site, event type and bounce reason, added in the same
//! transaction as the events they count (both backends).

use std::collections::BTreeMap;

use postwerk_core::model::EventType;

use crate::StoreResult;
use crate::model::{StatDims, StatRow, StatsFilter};
use crate::row::Columns;
use crate::run::FromRow;

/// Width of a statistics bucket (one hour).
pub const BUCKET_MS: i64 = 3_600_000;

/// The hour an event at `at` counts in.
pub fn bucket_of(at: i64) -> i64 {
    at - at.rem_euclid(BUCKET_MS)
}

/// One row's increment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatAdd<'a> {
    pub tenant_id: &'a str,
    pub bucket: i64,
    pub dims: &'a StatDims,
    pub event: &'static str,
    pub count: i64,
}

/// Sums events into row increments, in key order (so that concurrent writers lock
/// rows in the same order).
pub(crate) fn aggregate<'a>(
    events: impl Iterator<Item = (&'a str, i64, &'a StatDims, EventType)>,
) -> Vec<StatAdd<'a>> {
    let mut sums: BTreeMap<(&str, i64, &StatDims, &'static str), i64> = BTreeMap::new();
    for (tenant_id, at, dims, event) in events {
        *sums
            .entry((tenant_id, bucket_of(at), dims, event.as_str()))
            .or_default() += 1;
    }
    sums.into_iter()
        .map(|((tenant_id, bucket, dims, event), count)| StatAdd {
            tenant_id,
            bucket,
            dims,
            event,
            count,
        })
        .collect()
}

/// A row of the statistics query ([`STATS_QUERY`]).
impl FromRow for StatRow {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(StatRow {
            bucket: r.get("bucket")?,
            event: r.parse("event", "event type")?,
            reason: r.get("reason")?,
            count: r.get::<i64>("count")? as u64,
        })
    }
}

/// A row of [`ATTEMPTS_BY_SOURCE`]: the source and its attempts.
struct SourceAttempts(String, u64);

impl FromRow for SourceAttempts {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(SourceAttempts(
            r.get("source")?,
            r.get::<i64>("count")? as u64,
        ))
    }
}

sql! {
    /// The upsert adding one increment (parameters: tenant, bucket, stream, pool,
    /// source, site, event, reason, count).
    UPSERT_STAT = "INSERT INTO delivery_stats (tenant_id, bucket, stream, pool, source, site, event, \
         reason, count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant_id, bucket, stream, pool, source, site, event, reason) \
         DO UPDATE SET count = delivery_stats.count + excluded.count";
    /// The query summing a filter's rows by hour, event and reason (parameters: tenant,
    /// from, to, stream, pool, source, site; the last four may be NULL).
    STATS_QUERY = "SELECT bucket, event, reason, CAST(sum(count) AS BIGINT) AS count \
         FROM delivery_stats WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3 \
         AND (CAST($4 AS TEXT) IS NULL OR stream = $4) AND (CAST($5 AS TEXT) IS NULL OR pool = $5) \
         AND (CAST($6 AS TEXT) IS NULL OR source = $6) AND (CAST($7 AS TEXT) IS NULL OR site = $7) \
         GROUP BY bucket, event, reason ORDER BY bucket, event, reason";
    /// Attempts per source since bucket `$1`.
    ATTEMPTS_BY_SOURCE = "SELECT source, CAST(sum(count) AS BIGINT) AS count FROM delivery_stats \
         WHERE bucket >= $1 AND source <> '' AND event IN ('delivered', 'deferred', 'bounced') \
         GROUP BY source ORDER BY source";
}

store_area! {
    /// Deliverability statistics.
    StatsStore {}
    shared {
        /// Event counts by hour, event type and bounce reason for a filter.
        fn stats(&self, f: StatsFilter) -> StoreResult<Vec<StatRow>> {
            let args = args![f.tenant_id, f.from, f.to, f.stream, f.pool, f.source, f.site];
            self.rows("stats", &STATS_QUERY, args).await
        }
        /// Delivery attempts (delivered, deferred, bounced) per egress source, every
        /// tenant, since `since` (hour buckets): warm-up counts survive restarts.
        fn attempts_by_source(&self, since: i64) -> StoreResult<Vec<(String, u64)>> {
            let rows: Vec<SourceAttempts> =
                self.rows("attempts_by_source", &ATTEMPTS_BY_SOURCE, args![since]).await?;
            Ok(rows.into_iter().map(|SourceAttempts(s, n)| (s, n)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_summed_per_hour_and_dimension() {
        let d = StatDims {
            stream: "broadcast".into(),
            ..StatDims::default()
        };
        let adds = aggregate(
            [
                ("t", 10, &d, EventType::Delivered),
                ("t", 3_599_999, &d, EventType::Delivered),
                ("t", 3_600_000, &d, EventType::Delivered),
                ("t", 20, &d, EventType::Bounced),
            ]
            .into_iter(),
        );
        let counts: Vec<(i64, &str, i64)> =
            adds.iter().map(|a| (a.bucket, a.event, a.count)).collect();
        assert_eq!(
            counts,
            [
                (0, "bounced", 1),
                (0, "delivered", 2),
                (3_600_000, "delivered", 1)
            ]
        );
    }
}
