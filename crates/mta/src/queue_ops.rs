//! The delivery queue as operators see it (`GET /v1/queue`, `postwerk queue ls`)
//! and the names of queue operations in the audit log.

use std::collections::BTreeMap;

use postwerk_store::model::{QueueAction, QueueDepth, QueueSelector};
use postwerk_store::prelude::*;
use serde_json::{Value, json};

use crate::view;
use postwerk_services::context::{ServiceError, Services, now_ms};

/// Most domains listed in the view (the largest backlogs).
const TOP_DOMAINS: usize = 100;

/// `retry`, `suspend`, `resume`, `bounce` or `cancel`.
pub fn action_name(action: QueueAction) -> &'static str {
    match action {
        QueueAction::Retry => "retry",
        QueueAction::Suspend => "suspend",
        QueueAction::Resume => "resume",
        QueueAction::Bounce => "bounce",
        QueueAction::Cancel => "cancel",
    }
}

/// The selector as an audit target, e.g. `stream=broadcast domain=example.net`.
pub fn describe(sel: &QueueSelector) -> String {
    [
        ("tenant", &sel.tenant_id),
        ("stream", &sel.stream),
        ("domain", &sel.domain),
        ("message", &sel.message_id),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
    .collect::<Vec<_>>()
    .join(" ")
}

/// Totals of one stream or domain.
#[derive(Default)]
struct Totals {
    by_status: BTreeMap<&'static str, u64>,
    oldest: Option<i64>,
}

impl Totals {
    fn add(&mut self, d: &QueueDepth) {
        *self.by_status.entry(d.status.as_str()).or_default() += d.recipients;
        self.oldest = Some(
            self.oldest
                .map_or(d.oldest_created_at, |o| o.min(d.oldest_created_at)),
        );
    }

    fn total(&self) -> u64 {
        self.by_status.values().sum()
    }

    fn json(&self, now: i64) -> Value {
        json!({
            "queued": self.by_status.get("queued").copied().unwrap_or(0),
            "deferred": self.by_status.get("deferred").copied().unwrap_or(0),
            "suspended": self.by_status.get("suspended").copied().unwrap_or(0),
            "total": self.total(),
            "oldest_at": self.oldest.and_then(view::time),
            "oldest_age_seconds": self.oldest.map(|o| age(now, o)),
        })
    }
}

fn age(now: i64, at: i64) -> i64 {
    (now - at).max(0) / 1000
}

/// Waiting mail (queued, deferred, suspended) of a tenant, or of every tenant: the
/// totals, per stream, per domain (the largest backlogs first), and every (tenant,
/// stream, domain, status) group.
pub async fn view(services: &Services, tenant_id: Option<&str>) -> Result<Value, ServiceError> {
    let depth = services.store.queue_depth(tenant_id).await?;
    let now = now_ms();
    let mut all = Totals::default();
    let mut streams: BTreeMap<&str, Totals> = BTreeMap::new();
    let mut domains: BTreeMap<&str, Totals> = BTreeMap::new();
    for d in &depth {
        all.add(d);
        streams.entry(&d.stream).or_default().add(d);
        domains.entry(&d.domain).or_default().add(d);
    }
    let mut domains: Vec<(&str, Totals)> = domains.into_iter().collect();
    domains.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then(a.0.cmp(b.0)));
    let with_name = |key: &str, name: &str, t: &Totals| {
        let mut v = t.json(now);
        v[key] = json!(name);
        v
    };
    Ok(json!({
        "total": all.json(now),
        "streams": streams.iter().map(|(n, t)| with_name("stream", n, t)).collect::<Vec<_>>(),
        "domains": domains.iter().take(TOP_DOMAINS).map(|(n, t)| with_name("domain", n, t)).collect::<Vec<_>>(),
        "groups": depth.iter().map(|d| json!({
            "tenant": d.tenant_id,
            "stream": d.stream,
            "domain": d.domain,
            "status": d.status,
            "recipients": d.recipients,
            "oldest_at": view::time(d.oldest_created_at),
            "oldest_age_seconds": age(now, d.oldest_created_at),
        })).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_only_the_given_filters() {
        let sel = QueueSelector {
            stream: Some("broadcast".into()),
            domain: Some("example.net".into()),
            ..QueueSelector::default()
        };
        assert_eq!(describe(&sel), "stream=broadcast domain=example.net");
        assert_eq!(action_name(QueueAction::Bounce), "bounce");
    }
}
