//! Issue 6, people who sign in, through the real front doors: users made by the CLI
//! and the API with roles, sign-in to a session cookie (HttpOnly, Secure,
//! SameSite=Strict) with a CSRF token for state-changing requests, the role's scopes
//! on the API, account lockout with `Retry-After`, forced logout, disabling and
//! password reset by an admin; the password is stored only as an Argon2id hash.

mod common;

use common::{Harness, Options, files_containing, totp};
use serde_json::{Value, json};

/// `postwerk users create EMAIL --role ROLE` with the password on standard input.
fn create_user(h: &Harness, email: &str, role: &str, password: &str) -> String {
    h.create_user("default", email, role, password)
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
            .request("POST", &format!("/v1/users/{target}/disable"), None)
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

    // Deleting removes the account: the id is unknown, the address free again.
    assert_eq!(
        admin
            .request("DELETE", &format!("/v1/users/{target}"), None)
            .0,
        204
    );
    assert_eq!(
        admin.request("GET", &format!("/v1/users/{target}"), None).0,
        404
    );
    let out = h.cli(&["users", "list"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&target));
    let again = create_user(&h, "target@example.org", "sender", "yet-another-pass-3");
    assert_ne!(again, target);
    let out = h.cli(&["users", "delete", &again]);
    assert!(out.status.success(), "{out:?}");
    let (status, err, _) = attacker.login("target@example.org", "yet-another-pass-3");
    assert_eq!(
        (status, &err["error"]["code"]),
        (401, &json!("invalid_credentials"))
    );
}

#[test]
fn a_second_factor_is_enrolled_confirmed_and_then_required() {
    let h = Harness::start(Options::default());
    let id = create_user(&h, "mfa@example.org", "developer", "mfa-password-1");
    let mut browser = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    assert_eq!(browser.login("mfa@example.org", "mfa-password-1").0, 200);
    let (status, enrol, _) = browser.request("POST", "/v1/auth/totp", None);
    assert_eq!(status, 200, "{enrol}");
    let secret = enrol["secret"].as_str().unwrap().to_string();
    let uri = enrol["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Postwerk:mfa%40example.org?secret="),
        "{uri}"
    );
    assert!(uri.contains(&secret));
    assert!(
        enrol["qr_svg"].as_str().unwrap().contains("<svg"),
        "a QR code to scan"
    );

    // Until confirmed, sign-in needs no code.
    let mut other = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    assert_eq!(other.login("mfa@example.org", "mfa-password-1").0, 200);
    let (status, err, _) = browser.request(
        "POST",
        "/v1/auth/totp/confirm",
        Some(json!({"totp": "000000"})),
    );
    assert_eq!(
        (status, &err["error"]["code"]),
        (422, &json!("invalid_totp"))
    );
    let (status, confirmed, _) = browser.request(
        "POST",
        "/v1/auth/totp/confirm",
        Some(json!({"totp": totp(&secret, 0)})),
    );
    assert_eq!(status, 200, "{confirmed}");
    let recovery: Vec<String> =
        serde_json::from_value(confirmed["recovery_codes"].clone()).unwrap();
    assert_eq!(recovery.len(), 10);

    let mut fresh = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    let (status, err, _) = fresh.login("mfa@example.org", "mfa-password-1");
    assert_eq!(
        (status, &err["error"]["code"]),
        (401, &json!("totp_required"))
    );
    let wrong = json!({"email": "mfa@example.org", "password": "mfa-password-1", "totp": "123456"});
    let (status, err, _) = fresh.request("POST", "/v1/auth/login", Some(wrong));
    assert_eq!(
        (status, &err["error"]["code"]),
        (401, &json!("invalid_totp"))
    );
    // The confirming code's step is used up; the next step's code (within the allowed
    // drift) signs in.
    let next =
        json!({"email": "mfa@example.org", "password": "mfa-password-1", "totp": totp(&secret, 1)});
    assert_eq!(
        fresh
            .request("POST", "/v1/auth/login", Some(next.clone()))
            .0,
        200
    );
    let (status, err, _) = fresh.request("POST", "/v1/auth/login", Some(next));
    assert_eq!(
        (status, &err["error"]["code"]),
        (401, &json!("invalid_totp")),
        "a code works once"
    );
    let by_recovery = json!({"email": "mfa@example.org", "password": "mfa-password-1", "recovery_code": recovery[0]});
    assert_eq!(
        fresh
            .request("POST", "/v1/auth/login", Some(by_recovery.clone()))
            .0,
        200
    );
    assert_eq!(
        fresh.request("POST", "/v1/auth/login", Some(by_recovery)).0,
        401,
        "and so does a recovery code"
    );

    // Device and codes lost: an admin removes the factor; the user signs in without.
    let out = h.cli(&["users", "remove-totp", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fresh.request("GET", "/v1/auth/session", None).0,
        401,
        "sessions ended"
    );
    assert_eq!(fresh.login("mfa@example.org", "mfa-password-1").0, 200);
}

