//! `/ui/account`: the signed-in user's own account: password, language, second factor
//! (enrolment with a QR code and recovery codes, removal), and their sessions.

use askama::Template;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::i18n::LANG_COOKIE;
use crate::page::{Chrome, Empty, Outcome, PageError, Posted, Visit, done, render};

/// A second factor being set up: the QR code and the secret to type instead.
pub struct Enrolment {
    /// The `otpauth://` URI as an SVG QR code, as a `data:` URL.
    pub qr: String,
    /// The secret, base32.
    pub secret: String,
}

/// A session as the account page lists it.
#[derive(Deserialize)]
pub struct Session {
    /// The hash of its token.
    pub id: String,
    /// Opened.
    pub created_at: String,
    /// Ends.
    pub expires_at: String,
    /// The one showing this page.
    pub current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    c: Chrome,
    email: String,
    second_factor: bool,
    enrolment: Option<Enrolment>,
    recovery_codes: Vec<String>,
    sessions: Vec<Session>,
    error: Option<String>,
}

/// What the account page shows besides the usual.
#[derive(Default)]
struct Extra {
    enrolment: Option<Enrolment>,
    recovery_codes: Vec<String>,
    error: Option<String>,
}

async fn show(visit: Visit, extra: Extra) -> Result<Response, PageError> {
    let fail = |f| PageError::api(visit.lang, f);
    let session: Value = visit.api.get("/v1/auth/session").await.map_err(fail)?;
    #[derive(Deserialize)]
    struct Sessions {
        sessions: Vec<Session>,
    }
    let sessions: Sessions = visit.api.get("/v1/auth/sessions").await.map_err(fail)?;
    let second_factor = visit.me.user.totp_enc.is_some() && extra.enrolment.is_none();
    let page = AccountPage {
        c: visit.chrome("account.title", "/ui/account"),
        email: session["user"]["email"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        second_factor,
        enrolment: extra.enrolment,
        recovery_codes: extra.recovery_codes,
        sessions: sessions.sessions,
        error: extra.error,
    };
    Ok(render(&page))
}

/// The account page with `message` (the API's, or the catalogue's) as the error.
async fn refused(visit: Visit, message: String) -> Result<Response, PageError> {
    let extra = Extra {
        error: Some(message),
        ..Extra::default()
    };
    show(visit, extra).await
}

/// `GET /ui/account`.
pub async fn page(visit: Visit) -> Result<Response, PageError> {
    show(visit, Extra::default()).await
}

/// A new password, with the current one.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /ui/account/password`: sets a new password given the current one; every
/// session ends, so the user signs in again.
pub async fn password(Posted(visit, form): Posted<PasswordForm>) -> Result<Response, PageError> {
    if form.password != form.confirm {
        let error = visit
            .lang
            .words()
            .get("account.password_mismatch")
            .to_string();
        return refused(visit, error).await;
    }
    let body = json!({"current_password": form.current, "password": form.password});
    match visit
        .act::<Value>(Method::POST, "/v1/auth/password", Some(body))
        .await?
    {
        Outcome::Done(_) => Ok(done("/ui/login", "password_changed")),
        Outcome::Refused(message) => refused(visit, message).await,
    }
}

/// The language chosen.
#[derive(Deserialize)]
pub struct LanguageForm {
    #[serde(default)]
    lang: String,
}

/// `POST /ui/account/language`: remembers the choice in a cookie.
pub async fn language(Posted(_visit, form): Posted<LanguageForm>) -> Response {
    let tag = crate::i18n::Lang::from_tag(&form.lang).map_or("en", |l| l.tag());
    let mut response = done("/ui/account", "language_changed");
    let cookie =
        format!("{LANG_COOKIE}={tag}; Path=/ui; Secure; SameSite=Strict; Max-Age=31536000");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /ui/account/totp`: starts setting up a second factor.
pub async fn totp_enrol(Posted(visit, Empty {}): Posted<Empty>) -> Result<Response, PageError> {
    match visit
        .act::<Value>(Method::POST, "/v1/auth/totp", None)
        .await?
    {
        Outcome::Done(started) => {
            let svg = started["qr_svg"].as_str().unwrap_or_default();
            let enrolment = Enrolment {
                qr: format!(
                    "data:image/svg+xml;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(svg)
                ),
                secret: started["secret"].as_str().unwrap_or_default().to_string(),
            };
            let extra = Extra {
                enrolment: Some(enrolment),
                ..Extra::default()
            };
            show(visit, extra).await
        }
        Outcome::Refused(message) => refused(visit, message).await,
    }
}

/// A code from the authenticator app.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `POST /ui/account/totp/confirm`: the first code turns the factor on; shows the
/// recovery codes once.
pub async fn totp_confirm(Posted(visit, form): Posted<CodeForm>) -> Result<Response, PageError> {
    let body = json!({"totp": form.code.trim()});
    match visit
        .act::<Value>(Method::POST, "/v1/auth/totp/confirm", Some(body))
        .await?
    {
        Outcome::Done(confirmed) => {
            let recovery_codes = confirmed["recovery_codes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let extra = Extra {
                recovery_codes,
                ..Extra::default()
            };
            show(visit, extra).await
        }
        Outcome::Refused(message) => refused(visit, message).await,
    }
}

/// `POST /ui/account/totp/remove`: removes the second factor, given a current code.
pub async fn totp_remove(Posted(visit, form): Posted<CodeForm>) -> Result<Response, PageError> {
    let body = json!({"totp": form.code.trim()});
    match visit
        .act::<Value>(Method::DELETE, "/v1/auth/totp", Some(body))
        .await?
    {
        Outcome::Done(_) => Ok(done("/ui/account", "totp_removed")),
        Outcome::Refused(message) => refused(visit, message).await,
    }
}

/// The session to end.
#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    id: String,
}

/// `POST /ui/account/sessions/end`: ends one of the user's sessions (one that ended
/// meanwhile counts as ended).
pub async fn end_sessions(Posted(visit, form): Posted<EndForm>) -> Result<Response, PageError> {
    let path = format!("/v1/auth/sessions/{}", crate::api::path_segment(&form.id));
    match visit.api.send::<Value>(Method::DELETE, &path, None).await {
        Ok(_)
        | Err(crate::api::Failure {
            status: StatusCode::NOT_FOUND,
            ..
        }) => Ok(done("/ui/account", "session_ended")),
        Err(f) => Err(PageError::api(visit.lang, f)),
    }
}
