-- Postwerk PostgreSQL schema, version 11: the same tables, columns and semantics as
-- sqlite/schema.sql. Personal data is stored only sealed (*_enc) or as a blind index
-- (rcpt_hash). Times are Unix milliseconds (BIGINT).
--
-- Run at start-up by every node, inside one transaction holding
-- pg_advisory_xact_lock, so every statement must stay idempotent (IF NOT EXISTS,
-- ON CONFLICT DO NOTHING).
--
-- Identifier and name columns use COLLATE "C": byte-wise ordering and equality,
-- exactly like SQLite's default BINARY collation (ORDER BY id/name must give the same
-- order on both backends whatever the database locale), and cheaper index compares.
-- No foreign keys: SQLite has none and both backends must accept the same writes.
CREATE TABLE IF NOT EXISTS meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS tenants (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    wrapped_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    parent_id TEXT COLLATE "C",
    cancelled_at BIGINT);
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS parent_id TEXT COLLATE "C";
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS cancelled_at BIGINT;

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    allowed_ips TEXT,
    rate_limit BIGINT);
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS allowed_ips TEXT;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS rate_limit BIGINT;

CREATE TABLE IF NOT EXISTS domains (
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name));

CREATE TABLE IF NOT EXISTS dkim_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    domain TEXT COLLATE "C" NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key_enc BYTEA NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS dkim_keys_domain ON dkim_keys (tenant_id, domain);

CREATE TABLE IF NOT EXISTS messages (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    stream TEXT NOT NULL,
    from_domain TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    size BIGINT NOT NULL,
    meta_enc BYTEA NOT NULL,
    content_enc BYTEA,
    mail_from_enc BYTEA);

