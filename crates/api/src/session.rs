//! Sign-in for people: `POST /v1/auth/login` opens a session (an `HttpOnly`, `Secure`,
//! `SameSite=Strict` cookie) and returns a CSRF token that every state-changing request
//! made with the session must send as `X-CSRF-Token`; `GET /v1/auth/session` describes
//! it, `POST /v1/auth/logout` ends it. With a session, the whole API answers with the
//! user's scopes, exactly as with an API key.

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postwerk_accounts::totp::SecondFactor;
use postwerk_accounts::users::{self, Credentials, LoginError};
use postwerk_core::metrics::{self, AuthFailure};
use postwerk_services::audit::{self, Actor};
use postwerk_services::tenants;
use postwerk_store::model::{SessionRecord, UserRecord};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::{ApiError, ApiJson};
use crate::view;

/// The session cookie's name.
pub const COOKIE: &str = "pw_session";

/// A request's live session and its user.
pub struct SessionUser {
    /// The session.
    pub session: SessionRecord,
    /// Its user.
    pub user: UserRecord,
    /// The session token (from the cookie).
    pub token: String,
    /// The tenant requires a second factor.
    pub require_totp: bool,
    /// The client's address.
    pub ip: Option<std::net::IpAddr>,
}

/// 403 `login_address_not_allowed`: the tenant's allowlist does not include the client.
fn address_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "login_address_not_allowed",
        "the tenant does not allow sign-in from this address",
    )
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

impl SessionUser {
    /// The request's session: `Ok(None)` without a session cookie; 401 for a session
    /// that ended; 403 when the user's tenant is cancelled, when its sign-in rules do
    /// not allow the client's address, or when a state-changing request lacks the
    /// session's CSRF token.
    pub async fn from_parts(parts: &Parts, state: &AppState) -> Result<Option<Self>, ApiError> {
        let Some(me) = Self::from_cookie(parts, state).await? else {
            return Ok(None);
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let csrf = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        if !safe && !csrf.is_some_and(|t| users::csrf_matches(&me.session, t)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_token_invalid",
                "send the session's CSRF token as X-CSRF-Token",
            ));
        }
        Ok(Some(me))
    }

    /// The request's session as [`SessionUser::from_parts`] finds it, without looking
    /// for the CSRF header: for the console, which checks the token its forms carry.
    pub async fn from_cookie(parts: &Parts, state: &AppState) -> Result<Option<Self>, ApiError> {
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Ok(None);
        };
        let (session, user) = users::session(&state.services, token)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "session_expired",
                    "the session has ended; sign in again",
                )
            })?;
        let ip = crate::auth::client_ip(&parts.extensions, &parts.headers, state);
        tenants::ensure_active(&state.services, &user.tenant_id).await?;
        let policy = users::policy(&state.services, &user).await?;
        if !users::address_allowed(&policy, ip) {
            return Err(address_not_allowed());
        }
        Ok(Some(SessionUser {
            session,
            user,
            token: token.to_string(),
            require_totp: policy.require_totp,
            ip,
        }))
    }

    async fn required(parts: &Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::from_parts(parts, state).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "not_signed_in",
                "sign in with POST /v1/auth/login",
            )
        })
    }
}

impl axum::extract::FromRequestParts<AppState> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::required(parts, state).await
    }
}

/// A user as the API shows it (to the user and to the tenant's admins).
pub async fn user_json(state: &AppState, u: &UserRecord) -> Result<serde_json::Value, ApiError> {
    let email = users::email_of(&state.services, u).await?;
    Ok(json!({
        "id": u.id,
        "email": email,
        "role": u.role,
        "scopes": u.scopes,
        "lists": u.lists,
        "created_at": view::time(u.created_at),
        "disabled_at": u.disabled_at.and_then(view::time),
        "locked_until": u.locked_until.and_then(view::time),
    }))
}

/// `POST /v1/auth/login` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
    /// The current TOTP code, for users with a second factor.
    #[serde(default)]
    totp: Option<String>,
    /// A recovery code instead of a TOTP code (each works once).
    #[serde(default)]
    recovery_code: Option<String>,
    /// The tenant (by name) whose account to sign in to, for an address with accounts
    /// in several tenants.
    #[serde(default)]
    tenant: Option<String>,
}

/// `POST /v1/auth/password` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnPassword {
    current_password: String,
    password: String,
}

/// `POST /v1/auth/totp/confirm` and `DELETE /v1/auth/totp` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    totp: String,
}

fn session_cookie(token: &str, max_age_s: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_s}"
    ))
    .expect("a token is a valid header value")
}

