//! Postwerk's SMTP servers. Submission (RFC 6409): applications hand over mail with
//! `AUTH` (an API key) over STARTTLS or implicit TLS, or from a trusted network, and
//! every message goes through the same accept pipeline as the REST API — `250` only
//! after the durable commit. The inbound MX: bounces, feedback-loop reports and
//! auto-replies for VERP return paths and feedback addresses become events
//! ([`postwerk_mta::inbound`]) — `250` only after they are recorded.
//!
//! Privacy rule: this crate never logs an address, a subject or a body; logs name
//! peers by IP and messages by id.
//!
//! - [`parser`]: sans-IO command parser (pure, table-tested, proptest-fuzzed).
//! - [`data`]: DATA / BDAT receivers (dot-unstuffing, bare LF/CR refusal).
//! - [`reply`]: every reply with its enhanced status code.
//! - [`session`]: the session state machine, generic over the stream.
//! - [`message`]: received bytes → [`Submission`](postwerk_mta::accept::Submission).
//! - [`backend`]: credentials, then the submission pipeline, behind a trait.
//! - [`limits`]: per-address session and AUTH-failure limits.
//! - [`tls`]: certificates (generated, loaded, reloaded on renewal).
//! - [`server`]: the listeners.

pub mod backend;
pub mod data;
pub mod limits;
pub mod message;
pub mod parser;
pub mod reply;
pub mod server;
pub mod session;
pub mod tls;

use std::sync::Arc;

use postwerk_core::config::{Config, parse_cidr};
use postwerk_mta::engine::Engine;
use postwerk_services::context::Services;

pub use backend::{Backend, ServiceBackend};
pub use server::{Mode, run};
pub use session::{Context, Role, SessionConfig, Trusted};
pub use tls::ReloadingTls;

/// Why the submission server could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Certificate problem.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A trusted network's tenant could not be found or created.
    #[error("trusted network tenant `{0}`: {1}")]
    Tenant(String, String),
}

/// What the listeners share: one context per role and the certificate.
pub struct Prepared {
    /// Submission listeners (587/465).
    pub submission: Arc<Context<ServiceBackend>>,
    /// The inbound MX (25 of the bounce domain).
    pub inbound: Arc<Context<ServiceBackend>>,
    /// The certificate (STARTTLS, implicit TLS), reloaded on renewal.
    pub tls: Arc<ReloadingTls>,
}

/// Builds the shared contexts and TLS configuration for the SMTP listeners from the
/// configuration (generating the development certificate if needed).
pub async fn prepare(services: Arc<Services>, engine: Arc<Engine>) -> Result<Prepared, SetupError> {
    let config: &Config = &services.config;
    let sub = &config.smtp.submission;
    let (cert, key) = match (&sub.cert, &sub.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => tls::ensure_dev_cert(&config.data_dir, &config.delivery.ehlo_name)?,
    };
    let tls = Arc::new(ReloadingTls::load(&cert, &key)?);
    let mut trusted = Vec::new();
    for t in &sub.trusted {
        let tenant = services
            .ensure_tenant(&t.tenant)
            .await
            .map_err(|e| SetupError::Tenant(t.tenant.clone(), e.to_string()))?;
        let (net, prefix) = parse_cidr(&t.cidr).expect("validated by Config");
        trusted.push(Trusted {
            net,
            prefix,
            identity: message::Identity {
                tenant_id: tenant.id,
                stream: t.stream.clone(),
                principal: format!("network:{}", t.cidr),
                rate_limit: None,
            },
        });
    }
    let session = SessionConfig {
        role: Role::Submission,
        hostname: config.delivery.ehlo_name.clone(),
        max_message_bytes: sub.max_message_bytes,
        max_recipients: sub.max_recipients,
        idle_timeout: sub.idle_timeout,
        trusted,
        starttls: true,
    };
    let inbound = &config.smtp.inbound;
    let inbound_session = SessionConfig {
        role: Role::Inbound,
        hostname: config.delivery.ehlo_name.clone(),
        max_message_bytes: inbound.max_message_bytes,
        max_recipients: sub.max_recipients,
        idle_timeout: inbound.idle_timeout,
        trusted: Vec::new(),
        starttls: true,
    };
    let context = |config| {
        Arc::new(Context {
            config,
            backend: ServiceBackend::new(services.clone(), engine.clone()),
            limits: limits::Limits::new(&services.config.rate_limits),
        })
    };
    Ok(Prepared {
        submission: context(session),
        inbound: context(inbound_session),
        tls,
    })
}
