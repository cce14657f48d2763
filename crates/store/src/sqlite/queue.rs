//! SQLite: the queue area ([`crate::QueueStore`]). The statements are the queue
//! area's (`crate::queue_sql`); this backend's own are the multi-row inserts of
//! acceptance and events (see [`insert_rows`]) and the per-row writes its single
//! writer makes instead of PostgreSQL's batches.

use std::sync::OnceLock;

use postwerk_core::model::{EventType, RecipientStatus};
use rusqlite::{Connection, OptionalExtension, params};

use super::stats::add_stats;
use super::writer::Durability;
use super::{SqliteStore, conflict_or, unavailable};
use crate::model::*;
use crate::queue::*;
use crate::queue_sql::*;
use crate::run::FromRow;
use crate::{IDEMPOTENCY_TTL_MS, StoreError, StoreResult};

/// Most rows in one multi-row `INSERT` (a power of two: see [`insert_rows`]).
const ROWS_PER_INSERT: usize = 512;

/// The multi-row `INSERT … VALUES` statements of one table, one per chunk size (a
/// power of two up to [`ROWS_PER_INSERT`]), each written on first use.
struct MultiInsert {
    /// `INSERT INTO t (columns) VALUES`.
    head: &'static str,
    /// One row's placeholders (`(?, ?, …)`).
    tuple: &'static str,
    /// The statement of `2^i` rows at `i`.
    texts: [OnceLock<String>; ROWS_PER_INSERT.ilog2() as usize + 1],
}

impl MultiInsert {
    /// The statements of `head` with rows of `tuple`.
    const fn new(head: &'static str, tuple: &'static str) -> MultiInsert {
        MultiInsert {
            head,
            tuple,
            texts: [const { OnceLock::new() }; ROWS_PER_INSERT.ilog2() as usize + 1],
        }
    }

    /// The statement of `size` rows (a power of two up to [`ROWS_PER_INSERT`]).
    fn text(&self, size: usize) -> &str {
        self.texts[size.ilog2() as usize]
            .get_or_init(|| format!("{} {}", self.head, vec![self.tuple; size].join(", ")))
    }
}

/// The events' inserts (see [`insert_events`]).
static EVENT_INSERTS: MultiInsert = MultiInsert::new(
    "INSERT INTO events (tenant_id, message_id, recipient_id, rcpt_hash, type, at, detail_enc) VALUES",
    "(?, ?, ?, ?, ?, ?, ?)",
);

/// The recipients' inserts of acceptance.
static RECIPIENT_INSERTS: MultiInsert = MultiInsert::new(
    "INSERT INTO recipients (id, message_id, tenant_id, rcpt_hash, address_enc, domain, status, attempts, \
     next_attempt_at, lease_node, lease_until, updated_at, priority) VALUES",
    "(?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
);

/// Inserts `rows` with `table`'s multi-row statements, `bind` giving one row's values
/// in its placeholders' order.
///
/// One statement per row made large writes quadratic. Inside the writer's per-job
/// SAVEPOINT, each statement that may have to be undone on its own (one that fires a
/// trigger, or inserts several rows) runs with a statement journal, and releasing it
/// truncates SQLite's in-memory sub-journal by walking it from the start: time
/// proportional to all the job has journalled so far. Accepting 10,000 recipients
/// (and their events) in one job spent ~96 % of the server's CPU time in that walk; with
/// one statement per [`ROWS_PER_INSERT`] rows it is a few hundred times rarer.
///
/// Full chunks have [`ROWS_PER_INSERT`] rows and the rest is split into powers of
/// two, so a table needs at most ten statement shapes, all of them cached.
fn insert_rows<'a, R, const N: usize>(
    c: &Connection,
    table: &MultiInsert,
    rows: &'a [R],
    bind: impl Fn(&'a R) -> [&'a dyn rusqlite::ToSql; N],
) -> rusqlite::Result<()> {
    let mut rest = rows;
    while !rest.is_empty() {
        let size = ROWS_PER_INSERT.min(1 << rest.len().ilog2());
        let (chunk, tail) = rest.split_at(size);
        c.prepare_cached(table.text(size))?
            .execute(rusqlite::params_from_iter(chunk.iter().flat_map(&bind)))?;
        rest = tail;
    }
    Ok(())
}

