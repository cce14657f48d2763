//! PostgreSQL: the queue area ([`crate::QueueStore`]). The statements are the
//! queue area's (`crate::queue_sql`); this backend's own are the batch writes with
//! `UNNEST` over arrays (acceptance, events, delivery outcomes), the row locks taken
//! in id order, and the appending of events under [`EVENTS_LOCK`].

use std::collections::HashMap;

use postwerk_core::model::{EventType, RecipientStatus};
use tokio_postgres::types::ToSql;

use super::error::{PgResult, conflict, pg};
use super::stats::add_stats;
use super::{EVENTS_LOCK, PgStore, retrying};
use crate::model::*;
use crate::queue::*;
use crate::queue_sql::*;
use crate::run::FromRow;
use crate::{IDEMPOTENCY_TTL_MS, StoreError, StoreResult};

impl QueueStore for PgStore {
    async fn accept(&self, batch: AcceptBatch) -> StoreResult<()> {
        let batch = &batch;
        retrying(|| self.accept_tx(batch)).await
    }

    async fn get_message(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>> {
        retrying(|| self.get_message_q(tenant_id, id)).await
    }

    async fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<MessageRecord>> {
        let filter = &filter;
        retrying(|| self.list_messages_q(filter)).await
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
        let params: [&(dyn ToSql + Sync); 2] = [&node, &lease_until];
        retrying(|| self.exec("renew_leases", None, RENEW_LEASES_LOCKED.pg(), &params))
            .await
            .map(drop)
    }

    async fn release_recipients(&self, node: &str, ids: Vec<String>) -> StoreResult<u64> {
        let params: [&(dyn ToSql + Sync); 2] = [&node, &ids];
        retrying(|| {
            self.exec(
                "release_recipients",
                None,
                RELEASE_RECIPIENTS_LOCKED.pg(),
                &params,
            )
        })
        .await
    }

    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        let params: [&(dyn ToSql + Sync); 1] = [&node];
        retrying(|| self.exec("release_leases", None, RELEASE_LEASES_LOCKED.pg(), &params)).await
    }

    async fn record_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()> {
        let updates = &updates;
        retrying(|| self.record_deliveries_tx(updates)).await
    }

    async fn record_reports(&self, updates: Vec<ReportUpdate>) -> StoreResult<()> {
        let updates = &updates;
        retrying(|| self.record_reports_tx(updates)).await
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
}

/// Events to append, column by column (the `UNNEST` arrays), in `seq` order.
#[derive(Default)]
struct EventColumns<'a> {
    tenant_id: Vec<&'a str>,
    message_id: Vec<&'a str>,
    recipient_id: Vec<&'a str>,
    rcpt_hash: Vec<&'a [u8]>,
    kind: Vec<&'static str>,
    at: Vec<i64>,
    detail_enc: Vec<Option<&'a [u8]>>,
}

impl<'a> EventColumns<'a> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        tenant_id: &'a str,
        message_id: &'a str,
        recipient_id: &'a str,
        rcpt_hash: &'a [u8],
        kind: EventType,
        at: i64,
        detail_enc: Option<&'a [u8]>,
    ) {
        self.tenant_id.push(tenant_id);
        self.message_id.push(message_id);
        self.recipient_id.push(recipient_id);
        self.rcpt_hash.push(rcpt_hash);
        self.kind.push(kind.as_str());
        self.at.push(at);
        self.detail_enc.push(detail_enc);
    }

    /// Appends the events as the last statement before commit, under
    /// [`EVENTS_LOCK`].
    async fn append(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        op: &'static str,
    ) -> PgResult<()> {
        if self.at.is_empty() {
            return Ok(());
        }
        let lock = tx
            .prepare_cached("SELECT pg_advisory_xact_lock($1)")
            .await
            .map_err(pg(op))?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO events (tenant_id, message_id, recipient_id, rcpt_hash, type, at, detail_enc) \
                 SELECT e.tenant_id, e.message_id, e.recipient_id, e.rcpt_hash, e.type, e.at, e.detail_enc \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::int8[], $7::bytea[]) \
                 WITH ORDINALITY AS e(tenant_id, message_id, recipient_id, rcpt_hash, type, at, detail_enc, ord) \
                 ORDER BY e.ord",
            )
            .await
            .map_err(pg(op))?;
        tx.execute(&lock, &[&EVENTS_LOCK]).await.map_err(pg(op))?;
        tx.execute(
            &insert,
            &[
                &self.tenant_id,
                &self.message_id,
                &self.recipient_id,
                &self.rcpt_hash,
                &self.kind,
                &self.at,
                &self.detail_enc,
            ],
        )
        .await
        .map_err(pg(op))?;
        Ok(())
    }
}

