//! `GET /metrics` through the real front door: Prometheus text without a key, with
//! the delivery, latency, acceptance, commit and queue figures of real traffic, and
//! no personal data.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

fn scrape(h: &Harness) -> String {
    let (status, body) = h.request_with_key("GET", "/metrics", None, &[], None);
    assert_eq!(status, 200);
    match body {
        Value::String(text) => text,
        other => panic!("not Prometheus text: {other}"),
    }
}

/// The value of the series `series` (name with labels, exactly as exposed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn figures_follow_real_traffic() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(root.path(), false);
    let h = Harness::start(Options::to(&sink));
    let before = scrape(&h);
    assert!(
        before.contains("# TYPE postwerk_deliveries_total counter"),
        "{before}"
    );
    assert_eq!(value(&before, "postwerk_webhook_backlog"), Some(0.0));

    let v = h.send(
        json!({"from": "app@example.com", "to": ["metrics-person@example.test", "second@example.test"], "subject": "m", "text": "m"})
    );
    let view = h.wait_final(v["id"].as_str().unwrap(), Duration::from_secs(20));
    assert_eq!(view["recipients"][1]["status"], "delivered", "{view}");

    let text = scrape(&h);
    let stream = "stream=\"transactional\"";
    assert_eq!(
        value(
            &text,
            &format!("postwerk_messages_accepted_total{{{stream}}}")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("postwerk_deliveries_total{{{stream},result=\"delivered\",reason=\"\"}}")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("postwerk_delivery_latency_seconds_count{{{stream}}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("postwerk_delivery_latency_seconds_bucket{{{stream},le=\"+Inf\"}}")
        ),
        Some(2.0)
    );
    assert!(
        value(
            &text,
            "postwerk_store_commit_seconds_count{durability=\"fsync\"}"
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(
        !text.contains(&format!("postwerk_queue_depth{{{stream}}}")),
        "nothing is waiting: {text}"
    );
    assert!(
        !text.contains("metrics-person") && !text.contains("example.test"),
        "no personal data"
    );
}