-- Delivery attempts will get their own table with the retention issue; it follows the
-- same plan as `events` below.
CREATE TABLE IF NOT EXISTS recipients (
    id TEXT COLLATE "C" PRIMARY KEY,
    message_id TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    rcpt_hash BYTEA NOT NULL,
    address_enc BYTEA NOT NULL,
    domain TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_node TEXT COLLATE "C",
    lease_until BIGINT,
    updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS recipients_message ON recipients (message_id);
-- claim_due walks this index in next_attempt_at order (FOR UPDATE SKIP LOCKED).
CREATE INDEX IF NOT EXISTS recipients_due ON recipients (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS recipients_lease ON recipients (lease_node) WHERE lease_node IS NOT NULL;

-- The event log, append-only; `seq` is the pagination cursor. Writers take an
-- advisory lock just before inserting events and hold it to commit, so `seq` order is
-- commit order and a reader paging with `seq > cursor` never skips a late commit.
--
-- Retention: this is a plain table for now, with an index on `at` so expiry can
-- delete by time. Daily range partitioning on `at` (retention = DROP PARTITION, no
-- vacuum debt) comes with the retention issue; the primary key then becomes
-- (seq, at), as a partitioned table's unique keys must include the partition key.
CREATE TABLE IF NOT EXISTS events (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    message_id TEXT COLLATE "C" NOT NULL,
    recipient_id TEXT COLLATE "C" NOT NULL,
    rcpt_hash BYTEA NOT NULL,
    type TEXT NOT NULL,
    at BIGINT NOT NULL,
    detail_enc BYTEA);
CREATE INDEX IF NOT EXISTS events_message ON events (message_id, seq);
CREATE INDEX IF NOT EXISTS events_tenant ON events (tenant_id, seq);
CREATE INDEX IF NOT EXISTS events_rcpt ON events (tenant_id, rcpt_hash, seq);
CREATE INDEX IF NOT EXISTS events_at ON events (at);

CREATE TABLE IF NOT EXISTS idempotency (
    tenant_id TEXT COLLATE "C" NOT NULL,
    key_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    response_enc BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, key_hash));

-- Version 2: the suppression list. `stream` is '' for an entry covering every stream
-- (NOT NULL keeps the unique key simple). The unique key's (tenant_id, rcpt_hash)
-- prefix serves find_suppressions (`rcpt_hash = ANY(...)`); suppressions_tenant serves
-- list_suppressions. Inserts take an advisory lock so `seq` order is commit order
-- (see `events`).
CREATE TABLE IF NOT EXISTS suppressions (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    rcpt_hash BYTEA NOT NULL,
    stream TEXT COLLATE "C" NOT NULL DEFAULT '',
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    address_enc BYTEA,
    source TEXT,
    CONSTRAINT suppressions_scope UNIQUE (tenant_id, rcpt_hash, stream));
CREATE INDEX IF NOT EXISTS suppressions_tenant ON suppressions (tenant_id, seq);

-- Version 3: contacts, consents (append-only), the audit chain (appends take
-- AUDIT_LOCK so each entry chains to the one committed before it).
CREATE TABLE IF NOT EXISTS contacts (
    tenant_id TEXT COLLATE "C" NOT NULL,
    rcpt_hash BYTEA NOT NULL,
    data_enc BYTEA NOT NULL,
    restricted_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    attr_tags TEXT NOT NULL DEFAULT '',
    deleted_at BIGINT,
    PRIMARY KEY (tenant_id, rcpt_hash));
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS attr_tags TEXT NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS deleted_at BIGINT;
CREATE TABLE IF NOT EXISTS consents (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    rcpt_hash BYTEA NOT NULL,
    purpose TEXT NOT NULL,
    status TEXT NOT NULL,
    at BIGINT NOT NULL,
    record_enc BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS consents_subject ON consents (tenant_id, rcpt_hash, seq);
CREATE TABLE IF NOT EXISTS audit (
    seq BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C",
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    ip TEXT,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS audit_tenant ON audit (tenant_id, seq);
CREATE INDEX IF NOT EXISTS recipients_hash ON recipients (tenant_id, rcpt_hash);
CREATE INDEX IF NOT EXISTS messages_created ON messages (created_at);
CREATE TABLE IF NOT EXISTS dsar_requests (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    rcpt_hash BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    closed_at BIGINT,
    detail_enc BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS dsar_tenant ON dsar_requests (tenant_id, seq);
CREATE TABLE IF NOT EXISTS incidents (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    detected_at BIGINT NOT NULL,
    authority_due_at BIGINT NOT NULL,
    customers_due_at BIGINT NOT NULL,
    authority_notified_at BIGINT,
    customers_notified_at BIGINT,
    closed_at BIGINT,
    detail_enc BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_tenant ON incidents (tenant_id, seq);

-- Version 4: webhooks (see sqlite/schema.sql). The trigger queues deliveries in the
-- event's own transaction.
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    streams TEXT NOT NULL,
    secret_enc BYTEA NOT NULL,
    previous_secret_enc BYTEA,
    previous_until BIGINT,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    failing_since BIGINT);
CREATE INDEX IF NOT EXISTS webhooks_tenant ON webhooks (tenant_id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    seq BIGSERIAL PRIMARY KEY,
    webhook_id TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    event_seq BIGINT NOT NULL,
    message_id TEXT COLLATE "C" NOT NULL,
    rcpt_hash BYTEA NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_node TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_order ON webhook_deliveries (webhook_id, message_id, event_seq)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_subject ON webhook_deliveries (tenant_id, rcpt_hash);
CREATE INDEX IF NOT EXISTS webhook_deliveries_created ON webhook_deliveries (created_at);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    seq BIGSERIAL PRIMARY KEY,
    delivery_seq BIGINT NOT NULL,
    webhook_id TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    event_seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_attempts_hook ON webhook_attempts (webhook_id, seq);
CREATE INDEX IF NOT EXISTS webhook_attempts_delivery ON webhook_attempts (delivery_seq);
-- Version 5: stream events (stream_paused, stream_resumed) name their stream here;
-- their message and recipient ids are empty.
ALTER TABLE events ADD COLUMN IF NOT EXISTS stream TEXT;
CREATE OR REPLACE FUNCTION events_to_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, tenant_id, event_seq, message_id, rcpt_hash, state,
        next_attempt_at, created_at)
    SELECT w.id, NEW.tenant_id, NEW.seq, NEW.message_id, NEW.rcpt_hash, 'pending', NEW.at, NEW.at
    FROM webhooks w WHERE w.tenant_id = NEW.tenant_id
        AND (w.events = '' OR strpos(w.events, ',' || NEW.type || ',') > 0)
        AND (w.streams = '' OR strpos(w.streams, ',' || coalesce(NEW.stream,
            (SELECT m.stream FROM messages m WHERE m.id = NEW.message_id)) || ',') > 0);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS events_to_webhooks ON events;
CREATE TRIGGER events_to_webhooks AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_to_webhooks();

-- Message tags as blind indexes, for filtering events and messages by tag.
CREATE TABLE IF NOT EXISTS message_tags (
    tenant_id TEXT COLLATE "C" NOT NULL,
    tag_hash BYTEA NOT NULL,
    message_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, tag_hash, message_id));
CREATE INDEX IF NOT EXISTS message_tags_message ON message_tags (message_id);
CREATE INDEX IF NOT EXISTS messages_stream ON messages (tenant_id, stream);

-- Version 5: streams (see sqlite/schema.sql).
CREATE TABLE IF NOT EXISTS streams (
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    settings TEXT NOT NULL,
    paused_at BIGINT,
    pause_reason TEXT,
    resumed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name));
CREATE INDEX IF NOT EXISTS recipients_recent ON recipients (tenant_id, updated_at);
-- Deliverability statistics: event counts per hour and dimension ('' = none). No
-- personal data.
CREATE TABLE IF NOT EXISTS delivery_stats (
    tenant_id TEXT NOT NULL, bucket BIGINT NOT NULL, stream TEXT NOT NULL, pool TEXT NOT NULL,
    source TEXT NOT NULL, site TEXT NOT NULL, event TEXT NOT NULL, reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, bucket, stream, pool, source, site, event, reason));
CREATE INDEX IF NOT EXISTS recipients_suspended ON recipients (tenant_id) WHERE status = 'suspended';

-- Raised to this file's version; never lowered (an older node starting later leaves
-- it alone).
CREATE TABLE IF NOT EXISTS users (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    email_index TEXT COLLATE "C" NOT NULL,
    email_enc BYTEA NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    scopes TEXT NOT NULL,
    totp_enc BYTEA,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    session_gen BIGINT NOT NULL DEFAULT 0,
    lists TEXT);
