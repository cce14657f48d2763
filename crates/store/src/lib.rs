//! Postwerk's storage: one [`Store`] contract made of one sub-trait per area, two
//! backends, and the vault.
//!
//! The areas (each module holds its sub-trait of [`Store`], the list of signatures
//! from which [`AnyStore`]'s dispatch is generated; `use postwerk_store::prelude::*`
//! brings every sub-trait into scope):
//! - [`tenants`]: tenants, sub-accounts and API keys ([`TenantStore`]).
//! - [`users`]: console users, sign-in accounting and sessions ([`UserStore`]).
//! - [`domains`]: sending domains and their DKIM keys ([`DomainStore`]).
//! - [`queue`]: messages, recipients, events, the delivery queue ([`QueueStore`]).
//! - [`privacy`]: contacts, consent, data keys, erasure ([`PrivacyStore`]).
//! - [`compliance`]: data-subject requests, incidents, retention ([`ComplianceStore`]).
//! - [`audit`]: the audit chain and its entries ([`AuditStore`]).
//! - [`stats`]: deliverability statistics ([`StatsStore`]).
//! - [`streams`]: message streams and the circuit breaker's figures ([`StreamStore`]).
//! - [`webhooks`]: webhook endpoints, deliveries and attempts ([`WebhookStore`]).
//! - [`suppressions`]: suppression lists ([`SuppressionStore`]).
//! - [`audience`]: contact lists, segments, the contact search, imports and canary
//!   addresses ([`AudienceStore`]).
//! - [`campaigns`]: templates and their versions ([`CampaignStore`]).
//!
//! The rest:
//! - [`sqlite`]: the embedded default (one WAL-mode file; a writer thread that
//!   group-commits many callers' writes in one transaction and one fsync).
//! - [`postgres`]: for scale-out (many `postwerk serve` nodes share one database;
//!   due deliveries are leased with `FOR UPDATE SKIP LOCKED`).
//! - [`vault`]: envelope encryption (AEAD) and blind indexes. The store itself only
//!   ever sees sealed bytes and HMACs: it must never receive, log or return a
//!   plaintext address or message body.
//! - [`model`]: the rows.
//! - [`backup`]: whole-store snapshots and restores for `postwerk backup` (the subject
//!   keys stay in the live database).
//! - [`prelude`]: every store trait, for `use postwerk_store::prelude::*`.
//! - `queue_sql` (private): the queue area's statements, for both backends.
//! - `retention_sql` (private): the retention purge's statements, for both backends.
//! - `row` (private): column access for both drivers, under each row type's one decoder.
//! - `run` (private): one statement run by either backend, under the operations each
//!   area writes once (its `shared` list).
//! - `sql` (private): statements written once for both dialects (the `sql!` macro).
//!
//! Callers use [`AnyStore`], which dispatches to a backend by enum (no boxing on the
//! hot path). Every backend passes the same conformance suite (`tests/conformance`).