/// `POST /v1/auth/login`: a session cookie and its CSRF token, or 401
/// `invalid_credentials`, 429 `account_locked` / `too_many_attempts` with
/// `Retry-After`, 403 `account_disabled`.
pub async fn login(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(req): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let ip = crate::auth::client_ip(&parts.extensions, &parts.headers, &state);
    // The attempt takes its place in the client's failure allowance before the
    // password is checked, and gives it back unless it failed.
    if let Some(Err(wait)) = ip.map(|ip| state.key_failures.attempt(ip)) {
        metrics::auth_failure(AuthFailure::Throttled);
        return Err(ApiError::too_many_attempts(wait.as_secs().max(1)));
    }
    let presented = match (&req.totp, &req.recovery_code) {
        (Some(code), _) => users::Presented::Code(code),
        (None, Some(code)) => users::Presented::Recovery(code),
        (None, None) => users::Presented::Nothing,
    };
    let creds = Credentials {
        email: &req.email,
        password: &req.password,
        tenant: req.tenant.as_deref(),
        presented,
    };
    let signed_in = users::login(&state.services, creds, ip).await;
    if let Some(ip) = ip
        && !signed_in.as_ref().is_err_and(LoginError::is_failure)
    {
        state.key_failures.release(ip);
    }
    let (user, session) = match signed_in {
        Ok(signed_in) => signed_in,
        Err(LoginError::Invalid) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong email address or password",
            ));
        }
        Err(LoginError::Locked(ms)) => {
            let seconds = u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1);
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "account_locked",
                format!("too many failed sign-ins; retry in {seconds} s"),
            );
            e.retry_after = Some(seconds);
            return Err(e);
        }
        Err(LoginError::SecondFactorRequired) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "totp_required",
                "this account has a second factor: send `totp` (or `recovery_code`)",
            ));
        }
        Err(LoginError::InvalidSecondFactor) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_totp",
                "wrong or already used code",
            ));
        }
        Err(LoginError::AddressNotAllowed) => return Err(address_not_allowed()),
        Err(LoginError::Disabled) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "this account is disabled",
            ));
        }
        Err(LoginError::Tenant(e)) => return Err(e.into()),
        Err(LoginError::Service(e)) => return Err(ApiError::unavailable(&e)),
    };
    let actor = Actor {
        id: format!("user:{}", user.id),
        ip: ip.map(|ip| ip.to_string()),
    };
    audit::record(
        &state.services,
        &actor,
        Some(&user.tenant_id),
        "user.login",
        Some(user.id.clone()),
    )
    .await?;
    let body = json!({
        "user": user_json(&state, &user).await?,
        "csrf_token": session.csrf_token,
        "expires_at": view::time(session.expires_at),
    });
    let mut response = (StatusCode::OK, Json(body)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&session.token, users::SESSION_MS / 1000),
    );
    Ok(response)
}

/// `GET /v1/auth/session`: the signed-in user and when the session ends.
pub async fn show(
    State(state): State<AppState>,
    me: SessionUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({
        "user": user_json(&state, &me.user).await?,
        "tenant_id": me.user.tenant_id,
        "expires_at": view::time(me.session.expires_at),
    })))
}

/// `GET /v1/auth/sessions`: the user's live sessions, newest first; `current` marks
/// the one making the request. A session's `id` is the hash of its token (the token
/// itself is never shown).
pub async fn sessions(
    State(state): State<AppState>,
    me: SessionUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let list = users::live_sessions(&state.services, &me.user).await?;
    Ok(Json(json!({
        "sessions": list.iter().map(|s| json!({
            "id": hex(&s.id_hash),
            "created_at": view::time(s.created_at),
            "expires_at": view::time(s.expires_at),
            "current": s.id_hash == me.session.id_hash,
        })).collect::<Vec<_>>(),
    })))
}

