//! The breach register (GDPR Art. 33/34): every personal-data breach with its
//! deadlines — the supervisory authority within 72 hours of detection, the affected
//! customers within `privacy.breach_customer_notice` — and when each was met. The
//! description is sealed.

use postwerk_store::model::{IncidentRecord, IncidentStep};
use postwerk_store::prelude::*;
use postwerk_store::vault::{SealContext, TenantKeys};
use serde::{Deserialize, Serialize};

use postwerk_services::context::{ServiceError, Services, now_ms};

/// The GDPR's deadline for notifying the supervisory authority (Art. 33(1)).
pub const AUTHORITY_DEADLINE_MS: i64 = 72 * 3600 * 1000;

/// What is sealed with an incident.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IncidentDetail {
    /// Short title.
    pub title: String,
    /// What happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Categories of data and people affected, approximate numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected: Option<String>,
    /// Measures taken or proposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures: Option<String>,
}

/// An incident, opened.
#[derive(Debug, Clone)]
pub struct Incident {
    /// The stored row.
    pub record: IncidentRecord,
    /// Its description (`None` only if it cannot be opened).
    pub detail: Option<IncidentDetail>,
}

fn open(keys: &TenantKeys, record: IncidentRecord) -> Incident {
    let detail = keys
        .open(SealContext::Incident(&record.tenant_id), &record.detail_enc)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Incident { record, detail }
}

/// Registers a breach detected at `detected_at` (default now).
pub async fn report(
    services: &Services,
    tenant_id: &str,
    detected_at: Option<i64>,
    detail: &IncidentDetail,
) -> Result<Incident, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let detected_at = detected_at.unwrap_or_else(now_ms);
    let notice = i64::try_from(services.config.privacy.breach_customer_notice.as_millis())
        .unwrap_or(i64::MAX);
    let json = serde_json::to_vec(detail).expect("detail serialises");
    let mut record = IncidentRecord {
        seq: 0,
        tenant_id: tenant_id.to_string(),
        detected_at,
        authority_due_at: detected_at.saturating_add(AUTHORITY_DEADLINE_MS),
        customers_due_at: detected_at.saturating_add(notice),
        authority_notified_at: None,
        customers_notified_at: None,
        closed_at: None,
        detail_enc: keys.seal(SealContext::Incident(tenant_id), &json),
    };
    record.seq = services.store.add_incident(record.clone()).await?;
    Ok(open(&keys, record))
}

/// Records a step now; `false` if there is no such incident or it was recorded.
pub async fn step(
    services: &Services,
    tenant_id: &str,
    id: i64,
    step: IncidentStep,
) -> Result<bool, ServiceError> {
    Ok(services
        .store
        .step_incident(tenant_id, id, step, now_ms())
        .await?)
}

/// A page of the register; with `overdue`, only incidents with a notification
/// missing past its deadline.
pub async fn list(
    services: &Services,
    tenant_id: &str,
    overdue: bool,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<Incident>, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let records = services
        .store
        .list_incidents(tenant_id, overdue.then(now_ms), after, limit)
        .await?;
    Ok(records.into_iter().map(|r| open(&keys, r)).collect())
}
