//! `/ui/suppressions`: the suppression list, searched by address (posted), entries
//! added and removed, per stream or for all streams.

use askama::Template;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{path_segment, query};
use crate::page::{Chrome, Outcome, PageError, Posted, Visit, done, render};

#[derive(Template)]
#[template(path = "suppressions.html")]
struct SuppressionsPage {
    c: Chrome,
    email: String,
    entries: Vec<Map<String, Value>>,
    next_cursor: Option<String>,
    streams: Vec<String>,
    can_change: bool,
    error: Option<String>,
}

/// The search form (and the next page's hidden fields).
#[derive(Deserialize, Default)]
pub struct SearchForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    cursor: String,
}

async fn list(
    visit: Visit,
    form: SearchForm,
    error: Option<String>,
) -> Result<Response, PageError> {
    visit.require("GET", "/v1/suppressions")?;
    let fail = |f| PageError::api(visit.lang, f);
    let path = format!(
        "/v1/suppressions{}",
        query(&[
            ("email", form.email.trim()),
            ("cursor", &form.cursor),
            ("limit", "100")
        ])
    );
    let (entries, next_cursor, error) = match visit.api.get::<Value>(&path).await {
        Ok(list) => (
            crate::view::objects(&list["suppressions"]),
            list["next_cursor"].as_str().map(str::to_string),
            error,
        ),
        Err(f) if f.status == StatusCode::UNPROCESSABLE_ENTITY => {
            (Vec::new(), None, Some(f.message))
        }
        Err(f) => return Err(fail(f)),
    };
    let streams = crate::view::streams(&visit).await?;
    let page = SuppressionsPage {
        c: visit.chrome("suppressions.title", "/ui/suppressions"),
        email: form.email,
        entries,
        next_cursor,
        streams: streams.into_iter().map(|s| s.name).collect(),
        can_change: visit.may("POST", "/v1/suppressions"),
        error,
    };
    Ok(render(&page))
}

/// `GET /ui/suppressions`: the newest entries.
pub async fn page(visit: Visit) -> Result<Response, PageError> {
    list(visit, SearchForm::default(), None).await
}

/// `POST /ui/suppressions`: search by address, or the next page.
pub async fn search(Posted(visit, form): Posted<SearchForm>) -> Result<Response, PageError> {
    list(visit, form, None).await
}

/// An entry to add or remove (`stream` empty: all streams).
#[derive(Deserialize)]
pub struct EntryForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    reason: String,
}

/// `POST /ui/suppressions/add`.
pub async fn add(Posted(visit, form): Posted<EntryForm>) -> Result<Response, PageError> {
    visit.require("POST", "/v1/suppressions")?;
    let mut body = json!({"email": form.email.trim()});
    if !form.stream.is_empty() {
        body["stream"] = Value::from(form.stream.as_str());
    }
    if !form.reason.is_empty() {
        body["reason"] = Value::from(form.reason.as_str());
    }
    match visit
        .act::<Value>(Method::POST, "/v1/suppressions", Some(body))
        .await?
    {
        Outcome::Done(_) => Ok(done("/ui/suppressions", "suppression_added")),
        Outcome::Refused(message) => list(visit, SearchForm::default(), Some(message)).await,
    }
}

/// `POST /ui/suppressions/remove`.
pub async fn remove(Posted(visit, form): Posted<EntryForm>) -> Result<Response, PageError> {
    visit.require("DELETE", "/v1/suppressions/{email}")?;
    let path = format!(
        "/v1/suppressions/{}{}",
        path_segment(form.email.trim()),
        query(&[("stream", &form.stream)])
    );
    match visit.api.send::<Value>(Method::DELETE, &path, None).await {
        Ok(_) => Ok(done("/ui/suppressions", "suppression_removed")),
        Err(f) if f.status == StatusCode::CONFLICT || f.status == StatusCode::NOT_FOUND => {
            list(visit, SearchForm::default(), Some(f.message)).await
        }
        Err(f) => Err(PageError::api(visit.lang, f)),
    }
}