/// An `events` row to insert (its `seq` is assigned on insert, in slice order).
struct EventRow<'a> {
    tenant_id: &'a str,
    message_id: &'a str,
    recipient_id: &'a str,
    rcpt_hash: &'a [u8],
    kind: &'static str,
    at: i64,
    detail_enc: Option<&'a [u8]>,
}

/// Implements `From<&Update>` for [`EventRow`]: an outcome's event.
macro_rules! event_row_from {
    ($($update:ty),*) => {$(
        impl<'a> From<&'a $update> for EventRow<'a> {
            fn from(u: &'a $update) -> Self {
                EventRow {
                    tenant_id: &u.tenant_id,
                    message_id: &u.message_id,
                    recipient_id: &u.recipient_id,
                    rcpt_hash: &u.rcpt_hash,
                    kind: u.event.as_str(),
                    at: u.at,
                    detail_enc: Some(&u.detail_enc),
                }
            }
        }
    )*};
}
event_row_from!(DeliveryUpdate, ReportUpdate);

/// Appends `events` in order (the webhook trigger fires for each row, as before).
fn insert_events(c: &Connection, events: &[EventRow<'_>]) -> StoreResult<()> {
    insert_rows(c, &EVENT_INSERTS, events, |e| {
        [
            &e.tenant_id,
            &e.message_id,
            &e.recipient_id,
            &e.rcpt_hash,
            &e.kind,
            &e.at,
            &e.detail_enc,
        ]
    })
    .map_err(unavailable)
}

/// A `recipients` row to insert: the recipient, its message and how it is queued.
struct RecipientRow<'a> {
    message: &'a NewMessage,
    recipient: &'a NewRecipient,
    status: &'static str,
    due: Option<i64>,
    lease_node: Option<&'a str>,
    lease_until: Option<i64>,
}

