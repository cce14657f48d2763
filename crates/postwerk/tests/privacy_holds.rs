//! What a person's privacy choices do to mail and records that already exist, through
//! the real binary: an erasure tombstone cannot be removed with a `write` key (and
//! is not shown without `privacy`); every suppression removal is audited; a
//! restriction, an unsubscribe, a new suppression entry and a consent withdrawal stop
//! the person's mail that is already waiting (deferred in the store, or queued in the
//! engine's memory); an idempotent replay after an erasure does not hand the erased
//! address back.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, Options, Sink, wait_until};
use serde_json::{Value, json};

/// Sends a text message of `stream` to `to`; returns the response body.
fn send(h: &Harness, key: &str, to: &[&str], stream: &str) -> Value {
    let body = json!({"from": "news@example.com", "to": to, "subject": "s", "text": "t", "stream": stream});
    let (s, v) = h.call(key, "POST", "/v1/messages", Some(body));
    assert_eq!(s, 202, "{v}");
    v
}

/// The recipient `email` of message `id`: (status, event types).
fn recipient(h: &Harness, id: &str, email: &str) -> (String, Vec<String>) {
    let (_, m) = h.get(&format!("/v1/messages/{id}"));
    let r = m["recipients"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["email"] == email))
        .unwrap_or_else(|| panic!("no {email} in {m}"));
    let events = r["events"].as_array().unwrap();
    (
        r["status"].as_str().unwrap().to_string(),
        events
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect(),
    )
}

#[test]
fn erasure_tombstone_is_kept_from_write_keys_and_removals_are_audited() {
    let h = Harness::start(Options::default());
    let privacy = h.new_key(None, "read,write,privacy", &[]);
    let admin = h.new_key(None, "admin", &[]);
    let gone = "gone.marker4711@example.test";

    let (s, v) = h.call(&privacy, "DELETE", &format!("/v1/subjects/{gone}"), None);
    assert_eq!(s, 200, "{v}");
    let path = format!("/v1/suppressions/{gone}");
    let (s, v) = h.request("DELETE", &path, None, &[]);
    assert_eq!(
        (s, &v["error"]["code"]),
        (409, &json!("erasure_tombstone")),
        "{v}"
    );
    assert_eq!(
        send(&h, &h.key, &[gone], "transactional")["recipients"][0]["status"],
        "suppressed",
        "the tombstone still stops mail"
    );
    // Only a privacy key learns that the person was erased.
    let query = format!("/v1/suppressions?email={gone}");
    assert_eq!(h.get(&query).1["suppressions"], json!([]));
    assert_eq!(h.get("/v1/suppressions").1["suppressions"], json!([]));
    let (_, listed) = h.call(&privacy, "GET", &query, None);
    assert_eq!(listed["suppressions"][0]["reason"], "erasure", "{listed}");

    // An ordinary entry is removed with a write key, and the removal is audited
    // under the person's blind index.
    let other = "kept.marker0815@example.test";
    let (s, _) = h.post("/v1/suppressions", json!({"email": other}));
    assert_eq!(s, 201);
    let (s, _) = h.request("DELETE", &format!("/v1/suppressions/{other}"), None, &[]);
    assert_eq!(s, 204);
    let (s, _) = h.request("DELETE", &format!("/v1/suppressions/{other}"), None, &[]);
    assert_eq!(s, 404);
    let removals = h.audit_entries(&admin, "suppression.remove");
    assert_eq!(removals.len(), 1, "{removals:?}");
    let target = removals[0]["target"].as_str().unwrap();
    assert!(
        target.starts_with("rcpt:") && !target.contains("kept"),
        "{target}"
    );
    assert!(
        h.audit_entries(&admin, "suppression.remove_erasure")
            .is_empty()
    );

    // A privacy key may lift the tombstone (the person asked for mail again): audited.
    let (s, v) = h.call(&privacy, "DELETE", &path, None);
    assert_eq!(s, 204, "{v}");
    let lifted = h.audit_entries(&admin, "suppression.remove_erasure");
    assert_eq!(lifted.len(), 1, "{lifted:?}");
    assert_ne!(lifted[0]["target"], removals[0]["target"]);
    assert_eq!(
        send(&h, &h.key, &[gone], "transactional")["recipients"][0]["status"],
        "queued"
    );
}

/// The one-click URL in the copy for `to`.
fn unsubscribe_url(sink: &Sink, to: &str) -> String {
    let text = String::from_utf8_lossy(&sink.copy_for(to)).to_string();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .expect("List-Unsubscribe header");
    line[..line.find('>').unwrap()].to_string()
}

