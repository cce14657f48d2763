//! DKIM signing of a job's message: once per message and shared by its recipients, or
//! per recipient when the message is personal (one-click unsubscribe headers, tracking
//! token); bulk signing limited to all cores but one; signers cached per tenant and
//! From domain.

use std::sync::Arc;

use postwerk_dkim::{self as dkim, DkimSigner};
use postwerk_store::prelude::*;
use postwerk_store::vault::SealContext;

use super::Engine;
use crate::job::Job;
use crate::tracking;
use crate::unsubscribe;
use postwerk_services::context::now_ms;

impl Engine {
    /// The DKIM-signed message for `job`: signed once per message and shared by its
    /// recipients, or signed per recipient when it is personal: with the recipient's
    /// `List-Unsubscribe` in front (streams with one-click unsubscribe) and their token
    /// in the tracking links.
    pub(super) async fn signed(&self, job: &Job) -> Result<Arc<Vec<u8>>, String> {
        if let Some(s) = job.content.signed.get() {
            return Ok(s.clone());
        }
        let config = &self.services.config;
        let stream = self.stream_of(job);
        let unsub = unsubscribe::applies(config, &stream, &job.content.message);
        let signers = self
            .signers(&job.tenant_id, &job.content.from_domain)
            .await?;
        let now = now_ms() as u64 / 1000;
        let _bulk_permit = match job.content.lane {
            0 => None,
            _ => Some(
                self.bulk_signing
                    .acquire()
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };
        // RSA signing is the costliest step of a delivery (≈0.85 ms of CPU): run it on
        // the blocking pool so the async workers keep serving sockets meanwhile.
        let content = job.content.clone();
        if unsub || content.tracked {
            let mut message = Vec::with_capacity(content.message.len() + 256);
            if unsub {
                let keys = self
                    .services
                    .tenant_keys(&job.tenant_id)
                    .await
                    .map_err(|e| e.to_string())?;
                message.extend_from_slice(
                    unsubscribe::headers(config, &keys, &job.recipient_id).as_bytes(),
                );
            }
            let token = tracking::token(self.services.keys.master(), &job.recipient_id);
            return tokio::task::spawn_blocking(move || {
                match tracking::personalise(&content.message, &token) {
                    Some(personal) => message.extend_from_slice(&personal),
                    None => message.extend_from_slice(&content.message),
                }
                dkim::sign_message(&signers, &message, now)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?;
        }
        tokio::task::spawn_blocking(move || {
            if let Some(s) = content.signed.get() {
                return Ok(s.clone());
            }
            let signed =
                dkim::sign_message(&signers, &content.message, now).map_err(|e| e.to_string())?;
            Ok(content.signed.get_or_init(|| Arc::new(signed)).clone())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn signers(&self, tenant_id: &str, domain: &str) -> Result<Arc<Vec<DkimSigner>>, String> {
        let key = (tenant_id.to_string(), domain.to_string());
        if let Some(s) = self.signers.read().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(s);
        }
        let keys = self
            .services
            .tenant_keys(tenant_id)
            .await
            .map_err(|e| e.to_string())?;
        let record = self
            .services
            .store
            .get_domain(tenant_id, domain)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("sending domain is not registered")?;
        let mut signers = Vec::with_capacity(record.keys.len());
        for k in &record.keys {
            let der = keys
                .open(SealContext::Dkim(&k.id), &k.private_key_enc)
                .map_err(|e| e.to_string())?;
            let algorithm = k
                .algorithm
                .parse()
                .map_err(|_| "unknown DKIM algorithm".to_string())?;
            signers.push(
                DkimSigner::new(domain, &k.selector, algorithm, &der).map_err(|e| e.to_string())?,
            );
        }
        let signers = Arc::new(signers);
        if let Ok(mut m) = self.signers.write() {
            m.insert(key, signers.clone());
        }
        Ok(signers)
    }
}
