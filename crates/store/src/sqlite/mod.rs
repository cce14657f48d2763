//! The embedded SQLite backend: one WAL-mode file, a group-committing writer thread
//! and a small pool of reader connections used from blocking tasks.
//!
//! Each area of the store has a file of the same name here and in `postgres/`
//! (`tenants`, `users`, `domains`, `queue`, `privacy`, `compliance`, `audit`, `stats`,
//! `streams`, `webhooks`, `suppressions`), implementing that area's trait of the
//! crate root with this backend's execution; the row decoders and shared SQL live in
//! the crate's area modules. Helper suffixes, the same in both backends: `_q` one
//! query outside a write transaction, `_tx` work inside a write transaction, `_in` a
//! step given an open connection or transaction.
//! Besides: `backup` (snapshots and restores of the file) and `writer` (the writer
//! thread and its group commit).

mod audit;
pub(crate) mod backup;
mod compliance;
mod domains;
mod privacy;
mod queue;
mod run;
mod stats;
mod streams;
mod suppressions;
mod tenants;
mod users;
mod webhooks;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use postwerk_core::model::{ConsentStatus, DsarStatus, EventType, RecipientStatus};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use crate::model::*;
use crate::prelude::*;
use crate::queue::{EVENT_COLS, event_row};
use crate::suppressions::{SUPPRESSION_COLS, suppression_row};
use crate::{BACKLOG_SQL, IDEMPOTENCY_TTL_MS, StoreError, StoreResult, WEBHOOK_BACKLOG_SQL};
use writer::{Durability, Writer};

const READERS: usize = 4;

/// The SQLite store.
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: std::path::PathBuf,
}

/// A driver error as the store's: a row that did not decode (carried as a conversion
/// failure, see [`crate::row::Columns`]) is that error, anything else `Unavailable`.
pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(at, ty, carried) => {
            match carried.downcast::<StoreError>() {
                Ok(store) => *store,
                Err(other) => StoreError::Unavailable(
                    rusqlite::Error::FromSqlConversionFailure(at, ty, other).to_string(),
                ),
            }
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn conflict_or(e: rusqlite::Error, what: &'static str) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(what)
        }
        other => unavailable(other),
    }
}

fn open_connection(path: &Path, write: bool) -> StoreResult<Connection> {
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(unavailable)?;
    // FULL: a commit is on disk (fsync) before the caller is answered.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;",
    )
    .map_err(unavailable)?;
    // Room for the multi-row insert shapes (see `insert_rows`) besides the rest.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Version 5 for a database made by an older version: `events.stream`, and the
/// webhook trigger renewed to read it (`schema.sql` then recreates it).
fn add_event_stream_column(conn: &Connection) -> StoreResult<()> {
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('events') WHERE name = 'stream'",
            [],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if has == 0 {
        conn.execute_batch(
            "ALTER TABLE events ADD COLUMN stream TEXT; DROP TRIGGER IF EXISTS events_to_webhooks;",
        )
        .and_then(|()| conn.execute_batch(include_str!("schema.sql")))
        .map_err(unavailable)?;
    }
    Ok(())
}

