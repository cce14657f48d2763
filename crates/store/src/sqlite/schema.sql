-- Postwerk SQLite schema, version 10. Personal data is stored only sealed (*_enc) or as
-- a blind index (rcpt_hash). Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, wrapped_key BLOB NOT NULL, created_at INTEGER NOT NULL,
    parent_id TEXT, cancelled_at INTEGER);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, secret_hash BLOB NOT NULL,
    scopes TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER,
    last_used_at INTEGER, allowed_ips TEXT, rate_limit INTEGER);
CREATE TABLE IF NOT EXISTS domains (
    tenant_id TEXT NOT NULL, name TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (tenant_id, name));
CREATE TABLE IF NOT EXISTS dkim_keys (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, domain TEXT NOT NULL, selector TEXT NOT NULL,
    algorithm TEXT NOT NULL, private_key_enc BLOB NOT NULL, public_key TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS dkim_keys_domain ON dkim_keys (tenant_id, domain);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, stream TEXT NOT NULL, from_domain TEXT NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, size INTEGER NOT NULL,
    meta_enc BLOB NOT NULL, content_enc BLOB, mail_from_enc BLOB, broadcast_id TEXT);
CREATE TABLE IF NOT EXISTS recipients (
    id TEXT PRIMARY KEY, message_id TEXT NOT NULL, tenant_id TEXT NOT NULL, rcpt_hash BLOB NOT NULL,
    address_enc BLOB NOT NULL, domain TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER, lease_node TEXT, lease_until INTEGER,
    updated_at INTEGER NOT NULL, priority INTEGER NOT NULL DEFAULT 5);
CREATE INDEX IF NOT EXISTS recipients_message_tenant ON recipients (message_id, tenant_id);
CREATE INDEX IF NOT EXISTS recipients_due ON recipients (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS recipients_lease ON recipients (lease_node) WHERE lease_node IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, message_id TEXT NOT NULL,
    recipient_id TEXT NOT NULL, rcpt_hash BLOB NOT NULL, type TEXT NOT NULL, at INTEGER NOT NULL,
    detail_enc BLOB, stream TEXT);
CREATE INDEX IF NOT EXISTS events_message ON events (message_id);
CREATE INDEX IF NOT EXISTS events_tenant ON events (tenant_id, seq);
CREATE INDEX IF NOT EXISTS events_rcpt ON events (tenant_id, rcpt_hash);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant_id TEXT NOT NULL, key_hash BLOB NOT NULL, created_at INTEGER NOT NULL,
    response_enc BLOB NOT NULL, PRIMARY KEY (tenant_id, key_hash));
-- Version 2: the suppression list. `stream` is '' for an entry covering every stream
-- (NOT NULL keeps the unique key simple). suppressions_scope's (tenant_id, rcpt_hash)
-- prefix serves find_suppressions and listing by hash; suppressions_tenant serves
-- listing a whole tenant.
CREATE TABLE IF NOT EXISTS suppressions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, rcpt_hash BLOB NOT NULL,
    stream TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL, created_at INTEGER NOT NULL,
    address_enc BLOB, source TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS suppressions_scope ON suppressions (tenant_id, rcpt_hash, stream);
CREATE INDEX IF NOT EXISTS suppressions_tenant ON suppressions (tenant_id, seq);
-- Version 3: contacts, consents (append-only), the audit chain.
CREATE TABLE IF NOT EXISTS contacts (
    tenant_id TEXT NOT NULL, rcpt_hash BLOB NOT NULL, data_enc BLOB NOT NULL,
    restricted_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    attr_tags TEXT NOT NULL DEFAULT '', deleted_at INTEGER,
    PRIMARY KEY (tenant_id, rcpt_hash));
CREATE TABLE IF NOT EXISTS consents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, rcpt_hash BLOB NOT NULL,
    purpose TEXT NOT NULL, status TEXT NOT NULL, at INTEGER NOT NULL, record_enc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS consents_subject ON consents (tenant_id, rcpt_hash, seq);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, tenant_id TEXT, actor TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT, ip TEXT, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS audit_tenant ON audit (tenant_id, seq);
CREATE INDEX IF NOT EXISTS recipients_hash ON recipients (tenant_id, rcpt_hash);
CREATE INDEX IF NOT EXISTS messages_created ON messages (created_at);
CREATE TABLE IF NOT EXISTS dsar_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, rcpt_hash BLOB NOT NULL,
    received_at INTEGER NOT NULL, due_at INTEGER NOT NULL, status TEXT NOT NULL, closed_at INTEGER,
    detail_enc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS dsar_tenant ON dsar_requests (tenant_id, seq);
