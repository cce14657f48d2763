//! Contacts and consent records, sealed under the person's own data key.
//!
//! A contact is keyed by the blind index of its address. Its attributes and lists,
//! and the evidence of every consent record, are sealed with the person's key (see
//! [`postwerk_services::subjects`]): erasing the person deletes that key, so copies of their data
//! in backups cannot be opened any more (crypto-shredding). Consent records are
//! append-only: a withdrawal is a new record, the history stays as evidence.

use postwerk_core::address::Address;
use postwerk_core::model::{ConsentStatus, RecipientStatus, SuppressionReason};
use postwerk_store::model::{ConsentRecord, ContactRecord, Erasure, SuppressionRecord};
use postwerk_store::prelude::*;
use postwerk_store::vault::{RecordKey, SealContext, TenantKeys, VaultError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

use crate::suppressions;
use postwerk_services::context::{ServiceError, Services, now_ms};

/// What is sealed for a contact (list memberships are rows of their own, see
/// [`crate::audience::lists`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ContactData {
    pub(crate) email: String,
    pub(crate) attributes: Map<String, Value>,
    /// The profile was deleted: only the address and the key remain, for the consent
    /// evidence sealed under it.
    #[serde(default)]
    pub(crate) deleted: bool,
}

/// A contact, opened.
#[derive(Debug, Clone)]
pub struct Contact {
    /// The address as last given.
    pub email: String,
    /// Free-form attributes (`first_name`, …).
    pub attributes: Map<String, Value>,
    /// The names of the lists the contact is on.
    pub lists: Vec<String>,
    /// When processing was restricted, if it is.
    pub restricted_at: Option<i64>,
    /// First seen.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// The evidence kept with a consent record (sealed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvidence {
    /// `consent`, `contract`, `legal_obligation`, `vital_interests`, `public_task` or
    /// `legitimate_interest` (GDPR Art. 6(1)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lawful_basis: Option<String>,
    /// Where it was collected (`signup-form`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The text the person saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wording: Option<String>,
    /// The version of that text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wording_version: Option<String>,
    /// The person's IP address at the time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The person's user agent at the time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// For a double opt-in confirmation: the history position of the pending record it
    /// confirms (`ip` and `user_agent` are then those of the click).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirms: Option<i64>,
}

/// A consent record, opened.
#[derive(Debug, Clone)]
pub struct Consent {
    /// Position in the history.
    pub seq: i64,
    /// Purpose.
    pub purpose: String,
    /// Active, pending or withdrawn.
    pub status: ConsentStatus,
    /// When.
    pub at: i64,
    /// The evidence (`None` only if it cannot be opened).
    pub evidence: Option<ConsentEvidence>,
}

/// The lawful bases of GDPR Art. 6(1), as accepted in consent records.
pub const LAWFUL_BASES: &[&str] = &[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interest",
];

/// HMAC purpose of double opt-in confirmation tokens.
const CONFIRM_PURPOSE: &str = "confirm-consent";

/// The token of the link that confirms `address`'s pending `purpose` consent:
/// `<tenant id>.<blind index>.<purpose>.<tag>`, with the tag an HMAC under the tenant
/// key. It holds no personal data and cannot be forged.
pub fn confirmation_token(
    keys: &TenantKeys,
    tenant_id: &str,
    address: &Address,
    purpose: &str,
) -> String {
    let s = Subject::of(keys, address);
    let tag = keys.link_tag(CONFIRM_PURPOSE, &format!("{}.{purpose}", s.hex));
    format!("{tenant_id}.{}.{purpose}.{tag}", s.hex)
}

/// What a confirmation link did.
#[derive(Debug)]
pub enum Confirmation {
    /// The pending consent is now active (a new record).
    Confirmed,
    /// It had been confirmed already.
    AlreadyActive,
    /// No such link, or nothing pending for it (withdrawn, erased).
    Invalid,
}

