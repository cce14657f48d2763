//! `/ui/privacy`, the privacy desk (scopes `privacy`, `export`): a person looked up by
//! address (posted, never in a URL) with their contact, consent history, messages and
//! events; export, restrict and lift, erase after typing the address again; the
//! register of data-subject requests, the breach register, the Art. 30 record and
//! the audit log.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{path_segment, query};
use crate::messages::Message;
use crate::page::{Chrome, Empty, Outcome, PageError, Posted, Visit, done, download, render};

/// The kinds of data-subject request the register takes.
const REQUEST_KINDS: [&str; 5] = [
    "access",
    "erasure",
    "rectification",
    "restriction",
    "objection",
];

/// A person as the desk shows them.
pub struct Person {
    /// The address looked up.
    pub email: String,
    /// Their contact, if one is held.
    pub contact: Option<Contact>,
    /// Messages to them, newest first.
    pub messages: Vec<Message>,
}

impl Person {
    /// Whether processing of their data is restricted.
    pub fn restricted(&self) -> bool {
        self.contact.as_ref().is_some_and(|c| c.restricted)
    }
}

/// A contact as `GET /v1/contacts/{email}` shows it.
#[derive(Deserialize)]
pub struct Contact {
    /// Attributes.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// Lists.
    #[serde(default)]
    pub lists: Vec<String>,
    /// Processing restricted (Art. 18).
    #[serde(default)]
    pub restricted: bool,
    /// Created.
    #[serde(default)]
    pub created_at: String,
    /// Every consent record, oldest first.
    #[serde(default)]
    pub consent_history: Vec<Map<String, Value>>,
}

/// A register entry (request or incident), fields as the API names them.
type Entry = Map<String, Value>;

#[derive(Template)]
#[template(path = "privacy.html")]
struct PrivacyPage {
    c: Chrome,
    person: Option<Person>,
    looked_up: bool,
    error: Option<String>,
    requests: Vec<Entry>,
    incidents: Vec<Entry>,
    kinds: &'static [&'static str],
    can_export: bool,
    can_change: bool,
    can_audit: bool,
    record: String,
    /// Where the registers' pages start, and where the next ones do.
    cursors: Cursors,
    requests_next: Option<String>,
    incidents_next: Option<String>,
}

/// A consent record's evidence: its fields besides id, purpose, status and time.
pub fn evidence(consent: &Entry) -> Vec<(String, String)> {
    consent
        .iter()
        .filter(|(k, _)| !["id", "purpose", "status", "at"].contains(&k.as_str()))
        .map(|(k, _)| (k.clone(), crate::view::text(consent, k)))
        .collect()
}

/// Where the desk's registers start (`?requests=` and `?incidents=`: the
/// `next_cursor` of the page before; sequence numbers, no personal data).
#[derive(Deserialize, Default)]
pub struct Cursors {
    #[serde(default)]
    requests: String,
    #[serde(default)]
    incidents: String,
}

/// The desk's registers from their first entries, with a person or an error.
async fn desk(
    visit: &Visit,
    person: Option<Person>,
    looked_up: bool,
    error: Option<String>,
) -> Result<Response, PageError> {
    desk_at(visit, person, looked_up, error, Cursors::default()).await
}

/// What the desk shows besides a person: the registers (50 entries a page from
/// `cursors`), the Art. 30 record.
async fn desk_at(
    visit: &Visit,
    person: Option<Person>,
    looked_up: bool,
    error: Option<String>,
    cursors: Cursors,
) -> Result<Response, PageError> {
    let fail = |f| PageError::api(visit.lang, f);
    let register = |path: &str, cursor: &str| {
        format!("{path}{}", query(&[("cursor", cursor), ("limit", "50")]))
    };
    let (requests, incidents) = if visit.may("GET", "/v1/privacy/requests") {
        let path = register("/v1/privacy/requests", &cursors.requests);
        let r: Value = visit.api.get(&path).await.map_err(fail)?;
        let path = register("/v1/privacy/incidents", &cursors.incidents);
        let i: Value = visit.api.get(&path).await.map_err(fail)?;
        (r, i)
    } else {
        (Value::Null, Value::Null)
    };
    let record = if visit.may("GET", "/v1/privacy/record") {
        let answer = visit
            .api
            .call(Method::GET, "/v1/privacy/record?format=markdown", None)
            .await
            .map_err(fail)?;
        String::from_utf8_lossy(&answer.body).into_owned()
    } else {
        String::new()
    };
    let next = |v: &Value| v["next_cursor"].as_str().map(str::to_string);
    let page = PrivacyPage {
        c: visit.chrome("privacy.title", "/ui/privacy"),
        person,
        looked_up,
        error,
        requests_next: next(&requests),
        incidents_next: next(&incidents),
        requests: crate::view::objects(&requests["requests"]),
        incidents: crate::view::objects(&incidents["incidents"]),
        kinds: &REQUEST_KINDS,
        can_export: visit.may("GET", "/v1/subjects/{email}/export"),
        can_change: visit.may("DELETE", "/v1/subjects/{email}"),
        can_audit: visit.may("GET", "/v1/audit"),
        record,
        cursors,
    };
    Ok(render(&page))
}

