//! `GET /v1/privacy/record` (scope `privacy`): the record of processing activities
//! (GDPR Art. 30) for this installation, from its configuration — controller,
//! purposes, categories of data and people, retention, processors, locations and
//! security measures — as JSON, or as Markdown with `?format=markdown`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use postwerk_core::config::{Config, RetentionConfig, format_duration};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};

/// `GET /v1/privacy/record` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    #[serde(default)]
    format: Option<String>,
}

/// One purpose of processing.
#[derive(Serialize)]
struct Purpose {
    stream: String,
    purpose: String,
    lawful_basis: &'static str,
}

/// The record.
#[derive(Serialize)]
struct Record {
    controller: String,
    dpo: String,
    purposes: Vec<Purpose>,
    data_subjects: Vec<&'static str>,
    data_categories: Vec<&'static str>,
    retention: Vec<(String, String)>,
    processors: Vec<postwerk_core::config::SubProcessor>,
    data_locations: Vec<String>,
    transfers_outside_eea: &'static str,
    security_measures: Vec<&'static str>,
}

fn record(c: &Config) -> Record {
    let mut purposes = vec![Purpose {
        stream: "transactional".into(),
        purpose: "messages the recipient requested or needs (sign-up, password reset, receipts)"
            .into(),
        lawful_basis: "contract",
    }];
    for (stream, purpose) in &c.privacy.consent_required {
        purposes.push(Purpose {
            stream: stream.clone(),
            purpose: purpose.clone(),
            lawful_basis: "consent",
        });
    }
    let r = &c.retention;
    Record {
        controller: c.privacy.controller.clone(),
        dpo: c.privacy.dpo.clone(),
        purposes,
        data_subjects: vec!["recipients of the controller's email", "contacts"],
        data_categories: vec![
            "email address",
            "contact attributes and list memberships",
            "message content, subject and sender",
            "delivery events and remote server replies",
            "consent records (wording, source, IP address, user agent)",
            "IP addresses of API callers (audit log)",
        ],
        retention: retention(r),
        processors: c.privacy.sub_processors.clone(),
        data_locations: c.privacy.data_locations.clone(),
        transfers_outside_eea: "none by Postwerk itself: mail goes only to the recipients' own mail servers",
        security_measures: vec![
            "personal data encrypted at rest (AES-256-GCM) under a key per tenant and, for data about one person, a key per person",
            "addresses looked up through an HMAC blind index; none in logs",
            "TLS for submission and, where offered, for delivery",
            "scoped, hashed, expiring and revocable API keys; brute-force throttling",
            "hash-chained audit log of every access to personal data",
            "retention enforced by a purge job; erasure destroys the person's key, so copies in backups cannot be read",
        ],
    }
}

/// The retention periods: the defaults, then those of streams that differ.
fn retention(r: &RetentionConfig) -> Vec<(String, String)> {
    let mut periods = vec![
        ("message content".to_string(), format_duration(r.content)),
        (
            "events and delivery logs".to_string(),
            format_duration(r.events),
        ),
        (
            "webhook delivery records".to_string(),
            format_duration(r.webhook_logs),
        ),
    ];
    for (stream, p) in &r.streams {
        let kinds = [
            ("message content", p.content),
            ("events and delivery logs", p.events),
            ("webhook delivery records", p.webhook_logs),
        ];
        for (what, period) in kinds {
            if let Some(d) = period {
                periods.push((format!("{what}, stream {stream}"), format_duration(d)));
            }
        }
    }
    periods.push((
        "audit log (accesses, admin actions, IP addresses)".to_string(),
        format_duration(r.audit_log),
    ));
    periods.push((
        "data-subject requests".to_string(),
        "kept as evidence".to_string(),
    ));
    periods
}

fn markdown(r: &Record) -> String {
    let or_unset = |s: &str| {
        if s.is_empty() {
            "(not configured)".to_string()
        } else {
            s.to_string()
        }
    };
    let mut md = String::from("# Record of processing activities (GDPR Art. 30)\n\n");
    md += &format!(
        "- **Controller:** {}\n- **Data protection officer:** {}\n\n",
        or_unset(&r.controller),
        or_unset(&r.dpo)
    );
    md += "## Purposes\n\n| stream | purpose | lawful basis |\n|---|---|---|\n";
    for p in &r.purposes {
        md += &format!("| {} | {} | {} |\n", p.stream, p.purpose, p.lawful_basis);
    }
    md += "\n## Data subjects\n\n";
    r.data_subjects
        .iter()
        .for_each(|d| md += &format!("- {d}\n"));
    md += "\n## Categories of personal data\n\n";
    r.data_categories
        .iter()
        .for_each(|d| md += &format!("- {d}\n"));
    md += "\n## Retention\n\n";
    r.retention
        .iter()
        .for_each(|(what, how)| md += &format!("- {what}: {how}\n"));
    md += "\n## Processors\n\n";
    if r.processors.is_empty() {
        md += "- none configured\n";
    }
    r.processors
        .iter()
        .for_each(|p| md += &format!("- {} — {} ({})\n", p.name, p.purpose, p.location));
    md += &format!(
        "\n## Locations and transfers\n\n- Locations: {}\n- Transfers outside the EEA: {}\n",
        if r.data_locations.is_empty() {
            "(not configured)".to_string()
        } else {
            r.data_locations.join(", ")
        },
        r.transfers_outside_eea
    );
    md += "\n## Technical and organisational measures\n\n";
    r.security_measures
        .iter()
        .for_each(|m| md += &format!("- {m}\n"));
    md
}

/// The record as JSON, or Markdown with `?format=markdown`.
pub async fn get(
    State(state): State<AppState>,
    // Authenticates the key and checks its scope; the record is not per tenant.
    _caller: Caller,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> Result<Response, ApiError> {
    let r = record(&state.services.config);
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(r).into_response()),
        Some("markdown") => Ok((
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            markdown(&r),
        )
            .into_response()),
        Some(_) => Err(ApiError::invalid(
            "invalid_format",
            "format",
            "use json or markdown",
        )),
    }
}