/// Confirms the pending consent a confirmation link names, recording the click's
/// address and user agent with the new `active` record.
pub async fn confirm(
    services: &Services,
    token: &str,
    ip: Option<String>,
    user_agent: Option<String>,
) -> Result<Confirmation, ServiceError> {
    let parsed = token.rsplit_once('.').and_then(|(rest, tag)| {
        let mut parts = rest.splitn(3, '.');
        Some((parts.next()?, parts.next()?, parts.next()?, tag))
    });
    let Some((tenant_id, hash_hex, purpose, tag)) = parsed else {
        return Ok(Confirmation::Invalid);
    };
    let keys = match services.tenant_keys(tenant_id).await {
        Ok(keys) => keys,
        Err(ServiceError::UnknownTenant) => return Ok(Confirmation::Invalid),
        Err(e) => return Err(e),
    };
    let expected = keys.link_tag(CONFIRM_PURPOSE, &format!("{hash_hex}.{purpose}"));
    let Some(hash) = postwerk_core::hex::decode(hash_hex)
        .filter(|_| postwerk_core::id::constant_time_eq(expected.as_bytes(), tag.as_bytes()))
    else {
        return Ok(Confirmation::Invalid);
    };
    let s = Subject {
        hash,
        hex: hash_hex.to_string(),
    };
    let Some((record, key)) = load(services, tenant_id, &s).await? else {
        return Ok(Confirmation::Invalid);
    };
    let address = Address::parse(&data_of(&key, &s, &record)?.email)
        .map_err(|_| VaultError::Authentication)?;
    let history = consents(services, tenant_id, &address).await?;
    let latest = current(&history).into_iter().find(|c| c.purpose == purpose);
    let pending = match latest {
        Some(c) if c.status == ConsentStatus::Active => return Ok(Confirmation::AlreadyActive),
        Some(c) if c.status == ConsentStatus::Pending => c,
        _ => return Ok(Confirmation::Invalid),
    };
    let evidence = ConsentEvidence {
        ip,
        user_agent,
        confirms: Some(pending.seq),
        ..pending.evidence.clone().unwrap_or_default()
    };
    add_consent(
        services,
        tenant_id,
        &address,
        purpose,
        ConsentStatus::Active,
        None,
        &evidence,
    )
    .await?;
    Ok(Confirmation::Confirmed)
}

/// A person's handle in one tenant: blind index and sealing contexts.
pub(crate) struct Subject {
    pub(crate) hash: Vec<u8>,
    hex: String,
}

impl Subject {
    pub(crate) fn of(keys: &TenantKeys, address: &Address) -> Self {
        let hash = keys.blind_index(address);
        Subject {
            hex: postwerk_core::hex::encode(&hash),
            hash: hash.into_bytes(),
        }
    }
    /// The handle of the person with blind index `hash`.
    pub(crate) fn of_hash(hash: Vec<u8>) -> Self {
        Subject {
            hex: postwerk_core::hex::encode(&hash),
            hash,
        }
    }
    pub(crate) fn data_context(&self) -> SealContext<'_> {
        SealContext::Contact(&self.hash)
    }
    pub(crate) fn consent_context(&self) -> SealContext<'_> {
        SealContext::Consent(&self.hash)
    }
}

/// A stored contact's data, opened with the person's key.
pub(crate) fn data_of(
    key: &RecordKey,
    s: &Subject,
    c: &ContactRecord,
) -> Result<ContactData, ServiceError> {
    Ok(
        serde_json::from_slice(&key.open(s.data_context(), &c.data_enc)?)
            .map_err(|_| VaultError::Authentication)?,
    )
}

/// A stored contact, opened, with the names of its lists.
pub(crate) async fn contact_of(
    services: &Services,
    key: &RecordKey,
    s: &Subject,
    c: &ContactRecord,
) -> Result<Contact, ServiceError> {
    let lists = services.store.subject_lists(&c.tenant_id, &s.hash).await?;
    let names = lists.into_iter().map(|l| l.list.name).collect();
    contact_with(key, s, c, names)
}

