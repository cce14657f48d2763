//! One-click unsubscribe (RFC 8058) through the real front door: broadcast mail
//! reaches the sink with `List-Unsubscribe` (an https-style link to this server) and
//! `List-Unsubscribe-Post`, both DKIM-signed (dkimpy verifies); a GET only shows a
//! page; the provider's POST suppresses the address for that stream and records an
//! `unsubscribed` event; later broadcast mail to it is suppressed while
//! transactional mail still goes; a forged token is a 404.
//!
//! The preference centre behind the same link: the page in the message's language or
//! the browser's, naming the sender and the list; leaving the list, withdrawing a
//! purpose and stopping marketing mail, each recorded as a consent record with
//! source `preference_centre`.

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

/// A contact on `lists` with active consent for each of `purposes`.
fn consenting_contact(h: &Harness, email: &str, lists: &[&str], purposes: &[&str]) {
    let (s, v) = h.request(
        "PUT",
        &format!("/v1/contacts/{email}"),
        Some(&json!({"lists": lists})),
        &[],
    );
    assert!(s == 201 || s == 200, "{v}");
    for purpose in purposes {
        let (s, v) = h.post(
            &format!("/v1/contacts/{email}/consents"),
            json!({"purpose": purpose, "lawful_basis": "consent", "source": "signup-form"}),
        );
        assert_eq!(s, 201, "{v}");
    }
}

/// The link's page with `headers`: (status, headers by lower-case name, HTML).
fn get_page(url: &str, headers: &[(&str, &str)]) -> (u16, Value, String) {
    let mut req = ureq::get(url);
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let resp = req.call().expect("the page");
    let names: serde_json::Map<String, Value> = resp
        .headers_names()
        .into_iter()
        .map(|n| (n.clone(), json!(resp.header(&n))))
        .collect();
    (
        resp.status(),
        Value::Object(names),
        resp.into_string().unwrap(),
    )
}

/// Posts a choice of the preference centre as a browser form does (no redirects
/// followed): (status, HTML).
fn choose(url: &str, choice: &str) -> (u16, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let result = agent
        .post(url)
        .set("User-Agent", "PrefTest/1.0")
        .send_form(&[("choice", choice)]);
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    (resp.status(), resp.into_string().unwrap())
}

