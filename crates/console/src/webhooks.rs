//! `/ui/webhooks`: endpoints created (the signing secret shown once), edited, their
//! secret rotated, their attempts listed and their events replayed.

use askama::Template;
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{path_segment, query};
use crate::keys::RotateForm;
use crate::page::{Chrome, Empty, Outcome, PageError, Posted, Visit, done, render};

/// The event types an endpoint can subscribe to (none ticked: all of them).
pub const EVENTS: [&str; 14] = [
    "accepted",
    "delivered",
    "deferred",
    "bounced",
    "expired",
    "suppressed",
    "no_consent",
    "restricted",
    "complained",
    "unsubscribed",
    "opened",
    "clicked",
    "stream_paused",
    "stream_resumed",
];

type Entry = Map<String, Value>;

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    c: Chrome,
    hooks: Vec<Entry>,
    events: &'static [&'static str],
    secret: Option<String>,
    can_change: bool,
    error: Option<String>,
}

async fn list(
    visit: Visit,
    secret: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    visit.require("GET", "/v1/webhooks")?;
    let list: Value = visit
        .api
        .get("/v1/webhooks")
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    let page = WebhooksPage {
        c: visit.chrome("webhooks.title", "/ui/webhooks"),
        hooks: crate::view::objects(&list["webhooks"]),
        events: &EVENTS,
        secret,
        can_change: visit.may("POST", "/v1/webhooks"),
        error,
    };
    Ok(render(&page))
}

/// `GET /ui/webhooks`.
pub async fn page(visit: Visit) -> Result<Response, PageError> {
    list(visit, None, None).await
}

/// An endpoint's URL; the ticked `event` boxes and the `streams` (comma-separated)
/// come from the form's repeated fields.
#[derive(Deserialize)]
pub struct HookForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    streams: String,
    #[serde(default)]
    enabled: String,
}

fn subscription(visit: &Visit, form: &HookForm) -> Value {
    json!({
        "url": form.url.trim(),
        "events": visit.form_values("event"),
        "streams": form.streams.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>(),
    })
}

/// `POST /ui/webhooks`: makes an endpoint and shows its secret once.
pub async fn create(Posted(visit, form): Posted<HookForm>) -> Result<Response, PageError> {
    visit.require("POST", "/v1/webhooks")?;
    let body = subscription(&visit, &form);
    match visit
        .act::<Value>(Method::POST, "/v1/webhooks", Some(body))
        .await?
    {
        Outcome::Done(made) => {
            let secret = made["secret"].as_str().map(str::to_string);
            list(visit, secret, None).await
        }
        Outcome::Refused(message) => list(visit, None, Some(message)).await,
    }
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    c: Chrome,
    hook: Entry,
    attempts: Vec<Entry>,
    next_cursor: Option<String>,
    events: &'static [&'static str],
    secret: Option<String>,
    can_change: bool,
    error: Option<String>,
}

/// The attempts page's cursor.
#[derive(Deserialize, Default)]
pub struct AttemptsQuery {
    #[serde(default)]
    cursor: String,
}

async fn detail(
    visit: Visit,
    id: &str,
    cursor: &str,
    secret: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    visit.require("GET", "/v1/webhooks/{id}")?;
    let fail = |f| PageError::api(visit.lang, f);
    let hook: Entry = visit
        .api
        .get(&format!("/v1/webhooks/{}", path_segment(id)))
        .await
        .map_err(fail)?;
    let attempts: Value = visit
        .api
        .get(&format!(
            "/v1/webhooks/{}/attempts{}",
            path_segment(id),
            query(&[("cursor", cursor), ("limit", "50")])
        ))
        .await
        .map_err(fail)?;
    let page = WebhookPage {
        c: visit.chrome("webhook.title", "/ui/webhooks"),
        hook,
        attempts: crate::view::objects(&attempts["attempts"]),
        next_cursor: attempts["next_cursor"].as_str().map(str::to_string),
        events: &EVENTS,
        secret,
        can_change: visit.may("PATCH", "/v1/webhooks/{id}"),
        error,
    };
    Ok(render(&page))
}

