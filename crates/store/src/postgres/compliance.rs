//! PostgreSQL: the compliance area ([`crate::ComplianceStore`]).

use super::*;

impl ComplianceStore for PgStore {
    async fn add_request(&self, r: DsarRecord) -> StoreResult<i64> {
        let r = &r;
        retrying(|| self.add_request_q(r)).await
    }

    async fn close_request(
        &self,
        tenant_id: &str,
        seq: i64,
        status: DsarStatus,
        at: i64,
    ) -> StoreResult<bool> {
        retrying(|| self.close_request_q(tenant_id, seq, status, at)).await
    }

    async fn list_requests(
        &self,
        tenant_id: &str,
        open_due_before: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<DsarRecord>> {
        retrying(|| self.list_requests_q(tenant_id, open_due_before, after_seq, limit)).await
    }

    async fn add_incident(&self, r: IncidentRecord) -> StoreResult<i64> {
        let r = &r;
        retrying(|| self.add_incident_q(r)).await
    }

    async fn step_incident(
        &self,
        tenant_id: &str,
        seq: i64,
        step: IncidentStep,
        at: i64,
    ) -> StoreResult<bool> {
        retrying(|| self.step_incident_q(tenant_id, seq, step, at)).await
    }

    async fn list_incidents(
        &self,
        tenant_id: &str,
        overdue_at: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<IncidentRecord>> {
        retrying(|| self.list_incidents_q(tenant_id, overdue_at, after_seq, limit)).await
    }

    async fn purge(&self, r: Retention) -> StoreResult<Purged> {
        let r = &r;
        retrying(|| self.purge_tx(r)).await
    }
}
