//! Open and click tracking through the real front door: broadcast HTML reaches the
//! sink with a pixel and rewritten links carrying each recipient's own token (the
//! copies stay DKIM-valid); the pixel answers a GIF, a link redirects to its original
//! target, forged tokens and targets get 404; hits become `opened` / `clicked`
//! events, scanners flagged as machines, no IP stored; a restricted person is not
//! tracked; transactional mail is untouched unless the message asks.

mod common;

use std::time::Duration;

use common::{Harness, Options, Sink, dkim_verify, links_for, wait_until};
use serde_json::{Value, json};

fn get(url: &str, ua: &str, head: bool) -> (u16, Option<String>, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let req = if head {
        agent.head(url)
    } else {
        agent.get(url)
    }
    .set("User-Agent", ua);
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let location = resp.header("Location").map(str::to_string);
    let ctype = resp.content_type().to_string();
    (status, location, ctype)
}

fn events(h: &Harness, kind: &str) -> Vec<Value> {
    let (_, v) = h.get(&format!("/v1/events?type={kind}"));
    v["events"].as_array().cloned().unwrap_or_default()
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

#[test]
fn opens_and_clicks_are_tracked_per_recipient() {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(&root.path().join("sink"), false);
    let h = Harness::start(Options {
        extra: "[privacy]\nconsent_required = {}\n",
        ..Options::to(&sink)
    });
    let html = "<html><body><p>Grüße</p><a href=\"https://shop.example/sale?x=1&amp;y=2\">Sale</a></body></html>";
    let v = h.send(
        json!({"from": "news@example.com", "to": ["ann@example.test", "bob@example.test"],
               "subject": "Sale", "html": html, "text": "Sale at https://shop.example/sale", "stream": "broadcast"})
    );
    let id = v["id"].as_str().unwrap().to_string();
    h.wait_final(&id, Duration::from_secs(20));
    let (ann, ann_eml) = links_for(&sink, "ann@example.test");
    let (bob, _) = links_for(&sink, "bob@example.test");
    assert_eq!(ann.len(), 2, "one pixel and one tracked link: {ann:?}");
    assert!(
        ann.iter().all(|u| !bob.contains(u)),
        "each copy has its own token"
    );
    assert!(
        ann.iter().all(|u| !u.contains("ann")),
        "tokens hold no address"
    );
    let (_, domain) = h.get("/v1/domains/example.com");
    let verified = dkim_verify(&domain, &ann_eml, root.path());
    assert!(
        !verified.is_empty() && verified.iter().all(|(_, ok)| *ok),
        "{verified:?}"
    );
    let text = String::from_utf8_lossy(&ann_eml).to_string();
    assert!(
        text.contains("Sale at https://shop.example/sale"),
        "text links untouched by default"
    );

    let pixel = ann.iter().find(|u| u.contains("/t/o/")).unwrap();
    let link = ann.iter().find(|u| u.contains("/t/c/")).unwrap();
    let (s, _, ctype) = get(pixel, FIREFOX, false);
    assert_eq!((s, ctype.as_str()), (200, "image/gif"));
    let (s, location, _) = get(link, FIREFOX, false);
    assert_eq!(
        (s, location.as_deref()),
        (302, Some("https://shop.example/sale?x=1&y=2"))
    );
    let (s, _, _) = get(link, "Barracuda Sentinel (EE)", true);
    assert_eq!(s, 302, "a scanner's HEAD is answered too");

    // Forged tokens and targets: 404, never a redirect.
    let forged_token = pixel.replacen("/t/o/rcpt_", "/t/o/rcpt_0", 1);
    assert_eq!(get(&forged_token, FIREFOX, false).0, 404);
    let (base, target) = link.rsplit_once('/').unwrap();
    let evil = format!("{base}/aHR0cHM6Ly9ldmlsLmV4YW1wbGUv");
    assert_ne!(target, "aHR0cHM6Ly9ldmlsLmV4YW1wbGUv");
    let (s, location, _) = get(&evil, FIREFOX, false);
    assert_eq!((s, location), (404, None), "no open redirect");

    assert!(wait_until(Duration::from_secs(10), || events(
        &h, "clicked"
    )
    .len()
        == 2));
    let opened = events(&h, "opened");
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(
        (&opened[0]["agent"], &opened[0]["machine"]),
        (&json!("person"), &json!(false))
    );
    assert!(
        opened[0].get("ip").is_none(),
        "no IP stored by default: {}",
        opened[0]
    );
    let clicked = events(&h, "clicked");
    assert_eq!(clicked[0]["url"], "https://shop.example/sale?x=1&y=2");
    let machines: Vec<bool> = clicked
        .iter()
        .map(|e| e["machine"].as_bool().unwrap())
        .collect();
    assert_eq!(machines, vec![false, true], "{clicked:?}");
    let (_, msg) = h.get(&format!("/v1/messages/{id}"));
    assert!(
        msg["recipients"].to_string().contains("opened"),
        "on the recipient's timeline"
    );

    // A restricted person is not tracked.
    let dpo = h.named_key("dpo", None, "privacy", &[]);
    let (s, _) = h.request_with_key(
        "POST",
        "/v1/subjects/bob@example.test/restrict",
        Some(&json!({})),
        &[],
        Some(&dpo),
    );
    assert!(s == 200 || s == 201, "{s}");
    let bob_pixel = bob.iter().find(|u| u.contains("/t/o/")).unwrap();
    assert_eq!(
        get(bob_pixel, FIREFOX, false).0,
        200,
        "the image still loads"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(events(&h, "opened").len(), 1, "bob's open was not recorded");
}

#[test]
fn transactional_mail_is_untracked_unless_asked() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options::to(&sink));
    let html = "<p><a href=\"https://app.example/reset\">Reset</a></p>";
    for (to, track) in [
        ("plain@example.test", Value::Null),
        (
            "asked@example.test",
            json!({"opens": true, "clicks": "all"}),
        ),
    ] {
        let mut body = json!({"from": "app@example.com", "to": [to], "subject": "Reset", "html": html, "text": "Go to https://app.example/reset now"});
        if !track.is_null() {
            body["track"] = track;
        }
        let v = h.send(body);
        h.wait_final(v["id"].as_str().unwrap(), Duration::from_secs(20));
    }
    let (plain, eml) = links_for(&sink, "plain@example.test");
    assert!(plain.is_empty(), "{plain:?}");
    assert!(String::from_utf8_lossy(&eml).contains("https://app.example/reset"));
    let (asked, _) = links_for(&sink, "asked@example.test");
    let clicks = asked.iter().filter(|u| u.contains("/t/c/")).count();
    let pixels = asked.iter().filter(|u| u.contains("/t/o/")).count();
    assert_eq!(
        (pixels, clicks),
        (1, 2),
        "pixel, html link and text link: {asked:?}"
    );
}