/// `GET /ui/webhooks/{id}?cursor=`: the endpoint, its settings and its attempts.
pub async fn show(
    visit: Visit,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<AttemptsQuery>,
) -> Result<Response, PageError> {
    detail(visit, &id, &q.cursor, None, None).await
}

/// `POST /ui/webhooks/{id}`: saves the endpoint's settings.
pub async fn update(
    Path(id): Path<String>,
    Posted(visit, form): Posted<HookForm>,
) -> Result<Response, PageError> {
    visit.require("PATCH", "/v1/webhooks/{id}")?;
    let mut body = subscription(&visit, &form);
    body["enabled"] = Value::Bool(form.enabled == "on");
    let path = format!("/v1/webhooks/{}", path_segment(&id));
    after(visit, &id, "webhook_saved", Method::PATCH, &path, body).await
}

/// An action on webhook `id`: back to its page with the notice `done_key`, or the page
/// again with why the API refused.
async fn after(
    visit: Visit,
    id: &str,
    done_key: &str,
    method: Method,
    path: &str,
    body: Value,
) -> Result<Response, PageError> {
    match visit.act::<Value>(method, path, Some(body)).await? {
        Outcome::Done(_) => Ok(done(
            &format!("/ui/webhooks/{}", path_segment(id)),
            done_key,
        )),
        Outcome::Refused(message) => detail(visit, id, "", None, Some(message)).await,
    }
}

/// `POST /ui/webhooks/{id}/rotate`: a new secret, shown once (the old one works for the
/// grace period).
pub async fn rotate(
    Path(id): Path<String>,
    Posted(visit, form): Posted<RotateForm>,
) -> Result<Response, PageError> {
    visit.require("POST", "/v1/webhooks/{id}/rotate-secret")?;
    let path = format!("/v1/webhooks/{}/rotate-secret", path_segment(&id));
    let body = json!({"grace": crate::keys::grace(&form)});
    match visit.act::<Value>(Method::POST, &path, Some(body)).await? {
        Outcome::Done(made) => {
            let secret = made["secret"].as_str().map(str::to_string);
            detail(visit, &id, "", secret, None).await
        }
        Outcome::Refused(message) => detail(visit, &id, "", None, Some(message)).await,
    }
}

/// The time range to replay (`YYYY-MM-DDTHH:MM` from `datetime-local` inputs, UTC).
#[derive(Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// A `datetime-local` value (UTC) as RFC 3339.
fn rfc3339(local: &str) -> Option<String> {
    let local = local.trim();
    let t = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    Some(t.and_utc().to_rfc3339())
}

/// `POST /ui/webhooks/{id}/replay`: queues the range's events again.
pub async fn replay(
    Path(id): Path<String>,
    Posted(visit, form): Posted<ReplayForm>,
) -> Result<Response, PageError> {
    visit.require("POST", "/v1/webhooks/{id}/replay")?;
    let Some(from) = rfc3339(&form.from) else {
        let error = visit
            .lang
            .words()
            .get("webhooks.replay_from_missing")
            .to_string();
        return detail(visit, &id, "", None, Some(error)).await;
    };
    let mut body = json!({"from": from});
    if let Some(to) = rfc3339(&form.to) {
        body["to"] = Value::from(to);
    }
    let path = format!("/v1/webhooks/{}/replay", path_segment(&id));
    after(visit, &id, "webhook_replayed", Method::POST, &path, body).await
}

/// `POST /ui/webhooks/{id}/delete`.
pub async fn remove(
    Path(id): Path<String>,
    Posted(visit, Empty {}): Posted<Empty>,
) -> Result<Response, PageError> {
    visit.require("DELETE", "/v1/webhooks/{id}")?;
    visit
        .api
        .send::<Value>(
            Method::DELETE,
            &format!("/v1/webhooks/{}", path_segment(&id)),
            None,
        )
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(done("/ui/webhooks", "webhook_deleted"))
}

/// Whether the endpoint subscribes to `event` by name (an empty list: to all).
pub fn subscribes(hook: &Entry, event: &str) -> bool {
    hook.get("events")
        .and_then(Value::as_array)
        .is_some_and(|e| e.iter().any(|x| x.as_str() == Some(event)))
}
