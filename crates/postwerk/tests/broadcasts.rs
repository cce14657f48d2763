//! Broadcasts through the real front door: a template sent to a list and a segment
//! reaches each consenting person once with their own message and unsubscribe link,
//! screened-out people are counted and get nothing, the report adds up, states move
//! only where they may, a scheduled broadcast waits, and an expansion cut by `kill -9`
//! resumes after a restart without sending anyone a second message.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Harness, Options, Sink, wait_until};
use serde_json::{Value, json};

/// The addressee, subject and Message-ID of every message at the sink.
fn received(sink: &Sink) -> Vec<(String, String, String)> {
    sink.messages()
        .into_iter()
        .map(|(eml, _)| {
            let mail = mail_parser::MessageParser::default().parse(&eml).unwrap();
            let to = mail.to().and_then(|a| a.first()).and_then(|a| a.address());
            (
                to.unwrap_or_default().to_string(),
                mail.subject().unwrap_or_default().to_string(),
                mail.message_id().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The distinct messages (by Message-ID) each address received: a message delivered
/// again after a crash (delivery is at least once) counts once; a second message
/// made for the same person would count twice.
fn per_address(sink: &Sink) -> HashMap<String, HashSet<String>> {
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    for (to, _, id) in received(sink) {
        seen.entry(to).or_default().insert(id);
    }
    seen
}

fn put_contact(h: &Harness, email: &str, attributes: Value, lists: &[&str], consent: bool) {
    let (s, c) = h.call(
        &h.key,
        "PUT",
        &format!("/v1/contacts/{email}"),
        Some(json!({"attributes": attributes, "lists": lists})),
    );
    assert!(s == 200 || s == 201, "{c}");
    if consent {
        let (s, c) = h.call(
            &h.key,
            "POST",
            &format!("/v1/contacts/{email}/consents"),
            Some(json!({"purpose": "marketing", "lawful_basis": "consent", "source": "form"})),
        );
        assert!(s == 200 || s == 201, "{c}");
    }
}

fn template(h: &Harness) -> String {
    let (s, t) = h.call(
        &h.key,
        "POST",
        "/v1/templates",
        Some(json!({
            "name": "news",
            "subject": "Hello {{ first_name | default('friend') }}",
            "html": "<p>Hi {{ first_name }}</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
        })),
    );
    assert_eq!(s, 201, "{t}");
    t["id"].as_str().unwrap().to_string()
}

fn broadcast_state(h: &Harness, id: &str) -> Value {
    let (s, b) = h.call(&h.key, "GET", &format!("/v1/broadcasts/{id}"), None);
    assert_eq!(s, 200, "{b}");
    b
}

fn wait_state(h: &Harness, id: &str, state: &str, timeout: Duration) -> Value {
    let mut last = Value::Null;
    let reached = wait_until(timeout, || {
        last = broadcast_state(h, id);
        last["state"] == state
    });
    assert!(reached, "broadcast {id} is not {state}: {last}");
    last
}

#[test]
fn a_broadcast_reaches_each_consenting_person_once_with_their_own_message() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let h = Harness::start(Options::to(&sink));
    let (s, _) = h.call(&h.key, "POST", "/v1/lists", Some(json!({"name": "news"})));
    assert_eq!(s, 201);
    let names = ["Anna", "Jan", "Ola"];
    for i in 0..12 {
        let city = if i % 3 == 0 { "Gdansk" } else { "Lodz" };
        let attrs = json!({"first_name": names[i % 3], "city": city});
        put_contact(&h, &format!("p{i}@example.test"), attrs, &["news"], true);
    }
    // Off the list but in the segment: reached once, through the segment.
    put_contact(&h, "seg@example.test", json!({"city": "Gdansk"}), &[], true);
    // On the list, screened out: no consent, suppressed, restricted.
    put_contact(&h, "noconsent@example.test", json!({}), &["news"], false);
    put_contact(&h, "supp@example.test", json!({}), &["news"], true);
    put_contact(&h, "restricted@example.test", json!({}), &["news"], true);
    let (s, _) = h.post(
        "/v1/suppressions",
        json!({"email": "supp@example.test", "reason": "manual"}),
    );
    assert_eq!(s, 201);
    let privacy = h.new_key(None, "privacy", &[]);
    let (s, r) = h.call(
        &privacy,
        "POST",
        "/v1/subjects/restricted@example.test/restrict",
        Some(json!({})),
    );
    assert!(s == 200 || s == 204, "{r}");
    let (s, seg) = h.post(
        "/v1/segments",
        json!({"name": "gdansk", "filter": {"attributes": {"city": "Gdansk"}}}),
    );
    assert_eq!(s, 201, "{seg}");
    let tpl = template(&h);
    let (s, _) = h.call(
        &h.key,
        "PATCH",
        &format!("/v1/templates/{tpl}"),
        Some(json!({"html": "<p>Hi {{ first_name }}</p><a href=\"https://shop.example/sale?who={{ email }}\">Sale</a> <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>"})),
    );
    assert_eq!(s, 200);

    let (s, b) = h.post(
        "/v1/broadcasts",
        json!({"name": "november", "template": tpl, "from": "News <news@example.com>",
               "lists": ["news"], "segments": ["gdansk"], "variables": {"first_name": "reader"},
               "track": {"opens": true, "clicks": "html"}}),
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["state"], "draft");
    let id = b["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("bc_"), "{b}");

    // A template change before sending is what goes out; the version is fixed at send.
    let (s, _) = h.call(
        &h.key,
        "PATCH",
        &format!("/v1/templates/{tpl}"),
        Some(json!({"subject": "Hi {{ first_name | default('friend') }}"})),
    );
    assert_eq!(s, 200);
    let (s, sent) = h.post(&format!("/v1/broadcasts/{id}/send"), json!({}));
    assert_eq!(s, 200, "{sent}");
    assert_eq!(sent["version"], 3, "{sent}");
    let done = wait_state(&h, &id, "sent", Duration::from_secs(30));
    assert!(sink.wait_for(13, Duration::from_secs(30)), "{done}");
    std::thread::sleep(Duration::from_millis(500));

    let seen = per_address(&sink);
    assert_eq!(seen.len(), 13, "{seen:?}");
    assert!(seen.values().all(|ids| ids.len() == 1), "{seen:?}");
    for absent in ["noconsent", "supp", "restricted"] {
        assert!(
            !seen.contains_key(&format!("{absent}@example.test")),
            "{seen:?}"
        );
    }
    for (to, subject, _) in received(&sink) {
        let want = match to.strip_prefix('p').and_then(|r| r.split('@').next()) {
            Some(i) => names[i.parse::<usize>().unwrap() % 3],
            // The broadcast's own variable stands in for a missing attribute.
            None => "reader",
        };
        assert_eq!(subject, format!("Hi {want}"), "{to}");
    }
    // Each message's unsubscribe link is its recipient's own and the List-Unsubscribe one.
    let eml = sink.copy_for("p1@example.test");
    let mail = mail_parser::MessageParser::default().parse(&eml).unwrap();
    let html = mail.body_html(0).unwrap().to_string();
    let header = String::from_utf8_lossy(&eml).replace("\r\n ", "");
    let listed = header
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .and_then(|l| l.split('>').next())
        .expect("List-Unsubscribe");
    assert!(html.contains(listed), "{listed} in {html}");

    // A person opens and clicks; a link scanner fetches another's pixel.
    let (p1, _) = common::links_for(&sink, "p1@example.test");
    let (p2, _) = common::links_for(&sink, "p2@example.test");
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let fetch = |url: &str, ua: &str| {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        match agent.get(url).set("User-Agent", ua).call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
            Err(e) => panic!("{url}: {e}"),
        }
    };
    let pixel = |links: &[String]| links.iter().find(|u| u.contains("/t/o/")).unwrap().clone();
    let click = p1
        .iter()
        .find(|u| u.contains("/t/c/"))
        .expect("a tracked link");
    assert_eq!(fetch(&pixel(&p1), firefox), 200);
    assert_eq!(fetch(click, firefox), 302);
    assert_eq!(
        fetch(&pixel(&p2), "Mozilla/5.0 (compatible; SafeLinks)"),
        200
    );

    // The report adds up: everyone reached by the lists and the segment, once.
    let counts = wait_report(&h, &id, |c| {
        c["delivered"] == 13 && c["clicks"] == 1 && c["machine_opens"] == 1
    });
    let want = json!({"recipients": 16, "sent": 13, "delivered": 13, "suppressed": 1,
                      "no_consent": 1, "restricted": 1, "failed": 0,
                      "opens": 1, "machine_opens": 1, "clicks": 1});
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&counts[k], v, "{k} in {counts}");
    }
    // Links are reported without their query, which may name the person.
    let (_, report) = h.get(&format!("/v1/broadcasts/{id}/report"));
    assert_eq!(
        report["links"],
        json!([{"url": "https://shop.example/sale", "clicks": 1}]),
        "{report}"
    );
    assert!(!report.to_string().contains("p1@"), "{report}");
    let csv = ureq::get(&format!(
        "http://{}/v1/broadcasts/{id}/report?format=csv",
        h.http
    ))
    .set("Authorization", &format!("Bearer {}", h.key))
    .call()
    .unwrap()
    .into_string()
    .unwrap();
    assert!(
        csv.starts_with("metric,value\r\n")
            && csv.contains("\r\ndelivered,13\r\n")
            && csv.contains("\r\nclicks:https://shop.example/sale,1\r\n"),
        "{csv}"
    );

    // A sent broadcast cannot be sent again, changed or paused; it can be deleted.
    for (method, path) in [("POST", "send"), ("POST", "pause"), ("POST", "cancel")] {
        let (s, e) = h.call(&h.key, method, &format!("/v1/broadcasts/{id}/{path}"), None);
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (409, Some("invalid_state")),
            "{path}: {e}"
        );
    }
    let (s, _) = h.call(
        &h.key,
        "PATCH",
        &format!("/v1/broadcasts/{id}"),
        Some(json!({"name": "x"})),
    );
    assert_eq!(s, 409);
    let (s, _) = h.call(&h.key, "DELETE", &format!("/v1/broadcasts/{id}"), None);
    assert_eq!(s, 204);
    let (s, _) = h.call(&h.key, "GET", &format!("/v1/broadcasts/{id}"), None);
    assert_eq!(s, 404);
}

