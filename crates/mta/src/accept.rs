//! The submission pipeline shared by every front door (REST API, SMTP submission):
//! check the tenant, domain and stream, screen the recipients (suppressions,
//! restrictions, consent; each address hashed once), seal the content and addresses,
//! commit durably (group commit), and only then hand the recipients to the engine.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use postwerk_core::address::Address;
use postwerk_core::model::{RecipientStatus, SuppressionReason};
use postwerk_store::StoreError;
use postwerk_store::model::{
    AcceptBatch, BroadcastProgress, IdempotencyRecord, NewMessage, NewRecipient,
};
use postwerk_store::prelude::*;
use postwerk_store::vault::{SealContext, TenantKeys};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::job::{Content, Outbound};
use postwerk_services::context::{ServiceError, Services, now_ms};
use postwerk_services::streams::Stream;
use postwerk_services::tenants::{self, TenantError};

/// A validated message ready to be stored.
pub struct Submission {
    /// `msg_…`, chosen by the caller (it appears in the response before commit).
    pub id: String,
    /// Stream name.
    pub stream: String,
    /// Domain of the From address.
    pub from_domain: String,
    /// The rendered RFC 5322 message.
    pub content: Vec<u8>,
    /// Explicit envelope sender (raw sends), if any.
    pub mail_from: Option<Address>,
    /// Summary kept with the message (sealed).
    pub meta: MessageMeta,
    /// `(rcpt_… id, address)` for each distinct recipient.
    pub recipients: Vec<(String, Address)>,
    /// Recipients that must not be sent to, by id, with the status they are recorded
    /// with (`rejected`, `suppressed`, `no_consent`, `restricted`; set by
    /// [`Pipeline::screen`]).
    pub held: HashMap<String, RecipientStatus>,
    /// Held recipients whose address was erased (an erasure tombstone): stored without
    /// address or blind index, so nothing about the person is collected again.
    pub erased: HashSet<String>,
    /// The broadcast the message is part of, if any.
    pub broadcast_id: Option<String>,
    /// When it is to be sent, if scheduled for later (Unix ms).
    pub send_at: Option<i64>,
}

/// What is kept about a message besides its content (sealed as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessageMeta {
    /// Subject line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// From address as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Client metadata.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// When it was scheduled for (Unix ms), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<i64>,
}

/// Why a submission was not accepted. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The same Idempotency-Key was committed concurrently; read the stored result.
    #[error("idempotency key already used")]
    IdempotencyKeyUsed,
    /// The broadcast whose batch this was is no longer sending from where the batch
    /// started (paused, cancelled, or another node moved it on).
    #[error("the broadcast moved on")]
    BroadcastMoved,
    /// Store or vault failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// An Idempotency-Key result to store with the messages.
pub struct IdempotentResponse {
    /// SHA-256 of the client's key.
    pub key_hash: Vec<u8>,
    /// The response body to replay.
    pub response: Vec<u8>,
}

/// Why a submission was refused before anything was stored (the checks of
/// [`Pipeline::submit`], in the order they are made).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The tenant is cancelled (or was deleted).
    #[error("tenant cancelled")]
    TenantCancelled,
    /// The From domain is not registered for the tenant.
    #[error("from domain not registered")]
    DomainNotRegistered,
    /// The tenant has no stream of the name the message asks for.
    #[error("unknown stream")]
    UnknownStream,
    /// The store or the vault failed (in a check, screening or the commit), or the
    /// Idempotency-Key was used concurrently: see [`AcceptError`]. Nothing was stored.
    #[error(transparent)]
    Accept(#[from] AcceptError),
}

impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Self {
        Refusal::Accept(AcceptError::Service(e))
    }
}

/// The submission pipeline of one tenant, shared by every front door: the tenant,
/// domain and stream checks, screening (each address hashed once), sealing, the
/// commit, and the hand-off to the engine.
///
/// SMTP submission runs it whole with [`Pipeline::submit`]. The API runs its
/// stages itself, because what it answers sits between them: it checks the domain of
/// each message of a batch on its own ([`Pipeline::check_domain`]), replays an
/// Idempotency-Key's stored response before screening, and stores the screened
/// response with the messages ([`Pipeline::screen`], then [`Screened::commit`]).
#[derive(Clone, Copy)]
pub struct Pipeline<'a> {
    services: &'a Services,
    engine: &'a Arc<Engine>,
    tenant_id: &'a str,
}

