//! SQLite: the stats area ([`crate::StatsStore`]): every operation is one statement
//! written once (the area's `shared` list); here, the increments added by the writes
//! that record events.

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

impl StatsStore for SqliteStore {}

impl crate::AudienceStore for SqliteStore {}
impl crate::CampaignStore for SqliteStore {}
