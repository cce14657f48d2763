//! The web console end to end, in a real browser: Debian's Chromium driven by Python
//! Playwright (tests/support/console_e2e.py) against a real `postwerk serve`. It signs
//! in, turns on a second factor and signs in with it, finds a delivered message,
//! pauses and resumes a stream, makes, uses and revokes an API key, exports and erases
//! a person on the privacy desk, makes an analyst and checks what the analyst may not
//! do, runs axe-core on every page (no serious or critical violation), and checks the
//! security headers of every console response and that no address appears in a URL.
//!
//! With `POSTWERK_SCREENSHOTS=<dir>`, the script also saves full-page screenshots of
//! the main pages there (for the docs).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Harness, Options, Sink};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails (never skips) when the browser or the Python packages are missing, saying
/// how to install them.
fn require_browser_tools() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's Chromium (`apt-get install -y chromium`); \
         the console test never downloads a browser"
    );
    let probe = Command::new("python3")
        .args([
            "-c",
            "import playwright.sync_api, axe_playwright_python, os\n\
             d = os.path.dirname(axe_playwright_python.__file__)\n\
             assert os.path.exists(os.path.join(d, 'axe.min.js'))",
        ])
        .output()
        .expect("python3");
    assert!(
        probe.status.success(),
        "Python Playwright or axe-core is missing: `pip install playwright axe-playwright-python` \
         (never `playwright install`: the test uses {CHROMIUM}):\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

#[test]
fn the_console_works_in_a_real_browser() {
    require_browser_tools();
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        extra: "[webhooks]\nallow_loopback = true",
        ..Options::to(&sink)
    });
    let (owner, password) = ("owner@example.org", "owner-password-e2e-1");
    h.create_user("default", owner, "owner", password);

    // A browser opening / lands on the console; API clients keep the JSON.
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let root = format!("http://{}/", h.http);
    let browser = agent
        .get(&root)
        .set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .call()
        .expect("GET / as a browser");
    assert_eq!(
        (browser.status(), browser.header("location")),
        (303, Some("/ui/"))
    );
    let health: serde_json::Value = agent.get(&root).call().unwrap().into_json().unwrap();
    assert_eq!(health["status"], "ok", "{health}");

    // One delivered message to a person the privacy desk later exports and erases.
    let recipient = "erin.e2e@example.test";
    let sent = h.send(json!({
        "from": "app@example.com", "to": [recipient],
        "subject": "Console end-to-end", "text": "hello"
    }));
    let id = sent["id"].as_str().unwrap().to_string();
    let done = h.wait_final(&id, Duration::from_secs(30));
    assert_eq!(
        done["recipients"][0]["status"], "delivered",
        "the message was not delivered: {done}"
    );
    assert!(sink.wait_for(1, Duration::from_secs(10)));

    // A webhook, so that its own page can be checked too.
    let (status, hook) = h.post(
        "/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/console-e2e", "events": ["delivered"]}),
    );
    assert_eq!(status, 201, "{hook}");
    let hook_id = hook["id"].as_str().unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/console_e2e.py");
    let started = Instant::now();
    let out = Command::new("python3")
        .arg(script)
        .args([
            &format!("http://{}", h.http),
            owner,
            password,
            recipient,
            &id,
            hook_id,
            "example.com",
        ])
        .arg(h.root.path())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "console_e2e.py took {:.1} s\n{stdout}\n{stderr}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "the console's browser test failed:\n{stdout}\n{stderr}\nserver log (end):\n{}",
        tail(&h.server_log(), 4000)
    );
}

/// The last `n` bytes of `text` (at a character boundary).
fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
