//! PostgreSQL: the stats area ([`crate::StatsStore`]): every operation is one
//! statement written once (the area's `shared` list); here, the increments added by the
//! writes that record events.

use super::*;
use crate::stats::*;

impl StatsStore for PgStore {}

impl crate::AudienceStore for PgStore {}
impl crate::CampaignStore for PgStore {}

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
