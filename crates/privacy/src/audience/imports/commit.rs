//! Commit: an import's second pass, writing its spooled rows in batches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use postwerk_core::model::{ConsentStatus, SuppressionReason};
use postwerk_store::model::{ConsentRecord, ContactRecord, ImportBatch, ImportedContact};
use postwerk_store::prelude::*;
use postwerk_store::vault::TenantKeys;

use super::spool::{self, Row};
use super::{Import, ImportError, State, audit_target, get, record};
use crate::audience::lists;
use crate::contacts::{ConsentEvidence, ContactData, Subject, contact_row, data_of};
use postwerk_services::audit::{self, Actor};
use postwerk_services::context::{Services, now_ms};
use postwerk_services::subjects::SubjectKeys;

/// Commits a running import (in the background: errors end it `failed` and are
/// logged without personal data).
pub async fn run(services: Arc<Services>, tenant_id: String, id: String) {
    if let Err(e) = commit(&services, &tenant_id, &id).await {
        tracing::warn!(import = %id, error = %e, "an import failed");
        if let Ok(mut import) = get(&services, &tenant_id, &id).await
            && import.state == State::Running.as_str()
        {
            import.detail.error = Some(e.to_string());
            import.detail.finished_at = Some(now_ms());
            let next = record(&tenant_id, &import, State::Failed);
            let _ = services
                .store
                .update_import(next, &[State::Running.as_str()])
                .await;
            spool::remove(&services.config.data_dir, &id);
        }
    }
}

/// A batch being written (in the background, while the next one is prepared).
type Writing = tokio::task::JoinHandle<Result<bool, postwerk_store::StoreError>>;

/// Waits for the batch being written, if one is: `false` if the import was cancelled
/// meanwhile (nothing of that batch written).
async fn written(writing: &mut Option<Writing>) -> Result<bool, ImportError> {
    match writing.take() {
        None => Ok(true),
        Some(w) => w
            .await
            .map_err(|e| ImportError::Interrupted(format!("the batch's writer stopped: {e}")))?
            .map_err(ImportError::from),
    }
}

/// Writes the spooled rows after the last committed chunk, one chunk per batch. Each
/// batch is written while the next is prepared (sealed, its keys made), except that a
/// chunk repeating an address of an earlier one waits for that one to be written, so
/// it merges into what is stored.
async fn commit(services: &Services, tenant_id: &str, id: &str) -> Result<(), ImportError> {
    let mut import = get(services, tenant_id, id).await?;
    if import.state != State::Running.as_str() {
        return Ok(());
    }
    let keys = services.tenant_keys(tenant_id).await?;
    let mut reader = spool::Reader::open(&services.config.data_dir, id)?;
    let mut list_ids: HashMap<String, String> = HashMap::new();
    let mut chunk_no = 0;
    let mut writing: Option<Writing> = None;
    while let Some(rows) = reader.next_chunk(&keys)? {
        chunk_no += 1;
        if chunk_no <= import.detail.chunks_done {
            continue;
        }
        // Cancelled meanwhile (`written` is false): the batches written stay, nothing
        // more is.
        if rows.iter().any(|r| r.duplicate) && !written(&mut writing).await? {
            return Ok(());
        }
        let batch = batch(services, tenant_id, &keys, &mut import, rows, &mut list_ids).await?;
        if !written(&mut writing).await? {
            return Ok(());
        }
        let store = services.store.clone();
        writing = Some(tokio::spawn(
            async move { store.import_contacts(batch).await },
        ));
    }
    if !written(&mut writing).await? {
        return Ok(());
    }
    import.detail.finished_at = Some(now_ms());
    audit::record(
        services,
        &Actor::system(),
        Some(tenant_id),
        "import.done",
        Some(audit_target(&import)),
    )
    .await?;
    let next = record(tenant_id, &import, State::Done);
    services
        .store
        .update_import(next, &[State::Running.as_str()])
        .await?;
    spool::remove(&services.config.data_dir, id);
    Ok(())
}

/// Folds rows of the same address within a chunk into the first (later non-empty
/// cells win); each keeps whether an earlier chunk had the address already.
fn fold(keys: &TenantKeys, rows: Vec<Row>) -> Vec<(Vec<u8>, Row)> {
    let mut out: Vec<(Vec<u8>, Row)> = Vec::with_capacity(rows.len());
    let mut at: HashMap<Vec<u8>, usize> = HashMap::new();
    for row in rows {
        let Ok(address) = postwerk_core::address::Address::parse(&row.email) else {
            continue;
        };
        let hash = keys.blind_index(&address).into_bytes();
        match at.get(&hash) {
            Some(&i) => {
                let first = &mut out[i].1;
                first.attributes.extend(row.attributes);
                first.lists.extend(row.lists);
                first.consent_at = row.consent_at.or(first.consent_at);
                first.consent_ip = row.consent_ip.or(first.consent_ip.take());
                first.no_consent &= row.no_consent;
            }
            None => {
                at.insert(hash.clone(), out.len());
                out.push((hash, row));
            }
        }
    }
    out
}

