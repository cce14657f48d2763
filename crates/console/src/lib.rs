//! Postwerk's web console: the pages under `/ui/` for senders, operators and
//! data-protection officers, rendered on the server from templates compiled into the
//! binary, in English or German.
//!
//! The console holds no data logic of its own: each page reads and changes data
//! through the REST API, in-process, with the visitor's session ([`api`]), so the
//! API's scopes, tenant rules, limits and audit log hold for it unchanged. What the
//! visitor's scopes do not allow is not in the menu and is refused with a 403 page.
//!
//! - [`page`]: the visitor, the frame of every page, forms and their CSRF token,
//!   error pages.
//! - [`i18n`]: the catalogues and the choice of language.
//! - [`security`]: the headers every page carries (a strict CSP and the rest).
//! - [`login`]: sign-in, sign-out.
//! - One module per page: [`overview`], [`messages`], [`suppressions`],
//!   [`broadcasts`], [`domains`], [`streams`], [`webhooks`], [`keys`], [`users`],
//!   [`account`], [`privacy`].

pub mod account;
pub mod api;
pub mod broadcasts;
pub mod chart;
pub mod domains;
pub mod i18n;
pub mod keys;
pub mod login;
pub mod messages;
pub mod overview;
pub mod page;
pub mod privacy;
pub mod security;
pub mod streams;
pub mod suppressions;
pub mod users;
pub mod view;
pub mod webhooks;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use postwerk_api::AppState;

/// The console's state: the services behind the API, and the API router its pages
/// call.
#[derive(Clone)]
pub struct Console {
    /// Services, for resolving the visitor's session.
    pub app: AppState,
    /// The REST API, called in-process.
    pub api: Router,
    /// The latest DNS check of each domain, for the overview's alerts.
    pub dns: std::sync::Arc<domains::DnsChecks>,
}

/// The console's routes under `/ui/`, to merge with the API's router.
pub fn router(app: AppState, api: Router) -> Router {
    let console = Console {
        app,
        api,
        dns: Default::default(),
    };
    Router::new()
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/", get(overview::page))
        .route("/ui/login", get(login::page).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/messages", get(messages::page).post(messages::search))
        .route("/ui/messages/{id}", get(messages::show))
        .route(
            "/ui/suppressions",
            get(suppressions::page).post(suppressions::search),
        )
        .route("/ui/suppressions/add", post(suppressions::add))
        .route("/ui/suppressions/remove", post(suppressions::remove))
        .route("/ui/domains", get(domains::page).post(domains::add))
        .route("/ui/domains/{domain}", get(domains::show))
        .route("/ui/broadcasts", get(broadcasts::page))
        .route("/ui/broadcasts/{id}", get(broadcasts::show))
        .route("/ui/broadcasts/{id}/{action}", post(broadcasts::act))
        .route("/ui/streams", get(streams::page))
        .route(
            "/ui/streams/{name}/pause",
            get(streams::pause_form).post(streams::pause),
        )
        .route("/ui/streams/{name}/resume", post(streams::resume))
        .route("/ui/queue/{action}", post(streams::queue_action))
        .route("/ui/webhooks", get(webhooks::page).post(webhooks::create))
        .route(
            "/ui/webhooks/{id}",
            get(webhooks::show).post(webhooks::update),
        )
        .route("/ui/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/ui/webhooks/{id}/replay", post(webhooks::replay))
        .route("/ui/webhooks/{id}/delete", post(webhooks::remove))
        .route("/ui/keys", get(keys::page).post(keys::create))
        .route("/ui/keys/{id}/rotate", post(keys::rotate))
        .route("/ui/keys/{id}/revoke", post(keys::revoke))
        .route("/ui/users", get(users::page).post(users::create))
        .route("/ui/users/{id}/{action}", post(users::act))
        .route("/ui/account", get(account::page))
        .route("/ui/account/password", post(account::password))
        .route("/ui/account/language", post(account::language))
        .route("/ui/account/totp", post(account::totp_enrol))
        .route("/ui/account/totp/confirm", post(account::totp_confirm))
        .route("/ui/account/totp/remove", post(account::totp_remove))
        .route("/ui/account/sessions/end", post(account::end_sessions))
        .route("/ui/privacy", get(privacy::page).post(privacy::lookup))
        .route("/ui/privacy/export", post(privacy::export))
        .route("/ui/privacy/restrict", post(privacy::restrict))
        .route("/ui/privacy/erase", post(privacy::erase))
        .route("/ui/privacy/requests", post(privacy::new_request))
        .route(
            "/ui/privacy/requests/{id}/close",
            post(privacy::close_request),
        )
        .route("/ui/privacy/incidents", post(privacy::new_incident))
        .route(
            "/ui/privacy/incidents/{id}/{step}",
            post(privacy::incident_step),
        )
        .route("/ui/privacy/record.md", get(privacy::record_markdown))
        .route("/ui/privacy/audit", get(privacy::audit))
        .route("/ui/assets/console.css", get(stylesheet))
        .route("/ui/assets/console.js", get(script))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(console)
}

async fn not_found(headers: axum::http::HeaderMap) -> page::PageError {
    page::PageError::not_found(i18n::Lang::of(&headers))
}

/// Static assets are compiled in; browsers may keep them for a day.
fn asset(content_type: &'static str, body: &'static str) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn stylesheet() -> axum::response::Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../assets/console.css"),
    )
}

async fn script() -> axum::response::Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../assets/console.js"),
    )
}
