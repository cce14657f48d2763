//! Consent through the real front door: deleting a contact keeps its consent evidence
//! (erasure does not), and double opt-in consent stays pending until the person
//! follows the confirmation link that Postwerk mailed them.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

fn key(h: &Harness, tenant: Option<&str>, scopes: &str) -> String {
    h.new_key(tenant, scopes, &[])
}

#[test]
fn deleting_a_contact_keeps_its_consent_evidence_unlike_erasure() {
    let h = Harness::start(Options::default());
    let k = key(&h, None, "read,write,export");
    let path = "/v1/contacts/kept.evidence@example.test";
    let (s, _) = h.call(
        &k,
        "PUT",
        path,
        Some(json!({"attributes": {"city": "Torun-7d1e"}, "lists": ["news"]})),
    );
    assert_eq!(s, 201);
    let consent = json!({"purpose": "newsletter", "lawful_basis": "consent", "source": "form",
                         "wording": "Send me news-5a9c", "wording_version": "v1"});
    assert_eq!(
        h.call(&k, "POST", &format!("{path}/consents"), Some(consent))
            .0,
        201
    );

    assert_eq!(h.call(&k, "DELETE", path, None).0, 204);
    let (s, v) = h.call(&k, "GET", path, None);
    assert_eq!((s, &v["error"]["code"]), (404, &json!("not_found")), "{v}");
    assert_eq!(h.call(&k, "DELETE", path, None).0, 404, "once");
    let (s, export) = h.call(
        &k,
        "GET",
        "/v1/subjects/kept.evidence@example.test/export",
        None,
    );
    assert_eq!(s, 200, "{export}");
    let text = export.to_string();
    assert!(
        text.contains("Send me news-5a9c"),
        "the consent evidence stays: {text}"
    );
    assert!(!text.contains("Torun-7d1e"), "the profile is gone: {text}");

    // A new PUT makes a fresh profile.
    let (s, v) = h.call(
        &k,
        "PUT",
        path,
        Some(json!({"attributes": {"city": "Gdynia"}})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        h.call(&k, "GET", path, None).1["attributes"]["city"],
        "Gdynia"
    );
}

/// The decoded text part of a raw message (Python's email package: an independent
/// MIME and quoted-printable decoder).
fn text_part(eml: &[u8], scratch: &std::path::Path) -> String {
    let path = scratch.join("confirm.eml");
    std::fs::write(&path, eml).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import email,sys;from email import policy\n\
             m=email.message_from_binary_file(open(sys.argv[1],'rb'),policy=policy.default)\n\
             print(m.get_body(preferencelist=('plain',)).get_content())",
        ])
        .arg(&path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn double_opt_in_consent_is_pending_until_the_link_is_confirmed() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&sink_dir.path().join("sink"), false);
    let h = Harness::start(Options::to(&sink));
    let k = key(&h, None, "send,read,write");
    let person = "double.opt@example.test";
    let body = json!({"purpose": "marketing", "lawful_basis": "consent", "source": "signup-form",
        "wording": "Yes, send me offers", "wording_version": "v2", "ip": "192.0.2.10",
        "double_opt_in": {"from": "news@example.com", "subject": "Please confirm",
                          "text": "Confirm your subscription: {{confirm_url}}\n"}});
    let (s, pending) = h.call(
        &k,
        "POST",
        &format!("/v1/contacts/{person}/consents"),
        Some(body),
    );
    assert_eq!(s, 201, "{pending}");
    assert_eq!(pending["status"], "pending");
    assert!(
        pending["confirmation_message_id"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );

    // Pending consent does not let marketing through.
    let broadcast = json!({"from": "news@example.com", "to": [person], "subject": "Offer", "text": "t", "stream": "broadcast"});
    let (_, sent) = h.call(&k, "POST", "/v1/messages", Some(broadcast.clone()));
    assert_eq!(sent["recipients"][0]["status"], "no_consent", "{sent}");

    assert!(
        sink.wait_for(1, Duration::from_secs(30)),
        "{}",
        h.server_log()
    );
    let text = text_part(&sink.copy_for(person), sink_dir.path());
    let url = text
        .split_whitespace()
        .find(|w| w.contains("/c/"))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .to_string();
    let page = ureq::get(&url).call().unwrap().into_string().unwrap();
    assert!(
        page.contains("method=\"post\""),
        "GET only shows a button: {page}"
    );
    let (_, contact) = h.call(&k, "GET", &format!("/v1/contacts/{person}"), None);
    assert_eq!(
        contact["consents"][0]["status"], "pending",
        "GET confirmed nothing"
    );

    let forged = format!("{}0", url.trim_end_matches(|c: char| c.is_ascii_hexdigit()));
    let refused = ureq::post(&forged).call();
    assert!(
        matches!(refused, Err(ureq::Error::Status(404, _))),
        "forged link"
    );
    let done = ureq::post(&url)
        .set("User-Agent", "ConfirmTest/1.0")
        .call()
        .unwrap();
    assert_eq!(done.status(), 200);

    let (_, contact) = h.call(&k, "GET", &format!("/v1/contacts/{person}"), None);
    let consent = &contact["consents"][0];
    assert_eq!(consent["status"], "active", "{contact}");
    // The history keeps both records, oldest first: the pending request with its
    // wording and source, then the confirmation.
    let history = contact["consent_history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{contact}");
    assert_eq!(
        (
            &history[0]["status"],
            &history[0]["wording"],
            &history[0]["source"]
        ),
        (
            &json!("pending"),
            &json!("Yes, send me offers"),
            &json!("signup-form")
        ),
        "{contact}"
    );
    assert_eq!(history[1]["id"], consent["id"], "{contact}");
    assert_eq!(
        consent["confirms"].to_string(),
        pending["id"].as_str().unwrap()
    );
    assert_eq!(consent["ip"], "127.0.0.1", "the click's address");
    assert_eq!(consent["user_agent"], "ConfirmTest/1.0");
    assert_eq!(
        consent["wording"], "Yes, send me offers",
        "the evidence carries over"
    );
    let (_, sent) = h.call(&k, "POST", "/v1/messages", Some(broadcast));
    assert_eq!(sent["recipients"][0]["status"], "queued", "{sent}");
}

