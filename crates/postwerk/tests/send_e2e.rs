//! Issue 2, through the real front door: API → queue → DKIM → SMTP (STARTTLS) →
//! an independent receiver; both signatures verify with dkimpy against the records
//! the API publishes; the status and event timeline are readable.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{Harness, Options, Sink, dkim_verify};
use serde_json::json;

#[test]
fn full_message_is_delivered_signed_over_tls_and_logged() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&sink_dir.path().join("sink"), true);
    let h = Harness::start(Options::to(&sink));

    let (status, domain) = h.get("/v1/domains/example.com");
    assert_eq!(status, 200, "{domain}");
    assert_eq!(domain["domain"], "example.com");

    let pdf = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 test");
    let (status, sent) = h.post(
        "/v1/messages",
        json!({
            "from": "Alice <alice@example.com>",
            "to": ["bob@example.test", {"email": "carol@example.test", "name": "Carol"}],
            "cc": [], "bcc": ["dave@example.test"], "reply_to": "help@example.com",
            "subject": "Welcome", "text": "Hello Bob", "html": "<p>Hello Bob</p>",
            "headers": {"X-Course": "42"},
            "attachments": [{"filename": "a.pdf", "content_type": "application/pdf", "content": pdf, "content_id": null}],
            "stream": "transactional", "tags": ["welcome"], "metadata": {"user": "7"}
        }),
    );
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_str().unwrap();
    assert!(id.starts_with("msg_"));
    let rcpts = sent["recipients"].as_array().unwrap();
    assert_eq!(rcpts.len(), 3);
    assert!(
        rcpts
            .iter()
            .all(|r| r["status"] == "queued" && r["id"].as_str().unwrap().starts_with("rcpt_"))
    );

    assert!(
        sink.wait_for(3, Duration::from_secs(30)),
        "only {} of 3 arrived\n{}",
        sink.count(),
        h.server_log()
    );
    let msgs = sink.messages();
    let mut envelope_rcpts: Vec<String> = msgs
        .iter()
        .map(|(_, m)| m["rcpt"][0].as_str().unwrap().to_string())
        .collect();
    envelope_rcpts.sort();
    assert_eq!(
        envelope_rcpts,
        [
            "bob@example.test",
            "carol@example.test",
            "dave@example.test"
        ]
    );
    for (eml, meta) in &msgs {
        let text = String::from_utf8_lossy(eml);
        assert!(text.contains("Subject: Welcome") && text.contains("X-Course: 42"));
        assert!(!text.contains("dave@"), "Bcc leaked into headers");
        assert!(text.contains(&format!("Message-ID: <{id}@mta.postwerk.test>")));
        let mail_from = meta["mail_from"].as_str().unwrap();
        assert!(
            mail_from.ends_with("@bounces.example.com") && mail_from.starts_with("b+rcpt_"),
            "{mail_from}"
        );
        assert!(
            !mail_from.contains("bob")
                && !mail_from.contains("carol")
                && !mail_from.contains("dave")
        );
        assert!(
            meta["tls"]["version"]
                .as_str()
                .is_some_and(|v| v.starts_with("TLSv1.")),
            "no TLS: {meta}"
        );
        let verified = dkim_verify(&domain, eml, sink_dir.path());
        assert!(
            verified.contains(&("rsa-sha256".to_string(), true)),
            "{verified:?}"
        );
        assert!(
            verified.contains(&("ed25519-sha256".to_string(), true)),
            "{verified:?}"
        );
    }

    let status_view = h.wait_final(id, Duration::from_secs(10));
    assert_eq!(status_view["subject"], "Welcome");
    assert_eq!(status_view["tags"], json!(["welcome"]));
    for r in status_view["recipients"].as_array().unwrap() {
        assert_eq!(r["status"], "delivered", "{status_view}");
        let events = r["events"].as_array().unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["accepted", "delivered"]);
        let d = &events[1];
        assert!(d["reply"].as_str().unwrap().starts_with("250 2.0.0"), "{d}");
        assert_eq!(d["ip"], "127.0.0.1");
        assert_eq!(d["mx"], "127.0.0.1");
        assert!(
            d["tls"]["version"].as_str().unwrap().starts_with("TLSv1."),
            "{d}"
        );
        assert!(d["tls"]["cipher"].as_str().is_some_and(|c| !c.is_empty()));
    }

    // Events API: by recipient (blind index), by type, and cursor pagination.
    let (status, ev) = h.get("/v1/events?recipient=Carol@Example.test");
    assert_eq!(status, 200, "{ev}");
    let evs = ev["events"].as_array().unwrap();
    assert_eq!(evs.len(), 2, "{ev}");
    let carol_id = rcpts
        .iter()
        .find(|r| r["email"] == "carol@example.test")
        .unwrap()["id"]
        .clone();
    assert!(evs.iter().all(|e| e["recipient_id"] == carol_id));
    let (_, delivered) = h.get(&format!("/v1/events?type=delivered&message_id={id}"));
    assert_eq!(delivered["events"].as_array().unwrap().len(), 3);
    let (_, page1) = h.get(&format!("/v1/events?message_id={id}&limit=4"));
    assert_eq!(page1["events"].as_array().unwrap().len(), 4);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = h.get(&format!(
        "/v1/events?message_id={id}&limit=4&cursor={cursor}"
    ));
    assert_eq!(page2["events"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());

    // Stream, tag and time-window filters.
    let count = |q: &str| {
        let (status, v) = h.get(&format!("/v1/events?{q}"));
        assert_eq!(status, 200, "{q}: {v}");
        v["events"].as_array().unwrap().len()
    };
    assert_eq!(count("stream=transactional&tag=welcome"), 6);
    assert_eq!(count("tag=nope"), 0);
    assert_eq!(count("stream=broadcast"), 0);
    assert_eq!(count("until=2000-01-01T00:00:00Z"), 0);
    assert_eq!(count("since=2000-01-01T00:00:00Z&until=4102444800"), 6);
    let (status, bad) = h.get("/v1/events?until=yesterday");
    assert_eq!(
        (status, &bad["error"]["field"]),
        (422, &json!("until")),
        "{bad}"
    );

    // Message search: by tag, recipient (blind index) and stream, newest first.
    let (status, found) = h.get("/v1/messages?tag=welcome&recipient=CAROL@example.test");
    assert_eq!(status, 200, "{found}");
    let list = found["messages"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{found}");
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["subject"], "Welcome");
    assert_eq!(list[0]["recipients"].as_array().unwrap().len(), 3);
    assert!(list[0]["recipients"][0]["events"].is_array(), "{found}");
    let (status, light) = h.get("/v1/messages?recipient=carol@example.test&events=false");
    assert_eq!(status, 200, "{light}");
    let rcpt = &light["messages"][0]["recipients"][0];
    assert_eq!(
        rcpt["status"], list[0]["recipients"][0]["status"],
        "{light}"
    );
    assert!(
        rcpt.get("events").is_none(),
        "events=false leaves them out: {light}"
    );
    let (_, none) = h.get("/v1/messages?stream=broadcast");
    assert_eq!(none["messages"], json!([]));
    let (status, bad) = h.get("/v1/messages?cursor=x");
    assert_eq!(
        (status, &bad["error"]["code"]),
        (422, &json!("invalid_cursor"))
    );
}

