//! Streams through the real front doors: custom streams by API and CLI, pausing
//! (held mail, rejected sends, stream events), the circuit breaker tripping on hard
//! bounces, and queue operations.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink, wait_until};
use serde_json::{Value, json};

const NO_CONSENT_GATE: &str = "[privacy]\nconsent_required = {}\n";

/// A sink and a server routing example.test to it, with `extra` configuration.
fn server(extra: &str) -> (Sink, Harness) {
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        extra,
        ..Options::to(&sink)
    });
    (sink, h)
}

fn send(h: &Harness, stream: &str, to: &str) -> Value {
    let (status, body) = h.post(
        "/v1/messages",
        json!({"from": "app@example.com", "to": [to], "text": "t", "stream": stream}),
    );
    assert_eq!(status, 202, "{body}");
    body
}

/// Waits until every recipient of message `id` has `status`.
fn wait_status(h: &Harness, id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    let reached = wait_until(Duration::from_secs(30), || {
        last = h.get(&format!("/v1/messages/{id}")).1;
        last["recipients"]
            .as_array()
            .is_some_and(|rs| rs.iter().all(|r| r["status"] == status))
    });
    assert!(reached, "{id} never reached {status}: {last}");
    last
}

fn events_of(h: &Harness, kind: &str) -> Vec<Value> {
    let (status, body) = h.get(&format!("/v1/events?type={kind}"));
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().cloned().unwrap_or_default()
}

