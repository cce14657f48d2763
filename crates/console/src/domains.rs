//! `/ui/domains`: the sending domains; a domain's page lists the DNS records to
//! publish, each with a copy button and its live status (found, missing, different),
//! looked up when the page is opened.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, path_segment};
use crate::page::{Chrome, Outcome, PageError, Posted, Visit, render};

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
        .act::<Value>(Method::POST, "/v1/domains", Some(body))
        .await?
    {
        Outcome::Done(made) => {
            let name = made["domain"].as_str().unwrap_or_default();
            let page = format!("/ui/domains/{}", path_segment(name));
            Ok(crate::page::done(&page, "domain_added"))
        }
        Outcome::Refused(message) => list(visit, Some(message)).await,
    }
}

/// A record to publish and how DNS compares.
#[derive(Deserialize, Clone)]
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

/// How long a domain's DNS check is fresh enough for the overview's alerts.
const CHECK_FRESH: Duration = Duration::from_secs(15 * 60);

/// The latest DNS check of each tenant's domains, for the overview: it alerts on
/// records that are missing or differ without waiting for DNS (a stale or absent
/// result is refreshed in the background; the domain's page always looks up live).
#[derive(Default)]
pub struct DnsChecks {
    results: Mutex<HashMap<TenantDomain, (Instant, Vec<Record>)>>,
    running: Mutex<HashSet<TenantDomain>>,
}

/// A tenant's id and one of its domains.
type TenantDomain = (String, String);

impl DnsChecks {
    fn remember(&self, tenant: &str, domain: &str, records: Vec<Record>) {
        let mut results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        results.insert((tenant.into(), domain.into()), (Instant::now(), records));
    }

    /// The records of `domain` that were missing or differed at its last check (none
    /// if it was never checked), starting a check in the background when the last one
    /// is stale.
    pub fn problems(
        self: &std::sync::Arc<Self>,
        api: &Api,
        tenant: &str,
        domain: &str,
    ) -> Vec<Record> {
        let key = (tenant.to_string(), domain.to_string());
        let (fresh, bad) = {
            let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
            match results.get(&key) {
                Some((at, records)) => (
                    at.elapsed() < CHECK_FRESH,
                    records
                        .iter()
                        .filter(|r| r.status == "missing" || r.status == "different")
                        .cloned()
                        .collect(),
                ),
                None => (false, Vec::new()),
            }
        };
        let start = !fresh
            && self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone());
        if start {
            let (checks, api) = (self.clone(), api.clone());
            tokio::spawn(async move {
                let path = format!("/v1/domains/{}/check", path_segment(&key.1));
                if let Ok(checked) = api.get::<Checked>(&path).await {
                    checks.remember(&key.0, &key.1, checked.records);
                }
                checks
                    .running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
            });
        }
        bad
    }
}

/// `GET /ui/domains/{domain}`.
pub async fn show(
    State(console): State<crate::Console>,
    visit: Visit,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    visit.require("GET", "/v1/domains/{domain}/check")?;
    let checked: Checked = visit
        .api
        .get(&format!("/v1/domains/{}/check", path_segment(&name)))
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    console.dns.remember(
        &visit.me.user.tenant_id,
        &checked.domain,
        checked.records.clone(),
    );
    let page = DomainPage {
        c: visit.chrome("domain.title", "/ui/domains"),
        domain: checked.domain,
        records: checked.records,
        checked_at: crate::view::time(&checked.checked_at),
    };
    Ok(render(&page))
}
