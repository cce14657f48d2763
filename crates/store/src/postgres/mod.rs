//! The PostgreSQL backend, for scale-out: many `postwerk serve` nodes share one
//! database, and due deliveries are leased with `FOR UPDATE SKIP LOCKED` so that no
//! recipient is handed to two nodes.
//!
//! Behaviour matches the SQLite backend exactly (the conformance suite in
//! `tests/conformance` runs against both). Notes on how:
//!
//! - Every write is one transaction committed with the server's `synchronous_commit`
//!   (never lowered here): a future resolving `Ok` means the write is durable.
//! - Batches are written with `UNNEST` over parameter arrays: one round trip per
//!   table, whatever the batch size.
//! - Statements are prepared once per pooled connection (`prepare_cached`).
//! - Event `seq` order equals commit order (see [`EVENTS_LOCK`]), as with SQLite's
//!   single writer, so `after_seq` pagination never skips a late commit.
//! - Writers that update several existing recipient rows lock them in id order first,
//!   so concurrent writers cannot deadlock; a deadlock or serialization failure that
//!   happens anyway rolls back and the whole transaction is re-run (a few times).
//! - Errors never carry row values (see [`error`]).
//!
//! Each area of the store has a file of the same name here and in `postgres/`
//! (`tenants`, `users`, `domains`, `queue`, `privacy`, `compliance`, `audit`, `stats`,
//! `streams`, `webhooks`, `suppressions`), implementing that area's trait of the
//! crate root with this backend's execution; the row decoders and shared SQL live in
//! the crate's area modules. Helper suffixes, the same in both backends: `_q` one
//! query outside a write transaction, `_tx` work inside a write transaction, `_in` a
//! step given an open connection or transaction.
//! Besides: `backup` (dump and restore with `pg_dump` and `pg_restore`) and [`error`]
//! (error mapping without row values).

mod audit;
pub(crate) mod backup;
mod compliance;
mod domains;
pub(crate) mod error;
mod privacy;
mod queue;
mod run;
mod stats;
mod streams;
mod suppressions;
mod tenants;
mod users;
mod webhooks;

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::model::*;
use crate::prelude::*;
use crate::row::Columns;
use crate::{StoreError, StoreResult};
use error::{Failure, PgResult, conflict, corrupt, pg};

/// The schema, applied idempotently at start-up.
const SCHEMA: &str = include_str!("schema.sql");
/// The version `schema.sql` creates (`meta.schema_version`). A database at an older
/// version gets `schema.sql` run again (every statement is idempotent), which adds
/// what is new: 2 added `suppressions`.
const SCHEMA_VERSION: i64 = 13;

/// Most pooled connections per node.
const POOL_SIZE: usize = 16;
/// How long to wait for a TCP connection and the start-up handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a free pooled connection.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Unacknowledged data older than this kills a connection (a dead peer is noticed).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// Keepalive probing of idle connections (the OS default waits two hours).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
/// Times a transaction that hit a deadlock or serialization failure is re-run.
const MAX_RETRIES: u32 = 3;

/// Advisory lock key serialising migrations across nodes ("postwerk").
const MIGRATION_LOCK: i64 = 0x706f_7374_7765_726b;
/// Advisory lock key taken (transaction-scoped) just before inserting events and
/// held until commit. `seq` comes from a sequence, so without it two concurrent
/// transactions could commit seq 11 before seq 10; a reader paging with
/// `after_seq = 11` would then never see 10. With it, `seq` order is commit order,
/// as with SQLite's single writer. Only the final insert and the commit run under
/// the lock; everything else in the transaction runs in parallel across nodes.
pub(crate) const EVENTS_LOCK: i64 = MIGRATION_LOCK + 1;
/// Advisory lock key taken (transaction-scoped) before inserting a suppression and
/// held until commit: as with [`EVENTS_LOCK`], suppression `seq` order is then
/// commit order, so `list_suppressions` paging with `after_seq` never skips an entry.
const SUPPRESSIONS_LOCK: i64 = MIGRATION_LOCK + 2;
/// Advisory lock key serialising audit appends: each entry chains to the newest
/// committed one.
const AUDIT_LOCK: i64 = MIGRATION_LOCK + 3;

