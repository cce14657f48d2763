//! Issue 6, rate limits through the real front doors: API keys, tenants and client
//! addresses are limited by GCRA (`[rate_limits]`); answers carry `RateLimit-*`
//! headers and a refusal is `429 rate_limited` with `Retry-After`. SMTP AUTH attempts
//! are limited per address (`454 4.7.0`).

mod common;

use common::{Harness, Options, python};
use serde_json::Value;

/// `GET path` with `key`: status, the `RateLimit-*`/`Retry-After` headers, body.
fn get(h: &Harness, key: &str, path: &str) -> (u16, Vec<(String, String)>, Value) {
    let result = ureq::get(&format!("http://{}{path}", h.http))
        .set("Authorization", &format!("Bearer {key}"))
        .call();
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let headers = [
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit-policy",
        "retry-after",
    ]
    .iter()
    .filter_map(|n| resp.header(n).map(|v| (n.to_string(), v.to_string())))
    .collect();
    let status = resp.status();
    let body = resp.into_json().unwrap_or(Value::Null);
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn new_key(h: &Harness) -> String {
    h.new_key(None, "read", &[])
}

#[test]
fn keys_and_tenants_are_limited_with_ratelimit_headers_and_429() {
    let h = Harness::start(Options {
        extra: "[rate_limits]\nwindow = \"1m\"\nper_key = 5\nper_tenant = 8\n",
        ..Default::default()
    });
    for left in (0..5).rev() {
        let (status, headers, body) = get(&h, &h.key, "/v1/domains");
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&headers, "ratelimit-limit"), Some("5"));
        assert_eq!(
            header(&headers, "ratelimit-remaining"),
            Some(left.to_string().as_str())
        );
        assert_eq!(header(&headers, "ratelimit-policy"), Some("5;w=60"));
    }
    let (status, headers, body) = get(&h, &h.key, "/v1/domains");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        header(&headers, "retry-after"),
        Some("12"),
        "one request per 12 s refills"
    );
    assert_eq!(header(&headers, "ratelimit-remaining"), Some("0"));

    // Another key of the same tenant has its own allowance, but the tenant's limit (8)
    // covers both: 5 were used, 3 are left.
    let second = new_key(&h);
    for _ in 0..3 {
        let (status, _, body) = get(&h, &second, "/v1/domains");
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = get(&h, &second, "/v1/domains");
    assert_eq!(status, 429, "the tenant's limit: {body}");

    // Invalid keys are not counted against anyone's allowance, and unauthenticated
    // endpoints carry no limit headers.
    let (status, headers, _) = get(&h, "pw_live_forged", "/v1/health");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "ratelimit-limit"),
        Some("120000"),
        "the address limit"
    );
}

#[test]
fn client_addresses_are_limited_before_keys_are_checked() {
    let h = Harness::start(Options {
        extra: "[rate_limits]\nper_ip = 3\n",
        ..Default::default()
    });
    for _ in 0..3 {
        assert_eq!(get(&h, &h.key, "/v1/domains").0, 200);
    }
    let (status, headers, body) = get(&h, "pw_live_anything", "/v1/domains");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(header(&headers, "retry-after"), Some("20"));
}

#[test]
fn smtp_auth_attempts_are_limited_per_address() {
    let h = Harness::start(Options {
        extra: "[rate_limits]\nsmtp_auth_per_ip = 2\n",
        ..Default::default()
    });
    let script = r#"
import base64, smtplib, ssl, sys
port, key = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
codes = []
for password in [key, key, key]:
    s = smtplib.SMTP("127.0.0.1", port, timeout=10); s.starttls(context=ctx); s.ehlo("client.test")
    code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0apikey\0" + password.encode()).decode())
    codes.append(f"{code} {msg.decode().split()[0]}")
    s.quit()
print("|".join(codes))
"#;
    let out = python(script, &[&h.smtp.to_string(), &h.key]);
    assert_eq!(
        out.trim(),
        "235 2.7.0|235 2.7.0|454 4.7.0",
        "{}",
        h.server_log()
    );
}

fn cli_key(h: &Harness, extra: &[&str]) -> String {
    h.new_key(None, "send,read,admin", extra)
}

