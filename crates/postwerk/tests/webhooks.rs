//! Webhooks through the real front door: an endpoint registered over the API receives
//! signed posts (checked here with Python's hmac, independently of Postwerk's code),
//! one message's events in order even when the endpoint fails at first, with the
//! attempts visible; secret rotation signs with both secrets; pause, resume and replay
//! work; bad URLs and another tenant's key are refused precisely.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, Options, Sink, wait_until};
use serde_json::{Value, json};

/// One request the receiver got: lower-cased headers and the body.
#[derive(Clone, Debug)]
struct Post {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Post {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON payload")
    }
}

/// An HTTP endpoint on loopback that records every post and answers `500` to the
/// first `fail_first` of them, `204` afterwards.
struct Receiver {
    port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let seen = posts.clone();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut headers = Vec::new();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    let (k, v) = l.split_once(':').unwrap();
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                seen.lock().unwrap().push(Post { headers, body });
                let status = if n < fail_first {
                    "500 Internal Server Error"
                } else {
                    "204 No Content"
                };
                let _ = conn.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                );
            }
        });
        Receiver { port, posts }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    /// Waits until `n` posts arrived.
    fn wait(&self, n: usize) -> Vec<Post> {
        assert!(
            wait_until(Duration::from_secs(30), || self.posts().len() >= n),
            "expected {n} posts, got {:?}",
            self.posts().iter().map(Post::json).collect::<Vec<_>>()
        );
        self.posts()
    }
}

/// Verifies a post's `webhook-signature` with Python's hmac under each secret; returns
/// which secrets signed it.
fn signed_by(post: &Post, secrets: &[&str]) -> Vec<bool> {
    let script = r#"
import base64, hashlib, hmac, sys
wid, ts, sigs, body = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.stdin.buffer.read()
for secret in sys.argv[4:]:
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
    print("v1," + base64.b64encode(mac).decode() in sigs)
"#;
    let mut child = Command::new("python3")
        .args([
            "-c",
            script,
            post.header("webhook-id"),
            post.header("webhook-timestamp"),
            post.header("webhook-signature"),
        ])
        .args(secrets)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(&post.body).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l == "True")
        .collect()
}

fn start() -> (Harness, Sink) {
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start(root.path(), false);
    std::mem::forget(root);
    let h = Harness::start(Options {
        extra: "[webhooks]\nallow_loopback = true\n",
        ..Options::to(&sink)
    });
    (h, sink)
}

