//! `/c/{token}`: double opt-in confirmation links on the public link host. No API
//! key: the signed token is the authority.
//!
//! - `GET` (the person following the link) shows a page whose button posts: link
//!   scanners that prefetch URLs must not confirm anything.
//! - `POST` confirms: the pending consent becomes active, recorded with the time, the
//!   client's address and user agent.
//! - A malformed or forged token, or one with nothing pending, gets `404`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use postwerk_privacy::contacts::{self, Confirmation};

use crate::AppState;
use crate::link_page::{clicker, escape, html, not_found};

/// Cheap shape check before any lookup.
fn plausible(token: &str) -> bool {
    token.len() < 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `GET /c/{token}`: the confirmation page.
pub async fn page(Path(token): Path<String>) -> Response {
    if !plausible(&token) {
        return not_found();
    }
    html(
        StatusCode::OK,
        "en",
        "Confirm your subscription",
        &format!(
            "<p>Please confirm that you want to receive these emails.</p>\
             <form method=\"post\" action=\"/c/{}\"><button type=\"submit\">Confirm</button></form>",
            escape(&token)
        ),
    )
}

/// `POST /c/{token}`: confirms.
pub async fn confirm(
    State(state): State<AppState>,
    parts: Parts,
    Path(token): Path<String>,
) -> Response {
    if !plausible(&token) {
        return not_found();
    }
    let (ip, user_agent) = clicker(&parts, &state);
    match contacts::confirm(&state.services, &token, ip, user_agent).await {
        Ok(Confirmation::Confirmed | Confirmation::AlreadyActive) => html(
            StatusCode::OK,
            "en",
            "Confirmed",
            "<p>Thank you: your subscription is confirmed.</p>",
        ),
        Ok(Confirmation::Invalid) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "a consent confirmation could not be recorded");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                "en",
                "Please try again",
                "<p>Your confirmation could not be recorded just now. Please try again in a minute.</p>",
            )
        }
    }
}
