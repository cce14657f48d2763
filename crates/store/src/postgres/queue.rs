//! PostgreSQL: the queue area ([`crate::QueueStore`]).

use super::*;

impl QueueStore for PgStore {
    async fn accept(&self, batch: AcceptBatch) -> StoreResult<()> {
        let batch = &batch;
        retrying(|| self.accept_tx(batch)).await
    }

    async fn get_idempotency(
        &self,
        tenant_id: &str,
        key_hash: &[u8],
        since: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        retrying(|| async move {
            let sql = "SELECT created_at, response_enc FROM idempotency \
                       WHERE tenant_id = $1 AND key_hash = $2 AND created_at >= $3";
            let Some(r) = self
                .one_opt("get_idempotency", sql, &[&tenant_id, &key_hash, &since])
                .await?
            else {
                return Ok(None);
            };
            Ok(Some(IdempotencyRecord {
                tenant_id: tenant_id.to_string(),
                key_hash: key_hash.to_vec(),
                created_at: col(&r, "created_at")?,
                response_enc: col(&r, "response_enc")?,
            }))
        })
        .await
    }

    async fn get_message(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>> {
        retrying(|| self.get_message_q(tenant_id, id)).await
    }

    async fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<MessageRecord>> {
        let filter = &filter;
        retrying(|| self.list_messages_q(filter)).await
    }

    async fn list_events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>> {
        let filter = &filter;
        retrying(|| self.list_events_q(filter)).await
    }

    async fn claim_due(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DueRecipient>> {
        retrying(|| self.claim_due_q(node, now, lease_until, limit)).await
    }

    async fn renew_leases(&self, node: &str, lease_until: i64) -> StoreResult<()> {
        retrying(|| self.update_leases("renew_leases", "lease_until = $2", node, Some(lease_until)))
            .await
            .map(drop)
    }

    async fn release_recipients(&self, node: &str, ids: Vec<String>) -> StoreResult<u64> {
        let sql = "UPDATE recipients SET lease_node = NULL, lease_until = NULL WHERE id IN \
                   (SELECT id FROM recipients WHERE id = ANY($2) AND lease_node = $1 ORDER BY id FOR UPDATE)";
        let params: [&(dyn ToSql + Sync); 2] = [&node, &ids];
        retrying(|| self.exec("release_recipients", None, sql, &params)).await
    }

    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        retrying(|| {
            self.update_leases(
                "release_leases",
                "lease_node = NULL, lease_until = NULL",
                node,
                None,
            )
        })
        .await
    }

    async fn load_content(&self, message_id: &str) -> StoreResult<Option<MessageContent>> {
        retrying(|| async move {
            let sql = "SELECT tenant_id, stream, from_domain, content_enc, mail_from_enc FROM messages WHERE id = $1";
            let Some(r) = self.one_opt("load_content", sql, &[&message_id]).await? else {
                return Ok(None);
            };
            Ok(Some(MessageContent {
                tenant_id: col(&r, "tenant_id")?,
                stream: col(&r, "stream")?,
                from_domain: col(&r, "from_domain")?,
                content_enc: col(&r, "content_enc")?,
                mail_from_enc: col(&r, "mail_from_enc")?,
            }))
        })
        .await
    }

    async fn record_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()> {
        let updates = &updates;
        retrying(|| self.record_deliveries_tx(updates)).await
    }

    async fn find_recipient(&self, recipient_id: &str) -> StoreResult<Option<RecipientRef>> {
        retrying(|| async move {
            let sql = "SELECT r.message_id, r.tenant_id, m.stream, r.rcpt_hash, r.address_enc, r.status \
                       FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = $1";
            let Some(r) = self.one_opt("find_recipient", sql, &[&recipient_id]).await? else {
                return Ok(None);
            };
            Ok(Some(RecipientRef {
                id: recipient_id.to_string(),
                message_id: col(&r, "message_id")?,
                tenant_id: col(&r, "tenant_id")?,
                stream: col(&r, "stream")?,
                rcpt_hash: col(&r, "rcpt_hash")?,
                address_enc: col(&r, "address_enc")?,
                status: col::<&str>(&r, "status")?
                    .parse::<RecipientStatus>()
                    .map_err(|_| corrupt("recipient status"))?,
            }))
        })
        .await
    }

    async fn record_reports(&self, updates: Vec<ReportUpdate>) -> StoreResult<()> {
        let updates = &updates;
        retrying(|| self.record_reports_tx(updates)).await
    }

    async fn backlog(&self) -> StoreResult<Backlog> {
        retrying(|| self.backlog_q()).await
    }

    async fn queue_action(
        &self,
        sel: QueueSelector,
        action: QueueAction,
        at: i64,
    ) -> StoreResult<u64> {
        let sel = &sel;
        retrying(|| self.queue_action_tx(sel, action, at)).await
    }

    async fn queue_depth(&self, tenant_id: Option<&str>) -> StoreResult<Vec<QueueDepth>> {
        retrying(|| self.queue_depth_q(tenant_id)).await
    }
}
