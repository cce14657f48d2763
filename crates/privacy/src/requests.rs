//! The register of data-subject requests (GDPR Art. 12(3): answer within a month):
//! every access, erasure, rectification, restriction or objection request with its
//! receipt, due date (`privacy.request_due` after receipt), status and closing time.
//! Requests carried out through the API are registered as completed by the handler;
//! requests that arrive elsewhere (a letter, a support ticket) are registered open and
//! closed when answered. The person's address is kept sealed; erasing the person
//! removes it (and the blind index) from their earlier entries, which keep only
//! their kind, dates and status as evidence.

use postwerk_core::address::Address;
use postwerk_core::model::{DsarKind, DsarStatus};
use postwerk_services::subjects::SubjectKeys;
use postwerk_store::model::DsarRecord;
use postwerk_store::prelude::*;
use postwerk_store::vault::SealContext;
use serde::{Deserialize, Serialize};

use postwerk_services::audit::{self, Actor};
use postwerk_services::context::{ServiceError, Services, now_ms};

/// What is sealed with a request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Detail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// A request, opened.
#[derive(Debug, Clone)]
pub struct Request {
    /// Register number.
    pub id: i64,
    /// Which right.
    pub kind: DsarKind,
    /// The person (`None` if it cannot be opened, e.g. after erasure of the key).
    pub email: Option<String>,
    /// Free text (channel, reference, reason for a rejection).
    pub note: Option<String>,
    /// Received.
    pub received_at: i64,
    /// Due.
    pub due_at: i64,
    /// Open, completed, rejected.
    pub status: DsarStatus,
    /// Closed.
    pub closed_at: Option<i64>,
}

fn open(keys: &SubjectKeys, r: DsarRecord) -> Request {
    let detail: Option<Detail> = keys
        .open(
            Some(&r.rcpt_hash),
            SealContext::SubjectRequest(&r.rcpt_hash),
            &r.detail_enc,
        )
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Request {
        id: r.seq,
        kind: r.kind,
        email: detail.as_ref().and_then(|d| d.email.clone()),
        note: detail.and_then(|d| d.note),
        received_at: r.received_at,
        due_at: r.due_at,
        status: r.status,
        closed_at: r.closed_at,
    }
}

/// Registers a request received at `received_at` (default now); `completed` for one
/// carried out on the spot. `address` is `None` for an erasure already carried out:
/// the register then keeps that it happened and when, but nothing that identifies
/// the person.
pub async fn register(
    services: &Services,
    tenant_id: &str,
    kind: DsarKind,
    address: Option<&Address>,
    received_at: Option<i64>,
    note: Option<String>,
    completed: bool,
) -> Result<Request, ServiceError> {
    let tenant = services.tenant_keys(tenant_id).await?;
    // A request without an address (about a person named otherwise) has no index.
    let hash = address
        .map(|a| tenant.blind_index(a).into_bytes())
        .unwrap_or_default();
    let keys = services
        .subject_keys_creating(tenant_id, [hash.as_slice()])
        .await?;
    let now = now_ms();
    let received_at = received_at.unwrap_or(now);
    let due = i64::try_from(services.config.privacy.request_due.as_millis()).unwrap_or(i64::MAX);
    let detail = Detail {
        email: address.map(Address::to_string),
        note,
    };
    let json = serde_json::to_vec(&detail).expect("detail serialises");
    let mut record = DsarRecord {
        seq: 0,
        tenant_id: tenant_id.to_string(),
        kind,
        detail_enc: keys.seal(Some(&hash), SealContext::SubjectRequest(&hash), &json),
        rcpt_hash: hash,
        received_at,
        due_at: received_at.saturating_add(due),
        status: if completed {
            DsarStatus::Completed
        } else {
            DsarStatus::Open
        },
        closed_at: completed.then_some(now),
    };
    record.seq = services.store.add_request(record.clone()).await?;
    Ok(open(&keys, record))
}

/// Closes an open request; `false` if there is no such open request.
pub async fn close(
    services: &Services,
    tenant_id: &str,
    id: i64,
    status: DsarStatus,
) -> Result<bool, ServiceError> {
    Ok(services
        .store
        .close_request(tenant_id, id, status, now_ms())
        .await?)
}

/// A page of the register; with `overdue`, only open requests past their due date.
/// The read is audited as `request.list` (naming the people) before it is opened.
pub async fn list(
    services: &Services,
    actor: &Actor,
    tenant_id: &str,
    overdue: bool,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<Request>, ServiceError> {
    let records = services
        .store
        .list_requests(tenant_id, overdue.then(now_ms), after, limit)
        .await?;
    if let Some(target) = audit::subjects(records.iter().map(|r| r.rcpt_hash.as_slice())) {
        audit::record(
            services,
            actor,
            Some(tenant_id),
            "request.list",
            Some(target),
        )
        .await?;
    }
    let keys = services
        .subject_keys(tenant_id, records.iter().map(|r| r.rcpt_hash.as_slice()))
        .await?;
    Ok(records.into_iter().map(|r| open(&keys, r)).collect())
}
