//! Postwerk's REST API (axum): sending, message status, events and domains, with
//! bearer-key authentication and one JSON error shape.
//!
//! Handlers never log request bodies or addresses; errors reach the wire only
//! through [`error::ApiError`].
//!
//! - [`error`]: `{"error": {"code", "message", "field"}}` and the JSON extractor.
//! - [`auth`]: API keys → caller, tenant and scopes.
//! - [`compose`]: request validation and MIME rendering.
//! - [`messages`]: `POST /v1/messages`, `/batch`, `/raw`; `GET /v1/messages/{id}`.
//! - [`events`]: `GET /v1/events`.
//! - [`domains`]: `POST/GET /v1/domains`.
//! - [`suppressions`]: `GET/POST /v1/suppressions`, `DELETE /v1/suppressions/{email}`.

pub mod auth;
pub mod compose;
pub mod domains;
pub mod error;
pub mod events;
pub mod messages;
pub mod suppressions;
mod view;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use postwerk_mta::context::Services;
use postwerk_mta::engine::Engine;

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// Store, keys, config.
    pub services: Arc<Services>,
    /// The delivery engine (accepted mail is handed to it).
    pub engine: Arc<Engine>,
}

impl AppState {
    /// State over running services.
    pub fn new(services: Arc<Services>, engine: Arc<Engine>) -> Self {
        AppState { services, engine }
    }
}

/// The API router.
pub fn router(state: AppState) -> Router {
    let limit = state.services.config.http.max_body_bytes;
    Router::new()
        .route("/", get(health))
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/messages", post(messages::send))
        .route("/v1/messages/batch", post(messages::send_batch))
        .route("/v1/messages/raw", post(messages::send_raw))
        .route("/v1/messages/{id}", get(messages::get_message))
        .route("/v1/events", get(events::list_events))
        .route("/v1/domains", post(domains::create).get(domains::list))
        .route("/v1/domains/{domain}", get(domains::show))
        .route(
            "/v1/suppressions",
            get(suppressions::list).post(suppressions::add),
        )
        .route(
            "/v1/suppressions/{email}",
            axum::routing::delete(suppressions::remove),
        )
        .fallback(|| async { error::ApiError::not_found("endpoint") })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this endpoint",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves, then drains requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
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

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../../docs/openapi.json"),
    )
}
