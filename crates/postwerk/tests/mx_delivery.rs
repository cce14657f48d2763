//! Issue 2, next hops by DNS: MX records in preference order (falling back to the
//! next MX when the first is down), null MX (RFC 7505) and NXDOMAIN as hard bounces —
//! resolved by the real binary through a real DNS server on loopback.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink};
use postwerk_mta::testdns::{TestDns, TestRecord};
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
        ]))
        .unwrap();
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&sink_dir.path().join("sink"), false);
    let delivery = format!("smtp_port = {}", sink.port);
    let extra = format!("[dns]\nnameservers = [\"{dns}\"]");
    let h = Harness::start(Options {
        delivery: &delivery,
        extra: &extra,
        ..Default::default()
    });

    let (s, sent) = h.post(
        "/v1/messages",
        json!({"from": "a@example.com", "to": ["user@example.net", "user@nullmx.example.net", "user@nx.example.net"], "text": "t"}),
    );
    assert_eq!(s, 202, "{sent}");
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

    for email in ["user@nullmx.example.net", "user@nx.example.net"] {
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
