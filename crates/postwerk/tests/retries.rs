//! Issue 2, delivery outcomes: 4xx → deferred and retried with back-off; 5xx →
//! bounced; a peer that drops the connection mid-DATA → deferred, then delivered;
//! retries stop at the stream's expiry.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

fn kinds(r: &Value) -> Vec<String> {
    r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn temporary_failures_are_retried_and_permanent_ones_bounce() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        delivery: "retry_base = \"1s\"\nretry_max = \"2s\"\nexpiry = \"8s\"",
        ..Options::to(&sink)
    });
    let sent = h.send(
        json!({"from": "a@example.com", "to": ["flaky1@example.test", "hard1@example.test", "drop1@example.test", "soft1@example.test"], "text": "t"})
    );
    let id = sent["id"].as_str().unwrap();
    let view = h.wait_final(id, Duration::from_secs(40));
    let by_email = |e: &str| -> Value {
        view["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["email"] == e)
            .cloned()
            .unwrap_or_else(|| panic!("{view}"))
    };

    let flaky = by_email("flaky1@example.test");
    assert_eq!(flaky["status"], "delivered", "{flaky}");
    assert_eq!(kinds(&flaky), ["accepted", "deferred", "delivered"]);
    let deferred = &flaky["events"][1];
    assert!(
        deferred["reply"].as_str().unwrap().starts_with("451 4.3.0"),
        "{deferred}"
    );
    assert!(deferred["next_attempt_at"].is_string());

    let hard = by_email("hard1@example.test");
    assert_eq!(hard["status"], "bounced");
    assert_eq!(kinds(&hard), ["accepted", "bounced"]);
    assert!(
        hard["events"][1]["reply"]
            .as_str()
            .unwrap()
            .starts_with("550 5.1.1")
    );

    let drop = by_email("drop1@example.test");
    assert_eq!(drop["status"], "delivered", "{drop}");
    assert_eq!(kinds(&drop), ["accepted", "deferred", "delivered"]);

    let soft = by_email("soft1@example.test");
    assert_eq!(soft["status"], "expired", "{soft}");
    let k = kinds(&soft);
    assert_eq!(k.first().map(String::as_str), Some("accepted"));
    assert_eq!(k.last().map(String::as_str), Some("expired"));
    assert!(k.iter().filter(|e| *e == "deferred").count() >= 1, "{k:?}");

    // Exactly one copy of each delivered message arrived.
    let rcpts: Vec<String> = sink
        .messages()
        .iter()
        .map(|(_, m)| m["rcpt"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        rcpts.iter().filter(|r| *r == "flaky1@example.test").count(),
        1
    );
    assert_eq!(
        rcpts.iter().filter(|r| *r == "drop1@example.test").count(),
        1
    );
    assert!(
        !rcpts
            .iter()
            .any(|r| r.starts_with("hard") || r.starts_with("soft"))
    );
}

#[test]
fn unreachable_destination_is_deferred_not_lost() {
    let port = common::free_port();
    let h = Harness::start(Options {
        route_port: Some(port),
        delivery: "retry_base = \"1s\"\nretry_max = \"1s\"",
        ..Default::default()
    });
    let (_, sent) = h.post(
        "/v1/messages",
        json!({"from": "a@example.com", "to": ["late@example.test"], "text": "t"}),
    );
    let id = sent["id"].as_str().unwrap().to_string();
    assert!(common::wait_until(Duration::from_secs(20), || {
        h.get(&format!("/v1/messages/{id}")).1["recipients"][0]["status"] == "deferred"
    }));
    // The receiver comes up on that port: the retry delivers.
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = Sink::start_on(&sink_dir.path().join("sink"), port);
    assert!(
        sink.wait_for(1, Duration::from_secs(30)),
        "{}",
        h.server_log()
    );
    assert_eq!(
        h.wait_final(&id, Duration::from_secs(10))["recipients"][0]["status"],
        "delivered"
    );
}
