//! Issue 15: every read of personal data through the API is on the audit chain
//! before it is shown. Each entry names the actor, the action and the people by
//! blind index (`rcpt:<hex>`, the form the export's entry uses), never the address.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::json;

#[test]
fn reads_of_personal_data_are_audited_by_blind_index() {
    let sink = Sink::temp(false);
    let mut h = Harness::start(Options::to(&sink));
    let admin = h.new_key(None, "send,read,write,export,privacy,admin", &[]);
    let reader = h.new_key(None, "read", &[]);
    let email = "audited.reader4711@example.test";
    let other = "someone.else4711@example.test";
    let get = |key: &str, path: &str| h.request_with_key("GET", path, None, &[], Some(key));

    let (s, sent) = h.request_with_key(
        "POST",
        "/v1/messages",
        Some(
            &json!({"from": "app@example.com", "to": [email, other], "subject": "s", "text": "t"}),
        ),
        &[],
        Some(&admin),
    );
    assert_eq!(s, 202, "{sent}");
    let id = sent["id"].as_str().unwrap();
    h.wait_final(id, Duration::from_secs(20));
    let (s, v) = h.request_with_key(
        "POST",
        "/v1/suppressions",
        Some(&json!({"email": email, "reason": "manual"})),
        &[],
        Some(&admin),
    );
    assert_eq!(s, 201, "{v}");

    // The person's blind-index form, from an audited export (already audited before).
    assert_eq!(get(&admin, &format!("/v1/subjects/{email}/export")).0, 200);
    let export = &h.audit_entries(&admin, "subject.export")[0];
    let person = export["target"].as_str().unwrap().to_string();
    let admin_actor = export["actor"].as_str().unwrap().to_string();
    assert!(person.starts_with("rcpt:"), "{person}");

    assert_eq!(get(&reader, &format!("/v1/messages/{id}")).0, 200);
    assert_eq!(
        get(&reader, &format!("/v1/messages?recipient={email}")).0,
        200
    );
    assert_eq!(
        get(&reader, &format!("/v1/events?recipient={email}")).0,
        200
    );
    assert_eq!(get(&reader, "/v1/suppressions").0, 200);
    for action in [
        "message.view",
        "message.list",
        "event.list",
        "suppression.list",
    ] {
        let found = h.audit_entries(&admin, action);
        let entry = found
            .last()
            .unwrap_or_else(|| panic!("no {action} entry in the audit log"));
        let target = entry["target"].as_str().unwrap();
        assert!(
            target.split(' ').any(|t| t == person),
            "{action} names {target}, not {person}"
        );
        let actor = entry["actor"].as_str().unwrap();
        assert!(
            actor.starts_with("key:") && actor != admin_actor,
            "{action} should name the reading key: {entry}"
        );
    }
    // A message to two people names both; a read that shows nobody writes nothing.
    let view = h.audit_entries(&admin, "message.view");
    assert_eq!(
        view.last().unwrap()["target"]
            .as_str()
            .unwrap()
            .matches("rcpt:")
            .count(),
        2
    );
    let before = h.audit_entries(&admin, "event.list").len();
    assert_eq!(
        get(&reader, "/v1/events?recipient=nobody@example.test").0,
        200
    );
    assert_eq!(h.audit_entries(&admin, "event.list").len(), before);

    // The operator's `suppressions list` shows addresses too.
    let before = h.audit_entries(&admin, "suppression.list").len();
    let out = h.cli(&["suppressions", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(email));
    let listed = h.audit_entries(&admin, "suppression.list");
    assert_eq!(listed.len(), before + 1);
    assert_eq!(listed.last().unwrap()["actor"], "cli");
    assert!(
        listed.last().unwrap()["target"]
            .as_str()
            .unwrap()
            .contains(&person)
    );

    let (_, log) = get(&admin, "/v1/audit?limit=1000");
    let text = log.to_string();
    assert!(
        !text.contains("audited.reader") && !text.contains("someone.else"),
        "the audit log holds an address"
    );
    assert!(h.stop());
}
