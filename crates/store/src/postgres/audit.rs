//! PostgreSQL: the audit area ([`crate::AuditStore`]).

use super::*;

impl AuditStore for PgStore {
    async fn append_audit(&self, d: AuditDraft) -> StoreResult<AuditRecord> {
        let d = &d;
        retrying(|| self.append_audit_tx(d)).await
    }

    async fn prune_audit(&self, before: i64, limit: usize) -> StoreResult<u64> {
        retrying(|| self.prune_audit_tx(before, limit)).await
    }

    async fn audit_anchor(&self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        retrying(|| self.audit_anchor_q()).await
    }

    async fn list_audit(
        &self,
        tenant_id: Option<&str>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>> {
        retrying(|| self.list_audit_q(tenant_id, after_seq, limit)).await
    }
}
