//! `/u/{token}`: the unsubscribe link on the public link host, both the RFC 8058
//! one-click endpoint and the person's preference centre. No API key: the signed
//! token is the authority.
//!
//! - `GET` (a person following the link) shows the preference centre (see
//!   [`centre`]): it names the sender and the list the message went to, and offers,
//!   each as its own form, leaving that list, stopping all marketing mail and
//!   withdrawing each purpose the person consented to, in the message's language or
//!   the browser's ([`i18n`]). It changes nothing: link scanners that prefetch URLs
//!   must not unsubscribe anyone.
//! - `POST` with a form field `choice` (`list`, `marketing`, `purpose:<name>`) carries
//!   out that choice and confirms it in the same language.
//! - Any other `POST` (what mailbox providers send, body `List-Unsubscribe=One-Click`)
//!   unsubscribes from the message's stream at once and answers a short page.
//! - A malformed or forged token gets `404` and never a redirect.
//!
//! The pages never show the recipient's address: the link may have been forwarded.

pub mod centre;
pub mod i18n;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postwerk_mta::unsubscribe;
use postwerk_privacy::contacts::ConsentEvidence;

use crate::AppState;
use crate::link_page::{clicker, escape, html, not_found};
use centre::{Choice, Preferences};
use i18n::{Lang, Strings, fill};

/// `GET /u/{token}`: the preference centre.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if !plausible(&token) {
        return not_found();
    }
    match Preferences::open(&state.services, &token).await {
        Ok(Some(p)) => preferences_page(&p, language(Some(&p), &headers), &token),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "a preference centre could not be opened");
            retry_page(language(None, &headers))
        }
    }
}

/// `POST /u/{token}`: a choice of the preference centre, or a one-click unsubscribe.
pub async fn post(
    State(state): State<AppState>,
    parts: Parts,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    if !plausible(&token) {
        return not_found();
    }
    // Read whatever the content type: RFC 8058 fixes the body, not its label.
    let choice = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "choice")
        .map(|(_, value)| value.into_owned());
    match choice {
        Some(choice) => choose(&state, &parts, &token, &choice).await,
        None => one_click(&state, &token).await,
    }
}

/// RFC 8058 one-click: suppresses the address for the message's stream.
async fn one_click(state: &AppState, token: &str) -> Response {
    match unsubscribe::unsubscribe(&state.services, token, "one-click").await {
        Ok(Some(_)) => html(
            StatusCode::OK,
            "en",
            "Unsubscribed",
            "<p>You are unsubscribed and will not receive these emails any more.</p>",
        ),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe could not be recorded");
            retry_page(Lang::En)
        }
    }
}

/// Carries out a preference centre choice; one the page does not offer (any more)
/// leads back to the page.
async fn choose(state: &AppState, parts: &Parts, token: &str, value: &str) -> Response {
    let services = &state.services;
    let p = match Preferences::open(services, token).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "a preference centre could not be opened");
            return retry_page(language(None, &parts.headers));
        }
    };
    let lang = language(Some(&p), &parts.headers);
    let Some(choice) = Choice::parse(value) else {
        return back_to(token);
    };
    let (ip, user_agent) = clicker(parts, state);
    let evidence = ConsentEvidence {
        ip,
        user_agent,
        ..ConsentEvidence::default()
    };
    match p.apply(services, &choice, evidence).await {
        Ok(true) => done_page(&p, lang, token, &choice),
        Ok(false) => back_to(token),
        Err(e) => {
            tracing::error!(error = %e, "a preference centre choice could not be recorded");
            retry_page(lang)
        }
    }
}

/// The language of a page: the message's, else the browser's, else English.
fn language(p: Option<&Preferences>, headers: &HeaderMap) -> Lang {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::choose(p.and_then(|p| p.language.as_deref()), accept)
}

/// The page with one form per choice.
fn preferences_page(p: &Preferences, lang: Lang, token: &str) -> Response {
    let s = lang.strings();
    let sender = escape(&p.sender);
    let intro = match &p.list {
        Some(list) => fill(
            s.intro_list,
            &[("sender", &sender), ("list", &escape(&list.name))],
        ),
        None => fill(s.intro, &[("sender", &sender)]),
    };
    let forms: String = p
        .choices()
        .iter()
        .map(|choice| {
            format!(
                "<form method=\"post\" action=\"/u/{}\">\
                 <input type=\"hidden\" name=\"choice\" value=\"{}\">\
                 <button type=\"submit\">{}</button></form>",
                escape(token),
                escape(&choice.value()),
                label(s, p, choice)
            )
        })
        .collect();
    html(
        StatusCode::OK,
        lang.code(),
        s.title,
        &format!("<p>{intro}</p>{forms}"),
    )
}

/// A choice's button, escaped.
fn label(s: &Strings, p: &Preferences, choice: &Choice) -> String {
    match choice {
        Choice::List => {
            let name = p.list.as_ref().map(|l| escape(&l.name)).unwrap_or_default();
            fill(s.leave_list, &[("list", &name)])
        }
        Choice::Marketing => s.stop_marketing.to_string(),
        Choice::Purpose(purpose) => fill(s.withdraw, &[("purpose", &escape(purpose))]),
    }
}

/// The page that confirms what a choice did, with a link back.
fn done_page(p: &Preferences, lang: Lang, token: &str, choice: &Choice) -> Response {
    let s = lang.strings();
    let text = match choice {
        Choice::List => {
            let name = p.list.as_ref().map(|l| escape(&l.name)).unwrap_or_default();
            fill(s.left_list, &[("list", &name)])
        }
        Choice::Marketing => fill(s.marketing_stopped, &[("sender", &escape(&p.sender))]),
        Choice::Purpose(purpose) => fill(s.withdrawn, &[("purpose", &escape(purpose))]),
    };
    html(
        StatusCode::OK,
        lang.code(),
        s.done_title,
        &format!(
            "<p>{text}</p><p><a href=\"/u/{}\">{}</a></p>",
            escape(token),
            s.back
        ),
    )
}

/// `503` with a request to try again.
fn retry_page(lang: Lang) -> Response {
    let s = lang.strings();
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        lang.code(),
        s.retry_title,
        &format!("<p>{}</p>", s.retry),
    )
}

/// `303` back to the preference centre (for a choice it does not offer).
fn back_to(token: &str) -> Response {
    Redirect::to(&format!("/u/{token}")).into_response()
}

/// Cheap shape check before any lookup.
fn plausible(token: &str) -> bool {
    token.len() < 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}