impl<'a> Pipeline<'a> {
    /// The pipeline of `tenant_id`'s submissions.
    pub fn new(services: &'a Services, engine: &'a Arc<Engine>, tenant_id: &'a str) -> Self {
        Pipeline {
            services,
            engine,
            tenant_id,
        }
    }

    /// Checks, screens and commits `submissions`, refusing at the first failed
    /// check: the tenant is active, then for each message its From domain is
    /// registered and its stream exists.
    pub async fn submit(
        &self,
        submissions: Vec<Submission>,
        idempotency: Option<IdempotentResponse>,
    ) -> Result<(), Refusal> {
        self.check_tenant().await?;
        for s in &submissions {
            self.check_domain(&s.from_domain).await?;
            self.check_stream(&s.stream).await?;
        }
        Ok(self.screen(submissions).await?.commit(idempotency).await?)
    }

    /// `TenantCancelled` unless the tenant is active.
    pub async fn check_tenant(&self) -> Result<(), Refusal> {
        match tenants::ensure_active(self.services, self.tenant_id).await {
            Ok(()) => Ok(()),
            Err(TenantError::Service(ServiceError::UnknownTenant)) => Err(Refusal::TenantCancelled),
            Err(TenantError::Service(e)) => Err(e.into()),
            // `Cancelled`, the only other answer of `ensure_active`.
            Err(_) => Err(Refusal::TenantCancelled),
        }
    }

    /// `DomainNotRegistered` unless the tenant registered `domain`.
    pub async fn check_domain(&self, domain: &str) -> Result<(), Refusal> {
        match self
            .services
            .domain_registered(self.tenant_id, domain)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(Refusal::DomainNotRegistered),
            Err(e) => Err(ServiceError::from(e).into()),
        }
    }

    /// `UnknownStream` unless the tenant has a stream named `stream` (reloading the
    /// tenant's streams first if this node does not know it yet).
    pub async fn check_stream(&self, stream: &str) -> Result<(), Refusal> {
        let services = self.services;
        match services
            .streams
            .find(&services.store, self.tenant_id, stream)
            .await
        {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Refusal::UnknownStream),
            Err(e) => Err(ServiceError::from(e).into()),
        }
    }

    /// Marks the recipients that must not be sent to (see [`Submission::held`]),
    /// with one query of each kind for the whole batch: all of a paused stream's →
    /// `rejected`; on the suppression list (for every stream or the message's stream)
    /// → `suppressed`; processing restricted → `restricted`; the stream requires
    /// consent for a purpose (`privacy.consent_required`) and the person has no active
    /// consent for it → `no_consent`. Each address is hashed here, once, for
    /// screening, sealing and delivery.
    pub async fn screen(
        &self,
        mut submissions: Vec<Submission>,
    ) -> Result<Screened<'a>, ServiceError> {
        let (services, tenant_id) = (self.services, self.tenant_id);
        let keys = services.tenant_keys(tenant_id).await?;
        let hashes: Vec<Vec<Vec<u8>>> = submissions
            .iter()
            .map(|s| {
                s.recipients
                    .iter()
                    .map(|(_, a)| keys.blind_index(a).into_bytes())
                    .collect()
            })
            .collect();
        let all: Vec<Vec<u8>> = hashes.iter().flatten().cloned().collect();
        let required = &services.config.privacy.consent_required;
        let mut purposes: Vec<&String> = submissions
            .iter()
            .filter_map(|s| required.get(&s.stream))
            .collect();
        purposes.sort();
        purposes.dedup();
        // One read covers suppressions, restrictions and the first purpose; one more
        // per extra purpose (rare: a batch mixing consent-gated streams).
        let mut screens = Vec::new();
        for purpose in purposes
            .iter()
            .map(|p| Some((*p).clone()))
            .chain(purposes.is_empty().then_some(None))
        {
            let screen = services
                .store
                .screen_subjects(tenant_id, all.clone(), purpose.clone())
                .await?;
            screens.push((purpose, screen));
        }
        let (found, restricted) = (&screens[0].1.suppressions, &screens[0].1.restricted);
        for (s, hashes) in submissions.iter_mut().zip(&hashes) {
            if services
                .streams
                .get(tenant_id, &s.stream)
                .is_some_and(|st| st.is_paused())
            {
                for (id, _) in &s.recipients {
                    s.held.insert(id.clone(), RecipientStatus::Rejected);
                }
                continue;
            }
            let purpose = required.get(&s.stream);
            let consented = purpose.and_then(|p| {
                screens
                    .iter()
                    .find(|(q, _)| q.as_ref() == Some(p))
                    .map(|(_, screen)| &screen.consented)
            });
            for ((id, _), hash) in s.recipients.iter().zip(hashes) {
                let suppressions: Vec<_> = found
                    .iter()
                    .filter(|f| {
                        &f.rcpt_hash == hash && f.stream.as_deref().is_none_or(|st| st == s.stream)
                    })
                    .collect();
                if suppressions
                    .iter()
                    .any(|f| f.reason == SuppressionReason::Erasure)
                {
                    s.erased.insert(id.clone());
                }
                let status = if !suppressions.is_empty() {
                    RecipientStatus::Suppressed
                } else if restricted.contains(hash) {
                    RecipientStatus::Restricted
                } else if consented.is_some_and(|c| !c.contains(hash)) {
                    RecipientStatus::NoConsent
                } else {
                    continue;
                };
                s.held.insert(id.clone(), status);
            }
        }
        Ok(Screened {
            pipeline: *self,
            keys,
            submissions,
            hashes,
        })
    }
}

