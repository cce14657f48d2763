//! `Authorization: Bearer <key>` → the caller's tenant and scopes.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, StatusCode};
use postwerk_core::model::Scope;
use postwerk_mta::apikeys::{self, KeyError};
use postwerk_mta::audit::{self, Actor};

use crate::AppState;
use crate::error::ApiError;
use crate::ratelimit::Quota;
use crate::scopes;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id (safe to log).
    pub key_id: String,
    /// The tenant the key belongs to.
    pub tenant_id: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// The client's IP address (recorded in the audit log).
    pub ip: Option<String>,
}

impl Caller {
    /// Writes an audit entry for this caller (actor `key:<id>`, its IP) before the
    /// action it records; 503 if it cannot be written, so nothing happens unrecorded.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: String,
    ) -> Result<(), ApiError> {
        let actor = Actor {
            id: format!("key:{}", self.key_id),
            ip: self.ip.clone(),
        };
        audit::record(
            &state.services,
            &actor,
            Some(&self.tenant_id),
            action,
            Some(target),
        )
        .await
        .map(drop)
        .map_err(|e| ApiError::unavailable(&e))
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
        // No key, no guess: a request without one is simply unauthorised.
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_api_key",
                    "send Authorization: Bearer <API key>",
                )
            })?;
        if let Some(wait) = ip.and_then(|ip| state.key_failures.blocked_for(ip)) {
            return Err(ApiError::too_many_attempts(wait.as_secs().max(1)));
        }
        let unauthorized = |code: &'static str, msg: &str| {
            if let Some(ip) = ip {
                state.key_failures.failed(ip);
            }
            ApiError::new(StatusCode::UNAUTHORIZED, code, msg)
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("invalid_api_key", "expected a Bearer token"))?
            .trim();
        match apikeys::verify(&state.services, token).await {
            Ok(key) => {
                if !apikeys::allows_address(&key, ip) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "ip_not_allowed",
                        "this API key may not be used from this address",
                    ));
                }
                let decision = state
                    .services
                    .limits
                    .key(&key.id, key.rate_limit, &key.tenant_id);
                if let Some(quota) = parts.extensions.get::<Quota>() {
                    quota.record(decision);
                }
                if !decision.allowed {
                    return Err(crate::ratelimit::refused(decision));
                }
                let operation = parts
                    .extensions
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str);
                match operation.and_then(|path| scopes::required(&parts.method, path)) {
                    Some(scope) if key.scopes.contains(&scope) => {}
                    Some(scope) => {
                        return Err(ApiError::new(
                            StatusCode::FORBIDDEN,
                            "insufficient_scope",
                            format!("this API key lacks the `{scope}` scope"),
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
                Ok(Caller {
                    key_id: key.id,
                    tenant_id: key.tenant_id,
                    scopes: key.scopes,
                    ip: ip.map(|ip| ip.to_string()),
                })
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