CREATE TABLE IF NOT EXISTS incidents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, detected_at INTEGER NOT NULL,
    authority_due_at INTEGER NOT NULL, customers_due_at INTEGER NOT NULL, authority_notified_at INTEGER,
    customers_notified_at INTEGER, closed_at INTEGER, detail_enc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_tenant ON incidents (tenant_id, seq);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
-- Version 4: webhooks. A trigger queues a delivery for every new event that an
-- endpoint of its tenant subscribes to (a disabled endpoint's deliveries wait), in the event's own transaction (an
-- outbox: nothing is missed, nothing is posted before it is committed). `events` and
-- `streams` are ',a,b,' lists, '' meaning all. A delivery is pending while
-- next_attempt_at is set.
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, url TEXT NOT NULL, events TEXT NOT NULL,
    streams TEXT NOT NULL, secret_enc BLOB NOT NULL, previous_secret_enc BLOB, previous_until INTEGER,
    created_at INTEGER NOT NULL, disabled_at INTEGER, failing_since INTEGER);
CREATE INDEX IF NOT EXISTS webhooks_tenant ON webhooks (tenant_id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, webhook_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL, message_id TEXT NOT NULL, rcpt_hash BLOB NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER, lease_node TEXT, lease_until INTEGER,
    created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_order ON webhook_deliveries (webhook_id, message_id, event_seq)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_subject ON webhook_deliveries (tenant_id, rcpt_hash);
CREATE INDEX IF NOT EXISTS webhook_deliveries_created ON webhook_deliveries (created_at);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, delivery_seq INTEGER NOT NULL, webhook_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL, event_seq INTEGER NOT NULL, at INTEGER NOT NULL, status_code INTEGER,
    error TEXT, duration_ms INTEGER NOT NULL, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_attempts_hook ON webhook_attempts (webhook_id, seq);
CREATE INDEX IF NOT EXISTS webhook_attempts_delivery ON webhook_attempts (delivery_seq);
CREATE TRIGGER IF NOT EXISTS events_to_webhooks AFTER INSERT ON events BEGIN
    INSERT INTO webhook_deliveries (webhook_id, tenant_id, event_seq, message_id, rcpt_hash, state,
        next_attempt_at, created_at)
    SELECT w.id, NEW.tenant_id, NEW.seq, NEW.message_id, NEW.rcpt_hash, 'pending', NEW.at, NEW.at
    FROM webhooks w WHERE w.tenant_id = NEW.tenant_id
        AND (w.events = '' OR instr(w.events, ',' || NEW.type || ',') > 0)
        AND (w.streams = '' OR instr(w.streams, ',' || coalesce(NEW.stream,
            (SELECT m.stream FROM messages m WHERE m.id = NEW.message_id)) || ',') > 0);
END;
-- Message tags as blind indexes, for filtering events and messages by tag.
CREATE TABLE IF NOT EXISTS message_tags (
    tenant_id TEXT NOT NULL, tag_hash BLOB NOT NULL, message_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, tag_hash, message_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS message_tags_message ON message_tags (message_id);
CREATE INDEX IF NOT EXISTS messages_stream ON messages (tenant_id, stream);
-- Version 5: streams (settings JSON, pause state). Stream events (stream_paused,
-- stream_resumed) have empty message and recipient ids and name their stream in
-- events.stream (added by code to older databases, with the trigger above renewed).
CREATE TABLE IF NOT EXISTS streams (
    tenant_id TEXT NOT NULL, name TEXT NOT NULL, settings TEXT NOT NULL, paused_at INTEGER,
    pause_reason TEXT, resumed_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name));
-- The circuit breaker reads a stream's most recently finished recipients.
CREATE INDEX IF NOT EXISTS recipients_recent ON recipients (tenant_id, updated_at);
-- Deliverability statistics: event counts per hour and dimension ('' = none). No
-- personal data.
CREATE TABLE IF NOT EXISTS delivery_stats (
    tenant_id TEXT NOT NULL, bucket INTEGER NOT NULL, stream TEXT NOT NULL, pool TEXT NOT NULL,
    source TEXT NOT NULL, site TEXT NOT NULL, event TEXT NOT NULL, reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, bucket, stream, pool, source, site, event, reason));
CREATE INDEX IF NOT EXISTS recipients_suspended ON recipients (tenant_id) WHERE status = 'suspended';
-- Version 10: an address has at most one account per tenant (until version 10, one
-- across all tenants), and sessions are valid while their `user_gen` is the user's
-- `session_gen`, which every admin change that ends sessions raises (until version 10,
-- `sessions_valid_after`, a time).
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, email_index TEXT NOT NULL,
    email_enc BLOB NOT NULL, password_hash TEXT NOT NULL, role TEXT NOT NULL, scopes TEXT NOT NULL,
    totp_enc BLOB, created_at INTEGER NOT NULL, disabled_at INTEGER,
    failed_logins INTEGER NOT NULL DEFAULT 0, locked_until INTEGER,
    session_gen INTEGER NOT NULL DEFAULT 0, lists TEXT);