/// Screened submissions, ready to commit: each recipient's blind index and status
/// are known.
pub struct Screened<'a> {
    pipeline: Pipeline<'a>,
    keys: Arc<TenantKeys>,
    submissions: Vec<Submission>,
    /// The blind index of each recipient of each submission.
    hashes: Vec<Vec<Vec<u8>>>,
}

impl Screened<'_> {
    /// The screened submissions (their [`Submission::held`] recipients set).
    pub fn submissions(&self) -> &[Submission] {
        &self.submissions
    }

    /// Leaves out the submissions none of whose recipients may be sent to, and
    /// returns those recipients' statuses (a broadcast counts them and stores nothing
    /// about them).
    pub fn drop_held(&mut self) -> Vec<RecipientStatus> {
        let mut statuses = Vec::new();
        let mut kept = Vec::with_capacity(self.submissions.len());
        let mut hashes = Vec::with_capacity(self.submissions.len());
        for (s, h) in self.submissions.drain(..).zip(self.hashes.drain(..)) {
            if s.held.len() < s.recipients.len() {
                kept.push(s);
                hashes.push(h);
            } else {
                statuses.extend(s.held.into_values());
            }
        }
        self.submissions = kept;
        self.hashes = hashes;
        statuses
    }

    /// Durably stores the submissions (one transaction, shared with other concurrent
    /// callers' writes) with the Idempotency-Key result, if any, and queues their
    /// recipients for delivery.
    pub async fn commit(self, idempotency: Option<IdempotentResponse>) -> Result<(), AcceptError> {
        self.commit_with(idempotency, None).await
    }

    /// [`Screened::commit`] of a broadcast's batch with the expansion's `progress`:
    /// `BroadcastMoved`, and nothing stored, unless the broadcast is still sending
    /// from where the batch started.
    pub async fn commit_broadcast(self, progress: BroadcastProgress) -> Result<(), AcceptError> {
        self.commit_with(None, Some(progress)).await
    }

    async fn commit_with(
        self,
        idempotency: Option<IdempotentResponse>,
        progress: Option<BroadcastProgress>,
    ) -> Result<(), AcceptError> {
        let Pipeline {
            services,
            engine,
            tenant_id,
        } = self.pipeline;
        let keys = &self.keys;
        let now = now_ms();
        let streams: Vec<Arc<Stream>> = self
            .submissions
            .iter()
            .map(|s| {
                services
                    .streams
                    .get(tenant_id, &s.stream)
                    .unwrap_or_else(|| Arc::new(Stream::initial(&s.stream)))
            })
            .collect();
        let expiry = |stream: &Stream| {
            let max_age = stream.settings.max_age;
            now + max_age
                .unwrap_or(services.config.delivery.expiry)
                .as_millis() as i64
        };
        let priority = streams.iter().map(|s| s.settings.priority).min();
        let lease = engine.lease_for_new(priority.unwrap_or(u8::MAX));
        let mut batch = AcceptBatch {
            messages: Vec::with_capacity(self.submissions.len()),
            idempotency: None,
            lease: lease.clone(),
            progress,
        };
        // An erased person's recipient rows get no blind index (and no key is made).
        let hashes: Vec<Vec<Vec<u8>>> = self
            .submissions
            .iter()
            .zip(self.hashes)
            .map(|(s, hashes)| {
                s.recipients
                    .iter()
                    .zip(hashes)
                    .map(|((id, _), hash)| match s.erased.contains(id) {
                        true => Vec::new(),
                        false => hash,
                    })
                    .collect()
            })
            .collect();
        let people = services
            .subject_keys_creating(tenant_id, hashes.iter().flatten().map(Vec::as_slice))
            .await?;
        for ((s, stream), hashes) in self.submissions.iter().zip(&streams).zip(&hashes) {
            let meta = serde_json::to_vec(&s.meta).unwrap_or_default();
            // What is about the one recipient of a message is theirs; shared otherwise.
            let sole = match hashes.as_slice() {
                [only] => Some(only.as_slice()),
                _ => None,
            };
            batch.messages.push(NewMessage {
                id: s.id.clone(),
                tenant_id: tenant_id.to_string(),
                stream: s.stream.clone(),
                from_domain: s.from_domain.clone(),
                created_at: now,
                expires_at: expiry(stream),
                size: s.content.len() as i64,
                meta_enc: people.seal(sole, SealContext::Meta(&s.id), &meta),
                tag_hashes: s.meta.tags.iter().map(|t| keys.tag_index(t)).collect(),
                broadcast_id: s.broadcast_id.clone(),
                send_at: s.send_at,
                priority: i64::from(stream.settings.priority),
                content_enc: people.seal(sole, SealContext::Content(&s.id), &s.content),
                mail_from_enc: s
                    .mail_from
                    .as_ref()
                    .map(|a| keys.seal(SealContext::MailFrom(&s.id), a.to_string().as_bytes())),
                recipients: s
                    .recipients
                    .iter()
                    .zip(hashes)
                    .map(|((id, addr), hash)| NewRecipient {
                        id: id.clone(),
                        rcpt_hash: hash.clone(),
                        address_enc: match hash.is_empty() {
                            true => Vec::new(),
                            false => people.seal(
                                Some(hash),
                                SealContext::Recipient(id),
                                addr.to_string().as_bytes(),
                            ),
                        },
                        domain: addr.domain().to_string(),
                        status: s.held.get(id).copied().unwrap_or(RecipientStatus::Queued),
                    })
                    .collect(),
            });
        }
        batch.idempotency = idempotency.map(|i| IdempotencyRecord {
            tenant_id: tenant_id.to_string(),
            response_enc: keys.seal(SealContext::Idempotency(&i.key_hash), &i.response),
            key_hash: i.key_hash,
            created_at: now,
        });
        match services.store.accept(batch).await {
            Ok(()) => {}
            Err(StoreError::Conflict("idempotency key")) => {
                return Err(AcceptError::IdempotencyKeyUsed);
            }
            Err(StoreError::Conflict("broadcast")) => return Err(AcceptError::BroadcastMoved),
            Err(e) => return Err(ServiceError::from(e).into()),
        }
        for s in &self.submissions {
            let queued = s.recipients.len().saturating_sub(s.held.len());
            postwerk_core::metrics::ACCEPTED.add(
                &[postwerk_core::metrics::stream_label(&s.stream)],
                queued as u64,
            );
        }
        let accepted_at = std::time::Instant::now();
        if lease.is_some() {
            let mut jobs = Vec::new();
            for ((s, hashes), stream) in self.submissions.into_iter().zip(hashes).zip(&streams) {
                let expires_at = expiry(stream);
                let pool = services.egress.pool_for(services, tenant_id, stream).await;
                let content = Content::new(s.content, s.from_domain, stream, Some(accepted_at));
                let message = Outbound {
                    tenant_id,
                    message_id: &s.id,
                    content: &content,
                    pool: &pool,
                };
                for ((id, address), rcpt_hash) in s.recipients.into_iter().zip(hashes) {
                    // A scheduled message's recipients wait for the poller.
                    if !s.held.contains_key(&id) && s.send_at.is_none() {
                        jobs.push(message.job(id, rcpt_hash, address, 0, expires_at));
                    }
                }
            }
            engine.enqueue(jobs);
        }
        Ok(())
    }
}
