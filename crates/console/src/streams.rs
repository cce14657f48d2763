//! `/ui/streams`: each stream's priority, reserved share, pool, retry and tracking
//! defaults; pause (with a reason) and resume; the waiting mail by stream and by
//! domain, with retry, suspend, resume and bounce.

use askama::Template;
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::path_segment;
use crate::page::{Chrome, Empty, PageError, Posted, Visit, done, render};
use crate::view::{self, Stream};

/// A line of the queue: a stream or a domain and its waiting recipients.
#[derive(Deserialize)]
pub struct QueueLine {
    /// The stream (for lines per stream).
    #[serde(default)]
    pub stream: Option<String>,
    /// The domain (for lines per domain).
    #[serde(default)]
    pub domain: Option<String>,
    /// Waiting for a first attempt.
    #[serde(default)]
    pub queued: u64,
    /// Waiting for a retry.
    #[serde(default)]
    pub deferred: u64,
    /// Held.
    #[serde(default)]
    pub suspended: u64,
    /// All of them.
    #[serde(default)]
    pub total: u64,
    /// The oldest one's acceptance.
    #[serde(default)]
    pub oldest_at: Option<String>,
}

#[derive(Deserialize)]
struct Queue {
    total: QueueLine,
    streams: Vec<QueueLine>,
    domains: Vec<QueueLine>,
}

#[derive(Template)]
#[template(path = "streams.html")]
struct StreamsPage {
    c: Chrome,
    streams: Vec<Stream>,
    queue_total: u64,
    /// The waiting mail by stream and by domain: (heading key, lines).
    tables: Vec<(&'static str, Vec<QueueLine>)>,
    can_change: bool,
    can_act: bool,
}

/// `GET /ui/streams`.
pub async fn page(visit: Visit) -> Result<Response, PageError> {
    visit.require("GET", "/v1/streams")?;
    let fail = |f| PageError::api(visit.lang, f);
    let streams = view::streams(&visit).await?;
    let queue: Queue = visit.api.get("/v1/queue").await.map_err(fail)?;
    let page = StreamsPage {
        c: visit.chrome("streams.title", "/ui/streams"),
        streams,
        queue_total: queue.total.total,
        tables: vec![
            ("streams.by_stream", queue.streams),
            ("streams.by_domain", queue.domains),
        ],
        can_change: visit.may("POST", "/v1/streams/{name}/pause"),
        can_act: visit.may("POST", "/v1/queue/{action}"),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "stream_pause.html")]
struct PausePage {
    c: Chrome,
    stream: Stream,
}

async fn stream(visit: &Visit, name: &str) -> Result<Stream, PageError> {
    visit
        .api
        .get(&format!("/v1/streams/{}", path_segment(name)))
        .await
        .map_err(|f| PageError::api(visit.lang, f))
}

/// `GET /ui/streams/{name}/pause`: asks for the reason (works without scripts).
pub async fn pause_form(visit: Visit, Path(name): Path<String>) -> Result<Response, PageError> {
    visit.require("POST", "/v1/streams/{name}/pause")?;
    let page = PausePage {
        stream: stream(&visit, &name).await?,
        c: visit.chrome("streams.pause_title", "/ui/streams"),
    };
    Ok(render(&page))
}

/// The pause form.
#[derive(Deserialize)]
pub struct PauseForm {
    #[serde(default)]
    reason: String,
}

/// `POST /ui/streams/{name}/pause`.
pub async fn pause(
    Path(name): Path<String>,
    Posted(visit, form): Posted<PauseForm>,
) -> Result<Response, PageError> {
    visit.require("POST", "/v1/streams/{name}/pause")?;
    let reason = form.reason.trim();
    let body = (!reason.is_empty()).then(|| json!({"reason": reason}));
    visit
        .api
        .send::<Value>(
            Method::POST,
            &format!("/v1/streams/{}/pause", path_segment(&name)),
            Some(body.unwrap_or_else(|| json!({}))),
        )
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(done("/ui/streams", "paused"))
}

/// `POST /ui/streams/{name}/resume`.
pub async fn resume(
    Path(name): Path<String>,
    Posted(visit, Empty {}): Posted<Empty>,
) -> Result<Response, PageError> {
    visit.require("POST", "/v1/streams/{name}/resume")?;
    visit
        .api
        .send::<Value>(
            Method::POST,
            &format!("/v1/streams/{}/resume", path_segment(&name)),
            None,
        )
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(done("/ui/streams", "resumed"))
}

/// Which waiting mail a queue action applies to.
#[derive(Deserialize)]
pub struct QueueForm {
    #[serde(default)]
    stream: String,
    #[serde(default)]
    domain: String,
}

/// `POST /ui/queue/{action}` (`retry`, `suspend`, `resume`, `bounce`).
pub async fn queue_action(
    Path(action): Path<String>,
    Posted(visit, form): Posted<QueueForm>,
) -> Result<Response, PageError> {
    visit.require("POST", "/v1/queue/{action}")?;
    if !["retry", "suspend", "resume", "bounce"].contains(&action.as_str()) {
        return Err(PageError::not_found(visit.lang));
    }
    let mut body = serde_json::Map::new();
    for (key, value) in [("stream", form.stream), ("domain", form.domain)] {
        if !value.is_empty() {
            body.insert(key.into(), Value::String(value));
        }
    }
    visit
        .api
        .send::<Value>(
            Method::POST,
            &format!("/v1/queue/{action}"),
            Some(Value::Object(body)),
        )
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(done("/ui/streams", &format!("queue_{action}")))
}

/// A stream's retry schedule as text.
pub fn retry_text(stream: &Stream) -> String {
    stream.retry.join(", ")
}

/// The time a queue line's oldest recipient was accepted.
pub fn oldest(line: &QueueLine) -> String {
    view::opt_time(&line.oldest_at)
}