fn send(h: &Harness, to: &str) -> String {
    let v = h.send(
        json!({"from": "app@example.com", "to": [to], "subject": "Hi", "text": "Hello",
               "tags": ["welcome"], "metadata": {"order": "42"}}),
    );
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn signed_posts_in_order_with_retries() {
    let (h, _sink) = start();
    let rx = Receiver::start(1);
    let (s, hook) = h.post(
        "/v1/webhooks",
        json!({"url": rx.url(), "events": ["accepted", "delivered"]}),
    );
    assert_eq!(s, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{hook}");
    let id = hook["id"].as_str().unwrap().to_string();
    let (_, listed) = h.get("/v1/webhooks");
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "secrets are shown once: {listed}"
    );

    let msg = send(&h, "hook-one@example.test");
    // accepted (500) → accepted again after the back-off (204) → delivered (204):
    // the delivered event waited for the failing accepted event of the same message.
    let posts = rx.wait(3);
    let kinds: Vec<(String, String)> = posts
        .iter()
        .map(|p| {
            (
                p.json()["type"].as_str().unwrap().to_string(),
                p.header("webhook-id").to_string(),
            )
        })
        .collect();
    assert_eq!(kinds[0].0, "accepted");
    assert_eq!(kinds[1], kinds[0], "the retry carries the same webhook-id");
    assert_eq!(kinds[2].0, "delivered");
    for p in &posts {
        assert_eq!(signed_by(p, &[&secret]), vec![true], "{:?}", p.headers);
        let data = &p.json()["data"];
        assert_eq!(data["message_id"], msg.as_str());
        assert_eq!(data["recipient"], "hook-one@example.test");
        assert_eq!(data["stream"], "transactional");
        assert_eq!(
            (&data["tags"], &data["metadata"]),
            (&json!(["welcome"]), &json!({"order": "42"}))
        );
    }
    let (s, attempts) = h.get(&format!("/v1/webhooks/{id}/attempts"));
    assert_eq!(s, 200);
    let codes: Vec<i64> = attempts["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![204, 204, 500], "newest first: {attempts}");
}

#[test]
fn rotation_pause_resume_and_replay() {
    let (h, _sink) = start();
    let rx = Receiver::start(0);
    let (_, hook) = h.post(
        "/v1/webhooks",
        json!({"url": rx.url(), "events": ["delivered"]}),
    );
    let id = hook["id"].as_str().unwrap().to_string();
    let old = hook["secret"].as_str().unwrap().to_string();
    let (s, rotated) = h.post(
        &format!("/v1/webhooks/{id}/rotate-secret"),
        json!({"grace": "1h"}),
    );
    assert_eq!(s, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert!(
        rotated["previous_secret_valid_until"].is_string(),
        "{rotated}"
    );

    send(&h, "hook-two@example.test");
    let first = rx.wait(1);
    assert_eq!(
        signed_by(&first[0], &[&new, &old]),
        vec![true, true],
        "both secrets sign during the overlap"
    );

    let (s, paused) = h.request(
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        Some(&json!({"enabled": false})),
        &[],
    );
    assert_eq!((s, &paused["enabled"]), (200, &json!(false)), "{paused}");
    let msg = send(&h, "hook-three@example.test");
    h.wait_final(&msg, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rx.posts().len(), 1, "a paused endpoint gets nothing");
    let (s, _) = h.request(
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        Some(&json!({"enabled": true})),
        &[],
    );
    assert_eq!(s, 200);
    let posts = rx.wait(2);
    assert_eq!(
        posts[1].json()["data"]["recipient"],
        "hook-three@example.test",
        "the waiting event follows"
    );

    let (s, replay) = h.post(
        &format!("/v1/webhooks/{id}/replay"),
        json!({"from": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!((s, &replay["queued"]), (202, &json!(2)), "{replay}");
    let posts = rx.wait(4);
    let mut first: Vec<&str> = posts[..2].iter().map(|p| p.header("webhook-id")).collect();
    let mut again: Vec<&str> = posts[2..].iter().map(|p| p.header("webhook-id")).collect();
    first.sort();
    again.sort();
    assert_eq!(again, first, "a replay re-sends the same events");
}

#[test]
fn bad_targets_and_other_tenants_are_refused() {
    let (h, _sink) = start();
    for (url, code) in [
        ("http://93.184.216.34/hook", "invalid_url"),
        ("https://10.1.2.3/hook", "forbidden_url"),
        ("https://169.254.169.254/latest/meta-data", "forbidden_url"),
        // The same addresses inside IPv6: NAT64, 6to4, Teredo.
        (
            "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
            "forbidden_url",
        ),
        ("https://[64:ff9b::a01:203]/hook", "forbidden_url"),
        ("https://[2002:a9fe:a9fe::1]/hook", "forbidden_url"),
        (
            "https://[2001:0:5db8:d822::f5ff:fffe]/hook",
            "forbidden_url",
        ),
        ("ftp://example.com/", "invalid_url"),
    ] {
        let (s, v) = h.post("/v1/webhooks", json!({"url": url}));
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some(code)),
            "{url}: {v}"
        );
    }
    let (s, v) = h.post(
        "/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/x", "events": ["openedd"]}),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("invalid_events")),
        "{v}"
    );
    let (s, v) = h.post(
        "/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/x", "secret": "mine"}),
    );
    assert_eq!(s, 400, "{v}");

    let (s, hook) = h.post("/v1/webhooks", json!({"url": "http://127.0.0.1:9/x"}));
    assert_eq!(s, 201, "{hook}");
    let id = hook["id"].as_str().unwrap();
    assert!(h.cli(&["tenants", "create", "other"]).status.success());
    let other = h.named_key("b", Some("other"), "read,write", &[]);
    for (method, path) in [
        ("GET", format!("/v1/webhooks/{id}")),
        ("GET", format!("/v1/webhooks/{id}/attempts")),
        ("DELETE", format!("/v1/webhooks/{id}")),
    ] {
        let (s, v) = h.request_with_key(method, &path, None, &[], Some(&other));
        assert_eq!(s, 404, "{method} {path}: {v}");
    }
    let (_, theirs) = h.request_with_key("GET", "/v1/webhooks", None, &[], Some(&other));
    assert_eq!(theirs["webhooks"], json!([]));
    let (s, _) = h.request("DELETE", &format!("/v1/webhooks/{id}"), None, &[]);
    assert_eq!(s, 204);
    assert_eq!(h.get(&format!("/v1/webhooks/{id}")).0, 404);
}

#[test]
fn a_cancelled_tenants_deliveries_are_held_until_it_is_reactivated() {
    let (h, _sink) = start();
    let admin = h.new_key(None, "send,read,write,admin", &[]);
    let (s, shop) = h.request_with_key(
        "POST",
        "/v1/subaccounts",
        Some(&json!({"name": "shop"})),
        &[],
        Some(&admin),
    );
    assert_eq!(s, 201, "{shop}");
    let shop_id = shop["id"].as_str().unwrap().to_string();
    let as_shop = |method: &str, path: &str, body: Option<Value>| {
        h.request_with_key(
            method,
            path,
            body.as_ref(),
            &[("X-Postwerk-Subaccount", &shop_id)],
            Some(&admin),
        )
    };
    let (s, v) = as_shop(
        "POST",
        "/v1/domains",
        Some(json!({"domain": "shop.example"})),
    );
    assert_eq!(s, 201, "{v}");
    // The first post fails: the delivery waits for its retry (5 s).
    let rx = Receiver::start(1);
    let (s, v) = as_shop(
        "POST",
        "/v1/webhooks",
        Some(json!({"url": rx.url(), "events": ["delivered"]})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = as_shop(
        "POST",
        "/v1/messages",
        Some(json!({"from": "app@shop.example", "to": ["held@example.test"], "text": "t"})),
    );
    assert_eq!(s, 202, "{v}");
    rx.wait(1);

    let (s, v) = h.request_with_key(
        "DELETE",
        &format!("/v1/subaccounts/{shop_id}"),
        None,
        &[],
        Some(&admin),
    );
    assert_eq!(s, 202, "{v}");
    // The retry falls due while the tenant is cancelled: nothing is posted.
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(rx.posts().len(), 1, "a cancelled tenant's webhook posted");

    let (s, v) = h.request_with_key(
        "POST",
        &format!("/v1/subaccounts/{shop_id}/reactivate"),
        None,
        &[],
        Some(&admin),
    );
    assert_eq!(s, 200, "{v}");
    let posts = rx.wait(2);
    assert_eq!(posts[1].json()["type"], "delivered", "held, not dropped");
}