/// Version 9 for a database made by an older version: contacts' data keys move to
/// `subject_keys` (where every person's key now lives) and leave the contacts table.
fn move_contact_keys(conn: &Connection) -> StoreResult<()> {
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('contacts') WHERE name = 'key_wrapped'",
            [],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if has > 0 {
        conn.execute_batch(
            "BEGIN; \
             INSERT OR IGNORE INTO subject_keys (tenant_id, rcpt_hash, key_wrapped, created_at) \
             SELECT tenant_id, rcpt_hash, key_wrapped, created_at FROM contacts; \
             ALTER TABLE contacts DROP COLUMN key_wrapped; \
             COMMIT;",
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

/// Version 10 for a database made by an older version: accounts unique per tenant and
/// address (the table is rebuilt without the global `UNIQUE`), and session generations
/// instead of `sessions_valid_after` (sessions it had already ended are deleted).
fn per_tenant_users(conn: &Connection) -> StoreResult<()> {
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('users') WHERE name = 'sessions_valid_after'",
            [],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if has == 0 {
        return Ok(());
    }
    const KEPT: &str = "id, tenant_id, email_index, email_enc, password_hash, role, scopes, \
                        totp_enc, created_at, disabled_at, failed_logins, locked_until";
    conn.execute_batch(
        "BEGIN; \
         DELETE FROM sessions WHERE created_at < \
           (SELECT u.sessions_valid_after FROM users u WHERE u.id = sessions.user_id); \
         ALTER TABLE sessions ADD COLUMN user_gen INTEGER NOT NULL DEFAULT 0; \
         DROP INDEX IF EXISTS users_tenant; DROP INDEX IF EXISTS users_tenant_email; \
         DROP INDEX IF EXISTS users_email; \
         ALTER TABLE users RENAME TO users_v9;",
    )
    .and_then(|()| conn.execute_batch(include_str!("schema.sql")))
    .and_then(|()| {
        conn.execute_batch(&format!(
            "INSERT INTO users ({KEPT}) SELECT {KEPT} FROM users_v9; DROP TABLE users_v9; COMMIT;"
        ))
    })
    .map_err(unavailable)
}

/// Version 8 for a database made by an older version: sub-accounts.
fn add_tenant_parent_column(conn: &Connection) -> StoreResult<()> {
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('tenants') WHERE name = 'parent_id'",
            [],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if has == 0 {
        conn.execute_batch("ALTER TABLE tenants ADD COLUMN parent_id TEXT;")
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Version 9 for a database made by an earlier build of it: tenant cancellation.
fn add_tenant_cancelled_column(conn: &Connection) -> StoreResult<()> {
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('tenants') WHERE name = 'cancelled_at'",
            [],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if has == 0 {
        conn.execute_batch("ALTER TABLE tenants ADD COLUMN cancelled_at INTEGER;")
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Version 6 for a database made by an older version: per-key address allowlists and
/// rate limits.
fn add_api_key_limit_columns(conn: &Connection) -> StoreResult<()> {
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('api_keys') WHERE name = 'allowed_ips'",
            [],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if has == 0 {
        conn.execute_batch(
            "ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT; \
             ALTER TABLE api_keys ADD COLUMN rate_limit INTEGER;",
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

/// The unique index on domain names, unless the database still holds a
/// name in several tenants (then each is logged, and the index is made at the first
/// start after an operator resolved them).
fn unique_domain_names(conn: &Connection) -> StoreResult<()> {
    let contested: Vec<(String, String)> = conn
        .prepare(crate::CONTESTED_DOMAINS_SQL)
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(unavailable)?;
    if contested.is_empty() {
        conn.execute_batch(crate::UNIQUE_DOMAINS_SQL)
            .map_err(unavailable)
    } else {
        crate::warn_contested(&contested);
        Ok(())
    }
}

impl SqliteStore {
    /// Opens (creating and migrating) the database file at `path`.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            }
            let conn = open_connection(&path, true)?;
            conn.execute_batch(include_str!("schema.sql"))
                .map_err(unavailable)?;
            add_event_stream_column(&conn)?;
            add_api_key_limit_columns(&conn)?;
            add_tenant_parent_column(&conn)?;
            add_tenant_cancelled_column(&conn)?;
            move_contact_keys(&conn)?;
            unique_domain_names(&conn)?;
            per_tenant_users(&conn)?;
            let readers = (0..READERS)
                .map(|_| open_connection(&path, false))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(SqliteStore {
                writer: Writer::start(conn),
                readers: Arc::new(Mutex::new(readers)),
                path,
            })
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// Runs a read on a pooled connection in a blocking task.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let pool = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = pool.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&path, false)?,
            };
            let result = f(&conn);
            if let Ok(mut p) = pool.lock()
                && p.len() < READERS
            {
                p.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Most hashes per `find_suppressions` query (with the tenant: 500 parameters).
const FIND_CHUNK: usize = 499;

/// Runs `select` (ending in `… rcpt_hash IN`) for `hashes` in chunks, inside the
/// caller's snapshot: `args` bind `?1…?k`, the hashes the placeholders after them.
/// Chunks are padded (by repeating a hash) to one of a few sizes, so that a handful
/// of cached statements serve every batch.
/// The stored keys of `hashes` (distinct) in a tenant.
fn select_subject_keys(
    c: &Connection,
    tenant_id: &str,
    hashes: &[Vec<u8>],
) -> StoreResult<Vec<SubjectKey>> {
    rows_by_hashes(
        c,
        "SELECT rcpt_hash, key_wrapped, created_at FROM subject_keys WHERE tenant_id = ?1 AND rcpt_hash IN",
        &[&tenant_id],
        hashes,
        |r| {
            Ok(SubjectKey {
                rcpt_hash: r.get(0)?,
                key_wrapped: r.get(1)?,
                created_at: r.get(2)?,
            })
        },
    )
}

fn rows_by_hashes<T>(
    c: &Connection,
    select: &str,
    args: &[&dyn rusqlite::ToSql],
    hashes: &[Vec<u8>],
    row: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut rows = Vec::new();
    for chunk in hashes.chunks(FIND_CHUNK) {
        let size = chunk.len().next_power_of_two().min(FIND_CHUNK);
        let mut bound: Vec<&dyn rusqlite::ToSql> = args.to_vec();
        bound.extend(chunk.iter().map(|h| h as &dyn rusqlite::ToSql));
        let last = &chunk[chunk.len() - 1];
        bound.resize(size + args.len(), last as &dyn rusqlite::ToSql);
        let placeholders = (args.len() + 1..=args.len() + size)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = c
            .prepare_cached(&format!("{select} ({placeholders})"))
            .map_err(unavailable)?;
        let found = stmt
            .query_map(bound.as_slice(), &row)
            .map_err(unavailable)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(unavailable)?;
        rows.extend(found);
    }
    Ok(rows)
}

fn scopes_text(scopes: &[postwerk_core::model::Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds the statistics of `events` (tenant, time, dimensions, type) in the writer's
/// transaction.
fn add_stats<'a>(
    c: &Connection,
    events: impl Iterator<Item = (&'a str, i64, &'a StatDims, EventType)>,
) -> StoreResult<()> {
    let mut st = c
        .prepare_cached(crate::stats::UPSERT_STAT.sqlite())
        .map_err(unavailable)?;
    for a in crate::stats::aggregate(events) {
        let d = a.dims;
        st.execute(params![
            a.tenant_id,
            a.bucket,
            d.stream,
            d.pool,
            d.source,
            d.site,
            a.event,
            d.reason,
            a.count
        ])
        .map_err(unavailable)?;
    }
    Ok(())
}

/// Most rows in one multi-row `INSERT` (a power of two: see [`insert_rows`]).
const ROWS_PER_INSERT: usize = 512;

/// Inserts `rows` with multi-row `INSERT … VALUES` statements: `head` is
/// `INSERT INTO t (columns) VALUES`, `tuple` one row's placeholders (`(?, ?, …)`),
/// `bind` one row's values in the same order.
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
    head: &str,
    tuple: &str,
    rows: &'a [R],
    bind: impl Fn(&'a R) -> [&'a dyn rusqlite::ToSql; N],
) -> rusqlite::Result<()> {
    let mut rest = rows;
    while !rest.is_empty() {
        let size = ROWS_PER_INSERT.min(1 << rest.len().ilog2());
        let (chunk, tail) = rest.split_at(size);
        let sql = format!("{head} {}", vec![tuple; size].join(", "));
        c.prepare_cached(&sql)?
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
    insert_rows(
        c,
        "INSERT INTO events (tenant_id, message_id, recipient_id, rcpt_hash, type, at, detail_enc) VALUES",
        "(?, ?, ?, ?, ?, ?, ?)",
        events,
        |e| [&e.tenant_id, &e.message_id, &e.recipient_id, &e.rcpt_hash, &e.kind, &e.at, &e.detail_enc],
    )
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

fn accept_in(c: &Connection, batch: &AcceptBatch) -> StoreResult<()> {
    if let Some(i) = &batch.idempotency {
        c.prepare_cached(
            "INSERT INTO idempotency (tenant_id, key_hash, created_at, response_enc) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (tenant_id, key_hash) DO UPDATE SET created_at = excluded.created_at, \
             response_enc = excluded.response_enc WHERE idempotency.created_at < ?5",
        )
        .and_then(|mut s| s.execute(params![i.tenant_id, i.key_hash, i.created_at, i.response_enc, i.created_at - IDEMPOTENCY_TTL_MS]))
        .map_err(unavailable)
        .and_then(|n| if n == 0 { Err(StoreError::Conflict("idempotency key")) } else { Ok(()) })?;
    }
    let (lease_node, lease_until) = match &batch.lease {
        Some((n, u)) => (Some(n.as_str()), Some(*u)),
        None => (None, None),
    };
    let mut msg = c
        .prepare_cached(
            "INSERT INTO messages (id, tenant_id, stream, from_domain, created_at, expires_at, size, meta_enc, \
             content_enc, mail_from_enc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
            m.mail_from_enc
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
                None => (
                    RecipientStatus::Queued,
                    EventType::Accepted,
                    Some(m.created_at),
                    lease_node,
                    lease_until,
                ),
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
    insert_rows(
        c,
        "INSERT INTO recipients (id, message_id, tenant_id, rcpt_hash, address_enc, domain, status, attempts, \
         next_attempt_at, lease_node, lease_until, updated_at) VALUES",
        "(?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
        &rcpts,
        |r| {
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
            ]
        },
    )
    .map_err(|e| conflict_or(e, "recipient"))?;
    insert_events(c, &events)
}

fn get_message_in(c: &Connection, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>> {
    let head = c
        .prepare_cached(
            "SELECT stream, created_at, meta_enc FROM messages WHERE id = ?1 AND tenant_id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![id, tenant_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(unavailable)?;
    let Some((stream, created_at, meta_enc)) = head else {
        return Ok(None);
    };
    let recipients = c
        .prepare_cached(
            "SELECT id, rcpt_hash, address_enc, domain, status, attempts, next_attempt_at, updated_at \
             FROM recipients WHERE message_id = ?1 ORDER BY id",
        )
        .and_then(|mut s| {
            s.query_map([id], |r| {
                Ok((
                    RecipientRecord {
                        id: r.get(0)?,
                        rcpt_hash: r.get(1)?,
                        address_enc: r.get(2)?,
                        domain: r.get(3)?,
                        status: RecipientStatus::Queued,
                        attempts: r.get(5)?,
                        next_attempt_at: r.get(6)?,
                        updated_at: r.get(7)?,
                    },
                    r.get::<_, String>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?
        .into_iter()
        .map(|(mut rec, status)| {
            rec.status = status.parse().map_err(|_| corrupt("recipient status"))?;
            Ok(rec)
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let events = c
        .prepare_cached(&format!(
            "SELECT {EVENT_COLS} FROM events WHERE message_id = ?1 ORDER BY seq"
        ))
        .and_then(|mut s| {
            s.query_map([id], |r| event_row(r))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    Ok(Some(MessageRecord {
        id: id.to_string(),
        tenant_id: tenant_id.to_string(),
        stream,
        created_at,
        meta_enc,
        recipients,
        events,
    }))
}
