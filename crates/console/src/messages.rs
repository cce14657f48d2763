//! `/ui/messages`: message search by recipient (through the blind index), message id,
//! tag, stream, status and time; a message's page with each recipient's attempts and
//! events. The search form is posted, so an address never appears in a URL.

use askama::Template;
use axum::extract::Path;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::{path_segment, query};
use crate::page::{Chrome, PageError, Posted, Visit, render};
use crate::view;

/// The statuses a recipient can be in, for the status filter.
const STATUSES: [&str; 11] = [
    "queued",
    "delivered",
    "deferred",
    "bounced",
    "expired",
    "suppressed",
    "no_consent",
    "restricted",
    "suspended",
    "rejected",
    "cancelled",
];

/// The search form (also the hidden fields of "next page").
#[derive(Deserialize, Default)]
pub struct SearchForm {
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    status: String,
    /// `YYYY-MM-DD` (from a date input).
    #[serde(default)]
    since: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

/// A message as `GET /v1/messages` shows it.
#[derive(Deserialize)]
pub struct Message {
    /// Its id.
    pub id: String,
    /// Its stream.
    pub stream: String,
    /// When it was accepted.
    pub created_at: String,
    /// Its subject (sealed at rest, opened for the reader).
    #[serde(default)]
    pub subject: Option<String>,
    /// Its sender.
    #[serde(default)]
    pub from: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Its recipients.
    #[serde(default)]
    pub recipients: Vec<Recipient>,
}

/// One recipient of a message.
#[derive(Deserialize)]
pub struct Recipient {
    /// Its id.
    pub id: String,
    /// The address (absent once the person was erased).
    #[serde(default)]
    pub email: Option<String>,
    /// Where delivery stands.
    pub status: String,
    /// Attempts made.
    #[serde(default)]
    pub attempts: u64,
    /// The next attempt.
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    /// Its events, oldest first.
    #[serde(default)]
    pub events: Vec<Map<String, Value>>,
}

#[derive(Deserialize)]
struct MessageList {
    messages: Vec<Message>,
    next_cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesPage {
    c: Chrome,
    form: SearchForm,
    streams: Vec<String>,
    statuses: &'static [&'static str],
    searched: bool,
    messages: Vec<Message>,
    next_cursor: Option<String>,
}

/// The tenant's stream names, for the stream filter (none if they cannot be read: the
/// filter is then left out, the search still works).
async fn stream_names(visit: &Visit) -> Vec<String> {
    view::streams(visit)
        .await
        .map(|s| s.into_iter().map(|s| s.name).collect())
        .unwrap_or_default()
}

/// `GET /ui/messages`: the search form and the latest messages.
pub async fn page(visit: Visit) -> Result<Response, PageError> {
    visit.require("GET", "/v1/messages")?;
    results(visit, SearchForm::default(), false).await
}

/// `POST /ui/messages`: the search's results.
pub async fn search(Posted(visit, form): Posted<SearchForm>) -> Result<Response, PageError> {
    visit.require("GET", "/v1/messages")?;
    results(visit, form, true).await
}

async fn results(visit: Visit, form: SearchForm, searched: bool) -> Result<Response, PageError> {
    let lang = visit.lang;
    let (messages, next_cursor) = if !form.message_id.trim().is_empty() {
        let path = format!("/v1/messages/{}", path_segment(form.message_id.trim()));
        match visit.api.get::<Message>(&path).await {
            Ok(m) => (vec![m], None),
            Err(f) if f.status == axum::http::StatusCode::NOT_FOUND => (Vec::new(), None),
            Err(f) => return Err(PageError::api(lang, f)),
        }
    } else {
        let since = day_start(&form.since);
        let until = day_start(&form.until).map(|t| t + 86_400);
        let path = format!(
            "/v1/messages{}",
            query(&[
                ("recipient", form.recipient.trim()),
                ("tag", form.tag.trim()),
                ("stream", &form.stream),
                ("since", &since.map(|t| t.to_string()).unwrap_or_default()),
                ("until", &until.map(|t| t.to_string()).unwrap_or_default()),
                ("cursor", &form.cursor),
                ("limit", "25"),
                ("events", "false"),
            ])
        );
        match visit.api.get::<MessageList>(&path).await {
            Ok(list) => (list.messages, list.next_cursor),
            Err(f)
                if f.status.is_client_error() && f.status != axum::http::StatusCode::FORBIDDEN =>
            {
                let mut c = visit.chrome("messages.title", "/ui/messages");
                c.notice = Some(f.message);
                return Ok(render(&MessagesPage {
                    c,
                    form,
                    streams: stream_names(&visit).await,
                    statuses: &STATUSES,
                    searched,
                    messages: Vec::new(),
                    next_cursor: None,
                }));
            }
            Err(f) => return Err(PageError::api(lang, f)),
        }
    };
    let messages = if form.status.is_empty() {
        messages
    } else {
        messages
            .into_iter()
            .filter(|m| m.recipients.iter().any(|r| r.status == form.status))
            .collect()
    };
    let page = MessagesPage {
        c: visit.chrome("messages.title", "/ui/messages"),
        streams: stream_names(&visit).await,
        statuses: &STATUSES,
        form,
        searched,
        messages,
        next_cursor,
    };
    Ok(render(&page))
}

/// Unix seconds at the start of a `YYYY-MM-DD` day (UTC).
fn day_start(date: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    c: Chrome,
    message: Message,
}

/// An event's fields besides its type and time, in order, for the attempt table.
pub fn event_details(event: &Map<String, Value>) -> Vec<(String, String)> {
    event
        .iter()
        .filter(|(k, _)| !["id", "type", "at", "message_id", "recipient_id"].contains(&k.as_str()))
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// A field of an event as text.
pub fn event_field(event: &Map<String, Value>, key: &str) -> String {
    event
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `GET /ui/messages/{id}`: a message, each recipient's status, attempts and events.
pub async fn show(visit: Visit, Path(id): Path<String>) -> Result<Response, PageError> {
    visit.require("GET", "/v1/messages/{id}")?;
    let message = visit
        .api
        .get::<Message>(&format!("/v1/messages/{}", path_segment(&id)))
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    let page = MessagePage {
        c: visit.chrome("message.title", "/ui/messages"),
        message,
    };
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_utc_days() {
        assert_eq!(day_start("2026-12-07"), Some(1_796_601_600));
        assert_eq!(day_start("07.12.2026"), None);
    }
}
