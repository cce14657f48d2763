//! Issue 15, sign-in hardening through the real binary: an admin's emergency action
//! (new password, disabling, forced logout, second factor removed) wins over sign-ins
//! running at the same time; a burst of guesses is verified no more often than the
//! lockout and the client's allowance let it; accounts are per tenant, and no answer
//! tells one tenant about another's; a cancelled tenant's sessions are refused on every
//! route; refused credentials are counted in /metrics and written to the audit log.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Harness, Options, totp};
use serde_json::{Value, json};

/// `POST /v1/auth/login` with `body`: the status, the JSON answer and the session
/// cookie (`pw_session=…`) when one was set.
fn login(h: &Harness, body: Value) -> (u16, Value, Option<String>) {
    let result = ureq::post(&format!("http://{}/v1/auth/login", h.http)).send_json(body);
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("login: {e}"),
    };
    let status = resp.status();
    let cookie = resp
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    (status, resp.into_json().unwrap_or(Value::Null), cookie)
}

fn sign_in(h: &Harness, email: &str, password: &str) -> (u16, Value, Option<String>) {
    login(h, json!({"email": email, "password": password}))
}

/// `GET /v1/auth/session` with a session cookie: the status.
fn session_status(h: &Harness, cookie: &str) -> u16 {
    let result = ureq::get(&format!("http://{}/v1/auth/session", h.http))
        .set("Cookie", cookie)
        .call();
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
        Err(e) => panic!("session: {e}"),
    }
}

/// The error code of an answer.
fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A session opened by a sign-in, and when its answer arrived.
struct Opened {
    cookie: String,
    at: Instant,
}

/// What the sign-in threads of a race saw: the sessions opened, and how many sign-ins
/// were answered.
#[derive(Default)]
struct Seen {
    opened: Mutex<Vec<Opened>>,
    answered: AtomicUsize,
    refused: Mutex<Vec<String>>,
}

/// Signs in to `email` with `password` from four threads in a loop until `stop`.
fn hammer(h: &Harness, email: &str, password: &str, seen: &Seen, stop: &AtomicBool) {
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let (status, body, cookie) = sign_in(h, email, password);
                    match status {
                        200 => seen.opened.lock().unwrap().push(Opened {
                            cookie: cookie.expect("a session cookie"),
                            at: Instant::now(),
                        }),
                        401 | 403 | 429 => seen.refused.lock().unwrap().push(code(&body).into()),
                        other => panic!("unexpected {other}: {body}"),
                    }
                    seen.answered.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
}

/// Runs `hammer` while `admin` acts — once sessions have been opened, so that more
/// sign-ins are inside Argon2id at that moment; returns the sessions and when the
/// admin's request was sent.
fn race(
    h: &Harness,
    email: &str,
    password: &str,
    admin: impl FnOnce() -> (u16, Value) + Send,
) -> (Vec<Opened>, Instant) {
    let seen = Seen::default();
    let stop = AtomicBool::new(false);
    let waited = |what: &str, done: &dyn Fn() -> bool| {
        assert!(
            common::wait_until(Duration::from_secs(120), done),
            "{email}: {what}; refused: {:?}",
            seen.refused.lock().unwrap()
        );
    };
    let sent = std::thread::scope(|s| {
        s.spawn(|| hammer(h, email, password, &seen, &stop));
        waited("no session opened", &|| {
            seen.opened.lock().unwrap().len() >= 3
        });
        let sent = Instant::now();
        let (status, body) = admin();
        // The sign-ins in flight finish; no new ones start (with a changed password,
        // five more would lock the account).
        stop.store(true, Ordering::SeqCst);
        assert_eq!(status, 204, "{body}");
        sent
    });
    (seen.opened.into_inner().unwrap(), sent)
}

