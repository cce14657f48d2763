//! `GET /v1/stats?stream=&pool=&source=&site=&from=&to=&interval=hour|day`:
//! deliverability per hour or day — delivered, deferred, bounced by reason,
//! expired, complained, opened, clicked, unsubscribed — with rates.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use postwerk_core::model::EventType;
use postwerk_services::context::now_ms;
use postwerk_store::model::{StatRow, StatsFilter};
use postwerk_store::prelude::*;
use postwerk_store::stats::{BUCKET_MS, bucket_of};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use crate::view;

/// Most buckets one request may span.
const MAX_BUCKETS: i64 = 1000;
const DAY_MS: i64 = 24 * BUCKET_MS;
/// 9999-12-31T23:59:59.999Z.
const LATEST: i64 = 253_402_300_799_999;

/// The event types counted, in the order they are shown.
const COUNTED: [EventType; 8] = [
    EventType::Delivered,
    EventType::Deferred,
    EventType::Bounced,
    EventType::Expired,
    EventType::Complained,
    EventType::Opened,
    EventType::Clicked,
    EventType::Unsubscribed,
];

/// Query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    stream: Option<String>,
    pool: Option<String>,
    source: Option<String>,
    site: Option<String>,
    /// Start (RFC 3339 or Unix seconds); default: 30 days (interval day) or 48 hours
    /// (interval hour) before `to`.
    from: Option<String>,
    /// End, exclusive (default now).
    to: Option<String>,
    /// `day` (default) or `hour`.
    interval: Option<String>,
}

/// Counts of one bucket (or of the whole range).
#[derive(Default)]
struct Counts {
    by_type: BTreeMap<&'static str, u64>,
    bounced_by_reason: BTreeMap<String, u64>,
}

impl Counts {
    fn add(&mut self, r: &StatRow) {
        *self.by_type.entry(r.event.as_str()).or_default() += r.count;
        if r.event == EventType::Bounced {
            let reason = if r.reason.is_empty() {
                "undefined"
            } else {
                &r.reason
            };
            *self
                .bounced_by_reason
                .entry(reason.to_string())
                .or_default() += r.count;
        }
    }

    fn get(&self, e: EventType) -> u64 {
        self.by_type.get(e.as_str()).copied().unwrap_or(0)
    }

    fn json(&self) -> Map<String, Value> {
        let mut m: Map<String, Value> = COUNTED
            .iter()
            .map(|e| (e.as_str().to_string(), json!(self.get(*e))))
            .collect();
        let (delivered, bounced) = (self.get(EventType::Delivered), self.get(EventType::Bounced));
        let finished = delivered + bounced + self.get(EventType::Expired);
        let rate = |n: u64, of: u64| (of > 0).then(|| n as f64 / of as f64);
        m.insert("bounced_by_reason".into(), json!(self.bounced_by_reason));
        m.insert(
            "rates".into(),
            json!({
                "delivery": rate(delivered, finished),
                "bounce": rate(bounced, finished),
                "complaint": rate(self.get(EventType::Complained), delivered),
                "open": rate(self.get(EventType::Opened), delivered),
                "click": rate(self.get(EventType::Clicked), delivered),
            }),
        );
        m
    }
}

/// `GET /v1/stats` (scope `read`).
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<Value>, ApiError> {
    let (interval, width) = match q.interval.as_deref().unwrap_or("day") {
        "day" => ("day", DAY_MS),
        "hour" => ("hour", BUCKET_MS),
        _ => {
            return Err(ApiError::invalid(
                "invalid_interval",
                "interval",
                "use hour or day",
            ));
        }
    };
    let to = match q.to.as_deref() {
        Some(t) => view::time_param(t, "to")?,
        None => now_ms(),
    };
    let default_span = if width == DAY_MS {
        30 * DAY_MS
    } else {
        48 * BUCKET_MS
    };
    let from = match q.from.as_deref() {
        Some(f) => view::time_param(f, "from")?,
        None => to - default_span,
    };
    for (t, field) in [(from, "from"), (to, "to")] {
        if !(0..=LATEST).contains(&t) {
            return Err(ApiError::invalid(
                "invalid_time",
                field,
                "between 1970 and 9999",
            ));
        }
    }
    // Buckets are whole UTC hours or days: the range widens to cover them.
    let first = from - from.rem_euclid(width);
    let end = to + (width - to.rem_euclid(width)) % width;
    if end <= first {
        return Err(ApiError::invalid(
            "invalid_range",
            "from",
            "`from` must be before `to`",
        ));
    }
    if (end - first) / width > MAX_BUCKETS {
        return Err(ApiError::invalid(
            "invalid_range",
            "from",
            format!("at most {MAX_BUCKETS} {interval}s per request"),
        ));
    }
    let rows = state
        .services
        .store
        .stats(StatsFilter {
            tenant_id: caller.tenant_id.clone(),
            from: bucket_of(first),
            to: end,
            stream: q.stream,
            pool: q.pool,
            source: q.source,
            site: q.site,
        })
        .await?;
    let mut buckets: BTreeMap<i64, Counts> = (0..(end - first) / width)
        .map(|i| (first + i * width, Counts::default()))
        .collect();
    let mut totals = Counts::default();
    for r in &rows {
        let start = r.bucket - r.bucket.rem_euclid(width);
        buckets.entry(start).or_default().add(r);
        totals.add(r);
    }
    let buckets: Vec<Value> = buckets
        .iter()
        .map(|(start, c)| {
            let mut m = c.json();
            m.insert("start".into(), json!(view::time(*start)));
            Value::Object(m)
        })
        .collect();
    Ok(Json(json!({
        "interval": interval,
        "from": view::time(first),
        "to": view::time(end),
        "totals": Value::Object(totals.json()),
        "buckets": buckets,
    })))
}
