//! Records and helpers the scenarios build on.

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
        broadcast_id: None,
        send_at: None,
        priority: 5,
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
        progress: None,
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
        RecipientStatus::Cancelled => EventType::Cancelled,
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

/// A draft broadcast of tenant `t`.
pub fn broadcast(t: &str, id: &str, at: i64) -> BroadcastRecord {
    BroadcastRecord {
        id: id.into(),
        tenant_id: t.into(),
        name: "news".into(),
        state: "draft".into(),
        spec_enc: b"sealed spec".to_vec(),
        send_at: None,
        cursor: Vec::new(),
        counts: "{}".into(),
        runner: None,
        runner_until: None,
        created_at: at,
        updated_at: at,
        finished_at: None,
    }
}
