//! `/ui/broadcasts`: the tenant's broadcasts with their state and counts, and one
//! broadcast's report as a chart (with its figures in a table), with pause, resume and
//! cancel where its state allows them.

use askama::Template;
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value};

use crate::api::path_segment;
use crate::chart::{Chart, Series};
use crate::page::{Chrome, Empty, PageError, Posted, Visit, done, render};

type Entry = Map<String, Value>;

#[derive(Template)]
#[template(path = "broadcasts.html")]
struct BroadcastsPage {
    c: Chrome,
    broadcasts: Vec<Entry>,
}

/// `GET /ui/broadcasts`.
pub async fn page(visit: Visit) -> Result<Response, PageError> {
    visit.require("GET", "/v1/broadcasts")?;
    let list: Value = visit
        .api
        .get("/v1/broadcasts?limit=100")
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    let page = BroadcastsPage {
        c: visit.chrome("broadcasts.title", "/ui/broadcasts"),
        broadcasts: crate::view::objects(&list["broadcasts"]),
    };
    Ok(render(&page))
}

/// The report's figures the chart draws, with their catalogue key and colour class.
const FIGURES: [(&str, &str, &str); 8] = [
    ("recipients", "broadcasts.recipients", "recipients"),
    ("sent", "broadcasts.sent", "sent"),
    ("delivered", "broadcasts.delivered", "delivered"),
    ("deferred", "broadcasts.deferred", "deferred"),
    ("bounced", "broadcasts.bounced", "bounced"),
    ("complaints", "broadcasts.complaints", "complained"),
    ("opens", "broadcasts.opens", "opened"),
    ("clicks", "broadcasts.clicks", "clicked"),
];

/// Figures listed under the chart only.
const SCREENED: [(&str, &str); 6] = [
    ("suppressed", "broadcasts.suppressed"),
    ("no_consent", "broadcasts.no_consent"),
    ("restricted", "broadcasts.restricted"),
    ("failed", "broadcasts.failed"),
    ("unsubscribes", "broadcasts.unsubscribes"),
    ("expired", "broadcasts.expired"),
];

#[derive(Template)]
#[template(path = "broadcast.html")]
struct BroadcastPage {
    c: Chrome,
    b: Entry,
    chart: Chart,
    /// (label, figure) of the screened-out people and other figures.
    others: Vec<(String, u64)>,
    can_pause: bool,
    can_resume: bool,
    can_cancel: bool,
}

/// `GET /ui/broadcasts/{id}`.
pub async fn show(Path(id): Path<String>, visit: Visit) -> Result<Response, PageError> {
    visit.require("GET", "/v1/broadcasts/{id}/report")?;
    let fail = |f| PageError::api(visit.lang, f);
    let path = format!("/v1/broadcasts/{}", path_segment(&id));
    let b: Value = visit.api.get(&path).await.map_err(fail)?;
    let report: Value = visit
        .api
        .get(&format!("{path}/report"))
        .await
        .map_err(fail)?;
    let c = visit.chrome("broadcasts.report", "/ui/broadcasts");
    let figure = |k: &str| report["counts"][k].as_u64().unwrap_or(0);
    let labels: Vec<String> = FIGURES
        .iter()
        .map(|(_, key, _)| c.t(key).to_string())
        .collect();
    let series = FIGURES
        .iter()
        .enumerate()
        .map(|(i, (k, key, class))| Series {
            name: c.t(key).to_string(),
            class,
            values: (0..FIGURES.len())
                .map(|j| if i == j { figure(k) } else { 0 })
                .collect(),
        })
        .collect();
    let chart = Chart::new(c.t("broadcasts.chart").to_string(), labels, series);
    let others = SCREENED
        .iter()
        .map(|(k, key)| (c.t(key).to_string(), figure(k)))
        .collect();
    let state = b["state"].as_str().unwrap_or_default();
    let may = |op: &str| visit.may("POST", &format!("/v1/broadcasts/{{id}}/{op}"));
    let page = BroadcastPage {
        can_pause: matches!(state, "scheduled" | "sending") && may("pause"),
        can_resume: state == "paused" && may("resume"),
        can_cancel: !matches!(state, "sent" | "cancelled") && may("cancel"),
        b: b.as_object().cloned().unwrap_or_default(),
        chart,
        others,
        c,
    };
    Ok(render(&page))
}

/// `POST /ui/broadcasts/{id}/{action}` (`pause`, `resume`, `cancel`).
pub async fn act(
    Path((id, action)): Path<(String, String)>,
    Posted(visit, Empty {}): Posted<Empty>,
) -> Result<Response, PageError> {
    if !["pause", "resume", "cancel"].contains(&action.as_str()) {
        return Err(PageError::not_found(visit.lang));
    }
    visit.require("POST", &format!("/v1/broadcasts/{{id}}/{action}"))?;
    let path = format!("/v1/broadcasts/{}", path_segment(&id));
    visit
        .api
        .send::<Value>(Method::POST, &format!("{path}/{action}"), None)
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(done(
        &format!("/ui{}", &path[3..]),
        &format!("broadcast_{action}"),
    ))
}