fn wait_report(h: &Harness, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut counts = Value::Null;
    wait_until(Duration::from_secs(30), || {
        let (s, r) = h.call(&h.key, "GET", &format!("/v1/broadcasts/{id}/report"), None);
        assert_eq!(s, 200, "{r}");
        counts = r["counts"].clone();
        done(&counts)
    });
    counts
}

#[test]
fn broadcasts_are_checked_scheduled_paused_tested_and_cancelled() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let h = Harness::start(Options::to(&sink));
    let (s, _) = h.call(&h.key, "POST", "/v1/lists", Some(json!({"name": "news"})));
    assert_eq!(s, 201);
    put_contact(
        &h,
        "ann@example.test",
        json!({"first_name": "Ann"}),
        &["news"],
        true,
    );
    let tpl = template(&h);

    // Bad input: each refusal names its field.
    let cases = [
        (
            json!({"name": "x", "template": tpl, "from": "a@example.com"}),
            "no_audience",
            "lists",
        ),
        (
            json!({"name": "x", "template": tpl, "from": "a@unknown.example", "lists": ["news"]}),
            "domain_not_registered",
            "from",
        ),
        (
            json!({"name": "x", "template": tpl, "from": "a@example.com", "lists": ["nope"]}),
            "unknown_list",
            "lists[0]",
        ),
        (
            json!({"name": "x", "template": tpl, "from": "a@example.com", "segments": ["nope"]}),
            "unknown_segment",
            "segments[0]",
        ),
        (
            json!({"name": "x", "template": tpl, "from": "a@example.com", "lists": ["news"], "window": {"start": "9", "end": "17:00"}}),
            "invalid_window",
            "window",
        ),
        (
            json!({"name": "x", "template": tpl, "from": "a@example.com", "lists": ["news"], "throttle": 0}),
            "invalid_throttle",
            "throttle",
        ),
        (
            json!({"name": "x", "template": tpl, "from": "a@example.com", "lists": ["news"], "send_at": "tomorrow"}),
            "invalid_time",
            "send_at",
        ),
        (
            json!({"template": tpl, "from": "a@example.com", "lists": ["news"]}),
            "missing_field",
            "name",
        ),
    ];
    for (body, code, field) in cases {
        let (s, e) = h.post("/v1/broadcasts", body.clone());
        assert_eq!(
            (s, e["error"]["code"].as_str(), e["error"]["field"].as_str()),
            (422, Some(code), Some(field)),
            "{body}: {e}"
        );
    }
    let (s, _) = h.post(
        "/v1/broadcasts",
        json!({"name": "x", "template": "nope", "from": "a@example.com", "lists": ["news"]}),
    );
    assert_eq!(s, 404);

    // A test goes to the given address at once, marked, whatever the audience.
    let (s, e) = h.post(
        "/v1/broadcasts",
        json!({"name": "x", "template": "news", "from": "news@example.com", "lists": ["news"],
               "send_at": "2099-01-01T00:00:00Z"}),
    );
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (422, Some("send_at")),
        "at most a year ahead: {e}"
    );
    let later = (chrono::Utc::now() + chrono::Duration::days(300)).to_rfc3339();
    let (s, b) = h.post(
        "/v1/broadcasts",
        json!({"name": "later", "template": "news", "from": "news@example.com", "lists": ["news"],
               "send_at": later}),
    );
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let (s, t) = h.post(
        &format!("/v1/broadcasts/{id}/test"),
        json!({"to": ["team@example.test"], "variables": {"first_name": "Team"}}),
    );
    assert_eq!(s, 202, "{t}");
    assert_eq!(t["messages"][0]["status"], "queued", "{t}");
    assert!(sink.wait_for(1, Duration::from_secs(20)));
    let got: Vec<_> = received(&sink)
        .into_iter()
        .map(|(to, subject, _)| (to, subject))
        .collect();
    assert_eq!(
        got,
        [(
            "team@example.test".to_string(),
            "[Test] Hello Team".to_string()
        )]
    );

    // Scheduled far ahead, it waits; paused and resumed it waits again; cancelled it ends.
    let (s, b) = h.post(&format!("/v1/broadcasts/{id}/send"), json!({}));
    assert_eq!((s, b["state"].as_str()), (200, Some("scheduled")), "{b}");
    let (s, b) = h.post(&format!("/v1/broadcasts/{id}/pause"), json!({}));
    assert_eq!((s, b["state"].as_str()), (200, Some("paused")), "{b}");
    let (s, b) = h.post(&format!("/v1/broadcasts/{id}/resume"), json!({}));
    assert_eq!((s, b["state"].as_str()), (200, Some("scheduled")), "{b}");
    // While scheduled it can still be moved to now: it then goes out.
    let now = chrono::Utc::now().to_rfc3339();
    let (s, b) = h.call(
        &h.key,
        "PATCH",
        &format!("/v1/broadcasts/{id}"),
        Some(json!({"send_at": now})),
    );
    assert_eq!(s, 200, "{b}");
    wait_state(&h, &id, "sent", Duration::from_secs(20));
    assert!(sink.wait_for(2, Duration::from_secs(20)));

    let (_, b) = h.post(
        "/v1/broadcasts",
        json!({"name": "never", "template": "news", "from": "news@example.com", "lists": ["news"]}),
    );
    let never = b["id"].as_str().unwrap();
    let (s, b) = h.post(&format!("/v1/broadcasts/{never}/cancel"), json!({}));
    assert_eq!((s, b["state"].as_str()), (200, Some("cancelled")), "{b}");
    let (s, e) = h.post(&format!("/v1/broadcasts/{never}/send"), json!({}));
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("invalid_state")),
        "{e}"
    );
    let (_, all) = h.get("/v1/broadcasts");
    assert_eq!(all["broadcasts"].as_array().unwrap().len(), 2, "{all}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.count(), 2);
}