fn require_desk(visit: &Visit) -> Result<(), PageError> {
    if visit.may("GET", "/v1/subjects/{email}/export")
        || visit.may("DELETE", "/v1/subjects/{email}")
    {
        Ok(())
    } else {
        Err(PageError::forbidden(visit.lang))
    }
}

/// `GET /ui/privacy?requests=&incidents=`: the desk, the registers from those cursors.
pub async fn page(visit: Visit, Query(cursors): Query<Cursors>) -> Result<Response, PageError> {
    require_desk(&visit)?;
    desk_at(&visit, None, false, None, cursors).await
}

/// The look-up form, and the person the other forms act on.
#[derive(Deserialize)]
pub struct PersonForm {
    #[serde(default)]
    email: String,
}

/// Everything held on `email`: the contact (if any) and messages to them.
async fn person(visit: &Visit, email: &str) -> Result<Person, PageError> {
    let contact = match visit
        .api
        .get::<Contact>(&format!("/v1/contacts/{}", path_segment(email)))
        .await
    {
        Ok(c) => Some(c),
        Err(f) if f.status == StatusCode::NOT_FOUND || f.code == "insufficient_scope" => None,
        Err(f) => return Err(PageError::api(visit.lang, f)),
    };
    let messages = if visit.may("GET", "/v1/messages") {
        #[derive(Deserialize)]
        struct List {
            messages: Vec<Message>,
        }
        let path = format!(
            "/v1/messages{}",
            query(&[("recipient", email), ("limit", "100")])
        );
        visit
            .api
            .get::<List>(&path)
            .await
            .map_err(|f| PageError::api(visit.lang, f))?
            .messages
    } else {
        Vec::new()
    };
    Ok(Person {
        email: email.to_string(),
        contact,
        messages,
    })
}

/// `POST /ui/privacy`: looks a person up.
pub async fn lookup(Posted(visit, form): Posted<PersonForm>) -> Result<Response, PageError> {
    require_desk(&visit)?;
    let email = form.email.trim();
    if postwerk_core::address::Address::parse(email).is_err() {
        let error = visit
            .lang
            .words()
            .get("privacy.invalid_address")
            .to_string();
        return desk(&visit, None, false, Some(error)).await;
    }
    let person = person(&visit, email).await?;
    desk(&visit, Some(person), true, None).await
}

/// `POST /ui/privacy/export`: the person's JSON document, downloaded.
pub async fn export(Posted(visit, form): Posted<PersonForm>) -> Result<Response, PageError> {
    visit.require("GET", "/v1/subjects/{email}/export")?;
    let email = form.email.trim();
    let path = format!("/v1/subjects/{}/export", path_segment(email));
    match visit.api.call(Method::GET, &path, None).await {
        Ok(answer) => Ok(download(
            "application/json",
            "subject-export.json",
            answer.body,
        )),
        Err(f) if f.status == StatusCode::NOT_FOUND => {
            let error = visit.lang.words().get("privacy.nothing_held").to_string();
            desk(&visit, None, false, Some(error)).await
        }
        Err(f) => Err(PageError::api(visit.lang, f)),
    }
}

/// The restriction form: `restrict` or `lift`.
#[derive(Deserialize)]
pub struct RestrictForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    action: String,
}

/// `POST /ui/privacy/restrict`: restricts processing, or lifts the restriction.
pub async fn restrict(Posted(visit, form): Posted<RestrictForm>) -> Result<Response, PageError> {
    visit.require("POST", "/v1/subjects/{email}/restrict")?;
    let email = form.email.trim();
    let method = if form.action == "lift" {
        Method::DELETE
    } else {
        Method::POST
    };
    let path = format!("/v1/subjects/{}/restrict", path_segment(email));
    visit
        .api
        .send::<Value>(method, &path, None)
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    let person = person(&visit, email).await?;
    desk(&visit, Some(person), true, None).await
}

/// The erasure form: the address, and the address typed again.
#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /ui/privacy/erase`: erases the person once the address was typed again.
pub async fn erase(Posted(visit, form): Posted<EraseForm>) -> Result<Response, PageError> {
    visit.require("DELETE", "/v1/subjects/{email}")?;
    let email = form.email.trim();
    if !form.confirm.trim().eq_ignore_ascii_case(email) {
        let error = visit
            .lang
            .words()
            .get("privacy.confirm_mismatch")
            .to_string();
        let person = person(&visit, email).await?;
        return desk(&visit, Some(person), true, Some(error)).await;
    }
    let path = format!("/v1/subjects/{}", path_segment(email));
    visit
        .api
        .send::<Value>(Method::DELETE, &path, None)
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(done("/ui/privacy", "erased"))
}

/// A request registered by hand (it arrived by letter, phone, …).
#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    note: String,
}

