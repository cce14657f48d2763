//! `/ui/`: the last 24 hours (per hour) and 7 days (per day) per stream, the queue's
//! depth, and what needs attention: paused streams, overdue data-subject requests,
//! open breach notifications with their deadlines.

use std::collections::BTreeMap;

use askama::Template;
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;

use axum::extract::State;
use serde_json::Value;

use crate::Console;
use crate::chart::{Chart, Series};
use crate::page::{Chrome, PageError, Visit, render};
use crate::view;

/// The figures an overview shows, in chart order, with their colour class.
const FIGURES: [(&str, &str); 6] = [
    ("delivered", "delivered"),
    ("deferred", "deferred"),
    ("bounced", "bounced"),
    ("complained", "complained"),
    ("opened", "opened"),
    ("clicked", "clicked"),
];

/// `GET /v1/stats`, as far as the overview reads it.
#[derive(Deserialize)]
struct Stats {
    totals: Bucket,
    buckets: Vec<Bucket>,
}

#[derive(Deserialize, Default, Clone)]
struct Bucket {
    #[serde(default)]
    start: Option<String>,
    #[serde(flatten)]
    counts: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    bounced_by_reason: BTreeMap<String, u64>,
}

impl Bucket {
    fn get(&self, figure: &str) -> u64 {
        self.counts
            .get(figure)
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    }
}

/// A stream's row in the table: its totals over 24 h and 7 days.
pub struct StreamRow {
    /// The stream.
    pub name: String,
    /// Per figure: (24 h, 7 days).
    pub figures: Vec<(u64, u64)>,
}

/// Something that needs attention.
pub struct Alert {
    /// In words.
    pub text: String,
    /// Where to act on it.
    pub link: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    c: Chrome,
    figures: Vec<&'static str>,
    day: Chart,
    week: Chart,
    streams: Vec<StreamRow>,
    reasons: Vec<(String, u64)>,
    queue_total: u64,
    queue_oldest: Option<String>,
    alerts: Vec<Alert>,
}

/// The stats of `stream` over `span_s` seconds in buckets of `interval`.
async fn stats(
    visit: &Visit,
    stream: &str,
    interval: &str,
    span_s: i64,
) -> Result<Stats, PageError> {
    let from = (view::now_s() - span_s).to_string();
    let path = format!(
        "/v1/stats{}",
        crate::api::query(&[("interval", interval), ("from", &from), ("stream", stream)])
    );
    visit
        .api
        .get(&path)
        .await
        .map_err(|f| PageError::api(visit.lang, f))
}

/// Sums the streams' buckets into one chart.
fn chart(c: &Chrome, title: &str, per_stream: &[Stats], label: fn(&str) -> String) -> Chart {
    let Some(first) = per_stream.first() else {
        return Chart::new(c.t(title).to_string(), Vec::new(), Vec::new());
    };
    let labels = first
        .buckets
        .iter()
        .map(|b| label(b.start.as_deref().unwrap_or_default()))
        .collect();
    let series = FIGURES
        .iter()
        .map(|(figure, class)| Series {
            name: c.t(&format!("figure.{figure}")).to_string(),
            class,
            values: (0..first.buckets.len())
                .map(|i| {
                    per_stream
                        .iter()
                        .map(|s| s.buckets.get(i).map_or(0, |b| b.get(figure)))
                        .sum()
                })
                .collect(),
        })
        .collect();
    Chart::new(c.t(title).to_string(), labels, series)
}

