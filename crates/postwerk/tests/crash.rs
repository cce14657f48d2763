//! Issue 2, crash safety: `kill -9` of `postwerk serve` while 10,000 accepted
//! messages are being delivered, then a restart. Every message that got a 202
//! arrives; duplicates are possible only for deliveries in flight at the kill, so
//! they are bounded by the delivery concurrency.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::json;

const N: usize = 10_000;
const CONCURRENCY: usize = 16;

#[test]
fn kill_9_during_delivery_loses_nothing() {
    let sink = Sink::temp(false);
    let delivery =
        format!("max_connections = {CONCURRENCY}\nmax_connections_per_destination = {CONCURRENCY}");
    let mut h = Harness::start(Options {
        delivery: &delivery,
        ..Options::to(&sink)
    });
    for start in (0..N).step_by(500) {
        let msgs: Vec<_> = (start..start + 500)
            .map(|i| json!({"from": "bulk@example.com", "to": [format!("r{i}@example.test")], "subject": format!("crash {i}"), "text": "x".repeat(1024)}))
            .collect();
        let (s, v) = h.post("/v1/messages/batch", json!({ "messages": msgs }));
        assert_eq!(s, 202, "{v}");
    }
    assert!(sink.wait_for(300, Duration::from_secs(60)));
    h.kill9();
    let before = sink.count();
    assert!(
        before < N,
        "everything was delivered before the kill; the test proves nothing"
    );
    h.serve();
    let complete = sink.wait_for(N, Duration::from_secs(300));
    std::thread::sleep(Duration::from_secs(2)); // late duplicates would show up now
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (eml, _) in sink.messages() {
        let text = String::from_utf8_lossy(&eml);
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_string();
        *seen.entry(subject).or_default() += 1;
    }
    let missing = (0..N)
        .filter(|i| !seen.contains_key(&format!("crash {i}")))
        .count();
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    println!(
        "killed after {before} delivered; unique={} missing={missing} duplicates={duplicates}",
        seen.len()
    );
    assert!(
        complete && missing == 0,
        "{missing} accepted messages were lost"
    );
    assert!(
        duplicates <= CONCURRENCY,
        "{duplicates} duplicates > delivery concurrency {CONCURRENCY}"
    );
}
