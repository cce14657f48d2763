//! Hard bounces are classified (`userunknown`) and suppress the address; later sends
//! to it are marked `suppressed` and not delivered; operators manage the list by API.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

fn statuses(v: &Value) -> Vec<(String, String)> {
    v["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["email"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn hard_bounce_suppresses_and_the_list_is_managed_by_api() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options::to(&sink));

    let (_, first) = h.post(
        "/v1/messages",
        json!({"from": "a@example.com", "to": ["hard1@example.test"], "text": "t"}),
    );
    let view = h.wait_final(first["id"].as_str().unwrap(), Duration::from_secs(20));
    let bounced = view["recipients"][0]["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(bounced["type"], "bounced", "{view}");
    assert_eq!(bounced["reason"], "userunknown", "{bounced}");
    assert_eq!(bounced["hardbounce"], true);

    let listed = common::wait_until(Duration::from_secs(5), || {
        h.get("/v1/suppressions?email=HARD1@example.test").1["suppressions"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    assert!(listed, "hard bounce was not suppressed");
    let (_, list) = h.get("/v1/suppressions?email=hard1@example.test");
    let entry = &list["suppressions"][0];
    assert_eq!(
        (entry["email"].as_str(), entry["reason"].as_str()),
        (Some("hard1@example.test"), Some("hard_bounce"))
    );
    assert!(entry["stream"].is_null());

    // A later send: the suppressed recipient is marked and not delivered, the other is.
    let second = h.send(json!({"from": "a@example.com", "to": ["hard1@example.test", "ok1@example.test"], "text": "t"}));
    assert_eq!(
        statuses(&second),
        [
            ("hard1@example.test".into(), "suppressed".into()),
            ("ok1@example.test".into(), "queued".into())
        ]
    );
    let view = h.wait_final(second["id"].as_str().unwrap(), Duration::from_secs(20));
    let sup = view["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == "hard1@example.test")
        .unwrap()
        .clone();
    assert_eq!(sup["status"], "suppressed");
    assert_eq!(sup["events"][0]["type"], "suppressed");
    assert!(sink.wait_for(1, Duration::from_secs(10)));
    let rcpts: Vec<Value> = sink
        .messages()
        .into_iter()
        .map(|(_, m)| m["rcpt"][0].clone())
        .collect();
    assert_eq!(rcpts, [json!("ok1@example.test")]);

    // A manual, stream-scoped entry only applies to that stream.
    let (s, added) = h.post(
        "/v1/suppressions",
        json!({"email": "manual@example.test", "stream": "broadcast"}),
    );
    assert_eq!(s, 201, "{added}");
    assert_eq!(
        h.post(
            "/v1/suppressions",
            json!({"email": "manual@example.test", "stream": "broadcast"})
        )
        .0,
        200
    );
    let (_, tx) = h.post(
        "/v1/messages",
        json!({"from": "a@example.com", "to": ["manual@example.test"], "text": "t"}),
    );
    assert_eq!(tx["recipients"][0]["status"], "queued");
    let (_, bc) = h.post("/v1/messages", json!({"from": "a@example.com", "to": ["manual@example.test"], "text": "t", "stream": "broadcast"}));
    assert_eq!(bc["recipients"][0]["status"], "suppressed");

    // Batches are checked too.
    let (_, batch) = h.post(
        "/v1/messages/batch",
        json!({"messages": [{"from": "a@example.com", "to": ["hard1@example.test"], "text": "t"}]}),
    );
    assert_eq!(
        batch["results"][0]["recipients"][0]["status"], "suppressed",
        "{batch}"
    );

    // Removal: 204, then sends go out again; removing twice is a 404.
    assert_eq!(
        h.request("DELETE", "/v1/suppressions/hard1@example.test", None, &[])
            .0,
        204
    );
    assert_eq!(
        h.request("DELETE", "/v1/suppressions/hard1@example.test", None, &[])
            .0,
        404
    );
    let (_, third) = h.post(
        "/v1/messages",
        json!({"from": "a@example.com", "to": ["hard1@example.test"], "text": "t"}),
    );
    assert_eq!(third["recipients"][0]["status"], "queued");
    let (s, bad) = h.post("/v1/suppressions", json!({"email": "nope"}));
    assert_eq!(
        (s, bad["error"]["code"].as_str()),
        (422, Some("invalid_address"))
    );
}
