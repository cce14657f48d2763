//! One-click unsubscribe (RFC 8058) through the real front door: broadcast mail
//! reaches the sink with `List-Unsubscribe` (an https-style link to this server) and
//! `List-Unsubscribe-Post`, both DKIM-signed (dkimpy verifies); a GET only shows a
//! page; the provider's POST suppresses the address for that stream and records an
//! `unsubscribed` event; later broadcast mail to it is suppressed while
//! transactional mail still goes; a forged token is a 404.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink, dkim_verify};
use serde_json::{Value, json};

/// The `List-Unsubscribe` URL of the single message in the sink for `to`.
fn unsubscribe_url(sink: &Sink, to: &str) -> (String, Vec<u8>) {
    let eml = sink.copy_for(to);
    let text = String::from_utf8_lossy(&eml).to_string();
    assert!(
        text.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
        "{text}"
    );
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: "))
        .expect("List-Unsubscribe header");
    let uris: Vec<&str> = line
        .split(", ")
        .map(|u| u.trim_start_matches('<').trim_end_matches('>'))
        .collect();
    assert_eq!(uris.len(), 2, "https and mailto: {line}");
    assert!(uris[1].starts_with("mailto:u+rcpt_") && uris[1].ends_with("@bounces.example.com"));
    (uris[0].to_string(), eml)
}

/// The mailto URI of the copy for `to`.
fn mailto(sink: &Sink, to: &str) -> String {
    let text = String::from_utf8_lossy(&sink.copy_for(to)).to_string();
    let start = text.find("<mailto:").expect("mailto") + "<mailto:".len();
    text[start..start + text[start..].find('>').unwrap()].to_string()
}

fn send(h: &Harness, to: &str, stream: &str) -> Value {
    let v = h.send(
        json!({"from": "news@example.com", "to": [to], "subject": "News", "text": "Hi", "stream": stream})
    );
    h.wait_final(v["id"].as_str().unwrap(), Duration::from_secs(20))
}

#[test]
fn one_click_unsubscribes_from_the_stream() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let h = Harness::start(Options {
        extra: "[privacy]\nconsent_required = {}\n",
        ..Options::to(&sink)
    });
    let to = "reader@example.test";
    let view = send(&h, to, "broadcast");
    assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");
    let (url, eml) = unsubscribe_url(&sink, to);
    let base = format!("http://{}/u/", h.http);
    assert!(url.starts_with(&base), "{url}");
    assert!(
        !url.contains("reader"),
        "the token holds no personal data: {url}"
    );
    let (_, domain) = h.get("/v1/domains/example.com");
    let verified = dkim_verify(&domain, &eml, root.path());
    assert!(
        verified.iter().all(|(_, ok)| *ok) && !verified.is_empty(),
        "{verified:?}"
    );
    let unfolded = String::from_utf8_lossy(&eml)
        .replace("\r\n\t", "")
        .replace("\r\n ", "");
    for sig in unfolded
        .lines()
        .filter(|l| l.starts_with("DKIM-Signature:"))
    {
        let h_tag = sig
            .split(';')
            .find_map(|t| t.trim().strip_prefix("h="))
            .unwrap();
        let names: Vec<String> = h_tag
            .split(':')
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        assert!(
            names.contains(&"list-unsubscribe".into())
                && names.contains(&"list-unsubscribe-post".into()),
            "RFC 8058 §4: the signature covers both fields: {sig}"
        );
    }

    // Transactional mail carries no unsubscribe link.
    send(&h, "other@example.test", "transactional");
    let eml = sink.copy_for("other@example.test");
    assert!(!String::from_utf8_lossy(&eml).contains("List-Unsubscribe"));

    let path = url
        .strip_prefix(&format!("http://{}", h.http))
        .unwrap()
        .to_string();
    let (s, page) = h.request_with_key("GET", &path, None, &[], None);
    assert_eq!(s, 200);
    assert!(page.as_str().unwrap().contains("method=\"post\""), "{page}");
    let (_, list) = h.get("/v1/suppressions");
    assert_eq!(list["suppressions"], json!([]), "a GET unsubscribes nobody");

    let resp = ureq::post(&url)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string("List-Unsubscribe=One-Click")
        .expect("one-click POST");
    assert_eq!(resp.status(), 200);
    let (_, list) = h.get("/v1/suppressions");
    let entry = &list["suppressions"][0];
    assert_eq!(
        (&entry["email"], &entry["reason"], &entry["stream"]),
        (&json!(to), &json!("unsubscribe"), &json!("broadcast")),
        "{list}"
    );
    let (_, events) = h.get(&format!(
        "/v1/events?type=unsubscribed&message_id={}",
        view["id"].as_str().unwrap()
    ));
    assert_eq!(events["events"][0]["source"], "one-click", "{events}");
    // A second click changes nothing and records nothing.
    assert_eq!(
        ureq::post(&url)
            .send_string("List-Unsubscribe=One-Click")
            .unwrap()
            .status(),
        200
    );
    let (_, events) = h.get("/v1/events?type=unsubscribed");
    assert_eq!(events["events"].as_array().unwrap().len(), 1);

    let again = send_status(&h, to, "broadcast");
    assert_eq!(again, "suppressed");
    assert_eq!(
        send(&h, to, "transactional")["recipients"][0]["status"],
        "delivered"
    );

    // The mailto alternative: any mail to it, through the inbound MX, unsubscribes.
    let other = "writer@example.test";
    send(&h, other, "broadcast");
    let address = mailto(&sink, other);
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.sendmail("writer@example.test", [sys.argv[2]], b"Subject: unsubscribe\r\n\r\nplease")
s.quit()
"#;
    let ok = std::process::Command::new("python3")
        .args(["-c", script, &h.mx.to_string(), &address])
        .status()
        .unwrap()
        .success();
    assert!(ok, "the inbound MX took the unsubscribe mail");
    let (_, list) = h.get("/v1/suppressions?email=writer@example.test");
    assert_eq!(list["suppressions"][0]["reason"], "unsubscribe", "{list}");
    let (_, events) = h.get("/v1/events?type=unsubscribed");
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "mailto"),
        "{events}"
    );

    let last = if path.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &path[..path.len() - 1]);
    for bad in [forged.as_str(), "/u/rcpt_x.00", "/u/nothing"] {
        let (s, _) = h.request_with_key("POST", bad, None, &[], None);
        assert_eq!(s, 404, "{bad}");
    }
}

/// The per-recipient status in the send response.
fn send_status(h: &Harness, to: &str, stream: &str) -> String {
    let v = h.send(
        json!({"from": "news@example.com", "to": [to], "subject": "News", "text": "Hi", "stream": stream})
    );
    v["recipients"][0]["status"].as_str().unwrap().to_string()
}
