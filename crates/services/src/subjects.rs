//! Data subjects' own keys, for crypto-shredding.
//!
//! Every person a tenant holds data on (by blind index) has a data key of their own,
//! wrapped by the tenant key and stored in the live store only (backups leave it
//! out). What is about one person is sealed under it: their contact and consents,
//! their recipient rows' addresses, their events' details, and the content and
//! summary of a message sent to them alone. Erasure deletes the key, so any copy left
//! behind (a backup, a stale replica) can no longer be opened.
//!
//! Data about several people (a message to many) is sealed under the tenant key, as
//! is everything written before schema version 9: [`SubjectKeys::open`] falls back
//! to it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postwerk_store::model::SubjectKey;
use postwerk_store::prelude::*;
use postwerk_store::vault::{RecordKey, SealContext, TenantKeys, VaultError};

use crate::context::{ServiceError, Services, now_ms};

/// Unwrapped keys held in memory at most this long, so a key erased by another node
/// is not used for long.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Cached keys at most (the cache starts over when full).
const CACHE_CAPACITY: usize = 10_000;

/// A tenant's keys together with the keys of some of its people.
pub struct SubjectKeys {
    tenant: Arc<TenantKeys>,
    people: HashMap<Vec<u8>, Arc<RecordKey>>,
}

impl SubjectKeys {
    /// A tenant's keys with nobody's in particular.
    pub fn tenant_only(tenant: Arc<TenantKeys>) -> Self {
        SubjectKeys {
            tenant,
            people: HashMap::new(),
        }
    }

    /// The tenant's keys.
    pub fn tenant(&self) -> &TenantKeys {
        &self.tenant
    }

    /// The key of the person with blind index `hash`, if loaded.
    pub fn person(&self, hash: &[u8]) -> Option<Arc<RecordKey>> {
        self.people.get(hash).cloned()
    }

    /// Seals data about the person `hash` under their key, or under the tenant key
    /// when it is about nobody in particular (`None`) or several people.
    pub fn seal(&self, hash: Option<&[u8]>, context: SealContext<'_>, plaintext: &[u8]) -> Vec<u8> {
        match hash.and_then(|h| self.people.get(h)) {
            Some(key) => key.seal(context, plaintext),
            None => self.tenant.seal(context, plaintext),
        }
    }

    /// Opens a value sealed by [`SubjectKeys::seal`]: under the person's key if it is
    /// loaded, else (several people, or written before version 9) the tenant key.
    pub fn open(
        &self,
        hash: Option<&[u8]>,
        context: SealContext<'_>,
        sealed: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        if let Some(key) = hash.and_then(|h| self.people.get(h))
            && let Ok(plain) = key.open(context, sealed)
        {
            return Ok(plain);
        }
        self.tenant.open(context, sealed)
    }
}

/// A cached key: when it was loaded, and the key.
type Cached = (Instant, Arc<RecordKey>);

/// Recently used unwrapped keys of people, by tenant and then blind index (so a
/// lookup allocates nothing).
#[derive(Default)]
pub struct SubjectKeyCache {
    keys: Mutex<Tenants>,
}

/// The cache's map: tenant id → blind index → key.
#[derive(Default)]
struct Tenants {
    by_tenant: HashMap<String, HashMap<Vec<u8>, Cached>>,
    len: usize,
}

impl SubjectKeyCache {
    fn get(&self, tenant_id: &str, hash: &[u8]) -> Option<Arc<RecordKey>> {
        let keys = self.keys.lock().ok()?;
        let (at, key) = keys.by_tenant.get(tenant_id)?.get(hash)?;
        (at.elapsed() < CACHE_TTL).then(|| key.clone())
    }

    fn put(&self, tenant_id: &str, hash: Vec<u8>, key: Arc<RecordKey>) {
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len >= CACHE_CAPACITY {
                *keys = Tenants::default();
            }
            let people = keys.by_tenant.entry(tenant_id.to_string()).or_default();
            if people.insert(hash, (Instant::now(), key)).is_none() {
                keys.len += 1;
            }
        }
    }

    /// Forgets a person's key (after erasure).
    fn forget(&self, tenant_id: &str, hash: &[u8]) {
        if let Ok(mut keys) = self.keys.lock() {
            let removed = keys
                .by_tenant
                .get_mut(tenant_id)
                .and_then(|people| people.remove(hash));
            if removed.is_some() {
                keys.len -= 1;
            }
        }
    }

    /// Forgets the keys of a tenant's people (after the tenant's deletion).
    pub(crate) fn forget_tenant(&self, tenant_id: &str) {
        if let Ok(mut keys) = self.keys.lock()
            && let Some(people) = keys.by_tenant.remove(tenant_id)
        {
            keys.len -= people.len();
        }
    }
}

impl Services {
    /// The tenant's keys and those of the people `hashes` that have one. Empty hashes
    /// (erased recipients) are skipped.
    pub async fn subject_keys<'a>(
        &self,
        tenant_id: &str,
        hashes: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<SubjectKeys, ServiceError> {
        self.load_subject_keys(tenant_id, hashes, false).await
    }