/// A stored contact, opened, on the lists named `lists`.
pub(crate) fn contact_with(
    key: &RecordKey,
    s: &Subject,
    c: &ContactRecord,
    lists: Vec<String>,
) -> Result<Contact, ServiceError> {
    let data = data_of(key, s, c)?;
    Ok(Contact {
        email: data.email,
        attributes: data.attributes,
        lists,
        restricted_at: c.restricted_at,
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

/// The keyed tags of a contact's attribute values (see
/// [`TenantKeys::attribute_tag`]), space-separated, for the store's equality filters.
/// A string's tag is of its text, any other value's of its JSON.
pub fn attribute_tags(keys: &TenantKeys, attributes: &Map<String, Value>) -> String {
    attributes
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, v)| keys.attribute_tag(name, &attribute_text(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An attribute value as text: a string's own, any other value's JSON.
pub fn attribute_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The row of a contact holding `data`, sealed under `key`.
pub(crate) fn contact_row(
    keys: &TenantKeys,
    key: &RecordKey,
    tenant_id: &str,
    s: &Subject,
    data: &ContactData,
    times: (i64, i64),
    restricted_at: Option<i64>,
) -> ContactRecord {
    let json = serde_json::to_vec(data).expect("contact serialises");
    ContactRecord {
        tenant_id: tenant_id.to_string(),
        rcpt_hash: s.hash.clone(),
        data_enc: key.seal(s.data_context(), &json),
        restricted_at,
        created_at: times.0,
        updated_at: times.1,
        attr_tags: attribute_tags(keys, &data.attributes),
        deleted_at: data.deleted.then_some(times.1),
    }
}

/// The stored contact and the person's key, if there is a contact.
async fn load(
    services: &Services,
    tenant_id: &str,
    s: &Subject,
) -> Result<Option<(ContactRecord, Arc<RecordKey>)>, ServiceError> {
    let Some(record) = services.store.get_contact(tenant_id, &s.hash).await? else {
        return Ok(None);
    };
    let key = services
        .person_key(tenant_id, &s.hash, false)
        .await?
        .ok_or(VaultError::Authentication)?;
    Ok(Some((record, key)))
}

/// Seals `data` under the person's key (made now for a new person) and stores the
/// contact. Returns the stored row, the key, and whether this call created the
/// contact.
async fn save(
    services: &Services,
    tenant_id: &str,
    s: &Subject,
    data: &ContactData,
    existing: Option<(ContactRecord, Arc<RecordKey>)>,
) -> Result<(ContactRecord, Arc<RecordKey>, bool), ServiceError> {
    let now = now_ms();
    let (key, created_at, restricted_at) = match existing {
        Some((rec, key)) => (key, rec.created_at, rec.restricted_at),
        None => {
            let key = services
                .person_key(tenant_id, &s.hash, true)
                .await?
                .ok_or(VaultError::Authentication)?;
            (key, now, None)
        }
    };
    let keys = services.tenant_keys(tenant_id).await?;
    let record = contact_row(
        &keys,
        &key,
        tenant_id,
        s,
        data,
        (created_at, now),
        restricted_at,
    );
    let created = services.store.upsert_contact(record.clone()).await?;
    Ok((record, key, created))
}

/// The contact's row and key, storing an empty contact first if there is none.
async fn load_or_create(
    services: &Services,
    tenant_id: &str,
    s: &Subject,
    address: &Address,
) -> Result<(ContactRecord, Arc<RecordKey>), ServiceError> {
    if let Some(found) = load(services, tenant_id, s).await? {
        return Ok(found);
    }
    let data = ContactData {
        email: address.to_string(),
        ..Default::default()
    };
    let (record, key, _) = save(services, tenant_id, s, &data, None).await?;
    Ok((record, key))
}

/// Creates or replaces (rectifies) a contact's attributes and list memberships
/// (lists named by id or name; a name not yet a list makes one). Returns the contact
/// and whether it was new.
pub async fn upsert(
    services: &Services,
    tenant_id: &str,
    address: &Address,
    attributes: Map<String, Value>,
    lists: Vec<String>,
) -> Result<(Contact, bool), crate::audience::lists::ListError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let s = Subject::of(&keys, address);
    let existing = load(services, tenant_id, &s).await?;
    let data = ContactData {
        email: address.to_string(),
        attributes,
        deleted: false,
    };
    let lists = crate::audience::lists::ensure(services, tenant_id, &lists).await?;
    let (record, key, created) = save(services, tenant_id, &s, &data, existing).await?;
    let ids = lists.into_iter().map(|l| l.id).collect();
    services
        .store
        .set_memberships(tenant_id, &s.hash, ids, now_ms())
        .await?;
    Ok((contact_of(services, &key, &s, &record).await?, created))
}

/// A contact, if the tenant has one for `address`.
pub async fn get(
    services: &Services,
    tenant_id: &str,
    address: &Address,
) -> Result<Option<Contact>, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let s = Subject::of(&keys, address);
    match load(services, tenant_id, &s).await? {
        Some((record, key)) if !data_of(&key, &s, &record)?.deleted => {
            Ok(Some(contact_of(services, &key, &s, &record).await?))
        }
        _ => Ok(None),
    }
}

/// Deletes a contact's profile (attributes and lists). Unlike erasure, the consent
/// history stays as evidence, sealed under the contact's key, which stays too.
/// Returns false if the tenant has no such contact (or it was deleted already).
pub async fn delete(
    services: &Services,
    tenant_id: &str,
    address: &Address,
) -> Result<bool, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let s = Subject::of(&keys, address);
    let Some((record, key)) = load(services, tenant_id, &s).await? else {
        return Ok(false);
    };
    if data_of(&key, &s, &record)?.deleted {
        return Ok(false);
    }
    let data = ContactData {
        email: address.to_string(),
        deleted: true,
        ..Default::default()
    };
    save(services, tenant_id, &s, &data, Some((record, key))).await?;
    services
        .store
        .set_memberships(tenant_id, &s.hash, Vec::new(), now_ms())
        .await?;
    Ok(true)
}

/// Appends a consent record (creating an empty contact if there is none, whose key
/// seals the evidence).
pub async fn add_consent(
    services: &Services,
    tenant_id: &str,
    address: &Address,
    purpose: &str,
    status: ConsentStatus,
    at: Option<i64>,
    evidence: &ConsentEvidence,
) -> Result<Consent, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let s = Subject::of(&keys, address);
    let (_, key) = load_or_create(services, tenant_id, &s, address).await?;
    let at = at.unwrap_or_else(now_ms);
    let json = serde_json::to_vec(evidence).expect("evidence serialises");
    let seq = services
        .store
        .add_consent(ConsentRecord {
            seq: 0,
            tenant_id: tenant_id.to_string(),
            rcpt_hash: s.hash.clone(),
            purpose: purpose.to_string(),
            status,
            at,
            record_enc: key.seal(s.consent_context(), &json),
        })
        .await?;
    Ok(Consent {
        seq,
        purpose: purpose.to_string(),
        status,
        at,
        evidence: Some(evidence.clone()),
    })
}

/// A person's consent history, oldest first.
pub async fn consents(
    services: &Services,
    tenant_id: &str,
    address: &Address,
) -> Result<Vec<Consent>, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let s = Subject::of(&keys, address);
    let key = load(services, tenant_id, &s).await?.map(|(_, k)| k);
    let records = services.store.list_consents(tenant_id, &s.hash).await?;
    Ok(records
        .into_iter()
        .map(|r| Consent {
            evidence: key
                .as_ref()
                .and_then(|k| k.open(s.consent_context(), &r.record_enc).ok())
                .and_then(|b| serde_json::from_slice(&b).ok()),
            seq: r.seq,
            purpose: r.purpose,
            status: r.status,
            at: r.at,
        })
        .collect())
}

