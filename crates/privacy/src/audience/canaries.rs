//! Canary addresses (seed 003: test addresses that show whether a list leaks).
//!
//! A canary is an address at the canary domain (`[canaries] domain`, whose MX is this
//! Postwerk's inbound MX) that no person reads. A tenant registers its own
//! (`POST /v1/canaries`), and every contact export gets one of its own, written among
//! the exported rows; the store maps each address to where it was handed out, so the
//! export (and the list it was of) is recovered from the address alone. Mail that
//! reaches a canary from anywhere but this Postwerk means the list it was in leaked:
//! [`triggered`] opens an incident in the breach register and raises
//! `canary_triggered`.

use postwerk_core::id::random_token;
use postwerk_core::model::EventType;
use postwerk_store::model::CanaryRecord;
use postwerk_store::prelude::*;
use postwerk_store::vault::SealContext;
use serde_json::json;

use crate::incidents::{self, IncidentDetail};
use postwerk_services::context::{ServiceError, Services, now_ms};

/// The origin of a canary a tenant registered itself.
pub const REGISTERED: &str = "registered";

/// Why a canary could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    /// `[canaries] domain` is not set.
    #[error("no canary domain is configured ([canaries] domain)")]
    NotConfigured,
    /// The store failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A new canary of the tenant's, handed out as `origin` (`registered`, or
/// `export:<id>`), with `label`.
pub async fn create(
    services: &Services,
    tenant_id: &str,
    origin: &str,
    label: Option<String>,
) -> Result<CanaryRecord, CanaryError> {
    let domain = services
        .config
        .canaries
        .domain
        .as_ref()
        .ok_or(CanaryError::NotConfigured)?;
    let canary = CanaryRecord {
        // 12 base32 characters: 60 random bits, not guessable from other canaries.
        address: format!("{}@{}", random_token(12), domain.to_ascii_lowercase()),
        tenant_id: tenant_id.to_string(),
        origin: origin.to_string(),
        label,
        created_at: now_ms(),
        triggered_at: None,
    };
    services
        .store
        .add_canary(canary.clone())
        .await
        .map_err(ServiceError::from)?;
    Ok(canary)
}

/// What arrived at a canary, as the inbound MX saw it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The canary address (any case).
    pub address: String,
    /// The connecting client's IP.
    pub client_ip: String,
    /// The domain of the message's From (or envelope sender).
    pub from_domain: Option<String>,
}

/// Records mail from elsewhere reaching a canary: marks it triggered, opens an
/// incident naming where the canary was handed out, the sending IP and From domain,
/// and raises `canary_triggered`. `None` if the address is no canary.
pub async fn triggered(
    services: &Services,
    arrival: &Arrival,
) -> Result<Option<CanaryRecord>, ServiceError> {
    let address = arrival.address.to_ascii_lowercase();
    let Some(canary) = services.store.find_canary(&address).await? else {
        return Ok(None);
    };
    let now = now_ms();
    services.store.trigger_canary(&address, now).await?;
    let from = arrival.from_domain.as_deref().unwrap_or("unknown");
    let origin = match &canary.label {
        Some(label) => format!("{} ({label})", canary.origin),
        None => canary.origin.clone(),
    };
    let incident = incidents::report(
        services,
        &canary.tenant_id,
        Some(now),
        &IncidentDetail {
            title: format!("Canary address received mail: {origin} leaked"),
            description: Some(format!(
                "Mail sent from {} (From domain {from}) reached the canary address {address}, \
                 handed out as {origin}. Only someone holding that list could have sent it.",
                arrival.client_ip
            )),
            affected: Some(format!("the contacts of {origin}")),
            measures: None,
        },
    )
    .await?;
    let keys = services.tenant_keys(&canary.tenant_id).await?;
    let detail = json!({
        "canary": address,
        "canary_origin": canary.origin,
        "label": canary.label,
        "client_ip": arrival.client_ip,
        "from_domain": arrival.from_domain,
        "incident": incident.record.seq,
    });
    let sealed = keys.seal(SealContext::Event(""), detail.to_string().as_bytes());
    services
        .store
        .add_tenant_event(&canary.tenant_id, EventType::CanaryTriggered, now, sealed)
        .await?;
    Ok(Some(canary))
}
