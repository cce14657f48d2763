//! One delivery attempt over an open connection and what follows from it: the
//! verdict, the recipient's update, a hard bounce's suppression entry; a destination
//! that failed as a whole; and committing outcomes to the store.

use std::sync::Arc;

use postwerk_core::model::SuppressionReason;
use postwerk_reports::verp;
use postwerk_smtp_client::SmtpClient;
use postwerk_store::model::{DeliveryUpdate, SuppressionRecord};
use postwerk_store::prelude::*;

use super::Engine;
use crate::job::{Job, Route};
use crate::outcome::{AttemptDetail, TlsDetail, Verdict, classify_local, judge, update_for};
use crate::shaper;
use postwerk_privacy::suppressions;
use postwerk_services::context::now_ms;
use postwerk_services::egress::Source;
use postwerk_services::subjects::SubjectKeys;

impl Engine {
    pub(super) async fn deliver(
        &self,
        client: &mut SmtpClient,
        mx: &str,
        source: Option<&Source>,
        site: &str,
        job: Job,
    ) -> (DeliveryUpdate, Option<SuppressionRecord>, bool) {
        let keys = self
            .services
            .subject_keys(&job.tenant_id, [job.rcpt_hash.as_slice()])
            .await;
        let tls = client.tls_info().map(|t| TlsDetail {
            version: t.version.clone(),
            cipher: t.cipher.clone(),
            verified: t.verified,
        });
        let mut detail = AttemptDetail {
            mx: Some(mx.to_string()),
            ip: Some(client.peer_addr().ip().to_string()),
            source: source.map(|s| s.name.clone()),
            source_ip: source.map(|s| s.address.to_string()),
            site: Some(site.to_string()),
            tls,
            ..Default::default()
        };
        let (verdict, classification) = match self.signed(&job).await {
            Ok(message) => {
                let mail_from = self.verp(&job);
                let rcpt = job.address.to_string();
                let result = client
                    .send(&mail_from, &[&rcpt], &message, job.address.is_utf8())
                    .await;
                let judged = judge(result);
                detail.reply = judged.reply;
                (judged.verdict, judged.classification)
            }
            Err(e) => {
                detail.reply = format!("local: {e}");
                (Verdict::Transient, None)
            }
        };
        let hard = detail.classify(verdict, classification);
        let throttled =
            verdict == Verdict::Transient && shaper::is_throttling(&detail.reply, detail.reason);
        if verdict == Verdict::Permanent {
            self.services
                .breaker
                .mark(&job.tenant_id, &job.content.stream);
        }
        tracing::info!(
            message_id = %job.message_id,
            recipient_id = %job.recipient_id, mx,
            verdict = ?verdict, attempt = job.attempts + 1, "delivery attempt"
        );
        match keys {
            Ok(keys) => {
                let suppression = hard.then(|| self.hard_bounce_entry(&keys, &job));
                let update = update_for(&job, verdict, detail, now_ms(), &self.retry, &keys);
                (update, suppression, throttled)
            }
            Err(_) => {
                let keys = self.fallback_keys();
                let update = update_for(
                    &job,
                    Verdict::Transient,
                    detail,
                    now_ms(),
                    &self.retry,
                    &keys,
                );
                (update, None, throttled)
            }
        }
    }

    fn hard_bounce_entry(&self, keys: &SubjectKeys, job: &Job) -> SuppressionRecord {
        suppressions::record(
            keys,
            &job.tenant_id,
            &job.address,
            SuppressionReason::HardBounce,
            None,
            &job.recipient_id,
        )
    }

    /// Keys are always loadable once a job exists; this exists only so that a vault
    /// failure cannot lose the attempt record. It seals nothing readable.
    fn fallback_keys(&self) -> SubjectKeys {
        let master = self.services.keys.master();
        let wrapped = master.new_wrapped_tenant_key("fallback");
        let keys = master
            .unwrap_tenant_key("fallback", &wrapped)
            .expect("freshly wrapped key unwraps");
        SubjectKeys::tenant_only(Arc::new(keys))
    }

    /// Defers or bounces every job waiting for a destination that failed as a whole.
    pub(super) async fn fail_destination(
        &self,
        route: &Route,
        verdict: Verdict,
        mut detail: AttemptDetail,
    ) {
        let hard = detail.classify(verdict, Some(classify_local(verdict, &detail.reply)));
        let jobs = self.queue.drain(route);
        let mut updates = Vec::with_capacity(jobs.len());
        let mut suppressed = Vec::new();
        for job in &jobs {
            if verdict == Verdict::Permanent {
                self.services
                    .breaker
                    .mark(&job.tenant_id, &job.content.stream);
            }
            if let Ok(keys) = self
                .services
                .subject_keys(&job.tenant_id, [job.rcpt_hash.as_slice()])
                .await
            {
                if hard {
                    suppressed.push(self.hard_bounce_entry(&keys, job));
                }
                updates.push(update_for(
                    job,
                    verdict,
                    detail.clone(),
                    now_ms(),
                    &self.retry,
                    &keys,
                ));
            }
        }
        self.record(updates, suppressed).await;
    }

    /// Commits outcomes, then adds hard-bounced addresses to the suppression list.
    pub(super) async fn record(
        &self,
        updates: Vec<DeliveryUpdate>,
        suppressions: Vec<SuppressionRecord>,
    ) {
        if let Err(e) = self.services.store.record_deliveries(updates).await {
            tracing::error!(error = %e, "could not record a delivery outcome; it will be retried after the lease");
            return;
        }
        for entry in suppressions {
            if let Err(e) = self.services.store.add_suppression(entry).await {
                tracing::error!(error = %e, "could not suppress a hard-bounced address");
            }
        }
    }

    /// The VERP envelope sender (see [`verp`]) at the bounce domain, else at the
    /// sender's domain.
    fn verp(&self, job: &Job) -> String {
        let domain = self
            .services
            .config
            .delivery
            .bounce_domain
            .as_deref()
            .unwrap_or(&job.content.from_domain);
        let tag = self
            .services
            .keys
            .cached(&job.tenant_id)
            .map(|k| k.verp_tag(&job.recipient_id))
            .unwrap_or_default();
        verp::address(&job.recipient_id, &tag, domain)
    }
}
