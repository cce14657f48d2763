//! Issue 3, MTA-STS (RFC 8461) end to end: the real binary finds policies through a
//! real DNS server on loopback (`_mta-sts` TXT), fetches them over HTTPS from a local
//! policy host with a certificate of a private CA, and then
//! - under `enforce`, delivers only to the MX host the policy names, over TLS verified
//!   for that host, although a preferred MX outside the policy is up;
//! - under `enforce`, defers (never downgrades) when the MX host's certificate is not
//!   trusted;
//! - under `testing`, delivers as before.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Harness, Options, Sink, free_port, openssl, wait_until};
use postwerk_dns::testdns::{TestDns, TestRecord};
use serde_json::json;

/// A private CA and one certificate it signed for `names`: (CA certificate,
/// certificate, key).
fn private_ca_certificate(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &[
                "req",
                "-x509",
                "-days",
                "1",
                "-subj",
                "/CN=Postwerk Test CA",
            ][..],
            &ec,
            &["-keyout", &path("ca.key"), "-out", &path("ca.crt")],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=mta-sts test"][..],
            &ec,
            &["-keyout", &path("host.key"), "-out", &path("host.csr")],
        ]
        .concat(),
    );
    let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    std::fs::write(
        dir.join("host.ext"),
        format!(
            "subjectAltName={}\nbasicConstraints=CA:FALSE\n",
            sans.join(",")
        ),
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        &path("host.csr"),
        "-CA",
        &path("ca.crt"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-extfile",
        &path("host.ext"),
        "-out",
        &path("host.crt"),
    ]);
    (
        dir.join("ca.crt"),
        dir.join("host.crt"),
        dir.join("host.key"),
    )
}

/// The policy host (tests/support/policy_host.py): serves `<dir>/<host>.txt`.
struct PolicyHost(Child);

impl PolicyHost {
    fn start(dir: &Path, port: u16, cert: &Path, key: &Path) -> PolicyHost {
        let child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/policy_host.py"))
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(dir)
            .arg(cert)
            .arg(key)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 policy host");
        assert!(
            wait_until(Duration::from_secs(10), || dir.join(".ready").exists()),
            "policy host did not start"
        );
        PolicyHost(child)
    }
}

impl Drop for PolicyHost {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn enforce_policies_pick_the_mx_and_require_verified_tls_testing_policies_do_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca_certificate(
        tmp.path(),
        &[
            "mta-sts.example.net",
            "mta-sts.example.org",
            "mta-sts.example.info",
            "mx1.example.net",
        ],
    );
    let policies = tmp.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let policy = |domain: &str, mode: &str, mx: &str| {
        let text = format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n");
        std::fs::write(policies.join(format!("mta-sts.{domain}.txt")), text).unwrap();
    };
    policy("example.net", "enforce", "mx1.example.net");
    policy("example.org", "enforce", "*.example.org");
    policy("example.info", "testing", "mx.example.info");
    let policy_port = free_port();
    let _policy_host = PolicyHost::start(&policies, policy_port, &cert, &key);