CREATE INDEX IF NOT EXISTS users_tenant ON users (tenant_id, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS users_tenant_email ON users (tenant_id, email_index);
CREATE INDEX IF NOT EXISTS users_email ON users (email_index);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash BLOB PRIMARY KEY, user_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    csrf_hash BLOB NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    revoked_at INTEGER, user_gen INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
-- Version 9: every data subject's own data key, wrapped by the tenant key (until
-- version 9, contacts.key_wrapped). Personal data about a person is sealed under it;
-- erasure deletes the row (crypto-shredding). Backups never contain this table.
CREATE TABLE IF NOT EXISTS subject_keys (
    tenant_id TEXT NOT NULL, rcpt_hash BLOB NOT NULL, key_wrapped BLOB NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, rcpt_hash)) WITHOUT ROWID;
-- A message's recipients are read by message and tenant: without planner statistics
-- SQLite chose recipients_recent (tenant_id) for that and walked all of the tenant's
-- recipients (the console's message pages took seconds with a million events). The
-- message-only index goes (the pair serves its lookups), and the newest messages of a
-- tenant are read from (tenant_id, id) instead of sorting all of them.
DROP INDEX IF EXISTS recipients_message;
CREATE INDEX IF NOT EXISTS messages_tenant_id ON messages (tenant_id, id);
-- Version 11: the audience. Lists and their members (blind indexes: who is on which
-- list; a person's erasure deletes their rows), segments (saved filters, sealed), imports
-- (state, options and counts: never an address), canary addresses (the tenant's own
-- trap addresses, not people's). contacts gains attr_tags (keyed tags of its attribute
-- values, for equality filters) and deleted_at (profile deleted, consents kept).
CREATE TABLE IF NOT EXISTS lists (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS lists_tenant_name ON lists (tenant_id, name);
CREATE TABLE IF NOT EXISTS list_members (
    tenant_id TEXT NOT NULL, list_id TEXT NOT NULL, rcpt_hash BLOB NOT NULL, added_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, list_id, rcpt_hash)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS list_members_subject ON list_members (tenant_id, rcpt_hash);
CREATE TABLE IF NOT EXISTS segments (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, filter_enc BLOB NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS segments_tenant_name ON segments (tenant_id, name);
CREATE TABLE IF NOT EXISTS imports (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS imports_tenant ON imports (tenant_id, id);
CREATE TABLE IF NOT EXISTS canaries (
    address TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, origin TEXT NOT NULL, label TEXT,
    created_at INTEGER NOT NULL, triggered_at INTEGER);
CREATE INDEX IF NOT EXISTS canaries_tenant ON canaries (tenant_id, created_at);
-- Version 12: campaign templates. A template's name and current version number; each
-- version's parts (subject, HTML, text: marketing copy, sealed under the tenant key like
-- message content) stay, so a broadcast keeps the version it was sent with.
CREATE TABLE IF NOT EXISTS templates (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS templates_tenant_name ON templates (tenant_id, name);
CREATE TABLE IF NOT EXISTS template_versions (
    tenant_id TEXT NOT NULL, template_id TEXT NOT NULL, version INTEGER NOT NULL,
    content_enc BLOB NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (template_id, version)) WITHOUT ROWID;
-- Version 13: broadcasts. Its spec (template and version, From, lists, segments, stream,
-- throttle, window, tracking) is sealed under the tenant key; the expansion's cursor (a
-- blind index) and counts move in the transaction that queues each batch's messages,
-- which carry the broadcast's id (messages.broadcast_id, added by the migration with its
-- index for a database made by an older version). recipients.priority is its stream's
-- priority at acceptance: the poller claims those ahead of bulk first (index
-- recipients_urgent_due, made by the migration after the column).
CREATE TABLE IF NOT EXISTS broadcasts (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
    spec_enc BLOB NOT NULL, send_at INTEGER, cursor BLOB NOT NULL, counts TEXT NOT NULL,
    runner TEXT, runner_until INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    finished_at INTEGER);
CREATE INDEX IF NOT EXISTS broadcasts_tenant ON broadcasts (tenant_id, id);
CREATE INDEX IF NOT EXISTS broadcasts_state ON broadcasts (state, send_at);
INSERT INTO meta (key, value) VALUES ('schema_version', '13')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value
    WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER);
