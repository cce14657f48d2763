//! Campaign templates through the real front door: versions (a change to the parts is a
//! new version, earlier ones stay readable), previews with sample data and the
//! built-in links, HTML escaping, errors naming the part, line and column, and a text
//! part made from the HTML one.

mod common;

use common::{Harness, Options};
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