impl PgStore {
    async fn accept_tx(&self, batch: &AcceptBatch) -> PgResult<()> {
        const OP: &str = "accept";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        if let Some(i) = &batch.idempotency {
            // Overwrites a record only once it is older than the TTL; otherwise the
            // key is taken. A concurrent accept with the same key waits for ours.
            let stmt = tx
                .prepare_cached(INSERT_IDEMPOTENCY.pg())
                .await
                .map_err(pg(OP))?;
            let older_than = i.created_at.saturating_sub(IDEMPOTENCY_TTL_MS);
            let n = tx
                .execute(
                    &stmt,
                    &[
                        &i.tenant_id,
                        &i.key_hash,
                        &i.created_at,
                        &i.response_enc,
                        &older_than,
                    ],
                )
                .await
                .map_err(conflict(OP, "idempotency key"))?;
            if n == 0 {
                return Err(StoreError::Conflict("idempotency key").into());
            }
        }
        if let Some(p) = &batch.progress {
            let stmt = tx
                .prepare_cached(crate::campaigns::BROADCAST_PROGRESS.pg())
                .await
                .map_err(pg(OP))?;
            let done = i32::from(p.done);
            let n = tx
                .execute(
                    &stmt,
                    &[
                        &p.tenant_id,
                        &p.id,
                        &p.to_cursor,
                        &p.counts,
                        &p.at,
                        &done,
                        &p.from_cursor,
                    ],
                )
                .await
                .map_err(pg(OP))?;
            if n == 0 {
                return Err(StoreError::Conflict("broadcast").into());
            }
        }
        if !batch.messages.is_empty() {
            self.insert_messages(&tx, batch).await?;
        }
        tx.commit().await.map_err(pg(OP))
    }

