//! Deliverability statistics: event counts per hour, tenant, stream, egress pool and
//! source, destination site, event type and bounce reason, added in the same
//! transaction as the events they count (both backends).

use std::collections::BTreeMap;

use postwerk_core::model::EventType;

use crate::StoreResult;
use crate::model::{StatDims, StatRow, StatsFilter};

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

/// The upsert adding one increment (parameters: tenant, bucket, stream, pool, source,
/// site, event, reason, count; `p(n)` names parameter n in the dialect).
pub(crate) fn upsert_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "INSERT INTO delivery_stats (tenant_id, bucket, stream, pool, source, site, event, reason, count) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) \
         ON CONFLICT (tenant_id, bucket, stream, pool, source, site, event, reason) \
         DO UPDATE SET count = delivery_stats.count + excluded.count",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8),
        p(9)
    )
}

/// The query summing a filter's rows by hour, event and reason (parameters: tenant,
/// from, to, stream, pool, source, site; optional ones may be NULL).
pub(crate) fn query_sql(p: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT bucket, event, reason, CAST(sum(count) AS BIGINT) AS count FROM delivery_stats \
         WHERE tenant_id = {} AND bucket >= {} AND bucket < {} \
         AND ({s} IS NULL OR stream = {s}) AND ({po} IS NULL OR pool = {po}) \
         AND ({so} IS NULL OR source = {so}) AND ({si} IS NULL OR site = {si}) \
         GROUP BY bucket, event, reason ORDER BY bucket, event, reason",
        p(1),
        p(2),
        p(3),
        s = p(4),
        po = p(5),
        so = p(6),
        si = p(7),
    )
}

/// Attempts per source since a bucket (parameter 1).
pub(crate) fn by_source_sql(p1: &str) -> String {
    format!(
        "SELECT source, CAST(sum(count) AS BIGINT) AS count FROM delivery_stats \
         WHERE bucket >= {p1} AND source <> '' AND event IN ('delivered', 'deferred', 'bounced') \
         GROUP BY source ORDER BY source"
    )
}

store_area! {
    /// Deliverability statistics.
    StatsStore {
        /// Event counts by hour, event type and bounce reason for a filter.
        fn stats(&self, f: StatsFilter) -> StoreResult<Vec<StatRow>>;
        /// Delivery attempts (delivered, deferred, bounced) per egress source, every
        /// tenant, since `since` (hour buckets): warm-up counts survive restarts.
        fn attempts_by_source(&self, since: i64) -> StoreResult<Vec<(String, u64)>>;
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
