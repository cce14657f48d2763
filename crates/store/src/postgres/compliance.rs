//! PostgreSQL: the compliance area ([`crate::ComplianceStore`]).

use super::*;
use crate::compliance::*;
use crate::row::Columns;

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

impl PgStore {
    async fn add_incident_q(&self, r: &IncidentRecord) -> PgResult<i64> {
        let params: [&(dyn ToSql + Sync); 8] = [
            &r.tenant_id,
            &r.detected_at,
            &r.authority_due_at,
            &r.customers_due_at,
            &r.authority_notified_at,
            &r.customers_notified_at,
            &r.closed_at,
            &r.detail_enc,
        ];
        let row = self
            .one_opt("add_incident", ADD_INCIDENT.pg(), &params)
            .await?;
        row.map_or(Err(corrupt("incident seq")), |r| Columns::get(&r, "seq"))
    }

    async fn step_incident_q(
        &self,
        tenant_id: &str,
        seq: i64,
        step: IncidentStep,
        at: i64,
    ) -> PgResult<bool> {
        let sql = step_incident_sql(step).pg();
        let n = self
            .exec("step_incident", None, sql, &[&tenant_id, &seq, &at])
            .await?;
        Ok(n > 0)
    }

    async fn list_incidents_q(
        &self,
        tenant_id: &str,
        overdue_at: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> PgResult<Vec<IncidentRecord>> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let after = after_seq.unwrap_or(0);
        let params: [&(dyn ToSql + Sync); 4] = [&tenant_id, &after, &overdue_at, &limit];
        self.list("list_incidents", LIST_INCIDENTS.pg(), &params, incident_row)
            .await
    }

    async fn add_request_q(&self, r: &DsarRecord) -> PgResult<i64> {
        let params: [&(dyn ToSql + Sync); 8] = [
            &r.tenant_id,
            &r.kind.as_str(),
            &r.rcpt_hash,
            &r.received_at,
            &r.due_at,
            &r.status.as_str(),
            &r.closed_at,
            &r.detail_enc,
        ];
        let row = self
            .one_opt("add_request", ADD_REQUEST.pg(), &params)
            .await?;
        row.map_or(Err(corrupt("request seq")), |r| Columns::get(&r, "seq"))
    }

    async fn close_request_q(
        &self,
        tenant_id: &str,
        seq: i64,
        status: DsarStatus,
        at: i64,
    ) -> PgResult<bool> {
        let params: [&(dyn ToSql + Sync); 4] = [&tenant_id, &seq, &status.as_str(), &at];
        let n = self
            .exec("close_request", None, CLOSE_REQUEST.pg(), &params)
            .await?;
        Ok(n > 0)
    }

    async fn list_requests_q(
        &self,
        tenant_id: &str,
        open_due_before: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> PgResult<Vec<DsarRecord>> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let after = after_seq.unwrap_or(0);
        let params: [&(dyn ToSql + Sync); 4] = [&tenant_id, &after, &open_due_before, &limit];
        self.list("list_requests", LIST_REQUESTS.pg(), &params, dsar_row)
            .await
    }
}