fn stream(h: &Harness, name: &str) -> Value {
    let (status, body) = h.get(&format!("/v1/streams/{name}"));
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn custom_streams_by_api_and_cli() {
    let (_sink, h) = server(NO_CONSENT_GATE);

    let (status, created) = h.post(
        "/v1/streams",
        json!({"name": "receipts", "priority": 1, "retry": ["1m", "10m"], "max_age": "2h", "track_opens": false}),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (&created["priority"], &created["retry"], &created["max_age"]),
        (&json!(1), &json!(["1m", "10m"]), &json!("2h"))
    );
    assert_eq!(
        (&created["builtin"], &created["paused"]),
        (&json!(false), &json!(false))
    );

    let refused = [
        (json!({"name": "receipts"}), 409, "stream_exists", None),
        (json!({"name": "broadcast"}), 409, "stream_exists", None),
        (
            json!({"name": "Bad Name"}),
            422,
            "invalid_stream",
            Some("name"),
        ),
        (
            json!({"name": "x", "priority": 12}),
            422,
            "invalid_stream",
            Some("priority"),
        ),
        (
            json!({"name": "x", "retry": ["soon"]}),
            400,
            "invalid_field",
            Some("retry"),
        ),
        (
            json!({"name": "x", "speed": 1}),
            400,
            "unknown_field",
            Some("speed"),
        ),
        (json!({"priority": 1}), 422, "missing_field", Some("name")),
    ];
    for (body, want_status, code, field) in refused {
        let (status, err) = h.post("/v1/streams", body.clone());
        assert_eq!(status, want_status, "{body}: {err}");
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
        if let Some(f) = field {
            assert!(
                err["error"]["field"]
                    .as_str()
                    .is_some_and(|got| got.contains(f)),
                "{body}: {err}"
            );
        }
    }

    let (status, patched) = h.request(
        "PATCH",
        "/v1/streams/receipts",
        Some(&json!({"priority": 2, "reserved_share": 10})),
        &[],
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (
            &patched["priority"],
            &patched["reserved_share"],
            &patched["max_age"]
        ),
        (&json!(2), &json!(10), &json!("2h")),
        "unnamed settings keep their values"
    );
    let (status, _) = h.request(
        "PATCH",
        "/v1/streams/nope",
        Some(&json!({"priority": 1})),
        &[],
    );
    assert_eq!(status, 404);

    let out = h.cli(&[
        "streams",
        "add",
        "newsletters",
        "--priority",
        "7",
        "--track-clicks",
        "none",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = h.cli(&["streams", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON list");
    let names: Vec<&str> = listed.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        names,
        ["transactional", "broadcast", "newsletters", "receipts"]
    );
    assert_eq!(listed[2]["track_clicks"], "none");

    // The server learns of the CLI's stream and sends on both custom streams.
    let (_, list) = h.get("/v1/streams");
    assert_eq!(list["streams"].as_array().map(Vec::len), Some(4), "{list}");
    for (stream, to) in [
        ("receipts", "r1@example.test"),
        ("newsletters", "n1@example.test"),
    ] {
        let sent = send(&h, stream, to);
        let view = h.wait_final(sent["id"].as_str().unwrap(), Duration::from_secs(20));
        assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");
        assert_eq!(view["stream"], stream, "{view}");
    }
    let (status, err) = h.post(
        "/v1/messages",
        json!({"from": "app@example.com", "to": ["x@example.test"], "text": "t", "stream": "nope"}),
    );
    assert_eq!(
        (status, &err["error"]["code"]),
        (422, &json!("unknown_stream")),
        "{err}"
    );
    let (status, body) = h.post(
        "/v1/suppressions",
        json!({"email": "someone@example.test", "stream": "receipts"}),
    );
    assert_eq!(status, 201, "a custom stream scopes suppressions: {body}");
}

#[test]
fn pausing_holds_waiting_mail_and_rejects_new_mail() {
    let (sink, h) = server(NO_CONSENT_GATE);
    let waiting = send(&h, "broadcast", "soft1@example.test");
    let waiting_id = waiting["id"].as_str().unwrap();
    wait_status(&h, waiting_id, "deferred");

    let (status, paused) = h.post(
        "/v1/streams/broadcast/pause",
        json!({"reason": "checking a list"}),
    );
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        (&paused["paused"], &paused["pause_reason"]),
        (&json!(true), &json!("checking a list"))
    );
    wait_status(&h, waiting_id, "suspended");
    let (_, queue) = h.get("/v1/queue");
    assert_eq!(queue["total"]["suspended"], 1, "{queue}");

    let rejected = send(&h, "broadcast", "new@example.test");
    assert_eq!(
        rejected["recipients"][0]["status"], "rejected",
        "{rejected}"
    );
    let (_, view) = h.get(&format!(
        "/v1/messages/{}",
        rejected["id"].as_str().unwrap()
    ));
    let kinds: Vec<&str> = view["recipients"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["rejected"], "{view}");

    // Transactional mail is not affected.
    let urgent = send(&h, "transactional", "urgent@example.test");
    let view = h.wait_final(urgent["id"].as_str().unwrap(), Duration::from_secs(20));
    assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");

    let paused_events = events_of(&h, "stream_paused");
    assert_eq!(paused_events.len(), 1, "{paused_events:?}");
    assert_eq!(
        (&paused_events[0]["stream"], &paused_events[0]["reason"]),
        (&json!("broadcast"), &json!("checking a list"))
    );
    let (_, filtered) = h.get("/v1/events?stream=broadcast&type=stream_paused");
    assert_eq!(
        filtered["events"].as_array().map(Vec::len),
        Some(1),
        "{filtered}"
    );

    let out = h.cli(&["streams", "resume", "broadcast"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed = wait_until(Duration::from_secs(10), || {
        stream(&h, "broadcast")["paused"] == false
    });
    assert!(resumed, "the server did not see the CLI's resume");
    wait_status(&h, waiting_id, "deferred");
    assert_eq!(events_of(&h, "stream_resumed").len(), 1);
    assert!(
        sink.messages()
            .iter()
            .all(|(_, env)| env["rcpt"] != json!(["new@example.test"])),
        "rejected mail was delivered"
    );
    let (status, again) = h.post("/v1/streams/broadcast/resume", json!({}));
    assert_eq!(
        (status, &again["paused"]),
        (200, &json!(false)),
        "resuming twice is harmless"
    );
}

#[test]
fn circuit_breaker_pauses_a_stream_that_bounces_too_much() {
    let extra = format!("{NO_CONSENT_GATE}[circuit_breaker]\nwindow = 100\ncheck_every = \"1s\"\n");
    let (_sink, h) = server(&extra);
    // 100 broadcast messages, 10 to unknown users: a 10 % hard-bounce rate.
    let messages: Vec<Value> = (0..100)
        .map(|i| {
            let to = if i % 10 == 0 {
                format!("hard{i}@example.test")
            } else {
                format!("ok{i}@example.test")
            };
            json!({"from": "app@example.com", "to": [to], "text": "t", "stream": "broadcast"})
        })
        .collect();
    let (status, body) = h.post("/v1/messages/batch", json!({"messages": messages}));
    assert_eq!(status, 202, "{body}");

    let tripped = wait_until(Duration::from_secs(60), || {
        stream(&h, "broadcast")["paused"] == true
    });
    assert!(
        tripped,
        "the breaker did not trip: {}",
        stream(&h, "broadcast")
    );
    let s = stream(&h, "broadcast");
    assert_eq!(
        s["pause_reason"], "hard-bounce rate 10.00 % (10 of the last 100) is above 5.00 %",
        "{s}"
    );
    let paused = events_of(&h, "stream_paused");
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert_eq!(
        (
            &paused[0]["by"],
            &paused[0]["bounced"],
            &paused[0]["window"]
        ),
        (&json!("circuit_breaker"), &json!(10), &json!(100))
    );
    assert!(
        !stream(&h, "transactional")["paused"].as_bool().unwrap(),
        "other streams run on"
    );

    // The same figures in the deliverability statistics.
    let all_sent = wait_until(Duration::from_secs(30), || {
        h.get("/v1/stats?stream=broadcast").1["totals"]["delivered"] == 90
    });
    let (status, stats) = h.get("/v1/stats?stream=broadcast&interval=hour");
    assert!(all_sent, "{stats}");
    assert_eq!(status, 200, "{stats}");
    let totals = &stats["totals"];
    assert_eq!(
        (&totals["bounced"], &totals["bounced_by_reason"]),
        (&json!(10), &json!({"userunknown": 10})),
        "{stats}"
    );
    assert_eq!(totals["rates"]["bounce"], 0.1, "{stats}");
    assert_eq!(stats["interval"], "hour");
    let buckets = stats["buckets"].as_array().unwrap();
    assert!(
        buckets.len() >= 48,
        "empty hours are listed too: {}",
        buckets.len()
    );
    assert_eq!(
        buckets
            .iter()
            .map(|b| b["delivered"].as_u64().unwrap())
            .sum::<u64>(),
        90
    );
    let (_, other) = h.get("/v1/stats?stream=transactional");
    assert_eq!(other["totals"]["delivered"], 0);
    let (status, err) = h.get("/v1/stats?interval=week");
    assert_eq!(
        (status, &err["error"]["code"]),
        (422, &json!("invalid_interval"))
    );
    let (status, err) = h.get("/v1/stats?interval=hour&from=2020-01-01T00:00:00Z");
    assert_eq!(
        (status, &err["error"]["code"]),
        (422, &json!("invalid_range")),
        "{err}"
    );
    let rejected = send(&h, "broadcast", "later@example.test");
    assert_eq!(rejected["recipients"][0]["status"], "rejected");

    // An operator resumes it; the old bounces no longer count.
    let (status, resumed) = h.post("/v1/streams/broadcast/resume", json!({}));
    assert_eq!(
        (status, &resumed["paused"]),
        (200, &json!(false)),
        "{resumed}"
    );
    let sent = send(&h, "broadcast", "after@example.test");
    let view = h.wait_final(sent["id"].as_str().unwrap(), Duration::from_secs(20));
    assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        stream(&h, "broadcast")["paused"],
        false,
        "tripped again on old outcomes"
    );
}

#[test]
fn queue_operations_by_api_and_cli() {
    let (sink, h) = server("");
    let ids: Vec<String> = (1..=3)
        .map(|i| {
            send(&h, "transactional", &format!("soft{i}@example.test"))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for id in &ids {
        wait_status(&h, id, "deferred");
    }
    let (status, queue) = h.get("/v1/queue");
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["total"]["deferred"], 3, "{queue}");
    assert_eq!(
        (
            &queue["domains"][0]["domain"],
            &queue["domains"][0]["total"]
        ),
        (&json!("example.test"), &json!(3))
    );
    assert_eq!(queue["streams"][0]["stream"], "transactional");
    assert!(
        queue["total"]["oldest_age_seconds"].as_i64().is_some(),
        "{queue}"
    );

    let (status, done) = h.post("/v1/queue/suspend", json!({"domain": "example.test"}));
    assert_eq!((status, &done["recipients"]), (200, &json!(3)), "{done}");
    let out = h.cli(&["queue", "ls", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listed["total"]["suspended"], 3, "{listed}");

    let (status, done) = h.post("/v1/queue/bounce", json!({"message_id": ids[0]}));
    assert_eq!((status, &done["recipients"]), (200, &json!(1)), "{done}");
    let view = h.wait_final(&ids[0], Duration::from_secs(5));
    let kinds: Vec<&str> = view["recipients"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds.last(), Some(&"bounced"), "{view}");
    assert!(kinds.contains(&"suspended"), "{view}");

    let out = h.cli(&["queue", "resume", "--domain", "example.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "resume: 2 recipient(s)"
    );
    let out = h.cli(&["queue", "bounce"]);
    assert!(!out.status.success(), "an unfiltered bounce is refused");

    let (status, err) = h.post("/v1/queue/explode", json!({}));
    assert_eq!(status, 404, "{err}");
    let (status, err) = h.post("/v1/queue/retry", json!({"everything": true}));
    assert_eq!(
        (status, &err["error"]["code"]),
        (400, &json!("unknown_field")),
        "{err}"
    );
    assert_eq!(sink.count(), 0, "soft addresses never accept mail");
}
