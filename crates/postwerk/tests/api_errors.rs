//! Issue 2, bad input: every refusal is a precise JSON error and stores nothing.

mod common;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

#[test]
fn bad_requests_get_precise_errors() {
    let h = Harness::start(Options::default());
    let ok =
        json!({"from": "a@example.com", "to": ["b@example.test"], "subject": "s", "text": "t"});

    // Authentication and scopes.
    let (s, v) = h.request_with_key("POST", "/v1/messages", Some(&ok), &[], None);
    assert_eq!((s, code(&v)), (401, "missing_api_key"));
    let (s, v) = h.request_with_key("POST", "/v1/messages", Some(&ok), &[], Some("pw_live_nope"));
    assert_eq!((s, code(&v)), (401, "invalid_api_key"));
    let last = if h.key.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{last}", &h.key[..h.key.len() - 1]);
    let (s, v) = h.request_with_key("POST", "/v1/messages", Some(&ok), &[], Some(&forged));
    assert_eq!((s, code(&v)), (401, "invalid_api_key"));
    let reader = h.named_key("reader", None, "read", &[]);
    let (s, v) = h.request_with_key("POST", "/v1/messages", Some(&ok), &[], Some(&reader));
    assert_eq!((s, code(&v)), (403, "insufficient_scope"));

    // Malformed JSON and wrong content type.
    let resp = ureq::post(&format!("http://{}/v1/messages", h.http))
        .set("Authorization", &format!("Bearer {}", h.key))
        .set("Content-Type", "application/json")
        .send_string("{\"from\": ");
    let Err(ureq::Error::Status(400, r)) = resp else {
        panic!("malformed JSON not refused with 400")
    };
    let v: Value = r.into_json().unwrap();
    assert_eq!(code(&v), "invalid_json");

    let cases = [
        (
            json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t", "tos": []}),
            400,
            "unknown_field",
            Some("tos"),
        ),
        (
            json!({"to": ["b@example.test"], "text": "t"}),
            400,
            "missing_field",
            Some("from"),
        ),
        (
            json!({"from": "x", "to": ["not an address"]}),
            422,
            "invalid_address",
            Some("from"),
        ),
        (
            json!({"from": "a@example.com", "to": ["not an address"], "text": "t"}),
            422,
            "invalid_address",
            Some("to[0]"),
        ),
        (
            json!({"from": "a@example.com", "to": (0..51).map(|i| format!("r{i}@example.test")).collect::<Vec<_>>(), "text": "t"}),
            422,
            "too_many_recipients",
            Some("to"),
        ),
        (
            json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t", "stream": "bulk"}),
            422,
            "unknown_stream",
            Some("stream"),
        ),
        (
            json!({"from": "a@other.example", "to": ["b@example.test"], "text": "t"}),
            422,
            "domain_not_registered",
            Some("from"),
        ),
        (
            json!({"from": "a@example.com", "to": ["b@example.test"], "text": "x".repeat(26 * 1024 * 1024)}),
            422,
            "message_too_large",
            Some("message"),
        ),
    ];
    for (body, status, want, field) in cases {
        let (s, v) = h.post("/v1/messages", body);
        assert_eq!((s, code(&v)), (status, want), "{v}");
        assert_eq!(v["error"]["field"].as_str(), field, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    // Nothing of the refused requests was stored.
    let (_, events) = h.get("/v1/events");
    assert_eq!(events["events"].as_array().unwrap().len(), 0, "{events}");

    // Unknown endpoint and unknown message are JSON 404s.
    assert_eq!(h.get("/v1/nope").0, 404);
    let (s, v) = h.get("/v1/messages/msg_doesnotexist");
    assert_eq!((s, code(&v)), (404, "not_found"));
}

#[test]
fn idempotency_key_replays_the_first_result_and_sends_nothing_more() {
    // Delivered to a sink: without a route, example.test does not resolve, the first
    // message bounces and suppresses the address, and a third message sent after that
    // bounce is recorded `suppressed`, not `accepted`.
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(sink_dir.path(), false);
    let h = Harness::start(Options::to(&sink));
    let body = json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t"});
    let (s1, first) = h.request(
        "POST",
        "/v1/messages",
        Some(&body),
        &[("Idempotency-Key", "order-42")],
    );
    let (s2, second) = h.request(
        "POST",
        "/v1/messages",
        Some(&body),
        &[("Idempotency-Key", "order-42")],
    );
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(first, second);
    let (_, third) = h.request(
        "POST",
        "/v1/messages",
        Some(&body),
        &[("Idempotency-Key", "order-43")],
    );
    assert_ne!(first["id"], third["id"]);
    let (_, events) = h.get("/v1/events?type=accepted");
    assert_eq!(
        events["events"].as_array().unwrap().len(),
        2,
        "a replay must not store a second message"
    );

    // An invalid request is refused whatever key it carries; the same key on another
    // endpoint is another request.
    let (s, v) = h.request(
        "POST",
        "/v1/messages",
        Some(
            &json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t", "track": "x"}),
        ),
        &[("Idempotency-Key", "order-42")],
    );
    assert_eq!((s, code(&v)), (400, "invalid_field"), "{v}");
    let (s, batch) = h.request(
        "POST",
        "/v1/messages/batch",
        Some(&json!({"messages": [body]})),
        &[("Idempotency-Key", "order-42")],
    );
    assert_eq!(s, 202, "{batch}");
    assert!(
        batch["results"].is_array(),
        "a batch answer, not the replayed single one: {batch}"
    );
}

#[test]
fn arrays_are_not_objects() {
    let h = Harness::start(Options::default());
    // The scope is checked before the body is read: rotating needs `admin`.
    let admin = h.named_key("admin", None, "send,admin", &[]);
    for (path, body) in [
        ("/v1/messages", json!(["a@example.com", ["b@example.test"]])),
        ("/v1/keys/key_x/rotate", json!([])),
        (
            "/v1/messages",
            json!({"from": "a@example.com", "to": ["b@example.test"], "text": "t", "track": [true, "all"]}),
        ),
    ] {
        let (s, v) = h.request_with_key("POST", path, Some(&body), &[], Some(&admin));
        assert_eq!(s, 400, "{path} {body}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("a JSON object"),
            "{v}"
        );
    }
}
