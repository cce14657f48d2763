//! `Authorization: Bearer <key>` → the caller's tenant and scopes.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, StatusCode};
use postwerk_accounts::apikeys::{self, KeyError};
use postwerk_accounts::auth_failures;
use postwerk_core::metrics::{self, AuthFailure};
use postwerk_core::model::Scope;
use postwerk_services::audit::{self, Actor};
use postwerk_services::tenants;

use crate::AppState;
use crate::error::ApiError;
use crate::ratelimit::Quota;
use crate::{scopes, subaccounts};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who is calling, safe to log: `key:<key id>` or `user:<user id>`.
    pub principal: String,
    /// The tenant the key belongs to.
    pub tenant_id: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// The client's IP address (recorded in the audit log).
    pub ip: Option<String>,
    /// A user limited to some lists reads only the contacts on at least one of them
    /// (list ids); `None`: every contact (API keys, unlimited users).
    pub lists: Option<Vec<String>>,
}

impl Caller {
    /// The caller as the audit log names it: its principal, its IP.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.principal.clone(),
            ip: self.ip.clone(),
        }
    }

    /// Writes an audit entry for this caller before the action it records; 503 if it
    /// cannot be written, so nothing happens unrecorded.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: String,
    ) -> Result<(), ApiError> {
        audit::record(
            &state.services,
            &self.actor(),
            Some(&self.tenant_id),
            action,
            Some(target),
        )
        .await
        .map(drop)
        .map_err(ApiError::from)
    }
}

/// The client's address, when the server runs with connection info.
pub(crate) fn client_ip(
    extensions: &Extensions,
    headers: &HeaderMap,
    state: &AppState,
) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| crate::client::address(c.0.ip(), headers, &state.proxies))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = client_ip(&parts.extensions, &parts.headers, state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(header) = header else {
            // A signed-in user's browser sends its session cookie instead.
            if let Some(user) = crate::session::SessionUser::from_parts(parts, state).await? {
                user.check_second_factor(state).await?;
                let caller = Caller {
                    principal: format!("user:{}", user.user.id),
                    tenant_id: user.user.tenant_id,
                    scopes: user.user.scopes,
                    ip: ip.map(|ip| ip.to_string()),
                    lists: user.user.lists,
                };
                return caller.admit(parts, state, None).await;
            }
            // No key, no guess: a request without one is simply unauthorised.
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_api_key",
                "send Authorization: Bearer <API key>, or sign in",
            ));
        };
        if let Some(wait) = ip.and_then(|ip| state.key_failures.blocked_for(ip)) {
            metrics::auth_failure(AuthFailure::Throttled);
            return Err(ApiError::too_many_attempts(wait.as_secs().max(1)));
        }
        let unauthorized = |code: &'static str, msg: &str| {
            if let Some(ip) = ip {
                state.key_failures.failed(ip);
            }
            ApiError::new(StatusCode::UNAUTHORIZED, code, msg)
        };
        let bearer = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "));
        let Some(token) = bearer.map(str::trim) else {
            auth_failures::record(&state.services, AuthFailure::ApiKey, None, None, ip).await;
            return Err(unauthorized("invalid_api_key", "expected a Bearer token"));
        };
        match apikeys::verify_from(&state.services, token, ip).await {
            Ok(key) => {
                if !apikeys::allows_address(&key, ip) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "ip_not_allowed",
                        "this API key may not be used from this address",
                    ));
                }
                let caller = Caller {
                    principal: format!("key:{}", key.id),
                    tenant_id: key.tenant_id,
                    scopes: key.scopes,
                    ip: ip.map(|ip| ip.to_string()),
                    lists: None,
                };
                caller.admit(parts, state, key.rate_limit).await
            }
            Err(KeyError::Unavailable) => Err(ApiError::unavailable(&"key store unavailable")),
            Err(KeyError::Revoked) => {
                Err(unauthorized("api_key_revoked", "this API key was revoked"))
            }
            Err(KeyError::Expired) => {
                Err(unauthorized("api_key_expired", "this API key has expired"))
            }
            Err(KeyError::Malformed | KeyError::Invalid) => {
                Err(unauthorized("invalid_api_key", "invalid API key"))
            }
        }
    }
}

impl Caller {
    /// Counts the request against the caller's and its tenant's rate limits, refuses
    /// a cancelled tenant (`403 tenant_cancelled`)
    /// (`rate_limit`: the key's own), checks the operation's documented scope, and with
    /// `X-Postwerk-Subaccount` (and `admin`) moves the caller to that sub-account
    /// unless it is cancelled.
    async fn admit(
        mut self,
        parts: &Parts,
        state: &AppState,
        rate_limit: Option<u32>,
    ) -> Result<Caller, ApiError> {
        let decision = state
            .services
            .limits
            .key(&self.principal, rate_limit, &self.tenant_id);
        if let Some(quota) = parts.extensions.get::<Quota>() {
            quota.record(decision);
        }
        if !decision.allowed {
            return Err(crate::ratelimit::refused(decision));
        }
        tenants::ensure_active(&state.services, &self.tenant_id).await?;
        let operation = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        match operation.and_then(|path| scopes::required(&parts.method, path)) {
            Some(scope) if self.scopes.contains(&scope) => {}
            Some(scope) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    format!("this API key or user lacks the `{scope}` scope"),
                ));
            }
            // Fail closed: an operation must document its scope to be usable.
            None => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    "this operation documents no scope",
                ));
            }
        }
        if let Some(child) = parts.headers.get(subaccounts::HEADER) {
            // The parent's admins act on a sub-account.
            if !self.scopes.contains(&Scope::Admin) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    "acting on a sub-account needs the `admin` scope",
                ));
            }
            let id = child.to_str().map_err(|_| subaccounts::not_found())?;
            let child = subaccounts::child_of(state, &self.tenant_id, id).await?;
            tenants::check_active(&state.services, &child)?;
            self.tenant_id = child.id;
        }
        Ok(self)
    }
}