#[test]
fn a_required_tracking_consent_is_honoured() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        extra: "[privacy]\nconsent_required = {}\n[tracking]\nconsent_purpose = \"tracking\"\n",
        ..Options::to(&sink)
    });
    let (s, _) = h.post(
        "/v1/contacts/yes@example.test/consents",
        json!({"purpose": "tracking", "lawful_basis": "consent", "source": "preferences",
               "wording": "You may count my opens and clicks", "wording_version": "v1"}),
    );
    assert_eq!(s, 201);
    let v = h.send(
        json!({"from": "news@example.com", "to": ["yes@example.test", "no@example.test"],
               "subject": "News", "html": "<p>Hi</p>", "stream": "broadcast"}),
    );
    h.wait_final(v["id"].as_str().unwrap(), Duration::from_secs(20));
    for to in ["yes@example.test", "no@example.test"] {
        let (links, _) = links_for(&sink, to);
        assert_eq!(get(&links[0], FIREFOX, false).0, 200);
    }
    assert!(wait_until(Duration::from_secs(10), || !events(
        &h, "opened"
    )
    .is_empty()));
    std::thread::sleep(Duration::from_millis(300));
    let opened = events(&h, "opened");
    assert_eq!(opened.len(), 1, "only the consented open: {opened:?}");
    let (_, msg) = h.get(&format!("/v1/messages/{}", v["id"].as_str().unwrap()));
    let yes = msg["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == "yes@example.test")
        .unwrap();
    assert_eq!(opened[0]["recipient_id"], yes["id"]);
}

/// A tracked link's tag is bound to the message it was sent in: combined with the
/// token of a recipient of another message (another tenant's, or the same tenant's)
/// it gets 404 and records nothing, so no tenant can put clicks with its own URLs into
/// another tenant's events.
#[test]
fn a_link_tag_counts_only_with_its_own_messages_recipients() {
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        extra: "[privacy]\nconsent_required = {}\n",
        ..Options::to(&sink)
    });
    for args in [
        vec!["tenants", "create", "mallory"],
        vec!["domains", "add", "mallory.example", "--tenant", "mallory"],
    ] {
        let out = h.cli(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let mallory = h.new_key(Some("mallory"), "send,read", &[]);
    let broadcast = |key: &str, from: &str, to: &str, url: &str| {
        let html = format!("<html><body><a href=\"{url}\">Go</a></body></html>");
        let (s, v) = h.request_with_key(
            "POST",
            "/v1/messages",
            Some(&json!({"from": from, "to": [to], "subject": "Hi", "html": html, "stream": "broadcast"})),
            &[],
            Some(key),
        );
        assert_eq!(s, 202, "{v}");
        h.wait_final(v["id"].as_str().unwrap(), Duration::from_secs(20));
        let (links, _) = links_for(&sink, to);
        links.into_iter().find(|u| u.contains("/t/c/")).unwrap()
    };
    let ann = broadcast(
        &h.key,
        "news@example.com",
        "ann@example.test",
        "https://shop.example/sale",
    );
    let bob = broadcast(
        &h.key,
        "news@example.com",
        "bob@example.test",
        "https://shop.example/other",
    );
    let evil = broadcast(
        &mallory,
        "x@mallory.example",
        "mal@example.test",
        "https://evil.example/phish",
    );
    // `<base>/t/c/<token>` and `<tag>/<target>`.
    let split = |link: &str| {
        let mut parts = link.rsplitn(3, '/');
        let (target, tag, token_part) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        (token_part.to_string(), format!("{tag}/{target}"))
    };
    let (ann_token, ann_target) = split(&ann);
    let (bob_token, _) = split(&bob);
    let (_, evil_target) = split(&evil);
    for forged in [
        format!("{ann_token}/{evil_target}"),
        format!("{bob_token}/{ann_target}"),
    ] {
        let (s, location, _) = get(&forged, FIREFOX, false);
        assert_eq!((s, location), (404, None), "{forged}");
    }
    // The genuine links work; then only their clicks are there.
    assert_eq!(
        get(&ann, FIREFOX, false).1.as_deref(),
        Some("https://shop.example/sale")
    );
    assert_eq!(
        get(&evil, FIREFOX, false).1.as_deref(),
        Some("https://evil.example/phish")
    );
    assert!(wait_until(Duration::from_secs(10), || !events(
        &h, "clicked"
    )
    .is_empty()));
    let clicked = events(&h, "clicked");
    let urls: Vec<&str> = clicked.iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert_eq!(urls, ["https://shop.example/sale"], "{clicked:?}");
}
