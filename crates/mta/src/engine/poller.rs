//! The poller: claims due (new or retried) recipients from the store into the ready
//! queue, reloads streams and cancelled tenants now and then, and renews this node's
//! leases.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postwerk_core::address::Address;
use postwerk_store::prelude::*;
use postwerk_store::vault::SealContext;

use super::{Engine, LEASE, LEASE_RENEW, MAX_READY};
use crate::job::{Content, Job, Outbound};
use postwerk_services::context::now_ms;
use postwerk_services::streams::Stream;
use postwerk_services::subjects::SubjectKeys;

/// How often the store is asked for due recipients.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Streams are reloaded every this many polls (changes made on other nodes).
const STREAMS_RELOAD_POLLS: u64 = 5;

impl Engine {
    pub(super) async fn poll_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL_EVERY);
        let mut polls = 0u64;
        while !self.is_stopping() {
            tick.tick().await;
            polls += 1;
            if polls.is_multiple_of(STREAMS_RELOAD_POLLS) {
                match self.services.streams.refresh(&self.services.store).await {
                    Ok(()) => {
                        let shares = self.services.streams.reserved_shares();
                        self.slots.reserve(shares);
                        self.shaper.reserve(shares);
                    }
                    Err(e) => tracing::error!(error = %e, "could not reload streams"),
                }
                if let Err(e) = self.services.cancelled.refresh(&self.services.store).await {
                    tracing::error!(error = %e, "could not reload the cancelled tenants");
                }
            }
            if self.queue.len() >= MAX_READY {
                continue;
            }
            let now = now_ms();
            let limit = (MAX_READY - self.queue.len()).min(2_000);
            match self
                .services
                .store
                .claim_due(
                    &self.services.node_id,
                    now,
                    now + LEASE.as_millis() as i64,
                    limit,
                )
                .await
            {
                Ok(due) if !due.is_empty() => {
                    let jobs = self.jobs_from_due(due).await;
                    self.enqueue(jobs);
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "could not claim due deliveries"),
            }
        }
    }

    async fn jobs_from_due(&self, due: Vec<postwerk_store::model::DueRecipient>) -> Vec<Job> {
        let mut contents: HashMap<String, Option<Arc<Content>>> = HashMap::new();
        let mut tenants: HashMap<String, SubjectKeys> = HashMap::new();
        for d in &due {
            if tenants.contains_key(&d.tenant_id) {
                continue;
            }
            let hashes = due
                .iter()
                .filter(|o| o.tenant_id == d.tenant_id)
                .map(|o| o.rcpt_hash.as_slice());
            match self.services.subject_keys(&d.tenant_id, hashes).await {
                Ok(keys) => {
                    tenants.insert(d.tenant_id.clone(), keys);
                }
                Err(e) => tracing::error!(error = %e, "cannot load keys for due deliveries"),
            }
        }
        let mut jobs = Vec::with_capacity(due.len());
        for d in due {
            let Some(keys) = tenants.get(&d.tenant_id) else {
                continue;
            };
            if !contents.contains_key(&d.message_id) {
                let content = self.load_content(&d.message_id, &d.rcpt_hash, keys).await;
                contents.insert(d.message_id.clone(), content);
            }
            let (Some(Some(content)), Ok(addr)) = (
                contents.get(&d.message_id),
                keys.open(
                    Some(&d.rcpt_hash),
                    SealContext::Recipient(&d.id),
                    &d.address_enc,
                ),
            ) else {
                tracing::error!(recipient_id = %d.id, "cannot load a due delivery; it stays queued");
                continue;
            };
            let Ok(address) = std::str::from_utf8(&addr)
                .map_err(|_| ())
                .and_then(|a| Address::parse(a).map_err(|_| ()))
            else {
                continue;
            };
            let stream = self.services.streams.get(&d.tenant_id, &content.stream);
            let stream = stream.unwrap_or_else(|| Arc::new(Stream::initial(&content.stream)));
            let pool = self
                .services
                .egress
                .pool_for(&self.services, &d.tenant_id, &stream)
                .await;
            let message = Outbound {
                tenant_id: &d.tenant_id,
                message_id: &d.message_id,
                content,
                pool: &pool,
            };
            jobs.push(message.job(d.id, d.rcpt_hash, address, d.attempts, d.expires_at));
        }
        jobs
    }

    /// A message's content, for delivery to the recipient `rcpt_hash` (whose key
    /// seals it if they are its only recipient).
    async fn load_content(
        &self,
        message_id: &str,
        rcpt_hash: &[u8],
        keys: &SubjectKeys,
    ) -> Option<Arc<Content>> {
        let row = self.services.store.load_content(message_id).await.ok()??;
        let message = keys
            .open(
                Some(rcpt_hash),
                SealContext::Content(message_id),
                row.content_enc.as_ref()?,
            )
            .ok()?;
        let stream = self.services.streams.get(&row.tenant_id, &row.stream);
        let stream = stream.unwrap_or_else(|| Arc::new(Stream::initial(&row.stream)));
        Some(Content::new(message, row.from_domain, &stream, None))
    }

    pub(super) async fn renew_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(LEASE_RENEW);
        tick.tick().await;
        while !self.is_stopping() {
            tick.tick().await;
            let until = now_ms() + LEASE.as_millis() as i64;
            if let Err(e) = self
                .services
                .store
                .renew_leases(&self.services.node_id, until)
                .await
            {
                tracing::error!(error = %e, "could not renew delivery leases");
            }
        }
    }
}