    // One SMTP port, three hosts: a trusted TLS sink (the policy's MX), a plain sink
    // (an MX outside the policies) and a sink whose certificate nobody trusts.
    let smtp_port = free_port();
    let trusted = Sink::start_at(
        &tmp.path().join("trusted"),
        "127.0.0.1",
        smtp_port,
        Some((cert, key)),
    );
    let plain = Sink::start_at(&tmp.path().join("plain"), "127.0.0.2", smtp_port, None);
    let untrusted_dir = tmp.path().join("untrusted");
    let (self_signed, self_signed_key) = (tmp.path().join("self.crt"), tmp.path().join("self.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=mx.example.org",
        "-addext",
        "subjectAltName=DNS:mx.example.org",
        "-keyout",
        self_signed_key.to_str().unwrap(),
        "-out",
        self_signed.to_str().unwrap(),
    ]);
    let untrusted = Sink::start_at(
        &untrusted_dir,
        "127.0.0.3",
        smtp_port,
        Some((self_signed, self_signed_key)),
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dns, _dns) = runtime
        .block_on(TestDns::start(vec![
            // example.net: the preferred MX is outside the policy.
            TestRecord::txt("_mta-sts.example.net", "v=STSv1; id=20261124"),
            TestRecord::addr("mta-sts.example.net", "127.0.0.1"),
            TestRecord::mx("example.net", 5, "rogue.example.net"),
            TestRecord::mx("example.net", 10, "mx1.example.net"),
            TestRecord::addr("rogue.example.net", "127.0.0.2"),
            TestRecord::addr("mx1.example.net", "127.0.0.1"),
            // example.org: the only MX presents an untrusted certificate.
            TestRecord::txt("_mta-sts.example.org", "v=STSv1; id=1"),
            TestRecord::addr("mta-sts.example.org", "127.0.0.1"),
            TestRecord::mx("example.org", 10, "mx.example.org"),
            TestRecord::addr("mx.example.org", "127.0.0.3"),
            // example.info: testing mode, the MX is outside the policy and has no TLS.
            TestRecord::txt("_mta-sts.example.info", "v=STSv1; id=1"),
            TestRecord::addr("mta-sts.example.info", "127.0.0.1"),
            TestRecord::mx("example.info", 10, "other.example.info"),
            TestRecord::addr("other.example.info", "127.0.0.2"),
        ]))
        .unwrap();
    // The DNS server and the MX hosts are on loopback.
    let delivery = format!("smtp_port = {smtp_port}\nretry_base = \"1h\"\nallow_private_mx = true");
    let extra = format!(
        "[dns]\nnameservers = [\"{dns}\"]\n[mta_sts]\nca_file = \"{}\"\npolicy_port = {policy_port}",
        ca.display()
    );
    let h = Harness::start(Options {
        delivery: &delivery,
        extra: &extra,
        ..Default::default()
    });

    let sent = h.send(
        json!({"from": "a@example.com", "to": ["user@example.net", "user@example.org", "user@example.info"], "text": "t"})
    );
    let id = sent["id"].as_str().unwrap();
    let last_event = |email: &str| {
        let (_, view) = h.get(&format!("/v1/messages/{id}"));
        let rcpt = view["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["email"] == email)
            .cloned()
            .unwrap();
        (
            rcpt["status"].as_str().unwrap_or("").to_string(),
            rcpt["events"].as_array().and_then(|e| e.last().cloned()),
        )
    };
    let settled = wait_until(Duration::from_secs(30), || {
        ["user@example.net", "user@example.org", "user@example.info"]
            .iter()
            .all(|e| last_event(e).0 != "queued")
    });
    assert!(settled, "{}", h.server_log());

    let (status, event) = last_event("user@example.net");
    let event = event.unwrap();
    assert_eq!(status, "delivered", "{event}\n{}", h.server_log());
    assert_eq!(
        event["mx"], "mx1.example.net",
        "the policy's MX, not the preferred rogue one"
    );
    assert_eq!(event["tls"]["verified"], true, "{event}");
    assert_eq!(trusted.messages()[0].1["rcpt"], json!(["user@example.net"]));

    let (status, event) = last_event("user@example.org");
    let event = event.unwrap();
    assert_eq!(status, "deferred", "never downgraded: {event}");
    let reply = event["reply"].as_str().unwrap();
    assert!(
        reply.starts_with("MTA-STS: no MX host with verified TLS"),
        "{reply}"
    );
    assert_eq!(untrusted.count(), 0);

    let (status, event) = last_event("user@example.info");
    assert_eq!(
        status, "delivered",
        "testing mode does not block: {event:?}"
    );
    let plain_rcpts: Vec<_> = plain
        .messages()
        .into_iter()
        .map(|(_, m)| m["rcpt"].clone())
        .collect();
    assert_eq!(
        plain_rcpts,
        [json!(["user@example.info"])],
        "the rogue MX of example.net got nothing"
    );

    let requests = std::fs::read_to_string(policies.join("requests.log")).unwrap();
    for host in [
        "mta-sts.example.net",
        "mta-sts.example.org",
        "mta-sts.example.info",
    ] {
        assert!(
            requests.contains(&format!("{host} /.well-known/mta-sts.txt")),
            "{requests}"
        );
    }
}