/// Imports `csv` (approving it if the watchdog holds it) and waits until it is done.
fn import(h: &Harness, path: &str, csv: &str) {
    let key = h.new_key(None, "read,import,admin", &[]);
    let resp = ureq::post(&format!("http://{}{path}", h.http))
        .set("Authorization", &format!("Bearer {key}"))
        .set("Content-Type", "text/csv")
        .send_bytes(csv.as_bytes())
        .expect("import");
    let imp: Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
    let id = imp["id"].as_str().expect("an import id").to_string();
    let mut last = Value::Null;
    let done = wait_until(Duration::from_secs(60), || {
        last = h.call(&key, "GET", &format!("/v1/imports/{id}"), None).1;
        if last["state"] == "held" {
            h.call(&key, "POST", &format!("/v1/imports/{id}/approve"), None);
        }
        last["state"] == "done"
    });
    assert!(done, "{last}");
}

#[test]
fn an_expansion_cut_by_a_kill_resumes_without_sending_twice() {
    kill_and_resume(None);
}

#[test]
fn on_postgresql_an_expansion_cut_by_a_kill_resumes_without_sending_twice() {
    let Some(admin) = common::pg_admin_url() else {
        return;
    };
    let db = format!("pw_bc_{}", std::process::id());
    kill_and_resume(Some(common::fresh_pg_database(&admin, &db)));
}