ALTER TABLE users ADD COLUMN IF NOT EXISTS lists TEXT;
CREATE INDEX IF NOT EXISTS users_tenant ON users (tenant_id, created_at);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash BYTEA PRIMARY KEY,
    user_id TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    csrf_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    user_gen BIGINT NOT NULL DEFAULT 0);
-- Version 10: an address has at most one account per tenant (until version 10, one
-- across all tenants), and sessions are valid while their `user_gen` is the user's
-- `session_gen`, which every admin change that ends sessions raises (until version 10,
-- `sessions_valid_after`, a time; sessions it had ended are deleted).
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_email_index_key;
CREATE UNIQUE INDEX IF NOT EXISTS users_tenant_email ON users (tenant_id, email_index);
CREATE INDEX IF NOT EXISTS users_email ON users (email_index);
ALTER TABLE users ADD COLUMN IF NOT EXISTS session_gen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS user_gen BIGINT NOT NULL DEFAULT 0;
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
               AND table_name = 'users' AND column_name = 'sessions_valid_after') THEN
        DELETE FROM sessions s USING users u
            WHERE u.id = s.user_id AND s.created_at < u.sessions_valid_after;
        ALTER TABLE users DROP COLUMN sessions_valid_after;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
-- Version 9: every data subject's own data key, wrapped by the tenant key (until
-- version 9, contacts.key_wrapped, moved here). Personal data about a person is
-- sealed under it; erasure deletes the row (crypto-shredding). Backups never contain
-- this table's rows.
CREATE TABLE IF NOT EXISTS subject_keys (
    tenant_id TEXT COLLATE "C" NOT NULL,
    rcpt_hash BYTEA NOT NULL,
    key_wrapped BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, rcpt_hash));
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
               AND table_name = 'contacts' AND column_name = 'key_wrapped') THEN
        INSERT INTO subject_keys (tenant_id, rcpt_hash, key_wrapped, created_at)
            SELECT tenant_id, rcpt_hash, key_wrapped, created_at FROM contacts
            ON CONFLICT DO NOTHING;
        ALTER TABLE contacts DROP COLUMN key_wrapped;
    END IF;
END $$;
-- Version 11: the audience (see sqlite/schema.sql): lists, list members, segments,
-- imports, canary addresses.
CREATE TABLE IF NOT EXISTS lists (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS lists_tenant_name ON lists (tenant_id, name);
CREATE TABLE IF NOT EXISTS list_members (
    tenant_id TEXT COLLATE "C" NOT NULL,
    list_id TEXT COLLATE "C" NOT NULL,
    rcpt_hash BYTEA NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, list_id, rcpt_hash));
CREATE INDEX IF NOT EXISTS list_members_subject ON list_members (tenant_id, rcpt_hash);
CREATE TABLE IF NOT EXISTS segments (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    filter_enc BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS segments_tenant_name ON segments (tenant_id, name);
CREATE TABLE IF NOT EXISTS imports (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS imports_tenant ON imports (tenant_id, id);
CREATE TABLE IF NOT EXISTS canaries (
    address TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    origin TEXT NOT NULL,
    label TEXT,
    created_at BIGINT NOT NULL,
    triggered_at BIGINT);
CREATE INDEX IF NOT EXISTS canaries_tenant ON canaries (tenant_id, created_at);

-- Version 12: campaign templates (see sqlite/schema.sql).
CREATE TABLE IF NOT EXISTS templates (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS templates_tenant_name ON templates (tenant_id, name);
CREATE TABLE IF NOT EXISTS template_versions (
    tenant_id TEXT COLLATE "C" NOT NULL,
    template_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    content_enc BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (template_id, version));

-- Version 13: broadcasts (see sqlite/schema.sql).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS broadcast_id TEXT COLLATE "C";
ALTER TABLE recipients ADD COLUMN IF NOT EXISTS priority SMALLINT NOT NULL DEFAULT 5;
CREATE INDEX IF NOT EXISTS recipients_urgent_due ON recipients (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL AND priority < 5;
CREATE INDEX IF NOT EXISTS messages_broadcast ON messages (tenant_id, broadcast_id, id)
    WHERE broadcast_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS broadcasts (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    spec_enc BYTEA NOT NULL,
    send_at BIGINT,
    cursor BYTEA NOT NULL,
    counts TEXT NOT NULL,
    runner TEXT,
    runner_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT);
CREATE INDEX IF NOT EXISTS broadcasts_tenant ON broadcasts (tenant_id, id);
CREATE INDEX IF NOT EXISTS broadcasts_state ON broadcasts (state, send_at);

INSERT INTO meta (key, value) VALUES ('schema_version', '13')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value
    WHERE meta.value::bigint < excluded.value::bigint;