#[test]
fn an_admins_emergency_action_wins_over_concurrent_sign_ins() {
    let h = Harness::start(Options {
        http: "max_key_failures = 100000",
        ..Default::default()
    });
    let admin = h.new_key(None, "admin", &[]);
    let as_admin = |method: &str, path: &str, body: Option<Value>| {
        h.request_with_key(method, path, body.as_ref(), &[], Some(&admin))
    };

    // A new password while the old one keeps being tried: only the new one works, and
    // no session survives (none opened with the old password after the change either).
    let id = h.create_user("default", "reset@example.org", "sender", "old-password-1");
    let (opened, _) = race(&h, "reset@example.org", "old-password-1", || {
        as_admin(
            "POST",
            &format!("/v1/users/{id}/password"),
            Some(json!({"password": "new-password-2"})),
        )
    });
    for o in &opened {
        assert_eq!(session_status(&h, &o.cookie), 401, "a session survived");
    }
    assert_eq!(sign_in(&h, "reset@example.org", "new-password-2").0, 200);
    let (status, body, _) = sign_in(&h, "reset@example.org", "old-password-1");
    assert_eq!((status, code(&body)), (401, "invalid_credentials"));

    // Disabling: sign-in refused from then on, every session ended.
    let id = h.create_user("default", "disable@example.org", "sender", "disable-pass-1");
    let (opened, _) = race(&h, "disable@example.org", "disable-pass-1", || {
        as_admin("POST", &format!("/v1/users/{id}/disable"), None)
    });
    for o in &opened {
        assert_eq!(session_status(&h, &o.cookie), 401, "a session survived");
    }
    let (status, body, _) = sign_in(&h, "disable@example.org", "disable-pass-1");
    assert_eq!((status, code(&body)), (403, "account_disabled"));
    let (_, shown) = as_admin("GET", &format!("/v1/users/{id}"), None);
    assert!(shown["disabled_at"].is_string(), "{shown}");

    // Forced logout: every session opened before it ends, and stays ended.
    let id = h.create_user("default", "logout@example.org", "sender", "logout-pass-1");
    let (opened, sent) = race(&h, "logout@example.org", "logout-pass-1", || {
        as_admin("POST", &format!("/v1/users/{id}/logout"), None)
    });
    let before: Vec<_> = opened.iter().filter(|o| o.at < sent).collect();
    assert!(!before.is_empty());
    for o in before {
        assert_eq!(session_status(&h, &o.cookie), 401, "a session revived");
    }
    // Sessions opened after it are fine.
    let (status, _, cookie) = sign_in(&h, "logout@example.org", "logout-pass-1");
    assert_eq!(status, 200);
    assert_eq!(session_status(&h, &cookie.unwrap()), 200);
}

#[test]
fn a_removed_second_factor_stays_removed_and_each_recovery_code_works_once() {
    let h = Harness::start(Options {
        http: "max_key_failures = 100000",
        ..Default::default()
    });
    let admin = h.new_key(None, "admin", &[]);
    let id = h.create_user("default", "mfa@example.org", "sender", "mfa-password-1");
    let (status, body, cookie) = sign_in(&h, "mfa@example.org", "mfa-password-1");
    assert_eq!(status, 200);
    let cookie = cookie.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    let with_session = |path: &str, body: Option<Value>| {
        h.request_with_key(
            "POST",
            path,
            body.as_ref(),
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            None,
        )
    };
    let (status, enrol) = with_session("/v1/auth/totp", None);
    assert_eq!(status, 200, "{enrol}");
    let secret = enrol["secret"].as_str().unwrap().to_string();
    let (status, enrolled) = with_session(
        "/v1/auth/totp/confirm",
        Some(json!({"totp": totp(&secret, 0)})),
    );
    assert_eq!(status, 200, "{enrolled}");
    let codes: Vec<String> = serde_json::from_value(enrolled["recovery_codes"].clone()).unwrap();

    // The same recovery code sent by four sign-ins at once opens one session.
    let winners = Mutex::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let (status, body, _) = login(
                    &h,
                    json!({"email": "mfa@example.org", "password": "mfa-password-1",
                           "recovery_code": codes[0]}),
                );
                match status {
                    200 => *winners.lock().unwrap() += 1,
                    401 => assert_eq!(code(&body), "invalid_totp"),
                    other => panic!("{other}: {body}"),
                }
            });
        }
    });
    assert_eq!(*winners.lock().unwrap(), 1, "a recovery code works once");

    // The admin removes the factor while sign-ins with recovery codes run: it stays
    // removed, and the sessions opened before are ended.
    let next = Mutex::new(codes[1..].to_vec());
    let stop = AtomicBool::new(false);
    let opened = Mutex::new(Vec::new());
    let sent = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let Some(code) = next.lock().unwrap().pop() else {
                        return;
                    };
                    let (status, _, cookie) = login(
                        &h,
                        json!({"email": "mfa@example.org", "password": "mfa-password-1",
                               "recovery_code": code}),
                    );
                    if status == 200 {
                        opened
                            .lock()
                            .unwrap()
                            .push((cookie.unwrap(), Instant::now()));
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        *sent.lock().unwrap() = Some(Instant::now());
        let (status, body) = h.request_with_key(
            "DELETE",
            &format!("/v1/users/{id}/totp"),
            None,
            &[],
            Some(&admin),
        );
        assert_eq!(status, 204, "{body}");
        stop.store(true, Ordering::SeqCst);
    });
    let sent = sent.into_inner().unwrap().unwrap();
    for (cookie, at) in opened.into_inner().unwrap() {
        if at < sent {
            assert_eq!(session_status(&h, &cookie), 401, "a session survived");
        }
    }
    // The password alone signs in now: the factor did not come back.
    let (status, body, _) = sign_in(&h, "mfa@example.org", "mfa-password-1");
    assert_eq!(status, 200, "{body}");
}

