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

use postwerk_core::model::EventType;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use crate::model::*;
use crate::prelude::*;
use crate::{StoreError, StoreResult};
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

/// The writer connection's page cache, in KiB.
const WRITER_CACHE_KIB: u32 = 128 << 10;
/// Each reader connection's page cache, in KiB.
const READER_CACHE_KIB: u32 = 8 << 10;

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
    // Room for the multi-row insert shapes (see `queue::insert_rows`) besides the rest.
    conn.set_prepared_statement_cache_capacity(128);
    // Pages kept in memory (negative: KiB): the writer's cache spares big writes (an
    // import of a million contacts) most of their page reads; readers' caches stay
    // small, the OS caches the file for them.
    let cache_kib = if write {
        WRITER_CACHE_KIB
    } else {
        READER_CACHE_KIB
    };
    conn.execute_batch(&format!("PRAGMA cache_size = -{cache_kib};"))
        .map_err(unavailable)?;
    if write {
        // Checkpoint the WAL every 40 MB rather than every 4 MB: a page changed many
        // times between checkpoints is copied back once.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 10000;")
            .map_err(unavailable)?;
    }
    Ok(conn)
}

/// Whether `table` has `column` (a migration adds it to a database made before).
fn has_column(conn: &Connection, table: &str, column: &str) -> StoreResult<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(unavailable)
}

/// Version 5 for a database made by an older version: `events.stream`, and the
/// webhook trigger renewed to read it (`schema.sql` then recreates it).
fn add_event_stream_column(conn: &Connection) -> StoreResult<()> {
    if !has_column(conn, "events", "stream")? {
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
    if has_column(conn, "contacts", "key_wrapped")? {
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
    if !has_column(conn, "users", "sessions_valid_after")? {
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
    if !has_column(conn, "tenants", "parent_id")? {
        conn.execute_batch("ALTER TABLE tenants ADD COLUMN parent_id TEXT;")
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Version 9 for a database made by an earlier build of it: tenant cancellation.
fn add_tenant_cancelled_column(conn: &Connection) -> StoreResult<()> {
    if !has_column(conn, "tenants", "cancelled_at")? {
        conn.execute_batch("ALTER TABLE tenants ADD COLUMN cancelled_at INTEGER;")
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Version 11 for a database made by an older version: contacts' attribute tags and
/// profile deletion time, users' list limits.
fn add_contact_audience_columns(conn: &Connection) -> StoreResult<()> {
    if !has_column(conn, "contacts", "attr_tags")? {
        conn.execute_batch(
            "ALTER TABLE contacts ADD COLUMN attr_tags TEXT NOT NULL DEFAULT ''; \
             ALTER TABLE contacts ADD COLUMN deleted_at INTEGER;",
        )
        .map_err(unavailable)?;
    }
    if !has_column(conn, "users", "lists")? {
        conn.execute_batch("ALTER TABLE users ADD COLUMN lists TEXT;")
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Version 13: messages' broadcast and recipients' priority, and their indexes (made
/// here, after the columns, for a database made by an older version).
fn add_message_broadcast_column(conn: &Connection) -> StoreResult<()> {
    if !has_column(conn, "messages", "broadcast_id")? {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN broadcast_id TEXT;")
            .map_err(unavailable)?;
    }
    if !has_column(conn, "recipients", "priority")? {
        conn.execute_batch(
            "ALTER TABLE recipients ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;",
        )
        .map_err(unavailable)?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS messages_broadcast ON messages (tenant_id, broadcast_id, id) \
         WHERE broadcast_id IS NOT NULL; \
         CREATE INDEX IF NOT EXISTS recipients_urgent_due ON recipients (next_attempt_at) \
         WHERE next_attempt_at IS NOT NULL AND priority < 5;",
    )
    .map_err(unavailable)
}

/// Version 6 for a database made by an older version: per-key address allowlists and
/// rate limits.
fn add_api_key_limit_columns(conn: &Connection) -> StoreResult<()> {
    if !has_column(conn, "api_keys", "allowed_ips")? {
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
            add_contact_audience_columns(&conn)?;
            add_message_broadcast_column(&conn)?;
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