#[test]
fn no_pending_consent_without_an_accepted_confirmation() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options::to(&sink));
    let k = key(&h, None, "send,read,write");
    let person = "never.confirmed@example.test";
    let consent = json!({"purpose": "marketing", "lawful_basis": "consent",
        "double_opt_in": {"from": "news@example.com", "subject": "Please confirm",
                          "text": "Confirm: {{confirm_url}}\n"}});
    let post = || {
        h.call(
            &k,
            "POST",
            &format!("/v1/contacts/{person}/consents"),
            Some(consent.clone()),
        )
    };
    let consents = || {
        let (s, contact) = h.call(&k, "GET", &format!("/v1/contacts/{person}"), None);
        match s {
            404 => Vec::new(),
            200 => contact["consents"].as_array().cloned().unwrap_or_default(),
            other => panic!("GET contact: {other} {contact}"),
        }
    };

    // The store refuses the confirmation message: 503, and no consent is left behind.
    h.sqlite("CREATE TRIGGER no_mail BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    );
    let (s, err) = post();
    assert_eq!(
        (s, &err["error"]["code"]),
        (503, &json!("unavailable")),
        "{err}"
    );
    assert_eq!(
        consents(),
        Vec::<Value>::new(),
        "a pending consent survived the 503"
    );
    h.sqlite("DROP TRIGGER no_mail;");

    // The confirmation would be held (a paused stream, a suppressed address): 422.
    let (s, v) = h.post("/v1/streams/transactional/pause", json!({"reason": "test"}));
    assert_eq!(s, 200, "{v}");
    let (s, err) = post();
    assert_eq!(
        (s, &err["error"]["code"], &err["error"]["field"]),
        (
            422,
            &json!("confirmation_not_sent"),
            &json!("double_opt_in")
        ),
        "{err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rejected"),
        "{err}"
    );
    let (s, v) = h.post("/v1/streams/transactional/resume", json!({}));
    assert_eq!(s, 200, "{v}");
    let (s, v) = h.post(
        "/v1/suppressions",
        json!({"email": person, "reason": "manual"}),
    );
    assert!(s == 201 || s == 200, "{s} {v}");
    let (s, err) = post();
    assert_eq!(
        (s, &err["error"]["code"]),
        (422, &json!("confirmation_not_sent")),
        "{err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("suppressed"),
        "{err}"
    );
    assert_eq!(consents(), Vec::<Value>::new());

    // Once the message can go, the consent is pending and its message is on its way.
    let (s, _) = h.request("DELETE", &format!("/v1/suppressions/{person}"), None, &[]);
    assert_eq!(s, 204);
    let (s, pending) = post();
    assert_eq!(
        (s, &pending["status"]),
        (201, &json!("pending")),
        "{pending}"
    );
    let statuses: Vec<Value> = consents().iter().map(|c| c["status"].clone()).collect();
    assert_eq!(statuses, [json!("pending")]);
    assert!(
        sink.wait_for(1, Duration::from_secs(30)),
        "the confirmation is delivered"
    );
}
