//! The store's compliance area: the registers of data-subject requests and incidents, and the retention purge.

use postwerk_core::model::DsarStatus;

use crate::StoreResult;
use crate::model::*;
use crate::row::Columns;
use crate::sql::Sql;

/// The columns [`dsar_row`] reads.
pub(crate) const DSAR_COLS: &str =
    "seq, tenant_id, kind, rcpt_hash, received_at, due_at, status, closed_at, detail_enc";

/// The columns [`incident_row`] reads.
pub(crate) const INCIDENT_COLS: &str = "seq, tenant_id, detected_at, authority_due_at, \
     customers_due_at, authority_notified_at, customers_notified_at, closed_at, detail_enc";

/// A data-subject request row (both backends).
pub(crate) fn dsar_row<R: Columns>(r: &R) -> Result<DsarRecord, R::Error> {
    Ok(DsarRecord {
        seq: r.get("seq")?,
        tenant_id: r.get("tenant_id")?,
        kind: r.parse("kind", "request kind")?,
        rcpt_hash: r.get("rcpt_hash")?,
        received_at: r.get("received_at")?,
        due_at: r.get("due_at")?,
        status: r.parse("status", "request status")?,
        closed_at: r.get("closed_at")?,
        detail_enc: r.get("detail_enc")?,
    })
}

/// An incident row (both backends).
pub(crate) fn incident_row<R: Columns>(r: &R) -> Result<IncidentRecord, R::Error> {
    Ok(IncidentRecord {
        seq: r.get("seq")?,
        tenant_id: r.get("tenant_id")?,
        detected_at: r.get("detected_at")?,
        authority_due_at: r.get("authority_due_at")?,
        customers_due_at: r.get("customers_due_at")?,
        authority_notified_at: r.get("authority_notified_at")?,
        customers_notified_at: r.get("customers_notified_at")?,
        closed_at: r.get("closed_at")?,
        detail_enc: r.get("detail_enc")?,
    })
}

/// The statement recording the step stored in `column` on incident `$2` of tenant
/// `$1` at `$3`, unless that step is recorded already.
fn step_sql(column: &str) -> String {
    format!(
        "UPDATE incidents SET {column} = $3 WHERE tenant_id = $1 AND seq = $2 AND {column} IS NULL"
    )
}

/// The statement recording `step` (see [`step_sql`]).
pub(crate) fn step_incident_sql(step: IncidentStep) -> &'static Sql {
    match step {
        IncidentStep::AuthorityNotified => &STEP_AUTHORITY_NOTIFIED,
        IncidentStep::CustomersNotified => &STEP_CUSTOMERS_NOTIFIED,
        IncidentStep::Closed => &STEP_CLOSED,
    }
}

sql! {
    /// [`step_sql`] of the authority's notification.
    STEP_AUTHORITY_NOTIFIED = "{}", step_sql(IncidentStep::AuthorityNotified.column());
    /// [`step_sql`] of the customers' notification.
    STEP_CUSTOMERS_NOTIFIED = "{}", step_sql(IncidentStep::CustomersNotified.column());
    /// [`step_sql`] of the closing.
    STEP_CLOSED = "{}", step_sql(IncidentStep::Closed.column());
    /// A new request (`$1`..`$8` in column order); returns its `seq`.
    ADD_REQUEST = "INSERT INTO dsar_requests (tenant_id, kind, rcpt_hash, received_at, due_at, \
         status, closed_at, detail_enc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq";
    /// Closes open request `$2` of tenant `$1` with status `$3` at `$4`.
    CLOSE_REQUEST = "UPDATE dsar_requests SET status = $3, closed_at = $4 \
         WHERE tenant_id = $1 AND seq = $2 AND status = 'open'";
    /// Tenant `$1`'s requests after `$2`, only those open and due before `$3` if given,
    /// at most `$4`.
    LIST_REQUESTS = "SELECT {DSAR_COLS} FROM dsar_requests WHERE tenant_id = $1 AND seq > $2 \
         AND (CAST($3 AS BIGINT) IS NULL OR (status = 'open' AND due_at < $3)) \
         ORDER BY seq LIMIT $4";
    /// A new incident (`$1`..`$8` in column order); returns its `seq`.
    ADD_INCIDENT = "INSERT INTO incidents (tenant_id, detected_at, authority_due_at, \
         customers_due_at, authority_notified_at, customers_notified_at, closed_at, detail_enc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq";
    /// Tenant `$1`'s incidents after `$2`, only those with a notification overdue at
    /// `$3` if given, at most `$4`.
    LIST_INCIDENTS = "SELECT {INCIDENT_COLS} FROM incidents WHERE tenant_id = $1 AND seq > $2 \
         AND (CAST($3 AS BIGINT) IS NULL \
         OR (authority_notified_at IS NULL AND authority_due_at < $3) \
         OR (customers_notified_at IS NULL AND customers_due_at < $3)) ORDER BY seq LIMIT $4";
}

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