/// Declares one area's sub-trait of [`Store`] from its list of signatures (each
/// written as `fn name(&self, args) -> StoreResult<T>;`, the future being `Send`),
/// and implements it for [`AnyStore`] by dispatching every method to the backend.
/// Operations that are one statement on both backends follow in a `shared { … }`
/// list with their one body, written over [`run::Run`] (the trait's supertrait): they
/// become the trait's default methods, which no backend writes again.
macro_rules! store_area {
    (
        $(#[$doc:meta])*
        $area:ident {
            $(
                $(#[$fdoc:meta])*
                fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty;
            )*
        }
        $(shared {
            $(
                $(#[$sdoc:meta])*
                fn $sname:ident(&$sself:ident $(, $sarg:ident : $sty:ty)* $(,)?) -> $sret:ty $sbody:block
            )*
        })?
    ) => {
        $(#[$doc])*
        pub trait $area: $crate::run::Run {
            $(
                $(#[$fdoc])*
                fn $name(&self $(, $arg: $ty)*) -> impl std::future::Future<Output = $ret> + Send;
            )*
            $($(
                $(#[$sdoc])*
                // `self` is the caller's token, so that the body's `self` names it.
                fn $sname(&$sself $(, $sarg: $sty)*) -> impl std::future::Future<Output = $sret> + Send {
                    async move $sbody
                }
            )*)?
        }

        impl $area for $crate::AnyStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        $crate::AnyStore::Sqlite(s) => s.$name($($arg),*).await,
                        $crate::AnyStore::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

/// `args![a, b, …]`: the parameters `$1, $2, …` of a statement run through
/// [`run::Run`], each converted into an owned [`run::Arg`].
macro_rules! args {
    ($($arg:expr),* $(,)?) => { vec![$($crate::run::Arg::from($arg)),*] };
}

/// Declares statements of both backends (see [`sql::Sql`]): each
/// `NAME = "format string with $N parameters", args…;` becomes a `static NAME`.
macro_rules! sql {
    ($($(#[$doc:meta])* $name:ident = $($fmt:expr),+;)+) => {$(
        $(#[$doc])*
        pub(crate) static $name: $crate::sql::Sql = $crate::sql::Sql::new(|| format!($($fmt),+));
    )+};
}

pub mod audience;
pub mod audit;
pub mod backup;
pub mod campaigns;
pub mod compliance;
pub mod domains;
pub mod model;
pub mod postgres;
pub mod privacy;
pub mod queue;
mod queue_sql;
mod retention_sql;
mod row;
mod run;
mod sql;
pub mod sqlite;
pub mod stats;
pub mod streams;
pub mod suppressions;
pub mod tenants;
pub mod users;
pub mod vault;
pub mod webhooks;

pub use audience::AudienceStore;
pub use audit::AuditStore;
pub use campaigns::CampaignStore;
pub use compliance::ComplianceStore;
pub use domains::DomainStore;
pub use privacy::PrivacyStore;
pub use queue::QueueStore;
pub use stats::StatsStore;
pub use streams::StreamStore;
pub use suppressions::SuppressionStore;
pub use tenants::TenantStore;
pub use users::UserStore;
pub use webhooks::WebhookStore;

/// Every store trait: `use postwerk_store::prelude::*` to call any store operation.
pub mod prelude {
    pub use crate::{
        AudienceStore, AuditStore, CampaignStore, ComplianceStore, DomainStore, PrivacyStore,
        QueueStore, StatsStore, Store, StreamStore, SuppressionStore, TenantStore, UserStore,
        WebhookStore,
    };
}

use std::path::PathBuf;
use std::sync::Arc;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint was violated (names the thing, never its value).
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The database could not be reached or refused the write; nothing was stored.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// How long an Idempotency-Key is remembered (24 hours).
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// Every table holding a tenant's data besides `tenants`, with its key columns, in
/// the order [`TenantStore::delete_tenant_data`] empties them: rows that point at others go
/// first. (The `audit` table is not among them: its entries stay.)
pub const TENANT_TABLES: [(&str, &str); 29] = [
    ("webhook_attempts", "seq"),
    ("webhook_deliveries", "seq"),
    ("webhooks", "id"),
    ("message_tags", "tag_hash, message_id"),
    ("events", "seq"),
    ("recipients", "id"),
    ("messages", "id"),
    ("idempotency", "key_hash"),
    ("suppressions", "seq"),
    ("consents", "seq"),
    ("list_members", "list_id, rcpt_hash"),
    ("lists", "id"),
    ("segments", "id"),
    ("broadcasts", "id"),
    ("template_versions", "template_id, version"),
    ("templates", "id"),
    ("imports", "id"),
    ("canaries", "address"),
    ("contacts", "rcpt_hash"),
    ("subject_keys", "rcpt_hash"),
    ("dsar_requests", "seq"),
    ("incidents", "seq"),
    (
        "delivery_stats",
        "bucket, stream, pool, source, site, event, reason",
    ),
    ("streams", "name"),
    ("sessions", "id_hash"),
    ("users", "id"),
    ("api_keys", "id"),
    ("dkim_keys", "id"),
    ("domains", "name"),
];

/// Domain names held by more than one tenant, each with its holders' tenant names,
/// oldest registration first (both backends). Names used to be unique per tenant
/// only; a database from then keeps every holder, no tenant may send
/// from a contested name (see `domain_registered` in postwerk-services), and the unique
/// index [`UNIQUE_DOMAINS_SQL`] waits until an operator has removed all but one.
pub const CONTESTED_DOMAINS_SQL: &str = "SELECT d.name, t.name FROM domains d \
     JOIN tenants t ON t.id = d.tenant_id \
     WHERE d.name IN (SELECT name FROM domains GROUP BY name HAVING count(*) > 1) \
     ORDER BY d.name, d.created_at, t.name";

/// A domain name belongs to at most one tenant (both backends; made at start-up, see
/// [`CONTESTED_DOMAINS_SQL`]).
const UNIQUE_DOMAINS_SQL: &str = "CREATE UNIQUE INDEX IF NOT EXISTS domains_name ON domains (name)";

/// Logs each contested domain (rows of [`CONTESTED_DOMAINS_SQL`]) with the command
/// that resolves it.
fn warn_contested(rows: &[(String, String)]) {
    let mut by_name: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (domain, tenant) in rows {
        by_name.entry(domain).or_default().push(tenant);
    }
    for (domain, tenants) in by_name {
        tracing::warn!(
            domain,
            tenants = %tenants.join(", "),
            "a domain is registered by more than one tenant (a database from before names \
             were unique): no tenant may send from it until an operator keeps one holder \
             with `postwerk domains remove {domain} --tenant <tenant>` for each other one"
        );
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Declares [`Store`], the umbrella of the areas' traits, and implements it for every
/// type that implements them all (the list written once).
macro_rules! umbrella {
    ($($area:ident),+) => {
        /// The storage contract shared by all backends: every area's operations. Every
        /// write is durable (committed and fsynced) when its future resolves with `Ok`.
        pub trait Store: $($area +)+ {}

        impl<T: $($area +)+> Store for T {}
    };
}

umbrella!(
    TenantStore,
    UserStore,
    DomainStore,
    QueueStore,
    PrivacyStore,
    ComplianceStore,
    AuditStore,
    StatsStore,
    StreamStore,
    WebhookStore,
    SuppressionStore,
    AudienceStore,
    CampaignStore
);

/// A store named by its URL, for whole-store operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl Location {
    /// Parses a `sqlite://PATH` or `postgres://…` store URL.
    pub fn parse(url: &str) -> StoreResult<Location> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Location::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Location::Postgres(url.to_string()))
        } else {
            Err(StoreError::Unavailable(
                "store.url must be sqlite:// or postgres://".into(),
            ))
        }
    }

    /// `sqlite` or `postgres`, as in [`backup::Snapshot::store`].
    pub fn kind(&self) -> &'static str {
        match self {
            Location::Sqlite(_) => "sqlite",
            Location::Postgres(_) => "postgres",
        }
    }
}

/// A store backend chosen at run time.
#[derive(Clone)]
pub enum AnyStore {
    /// Embedded SQLite.
    Sqlite(Arc<sqlite::SqliteStore>),
    /// PostgreSQL.
    Postgres(Arc<postgres::PgStore>),
}

impl AnyStore {
    /// Opens (and migrates) the store named by a `sqlite://PATH` or `postgres://…` URL.
    pub async fn open(url: &str) -> StoreResult<AnyStore> {
        Ok(match Location::parse(url)? {
            Location::Sqlite(path) => {
                AnyStore::Sqlite(Arc::new(sqlite::SqliteStore::open(&path).await?))
            }
            Location::Postgres(url) => {
                AnyStore::Postgres(Arc::new(postgres::PgStore::connect(&url).await?))
            }
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }
}
