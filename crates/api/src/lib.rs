//! Postwerk's REST API (axum): sending, message status, events and domains, with
//! bearer-key authentication and one JSON error shape.
//!
//! Handlers never log request bodies or addresses; errors reach the wire only
//! through [`error::ApiError`].
//!
//! - [`error`]: `{"error": {"code", "message", "field"}}`, the `From` impls of
//!   internal failures, the JSON and query extractors, the cause-logging middleware.
//! - [`client`]: the client's address behind trusted reverse proxies.
//! - [`auth`]: API keys → caller, tenant and scopes.
//! - [`ratelimit`]: request limits per address, key and tenant; `RateLimit-*` headers.
//! - [`scopes`]: the scope each operation needs, read from the OpenAPI document.
//! - [`compose`]: request validation and MIME rendering.
//! - [`messages`]: `POST /v1/messages`, `/batch`, `/raw`; `GET /v1/messages/{id}`.
//! - [`events`]: `GET /v1/events`.
//! - [`domains`]: `POST/GET /v1/domains`.
//! - [`keys`]: `/v1/keys`: list, create, rotate, revoke API keys.
//! - [`session`]: `/v1/auth/…`: sign-in, the session cookie and CSRF token, logout.
//! - [`users`]: `/v1/users`: people with roles; disabling, deleting, forced logout,
//!   passwords.
//! - [`subaccounts`]: `/v1/subaccounts`; acting on one with `X-Postwerk-Subaccount`.
//! - [`suppressions`]: `GET/POST /v1/suppressions`, `DELETE /v1/suppressions/{email}`,
//!   `GET /v1/suppressions/export`, `POST /v1/suppressions/import`.
//! - [`suppressions_csv`]: the suppression list as CSV, export and import (API and CLI).
//! - [`privacy`]: contacts, consents, data-subject export and erasure, the audit log.
//! - [`export`]: the data-subject export document (API and CLI).
//! - [`audience`]: `/v1/lists…`, the contact search and count, contact exports,
//!   `/v1/segments…`, `/v1/canaries…`.
//! - [`imports`]: `/v1/imports…`: CSV imports of contacts behind the watchdog.
//! - [`templates`]: `/v1/templates…`: campaign templates, their versions, previews.
//! - [`broadcasts`]: `/v1/broadcasts…`: a template sent to lists and segments; states,
//!   tests, reports.
//! - [`expansion`]: broadcasts' recipients expanded and queued, resumably; the
//!   scheduler.
//! - [`requests`]: the register of data-subject requests.
//! - [`record`]: the record of processing activities (Art. 30).
//! - [`incidents`]: the breach register (Art. 33/34).
//! - [`tracking`]: `/t/o/…` open pixel and `/t/c/…` tracked links (no key).
//! - [`unsubscribe`]: `/u/{token}`: RFC 8058 one-click unsubscribe and the
//!   preference centre (no key).
//! - [`confirm`]: `/c/{token}`: double opt-in confirmation links (no key).
//! - [`link_page`]: the HTML shell of the `/u` and `/c` pages, with strict headers.
//! - [`webhooks`]: `/v1/webhooks`: signed event posts, secret rotation, attempts, replay.
//! - [`listener`]: the HTTP listener's timeouts and connection caps.
//! - [`queue`]: `/v1/queue`: the tenant's waiting mail and operations on it.
//! - [`stats`]: `GET /v1/stats`: deliverability per hour or day.
//! - [`streams`]: `/v1/streams`: streams, their settings and pause state.
//! - [`view`]: sealed rows opened into JSON, request times and pagination.
//! - `strict` (private): strict JSON decoding of request bodies straight from bytes.

