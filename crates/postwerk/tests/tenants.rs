//! Tenant cancellation through the real binary: `postwerk tenants cancel` refuses the
//! tenant's key at once (403 `tenant_cancelled`), `reactivate` lets it in again, and
//! once the grace period is over the retention job deletes the tenant — its key is
//! then unknown (401) — while the audit chain keeps verifying.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Harness, Options, wait_until};
use serde_json::json;

fn status(h: &Harness, key: &str) -> (u16, serde_json::Value) {
    h.request_with_key("GET", "/v1/messages", None, &[], Some(key))
}

#[test]
fn a_cancelled_tenant_is_refused_then_reactivated_or_deleted() {
    let mut h = Harness::start(Options {
        extra: "[retention]\ninterval = \"1s\"\n",
        ..Default::default()
    });
    h.cli_ok(&["tenants", "create", "shop"]);
    h.cli_ok(&["domains", "add", "shop.example", "--tenant", "shop"]);
    let key = h.new_key(Some("shop"), "send,read", &[]);
    let mail =
        json!({"from": "a@shop.example", "to": ["b@example.test"], "subject": "Hi", "text": "Hi"});
    let (s, sent) = h.request_with_key("POST", "/v1/messages", Some(&mail), &[], Some(&key));
    assert_eq!(s, 202, "{sent}");

    let out = h.cli_ok(&["tenants", "cancel", "shop"]);
    assert!(out.contains("will be deleted at"), "{out}");
    let (s, err) = status(&h, &key);
    assert_eq!(
        (s, &err["error"]["code"]),
        (403, &json!("tenant_cancelled"))
    );
    let (s, _) = h.request_with_key("POST", "/v1/messages", Some(&mail), &[], Some(&key));
    assert_eq!(s, 403, "nothing new is accepted");
    let list = h.cli_ok(&["tenants", "list"]);
    assert!(
        list.lines()
            .any(|l| l.contains("\tshop\t-\tcancelled (deletion due ")),
        "{list}"
    );
    assert!(!h.cli(&["tenants", "cancel", "shop"]).status.success());
    assert_eq!(status(&h, &h.key).0, 200, "other tenants are untouched");

    h.cli_ok(&["tenants", "reactivate", "shop"]);
    assert_eq!(status(&h, &key).0, 200);
    assert!(h.cli_ok(&["tenants", "list"]).contains("\tshop\t-\tactive"));

    // With a grace period of a second, the next cancellation ends in deletion.
    h.stop();
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&h.config)
        .unwrap();
    writeln!(config, "cancelled_tenants = \"1s\"").unwrap();
    h.serve();
    h.cli_ok(&["tenants", "cancel", "shop"]);
    let gone = wait_until(Duration::from_secs(30), || {
        !h.cli_ok(&["tenants", "list"]).contains("\tshop\t")
    });
    assert!(gone, "not deleted: {}", h.server_log());
    let (s, err) = status(&h, &key);
    assert_eq!((s, &err["error"]["code"]), (401, &json!("invalid_api_key")));
    assert_eq!(status(&h, &h.key).0, 200);
    let log = h.server_log();
    assert!(log.contains("cancelled tenant deleted"), "{log}");
    assert!(
        !log.contains("b@example.test"),
        "no personal data in the log"
    );
    assert!(
        h.cli_ok(&["audit", "verify"])
            .contains("audit chain intact")
    );
}
