//! Traffic shaping through a running server: a site's message rate paces bulk mail,
//! a throttling reply (421) makes the site back off while transactional mail still
//! goes first, and a bad shaping file is refused at start naming file and key.
//!
//! The time checks here are lower bounds (mail was held at least this long), which a
//! slow machine cannot break.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

const NO_CONSENT_GATE: &str = "[privacy]\nconsent_required = {}\n";

/// A shaping file making 127.0.0.1 (the static route's host) a site of its own.
fn shaping_file(dir: &std::path::Path, rate: f64) -> String {
    let path = dir.join("shaping.toml");
    let text = format!(
        "[[site]]\nname = \"lab\"\nmx_suffixes = [\"127.0.0.1\"]\nmessages_per_second = {rate:.1}\n"
    );
    std::fs::write(&path, text).unwrap();
    format!("shaping = \"{}\"", path.display())
}

/// Sink delivery time of each recipient.
fn delivered_at(sink: &Sink) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = sink
        .messages()
        .into_iter()
        .map(|(_, m)| {
            (
                m["rcpt"][0].as_str().unwrap_or_default().to_string(),
                m["t"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v
}

fn batch(h: &Harness, stream: &str, to: &[&str]) {
    let messages: Vec<Value> = to
        .iter()
        .map(|r| json!({"from": "app@example.com", "to": [r], "text": "t", "stream": stream}))
        .collect();
    let (status, body) = h.post("/v1/messages/batch", json!({"messages": messages}));
    assert_eq!(status, 202, "{body}");
}

#[test]
fn a_sites_message_rate_paces_bulk_mail() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let shaping = shaping_file(root.path(), 4.0);
    let h = Harness::start(Options {
        delivery: &shaping,
        extra: NO_CONSENT_GATE,
        ..Options::to(&sink)
    });
    let to: Vec<String> = (0..9).map(|i| format!("b{i}@example.test")).collect();
    batch(
        &h,
        "broadcast",
        &to.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        sink.wait_for(9, Duration::from_secs(30)),
        "delivered {}",
        sink.count()
    );
    let times = delivered_at(&sink);
    let span = times[8].1 - times[0].1;
    assert!(
        span >= 1.8,
        "9 messages at 4/s take at least 2 s; took {span:.2} s"
    );
}

#[test]
fn throttling_backs_off_bulk_mail_while_transactional_goes_first() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let shaping = shaping_file(root.path(), 100.0);
    let h = Harness::start(Options {
        delivery: &shaping,
        extra: NO_CONSENT_GATE,
        ..Options::to(&sink)
    });
    let (status, body) = h.post(
        "/v1/messages",
        json!({"from": "app@example.com", "to": ["throttle1@example.test"], "text": "t", "stream": "broadcast"}),
    );
    assert_eq!(status, 202, "{body}");
    let throttled_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let id = body["id"].as_str().unwrap();
    let deferred = common::wait_until(Duration::from_secs(10), || {
        let (_, v) = h.get(&format!("/v1/messages/{id}"));
        v["recipients"].as_array().is_some_and(|rs| {
            rs.iter().any(|r| {
                r["status"] == "deferred"
                    && r["events"]
                        .as_array()
                        .is_some_and(|es| es.iter().any(|e| e["reason"] == "toomanyconn"))
            })
        })
    });
    assert!(deferred, "the 421 is recorded as toomanyconn");
    batch(&h, "broadcast", &["bulk1@example.test"]);
    std::thread::sleep(Duration::from_millis(300));
    batch(&h, "transactional", &["urgent1@example.test"]);
    assert!(
        sink.wait_for(2, Duration::from_secs(40)),
        "delivered {}",
        sink.count()
    );
    let times = delivered_at(&sink);
    let order: Vec<&str> = times.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        order,
        ["urgent1@example.test", "bulk1@example.test"],
        "transactional mail is not held"
    );
    let held = times[1].1 - throttled_at;
    assert!(
        held >= 9.0,
        "bulk mail waits out the 10 s back-off; waited {held:.1} s"
    );
    assert!(h.server_log().contains("site throttles: backing off"));
}

#[test]
fn a_bad_shaping_file_is_refused_naming_file_and_key() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("shaping.toml");
    std::fs::write(
        &path,
        "[[site]]\nname = \"x\"\nmx_suffixes = [\"a.test\"]\nmax_connections = 0\n",
    )
    .unwrap();
    let config = root.path().join("postwerk.toml");
    std::fs::write(
        &config,
        format!("[delivery]\nshaping = \"{}\"\n", path.display()),
    )
    .unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("--config")
        .arg(&config)
        .args(["config", "check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("shaping.toml: site[0].max_connections"),
        "{err}"
    );
}
