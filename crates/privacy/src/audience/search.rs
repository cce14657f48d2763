//! Pages and counts of a tenant's contacts: the store filters by blind index, list
//! membership, keyed attribute tags, consent and engagement; each contact of a page is
//! then opened with its person's key, the page's list memberships read at once.

use postwerk_store::model::ContactFilter;
use postwerk_store::prelude::*;

use std::collections::HashMap;

use crate::contacts::{Contact, Subject, contact_with};
use postwerk_services::context::{ServiceError, Services};

/// Most contacts a page holds.
pub const MAX_PAGE: usize = 500;

/// A page of contacts, and the cursor of the next one (`None`: this was the last).
#[derive(Debug, Clone)]
pub struct Page {
    /// The contacts, by blind index.
    pub contacts: Vec<Contact>,
    /// Where the next page starts (hex of the last blind index).
    pub next: Option<Vec<u8>>,
}

/// A page of the contacts `filter` names (its `limit` capped at [`MAX_PAGE`]).
pub async fn page(services: &Services, mut filter: ContactFilter) -> Result<Page, ServiceError> {
    filter.limit = filter.limit.clamp(1, MAX_PAGE);
    let tenant_id = filter.tenant_id.clone();
    let limit = filter.limit;
    let records = services.store.find_contacts(filter).await?;
    let keys = services
        .subject_keys(&tenant_id, records.iter().map(|r| r.rcpt_hash.as_slice()))
        .await?;
    let hashes = records.iter().map(|r| r.rcpt_hash.clone()).collect();
    let mut lists: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    for (hash, name) in services.store.memberships_among(&tenant_id, hashes).await? {
        lists.entry(hash).or_default().push(name);
    }
    let mut contacts = Vec::with_capacity(records.len());
    for record in &records {
        // A person without a key was erased while the page was read.
        let Some(key) = keys.person(&record.rcpt_hash) else {
            continue;
        };
        let s = Subject::of_hash(record.rcpt_hash.clone());
        let names = lists.remove(&record.rcpt_hash).unwrap_or_default();
        contacts.push(contact_with(&key, &s, record, names)?);
    }
    let next = (records.len() == limit)
        .then(|| records.last().map(|r| r.rcpt_hash.clone()))
        .flatten();
    Ok(Page { contacts, next })
}

/// How many contacts `filter` names.
pub async fn count(services: &Services, filter: ContactFilter) -> Result<i64, ServiceError> {
    Ok(services.store.count_contacts(filter).await?)
}
