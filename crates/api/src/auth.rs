//! `Authorization: Bearer <key>` → the caller's tenant and scopes.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use postwerk_core::model::Scope;
use postwerk_mta::apikeys::{self, KeyError};

use crate::AppState;
use crate::error::ApiError;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id (safe to log).
    pub key_id: String,
    /// The tenant the key belongs to.
    pub tenant_id: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// 403 unless the key has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this API key lacks the `{scope}` scope"),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized =
            |code: &'static str, msg: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, msg);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                unauthorized("missing_api_key", "send Authorization: Bearer <API key>")
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("invalid_api_key", "expected a Bearer token"))?
            .trim();
        match apikeys::verify(&state.services, token).await {
            Ok(key) => Ok(Caller {
                key_id: key.id,
                tenant_id: key.tenant_id,
                scopes: key.scopes,
            }),
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
