//! Issue 4 (submission): applications submit over SMTP — Python `smtplib` (STARTTLS +
//! AUTH PLAIN, AUTH LOGIN, implicit TLS), raw PIPELINING + BDAT, and `swaks` — and the
//! mail reaches the sink DKIM-signed with the `X-Postwerk-*` headers removed. No AUTH
//! before TLS, relay without AUTH is refused, a trusted network needs no AUTH, and a
//! bare-LF smuggling attempt produces no second message.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Harness, Options, Sink, dkim_verify, python};
use serde_json::Value;

const CLIENTS: &str = r#"
import smtplib, ssl, socket, sys, json, base64
port, tls_port, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ids = {}

def send(s, rcpt, body):
    s.mail("app@example.com"); s.rcpt(rcpt)
    code, msg = s.data(body)
    assert code == 250, (code, msg)
    return msg.decode().rsplit(" ", 1)[1]

# STARTTLS port: no AUTH before TLS, relay refused, then STARTTLS + AUTH PLAIN.
s = smtplib.SMTP("127.0.0.1", port, timeout=10); s.ehlo("client.test")
assert "auth" not in s.esmtp_features, s.esmtp_features
for ext in ["pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "chunking", "starttls"]:
    assert ext in s.esmtp_features, ext
code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0apikey\0" + key.encode()).decode())
assert code in (503, 538), (code, msg)
assert s.docmd("MAIL FROM:<app@example.com>")[0] == 530
assert s.docmd("RCPT TO:<x@example.test>")[0] == 530
s.starttls(context=ctx); s.ehlo("client.test")
assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"], s.esmtp_features
s.login("apikey", key)
ids["plain"] = send(s, "plain@example.test",
    b"From: App <app@example.com>\r\nTo: plain@example.test\r\nSubject: plain\r\nX-Postwerk-Stream: broadcast\r\nX-Postwerk-Tags: welcome, smtp\r\n\r\nhello\r\n")
# Unknown From domain.
s.mail("app@example.com"); s.rcpt("x@example.test")
code, msg = s.data(b"From: app@unregistered.example\r\n\r\nx\r\n")
assert (code, msg[:5]) == (550, b"5.7.1"), (code, msg)
s.quit()

# AUTH LOGIN.
s = smtplib.SMTP("127.0.0.1", port, timeout=10); s.starttls(context=ctx); s.ehlo("client.test")
s.user, s.password = "apikey", key
code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
assert code == 235
ids["login"] = send(s, "login@example.test", b"From: app@example.com\r\nSubject: login\r\n\r\nhello\r\n")
code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0apikey\0pw_live_wrong").decode())
assert code == 503
s.quit()

# Wrong key.
s = smtplib.SMTP("127.0.0.1", port, timeout=10); s.starttls(context=ctx); s.ehlo("client.test")
try:
    s.login("apikey", "pw_live_" + "x" * 58); raise SystemExit("wrong key accepted")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535 and e.smtp_error.startswith(b"5.7.8"), e
s.close()

# Implicit TLS.
s = smtplib.SMTP_SSL("127.0.0.1", tls_port, timeout=10, context=ctx); s.ehlo("client.test")
s.login(key[:0] + "apikey", key)
ids["implicit"] = send(s, "implicit@example.test", b"From: app@example.com\r\nSubject: implicit\r\n\r\nhello\r\n")
s.quit()

# PIPELINING + BDAT over implicit TLS, written as raw bytes.
raw = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), timeout=10))
f = raw.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline(); lines.append(l)
        if l[3:4] != b"-": return b"".join(lines)
assert reply().startswith(b"220")
body = b"From: app@example.com\r\nSubject: bdat\r\n\r\nchunked\r\n"
auth = base64.b64encode(b"\0apikey\0" + key.encode())
raw.sendall(b"EHLO client.test\r\nAUTH PLAIN " + auth + b"\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<bdat@example.test>\r\n"
            + b"BDAT 20\r\n" + body[:20] + b"BDAT %d LAST\r\n" % (len(body) - 20) + body[20:])