    /// As [`Services::subject_keys`], making a key for each person that has none
    /// (before data about them is first written).
    pub async fn subject_keys_creating<'a>(
        &self,
        tenant_id: &str,
        hashes: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<SubjectKeys, ServiceError> {
        self.load_subject_keys(tenant_id, hashes, true).await
    }

    /// The key of one person; with `create`, made if they have none.
    pub async fn person_key(
        &self,
        tenant_id: &str,
        hash: &[u8],
        create: bool,
    ) -> Result<Option<Arc<RecordKey>>, ServiceError> {
        let keys = self.load_subject_keys(tenant_id, [hash], create).await?;
        Ok(keys.person(hash))
    }

    /// Forgets a person's key in this node's cache (after erasure).
    pub fn forget_person_key(&self, tenant_id: &str, hash: &[u8]) {
        self.subject_cache.forget(tenant_id, hash);
    }

    async fn load_subject_keys<'a>(
        &self,
        tenant_id: &str,
        hashes: impl IntoIterator<Item = &'a [u8]>,
        create: bool,
    ) -> Result<SubjectKeys, ServiceError> {
        let tenant = self.tenant_keys(tenant_id).await?;
        let mut people = HashMap::new();
        let mut missing = Vec::new();
        let mut seen = HashSet::new();
        for hash in hashes.into_iter().filter(|h| !h.is_empty()) {
            if !seen.insert(hash) {
                continue;
            }
            match self.subject_cache.get(tenant_id, hash) {
                Some(key) => {
                    people.insert(hash.to_vec(), key);
                }
                None => missing.push(hash),
            }
        }
        // In index order: the store's inserts and look-ups then walk forwards.
        missing.sort_unstable();
        if !missing.is_empty() {
            // Fresh keys by hash, usable as they are if they are the ones stored.
            let mut fresh = HashMap::new();
            let stored = if create {
                let now = now_ms();
                let mut candidates = Vec::with_capacity(missing.len());
                for h in &missing {
                    let (key, wrapped) = tenant.new_record_key(SealContext::PersonKey(h));
                    fresh.insert(h.to_vec(), (key, wrapped.clone()));
                    candidates.push(SubjectKey {
                        rcpt_hash: h.to_vec(),
                        key_wrapped: wrapped,
                        created_at: now,
                    });
                }
                self.store
                    .ensure_subject_keys(tenant_id, candidates)
                    .await?
            } else {
                let hashes = missing.iter().map(|h| h.to_vec()).collect();
                self.store.subject_keys(tenant_id, hashes).await?
            };
            for k in stored {
                let key =
                    match fresh.remove(&k.rcpt_hash) {
                        Some((key, wrapped)) if wrapped == k.key_wrapped => Arc::new(key),
                        _ => Arc::new(tenant.open_record_key(
                            SealContext::PersonKey(&k.rcpt_hash),
                            &k.key_wrapped,
                        )?),
                    };
                self.subject_cache
                    .put(tenant_id, k.rcpt_hash.clone(), key.clone());
                people.insert(k.rcpt_hash, key);
            }
        }
        Ok(SubjectKeys { tenant, people })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use postwerk_store::vault::MasterKey;

    const RCPT_1: SealContext = SealContext::Recipient("1");

    fn tenant() -> Arc<TenantKeys> {
        let raw = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
        let master = MasterKey::from_base64(&raw).unwrap();
        Arc::new(
            master
                .unwrap_tenant_key("t", &master.new_wrapped_tenant_key("t"))
                .unwrap(),
        )
    }

    #[test]
    fn a_persons_data_opens_only_with_their_key_and_shared_data_with_the_tenant_key() {
        let tenant = tenant();
        let (alice, _) = tenant.new_record_key(SealContext::PersonKey(b"a"));
        let mut people = HashMap::new();
        people.insert(b"a".to_vec(), Arc::new(alice));
        let keys = SubjectKeys {
            tenant: tenant.clone(),
            people,
        };
        let about_alice = keys.seal(Some(b"a"), RCPT_1, b"alice@example.test");
        assert!(tenant.open(RCPT_1, &about_alice).is_err());
        assert_eq!(
            keys.open(Some(b"a"), RCPT_1, &about_alice).unwrap(),
            b"alice@example.test"
        );
        let shredded = SubjectKeys {
            tenant: tenant.clone(),
            people: HashMap::new(),
        };
        assert!(shredded.open(Some(b"a"), RCPT_1, &about_alice).is_err());
        let shared = keys.seal(
            Some(b"nobody-loaded"),
            SealContext::Content("1"),
            b"to many",
        );
        assert_eq!(
            shredded
                .open(None, SealContext::Content("1"), &shared)
                .unwrap(),
            b"to many"
        );
        let legacy = tenant.seal(SealContext::Recipient("2"), b"old");
        assert_eq!(
            keys.open(Some(b"a"), SealContext::Recipient("2"), &legacy)
                .unwrap(),
            b"old"
        );
    }
}
