//! The embedded SQLite backend: one WAL-mode file, a group-committing writer thread
//! ([`writer`]) and a small pool of reader connections used from blocking tasks.

pub(crate) mod backup;
mod streams;
mod tenants;
mod users;
mod webhooks;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use postwerk_core::model::{
    ConsentStatus, DsarKind, DsarStatus, EventType, RecipientStatus, SuppressionReason,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use crate::model::*;
use crate::{BACKLOG_SQL, IDEMPOTENCY_TTL_MS, Store, StoreError, StoreResult, WEBHOOK_BACKLOG_SQL};
use writer::{Durability, Writer};

const READERS: usize = 4;

/// The SQLite store.
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: std::path::PathBuf,
}

pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
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

/// The columns [`tenant_row`] reads.
const TENANT_COLS: &str = "id, name, wrapped_key, created_at, parent_id, cancelled_at";

fn tenant_row(r: &Row<'_>) -> rusqlite::Result<TenantRecord> {
    Ok(TenantRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        wrapped_key: r.get(2)?,
        created_at: r.get(3)?,
        parent_id: r.get(4)?,
        cancelled_at: r.get(5)?,
    })
}

fn api_key_row(r: &Row<'_>) -> rusqlite::Result<(ApiKeyRecord, String)> {
    Ok((
        ApiKeyRecord {
            id: r.get(0)?,
            tenant_id: r.get(1)?,
            name: r.get(2)?,
            secret_hash: r.get(3)?,
            scopes: Vec::new(),
            created_at: r.get(5)?,
            expires_at: r.get(6)?,
            revoked_at: r.get(7)?,
            last_used_at: r.get(8)?,
            allowed_ips: crate::model::split_list(r.get::<_, Option<String>>(9)?.as_deref()),
            rate_limit: r.get(10)?,
        },
        r.get(4)?,
    ))
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<(EventRecord, String)> {
    Ok((
        EventRecord {
            seq: r.get(0)?,
            tenant_id: r.get(1)?,
            message_id: r.get(2)?,
            recipient_id: r.get(3)?,
            rcpt_hash: r.get(4)?,
            event_type: EventType::Accepted,
            at: r.get(6)?,
            detail_enc: r.get(7)?,
            stream: r.get(8)?,
        },
        r.get(5)?,
    ))
}

fn typed_event((mut e, kind): (EventRecord, String)) -> StoreResult<EventRecord> {
    e.event_type = kind.parse().map_err(|_| corrupt("event type"))?;
    Ok(e)
}

const EVENT_COLS: &str =
    "seq, tenant_id, message_id, recipient_id, rcpt_hash, type, at, detail_enc, stream";

fn load_domain_keys(conn: &Connection, domain: &mut DomainRecord) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, selector, algorithm, private_key_enc, public_key, created_at FROM dkim_keys \
             WHERE tenant_id = ?1 AND domain = ?2 ORDER BY created_at, id",
        )
        .map_err(unavailable)?;
    domain.keys = stmt
        .query_map(params![domain.tenant_id, domain.name], |r| {
            Ok(DkimKeyRecord {
                id: r.get(0)?,
                selector: r.get(1)?,
                algorithm: r.get(2)?,
                private_key_enc: r.get(3)?,
                public_key: r.get(4)?,
                created_at: r.get(5)?,
            })
        })
        .map_err(unavailable)?
        .collect::<rusqlite::Result<_>>()
        .map_err(unavailable)?;
    Ok(())
}

