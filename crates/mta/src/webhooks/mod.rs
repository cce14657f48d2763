//! Webhooks: customers' endpoints that receive events as signed JSON posts.
//!
//! - [`target`]: which URLs are allowed (https, no SSRF), resolved and checked.
//! - [`sign`]: Standard Webhooks signatures and secrets.
//! - [`http`]: the minimal HTTP/1.1 client that posts.
//! - [`dispatch`]: the delivery loop (claims queued deliveries, posts, retries).
//!
//! Deliveries are queued by the store itself, in the same transaction as each event
//! (see [`postwerk_store::model::WebhookRecord`]). Secrets are sealed under the tenant
//! key; the plaintext is shown once, when created or rotated.

pub mod dispatch;
pub mod http;
pub mod sign;
pub mod target;

use postwerk_core::id::new_id;
use postwerk_core::model::{EventType, is_stream_name};
use postwerk_store::model::WebhookRecord;
use postwerk_store::prelude::*;
use postwerk_store::vault::{SealContext, TenantKeys};

use postwerk_services::context::{ServiceError, Services, now_ms};
use target::{Target, TargetError};

/// Why an endpoint could not be registered or changed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is malformed or points somewhere the policy forbids.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// An unknown event type in `events`.
    #[error("unknown event type `{0}`")]
    UnknownEvent(String),
    /// A malformed stream name in `streams`.
    #[error("invalid stream name `{0}`")]
    InvalidStream(String),
    /// The store or vault failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// What an endpoint subscribes to.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    /// The URL events are posted to.
    pub url: String,
    /// Event types (empty: all).
    pub events: Vec<String>,
    /// Streams (empty: all).
    pub streams: Vec<String>,
}

impl Subscription {
    /// Checks the event and stream names, and the URL against the policy (resolving
    /// its host).
    pub async fn validate(&self, services: &Services) -> Result<(), WebhookError> {
        for e in &self.events {
            e.parse::<EventType>()
                .map_err(|_| WebhookError::UnknownEvent(e.clone()))?;
        }
        if let Some(s) = self.streams.iter().find(|s| !is_stream_name(s)) {
            return Err(WebhookError::InvalidStream(s.clone()));
        }
        Target::parse(&self.url)?
            .resolve(&services.config.webhooks)
            .await?;
        Ok(())
    }
}

/// Registers an endpoint; returns it and its signing secret (shown once).
pub async fn create(
    services: &Services,
    tenant_id: &str,
    sub: Subscription,
) -> Result<(WebhookRecord, String), WebhookError> {
    sub.validate(services).await?;
    let keys = services.tenant_keys(tenant_id).await?;
    let id = new_id("wh");
    let secret = sign::new_secret();
    let record = WebhookRecord {
        secret_enc: keys.seal(SealContext::WebhookSecret(&id), secret.as_bytes()),
        id,
        tenant_id: tenant_id.to_string(),
        url: sub.url,
        events: dedup(sub.events),
        streams: dedup(sub.streams),
        previous_secret_enc: None,
        previous_until: None,
        created_at: now_ms(),
        disabled_at: None,
        failing_since: None,
    };
    services
        .store
        .insert_webhook(record.clone())
        .await
        .map_err(ServiceError::from)?;
    Ok((record, secret))
}

/// A tenant's endpoint, or `None`.
pub async fn find(
    services: &Services,
    tenant_id: &str,
    id: &str,
) -> Result<Option<WebhookRecord>, ServiceError> {
    Ok(services
        .store
        .list_webhooks(Some(tenant_id))
        .await?
        .into_iter()
        .find(|w| w.id == id))
}

/// Gives an endpoint a new secret; the old one stays valid (requests carry both
/// signatures) for `grace_ms`. Returns the endpoint and the new secret, or `None`.
pub async fn rotate_secret(
    services: &Services,
    tenant_id: &str,
    id: &str,
    grace_ms: i64,
) -> Result<Option<(WebhookRecord, String)>, ServiceError> {
    let Some(mut w) = find(services, tenant_id, id).await? else {
        return Ok(None);
    };
    let keys = services.tenant_keys(tenant_id).await?;
    let secret = sign::new_secret();
    w.previous_secret_enc = Some(std::mem::replace(
        &mut w.secret_enc,
        keys.seal(SealContext::WebhookSecret(&w.id), secret.as_bytes()),
    ));
    w.previous_until = Some(now_ms().saturating_add(grace_ms));
    if !services.store.update_webhook(w.clone()).await? {
        return Ok(None);
    }
    Ok(Some((w, secret)))
}

/// The secrets an endpoint's requests are signed with at `now`: the current one and,
/// during a rotation's overlap, the previous one.
pub fn secrets(keys: &TenantKeys, w: &WebhookRecord, now: i64) -> Vec<String> {
    let open = |sealed: &[u8]| {
        keys.open(SealContext::WebhookSecret(&w.id), sealed)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    let mut out: Vec<String> = open(&w.secret_enc).into_iter().collect();
    if let (Some(prev), Some(until)) = (&w.previous_secret_enc, w.previous_until)
        && until > now
    {
        out.extend(open(prev));
    }
    out
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}
