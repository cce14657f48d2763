//! Scheduled messages through the real front door: `send_at` holds a message until its
//! time (and it is delivered then, also after a restart in between), `DELETE
//! /v1/messages/{id}` cancels it until then and never after, and times too far ahead
//! or not times at all are refused.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink, wait_until};
use serde_json::json;

fn in_secs(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339()
}

#[test]
fn a_scheduled_message_waits_for_its_time_and_can_be_cancelled_until_then() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let mut h = Harness::start(Options::to(&sink));
    let message = |to: &str, send_at: String| json!({"from": "app@example.com", "to": to, "subject": "Later", "text": "t", "send_at": send_at});

    // Due in a few seconds: held, then delivered at its time, across a restart.
    let (s, later) = h.post("/v1/messages", message("later@example.test", in_secs(4)));
    assert_eq!(s, 202, "{later}");
    assert!(later["send_at"].is_string(), "{later}");
    let id = later["id"].as_str().unwrap().to_string();
    let (_, view) = h.get(&format!("/v1/messages/{id}"));
    assert_eq!(view["recipients"][0]["status"], "queued", "{view}");
    assert_eq!(view["send_at"], later["send_at"], "{view}");
    h.stop();
    h.serve();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(sink.count(), 0, "sent before its time");
    let view = h.wait_final(&id, Duration::from_secs(30));
    assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");
    assert!(sink.wait_for(1, Duration::from_secs(5)));
    // Sent: too late to cancel.
    let (s, e) = h.call(&h.key, "DELETE", &format!("/v1/messages/{id}"), None);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("not_scheduled")),
        "{e}"
    );

    // Due in an hour: cancelled, it is never sent; a second cancel is refused.
    let (s, hour) = h.post("/v1/messages", message("never@example.test", in_secs(3600)));
    assert_eq!(s, 202, "{hour}");
    let never = hour["id"].as_str().unwrap().to_string();
    let (s, view) = h.call(&h.key, "DELETE", &format!("/v1/messages/{never}"), None);
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["recipients"][0]["status"], "cancelled", "{view}");
    assert_eq!(
        view["recipients"][0]["next_attempt_at"],
        json!(null),
        "{view}"
    );
    let kinds: Vec<_> = view["recipients"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["accepted", "cancelled"], "{view}");
    let (s, _) = h.call(&h.key, "DELETE", &format!("/v1/messages/{never}"), None);
    assert_eq!(s, 409);
    // Another tenant cannot cancel it, nor learn that it exists.
    h.cli_ok(&["tenants", "create", "other"]);
    let other = h.new_key(Some("other"), "send,read", &[]);
    let (s, _) = h.call(&other, "DELETE", &format!("/v1/messages/{never}"), None);
    assert_eq!(s, 404);
    // An unscheduled message cannot be cancelled.
    let now = h.send(
        json!({"from": "app@example.com", "to": "now@example.test", "subject": "Now", "text": "t"}),
    );
    let (s, _) = h.call(
        &h.key,
        "DELETE",
        &format!("/v1/messages/{}", now["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(s, 409);
    assert!(sink.wait_for(2, Duration::from_secs(20)));

    // Bad times name the field.
    for bad in [in_secs(31 * 86_400), "next tuesday".to_string()] {
        let (s, e) = h.post("/v1/messages", message("x@example.test", bad.clone()));
        assert_eq!(
            (s, e["error"]["code"].as_str(), e["error"]["field"].as_str()),
            (422, Some("invalid_time"), Some("send_at")),
            "{bad}: {e}"
        );
    }
    // A time already past sends at once.
    let (s, past) = h.post("/v1/messages", message("past@example.test", in_secs(-60)));
    assert_eq!(s, 202, "{past}");
    assert!(past.get("send_at").is_none(), "{past}");
    assert!(wait_until(Duration::from_secs(20), || sink.count() == 3));
    std::thread::sleep(Duration::from_millis(500));
    let got: Vec<_> = sink
        .messages()
        .into_iter()
        .map(|(_, env)| env.to_string())
        .collect();
    assert!(!got.iter().any(|e| e.contains("never@")), "{got:?}");
}
