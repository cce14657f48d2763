//! Issue 2, next hops by DNS: MX records in preference order (falling back to the
//! next MX when the first is down), null MX (RFC 7505) and NXDOMAIN as hard bounces —
//! resolved by the real binary through a real DNS server on loopback.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink, free_port, wait_until};
use postwerk_dns::testdns::{TestDns, TestRecord};
use serde_json::json;

#[test]
fn delivers_by_mx_preference_and_bounces_null_mx_and_nxdomain() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dns, _dns_handle) = runtime
        .block_on(TestDns::start(vec![
            TestRecord::mx("example.net", 5, "down.example.net"),
            TestRecord::mx("example.net", 10, "mx1.example.net"),
            TestRecord::addr("down.example.net", "127.0.0.2"),
            TestRecord::addr("mx1.example.net", "127.0.0.1"),
            TestRecord::mx("nullmx.example.net", 0, "."),
            // A name, not the IP literal 127.0.0.1.
            TestRecord::mx("literal.example.net", 10, "127.0.0.1."),
        ]))
        .unwrap();
    let sink = Sink::temp(false);
    // The MX hosts are on loopback.
    let delivery = format!("smtp_port = {}\nallow_private_mx = true", sink.port);
    let extra = format!("[dns]\nnameservers = [\"{dns}\"]");
    let h = Harness::start(Options {
        delivery: &delivery,
        extra: &extra,
        ..Default::default()
    });

    let sent = h.send(
        json!({"from": "a@example.com", "to": ["user@example.net", "user@nullmx.example.net", "user@nx.example.net", "user@literal.example.net"], "text": "t"})
    );
    let view = h.wait_final(sent["id"].as_str().unwrap(), Duration::from_secs(30));
    let rcpt = |email: &str| {
        view["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["email"] == email)
            .unwrap()
            .clone()
    };

    let ok = rcpt("user@example.net");
    assert_eq!(ok["status"], "delivered", "{view}\n{}", h.server_log());
    let delivered = ok["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        delivered["mx"], "mx1.example.net",
        "the preferred MX is down; the next one must be used"
    );
    assert_eq!(delivered["ip"], "127.0.0.1");

    for email in [
        "user@nullmx.example.net",
        "user@nx.example.net",
        "user@literal.example.net",
    ] {
        let r = rcpt(email);
        assert_eq!(r["status"], "bounced", "{email}: {r}");
        let reply = r["events"].as_array().unwrap().last().unwrap()["reply"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(reply.starts_with("DNS:"), "{email}: {reply}");
    }
    assert!(sink.wait_for(1, Duration::from_secs(5)));
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(sink.messages()[0].1["rcpt"][0], "user@example.net");
}

/// A recipient domain is the tenant's choice: an MX on a loopback (private,
/// link-local …) address is not connected to unless the operator allows it, and the
/// reply names the policy without echoing the address.
#[test]
fn mx_on_a_loopback_address_is_refused_by_default() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dns, _dns_handle) = runtime
        .block_on(TestDns::start(vec![
            TestRecord::mx("inside.example.net", 10, "mx.inside.example.net"),
            TestRecord::addr("mx.inside.example.net", "127.0.0.3"),
            TestRecord::addr("implicit.example.net", "127.0.0.3"),
        ]))
        .unwrap();
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = Sink::start_at(
        &sink_dir.path().join("sink"),
        "127.0.0.3",
        free_port(),
        None,
    );
    let delivery = format!("smtp_port = {}\nretry_base = \"1h\"", sink.port);
    let extra = format!("[dns]\nnameservers = [\"{dns}\"]");
    let h = Harness::start(Options {
        delivery: &delivery,
        extra: &extra,
        ..Default::default()
    });
    let sent = h.send(
        json!({"from": "a@example.com", "to": ["user@inside.example.net", "user@implicit.example.net"], "text": "t"})
    );
    let id = sent["id"].as_str().unwrap();
    let mut view = serde_json::Value::Null;
    let deferred = wait_until(Duration::from_secs(30), || {
        view = h.get(&format!("/v1/messages/{id}")).1;
        view["recipients"]
            .as_array()
            .is_some_and(|rs| rs.iter().all(|r| r["status"] == "deferred"))
    });
    assert!(deferred, "{view}\n{}", h.server_log());
    for r in view["recipients"].as_array().unwrap() {
        let last = r["events"].as_array().unwrap().last().unwrap().clone();
        let reply = last["reply"].as_str().unwrap();
        assert_eq!(
            reply,
            "DNS: no public address for the MX: private, loopback and reserved addresses are refused",
            "{r}"
        );
        assert!(last["ip"].is_null() && last["mx"].is_null(), "{last}");
    }
    assert_eq!(sink.count(), 0, "nothing may reach the loopback MX");
}