impl Store for SqliteStore {
    async fn insert_tenant(&self, t: TenantRecord) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute(
                    &format!("INSERT INTO tenants ({TENANT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                    params![
                        t.id,
                        t.name,
                        t.wrapped_key,
                        t.created_at,
                        t.parent_id,
                        t.cancelled_at
                    ],
                )
                .map_err(|e| conflict_or(e, "tenant"))?;
                Ok(())
            })
            .await
    }

    async fn get_tenant(&self, id: &str) -> StoreResult<Option<TenantRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id], tenant_row).optional())
                .map_err(unavailable)
        })
        .await
    }

    async fn list_subaccounts(&self, parent_id: &str) -> StoreResult<Vec<TenantRecord>> {
        let parent_id = parent_id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TENANT_COLS} FROM tenants WHERE parent_id = ?1 ORDER BY created_at, id"
            ))
            .and_then(|mut s| s.query_map([parent_id], tenant_row)?.collect())
            .map_err(unavailable)
        })
        .await
    }

    async fn get_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>> {
        let name = name.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TENANT_COLS} FROM tenants WHERE name = ?1"
            ))
            .and_then(|mut s| s.query_row([name], tenant_row).optional())
            .map_err(unavailable)
        })
        .await
    }

    async fn list_tenants(&self, cancelled_before: Option<i64>) -> StoreResult<Vec<TenantRecord>> {
        self.list_tenants_r(cancelled_before).await
    }

    async fn set_tenant_cancelled(
        &self,
        tenant_id: &str,
        cancelled_at: Option<i64>,
        at: i64,
    ) -> StoreResult<bool> {
        self.set_tenant_cancelled_w(tenant_id.to_string(), cancelled_at, at)
            .await
    }

    async fn delete_tenant_data(&self, tenant_id: &str, limit: usize) -> StoreResult<u64> {
        self.delete_tenant_data_w(tenant_id.to_string(), limit)
            .await
    }

    async fn insert_api_key(&self, k: ApiKeyRecord) -> StoreResult<()> {
        let scopes = scopes_text(&k.scopes);
        self.writer.write(Durability::Fsync, move |c| {
                c.execute(
                    "INSERT INTO api_keys (id, tenant_id, name, secret_hash, scopes, created_at, expires_at, \
                     allowed_ips, rate_limit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        k.id,
                        k.tenant_id,
                        k.name,
                        k.secret_hash,
                        scopes,
                        k.created_at,
                        k.expires_at,
                        crate::model::join_list(&k.allowed_ips),
                        k.rate_limit
                    ],
                )
                .map_err(|e| conflict_or(e, "api key"))?;
                Ok(())
            })
            .await
    }

    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let id = id.to_string();
        let row = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT id, tenant_id, name, secret_hash, scopes, created_at, expires_at, revoked_at, \
                     last_used_at, allowed_ips, rate_limit FROM api_keys WHERE id = ?1",
                )
                .and_then(|mut s| s.query_row([id], api_key_row).optional())
                .map_err(unavailable)
            })
            .await?;
        row.map(|(mut k, scopes)| {
            k.scopes =
                postwerk_core::model::parse_scopes(&scopes).map_err(|_| corrupt("scopes"))?;
            Ok(k)
        })
        .transpose()
    }

    async fn touch_api_key(&self, id: &str, at: i64) -> StoreResult<()> {
        let id = id.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                c.execute(
                    "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
                    params![id, at],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    async fn list_api_keys(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyRecord>> {
        let tenant_id = tenant_id.to_string();
        let rows = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT id, tenant_id, name, secret_hash, scopes, created_at, expires_at, revoked_at, \
                     last_used_at, allowed_ips, rate_limit FROM api_keys WHERE tenant_id = ?1 ORDER BY created_at, id",
                )
                .and_then(|mut s| s.query_map([tenant_id], api_key_row)?.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(unavailable)
            })
            .await?;
        rows.into_iter()
            .map(|(mut k, scopes)| {
                k.scopes =
                    postwerk_core::model::parse_scopes(&scopes).map_err(|_| corrupt("scopes"))?;
                Ok(k)
            })
            .collect()
    }

    async fn end_api_key(
        &self,
        tenant_id: &str,
        id: &str,
        at: i64,
        revoke: bool,
    ) -> StoreResult<bool> {
        let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
        self.writer
            .write(Durability::Fsync, move |c| {
                let sql = if revoke {
                    "UPDATE api_keys SET revoked_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL"
                } else {
                    "UPDATE api_keys SET expires_at = MIN(COALESCE(expires_at, ?3), ?3) \
                     WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL"
                };
                c.prepare_cached(sql)
                    .and_then(|mut st| st.execute(params![tenant_id, id, at]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }

    async fn insert_domain(&self, d: DomainRecord) -> StoreResult<()> {
        self.writer.write(Durability::Fsync, move |c| {
                c.execute(
                    "INSERT INTO domains (tenant_id, name, created_at) VALUES (?1, ?2, ?3)",
                    params![d.tenant_id, d.name, d.created_at],
                )
                .map_err(|e| conflict_or(e, "domain"))?;
                for k in &d.keys {
                    c.execute(
                        "INSERT INTO dkim_keys (id, tenant_id, domain, selector, algorithm, private_key_enc, \
                         public_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            k.id, d.tenant_id, d.name, k.selector, k.algorithm, k.private_key_enc, k.public_key,
                            k.created_at
                        ],
                    )
                    .map_err(|e| conflict_or(e, "dkim key"))?;
                }
                Ok(())
            })
            .await
    }

    async fn domain_owners(&self, name: &str) -> StoreResult<Vec<String>> {
        let name = name.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT tenant_id FROM domains WHERE name = ?1 ORDER BY created_at, tenant_id",
            )
            .and_then(|mut s| s.query_map([name], |r| r.get(0))?.collect())
            .map_err(unavailable)
        })
        .await
    }

    async fn delete_domain(&self, tenant_id: &str, name: &str) -> StoreResult<bool> {
        let (tenant_id, name) = (tenant_id.to_string(), name.to_string());
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute(
                    "DELETE FROM dkim_keys WHERE tenant_id = ?1 AND domain = ?2",
                    params![tenant_id, name],
                )
                .map_err(unavailable)?;
                let n = c
                    .execute(
                        "DELETE FROM domains WHERE tenant_id = ?1 AND name = ?2",
                        params![tenant_id, name],
                    )
                    .map_err(unavailable)?;
                Ok(n > 0)
            })
            .await
    }

    async fn get_domain(&self, tenant_id: &str, name: &str) -> StoreResult<Option<DomainRecord>> {
        let (tenant_id, name) = (tenant_id.to_string(), name.to_string());
        self.read(move |c| {
            let found = c
                .prepare_cached("SELECT created_at FROM domains WHERE tenant_id = ?1 AND name = ?2")
                .and_then(|mut s| {
                    s.query_row(params![tenant_id, name], |r| r.get::<_, i64>(0))
                        .optional()
                })
                .map_err(unavailable)?;
            let Some(created_at) = found else {
                return Ok(None);
            };
            let mut d = DomainRecord {
                tenant_id,
                name,
                created_at,
                keys: Vec::new(),
            };
            load_domain_keys(c, &mut d)?;
            Ok(Some(d))
        })
        .await
    }

    async fn list_domains(&self, tenant_id: &str) -> StoreResult<Vec<DomainRecord>> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            let mut domains: Vec<DomainRecord> = c
                .prepare_cached(
                    "SELECT name, created_at FROM domains WHERE tenant_id = ?1 ORDER BY name",
                )
                .and_then(|mut s| {
                    s.query_map([&tenant_id], |r| {
                        Ok(DomainRecord {
                            tenant_id: tenant_id.clone(),
                            name: r.get(0)?,
                            created_at: r.get(1)?,
                            keys: Vec::new(),
                        })
                    })?
                    .collect()
                })
                .map_err(unavailable)?;
            for d in &mut domains {
                load_domain_keys(c, d)?;
            }
            Ok(domains)
        })
        .await
    }

    async fn accept(&self, batch: AcceptBatch) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| accept_in(c, &batch))
            .await
    }

    async fn get_idempotency(
        &self,
        tenant_id: &str,
        key_hash: &[u8],
        since: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let (tenant_id, key_hash) = (tenant_id.to_string(), key_hash.to_vec());
        self.read(move |c| {
            c.prepare_cached(
                "SELECT created_at, response_enc FROM idempotency \
                 WHERE tenant_id = ?1 AND key_hash = ?2 AND created_at >= ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant_id, key_hash, since], |r| {
                    Ok(IdempotencyRecord {
                        tenant_id: tenant_id.clone(),
                        key_hash: key_hash.clone(),
                        created_at: r.get(0)?,
                        response_enc: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn get_message(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>> {
        let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
        self.read(move |c| get_message_in(c, &tenant_id, &id)).await
    }

    async fn list_messages(&self, f: MessageFilter) -> StoreResult<Vec<MessageRecord>> {
        self.read(move |c| {
            let mut sql = "SELECT id FROM messages WHERE tenant_id = ?1".to_string();
            let mut args: Vec<rusqlite::types::Value> = vec![f.tenant_id.clone().into()];
            // `clause` names the new parameter `{}`.
            let mut push = |clause: &str, v: rusqlite::types::Value| {
                args.push(v);
                let param = format!("?{}", args.len());
                sql.push_str(&format!(" AND {}", clause.replace("{}", &param)));
            };
            if let Some(s) = &f.stream {
                push("stream = {}", s.clone().into());
            }
            if let Some(t) = &f.tag_hash {
                push(
                    "id IN (SELECT message_id FROM message_tags WHERE tenant_id = ?1 AND tag_hash = {})",
                    t.clone().into(),
                );
            }
            if let Some(h) = &f.rcpt_hash {
                push(
                    "id IN (SELECT message_id FROM recipients WHERE tenant_id = ?1 AND rcpt_hash = {})",
                    h.clone().into(),
                );
            }
            if let Some(s) = f.since {
                push("created_at >= {}", s.into());
            }
            if let Some(u) = f.until {
                push("created_at < {}", u.into());
            }
            if let Some(b) = &f.before_id {
                push("id < {}", b.clone().into());
            }
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", f.limit.max(1)));
            let ids = c
                .prepare(&sql)
                .and_then(|mut st| {
                    st.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)?;
            ids.iter()
                .filter_map(|id| get_message_in(c, &f.tenant_id, id).transpose())
                .collect()
        })
        .await
    }

    async fn list_events(&self, f: EventFilter) -> StoreResult<Vec<EventRecord>> {
        self.read(move |c| {
            let mut sql = format!("SELECT {EVENT_COLS} FROM events WHERE tenant_id = ?1");
            let mut args: Vec<rusqlite::types::Value> = vec![f.tenant_id.clone().into()];
            // `clause` names the new parameter `{}`.
            let mut push = |clause: &str, v: rusqlite::types::Value| {
                args.push(v);
                let param = format!("?{}", args.len());
                sql.push_str(&format!(" AND {}", clause.replace("{}", &param)));
            };
            if let Some(m) = &f.message_id {
                push("message_id = {}", m.clone().into());
            }
            if let Some(h) = &f.rcpt_hash {
                push("rcpt_hash = {}", h.clone().into());
            }
            if let Some(t) = f.event_type {
                push("type = {}", t.as_str().to_string().into());
            }
            if let Some(s) = f.since {
                push("at >= {}", s.into());
            }
            if let Some(u) = f.until {
                push("at < {}", u.into());
            }
            if let Some(s) = &f.stream {
                push(
                    "(stream = {} OR message_id IN (SELECT id FROM messages WHERE tenant_id = ?1 AND stream = {}))",
                    s.clone().into(),
                );
            }
            if let Some(t) = &f.tag_hash {
                push(
                    "message_id IN (SELECT message_id FROM message_tags WHERE tenant_id = ?1 AND tag_hash = {})",
                    t.clone().into(),
                );
            }
            if let Some(a) = f.after_seq {
                push("seq > {}", a.into());
            }
            sql.push_str(&format!(" ORDER BY seq LIMIT {}", f.limit.max(1)));
            let mut stmt = c.prepare(&sql).map_err(unavailable)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), event_row)
                .map_err(unavailable)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)?;
            rows.into_iter().map(typed_event).collect()
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
        self.writer.write(Durability::Process, move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "UPDATE recipients SET lease_node = ?1, lease_until = ?2 WHERE id IN (\
                           SELECT id FROM recipients WHERE next_attempt_at <= ?3 \
                           AND (lease_until IS NULL OR lease_until < ?3) ORDER BY next_attempt_at LIMIT ?4) \
                         RETURNING id, message_id, tenant_id, rcpt_hash, address_enc, domain, attempts, \
                           (SELECT expires_at FROM messages m WHERE m.id = recipients.message_id)",
                    )
                    .map_err(unavailable)?;
                stmt.query_map(params![node, lease_until, now, limit as i64], |r| {
                    Ok(DueRecipient {
                        id: r.get(0)?,
                        message_id: r.get(1)?,
                        tenant_id: r.get(2)?,
                        rcpt_hash: r.get(3)?,
                        address_enc: r.get(4)?,
                        domain: r.get(5)?,
                        attempts: r.get(6)?,
                        expires_at: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                    })
                })
                .map_err(unavailable)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)
            })
            .await
    }

    async fn renew_leases(&self, node: &str, lease_until: i64) -> StoreResult<()> {
        let node = node.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                c.execute(
                    "UPDATE recipients SET lease_until = ?2 WHERE lease_node = ?1",
                    params![node, lease_until],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        let node = node.to_string();
        self.writer.write(Durability::Process, move |c| {
                c.execute("UPDATE recipients SET lease_node = NULL, lease_until = NULL WHERE lease_node = ?1", [node])
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
                    .prepare_cached(
                        "UPDATE recipients SET lease_node = NULL, lease_until = NULL \
                         WHERE id = ?1 AND lease_node = ?2",
                    )
                    .map_err(unavailable)?;
                ids.iter().try_fold(0u64, |n, id| {
                    st.execute(params![id, node])
                        .map(|k| n + k as u64)
                        .map_err(unavailable)
                })
            })
            .await
    }

    async fn load_content(&self, message_id: &str) -> StoreResult<Option<MessageContent>> {
        let id = message_id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT tenant_id, stream, from_domain, content_enc, mail_from_enc FROM messages WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(MessageContent {
                        tenant_id: r.get(0)?,
                        stream: r.get(1)?,
                        from_domain: r.get(2)?,
                        content_enc: r.get(3)?,
                        mail_from_enc: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn record_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()> {
        self.writer.write(Durability::Process, move |c| {
                let mut upd = c
                    .prepare_cached(&format!(
                        "UPDATE recipients AS r SET status = ?2, next_attempt_at = ?3, attempts = attempts + 1, \
                         lease_node = NULL, lease_until = NULL, updated_at = ?4 WHERE id = ?1 AND {}",
                        crate::queue_sql::outcome_applies("r", "?2")
                    ))
                    .map_err(unavailable)?;
                for u in &updates {
                    upd.execute(params![u.recipient_id, u.status.as_str(), u.next_attempt_at, u.at])
                        .map_err(unavailable)?;
                }
                insert_events(c, &updates.iter().map(EventRow::from).collect::<Vec<_>>())?;
                add_stats(c, updates.iter().map(|u| (u.tenant_id.as_str(), u.at, &u.dims, u.event)))
            })
            .await
    }

    async fn find_recipient(&self, recipient_id: &str) -> StoreResult<Option<RecipientRef>> {
        let id = recipient_id.to_string();
        self.read(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT r.message_id, r.tenant_id, m.stream, r.rcpt_hash, r.address_enc, r.status \
                     FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([&id], |r| {
                        Ok((
                            RecipientRef {
                                id: id.clone(),
                                message_id: r.get(0)?,
                                tenant_id: r.get(1)?,
                                stream: r.get(2)?,
                                rcpt_hash: r.get(3)?,
                                address_enc: r.get(4)?,
                                status: RecipientStatus::Queued,
                            },
                            r.get::<_, String>(5)?,
                        ))
                    })
                    .optional()
                })
                .map_err(unavailable)?;
            row.map(|(mut rec, status)| {
                rec.status = status.parse().map_err(|_| corrupt("recipient status"))?;
                Ok(rec)
            })
            .transpose()
        })
        .await
    }

    async fn record_reports(&self, updates: Vec<ReportUpdate>) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| {
                for u in &updates {
                    if let Some(status) = u.status_if_delivered {
                        c.prepare_cached(
                            "UPDATE recipients SET status = ?2, updated_at = ?3 \
                         WHERE id = ?1 AND status = 'delivered'",
                        )
                        .and_then(|mut st| {
                            st.execute(params![u.recipient_id, status.as_str(), u.at])
                        })
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

    async fn upsert_contact(&self, c: ContactRecord) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |tx| {
                let existed = tx
                    .prepare_cached("SELECT 1 FROM contacts WHERE tenant_id = ?1 AND rcpt_hash = ?2")
                    .and_then(|mut st| st.exists(params![c.tenant_id, c.rcpt_hash]))
                    .map_err(unavailable)?;
                tx.prepare_cached(
                    "INSERT INTO contacts (tenant_id, rcpt_hash, data_enc, restricted_at, created_at, \
                     updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant_id, rcpt_hash) DO UPDATE \
                     SET data_enc = excluded.data_enc, updated_at = excluded.updated_at",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        c.tenant_id,
                        c.rcpt_hash,
                        c.data_enc,
                        c.restricted_at,
                        c.created_at,
                        c.updated_at
                    ])
                })
                .map_err(unavailable)?;
                Ok(!existed)
            })
            .await
    }

    async fn get_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> StoreResult<Option<ContactRecord>> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        self.read(move |c| {
            c.prepare_cached(
                "SELECT data_enc, restricted_at, created_at, updated_at FROM contacts \
                 WHERE tenant_id = ?1 AND rcpt_hash = ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![tenant_id, rcpt_hash], |r| {
                    Ok(ContactRecord {
                        tenant_id: tenant_id.clone(),
                        rcpt_hash: rcpt_hash.clone(),
                        data_enc: r.get(0)?,
                        restricted_at: r.get(1)?,
                        created_at: r.get(2)?,
                        updated_at: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn restrict_contact(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        restricted_at: Option<i64>,
    ) -> StoreResult<bool> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached("UPDATE contacts SET restricted_at = ?3 WHERE tenant_id = ?1 AND rcpt_hash = ?2")
                    .and_then(|mut st| st.execute(params![tenant_id, rcpt_hash, restricted_at]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }

    async fn add_consent(&self, k: ConsentRecord) -> StoreResult<i64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "INSERT INTO consents (tenant_id, rcpt_hash, purpose, status, at, record_enc) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        k.tenant_id,
                        k.rcpt_hash,
                        k.purpose,
                        k.status.as_str(),
                        k.at,
                        k.record_enc
                    ])
                })
                .map_err(unavailable)?;
                Ok(c.last_insert_rowid())
            })
            .await
    }

    async fn list_consents(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
    ) -> StoreResult<Vec<ConsentRecord>> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        self.read(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT seq, purpose, status, at, record_enc FROM consents \
                     WHERE tenant_id = ?1 AND rcpt_hash = ?2 ORDER BY seq",
                )
                .and_then(|mut st| {
                    st.query_map(params![tenant_id, rcpt_hash], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get(3)?,
                            r.get(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<(i64, String, String, i64, Vec<u8>)>>>()
                })
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(seq, purpose, status, at, record_enc)| {
                    Ok(ConsentRecord {
                        seq,
                        tenant_id: tenant_id.clone(),
                        rcpt_hash: rcpt_hash.clone(),
                        purpose,
                        status: status
                            .parse::<ConsentStatus>()
                            .map_err(|_| corrupt("consent status"))?,
                        at,
                        record_enc,
                    })
                })
                .collect()
        })
        .await
    }

    async fn screen_subjects(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
        purpose: Option<String>,
    ) -> StoreResult<ConsentScreen> {
        let hashes = distinct_hashes(hashes);
        if hashes.is_empty() {
            return Ok(ConsentScreen::default());
        }
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(unavailable)?;
            let restricted = rows_by_hashes(
                &tx,
                "SELECT rcpt_hash FROM contacts WHERE tenant_id = ?1 AND restricted_at IS NOT NULL \
                 AND rcpt_hash IN",
                &[&tenant_id],
                &hashes,
                |r| r.get::<_, Vec<u8>>(0),
            )?;
            let consented = match &purpose {
                None => Vec::new(),
                Some(purpose) => {
                    let records = rows_by_hashes(
                        &tx,
                        "SELECT seq, rcpt_hash, status FROM consents WHERE tenant_id = ?1 AND purpose = ?2 \
                         AND rcpt_hash IN",
                        &[&tenant_id, purpose],
                        &hashes,
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?)),
                    )?;
                    latest_active(records)
                }
            };
            let mut suppressions = rows_by_hashes(
                &tx,
                &format!("SELECT {SUPPRESSION_COLS} FROM suppressions WHERE tenant_id = ?1 AND rcpt_hash IN"),
                &[&tenant_id],
                &hashes,
                suppression_row,
            )?
            .into_iter()
            .map(typed_suppression)
            .collect::<StoreResult<Vec<_>>>()?;
            suppressions.sort_unstable_by_key(|s| s.seq);
            Ok(ConsentScreen {
                suppressions,
                restricted,
                consented,
            })
        })
        .await
    }

    async fn subject_keys(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<Vec<SubjectKey>> {
        let hashes = distinct_hashes(hashes);
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let tenant_id = tenant_id.to_string();
        self.read(move |c| select_subject_keys(c, &tenant_id, &hashes))
            .await
    }

    async fn ensure_subject_keys(
        &self,
        tenant_id: &str,
        candidates: Vec<SubjectKey>,
    ) -> StoreResult<Vec<SubjectKey>> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let tenant_id = tenant_id.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                let mut insert = c
                    .prepare_cached(
                        "INSERT OR IGNORE INTO subject_keys (tenant_id, rcpt_hash, key_wrapped, created_at) \
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(unavailable)?;
                // The candidates stored now are their people's keys; only those that
                // lost to a stored key are read back.
                let (mut stored, mut lost) = (Vec::with_capacity(candidates.len()), Vec::new());
                for k in candidates {
                    let inserted = insert
                        .execute(params![tenant_id, k.rcpt_hash, k.key_wrapped, k.created_at])
                        .map_err(unavailable)?;
                    if inserted == 1 {
                        stored.push(k);
                    } else {
                        lost.push(k.rcpt_hash);
                    }
                }
                let won: std::collections::HashSet<&[u8]> =
                    stored.iter().map(|k| k.rcpt_hash.as_slice()).collect();
                lost.retain(|h| !won.contains(h.as_slice()));
                stored.extend(select_subject_keys(c, &tenant_id, &distinct_hashes(lost))?);
                Ok(stored)
            })
            .await
    }

    async fn erase_subject(&self, tenant_id: &str, rcpt_hash: &[u8]) -> StoreResult<Erasure> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        self.writer
            .write(Durability::Fsync, move |c| {
                let t = params![tenant_id, rcpt_hash];
                let run = |sql: &str| c.prepare_cached(sql).and_then(|mut st| st.execute(t)).map_err(unavailable);
                let messages = run(
                    "UPDATE messages SET content_enc = NULL, mail_from_enc = NULL, meta_enc = X'' \
                     WHERE id IN (SELECT message_id FROM recipients WHERE tenant_id = ?1 AND rcpt_hash = ?2)",
                )?;
                let erasure = Erasure {
                    keys: run("DELETE FROM subject_keys WHERE tenant_id = ?1 AND rcpt_hash = ?2")? as u64,
                    contacts: run("DELETE FROM contacts WHERE tenant_id = ?1 AND rcpt_hash = ?2")? as u64,
                    consents: run("DELETE FROM consents WHERE tenant_id = ?1 AND rcpt_hash = ?2")? as u64,
                    events: run("DELETE FROM events WHERE tenant_id = ?1 AND rcpt_hash = ?2")? as u64,
                    suppressions: run(
                        "UPDATE suppressions SET address_enc = NULL WHERE tenant_id = ?1 AND rcpt_hash = ?2 \
                         AND address_enc IS NOT NULL",
                    )? as u64,
                    recipients: run(
                        "UPDATE recipients SET address_enc = X'', rcpt_hash = X'', next_attempt_at = NULL, \
                         lease_node = NULL, lease_until = NULL, \
                         status = CASE WHEN status IN ('queued', 'deferred') THEN 'suppressed' ELSE status END \
                         WHERE tenant_id = ?1 AND rcpt_hash = ?2",
                    )? as u64,
                    messages: messages as u64,
                    requests: run(
                        "UPDATE dsar_requests SET rcpt_hash = X'', detail_enc = X'' \
                         WHERE tenant_id = ?1 AND rcpt_hash = ?2",
                    )? as u64,
                    webhook_deliveries: webhooks::delete_deliveries(
                        c,
                        "tenant_id = ?1 AND rcpt_hash = ?2",
                        t,
                    )?,
                };
                Ok(erasure)
            })
            .await
    }

    async fn stop_subject_mail(&self, stop: MailStop) -> StoreResult<u64> {
        self.stop_subject_mail_w(stop).await
    }

    async fn unkeyed_subjects(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        self.read(|c| {
            c.prepare(crate::UNKEYED_SUBJECTS_SQL)
                .and_then(|mut st| {
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)
        })
        .await
    }

    async fn add_request(&self, r: DsarRecord) -> StoreResult<i64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "INSERT INTO dsar_requests (tenant_id, kind, rcpt_hash, received_at, due_at, status, closed_at, \
                     detail_enc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        r.tenant_id,
                        r.kind.as_str(),
                        r.rcpt_hash,
                        r.received_at,
                        r.due_at,
                        r.status.as_str(),
                        r.closed_at,
                        r.detail_enc
                    ])
                })
                .map_err(unavailable)?;
                Ok(c.last_insert_rowid())
            })
            .await
    }

    async fn close_request(
        &self,
        tenant_id: &str,
        seq: i64,
        status: DsarStatus,
        at: i64,
    ) -> StoreResult<bool> {
        let tenant_id = tenant_id.to_string();
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "UPDATE dsar_requests SET status = ?3, closed_at = ?4 \
                     WHERE tenant_id = ?1 AND seq = ?2 AND status = 'open'",
                )
                .and_then(|mut st| st.execute(params![tenant_id, seq, status.as_str(), at]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn list_requests(
        &self,
        tenant_id: &str,
        open_due_before: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<DsarRecord>> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT seq, kind, rcpt_hash, received_at, due_at, status, closed_at, detail_enc FROM dsar_requests \
                     WHERE tenant_id = ?1 AND seq > ?2 AND (?3 IS NULL OR (status = 'open' AND due_at < ?3)) \
                     ORDER BY seq LIMIT ?4",
                )
                .and_then(|mut st| {
                    st.query_map(
                        params![tenant_id, after_seq.unwrap_or(0), open_due_before, limit.max(1) as i64],
                        |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, Vec<u8>>(2)?,
                                r.get::<_, i64>(3)?,
                                r.get::<_, i64>(4)?,
                                r.get::<_, String>(5)?,
                                r.get::<_, Option<i64>>(6)?,
                                r.get::<_, Vec<u8>>(7)?,
                            ))
                        },
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(seq, kind, rcpt_hash, received_at, due_at, status, closed_at, detail_enc)| {
                    Ok(DsarRecord {
                        seq,
                        tenant_id: tenant_id.clone(),
                        kind: kind.parse::<DsarKind>().map_err(|_| corrupt("request kind"))?,
                        rcpt_hash,
                        received_at,
                        due_at,
                        status: status.parse::<DsarStatus>().map_err(|_| corrupt("request status"))?,
                        closed_at,
                        detail_enc,
                    })
                })
                .collect()
        })
        .await
    }

    async fn add_incident(&self, r: IncidentRecord) -> StoreResult<i64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "INSERT INTO incidents (tenant_id, detected_at, authority_due_at, customers_due_at, \
                     authority_notified_at, customers_notified_at, closed_at, detail_enc) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        r.tenant_id,
                        r.detected_at,
                        r.authority_due_at,
                        r.customers_due_at,
                        r.authority_notified_at,
                        r.customers_notified_at,
                        r.closed_at,
                        r.detail_enc
                    ])
                })
                .map_err(unavailable)?;
                Ok(c.last_insert_rowid())
            })
            .await
    }

    async fn step_incident(
        &self,
        tenant_id: &str,
        seq: i64,
        step: IncidentStep,
        at: i64,
    ) -> StoreResult<bool> {
        let tenant_id = tenant_id.to_string();
        self.writer
            .write(Durability::Fsync, move |c| {
                let column = step.column();
                c.prepare_cached(&format!(
                    "UPDATE incidents SET {column} = ?3 WHERE tenant_id = ?1 AND seq = ?2 AND {column} IS NULL"
                ))
                .and_then(|mut st| st.execute(params![tenant_id, seq, at]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn list_incidents(
        &self,
        tenant_id: &str,
        overdue_at: Option<i64>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<IncidentRecord>> {
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT seq, detected_at, authority_due_at, customers_due_at, authority_notified_at, \
                 customers_notified_at, closed_at, detail_enc FROM incidents \
                 WHERE tenant_id = ?1 AND seq > ?2 AND (?3 IS NULL OR (authority_notified_at IS NULL AND authority_due_at < ?3) OR (customers_notified_at IS NULL AND customers_due_at < ?3)) ORDER BY seq LIMIT ?4",
            )
            .and_then(|mut st| {
                st.query_map(
                    params![tenant_id, after_seq.unwrap_or(0), overdue_at, limit.max(1) as i64],
                    |r| {
                        Ok(IncidentRecord {
                            seq: r.get(0)?,
                            tenant_id: tenant_id.clone(),
                            detected_at: r.get(1)?,
                            authority_due_at: r.get(2)?,
                            customers_due_at: r.get(3)?,
                            authority_notified_at: r.get(4)?,
                            customers_notified_at: r.get(5)?,
                            closed_at: r.get(6)?,
                            detail_enc: r.get(7)?,
                        })
                    },
                )?
                .collect()
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn purge(&self, r: Retention) -> StoreResult<Purged> {
        use crate::model::RetentionKind::{Content, Events, WebhookLogs};
        use crate::queue_sql::SQLITE;
        use crate::retention_sql as sql;
        self.writer
            .write(Durability::Fsync, move |c| {
                c.execute_batch(&format!(
                    "CREATE TEMP TABLE IF NOT EXISTS {}; DELETE FROM temp.retention_policy; \
                     CREATE TEMP TABLE IF NOT EXISTS purge_ids (id TEXT PRIMARY KEY); DELETE FROM temp.purge_ids;",
                    sql::POLICY_TABLE
                ))
                .map_err(unavailable)?;
                let mut insert = c
                    .prepare_cached("INSERT INTO temp.retention_policy VALUES (?1, ?2, ?3, ?4, ?5)")
                    .map_err(unavailable)?;
                for (tenant, stream, [content, events, webhook_logs]) in r.policies.iter().map(sql::policy_row) {
                    insert
                        .execute(params![tenant, stream, content, events, webhook_logs])
                        .map_err(unavailable)?;
                }
                let run = |statement: String, kind| {
                    c.prepare_cached(&statement)
                        .and_then(|mut st| st.execute(sql::params(&r, kind)))
                        .map(|n| n as u64)
                        .map_err(unavailable)
                };
                let contents = run(sql::content(&SQLITE), Content)?;
                let events = run(sql::events(&SQLITE), Events)?;
                run(format!("INSERT INTO temp.purge_ids {}", sql::messages(&SQLITE)), Events)?;
                c.execute("DELETE FROM recipients WHERE message_id IN (SELECT id FROM temp.purge_ids)", [])
                    .map_err(unavailable)?;
                c.execute("DELETE FROM message_tags WHERE message_id IN (SELECT id FROM temp.purge_ids)", [])
                    .map_err(unavailable)?;
                let messages = c
                    .execute("DELETE FROM messages WHERE id IN (SELECT id FROM temp.purge_ids)", [])
                    .map_err(unavailable)? as u64;
                let idempotency = c
                    .prepare_cached(
                        "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE created_at < ?1 LIMIT ?2)",
                    )
                    .and_then(|mut st| st.execute(params![r.idempotency_before, sql::params(&r, Events)[3]]))
                    .map_err(unavailable)? as u64;
                let webhook_deliveries = webhooks::delete_deliveries(
                    c,
                    &sql::webhook_deliveries(&SQLITE),
                    sql::params(&r, WebhookLogs),
                )?;
                Ok(Purged { contents, events, messages, idempotency, webhook_deliveries, audit: 0 })
            })
            .await
    }

    async fn append_audit(&self, d: AuditDraft) -> StoreResult<AuditRecord> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let prev: Vec<u8> = c
                    .prepare_cached("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
                    .and_then(|mut st| st.query_row([], |r| r.get(0)).optional())
                    .map_err(unavailable)?
                    .unwrap_or_else(|| crate::audit::GENESIS.to_vec());
                let hash = crate::audit::chain_hash(&prev, &d);
                c.prepare_cached(
                    "INSERT INTO audit (at, tenant_id, actor, action, target, ip, prev_hash, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        d.at,
                        d.tenant_id,
                        d.actor,
                        d.action,
                        d.target,
                        d.ip,
                        prev,
                        hash
                    ])
                })
                .map_err(unavailable)?;
                Ok(AuditRecord::from_draft(
                    c.last_insert_rowid(),
                    d,
                    prev,
                    hash,
                ))
            })
            .await
    }

    async fn prune_audit(&self, before: i64, limit: usize) -> StoreResult<u64> {
        self.writer
            .write(Durability::Fsync, move |c| {
                let oldest = c
                    .prepare_cached("SELECT seq, at, hash FROM audit ORDER BY seq LIMIT ?1")
                    .and_then(|mut st| {
                        st.query_map([limit.max(1) as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(unavailable)?;
                let Some((seq, hash)) = crate::audit::prune_point(&oldest, before) else {
                    return Ok(0);
                };
                c.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![crate::audit::ANCHOR_KEY, crate::audit::anchor_text(seq, &hash)],
                )
                .and_then(|_| c.execute("DELETE FROM audit WHERE seq <= ?1", [seq]))
                .map(|n| n as u64)
                .map_err(unavailable)
            })
            .await
    }

    async fn audit_anchor(&self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        let text: Option<String> = self
            .read(|c| {
                c.query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [crate::audit::ANCHOR_KEY],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)
            })
            .await?;
        text.map(|t| {
            crate::audit::parse_anchor(&t).ok_or(StoreError::Corrupt("audit anchor".into()))
        })
        .transpose()
    }

    async fn list_audit(
        &self,
        tenant_id: Option<&str>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>> {
        let tenant_id = tenant_id.map(str::to_string);
        self.read(move |c| {
            c.prepare_cached(
                "SELECT seq, at, tenant_id, actor, action, target, ip, prev_hash, hash FROM audit \
                 WHERE seq > ?1 AND (?2 IS NULL OR tenant_id = ?2) ORDER BY seq LIMIT ?3",
            )
            .and_then(|mut st| {
                st.query_map(
                    params![after_seq.unwrap_or(0), tenant_id, limit.max(1) as i64],
                    |r| {
                        Ok(AuditRecord {
                            seq: r.get(0)?,
                            at: r.get(1)?,
                            tenant_id: r.get(2)?,
                            actor: r.get(3)?,
                            action: r.get(4)?,
                            target: r.get(5)?,
                            ip: r.get(6)?,
                            prev_hash: r.get(7)?,
                            hash: r.get(8)?,
                        })
                    },
                )?
                .collect()
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn stats(&self, f: StatsFilter) -> StoreResult<Vec<StatRow>> {
        self.stats_r(f).await
    }

    async fn attempts_by_source(&self, since: i64) -> StoreResult<Vec<(String, u64)>> {
        self.read(move |c| {
            c.prepare_cached(&crate::stats::by_source_sql("?1"))
                .and_then(|mut st| {
                    st.query_map([since], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                        .collect()
                })
                .map_err(unavailable)
        })
        .await
    }

    async fn insert_user(&self, user: UserRecord) -> StoreResult<()> {
        self.insert_user_w(user).await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        Ok(self.users_where_r("id", id.to_string()).await?.pop())
    }

    async fn find_users(&self, email_index: &str) -> StoreResult<Vec<UserRecord>> {
        self.users_where_r("email_index", email_index.to_string())
            .await
    }

    async fn list_users(&self, tenant_id: &str) -> StoreResult<Vec<UserRecord>> {
        self.users_where_r("tenant_id", tenant_id.to_string()).await
    }

    async fn reserve_login(
        &self,
        id: &str,
        at: i64,
        policy: LockPolicy,
    ) -> StoreResult<Reservation> {
        self.reserve_login_w(id.to_string(), at, policy).await
    }

    async fn release_login(
        &self,
        id: &str,
        lock: Option<i64>,
        previous_lock: Option<i64>,
    ) -> StoreResult<()> {
        self.release_login_w(id.to_string(), lock, previous_lock)
            .await
    }

    async fn open_session(&self, session: SessionRecord) -> StoreResult<bool> {
        self.open_session_w(session).await
    }

    async fn change_user(&self, id: &str, change: UserChange) -> StoreResult<bool> {
        self.change_user_w(id.to_string(), change).await
    }

    async fn swap_second_factor(
        &self,
        id: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> StoreResult<bool> {
        self.swap_second_factor_w(id.to_string(), expected, new)
            .await
    }

    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        self.delete_user_w(id.to_string()).await
    }

    async fn get_session(&self, id_hash: Vec<u8>) -> StoreResult<Option<SessionRecord>> {
        self.get_session_r(id_hash).await
    }

    async fn end_session(&self, id_hash: Vec<u8>, at: i64) -> StoreResult<bool> {
        self.end_session_w(id_hash, at).await
    }

    async fn list_streams(&self, tenant_id: Option<&str>) -> StoreResult<Vec<StreamRecord>> {
        self.list_streams_r(tenant_id.map(str::to_string)).await
    }

    async fn insert_stream(&self, s: StreamRecord) -> StoreResult<()> {
        self.insert_stream_w(s).await
    }

    async fn put_stream_settings(
        &self,
        tenant_id: &str,
        name: &str,
        settings: String,
        at: i64,
    ) -> StoreResult<()> {
        self.put_stream_settings_w(tenant_id.to_string(), name.to_string(), settings, at)
            .await
    }

    async fn pause_stream(&self, p: StreamPause) -> StoreResult<bool> {
        self.pause_stream_w(p).await
    }

    async fn queue_action(
        &self,
        sel: QueueSelector,
        action: QueueAction,
        at: i64,
    ) -> StoreResult<u64> {
        self.queue_action_w(sel, action, at).await
    }

    async fn queue_depth(&self, tenant_id: Option<&str>) -> StoreResult<Vec<QueueDepth>> {
        self.queue_depth_r(tenant_id.map(str::to_string)).await
    }

    async fn stream_outcomes(
        &self,
        tenant_id: &str,
        stream: &str,
        since: i64,
        window: usize,
    ) -> StoreResult<StreamOutcomes> {
        self.stream_outcomes_r(tenant_id.to_string(), stream.to_string(), since, window)
            .await
    }

    async fn backlog(&self) -> StoreResult<Backlog> {
        self.read(|c| {
            let mut st = c.prepare_cached(BACKLOG_SQL).map_err(unavailable)?;
            let streams = st
                .query_map([], |r| {
                    Ok(StreamBacklog {
                        stream: r.get(0)?,
                        recipients: r.get::<_, i64>(1)? as u64,
                        oldest_created_at: r.get(2)?,
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(unavailable)?;
            let webhook_deliveries: i64 = c
                .prepare_cached(WEBHOOK_BACKLOG_SQL)
                .and_then(|mut st| st.query_row([], |r| r.get(0)))
                .map_err(unavailable)?;
            Ok(Backlog {
                streams,
                webhook_deliveries: webhook_deliveries as u64,
            })
        })
        .await
    }

    async fn insert_webhook(&self, w: WebhookRecord) -> StoreResult<()> {
        self.insert_webhook_w(w).await
    }

    async fn list_webhooks(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRecord>> {
        self.list_webhooks_r(tenant_id.map(str::to_string)).await
    }

    async fn update_webhook(&self, w: WebhookRecord) -> StoreResult<bool> {
        self.update_webhook_w(w).await
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        self.delete_webhook_w(tenant_id.to_string(), id.to_string())
            .await
    }

    async fn replay_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        from: i64,
        to: i64,
        now: i64,
    ) -> StoreResult<u64> {
        self.replay_webhook_w(tenant_id.to_string(), id.to_string(), from, to, now)
            .await
    }

    async fn claim_webhook_deliveries(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        self.claim_webhook_deliveries_w(node.to_string(), now, lease_until, limit)
            .await
    }

    async fn finish_webhook_delivery(&self, outcome: WebhookOutcome) -> StoreResult<bool> {
        self.finish_webhook_delivery_w(outcome).await
    }

    async fn list_webhook_attempts(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        before_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<WebhookAttemptRecord>> {
        self.list_webhook_attempts_r(
            tenant_id.to_string(),
            webhook_id.to_string(),
            before_seq,
            limit,
        )
        .await
    }

    async fn add_suppression(&self, s: SuppressionRecord) -> StoreResult<bool> {
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "INSERT INTO suppressions (tenant_id, rcpt_hash, stream, reason, created_at, address_enc, \
                     source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (tenant_id, rcpt_hash, stream) DO NOTHING",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        s.tenant_id,
                        s.rcpt_hash,
                        stream_scope(s.stream.as_deref()),
                        s.reason.as_str(),
                        s.created_at,
                        s.address_enc,
                        s.source
                    ])
                })
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn remove_suppression(
        &self,
        tenant_id: &str,
        rcpt_hash: &[u8],
        stream: Option<&str>,
        erasure: bool,
    ) -> StoreResult<u64> {
        let (tenant_id, rcpt_hash) = (tenant_id.to_string(), rcpt_hash.to_vec());
        let stream = stream_scope(stream).to_string();
        self.writer
            .write(Durability::Fsync, move |c| {
                c.prepare_cached(
                    "DELETE FROM suppressions WHERE tenant_id = ?1 AND rcpt_hash = ?2 AND stream = ?3 \
                     AND (?4 OR reason <> 'erasure')",
                )
                .and_then(|mut st| st.execute(params![tenant_id, rcpt_hash, stream, erasure]))
                .map(|n| n as u64)
                .map_err(unavailable)
            })
            .await
    }

    async fn find_suppressions(
        &self,
        tenant_id: &str,
        hashes: Vec<Vec<u8>>,
    ) -> StoreResult<Vec<SuppressionRecord>> {
        let hashes = distinct_hashes(hashes);
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let tenant_id = tenant_id.to_string();
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(unavailable)?;
            let rows = rows_by_hashes(
                &tx,
                &format!("SELECT {SUPPRESSION_COLS} FROM suppressions WHERE tenant_id = ?1 AND rcpt_hash IN"),
                &[&tenant_id],
                &hashes,
                suppression_row,
            )?;
            drop(tx);
            let mut found = rows
                .into_iter()
                .map(typed_suppression)
                .collect::<StoreResult<Vec<_>>>()?;
            found.sort_unstable_by_key(|s| s.seq);
            Ok(found)
        })
        .await
    }

    async fn list_suppressions(
        &self,
        tenant_id: &str,
        rcpt_hash: Option<Vec<u8>>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<SuppressionRecord>> {
        let tenant_id = tenant_id.to_string();
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.read(move |c| {
            // One statement per filter combination (four). By hash: the few entries of
            // one address through the scope index (without statistics SQLite would
            // rather walk the tenant's whole list in seq order to skip the sort).
            let index = match rcpt_hash {
                Some(_) => "suppressions_scope",
                None => "suppressions_tenant",
            };
            let mut sql = format!(
                "SELECT {SUPPRESSION_COLS} FROM suppressions INDEXED BY {index} WHERE tenant_id = ?1"
            );
            let mut args: Vec<rusqlite::types::Value> = vec![tenant_id.into()];
            if let Some(h) = rcpt_hash {
                args.push(h.into());
                sql.push_str(&format!(" AND rcpt_hash = ?{}", args.len()));
            }
            if let Some(a) = after_seq {
                args.push(a.into());
                sql.push_str(&format!(" AND seq > ?{}", args.len()));
            }
            args.push(limit.into());
            sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", args.len()));
            let rows = c
                .prepare_cached(&sql)
                .and_then(|mut st| {
                    st.query_map(rusqlite::params_from_iter(args), suppression_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)?;
            rows.into_iter().map(typed_suppression).collect()
        })
        .await
    }
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

const SUPPRESSION_COLS: &str =
    "seq, tenant_id, rcpt_hash, stream, reason, created_at, address_enc, source";

fn suppression_row(r: &Row<'_>) -> rusqlite::Result<(SuppressionRecord, String)> {
    Ok((
        SuppressionRecord {
            seq: r.get(0)?,
            tenant_id: r.get(1)?,
            rcpt_hash: r.get(2)?,
            stream: scope_stream(r.get(3)?),
            reason: SuppressionReason::Manual,
            created_at: r.get(5)?,
            address_enc: r.get(6)?,
            source: r.get(7)?,
        },
        r.get(4)?,
    ))
}

fn typed_suppression(
    (mut s, reason): (SuppressionRecord, String),
) -> StoreResult<SuppressionRecord> {
    s.reason = reason.parse().map_err(|_| corrupt("suppression reason"))?;
    Ok(s)
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
        .prepare_cached(&crate::stats::upsert_sql(|n| format!("?{n}")))
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
            s.query_map([id], event_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?
        .into_iter()
        .map(typed_event)
        .collect::<StoreResult<Vec<_>>>()?;
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
