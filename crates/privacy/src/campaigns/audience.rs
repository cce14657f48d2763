//! The people a broadcast reaches, walked in blind-index order: the union of its
//! sources (its lists as one filter, each segment as another), a page at a time, so a
//! million people take bounded memory and the walk resumes from any person's blind
//! index.

use postwerk_store::model::ContactFilter;
use postwerk_store::prelude::*;
use serde_json::{Map, Value};

use crate::contacts::{Subject, data_of};
use postwerk_services::context::{ServiceError, Services};

/// A person a broadcast reaches, opened.
#[derive(Debug, Clone)]
pub struct Person {
    /// Blind index of the address.
    pub hash: Vec<u8>,
    /// The address as last given.
    pub email: String,
    /// The contact's attributes.
    pub attributes: Map<String, Value>,
}

/// One step of the walk.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// The people after the cursor, by blind index (erased ones left out).
    pub people: Vec<Person>,
    /// Where the walk stands after them (unchanged when there was nobody).
    pub cursor: Vec<u8>,
    /// Nobody is left after `cursor`.
    pub done: bool,
}

/// The next at most `limit` people named by any of `sources` after blind index
/// `after` (empty: from the start).
///
/// Each source is read a page ahead; a person is taken only up to the smallest last
/// index among the sources whose page was full, so nobody a later page of another
/// source holds is skipped.
pub async fn next(
    services: &Services,
    sources: &[ContactFilter],
    after: &[u8],
    limit: usize,
) -> Result<Step, ServiceError> {
    let Some(tenant_id) = sources.first().map(|s| s.tenant_id.clone()) else {
        return Ok(Step {
            cursor: after.to_vec(),
            done: true,
            ..Step::default()
        });
    };
    let mut records = Vec::new();
    let mut bound: Option<Vec<u8>> = None;
    for source in sources {
        let mut filter = source.clone();
        filter.after = (!after.is_empty()).then(|| after.to_vec());
        filter.limit = limit;
        let page = services.store.find_contacts(filter).await?;
        if page.len() == limit
            && let Some(last) = page.last()
            && bound.as_ref().is_none_or(|b| last.rcpt_hash < *b)
        {
            bound = Some(last.rcpt_hash.clone());
        }
        records.extend(page);
    }
    records.sort_unstable_by(|a, b| a.rcpt_hash.cmp(&b.rcpt_hash));
    records.dedup_by(|a, b| a.rcpt_hash == b.rcpt_hash);
    if let Some(bound) = &bound {
        records.retain(|r| r.rcpt_hash <= *bound);
    }
    let done = bound.is_none();
    let cursor = match records.last() {
        Some(r) => r.rcpt_hash.clone(),
        None => after.to_vec(),
    };
    let keys = services
        .subject_keys(&tenant_id, records.iter().map(|r| r.rcpt_hash.as_slice()))
        .await?;
    let mut people = Vec::with_capacity(records.len());
    for record in &records {
        // A person without a key was erased while the page was read.
        let Some(key) = keys.person(&record.rcpt_hash) else {
            continue;
        };
        let data = data_of(&key, &Subject::of_hash(record.rcpt_hash.clone()), record)?;
        if data.deleted {
            continue;
        }
        people.push(Person {
            hash: record.rcpt_hash.clone(),
            email: data.email,
            attributes: data.attributes,
        });
    }
    Ok(Step {
        people,
        cursor,
        done,
    })
}