    async fn insert_messages(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        batch: &AcceptBatch,
    ) -> PgResult<()> {
        const OP: &str = "accept";
        let msgs = &batch.messages;
        let n_rcpts: usize = msgs.iter().map(|m| m.recipients.len()).sum();

        let m_id: Vec<&str> = msgs.iter().map(|m| m.id.as_str()).collect();
        let m_tenant: Vec<&str> = msgs.iter().map(|m| m.tenant_id.as_str()).collect();
        let m_stream: Vec<&str> = msgs.iter().map(|m| m.stream.as_str()).collect();
        let m_from: Vec<&str> = msgs.iter().map(|m| m.from_domain.as_str()).collect();
        let m_created: Vec<i64> = msgs.iter().map(|m| m.created_at).collect();
        let m_expires: Vec<i64> = msgs.iter().map(|m| m.expires_at).collect();
        let m_size: Vec<i64> = msgs.iter().map(|m| m.size).collect();
        let m_meta: Vec<&[u8]> = msgs.iter().map(|m| m.meta_enc.as_slice()).collect();
        let m_content: Vec<&[u8]> = msgs.iter().map(|m| m.content_enc.as_slice()).collect();
        let m_mail_from: Vec<Option<&[u8]>> =
            msgs.iter().map(|m| m.mail_from_enc.as_deref()).collect();
        let m_broadcast: Vec<Option<&str>> =
            msgs.iter().map(|m| m.broadcast_id.as_deref()).collect();

        let mut r_id = Vec::with_capacity(n_rcpts);
        let mut r_msg = Vec::with_capacity(n_rcpts);
        let mut r_tenant = Vec::with_capacity(n_rcpts);
        let mut r_hash = Vec::with_capacity(n_rcpts);
        let mut r_addr = Vec::with_capacity(n_rcpts);
        let mut r_domain = Vec::with_capacity(n_rcpts);
        let mut r_at = Vec::with_capacity(n_rcpts);
        let mut r_status = Vec::with_capacity(n_rcpts);
        let mut r_next: Vec<Option<i64>> = Vec::with_capacity(n_rcpts);
        let mut r_lease_node: Vec<Option<&str>> = Vec::with_capacity(n_rcpts);
        let mut r_lease_until: Vec<Option<i64>> = Vec::with_capacity(n_rcpts);
        let mut r_priority: Vec<i16> = Vec::with_capacity(n_rcpts);
        let (lease_node, lease_until) = match &batch.lease {
            Some((node, until)) => (Some(node.as_str()), Some(*until)),
            None => (None, None),
        };
        let mut events = EventColumns::default();
        for m in msgs {
            for r in &m.recipients {
                // A queued recipient is due at once (next_attempt_at = created_at)
                // and leased with the batch; a held one is final: never due, never
                // leased.
                let event = match r.held_event()? {
                    Some(event) => {
                        r_status.push(r.status.as_str());
                        r_next.push(None);
                        r_lease_node.push(None);
                        r_lease_until.push(None);
                        event
                    }
                    None => {
                        // A scheduled message waits unleased for the poller.
                        let leased = m.send_at.is_none();
                        r_status.push(RecipientStatus::Queued.as_str());
                        r_next.push(Some(m.send_at.unwrap_or(m.created_at)));
                        r_lease_node.push(lease_node.filter(|_| leased));
                        r_lease_until.push(lease_until.filter(|_| leased));
                        EventType::Accepted
                    }
                };
                r_id.push(r.id.as_str());
                r_msg.push(m.id.as_str());
                r_tenant.push(m.tenant_id.as_str());
                r_hash.push(r.rcpt_hash.as_slice());
                r_addr.push(r.address_enc.as_slice());
                r_domain.push(r.domain.as_str());
                r_at.push(m.created_at);
                r_priority.push(m.priority as i16);
                events.push(
                    &m.tenant_id,
                    &m.id,
                    &r.id,
                    &r.rcpt_hash,
                    event,
                    m.created_at,
                    None,
                );
            }
        }

        let insert_msgs = tx
            .prepare_cached(
                "INSERT INTO messages (id, tenant_id, stream, from_domain, created_at, expires_at, size, \
                 meta_enc, content_enc, mail_from_enc, broadcast_id) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], \
                 $7::int8[], $8::bytea[], $9::bytea[], $10::bytea[], $11::text[])",
            )
            .await
            .map_err(pg(OP))?;
        tx.execute(
            &insert_msgs,
            &[
                &m_id,
                &m_tenant,
                &m_stream,
                &m_from,
                &m_created,
                &m_expires,
                &m_size,
                &m_meta,
                &m_content,
                &m_mail_from,
                &m_broadcast,
            ],
        )
        .await
        .map_err(conflict(OP, "message"))?;

        let insert_rcpts = tx
            .prepare_cached(
                "INSERT INTO recipients (id, message_id, tenant_id, rcpt_hash, address_enc, domain, status, \
                 attempts, next_attempt_at, lease_node, lease_until, updated_at, priority) \
                 SELECT r.id, r.message_id, r.tenant_id, r.rcpt_hash, r.address_enc, r.domain, r.status, 0, \
                 r.next_attempt_at, r.lease_node, r.lease_until, r.at, r.priority \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::text[], \
                 $7::int8[], $8::text[], $9::int8[], $10::text[], $11::int8[], $12::int2[]) \
                 AS r(id, message_id, tenant_id, rcpt_hash, address_enc, domain, at, status, next_attempt_at, \
                 lease_node, lease_until, priority)",
            )
            .await
            .map_err(pg(OP))?;
        tx.execute(
            &insert_rcpts,
            &[
                &r_id,
                &r_msg,
                &r_tenant,
                &r_hash,
                &r_addr,
                &r_domain,
                &r_at,
                &r_status,
                &r_next,
                &r_lease_node,
                &r_lease_until,
                &r_priority,
            ],
        )
        .await
        .map_err(conflict(OP, "recipient"))?;

        let mut t_tenant: Vec<&str> = Vec::new();
        let mut t_hash: Vec<&[u8]> = Vec::new();
        let mut t_msg: Vec<&str> = Vec::new();
        for m in msgs {
            for h in &m.tag_hashes {
                t_tenant.push(&m.tenant_id);
                t_hash.push(h);
                t_msg.push(&m.id);
            }
        }
        if !t_msg.is_empty() {
            let insert_tags = tx
                .prepare_cached(
                    "INSERT INTO message_tags (tenant_id, tag_hash, message_id) \
                     SELECT * FROM UNNEST($1::text[], $2::bytea[], $3::text[]) ON CONFLICT DO NOTHING",
                )
                .await
                .map_err(pg(OP))?;
            tx.execute(&insert_tags, &[&t_tenant, &t_hash, &t_msg])
                .await
                .map_err(pg(OP))?;
        }

        events.append(tx, OP).await
    }

