//! The inbound MX through its real front door: messages are delivered to a sink, then
//! the sink's recorded VERP return path receives a DSN, an ARF report (via a feedback
//! address), an auto-reply and a delay notice, sent by Python's smtplib over SMTP.
//! Each shows up on the recipient's timeline; hard bounces and complaints suppress.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

/// Sends `message` with smtplib (`MAIL FROM:<>`, as bounces come) to the inbound MX
/// on `port`; returns `ok` or `refused <code> <text>` for the first refusal.
fn smtp_send(port: u16, rcpts: &[&str], message: &str) -> String {
    let script = r#"
import smtplib, sys, json
port, rcpts, msg = int(sys.argv[1]), json.loads(sys.argv[2]), sys.stdin.read()
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("mx.remote.test")
try:
    s.sendmail("", rcpts, msg.encode())
    print("ok")
except smtplib.SMTPRecipientsRefused as e:
    code, text = list(e.recipients.values())[0]
    print("refused", code, text.decode())
except smtplib.SMTPResponseException as e:
    print("refused", e.smtp_code, e.smtp_error.decode())
s.quit()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, &port.to_string(), &json!(rcpts).to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Sends one message to `to` on `stream`, waits until the sink has it, and returns
/// (message id, the VERP return path it was sent with).
fn delivered(h: &Harness, sink: &Sink, to: &str, stream: &str) -> (String, String) {
    let before = sink.count();
    let (status, v) = h.post(
        "/v1/messages",
        json!({"from": "news@example.com", "to": [to], "subject": "Hello", "text": "Hi", "stream": stream}),
    );
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let view = h.wait_final(&id, Duration::from_secs(20));
    assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");
    assert!(sink.wait_for(before + 1, Duration::from_secs(5)));
    let (_, meta) = sink.messages().pop().unwrap();
    let verp = meta["mail_from"].as_str().unwrap().to_string();
    assert!(
        verp.starts_with("b+rcpt_") && verp.ends_with("@bounces.example.com"),
        "{verp}"
    );
    (id, verp)
}

/// The recipient's status and its last event, once that event has type `kind`.
fn last_event(h: &Harness, id: &str, kind: &str) -> (String, Value) {
    let mut found = (String::new(), Value::Null);
    let ok = common::wait_until(Duration::from_secs(10), || {
        let (_, v) = h.get(&format!("/v1/messages/{id}"));
        let r = &v["recipients"][0];
        let last = r["events"].as_array().and_then(|e| e.last()).cloned();
        found = (
            r["status"].as_str().unwrap_or("").to_string(),
            last.clone().unwrap_or(Value::Null),
        );
        last.is_some_and(|e| e["type"] == kind)
    });
    assert!(ok, "no {kind} event: {found:?}");
    found
}

fn dsn(verp: &str, rcpt: &str, action: &str, status: &str, diagnostic: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.test\r\nTo: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n\
         Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n\
         Remote-MTA: dns; store.example.test\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nReturn-Path: <{verp}>\r\nSubject: Hello\r\n\r\n--B--\r\n"
    )
}