pub mod audience;
pub mod auth;
pub mod broadcasts;
pub mod client;
pub mod compose;
pub mod confirm;
pub mod domains;
pub mod error;
pub mod events;
pub mod expansion;
pub mod export;
pub mod imports;
pub mod incidents;
pub mod keys;
pub mod link_page;
pub mod listener;
pub mod messages;
pub mod privacy;
pub mod queue;
pub mod ratelimit;
pub mod record;
pub mod requests;
pub mod scopes;
pub mod session;
pub mod stats;
pub mod streams;
mod strict;
pub mod subaccounts;
pub mod suppressions;
pub mod suppressions_csv;
pub mod templates;
pub mod tracking;
pub mod unsubscribe;
pub mod users;
mod view;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use postwerk_accounts::guard::FailureGuard;
use postwerk_mta::engine::Engine;
use postwerk_services::context::Services;

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// Store, keys, config.
    pub services: Arc<Services>,
    /// The delivery engine (accepted mail is handed to it).
    pub engine: Arc<Engine>,
    /// Invalid API keys per client address (brute-force protection).
    pub key_failures: Arc<FailureGuard>,
    /// Opens and clicks on their way to the store.
    pub hits: postwerk_mta::tracking::hits::Recorder,
    /// `[http] trusted_proxies`, parsed.
    pub proxies: Arc<Vec<postwerk_core::config::Cidr>>,
}

/// The window of `[http] max_key_failures`: a client address that presented that many
/// invalid API keys within it gets `429` for the rest of it.
pub const KEY_FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

impl AppState {
    /// State over running services.
    pub fn new(services: Arc<Services>, engine: Arc<Engine>) -> Self {
        AppState {
            hits: postwerk_mta::tracking::hits::Recorder::start(services.clone()),
            proxies: Arc::new(
                services
                    .config
                    .http
                    .trusted_proxies
                    .iter()
                    .filter_map(|c| postwerk_core::config::Cidr::parse(c))
                    .collect(),
            ),
            key_failures: Arc::new(FailureGuard::new(
                services.config.http.max_key_failures,
                KEY_FAILURE_WINDOW,
            )),
            services,
            engine,
        }
    }
}

/// Most bytes of a request body on endpoints that take a small JSON object (sign-in,
/// users, keys, streams, webhooks, …): a body over it is refused (`413`) before it is
/// read into memory.
pub const SMALL_BODY_BYTES: usize = 16 * 1024;

/// Most bytes of a request body for contacts (attributes) and consents (a double
/// opt-in's confirmation message).
pub const CONTACT_BODY_BYTES: usize = 64 * 1024;

/// Most bytes of a request body for bulk list membership (up to
/// [`audience::MAX_BULK`] addresses), segments and templates (HTML parts).
pub const BULK_BODY_BYTES: usize = 2 << 20;

/// The body limit of the route a request matched (see [`limited`]).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// `routes` with request bodies limited to `bytes`: a body whose `Content-Length`
/// says more is refused before any of it is read, others as soon as they pass it.
fn limited(routes: Router<AppState>, bytes: usize) -> Router<AppState> {
    routes
        .layer(DefaultBodyLimit::max(bytes))
        .layer(axum::Extension(BodyLimit(bytes)))
}