/// A throttled broadcast to 1,200 people, its node killed after the first batch and
/// started again: everyone gets one message (on `store_url`, else SQLite).
fn kill_and_resume(store_url: Option<String>) {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let mut h = Harness::start(Options {
        extra: "[privacy]\nconsent_required = {}\n",
        store_url,
        ..Options::to(&sink)
    });
    let (s, _) = h.call(&h.key, "POST", "/v1/lists", Some(json!({"name": "news"})));
    assert_eq!(s, 201);
    let people = 1_200;
    let csv: String = (0..people).fold("email,first_name\r\n".to_string(), |csv, i| {
        csv + &format!("r{i}@example.test,R{i}\r\n")
    });
    import(&h, "/v1/imports?list=news", &csv);
    let (_, list) = h.get("/v1/lists/news");
    assert_eq!(list["members"], people, "{list}");
    template(&h);
    // 360,000 an hour: batches of 500, five seconds apart.
    let (s, b) = h.post(
        "/v1/broadcasts",
        json!({"name": "big", "template": "news", "from": "news@example.com", "lists": ["news"], "throttle": 360_000}),
    );
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let (s, _) = h.post(&format!("/v1/broadcasts/{id}/send"), json!({}));
    assert_eq!(s, 200);
    let mut first = Value::Null;
    assert!(wait_until(Duration::from_secs(20), || {
        first = broadcast_state(&h, &id);
        first["counts"]["sent"].as_u64().unwrap_or(0) >= 500
    }));
    h.kill9();
    assert!(
        first["counts"]["sent"].as_u64().unwrap() < people,
        "the kill came too late: {first}"
    );
    h.serve();
    wait_state(&h, &id, "sent", Duration::from_secs(60));
    assert!(
        sink.wait_for(people as usize, Duration::from_secs(60)),
        "{}",
        sink.count()
    );
    std::thread::sleep(Duration::from_secs(1));
    let seen = per_address(&sink);
    assert_eq!(seen.len(), people as usize);
    let twice: Vec<_> = seen.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(twice.is_empty(), "two messages for one person: {twice:?}");
    let done = broadcast_state(&h, &id);
    assert_eq!(
        (
            done["counts"]["recipients"].as_u64(),
            done["counts"]["sent"].as_u64()
        ),
        (Some(people), Some(people)),
        "{done}"
    );
}
