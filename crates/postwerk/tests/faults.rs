//! Issue 2, faults: when the database goes away, sends get 503 and nothing is
//! acknowledged; when it comes back, Postwerk recovers without a restart and every
//! acknowledged message is delivered. Also: configuration errors name key and line.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Harness, Options, Sink, pg_admin_url, psql};
use serde_json::json;

#[test]
fn database_outage_gives_503_and_loses_nothing() {
    let Some(admin) = pg_admin_url() else {
        return;
    };
    let name = format!("pw_fault_{}", std::process::id());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin, &format!("DROP ROLE IF EXISTS {name}"));
    psql(&admin, &format!("CREATE ROLE {name} LOGIN"));
    psql(&admin, &format!("CREATE DATABASE {name} OWNER {name}"));
    let url = format!("postgres://{name}@127.0.0.1/{name}");

    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        store_url: Some(url),
        ..Options::to(&sink)
    });
    let send = |i: usize| {
        h.post(
            "/v1/messages",
            json!({"from": "a@example.com", "to": [format!("f{i}@example.test")], "text": "t"}),
        )
    };
    assert_eq!(send(0).0, 202);

    // The database goes away: no login, existing sessions killed.
    psql(&admin, &format!("ALTER ROLE {name} NOLOGIN"));
    psql(
        &admin,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'"),
    );
    let (status, body) = send(1);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");

    // It comes back: the same process recovers.
    psql(&admin, &format!("ALTER ROLE {name} LOGIN"));
    let recovered = common::wait_until(Duration::from_secs(20), || send(2).0 == 202);
    assert!(
        recovered,
        "no recovery after the database came back\n{}",
        h.server_log()
    );
    assert!(
        sink.wait_for(2, Duration::from_secs(30)),
        "{}",
        h.server_log()
    );
    let rcpts: Vec<String> = sink
        .messages()
        .iter()
        .map(|(_, m)| m["rcpt"][0].as_str().unwrap().to_string())
        .collect();
    assert!(
        rcpts.contains(&"f0@example.test".to_string())
            && rcpts.contains(&"f2@example.test".to_string())
    );
    assert!(
        !rcpts.contains(&"f1@example.test".to_string()),
        "a refused send must not be delivered"
    );
    drop(h);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    psql(&admin, &format!("DROP ROLE IF EXISTS {name}"));
}

#[test]
fn config_check_names_the_bad_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[http]\nlisten = \"127.0.0.1:8080\"\n[delivery]\nehlo_name = \"mta.example.com\"\nexpirey = \"1h\"\n").unwrap();
    let out = Command::new(common::bin())
        .arg("--config")
        .arg(&bad)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expirey") && err.contains("line 5"), "{err}");

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[delivery]\nehlo_name = \"mta.example.com\"\n[delivery.routes]\n\"example.test\" = \"127.0.0.1:2626\"\n").unwrap();
    let out = Command::new(common::bin())
        .args(["config", "check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));

    let out = Command::new(common::bin())
        .arg("--config")
        .arg(&good)
        .args(["config", "check"])
        .env("POSTWERK_HTTP_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad environment override must be refused"
    );
}
