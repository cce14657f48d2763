//! The data-subject export (GDPR Art. 15 and 20): one JSON document with everything
//! held on a person in a tenant. Shared by `GET /v1/subjects/{email}/export` and
//! `postwerk gdpr export`; the callers audit and register the request.

use std::collections::BTreeMap;

use postwerk_core::address::Address;
use postwerk_privacy::contacts::{self, Consent, Contact};
use postwerk_services::context::{ServiceError, Services, now_ms};
use postwerk_services::subjects::SubjectKeys;
use postwerk_store::model::{EventFilter, MessageRecord};
use postwerk_store::prelude::*;
use serde_json::{Value, json};

use crate::{suppressions, view};

/// Events read per page.
const PAGE: usize = 1000;

/// The export document, or `None` when nothing is held on the person. `progress` is
/// called with (messages read, messages to read) as the messages are gathered.
pub async fn subject_document(
    services: &Services,
    tenant_id: &str,
    address: &Address,
    mut progress: impl FnMut(usize, usize),
) -> Result<Option<Value>, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let contact = contacts::get(services, tenant_id, address).await?;
    let consents = contacts::consents(services, tenant_id, address).await?;
    let hash = keys.blind_index(address);
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let page = services
            .store
            .list_events(EventFilter {
                tenant_id: tenant_id.to_string(),
                rcpt_hash: Some(hash.to_vec()),
                after_seq: after,
                limit: PAGE,
                ..Default::default()
            })
            .await?;
        let full = page.len() == PAGE;
        after = page.last().map(|e| e.seq).or(after);
        events.extend(page);
        if !full {
            break;
        }
    }
    let keys = services.subject_keys(tenant_id, [hash.as_slice()]).await?;
    let mut by_message: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in &events {
        by_message
            .entry(e.message_id.clone())
            .or_default()
            .push(view::event(e, &keys));
    }
    let total = by_message.len();
    let mut messages = Vec::with_capacity(total);
    for (done, (id, timeline)) in by_message.into_iter().enumerate() {
        progress(done, total);
        if let Some(m) = services.store.get_message(tenant_id, &id).await? {
            messages.push(message_json(&m, &hash, timeline, &keys));
        }
    }
    progress(total, total);
    let listed = services
        .store
        .find_suppressions(tenant_id, vec![hash.to_vec()])
        .await?;
    let suppressions: Vec<Value> = listed
        .iter()
        .filter(|s| s.address_enc.is_some())
        .map(|s| suppressions::entry_json(&keys, s))
        .collect();
    if contact.is_none() && consents.is_empty() && messages.is_empty() && suppressions.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!({
        "email": address.to_string(),
        "exported_at": view::time(now_ms()),
        "contact": contact.as_ref().map(contact_json),
        "consents": consents.iter().map(consent_json).collect::<Vec<_>>(),
        "messages": messages,
        "suppressions": suppressions,
    })))
}

/// A contact as JSON.
pub(crate) fn contact_json(c: &Contact) -> Value {
    json!({
        "email": c.email,
        "attributes": c.attributes,
        "lists": c.lists,
        "restricted": c.restricted_at.is_some(),
        "created_at": view::time(c.created_at),
        "updated_at": view::time(c.updated_at),
    })
}

/// A consent record as JSON (its evidence flattened in).
pub(crate) fn consent_json(c: &Consent) -> Value {
    let mut v = json!({
        "id": c.seq.to_string(),
        "purpose": c.purpose,
        "status": c.status,
        "at": view::time(c.at),
    });
    if let (Some(e), Some(obj)) = (&c.evidence, v.as_object_mut())
        && let Ok(Value::Object(fields)) = serde_json::to_value(e)
    {
        obj.extend(fields);
    }
    v
}

fn message_json(m: &MessageRecord, hash: &[u8], timeline: Vec<Value>, keys: &SubjectKeys) -> Value {
    let meta = view::meta(&m.id, Some(hash), &m.meta_enc, keys);
    let status = m
        .recipients
        .iter()
        .find(|r| r.rcpt_hash == hash)
        .map(|r| r.status);
    json!({
        "id": m.id,
        "stream": m.stream,
        "created_at": view::time(m.created_at),
        "subject": meta.subject,
        "from": meta.from,
        "tags": meta.tags,
        "status": status,
        "events": timeline,
    })
}
