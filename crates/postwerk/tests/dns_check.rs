//! Issue 17, a domain's live DNS status: `GET /v1/domains/{domain}/check` looks each
//! record to publish up through the resolver delivery uses (a real DNS server on
//! loopback here) and says which are found, missing or different.

mod common;

use common::{Harness, Options, free_port};
use postwerk_dns::testdns::{TestDns, TestRecord};
use serde_json::{Value, json};

#[test]
fn each_record_is_found_missing_or_different_as_dns_answers() {
    // The server must name its DNS server before the domain (and its keys) exist.
    let dns_port = free_port();
    let extra = format!("[dns]\nnameservers = [\"127.0.0.1:{dns_port}\"]");
    let h = Harness::start(Options {
        extra: &extra,
        ..Default::default()
    });
    // The harness registers example.com.
    let (status, domain) = h.get("/v1/domains/example.com");
    assert_eq!(status, 200, "{domain}");
    let records = domain["dns_records"].as_array().unwrap().clone();
    let record = |purpose: &str, nth: usize| -> Value {
        records
            .iter()
            .filter(|r| r["purpose"] == purpose)
            .nth(nth)
            .unwrap_or_else(|| panic!("no {purpose} record {nth}: {domain}"))
            .clone()
    };
    let (rsa, ed25519, spf, mx) = (
        record("dkim", 0),
        record("dkim", 1),
        record("spf", 0),
        record("bounce", 0),
    );
    let text = |r: &Value, key: &str| r[key].as_str().unwrap().to_string();
    let mx_host = text(&mx, "value");
    let mx_host = mx_host
        .split_whitespace()
        .last()
        .unwrap()
        .trim_end_matches('.');

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_, _dns) = runtime
        .block_on(TestDns::start_at(
            format!("127.0.0.1:{dns_port}").parse().unwrap(),
            vec![
                // The RSA key as published (longer than one 255-byte string), spaced
                // differently; no Ed25519 key; another SPF policy; a stricter DMARC
                // policy than suggested; the bounce MX as asked.
                TestRecord::txt(&text(&rsa, "name"), &text(&rsa, "value").replace("; ", ";")),
                TestRecord::txt(&text(&spf, "name"), "v=spf1 include:other.example -all"),
                TestRecord::txt(&text(&spf, "name"), "google-site-verification=abc"),
                TestRecord::txt("_dmarc.example.com", "v=DMARC1; p=reject"),
                TestRecord::mx(&text(&mx, "name"), 10, mx_host),
            ],
        ))
        .unwrap();

    let (status, checked) = h.get("/v1/domains/example.com/check");
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["domain"], "example.com");
    let status_of = |name: &Value, purpose: &str| -> (String, Value) {
        let r = checked["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == *name && r["purpose"] == purpose)
            .unwrap_or_else(|| panic!("{name} missing from {checked}"));
        (
            r["status"].as_str().unwrap().to_string(),
            r["published"].clone(),
        )
    };
    assert_eq!(status_of(&rsa["name"], "dkim").0, "found", "{checked}");
    assert_eq!(
        status_of(&ed25519["name"], "dkim").0,
        "missing",
        "{checked}"
    );
    let (spf_status, spf_published) = status_of(&spf["name"], "spf");
    assert_eq!(spf_status, "different", "{checked}");
    assert_eq!(
        spf_published,
        json!(["v=spf1 include:other.example -all"]),
        "only records of the kind are shown"
    );
    assert_eq!(status_of(&json!("_dmarc.example.com"), "dmarc").0, "found");
    assert_eq!(status_of(&mx["name"], "bounce").0, "found", "{checked}");

    let (status, _) = h.get("/v1/domains/unknown.example/check");
    assert_eq!(status, 404);
}