/// The batch writing one chunk, with the import's progress after it.
async fn batch(
    services: &Services,
    tenant_id: &str,
    keys: &TenantKeys,
    import: &mut Import,
    rows: Vec<Row>,
    list_ids: &mut HashMap<String, String>,
) -> Result<ImportBatch, ImportError> {
    let options = import.detail.options.clone();
    let rows = fold(keys, rows);
    let hashes: Vec<Vec<u8>> = rows.iter().map(|(h, _)| h.clone()).collect();
    let screen = services
        .store
        .screen_subjects(tenant_id, hashes, options.consent.clone())
        .await?;
    // People erased since the file was screened are not imported either.
    let erased: HashSet<&[u8]> = screen
        .suppressions
        .iter()
        .filter(|s| s.reason == SuppressionReason::Erasure)
        .map(|s| s.rcpt_hash.as_slice())
        .collect();
    let before = rows.len();
    let rows: Vec<(Vec<u8>, Row)> = rows
        .into_iter()
        .filter(|(h, _)| !erased.contains(h.as_slice()))
        .collect();
    import.detail.counts.skipped_erased += (before - rows.len()) as u64;
    let consented: HashSet<Vec<u8>> = screen.consented.into_iter().collect();
    let hashes: Vec<Vec<u8>> = rows.iter().map(|(h, _)| h.clone()).collect();
    let people = services
        .subject_keys_creating(tenant_id, hashes.iter().map(Vec::as_slice))
        .await?;
    let existing: HashMap<Vec<u8>, ContactRecord> = services
        .store
        .contacts_among(tenant_id, hashes.clone())
        .await?
        .into_iter()
        .map(|c| (c.rcpt_hash.clone(), c))
        .collect();
    let now = now_ms();
    let mut contacts = Vec::with_capacity(rows.len());
    let mut extra_members: Vec<(String, Vec<u8>)> = Vec::new();
    for (hash, row) in rows {
        let s = Subject::of_hash(hash.clone());
        let key = people.person(&hash).ok_or_else(|| {
            ImportError::Service(postwerk_store::vault::VaultError::Authentication.into())
        })?;
        let live = existing.get(&hash).filter(|c| c.deleted_at.is_none());
        let counts = &mut import.detail.counts;
        let contact = match live {
            None => {
                counts.imported += 1;
                let data = ContactData {
                    email: row.email.clone(),
                    attributes: row.attributes.clone(),
                    deleted: false,
                };
                let created = existing.get(&hash).map_or(now, |c| c.created_at);
                Some(contact_row(
                    keys,
                    &key,
                    tenant_id,
                    &s,
                    &data,
                    (created, now),
                    None,
                ))
            }
            // A repeat of a row of this import's merges even with `keep` (its first
            // row made the contact); a contact from before is kept as it is.
            Some(c)
                if options.existing == super::Existing::Update
                    || (row.duplicate && c.created_at >= import.created_at) =>
            {
                if !row.duplicate {
                    counts.updated += 1;
                }
                let mut data = data_of(&key, &s, c)?;
                data.attributes.extend(row.attributes.clone());
                let times = (c.created_at, now);
                Some(contact_row(
                    keys,
                    &key,
                    tenant_id,
                    &s,
                    &data,
                    times,
                    c.restricted_at,
                ))
            }
            Some(_) => {
                counts.unchanged += 1;
                None
            }
        };
        let consent = consent_record(tenant_id, &options, &people, &s, &row, &consented, now);
        counts.consents += u64::from(consent.is_some());
        for name in &row.lists {
            let id = match list_ids.get(name) {
                Some(id) => id.clone(),
                None => {
                    let made = lists::ensure(services, tenant_id, std::slice::from_ref(name))
                        .await
                        .map_err(|_| ImportError::UnknownList)?;
                    let id = made.first().map(|l| l.id.clone()).unwrap_or_default();
                    list_ids.insert(name.clone(), id.clone());
                    id
                }
            };
            extra_members.push((id, hash.clone()));
        }
        contacts.push(ImportedContact {
            contact,
            rcpt_hash: hash,
            consent,
        });
    }
    import.detail.chunks_done += 1;
    Ok(ImportBatch {
        tenant_id: tenant_id.to_string(),
        list_id: import.detail.list_id.clone(),
        contacts,
        extra_members,
        progress: record(tenant_id, import, State::Running),
    })
}

/// The consent record a row gets: when the import records consent for a purpose, the
/// row has evidence, and the person has no active consent for it yet.
fn consent_record(
    tenant_id: &str,
    options: &super::ImportOptions,
    people: &SubjectKeys,
    s: &Subject,
    row: &Row,
    consented: &HashSet<Vec<u8>>,
    now: i64,
) -> Option<ConsentRecord> {
    let purpose = options.consent.as_ref()?;
    if row.no_consent || consented.contains(&s.hash) {
        return None;
    }
    let evidence = ConsentEvidence {
        lawful_basis: Some(
            options
                .lawful_basis
                .clone()
                .unwrap_or_else(|| "consent".into()),
        ),
        source: options.source.clone(),
        wording: options.wording.clone(),
        ip: row.consent_ip.clone(),
        ..ConsentEvidence::default()
    };
    let json = serde_json::to_vec(&evidence).expect("evidence serialises");
    Some(ConsentRecord {
        seq: 0,
        tenant_id: tenant_id.to_string(),
        rcpt_hash: s.hash.clone(),
        purpose: purpose.clone(),
        status: ConsentStatus::Active,
        at: row.consent_at.unwrap_or(now),
        record_enc: people.seal(Some(&s.hash), s.consent_context(), &json),
    })
}