#[test]
fn reports_become_events_and_suppressions() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        inbound: "feedback_addresses = [\"fbl@bounces.example.com\"]\n",
        // Broadcast mail to people without recorded consent is tested in gdpr.rs.
        extra: "[privacy]\nconsent_required = {}\n",
        ..Options::to(&sink)
    });

    // Nobody else's mail is taken: not an open relay, no forged VERP tags.
    let (_, verp) = delivered(&h, &sink, "late@example.test", "transactional");
    let forged = format!(
        "{}-0000000000@bounces.example.com",
        verp.rsplit_once('-').unwrap().0
    );
    for rcpt in [
        "someone@example.net",
        "postmaster@bounces.example.com",
        forged.as_str(),
    ] {
        let r = smtp_send(h.mx, &[rcpt], "Subject: x\r\n\r\nx\r\n");
        assert!(r.starts_with("refused 550 5.1.1"), "{rcpt}: {r}");
    }

    // A late DSN (after the remote server said 250): bounced, classified, suppressed.
    let (id, verp) = delivered(&h, &sink, "gone@example.test", "transactional");
    let report = dsn(
        &verp,
        "gone@example.test",
        "failed",
        "5.1.1",
        "550 5.1.1 <gone@example.test>: user unknown",
    );
    assert_eq!(smtp_send(h.mx, &[&verp], &report), "ok");
    let (status, e) = last_event(&h, &id, "bounced");
    assert_eq!(status, "bounced");
    assert_eq!(
        (e["reason"].as_str(), e["hardbounce"].as_bool()),
        (Some("userunknown"), Some(true)),
        "{e}"
    );
    assert_eq!(
        (
            e["status"].as_str(),
            e["remote_mta"].as_str(),
            e["source"].as_str()
        ),
        (Some("5.1.1"), Some("store.example.test"), Some("dsn")),
        "{e}"
    );
    assert!(e["reply"].as_str().unwrap().contains("user unknown"), "{e}");
    let (_, list) = h.get("/v1/suppressions?email=gone@example.test");
    assert_eq!(list["suppressions"][0]["reason"], "hard_bounce", "{list}");

    // A delay notice: a deferred event, the recipient stays delivered.
    let (id, verp) = delivered(&h, &sink, "slow@example.test", "transactional");
    let report = dsn(
        &verp,
        "slow@example.test",
        "delayed",
        "4.2.2",
        "452 4.2.2 mailbox full",
    );
    assert_eq!(smtp_send(h.mx, &[&verp], &report), "ok");
    let (status, e) = last_event(&h, &id, "deferred");
    assert_eq!(
        (
            status.as_str(),
            e["reason"].as_str(),
            e["hardbounce"].as_bool()
        ),
        ("delivered", Some("mailboxfull"), Some(false)),
        "{e}"
    );

    // A failure notice in German without a DSN part, with two-byte characters from
    // near byte 2000 of its text on (which used to panic the session, so the bounce
    // was lost); two paddings, so that one character straddles byte 2000 whatever
    // the parser does to line endings.
    for pad in [1998, 1999] {
        let rcpt = format!("weg{pad}@example.test");
        let (id, verp) = delivered(&h, &sink, &rcpt, "transactional");
        let mut notice = format!(
            "From: MAILER-DAEMON@mx.example.test\r\nTo: {verp}\r\nSubject: Unzustellbar: Hello\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n\
             Ihre Nachricht an {rcpt} konnte nicht zugestellt werden.\r\n\
             550 5.1.1 Empf\u{e4}nger unbekannt.\r\n"
        );
        let text_start = notice.find("\r\n\r\n").unwrap() + 4;
        while notice.len() - text_start < pad {
            notice.push('x');
        }
        notice.push_str(&"\u{e4}\u{f6}\u{fc}".repeat(4));
        notice.push_str("\r\n");
        assert_eq!(smtp_send(h.mx, &[&verp], &notice), "ok", "{pad}");
        let (status, e) = last_event(&h, &id, "bounced");
        assert_eq!(
            (status.as_str(), e["status"].as_str(), e["source"].as_str()),
            ("bounced", Some("5.1.1"), Some("text")),
            "{pad}: {e}"
        );
    }

    // An auto-reply is recorded as such, never as a bounce.
    let (id, verp) = delivered(&h, &sink, "away@example.test", "transactional");
    let reply = format!(
        "From: Away <away@example.test>\r\nTo: {verp}\r\nSubject: Out of office: Hello\r\nAuto-Submitted: auto-replied\r\n\r\nBack on Monday.\r\n"
    );
    assert_eq!(smtp_send(h.mx, &[&verp], &reply), "ok");
    let (status, e) = last_event(&h, &id, "autoreply");
    assert_eq!(
        (status.as_str(), e["reason"].as_str()),
        ("delivered", Some("vacation")),
        "{e}"
    );

    // An ARF report to the feedback address names the recipient through the returned
    // message's Return-Path: complained, suppressed for that stream only.
    let (id, verp) = delivered(&h, &sink, "angry@example.test", "broadcast");
    let arf = format!(
        "From: fbl@isp.example.test\r\nTo: fbl@bounces.example.com\r\nSubject: FW: Hello\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n\
         --F\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n\
         --F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: ISP-FBL/1.0\r\nVersion: 1\r\n\r\n\
         --F\r\nContent-Type: message/rfc822\r\n\r\nReturn-Path: <{verp}>\r\nFrom: news@example.com\r\nTo: [redacted]\r\nSubject: Hello\r\n\r\nHi\r\n--F--\r\n"
    );
    assert_eq!(smtp_send(h.mx, &["fbl@bounces.example.com"], &arf), "ok");
    let (status, e) = last_event(&h, &id, "complained");
    assert_eq!(
        (
            status.as_str(),
            e["feedback_type"].as_str(),
            e["reason"].as_str()
        ),
        ("delivered", Some("abuse"), Some("feedback")),
        "{e}"
    );
    let (_, list) = h.get("/v1/suppressions?email=angry@example.test");
    let entry = &list["suppressions"][0];
    assert_eq!(
        (entry["reason"].as_str(), entry["stream"].as_str()),
        (Some("complaint"), Some("broadcast")),
        "{list}"
    );

    // Mail to a VERP address that is not a report is taken and dropped.
    let (id, verp) = delivered(&h, &sink, "human@example.test", "transactional");
    assert_eq!(
        smtp_send(
            h.mx,
            &[&verp],
            "From: human@example.test\r\nSubject: Re: Hello\r\n\r\nThanks!\r\n"
        ),
        "ok"
    );
    let (_, v) = h.get(&format!("/v1/messages/{id}"));
    let last = v["recipients"][0]["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "delivered", "{v}");

    // Events are sealed like the rest: the diagnostic text is not on disk in clear.
    assert!(common::files_containing(&h.data, b"user unknown").is_empty());
}

/// `postwerk bounce classify` uses the server's parser offline: one JSON line per
/// recipient; exit 1 for a message that is no report; `-` reads standard input.
#[test]
fn bounce_classify_prints_one_line_per_recipient() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/fixtures/reports");
    let out = Command::new(common::bin())
        .args(["bounce", "classify"])
        .arg(fixtures.join("postfix-dsn-multi.eml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, rcpt) in lines
        .iter()
        .zip(["a.berger@example.org", "k.novak@example.org"])
    {
        assert_eq!(line["recipient"], rcpt);
        assert_eq!(
            (&line["reason"], &line["hardbounce"], &line["status"]),
            (&json!("userunknown"), &json!(true), &json!("5.1.1"))
        );
        assert!(line["reply"].as_str().unwrap().starts_with("550 5.1.1"));
        assert_eq!(line["feedback_type"], Value::Null);
    }

    let arf = std::fs::read(fixtures.join("arf-rfc5965-b2.eml")).unwrap();
    let mut child = Command::new(common::bin())
        .args(["bounce", "classify", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&arf).unwrap();
    let out = child.wait_with_output().unwrap();
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&line["recipient"], &line["feedback_type"], &line["kind"]),
        (
            &json!("user@example.com"),
            &json!("abuse"),
            &json!("complained")
        )
    );

    let out = Command::new(common::bin())
        .args(["bounce", "classify"])
        .arg(fixtures.join("none-human-reply.eml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}
