//! The GDPR toolkit through the real front door: a contact with consent receives a
//! message; the export holds all of it; erasure leaves nothing readable (grep of the
//! data directory), only a hash tombstone that suppresses later sends; every access
//! is in the audit chain, which `postwerk audit verify` checks and which detects
//! tampering. Scopes and tenants fence it all.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

fn key(h: &Harness, tenant: Option<&str>, scopes: &str) -> String {
    h.new_key(tenant, scopes, &[])
}

/// RFC 3339 time `days` days ago.
fn chrono_days_ago(days: u64) -> String {
    let out = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("{days} days ago"),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn consent_export_erase_and_audit() {
    let sink = Sink::temp(false);
    let mut h = Harness::start(Options::to(&sink));
    let admin = key(&h, None, "send,read,write,export,privacy,admin");
    let sender = key(&h, None, "send");
    assert!(h.cli(&["tenants", "create", "other"]).status.success());
    assert!(
        !h.cli(&["tenants", "create", "other"]).status.success(),
        "duplicate name"
    );
    let other = key(&h, Some("other"), "send,read,write,export,privacy,admin");

    let email = "zofia.marker7319@example.test";
    let path = format!("/v1/contacts/{email}");
    let body = json!({"attributes": {"first_name": "Zofia", "city": "Gdansk"}, "lists": ["news"]});
    let (s, c) = h.call(&admin, "PUT", &path, Some(body.clone()));
    assert_eq!(s, 201, "{c}");
    let rectified =
        json!({"attributes": {"first_name": "Zofia", "city": "Sopot"}, "lists": ["news"]});
    let (s, c) = h.call(&admin, "PUT", &path, Some(rectified));
    assert_eq!((s, &c["attributes"]["city"]), (200, &json!("Sopot")), "{c}");
    let (s, e) = h.call(
        &admin,
        "PUT",
        &path,
        Some(json!({"attributes": {}, "colour": 1})),
    );
    assert_eq!(
        (s, &e["error"]["code"]),
        (400, &json!("unknown_field")),
        "{e}"
    );

    let consent = json!({"purpose": "newsletter", "lawful_basis": "consent", "source": "signup-form",
        "wording": "Yes, send me news", "wording_version": "v1", "ip": "198.51.100.4"});
    let (s, c) = h.call(&admin, "POST", &format!("{path}/consents"), Some(consent));
    assert_eq!(
        (s, &c["status"], &c["wording"]),
        (201, &json!("active"), &json!("Yes, send me news")),
        "{c}"
    );
    let (s, c) = h.call(
        &admin,
        "POST",
        &format!("{path}/consents"),
        Some(json!({"purpose": "x", "lawful_basis": "because"})),
    );
    assert_eq!(
        (s, &c["error"]["field"]),
        (422, &json!("lawful_basis")),
        "{c}"
    );

    let (s, sent) = h.call(&admin,
        "POST",
        "/v1/messages",
        Some(
            json!({"from": "app@example.com", "to": [email], "subject": "Welcome Zofia", "text": "Hi"}),
        ),
    );
    assert_eq!(s, 202, "{sent}");
    let id = sent["id"].as_str().unwrap().to_string();
    assert_eq!(
        h.wait_final(&id, Duration::from_secs(20))["recipients"][0]["status"],
        "delivered"
    );

    // Withdrawal is a record, not a deletion.
    let (s, w) = h.call(
        &admin,
        "DELETE",
        &format!("{path}/consents/newsletter"),
        None,
    );
    assert_eq!((s, &w["status"]), (200, &json!("withdrawn")), "{w}");
    let (s, _) = h.call(
        &admin,
        "DELETE",
        &format!("{path}/consents/newsletter"),
        None,
    );
    assert_eq!(s, 404, "nothing left to withdraw");

    // Scopes and tenants fence personal data.
    let export = format!("/v1/subjects/{email}/export");
    assert_eq!(h.call(&sender, "GET", &export, None).0, 403);
    assert_eq!(
        h.call(&sender, "DELETE", &format!("/v1/subjects/{email}"), None)
            .0,
        403
    );
    assert_eq!(h.call(&sender, "GET", &path, None).0, 403);
    assert_eq!(h.call(&other, "GET", &path, None).0, 404);
    assert_eq!(h.call(&other, "GET", &export, None).0, 404);

    let (s, doc) = h.call(&admin, "GET", &export, None);
    assert_eq!(s, 200, "{doc}");
    assert_eq!(doc["contact"]["attributes"]["city"], "Sopot");
    let history: Vec<_> = doc["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["active", "withdrawn"]);
    assert_eq!(doc["consents"][0]["wording"], "Yes, send me news");
    let m = &doc["messages"][0];
    assert_eq!(
        (&m["id"], &m["subject"], &m["status"]),
        (&json!(id), &json!("Welcome Zofia"), &json!("delivered")),
        "{doc}"
    );
    let kinds: Vec<_> = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["accepted", "delivered"]);

    // The same document from the command line, into a private file.
    let file = h.root.path().join("zofia-export.json");
    let out = h.cli(&["gdpr", "export", email, "--out", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exporting messages [##"),
        "progress on stderr"
    );
    let cli_doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        (&cli_doc["contact"], &cli_doc["messages"][0]["status"]),
        (&doc["contact"], &json!("delivered"))
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::remove_file(&file).unwrap();

    // Erasure: 404 afterwards, later sends suppressed, an audit trail without the address.
    let (s, erased) = h.call(&admin, "DELETE", &format!("/v1/subjects/{email}"), None);
    assert_eq!(s, 200, "{erased}");
    assert_eq!(
        (
            &erased["erased"]["contacts"],
            &erased["erased"]["events"],
            &erased["erased"]["consents"],
            &erased["erased"]["keys"]
        ),
        (&json!(1), &json!(2), &json!(2), &json!(1)),
        "{erased}"
    );
    assert_eq!(h.call(&admin, "GET", &export, None).0, 404);
    assert_eq!(h.call(&admin, "GET", &path, None).0, 404);
    let (_, again) = h.call(
        &admin,
        "POST",
        "/v1/messages",
        Some(json!({"from": "app@example.com", "to": [email], "subject": "again", "text": "x"})),
    );
    assert_eq!(again["recipients"][0]["status"], "suppressed", "{again}");
    // … and nothing about the person is collected again: no address, no blind index
    // (so the export still finds nothing).
    let again_id = again["id"].as_str().unwrap();
    let (_, stored) = h.call(&admin, "GET", &format!("/v1/messages/{again_id}"), None);
    assert_eq!(stored["recipients"][0]["email"], Value::Null, "{stored}");
    assert_eq!(h.call(&admin, "GET", &export, None).0, 404);
    let (_, v) = h.call(&admin, "GET", &format!("/v1/messages/{id}"), None);
    assert_eq!(
        v["subject"],
        Value::Null,
        "erased message keeps no summary: {v}"
    );

    let (s, log) = h.call(&admin, "GET", "/v1/audit", None);
    assert_eq!(s, 200, "{log}");
    let actions: Vec<_> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "contact.upsert",
        "consent.record",
        "consent.withdraw",
        "subject.export",
        "subject.erase",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(
        !log.to_string().contains("zofia"),
        "audit log holds the address"
    );
    assert_eq!(h.call(&sender, "GET", "/v1/audit", None).0, 403);
    let (_, theirs) = h.call(&other, "GET", "/v1/audit", None);
    assert!(
        theirs["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] != "subject.erase"),
        "tenants see only their own audit entries"
    );

    // The register keeps that the access and the erasure happened, not who asked.
    let (s, reg) = h.call(&admin, "GET", "/v1/privacy/requests", None);
    assert_eq!(s, 200, "{reg}");
    let kinds: Vec<_> = reg["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
                r["email"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("access", "completed", true),
            ("access", "completed", true),
            ("erasure", "completed", true)
        ],
        "{reg}"
    );
    // A request received by letter 40 days ago is overdue until closed.
    let received = chrono_days_ago(40);
    let (s, r) = h.call(&admin,
        "POST",
        "/v1/privacy/requests",
        Some(
            json!({"kind": "objection", "email": "other.person@example.test", "received_at": received, "note": "letter"}),
        ),
    );
    assert_eq!(
        (s, &r["status"], &r["overdue"]),
        (201, &json!("open"), &json!(true)),
        "{r}"
    );
    let rid = r["id"].as_str().unwrap().to_string();
    let (_, overdue) = h.call(&admin, "GET", "/v1/privacy/requests?overdue=true", None);
    assert_eq!(
        overdue["requests"].as_array().unwrap().len(),
        1,
        "{overdue}"
    );
    assert_eq!(overdue["requests"][0]["email"], "other.person@example.test");
    let close = format!("/v1/privacy/requests/{rid}/close");
    assert_eq!(
        h.call(&admin, "POST", &close, Some(json!({"status": "completed"})))
            .0,
        200
    );
    assert_eq!(
        h.call(&admin, "POST", &close, Some(json!({"status": "completed"})))
            .0,
        404,
        "closed once"
    );
    let (_, overdue) = h.call(&admin, "GET", "/v1/privacy/requests?overdue=true", None);
    assert_eq!(overdue["requests"], json!([]));
    assert_eq!(h.call(&sender, "GET", "/v1/privacy/requests", None).0, 403);

    // At rest: no trace of the person or their attributes; the chain verifies.
    assert!(h.stop());
    for needle in ["zofia.marker7319", "Zofia", "Sopot", "Gdansk"] {
        let hits = common::files_containing(&h.data, needle.as_bytes());
        assert!(hits.is_empty(), "{needle} in {hits:?}");
    }
    let out = h.cli(&["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("audit chain intact"),
        "{text}"
    );

    // Tampering with one entry is named.
    let db = h.data.join("postwerk.db");
    let status = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE audit SET actor='cli' WHERE action='subject.erase'\"); c.commit()"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(status.success());
    let out = h.cli(&["audit", "verify"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("was altered"), "{err}");
}

#[test]
fn guessing_keys_is_throttled() {
    let h = Harness::start(Options::default());
    let mut last = (0, Value::Null);
    let limit = postwerk_core::config::Config::default()
        .http
        .max_key_failures;
    for i in 0..=limit {
        last = h.request_with_key(
            "GET",
            "/v1/events",
            None,
            &[],
            Some(&format!("pw_live_guess{i}")),
        );
        if last.0 == 429 {
            break;
        }
        assert_eq!(last.0, 401, "{:?}", last.1);
    }
    assert_eq!(last.0, 429, "{:?}", last.1);
    assert_eq!(last.1["error"]["code"], "too_many_attempts");
    // Even the right key is refused from that address until the window passes; a
    // request with no key at all is plainly unauthorised.
    assert_eq!(h.get("/v1/events").0, 429);
    assert_eq!(
        h.request_with_key("GET", "/v1/events", None, &[], None).0,
        401
    );
}

#[test]
fn the_key_failure_limit_is_configurable() {
    let h = Harness::start(Options {
        http: "max_key_failures = 3",
        ..Default::default()
    });
    let codes: Vec<u16> = (0..4)
        .map(|i| {
            h.request_with_key(
                "GET",
                "/v1/events",
                None,
                &[],
                Some(&format!("pw_live_g{i}")),
            )
            .0
        })
        .collect();
    assert_eq!(codes, vec![401, 401, 401, 429]);
}

/// Broadcast mail goes only to people with active `marketing` consent (the default
/// `privacy.consent_required`); a restricted person gets nothing on any stream until
/// the restriction is lifted.
#[test]
fn consent_gates_broadcast_and_restriction_holds_everything() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options::to(&sink));
    let privacy = key(&h, None, "send,read,write,privacy");
    let send = |to: &str, stream: &str| {
        let (s, v) = h.call(&privacy,
            "POST",
            "/v1/messages",
            Some(
                json!({"from": "news@example.com", "to": [to], "subject": "s", "text": "t", "stream": stream}),
            ),
        );
        assert_eq!(s, 202, "{v}");
        (
            v["id"].as_str().unwrap().to_string(),
            v["recipients"][0]["status"].as_str().unwrap().to_string(),
        )
    };
    let consent = |to: &str| {
        let body = json!({"purpose": "marketing", "lawful_basis": "consent", "source": "test"});
        assert_eq!(
            h.call(
                &privacy,
                "POST",
                &format!("/v1/contacts/{to}/consents"),
                Some(body)
            )
            .0,
            201
        );
    };

    let (id, status) = send("nobody@example.test", "broadcast");
    assert_eq!(status, "no_consent");
    let (_, v) = h.call(&privacy, "GET", &format!("/v1/messages/{id}"), None);
    assert_eq!(
        (
            &v["recipients"][0]["status"],
            &v["recipients"][0]["events"][0]["type"]
        ),
        (&json!("no_consent"), &json!("no_consent")),
        "{v}"
    );
    assert_eq!(
        send("nobody@example.test", "transactional").1,
        "queued",
        "transactional needs no consent"
    );

    consent("fan@example.test");
    let (id, status) = send("fan@example.test", "broadcast");
    assert_eq!(status, "queued");
    assert_eq!(
        h.wait_final(&id, Duration::from_secs(20))["recipients"][0]["status"],
        "delivered"
    );
    assert_eq!(
        h.call(
            &privacy,
            "DELETE",
            "/v1/contacts/fan@example.test/consents/marketing",
            None
        )
        .0,
        200
    );
    assert_eq!(
        send("fan@example.test", "broadcast").1,
        "no_consent",
        "withdrawn consent gates again"
    );

    let restrict = "/v1/subjects/fan@example.test/restrict";
    let (s, c) = h.call(&privacy, "POST", restrict, None);
    assert_eq!((s, &c["restricted"]), (200, &json!(true)), "{c}");
    assert_eq!(send("fan@example.test", "transactional").1, "restricted");
    let (s, c) = h.call(&privacy, "DELETE", restrict, None);
    assert_eq!((s, &c["restricted"]), (200, &json!(false)), "{c}");
    assert_eq!(send("fan@example.test", "transactional").1, "queued");
    assert_eq!(
        h.call(&h.key, "POST", restrict, None).0,
        403,
        "restriction needs the privacy scope"
    );
}

/// The purge job enforces `[retention]`: a delivered message and its events are gone
/// once the events retention has passed; Postwerk keeps nothing longer than told. A
/// tenant's periods for a stream override the defaults.
#[test]
fn retention_purges_delivered_mail() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        extra: "[privacy]\nconsent_required = {}\n\
                [retention]\ncontent = \"1s\"\nevents = \"2s\"\ninterval = \"1s\"\n\
                [retention.streams.broadcast]\ncontent = \"1h\"\n\
                [retention.tenants.default.streams.broadcast]\nevents = \"1h\"\n",
        ..Options::to(&sink)
    });
    let send = |stream: &str| {
        let v = h.send(
            json!({"from": "app@example.com", "to": ["short@example.test"], "subject": "s",
                   "text": "t", "stream": stream}),
        );
        let id = v["id"].as_str().unwrap().to_string();
        assert_eq!(
            h.wait_final(&id, Duration::from_secs(20))["recipients"][0]["status"],
            "delivered"
        );
        id
    };
    let (id, kept) = (send("transactional"), send("broadcast"));
    let gone = common::wait_until(Duration::from_secs(10), || {
        h.get(&format!("/v1/messages/{id}")).0 == 404
    });
    assert!(gone, "message still there after its retention");
    let (_, events) = h.get(&format!("/v1/events?message_id={id}"));
    assert_eq!(events["events"], json!([]), "{events}");
    assert!(h.server_log().contains("retention purge"));
    let (status, message) = h.get(&format!("/v1/messages/{kept}"));
    assert_eq!(
        status, 200,
        "the broadcast stream keeps its mail for an hour"
    );
    assert!(
        message["recipients"][0]["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{message}"
    );
}

/// `GET /v1/privacy/record` renders the Art. 30 record from the configuration, as
/// JSON and Markdown; scope `privacy`.
#[test]
fn record_of_processing_comes_from_the_configuration() {
    let h = Harness::start(Options {
        extra: "[privacy]\ncontroller = \"Kursanbieter GmbH, Berlin\"\ndpo = \"dpo@kurse.example\"\ndata_locations = [\"Germany (own servers)\"]\n[[privacy.sub_processors]]\nname = \"Hetzner\"\npurpose = \"hosting\"\nlocation = \"Germany\"\n[retention]\ncontent = \"3d\"\n",
        ..Default::default()
    });
    let privacy = key(&h, None, "privacy");
    let (s, r) = h.call(&privacy, "GET", "/v1/privacy/record", None);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["controller"], "Kursanbieter GmbH, Berlin");
    assert_eq!(r["processors"][0]["name"], "Hetzner");
    assert_eq!(r["retention"][0], json!(["message content", "3d"]));
    let purposes: Vec<_> = r["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lawful_basis"].as_str().unwrap())
        .collect();
    assert_eq!(purposes, ["contract", "consent"]);
    let (s, md) = h.call(&privacy, "GET", "/v1/privacy/record?format=markdown", None);
    let md = md.as_str().unwrap_or_default().to_string();
    assert!(
        s == 200
            && md.starts_with("# Record of processing activities")
            && md.contains("- Hetzner — hosting (Germany)"),
        "{md}"
    );
    assert_eq!(h.call(&h.key, "GET", "/v1/privacy/record", None).0, 403);
}