/// `DELETE /v1/auth/sessions/{id}`: ends one of the user's own sessions (204); 404
/// for an id that is not one of their live sessions.
pub async fn end_session(
    State(state): State<AppState>,
    me: SessionUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    let id_hash = (id.len() == 64)
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
        .ok_or_else(|| ApiError::not_found("session"))?;
    if !users::end_own_session(&state.services, &me.user, id_hash).await? {
        return Err(ApiError::not_found("session"));
    }
    me.audit(&state, "user.session_end").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/password`: the signed-in user changes their own password, given the
/// current one (204; `422 wrong_password` otherwise). Every session of the user ends,
/// this one too: they sign in again with the new password.
pub async fn change_password(
    State(state): State<AppState>,
    me: SessionUser,
    ApiJson(req): ApiJson<OwnPassword>,
) -> Result<StatusCode, ApiError> {
    me.audit(&state, "user.password_change").await?;
    let changed = users::change_own_password(
        &state.services,
        me.user,
        &req.current_password,
        &req.password,
    )
    .await
    .map_err(crate::users::user_error)?;
    if !changed {
        return Err(ApiError::invalid(
            "wrong_password",
            "current_password",
            "the current password is wrong",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/logout`: ends the session (204) and clears the cookie.
pub async fn logout(State(state): State<AppState>, me: SessionUser) -> Result<Response, ApiError> {
    users::logout(&state.services, &me.token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(response)
}

/// Stores the user's new second factor (`None`: removes it) unless it changed since
/// the request read it: `409 totp_changed` then (another session's code, or an admin's
/// removal, came first and stands).
async fn store_factor(
    state: &AppState,
    user: UserRecord,
    factor: Option<&SecondFactor>,
) -> Result<(), ApiError> {
    users::set_second_factor(&state.services, user, factor)
        .await?
        .map(drop)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "totp_changed",
                "the second factor was changed meanwhile; start again",
            )
        })
}

/// `POST /v1/auth/totp`: starts enrolment in a second factor: the secret, its
/// `otpauth://` URI and the URI as a QR code (SVG). Confirm with a first code.
pub async fn totp_enrol(
    State(state): State<AppState>,
    me: SessionUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let current = users::second_factor(&state.services, &me.user).await?;
    if current.is_some_and(|f| f.confirmed) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "totp_enabled",
            "a second factor is already set up; remove it first",
        ));
    }
    let factor = SecondFactor::generate();
    let email = users::email_of(&state.services, &me.user).await?;
    let uri = factor.uri(&email);
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map(|q| {
            q.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .build()
        })
        .map_err(|e| ApiError::unavailable(&e))?;
    store_factor(&state, me.user, Some(&factor)).await?;
    Ok(Json(json!({
        "secret": factor.secret_base32(),
        "otpauth_uri": uri,
        "qr_svg": qr,
    })))
}

/// `POST /v1/auth/totp/confirm`: the first code turns the second factor on; answers
/// the recovery codes (shown once).
pub async fn totp_confirm(
    State(state): State<AppState>,
    me: SessionUser,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pending = users::second_factor(&state.services, &me.user)
        .await?
        .filter(|f| !f.confirmed);
    let Some(mut factor) = pending else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "totp_not_pending",
            "start with POST /v1/auth/totp",
        ));
    };
    if !factor.accept_code(&req.totp, postwerk_services::context::now_ms() / 1000) {
        return Err(ApiError::invalid("invalid_totp", "totp", "wrong code"));
    }
    factor.confirmed = true;
    let codes = factor.new_recovery_codes();
    me.audit(&state, "user.totp_enable").await?;
    store_factor(&state, me.user, Some(&factor)).await?;
    Ok(Json(json!({"recovery_codes": codes})))
}

/// `DELETE /v1/auth/totp`: removes the second factor, given a current code (204).
pub async fn totp_remove(
    State(state): State<AppState>,
    me: SessionUser,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<StatusCode, ApiError> {
    let factor = users::second_factor(&state.services, &me.user).await?;
    let Some(mut factor) = factor.filter(|f| f.confirmed) else {
        return Err(ApiError::not_found("second factor"));
    };
    if !factor.accept_code(&req.totp, postwerk_services::context::now_ms() / 1000) {
        return Err(ApiError::invalid("invalid_totp", "totp", "wrong code"));
    }
    me.audit(&state, "user.totp_disable").await?;
    store_factor(&state, me.user, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl SessionUser {
    /// 403 `totp_enrolment_required` while the tenant requires a second factor that the
    /// user has not set up (the session may only be used to set it up).
    pub async fn check_second_factor(&self, state: &AppState) -> Result<(), ApiError> {
        if !self.require_totp {
            return Ok(());
        }
        let factor = users::second_factor(&state.services, &self.user).await?;
        if factor.is_some_and(|f| f.confirmed) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "totp_enrolment_required",
            "the tenant requires a second factor: set one up with POST /v1/auth/totp",
        ))
    }

    /// Writes an audit entry for the signed-in user about itself.
    async fn audit(&self, state: &AppState, action: &str) -> Result<(), ApiError> {
        let actor = Actor {
            id: format!("user:{}", self.user.id),
            ip: self.ip.map(|ip| ip.to_string()),
        };
        audit::record(
            &state.services,
            &actor,
            Some(&self.user.tenant_id),
            action,
            Some(self.user.id.clone()),
        )
        .await
        .map(drop)
        .map_err(ApiError::from)
    }
}
