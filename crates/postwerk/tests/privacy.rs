//! Issue 2, privacy by design: after sending to a unique marker address, neither
//! the data directory (database, WAL, keys, logs) nor the server log contains it
//! in plaintext; on PostgreSQL neither does a pg_dump.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink, files_containing, fresh_pg_database, pg_admin_url, psql};
use serde_json::json;

fn send_markers(h: &Harness, marker: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let v = h.send(
                json!({"from": "Sender <sender@example.com>", "to": [format!("{marker}-{i}@example.test")],
                       "subject": format!("subject {marker}"), "text": format!("body {marker} {i}"),
                       "metadata": {"note": marker}})
            );
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn no_plaintext_address_or_body_in_the_data_dir_or_logs() {
    let sink = Sink::temp(false);
    let mut h = Harness::start(Options {
        log_json: true,
        ..Options::to(&sink)
    });
    let marker = format!("mk{}", std::process::id());
    let ids = send_markers(&h, &marker, 20);
    assert!(sink.wait_for(20, Duration::from_secs(30)));
    for id in &ids {
        assert_eq!(
            h.wait_final(id, Duration::from_secs(10))["recipients"][0]["status"],
            "delivered"
        );
    }
    // The API (authorised) can still read it back: it is encrypted, not lost.
    let (_, v) = h.get(&format!("/v1/messages/{}", ids[0]));
    assert_eq!(
        v["recipients"][0]["email"],
        format!("{marker}-0@example.test")
    );
    assert!(h.stop(), "serve did not shut down cleanly");
    let hits = files_containing(&h.data, marker.as_bytes());
    assert!(hits.is_empty(), "plaintext marker found in {hits:?}");
    assert!(
        !h.server_log().contains(&marker),
        "marker found in the server log"
    );
    assert!(
        h.server_log().contains("delivery attempt"),
        "the log should still say what happened"
    );
    for line in h.server_log().lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("POSTWERK_LOG_FORMAT=json: not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(
        sink.messages()
            .iter()
            .any(|(eml, _)| String::from_utf8_lossy(eml).contains(&marker)),
        "sanity: marker was sent"
    );
}

#[test]
fn no_plaintext_address_in_a_postgres_dump() {
    let Some(admin) = pg_admin_url() else {
        return;
    };
    let db = format!("postwerk_e2e_{}", std::process::id());
    let url = fresh_pg_database(&admin, &db);
    let sink = Sink::temp(false);
    let mut h = Harness::start(Options {
        store_url: Some(url.clone()),
        ..Options::to(&sink)
    });
    let marker = format!("pg{}", std::process::id());
    let ids = send_markers(&h, &marker, 5);
    assert!(
        sink.wait_for(5, Duration::from_secs(30)),
        "{}",
        h.server_log()
    );
    assert_eq!(
        h.wait_final(&ids[4], Duration::from_secs(10))["recipients"][0]["status"],
        "delivered"
    );
    assert!(h.stop());
    let dump = std::process::Command::new("pg_dump")
        .arg(&url)
        .output()
        .expect("pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(dump.stdout.len() > 1000, "dump suspiciously small");
    let dump = String::from_utf8_lossy(&dump.stdout);
    let hex: String = marker.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!dump.contains(&marker), "plaintext marker in pg_dump");
    assert!(
        !dump.contains(&hex),
        "marker found hex-encoded (bytea) in pg_dump"
    );
    assert!(files_containing(&h.data, marker.as_bytes()).is_empty());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {db}"));
}
