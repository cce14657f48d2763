//! What a session needs from the rest of Postwerk, as a trait so that session tests
//! run without a store: check credentials, check a From domain, commit a message.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use postwerk_accounts::apikeys::{self, KeyError};
use postwerk_accounts::auth_failures;
use postwerk_core::address::Address;
use postwerk_core::metrics::AuthFailure;
use postwerk_core::model::Scope;
use postwerk_mta::accept::{Pipeline, Refusal, Submission};
use postwerk_mta::engine::Engine;
use postwerk_mta::inbound;
use postwerk_services::context::Services;

use crate::message::Identity;

/// Why AUTH did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Wrong user, key, scope, or a revoked/expired key: 535.
    #[error("invalid credentials")]
    Invalid,
    /// The key store could not be asked: 454.
    #[error("key store unavailable")]
    Unavailable,
    /// Valid credentials, but the tenant is cancelled: 535 5.7.1.
    #[error("tenant cancelled")]
    TenantCancelled,
}

/// Why a message was not committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The From domain is not registered for the tenant: 550 5.7.1.
    #[error("from domain not registered")]
    DomainNotRegistered,
    /// The tenant has no stream of the name the message asks for: 550 5.6.0.
    #[error("unknown stream")]
    UnknownStream,
    /// Store failure: 451 4.3.0. Nothing was stored.
    #[error("store unavailable")]
    Unavailable,
    /// The key's or tenant's rate limit is used up: 451 4.7.1. Nothing was stored.
    #[error("rate limited")]
    RateLimited,
    /// The tenant was cancelled since AUTH: 550 5.7.1. Nothing was stored.
    #[error("tenant cancelled")]
    TenantCancelled,
}

/// The services a session uses.
pub trait Backend: Send + Sync + 'static {
    /// Checks `AUTH` credentials: user `apikey` or the key's id, password an API key
    /// with scope `send` that may be used from `peer`.
    fn authenticate(
        &self,
        user: &str,
        password: &str,
        peer: std::net::IpAddr,
    ) -> impl Future<Output = Result<Identity, AuthError>> + Send;

    /// Counts the submission against the identity's rate limits, checks the From
    /// domain, then commits the message durably and queues it.
    fn submit(
        &self,
        identity: &Identity,
        submission: Submission,
    ) -> impl Future<Output = Result<(), SubmitError>> + Send;

    /// Inbound MX: whether mail for `rcpt` is taken (a VERP return path with a valid
    /// tag, or a feedback address).
    fn accepts_recipient(
        &self,
        rcpt: &Address,
    ) -> impl Future<Output = Result<bool, SubmitError>> + Send;

    /// Inbound MX: records what a message received from `peer` means (a report's
    /// events, an unsubscribe, a canary's alarm), durably, before `250`.
    fn receive_report(
        &self,
        peer: IpAddr,
        rcpts: Vec<Address>,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<(), SubmitError>> + Send;
}

/// The real backend: API keys, domains and the accept pipeline.
pub struct ServiceBackend {
    services: Arc<Services>,
    engine: Arc<Engine>,
}

impl ServiceBackend {
    /// Wraps the running services.
    pub fn new(services: Arc<Services>, engine: Arc<Engine>) -> Self {
        ServiceBackend { services, engine }
    }

    /// The submission pipeline of `tenant_id`.
    fn pipeline<'a>(&'a self, tenant_id: &'a str) -> Pipeline<'a> {
        Pipeline::new(&self.services, &self.engine, tenant_id)
    }

    /// Counts and audits a failed AUTH (see [`auth_failures`]): the key's tenant and
    /// `key:<id>` when the key exists but may not submit here.
    async fn refused(&self, tenant_id: Option<&str>, target: Option<String>, peer: IpAddr) {
        let kind = AuthFailure::SmtpAuth;
        auth_failures::record(&self.services, kind, tenant_id, target, Some(peer)).await;
    }
}

impl Backend for ServiceBackend {
    async fn authenticate(
        &self,
        user: &str,
        password: &str,
        peer: std::net::IpAddr,
    ) -> Result<Identity, AuthError> {
        let key = match apikeys::verify(&self.services, password).await {
            Ok(k) => k,
            Err(KeyError::Unavailable) => return Err(AuthError::Unavailable),
            Err(_) => {
                self.refused(None, None, peer).await;
                return Err(AuthError::Invalid);
            }
        };
        if !(user == "apikey" || user == key.id)
            || !key.scopes.contains(&Scope::Send)
            || !apikeys::allows_address(&key, Some(peer))
        {
            let target = Some(format!("key:{}", key.id));
            self.refused(Some(&key.tenant_id), target, peer).await;
            return Err(AuthError::Invalid);
        }
        match self.pipeline(&key.tenant_id).check_tenant().await {
            Ok(()) => {}
            Err(Refusal::TenantCancelled) => return Err(AuthError::TenantCancelled),
            Err(_) => return Err(AuthError::Unavailable),
        }
        tracing::info!(key = %key.id, "smtp auth");
        Ok(Identity {
            tenant_id: key.tenant_id,
            stream: "transactional".into(),
            principal: format!("key:{}", key.id),
            rate_limit: key.rate_limit,
        })
    }

    async fn submit(&self, identity: &Identity, submission: Submission) -> Result<(), SubmitError> {
        let tenant_id = identity.tenant_id.as_str();
        let allowance =
            self.services
                .limits
                .key(&identity.principal, identity.rate_limit, tenant_id);
        if !allowance.allowed {
            return Err(SubmitError::RateLimited);
        }
        let refused = |e| match e {
            Refusal::TenantCancelled => SubmitError::TenantCancelled,
            Refusal::DomainNotRegistered => SubmitError::DomainNotRegistered,
            Refusal::UnknownStream => SubmitError::UnknownStream,
            Refusal::Accept(e) => {
                tracing::warn!(error = %e, "smtp submission not stored");
                SubmitError::Unavailable
            }
        };
        self.pipeline(tenant_id)
            .submit(vec![submission], None)
            .await
            .map_err(refused)
    }

    async fn accepts_recipient(&self, rcpt: &Address) -> Result<bool, SubmitError> {
        inbound::accepts(&self.services, rcpt).await.map_err(|e| {
            tracing::warn!(error = %e, "inbound recipient check failed");
            SubmitError::Unavailable
        })
    }

    async fn receive_report(
        &self,
        peer: IpAddr,
        rcpts: Vec<Address>,
        message: Vec<u8>,
    ) -> Result<(), SubmitError> {
        inbound::receive(&self.services, peer, &rcpts, &message)
            .await
            .map(drop)
            .map_err(|e| {
                tracing::warn!(error = %e, "inbound report not recorded");
                SubmitError::Unavailable
            })
    }
}
