//! `/u/{token}`: the one-click unsubscribe endpoint (RFC 8058) on the public link
//! host. No API key: the signed token is the authority.
//!
//! - `POST` (what mailbox providers send, body `List-Unsubscribe=One-Click`)
//!   unsubscribes at once and answers a short page.
//! - `GET` (a person following the link) only shows a confirmation page whose button
//!   posts: link scanners that prefetch URLs must not unsubscribe anyone.
//! - A malformed or forged token gets `404` and never a redirect.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use postwerk_mta::unsubscribe;

use crate::AppState;

/// `GET /u/{token}`: the confirmation page.
pub async fn page(Path(token): Path<String>) -> Response {
    if !plausible(&token) {
        return not_found();
    }
    html(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop receiving these emails?</p>\
             <form method=\"post\" action=\"/u/{}\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            escape(&token)
        ),
    )
}

/// `POST /u/{token}`: unsubscribes.
pub async fn one_click(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    if !plausible(&token) {
        return not_found();
    }
    match unsubscribe::unsubscribe(&state.services, &token, "one-click").await {
        Ok(Some(_)) => html(
            StatusCode::OK,
            "Unsubscribed",
            "<p>You are unsubscribed and will not receive these emails any more.</p>",
        ),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe could not be recorded");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "<p>Your request could not be recorded just now. Please try again in a minute.</p>",
            )
        }
    }
}

/// Cheap shape check before any lookup.
fn plausible(token: &str) -> bool {
    token.len() < 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

pub(crate) fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "Not found",
        "<p>This link is not valid.</p>",
    )
}

pub(crate) fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\">\
         <h1>{title}</h1>{body}</body></html>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response()
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
