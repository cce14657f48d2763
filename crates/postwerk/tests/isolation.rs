//! Issue 6, the isolation proof, driven by the OpenAPI document so that every
//! operation it lists is covered (a new operation is covered the day it is documented):
//! - the scope matrix: a key with one scope, on every operation, is refused with
//!   `403 insufficient_scope` exactly when the operation documents another scope;
//! - the cross-tenant probe: tenant B's key with every scope, aimed at tenant A's
//!   resources on every operation, never gets A's data (404 for A's resources), never
//!   a 500, and changes nothing of A's.

mod common;

use common::{Harness, Options};
use serde_json::{Value, json};

const SCOPES: [&str; 7] = [
    "send", "read", "write", "import", "export", "privacy", "admin",
];

/// Every operation of the document that needs a key: (method, path template, scope).
fn documented_operations() -> Vec<(String, String, String)> {
    let doc: Value = serde_json::from_str(include_str!("../../../docs/openapi.json")).unwrap();
    let mut ops = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            if let Some(scope) = operation["security"][0]["bearer"][0].as_str() {
                ops.push((method.to_ascii_uppercase(), path.clone(), scope.to_string()));
            }
        }
    }
    assert!(ops.len() > 40, "the document lists the API: {}", ops.len());
    ops
}

fn key(h: &Harness, tenant: Option<&str>, scopes: &str) -> String {
    h.new_key(tenant, scopes, &[])
}

