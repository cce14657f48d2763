//! Issue 6, people who sign in, through the real front doors: users made by the CLI
//! and the API with roles, sign-in to a session cookie (HttpOnly, Secure,
//! SameSite=Strict) with a CSRF token for state-changing requests, the role's scopes
//! on the API, account lockout with `Retry-After`, forced logout, disabling and
//! password reset by an admin; the password is stored only as an Argon2id hash.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{Harness, Options, bin, files_containing};
use serde_json::{Value, json};

/// `postwerk users create EMAIL --role ROLE` with the password on standard input.
fn create_user(h: &Harness, email: &str, role: &str, password: &str) -> String {
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&h.config)
        .args(["users", "create", email, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A browser-like client: keeps the session cookie, sends the CSRF token.
struct Browser<'a> {
    h: &'a Harness,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Browser<'_> {
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, Option<String>) {
        let mut req = ureq::request(method, &format!("http://{}{path}", self.h.http));
        if let Some(c) = &self.cookie {
            req = req.set("Cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.set("X-CSRF-Token", t);
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let set_cookie = resp.header("set-cookie").map(str::to_string).or_else(|| {
            resp.header("retry-after")
                .map(|r| format!("retry-after={r}"))
        });
        (status, resp.into_json().unwrap_or(Value::Null), set_cookie)
    }

    fn login(&mut self, email: &str, password: &str) -> (u16, Value, Option<String>) {
        let answer = self.request(
            "POST",
            "/v1/auth/login",
            Some(json!({"email": email, "password": password})),
        );
        if answer.0 == 200 {
            let cookie = answer.2.clone().unwrap();
            self.cookie = Some(cookie.split(';').next().unwrap().to_string());
            self.csrf = answer.1["csrf_token"].as_str().map(str::to_string);
        }
        answer
    }
}

#[test]
fn users_sign_in_to_sessions_with_their_roles_scopes() {
    let mut h = Harness::start(Options::default());
    let owner = create_user(&h, "owner@example.org", "owner", "owner-password-1");
    let mut browser = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    let (status, body, cookie) = browser.login("Owner@Example.org", "owner-password-1");
    assert_eq!(status, 200, "{body}");
    let cookie = cookie.unwrap();
    for attribute in [
        "pw_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert_eq!(body["user"]["id"], owner.as_str());
    assert_eq!(body["user"]["role"], "owner");

    // The session works on the API; writes need the CSRF token.
    let (status, me, _) = browser.request("GET", "/v1/auth/session", None);
    assert_eq!(
        (status, &me["user"]["email"]),
        (200, &json!("owner@example.org"))
    );
    assert_eq!(browser.request("GET", "/v1/domains", None).0, 200);
    let csrf = browser.csrf.take();
    let (status, err, _) =
        browser.request("POST", "/v1/domains", Some(json!({"name": "csrf.example"})));
    assert_eq!(
        (status, &err["error"]["code"]),
        (403, &json!("csrf_token_invalid"))
    );
    browser.csrf = csrf;

    // An owner makes an analyst through the API; the analyst may read, not write.
    let (status, analyst, _) = browser.request(
        "POST",
        "/v1/users",
        Some(json!({"email": "analyst@example.org", "password": "analyst-password-1", "role": "analyst"})),
    );
    assert_eq!(status, 201, "{analyst}");
    assert_eq!(analyst["scopes"], json!(["read"]));
    let (status, dup, _) = browser.request(
        "POST",
        "/v1/users",
        Some(json!({"email": "analyst@example.org", "password": "another-password", "role": "sender"})),
    );
    assert_eq!(
        (status, &dup["error"]["code"]),
        (409, &json!("user_exists"))
    );
    let mut analyst_browser = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    assert_eq!(
        analyst_browser
            .login("analyst@example.org", "analyst-password-1")
            .0,
        200
    );
    assert_eq!(analyst_browser.request("GET", "/v1/events", None).0, 200);
    let (status, err, _) = analyst_browser.request("GET", "/v1/keys", None);
    assert_eq!(
        (status, &err["error"]["code"]),
        (403, &json!("insufficient_scope"))
    );

    // Forced logout by the owner ends the analyst's session at once.
    let analyst_id = analyst["id"].as_str().unwrap();
    let (status, _, _) = browser.request("POST", &format!("/v1/users/{analyst_id}/logout"), None);
    assert_eq!(status, 204);
    let (status, err, _) = analyst_browser.request("GET", "/v1/events", None);
    assert_eq!(
        (status, &err["error"]["code"]),
        (401, &json!("session_expired"))
    );

    // Logout ends the owner's own session.
    assert_eq!(browser.request("POST", "/v1/auth/logout", None).0, 204);
    assert_eq!(browser.request("GET", "/v1/domains", None).0, 401);

    // Only an Argon2id hash is stored, never the password.
    assert!(h.stop(), "graceful stop");
    assert!(files_containing(&h.data, b"owner-password-1").is_empty());
    assert!(!files_containing(&h.data, b"$argon2id$v=19$m=19456,t=2,p=1$").is_empty());
}

#[test]
fn repeated_failures_lock_the_account_and_an_admin_can_reset_it() {
    let h = Harness::start(Options {
        http: "max_key_failures = 1000",
        ..Default::default()
    });
    create_user(&h, "admin@example.org", "admin", "admin-password-1");
    let target = create_user(&h, "target@example.org", "sender", "target-password-1");
    let mut attacker = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    for _ in 0..5 {
        let (status, err, _) = attacker.login("target@example.org", "guess-guess-guess");
        assert_eq!(
            (status, &err["error"]["code"]),
            (401, &json!("invalid_credentials"))
        );
    }
    // Unknown addresses get the same answer.
    let (status, err, _) = attacker.login("nobody@example.org", "guess-guess-guess");
    assert_eq!(
        (status, &err["error"]["code"]),
        (401, &json!("invalid_credentials"))
    );
    // Locked now, even with the right password, with Retry-After.
    let (status, err, retry) = attacker.login("target@example.org", "target-password-1");
    assert_eq!(
        (status, &err["error"]["code"]),
        (429, &json!("account_locked")),
        "{err}"
    );
    let retry: u64 = retry
        .unwrap()
        .trim_start_matches("retry-after=")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // An admin sets a new password: the lock is lifted.
    let mut admin = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    assert_eq!(admin.login("admin@example.org", "admin-password-1").0, 200);
    let (status, _, _) = admin.request(
        "POST",
        &format!("/v1/users/{target}/password"),
        Some(json!({"password": "a-new-password-2"})),
    );
    assert_eq!(status, 204);
    let mut owner_of_target = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    assert_eq!(
        owner_of_target
            .login("target@example.org", "a-new-password-2")
            .0,
        200
    );

    // Disabled users cannot sign in; their sessions end.
    assert_eq!(
        admin
            .request("DELETE", &format!("/v1/users/{target}"), None)
            .0,
        204
    );
    assert_eq!(
        owner_of_target.request("GET", "/v1/auth/session", None).0,
        401
    );
    let (status, err, _) = attacker.login("target@example.org", "a-new-password-2");
    assert_eq!(
        (status, &err["error"]["code"]),
        (403, &json!("account_disabled"))
    );
    let out = h.cli(&["users", "list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains(&format!(
            "{target}\ttarget@example.org\tsender\tsend\tdisabled"
        )),
        "{list}"
    );
}
