//! The store conformance suite: every scenario is written once, against [`AnyStore`],
//! and run against every backend.
//!
//! - SQLite always (a fresh file in a temporary directory per test).
//! - PostgreSQL when `POSTWERK_TEST_PG_URL` is set (an admin URL such as
//!   `postgres://postgres@127.0.0.1/postgres`): each test creates its own database
//!   `postwerk_t_<random>`, runs against it and drops it, so tests can run in
//!   parallel. When the variable is unset the PostgreSQL tests print
//!   `PostgreSQL skipped: POSTWERK_TEST_PG_URL not set` and pass; when it is set, an
//!   unreachable server fails them.
//!
//! All times are explicit (the store never reads the clock), so every scenario is
//! deterministic.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use postwerk_core::model::{
    ConsentStatus, DsarKind, DsarStatus, EventType, RecipientStatus, Scope, SuppressionReason,
};
use postwerk_store::model::*;
use postwerk_store::postgres::PgStore;
use postwerk_store::prelude::*;
use postwerk_store::{AnyStore, IDEMPOTENCY_TTL_MS, StoreError, TENANT_TABLES};

const PG_URL_VAR: &str = "POSTWERK_TEST_PG_URL";

// ---------------------------------------------------------------------------------
// Runners
// ---------------------------------------------------------------------------------

/// Runs `scenario` against a fresh SQLite store.
async fn run_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(AnyStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("postwerk.db").display());
    let store = AnyStore::open(&url).await.expect("open the SQLite store");
    assert_eq!(store.backend_name(), "sqlite");
    scenario(store).await;
}

/// Runs `scenario` against a PostgreSQL store in a fresh database, or skips.
async fn run_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(AnyStore) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_pg_database(|url| async move {
        let store = AnyStore::open(&url)
            .await
            .expect("open the PostgreSQL store");
        assert_eq!(store.backend_name(), "postgres");
        scenario(store).await;
    })
    .await;
}

/// The admin URL from the environment, or `None` (after saying so) to skip.
fn pg_admin_url() -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            println!("PostgreSQL skipped: {PG_URL_VAR} not set");
            None
        }
    }
}

/// Creates a fresh database, runs `body` with its URL, and drops the database even
/// when `body` panics (the panic is then re-raised).
async fn with_pg_database<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{PG_URL_VAR} is set but PostgreSQL is unreachable: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let db = format!("postwerk_t_{:016x}", rand::random::<u64>());
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create the test database");
    let url = database_url(&admin_url, &db);
    let outcome = tokio::spawn(body(url)).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await
        .expect("drop the test database");
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("scenario task failed: {e}"),
        }
    }
}

/// `admin` (a `postgres://` URL) with its database replaced by `db`.
fn database_url(admin: &str, db: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut url = format!("{}/{db}", &base[..path]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Generates a `#[tokio::test]` per backend for each scenario.
macro_rules! conformance {
    ($($scenario:ident => $sqlite:ident, $postgres:ident;)+) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            run_sqlite(scenarios::$scenario).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            run_postgres(scenarios::$scenario).await;
        }
    )+};
}

conformance! {
    tenants => sqlite_tenants, postgres_tenants;
    api_keys => sqlite_api_keys, postgres_api_keys;
    domains => sqlite_domains, postgres_domains;
    concurrent_domain_adds => sqlite_concurrent_domain_adds, postgres_concurrent_domain_adds;
    accept_and_get_message => sqlite_accept_and_get_message, postgres_accept_and_get_message;
    accept_conflicts_are_atomic => sqlite_accept_conflicts_are_atomic, postgres_accept_conflicts_are_atomic;
    idempotency => sqlite_idempotency, postgres_idempotency;
    claim_due_and_leases => sqlite_claim_due_and_leases, postgres_claim_due_and_leases;
    concurrent_claims_are_disjoint => sqlite_concurrent_claims_are_disjoint, postgres_concurrent_claims_are_disjoint;
    load_content => sqlite_load_content, postgres_load_content;
    record_deliveries => sqlite_record_deliveries, postgres_record_deliveries;
    list_events_filters => sqlite_list_events_filters, postgres_list_events_filters;
    list_events_pagination => sqlite_list_events_pagination, postgres_list_events_pagination;
    large_batches => sqlite_large_batches, postgres_large_batches;
    renewals_race_deliveries => sqlite_renewals_race_deliveries, postgres_renewals_race_deliveries;
    event_cursor_under_concurrent_writes =>
        sqlite_event_cursor_under_concurrent_writes, postgres_event_cursor_under_concurrent_writes;
    accept_suppressed_recipients =>
        sqlite_accept_suppressed_recipients, postgres_accept_suppressed_recipients;
    suppressions => sqlite_suppressions, postgres_suppressions;
    suppression_lookup_of_a_large_batch =>
        sqlite_suppression_lookup_of_a_large_batch, postgres_suppression_lookup_of_a_large_batch;
    reports_after_delivery => sqlite_reports_after_delivery, postgres_reports_after_delivery;
    contacts_and_consents => sqlite_contacts_and_consents, postgres_contacts_and_consents;
    erase_subject => sqlite_erase_subject, postgres_erase_subject;
    subject_keys => sqlite_subject_keys, postgres_subject_keys;
    audit_chain => sqlite_audit_chain, postgres_audit_chain;
    retention_purge => sqlite_retention_purge, postgres_retention_purge;
    retention_policies => sqlite_retention_policies, postgres_retention_policies;
    request_register => sqlite_request_register, postgres_request_register;
    key_lifecycle => sqlite_key_lifecycle, postgres_key_lifecycle;
    users_and_sessions => sqlite_users_and_sessions, postgres_users_and_sessions;
    sign_in_attempts => sqlite_sign_in_attempts, postgres_sign_in_attempts;
    admin_changes_win => sqlite_admin_changes_win, postgres_admin_changes_win;
    breach_register => sqlite_breach_register, postgres_breach_register;
    consent_screen_and_held_recipients =>
        sqlite_consent_screen_and_held_recipients, postgres_consent_screen_and_held_recipients;
    webhook_outbox => sqlite_webhook_outbox, postgres_webhook_outbox;
    list_messages_filters => sqlite_list_messages_filters, postgres_list_messages_filters;
    streams_pause_and_resume => sqlite_streams_pause_and_resume, postgres_streams_pause_and_resume;
    queue_actions => sqlite_queue_actions, postgres_queue_actions;
    stop_subject_mail => sqlite_stop_subject_mail, postgres_stop_subject_mail;
    erasure_tombstones_stay => sqlite_erasure_tombstones_stay, postgres_erasure_tombstones_stay;
    stream_outcomes => sqlite_stream_outcomes, postgres_stream_outcomes;
    delivery_stats => sqlite_delivery_stats, postgres_delivery_stats;
    tenant_cancellation => sqlite_tenant_cancellation, postgres_tenant_cancellation;
    tenant_deletion => sqlite_tenant_deletion, postgres_tenant_deletion;
}

// ---------------------------------------------------------------------------------
// PostgreSQL-only behaviour
// ---------------------------------------------------------------------------------

/// A dead database is reported as `Unavailable` quickly, without the password.
#[tokio::test]
async fn postgres_unreachable_is_unavailable() {
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        PgStore::connect("postgres://postwerk:s3cret-pw@127.0.0.1:1/postwerk"),
    )
    .await
    .expect("connect must give up on its own, not hang");
    match result {
        Err(StoreError::Unavailable(msg)) => assert!(
            !msg.contains("s3cret-pw"),
            "error leaks the password: {msg}"
        ),
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("connected to a closed port"),
    }
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// Several nodes starting at once on an empty database all migrate successfully.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_migrations() {
    with_pg_database(|url| async move {
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { PgStore::connect(&url).await })
            })
            .collect();
        let mut stores = Vec::new();
        for node in nodes {
            stores.push(
                node.await
                    .expect("join")
                    .expect("concurrent connect + migrate"),
            );
        }
        let s = &stores[0];
        s.insert_tenant(fixtures::tenant("ten_a", "acme"))
            .await
            .expect("insert");
        let seen = stores[3]
            .get_tenant("ten_a")
            .await
            .expect("get")
            .expect("visible to every node");
        assert_eq!(seen.name, "acme");
    })
    .await;
}

/// A database created before the suppression list (schema version 1) and per-key
/// limits (version 6) gets them when a newer node starts, and the version is raised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_adds_suppressions() {
    with_pg_database(|url| async move {
        drop(PgStore::connect(&url).await.expect("create"));
        let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        db.batch_execute(
            "DROP TABLE suppressions; ALTER TABLE api_keys DROP COLUMN allowed_ips; \
             ALTER TABLE api_keys DROP COLUMN rate_limit; ALTER TABLE tenants DROP COLUMN parent_id; \
             ALTER TABLE tenants DROP COLUMN cancelled_at; \
             DROP TABLE subject_keys; ALTER TABLE contacts ADD COLUMN key_wrapped BYTEA NOT NULL DEFAULT ''; \
             INSERT INTO contacts (tenant_id, rcpt_hash, key_wrapped, data_enc, created_at, updated_at) \
             VALUES ('ten_a', 'hash:legacy'::bytea, 'legacy-key'::bytea, 'v'::bytea, 7, 7); \
             UPDATE meta SET value = '1' WHERE key = 'schema_version'",
        )
        .await
        .expect("downgrade to version 1");
        let store = AnyStore::open(&url).await.expect("upgrade");
        fixtures::key_limits_survive(&store).await;
    fixtures::subaccounts_survive(&store).await;
    scenarios::contact_keys_moved(&store).await;
        let h = fixtures::hash("alice");
        let rec = fixtures::suppression("ten_a", &h, None, SuppressionReason::Manual, 1_000);
        assert!(store.add_suppression(rec).await.expect("add"));
        assert_eq!(
            store
                .find_suppressions("ten_a", vec![h])
                .await
                .expect("find")
                .len(),
            1
        );
        let version: String = db
            .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
            .await
            .expect("version")
            .get(0);
        assert_eq!(version, "10");
    })
    .await;
}

/// The same for an SQLite file created before the suppression list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_adds_suppressions() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("postwerk.db");
    let url = format!("sqlite://{}", path.display());
    drop(AnyStore::open(&url).await.expect("create"));
    let db = rusqlite::Connection::open(&path).expect("open");
    db.execute_batch(
        "DROP TABLE suppressions; ALTER TABLE api_keys DROP COLUMN allowed_ips; \
         ALTER TABLE api_keys DROP COLUMN rate_limit; ALTER TABLE tenants DROP COLUMN parent_id; \
             ALTER TABLE tenants DROP COLUMN cancelled_at; \
         DROP TABLE subject_keys; ALTER TABLE contacts ADD COLUMN key_wrapped BLOB NOT NULL DEFAULT x''; \
         INSERT INTO contacts (tenant_id, rcpt_hash, key_wrapped, data_enc, created_at, updated_at) \
         VALUES ('ten_a', CAST('hash:legacy' AS BLOB), CAST('legacy-key' AS BLOB), x'76', 7, 7); \
         UPDATE meta SET value = '1' WHERE key = 'schema_version'",
    )
    .expect("downgrade to version 1");
    let store = AnyStore::open(&url).await.expect("upgrade");
    fixtures::key_limits_survive(&store).await;
    fixtures::subaccounts_survive(&store).await;
    scenarios::contact_keys_moved(&store).await;
    let h = fixtures::hash("alice");
    let rec = fixtures::suppression("ten_a", &h, None, SuppressionReason::Manual, 1_000);
    assert!(store.add_suppression(rec).await.expect("add"));
    assert_eq!(
        store
            .find_suppressions("ten_a", vec![h])
            .await
            .expect("find")
            .len(),
        1
    );
    let version: String = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .expect("version");
    assert_eq!(version, "10");
}

/// Names two tenants hold in a database from before domain names were unique
/// (`bytea` is the dialect's binary type).
fn contested_sql(bytea: &str) -> String {
    format!(
        "DROP INDEX domains_name; \
         INSERT INTO tenants (id, name, wrapped_key, created_at) VALUES \
         ('ten_a', 'acme', CAST('k' AS {bytea}), 1), ('ten_b', 'squatter', CAST('k' AS {bytea}), 2); \
         INSERT INTO domains (tenant_id, name, created_at) VALUES \
         ('ten_a', 'shop.example', 10), ('ten_b', 'shop.example', 20), ('ten_b', 'own.example', 30)"
    )
}

