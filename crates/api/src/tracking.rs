//! `/t/o/{token}` (the open pixel) and `/t/c/{token}/{tag}/{target}` (tracked links)
//! on the public link host. No API key: the signed token is the authority, checked
//! without a lookup, so these answer fast; the hit is recorded in the background in
//! batches (see [`postwerk_mta::tracking::hits`]). A malformed or forged token or
//! target gets `404`, never a redirect. A click also needs the token's recipient to
//! belong to the message the target was sent in (one read): else `404`, so a target
//! from one tenant's mail cannot put clicks into another tenant's events.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postwerk_mta::tracking::hits::{Hit, Kind};
use postwerk_mta::tracking::{self, TargetOf, links};
use postwerk_services::context::now_ms;
use postwerk_store::prelude::*;

use crate::AppState;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /t/o/{token}`: the pixel.
pub async fn open(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let Some(recipient_id) = tracking::verify(state.services.keys.master(), &token) else {
        return not_found();
    };
    record(&state, recipient_id, Kind::Open, peer, &method, &headers);
    (
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, max-age=0"),
        ],
        PIXEL,
    )
        .into_response()
}

/// `GET /t/c/{token}/{tag}/{target}`: redirects to the authenticated target, and
/// records the click if the token's recipient got the message the target was sent
/// in. A recipient no longer stored (retention) still gets the redirect, unrecorded;
/// so do links of mail composed before targets were bound to their message.
pub async fn click(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    Path((token, tag, target)): Path<(String, String, String)>,
) -> Response {
    let master = state.services.keys.master();
    let (Some(recipient_id), Some((url, of))) = (
        tracking::verify(master, &token),
        links::target(master, &tag, &target),
    ) else {
        return not_found();
    };
    if let TargetOf::Message(message_id) = of {
        match state.services.store.find_recipient(&recipient_id).await {
            Ok(Some(r)) if r.message_id != message_id => return not_found(),
            Ok(Some(_)) => record(
                &state,
                recipient_id,
                Kind::Click(url.clone()),
                peer,
                &method,
                &headers,
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "a click was not recorded"),
        }
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url.as_str()),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
        .into_response()
}

fn record(
    state: &AppState,
    recipient_id: String,
    kind: Kind,
    peer: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
) {
    let hit = Hit {
        recipient_id,
        kind,
        at: now_ms(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ip: Some(crate::client::address(peer.ip(), headers, &state.proxies)),
        head: method == Method::HEAD,
    };
    if !state.hits.record(hit) {
        tracing::warn!("tracking queue full: a hit was not recorded");
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        "not found",
    )
        .into_response()
}
