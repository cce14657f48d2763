//! The store's compliance area: the registers of data-subject requests and incidents, and the retention purge.

use postwerk_core::model::DsarStatus;

use crate::StoreResult;
use crate::model::*;

store_area! {
    /// The registers of data-subject requests and incidents, and the retention purge.
    ComplianceStore {
        /// Records a data-subject request; returns its `seq`.
        fn add_request(&self, r: DsarRecord) -> StoreResult<i64>;
        /// Closes an open request (`completed` or `rejected`); `false` if the tenant has
        /// no such open request.
        fn close_request(
            &self,
            tenant_id: &str,
            seq: i64,
            status: DsarStatus,
            at: i64,
        ) -> StoreResult<bool>;
        /// The tenant's requests in `seq` order after `after_seq`; with `open_due_before`,
        /// only open ones due before that time (overdue), at most `limit`.
        fn list_requests(
            &self,
            tenant_id: &str,
            open_due_before: Option<i64>,
            after_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<DsarRecord>>;
        /// Records an incident in the breach register; returns its `seq`.
        fn add_incident(&self, r: IncidentRecord) -> StoreResult<i64>;
        /// Records a step on a tenant's incident (once each); `false` if there is no such
        /// incident or the step was recorded already.
        fn step_incident(
            &self,
            tenant_id: &str,
            seq: i64,
            step: IncidentStep,
            at: i64,
        ) -> StoreResult<bool>;
        /// The tenant's incidents in `seq` order after `after_seq`; with `overdue_at`,
        /// only those with a notification still missing past its deadline, at most `limit`.
        fn list_incidents(
            &self,
            tenant_id: &str,
            overdue_at: Option<i64>,
            after_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<IncidentRecord>>;
        /// Enforces retention (see [`Retention`]); returns what went. Messages with a
        /// recipient still queued or deferred keep their content and rows.
        fn purge(&self, r: Retention) -> StoreResult<Purged>;
    }
}