/// The breach register: deadlines from detection (72 h authority, 24 h customers by
/// default), overdue until each notification is recorded, once each.
#[test]
fn breach_register_tracks_deadlines() {
    let h = Harness::start(Options::default());
    let privacy = key(&h, None, "privacy,admin");
    let detected = chrono_days_ago(2);
    let (s, i) = h.call(&privacy,
        "POST",
        "/v1/privacy/incidents",
        Some(
            json!({"title": "Laptop with an export lost", "affected": "about 40 contacts", "detected_at": detected}),
        ),
    );
    assert_eq!(
        (s, &i["overdue"], &i["title"]),
        (201, &json!(true), &json!("Laptop with an export lost")),
        "{i}"
    );
    let id = i["id"].as_str().unwrap().to_string();
    let (_, fresh) = h.call(
        &privacy,
        "POST",
        "/v1/privacy/incidents",
        Some(json!({"title": "Misdirected mail"})),
    );
    assert_eq!(fresh["overdue"], false, "{fresh}");
    let overdue = |h: &Harness| {
        h.call(&privacy, "GET", "/v1/privacy/incidents?overdue=true", None)
            .1["incidents"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(overdue(&h), 1);
    let step = |what: &str| {
        h.call(
            &privacy,
            "POST",
            &format!("/v1/privacy/incidents/{id}/{what}"),
            None,
        )
        .0
    };
    assert_eq!(step("customers-notified"), 200);
    assert_eq!(
        overdue(&h),
        0,
        "48 h after detection only the customers' 24 h deadline had passed"
    );
    assert_eq!(step("customers-notified"), 404, "once");
    assert_eq!(step("authority-notified"), 200);
    assert_eq!(step("close"), 200);
    assert_eq!(step("explode"), 404);
    let (_, all) = h.call(&privacy, "GET", "/v1/privacy/incidents", None);
    assert!(all["incidents"][0]["closed_at"].is_string(), "{all}");
    let (_, log) = h.call(&privacy, "GET", "/v1/audit", None);
    assert!(log.to_string().contains("incident.report"), "{log}");
    assert_eq!(h.call(&h.key, "GET", "/v1/privacy/incidents", None).0, 403);
}