/// Opens a database holding a contested name: the store starts, both holders are
/// listed (oldest first) and the name stays refused to a third tenant only once the
/// operator removed one holder and the store started again (the index is made then).
async fn contested_domains_resolve(url: &str) {
    let store = AnyStore::open(url)
        .await
        .expect("a contested name does not stop the start");
    assert_eq!(
        store.domain_owners("shop.example").await.expect("owners"),
        ["ten_a", "ten_b"]
    );
    assert_eq!(
        store.domain_owners("own.example").await.expect("owners"),
        ["ten_b"]
    );
    assert!(
        store
            .delete_domain("ten_b", "shop.example")
            .await
            .expect("the operator removes the squatter's")
    );
    drop(store);
    let store = AnyStore::open(url).await.expect("reopen");
    let third = DomainRecord {
        tenant_id: "ten_c".into(),
        name: "shop.example".into(),
        created_at: 40,
        keys: Vec::new(),
    };
    assert!(matches!(
        store.insert_domain(third).await,
        Err(StoreError::Conflict("domain"))
    ));
    assert_eq!(
        store.domain_owners("shop.example").await.expect("owners"),
        ["ten_a"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_contested_domains_from_an_old_database() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("postwerk.db");
    let url = format!("sqlite://{}", path.display());
    drop(AnyStore::open(&url).await.expect("create"));
    let db = rusqlite::Connection::open(&path).expect("open");
    db.execute_batch(&contested_sql("BLOB"))
        .expect("an old database");
    drop(db);
    contested_domains_resolve(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_contested_domains_from_an_old_database() {
    with_pg_database(|url| async move {
        drop(PgStore::connect(&url).await.expect("create"));
        let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        db.batch_execute(&contested_sql("BYTEA"))
            .await
            .expect("an old database");
        contested_domains_resolve(&url).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------

mod fixtures {
    use super::*;

    pub fn tenant(id: &str, name: &str) -> TenantRecord {
        TenantRecord {
            id: id.into(),
            name: name.into(),
            wrapped_key: format!("wrapped:{id}").into_bytes(),
            created_at: 1_000,
            parent_id: None,
            cancelled_at: None,
        }
    }

    /// The blind index used for recipient `id`.
    pub fn hash(id: &str) -> Vec<u8> {
        format!("hash:{id}").into_bytes()
    }

    pub fn message(tenant: &str, id: &str, created_at: i64, rcpts: &[&str]) -> NewMessage {
        NewMessage {
            id: id.into(),
            tenant_id: tenant.into(),
            stream: "transactional".into(),
            from_domain: "example.com".into(),
            created_at,
            expires_at: created_at + 86_400_000,
            size: 1_234,
            meta_enc: format!("meta:{id}").into_bytes(),
            content_enc: format!("content:{id}").into_bytes(),
            mail_from_enc: None,
            recipients: rcpts
                .iter()
                .map(|r| NewRecipient {
                    id: (*r).into(),
                    rcpt_hash: hash(r),
                    address_enc: format!("addr:{r}").into_bytes(),
                    domain: "example.net".into(),
                    status: RecipientStatus::Queued,
                })
                .collect(),
            tag_hashes: vec![format!("tag:{id}").into_bytes(), b"tag:all".to_vec()],
        }
    }

    /// A purge whose default periods end at these times (no policies, no
    /// idempotency records).
    pub fn cutoffs(content: i64, events: i64, webhook_logs: i64, limit: usize) -> Retention {
        const NOW: i64 = 1_000_000;
        Retention {
            now: NOW,
            default: RetentionPeriods {
                content: NOW - content,
                events: NOW - events,
                webhook_logs: NOW - webhook_logs,
            },
            policies: Vec::new(),
            idempotency_before: 0,
            limit,
        }
    }

    pub fn batch(messages: Vec<NewMessage>) -> AcceptBatch {
        AcceptBatch {
            messages,
            idempotency: None,
            lease: None,
        }
    }

    pub fn update(
        tenant: &str,
        message: &str,
        rcpt: &str,
        status: RecipientStatus,
        next_attempt_at: Option<i64>,
        at: i64,
    ) -> DeliveryUpdate {
        let event = match status {
            RecipientStatus::Queued | RecipientStatus::Deferred => EventType::Deferred,
            RecipientStatus::Delivered => EventType::Delivered,
            RecipientStatus::Bounced => EventType::Bounced,
            RecipientStatus::Expired => EventType::Expired,
            RecipientStatus::Suppressed => EventType::Suppressed,
            RecipientStatus::NoConsent => EventType::NoConsent,
            RecipientStatus::Restricted => EventType::Restricted,
            RecipientStatus::Suspended => EventType::Suspended,
            RecipientStatus::Rejected => EventType::Rejected,
        };
        DeliveryUpdate {
            recipient_id: rcpt.into(),
            message_id: message.into(),
            tenant_id: tenant.into(),
            rcpt_hash: hash(rcpt),
            status,
            next_attempt_at,
            event,
            at,
            detail_enc: format!("detail:{rcpt}:{at}").into_bytes(),
            dims: StatDims::default(),
        }
    }

    pub fn events(tenant: &str, limit: usize) -> EventFilter {
        EventFilter {
            tenant_id: tenant.into(),
            limit,
            ..EventFilter::default()
        }
    }

    /// Sorted recipient ids.
    pub fn ids(due: &[DueRecipient]) -> Vec<String> {
        let mut ids: Vec<String> = due.iter().map(|d| d.id.clone()).collect();
        ids.sort();
        ids
    }

    pub fn strings(ids: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    /// `message` with the recipients in `suppressed` marked suppressed.
    pub fn message_suppressing(
        tenant: &str,
        id: &str,
        created_at: i64,
        rcpts: &[&str],
        suppressed: &[&str],
    ) -> NewMessage {
        let mut m = message(tenant, id, created_at, rcpts);
        for r in &mut m.recipients {
            if suppressed.contains(&r.id.as_str()) {
                r.status = RecipientStatus::Suppressed;
            }
        }
        m
    }

    /// A sub-account is stored with its parent and listed under it.
    pub async fn subaccounts_survive(store: &AnyStore) {
        store
            .insert_tenant(tenant("ten_parent", "parent"))
            .await
            .expect("parent");
        let mut child = tenant("ten_child", "child");
        child.parent_id = Some("ten_parent".into());
        store.insert_tenant(child.clone()).await.expect("child");
        store
            .insert_tenant(tenant("ten_other", "other"))
            .await
            .expect("other");
        let children = store.list_subaccounts("ten_parent").await.expect("list");
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].id, "ten_child");
        assert_eq!(children[0].parent_id.as_deref(), Some("ten_parent"));
        let got = store
            .get_tenant("ten_child")
            .await
            .expect("get")
            .expect("child");
        assert_eq!(got.parent_id.as_deref(), Some("ten_parent"));
        assert!(
            store
                .list_subaccounts("ten_other")
                .await
                .expect("list")
                .is_empty()
        );
        assert!(
            store
                .set_tenant_cancelled("ten_parent", Some(5), 5)
                .await
                .expect("cancel")
        );
        let got = store.get_tenant("ten_child").await.expect("get");
        assert_eq!(got.expect("child").cancelled_at, Some(5));
    }

    /// An API key with an allowlist and a rate limit is stored and read back whole.
    pub async fn key_limits_survive(store: &AnyStore) {
        let key = ApiKeyRecord {
            id: "key_upgraded".into(),
            tenant_id: "ten_a".into(),
            name: "upgraded".into(),
            secret_hash: vec![1; 32],
            scopes: vec![Scope::Send],
            created_at: 1,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            allowed_ips: vec!["192.0.2.0/24".into()],
            rate_limit: Some(10),
        };
        store.insert_api_key(key).await.expect("insert key");
        let got = store
            .get_api_key("key_upgraded")
            .await
            .expect("get")
            .expect("key");
        assert_eq!(
            (got.allowed_ips, got.rate_limit),
            (vec!["192.0.2.0/24".to_string()], Some(10))
        );
    }

    pub fn suppression(
        tenant: &str,
        hash: &[u8],
        stream: Option<&str>,
        reason: SuppressionReason,
        created_at: i64,
    ) -> SuppressionRecord {
        SuppressionRecord {
            seq: 0,
            tenant_id: tenant.into(),
            rcpt_hash: hash.to_vec(),
            stream: stream.map(str::to_string),
            reason,
            created_at,
            address_enc: Some(format!("sealed:{created_at}").into_bytes()),
            source: Some(format!("rcpt_{created_at}")),
        }
    }

    pub fn is_conflict(r: Result<(), StoreError>, what: &str) -> bool {
        matches!(r, Err(StoreError::Conflict(w)) if w == what)
    }
}

// ---------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------

mod scenarios {
    use super::fixtures::*;
    use super::*;

    pub async fn tenants(s: AnyStore) {
        s.insert_tenant(tenant("ten_a", "acme"))
            .await
            .expect("insert tenant");
        let t = s
            .get_tenant("ten_a")
            .await
            .expect("get")
            .expect("tenant exists");
        assert_eq!(t.id, "ten_a");
        assert_eq!(t.name, "acme");
        assert_eq!(t.wrapped_key, b"wrapped:ten_a");
        assert_eq!(t.created_at, 1_000);
        let by_name = s
            .get_tenant_by_name("acme")
            .await
            .expect("get")
            .expect("by name");
        assert_eq!(by_name.id, "ten_a");
        assert!(s.get_tenant("ten_missing").await.expect("get").is_none());
        assert!(
            s.get_tenant_by_name("ACME").await.expect("get").is_none(),
            "names are byte-exact"
        );

        assert!(
            is_conflict(s.insert_tenant(tenant("ten_b", "acme")).await, "tenant"),
            "duplicate name"
        );
        assert!(
            is_conflict(s.insert_tenant(tenant("ten_a", "other")).await, "tenant"),
            "duplicate id"
        );
        assert!(s.get_tenant("ten_b").await.expect("get").is_none());
        assert!(s.get_tenant_by_name("other").await.expect("get").is_none());
        s.insert_tenant(tenant("ten_b", "Acme"))
            .await
            .expect("names differing in case are distinct");
        assert_eq!(
            s.get_tenant_by_name("Acme")
                .await
                .expect("get")
                .expect("found")
                .id,
            "ten_b"
        );
    }

    pub async fn api_keys(s: AnyStore) {
        let key = ApiKeyRecord {
            id: "key_1".into(),
            tenant_id: "ten_a".into(),
            name: "ci".into(),
            secret_hash: vec![7; 32],
            scopes: vec![Scope::Send, Scope::Read],
            created_at: 1_000,
            expires_at: Some(99_000),
            revoked_at: None,
            last_used_at: None,
            allowed_ips: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            rate_limit: Some(120),
        };
        s.insert_api_key(key.clone()).await.expect("insert key");
        let got = s
            .get_api_key("key_1")
            .await
            .expect("get")
            .expect("key exists");
        assert_eq!(got.id, "key_1");
        assert_eq!(got.tenant_id, "ten_a");
        assert_eq!(got.name, "ci");
        assert_eq!(got.secret_hash, vec![7; 32]);
        assert_eq!(
            got.scopes,
            vec![Scope::Read, Scope::Send],
            "scopes come back parsed and sorted"
        );
        assert_eq!(got.created_at, 1_000);
        assert_eq!(got.allowed_ips, key.allowed_ips);
        assert_eq!(got.rate_limit, Some(120));
        assert_eq!(got.expires_at, Some(99_000));
        assert_eq!(got.revoked_at, None);
        assert_eq!(got.last_used_at, None);

        s.touch_api_key("key_1", 5_000).await.expect("touch");
        assert_eq!(
            s.get_api_key("key_1")
                .await
                .expect("get")
                .expect("key")
                .last_used_at,
            Some(5_000)
        );
        s.touch_api_key("key_1", 6_000).await.expect("touch again");
        assert_eq!(
            s.get_api_key("key_1")
                .await
                .expect("get")
                .expect("key")
                .last_used_at,
            Some(6_000)
        );
        s.touch_api_key("key_missing", 6_000)
            .await
            .expect("touching an unknown key is a no-op");

        let mut all = ApiKeyRecord {
            id: "key_2".into(),
            scopes: Scope::ALL.to_vec(),
            expires_at: None,
            ..key.clone()
        };
        s.insert_api_key(all.clone())
            .await
            .expect("insert key with every scope");
        let got = s.get_api_key("key_2").await.expect("get").expect("key");
        all.scopes.sort_by_key(|s| s.as_str());
        assert_eq!(got.scopes, all.scopes);
        assert_eq!(got.expires_at, None);
        assert_eq!(
            s.get_api_key("key_1")
                .await
                .expect("get")
                .expect("key")
                .last_used_at,
            Some(6_000)
        );

        let none = ApiKeyRecord {
            id: "key_3".into(),
            scopes: Vec::new(),
            ..key.clone()
        };
        s.insert_api_key(none)
            .await
            .expect("insert key without scopes");
        assert!(
            s.get_api_key("key_3")
                .await
                .expect("get")
                .expect("key")
                .scopes
                .is_empty()
        );

        assert!(is_conflict(s.insert_api_key(key).await, "api key"));
        assert!(s.get_api_key("key_missing").await.expect("get").is_none());
    }

    fn dkim(id: &str, selector: &str, created_at: i64) -> DkimKeyRecord {
        DkimKeyRecord {
            id: id.into(),
            selector: selector.into(),
            algorithm: if selector.starts_with("ed") {
                "ed25519-sha256"
            } else {
                "rsa-sha256"
            }
            .into(),
            private_key_enc: format!("pk:{id}").into_bytes(),
            public_key: format!("PUB{id}"),
            created_at,
        }
    }

    pub async fn domains(s: AnyStore) {
        let example = DomainRecord {
            tenant_id: "ten_a".into(),
            name: "example.com".into(),
            created_at: 1_000,
            // Given newest first: keys come back oldest first.
            keys: vec![
                dkim("dkim_2", "ed2026", 2_000),
                dkim("dkim_1", "rsa2026", 1_000),
            ],
        };
        s.insert_domain(example.clone())
            .await
            .expect("insert domain");
        let got = s
            .get_domain("ten_a", "example.com")
            .await
            .expect("get")
            .expect("domain exists");
        assert_eq!(got.tenant_id, "ten_a");
        assert_eq!(got.name, "example.com");
        assert_eq!(got.created_at, 1_000);
        assert_eq!(got.keys.len(), 2);
        let (k1, k2) = (&got.keys[0], &got.keys[1]);
        assert_eq!(
            (k1.id.as_str(), k1.selector.as_str(), k1.algorithm.as_str()),
            ("dkim_1", "rsa2026", "rsa-sha256")
        );
        assert_eq!(k1.private_key_enc, b"pk:dkim_1");
        assert_eq!(k1.public_key, "PUBdkim_1");
        assert_eq!(k1.created_at, 1_000);
        assert_eq!(
            (
                k2.id.as_str(),
                k2.selector.as_str(),
                k2.algorithm.as_str(),
                k2.created_at
            ),
            ("dkim_2", "ed2026", "ed25519-sha256", 2_000)
        );

        s.insert_domain(DomainRecord {
            tenant_id: "ten_a".into(),
            name: "alpha.example".into(),
            created_at: 3_000,
            keys: vec![dkim("dkim_3", "rsa2027", 3_000)],
        })
        .await
        .expect("insert second domain");
        let list = s.list_domains("ten_a").await.expect("list");
        let names: Vec<&str> = list.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["alpha.example", "example.com"], "ordered by name");
        assert_eq!(list[0].keys.len(), 1);
        assert_eq!(list[0].keys[0].id, "dkim_3");
        let listed_ids: Vec<&str> = list[1].keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(listed_ids, ["dkim_1", "dkim_2"]);

        // A duplicate is refused and adds nothing.
        let mut dup = example.clone();
        dup.keys = vec![dkim("dkim_9", "extra", 9_000)];
        assert!(is_conflict(s.insert_domain(dup).await, "domain"));
        assert_eq!(
            s.get_domain("ten_a", "example.com")
                .await
                .expect("get")
                .expect("domain")
                .keys
                .len(),
            2
        );

        // A key id clash undoes the whole insert.
        let clash = DomainRecord {
            tenant_id: "ten_a".into(),
            name: "clash.example".into(),
            created_at: 4_000,
            keys: vec![
                dkim("dkim_4", "fresh", 4_000),
                dkim("dkim_1", "reused", 4_000),
            ],
        };
        assert!(is_conflict(s.insert_domain(clash).await, "dkim key"));
        assert!(
            s.get_domain("ten_a", "clash.example")
                .await
                .expect("get")
                .is_none()
        );
        assert_eq!(s.list_domains("ten_a").await.expect("list").len(), 2);

        // A name belongs to one tenant: another tenant's insert is refused and adds
        // nothing.
        assert!(
            s.get_domain("ten_b", "example.com")
                .await
                .expect("get")
                .is_none()
        );
        assert!(s.list_domains("ten_b").await.expect("list").is_empty());
        let squat = DomainRecord {
            tenant_id: "ten_b".into(),
            name: "example.com".into(),
            created_at: 5_000,
            keys: vec![dkim("dkim_b", "b2026", 5_000)],
        };
        assert!(is_conflict(s.insert_domain(squat.clone()).await, "domain"));
        assert!(s.list_domains("ten_b").await.expect("list").is_empty());
        assert_eq!(
            s.domain_owners("example.com").await.expect("owners"),
            ["ten_a"]
        );
        assert!(
            s.domain_owners("unknown.example")
                .await
                .expect("owners")
                .is_empty()
        );
        let a = s
            .get_domain("ten_a", "example.com")
            .await
            .expect("get")
            .expect("domain");
        assert_eq!(a.keys.len(), 2, "tenant A's keys are untouched");

        // Removing it (another tenant's removal does nothing) frees the name with its
        // keys; then the other tenant may register it, and its key ids may be reused.
        assert!(
            !s.delete_domain("ten_b", "example.com")
                .await
                .expect("delete")
        );
        assert!(
            s.delete_domain("ten_a", "example.com")
                .await
                .expect("delete")
        );
        assert!(
            !s.delete_domain("ten_a", "example.com")
                .await
                .expect("delete again")
        );
        assert!(
            s.get_domain("ten_a", "example.com")
                .await
                .expect("get")
                .is_none()
        );
        let left: Vec<String> = s
            .list_domains("ten_a")
            .await
            .expect("list")
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(left, ["alpha.example"]);
        let mut moved = squat;
        moved.keys.push(dkim("dkim_1", "reused", 5_000));
        s.insert_domain(moved).await.expect("the freed name");
        assert_eq!(
            s.domain_owners("example.com").await.expect("owners"),
            ["ten_b"]
        );
        assert_eq!(
            s.get_domain("ten_b", "example.com")
                .await
                .expect("get")
                .expect("domain")
                .keys
                .len(),
            2
        );
    }

    /// Tenants adding the same name at once: exactly one of them gets it.
    pub async fn concurrent_domain_adds(s: AnyStore) {
        let s = Arc::new(s);
        for round in 0..5 {
            let name = format!("race{round}.example");
            let adds = (0..6).map(|t| {
                let (s, name) = (s.clone(), name.clone());
                tokio::spawn(async move {
                    s.insert_domain(DomainRecord {
                        tenant_id: format!("ten_{t}"),
                        name,
                        created_at: 1_000,
                        keys: vec![dkim(&format!("dkim_{round}_{t}"), "s", 1_000)],
                    })
                    .await
                })
            });
            let mut won = 0;
            for add in adds.collect::<Vec<_>>() {
                match add.await.expect("task") {
                    Ok(()) => won += 1,
                    Err(StoreError::Conflict("domain")) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            assert_eq!(won, 1, "{name}");
            let owners = s.domain_owners(&name).await.expect("owners");
            assert_eq!(owners.len(), 1, "{name}");
            let d = s
                .get_domain(&owners[0], &name)
                .await
                .expect("get")
                .expect("the winner's domain");
            assert_eq!(d.keys.len(), 1, "only the winner's key is stored");
        }
    }

    pub async fn accept_and_get_message(s: AnyStore) {
        // Mixed-case ids: recipients come back in byte order ("A" < "b") on every
        // backend, whatever the database locale.
        let mut m1 = message("ten_a", "msg_1", 1_000, &["rcpt_1_b", "rcpt_1_A"]);
        m1.mail_from_enc = Some(b"from:msg_1".to_vec());
        let m2 = message("ten_a", "msg_2", 1_001, &["rcpt_2_a", "rcpt_2_b"]);
        let mut m3 = message("ten_a", "msg_3", 1_002, &["rcpt_3_a", "rcpt_3_b"]);
        m3.stream = "broadcast".into();
        s.accept(batch(vec![m1.clone(), m2.clone(), m3.clone()]))
            .await
            .expect("accept batch");

        let mut last_seq = 0;
        for m in [&m1, &m2, &m3] {
            let got = s
                .get_message("ten_a", &m.id)
                .await
                .expect("get")
                .expect("message exists");
            assert_eq!(got.id, m.id);
            assert_eq!(got.tenant_id, "ten_a");
            assert_eq!(got.stream, m.stream);
            assert_eq!(got.created_at, m.created_at);
            assert_eq!(got.meta_enc, m.meta_enc);

            let mut expected: Vec<&NewRecipient> = m.recipients.iter().collect();
            expected.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
            assert_eq!(got.recipients.len(), 2);
            for (r, want) in got.recipients.iter().zip(expected) {
                assert_eq!(r.id, want.id, "recipients ordered by id");
                assert_eq!(r.rcpt_hash, want.rcpt_hash);
                assert_eq!(r.address_enc, want.address_enc);
                assert_eq!(r.domain, want.domain);
                assert_eq!(r.status, RecipientStatus::Queued);
                assert_eq!(r.attempts, 0);
                assert_eq!(r.next_attempt_at, Some(m.created_at), "due at once");
                assert_eq!(r.updated_at, m.created_at);
            }

            assert_eq!(got.events.len(), 2, "one accepted event per recipient");
            for (e, r) in got.events.iter().zip(&m.recipients) {
                assert_eq!(e.recipient_id, r.id, "events in recipient order");
                assert_eq!(e.event_type, EventType::Accepted);
                assert_eq!(e.message_id, m.id);
                assert_eq!(e.tenant_id, "ten_a");
                assert_eq!(e.rcpt_hash, r.rcpt_hash);
                assert_eq!(e.at, m.created_at);
                assert_eq!(e.detail_enc, None);
                assert!(e.seq > last_seq, "seq grows through the batch");
                last_seq = e.seq;
            }
        }
        assert_eq!(
            s.list_events(events("ten_a", 100))
                .await
                .expect("list")
                .len(),
            6
        );

        // Tenant isolation.
        assert!(
            s.get_message("ten_b", "msg_1")
                .await
                .expect("get")
                .is_none()
        );
        assert!(
            s.get_message("ten_a", "msg_missing")
                .await
                .expect("get")
                .is_none()
        );
        assert!(
            s.list_events(events("ten_b", 100))
                .await
                .expect("list")
                .is_empty()
        );

        // A batch with a lease is stored the same way.
        let leased = AcceptBatch {
            messages: vec![message("ten_a", "msg_4", 2_000, &["rcpt_4_a"])],
            idempotency: None,
            lease: Some(("node-1".into(), 9_000)),
        };
        s.accept(leased).await.expect("accept with lease");
        let got = s
            .get_message("ten_a", "msg_4")
            .await
            .expect("get")
            .expect("message");
        assert_eq!(got.recipients[0].status, RecipientStatus::Queued);
        assert_eq!(got.events.len(), 1);
        assert_eq!(
            s.release_leases("node-1").await.expect("release"),
            1,
            "accept took the lease"
        );
    }

    pub async fn accept_conflicts_are_atomic(s: AnyStore) {
        s.accept(batch(vec![message("ten_a", "msg_1", 1_000, &["rcpt_1"])]))
            .await
            .expect("accept");

        let dup_message = batch(vec![
            message("ten_a", "msg_2", 1_000, &["rcpt_2"]),
            message("ten_a", "msg_1", 1_000, &["rcpt_1x"]),
        ]);
        assert!(is_conflict(s.accept(dup_message).await, "message"));
        let dup_rcpt = batch(vec![message(
            "ten_a",
            "msg_3",
            1_000,
            &["rcpt_3", "rcpt_1"],
        )]);
        assert!(is_conflict(s.accept(dup_rcpt).await, "recipient"));
        let dup_in_batch = batch(vec![
            message("ten_a", "msg_4", 1_000, &["rcpt_4"]),
            message("ten_a", "msg_4", 1_000, &["rcpt_5"]),
        ]);
        assert!(is_conflict(s.accept(dup_in_batch).await, "message"));

        for id in ["msg_2", "msg_3", "msg_4"] {
            assert!(
                s.get_message("ten_a", id).await.expect("get").is_none(),
                "{id} rolled back"
            );
        }
        let all = s.list_events(events("ten_a", 100)).await.expect("list");
        assert_eq!(all.len(), 1, "no events of failed batches");
        assert_eq!(
            s.claim_due("n", 5_000, 6_000, 100)
                .await
                .expect("claim")
                .len(),
            1,
            "only rcpt_1 exists"
        );
    }

    fn idem(tenant: &str, created_at: i64, response: &str) -> IdempotencyRecord {
        IdempotencyRecord {
            tenant_id: tenant.into(),
            key_hash: vec![0xab; 32],
            created_at,
            response_enc: response.as_bytes().to_vec(),
        }
    }

    pub async fn idempotency(s: AnyStore) {
        let t = 10_000_000;
        let first = AcceptBatch {
            messages: vec![message("ten_a", "msg_1", t, &["rcpt_1"])],
            idempotency: Some(idem("ten_a", t, "resp-1")),
            lease: None,
        };
        s.accept(first).await.expect("first accept");
        let got = s
            .get_idempotency("ten_a", &[0xab; 32], t - IDEMPOTENCY_TTL_MS)
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(got.tenant_id, "ten_a");
        assert_eq!(got.key_hash, vec![0xab; 32]);
        assert_eq!(got.created_at, t);
        assert_eq!(got.response_enc, b"resp-1");
        assert!(
            s.get_idempotency("ten_a", &[0xab; 32], t + 1)
                .await
                .expect("get")
                .is_none(),
            "since"
        );
        assert!(
            s.get_idempotency("ten_a", &[0xcd; 32], 0)
                .await
                .expect("get")
                .is_none(),
            "other key"
        );
        assert!(
            s.get_idempotency("ten_b", &[0xab; 32], 0)
                .await
                .expect("get")
                .is_none(),
            "other tenant"
        );

        // Same key again: refused, and nothing of the batch is stored.
        let again = AcceptBatch {
            messages: vec![message("ten_a", "msg_2", t + 1, &["rcpt_2"])],
            idempotency: Some(idem("ten_a", t + 1, "resp-2")),
            lease: None,
        };
        assert!(is_conflict(s.accept(again).await, "idempotency key"));
        assert!(
            s.get_message("ten_a", "msg_2")
                .await
                .expect("get")
                .is_none()
        );
        // Exactly TTL old is still remembered.
        let at_ttl = AcceptBatch {
            messages: vec![message(
                "ten_a",
                "msg_3",
                t + IDEMPOTENCY_TTL_MS,
                &["rcpt_3"],
            )],
            idempotency: Some(idem("ten_a", t + IDEMPOTENCY_TTL_MS, "resp-3")),
            lease: None,
        };
        assert!(is_conflict(s.accept(at_ttl).await, "idempotency key"));
        let got = s
            .get_idempotency("ten_a", &[0xab; 32], 0)
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(got.response_enc, b"resp-1", "unchanged by refused accepts");

        // Older than the TTL: overwritten.
        let later = t + IDEMPOTENCY_TTL_MS + 1;
        let fresh = AcceptBatch {
            messages: vec![message("ten_a", "msg_4", later, &["rcpt_4"])],
            idempotency: Some(idem("ten_a", later, "resp-4")),
            lease: None,
        };
        s.accept(fresh).await.expect("expired key is reusable");
        let got = s
            .get_idempotency("ten_a", &[0xab; 32], 0)
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(got.created_at, later);
        assert_eq!(got.response_enc, b"resp-4");
        assert!(
            s.get_message("ten_a", "msg_4")
                .await
                .expect("get")
                .is_some()
        );

        // Keys are per tenant; a batch may carry only the record.
        let other = AcceptBatch {
            messages: Vec::new(),
            idempotency: Some(idem("ten_b", t, "resp-b")),
            lease: None,
        };
        s.accept(other).await.expect("same key, other tenant");
        let got = s
            .get_idempotency("ten_b", &[0xab; 32], 0)
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(got.response_enc, b"resp-b");
    }

    pub async fn claim_due_and_leases(s: AnyStore) {
        let m1 = message("ten_a", "msg_1", 1_000, &["r1a", "r1b"]);
        let m2 = message("ten_a", "msg_2", 5_000, &["r2a", "r2b"]);
        let m4 = message("ten_b", "msg_4", 4_000, &["r4a", "r4b"]);
        s.accept(batch(vec![m1.clone(), m2, m4]))
            .await
            .expect("accept");
        let leased = AcceptBatch {
            messages: vec![message("ten_a", "msg_3", 1_000, &["r3a", "r3b"])],
            idempotency: None,
            lease: Some(("node-x".into(), 10_000)),
        };
        s.accept(leased).await.expect("accept leased");

        // Due and free: only msg_1 (msg_2/msg_4 not due yet, msg_3 leased).
        let got = s
            .claim_due("node-a", 2_000, 3_000, 10)
            .await
            .expect("claim");
        assert_eq!(ids(&got), strings(&["r1a", "r1b"]));
        for d in &got {
            assert_eq!(d.message_id, "msg_1");
            assert_eq!(d.tenant_id, "ten_a");
            assert_eq!(d.rcpt_hash, hash(&d.id));
            assert_eq!(d.address_enc, format!("addr:{}", d.id).into_bytes());
            assert_eq!(d.domain, "example.net");
            assert_eq!(d.attempts, 0);
            assert_eq!(d.expires_at, m1.expires_at);
        }
        assert!(
            s.claim_due("node-b", 2_000, 3_000, 10)
                .await
                .expect("claim")
                .is_empty(),
            "leased"
        );
        assert!(
            s.claim_due("node-b", 3_000, 4_500, 10)
                .await
                .expect("claim")
                .is_empty(),
            "a lease ending exactly now still holds"
        );

        // Renewal keeps msg_1 with node-a; msg_2 and msg_4 have come due.
        s.renew_leases("node-a", 6_000).await.expect("renew");
        let got = s
            .claim_due("node-b", 5_000, 7_000, 10)
            .await
            .expect("claim");
        assert_eq!(ids(&got), strings(&["r2a", "r2b", "r4a", "r4b"]));

        // The lease expires: claimable again, `limit` at a time.
        let one = s.claim_due("node-c", 6_001, 9_000, 1).await.expect("claim");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].message_id, "msg_1");
        let rest = s
            .claim_due("node-c", 6_001, 9_000, 10)
            .await
            .expect("claim");
        assert_eq!(rest.len(), 1);
        assert_eq!(
            ids(&[one[0].clone(), rest[0].clone()]),
            strings(&["r1a", "r1b"])
        );

        // Oldest due first: msg_4 (4000) before msg_2 (5000).
        let got = s.claim_due("node-d", 7_001, 9_000, 2).await.expect("claim");
        assert_eq!(ids(&got), strings(&["r4a", "r4b"]));

        // Releasing a node's leases makes its rows claimable at once.
        assert_eq!(s.release_leases("node-x").await.expect("release"), 2);
        assert_eq!(s.release_leases("node-x").await.expect("release"), 0);
        let got = s
            .claim_due("node-e", 7_001, 9_000, 10)
            .await
            .expect("claim");
        assert_eq!(ids(&got), strings(&["r2a", "r2b", "r3a", "r3b"]));
        assert_eq!(s.release_leases("node-c").await.expect("release"), 2);
        let got = s
            .claim_due("node-f", 7_001, 9_000, 10)
            .await
            .expect("claim");
        assert_eq!(ids(&got), strings(&["r1a", "r1b"]));
        assert!(
            s.claim_due("node-g", 7_001, 9_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        assert!(
            s.claim_due("node-g", 7_001, 9_000, 0)
                .await
                .expect("claim")
                .is_empty()
        );
    }

    pub async fn concurrent_claims_are_disjoint(s: AnyStore) {
        const MESSAGES: usize = 100;
        let messages: Vec<NewMessage> = (0..MESSAGES)
            .map(|i| {
                let (a, b) = (format!("r{i}a"), format!("r{i}b"));
                message(
                    "ten_a",
                    &format!("msg_{i}"),
                    1_000 + i as i64 % 7,
                    &[a.as_str(), b.as_str()],
                )
            })
            .collect();
        s.accept(batch(messages)).await.expect("accept");

        // Two claimers at once get disjoint sets.
        let (a, b) = tokio::join!(
            tokio::spawn({
                let s = s.clone();
                async move { s.claim_due("node-a", 2_000, 60_000, 30).await }
            }),
            tokio::spawn({
                let s = s.clone();
                async move { s.claim_due("node-b", 2_000, 60_000, 30).await }
            }),
        );
        let a = a.expect("join").expect("claim a");
        let b = b.expect("join").expect("claim b");
        assert_eq!(a.len(), 30);
        assert_eq!(b.len(), 30);
        let a_ids: HashSet<String> = a.iter().map(|d| d.id.clone()).collect();
        assert!(
            b.iter().all(|d| !a_ids.contains(&d.id)),
            "a recipient was claimed twice"
        );

        // Four claimers drain the rest in small bites: every recipient exactly once.
        let claimers: Vec<_> = (0..4)
            .map(|n| {
                let s = s.clone();
                tokio::spawn(async move {
                    let node = format!("node-{n}");
                    let mut mine = Vec::new();
                    loop {
                        let got = s.claim_due(&node, 2_000, 60_000, 7).await.expect("claim");
                        assert!(got.len() <= 7, "limit exceeded");
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.into_iter().map(|d| d.id));
                    }
                })
            })
            .collect();
        let mut all: Vec<String> = a_ids
            .into_iter()
            .chain(b.into_iter().map(|d| d.id))
            .collect();
        for c in claimers {
            all.extend(c.await.expect("join"));
        }
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "a recipient was claimed twice");
        assert_eq!(all.len(), MESSAGES * 2, "every due recipient was claimed");
        assert!(
            s.claim_due("node-z", 2_000, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
    }

    pub async fn load_content(s: AnyStore) {
        let mut m1 = message("ten_a", "msg_1", 1_000, &["rcpt_1"]);
        m1.mail_from_enc = Some(b"from:msg_1".to_vec());
        m1.from_domain = "mail.example.com".into();
        let mut m2 = message("ten_b", "msg_2", 1_000, &["rcpt_2"]);
        m2.stream = "broadcast".into();
        s.accept(batch(vec![m1, m2])).await.expect("accept");

        let c = s
            .load_content("msg_1")
            .await
            .expect("load")
            .expect("content");
        assert_eq!(c.tenant_id, "ten_a");
        assert_eq!(c.stream, "transactional");
        assert_eq!(c.from_domain, "mail.example.com");
        assert_eq!(c.content_enc.as_deref(), Some(b"content:msg_1".as_slice()));
        assert_eq!(c.mail_from_enc.as_deref(), Some(b"from:msg_1".as_slice()));
        let c = s
            .load_content("msg_2")
            .await
            .expect("load")
            .expect("content");
        assert_eq!(c.tenant_id, "ten_b");
        assert_eq!(c.stream, "broadcast");
        assert_eq!(c.content_enc.as_deref(), Some(b"content:msg_2".as_slice()));
        assert_eq!(c.mail_from_enc, None);
        assert!(s.load_content("msg_missing").await.expect("load").is_none());
    }

    fn contact(tenant: &str, who: &str, data: &str, at: i64) -> ContactRecord {
        ContactRecord {
            tenant_id: tenant.into(),
            rcpt_hash: hash(who),
            data_enc: data.as_bytes().to_vec(),
            restricted_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn consent(
        tenant: &str,
        who: &str,
        purpose: &str,
        status: ConsentStatus,
        at: i64,
    ) -> ConsentRecord {
        ConsentRecord {
            seq: 0,
            tenant_id: tenant.into(),
            rcpt_hash: hash(who),
            purpose: purpose.into(),
            status,
            at,
            record_enc: format!("evidence:{purpose}:{at}").into_bytes(),
        }
    }

    fn subject_key(who: &str, key: &str) -> SubjectKey {
        SubjectKey {
            rcpt_hash: hash(who),
            key_wrapped: key.as_bytes().to_vec(),
            created_at: 1_000,
        }
    }

    /// A person's key is stored once (the first writer's wins, also within one
    /// call), per tenant, and erasure destroys it.
    pub async fn subject_keys(s: AnyStore) {
        let stored = |mut keys: Vec<SubjectKey>| {
            keys.sort_by(|a, b| a.rcpt_hash.cmp(&b.rcpt_hash));
            keys.into_iter()
                .map(|k| String::from_utf8(k.key_wrapped).expect("utf-8"))
                .collect::<Vec<_>>()
        };
        let first = s
            .ensure_subject_keys(
                "ten_a",
                vec![subject_key("p1", "k1"), subject_key("p1", "k1-again")],
            )
            .await
            .expect("ensure");
        assert_eq!(stored(first), ["k1"]);
        let both = s
            .ensure_subject_keys(
                "ten_a",
                vec![subject_key("p1", "late"), subject_key("p2", "k2")],
            )
            .await
            .expect("ensure");
        assert_eq!(stored(both), ["k1", "k2"], "an existing key is kept");
        let other = s
            .ensure_subject_keys("ten_b", vec![subject_key("p1", "b1")])
            .await
            .expect("ensure");
        assert_eq!(stored(other), ["b1"], "keys are per tenant");
        let read = s
            .subject_keys(
                "ten_a",
                vec![hash("p2"), hash("p1"), hash("p2"), hash("nobody")],
            )
            .await
            .expect("read");
        assert_eq!(stored(read), ["k1", "k2"]);
        assert_eq!(
            s.erase_subject("ten_a", &hash("p1"))
                .await
                .expect("erase")
                .keys,
            1
        );
        let left = s
            .subject_keys("ten_a", vec![hash("p1"), hash("p2")])
            .await
            .expect("read");
        assert_eq!(stored(left), ["k2"]);
        let again = s
            .ensure_subject_keys("ten_a", vec![subject_key("p1", "fresh")])
            .await
            .expect("ensure");
        assert_eq!(
            stored(again),
            ["fresh"],
            "after erasure a new key is a new one"
        );
        assert_eq!(
            stored(
                s.subject_keys("ten_b", vec![hash("p1")])
                    .await
                    .expect("read")
            ),
            ["b1"],
            "erasure in one tenant leaves the other's key"
        );
    }

    /// A contact key of a database older than version 9 became the person's key.
    pub async fn contact_keys_moved(s: &AnyStore) {
        let keys = s
            .subject_keys("ten_a", vec![hash("legacy")])
            .await
            .expect("read");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key_wrapped, b"legacy-key");
        assert_eq!(keys[0].created_at, 7);
        let c = s
            .get_contact("ten_a", &hash("legacy"))
            .await
            .expect("get")
            .expect("the contact stays");
        assert_eq!(c.data_enc, b"v");
    }

    /// Contacts upsert (keeping their key and creation time), are per tenant, can be
    /// restricted; consent records are append-only history.
    pub async fn contacts_and_consents(s: AnyStore) {
        assert!(
            s.upsert_contact(contact("ten_a", "p1", "v1", 1_000))
                .await
                .expect("insert")
        );
        assert!(
            !s.upsert_contact(contact("ten_a", "p1", "v2", 2_000))
                .await
                .expect("update")
        );
        let c = s
            .get_contact("ten_a", &hash("p1"))
            .await
            .expect("get")
            .expect("contact");
        assert_eq!(
            (c.data_enc, c.created_at, c.updated_at, c.restricted_at),
            (b"v2".to_vec(), 1_000, 2_000, None)
        );
        assert!(
            s.get_contact("ten_b", &hash("p1"))
                .await
                .expect("get")
                .is_none()
        );
        assert!(
            s.restrict_contact("ten_a", &hash("p1"), Some(3_000))
                .await
                .expect("restrict")
        );
        assert!(
            !s.restrict_contact("ten_b", &hash("p1"), Some(3_000))
                .await
                .expect("other tenant")
        );
        let c = s
            .get_contact("ten_a", &hash("p1"))
            .await
            .expect("get")
            .expect("contact");
        assert_eq!(c.restricted_at, Some(3_000));
        s.restrict_contact("ten_a", &hash("p1"), None)
            .await
            .expect("lift");

        let a = s
            .add_consent(consent(
                "ten_a",
                "p1",
                "newsletter",
                ConsentStatus::Active,
                1_100,
            ))
            .await
            .expect("add");
        let b = s
            .add_consent(consent(
                "ten_a",
                "p1",
                "newsletter",
                ConsentStatus::Withdrawn,
                1_200,
            ))
            .await
            .expect("add");
        s.add_consent(consent(
            "ten_a",
            "p2",
            "newsletter",
            ConsentStatus::Active,
            1_300,
        ))
        .await
        .expect("add");
        assert!(b > a);
        let history = s.list_consents("ten_a", &hash("p1")).await.expect("list");
        let got: Vec<_> = history
            .iter()
            .map(|c| {
                (
                    c.seq,
                    c.purpose.as_str(),
                    c.status,
                    c.at,
                    c.record_enc.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    a,
                    "newsletter",
                    ConsentStatus::Active,
                    1_100,
                    b"evidence:newsletter:1100".to_vec()
                ),
                (
                    b,
                    "newsletter",
                    ConsentStatus::Withdrawn,
                    1_200,
                    b"evidence:newsletter:1200".to_vec()
                ),
            ]
        );
        assert!(
            s.list_consents("ten_b", &hash("p1"))
                .await
                .expect("list")
                .is_empty()
        );
    }

    /// Erasure removes the person's contact, consents and events, wipes their
    /// recipient rows (unsent ones become suppressed), purges their messages'
    /// content, strips sealed addresses from suppressions — and nothing of anyone
    /// else.
    pub async fn webhook_outbox(s: AnyStore) {
        let hook = |id: &str, tenant: &str, events: &[&str], streams: &[&str]| WebhookRecord {
            id: id.into(),
            tenant_id: tenant.into(),
            url: format!("https://hooks.example/{id}"),
            events: events.iter().map(|e| e.to_string()).collect(),
            streams: streams.iter().map(|e| e.to_string()).collect(),
            secret_enc: b"sealed".to_vec(),
            previous_secret_enc: None,
            previous_until: None,
            created_at: 500,
            disabled_at: None,
            failing_since: None,
        };
        s.insert_webhook(hook("wh_1", "ten_a", &["delivered", "bounced"], &[]))
            .await
            .expect("hook 1");
        s.insert_webhook(hook("wh_2", "ten_a", &[], &["broadcast"]))
            .await
            .expect("hook 2");
        s.insert_webhook(hook("wh_3", "ten_b", &[], &[]))
            .await
            .expect("hook 3");
        assert!(matches!(
            s.insert_webhook(hook("wh_1", "ten_a", &[], &[])).await,
            Err(StoreError::Conflict(_))
        ));
        let listed = s.list_webhooks(Some("ten_a")).await.expect("list");
        assert_eq!(
            listed,
            vec![
                hook("wh_1", "ten_a", &["delivered", "bounced"], &[]),
                hook("wh_2", "ten_a", &[], &["broadcast"])
            ]
        );
        assert_eq!(s.list_webhooks(None).await.expect("all").len(), 3);

        // `accepted` events match no endpoint: wh_1 filters by type, wh_2 by stream.
        s.accept(batch(vec![message("ten_a", "msg_1", 1_000, &["r1", "r2"])]))
            .await
            .expect("accept");
        assert!(
            s.claim_webhook_deliveries("n", 10_000, 20_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        s.record_deliveries(vec![
            update(
                "ten_a",
                "msg_1",
                "r1",
                RecipientStatus::Delivered,
                None,
                2_000,
            ),
            update(
                "ten_a",
                "msg_1",
                "r2",
                RecipientStatus::Bounced,
                None,
                2_100,
            ),
        ])
        .await
        .expect("outcomes");

        // One message's events go out in order: the second waits for the first.
        let first = s
            .claim_webhook_deliveries("n", 10_000, 20_000, 10)
            .await
            .expect("claim");
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(
            (
                first[0].webhook_id.as_str(),
                first[0].message_id.as_str(),
                first[0].attempts
            ),
            ("wh_1", "msg_1", 0)
        );
        let failed =
            |d: &WebhookDelivery, at: i64, state, next: Option<i64>, code| WebhookOutcome {
                attempt: WebhookAttemptRecord {
                    seq: 0,
                    delivery_seq: d.seq,
                    webhook_id: d.webhook_id.clone(),
                    tenant_id: d.tenant_id.clone(),
                    event_seq: d.event_seq,
                    at,
                    status_code: Some(code),
                    error: None,
                    duration_ms: 5,
                    state,
                },
                next_attempt_at: next,
                record: true,
                disable_failing_before: 0,
            };
        let disabled = s
            .finish_webhook_delivery(failed(
                &first[0],
                10_000,
                WebhookDeliveryState::Pending,
                Some(30_000),
                500,
            ))
            .await
            .expect("finish");
        assert!(!disabled);
        assert_eq!(
            s.list_webhooks(Some("ten_a")).await.expect("list")[0].failing_since,
            Some(10_000)
        );
        assert!(
            s.claim_webhook_deliveries("n", 20_000, 25_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        let again = s
            .claim_webhook_deliveries("n", 30_000, 40_000, 10)
            .await
            .expect("claim");
        assert_eq!(
            again
                .iter()
                .map(|d| (d.seq, d.attempts))
                .collect::<Vec<_>>(),
            vec![(first[0].seq, 1)]
        );
        s.finish_webhook_delivery(failed(
            &again[0],
            30_000,
            WebhookDeliveryState::Delivered,
            None,
            204,
        ))
        .await
        .expect("finish");
        assert_eq!(
            s.list_webhooks(Some("ten_a")).await.expect("list")[0].failing_since,
            None
        );
        let second = s
            .claim_webhook_deliveries("n", 30_000, 40_000, 10)
            .await
            .expect("claim");
        assert_eq!(second.len(), 1);
        assert!(second[0].event_seq > first[0].event_seq);

        // Failing past the limit disables the endpoint, and its deliveries wait.
        let mut d = failed(
            &second[0],
            31_000,
            WebhookDeliveryState::Pending,
            Some(32_000),
            503,
        );
        d.disable_failing_before = 31_000;
        assert!(
            !s.finish_webhook_delivery(d.clone()).await.expect("finish"),
            "first failure starts the run"
        );
        let second = s
            .claim_webhook_deliveries("n", 32_000, 40_000, 10)
            .await
            .expect("claim");
        let mut d = failed(
            &second[0],
            40_000,
            WebhookDeliveryState::Pending,
            Some(41_000),
            503,
        );
        d.disable_failing_before = 35_000;
        assert!(
            s.finish_webhook_delivery(d).await.expect("finish"),
            "failing since 31 000 < 35 000"
        );
        assert_eq!(
            s.list_webhooks(Some("ten_a")).await.expect("list")[0].disabled_at,
            Some(40_000)
        );
        assert!(
            s.claim_webhook_deliveries("n", 50_000, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );

        // Events keep queueing for a disabled endpoint, to be posted once it resumes.
        s.accept(batch(vec![message("ten_a", "msg_2", 1_000, &["r3"])]))
            .await
            .expect("accept");
        s.record_deliveries(vec![update(
            "ten_a",
            "msg_2",
            "r3",
            RecipientStatus::Delivered,
            None,
            45_000,
        )])
        .await
        .expect("outcome");
        assert!(
            s.claim_webhook_deliveries("n", 50_000, 60_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );

        let attempts = s
            .list_webhook_attempts("ten_a", "wh_1", None, 10)
            .await
            .expect("attempts");
        assert_eq!(
            attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
            vec![Some(503), Some(503), Some(204), Some(500)]
        );
        assert_eq!(
            s.list_webhook_attempts("ten_a", "wh_1", Some(attempts[1].seq), 10)
                .await
                .expect("page")
                .len(),
            2
        );
        assert!(
            s.list_webhook_attempts("ten_b", "wh_1", None, 10)
                .await
                .expect("other tenant")
                .is_empty()
        );

        // Re-enabling resumes; replay queues the range again; erasure removes a
        // person's deliveries and attempts; another tenant cannot touch the endpoint.
        let mut w = s.list_webhooks(Some("ten_a")).await.expect("list")[0].clone();
        w.disabled_at = None;
        w.failing_since = None;
        let mut foreign = w.clone();
        foreign.tenant_id = "ten_b".into();
        assert!(!s.update_webhook(foreign).await.expect("foreign update"));
        assert!(s.update_webhook(w).await.expect("enable"));
        assert_eq!(
            s.replay_webhook("ten_a", "wh_1", 0, 2_050, 55_000)
                .await
                .expect("replay"),
            1
        );
        assert_eq!(
            s.replay_webhook("ten_b", "wh_1", 0, 9_000, 55_000)
                .await
                .expect("foreign replay"),
            0
        );
        let e = s.erase_subject("ten_a", &hash("r2")).await.expect("erase");
        assert_eq!(e.webhook_deliveries, 1);
        let left = s
            .claim_webhook_deliveries("n", 60_000, 70_000, 10)
            .await
            .expect("claim");
        assert_eq!(
            left.len(),
            2,
            "the replayed r1 delivery and the one that waited"
        );
        assert!(
            !s.delete_webhook("ten_b", "wh_1")
                .await
                .expect("foreign delete")
        );
        let purged = s.purge(cutoffs(0, 0, 2_050, 100)).await.expect("purge");
        assert_eq!(
            purged.webhook_deliveries, 1,
            "only r1's first delivery is that old"
        );
        assert!(s.delete_webhook("ten_a", "wh_1").await.expect("delete"));
        assert!(
            s.list_webhook_attempts("ten_a", "wh_1", None, 10)
                .await
                .expect("attempts")
                .is_empty()
        );
        assert!(
            s.claim_webhook_deliveries("n", 90_000, 99_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        assert_eq!(s.list_webhooks(None).await.expect("all").len(), 2);
    }

    fn in_stream(mut m: NewMessage, stream: &str) -> NewMessage {
        m.stream = stream.into();
        m
    }

    fn stream_pause(stream: &str, reason: Option<&str>, at: i64) -> StreamPause {
        StreamPause {
            tenant_id: "ten_a".into(),
            stream: stream.into(),
            reason: reason.map(str::to_string),
            initial_settings: "{}".into(),
            at,
            detail_enc: Some(b"sealed".to_vec()),
        }
    }

    /// Streams are stored per tenant; pausing holds the stream's waiting mail (leased
    /// or not) and resuming queues it again, each with a stream event that webhooks
    /// filtered by stream receive.
    pub async fn streams_pause_and_resume(s: AnyStore) {
        let rec = |tenant: &str, name: &str, settings: &str| StreamRecord {
            tenant_id: tenant.into(),
            name: name.into(),
            settings: settings.into(),
            paused_at: None,
            pause_reason: None,
            resumed_at: None,
            created_at: 100,
            updated_at: 100,
        };
        s.insert_stream(rec("ten_a", "newsletters", "{}"))
            .await
            .expect("insert");
        assert!(matches!(
            s.insert_stream(rec("ten_a", "newsletters", "{}")).await,
            Err(StoreError::Conflict("stream"))
        ));
        s.insert_stream(rec("ten_b", "newsletters", "{}"))
            .await
            .expect("same name, other tenant");
        s.put_stream_settings("ten_a", "newsletters", r#"{"priority":3}"#.into(), 200)
            .await
            .expect("update");
        s.put_stream_settings("ten_a", "broadcast", r#"{"priority":7}"#.into(), 200)
            .await
            .expect("a built-in stream gets a row");
        let listed = s.list_streams(Some("ten_a")).await.expect("list");
        assert_eq!(
            listed
                .iter()
                .map(|r| (
                    r.name.as_str(),
                    r.settings.as_str(),
                    r.created_at,
                    r.updated_at
                ))
                .collect::<Vec<_>>(),
            [
                ("broadcast", r#"{"priority":7}"#, 200, 200),
                ("newsletters", r#"{"priority":3}"#, 100, 200)
            ]
        );
        assert_eq!(s.list_streams(None).await.expect("all").len(), 3);

        let hook = WebhookRecord {
            id: "wh_1".into(),
            tenant_id: "ten_a".into(),
            url: "https://hooks.example/1".into(),
            events: vec!["stream_paused".into(), "stream_resumed".into()],
            streams: vec!["broadcast".into()],
            secret_enc: b"sealed".to_vec(),
            previous_secret_enc: None,
            previous_until: None,
            created_at: 500,
            disabled_at: None,
            failing_since: None,
        };
        s.insert_webhook(hook).await.expect("hook");
        s.accept(batch(vec![
            in_stream(message("ten_a", "msg_1", 1_000, &["r1", "r2"]), "broadcast"),
            message("ten_a", "msg_2", 1_500, &["r3"]),
        ]))
        .await
        .expect("accept");
        // One of them is leased (in some node's memory) when the stream pauses: it is
        // held as well.
        let claimed = s.claim_due("n1", 1_000, 60_000, 1).await.expect("claim");
        assert_eq!(claimed.len(), 1);

        assert!(
            s.pause_stream(stream_pause("broadcast", Some("complaints"), 2_000))
                .await
                .expect("pause")
        );
        assert!(
            !s.pause_stream(stream_pause("broadcast", Some("again"), 2_100))
                .await
                .expect("already paused")
        );
        let row = s.list_streams(Some("ten_a")).await.expect("list").remove(0);
        assert_eq!(
            (row.paused_at, row.pause_reason.as_deref()),
            (Some(2_000), Some("complaints"))
        );
        assert_eq!(
            ids(&s.claim_due("n1", 3_000, 60_000, 10).await.expect("claim")),
            ["r3"]
        );
        let depth = s.queue_depth(Some("ten_a")).await.expect("depth");
        assert_eq!(
            depth
                .iter()
                .map(|d| (d.stream.as_str(), d.status, d.recipients))
                .collect::<Vec<_>>(),
            [
                ("broadcast", RecipientStatus::Suspended, 2),
                ("transactional", RecipientStatus::Queued, 1)
            ]
        );
        let m = s
            .get_message("ten_a", "msg_1")
            .await
            .expect("get")
            .expect("msg_1");
        assert!(
            m.recipients
                .iter()
                .all(|r| r.status == RecipientStatus::Suspended)
        );

        assert!(
            s.pause_stream(stream_pause("broadcast", None, 4_000))
                .await
                .expect("resume")
        );
        let row = s.list_streams(Some("ten_a")).await.expect("list").remove(0);
        assert_eq!(
            (row.paused_at, row.resumed_at, row.updated_at),
            (None, Some(4_000), 4_000)
        );
        assert!(
            !s.pause_stream(stream_pause("broadcast", None, 4_100))
                .await
                .expect("not paused")
        );
        assert_eq!(
            ids(&s.claim_due("n1", 4_000, 60_000, 10).await.expect("claim")),
            ["r1", "r2"]
        );

        let mut f = events("ten_a", 100);
        f.stream = Some("broadcast".into());
        let evs = s.list_events(f).await.expect("events");
        let stream_events: Vec<_> = evs
            .iter()
            .filter(|e| e.stream.is_some())
            .map(|e| {
                (
                    e.event_type,
                    e.stream.as_deref(),
                    e.message_id.as_str(),
                    e.at,
                )
            })
            .collect();
        assert_eq!(
            stream_events,
            [
                (EventType::StreamPaused, Some("broadcast"), "", 2_000),
                (EventType::StreamResumed, Some("broadcast"), "", 4_000)
            ]
        );
        assert_eq!(
            evs.iter()
                .filter(|e| e.event_type == EventType::Resumed)
                .count(),
            2,
            "each held recipient's timeline shows the resumption"
        );
        let posted = s
            .claim_webhook_deliveries("n", 10_000, 20_000, 10)
            .await
            .expect("claim hooks");
        // The stream-filtered hook gets the stream's events, in order: the resumption
        // follows once the pause is posted.
        let paused_seq = evs
            .iter()
            .find(|e| e.event_type == EventType::StreamPaused)
            .map(|e| e.seq);
        assert_eq!(
            posted.iter().map(|d| d.event_seq).collect::<Vec<_>>(),
            paused_seq.into_iter().collect::<Vec<_>>()
        );
        // A paused custom stream of another tenant is its own.
        assert!(
            s.pause_stream(StreamPause {
                tenant_id: "ten_b".into(),
                ..stream_pause("newsletters", Some("x"), 5_000)
            })
            .await
            .expect("pause b")
        );
        assert!(
            s.list_streams(Some("ten_a"))
                .await
                .expect("list")
                .iter()
                .all(|r| r.paused_at.is_none())
        );
    }

    /// Queue operations touch only the selected, idle recipients and record events.
    /// A person's waiting mail (queued, deferred, suspended; leased or not) of one
    /// stream or all is stopped with a final status and its event; other people,
    /// tenants and final recipients are untouched; a late outcome of an attempt in
    /// flight cannot make a stopped recipient waiting again.
    pub async fn stop_subject_mail(s: AnyStore) {
        // The person p1 has: msg_1 (transactional, with p2), msg_2 (broadcast, to be
        // deferred), msg_3 (broadcast, to be suspended), msg_5 (delivered); msg_4 is
        // another tenant's mail to the same hash.
        let to_p1 = |tenant: &str, id: &str, rcpt: &str, stream: &str| {
            let mut m = message(tenant, id, 1_000, &[rcpt]);
            m.stream = stream.into();
            m.recipients[0].rcpt_hash = hash("p1");
            m
        };
        s.accept(batch(vec![
            message("ten_a", "msg_1", 1_000, &["p1", "p2"]),
            to_p1("ten_a", "msg_2", "p1b", "broadcast"),
            to_p1("ten_a", "msg_3", "p1c", "broadcast"),
            to_p1("ten_b", "msg_4", "p1d", "broadcast"),
            to_p1("ten_a", "msg_5", "p1e", "broadcast"),
        ]))
        .await
        .expect("accept");
        let deferred = update(
            "ten_a",
            "msg_2",
            "p1b",
            RecipientStatus::Deferred,
            Some(90_000),
            1_100,
        );
        let delivered = update(
            "ten_a",
            "msg_5",
            "p1e",
            RecipientStatus::Delivered,
            None,
            1_100,
        );
        s.record_deliveries(vec![deferred, delivered])
            .await
            .expect("outcomes");
        let msg_3 = QueueSelector {
            message_id: Some("msg_3".into()),
            ..QueueSelector::default()
        };
        s.queue_action(msg_3, QueueAction::Suspend, 1_200)
            .await
            .expect("suspend");
        assert_eq!(
            ids(&s.claim_due("n1", 1_300, 60_000, 10).await.expect("claim")),
            ["p1", "p1d", "p2"]
        );
        let stop = |stream: Option<&str>, status, at| MailStop {
            tenant_id: "ten_a".into(),
            rcpt_hash: hash("p1"),
            stream: stream.map(str::to_string),
            status,
            at,
        };
        let suppressed = RecipientStatus::Suppressed;
        assert_eq!(
            s.stop_subject_mail(stop(Some("broadcast"), suppressed, 2_000))
                .await
                .expect("stop broadcast"),
            2,
            "the deferred and the suspended broadcast; not the transactional one"
        );
        let restricted = RecipientStatus::Restricted;
        assert_eq!(
            s.stop_subject_mail(stop(None, restricted, 3_000))
                .await
                .expect("stop all"),
            1,
            "the leased transactional one"
        );
        assert_eq!(
            s.stop_subject_mail(stop(None, restricted, 3_500))
                .await
                .expect("again"),
            0
        );
        let state = |id: &'static str| {
            let s = &s;
            async move {
                let m = s.get_message("ten_a", id).await.expect("get").expect(id);
                let states: Vec<_> = recipient_states(&m)
                    .into_iter()
                    .map(|(r, st, _, next, at)| (r.to_string(), st, next, at))
                    .collect();
                let last = |r: &str| {
                    m.events
                        .iter()
                        .filter(|e| e.recipient_id == r)
                        .map(|e| (e.event_type, e.at, e.rcpt_hash.clone()))
                        .next_back()
                };
                (states, last("p1"), last(m.recipients[0].id.as_str()))
            }
        };
        let (states, p1_event, _) = state("msg_1").await;
        assert_eq!(
            states,
            [
                ("p1".to_string(), restricted, None, 3_000),
                (
                    "p2".to_string(),
                    RecipientStatus::Queued,
                    Some(1_000),
                    1_000
                ),
            ]
        );
        assert_eq!(p1_event, Some((EventType::Restricted, 3_000, hash("p1"))));
        for (id, rcpt) in [("msg_2", "p1b"), ("msg_3", "p1c")] {
            let (states, _, event) = state(id).await;
            assert_eq!(states, [(rcpt.to_string(), suppressed, None, 2_000)]);
            assert_eq!(event, Some((EventType::Suppressed, 2_000, hash("p1"))));
        }
        let (states, _, _) = state("msg_5").await;
        assert_eq!(states[0].1, RecipientStatus::Delivered, "final mail stays");
        let other = s
            .get_message("ten_b", "msg_4")
            .await
            .expect("get")
            .expect("msg_4");
        assert_eq!(
            other.recipients[0].status,
            RecipientStatus::Queued,
            "other tenant"
        );
        // Nothing stopped is due again; p2 and ten_b's p1d are, once their lease ran out.
        assert_eq!(
            ids(&s
                .claim_due("n2", 100_000, 200_000, 10)
                .await
                .expect("claim")),
            ["p1d", "p2"]
        );
        // The attempt that was in flight for p1 ends: a deferral does not make it
        // waiting again, nor does a bounce change it; a delivery did happen and is
        // recorded as such.
        s.record_deliveries(vec![update(
            "ten_a",
            "msg_1",
            "p1",
            RecipientStatus::Deferred,
            Some(150_000),
            4_000,
        )])
        .await
        .expect("late deferral");
        let (states, p1_event, _) = state("msg_1").await;
        assert_eq!(states[0], ("p1".to_string(), restricted, None, 3_000));
        assert_eq!(
            p1_event.map(|e| e.0),
            Some(EventType::Deferred),
            "the attempt is on record"
        );
        assert!(
            ids(&s
                .claim_due("n2", 160_000, 300_000, 10)
                .await
                .expect("claim"))
            .iter()
            .all(|id| id != "p1")
        );
        s.record_deliveries(vec![update(
            "ten_a",
            "msg_2",
            "p1b",
            RecipientStatus::Bounced,
            None,
            4_500,
        )])
        .await
        .expect("late bounce");
        let (states, _, event) = state("msg_2").await;
        assert_eq!(states[0].1, suppressed);
        assert_eq!(event.map(|e| e.0), Some(EventType::Bounced));
        s.record_deliveries(vec![update(
            "ten_a",
            "msg_3",
            "p1c",
            RecipientStatus::Delivered,
            None,
            5_000,
        )])
        .await
        .expect("late delivery");
        let (states, _, _) = state("msg_3").await;
        assert_eq!(states[0].1, RecipientStatus::Delivered);
        // An erased row (no hash) is never matched; only stopping statuses are taken.
        let mut nobody = stop(None, suppressed, 6_000);
        nobody.rcpt_hash = Vec::new();
        assert_eq!(s.stop_subject_mail(nobody).await.expect("empty hash"), 0);
        assert!(
            s.stop_subject_mail(stop(None, RecipientStatus::Delivered, 6_000))
                .await
                .is_err()
        );
    }

    /// An erasure tombstone is removed only when the caller says so; other entries of
    /// the same address as before.
    pub async fn erasure_tombstones_stay(s: AnyStore) {
        use SuppressionReason::{Erasure, Manual};
        let h = hash("gone");
        s.add_suppression(suppression("ten_a", &h, None, Erasure, 1_000))
            .await
            .expect("tombstone");
        s.add_suppression(suppression("ten_a", &h, Some("broadcast"), Manual, 2_000))
            .await
            .expect("manual");
        assert_eq!(
            s.remove_suppression("ten_a", &h, None, false)
                .await
                .expect("refused"),
            0
        );
        let listed = |s: &AnyStore| {
            let s = s.clone();
            let h = h.clone();
            async move {
                let entries = s.list_suppressions("ten_a", Some(h), None, 10).await;
                let entries = entries.expect("list");
                entries.into_iter().map(|e| e.reason).collect::<Vec<_>>()
            }
        };
        assert_eq!(listed(&s).await, [Erasure, Manual]);
        assert_eq!(
            s.remove_suppression("ten_a", &h, Some("broadcast"), false)
                .await
                .expect("manual entry"),
            1
        );
        assert_eq!(
            s.remove_suppression("ten_a", &h, None, true)
                .await
                .expect("lifted"),
            1
        );
        assert!(listed(&s).await.is_empty());
    }

    pub async fn queue_actions(s: AnyStore) {
        let mut other = message("ten_a", "msg_2", 1_500, &["r3"]);
        other.recipients[0].domain = "example.org".into();
        s.accept(batch(vec![
            message("ten_a", "msg_1", 1_000, &["r1", "r2"]),
            other,
            message("ten_b", "msg_3", 1_500, &["r4"]),
        ]))
        .await
        .expect("accept");
        let leased = s.claim_due("n1", 1_000, 60_000, 1).await.expect("claim");
        let idle = if ids(&leased) == ["r1"] { "r2" } else { "r1" };
        let sel = |tenant: Option<&str>, domain: Option<&str>| QueueSelector {
            tenant_id: tenant.map(str::to_string),
            domain: domain.map(str::to_string),
            ..QueueSelector::default()
        };
        // The leased one is being delivered: left alone.
        assert_eq!(
            s.queue_action(
                sel(Some("ten_a"), Some("example.net")),
                QueueAction::Suspend,
                2_000
            )
            .await
            .expect("suspend"),
            1
        );
        let depth = s.queue_depth(None).await.expect("depth");
        assert_eq!(
            depth
                .iter()
                .map(|d| (
                    d.tenant_id.as_str(),
                    d.domain.as_str(),
                    d.status,
                    d.recipients,
                    d.oldest_created_at
                ))
                .collect::<Vec<_>>(),
            [
                ("ten_a", "example.net", RecipientStatus::Queued, 1, 1_000),
                ("ten_a", "example.net", RecipientStatus::Suspended, 1, 1_000),
                ("ten_a", "example.org", RecipientStatus::Queued, 1, 1_500),
                ("ten_b", "example.net", RecipientStatus::Queued, 1, 1_500),
            ]
        );
        assert_eq!(
            s.queue_depth(Some("ten_b")).await.expect("depth b").len(),
            1
        );
        assert_eq!(
            ids(&s.claim_due("n1", 2_000, 60_000, 10).await.expect("claim")),
            ["r3", "r4"]
        );
        s.release_leases("n1").await.expect("release");
        // A deferred recipient retried now.
        s.record_deliveries(vec![update(
            "ten_a",
            "msg_2",
            "r3",
            RecipientStatus::Deferred,
            Some(90_000),
            3_000,
        )])
        .await
        .expect("defer");
        assert_eq!(
            s.queue_action(sel(Some("ten_a"), None), QueueAction::Retry, 4_000)
                .await
                .expect("retry"),
            1
        );
        assert!(
            ids(&s.claim_due("n1", 4_000, 60_000, 10).await.expect("claim"))
                .contains(&"r3".to_string())
        );
        s.release_leases("n1").await.expect("release");
        assert_eq!(
            s.queue_action(sel(None, Some("example.net")), QueueAction::Resume, 5_000)
                .await
                .expect("resume"),
            1
        );
        let m = s
            .get_message("ten_a", "msg_1")
            .await
            .expect("get")
            .expect("msg_1");
        assert!(
            m.recipients
                .iter()
                .all(|r| r.status == RecipientStatus::Queued)
        );
        let mut by_message = sel(Some("ten_a"), None);
        by_message.message_id = Some("msg_1".into());
        assert_eq!(
            s.queue_action(by_message, QueueAction::Bounce, 6_000)
                .await
                .expect("bounce"),
            2
        );
        let m = s
            .get_message("ten_a", "msg_1")
            .await
            .expect("get")
            .expect("msg_1");
        assert!(
            m.recipients
                .iter()
                .all(|r| r.status == RecipientStatus::Bounced)
        );
        let kinds: Vec<_> = m
            .events
            .iter()
            .filter(|e| e.recipient_id == idle)
            .map(|e| e.event_type)
            .collect();
        assert_eq!(
            kinds,
            [
                EventType::Accepted,
                EventType::Suspended,
                EventType::Resumed,
                EventType::Bounced
            ]
        );
        assert!(
            ids(&s.claim_due("n1", 7_000, 60_000, 10).await.expect("claim"))
                .iter()
                .all(|id| id != "r1" && id != "r2")
        );
        // A node gives back a lease it will not use; another's lease is not its to drop.
        let held = s.claim_due("n2", 70_000, 90_000, 10).await.expect("claim");
        assert!(!held.is_empty());
        let held_ids = ids(&held);
        assert_eq!(
            s.release_recipients("n1", held_ids.clone())
                .await
                .expect("not n1's"),
            0
        );
        assert_eq!(
            s.release_recipients("n2", held_ids.clone())
                .await
                .expect("release"),
            held_ids.len() as u64
        );
        assert_eq!(
            ids(&s.claim_due("n3", 70_000, 90_000, 10).await.expect("claim")),
            held_ids
        );
        let b = s
            .get_message("ten_b", "msg_3")
            .await
            .expect("get")
            .expect("msg_3");
        assert_eq!(
            b.recipients[0].status,
            RecipientStatus::Queued,
            "other tenant untouched"
        );
    }

    /// The circuit breaker's window: the latest finished recipients of one stream.
    pub async fn stream_outcomes(s: AnyStore) {
        let rcpts: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
        let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
        s.accept(batch(vec![
            in_stream(message("ten_a", "msg_1", 1_000, &refs), "broadcast"),
            message("ten_a", "msg_2", 1_000, &["t1"]),
        ]))
        .await
        .expect("accept");
        let outcome = |i: usize| match i {
            0 | 1 => RecipientStatus::Bounced,
            5 => RecipientStatus::Deferred,
            _ => RecipientStatus::Delivered,
        };
        s.record_deliveries(
            (0..6)
                .map(|i| {
                    update(
                        "ten_a",
                        "msg_1",
                        &rcpts[i],
                        outcome(i),
                        (i == 5).then_some(9_000),
                        2_000 + i as i64,
                    )
                })
                .chain([update(
                    "ten_a",
                    "msg_2",
                    "t1",
                    RecipientStatus::Bounced,
                    None,
                    2_000,
                )])
                .collect(),
        )
        .await
        .expect("record");
        s.record_reports(vec![ReportUpdate {
            recipient_id: "r4".into(),
            message_id: "msg_1".into(),
            tenant_id: "ten_a".into(),
            rcpt_hash: hash("r4"),
            event: EventType::Complained,
            status_if_delivered: None,
            at: 3_000,
            detail_enc: b"sealed".to_vec(),
            dims: StatDims::default(),
        }])
        .await
        .expect("complaint");
        assert_eq!(
            s.stream_outcomes("ten_a", "broadcast", 0, 500)
                .await
                .expect("outcomes"),
            StreamOutcomes {
                finished: 5,
                bounced: 2,
                complained: 1
            }
        );
        // The window holds the most recent: r2 (delivered), r3, r4 (complained).
        assert_eq!(
            s.stream_outcomes("ten_a", "broadcast", 0, 3)
                .await
                .expect("window"),
            StreamOutcomes {
                finished: 3,
                bounced: 0,
                complained: 1
            }
        );
        assert_eq!(
            s.stream_outcomes("ten_a", "transactional", 0, 500)
                .await
                .expect("other stream"),
            StreamOutcomes {
                finished: 1,
                bounced: 1,
                complained: 0
            }
        );
        assert_eq!(
            s.stream_outcomes("ten_b", "broadcast", 0, 500)
                .await
                .expect("other tenant"),
            StreamOutcomes::default()
        );
        // Only outcomes after a resumption count.
        assert_eq!(
            s.stream_outcomes("ten_a", "broadcast", 2_002, 500)
                .await
                .expect("since"),
            StreamOutcomes {
                finished: 2,
                bounced: 0,
                complained: 1
            }
        );
    }

    /// Statistics are counted with the events, per hour and dimension.
    pub async fn delivery_stats(s: AnyStore) {
        s.accept(batch(vec![
            message("ten_a", "msg_1", 1_000, &["r1", "r2", "r3", "r4"]),
            message("ten_b", "msg_2", 1_000, &["r5"]),
        ]))
        .await
        .expect("accept");
        let bulk = |reason: &str| StatDims {
            stream: "broadcast".into(),
            pool: "bulk".into(),
            source: "ip3".into(),
            site: "gmail".into(),
            reason: reason.into(),
        };
        let with = |mut u: DeliveryUpdate, dims: StatDims| {
            u.dims = dims;
            u
        };
        s.record_deliveries(vec![
            with(
                update(
                    "ten_a",
                    "msg_1",
                    "r1",
                    RecipientStatus::Delivered,
                    None,
                    2_000,
                ),
                bulk(""),
            ),
            with(
                update(
                    "ten_a",
                    "msg_1",
                    "r2",
                    RecipientStatus::Delivered,
                    None,
                    2_500,
                ),
                bulk(""),
            ),
            with(
                update(
                    "ten_a",
                    "msg_1",
                    "r3",
                    RecipientStatus::Bounced,
                    None,
                    3_000,
                ),
                bulk("userunknown"),
            ),
            with(
                update(
                    "ten_a",
                    "msg_1",
                    "r4",
                    RecipientStatus::Delivered,
                    None,
                    3_600_500,
                ),
                bulk(""),
            ),
            with(
                update(
                    "ten_b",
                    "msg_2",
                    "r5",
                    RecipientStatus::Delivered,
                    None,
                    2_000,
                ),
                bulk(""),
            ),
        ])
        .await
        .expect("record");
        s.record_reports(vec![ReportUpdate {
            recipient_id: "r1".into(),
            message_id: "msg_1".into(),
            tenant_id: "ten_a".into(),
            rcpt_hash: hash("r1"),
            event: EventType::Complained,
            status_if_delivered: None,
            at: 4_000,
            detail_enc: b"sealed".to_vec(),
            dims: StatDims {
                stream: "broadcast".into(),
                reason: "feedback".into(),
                ..StatDims::default()
            },
        }])
        .await
        .expect("complaint");
        let filter = |f: fn(&mut StatsFilter)| {
            let mut filter = StatsFilter {
                tenant_id: "ten_a".into(),
                from: 0,
                to: 7_200_000,
                ..StatsFilter::default()
            };
            f(&mut filter);
            filter
        };
        let rows = |v: Vec<StatRow>| -> Vec<(i64, EventType, String, u64)> {
            v.into_iter()
                .map(|r| (r.bucket, r.event, r.reason, r.count))
                .collect()
        };
        assert_eq!(
            rows(s.stats(filter(|_| {})).await.expect("stats")),
            [
                (0, EventType::Bounced, "userunknown".to_string(), 1),
                (0, EventType::Complained, "feedback".to_string(), 1),
                (0, EventType::Delivered, String::new(), 2),
                (3_600_000, EventType::Delivered, String::new(), 1),
            ]
        );
        let by_pool = s
            .stats(filter(|f| f.pool = Some("bulk".into())))
            .await
            .expect("pool");
        assert_eq!(
            by_pool.iter().map(|r| r.count).sum::<u64>(),
            4,
            "the complaint has no pool"
        );
        let by_site = s
            .stats(filter(|f| f.site = Some("gmail".into())))
            .await
            .expect("site");
        assert_eq!(by_site.len(), 3);
        assert!(
            s.stats(filter(|f| f.stream = Some("transactional".into())))
                .await
                .expect("stream")
                .is_empty()
        );
        assert_eq!(
            s.stats(filter(|f| f.to = 3_600_000))
                .await
                .expect("range")
                .len(),
            3
        );
        assert_eq!(
            s.attempts_by_source(0).await.expect("by source"),
            [("ip3".to_string(), 5)],
            "every tenant's attempts; the complaint is no attempt"
        );
        assert!(
            s.attempts_by_source(7_200_000)
                .await
                .expect("later")
                .is_empty()
        );
        let b = s
            .stats(filter(|f| f.tenant_id = "ten_b".into()))
            .await
            .expect("b");
        assert_eq!(rows(b), [(0, EventType::Delivered, String::new(), 1)]);
    }

    pub async fn list_messages_filters(s: AnyStore) {
        seed_events(&s).await;
        let ids = |f: MessageFilter| {
            let s = s.clone();
            async move {
                s.list_messages(f)
                    .await
                    .expect("list")
                    .iter()
                    .map(|m| m.id.clone())
                    .collect::<Vec<_>>()
            }
        };
        let all = |limit| MessageFilter {
            tenant_id: "ten_a".into(),
            limit,
            ..MessageFilter::default()
        };
        assert_eq!(
            ids(all(10)).await,
            vec!["msg_2", "msg_1"],
            "newest first, own tenant"
        );
        assert_eq!(ids(all(1)).await, vec!["msg_2"]);
        let page = MessageFilter {
            before_id: Some("msg_2".into()),
            ..all(10)
        };
        assert_eq!(ids(page).await, vec!["msg_1"], "the cursor");
        let m = s.list_messages(all(10)).await.expect("list");
        assert_eq!(m[1].recipients.len(), 2);
        assert!(!m[1].events.is_empty());
        for (filter, want) in [
            (
                MessageFilter {
                    stream: Some("broadcast".into()),
                    ..all(10)
                },
                vec!["msg_2"],
            ),
            (
                MessageFilter {
                    tag_hash: Some(b"tag:msg_1".to_vec()),
                    ..all(10)
                },
                vec!["msg_1"],
            ),
            (
                MessageFilter {
                    rcpt_hash: Some(hash("r2b")),
                    ..all(10)
                },
                vec!["msg_2"],
            ),
            (
                MessageFilter {
                    rcpt_hash: Some(hash("r3a")),
                    ..all(10)
                },
                vec![],
            ),
            (
                MessageFilter {
                    since: Some(1_500),
                    ..all(10)
                },
                vec!["msg_2"],
            ),
            (
                MessageFilter {
                    until: Some(1_500),
                    ..all(10)
                },
                vec!["msg_1"],
            ),
        ] {
            assert_eq!(ids(filter.clone()).await, want, "{filter:?}");
        }
    }

    pub async fn erase_subject(s: AnyStore) {
        s.accept(batch(vec![
            message("ten_a", "msg_1", 1_000, &["p1", "p2"]),
            message("ten_a", "msg_2", 1_000, &["p3"]),
        ]))
        .await
        .expect("accept");
        s.upsert_contact(contact("ten_a", "p1", "v", 1_000))
            .await
            .expect("contact");
        s.upsert_contact(contact("ten_a", "p3", "v", 1_000))
            .await
            .expect("contact");
        s.add_consent(consent("ten_a", "p1", "news", ConsentStatus::Active, 1_000))
            .await
            .expect("consent");
        s.add_suppression(SuppressionRecord {
            seq: 0,
            tenant_id: "ten_a".into(),
            rcpt_hash: hash("p1"),
            stream: None,
            reason: SuppressionReason::Manual,
            created_at: 1_000,
            address_enc: Some(b"sealed".to_vec()),
            source: Some("api".into()),
        })
        .await
        .expect("suppress");
        let request = s
            .add_request(DsarRecord {
                seq: 0,
                tenant_id: "ten_a".into(),
                kind: DsarKind::Access,
                rcpt_hash: hash("p1"),
                received_at: 1_000,
                due_at: 2_000,
                status: DsarStatus::Completed,
                closed_at: Some(1_000),
                detail_enc: b"sealed".to_vec(),
            })
            .await
            .expect("request");

        s.ensure_subject_keys(
            "ten_a",
            vec![subject_key("p1", "k1"), subject_key("p3", "k3")],
        )
        .await
        .expect("keys");
        let e = s.erase_subject("ten_a", &hash("p1")).await.expect("erase");
        assert_eq!(
            e,
            Erasure {
                keys: 1,
                contacts: 1,
                consents: 1,
                recipients: 1,
                messages: 1,
                events: 1,
                suppressions: 1,
                requests: 1,
                webhook_deliveries: 0,
            }
        );
        let kept = s
            .list_requests("ten_a", None, None, 10)
            .await
            .expect("register");
        assert_eq!(
            (
                kept[0].seq,
                kept[0].kind,
                kept[0].rcpt_hash.is_empty(),
                kept[0].detail_enc.is_empty()
            ),
            (request, DsarKind::Access, true, true),
            "the request stays as evidence, without the person"
        );
        assert!(
            s.get_contact("ten_a", &hash("p1"))
                .await
                .expect("get")
                .is_none()
        );
        assert!(
            s.list_consents("ten_a", &hash("p1"))
                .await
                .expect("list")
                .is_empty()
        );
        let mut f = events("ten_a", 100);
        f.rcpt_hash = Some(hash("p1"));
        assert!(s.list_events(f).await.expect("events").is_empty());
        let m = s
            .get_message("ten_a", "msg_1")
            .await
            .expect("get")
            .expect("message");
        assert!(m.meta_enc.is_empty());
        let p1 = &m.recipients[0];
        assert_eq!(
            (
                p1.id.as_str(),
                p1.status,
                p1.address_enc.is_empty(),
                p1.rcpt_hash.is_empty()
            ),
            ("p1", RecipientStatus::Suppressed, true, true)
        );
        let p2 = &m.recipients[1];
        assert_eq!(
            (p2.status, p2.rcpt_hash.clone()),
            (RecipientStatus::Queued, hash("p2"))
        );
        assert!(
            s.load_content("msg_1")
                .await
                .expect("load")
                .expect("row")
                .content_enc
                .is_none()
        );
        assert!(
            s.load_content("msg_2")
                .await
                .expect("load")
                .expect("row")
                .content_enc
                .is_some()
        );
        let supp = s
            .find_suppressions("ten_a", vec![hash("p1")])
            .await
            .expect("find");
        assert_eq!((supp.len(), supp[0].address_enc.clone()), (1, None));
        // Only p2 is still due (p1's row is final and unleased).
        let due: Vec<_> = s
            .claim_due("node", 1_000, 2_000, 10)
            .await
            .expect("claim")
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(due.iter().filter(|d| d.starts_with("p1")).count(), 0);
        assert!(
            s.get_contact("ten_a", &hash("p3"))
                .await
                .expect("get")
                .is_some()
        );
        // Erasing again finds nothing.
        assert_eq!(
            s.erase_subject("ten_a", &hash("p1")).await.expect("again"),
            Erasure {
                suppressions: 0,
                ..Erasure::default()
            }
        );
    }

    /// The screen names restricted contacts and those whose newest consent record
    /// for the purpose is active; recipients held as `no_consent` or `restricted` are
    /// stored final with their own event, never due.
    pub async fn consent_screen_and_held_recipients(s: AnyStore) {
        for (who, status, at) in [
            ("p1", ConsentStatus::Active, 1),
            ("p2", ConsentStatus::Active, 2),
            ("p2", ConsentStatus::Withdrawn, 3),
            ("p3", ConsentStatus::Withdrawn, 4),
            ("p3", ConsentStatus::Active, 5),
            ("p4", ConsentStatus::Pending, 6),
        ] {
            s.add_consent(consent("ten_a", who, "marketing", status, at))
                .await
                .expect("consent");
        }
        s.add_consent(consent("ten_a", "p5", "other", ConsentStatus::Active, 7))
            .await
            .expect("consent");
        s.add_consent(consent(
            "ten_b",
            "p2",
            "marketing",
            ConsentStatus::Active,
            8,
        ))
        .await
        .expect("consent");
        s.upsert_contact(contact("ten_a", "p6", "v", 1))
            .await
            .expect("contact");
        s.restrict_contact("ten_a", &hash("p6"), Some(9))
            .await
            .expect("restrict");
        let all: Vec<Vec<u8>> = ["p1", "p2", "p3", "p4", "p5", "p6", "p1"]
            .iter()
            .map(|p| hash(p))
            .collect();
        let mut screen = s
            .screen_subjects("ten_a", all.clone(), Some("marketing".into()))
            .await
            .expect("screen");
        screen.consented.sort();
        assert_eq!(screen.consented, [hash("p1"), hash("p3")]);
        assert_eq!(screen.restricted, [hash("p6")]);
        let plain = s.screen_subjects("ten_a", all, None).await.expect("screen");
        assert_eq!((plain.consented.len(), plain.restricted.len()), (0, 1));
        assert_eq!(
            s.screen_subjects("ten_a", vec![], None)
                .await
                .expect("empty"),
            ConsentScreen::default()
        );

        let mut m = message("ten_a", "msg_1", 1_000, &["q", "n", "r"]);
        m.recipients[1].status = RecipientStatus::NoConsent;
        m.recipients[2].status = RecipientStatus::Restricted;
        s.accept(AcceptBatch {
            messages: vec![m],
            idempotency: None,
            lease: Some(("node".into(), 9_000)),
        })
        .await
        .expect("accept");
        let got = s
            .get_message("ten_a", "msg_1")
            .await
            .expect("get")
            .expect("message");
        assert_eq!(
            recipient_states(&got),
            [
                ("n", RecipientStatus::NoConsent, 0, None, 1_000),
                ("q", RecipientStatus::Queued, 0, Some(1_000), 1_000),
                ("r", RecipientStatus::Restricted, 0, None, 1_000),
            ]
        );
        let kinds: Vec<_> = got
            .events
            .iter()
            .map(|e| (e.recipient_id.as_str(), e.event_type))
            .collect();
        assert_eq!(
            kinds,
            [
                ("q", EventType::Accepted),
                ("n", EventType::NoConsent),
                ("r", EventType::Restricted)
            ]
        );
        let mut bad = message("ten_a", "msg_2", 1_000, &["x"]);
        bad.recipients[0].status = RecipientStatus::Delivered;
        assert!(s.accept(batch(vec![bad])).await.is_err());
    }

    /// Retention: content of settled messages goes first, then events and the
    /// messages themselves; anything still queued or deferred is kept whole; the
    /// limit bounds each call.
    pub async fn retention_purge(s: AnyStore) {
        s.accept(batch(vec![
            message("ten_a", "old_done", 1_000, &["a1"]),
            message("ten_a", "old_busy", 1_000, &["b1", "b2"]),
            message("ten_a", "new_done", 5_000, &["c1"]),
        ]))
        .await
        .expect("accept");
        s.claim_due("node", 6_000, 7_000, 10).await.expect("claim");
        s.record_deliveries(vec![
            update(
                "ten_a",
                "old_done",
                "a1",
                RecipientStatus::Delivered,
                None,
                1_100,
            ),
            update(
                "ten_a",
                "old_busy",
                "b1",
                RecipientStatus::Delivered,
                None,
                1_100,
            ),
            update(
                "ten_a",
                "old_busy",
                "b2",
                RecipientStatus::Deferred,
                Some(9_000),
                1_100,
            ),
            update(
                "ten_a",
                "new_done",
                "c1",
                RecipientStatus::Delivered,
                None,
                5_100,
            ),
        ])
        .await
        .expect("record");
        let content = |s: &AnyStore, id: &'static str| {
            let s = s.clone();
            async move {
                s.load_content(id)
                    .await
                    .expect("load")
                    .map(|c| c.content_enc.is_some())
            }
        };
        // Content retention only.
        let p = s.purge(cutoffs(2_000, 0, 0, 100)).await.expect("purge");
        assert_eq!(
            p,
            Purged {
                contents: 1,
                ..Purged::default()
            }
        );
        assert_eq!(content(&s, "old_done").await, Some(false));
        assert_eq!(
            content(&s, "old_busy").await,
            Some(true),
            "a deferred recipient keeps its content"
        );
        assert_eq!(content(&s, "new_done").await, Some(true));
        // Event retention, one row of each kind per call.
        let r = cutoffs(2_000, 2_000, 0, 1);
        let first = s.purge(r.clone()).await.expect("purge");
        assert_eq!((first.events, first.messages), (1, 1));
        let mut total = first;
        loop {
            let p = s.purge(r.clone()).await.expect("purge");
            if p.is_empty() {
                break;
            }
            total.events += p.events;
            total.messages += p.messages;
        }
        // Events before 2_000: accepted ×4 (at 1_000 ×3 and 5_000 ×1 — only three
        // old) and three deliveries at 1_100.
        assert_eq!((total.events, total.messages), (6, 1));
        assert!(
            s.get_message("ten_a", "old_done")
                .await
                .expect("get")
                .is_none()
        );
        let busy = s
            .get_message("ten_a", "old_busy")
            .await
            .expect("get")
            .expect("kept");
        assert_eq!(busy.recipients.len(), 2);
        assert!(busy.events.is_empty(), "its old events went");
        let fresh = s
            .get_message("ten_a", "new_done")
            .await
            .expect("get")
            .expect("kept");
        assert_eq!(fresh.events.len(), 2);
    }

    /// Periods of a tenant, of a stream and of one tenant's stream override the
    /// default, the most specific first, one kind at a time.
    pub async fn retention_policies(s: AnyStore) {
        let in_stream = |mut m: NewMessage, stream: &str| {
            m.stream = stream.into();
            m
        };
        s.accept(batch(vec![
            in_stream(message("ten_a", "a_bulk", 1_000, &["r1"]), "broadcast"),
            in_stream(message("ten_a", "a_tx", 1_000, &["r2"]), "transactional"),
            in_stream(message("ten_b", "b_bulk", 1_000, &["r3"]), "broadcast"),
            in_stream(message("ten_b", "b_tx", 1_000, &["r4"]), "transactional"),
        ]))
        .await
        .expect("accept");
        s.claim_due("node", 2_000, 3_000, 10).await.expect("claim");
        let done = [
            ("ten_a", "a_bulk", "r1"),
            ("ten_a", "a_tx", "r2"),
            ("ten_b", "b_bulk", "r3"),
            ("ten_b", "b_tx", "r4"),
        ]
        .map(|(t, m, r)| update(t, m, r, RecipientStatus::Delivered, None, 1_100));
        s.record_deliveries(done.to_vec()).await.expect("record");
        let policy = |tenant: Option<&str>,
                      stream: Option<&str>,
                      content: Option<i64>,
                      events: Option<i64>| RetentionPolicy {
            tenant_id: tenant.map(Into::into),
            stream: stream.map(Into::into),
            content,
            events,
            webhook_logs: None,
        };
        // Now 11_000; by default everything is kept (periods of 100 s).
        let mut r = cutoffs(0, 0, 0, 100);
        r.now = 11_000;
        r.default = RetentionPeriods {
            content: 100_000,
            events: 100_000,
            webhook_logs: 100_000,
        };
        r.policies = vec![
            policy(None, Some("broadcast"), Some(5_000), None),
            policy(Some("ten_a"), None, Some(5_000), None),
            policy(Some("ten_a"), Some("broadcast"), Some(50_000), None),
        ];
        let p = s.purge(r.clone()).await.expect("purge");
        assert_eq!((p.contents, p.events, p.messages), (2, 0, 0));
        let content = |id: &'static str| {
            let s = s.clone();
            async move {
                s.load_content(id)
                    .await
                    .expect("load")
                    .map(|c| c.content_enc.is_some())
            }
        };
        assert_eq!(content("b_bulk").await, Some(false), "the stream's period");
        assert_eq!(content("a_tx").await, Some(false), "the tenant's period");
        assert_eq!(
            content("a_bulk").await,
            Some(true),
            "the tenant's period for the stream beats both"
        );
        assert_eq!(content("b_tx").await, Some(true), "the default");
        // Events: tenant a's period applies to its broadcast stream too, whose own
        // policy leaves events unset.
        r.policies[1].events = Some(5_000);
        let p = s.purge(r).await.expect("purge");
        assert_eq!((p.contents, p.events, p.messages), (0, 4, 2));
        for (tenant, id, kept) in [
            ("ten_a", "a_bulk", false),
            ("ten_a", "a_tx", false),
            ("ten_b", "b_bulk", true),
            ("ten_b", "b_tx", true),
        ] {
            let found = s.get_message(tenant, id).await.expect("get");
            assert_eq!(found.is_some(), kept, "{id}");
        }
    }

    /// The register of data-subject requests: open until closed once; overdue means
    /// open and past due; tenants see only their own.
    pub async fn request_register(s: AnyStore) {
        let req = |tenant: &str, kind, due_at| DsarRecord {
            seq: 0,
            tenant_id: tenant.into(),
            kind,
            rcpt_hash: hash("p1"),
            received_at: 1_000,
            due_at,
            status: DsarStatus::Open,
            closed_at: None,
            detail_enc: b"sealed".to_vec(),
        };
        let a = s
            .add_request(req("ten_a", DsarKind::Access, 5_000))
            .await
            .expect("add");
        let b = s
            .add_request(req("ten_a", DsarKind::Erasure, 9_000))
            .await
            .expect("add");
        let c = s
            .add_request(req("ten_a", DsarKind::Objection, 2_000))
            .await
            .expect("add");
        s.add_request(req("ten_b", DsarKind::Access, 1_500))
            .await
            .expect("add");
        assert!(
            s.close_request("ten_a", c, DsarStatus::Rejected, 1_900)
                .await
                .expect("close")
        );
        assert!(
            !s.close_request("ten_a", c, DsarStatus::Completed, 2_000)
                .await
                .expect("twice")
        );
        assert!(
            !s.close_request("ten_b", a, DsarStatus::Completed, 2_000)
                .await
                .expect("other tenant")
        );
        let all = s
            .list_requests("ten_a", None, None, 100)
            .await
            .expect("list");
        let got: Vec<_> = all
            .iter()
            .map(|r| (r.seq, r.kind, r.status, r.closed_at))
            .collect();
        assert_eq!(
            got,
            [
                (a, DsarKind::Access, DsarStatus::Open, None),
                (b, DsarKind::Erasure, DsarStatus::Open, None),
                (c, DsarKind::Objection, DsarStatus::Rejected, Some(1_900)),
            ]
        );
        assert_eq!(
            (
                all[0].rcpt_hash.clone(),
                all[0].detail_enc.clone(),
                all[0].received_at,
                all[0].due_at
            ),
            (hash("p1"), b"sealed".to_vec(), 1_000, 5_000)
        );
        let overdue: Vec<_> = s
            .list_requests("ten_a", Some(6_000), None, 100)
            .await
            .expect("overdue")
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(overdue, [a]);
        let page: Vec<_> = s
            .list_requests("ten_a", None, Some(a), 1)
            .await
            .expect("page")
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(page, [b]);
    }

    /// Users are unique by address per tenant (the same address may have accounts in
    /// several tenants, found together), listed per tenant; sessions are found by
    /// token hash and end once.
    pub async fn users_and_sessions(s: AnyStore) {
        s.insert_user(user("usr_a", "ten_a", "idx-a"))
            .await
            .expect("insert");
        s.insert_user(user("usr_b", "ten_b", "idx-b"))
            .await
            .expect("insert");
        s.insert_user(user("usr_c", "ten_b", "idx-a"))
            .await
            .expect("the same address in another tenant");
        assert!(matches!(
            s.insert_user(user("usr_d", "ten_b", "idx-a")).await,
            Err(StoreError::Conflict("user"))
        ));
        let found: Vec<String> = s
            .find_users("idx-a")
            .await
            .expect("find")
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(found, ["usr_a", "usr_c"]);
        assert_eq!(
            s.get_user("usr_a").await.expect("get"),
            Some(user("usr_a", "ten_a", "idx-a"))
        );
        assert!(s.find_users("idx-x").await.expect("find").is_empty());
        let listed: Vec<String> = s
            .list_users("ten_b")
            .await
            .expect("list")
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(listed, ["usr_b", "usr_c"]);

        let session = session_of("usr_a", 7, 0);
        assert!(s.open_session(session.clone()).await.expect("session"));
        assert_eq!(
            s.get_session(vec![7; 32]).await.expect("get"),
            Some(session.clone())
        );
        assert!(s.end_session(vec![7; 32], 200).await.expect("end"));
        assert!(!s.end_session(vec![7; 32], 300).await.expect("end"), "once");
        let ended = s
            .get_session(vec![7; 32])
            .await
            .expect("get")
            .expect("kept");
        assert_eq!(ended.revoked_at, Some(200));
        assert!(s.get_session(vec![6; 32]).await.expect("get").is_none());

        s.delete_user("usr_a").await.expect("delete");
        assert_eq!(s.get_user("usr_a").await.expect("get"), None);
        assert!(
            s.get_session(vec![7; 32]).await.expect("get").is_none(),
            "its sessions go with it"
        );
    }

    fn user(id: &str, tenant: &str, index: &str) -> UserRecord {
        UserRecord {
            id: id.into(),
            tenant_id: tenant.into(),
            email_index: index.into(),
            email_enc: vec![1, 2, 3],
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            role: "analyst".into(),
            scopes: vec![Scope::Read],
            totp_enc: None,
            created_at: 1,
            disabled_at: None,
            failed_logins: 0,
            locked_until: None,
            session_gen: 0,
        }
    }

    fn session_of(user_id: &str, token: u8, user_gen: i64) -> SessionRecord {
        SessionRecord {
            id_hash: vec![token; 32],
            user_id: user_id.into(),
            tenant_id: "ten_a".into(),
            csrf_hash: vec![8; 32],
            created_at: 100,
            expires_at: 1_000,
            revoked_at: None,
            user_gen,
        }
    }

    const POLICY: LockPolicy = LockPolicy {
        failures_before_lock: 3,
        first_lock_ms: 1_000,
        max_lock_ms: 5_000,
    };

    /// Sign-in attempts are counted before they are checked, one statement each:
    /// concurrent attempts all count, the one reaching the threshold sets the lock,
    /// the rest find the account locked; a lock doubles per further failure up to the
    /// longest; a released attempt gives its count (and its lock) back; a session
    /// clears both.
    pub async fn sign_in_attempts(s: AnyStore) {
        s.insert_user(user("usr_a", "ten_a", "idx-a"))
            .await
            .expect("insert");
        let mut attempts = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let s = s.clone();
            attempts.spawn(async move { s.reserve_login("usr_a", 10_000, POLICY).await });
        }
        let results: Vec<Reservation> = attempts
            .join_all()
            .await
            .into_iter()
            .map(|r| r.expect("reserve"))
            .collect();
        let counted = results
            .iter()
            .filter(|r| matches!(r, Reservation::Counted { .. }))
            .count();
        assert_eq!(counted, 3, "{results:?}");
        assert!(
            results
                .iter()
                .filter(|r| !matches!(r, Reservation::Counted { .. }))
                .all(|r| *r == Reservation::Locked(11_000)),
            "{results:?}"
        );
        assert!(results.contains(&Reservation::Counted {
            lock: Some(11_000),
            previous_lock: None
        }));
        let u = s.get_user("usr_a").await.expect("get").expect("user");
        assert_eq!((u.failed_logins, u.locked_until), (3, Some(11_000)));

        // After the lock: the next failure locks for twice as long, then up to 5 s.
        assert_eq!(
            s.reserve_login("usr_a", 11_000, POLICY)
                .await
                .expect("reserve"),
            Reservation::Counted {
                lock: Some(13_000),
                previous_lock: Some(11_000)
            }
        );
        assert_eq!(
            s.reserve_login("usr_a", 13_000, POLICY)
                .await
                .expect("reserve"),
            Reservation::Counted {
                lock: Some(17_000),
                previous_lock: Some(13_000)
            }
        );
        assert_eq!(
            s.reserve_login("usr_a", 17_000, POLICY)
                .await
                .expect("reserve"),
            Reservation::Counted {
                lock: Some(22_000),
                previous_lock: Some(17_000)
            }
        );
        // That one was no failure after all: its count and its lock go back.
        s.release_login("usr_a", Some(22_000), Some(17_000))
            .await
            .expect("release");
        let u = s.get_user("usr_a").await.expect("get").expect("user");
        assert_eq!((u.failed_logins, u.locked_until), (5, Some(17_000)));
        assert_eq!(
            s.reserve_login("usr_x", 1, POLICY).await.expect("reserve"),
            Reservation::NoUser
        );

        // A session clears the count and the lock.
        assert!(
            s.open_session(session_of("usr_a", 1, 0))
                .await
                .expect("open")
        );
        let u = s.get_user("usr_a").await.expect("get").expect("user");
        assert_eq!((u.failed_logins, u.locked_until), (0, None));
        // Below the threshold nothing locks, and a release does not go below zero.
        assert_eq!(
            s.reserve_login("usr_a", 30_000, POLICY)
                .await
                .expect("reserve"),
            Reservation::Counted {
                lock: None,
                previous_lock: None
            }
        );
        for _ in 0..2 {
            s.release_login("usr_a", None, None).await.expect("release");
        }
        let u = s.get_user("usr_a").await.expect("get").expect("user");
        assert_eq!(u.failed_logins, 0);
    }

    /// An admin's change is one statement that raises the session generation; a
    /// session opens only with the current generation of a user not disabled; the
    /// second factor changes only from the value it was read with.
    pub async fn admin_changes_win(s: AnyStore) {
        let mut a = user("usr_a", "ten_a", "idx-a");
        a.failed_logins = 4;
        a.locked_until = Some(50);
        a.totp_enc = Some(vec![1; 40]);
        s.insert_user(a).await.expect("insert");
        assert!(
            s.change_user("usr_a", UserChange::Logout)
                .await
                .expect("logout")
        );
        assert!(
            !s.open_session(session_of("usr_a", 1, 0))
                .await
                .expect("open"),
            "read before the logout: no session"
        );
        assert!(s.get_session(vec![1; 32]).await.expect("get").is_none());
        let u = s.get_user("usr_a").await.expect("get").expect("user");
        assert_eq!(
            (u.session_gen, u.failed_logins, u.locked_until),
            (1, 4, Some(50)),
            "and nothing of the sign-in written"
        );
        assert!(
            s.change_user("usr_a", UserChange::Password("new-hash".into()))
                .await
                .expect("password")
        );
        let u = s.get_user("usr_a").await.expect("get").expect("user");
        assert_eq!(
            (
                u.session_gen,
                u.password_hash.as_str(),
                u.failed_logins,
                u.locked_until
            ),
            (2, "new-hash", 0, None)
        );
        assert!(
            s.open_session(session_of("usr_a", 2, 2))
                .await
                .expect("open")
        );

        // The second factor: compare-and-set.
        assert!(
            !s.swap_second_factor("usr_a", Some(vec![9; 40]), Some(vec![2; 40]))
                .await
                .expect("swap"),
            "not the value it was read with"
        );
        assert!(
            s.swap_second_factor("usr_a", Some(vec![1; 40]), Some(vec![2; 40]))
                .await
                .expect("swap")
        );
        assert!(
            !s.swap_second_factor("usr_a", Some(vec![1; 40]), Some(vec![3; 40]))
                .await
                .expect("swap"),
            "a value is used once"
        );
        assert!(
            s.change_user("usr_a", UserChange::RemoveSecondFactor)
                .await
                .expect("remove")
        );
        assert!(
            !s.swap_second_factor("usr_a", Some(vec![2; 40]), Some(vec![4; 40]))
                .await
                .expect("swap"),
            "the admin's removal stands"
        );
        assert!(
            s.swap_second_factor("usr_a", None, Some(vec![5; 40]))
                .await
                .expect("enrol")
        );
        let u = s.get_user("usr_a").await.expect("get").expect("user");
        assert_eq!((u.session_gen, u.totp_enc), (3, Some(vec![5; 40])));

        assert!(
            s.change_user("usr_a", UserChange::Disable(70))
                .await
                .expect("disable")
        );
        assert!(
            s.change_user("usr_a", UserChange::Disable(90))
                .await
                .expect("disable")
        );
        let u = s.get_user("usr_a").await.expect("get").expect("user");
        assert_eq!(
            (u.session_gen, u.disabled_at),
            (5, Some(70)),
            "the first time stays"
        );
        assert!(
            !s.open_session(session_of("usr_a", 3, 5))
                .await
                .expect("open"),
            "disabled"
        );
        assert!(
            !s.change_user("usr_x", UserChange::Logout)
                .await
                .expect("unknown")
        );
    }

    /// Keys are listed per tenant; rotation brings the expiry forward (never
    /// later), revocation is once; other tenants cannot touch them.
    pub async fn key_lifecycle(s: AnyStore) {
        let key = |id: &str, tenant: &str, created_at, expires_at| ApiKeyRecord {
            id: id.into(),
            tenant_id: tenant.into(),
            name: id.into(),
            secret_hash: vec![1],
            scopes: vec![Scope::Send],
            created_at,
            expires_at,
            revoked_at: None,
            last_used_at: None,
            allowed_ips: Vec::new(),
            rate_limit: None,
        };
        s.insert_api_key(key("key_b", "ten_a", 2, None))
            .await
            .expect("insert");
        s.insert_api_key(key("key_a", "ten_a", 1, Some(5_000)))
            .await
            .expect("insert");
        s.insert_api_key(key("key_c", "ten_b", 1, None))
            .await
            .expect("insert");
        let ids: Vec<_> = s
            .list_api_keys("ten_a")
            .await
            .expect("list")
            .into_iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(ids, ["key_a", "key_b"]);
        assert!(
            s.end_api_key("ten_a", "key_a", 9_000, false)
                .await
                .expect("rotate")
        );
        assert!(
            s.end_api_key("ten_a", "key_b", 9_000, false)
                .await
                .expect("rotate")
        );
        let get = |id: &'static str| {
            let s = s.clone();
            async move { s.get_api_key(id).await.expect("get").expect("key") }
        };
        assert_eq!(get("key_a").await.expires_at, Some(5_000), "never later");
        assert_eq!(get("key_b").await.expires_at, Some(9_000));
        assert!(
            !s.end_api_key("ten_b", "key_a", 1, true)
                .await
                .expect("other tenant")
        );
        assert!(
            s.end_api_key("ten_a", "key_a", 7_000, true)
                .await
                .expect("revoke")
        );
        assert!(
            !s.end_api_key("ten_a", "key_a", 8_000, true)
                .await
                .expect("twice")
        );
        assert_eq!(get("key_a").await.revoked_at, Some(7_000));
    }

    /// The breach register: each step is recorded once; an incident is overdue while
    /// a notification is missing past its deadline; tenants see only their own.
    pub async fn breach_register(s: AnyStore) {
        let incident = |tenant: &str| IncidentRecord {
            seq: 0,
            tenant_id: tenant.into(),
            detected_at: 1_000,
            authority_due_at: 73_000,
            customers_due_at: 25_000,
            authority_notified_at: None,
            customers_notified_at: None,
            closed_at: None,
            detail_enc: b"sealed".to_vec(),
        };
        let a = s.add_incident(incident("ten_a")).await.expect("add");
        let b = s.add_incident(incident("ten_a")).await.expect("add");
        s.add_incident(incident("ten_b")).await.expect("add");
        let overdue = |at| {
            let s = s.clone();
            async move {
                s.list_incidents("ten_a", Some(at), None, 10)
                    .await
                    .expect("list")
                    .into_iter()
                    .map(|i| i.seq)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(overdue(20_000).await, Vec::<i64>::new());
        assert_eq!(
            overdue(30_000).await,
            [a, b],
            "customers not told after 24 h"
        );
        assert!(
            s.step_incident("ten_a", a, IncidentStep::CustomersNotified, 20_000)
                .await
                .expect("step")
        );
        assert!(
            !s.step_incident("ten_a", a, IncidentStep::CustomersNotified, 21_000)
                .await
                .expect("once")
        );
        assert!(
            !s.step_incident("ten_b", b, IncidentStep::Closed, 1)
                .await
                .expect("other tenant")
        );
        assert_eq!(overdue(30_000).await, [b]);
        assert_eq!(
            overdue(80_000).await,
            [a, b],
            "authority not notified after 72 h"
        );
        assert!(
            s.step_incident("ten_a", a, IncidentStep::AuthorityNotified, 60_000)
                .await
                .expect("step")
        );
        assert_eq!(overdue(80_000).await, [b]);
        let all = s
            .list_incidents("ten_a", None, None, 10)
            .await
            .expect("list");
        assert_eq!(
            (
                all[0].customers_notified_at,
                all[0].authority_notified_at,
                all[0].closed_at,
                all[0].detail_enc.clone()
            ),
            (Some(20_000), Some(60_000), None, b"sealed".to_vec())
        );
        assert_eq!(
            s.list_incidents("ten_a", None, Some(a), 10)
                .await
                .expect("page")
                .len(),
            1
        );
    }

    /// The audit log chains each entry to the one committed before it, also under
    /// concurrent appends, and verifies.
    pub async fn audit_chain(s: AnyStore) {
        let s = Arc::new(s);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.append_audit(AuditDraft {
                    at: 1_000 + i,
                    tenant_id: Some(if i % 2 == 0 { "ten_a" } else { "ten_b" }.into()),
                    actor: format!("key:{i}"),
                    action: "subject.export".into(),
                    target: Some(format!("rcpt:{i:02x}")),
                    ip: None,
                })
                .await
                .expect("append")
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let all = s.list_audit(None, None, 1_000).await.expect("list");
        assert_eq!(all.len(), 20);
        assert_eq!(
            postwerk_store::audit::verify(None, all.clone())
                .expect("intact")
                .0,
            20
        );
        assert_eq!(s.audit_anchor().await.expect("anchor"), None);
        let page = s.list_audit(None, Some(all[9].seq), 5).await.expect("page");
        assert_eq!(page, all[10..15]);
        let a = s
            .list_audit(Some("ten_a"), None, 100)
            .await
            .expect("tenant");
        assert_eq!(a.len(), 10);
        assert!(a.iter().all(|e| e.tenant_id.as_deref() == Some("ten_a")));

        // Retention prunes the oldest entries (a leading run, at most `limit`) and
        // anchors what is left, which still verifies.
        assert_eq!(
            s.prune_audit(1_000, 100).await.expect("prune"),
            0,
            "none older"
        );
        assert_eq!(s.prune_audit(2_000, 5).await.expect("prune"), 5);
        let anchor = s.audit_anchor().await.expect("anchor");
        assert_eq!(anchor, Some((all[4].seq, all[4].hash.clone())));
        let rest = s.list_audit(None, None, 1_000).await.expect("list");
        assert_eq!(rest, all[5..]);
        assert_eq!(
            postwerk_store::audit::verify(anchor, rest.clone())
                .expect("intact")
                .0,
            15
        );
        assert!(postwerk_store::audit::verify(None, rest).is_err());
    }

    /// Reports (DSN, ARF, auto-reply) find a recipient by id alone and append an
    /// event; a bounce turns `delivered` into `bounced` but touches no other status,
    /// attempt count or lease.
    pub async fn reports_after_delivery(s: AnyStore) {
        s.accept(batch(vec![message("ten_a", "msg_1", 1_000, &["r1", "r2"])]))
            .await
            .expect("accept");
        assert!(s.find_recipient("nope").await.expect("find").is_none());
        let found = s.find_recipient("r1").await.expect("find").expect("r1");
        assert_eq!(
            (
                found.message_id.as_str(),
                found.tenant_id.as_str(),
                found.stream.as_str(),
                found.status
            ),
            ("msg_1", "ten_a", "transactional", RecipientStatus::Queued)
        );
        assert_eq!(
            (found.rcpt_hash, found.address_enc),
            (hash("r1"), b"addr:r1".to_vec())
        );
        s.claim_due("node-a", 1_000, 2_000, 10)
            .await
            .expect("claim");
        s.record_deliveries(vec![update(
            "ten_a",
            "msg_1",
            "r1",
            RecipientStatus::Delivered,
            None,
            1_100,
        )])
        .await
        .expect("record");
        let report = |rcpt: &str, event, status, at| ReportUpdate {
            recipient_id: rcpt.into(),
            message_id: "msg_1".into(),
            tenant_id: "ten_a".into(),
            rcpt_hash: hash(rcpt),
            event,
            status_if_delivered: status,
            at,
            detail_enc: format!("report:{rcpt}:{at}").into_bytes(),
            dims: StatDims::default(),
        };
        // An auto-reply leaves the status; a bounce of a delivered recipient changes
        // it; a bounce of a queued (leased) recipient does not.
        s.record_reports(vec![report("r1", EventType::Autoreply, None, 1_200)])
            .await
            .expect("autoreply");
        s.record_reports(vec![report(
            "r1",
            EventType::Bounced,
            Some(RecipientStatus::Bounced),
            1_300,
        )])
        .await
        .expect("bounce");
        s.record_reports(vec![report(
            "r2",
            EventType::Bounced,
            Some(RecipientStatus::Bounced),
            1_400,
        )])
        .await
        .expect("bounce of queued");
        let m = s
            .get_message("ten_a", "msg_1")
            .await
            .expect("get")
            .expect("message");
        assert_eq!(
            recipient_states(&m),
            [
                ("r1", RecipientStatus::Bounced, 1, None, 1_300),
                ("r2", RecipientStatus::Queued, 0, Some(1_000), 1_000),
            ]
        );
        let kinds: Vec<_> = m
            .events
            .iter()
            .map(|e| (e.recipient_id.as_str(), e.event_type, e.detail_enc.clone()))
            .collect();
        assert_eq!(
            kinds[kinds.len() - 3..],
            [
                ("r1", EventType::Autoreply, Some(b"report:r1:1200".to_vec())),
                ("r1", EventType::Bounced, Some(b"report:r1:1300".to_vec())),
                ("r2", EventType::Bounced, Some(b"report:r2:1400".to_vec())),
            ]
        );
        // The lease taken by the claim is still there: r2 is not due again.
        assert!(
            s.claim_due("node-b", 1_500, 3_000, 10)
                .await
                .expect("claim")
                .is_empty()
        );
    }

    pub async fn record_deliveries(s: AnyStore) {
        s.accept(batch(vec![message(
            "ten_a",
            "msg_1",
            1_000,
            &["r1", "r2", "r3", "r4"],
        )]))
        .await
        .expect("accept");
        assert_eq!(
            s.claim_due("node-a", 1_000, 2_000, 10)
                .await
                .expect("claim")
                .len(),
            4
        );

        s.record_deliveries(vec![
            update(
                "ten_a",
                "msg_1",
                "r1",
                RecipientStatus::Delivered,
                None,
                1_100,
            ),
            update(
                "ten_a",
                "msg_1",
                "r2",
                RecipientStatus::Deferred,
                Some(5_000),
                1_200,
            ),
            update(
                "ten_a",
                "msg_1",
                "r3",
                RecipientStatus::Bounced,
                None,
                1_300,
            ),
        ])
        .await
        .expect("record");

        let m = s
            .get_message("ten_a", "msg_1")
            .await
            .expect("get")
            .expect("message");
        let state = recipient_states(&m);
        assert_eq!(
            state,
            [
                ("r1", RecipientStatus::Delivered, 1, None, 1_100),
                ("r2", RecipientStatus::Deferred, 1, Some(5_000), 1_200),
                ("r3", RecipientStatus::Bounced, 1, None, 1_300),
                ("r4", RecipientStatus::Queued, 0, Some(1_000), 1_000),
            ]
        );
        let timeline: Vec<(&str, EventType, i64)> = m
            .events
            .iter()
            .map(|e| (e.recipient_id.as_str(), e.event_type, e.at))
            .collect();
        assert_eq!(
            timeline,
            [
                ("r1", EventType::Accepted, 1_000),
                ("r2", EventType::Accepted, 1_000),
                ("r3", EventType::Accepted, 1_000),
                ("r4", EventType::Accepted, 1_000),
                ("r1", EventType::Delivered, 1_100),
                ("r2", EventType::Deferred, 1_200),
                ("r3", EventType::Bounced, 1_300),
            ]
        );
        assert!(
            m.events.windows(2).all(|w| w[0].seq < w[1].seq),
            "events in seq order"
        );
        let delivered = &m.events[4];
        assert_eq!(
            delivered.detail_enc.as_deref(),
            Some(b"detail:r1:1100".as_slice())
        );
        assert_eq!(delivered.rcpt_hash, hash("r1"));
        assert_eq!(delivered.message_id, "msg_1");
        assert_eq!(delivered.tenant_id, "ten_a");

        // The leases of recorded recipients are cleared; r4's is still held.
        assert_eq!(s.release_leases("node-a").await.expect("release"), 1);
        let got = s
            .claim_due("node-b", 4_999, 9_000, 10)
            .await
            .expect("claim");
        assert_eq!(
            ids(&got),
            strings(&["r4"]),
            "the deferred r2 is not due before 5000"
        );
        let got = s
            .claim_due("node-c", 5_000, 9_000, 10)
            .await
            .expect("claim");
        assert_eq!(ids(&got), strings(&["r2"]));
        assert_eq!(got[0].attempts, 1);

        // Two outcomes for one recipient in one batch apply in order.
        s.record_deliveries(vec![
            update(
                "ten_a",
                "msg_1",
                "r2",
                RecipientStatus::Deferred,
                Some(6_000),
                5_100,
            ),
            update(
                "ten_a",
                "msg_1",
                "r2",
                RecipientStatus::Delivered,
                None,
                5_200,
            ),
        ])
        .await
        .expect("record");
        let m = s
            .get_message("ten_a", "msg_1")
            .await
            .expect("get")
            .expect("message");
        let r2 = m.recipients.iter().find(|r| r.id == "r2").expect("r2");
        assert_eq!(
            (r2.status, r2.attempts, r2.next_attempt_at, r2.updated_at),
            (RecipientStatus::Delivered, 3, None, 5_200)
        );
        let tail: Vec<(&str, EventType, i64)> = m.events[7..]
            .iter()
            .map(|e| (e.recipient_id.as_str(), e.event_type, e.at))
            .collect();
        assert_eq!(
            tail,
            [
                ("r2", EventType::Deferred, 5_100),
                ("r2", EventType::Delivered, 5_200)
            ]
        );
        assert_eq!(
            s.release_leases("node-c").await.expect("release"),
            0,
            "lease cleared"
        );
        let got = s
            .claim_due("node-d", 100_000, 200_000, 10)
            .await
            .expect("claim");
        assert_eq!(
            ids(&got),
            strings(&["r4"]),
            "final recipients are never claimed again"
        );

        s.record_deliveries(Vec::new())
            .await
            .expect("an empty batch is a no-op");
    }

    /// Tenant A: msg_1 (r1a, r1b) at 1000, msg_2 (r2a, r2b) at 2000, then outcomes;
    /// tenant B: msg_3 (r3a) at 1500 with the same blind index as r1a.
    async fn seed_events(s: &AnyStore) {
        let mut m3 = message("ten_b", "msg_3", 1_500, &["r3a"]);
        m3.recipients[0].rcpt_hash = hash("r1a");
        s.accept(batch(vec![message(
            "ten_a",
            "msg_1",
            1_000,
            &["r1a", "r1b"],
        )]))
        .await
        .expect("accept");
        s.accept(batch(vec![m3])).await.expect("accept");
        let mut m2 = message("ten_a", "msg_2", 2_000, &["r2a", "r2b"]);
        m2.stream = "broadcast".into();
        s.accept(batch(vec![m2])).await.expect("accept");
        s.record_deliveries(vec![
            update(
                "ten_a",
                "msg_1",
                "r1a",
                RecipientStatus::Delivered,
                None,
                3_000,
            ),
            update(
                "ten_b",
                "msg_3",
                "r3a",
                RecipientStatus::Delivered,
                None,
                3_200,
            ),
        ])
        .await
        .expect("record");
        s.record_deliveries(vec![
            update(
                "ten_a",
                "msg_2",
                "r2a",
                RecipientStatus::Deferred,
                Some(9_000),
                3_500,
            ),
            update(
                "ten_a",
                "msg_1",
                "r1b",
                RecipientStatus::Bounced,
                None,
                4_000,
            ),
        ])
        .await
        .expect("record");
    }

    fn timeline(events: &[EventRecord]) -> Vec<(String, EventType)> {
        events
            .iter()
            .map(|e| (e.recipient_id.clone(), e.event_type))
            .collect()
    }

    fn tl(items: &[(&str, EventType)]) -> Vec<(String, EventType)> {
        items.iter().map(|(r, t)| (r.to_string(), *t)).collect()
    }

    pub async fn list_events_filters(s: AnyStore) {
        use EventType::*;
        seed_events(&s).await;

        let all = s.list_events(events("ten_a", 100)).await.expect("list");
        assert_eq!(
            timeline(&all),
            tl(&[
                ("r1a", Accepted),
                ("r1b", Accepted),
                ("r2a", Accepted),
                ("r2b", Accepted),
                ("r1a", Delivered),
                ("r2a", Deferred),
                ("r1b", Bounced),
            ])
        );
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(all.iter().all(|e| e.tenant_id == "ten_a"));
        let b = s.list_events(events("ten_b", 100)).await.expect("list");
        assert_eq!(timeline(&b), tl(&[("r3a", Accepted), ("r3a", Delivered)]));

        let by_message = s
            .list_events(EventFilter {
                message_id: Some("msg_1".into()),
                ..events("ten_a", 100)
            })
            .await
            .expect("list");
        assert_eq!(
            timeline(&by_message),
            tl(&[
                ("r1a", Accepted),
                ("r1b", Accepted),
                ("r1a", Delivered),
                ("r1b", Bounced)
            ])
        );
        let filtered = |f: EventFilter| {
            let s = s.clone();
            async move { timeline(&s.list_events(f).await.expect("list")) }
        };
        assert_eq!(
            filtered(EventFilter {
                stream: Some("broadcast".into()),
                ..events("ten_a", 100)
            })
            .await,
            tl(&[("r2a", Accepted), ("r2b", Accepted), ("r2a", Deferred)])
        );
        assert_eq!(
            filtered(EventFilter {
                tag_hash: Some(b"tag:msg_2".to_vec()),
                until: Some(2_001),
                ..events("ten_a", 100)
            })
            .await,
            tl(&[("r2a", Accepted), ("r2b", Accepted)]),
            "tag and time window"
        );
        assert_eq!(
            filtered(EventFilter {
                tag_hash: Some(b"tag:all".to_vec()),
                ..events("ten_a", 100)
            })
            .await
            .len(),
            all.len(),
            "a tag shared with tenant B's message matches only tenant A's"
        );
        assert!(
            filtered(EventFilter {
                tag_hash: Some(b"tag:msg_3".to_vec()),
                ..events("ten_a", 100)
            })
            .await
            .is_empty()
        );
        let other_tenant = s
            .list_events(EventFilter {
                message_id: Some("msg_3".into()),
                ..events("ten_a", 100)
            })
            .await
            .expect("list");
        assert!(other_tenant.is_empty(), "a message of another tenant");

        let by_rcpt = s
            .list_events(EventFilter {
                rcpt_hash: Some(hash("r1a")),
                ..events("ten_a", 100)
            })
            .await
            .expect("list");
        assert_eq!(
            timeline(&by_rcpt),
            tl(&[("r1a", Accepted), ("r1a", Delivered)]),
            "not tenant B's r3a"
        );

        let by_type = s
            .list_events(EventFilter {
                event_type: Some(Delivered),
                ..events("ten_a", 100)
            })
            .await
            .expect("list");
        assert_eq!(timeline(&by_type), tl(&[("r1a", Delivered)]));

        let since = s
            .list_events(EventFilter {
                since: Some(2_000),
                ..events("ten_a", 100)
            })
            .await
            .expect("list");
        assert_eq!(
            timeline(&since),
            tl(&[
                ("r2a", Accepted),
                ("r2b", Accepted),
                ("r1a", Delivered),
                ("r2a", Deferred),
                ("r1b", Bounced)
            ]),
            "since is inclusive"
        );

        let combined = s
            .list_events(EventFilter {
                message_id: Some("msg_2".into()),
                event_type: Some(Accepted),
                since: Some(1_999),
                ..events("ten_a", 100)
            })
            .await
            .expect("list");
        assert_eq!(
            timeline(&combined),
            tl(&[("r2a", Accepted), ("r2b", Accepted)])
        );

        let limited = s.list_events(events("ten_a", 3)).await.expect("list");
        assert_eq!(
            timeline(&limited),
            timeline(&all[..3]),
            "limit keeps the first events"
        );
        let zero = s.list_events(events("ten_a", 0)).await.expect("list");
        assert_eq!(zero.len(), 1, "a zero limit is treated as 1");
    }

    pub async fn list_events_pagination(s: AnyStore) {
        seed_events(&s).await;
        let all = s.list_events(events("ten_a", 100)).await.expect("list");
        assert_eq!(all.len(), 7);

        for (filter, expected) in [
            (events("ten_a", 2), all.clone()),
            (
                EventFilter {
                    event_type: Some(EventType::Accepted),
                    ..events("ten_a", 3)
                },
                all.iter()
                    .filter(|e| e.event_type == EventType::Accepted)
                    .cloned()
                    .collect(),
            ),
        ] {
            let mut cursor = None;
            let mut seen: Vec<i64> = Vec::new();
            let mut pages = 0;
            loop {
                let page = s
                    .list_events(EventFilter {
                        after_seq: cursor,
                        ..filter.clone()
                    })
                    .await
                    .expect("page");
                assert!(page.len() <= filter.limit, "page larger than the limit");
                let Some(last) = page.last() else { break };
                cursor = Some(last.seq);
                seen.extend(page.iter().map(|e| e.seq));
                pages += 1;
                assert!(pages < 20, "pagination does not end");
            }
            let want: Vec<i64> = expected.iter().map(|e| e.seq).collect();
            assert_eq!(seen, want, "every event once, in order");
            assert_eq!(pages, want.len().div_ceil(filter.limit));
        }

        let last = all.last().expect("events").seq;
        let after_last = s
            .list_events(EventFilter {
                after_seq: Some(last),
                ..events("ten_a", 10)
            })
            .await
            .expect("list");
        assert!(after_last.is_empty());
        let middle = s
            .list_events(EventFilter {
                after_seq: Some(all[2].seq),
                ..events("ten_a", 10)
            })
            .await
            .expect("list");
        assert_eq!(
            middle.iter().map(|e| e.seq).collect::<Vec<_>>(),
            all[3..].iter().map(|e| e.seq).collect::<Vec<_>>()
        );
    }

    /// A reader paging with `after_seq` while several writers commit concurrently
    /// sees every event: a smaller `seq` is never committed after a larger one.
    pub async fn event_cursor_under_concurrent_writes(s: AnyStore) {
        const WRITERS: usize = 4;
        const BATCHES: usize = 30;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..BATCHES {
                        let id = format!("msg_{w}_{i}");
                        let rcpts = [
                            format!("r_{w}_{i}_a"),
                            format!("r_{w}_{i}_b"),
                            format!("r_{w}_{i}_c"),
                        ];
                        let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
                        let messages = vec![message("ten_a", &id, 1_000, &rcpts)];
                        s.accept(batch(messages)).await.expect("accept");
                        let updates = rcpts
                            .iter()
                            .map(|r| {
                                update("ten_a", &id, r, RecipientStatus::Delivered, None, 2_000)
                            })
                            .collect();
                        s.record_deliveries(updates).await.expect("record");
                    }
                })
            })
            .collect();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (s, done) = (s.clone(), done.clone());
            tokio::spawn(async move {
                let mut cursor = None;
                let mut seen = Vec::new();
                loop {
                    // Read the flag first: if the writers had finished before this
                    // page was read, an empty page means everything was seen.
                    let finished = done.load(Ordering::SeqCst);
                    let page = s
                        .list_events(EventFilter {
                            after_seq: cursor,
                            ..events("ten_a", 50)
                        })
                        .await
                        .expect("page");
                    match page.last() {
                        Some(last) => cursor = Some(last.seq),
                        None if finished => return seen,
                        None => tokio::task::yield_now().await,
                    }
                    seen.extend(page.iter().map(|e| e.seq));
                }
            })
        };
        for w in writers {
            w.await.expect("writer");
        }
        done.store(true, Ordering::SeqCst);
        let seen = reader.await.expect("reader");
        let all: Vec<i64> = s
            .list_events(events("ten_a", 10_000))
            .await
            .expect("list")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(all.len(), WRITERS * BATCHES * 6);
        let missed = all.iter().filter(|q| !seen.contains(q)).count();
        assert_eq!(
            missed, 0,
            "the cursor skipped {missed} events committed out of seq order"
        );
        assert_eq!(seen, all);
    }

    /// The largest batches the API produces (500 messages) round-trip intact.
    pub async fn large_batches(s: AnyStore) {
        const MESSAGES: usize = 500;
        let names: Vec<[String; 2]> = (0..MESSAGES)
            .map(|i| [format!("r{i:03}a"), format!("r{i:03}b")])
            .collect();
        let messages: Vec<NewMessage> = names
            .iter()
            .enumerate()
            .map(|(i, [a, b])| {
                let mut m = message("ten_a", &format!("msg_{i:03}"), 1_000 + i as i64, &[a, b]);
                m.mail_from_enc = (i % 2 == 0).then(|| format!("from:{i}").into_bytes());
                m.content_enc = vec![i as u8; 4_096];
                m
            })
            .collect();
        s.accept(batch(messages))
            .await
            .expect("accept 500 messages");

        let all = s.list_events(events("ten_a", 5_000)).await.expect("list");
        assert_eq!(all.len(), MESSAGES * 2);
        let expected: Vec<&str> = names
            .iter()
            .flat_map(|[a, b]| [a.as_str(), b.as_str()])
            .collect();
        let got: Vec<&str> = all.iter().map(|e| e.recipient_id.as_str()).collect();
        assert_eq!(got, expected, "accepted events in batch order");
        let c = s
            .load_content("msg_257")
            .await
            .expect("load")
            .expect("content");
        assert_eq!(c.content_enc, Some(vec![1; 4_096]));
        assert_eq!(c.mail_from_enc, None);
        let c = s
            .load_content("msg_256")
            .await
            .expect("load")
            .expect("content");
        assert_eq!(c.mail_from_enc.as_deref(), Some(b"from:256".as_slice()));

        let due = s
            .claim_due("node-a", 10_000, 20_000, 5_000)
            .await
            .expect("claim");
        assert_eq!(due.len(), MESSAGES * 2);
        let updates: Vec<DeliveryUpdate> = due
            .iter()
            .map(|d| {
                let (status, next) = if d.id.ends_with('a') {
                    (RecipientStatus::Delivered, None)
                } else {
                    (RecipientStatus::Deferred, Some(30_000))
                };
                update("ten_a", &d.message_id, &d.id, status, next, 11_000)
            })
            .collect();
        s.record_deliveries(updates)
            .await
            .expect("record 1000 outcomes");
        assert_eq!(s.release_leases("node-a").await.expect("release"), 0);
        let m = s
            .get_message("ten_a", "msg_499")
            .await
            .expect("get")
            .expect("message");
        let state: Vec<(RecipientStatus, i64)> = m
            .recipients
            .iter()
            .map(|r| (r.status, r.attempts))
            .collect();
        assert_eq!(
            state,
            [
                (RecipientStatus::Delivered, 1),
                (RecipientStatus::Deferred, 1)
            ]
        );
        assert_eq!(m.events.len(), 4);
        let later = s
            .claim_due("node-b", 30_000, 40_000, 5_000)
            .await
            .expect("claim");
        assert_eq!(later.len(), MESSAGES, "only the deferred half comes back");
        assert!(later.iter().all(|d| d.id.ends_with('b') && d.attempts == 1));
    }

    /// A node renewing its leases while recording outcomes for the same recipients
    /// (in another order) never fails: both touch many rows in one transaction.
    pub async fn renewals_race_deliveries(s: AnyStore) {
        const MESSAGES: usize = 100;
        let names: Vec<[String; 2]> = (0..MESSAGES)
            .map(|i| [format!("r{i:03}a"), format!("r{i:03}b")])
            .collect();
        let messages = names
            .iter()
            .enumerate()
            .map(|(i, [a, b])| message("ten_a", &format!("msg_{i:03}"), 1_000, &[a, b]))
            .collect();
        s.accept(batch(messages)).await.expect("accept");
        let mut due = s
            .claim_due("node-a", 1_000, 50_000, 1_000)
            .await
            .expect("claim");
        assert_eq!(due.len(), MESSAGES * 2);
        due.sort_by(|x, y| y.id.cmp(&x.id));

        let renewer = {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    s.renew_leases("node-a", 60_000 + i).await.expect("renew");
                }
            })
        };
        let recorders: Vec<_> = due
            .chunks(20)
            .map(|chunk| {
                let s = s.clone();
                let updates: Vec<DeliveryUpdate> = chunk
                    .iter()
                    .map(|d| {
                        update(
                            "ten_a",
                            &d.message_id,
                            &d.id,
                            RecipientStatus::Delivered,
                            None,
                            2_000,
                        )
                    })
                    .collect();
                tokio::spawn(async move { s.record_deliveries(updates).await.expect("record") })
            })
            .collect();
        renewer.await.expect("renewer");
        for r in recorders {
            r.await.expect("recorder");
        }
        assert_eq!(s.release_leases("node-a").await.expect("release"), 0);
        let delivered = s
            .list_events(EventFilter {
                event_type: Some(EventType::Delivered),
                ..events("ten_a", 1_000)
            })
            .await
            .expect("list");
        assert_eq!(delivered.len(), MESSAGES * 2);
    }

    /// Suppressed recipients are stored final with a `suppressed` event, and are
    /// never due or leased; queued ones of the same message behave as always.
    pub async fn accept_suppressed_recipients(s: AnyStore) {
        let m1 = message_suppressing("ten_a", "msg_1", 1_000, &["r1q", "r1s"], &["r1s"]);
        s.accept(batch(vec![m1.clone()])).await.expect("accept");
        // With a lease: only the queued recipient is leased. A message may be
        // entirely suppressed.
        let leased = AcceptBatch {
            messages: vec![
                message_suppressing("ten_a", "msg_2", 1_000, &["r2q", "r2s"], &["r2s"]),
                message_suppressing("ten_a", "msg_3", 1_000, &["r3s"], &["r3s"]),
            ],
            idempotency: None,
            lease: Some(("node-x".into(), 500_000)),
        };
        s.accept(leased).await.expect("accept leased");

        let got = s
            .get_message("ten_a", "msg_1")
            .await
            .expect("get")
            .expect("message");
        let state = recipient_states(&got);
        assert_eq!(
            state,
            [
                ("r1q", RecipientStatus::Queued, 0, Some(1_000), 1_000),
                ("r1s", RecipientStatus::Suppressed, 0, None, 1_000),
            ]
        );
        for (r, want) in got.recipients.iter().zip(&m1.recipients) {
            assert_eq!(r.rcpt_hash, want.rcpt_hash);
            assert_eq!(r.address_enc, want.address_enc);
            assert_eq!(r.domain, want.domain);
        }
        assert_eq!(
            timeline(&got.events),
            tl(&[("r1q", EventType::Accepted), ("r1s", EventType::Suppressed)]),
            "one event per recipient, in recipient order"
        );
        for e in &got.events {
            assert_eq!(e.message_id, "msg_1");
            assert_eq!(e.tenant_id, "ten_a");
            assert_eq!(e.rcpt_hash, hash(&e.recipient_id));
            assert_eq!(e.at, 1_000);
            assert_eq!(e.detail_enc, None);
        }
        let m3 = s
            .get_message("ten_a", "msg_3")
            .await
            .expect("get")
            .expect("message");
        assert_eq!(m3.recipients.len(), 1);
        assert_eq!(m3.recipients[0].status, RecipientStatus::Suppressed);
        assert_eq!(m3.recipients[0].next_attempt_at, None);
        assert_eq!(timeline(&m3.events), tl(&[("r3s", EventType::Suppressed)]));

        let suppressed = s
            .list_events(EventFilter {
                event_type: Some(EventType::Suppressed),
                ..events("ten_a", 100)
            })
            .await
            .expect("list");
        assert_eq!(
            timeline(&suppressed),
            tl(&[
                ("r1s", EventType::Suppressed),
                ("r2s", EventType::Suppressed),
                ("r3s", EventType::Suppressed),
            ])
        );

        // Only r1q is due and free (r2q is leased by node-x).
        let got = s
            .claim_due("node-a", 100_000, 200_000, 100)
            .await
            .expect("claim");
        assert_eq!(ids(&got), strings(&["r1q"]));
        assert_eq!(
            s.release_leases("node-x").await.expect("release"),
            1,
            "only the queued recipient of the leased batch was leased"
        );
        let got = s
            .claim_due("node-b", 100_000, 200_000, 100)
            .await
            .expect("claim");
        assert_eq!(ids(&got), strings(&["r2q"]));
        // Every lease expired: still nothing suppressed is ever due.
        let got = s
            .claim_due("node-c", 1_000_000, 2_000_000, 100)
            .await
            .expect("claim");
        assert_eq!(ids(&got), strings(&["r1q", "r2q"]));

        // Any other status refuses the whole batch.
        let mut bad = message("ten_a", "msg_4", 1_000, &["r4a", "r4b"]);
        bad.recipients[1].status = RecipientStatus::Delivered;
        assert!(
            matches!(
                s.accept(batch(vec![message("ten_a", "msg_5", 1_000, &["r5"]), bad]))
                    .await,
                Err(StoreError::Unavailable(_))
            ),
            "a new recipient must be queued or suppressed"
        );
        for id in ["msg_4", "msg_5"] {
            assert!(
                s.get_message("ten_a", id).await.expect("get").is_none(),
                "{id} rolled back"
            );
        }
        assert_eq!(
            s.list_events(events("ten_a", 100))
                .await
                .expect("list")
                .len(),
            5
        );
    }

    fn seqs(list: &[SuppressionRecord]) -> Vec<i64> {
        list.iter().map(|s| s.seq).collect()
    }

    /// (hash, stream) of each entry.
    fn scopes(list: &[SuppressionRecord]) -> Vec<(Vec<u8>, Option<String>)> {
        list.iter()
            .map(|s| (s.rcpt_hash.clone(), s.stream.clone()))
            .collect()
    }

    fn scope(hash: &[u8], stream: Option<&str>) -> (Vec<u8>, Option<String>) {
        (hash.to_vec(), stream.map(str::to_string))
    }

    pub async fn suppressions(s: AnyStore) {
        use SuppressionReason::*;
        let (h1, h2, h3) = (hash("alice"), hash("bob"), hash("carol"));

        let first = suppression("ten_a", &h1, None, HardBounce, 1_000);
        assert!(s.add_suppression(first.clone()).await.expect("add"));
        // The same scope again: not added, and the stored entry is unchanged.
        let mut again = suppression("ten_a", &h1, None, Complaint, 2_000);
        again.address_enc = None;
        again.source = Some("api".into());
        assert!(!s.add_suppression(again).await.expect("add again"));
        // A stream scope is an entry of its own.
        let broadcast = suppression("ten_a", &h1, Some("broadcast"), Unsubscribe, 3_000);
        assert!(
            s.add_suppression(broadcast.clone())
                .await
                .expect("add scoped")
        );
        assert!(
            !s.add_suppression(suppression("ten_a", &h1, Some("broadcast"), Manual, 3_500))
                .await
                .expect("add scoped again")
        );
        let mut bob = suppression("ten_a", &h2, None, Manual, 4_000);
        bob.address_enc = None;
        bob.source = None;
        assert!(s.add_suppression(bob.clone()).await.expect("add bob"));
        assert!(
            s.add_suppression(suppression("ten_b", &h1, None, Complaint, 5_000))
                .await
                .expect("same address, other tenant")
        );
        // An empty stream name is the every-stream scope.
        assert!(
            s.add_suppression(suppression("ten_a", &h3, Some(""), Manual, 6_000))
                .await
                .expect("add carol")
        );
        assert!(
            !s.add_suppression(suppression("ten_a", &h3, None, Manual, 6_500))
                .await
                .expect("add carol again")
        );

        // find: every scope of the hashes asked for, in seq order, fields intact.
        let found = s
            .find_suppressions("ten_a", vec![h1.clone(), hash("nobody"), h1.clone()])
            .await
            .expect("find");
        assert_eq!(
            scopes(&found),
            [scope(&h1, None), scope(&h1, Some("broadcast"))]
        );
        assert!(found[0].seq > 0 && found[0].seq < found[1].seq);
        let want_first = SuppressionRecord {
            seq: found[0].seq,
            ..first.clone()
        };
        assert_eq!(found[0], want_first, "the first add is kept unchanged");
        let want_broadcast = SuppressionRecord {
            seq: found[1].seq,
            ..broadcast.clone()
        };
        assert_eq!(found[1], want_broadcast);
        let found = s
            .find_suppressions("ten_a", vec![h2.clone(), h1.clone()])
            .await
            .expect("find");
        assert_eq!(
            scopes(&found),
            [
                scope(&h1, None),
                scope(&h1, Some("broadcast")),
                scope(&h2, None)
            ]
        );
        assert_eq!(
            found[2],
            SuppressionRecord {
                seq: found[2].seq,
                ..bob.clone()
            },
            "no sealed address or source round-trips as None"
        );
        let carol = s
            .find_suppressions("ten_a", vec![h3.clone()])
            .await
            .expect("find");
        assert_eq!(scopes(&carol), [scope(&h3, None)]);
        assert!(
            s.find_suppressions("ten_a", vec![hash("nobody")])
                .await
                .expect("find")
                .is_empty(),
            "other hashes"
        );
        assert!(
            s.find_suppressions("ten_a", Vec::new())
                .await
                .expect("find")
                .is_empty()
        );
        assert!(
            s.find_suppressions("ten_c", vec![h1.clone(), h2.clone()])
                .await
                .expect("find")
                .is_empty(),
            "other tenants"
        );
        let other = s
            .find_suppressions("ten_b", vec![h1.clone(), h2.clone()])
            .await
            .expect("find");
        assert_eq!(scopes(&other), [scope(&h1, None)]);
        assert_eq!(other[0].tenant_id, "ten_b");
        assert_eq!(other[0].reason, Complaint);

        // list: in seq order, paged by cursor, optionally by hash.
        let all = s
            .list_suppressions("ten_a", None, None, 100)
            .await
            .expect("list");
        assert_eq!(
            scopes(&all),
            [
                scope(&h1, None),
                scope(&h1, Some("broadcast")),
                scope(&h2, None),
                scope(&h3, None)
            ]
        );
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(all.iter().all(|e| e.tenant_id == "ten_a"));
        for (filter, limit, want) in [
            (None, 3, seqs(&all)),
            (None, 1, seqs(&all)),
            (Some(h1.clone()), 1, seqs(&all[..2])),
        ] {
            let mut cursor = None;
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let page = s
                    .list_suppressions("ten_a", filter.clone(), cursor, limit)
                    .await
                    .expect("page");
                assert!(page.len() <= limit, "page larger than the limit");
                let Some(last) = page.last() else { break };
                cursor = Some(last.seq);
                seen.extend(seqs(&page));
                pages += 1;
                assert!(pages < 20, "pagination does not end");
            }
            assert_eq!(seen, want, "every entry once, in order");
            assert_eq!(pages, want.len().div_ceil(limit));
        }
        let after = s
            .list_suppressions("ten_a", None, Some(all[1].seq), 100)
            .await
            .expect("list");
        assert_eq!(seqs(&after), seqs(&all[2..]));
        let by_hash = s
            .list_suppressions("ten_a", Some(h2.clone()), None, 100)
            .await
            .expect("list");
        assert_eq!(scopes(&by_hash), [scope(&h2, None)]);
        assert_eq!(
            s.list_suppressions("ten_a", None, None, 0)
                .await
                .expect("list")
                .len(),
            1,
            "a zero limit is treated as 1"
        );
        let b = s
            .list_suppressions("ten_b", None, None, 100)
            .await
            .expect("list");
        assert_eq!(scopes(&b), [scope(&h1, None)]);
        assert!(
            s.list_suppressions("ten_b", Some(h2.clone()), None, 100)
                .await
                .expect("list")
                .is_empty()
        );

        // remove: exactly the scope named.
        assert_eq!(
            s.remove_suppression("ten_a", &h1, Some("other"), false)
                .await
                .expect("remove"),
            0,
            "no such scope"
        );
        assert_eq!(
            s.remove_suppression("ten_a", &h1, Some("broadcast"), false)
                .await
                .expect("remove"),
            1
        );
        assert_eq!(
            s.remove_suppression("ten_a", &h1, Some("broadcast"), false)
                .await
                .expect("remove"),
            0,
            "already removed"
        );
        let found = s
            .find_suppressions("ten_a", vec![h1.clone()])
            .await
            .expect("find");
        assert_eq!(
            scopes(&found),
            [scope(&h1, None)],
            "the every-stream entry stays"
        );
        assert_eq!(
            s.remove_suppression("ten_c", &h1, None, false)
                .await
                .expect("remove"),
            0,
            "other tenant"
        );
        for h in [&h1, &h2, &h3] {
            assert_eq!(
                s.remove_suppression("ten_a", h, None, false)
                    .await
                    .expect("remove"),
                1
            );
        }
        assert!(
            s.find_suppressions("ten_a", vec![h1.clone(), h2.clone(), h3.clone()])
                .await
                .expect("find")
                .is_empty()
        );
        assert!(
            s.list_suppressions("ten_a", None, None, 100)
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(
            s.find_suppressions("ten_b", vec![h1.clone()])
                .await
                .expect("find")
                .len(),
            1,
            "tenant B's entry is untouched"
        );

        // Added again after removal: a new entry with a later seq.
        assert!(
            s.add_suppression(suppression("ten_a", &h1, None, Manual, 7_000))
                .await
                .expect("re-add")
        );
        let back = s
            .find_suppressions("ten_a", vec![h1.clone()])
            .await
            .expect("find");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].reason, Manual);
        assert_eq!(back[0].created_at, 7_000);
        assert!(back[0].seq > all.last().expect("entries").seq);
    }

    /// The acceptance check of the largest batch (500 messages × 50 recipients):
    /// tens of thousands of hashes, with repeats, in one call.
    pub async fn suppression_lookup_of_a_large_batch(s: AnyStore) {
        let hashes: Vec<Vec<u8>> = (0..25_000)
            .map(|i| hash(&format!("r{}", i % 12_000)))
            .collect();
        for (i, h) in [0, 498, 499, 500, 998, 5_000, 11_999]
            .into_iter()
            .enumerate()
        {
            let stream = (i % 2 == 1).then_some("broadcast");
            let rec = suppression(
                "ten_a",
                &hash(&format!("r{h}")),
                stream,
                SuppressionReason::HardBounce,
                1_000 + i as i64,
            );
            assert!(s.add_suppression(rec).await.expect("add"));
        }
        assert!(
            s.add_suppression(suppression(
                "ten_b",
                &hash("r42"),
                None,
                SuppressionReason::Manual,
                1_000
            ))
            .await
            .expect("add")
        );
        let found = s
            .find_suppressions("ten_a", hashes.clone())
            .await
            .expect("find");
        let got: Vec<i64> = found.iter().map(|s| s.created_at).collect();
        assert_eq!(
            got,
            (1_000..1_007).collect::<Vec<_>>(),
            "each entry once, in seq order"
        );
        assert!(
            s.find_suppressions("ten_c", hashes)
                .await
                .expect("find")
                .is_empty()
        );
        // A small lookup after the large one (other statement sizes).
        let found = s
            .find_suppressions("ten_a", vec![hash("r499"), hash("r1"), hash("r500")])
            .await
            .expect("find");
        assert_eq!(
            found.iter().map(|s| s.created_at).collect::<Vec<_>>(),
            [1_002, 1_003]
        );
    }

    /// The waiting recipients' statuses of a message, by recipient id.
    async fn statuses(s: &AnyStore, tenant: &str, message: &str) -> Vec<RecipientStatus> {
        let m = s.get_message(tenant, message).await.expect("get");
        m.expect("message")
            .recipients
            .iter()
            .map(|r| r.status)
            .collect()
    }

    /// Cancelling a tenant cancels its active sub-accounts and holds their waiting
    /// mail, leased or not; nothing resumes it but reactivation, which lifts the
    /// sub-accounts cancelled with the tenant (not one cancelled before) and queues
    /// the mail again (not a paused stream's).
    pub async fn tenant_cancellation(s: AnyStore) {
        use RecipientStatus::{Queued, Suspended};
        let mut child = tenant("ten_c", "child");
        child.parent_id = Some("ten_p".into());
        let mut early = tenant("ten_e", "early");
        early.parent_id = Some("ten_p".into());
        for t in [
            tenant("ten_p", "parent"),
            child,
            early,
            tenant("ten_o", "other"),
        ] {
            s.insert_tenant(t).await.expect("tenant");
        }
        s.accept(batch(vec![
            message("ten_p", "msg_p", 1_000, &["p1", "p2"]),
            message("ten_c", "msg_c", 1_000, &["c1"]),
            message("ten_o", "msg_o", 1_000, &["o1"]),
        ]))
        .await
        .expect("accept");
        // p1 is being delivered (leased) when the tenant is cancelled: it is held too.
        let leased = s.claim_due("n", 1_000, 60_000, 1).await.expect("claim");
        assert_eq!(ids(&leased), ["p1"]);
        assert!(
            s.set_tenant_cancelled("ten_e", Some(1_500), 1_500)
                .await
                .expect("early")
        );
        assert!(
            s.set_tenant_cancelled("ten_p", Some(2_000), 2_000)
                .await
                .expect("cancel")
        );
        assert!(
            !s.set_tenant_cancelled("ten_p", Some(3_000), 3_000)
                .await
                .expect("again"),
            "already cancelled"
        );
        assert!(
            !s.set_tenant_cancelled("ten_x", Some(3_000), 3_000)
                .await
                .expect("unknown")
        );
        let cancelled = |id: &str| {
            let s = s.clone();
            let id = id.to_string();
            async move {
                s.get_tenant(&id)
                    .await
                    .expect("get")
                    .expect("tenant")
                    .cancelled_at
            }
        };
        assert_eq!(cancelled("ten_p").await, Some(2_000));
        assert_eq!(cancelled("ten_c").await, Some(2_000));
        assert_eq!(cancelled("ten_e").await, Some(1_500), "kept its own time");
        assert_eq!(cancelled("ten_o").await, None);
        assert_eq!(statuses(&s, "ten_p", "msg_p").await, [Suspended, Suspended]);
        assert_eq!(statuses(&s, "ten_c", "msg_c").await, [Suspended]);
        assert_eq!(statuses(&s, "ten_o", "msg_o").await, [Queued]);
        let due = s.claim_due("n", 100_000, 160_000, 10).await.expect("claim");
        assert_eq!(ids(&due), ["o1"], "held mail is not delivered");

        let listed = |before| {
            let s = s.clone();
            async move {
                let mut ids: Vec<String> = s
                    .list_tenants(before)
                    .await
                    .expect("list")
                    .into_iter()
                    .map(|t| t.id)
                    .collect();
                ids.sort();
                ids
            }
        };
        assert_eq!(listed(None).await, ["ten_c", "ten_e", "ten_o", "ten_p"]);
        assert_eq!(listed(Some(2_000)).await, ["ten_e"]);
        assert_eq!(listed(Some(2_001)).await, ["ten_c", "ten_e", "ten_p"]);

        // Neither a queue resume nor a stream resume releases a cancelled tenant's mail.
        let all = QueueSelector::default();
        assert_eq!(
            s.queue_action(all.clone(), QueueAction::Resume, 2_500)
                .await
                .expect("resume"),
            0
        );
        s.pause_stream(StreamPause {
            tenant_id: "ten_p".into(),
            stream: "transactional".into(),
            reason: Some("manual".into()),
            initial_settings: "{}".into(),
            at: 2_600,
            detail_enc: None,
        })
        .await
        .expect("pause");

        assert!(
            s.set_tenant_cancelled("ten_p", None, 3_000)
                .await
                .expect("reactivate")
        );
        assert!(
            !s.set_tenant_cancelled("ten_p", None, 3_000)
                .await
                .expect("again")
        );
        assert_eq!(cancelled("ten_p").await, None);
        assert_eq!(cancelled("ten_c").await, None);
        assert_eq!(
            cancelled("ten_e").await,
            Some(1_500),
            "cancelled on its own"
        );
        assert_eq!(statuses(&s, "ten_c", "msg_c").await, [Queued]);
        assert_eq!(
            statuses(&s, "ten_p", "msg_p").await,
            [Suspended, Suspended],
            "the paused stream's mail stays held"
        );
        let due = s.claim_due("n", 100_000, 160_000, 10).await.expect("claim");
        assert_eq!(ids(&due), ["c1"]);
    }

    /// Fills every table of `TENANT_TABLES` for `t` (ids made unique with it) and
    /// writes an audit entry about it.
    async fn populate(s: &AnyStore, t: &str) {
        let at = 10_000;
        s.insert_tenant(tenant(t, t)).await.expect("tenant");
        s.insert_api_key(ApiKeyRecord {
            id: format!("key_{t}"),
            tenant_id: t.into(),
            name: "k".into(),
            secret_hash: vec![1; 32],
            scopes: vec![Scope::Send],
            created_at: at,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            allowed_ips: Vec::new(),
            rate_limit: None,
        })
        .await
        .expect("key");
        s.insert_domain(DomainRecord {
            tenant_id: t.into(),
            // A domain belongs to one tenant: each has its own.
            name: format!("{t}.example"),
            created_at: at,
            keys: vec![dkim(&format!("dkim_{t}"), "rsa2026", at)],
        })
        .await
        .expect("domain");
        s.insert_webhook(WebhookRecord {
            id: format!("wh_{t}"),
            tenant_id: t.into(),
            url: "https://hooks.example/".into(),
            events: Vec::new(),
            streams: Vec::new(),
            secret_enc: b"sealed".to_vec(),
            previous_secret_enc: None,
            previous_until: None,
            created_at: at,
            disabled_at: None,
            failing_since: None,
        })
        .await
        .expect("webhook");
        let (m, r1, r2) = (format!("msg_{t}"), format!("r1_{t}"), format!("r2_{t}"));
        s.accept(AcceptBatch {
            messages: vec![message(t, &m, at, &[&r1, &r2])],
            idempotency: Some(idem(t, at, "resp")),
            lease: None,
        })
        .await
        .expect("accept");
        s.record_deliveries(vec![update(
            t,
            &m,
            &r1,
            RecipientStatus::Delivered,
            None,
            at,
        )])
        .await
        .expect("deliver");
        for d in s
            .claim_webhook_deliveries("n", at, at + 1_000, 100)
            .await
            .expect("claim")
        {
            s.finish_webhook_delivery(WebhookOutcome {
                attempt: WebhookAttemptRecord {
                    seq: 0,
                    delivery_seq: d.seq,
                    webhook_id: d.webhook_id.clone(),
                    tenant_id: d.tenant_id.clone(),
                    event_seq: d.event_seq,
                    at,
                    status_code: Some(200),
                    error: None,
                    duration_ms: 5,
                    state: WebhookDeliveryState::Delivered,
                },
                next_attempt_at: None,
                record: true,
                disable_failing_before: 0,
            })
            .await
            .expect("finish");
        }
        let rec = suppression(t, &hash("p1"), None, SuppressionReason::Manual, at);
        s.add_suppression(rec).await.expect("suppression");
        s.upsert_contact(contact(t, "p1", "data", at))
            .await
            .expect("contact");
        s.add_consent(consent(t, "p1", "marketing", ConsentStatus::Active, at))
            .await
            .expect("consent");
        s.ensure_subject_keys(t, vec![subject_key("p1", "key")])
            .await
            .expect("subject key");
        s.add_request(DsarRecord {
            seq: 0,
            tenant_id: t.into(),
            kind: DsarKind::Access,
            rcpt_hash: hash("p1"),
            received_at: at,
            due_at: at,
            status: DsarStatus::Open,
            closed_at: None,
            detail_enc: b"sealed".to_vec(),
        })
        .await
        .expect("request");
        s.add_incident(IncidentRecord {
            seq: 0,
            tenant_id: t.into(),
            detected_at: at,
            authority_due_at: at,
            customers_due_at: at,
            authority_notified_at: None,
            customers_notified_at: None,
            closed_at: None,
            detail_enc: b"sealed".to_vec(),
        })
        .await
        .expect("incident");
        s.put_stream_settings(t, "broadcast", "{}".into(), at)
            .await
            .expect("stream");
        s.insert_user(UserRecord {
            id: format!("usr_{t}"),
            tenant_id: t.into(),
            email_index: format!("idx_{t}"),
            email_enc: vec![1],
            password_hash: "hash".into(),
            role: "admin".into(),
            scopes: vec![Scope::Admin],
            totp_enc: None,
            created_at: at,
            disabled_at: None,
            failed_logins: 0,
            locked_until: None,
            session_gen: 0,
        })
        .await
        .expect("user");
        let opened = s.open_session(SessionRecord {
            id_hash: t.as_bytes().to_vec(),
            user_id: format!("usr_{t}"),
            tenant_id: t.into(),
            csrf_hash: vec![8; 32],
            created_at: at,
            expires_at: at * 2,
            revoked_at: None,
            user_gen: 0,
        });
        assert!(opened.await.expect("session"));
        s.append_audit(AuditDraft {
            at,
            tenant_id: Some(t.into()),
            actor: "cli".into(),
            action: "tenant.create".into(),
            target: Some(t.into()),
            ip: None,
        })
        .await
        .expect("audit");
    }

    /// How many rows of each kind the store shows of tenant `t`.
    async fn holdings(s: &AnyStore, t: &str) -> Vec<(&'static str, usize)> {
        let messages = MessageFilter {
            tenant_id: t.into(),
            limit: 100,
            ..MessageFilter::default()
        };
        let stats = StatsFilter {
            tenant_id: t.into(),
            from: 0,
            to: i64::MAX,
            stream: None,
            pool: None,
            source: None,
            site: None,
        };
        let p1 = || vec![hash("p1")];
        vec![
            (
                "tenant",
                s.get_tenant(t).await.expect("tenant").iter().count(),
            ),
            ("api keys", s.list_api_keys(t).await.expect("keys").len()),
            ("domains", s.list_domains(t).await.expect("domains").len()),
            (
                "webhooks",
                s.list_webhooks(Some(t)).await.expect("hooks").len(),
            ),
            (
                "webhook attempts",
                s.list_webhook_attempts(t, &format!("wh_{t}"), None, 100)
                    .await
                    .expect("attempts")
                    .len(),
            ),
            (
                "messages",
                s.list_messages(messages).await.expect("messages").len(),
            ),
            (
                "events",
                s.list_events(events(t, 100)).await.expect("events").len(),
            ),
            (
                "idempotency",
                s.get_idempotency(t, &[0xab; 32], 0)
                    .await
                    .expect("idem")
                    .iter()
                    .count(),
            ),
            (
                "suppressions",
                s.find_suppressions(t, p1()).await.expect("supp").len(),
            ),
            (
                "contacts",
                s.get_contact(t, &hash("p1"))
                    .await
                    .expect("contact")
                    .iter()
                    .count(),
            ),
            (
                "consents",
                s.list_consents(t, &hash("p1"))
                    .await
                    .expect("consents")
                    .len(),
            ),
            (
                "subject keys",
                s.subject_keys(t, p1()).await.expect("keys").len(),
            ),
            (
                "requests",
                s.list_requests(t, None, None, 100)
                    .await
                    .expect("dsar")
                    .len(),
            ),
            (
                "incidents",
                s.list_incidents(t, None, None, 100)
                    .await
                    .expect("inc")
                    .len(),
            ),
            ("stats", s.stats(stats).await.expect("stats").len()),
            (
                "streams",
                s.list_streams(Some(t)).await.expect("streams").len(),
            ),
            ("users", s.list_users(t).await.expect("users").len()),
            (
                "sessions",
                s.get_session(t.as_bytes().to_vec())
                    .await
                    .expect("session")
                    .iter()
                    .count(),
            ),
            (
                "audit",
                s.list_audit(Some(t), None, 100).await.expect("audit").len(),
            ),
        ]
    }

    /// Deleting a tenant in bounded steps removes every row of it — its wrapped key
    /// last — and nothing of anyone else; its audit entries stay.
    pub async fn tenant_deletion(s: AnyStore) {
        populate(&s, "ten_a").await;
        populate(&s, "ten_b").await;
        let before = holdings(&s, "ten_b").await;
        let held = holdings(&s, "ten_a").await;
        assert!(held.iter().all(|&(_, n)| n > 0), "{held:?}");
        let mut steps = 0;
        loop {
            let deleted = s.delete_tenant_data("ten_a", 2).await.expect("delete");
            assert!(deleted <= 2, "bounded: {deleted}");
            if deleted == 0 {
                break;
            }
            steps += 1;
            let gone = s.get_tenant("ten_a").await.expect("get").is_none();
            if gone {
                assert!(
                    holdings(&s, "ten_a")
                        .await
                        .iter()
                        .all(|&(what, n)| n == 0 || what == "audit"),
                    "the key goes last"
                );
            }
        }
        assert!(steps > TENANT_TABLES.len(), "{steps} steps");
        let after = holdings(&s, "ten_a").await;
        for (what, n) in &after {
            assert_eq!(
                *n,
                usize::from(*what == "audit"),
                "{what} of ten_a: {after:?}"
            );
        }
        assert_eq!(holdings(&s, "ten_b").await, before, "ten_b untouched");
        assert_eq!(s.delete_tenant_data("ten_a", 2).await.expect("again"), 0);
    }
}

/// `(id, status, attempts, next attempt, updated)` of each recipient, in order.
fn recipient_states(m: &MessageRecord) -> Vec<(&str, RecipientStatus, i64, Option<i64>, i64)> {
    m.recipients
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                r.status,
                r.attempts,
                r.next_attempt_at,
                r.updated_at,
            )
        })
        .collect()
}