#[test]
fn tenants_can_require_a_second_factor_and_restrict_sign_in_addresses() {
    let h = Harness::start(Options {
        extra: "[auth.tenants.default]\nrequire_totp = true\n\
                [auth.tenants.branch]\nlogin_allowlist = [\"10.0.0.0/8\"]\n",
        ..Default::default()
    });
    create_user(&h, "must-enrol@example.org", "admin", "enrol-password-1");
    assert!(h.cli(&["tenants", "create", "branch"]).status.success());
    h.create_user("branch", "remote@example.org", "admin", "remote-password-1");

    // The branch office only signs in from its own network: refused here, even with
    // the right password.
    let mut remote = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    let (status, err, _) = remote.login("remote@example.org", "remote-password-1");
    assert_eq!(
        (status, &err["error"]["code"]),
        (403, &json!("login_address_not_allowed"))
    );

    // The default tenant requires a second factor: until it is set up, the session only
    // serves setting it up.
    let mut browser = Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    assert_eq!(
        browser
            .login("must-enrol@example.org", "enrol-password-1")
            .0,
        200
    );
    let (status, err, _) = browser.request("GET", "/v1/domains", None);
    assert_eq!(
        (status, &err["error"]["code"]),
        (403, &json!("totp_enrolment_required"))
    );
    let (_, enrol, _) = browser.request("POST", "/v1/auth/totp", None);
    let secret = enrol["secret"].as_str().unwrap().to_string();
    let (status, _, _) = browser.request(
        "POST",
        "/v1/auth/totp/confirm",
        Some(json!({"totp": totp(&secret, 0)})),
    );
    assert_eq!(status, 200);
    assert_eq!(browser.request("GET", "/v1/domains", None).0, 200);
    // API keys are not users: the policy does not apply to them.
    assert_eq!(h.get("/v1/domains").0, 200);
}

#[test]
fn users_list_and_end_their_own_sessions_and_change_their_own_password() {
    let h = Harness::start(Options::default());
    create_user(&h, "dev@example.org", "developer", "developer-password-1");
    create_user(&h, "other@example.org", "developer", "other-password-1");
    create_user(&h, "owner@example.org", "owner", "owner-password-1");
    let new_browser = || Browser {
        h: &h,
        cookie: None,
        csrf: None,
    };
    let (mut laptop, mut phone, mut other) = (new_browser(), new_browser(), new_browser());
    assert_eq!(
        laptop.login("dev@example.org", "developer-password-1").0,
        200
    );
    assert_eq!(
        phone.login("dev@example.org", "developer-password-1").0,
        200
    );
    assert_eq!(other.login("other@example.org", "other-password-1").0, 200);

    // Each session sees the user's two, newest first, its own marked current.
    let (status, list, _) = laptop.request("GET", "/v1/auth/sessions", None);
    assert_eq!(status, 200, "{list}");
    let sessions = list["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{list}");
    assert!(sessions[0]["created_at"].as_str() >= sessions[1]["created_at"].as_str());
    let current: Vec<bool> = sessions.iter().map(|s| s["current"] == true).collect();
    assert_eq!(current.iter().filter(|c| **c).count(), 1, "{list}");
    let phone_id = sessions[usize::from(current[0])]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(phone_id.len(), 64);
    assert!(
        !list.to_string().contains(
            phone
                .cookie
                .as_ref()
                .unwrap()
                .trim_start_matches("pw_session=")
        ),
        "the token itself is never shown"
    );

    // Another user cannot end it; the user can, and only that session ends.
    let path = format!("/v1/auth/sessions/{phone_id}");
    assert_eq!(other.request("DELETE", &path, None).0, 404);
    assert_eq!(phone.request("GET", "/v1/auth/session", None).0, 200);
    assert_eq!(laptop.request("DELETE", &path, None).0, 204);
    assert_eq!(phone.request("GET", "/v1/auth/session", None).0, 401);
    assert_eq!(laptop.request("GET", "/v1/auth/session", None).0, 200);
    assert_eq!(
        laptop.request("DELETE", &path, None).0,
        404,
        "ended already"
    );

    // Without the admin scope, a user changes their own password, given the current one.
    let change = |b: &Browser, current: &str| {
        b.request(
            "POST",
            "/v1/auth/password",
            Some(json!({"current_password": current, "password": "a new and longer passphrase"})),
        )
    };
    let (status, err, _) = change(&laptop, "not-the-password");
    assert_eq!(
        (status, &err["error"]["code"]),
        (422, &json!("wrong_password")),
        "{err}"
    );
    assert_eq!(change(&laptop, "developer-password-1").0, 204);
    assert_eq!(
        laptop.request("GET", "/v1/auth/session", None).0,
        401,
        "every session ends"
    );
    assert_eq!(
        new_browser()
            .login("dev@example.org", "developer-password-1")
            .0,
        401
    );
    assert_eq!(
        new_browser()
            .login("dev@example.org", "a new and longer passphrase")
            .0,
        200
    );

    // Both changes are in the audit log, newest first with order=desc.
    let mut owner = new_browser();
    assert_eq!(owner.login("owner@example.org", "owner-password-1").0, 200);
    let get = |path: &str| {
        let (status, body, _) = owner.request("GET", path, None);
        (status, body)
    };
    let (status, log) = get("/v1/audit?order=desc&limit=1000");
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let at = |action: &str| {
        actions
            .iter()
            .position(|a| *a == action)
            .unwrap_or(usize::MAX)
    };
    assert!(
        at("user.password_change") < at("user.session_end"),
        "{actions:?}"
    );
    assert!(at("user.session_end") < usize::MAX);
    let (_, oldest_first) = get("/v1/audit?limit=1000");
    let ids = |v: &Value| -> Vec<String> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut reversed = ids(&oldest_first);
    reversed.reverse();
    assert_eq!(ids(&log), reversed);
    assert_eq!(get("/v1/audit?order=sideways").0, 422);
    let (status, chain) = get("/v1/audit/verify");
    assert_eq!(status, 200, "{chain}");
    assert_eq!(chain["intact"], true, "{chain}");
    assert!(chain["entries"].as_u64().unwrap() >= actions.len() as u64);
}