#[test]
fn keys_carry_their_own_address_allowlist_and_rate_limit() {
    let h = Harness::start(Options::default());
    let elsewhere = cli_key(&h, &["--allow-ip", "10.0.0.0/8", "--allow-ip", "192.0.2.7"]);
    let (status, _, body) = get(&h, &elsewhere, "/v1/domains");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "ip_not_allowed");
    let here = cli_key(&h, &["--allow-ip", "127.0.0.1"]);
    assert_eq!(get(&h, &here, "/v1/domains").0, 200);
    let bad = h.cli(&["keys", "create", "--name", "x", "--allow-ip", "not-an-ip"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--allow-ip"));

    // Through the API: a key limited to 2 requests per window, from loopback only.
    let (status, created) = h.request_with_key(
        "POST",
        "/v1/keys",
        Some(&serde_json::json!({"name": "limited", "scopes": ["read"], "allowed_ips": ["127.0.0.0/8"], "rate_limit": 2})),
        &[],
        Some(&here),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["allowed_ips"], serde_json::json!(["127.0.0.0/8"]));
    assert_eq!(created["rate_limit"], 2);
    let limited = created["key"].as_str().unwrap();
    for _ in 0..2 {
        let (status, headers, _) = get(&h, limited, "/v1/domains");
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "ratelimit-limit"), Some("2"));
    }
    assert_eq!(get(&h, limited, "/v1/domains").0, 429);
    let (status, body) = h.request_with_key(
        "POST",
        "/v1/keys",
        Some(&serde_json::json!({"name": "bad", "scopes": ["read"], "allowed_ips": ["300.1.1.1"]})),
        &[],
        Some(&here),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &Value::from("invalid_allowed_ips")),
        "{body}"
    );

    // SMTP AUTH honours the allowlist too.
    let script = r#"
import base64, smtplib, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
codes = []
for key in sys.argv[2:]:
    s = smtplib.SMTP("127.0.0.1", port, timeout=10); s.starttls(context=ctx); s.ehlo("client.test")
    code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0apikey\0" + key.encode()).decode())
    codes.append(str(code)); s.quit()
print("|".join(codes))
"#;
    let out = python(script, &[&h.smtp.to_string(), &elsewhere, &here]);
    assert_eq!(out.trim(), "535|235");
}

#[test]
fn smtp_submissions_count_against_the_keys_limit() {
    let h = Harness::start(Options::default());
    let key = h.new_key(None, "send", &["--rate-limit", "2"]);
    let script = r#"
import base64, smtplib, ssl, sys
port, key = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", port, timeout=10); s.starttls(context=ctx); s.ehlo("client.test")
s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0apikey\0" + key.encode()).decode())
codes = []
for i in range(3):
    s.mail("app@example.com"); s.rcpt("limit@example.test")
    code, msg = s.data(b"From: app@example.com\r\nSubject: %d\r\n\r\nhi\r\n" % i)
    codes.append(f"{code} {msg.decode().split()[0]}")
s.quit()
print("|".join(codes))
"#;
    let out = python(script, &[&h.smtp.to_string(), &key]);
    assert_eq!(out.trim(), "250 2.0.0|250 2.0.0|451 4.7.1");
}

#[test]
fn failed_smtp_auth_is_counted_and_audited() {
    let h = Harness::start(Options::default());
    let admin = h.new_key(None, "admin", &[]);
    // A real key without the `send` scope, then one that does not exist.
    let reader = h.new_key(None, "read", &[]);
    let script = r#"
import base64, smtplib, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
codes = []
for password in sys.argv[2:]:
    s = smtplib.SMTP("127.0.0.1", port, timeout=10); s.starttls(context=ctx); s.ehlo("client.test")
    code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0apikey\0" + password.encode()).decode())
    codes.append(str(code))
    s.quit()
print("|".join(codes))
"#;
    let out = python(script, &[&h.smtp.to_string(), &reader, "pw_live_nosuchkey"]);
    assert_eq!(out.trim(), "535|535");
    let metrics = ureq::get(&format!("http://{}/metrics", h.http))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("postwerk_auth_failures_total{kind=\"smtp_auth\"} 2"),
        "{metrics}"
    );
    let (_, log) = h.request_with_key("GET", "/v1/audit?limit=1000", None, &[], Some(&admin));
    let refused: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "auth_failure.smtp_auth")
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "the known key's refusal in its tenant's log: {log}"
    );
    assert_eq!(refused[0]["actor"], "anonymous");
    assert!(refused[0]["target"].as_str().unwrap().starts_with("key:"));
    assert!(
        !log.to_string().contains(&reader),
        "the audit log holds a key"
    );
}