got = [reply() for _ in range(6)]
assert [g[:3] for g in got] == [b"250", b"235", b"250", b"250", b"250", b"250"], got
ids["bdat"] = got[5].decode().split()[-1]
# Smuggling: a bare-LF end of data must not end the message or start a second one.
raw.sendall(b"MAIL FROM:<app@example.com>\r\nRCPT TO:<sub2@example.test>\r\nDATA\r\n")
got = [reply() for _ in range(3)]
assert [g[:3] for g in got] == [b"250", b"250", b"354"], got
raw.sendall(b"From: app@example.com\r\nSubject: smuggle\r\n\r\nbody\n.\nMAIL FROM:<app@example.com>\r\nRCPT TO:<smuggled@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
got = reply()
assert got.startswith(b"550 5.6.11"), got
raw.sendall(b"QUIT\r\n"); assert reply().startswith(b"221")
print(json.dumps(ids))
"#;

#[test]
fn smtplib_submission_starttls_login_implicit_tls_pipelining_bdat() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&sink_dir.path().join("sink"), false);
    let h = Harness::start(Options {
        // Broadcast without recorded consent is covered by gdpr.rs.
        extra: "[privacy]\nconsent_required = {}\n",
        ..Options::to(&sink)
    });
    let out = python(
        CLIENTS,
        &[&h.smtp.to_string(), &h.smtps.to_string(), &h.key],
    );
    let ids: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        sink.wait_for(4, Duration::from_secs(30)),
        "only {} of 4 arrived\n{}",
        sink.count(),
        h.server_log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (_, domain) = h.get("/v1/domains/example.com");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 4, "exactly four messages, nothing smuggled");
    let mut rcpts: Vec<String> = msgs
        .iter()
        .map(|(_, m)| m["rcpt"][0].as_str().unwrap().to_string())
        .collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        [
            "bdat@example.test",
            "implicit@example.test",
            "login@example.test",
            "plain@example.test"
        ]
    );
    for (eml, _) in &msgs {
        let text = String::from_utf8_lossy(eml);
        assert!(!text.contains("X-Postwerk"), "{text}");
        assert!(text.contains("Message-ID: <msg_") && text.contains("\r\nDate: "));
        let verified = dkim_verify(&domain, eml, sink_dir.path());
        assert!(
            verified.contains(&("rsa-sha256".to_string(), true))
                && verified.contains(&("ed25519-sha256".to_string(), true)),
            "{verified:?}"
        );
    }
    let plain = ids["plain"].as_str().unwrap();
    let view = h.wait_final(plain, Duration::from_secs(10));
    assert_eq!(
        view["tags"],
        serde_json::json!(["welcome", "smtp"]),
        "{view}"
    );
    assert_eq!(view["stream"], "broadcast", "{view}");
    let log = h.server_log();
    assert!(log.contains(plain), "the message id is logged");
    assert!(
        !log.contains("plain@example.test") && !log.contains("app@example.com"),
        "an address was logged:\n{log}"
    );
}

#[test]
fn swaks_and_a_trusted_network() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        extra: "[[smtp.submission.trusted]]\ncidr = \"127.0.0.0/8\"\ntenant = \"default\"\nstream = \"broadcast\"\n[privacy]\nconsent_required = {}\n",
        ..Options::to(&sink)
    });
    let swaks = |args: &[&str]| {
        let out = Command::new("swaks")
            .args(["--server", "127.0.0.1", "--from", "app@example.com"])
            .args(["--h-From", "App <app@example.com>", "--timeout", "10"])
            .args(args)
            .output()
            .expect("swaks (apt-get install swaks)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "swaks {args:?}:\n{text}");
        text
    };
    let port = h.smtp.to_string();
    let tls_port = h.smtps.to_string();
    // Trusted: no AUTH, no TLS.
    let t = swaks(&["--port", &port, "--to", "trusted@example.test"]);
    assert!(t.contains("250 2.0.0 Ok: queued as msg_"), "{t}");
    // AUTH still works from a trusted network: STARTTLS and implicit TLS.
    let t = swaks(&[
        "--port",
        &port,
        "--to",
        "starttls@example.test",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "apikey",
        "--auth-password",
        &h.key,
    ]);
    assert!(t.contains("235 2.7.0") && t.contains("Ok: queued"), "{t}");
    let t = swaks(&[
        "--port",
        &tls_port,
        "--to",
        "smtps@example.test",
        "--tlsc",
        "--auth",
        "LOGIN",
        "--auth-user",
        "apikey",
        "--auth-password",
        &h.key,
    ]);
    assert!(t.contains("235 2.7.0") && t.contains("Ok: queued"), "{t}");
    assert!(
        sink.wait_for(3, Duration::from_secs(30)),
        "only {} of 3 arrived\n{}",
        sink.count(),
        h.server_log()
    );
}