    async fn record_deliveries_tx(&self, updates: &[DeliveryUpdate]) -> PgResult<()> {
        const OP: &str = "record_deliveries";
        if updates.is_empty() {
            return Ok(());
        }
        // One row per recipient with the effect of applying its updates in order (as
        // SQLite does one UPDATE each): the last status, next attempt and time win,
        // and attempts grows by the number of updates.
        struct Folded<'a> {
            id: &'a str,
            status: &'static str,
            next_attempt_at: Option<i64>,
            at: i64,
            count: i64,
        }
        let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(updates.len());
        let mut folded: Vec<Folded<'_>> = Vec::with_capacity(updates.len());
        let mut events = EventColumns::default();
        for u in updates {
            match by_id.get(u.recipient_id.as_str()) {
                Some(&i) => {
                    let f = &mut folded[i];
                    f.status = u.status.as_str();
                    f.next_attempt_at = u.next_attempt_at;
                    f.at = u.at;
                    f.count += 1;
                }
                None => {
                    by_id.insert(&u.recipient_id, folded.len());
                    folded.push(Folded {
                        id: &u.recipient_id,
                        status: u.status.as_str(),
                        next_attempt_at: u.next_attempt_at,
                        at: u.at,
                        count: 1,
                    });
                }
            }
            events.push(
                &u.tenant_id,
                &u.message_id,
                &u.recipient_id,
                &u.rcpt_hash,
                u.event,
                u.at,
                Some(u.detail_enc.as_slice()),
            );
        }
        folded.sort_unstable_by(|a, b| a.id.cmp(b.id));
        let ids: Vec<&str> = folded.iter().map(|f| f.id).collect();
        let statuses: Vec<&str> = folded.iter().map(|f| f.status).collect();
        let nexts: Vec<Option<i64>> = folded.iter().map(|f| f.next_attempt_at).collect();
        let ats: Vec<i64> = folded.iter().map(|f| f.at).collect();
        let counts: Vec<i64> = folded.iter().map(|f| f.count).collect();

        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let lock = tx
            .prepare_cached(LOCK_RECIPIENTS.pg())
            .await
            .map_err(pg(OP))?;
        let update = tx
            .prepare_cached(RECORD_DELIVERIES_BATCH.pg())
            .await
            .map_err(pg(OP))?;
        // Lock in id order first: concurrent writers then never deadlock.
        tx.query(&lock, &[&ids]).await.map_err(pg(OP))?;
        tx.execute(&update, &[&ids, &statuses, &nexts, &ats, &counts])
            .await
            .map_err(pg(OP))?;
        let adds = crate::stats::aggregate(
            updates
                .iter()
                .map(|u| (u.tenant_id.as_str(), u.at, &u.dims, u.event)),
        );
        add_stats(&tx, OP, &adds).await?;
        events.append(&tx, OP).await?;
        tx.commit().await.map_err(pg(OP))
    }

    async fn record_reports_tx(&self, updates: &[ReportUpdate]) -> PgResult<()> {
        const OP: &str = "record_reports";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let update = tx
            .prepare_cached(REPORT_STATUS.pg())
            .await
            .map_err(pg(OP))?;
        let mut events = EventColumns::default();
        for u in updates {
            if let Some(status) = u.status_if_delivered {
                tx.execute(&update, &[&u.recipient_id, &status.as_str(), &u.at])
                    .await
                    .map_err(pg(OP))?;
            }
            events.push(
                &u.tenant_id,
                &u.message_id,
                &u.recipient_id,
                &u.rcpt_hash,
                u.event,
                u.at,
                Some(u.detail_enc.as_slice()),
            );
        }
        let adds = crate::stats::aggregate(
            updates
                .iter()
                .map(|u| (u.tenant_id.as_str(), u.at, &u.dims, u.event)),
        );
        add_stats(&tx, OP, &adds).await?;
        events.append(&tx, OP).await?;
        tx.commit().await.map_err(pg(OP))
    }

    async fn get_message_q(&self, tenant_id: &str, id: &str) -> PgResult<Option<MessageRecord>> {
        const OP: &str = "get_message";
        let client = self.client().await?;
        let head = client
            .prepare_cached(MESSAGE_HEAD.pg())
            .await
            .map_err(pg(OP))?;
        let rcpts = client
            .prepare_cached(MESSAGE_RECIPIENTS.pg())
            .await
            .map_err(pg(OP))?;
        let evs = client
            .prepare_cached(MESSAGE_EVENTS.pg())
            .await
            .map_err(pg(OP))?;
        // Pipelined: one round trip for the three queries.
        let params: [&(dyn ToSql + Sync); 2] = [&id, &tenant_id];
        let (head, rcpts, evs) = tokio::try_join!(
            client.query_opt(&head, &params),
            client.query(&rcpts, &params),
            client.query(&evs, &params),
        )
        .map_err(pg(OP))?;
        let Some(head) = head else { return Ok(None) };
        let mut message = MessageRecord::from_row(&head)?;
        message.recipients = rcpts
            .iter()
            .map(RecipientRecord::from_row)
            .collect::<PgResult<_>>()?;
        message.events = evs
            .iter()
            .map(EventRecord::from_row)
            .collect::<PgResult<_>>()?;
        Ok(Some(message))
    }

    async fn list_messages_q(&self, f: &MessageFilter) -> PgResult<Vec<MessageRecord>> {
        const OP: &str = "list_messages";
        let q = messages_query(f);
        let args = super::run::params(&q.args);
        let ids: Vec<String> = {
            let client = self.client().await?;
            // One prepared statement per filter combination in use, per connection.
            let stmt = client.prepare_cached(&q.text).await.map_err(pg(OP))?;
            client
                .query(&stmt, &args)
                .await
                .map_err(pg(OP))?
                .iter()
                .map(|r| crate::row::Columns::get(r, "id"))
                .collect::<PgResult<_>>()?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(m) = self.get_message_q(&f.tenant_id, id).await? {
                out.push(m);
            }
        }
        Ok(out)
    }

    async fn claim_due_q(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> PgResult<Vec<DueRecipient>> {
        const OP: &str = "claim_due";
        // Urgent recipients first, then the rest up to the limit.
        let mut due: Vec<DueRecipient> = Vec::with_capacity(limit);
        for claim in [&CLAIM_URGENT_LOCKED, &CLAIM_DUE_LOCKED] {
            let left = i64::try_from(limit.saturating_sub(due.len())).unwrap_or(i64::MAX);
            if left == 0 {
                break;
            }
            let params: [&(dyn ToSql + Sync); 4] = [&node, &lease_until, &now, &left];
            due.extend(
                self.list(OP, claim.pg(), &params, DueRecipient::from_row)
                    .await?,
            );
        }
        Ok(due)
    }
}