/// `POST /ui/privacy/requests`.
pub async fn new_request(Posted(visit, form): Posted<RequestForm>) -> Result<Response, PageError> {
    visit.require("POST", "/v1/privacy/requests")?;
    let mut body = json!({"kind": form.kind, "email": form.email.trim()});
    if !form.note.trim().is_empty() {
        body["note"] = Value::from(form.note.trim());
    }
    match visit
        .act::<Value>(Method::POST, "/v1/privacy/requests", Some(body))
        .await?
    {
        Outcome::Done(_) => Ok(done("/ui/privacy", "request_registered")),
        Outcome::Refused(message) => desk(&visit, None, false, Some(message)).await,
    }
}

/// How a request was closed.
#[derive(Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    status: String,
}

/// `POST /ui/privacy/requests/{id}/close`.
pub async fn close_request(
    Path(id): Path<String>,
    Posted(visit, form): Posted<CloseForm>,
) -> Result<Response, PageError> {
    visit.require("POST", "/v1/privacy/requests/{id}/close")?;
    let path = format!("/v1/privacy/requests/{}/close", path_segment(&id));
    visit
        .api
        .send::<Value>(Method::POST, &path, Some(json!({"status": form.status})))
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(done("/ui/privacy", "request_closed"))
}

/// A breach being registered.
#[derive(Deserialize)]
pub struct IncidentForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    affected: String,
    #[serde(default)]
    measures: String,
}

/// `POST /ui/privacy/incidents`.
pub async fn new_incident(
    Posted(visit, form): Posted<IncidentForm>,
) -> Result<Response, PageError> {
    visit.require("POST", "/v1/privacy/incidents")?;
    let mut body = json!({"title": form.title.trim()});
    for (key, value) in [
        ("description", &form.description),
        ("affected", &form.affected),
        ("measures", &form.measures),
    ] {
        if !value.trim().is_empty() {
            body[key] = Value::from(value.trim());
        }
    }
    match visit
        .act::<Value>(Method::POST, "/v1/privacy/incidents", Some(body))
        .await?
    {
        Outcome::Done(_) => Ok(done("/ui/privacy", "incident_registered")),
        Outcome::Refused(message) => desk(&visit, None, false, Some(message)).await,
    }
}

/// `POST /ui/privacy/incidents/{id}/{step}` (`authority-notified`,
/// `customers-notified`, `close`).
pub async fn incident_step(
    Path((id, step)): Path<(String, String)>,
    Posted(visit, Empty {}): Posted<Empty>,
) -> Result<Response, PageError> {
    visit.require("POST", "/v1/privacy/incidents/{id}/{step}")?;
    let path = format!(
        "/v1/privacy/incidents/{}/{}",
        path_segment(&id),
        path_segment(&step)
    );
    visit
        .api
        .send::<Value>(Method::POST, &path, None)
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(done("/ui/privacy", "incident_updated"))
}

/// `GET /ui/privacy/record.md`: the Art. 30 record as Markdown, downloaded.
pub async fn record_markdown(visit: Visit) -> Result<Response, PageError> {
    visit.require("GET", "/v1/privacy/record")?;
    let answer = visit
        .api
        .call(Method::GET, "/v1/privacy/record?format=markdown", None)
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(download(
        "text/markdown; charset=utf-8",
        "record-of-processing.md",
        answer.body,
    ))
}

/// The audit log's filters (none of them personal data: actions, actors and the
/// blind-index targets the log itself holds).
#[derive(Deserialize, Default)]
pub struct AuditFilter {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    cursor: String,
    /// `1`: verify the hash chain (it reads the whole chain, so only on request).
    #[serde(default)]
    verify: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    filter: AuditFilter,
    entries: Vec<Entry>,
    next_cursor: Option<String>,
    chain: Option<Entry>,
}

/// `GET /ui/privacy/audit?action=&actor=&cursor=`: the tenant's audit log, filtered,
/// with the hash chain's verification.
pub async fn audit(visit: Visit, Query(filter): Query<AuditFilter>) -> Result<Response, PageError> {
    visit.require("GET", "/v1/audit")?;
    let fail = |f| PageError::api(visit.lang, f);
    let list: Value = visit
        .api
        .get(&format!(
            "/v1/audit{}",
            query(&[
                ("order", "desc"),
                ("cursor", &filter.cursor),
                ("limit", "200")
            ])
        ))
        .await
        .map_err(fail)?;
    let entries = crate::view::objects(&list["entries"])
        .into_iter()
        .filter(|e| {
            filter.action.is_empty()
                || crate::view::text(e, "action").contains(filter.action.trim())
        })
        .filter(|e| {
            filter.actor.is_empty() || crate::view::text(e, "actor").contains(filter.actor.trim())
        })
        .collect();
    let chain = if filter.verify == "1" {
        visit.api.get::<Entry>("/v1/audit/verify").await.ok()
    } else {
        None
    };
    let page = AuditPage {
        c: visit.chrome("audit.title", "/ui/privacy"),
        next_cursor: list["next_cursor"].as_str().map(str::to_string),
        filter,
        entries,
        chain,
    };
    Ok(render(&page))
}