/// The API router.
pub fn router(state: AppState) -> Router {
    // Bodies up to `[http] max_body_bytes`: mail, and CSV imports (read as they arrive).
    let sends = Router::new()
        .route("/v1/messages", post(messages::send).get(messages::list))
        .route("/v1/messages/batch", post(messages::send_batch))
        .route("/v1/messages/raw", post(messages::send_raw))
        .route("/v1/suppressions/import", post(suppressions::import));
    let contacts = Router::new()
        .route(
            "/v1/contacts/{email}",
            axum::routing::put(privacy::put_contact)
                .get(privacy::get_contact)
                .delete(privacy::delete_contact),
        )
        .route("/v1/contacts/{email}/consents", post(privacy::post_consent));
    let small = Router::new()
        .route("/", get(root))
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/u/{token}", get(unsubscribe::page).post(unsubscribe::post))
        .route("/c/{token}", get(confirm::page).post(confirm::confirm))
        .route("/t/o/{token}", get(tracking::open))
        .route("/t/c/{token}/{tag}/{target}", get(tracking::click))
        .route(
            "/v1/messages/{id}",
            get(messages::get_message).delete(messages::cancel),
        )
        .route("/v1/events", get(events::list_events))
        .route("/v1/domains", post(domains::create).get(domains::list))
        .route("/v1/domains/{domain}", get(domains::show))
        .route("/v1/domains/{domain}/check", get(domains::check))
        .route(
            "/v1/suppressions",
            get(suppressions::list).post(suppressions::add),
        )
        .route("/v1/suppressions/export", get(suppressions::export))
        .route(
            "/v1/suppressions/{email}",
            axum::routing::delete(suppressions::remove),
        )
        .route(
            "/v1/contacts/{email}/consents/{purpose}",
            axum::routing::delete(privacy::withdraw_consent),
        )
        .route("/v1/subjects/{email}/export", get(privacy::export))
        .route(
            "/v1/subjects/{email}/restrict",
            post(privacy::restrict).delete(privacy::lift_restriction),
        )
        .route(
            "/v1/subjects/{email}",
            axum::routing::delete(privacy::erase),
        )
        .route("/v1/audit", get(privacy::list_audit))
        .route("/v1/audit/verify", get(privacy::verify_audit))
        .route("/v1/auth/login", post(session::login))
        .route("/v1/auth/session", get(session::show))
        .route("/v1/auth/logout", post(session::logout))
        .route("/v1/auth/sessions", get(session::sessions))
        .route("/v1/auth/password", post(session::change_password))
        .route(
            "/v1/auth/sessions/{id}",
            axum::routing::delete(session::end_session),
        )
        .route(
            "/v1/auth/totp",
            post(session::totp_enrol).delete(session::totp_remove),
        )
        .route("/v1/auth/totp/confirm", post(session::totp_confirm))
        .route(
            "/v1/subaccounts",
            get(subaccounts::list).post(subaccounts::create),
        )
        .route(
            "/v1/subaccounts/{id}",
            axum::routing::delete(subaccounts::cancel),
        )
        .route(
            "/v1/subaccounts/{id}/reactivate",
            post(subaccounts::reactivate),
        )
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/{id}", get(users::show).delete(users::delete))
        .route("/v1/users/{id}/disable", post(users::disable))
        .route("/v1/users/{id}/logout", post(users::force_logout))
        .route("/v1/users/{id}/password", post(users::set_password))
        .route("/v1/users/{id}/lists", axum::routing::put(users::set_lists))
        .route(
            "/v1/users/{id}/totp",
            axum::routing::delete(users::remove_totp),
        )
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route("/v1/keys/{id}", axum::routing::delete(keys::revoke))
        .route("/v1/keys/{id}/rotate", post(keys::rotate))
        .route(
            "/v1/privacy/requests",
            get(requests::list).post(requests::create),
        )
        .route("/v1/privacy/requests/{id}/close", post(requests::close))
        .route("/v1/privacy/record", get(record::get))
        .route(
            "/v1/privacy/incidents",
            get(incidents::list).post(incidents::create),
        )
        .route("/v1/privacy/incidents/{id}/{step}", post(incidents::step))
        .route("/v1/stats", get(stats::stats))
        .route("/v1/queue", get(queue::show))
        .route("/v1/queue/{action}", post(queue::act))
        .route("/v1/streams", get(streams::list).post(streams::create))
        .route(
            "/v1/streams/{name}",
            get(streams::show).patch(streams::update),
        )
        .route("/v1/streams/{name}/pause", post(streams::pause))
        .route("/v1/streams/{name}/resume", post(streams::resume))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::show)
                .patch(webhooks::update)
                .delete(webhooks::remove),
        )
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/v1/webhooks/{id}/replay", post(webhooks::replay))
        .route("/v1/webhooks/{id}/attempts", get(webhooks::attempts));
    let audience = Router::new()
        .route(
            "/v1/lists",
            get(audience::list_lists).post(audience::create_list),
        )
        .route(
            "/v1/lists/{id}",
            get(audience::show_list)
                .patch(audience::update_list)
                .delete(audience::delete_list),
        )
        .route(
            "/v1/lists/{id}/members",
            post(audience::add_members).delete(audience::remove_members),
        )
        .route("/v1/contacts", get(audience::list_contacts))
        .route("/v1/contacts/count", get(audience::count_contacts))
        .route("/v1/contacts/export", get(audience::export_contacts))
        .route(
            "/v1/segments",
            get(audience::list_segments).post(audience::create_segment),
        )
        .route("/v1/segments/preview", post(audience::preview_segment))
        .route(
            "/v1/segments/{id}",
            get(audience::show_segment)
                .patch(audience::update_segment)
                .delete(audience::delete_segment),
        )
        .route(
            "/v1/templates",
            get(templates::list_templates).post(templates::create_template),
        )
        .route(
            "/v1/templates/{id}",
            get(templates::show_template)
                .patch(templates::update_template)
                .delete(templates::delete_template),
        )
        .route(
            "/v1/templates/{id}/render",
            post(templates::render_template),
        )
        .route(
            "/v1/broadcasts",
            get(broadcasts::list).post(broadcasts::create),
        )
        .route(
            "/v1/broadcasts/{id}",
            get(broadcasts::show)
                .patch(broadcasts::update)
                .delete(broadcasts::delete),
        )
        .route("/v1/broadcasts/{id}/send", post(broadcasts::send))
        .route("/v1/broadcasts/{id}/pause", post(broadcasts::pause))
        .route("/v1/broadcasts/{id}/resume", post(broadcasts::resume))
        .route("/v1/broadcasts/{id}/cancel", post(broadcasts::cancel))
        .route("/v1/broadcasts/{id}/test", post(broadcasts::test))
        .route("/v1/broadcasts/{id}/report", get(broadcasts::report))
        .route(
            "/v1/canaries",
            get(audience::list_canaries).post(audience::create_canary),
        )
        .route(
            "/v1/canaries/{address}",
            axum::routing::delete(audience::delete_canary),
        )
        .route("/v1/imports/{id}", get(imports::show))
        .route("/v1/imports/{id}/cancel", post(imports::cancel))
        .route("/v1/imports/{id}/approve", post(imports::approve))
        .route("/v1/imports/{id}/discard", post(imports::discard));
    // An import's body is read as a stream, its size checked against
    // `[imports] max_bytes` as it arrives.
    let uploads = Router::new()
        .route("/v1/imports", post(imports::create).get(imports::list))
        .layer(DefaultBodyLimit::disable());
    let limit = state.services.config.http.max_body_bytes;
    limited(small, SMALL_BODY_BYTES)
        .merge(limited(contacts, CONTACT_BODY_BYTES))
        .merge(limited(audience, BULK_BODY_BYTES))
        .merge(uploads)
        .merge(limited(sends, limit))
        .fallback(|| async { error::ApiError::not_found("endpoint") })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this endpoint",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit,
        ))
        .layer(axum::middleware::map_response(error::log_cause))
        .with_state(state)
}

