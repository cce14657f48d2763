//! The pages of the public link host (`/u/…`, `/c/…`): one HTML shell with strict
//! headers, escaping, and the evidence a click leaves (address and user agent).
//!
//! The pages are plain HTML: no script, no style, no external asset. Their
//! Content-Security-Policy allows nothing but posting forms back to this host, so a
//! value that slipped through unescaped still could not run or load anything.

use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The pages' Content-Security-Policy: nothing may load, run or frame them; forms
/// post only to this host.
pub const CSP: &str =
    "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page in language `lang` (a BCP 47 tag, for `<html lang>`), its `title` also its
/// heading; `body` is HTML, escaped by the caller.
pub fn html(status: StatusCode, lang: &str, title: &str, body: &str) -> Response {
    let title = escape(title);
    let page = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>",
        lang = escape(lang),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        page,
    )
        .into_response()
}

/// `404` for a malformed or forged link (never a redirect).
pub fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "en",
        "Not found",
        "<p>This link is not valid.</p>",
    )
}

/// `s` safe in HTML text and in double-quoted attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Who followed a link, as consent evidence keeps it: the client's address (behind
/// trusted proxies) and its user agent (at most 512 characters).
pub fn clicker(parts: &Parts, state: &AppState) -> (Option<String>, Option<String>) {
    let ip =
        crate::auth::client_ip(&parts.extensions, &parts.headers, state).map(|ip| ip.to_string());
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect());
    (ip, user_agent)
}
