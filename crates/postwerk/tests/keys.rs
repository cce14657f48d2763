//! API key lifecycle through the API and the CLI: create with scopes and expiry,
//! rotate with and without grace, revoke; each refusal is precise; tenants cannot
//! touch each other's keys; admin scope required; every change audited.

mod common;

use common::Harness;
use serde_json::json;

fn admin_key(h: &Harness, tenant: &str) -> String {
    h.named_key("admin", Some(tenant), "admin,read", &[])
}

#[test]
fn create_rotate_revoke() {
    let h = Harness::start(Default::default());
    let admin = admin_key(&h, "default");
    assert!(h.cli(&["tenants", "create", "other"]).status.success());
    let other = admin_key(&h, "other");

    let (s, k) = h.call(
        &admin,
        "POST",
        "/v1/keys",
        Some(json!({"name": "ci", "scopes": ["read"], "expires_in": "1h"})),
    );
    assert_eq!(s, 201, "{k}");
    let (id, token) = (
        k["id"].as_str().unwrap().to_string(),
        k["key"].as_str().unwrap().to_string(),
    );
    assert!(
        token.starts_with("pw_live_") && k["expires_at"].is_string(),
        "{k}"
    );
    assert_eq!(h.call(&token, "GET", "/v1/events", None).0, 200);
    assert_eq!(
        h.call(&token, "GET", "/v1/keys", None).0,
        403,
        "read scope is not admin"
    );
    let (s, e) = h.call(
        &admin,
        "POST",
        "/v1/keys",
        Some(json!({"name": "x", "scopes": ["root"]})),
    );
    assert_eq!(
        (s, &e["error"]["code"]),
        (422, &json!("invalid_scopes")),
        "{e}"
    );

    // Rotation with grace: both work; without grace: only the successor.
    let (s, r1) = h.call(
        &admin,
        "POST",
        &format!("/v1/keys/{id}/rotate"),
        Some(json!({"grace": "1h"})),
    );
    assert_eq!((s, &r1["replaces"]), (201, &json!(id)), "{r1}");
    let t1 = r1["key"].as_str().unwrap().to_string();
    assert_eq!(h.call(&token, "GET", "/v1/events", None).0, 200);
    assert_eq!(h.call(&t1, "GET", "/v1/events", None).0, 200);
    let id1 = r1["id"].as_str().unwrap().to_string();
    let (s, r2) = h.call(
        &admin,
        "POST",
        &format!("/v1/keys/{id1}/rotate"),
        Some(json!({"grace": "0s"})),
    );
    assert_eq!(s, 201, "{r2}");
    let (s, e) = h.call(&t1, "GET", "/v1/events", None);
    assert_eq!(
        (s, &e["error"]["code"]),
        (401, &json!("api_key_expired")),
        "{e}"
    );
    let t2 = r2["key"].as_str().unwrap().to_string();
    assert_eq!(h.call(&t2, "GET", "/v1/events", None).0, 200);

    // Revocation is immediate; another tenant cannot revoke or see it.
    let id2 = r2["id"].as_str().unwrap().to_string();
    assert_eq!(
        h.call(&other, "DELETE", &format!("/v1/keys/{id2}"), None).0,
        404
    );
    assert_eq!(
        h.call(&admin, "DELETE", &format!("/v1/keys/{id2}"), None).0,
        204
    );
    let (s, e) = h.call(&t2, "GET", "/v1/events", None);
    assert_eq!(
        (s, &e["error"]["code"]),
        (401, &json!("api_key_revoked")),
        "{e}"
    );
    assert_eq!(
        h.call(&admin, "DELETE", &format!("/v1/keys/{id2}"), None).0,
        404,
        "already revoked"
    );

    let (_, list) = h.call(&admin, "GET", "/v1/keys", None);
    let ids: Vec<_> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&id) && ids.contains(&id2), "{list}");
    assert!(
        !list.to_string().contains("pw_live_"),
        "secrets are never listed"
    );
    let (_, theirs) = h.call(&other, "GET", "/v1/keys", None);
    assert_eq!(theirs["keys"].as_array().unwrap().len(), 1, "{theirs}");

    // The CLI sees the same keys and can revoke; all of it is in the audit log.
    let out = h.cli(&["keys", "list"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains(&format!("{id2}\tci\tread\trevoked\t-\t-")),
        "{text}"
    );
    assert!(h.cli(&["keys", "revoke", &id]).status.success());
    assert_eq!(h.call(&token, "GET", "/v1/events", None).0, 401);
    assert!(!h.cli(&["keys", "revoke", &id]).status.success(), "twice");
    let log = h.cli(&["audit", "verify"]);
    assert!(
        log.status.success(),
        "{}",
        String::from_utf8_lossy(&log.stderr)
    );
}