#[test]
fn raw_and_batch_sends_are_delivered() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options::to(&sink));
    let data = base64::engine::general_purpose::STANDARD.encode(
        "From: App <app@example.com>\nTo: raw@example.test\nSubject: Raw one\n\nraw body\n",
    );
    let (status, raw) = h.post(
        "/v1/messages/raw",
        json!({"mail_from": "app@example.com", "rcpt_to": ["raw@example.test"], "data": data}),
    );
    assert_eq!(status, 202, "{raw}");
    let batch: Vec<_> = (0..5)
        .map(|i| json!({"from": "app@example.com", "to": [format!("b{i}@example.test")], "subject": format!("batch {i}"), "text": "x"}))
        .chain([json!({"from": "app@nowhere.example", "to": ["x@example.test"], "text": "x"})])
        .collect();
    let (status, res) = h.post("/v1/messages/batch", json!({ "messages": batch }));
    assert_eq!(status, 207, "{res}");
    let results = res["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert!(
        results[..5]
            .iter()
            .all(|r| r["id"].as_str().is_some_and(|i| i.starts_with("msg_")))
    );
    assert_eq!(results[5]["error"]["code"], "domain_not_registered");
    assert_eq!(results[5]["error"]["field"], "messages[5].from");
    assert!(
        sink.wait_for(6, Duration::from_secs(30)),
        "{} arrived",
        sink.count()
    );
    let raw_msg = sink
        .messages()
        .into_iter()
        .find(|(_, m)| m["rcpt"][0] == "raw@example.test")
        .unwrap();
    let text = String::from_utf8_lossy(&raw_msg.0);
    assert!(
        text.contains("DKIM-Signature:")
            && text.contains("Subject: Raw one")
            && text.contains("\r\nraw body\r\n")
    );
}
