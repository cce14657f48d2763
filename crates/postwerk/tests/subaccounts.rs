//! Issue 6, sub-accounts through the real front doors: a parent's admin creates a
//! sub-account, gives it a key and acts on it with `X-Postwerk-Subaccount`; the
//! sub-account's own key sees only its own data; nobody else reaches it.

mod common;

use common::{Harness, Options};
use serde_json::{Value, json};

fn key(h: &Harness, tenant: &str, scopes: &str) -> String {
    h.new_key(Some(tenant), scopes, &[])
}

fn call(
    h: &Harness,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    child: Option<&str>,
) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = child
        .map(|c| ("X-Postwerk-Subaccount", c))
        .into_iter()
        .collect();
    h.request_with_key(method, path, body.as_ref(), &headers, Some(key))
}

/// `POST /v1/subaccounts` named `name`, with `key`.
fn create_subaccount(h: &Harness, key: &str, name: &str) -> (u16, Value) {
    call(
        h,
        key,
        "POST",
        "/v1/subaccounts",
        Some(json!({"name": name})),
        None,
    )
}

#[test]
fn a_parents_admins_act_on_sub_accounts_and_nobody_else_does() {
    let h = Harness::start(Options::default());
    let admin = key(&h, "default", "send,read,write,admin");
    let (s, child) = create_subaccount(&h, &admin, "shop-eu");
    assert_eq!(s, 201, "{child}");
    let child_id = child["id"].as_str().unwrap().to_string();
    let (_, list) = call(&h, &admin, "GET", "/v1/subaccounts", None, None);
    assert_eq!(list["subaccounts"][0]["id"], child_id.as_str());
    let (s, dup) = create_subaccount(&h, &admin, "shop-eu");
    assert_eq!((s, &dup["error"]["code"]), (409, &json!("name_taken")));
    // The name is the parent's to choose: another tenant's sub-account of the same
    // name neither collides nor tells that this one exists.
    assert_eq!(child["name"], "default/shop-eu", "{child}");
    assert!(h.cli(&["tenants", "create", "rival"]).status.success());
    let rival = key(&h, "rival", "admin");
    let (s, theirs) = create_subaccount(&h, &rival, "shop-eu");
    assert_eq!(
        (s, &theirs["name"]),
        (201, &json!("rival/shop-eu")),
        "{theirs}"
    );

    // The parent's admin gives the sub-account a domain and a key.
    let as_child = Some(child_id.as_str());
    let (s, v) = call(
        &h,
        &admin,
        "POST",
        "/v1/domains",
        Some(json!({"domain": "shop.example"})),
        as_child,
    );
    assert_eq!(s, 201, "{v}");
    let (s, created) = call(
        &h,
        &admin,
        "POST",
        "/v1/keys",
        Some(json!({"name": "shop", "scopes": ["send", "read"]})),
        as_child,
    );
    assert_eq!(s, 201, "{created}");
    let child_key = created["key"].as_str().unwrap().to_string();

    // The sub-account sends with its own key; the parent sees it only through the header.
    let (s, sent) = call(
        &h,
        &child_key,
        "POST",
        "/v1/messages",
        Some(
            json!({"from": "orders@shop.example", "to": ["buyer@example.test"], "subject": "Order", "text": "t"}),
        ),
        None,
    );
    assert_eq!(s, 202, "{sent}");
    let message = format!("/v1/messages/{}", sent["id"].as_str().unwrap());
    assert_eq!(call(&h, &admin, "GET", &message, None, as_child).0, 200);
    assert_eq!(
        call(&h, &admin, "GET", &message, None, None).0,
        404,
        "not the parent's own data"
    );
    let (_, domains) = call(&h, &admin, "GET", "/v1/domains", None, None);
    assert!(!domains.to_string().contains("shop.example"), "{domains}");

    // The sub-account cannot reach up, nor nest.
    let (s, _) = call(&h, &child_key, "GET", "/v1/domains/example.com", None, None);
    assert_eq!(s, 404);
    let child_admin = key(&h, "default/shop-eu", "read,admin");
    let (s, v) = create_subaccount(&h, &child_admin, "nested");
    assert_eq!((s, &v["error"]["code"]), (403, &json!("nested_subaccount")));
    let parent_id = child["parent_id"].as_str().unwrap();
    assert_eq!(
        call(
            &h,
            &child_admin,
            "GET",
            "/v1/domains",
            None,
            Some(parent_id)
        )
        .0,
        404,
        "a parent is not a sub-account"
    );

    // Without admin, or from another tenant, the header gets nowhere.
    let sender = key(&h, "default", "send,read");
    let (s, v) = call(&h, &sender, "GET", &message, None, as_child);
    assert_eq!(
        (s, &v["error"]["code"]),
        (403, &json!("insufficient_scope"))
    );
    let out = h.cli(&["tenants", "create", "stranger"]);
    assert!(out.status.success());
    let stranger = key(&h, "stranger", "send,read,write,admin");
    let (s, v) = call(&h, &stranger, "GET", &message, None, as_child);
    assert_eq!((s, &v["error"]["code"]), (404, &json!("not_found")), "{v}");

    // The CLI makes sub-accounts too.
    let out = h.cli(&["tenants", "create", "shop-uk", "--parent", "default"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, list) = call(&h, &admin, "GET", "/v1/subaccounts", None, None);
    assert_eq!(list["subaccounts"].as_array().unwrap().len(), 2, "{list}");
    let out = h.cli(&["tenants", "create", "deeper", "--parent", "shop-uk"]);
    assert!(!out.status.success(), "one level only");
}

#[test]
fn a_parents_admin_cancels_and_reactivates_a_sub_account() {
    let h = Harness::start(Options::default());
    let admin = key(&h, "default", "read,admin");
    let (s, child) = create_subaccount(&h, &admin, "shop-eu");
    assert_eq!(s, 201, "{child}");
    assert_eq!(child["cancelled_at"], Value::Null);
    let id = child["id"].as_str().unwrap().to_string();
    let child_key = key(&h, "default/shop-eu", "read");
    let path = format!("/v1/subaccounts/{id}");

    let (s, cancelled) = call(&h, &admin, "DELETE", &path, None, None);
    assert_eq!(s, 202, "{cancelled}");
    assert!(
        cancelled["deletion_due"].as_str().unwrap() > cancelled["cancelled_at"].as_str().unwrap()
    );
    let (s, err) = call(&h, &child_key, "GET", "/v1/messages", None, None);
    assert_eq!(
        (s, &err["error"]["code"]),
        (403, &json!("tenant_cancelled"))
    );
    let (s, err) = call(&h, &admin, "GET", "/v1/messages", None, Some(&id));
    assert_eq!(
        (s, &err["error"]["code"]),
        (403, &json!("tenant_cancelled"))
    );
    let (s, _) = call(&h, &admin, "DELETE", &path, None, None);
    assert_eq!(s, 403, "already cancelled");

    let reactivate = format!("{path}/reactivate");
    let (s, back) = call(&h, &admin, "POST", &reactivate, None, None);
    assert_eq!((s, &back["cancelled_at"]), (200, &Value::Null), "{back}");
    assert_eq!(
        call(&h, &child_key, "GET", "/v1/messages", None, None).0,
        200
    );
    let (s, err) = call(&h, &admin, "POST", &reactivate, None, None);
    assert_eq!(
        (s, &err["error"]["code"]),
        (409, &json!("tenant_not_cancelled"))
    );
    // Only the parent's admins reach it.
    let (s, _) = call(&h, &child_key, "DELETE", &path, None, None);
    assert_eq!(s, 403);
    let audit = h.cli(&["audit", "verify"]);
    assert!(audit.status.success());
}
