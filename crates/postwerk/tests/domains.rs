//! A sending domain belongs to one tenant of the installation: another tenant's
//! `POST /v1/domains` (and `postwerk domains add --tenant`) gets `409 domain_taken`,
//! concurrent adds leave exactly one holder, sends from a name the tenant does not hold
//! (case, trailing dot, subdomain) are refused, an operator moves a squatted name with
//! `postwerk domains remove`, and a database from before names were unique keeps
//! starting but refuses sends from a contested name until the operator resolves it.

mod common;

use std::thread;

use common::{Harness, Options};
use serde_json::{Value, json};

fn add(h: &Harness, key: &str, domain: &str) -> (u16, Value) {
    h.request_with_key(
        "POST",
        "/v1/domains",
        Some(&json!({ "domain": domain })),
        &[],
        Some(key),
    )
}

fn send(h: &Harness, key: &str, from: &str) -> (u16, Value) {
    let mail =
        json!({"from": from, "to": ["someone@example.test"], "subject": "Invoice", "text": "Pay"});
    h.request_with_key("POST", "/v1/messages", Some(&mail), &[], Some(key))
}

fn code(v: &Value) -> &Value {
    &v["error"]["code"]
}

#[test]
fn a_domain_belongs_to_one_tenant() {
    let mut h = Harness::start(Options::default());
    h.cli_ok(&["tenants", "create", "b"]);
    let b = h.new_key(Some("b"), "send,read,write", &[]);

    // Tenant B cannot take the default tenant's example.com, however it is written.
    for name in ["example.com", "EXAMPLE.com."] {
        let (s, err) = add(&h, &b, name);
        assert_eq!(
            (s, code(&err)),
            (409, &json!("domain_taken")),
            "{name}: {err}"
        );
        assert_eq!(err["error"]["field"], "domain");
    }
    let (s, err) = add(&h, &h.key, "example.com");
    assert_eq!((s, code(&err)), (409, &json!("domain_exists")), "{err}");
    let out = h.cli(&["domains", "add", "example.com", "--tenant", "b"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("registered by another tenant"), "{stderr}");
    let (_, list) = h.request_with_key("GET", "/v1/domains", None, &[], Some(&b));
    assert_eq!(list["domains"], json!([]), "B got nothing");

    // Nor send as it: not with another case, a trailing dot or a subdomain.
    for from in [
        "billing@example.com",
        "billing@EXAMPLE.COM",
        "billing@example.com.",
        "billing@mail.example.com",
    ] {
        let (s, err) = send(&h, &b, from);
        assert_eq!(
            (s, code(&err)),
            (422, &json!("domain_not_registered")),
            "{from}: {err}"
        );
    }
    assert_eq!(send(&h, &h.key, "billing@example.com").0, 202);

    // Two tenants adding the same new name at once: exactly one gets it.
    for round in 0..3 {
        let name = format!("race{round}.example");
        let results: Vec<(u16, Value)> = thread::scope(|scope| {
            let adds: Vec<_> = [h.key.as_str(), b.as_str()]
                .map(|key| {
                    let (h, name) = (&h, &name);
                    scope.spawn(move || add(h, key, name))
                })
                .into_iter()
                .collect();
            adds.into_iter().map(|a| a.join().unwrap()).collect()
        });
        let mut statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "{name}: {results:?}");
        let lost = results.iter().find(|r| r.0 == 409).unwrap();
        assert_eq!(code(&lost.1), &json!("domain_taken"), "{name}");
    }

    // A squatter's name is moved by the operator.
    assert_eq!(add(&h, &b, "squat.example").0, 201);
    let (s, err) = add(&h, &h.key, "squat.example");
    assert_eq!((s, code(&err)), (409, &json!("domain_taken")));
    let out = h.cli_ok(&["domains", "remove", "squat.example", "--tenant", "b"]);
    assert!(out.contains("removed squat.example"), "{out}");
    assert!(
        !h.cli(&["domains", "remove", "squat.example", "--tenant", "b"])
            .status
            .success(),
        "removing it twice fails"
    );
    let (s, err) = send(&h, &b, "billing@squat.example");
    assert_eq!((s, code(&err)), (422, &json!("domain_not_registered")));
    let (s, moved) = add(&h, &h.key, "squat.example");
    assert_eq!(s, 201, "{moved}");
    assert_eq!(send(&h, &h.key, "billing@squat.example").0, 202);
    let b_admin = h.new_key(Some("b"), "admin", &[]);
    let (_, audit) = h.request_with_key("GET", "/v1/audit", None, &[], Some(&b_admin));
    let removal = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "domain.remove")
        .unwrap_or_else(|| panic!("{audit}"))
        .clone();
    assert_eq!(
        (&removal["actor"], &removal["target"]),
        (&json!("cli"), &json!("squat.example"))
    );

    // A database from before names were unique, holding example.com in both tenants:
    // the server starts, says what to do, and neither tenant may send from it.
    assert!(h.stop());
    h.sqlite("DROP INDEX domains_name");
    h.sqlite(
        "INSERT INTO domains (tenant_id, name, created_at) \
         SELECT id, 'example.com', 9999999999999 FROM tenants WHERE name = 'b'",
    );
    h.serve();
    let log = h.server_log();
    assert!(
        log.contains("registered by more than one tenant")
            && log.contains("postwerk domains remove example.com --tenant <tenant>"),
        "{log}"
    );
    for key in [&h.key, &b] {
        let (s, err) = send(&h, key, "billing@example.com");
        assert_eq!(
            (s, code(&err)),
            (422, &json!("domain_not_registered")),
            "{err}"
        );
    }
    h.cli_ok(&["domains", "remove", "example.com", "--tenant", "b"]);
    assert!(h.stop());
    h.serve();
    assert_eq!(send(&h, &h.key, "billing@example.com").0, 202);
    let index =
        h.sqlite("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'domains_name'");
    assert!(
        index.contains("domains_name"),
        "the unique index is made: {index}"
    );
}
