//! `/ui/domains`: the sending domains; a domain's page lists the DNS records to
//! publish, each with a copy button and its live status (found, missing, different),
//! looked up when the page is opened.

use askama::Template;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::path_segment;
use crate::page::{Chrome, PageError, Posted, Visit, render};

/// A domain in the list.
#[derive(Deserialize)]
pub struct Domain {
    /// Its name.
    pub domain: String,
    /// Registered.
    pub created_at: String,
}

#[derive(Deserialize)]
struct Domains {
    domains: Vec<Domain>,
}

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage {
    c: Chrome,
    domains: Vec<Domain>,
    can_add: bool,
    error: Option<String>,
}

async fn list(visit: Visit, error: Option<String>) -> Result<Response, PageError> {
    visit.require("GET", "/v1/domains")?;
    let domains: Domains = visit
        .api
        .get("/v1/domains")
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    let page = DomainsPage {
        c: visit.chrome("domains.title", "/ui/domains"),
        domains: domains.domains,
        can_add: visit.may("POST", "/v1/domains"),
        error,
    };
    Ok(render(&page))
}

/// `GET /ui/domains`.
pub async fn page(visit: Visit) -> Result<Response, PageError> {
    list(visit, None).await
}

/// A domain to register.
#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    domain: String,
}

/// `POST /ui/domains`: registers a domain and opens its page.
pub async fn add(Posted(visit, form): Posted<AddForm>) -> Result<Response, PageError> {
    visit.require("POST", "/v1/domains")?;
    let body = json!({"domain": form.domain.trim()});
    match visit
        .api
        .send::<Value>(Method::POST, "/v1/domains", Some(body))
        .await
    {
        Ok(made) => {
            let name = made["domain"].as_str().unwrap_or_default();
            Ok(crate::page::done(
                &format!("/ui/domains/{}", path_segment(name)),
                "domain_added",
            ))
        }
        Err(f)
            if f.status == StatusCode::UNPROCESSABLE_ENTITY || f.status == StatusCode::CONFLICT =>
        {
            list(visit, Some(f.message)).await
        }
        Err(f) => Err(PageError::api(visit.lang, f)),
    }
}

/// A record to publish and how DNS compares.
#[derive(Deserialize)]
pub struct Record {
    /// `TXT` or `MX`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// Owner name.
    pub name: String,
    /// Data.
    pub value: String,
    /// `dkim`, `spf`, `dmarc`, `bounce`.
    pub purpose: String,
    /// `found`, `missing`, `different`, `unknown`.
    pub status: String,
    /// What DNS holds of the kind.
    #[serde(default)]
    pub published: Vec<String>,
}

#[derive(Deserialize)]
struct Checked {
    domain: String,
    records: Vec<Record>,
    checked_at: String,
}

#[derive(Template)]
#[template(path = "domain.html")]
struct DomainPage {
    c: Chrome,
    domain: String,
    records: Vec<Record>,
    checked_at: String,
}

/// `GET /ui/domains/{domain}`.
pub async fn show(visit: Visit, Path(name): Path<String>) -> Result<Response, PageError> {
    visit.require("GET", "/v1/domains/{domain}/check")?;
    let checked: Checked = visit
        .api
        .get(&format!("/v1/domains/{}/check", path_segment(&name)))
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    let page = DomainPage {
        c: visit.chrome("domain.title", "/ui/domains"),
        domain: checked.domain,
        records: checked.records,
        checked_at: crate::view::time(&checked.checked_at),
    };
    Ok(render(&page))
}
