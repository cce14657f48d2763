//! Campaign templates through the real front door: versions (a change to the parts is a
//! new version, earlier ones stay readable), previews with sample data and the
//! built-in links, HTML escaping, errors naming the part, line and column, and a text
//! part made from the HTML one.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::json;

#[test]
fn templates_keep_their_versions_and_render_previews() {
    let h = Harness::start(Options::default());
    let key = &h.key;
    let (s, t) = h.call(
        key,
        "POST",
        "/v1/templates",
        Some(json!({
            "name": "welcome",
            "subject": "Hello {{ first_name }}",
            "html": "<p>Hello {{ first_name }}</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
        })),
    );
    assert_eq!(s, 201, "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("tpl_"), "{t}");
    assert_eq!(
        (t["version"].as_i64(), t["current_version"].as_i64()),
        (Some(1), Some(1))
    );

    // A preview: merge fields, HTML escaping, the sample unsubscribe link, and a text
    // part made from the HTML.
    let (s, r) = h.call(
        key,
        "POST",
        &format!("/v1/templates/{id}/render"),
        Some(json!({"variables": {"first_name": "<Anna>"}})),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["subject"], "Hello <Anna>");
    let html = r["html"].as_str().unwrap();
    assert!(html.starts_with("<p>Hello &lt;Anna&gt;</p>"), "{html}");
    let text = r["text"].as_str().unwrap();
    assert!(
        text.starts_with("Hello <Anna>\n\nUnsubscribe (http"),
        "{text}"
    );
    assert!(text.contains("/u/preview)"), "{text}");

    // A change to the parts is version 2; version 1 stays as it was.
    let (s, t) = h.call(
        key,
        "PATCH",
        "/v1/templates/welcome",
        Some(json!({"subject": "Welcome, {{ first_name }}", "text": "Hi {{ first_name }}"})),
    );
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["version"], 2);
    assert_eq!(t["html"].as_str().unwrap(), html_of_v1());
    let (_, v1) = h.call(key, "GET", &format!("/v1/templates/{id}?version=1"), None);
    assert_eq!(v1["subject"], "Hello {{ first_name }}");
    assert_eq!(
        (v1["version"].as_i64(), v1["current_version"].as_i64()),
        (Some(1), Some(2))
    );
    let (_, r) = h.call(
        key,
        "POST",
        &format!("/v1/templates/{id}/render"),
        Some(json!({"variables": {"first_name": "Jan"}})),
    );
    assert_eq!(
        (r["subject"].as_str(), r["text"].as_str()),
        (Some("Welcome, Jan"), Some("Hi Jan"))
    );
    // A rename alone is no new version.
    let (s, t) = h.call(
        key,
        "PATCH",
        &format!("/v1/templates/{id}"),
        Some(json!({"name": "hello"})),
    );
    assert_eq!((s, t["version"].as_i64()), (200, Some(2)), "{t}");
    let (_, all) = h.call(key, "GET", "/v1/templates", None);
    assert_eq!(all["templates"].as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all["templates"][0]["name"], "hello");

    // A part that does not compile is refused, naming the part, line and column.
    let (s, e) = h.call(
        key,
        "POST",
        "/v1/templates",
        Some(json!({"name": "broken", "subject": "ok", "html": "<p>fine</p>\n<p>{{ name }</p>"})),
    );
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["error"]["code"], "template_error");
    assert_eq!(e["error"]["field"], "html");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("html (line 2, column "), "{message}");
    let (s, e) = h.call(
        key,
        "PATCH",
        &format!("/v1/templates/{id}"),
        Some(json!({"text": "{% if %}"})),
    );
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (422, Some("text")),
        "{e}"
    );
    let (_, t) = h.call(key, "GET", &format!("/v1/templates/{id}"), None);
    assert_eq!(t["version"], 2, "a refused change makes no version");

    // Names are unique; a deleted template is gone with its versions.
    let (s, e) = h.call(
        key,
        "POST",
        "/v1/templates",
        Some(json!({"name": "hello", "subject": "s", "text": "t"})),
    );
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("template_exists")),
        "{e}"
    );
    let (s, _) = h.call(key, "DELETE", "/v1/templates/hello", None);
    assert_eq!(s, 204);
    let (s, _) = h.call(key, "GET", &format!("/v1/templates/{id}?version=1"), None);
    assert_eq!(s, 404);
}

fn html_of_v1() -> &'static str {
    "<p>Hello {{ first_name }}</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"
}

#[test]
fn a_message_from_a_template_carries_its_recipients_unsubscribe_link() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let h = Harness::start(Options {
        extra: "[privacy]\nconsent_required = {}\n",
        ..Options::to(&sink)
    });
    let (s, t) = h.call(
        &h.key,
        "POST",
        "/v1/templates",
        Some(json!({
            "name": "news",
            "subject": "News for {{ first_name }}",
            "html": "<p>Hi {{ first_name }}</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
        })),
    );
    assert_eq!(s, 201, "{t}");
    let to = "reader@example.test";
    let v = h.send(json!({
        "from": "news@example.com", "to": to, "stream": "broadcast",
        "template": "news", "variables": {"first_name": "Ola"},
    }));
    let view = h.wait_final(v["id"].as_str().unwrap(), Duration::from_secs(20));
    assert_eq!(view["recipients"][0]["status"], "delivered", "{view}");
    let eml = sink.copy_for(to);
    let mail = mail_parser::MessageParser::default().parse(&eml).unwrap();
    assert_eq!(mail.subject(), Some("News for Ola"));
    let text = mail.body_text(0).unwrap().replace("\r\n", "\n");
    let html = mail.body_html(0).unwrap().to_string();
    assert!(text.starts_with("Hi Ola\n\nUnsubscribe (http"), "{text}");
    // The body's link is the recipient's own: the one of its List-Unsubscribe header.
    let rcpt = view["recipients"][0]["id"].as_str().unwrap();
    let link = format!("http://{}/u/{rcpt}.", h.http);
    assert!(
        text.contains(&link) && html.contains(&link),
        "{text}\n{html}"
    );
    let header = String::from_utf8_lossy(&eml)
        .replace("\r\n ", "")
        .replace("\r\n\t", "");
    let listed = header
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .and_then(|l| l.split('>').next())
        .expect("List-Unsubscribe");
    assert!(text.contains(listed), "{listed} in {text}");
    // And it works: its one-click POST unsubscribes the reader from the stream.
    let answer = ureq::post(listed)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string("List-Unsubscribe=One-Click")
        .expect("one-click POST");
    assert_eq!(answer.status(), 200);
    let (_, list) = h.get("/v1/suppressions");
    let entry = &list["suppressions"][0];
    assert_eq!(
        (&entry["email"], &entry["reason"], &entry["stream"]),
        (&json!(to), &json!("unsubscribe"), &json!("broadcast")),
        "{list}"
    );

    // A template stands instead of subject and bodies, not beside them.
    let (s, e) = h.call(
        &h.key,
        "POST",
        "/v1/messages",
        Some(json!({"from": "news@example.com", "to": to, "template": "news", "subject": "x"})),
    );
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (422, Some("template")),
        "{e}"
    );
    let (s, _) = h.call(
        &h.key,
        "POST",
        "/v1/messages",
        Some(json!({"from": "news@example.com", "to": to, "template": "nope"})),
    );
    assert_eq!(s, 404);
}
