//! The GDPR proof, end to end through the real binary: send to a marker address,
//! record consent, open, export, back up; before erasure no plaintext of the person is
//! anywhere (data directory with the SQLite file and WAL — or `pg_dump` of PostgreSQL
//! —, the server log, the backup); erase; after erasure the address's blind index
//! appears only in the suppression tombstone, the export is 404, and the backup taken
//! before the erasure, restored, yields nothing readable for the person.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    Harness, Options, Sink, files_containing, fresh_pg_database, links_for, pg_admin_url,
    wait_until,
};
use serde_json::{Value, json};

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The tables and columns of an SQLite database holding the erasure tombstone's blind
/// index (as bytes, or as hex text), by an independent reader (Python's sqlite3).
fn places_of_tombstone_hash(db: &Path) -> String {
    let script = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
(h,), = c.execute("SELECT rcpt_hash FROM suppressions WHERE reason = 'erasure'").fetchall()
hits = set()
for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
    for col in [r[1] for r in c.execute(f"PRAGMA table_info('{t}')")]:
        for (v,) in c.execute(f'SELECT "{col}" FROM "{t}"'):
            if (isinstance(v, bytes) and h in v) or (isinstance(v, str) and h.hex() in v):
                hits.add(f"{t}.{col}")
print(",".join(sorted(hits)))
"#;
    ok(Command::new("python3")
        .args(["-c", script, db.to_str().unwrap()])
        .output()
        .unwrap())
    .trim()
    .to_string()
}

fn proof(store_url: Option<String>) {
    let sink = Sink::temp(false);
    let pg = store_url.clone();
    let mut h = Harness::start(Options {
        store_url,
        ..Options::to(&sink)
    });
    let admin = h.new_key(None, "send,read,write,export,privacy,admin", &[]);
    let call = |h: &Harness, method: &str, path: &str, body: Option<Value>| {
        h.request_with_key(method, path, body.as_ref(), &[], Some(&admin))
    };
    let identity = h.root.path().join("identity.txt");
    let recipient = ok(h.cli(&["backup", "keygen", "--out", identity.to_str().unwrap()]));
    let mut config = std::fs::read_to_string(&h.config).unwrap();
    config.push_str(&format!(
        "\n[backup]\nrecipients = [\"{}\"]\n",
        recipient.trim()
    ));
    std::fs::write(&h.config, config).unwrap();

    let tag = std::process::id();
    let local = format!("proofmarker{tag}");
    let email = format!("{local}@example.test");
    let attribute = format!("Wislawa{tag}");
    let (s, c) = call(
        &h,
        "PUT",
        &format!("/v1/contacts/{email}"),
        Some(json!({"attributes": {"first_name": attribute}})),
    );
    assert_eq!(s, 201, "{c}");
    let (s, c) = call(
        &h,
        "POST",
        &format!("/v1/contacts/{email}/consents"),
        Some(
            json!({"purpose": "marketing", "lawful_basis": "consent", "source": "signup-form",
                    "wording": "Send me news", "wording_version": "v1", "ip": "192.0.2.7"}),
        ),
    );
    assert_eq!(s, 201, "{c}");
    let (s, sent) = call(
        &h,
        "POST",
        "/v1/messages",
        Some(
            json!({"from": "news@example.com", "to": [email], "subject": "News",
                    "html": format!("<p>Dear {attribute}</p>"), "stream": "broadcast"}),
        ),
    );
    assert_eq!(s, 202, "{sent}");
    let id = sent["id"].as_str().unwrap();
    let status = &h.wait_final(id, Duration::from_secs(30))["recipients"][0]["status"];
    assert_eq!(status, "delivered");
    let (links, _) = links_for(&sink, &email);
    let pixel = links.iter().find(|u| u.contains("/t/o/")).expect("a pixel");
    assert_eq!(ureq::get(pixel).call().unwrap().status(), 200);
    let opened = wait_until(Duration::from_secs(10), || {
        h.get(&format!("/v1/events?type=opened&message_id={id}")).1["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    });
    assert!(opened, "the open was recorded");
    let export = format!("/v1/subjects/{email}/export");
    let (s, doc) = call(&h, "GET", &export, None);
    assert_eq!(s, 200);
    for expected in [attribute.as_str(), "Send me news", "opened", "delivered"] {
        assert!(
            doc.to_string().contains(expected),
            "export lacks {expected}"
        );
    }
    let backup_dir = h.root.path().join("backups");
    let backup = ok(h.cli(&["backup", "create", "--to", backup_dir.to_str().unwrap()]));
    let backup = Path::new(backup.trim()).to_path_buf();

    // Before erasure: no plaintext anywhere.
    let dump = pg.as_ref().map(|url| {
        ok(Command::new("pg_dump")
            .args(["--data-only", url])
            .output()
            .unwrap())
    });
    for needle in [local.as_bytes(), attribute.as_bytes()] {
        assert!(files_containing(&h.data, needle).is_empty(), "data dir");
        assert!(!contains(h.server_log().as_bytes(), needle), "server log");
        assert!(
            !contains(&std::fs::read(&backup).unwrap(), needle),
            "backup"
        );
        if let Some(dump) = &dump {
            assert!(!contains(dump.as_bytes(), needle), "pg_dump");
        }
    }

    let (s, erased) = call(&h, "DELETE", &format!("/v1/subjects/{email}"), None);
    assert_eq!((s, &erased["erased"]["keys"]), (200, &json!(1)), "{erased}");
    assert_eq!(call(&h, "GET", &export, None).0, 404);
    assert!(h.stop());
    if pg.is_none() {
        assert_eq!(
            places_of_tombstone_hash(&h.data.join("postwerk.db")),
            "suppressions.rcpt_hash",
            "the blind index is left only in the tombstone"
        );
    }

    // The backup taken before the erasure, restored, brings nothing of the person back.
    let restored = ok(h.cli(&[
        "restore",
        backup.to_str().unwrap(),
        "--identity",
        identity.to_str().unwrap(),
    ]));
    assert!(
        restored.contains("subject key(s) re-attached"),
        "{restored}"
    );
    h.serve();
    assert_eq!(
        call(&h, "GET", &export, None).0,
        404,
        "export after restore"
    );
    let (s, _) = call(&h, "GET", &format!("/v1/contacts/{email}"), None);
    assert_eq!(s, 404, "contact after restore");
    let (s, m) = call(&h, "GET", &format!("/v1/messages/{id}"), None);
    assert_eq!(s, 200, "the message itself comes back, {m}");
    assert_eq!(m["recipients"][0]["email"], Value::Null, "{m}");
    assert_eq!(m["subject"], Value::Null, "{m}");
}

#[test]
fn gdpr_proof_on_sqlite() {
    proof(None);
}

#[test]
fn gdpr_proof_on_postgres() {
    let Some(admin) = pg_admin_url() else {
        return;
    };
    let db = format!("postwerk_proof_{}", std::process::id());
    proof(Some(fresh_pg_database(&admin, &db)));
}
