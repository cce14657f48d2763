//! The store's compliance area: the registers of data-subject requests and incidents, and the retention purge.

use postwerk_core::model::DsarStatus;

use crate::model::*;
use crate::row::Columns;
use crate::run::FromRow;
use crate::sql::Sql;
use crate::{StoreError, StoreResult};

/// The columns a [`DsarRecord`] is read from.
pub(crate) const DSAR_COLS: &str =
    "seq, tenant_id, kind, rcpt_hash, received_at, due_at, status, closed_at, detail_enc";

/// The columns an [`IncidentRecord`] is read from.
pub(crate) const INCIDENT_COLS: &str = "seq, tenant_id, detected_at, authority_due_at, \
     customers_due_at, authority_notified_at, customers_notified_at, closed_at, detail_enc";

/// A data-subject request row; a kind or status that does not parse makes it corrupt.
impl FromRow for DsarRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
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
}

/// An incident row.
impl FromRow for IncidentRecord {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
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
}

/// The row an insert returns ([`ADD_REQUEST`], [`ADD_INCIDENT`]): the new `seq`.
struct Seq(i64);

impl FromRow for Seq {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Seq(r.get("seq")?))
    }
}

/// The `seq` of a new row from the insert's returned row; no row is corrupt (`what`).
fn new_seq(row: Option<Seq>, what: &str) -> StoreResult<i64> {
    row.map(|Seq(seq)| seq)
        .ok_or_else(|| StoreError::Corrupt(what.to_string()))
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
        /// Enforces retention (see [`Retention`]); returns what went. Messages with a
        /// recipient still queued or deferred keep their content and rows.
        fn purge(&self, r: Retention) -> StoreResult<Purged>;
    }
    shared {
        /// Records a data-subject request; returns its `seq`.
        fn add_request(&self, r: DsarRecord) -> StoreResult<i64> {
            let args = args![
                r.tenant_id,
                r.kind.as_str(),
                r.rcpt_hash,
                r.received_at,
                r.due_at,
                r.status.as_str(),
                r.closed_at,
                r.detail_enc,
            ];
            let row = self.write_row("add_request", None, &ADD_REQUEST, args).await?;
            new_seq(row, "request seq")
        }
        /// Closes an open request (`completed` or `rejected`); `false` if the tenant has
        /// no such open request.
        fn close_request(
            &self,
            tenant_id: &str,
            seq: i64,
            status: DsarStatus,
            at: i64,
        ) -> StoreResult<bool> {
            let args = args![tenant_id, seq, status.as_str(), at];
            Ok(self.write("close_request", None, &CLOSE_REQUEST, args).await? > 0)
        }
        /// The tenant's requests in `seq` order after `after_seq`; with `open_due_before`,
        /// only open ones due before that time (overdue), at most `limit`.
        fn list_requests(
            &self,
            tenant_id: &str,
            open_due_before: Option<i64>,
            after_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<DsarRecord>> {
            let args = args![
                tenant_id,
                after_seq.unwrap_or(0),
                open_due_before,
                limit.max(1),
            ];
            self.rows("list_requests", &LIST_REQUESTS, args).await
        }
        /// Records an incident in the breach register; returns its `seq`.
        fn add_incident(&self, r: IncidentRecord) -> StoreResult<i64> {
            let args = args![
                r.tenant_id,
                r.detected_at,
                r.authority_due_at,
                r.customers_due_at,
                r.authority_notified_at,
                r.customers_notified_at,
                r.closed_at,
                r.detail_enc,
            ];
            let row = self.write_row("add_incident", None, &ADD_INCIDENT, args).await?;
            new_seq(row, "incident seq")
        }
        /// Records a step on a tenant's incident (once each); `false` if there is no such
        /// incident or the step was recorded already.
        fn step_incident(
            &self,
            tenant_id: &str,
            seq: i64,
            step: IncidentStep,
            at: i64,
        ) -> StoreResult<bool> {
            let sql = step_incident_sql(step);
            Ok(self.write("step_incident", None, sql, args![tenant_id, seq, at]).await? > 0)
        }
        /// The tenant's incidents in `seq` order after `after_seq`; with `overdue_at`,
        /// only those with a notification still missing past its deadline, at most `limit`.
        fn list_incidents(
            &self,
            tenant_id: &str,
            overdue_at: Option<i64>,
            after_seq: Option<i64>,
            limit: usize,
        ) -> StoreResult<Vec<IncidentRecord>> {
            let args = args![tenant_id, after_seq.unwrap_or(0), overdue_at, limit.max(1)];
            self.rows("list_incidents", &LIST_INCIDENTS, args).await
        }
    }
}