#[test]
fn restriction_unsubscribe_suppression_and_withdrawal_stop_deferred_mail() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink1"), false);
    let port = sink.port;
    let h = Harness::start(Options {
        route_port: Some(port),
        delivery: "retry_base = \"1h\"\nretry_max = \"1h\"",
        extra: "[privacy]\nconsent_required = { broadcast = \"marketing\" }\n",
        ..Default::default()
    });
    let privacy = h.new_key(None, "send,read,write,privacy", &[]);
    let (restricted, suppressed) = ("r.marker@example.test", "s.marker@example.test");
    let (unsubscribed, withdrawn) = ("u.marker@example.test", "w.marker@example.test");
    let control = "c.marker@example.test";
    for to in [unsubscribed, withdrawn, control] {
        let body = json!({"purpose": "marketing", "lawful_basis": "consent"});
        let (s, v) = h.post(&format!("/v1/contacts/{to}/consents"), body);
        assert_eq!(s, 201, "{v}");
    }
    // A first broadcast reaches the person who will unsubscribe with its link.
    let first = send(&h, &h.key, &[unsubscribed], "broadcast");
    let view = h.wait_final(first["id"].as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");
    let link = unsubscribe_url(&sink, unsubscribed);
    drop(sink);

    // The receiver is down: everything is deferred (next attempt in an hour).
    let tx = send(
        &h,
        &h.key,
        &[restricted, suppressed, control],
        "transactional",
    );
    let bulk = send(&h, &h.key, &[unsubscribed, withdrawn, control], "broadcast");
    let (tx, bulk) = (tx["id"].as_str().unwrap(), bulk["id"].as_str().unwrap());
    let all = [
        (tx, restricted),
        (tx, suppressed),
        (tx, control),
        (bulk, unsubscribed),
        (bulk, withdrawn),
        (bulk, control),
    ];
    assert!(
        wait_until(Duration::from_secs(30), || all
            .iter()
            .all(|(id, to)| recipient(&h, id, to).0 == "deferred")),
        "{}",
        h.server_log()
    );

    // Two people act while their mail is deferred, two while it is suspended.
    let (s, v) = h.call(
        &privacy,
        "POST",
        &format!("/v1/subjects/{restricted}/restrict"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = h.post("/v1/suppressions", json!({"email": suppressed}));
    assert_eq!(s, 201, "{v}");
    let (s, v) = h.post("/v1/queue/suspend", json!({}));
    assert_eq!((s, &v["recipients"]), (200, &json!(4)), "{v}");
    let resp = ureq::post(&link)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string("List-Unsubscribe=One-Click")
        .expect("one-click POST");
    assert_eq!(resp.status(), 200);
    let purpose = format!("/v1/contacts/{withdrawn}/consents/marketing");
    let (s, v) = h.request("DELETE", &purpose, None, &[]);
    assert_eq!(s, 200, "{v}");

    // Each is final at once, with an event saying why, as acceptance would have done.
    for (id, to, status) in [
        (tx, restricted, "restricted"),
        (tx, suppressed, "suppressed"),
        (bulk, unsubscribed, "suppressed"),
        (bulk, withdrawn, "no_consent"),
    ] {
        let (got, events) = recipient(&h, id, to);
        assert_eq!(got, status, "{to}: {events:?}");
        assert_eq!(events.last().map(String::as_str), Some(status), "{to}");
    }

    // The receiver comes back; suspended mail is resumed and deferred mail retried
    // now: only the control recipient gets mail.
    let sink = Sink::start_on(&root.path().join("sink2"), port);
    let (s, v) = h.post("/v1/queue/resume", json!({}));
    assert_eq!((s, &v["recipients"]), (200, &json!(2)), "{v}");
    let (s, v) = h.post("/v1/queue/retry", json!({}));
    assert_eq!(s, 200, "{v}");
    assert!(
        wait_until(Duration::from_secs(30), || {
            recipient(&h, tx, control).0 == "delivered"
                && recipient(&h, bulk, control).0 == "delivered"
        }),
        "{}",
        h.server_log()
    );
    let rcpts: Vec<Value> = sink
        .messages()
        .into_iter()
        .map(|(_, m)| m["rcpt"].clone())
        .collect();
    assert_eq!(rcpts, [json!([control]), json!([control])], "{rcpts:?}");
}

/// An SMTP receiver that holds each connection's greeting until opened, and records
/// the recipients of the messages it takes and the connections that ended.
struct Gate {
    port: u16,
    open: Arc<AtomicBool>,
    connected: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    rcpts: Arc<Mutex<Vec<String>>>,
}

impl Gate {
    fn start() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let gate = Gate {
            port: listener.local_addr().unwrap().port(),
            open: Arc::default(),
            connected: Arc::default(),
            closed: Arc::default(),
            rcpts: Arc::default(),
        };
        let (open, connected, closed, rcpts) = (
            gate.open.clone(),
            gate.connected.clone(),
            gate.closed.clone(),
            gate.rcpts.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (open, connected, closed, rcpts) = (
                    open.clone(),
                    connected.clone(),
                    closed.clone(),
                    rcpts.clone(),
                );
                std::thread::spawn(move || {
                    connected.fetch_add(1, Ordering::SeqCst);
                    while !open.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let _ = Gate::serve(stream, &rcpts);
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        gate
    }

    fn serve(stream: TcpStream, rcpts: &Mutex<Vec<String>>) -> std::io::Result<()> {
        let mut out = stream.try_clone()?;
        let mut lines = BufReader::new(stream);
        out.write_all(b"220 gate.test ESMTP\r\n")?;
        let mut envelope = Vec::new();
        let mut line = String::new();
        while lines.read_line(&mut line)? > 0 {
            let cmd = line.trim_end().to_ascii_uppercase();
            let reply: &[u8] = if cmd.starts_with("RCPT TO:") {
                let to = line.trim_end()[8..].trim().trim_matches(['<', '>']);
                envelope.push(to.to_string());
                b"250 ok\r\n"
            } else if cmd == "DATA" {
                out.write_all(b"354 go ahead\r\n")?;
                let mut body = String::new();
                while lines.read_line(&mut body)? > 0 && body != ".\r\n" {
                    body.clear();
                }
                rcpts.lock().unwrap().append(&mut envelope);
                b"250 accepted\r\n"
            } else if cmd == "QUIT" {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            } else if cmd.starts_with("MAIL FROM:") || cmd == "RSET" {
                envelope.clear();
                b"250 ok\r\n"
            } else {
                b"250 gate.test\r\n"
            };
            out.write_all(reply)?;
            line.clear();
        }
        Ok(())
    }
}

#[test]
fn mail_queued_in_memory_is_dropped_when_the_person_is_restricted() {
    let gate = Gate::start();
    let h = Harness::start(Options {
        route_port: Some(gate.port),
        delivery: "max_connections_per_destination = 1",
        ..Default::default()
    });
    let privacy = h.new_key(None, "privacy", &[]);
    let first = send(&h, &h.key, &["first@example.test"], "transactional");
    // The only connection to the destination waits for its greeting; mail accepted
    // now waits in the engine's memory behind it.
    assert!(wait_until(Duration::from_secs(30), || gate
        .connected
        .load(Ordering::SeqCst)
        == 1));
    let held = send(&h, &h.key, &["held@example.test"], "transactional");
    let (s, v) = h.call(
        &privacy,
        "POST",
        "/v1/subjects/held@example.test/restrict",
        None,
    );
    assert_eq!(s, 200, "{v}");
    gate.open.store(true, Ordering::SeqCst);
    let view = h.wait_final(first["id"].as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");
    // The connection ends once nothing is left for it.
    assert!(wait_until(Duration::from_secs(30), || gate
        .closed
        .load(Ordering::SeqCst)
        >= 1));
    assert_eq!(*gate.rcpts.lock().unwrap(), ["first@example.test"]);
    let (status, events) = recipient(&h, held["id"].as_str().unwrap(), "held@example.test");
    assert_eq!(
        (status.as_str(), events),
        ("restricted", vec!["accepted".into(), "restricted".into()])
    );
}

#[test]
fn idempotent_replay_after_erasure_holds_no_address() {
    let h = Harness::start(Options::default());
    let privacy = h.new_key(None, "privacy", &[]);
    let sender = h.new_key(None, "send", &[]);
    let (gone, kept) = (
        "gone.marker2323@example.test",
        "kept.marker2323@example.test",
    );
    let body = json!({"from": "a@example.com", "to": [gone, kept], "text": "t"});
    let send = || {
        h.request_with_key(
            "POST",
            "/v1/messages",
            Some(&body),
            &[("Idempotency-Key", "order-1")],
            Some(&sender),
        )
    };
    let (s, first) = send();
    assert_eq!(s, 202, "{first}");
    let (s, again) = send();
    assert_eq!(
        (s, &again),
        (202, &first),
        "a replay answers as the first time"
    );

    let (s, v) = h.call(&privacy, "DELETE", &format!("/v1/subjects/{gone}"), None);
    assert_eq!(s, 200, "{v}");
    let (s, replay) = send();
    assert_eq!(s, 202, "{replay}");
    assert!(!replay.to_string().contains("gone.marker"), "{replay}");
    let rcpts = &replay["recipients"];
    assert_eq!(rcpts[0]["id"], first["recipients"][0]["id"]);
    assert_eq!(
        (&rcpts[0]["email"], &rcpts[1]["email"]),
        (&Value::Null, &json!(kept))
    );
    assert_eq!(
        replay["id"], first["id"],
        "still a replay: nothing new was sent"
    );
}