/// The PostgreSQL store: a connection pool.
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host/db`, plain TCP or a Unix socket
    /// directory as host), migrates the schema and returns the store. An unreachable
    /// database fails with `Unavailable` within a few seconds.
    pub async fn connect(url: &str) -> StoreResult<PgStore> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StoreError::Unavailable("invalid postgres URL".into()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        if !url.contains("keepalives_idle") {
            config.keepalives_idle(KEEPALIVE_IDLE);
        }
        if config.get_application_name().is_none() {
            config.application_name("postwerk");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|_| StoreError::Unavailable("postgres: could not build the pool".into()))?;
        let store = PgStore { pool };
        store.migrate().await.map_err(Failure::into_store)?;
        Ok(store)
    }

    /// A pooled connection.
    async fn client(&self) -> PgResult<Object> {
        self.pool.get().await.map_err(error::pool)
    }

    /// Creates or completes the schema, one node at a time.
    async fn migrate(&self) -> PgResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg("migrate"))?;
        tx.batch_execute(&format!(
            "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"
        ))
        .await
        .map_err(pg("migrate"))?;
        // Skip the DDL when the schema is current: `CREATE INDEX IF NOT EXISTS` still
        // takes a SHARE lock on its table, which would stall other nodes' writes.
        let has_meta: bool = tx
            .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
            .await
            .map_err(pg("migrate"))?
            .try_get(0)
            .map_err(|_| corrupt("schema check"))?;
        let version = if has_meta {
            let row = tx
                .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
                .await
                .map_err(pg("migrate"))?;
            match row {
                Some(r) => Columns::get::<String>(&r, "value")?.parse::<i64>().ok(),
                None => None,
            }
        } else {
            None
        };
        if version.is_none_or(|v| v < SCHEMA_VERSION) {
            tx.batch_execute(SCHEMA).await.map_err(pg("migrate"))?;
            tracing::info!(version = SCHEMA_VERSION, "postgres schema migrated");
        }
        domains::unique_domain_names(&tx).await?;
        tx.commit().await.map_err(pg("migrate"))?;
        let sync: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .map_err(pg("migrate"))?
            .try_get(0)
            .map_err(|_| corrupt("synchronous_commit"))?;
        if sync == "off" {
            tracing::warn!(
                "postgres synchronous_commit is off: acknowledged writes can be lost in a crash; \
                 Postwerk needs it on"
            );
        }
        Ok(())
    }
}

/// Runs `op` (one whole transaction), re-running it after a deadlock or
/// serialization failure.
async fn retrying<T, F, Fut>(mut op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = PgResult<T>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(Failure::Transient(e)) if attempt < MAX_RETRIES => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "postgres transaction rolled back; retrying");
                tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
            }
            Err(f) => return Err(f.into_store()),
        }
    }
}

impl PgStore {
    /// The rows of `sql`, each decoded by `decode`.
    async fn list<T>(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        decode: fn(&Row) -> PgResult<T>,
    ) -> PgResult<Vec<T>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg(op))?;
        let rows = client.query(&stmt, params).await.map_err(pg(op))?;
        rows.iter().map(decode).collect()
    }

    async fn one_opt(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> PgResult<Option<Row>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg(op))?;
        client.query_opt(&stmt, params).await.map_err(pg(op))
    }

    async fn exec(
        &self,
        op: &'static str,
        unique: Option<&'static str>,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> PgResult<u64> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg(op))?;
        let result = client.execute(&stmt, params).await;
        match unique {
            Some(what) => result.map_err(conflict(op, what)),
            None => result.map_err(pg(op)),
        }
    }
}
