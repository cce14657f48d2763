//! The suppression list: addresses that must not be sent to (hard bounces,
//! complaints, unsubscribes, manual entries), kept as blind-index hashes with the
//! address sealed beside it so that an operator can still see what is listed.

use postwerk_core::address::Address;
use postwerk_core::model::{RecipientStatus, SuppressionReason};
use postwerk_store::model::{MailStop, SuppressionRecord};
use postwerk_store::prelude::*;
use postwerk_store::vault::SealContext;

use postwerk_services::context::{ServiceError, Services, now_ms};
use postwerk_services::subjects::SubjectKeys;

/// A suppression entry for `address`, sealed under the person's key (which `keys`
/// should hold).
pub fn record(
    keys: &SubjectKeys,
    tenant_id: &str,
    address: &Address,
    reason: SuppressionReason,
    stream: Option<&str>,
    source: &str,
) -> SuppressionRecord {
    let rcpt_hash = keys.tenant().blind_index(address);
    let sealed = keys.seal(
        Some(&rcpt_hash),
        SealContext::Suppression(&rcpt_hash),
        address.to_string().as_bytes(),
    );
    SuppressionRecord {
        seq: 0,
        tenant_id: tenant_id.to_string(),
        address_enc: Some(sealed),
        rcpt_hash: rcpt_hash.into_bytes(),
        stream: stream.map(str::to_string),
        reason,
        created_at: now_ms(),
        source: Some(source.to_string()),
    }
}

/// Adds `address` to the tenant's list; `Ok(false)` if that entry already existed.
pub async fn suppress(
    services: &Services,
    tenant_id: &str,
    address: &Address,
    reason: SuppressionReason,
    stream: Option<&str>,
    source: &str,
) -> Result<bool, ServiceError> {
    let hash = services.tenant_keys(tenant_id).await?.blind_index(address);
    let keys = services
        .subject_keys_creating(tenant_id, [hash.as_slice()])
        .await?;
    let entry = record(&keys, tenant_id, address, reason, stream, source);
    add(services, entry).await
}

/// One entry of a batch for [`add_many`].
#[derive(Debug, Clone)]
pub struct NewSuppression {
    /// The address.
    pub address: Address,
    /// Why it is listed (never `erasure`: only erasing a person makes those).
    pub reason: SuppressionReason,
    /// Only this stream (`None`: every stream).
    pub stream: Option<String>,
    /// Where the entry came from (`import`, another provider's name, …).
    pub source: String,
}

/// Adds a batch of entries (an import) as [`add`] does each, the people's keys loaded
/// or made in one go: for each entry, whether it was added (`false`: it already
/// existed, or came earlier in the batch).
pub async fn add_many(
    services: &Services,
    tenant_id: &str,
    batch: &[NewSuppression],
) -> Result<Vec<bool>, ServiceError> {
    let tenant = services.tenant_keys(tenant_id).await?;
    let hashes: Vec<_> = batch
        .iter()
        .map(|e| tenant.blind_index(&e.address))
        .collect();
    let keys = services
        .subject_keys_creating(tenant_id, hashes.iter().map(|h| h.as_slice()))
        .await?;
    let mut added = Vec::with_capacity(batch.len());
    for e in batch {
        let entry = record(
            &keys,
            tenant_id,
            &e.address,
            e.reason,
            e.stream.as_deref(),
            &e.source,
        );
        added.push(add(services, entry).await?);
    }
    Ok(added)
}

/// Stores `entry` and stops the person's waiting mail it covers (of its stream, or of
/// every stream) as acceptance would have: `suppressed`, with a `suppressed` event.
/// `Ok(false)` if that entry already existed (waiting mail is stopped all the same).
pub async fn add(services: &Services, entry: SuppressionRecord) -> Result<bool, ServiceError> {
    let (tenant_id, hash, stream) = (
        entry.tenant_id.clone(),
        entry.rcpt_hash.clone(),
        entry.stream.clone(),
    );
    let added = services.store.add_suppression(entry).await?;
    let status = RecipientStatus::Suppressed;
    stop_waiting(services, &tenant_id, &hash, stream.as_deref(), status).await?;
    Ok(added)
}

/// Stops the waiting mail (queued, deferred, suspended) of the person with blind index
/// `rcpt_hash` of `stream` (`None`: every stream) with the final `status`
/// (`suppressed`, `restricted` or `no_consent`), each recipient with an event of that
/// name; mail the engine holds in memory is dropped before delivery. Returns how many
/// recipients stopped.
pub async fn stop_waiting(
    services: &Services,
    tenant_id: &str,
    rcpt_hash: &[u8],
    stream: Option<&str>,
    status: RecipientStatus,
) -> Result<u64, ServiceError> {
    let stop = MailStop {
        tenant_id: tenant_id.to_string(),
        rcpt_hash: rcpt_hash.to_vec(),
        stream: stream.map(str::to_string),
        status,
        at: now_ms(),
    };
    let stopped = services.store.stop_subject_mail(stop).await?;
    if stopped > 0 {
        tracing::info!(
            stopped,
            status = status.as_str(),
            "stopped a person's waiting mail"
        );
    }
    Ok(stopped)
}

/// The listed address, if it can still be opened (it cannot after erasure).
pub fn address_of(keys: &SubjectKeys, entry: &SuppressionRecord) -> Option<String> {
    let sealed = entry.address_enc.as_ref()?;
    let plain = keys
        .open(
            Some(&entry.rcpt_hash),
            SealContext::Suppression(&entry.rcpt_hash),
            sealed,
        )
        .ok()?;
    String::from_utf8(plain).ok()
}