#[derive(Deserialize)]
struct Requests {
    requests: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Incidents {
    incidents: Vec<serde_json::Value>,
}

/// `GET /ui/`.
pub async fn page(State(console): State<Console>, visit: Visit) -> Result<Response, PageError> {
    let c = visit.chrome("overview.title", "/ui/");
    let lang = visit.lang;
    let fail = |f| PageError::api(lang, f);
    if !visit.may("GET", "/v1/stats") {
        // A user without `read` starts where their scopes lead.
        let first = c.nav.first().map_or("/ui/account", |l| l.path);
        return Ok(axum::response::Redirect::to(first).into_response());
    }
    let streams = view::streams(&visit).await?;
    let mut day = Vec::new();
    let mut week = Vec::new();
    for s in &streams {
        day.push(stats(&visit, &s.name, "hour", 24 * 3600).await?);
        week.push(stats(&visit, &s.name, "day", 7 * 86400).await?);
    }
    let rows = streams
        .iter()
        .zip(day.iter().zip(&week))
        .map(|(s, (d, w))| StreamRow {
            name: s.name.clone(),
            figures: FIGURES
                .iter()
                .map(|(f, _)| (d.totals.get(f), w.totals.get(f)))
                .collect(),
        })
        .collect();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for w in &week {
        for (reason, n) in &w.totals.bounced_by_reason {
            *reasons.entry(reason.clone()).or_default() += n;
        }
    }
    let queue: serde_json::Value = visit.api.get("/v1/queue").await.map_err(fail)?;
    let mut alerts: Vec<Alert> = streams
        .iter()
        .filter(|s| s.paused)
        .map(|s| Alert {
            text: match &s.pause_reason {
                Some(r) => c.with("overview.alert_paused_reason", &format!("{}: {r}", s.name)),
                None => c.with("overview.alert_paused", &s.name),
            },
            link: "/ui/streams".into(),
        })
        .collect();
    let domains: Value = visit.api.get("/v1/domains").await.map_err(fail)?;
    for name in domains["domains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["domain"].as_str())
    {
        let bad = console
            .dns
            .problems(&visit.api, &visit.me.user.tenant_id, name);
        if !bad.is_empty() {
            let names: Vec<String> = bad
                .iter()
                .map(|r| format!("{} {} ({})", r.purpose, r.name, r.status))
                .collect();
            alerts.push(Alert {
                text: c.with(
                    "overview.alert_dns",
                    &format!("{name}: {}", names.join(", ")),
                ),
                link: format!("/ui/domains/{}", crate::api::path_segment(name)),
            });
        }
    }
    if visit.may("GET", "/v1/privacy/requests") {
        let overdue: Requests = visit
            .api
            .get("/v1/privacy/requests?overdue=true")
            .await
            .map_err(fail)?;
        if !overdue.requests.is_empty() {
            alerts.push(Alert {
                text: c.with("overview.alert_requests", &overdue.requests.len()),
                link: "/ui/privacy".into(),
            });
        }
        let incidents: Incidents = visit.api.get("/v1/privacy/incidents").await.map_err(fail)?;
        for i in incidents
            .incidents
            .iter()
            .filter(|i| i["closed_at"].is_null())
        {
            let due = |field: &str, done: &str| {
                i[done]
                    .is_null()
                    .then(|| i[field].as_str().map(view::countdown))
                    .flatten()
            };
            let id = i["id"].as_str().unwrap_or_default();
            let mut text = c.with("overview.alert_incident", &id);
            if let Some(left) = due("authority_due_at", "authority_notified_at") {
                text.push_str(&format!(" · {}", c.with("overview.authority_due", &left)));
            }
            if let Some(left) = due("customers_due_at", "customers_notified_at") {
                text.push_str(&format!(" · {}", c.with("overview.customers_due", &left)));
            }
            alerts.push(Alert {
                text,
                link: "/ui/privacy".into(),
            });
        }
    }
    let page = OverviewPage {
        figures: FIGURES.iter().map(|(f, _)| *f).collect(),
        day: chart(&c, "overview.chart_day", &day, view::hour_label),
        week: chart(&c, "overview.chart_week", &week, view::day_label),
        streams: rows,
        reasons: reasons.into_iter().collect(),
        queue_total: queue["total"]["total"].as_u64().unwrap_or(0),
        queue_oldest: queue["total"]["oldest_at"].as_str().map(view::time),
        alerts,
        c,
    };
    Ok(render(&page))
}