/// The current state of each purpose: its newest record.
pub fn current(history: &[Consent]) -> Vec<&Consent> {
    let mut latest: Vec<&Consent> = Vec::new();
    for c in history {
        match latest.iter_mut().find(|l| l.purpose == c.purpose) {
            Some(l) => *l = c,
            None => latest.push(c),
        }
    }
    latest
}

/// Withdraws consent for `purpose` (a new `withdrawn` record) and stops the person's
/// waiting mail of the streams that require it (`privacy.consent_required`) as
/// `no_consent`; `None` when there is no active or pending consent for it.
pub async fn withdraw(
    services: &Services,
    tenant_id: &str,
    address: &Address,
    purpose: &str,
    evidence: &ConsentEvidence,
) -> Result<Option<Consent>, ServiceError> {
    let history = consents(services, tenant_id, address).await?;
    let given = current(&history)
        .iter()
        .any(|c| c.purpose == purpose && c.status != ConsentStatus::Withdrawn);
    if !given {
        return Ok(None);
    }
    let c = add_consent(
        services,
        tenant_id,
        address,
        purpose,
        ConsentStatus::Withdrawn,
        None,
        evidence,
    )
    .await?;
    let hash = services.tenant_keys(tenant_id).await?.blind_index(address);
    let gated = services.config.privacy.consent_required.iter();
    for (stream, _) in gated.filter(|(_, p)| p.as_str() == purpose) {
        let status = RecipientStatus::NoConsent;
        suppressions::stop_waiting(services, tenant_id, &hash, Some(stream.as_str()), status)
            .await?;
    }
    Ok(Some(c))
}

/// Restricts processing of a person's data (`true`) or lifts the restriction: while
/// restricted, nothing is sent to them (status `restricted`), and their mail already
/// waiting (of every stream) is stopped as `restricted` too. Creates an empty contact
/// to hold the restriction if there is none. Returns the contact.
pub async fn restrict(
    services: &Services,
    tenant_id: &str,
    address: &Address,
    restricted: bool,
) -> Result<Contact, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let s = Subject::of(&keys, address);
    let (mut record, key) = load_or_create(services, tenant_id, &s, address).await?;
    let at = restricted.then(now_ms);
    services
        .store
        .restrict_contact(tenant_id, &s.hash, at)
        .await?;
    if restricted {
        let status = RecipientStatus::Restricted;
        suppressions::stop_waiting(services, tenant_id, &s.hash, None, status).await?;
    }
    record.restricted_at = at;
    contact_of(services, &key, &s, &record).await
}

/// Erases everything held on a person in the tenant (see
/// [`Store::erase_subject`]); with `tombstone`, leaves a suppression entry holding
/// only the blind-index hash, so later sends to the address are dropped.
pub async fn erase(
    services: &Services,
    tenant_id: &str,
    address: &Address,
    tombstone: bool,
) -> Result<Erasure, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let s = Subject::of(&keys, address);
    let erased = services.store.erase_subject(tenant_id, &s.hash).await?;
    services.forget_person_key(tenant_id, &s.hash);
    if tombstone {
        services
            .store
            .add_suppression(SuppressionRecord {
                seq: 0,
                tenant_id: tenant_id.to_string(),
                rcpt_hash: s.hash,
                stream: None,
                reason: SuppressionReason::Erasure,
                created_at: now_ms(),
                address_enc: None,
                source: Some("erasure".into()),
            })
            .await?;
    }
    Ok(erased)
}
