//! Commit: an import's second pass, writing its spooled rows in batches.

use std::collections::{HashMap, HashSet, VecDeque};
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

/// A batch being written (in the background, while the next ones are prepared).
type Writing = tokio::task::JoinHandle<Result<bool, postwerk_store::StoreError>>;

/// Most chunks whose people's keys are made in one write. Their batches are written
/// while the next group is prepared, and the store may commit them together.
const GROUP: usize = 4;

/// Waits for the batches being written: `false` if the import was cancelled meanwhile
/// (nothing of the batches after the cancel written).
async fn written(writing: &mut VecDeque<Writing>) -> Result<bool, ImportError> {
    let mut all = true;
    while let Some(w) = writing.pop_front() {
        all &= w
            .await
            .map_err(|e| ImportError::Interrupted(format!("the batch's writer stopped: {e}")))??;
    }
    Ok(all)
}

/// Reads the next group of chunks after the last committed one: up to [`GROUP`],
/// ending before a chunk that repeats an address of an earlier chunk (that one starts
/// the next group, once everything before it is written, so it merges into what is
/// stored). Each chunk's rows are folded by address.
fn next_group(
    reader: &mut spool::Reader,
    keys: &TenantKeys,
    import: &Import,
    chunk_no: &mut u64,
    held: &mut Option<Vec<Row>>,
) -> Result<Vec<Vec<Row>>, ImportError> {
    let mut group: Vec<Vec<Row>> = held.take().into_iter().collect();
    while group.len() < GROUP {
        let Some(rows) = reader.next_chunk(keys)? else {
            break;
        };
        *chunk_no += 1;
        if *chunk_no <= import.detail.chunks_done {
            continue;
        }
        let rows = fold(rows);
        if !group.is_empty() && rows.iter().any(|r| r.duplicate) {
            *held = Some(rows);
            break;
        }
        group.push(rows);
    }
    Ok(group)
}

/// Writes the spooled rows after the last committed chunk, one chunk per batch, a
/// group of chunks at a time: each group's people's keys are made in one write, and
/// its batches are written while the next group is prepared.
async fn commit(services: &Services, tenant_id: &str, id: &str) -> Result<(), ImportError> {
    let mut import = get(services, tenant_id, id).await?;
    if import.state != State::Running.as_str() {
        return Ok(());
    }
    let keys = services.tenant_keys(tenant_id).await?;
    let mut reader = spool::Reader::open(&services.config.data_dir, id)?;
    let mut list_ids: HashMap<String, String> = HashMap::new();
    let (mut chunk_no, mut held) = (0, None);
    let mut writing: VecDeque<Writing> = VecDeque::new();
    loop {
        let group = next_group(&mut reader, &keys, &import, &mut chunk_no, &mut held)?;
        let Some(first) = group.first() else {
            break;
        };
        // Cancelled meanwhile (`written` is false): the batches written stay, nothing
        // more is.
        let repeats = first.iter().any(|r| r.duplicate);
        if (repeats || writing.len() >= 2 * GROUP) && !written(&mut writing).await? {
            return Ok(());
        }
        let mut screened = Vec::with_capacity(group.len());
        for rows in group {
            screened.push(screen(services, tenant_id, &mut import, rows).await?);
        }
        let hashes: Vec<&[u8]> = screened
            .iter()
            .flat_map(|c| c.rows.iter())
            .map(|r| r.hash.as_slice())
            .collect();
        let people = services.subject_keys_creating(tenant_id, hashes).await?;
        for chunk in screened {
            let batch = batch(
                services,
                tenant_id,
                &keys,
                &people,
                &mut import,
                chunk,
                &mut list_ids,
            )
            .await?;
            let store = services.store.clone();
            writing.push_back(tokio::spawn(
                async move { store.import_contacts(batch).await },
            ));
        }
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
fn fold(rows: Vec<Row>) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for row in rows {
        // The spool is in blind-index order: repeats are neighbours.
        match out.last_mut() {
            Some(first) if first.hash == row.hash => {
                first.attributes.extend(row.attributes);
                first.lists.extend(row.lists);
                first.consent_at = row.consent_at.or(first.consent_at);
                first.consent_ip = row.consent_ip.or(first.consent_ip.take());
                first.no_consent &= row.no_consent;
            }
            _ => out.push(row),
        }
    }
    out
}

/// A chunk's rows of people not erased, and those among them with active consent for
/// the import's purpose already.
struct Screened {
    rows: Vec<Row>,
    consented: HashSet<Vec<u8>>,
}

/// Screens a chunk against the store: people erased since the file was screened are
/// not imported either (counted as skipped).
async fn screen(
    services: &Services,
    tenant_id: &str,
    import: &mut Import,
    rows: Vec<Row>,
) -> Result<Screened, ImportError> {
    let hashes: Vec<Vec<u8>> = rows.iter().map(|r| r.hash.clone()).collect();
    let screen = services
        .store
        .screen_subjects(tenant_id, hashes, import.detail.options.consent.clone())
        .await?;
    let erased: HashSet<&[u8]> = screen
        .suppressions
        .iter()
        .filter(|s| s.reason == SuppressionReason::Erasure)
        .map(|s| s.rcpt_hash.as_slice())
        .collect();
    let before = rows.len();
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| !erased.contains(r.hash.as_slice()))
        .collect();
    import.detail.counts.skipped_erased += (before - rows.len()) as u64;
    Ok(Screened {
        rows,
        consented: screen.consented.into_iter().collect(),
    })
}

/// The batch writing one screened chunk, with the import's progress after it.
async fn batch(
    services: &Services,
    tenant_id: &str,
    keys: &TenantKeys,
    people: &SubjectKeys,
    import: &mut Import,
    chunk: Screened,
    list_ids: &mut HashMap<String, String>,
) -> Result<ImportBatch, ImportError> {
    let options = import.detail.options.clone();
    let Screened { rows, consented } = chunk;
    let hashes: Vec<Vec<u8>> = rows.iter().map(|r| r.hash.clone()).collect();
    let existing: HashMap<Vec<u8>, ContactRecord> = services
        .store
        .contacts_among(tenant_id, hashes)
        .await?
        .into_iter()
        .map(|c| (c.rcpt_hash.clone(), c))
        .collect();
    let now = now_ms();
    let mut contacts = Vec::with_capacity(rows.len());
    let mut extra_members: Vec<(String, Vec<u8>)> = Vec::new();
    for row in rows {
        let hash = row.hash.clone();
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
        let consent = consent_record(tenant_id, &options, people, &s, &row, &consented, now);
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