/// The newest consent record of `purpose` in a contact's history.
fn latest_consent(h: &Harness, email: &str, purpose: &str) -> Value {
    let (s, contact) = h.get(&format!("/v1/contacts/{email}"));
    assert_eq!(s, 200, "{contact}");
    contact["consent_history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c["purpose"] == purpose)
        .unwrap_or_else(|| panic!("no {purpose} record: {contact}"))
        .clone()
}

/// A record the preference centre wrote: withdrawn, with its source and the click's
/// address and user agent.
fn assert_recorded_by_centre(record: &Value) {
    assert_eq!(record["status"], "withdrawn", "{record}");
    assert_eq!(record["source"], "preference_centre", "{record}");
    assert_eq!(record["user_agent"], "PrefTest/1.0", "{record}");
    assert_eq!(record["ip"], "127.0.0.1", "{record}");
}

#[test]
fn preference_centre_speaks_the_readers_language_and_records_each_choice() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let h = Harness::start(Options::to(&sink));
    let (pat, kai) = ("pat@example.test", "kai@example.test");
    consenting_contact(&h, pat, &["Weekly"], &["marketing", "newsletter"]);
    consenting_contact(&h, kai, &[], &["marketing"]);
    let (_, list) = h.get("/v1/lists/Weekly");
    let list_id = list["id"].as_str().expect("the list").to_string();

    // A campaign to the list, written in Polish: the page is Polish whatever the
    // browser prefers, names the sender and the list, and never the address.
    let sent = h.send(json!({
        "from": "news@example.com", "to": [pat], "subject": "Nowości", "text": "Cześć",
        "stream": "broadcast", "metadata": {"list": "Weekly", "language": "pl"},
    }));
    let view = h.wait_final(sent["id"].as_str().unwrap(), Duration::from_secs(20));
    assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");
    let (pat_url, _) = unsubscribe_url(&sink, pat);
    let (status, headers, page) = get_page(&pat_url, &[("Accept-Language", "de")]);
    assert_eq!(status, 200);
    assert!(page.contains("<html lang=\"pl\">"), "{page}");
    assert!(
        page.contains("Otrzymujesz te wiadomości od example.com z listy „Weekly”."),
        "{page}"
    );
    for choice in [
        "list",
        "marketing",
        "purpose:marketing",
        "purpose:newsletter",
    ] {
        assert!(
            page.contains(&format!("name=\"choice\" value=\"{choice}\"")),
            "{choice}: {page}"
        );
    }
    assert!(page.contains("Wypisz mnie z listy „Weekly”"), "{page}");
    assert!(
        !page.contains("pat@") && !page.contains("List-Unsubscribe"),
        "{page}"
    );
    let csp = headers["content-security-policy"]
        .as_str()
        .unwrap_or_default();
    assert!(csp.starts_with("default-src 'none'"), "{headers}");
    assert!(
        !page.contains("style") && !page.contains("<script"),
        "{page}"
    );

    // Leaving the list: the membership goes, a consent record says so.
    let (status, done) = choose(&pat_url, "list");
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("Wypisano Cię z listy „Weekly”."), "{done}");
    let (_, contact) = h.get(&format!("/v1/contacts/{pat}"));
    assert_eq!(contact["lists"], json!([]), "{contact}");
    let (_, count) = h.get("/v1/contacts/count?list=Weekly");
    assert_eq!(count["count"], 0, "{count}");
    assert_recorded_by_centre(&latest_consent(&h, pat, &format!("list:{list_id}")));
    // The list is still named, no longer offered; a repeated choice leads back.
    let (_, _, page) = get_page(&pat_url, &[]);
    assert!(
        page.contains("„Weekly”") && !page.contains("value=\"list\""),
        "{page}"
    );
    let (status, _) = choose(&pat_url, "list");
    assert_eq!(
        status, 303,
        "a choice no longer offered goes back to the page"
    );

    // Withdrawing one purpose leaves the others.
    let (status, done) = choose(&pat_url, "purpose:newsletter");
    assert_eq!(status, 200, "{done}");
    assert!(
        done.contains("Twoja zgoda na „newsletter” została wycofana."),
        "{done}"
    );
    assert_recorded_by_centre(&latest_consent(&h, pat, "newsletter"));
    assert_eq!(latest_consent(&h, pat, "marketing")["status"], "active");
    assert_eq!(choose(&pat_url, "purpose:anything").0, 303);
    let (_, list) = h.get("/v1/suppressions");
    assert_eq!(
        list["suppressions"],
        json!([]),
        "no choice so far suppresses"
    );

    // Mail with no language of its own: the browser's (q-values respected); no list.
    send(&h, kai, "broadcast");
    let (kai_url, _) = unsubscribe_url(&sink, kai);
    let (_, _, page) = get_page(&kai_url, &[("Accept-Language", "en;q=0.5, de-DE;q=0.9")]);
    assert!(page.contains("<html lang=\"de\">"), "{page}");
    assert!(
        page.contains("Sie erhalten diese E-Mails von example.com."),
        "{page}"
    );
    assert!(
        !page.contains("Liste") && !page.contains("value=\"list\""),
        "{page}"
    );
    let (_, _, page) = get_page(&kai_url, &[]);
    assert!(page.contains("<html lang=\"en\">"), "{page}");

    // Stopping marketing mail: suppressed for the stream, its purpose withdrawn.
    let (status, done) = choose(&kai_url, "marketing");
    assert_eq!(status, 200, "{done}");
    let (_, list) = h.get(&format!("/v1/suppressions?email={kai}"));
    assert_eq!(
        (
            &list["suppressions"][0]["reason"],
            &list["suppressions"][0]["stream"]
        ),
        (&json!("unsubscribe"), &json!("broadcast")),
        "{list}"
    );
    assert_recorded_by_centre(&latest_consent(&h, kai, "marketing"));
    let (_, events) = h.get("/v1/events?type=unsubscribed");
    assert_eq!(
        events["events"][0]["source"], "preference_centre",
        "{events}"
    );

    // One-click still means one click, next to the page's choices.
    let resp = ureq::post(&pat_url)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string("List-Unsubscribe=One-Click")
        .expect("one-click POST");
    assert_eq!(resp.status(), 200);
    let (_, list) = h.get(&format!("/v1/suppressions?email={pat}"));
    assert_eq!(list["suppressions"][0]["reason"], "unsubscribe", "{list}");

    // A forged token offers and takes nothing.
    let last = if pat_url.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &pat_url[..pat_url.len() - 1]);
    assert_eq!(choose(&forged, "marketing").0, 404);
    let path = &forged[forged.find("/u/").unwrap()..];
    assert_eq!(h.request_with_key("GET", path, None, &[], None).0, 404);
}
