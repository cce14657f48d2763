//! PostgreSQL: the compliance area ([`crate::ComplianceStore`]).

use super::*;
use crate::compliance::*;

impl ComplianceStore for PgStore {
    async fn purge(&self, r: Retention) -> StoreResult<Purged> {
        let r = &r;
        retrying(|| self.purge_tx(r)).await
    }
}