/// Stores an accepted batch (inside the writer's transaction; see
/// [`QueueStore::accept`]).
fn accept_in(c: &Connection, batch: &AcceptBatch) -> StoreResult<()> {
    if let Some(i) = &batch.idempotency {
        let older_than = i.created_at.saturating_sub(IDEMPOTENCY_TTL_MS);
        let n = c
            .prepare_cached(INSERT_IDEMPOTENCY.sqlite())
            .and_then(|mut s| {
                s.execute(params![
                    i.tenant_id,
                    i.key_hash,
                    i.created_at,
                    i.response_enc,
                    older_than
                ])
            })
            .map_err(unavailable)?;
        if n == 0 {
            return Err(StoreError::Conflict("idempotency key"));
        }
    }
    if let Some(p) = &batch.progress {
        let n = c
            .prepare_cached(crate::campaigns::BROADCAST_PROGRESS.sqlite())
            .and_then(|mut s| {
                s.execute(params![
                    p.tenant_id,
                    p.id,
                    p.to_cursor,
                    p.counts,
                    p.at,
                    i64::from(p.done),
                    p.from_cursor
                ])
            })
            .map_err(unavailable)?;
        if n == 0 {
            return Err(StoreError::Conflict("broadcast"));
        }
    }
    let (lease_node, lease_until) = match &batch.lease {
        Some((n, u)) => (Some(n.as_str()), Some(*u)),
        None => (None, None),
    };
    let mut msg = c
        .prepare_cached(
            "INSERT INTO messages (id, tenant_id, stream, from_domain, created_at, expires_at, size, meta_enc, \
             content_enc, mail_from_enc, broadcast_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(unavailable)?;
    let n_rcpts = batch.messages.iter().map(|m| m.recipients.len()).sum();
    let mut rcpts = Vec::with_capacity(n_rcpts);
    let mut events = Vec::with_capacity(n_rcpts);
    for m in &batch.messages {
        msg.execute(params![
            m.id,
            m.tenant_id,
            m.stream,
            m.from_domain,
            m.created_at,
            m.expires_at,
            m.size,
            m.meta_enc,
            m.content_enc,
            m.mail_from_enc,
            m.broadcast_id
        ])
        .map_err(|e| conflict_or(e, "message"))?;
        for h in &m.tag_hashes {
            c.prepare_cached(
                "INSERT OR IGNORE INTO message_tags (tenant_id, tag_hash, message_id) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut st| st.execute(params![m.tenant_id, h, m.id]))
            .map_err(unavailable)?;
        }
        for r in &m.recipients {
            // A queued recipient is due at once (and leased with the batch); a
            // held one is final: never due, never leased.
            let (status, event, due, lease_node, lease_until) = match r.held_event()? {
                Some(event) => (r.status, event, None, None, None),
                // A scheduled message waits unleased for the poller.
                None => match m.send_at {
                    Some(at) => (
                        RecipientStatus::Queued,
                        EventType::Accepted,
                        Some(at),
                        None,
                        None,
                    ),
                    None => (
                        RecipientStatus::Queued,
                        EventType::Accepted,
                        Some(m.created_at),
                        lease_node,
                        lease_until,
                    ),
                },
            };
            rcpts.push(RecipientRow {
                message: m,
                recipient: r,
                status: status.as_str(),
                due,
                lease_node,
                lease_until,
            });
            events.push(EventRow {
                tenant_id: &m.tenant_id,
                message_id: &m.id,
                recipient_id: &r.id,
                rcpt_hash: &r.rcpt_hash,
                kind: event.as_str(),
                at: m.created_at,
                detail_enc: None,
            });
        }
    }
    // Recipients and events in bulk, after all messages (the webhook trigger reads
    // an event's message); events keep the order of the per-recipient inserts.
    insert_rows(c, &RECIPIENT_INSERTS, &rcpts, |r| {
        [
            &r.recipient.id,
            &r.message.id,
            &r.message.tenant_id,
            &r.recipient.rcpt_hash,
            &r.recipient.address_enc,
            &r.recipient.domain,
            &r.status,
            &r.due,
            &r.lease_node,
            &r.lease_until,
            &r.message.created_at,
            &r.message.priority,
        ]
    })
    .map_err(|e| conflict_or(e, "recipient"))?;
    insert_events(c, &events)
}

/// A tenant's message with its recipients and events, read in the caller's snapshot.
fn get_message_in(c: &Connection, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>> {
    let Some(mut message) = c
        .prepare_cached(MESSAGE_HEAD.sqlite())
        .and_then(|mut s| {
            s.query_row([id, tenant_id], |r| MessageRecord::from_row(r))
                .optional()
        })
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    message.recipients = c
        .prepare_cached(MESSAGE_RECIPIENTS.sqlite())
        .and_then(|mut s| {
            s.query_map([id, tenant_id], |r| RecipientRecord::from_row(r))?
                .collect()
        })
        .map_err(unavailable)?;
    message.events = c
        .prepare_cached(MESSAGE_EVENTS.sqlite())
        .and_then(|mut s| {
            s.query_map([id, tenant_id], |r| EventRecord::from_row(r))?
                .collect()
        })
        .map_err(unavailable)?;
    Ok(Some(message))
}

impl QueueStore for SqliteStore {
    async fn accept(&self, batch: AcceptBatch) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| accept_in(c, &batch))
            .await
    }

    async fn get_message(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>> {
        let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
        self.read(move |c| get_message_in(c, &tenant_id, &id)).await
    }

    async fn list_messages(&self, f: MessageFilter) -> StoreResult<Vec<MessageRecord>> {
        self.read(move |c| {
            let q = messages_query(&f);
            let ids = c
                .prepare_cached(&crate::sql::sqlite_params(&q.text))
                .and_then(|mut st| {
                    st.query_map(rusqlite::params_from_iter(&q.args), |r| {
                        r.get::<_, String>("id")
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)?;
            ids.iter()
                .filter_map(|id| get_message_in(c, &f.tenant_id, id).transpose())
                .collect()
        })
        .await
    }

    async fn claim_due(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DueRecipient>> {
        let node = node.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                // Urgent recipients first, then the rest up to the limit.
                let mut due: Vec<DueRecipient> = Vec::with_capacity(limit);
                for claim in [&CLAIM_URGENT, &CLAIM_DUE] {
                    let left = limit.saturating_sub(due.len());
                    if left == 0 {
                        break;
                    }
                    let rows = c
                        .prepare_cached(claim.sqlite())
                        .and_then(|mut st| {
                            st.query_map(params![node, lease_until, now, left as i64], |r| {
                                DueRecipient::from_row(r)
                            })?
                            .collect::<rusqlite::Result<Vec<_>>>()
                        })
                        .map_err(unavailable)?;
                    due.extend(rows);
                }
                Ok(due)
            })
            .await
    }

    async fn renew_leases(&self, node: &str, lease_until: i64) -> StoreResult<()> {
        let node = node.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                c.prepare_cached(RENEW_LEASES.sqlite())
                    .and_then(|mut st| st.execute(params![node, lease_until]))
                    .map(drop)
                    .map_err(unavailable)
            })
            .await
    }

    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        let node = node.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                c.prepare_cached(RELEASE_LEASES.sqlite())
                    .and_then(|mut st| st.execute([node]))
                    .map(|n| n as u64)
                    .map_err(unavailable)
            })
            .await
    }

    async fn release_recipients(&self, node: &str, ids: Vec<String>) -> StoreResult<u64> {
        let node = node.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                let mut st = c
                    .prepare_cached(RELEASE_RECIPIENT.sqlite())
                    .map_err(unavailable)?;
                ids.iter().try_fold(0u64, |n, id| {
                    st.execute(params![node, id])
                        .map(|k| n + k as u64)
                        .map_err(unavailable)
                })
            })
            .await
    }

    async fn record_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()> {
        self.writer
            .write(Durability::Process, move |c| {
                let mut upd = c
                    .prepare_cached(RECORD_DELIVERY.sqlite())
                    .map_err(unavailable)?;
                for u in &updates {
                    upd.execute(params![
                        u.recipient_id,
                        u.status.as_str(),
                        u.next_attempt_at,
                        u.at
                    ])
                    .map_err(unavailable)?;
                }
                insert_events(c, &updates.iter().map(EventRow::from).collect::<Vec<_>>())?;
                add_stats(
                    c,
                    updates
                        .iter()
                        .map(|u| (u.tenant_id.as_str(), u.at, &u.dims, u.event)),
                )
            })
            .await
    }

    async fn record_reports(&self, updates: Vec<ReportUpdate>) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let mut upd = c
                    .prepare_cached(REPORT_STATUS.sqlite())
                    .map_err(unavailable)?;
                for u in &updates {
                    if let Some(status) = u.status_if_delivered {
                        upd.execute(params![u.recipient_id, status.as_str(), u.at])
                            .map_err(unavailable)?;
                    }
                }
                insert_events(c, &updates.iter().map(EventRow::from).collect::<Vec<_>>())?;
                add_stats(
                    c,
                    updates
                        .iter()
                        .map(|u| (u.tenant_id.as_str(), u.at, &u.dims, u.event)),
                )
            })
            .await
    }

    async fn queue_action(
        &self,
        sel: QueueSelector,
        action: QueueAction,
        at: i64,
    ) -> StoreResult<u64> {
        self.queue_action_tx(sel, action, at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_chunk_size_has_its_statement() {
        assert_eq!(
            EVENT_INSERTS.text(1),
            format!("{} {}", EVENT_INSERTS.head, EVENT_INSERTS.tuple)
        );
        for size in [2, 4, ROWS_PER_INSERT] {
            assert_eq!(RECIPIENT_INSERTS.text(size).matches("(?, ").count(), size);
        }
    }
}