/// Serves `app` (the API's [`router`], with whatever else shares the listener) on
/// `listener` until `shutdown` resolves, then drains requests, with the timeouts and
/// connection caps of `[http]` (see [`listener`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: &AppState,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = listener::Limits::new(&state.services.config.http, state.proxies.clone());
    listener::serve(listener, app, limits, shutdown).await
}

/// `GET /`: the service's health as JSON; a browser (`Accept: text/html`) is sent to
/// the console.
async fn root(
    state: axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let browser = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if browser {
        return axum::response::Redirect::to("/ui/").into_response();
    }
    health(state).await.into_response()
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "service": "postwerk",
        "version": env!("CARGO_PKG_VERSION"),
        "status": "ok",
        "store": state.services.store.backend_name(),
        "queue_ready": state.engine.ready_len(),
    }))
}

/// `GET /metrics`: Prometheus text (no authentication: it holds no personal data,
/// no tenant names and no tenant-chosen stream names, only figures per built-in
/// stream, `custom`, result and reason).
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<impl axum::response::IntoResponse, error::ApiError> {
    use postwerk_store::prelude::*;
    let backlog = state.services.store.backlog().await?;
    let now = postwerk_services::context::now_ms();
    // Per label (tenants' own streams fold into `custom`): the recipients waiting and
    // the oldest one's age.
    let mut by_label: std::collections::BTreeMap<&str, (u64, i64)> = Default::default();
    for s in &backlog.streams {
        let entry = by_label
            .entry(postwerk_core::metrics::stream_label(&s.stream))
            .or_insert((0, i64::MAX));
        entry.0 += s.recipients;
        entry.1 = entry.1.min(s.oldest_created_at);
    }
    let gauges = postwerk_core::metrics::Gauges {
        queue_depth: by_label
            .iter()
            .map(|(label, (n, _))| (label.to_string(), *n))
            .collect(),
        queue_oldest_seconds: by_label
            .iter()
            .map(|(label, (_, oldest))| (label.to_string(), (now - oldest).max(0) as f64 / 1000.0))
            .collect(),
        ready: state.engine.ready_len() as u64,
        webhook_backlog: backlog.webhook_deliveries,
    };
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        postwerk_core::metrics::render(&gauges),
    ))
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        scopes::OPENAPI,
    )
}