/// Sends `method path` with a JSON body (`{}` unless given) for mutating methods; the
/// status and the raw body.
fn call(h: &Harness, key: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let url = format!("http://{}{path}", h.http);
    let req = ureq::request(method, &url).set("Authorization", &format!("Bearer {key}"));
    let result = match method {
        "GET" | "DELETE" if body.is_none() => req.call(),
        _ => req.send_json(body.cloned().unwrap_or_else(|| json!({}))),
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            let status = r.status();
            (status, r.into_string().unwrap_or_default())
        }
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// `path` with its parameters filled from `values` (by parameter name, and for `{id}`
/// by the collection it belongs to).
fn fill(path: &str, values: &dyn Fn(&str, &str) -> String) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(&values(&rest[start + 1..end], path));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_operation_takes_exactly_its_documented_scope() {
    let h = Harness::start(Options::default());
    let keys: Vec<(&str, String)> = SCOPES.iter().map(|s| (*s, key(&h, None, s))).collect();
    let dummy = |param: &str, _: &str| {
        match param {
            "email" => "nobody@example.test",
            "domain" => "missing.example",
            "name" => "missing-stream",
            "purpose" => "newsletter",
            "step" => "close",
            "action" => "retry",
            _ => "x_missing",
        }
        .to_string()
    };
    let mut checked = 0;
    for (method, template, scope) in documented_operations() {
        let path = fill(&template, &dummy);
        for (held, key) in &keys {
            let (status, body) = call(&h, key, &method, &path, None);
            if *held == scope {
                assert!(
                    !matches!(status, 401 | 403 | 500..),
                    "{method} {template} with `{held}`: {status} {body}"
                );
            } else {
                assert_eq!(status, 403, "{method} {template} with `{held}`: {body}");
                assert!(body.contains("insufficient_scope"), "{body}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 7 * 40);
}

/// Tenant A's resources, made through the API, and what must never leak from them.
struct TenantA {
    message: String,
    user: String,
    webhook: String,
    key: String,
    request: String,
    incident: String,
    subaccount: String,
    list: String,
    segment: String,
    import: String,
    canary: String,
    template: String,
    broadcast: String,
    /// Strings that appear only in A's data.
    markers: Vec<String>,
}

fn create_tenant_a(h: &Harness, a: &str) -> TenantA {
    let post = |path: &str, body: Value| {
        let (status, text) = call(h, a, "POST", path, Some(&body));
        assert!((200..300).contains(&status), "POST {path}: {status} {text}");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let email = "probe-a@example.test";
    let (status, text) = call(
        h,
        a,
        "PUT",
        &format!("/v1/contacts/{email}"),
        Some(&json!({"attributes": {"secret": "Marker-A-7f3c"}})),
    );
    assert_eq!(status, 201, "{text}");
    post(
        &format!("/v1/contacts/{email}/consents"),
        json!({"purpose": "newsletter", "lawful_basis": "consent", "source": "probe", "wording": "Wording-A-91d2", "wording_version": "v1"}),
    );
    let message = post(
        "/v1/messages",
        json!({"from": "a@example.com", "to": [email], "subject": "Subject-A-5e1a", "text": "t"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let webhook = post(
        "/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hook-a-2b8e", "events": ["delivered"]}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    post("/v1/streams", json!({"name": "a-only", "priority": 2}));
    post("/v1/suppressions", json!({"email": "supp-a@example.test"}));
    let request = post(
        "/v1/privacy/requests",
        json!({"kind": "objection", "email": email, "note": "Note-A-44aa"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let incident = post("/v1/privacy/incidents", json!({"title": "Incident-A-c0de"}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = post(
        "/v1/users",
        json!({"email": "user-a@example.org", "password": "user-a-password", "role": "analyst"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let subaccount = post("/v1/subaccounts", json!({"name": "a-child-9d41"}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = post("/v1/lists", json!({"name": "a-list-3c9e"}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    post(
        "/v1/lists/a-list-3c9e/members",
        json!({"emails": ["probe-a@example.test"]}),
    );
    let segment = post(
        "/v1/segments",
        json!({"name": "a-seg-77b1", "filter": {"lists": ["a-list-3c9e"]}}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let imported = ureq::post(&format!("http://{}/v1/imports?list={list}", h.http))
        .set("Authorization", &format!("Bearer {a}"))
        .set("Content-Type", "text/csv")
        .send_string("email\nimported-a@example.test\n")
        .expect("import");
    let import: Value = imported.into_json().unwrap();
    let import = import["id"].as_str().unwrap().to_string();
    let canary = post("/v1/canaries", json!({"label": "Canary-A-5d0f"}))["address"]
        .as_str()
        .unwrap()
        .to_string();
    let template = post(
        "/v1/templates",
        json!({"name": "a-tpl-61e0", "subject": "Copy-A-0b7e", "html": "<p>Body-A-d15c</p>"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let broadcast = post(
        "/v1/broadcasts",
        json!({"name": "a-bc-4e2f", "template": "a-tpl-61e0", "from": "Sender-A-3b1d <a@example.com>",
               "lists": ["a-list-3c9e"]}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, keys) = call(h, a, "GET", "/v1/keys", None);
    let keys: Value = serde_json::from_str(&keys).unwrap();
    let key = keys["keys"][0]["id"].as_str().unwrap().to_string();
    let (_, domain) = call(h, a, "GET", "/v1/domains/example.com", None);
    let dkim = domain
        .split("p=")
        .nth(1)
        .map(|p| p.chars().take(40).collect::<String>())
        .expect("A's DKIM public key");
    let markers = [
        &message,
        &user,
        "user-a@example.org",
        &webhook,
        &key,
        &request,
        &incident,
        &subaccount,
        &list,
        &segment,
        &import,
        &canary,
        &template,
        &broadcast,
        "a-bc-4e2f",
        "Sender-A-3b1d",
        "a-tpl-61e0",
        "Copy-A-0b7e",
        "Body-A-d15c",
        "a-list-3c9e",
        "a-seg-77b1",
        "Canary-A-5d0f",
        &dkim,
        "Marker-A-7f3c",
        "Wording-A-91d2",
        "Subject-A-5e1a",
        "hook-a-2b8e",
        "Note-A-44aa",
        "Incident-A-c0de",
    ]
    .iter()
    // Short ids (request and incident numbers) occur in any JSON; they are probed
    // through their paths instead.
    .filter(|s| s.len() >= 8)
    .map(|s| s.to_string())
    .collect();
    TenantA {
        message,
        user,
        webhook,
        key,
        request,
        incident,
        subaccount,
        list,
        segment,
        import,
        canary,
        template,
        broadcast,
        markers,
    }
}

#[test]
fn tenant_b_never_reaches_tenant_a() {
    // A's mail waits (its MX refuses connections), so a queue action that crossed
    // tenants would show.
    let h = Harness::start(Options {
        extra: "[webhooks]\nallow_loopback = true\n[canaries]\ndomain = \"canary.example.net\"\n",
        route_port: Some(common::free_port()),
        ..Default::default()
    });
    let all = SCOPES.join(",");
    let a_key = key(&h, None, &all);
    let out = h.cli(&["tenants", "create", "tenant-b"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b_key = key(&h, Some("tenant-b"), &all);
    let a = create_tenant_a(&h, &a_key);

    let target = |param: &str, template: &str| match (param, template) {
        ("id", t) if t.starts_with("/v1/messages/") => a.message.clone(),
        ("id", t) if t.starts_with("/v1/webhooks/") => a.webhook.clone(),
        ("id", t) if t.starts_with("/v1/keys/") => a.key.clone(),
        ("id", t) if t.starts_with("/v1/users/") => a.user.clone(),
        ("id", t) if t.starts_with("/v1/privacy/requests/") => a.request.clone(),
        ("id", t) if t.starts_with("/v1/privacy/incidents/") => a.incident.clone(),
        ("id", t) if t.starts_with("/v1/subaccounts/") => a.subaccount.clone(),
        ("id", t) if t.starts_with("/v1/lists/") => a.list.clone(),
        ("id", t) if t.starts_with("/v1/segments/") => a.segment.clone(),
        ("id", t) if t.starts_with("/v1/imports/") => a.import.clone(),
        ("id", t) if t.starts_with("/v1/templates/") => a.template.clone(),
        ("id", t) if t.starts_with("/v1/broadcasts/") => a.broadcast.clone(),
        ("address", _) => a.canary.clone(),
        ("email", _) => "probe-a@example.test".into(),
        ("domain", _) => "example.com".into(),
        ("name", _) => "a-only".into(),
        ("purpose", _) => "newsletter".into(),
        ("step", _) => "close".into(),
        ("action", _) => "bounce".into(),
        (other, t) => panic!("{t}: no probe value for {{{other}}}"),
    };
    // Bodies that would change A's resources if the tenant check failed.
    let body = |method: &str, template: &str| match (method, template) {
        ("PATCH", "/v1/webhooks/{id}") => Some(json!({"url": "http://127.0.0.1:9/taken-by-b"})),
        ("PATCH", "/v1/streams/{name}") => Some(json!({"priority": 9})),
        ("POST", "/v1/queue/{action}") => Some(json!({"message_id": a.message})),
        ("POST", "/v1/webhooks/{id}/replay") => Some(json!({"from": "2026-01-01T00:00:00Z"})),
        ("POST", "/v1/users/{id}/password") => Some(json!({"password": "taken-over-by-b"})),
        ("POST", "/v1/privacy/requests/{id}/close") => Some(json!({"status": "rejected"})),
        ("PATCH", "/v1/lists/{id}")
        | ("PATCH", "/v1/segments/{id}")
        | ("PATCH", "/v1/templates/{id}")
        | ("PATCH", "/v1/broadcasts/{id}") => Some(json!({"name": "taken-by-b"})),
        ("POST", "/v1/broadcasts/{id}/test") => Some(json!({"to": ["b-probe@example.test"]})),
        ("POST" | "DELETE", "/v1/lists/{id}/members") => {
            Some(json!({"emails": ["probe-a@example.test"]}))
        }
        ("PUT", "/v1/users/{id}/lists") => Some(json!({"lists": null})),
        _ => None,
    };
    for (method, template, _) in documented_operations() {
        let path = fill(&template, &target);
        let (status, text) = call(
            &h,
            &b_key,
            &method,
            &path,
            body(&method, &template).as_ref(),
        );
        assert!(status < 500, "{method} {template}: {status} {text}");
        for marker in &a.markers {
            assert!(
                !text.contains(marker.as_str()),
                "{method} {template} showed A's {marker}: {text}"
            );
        }
        let on_a_resource = ["{id}", "{name}", "{domain}", "{address}"]
            .iter()
            .any(|p| template.contains(p))
            || template.contains("/consents/");
        if on_a_resource {
            assert_eq!(status, 404, "{method} {template} on A's resource: {text}");
        }
    }

    // A's resources are as A left them.
    let get = |path: &str| {
        let (status, text) = call(&h, &a_key, "GET", path, None);
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let message = get(&format!("/v1/messages/{}", a.message));
    assert_ne!(message["recipients"][0]["status"], "bounced", "{message}");
    let webhook = get(&format!("/v1/webhooks/{}", a.webhook));
    assert_eq!(webhook["url"], "http://127.0.0.1:9/hook-a-2b8e");
    let stream = get("/v1/streams/a-only");
    assert_eq!(
        (&stream["priority"], &stream["paused"]),
        (&json!(2), &json!(false)),
        "{stream}"
    );
    let contact = get("/v1/contacts/probe-a@example.test");
    assert_eq!(contact["attributes"]["secret"], "Marker-A-7f3c");
    let keys = get("/v1/keys");
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["revoked_at"].is_null()),
        "{keys}"
    );
    let user = get(&format!("/v1/users/{}", a.user));
    assert!(user["disabled_at"].is_null(), "{user}");
    let login = json!({"email": "user-a@example.org", "password": "user-a-password"});
    let (status, _) = call(&h, "none", "POST", "/v1/auth/login", Some(&login));
    assert_eq!(status, 200, "A's user still signs in with A's password");
    let requests = get("/v1/privacy/requests");
    assert!(requests.to_string().contains(&a.request));
    let list = get(&format!("/v1/lists/{}", a.list));
    assert_eq!(
        (&list["name"], &list["members"]),
        (&json!("a-list-3c9e"), &json!(2)),
        "{list}"
    );
    let canaries = get("/v1/canaries");
    assert!(canaries.to_string().contains(&a.canary));
}
