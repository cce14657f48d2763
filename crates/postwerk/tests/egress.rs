//! Egress pools on loopback: each stream and tenant leaves from its pool's addresses
//! (the sink records the peer address and EHLO name), a source whose address cannot
//! be bound is set aside while the pool's other sources carry the mail, and bad pool
//! configuration is refused naming the key.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

const POOLS: &str = r#"
[privacy]
consent_required = {}
[egress]
stream_pools = { transactional = "tx", broadcast = "bulk" }
tenant_pools = { acme = "acme" }
[[egress.sources]]
name = "ip2"
address = "127.0.0.2"
ehlo_name = "tx.postwerk.test"
[[egress.sources]]
name = "ip3"
address = "127.0.0.3"
ehlo_name = "bulk.postwerk.test"
[[egress.sources]]
name = "ip4"
address = "127.0.0.4"
[[egress.sources]]
name = "unbound"
address = "192.0.2.1"
[[egress.pools]]
name = "tx"
sources = [{ source = "ip2" }]
[[egress.pools]]
name = "bulk"
sources = [{ source = "ip3" }, { source = "unbound" }]
[[egress.pools]]
name = "acme"
sources = [{ source = "ip4" }]
"#;

/// Sends one message per (stream, recipient) from `from` with `key`; returns the
/// message ids.
fn send_all(h: &Harness, key: &str, from: &str, sends: &[(&str, &str)]) -> Vec<String> {
    sends
        .iter()
        .map(|(stream, to)| {
            let body = json!({"from": from, "to": [to], "text": "t", "stream": stream});
            let (status, resp) =
                h.request_with_key("POST", "/v1/messages", Some(&body), &[], Some(key));
            assert_eq!(status, 202, "{resp}");
            resp["id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// (peer address, EHLO name) of each recipient's delivered copy.
fn origins(sink: &Sink) -> HashMap<String, (String, String)> {
    sink.messages()
        .into_iter()
        .map(|(_, meta)| {
            let rcpt = meta["rcpt"][0].as_str().unwrap_or_default().to_string();
            let peer = meta["peer"].as_str().unwrap_or_default().to_string();
            let ehlo = meta["ehlo"].as_str().unwrap_or_default().to_string();
            (rcpt, (peer, ehlo))
        })
        .collect()
}

#[test]
fn streams_and_tenants_leave_from_their_pools() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        extra: POOLS,
        // One message per connection: every message picks a source anew.
        delivery: "max_messages_per_connection = 1",
        ..Options::to(&sink)
    });
    let (status, created) = h.post("/v1/streams", json!({"name": "receipts", "pool": "tx"}));
    assert_eq!(status, 201, "{created}");
    let (status, err) = h.post("/v1/streams", json!({"name": "alerts", "pool": "nowhere"}));
    assert_eq!(
        (status, &err["error"]["field"]),
        (422, &json!("pool")),
        "{err}"
    );

    for args in [
        vec!["tenants", "create", "acme"],
        vec!["domains", "add", "acme.example", "--tenant", "acme"],
    ] {
        let out = h.cli(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let acme_key = h.named_key("acme", Some("acme"), "send,read", &[]);

    let mut ids = send_all(
        &h,
        &h.key,
        "app@example.com",
        &[
            ("transactional", "t1@example.test"),
            ("transactional", "t2@example.test"),
            ("broadcast", "b1@example.test"),
            ("broadcast", "b2@example.test"),
            ("broadcast", "b3@example.test"),
            ("receipts", "r1@example.test"),
        ],
    );
    ids.extend(send_all(
        &h,
        &acme_key,
        "app@acme.example",
        &[("broadcast", "a1@example.test")],
    ));
    assert!(
        sink.wait_for(ids.len(), Duration::from_secs(30)),
        "delivered {} of {}",
        sink.count(),
        ids.len()
    );

    let origins = origins(&sink);
    let from = |rcpt: &str| origins.get(rcpt).cloned().unwrap_or_default();
    for rcpt in ["t1@example.test", "t2@example.test", "r1@example.test"] {
        assert_eq!(
            from(rcpt),
            ("127.0.0.2".into(), "tx.postwerk.test".into()),
            "{rcpt}"
        );
    }
    // The pool's other source cannot be bound (192.0.2.1 is not on this host): it is
    // set aside and 127.0.0.3 carries all of the pool's mail.
    for rcpt in ["b1@example.test", "b2@example.test", "b3@example.test"] {
        assert_eq!(
            from(rcpt),
            ("127.0.0.3".into(), "bulk.postwerk.test".into()),
            "{rcpt}"
        );
    }
    assert_eq!(
        from("a1@example.test").0,
        "127.0.0.4",
        "the tenant's dedicated address"
    );
    assert_eq!(
        from("a1@example.test").1,
        "mta.postwerk.test",
        "default EHLO name"
    );

    // The timeline names the source.
    let (_, view) = h.get(&format!("/v1/messages/{}", ids[2]));
    let delivered: Vec<&Value> = view["recipients"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "delivered")
        .collect();
    assert_eq!(delivered.len(), 1, "{view}");
    assert_eq!(
        (&delivered[0]["source"], &delivered[0]["source_ip"]),
        (&json!("ip3"), &json!("127.0.0.3"))
    );
    assert!(
        h.server_log().contains("egress source cannot be bound"),
        "the unusable source is reported"
    );

    // Statistics by pool, source and site.
    let delivered = |query: &str| {
        let (status, body) = h.get(&format!("/v1/stats?{query}"));
        assert_eq!(status, 200, "{body}");
        body["totals"]["delivered"].as_u64().unwrap_or(0)
    };
    assert_eq!(delivered("pool=bulk"), 3);
    assert_eq!(delivered("source=ip2"), 3);
    assert_eq!(delivered("pool=tx&stream=receipts"), 1);
    assert_eq!(
        delivered("site=127.0.0.1"),
        6,
        "the default tenant's mail; acme's is its own"
    );
    assert_eq!(delivered("source=unbound"), 0);
}

#[test]
fn bad_pool_configuration_is_refused_naming_the_key() {
    let root = tempfile::tempdir().unwrap();
    let cases = [
        (
            POOLS.replace(
                "sources = [{ source = \"ip2\" }]",
                "sources = [{ source = \"ip9\" }]",
            ),
            "egress.pools[0].sources[0].source",
        ),
        (
            POOLS.replace(
                "tenant_pools = { acme = \"acme\" }",
                "tenant_pools = { acme = \"gone\" }",
            ),
            "egress.tenant_pools.acme",
        ),
        (
            POOLS.replace("address = \"127.0.0.4\"", "address = \"localhost\""),
            "address",
        ),
    ];
    for (text, key) in cases {
        let path = root.path().join("postwerk.toml");
        std::fs::write(&path, &text).unwrap();
        let out = std::process::Command::new(common::bin())
            .arg("--config")
            .arg(&path)
            .args(["config", "check"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(key), "{key}: {err}");
    }
}

#[test]
fn warmup_caps_hold_mail_and_survive_a_restart() {
    let sink = Sink::temp(false);
    let date = std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .unwrap();
    let today = String::from_utf8(date.stdout).unwrap().trim().to_string();
    let pools = format!(
        "[privacy]\nconsent_required = {{}}\n[egress]\ndefault_pool = \"new\"\n\
         [[egress.sources]]\nname = \"fresh\"\naddress = \"127.0.0.5\"\nwarmup = [2, 1000]\nwarmup_start = \"{today}\"\n\
         [[egress.pools]]\nname = \"new\"\nsources = [{{ source = \"fresh\" }}]\nover_cap = \"wait\"\n"
    );
    let mut h = Harness::start(Options {
        extra: &pools,
        delivery: "max_messages_per_connection = 1",
        ..Options::to(&sink)
    });
    let to: Vec<String> = (1..=4).map(|i| format!("w{i}@example.test")).collect();
    let sends: Vec<(&str, &str)> = to.iter().map(|t| ("broadcast", t.as_str())).collect();
    let ids = send_all(&h, &h.key.clone(), "app@example.com", &sends);
    let settled = common::wait_until(Duration::from_secs(30), || {
        let statuses: Vec<String> = ids
            .iter()
            .map(|id| h.get(&format!("/v1/messages/{id}")).1["recipients"][0]["status"].to_string())
            .collect();
        statuses.iter().filter(|s| s.contains("delivered")).count() == 2
            && statuses.iter().filter(|s| s.contains("deferred")).count() == 2
    });
    assert!(settled, "day 0 allows 2 messages from the new address");
    assert!(origins(&sink).values().all(|(peer, _)| peer == "127.0.0.5"));
    let (_, view) = h.get("/v1/events?type=deferred");
    assert!(
        view.to_string().contains("reached its warm-up cap"),
        "{view}"
    );

    // After a restart the day's count is still 2: retried mail keeps waiting.
    assert!(h.stop(), "clean stop");
    h.serve();
    let out = h.cli(&["queue", "retry", "--domain", "example.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let retried = common::wait_until(Duration::from_secs(20), || {
        h.get("/v1/events?type=deferred").1["events"]
            .as_array()
            .map_or(0, Vec::len)
            >= 4
    });
    assert!(retried, "the retried mail was attempted again and deferred");
    assert_eq!(sink.count(), 2, "the cap held across the restart");
}

#[test]
fn a_tenant_uses_only_its_own_shared_and_unowned_pools() {
    let sink = Sink::temp(false);
    let pools = format!(
        "{POOLS}\n[[egress.pools]]\nname = \"partner\"\nsources = [{{ source = \"ip2\" }}]\nshared = true\n"
    )
    .replace(
        "tenant_pools = { acme = \"acme\" }",
        "tenant_pools = { acme = \"acme\", beta = \"partner\" }",
    );
    let h = Harness::start(Options {
        extra: &pools,
        ..Options::to(&sink)
    });
    for t in ["acme", "evil"] {
        for args in [
            vec!["tenants", "create", t],
            vec!["domains", "add", &format!("{t}.example"), "--tenant", t],
        ] {
            let out = h.cli(&args);
            assert!(out.status.success(), "{args:?}: {out:?}");
        }
    }
    let evil = h.new_key(Some("evil"), "send,read,write", &[]);
    let acme = h.new_key(Some("acme"), "send,read,write", &[]);
    let call = |key: &str, method: &str, path: &str, body: Value| {
        h.request_with_key(method, path, Some(&body), &[], Some(key))
    };

    // Another tenant's dedicated pool: refused on update and on create.
    let tx = "/v1/streams/transactional";
    for (method, path, body) in [
        ("PATCH", tx, json!({"pool": "acme"})),
        (
            "POST",
            "/v1/streams",
            json!({"name": "sneaky", "pool": "acme"}),
        ),
    ] {
        let (status, err) = call(&evil, method, path, body);
        assert_eq!(
            (status, &err["error"]["code"], &err["error"]["field"]),
            (403, &json!("pool_not_allowed"), &json!("pool")),
            "{method} {path}: {err}"
        );
    }
    // Its own, a shared one (though beta's), and one that is nobody's.
    let (status, own) = call(&acme, "PATCH", tx, json!({"pool": "acme"}));
    assert_eq!((status, &own["pool"]), (200, &json!("acme")), "{own}");
    for pool in ["partner", "tx"] {
        let (status, v) = call(&evil, "PATCH", tx, json!({"pool": pool}));
        assert_eq!((status, &v["pool"]), (200, &json!(pool)), "{v}");
    }

    // Priority 0 and a large reserved share are the operator's.
    let bc = "/v1/streams/broadcast";
    for (body, field) in [
        (json!({"priority": 0}), "priority"),
        (json!({"reserved_share": 11}), "reserved_share"),
        (json!({"name": "urgent", "priority": 0}), "priority"),
        (
            json!({"name": "urgent", "reserved_share": 50}),
            "reserved_share",
        ),
    ] {
        let path = if body.get("name").is_some() {
            "/v1/streams"
        } else {
            bc
        };
        let method = if path == bc { "PATCH" } else { "POST" };
        let (status, err) = call(&evil, method, path, body.clone());
        assert_eq!(
            (status, &err["error"]["code"], &err["error"]["field"]),
            (403, &json!("operator_only"), &json!(field)),
            "{body}: {err}"
        );
    }
    let (status, v) = call(
        &evil,
        "PATCH",
        bc,
        json!({"priority": 1, "reserved_share": 10}),
    );
    assert_eq!((status, &v["reserved_share"]), (200, &json!(10)), "{v}");
    // What the operator gave stays changeable in other respects.
    let (status, v) = call(&evil, "PATCH", tx, json!({"track_opens": false}));
    assert_eq!(
        (status, &v["priority"], &v["reserved_share"]),
        (200, &json!(0), &json!(20)),
        "{v}"
    );
    let out = h.cli(&[
        "streams",
        "update",
        "broadcast",
        "--tenant",
        "evil",
        "--priority",
        "0",
        "--reserved-share",
        "30",
    ]);
    assert!(out.status.success(), "the operator may: {out:?}");
    let out = h.cli(&[
        "streams",
        "update",
        "broadcast",
        "--tenant",
        "evil",
        "--pool",
        "acme",
    ]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("acme"),
        "a stream's pool is open to its tenant, whoever sets it: {out:?}"
    );

    // A foreign pool already stored (before this rule) is not used: the mail leaves
    // from the tenant's own route (here the default: no pool, the host's address).
    h.sqlite(
        "UPDATE streams SET settings = json_set(settings, '$.pool', 'acme') \
         WHERE tenant_id = (SELECT id FROM tenants WHERE name = 'evil') AND name = 'broadcast'",
    );
    let (_, stream) = h.request_with_key("GET", bc, None, &[], Some(&evil));
    assert_eq!(stream["pool"], "acme", "the stored row: {stream}");
    let body = json!({"from": "app@evil.example", "to": ["stolen@example.test"], "text": "t",
                      "stream": "broadcast"});
    let (status, v) = call(&evil, "POST", "/v1/messages", body);
    assert_eq!(status, 202, "{v}");
    assert!(sink.wait_for(1, Duration::from_secs(30)), "delivered");
    assert_ne!(
        origins(&sink)["stolen@example.test"].0,
        "127.0.0.4",
        "not from acme's address"
    );
}
