//! `/ui/login` and `/ui/logout`: sign-in through `POST /v1/auth/login` (the same
//! sessions, lockout, address allowlists, second factor and tenant rules), with a
//! sign-in form protected by its own double-submit token, as no session exists yet.

use askama::Template;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Console;
use crate::api::Api;
use crate::i18n::{Catalogue, Lang};
use crate::page::{self, CSRF_COOKIE, Empty, PageError, Posted, render};

/// The sign-in form's token cookie (set with the form, compared with its copy).
const LOGIN_COOKIE: &str = "pw_login";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    lang: Lang,
    words: &'static Catalogue,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    postwerk_core::hex::encode(&bytes)
}

/// A cookie for the console: `HttpOnly`, `Secure`, `SameSite=Strict`.
fn cookie(name: &str, value: &str, path: &str, max_age_s: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_s}"
    ))
    .expect("tokens are valid header values")
}

/// The sign-in page (status `status`, with `error` or `notice` shown), with a fresh
/// form token.
fn login_page(
    lang: Lang,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let token = random_token();
    let page = LoginPage {
        lang,
        words: lang.words(),
        csrf: &token,
        email,
        error,
        notice,
    };
    let mut response = (status, render(&page)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(LOGIN_COOKIE, &token, "/ui/login", 3600),
    );
    response
}

/// `GET /ui/login` (`?done=password_changed` after a password change: says so).
pub async fn page(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let lang = Lang::of(&headers);
    let words = lang.words();
    let changed = uri.query() == Some("done=password_changed");
    let notice = if !keeps_secure_cookies(&headers) {
        Some(words.get("login.needs_https"))
    } else {
        changed.then(|| words.get("done.password_changed"))
    };
    login_page(lang, StatusCode::OK, "", None, notice)
}

/// Whether a browser keeps the `Secure` session cookie for this request: over HTTPS (a
/// TLS proxy says `X-Forwarded-Proto: https` or `Forwarded: proto=https`), or on a
/// loopback host, which browsers treat as secure. Otherwise signing in would loop back
/// to this page without a word, so the page says why.
fn keeps_secure_cookies(headers: &HeaderMap) -> bool {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    if text("x-forwarded-proto") == "https" || text("forwarded").contains("proto=https") {
        return true;
    }
    let host = text("host");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// A TOTP code (digits) or a recovery code.
    #[serde(default)]
    code: String,
}

/// `POST /ui/login`: signs in and goes to the overview, or shows the form again with
/// what went wrong.
pub async fn submit(
    State(console): State<Console>,
    parts: Parts,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&parts.headers);
    let words = lang.words();
    let expected = page::cookie(&parts.headers, LOGIN_COOKIE);
    if form.csrf.is_empty() || expected != Some(form.csrf.as_str()) {
        let error = words.get("login.expired");
        return login_page(lang, StatusCode::FORBIDDEN, &form.email, Some(error), None);
    }
    let code = form.code.trim();
    let mut body = json!({"email": form.email, "password": form.password});
    if !code.is_empty() {
        let key = if code.bytes().all(|b| b.is_ascii_digit()) {
            "totp"
        } else {
            "recovery_code"
        };
        body[key] = Value::from(code);
    }
    let api = Api::new(&console.api, &parts, None);
    match api.call(Method::POST, "/v1/auth/login", Some(body)).await {
        Ok(answer) => {
            let Ok(signed_in) = answer.json::<Value>() else {
                return PageError::status(lang, StatusCode::BAD_GATEWAY, "error.unavailable")
                    .into_response();
            };
            let csrf = signed_in["csrf_token"].as_str().unwrap_or_default();
            let mut response = Redirect::to("/ui/").into_response();
            let h = response.headers_mut();
            for value in answer.headers.get_all(header::SET_COOKIE) {
                h.append(header::SET_COOKIE, value.clone());
            }
            let max_age = postwerk_accounts::users::SESSION_MS / 1000;
            h.append(
                header::SET_COOKIE,
                cookie(CSRF_COOKIE, csrf, "/ui", max_age),
            );
            h.append(header::SET_COOKIE, cookie(LOGIN_COOKIE, "", "/ui/login", 0));
            response
        }
        Err(failure) => {
            let key = match failure.code.as_str() {
                "totp_required" => "login.code_required",
                "invalid_totp" => "login.code_wrong",
                "account_locked" | "too_many_attempts" | "rate_limited" => "login.locked",
                "account_disabled" => "login.disabled",
                "login_address_not_allowed" => "login.address",
                "tenant_cancelled" => "login.tenant_cancelled",
                _ if failure.status.is_server_error() => "error.unavailable",
                _ => "login.invalid",
            };
            login_page(
                lang,
                failure.status,
                &form.email,
                Some(words.get(key)),
                None,
            )
        }
    }
}

/// `POST /ui/logout`: ends the session and clears the console's cookies.
pub async fn logout(Posted(visit, Empty {}): Posted<Empty>) -> Response {
    // A session that already ended is signed out all the same.
    let _ = visit.api.call(Method::POST, "/v1/auth/logout", None).await;
    let mut response = Redirect::to("/ui/login").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookie(postwerk_api::session::COOKIE, "", "/", 0),
    );
    h.append(header::SET_COOKIE, cookie(CSRF_COOKIE, "", "/ui", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn secure_cookies_are_kept_over_https_and_on_loopback_only() {
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "127.0.0.2",
            "app.localhost",
        ] {
            assert!(keeps_secure_cookies(&headers(&[("host", host)])), "{host}");
        }
        assert!(!keeps_secure_cookies(&headers(&[(
            "host",
            "192.0.2.7:8080"
        )])));
        assert!(!keeps_secure_cookies(&headers(&[(
            "host",
            "mail.example.com"
        )])));
        let proxied = [("host", "mail.example.com"), ("x-forwarded-proto", "https")];
        assert!(keeps_secure_cookies(&headers(&proxied)));
        let forwarded = [
            ("host", "mail.example.com"),
            ("forwarded", "for=192.0.2.1;proto=https"),
        ];
        assert!(keeps_secure_cookies(&headers(&forwarded)));
    }
}
