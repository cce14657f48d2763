//! The store conformance suite: every scenario is written once, against [`AnyStore`],
//! and run against every backend.
//!
//! - `fixtures`: records and helpers the scenarios build on.
//! - `scenarios`: the scenarios, one module per area of the store.
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
    urgent_recipients_are_claimed_first =>
        sqlite_urgent_recipients_are_claimed_first, postgres_urgent_recipients_are_claimed_first;
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
    lists_and_the_contact_filter =>
        sqlite_lists_and_the_contact_filter, postgres_lists_and_the_contact_filter;
    import_batches_and_their_progress =>
        sqlite_import_batches_and_their_progress, postgres_import_batches_and_their_progress;
    segments_canaries_and_tenant_events =>
        sqlite_segments_canaries_and_tenant_events, postgres_segments_canaries_and_tenant_events;
    broadcasts_expand_once => sqlite_broadcasts_expand_once, postgres_broadcasts_expand_once;
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
        assert_eq!(version, "13");
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
    assert_eq!(version, "13");
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

mod fixtures;
mod scenarios;

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