/// `n` sign-ins sent at once; the answers' (status, error code).
fn burst(h: &Harness, bodies: Vec<Value>) -> Vec<(u16, String)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .into_iter()
            .map(|b| {
                s.spawn(move || {
                    let (status, body, _) = login(h, b);
                    (status, code(&body).to_string())
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

fn count(answers: &[(u16, String)], status: u16, code: &str) -> usize {
    answers
        .iter()
        .filter(|(s, c)| *s == status && c == code)
        .count()
}

/// The value of a `postwerk_auth_failures_total` series.
fn failures(h: &Harness, kind: &str) -> u64 {
    let (_, body) = h.request_with_key("GET", "/metrics", None, &[], None);
    let text = body.as_str().unwrap_or_default().to_string();
    let series = format!("postwerk_auth_failures_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn a_burst_of_guesses_is_verified_no_more_often_than_allowed() {
    let h = Harness::start(Options {
        http: "max_key_failures = 40",
        ..Default::default()
    });
    h.create_user(
        "default",
        "target@example.org",
        "sender",
        "target-password-1",
    );

    // 30 wrong passwords at once for one account: each is counted before it is
    // checked, so exactly five are verified (and fail); the lock refuses the rest.
    let guess = json!({"email": "target@example.org", "password": "wrong-password-x"});
    let answers = burst(&h, vec![guess; 30]);
    assert_eq!(
        count(&answers, 401, "invalid_credentials"),
        5,
        "{answers:?}"
    );
    assert_eq!(count(&answers, 429, "account_locked"), 25, "{answers:?}");
    assert_eq!(failures(&h, "password"), 5);
    assert_eq!(failures(&h, "locked"), 25);

    // The client used 30 of its 40 failures: of 30 guesses at once for addresses
    // without an account, ten run, the rest are refused before Argon2id.
    let answers = burst(
        &h,
        (0..30)
            .map(|i| json!({"email": format!("nobody{i}@example.org"), "password": "wrong-password-x"}))
            .collect(),
    );
    assert_eq!(
        count(&answers, 401, "invalid_credentials"),
        10,
        "{answers:?}"
    );
    assert_eq!(count(&answers, 429, "too_many_attempts"), 20, "{answers:?}");
    assert_eq!(failures(&h, "password"), 15);
    assert_eq!(failures(&h, "throttled"), 20);
}

#[test]
fn accounts_are_per_tenant_and_no_answer_tells_tenants_apart() {
    let h = Harness::start(Options {
        http: "max_key_failures = 1000",
        ..Default::default()
    });
    assert!(h.cli(&["tenants", "create", "beta"]).status.success());
    let admin_a = h.new_key(None, "admin", &[]);
    let admin_b = h.new_key(Some("beta"), "admin", &[]);
    let create = |key: &str, email: &str, password: &str| {
        h.request_with_key(
            "POST",
            "/v1/users",
            Some(&json!({"email": email, "password": password, "role": "analyst"})),
            &[],
            Some(key),
        )
    };
    let (status, a) = create(&admin_a, "ana@example.org", "password-of-a-1");
    assert_eq!(status, 201, "{a}");

    // Tenant B gets the same answer for an address with an account in A as for a
    // fresh one; only its own duplicate is a conflict.
    let (status, b) = create(&admin_b, "Ana@Example.org", "password-of-b-1");
    assert_eq!(status, 201, "{b}");
    let (status, fresh) = create(&admin_b, "fresh@example.org", "password-of-b-1");
    assert_eq!(status, 201, "{fresh}");
    let (status, dup) = create(&admin_b, "ana@example.org", "password-of-b-2");
    assert_eq!((status, code(&dup)), (409, "user_exists"));
    let (status, dup) = create(&admin_a, "ana@example.org", "password-of-a-2");
    assert_eq!((status, code(&dup)), (409, "user_exists"));

    // Without `tenant`, the password finds its account; with it, only that tenant's.
    let (status, body, _) = sign_in(&h, "ana@example.org", "password-of-b-1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], b["id"]);
    let (status, body, _) = sign_in(&h, "ana@example.org", "password-of-a-1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], a["id"]);
    let (status, body, _) = login(
        &h,
        json!({"email": "ana@example.org", "password": "password-of-a-1", "tenant": "beta"}),
    );
    assert_eq!((status, code(&body)), (401, "invalid_credentials"));
    let (status, body, _) = login(
        &h,
        json!({"email": "ana@example.org", "password": "password-of-a-1", "tenant": "default"}),
    );
    assert_eq!((status, code(&body)), (200, ""), "{body}");
    assert_eq!(body["user"]["id"], a["id"]);
    // Signing in to A did not count as a failure on B (and the reverse).
    let (_, shown) = h.request_with_key(
        "GET",
        &format!("/v1/users/{}", b["id"].as_str().unwrap()),
        None,
        &[],
        Some(&admin_b),
    );
    assert_eq!(shown["locked_until"], Value::Null, "{shown}");

    // An address without an account locks like one that has an account: the answer
    // does not tell them apart.
    for email in ["fresh@example.org", "nobody@example.org"] {
        for _ in 0..5 {
            let (status, body, _) = sign_in(&h, email, "wrong-password-x");
            assert_eq!(
                (status, code(&body)),
                (401, "invalid_credentials"),
                "{email}"
            );
        }
        let (status, body, _) = sign_in(&h, email, "wrong-password-x");
        assert_eq!((status, code(&body)), (429, "account_locked"), "{email}");
    }
}

#[test]
fn a_cancelled_tenants_sessions_are_refused_on_every_route() {
    let h = Harness::start(Options::default());
    assert!(h.cli(&["tenants", "create", "shop"]).status.success());
    h.create_user("shop", "owner@shop.example", "owner", "shop-password-1");
    let (status, body, cookie) = sign_in(&h, "owner@shop.example", "shop-password-1");
    assert_eq!(status, 200, "{body}");
    let cookie = cookie.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(session_status(&h, &cookie), 200);
    assert!(h.cli(&["tenants", "cancel", "shop"]).status.success());
    let headers = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    for (method, path) in [
        ("GET", "/v1/auth/session"),
        ("POST", "/v1/auth/logout"),
        ("POST", "/v1/auth/totp"),
        ("GET", "/v1/domains"),
    ] {
        let (status, body) = h.request_with_key(method, path, None, &headers, None);
        assert_eq!(
            (status, code(&body)),
            (403, "tenant_cancelled"),
            "{method} {path}"
        );
    }
}

#[test]
fn failed_sign_ins_and_refused_keys_are_counted_and_audited() {
    let h = Harness::start(Options::default());
    let admin = h.new_key(None, "admin", &[]);
    let id = h.create_user("default", "audited@example.org", "sender", "audited-pass-1");
    let (status, _, _) = sign_in(&h, "audited@example.org", "wrong-password-x");
    assert_eq!(status, 401);
    let (status, _, _) = sign_in(&h, "unknown@example.org", "wrong-password-x");
    assert_eq!(status, 401);
    assert_eq!(failures(&h, "password"), 2);

    // A key of this tenant with a wrong secret, and one that does not exist.
    let mut wrong = h.key.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    let (status, body) = h.request_with_key("GET", "/v1/domains", None, &[], Some(&wrong));
    assert_eq!((status, code(&body)), (401, "invalid_api_key"));
    let (status, _) = h.request_with_key("GET", "/v1/domains", None, &[], Some("pw_live_nope"));
    assert_eq!(status, 401);
    assert_eq!(failures(&h, "api_key"), 2);

    let (status, audit) = h.request_with_key("GET", "/v1/audit?limit=100", None, &[], Some(&admin));
    assert_eq!(status, 200, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {audit}"))
    };
    let password = find("auth_failure.password");
    assert_eq!(password["actor"], "anonymous");
    assert_eq!(password["target"], id.as_str());
    assert!(
        password["ip"]
            .as_str()
            .is_some_and(|ip| ip.contains("127.0.0.1"))
    );
    let key_id = format!("key_{}", &h.key["pw_live_".len().."pw_live_".len() + 26]);
    assert_eq!(
        find("auth_failure.api_key")["target"],
        format!("key:{key_id}")
    );
    let text = audit.to_string();
    for secret in [
        "audited@example.org",
        "unknown@example.org",
        &h.key[34..],
        &wrong[34..],
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
}
