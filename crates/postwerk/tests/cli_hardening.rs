//! What a security review and a first-time user found in the command line and at the
//! edges of the API (issue "Hardening", items 10–13), through the real binary:
//! international addresses are one address everywhere; a mistyped `--tenant` creates
//! no tenant; links that point at loopback are warned about; bad values are named with
//! the valid ones; `users create` does not echo a typed password; `config check` finds
//! an unreachable store, an unusable data directory and misspelt variables; every list
//! prints the same way.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Harness, Options, Sink};
use serde_json::{Value, json};

/// A configuration with only a data directory: for commands that need no server.
struct Offline {
    root: tempfile::TempDir,
    config: PathBuf,
}

impl Offline {
    fn new(extra: &str) -> Offline {
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("postwerk.toml");
        let data = root.path().join("data");
        std::fs::write(
            &config,
            format!("data_dir = \"{}\"\n{extra}", data.display()),
        )
        .unwrap();
        Offline { root, config }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::bin());
        c.arg("--config").arg(&self.config).args(args);
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run postwerk")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Percent-encodes a path segment or query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn send_status(h: &Harness, from: &str, to: &str) -> (u16, Value) {
    let (status, body) = h.post(
        "/v1/messages",
        json!({"from": from, "to": [to], "subject": "s", "text": "t"}),
    );
    (status, body["recipients"][0]["status"].clone())
}

#[test]
fn an_international_address_is_one_address() {
    let sink = Sink::temp(false);
    let routes = format!(
        "[delivery.routes]\n\"exämple.test\" = \"127.0.0.1:{}\"\n",
        sink.port
    );
    let h = Harness::start(Options {
        extra: &routes,
        ..Default::default()
    });

    // Suppressed through the API in one spelling: every spelling is suppressed.
    let (status, _) = h.post(
        "/v1/suppressions",
        json!({"email": "kai@bücher.test", "reason": "manual"}),
    );
    assert_eq!(status, 201);
    for to in [
        "kai@xn--bcher-kva.test",
        "kai@BÜCHER.test",
        "Kai@Bücher.Test.",
    ] {
        let (status, st) = send_status(&h, "app@example.com", to);
        assert_eq!((status, st), (202, json!("suppressed")), "{to}");
    }
    let (status, found) = h.get(&format!(
        "/v1/suppressions?email={}",
        enc("KAI@xn--BCHER-kva.test")
    ));
    assert_eq!(status, 200);
    assert_eq!(
        found["suppressions"].as_array().unwrap().len(),
        1,
        "{found}"
    );

    // Suppressed with the CLI in the A-label form: the U-label send is suppressed.
    let out = h.cli(&["suppressions", "add", "lea@XN--BCHER-KVA.TEST"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        send_status(&h, "app@example.com", "lea@bücher.test").1,
        json!("suppressed")
    );
    let out = h.cli(&["suppressions", "list", "--email", "LEA@BÜCHER.test"]);
    let listed = text(&out.stdout);
    assert!(
        listed.contains("lea@xn--bcher-kva.test\t-\tmanual\t"),
        "{listed}"
    );

    // An erased person cannot be collected again under another spelling.
    let privacy = h.new_key(None, "privacy", &[]);
    let (status, erased) = h.request_with_key(
        "DELETE",
        &format!("/v1/subjects/{}", enc("max@BÜCHER.test")),
        None,
        &[],
        Some(&privacy),
    );
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["suppressed"], json!(true), "{erased}");
    assert_eq!(
        send_status(&h, "app@example.com", "max@xn--bcher-kva.test").1,
        json!("suppressed")
    );

    // A route key written with a U-label routes both spellings, in A-labels.
    for to in ["ana@xn--exmple-cua.test", "ben@EXÄMPLE.test"] {
        let (status, st) = send_status(&h, "app@example.com", to);
        assert_eq!((status, st), (202, json!("queued")), "{to}");
    }
    assert!(
        sink.wait_for(2, Duration::from_secs(30)),
        "{}",
        h.server_log()
    );
    sink.copy_for("ana@xn--exmple-cua.test");
    sink.copy_for("ben@xn--exmple-cua.test");

    // A sending domain is registered, shown and matched in A-labels.
    let out = h.cli(&["domains", "add", "bücher.example"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Domain xn--bcher-kva.example — publish"),
        "{}",
        text(&out.stdout)
    );
    let out = h.cli(&["domains", "show", "BÜCHER.example", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(shown["domain"], json!("xn--bcher-kva.example"));
    let (status, _) = send_status(&h, "app@bücher.example", "cleo@example.test");
    assert_eq!(status, 202, "a From in the U-label form matches the domain");
    let out = h.cli(&["domains", "add", "xn--BCHER-kva.example"]);
    assert!(!out.status.success(), "the same domain in its other form");

    // `?type=` names the bad value and the valid ones.
    let (status, err) = h.get("/v1/events?type=bogus");
    assert_eq!(
        (status, &err["error"]["code"]),
        (422, &json!("invalid_type"))
    );
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`bogus`") && message.contains("delivered, deferred"),
        "{message}"
    );

    // Links in mail point at the loopback listen address here: serve warns.
    let log = h.server_log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains(&format!("point at http://{}", h.http))),
        "{log}"
    );
    for address in ["kai@", "lea@", "max@", "bücher"] {
        assert!(!log.contains(address), "no address in the log: {address}");
    }
}

#[test]
fn a_mistyped_tenant_creates_no_tenant() {
    let o = Offline::new("");
    // A fresh install works without `tenants create`: the default tenant is made.
    o.ok(&["keys", "create", "--name", "app", "--quiet"]);
    let out = o.dir_file("out.json");
    let typo: &[&[&str]] = &[
        &["domains", "list"],
        &["domains", "add", "example.com"],
        &["domains", "show", "example.com"],
        &["suppressions", "list"],
        &["suppressions", "add", "a@example.com"],
        &["suppressions", "remove", "a@example.com"],
        &["streams", "list"],
        &["streams", "add", "receipts"],
        &["streams", "pause", "broadcast"],
        &["queue", "ls"],
        &["queue", "retry"],
        &["keys", "create", "--name", "k"],
        &["keys", "list"],
        &["users", "list"],
        &["users", "create", "a@example.org", "--role", "sender"],
        &["users", "disable", "usr_x"],
        &["gdpr", "export", "a@example.com", "--out", out.as_str()],
    ];
    for args in typo {
        let mut args = args.to_vec();
        args.extend(["--tenant", "typo"]);
        let run = o.run(&args);
        assert!(!run.status.success(), "{args:?} succeeded");
        let err = text(&run.stderr);
        assert!(err.contains("no tenant 'typo'"), "{args:?}: {err}");
    }
    let tenants = o.ok(&["tenants", "list", "--json"]);
    let tenants: Value = serde_json::from_str(&tenants).unwrap();
    let names: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default"], "only the default tenant exists");
    assert!(!Path::new(&out).exists());

    // Once created, the name works.
    o.ok(&["tenants", "create", "typo"]);
    o.ok(&["domains", "list", "--tenant", "typo"]);
}

impl Offline {
    fn dir_file(&self, name: &str) -> String {
        self.root.path().join(name).display().to_string()
    }
}

#[test]
fn bad_values_are_named_with_the_valid_ones() {
    let o = Offline::new("");
    let out = o.run(&["keys", "create", "--name", "k", "--scopes", "send,raed"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "--scopes: unknown scope `raed` (valid: send, read, write, import, export, privacy, admin)"
        ),
        "{err}"
    );
    for reason in ["spam", "erasure"] {
        let out = o.run(&["suppressions", "add", "a@example.com", "--reason", reason]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!(
                "--reason: unknown reason `{reason}` (valid: hard_bounce, complaint, unsubscribe, manual)"
            )),
            "{err}"
        );
    }
    let out = o.run(&[
        "users",
        "create",
        "a@example.org",
        "--role",
        "custom",
        "--scopes",
        "sned",
    ]);
    assert!(text(&out.stderr).contains("unknown scope `sned` (valid: send,"));
}

#[test]
fn every_list_prints_a_header_or_json() {
    let o = Offline::new("");
    o.ok(&["keys", "create", "--name", "app", "--scopes", "send,read"]);
    o.ok(&["domains", "add", "example.com"]);
    o.ok(&[
        "suppressions",
        "add",
        "a@example.com",
        "--stream",
        "broadcast",
    ]);
    o.ok(&["tenants", "create", "acme"]);
    let mut create = o.command(&["users", "create", "u@example.org", "--role", "sender"]);
    let mut child = create
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a-long-password-1\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let backups = o.dir_file("backups");
    std::fs::create_dir(&backups).unwrap();

    let lists: &[(&[&str], &str, &[&str])] = &[
        (
            &["keys", "list"],
            "ID\tNAME\tSCOPES\tSTATE\tALLOWED_IPS\tRATE_LIMIT",
            &["app\tread,send\tactive\t-\t-"],
        ),
        (
            &["users", "list"],
            "ID\tEMAIL\tROLE\tSCOPES\tSTATE",
            &["\tu@example.org\tsender\tsend\tactive"],
        ),
        (
            &["domains", "list"],
            "DOMAIN\tCREATED_AT",
            &["example.com\t"],
        ),
        (
            &["suppressions", "list"],
            "EMAIL\tSTREAM\tREASON\tCREATED_AT",
            &["a@example.com\tbroadcast\tmanual\t"],
        ),
        (
            &["tenants", "list"],
            "ID\tNAME\tPARENT\tSTATE",
            &["\tdefault\t-\tactive", "\tacme\t-\tactive"],
        ),
        (
            &["streams", "list"],
            "NAME\tPRIORITY\tRESERVED\tPOOL\tSTATE",
            &["transactional\t"],
        ),
        (
            &["queue", "ls"],
            "TENANT\tSTREAM\tDOMAIN\tSTATUS\tRECIPIENTS\tOLDEST",
            &[],
        ),
        (
            &["backup", "list", "--dir", &backups],
            "CREATED\tBYTES\tFILE",
            &[],
        ),
    ];
    for (args, header, rows) in lists {
        let table = o.ok(args);
        let mut lines = table.lines();
        assert_eq!(lines.next(), Some(*header), "{args:?}:\n{table}");
        for row in *rows {
            assert!(table.contains(row), "{args:?}: no {row:?} in\n{table}");
        }
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let json: Value = serde_json::from_str(&o.ok(&with_json))
            .unwrap_or_else(|e| panic!("{with_json:?}: not JSON: {e}"));
        if args[0] == "queue" {
            assert!(json["groups"].is_array(), "the GET /v1/queue document");
            continue;
        }
        let items = json
            .as_array()
            .unwrap_or_else(|| panic!("{args:?}: {json}"));
        assert_eq!(items.len(), table.lines().count() - 1, "{args:?}: {json}");
    }
    let keys: Value = serde_json::from_str(&o.ok(&["keys", "list", "--json"])).unwrap();
    assert_eq!(keys[0]["scopes"], json!(["read", "send"]));
    assert_eq!(keys[0]["allowed_ips"], json!([]));
    assert_eq!(keys[0]["rate_limit"], Value::Null);
    let supp: Value = serde_json::from_str(&o.ok(&["suppressions", "list", "--json"])).unwrap();
    assert_eq!(supp[0]["stream"], json!("broadcast"));
    assert_eq!(supp[0]["reason"], json!("manual"));
}

#[test]
fn config_check_finds_what_would_stop_serve() {
    let good = Offline::new("");
    let out = good.ok(&["config", "check"]);
    assert!(out.contains("configuration OK: store sqlite://"), "{out}");
    assert!(
        out.contains(
            "warning: links in outgoing mail (unsubscribe, tracking) point at http://127.0.0.1:8080"
        ),
        "the default base URL is the loopback listen address: {out}"
    );
    let https = Offline::new("[tracking]\nbase_url = \"https://links.example.com\"\n");
    assert!(!https.ok(&["config", "check"]).contains("warning"));
    let plain = Offline::new("[tracking]\nbase_url = \"http://links.example.com\"\n");
    assert!(plain.ok(&["config", "check"]).contains("plain http"));

    let problem = |o: &Offline, env: &[(&str, &str)]| {
        let out = o
            .command(&["config", "check"])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
        assert!(!text(&out.stdout).contains("configuration OK"));
        text(&out.stderr)
    };

    // A misspelt variable: refused by the check, warned about by every other command.
    let err = problem(&good, &[("POSTWERK_HTTP_LISTN", "0.0.0.0:80")]);
    assert!(
        err.contains(
            "unknown environment variable POSTWERK_HTTP_LISTN (did you mean POSTWERK_HTTP_LISTEN?)"
        ),
        "{err}"
    );
    let out = good
        .command(&["tenants", "list"])
        .env("POSTWERK_TRACKING_BASEURL", "https://x.example")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("WARN")
            && err.contains("POSTWERK_TRACKING_BASEURL")
            && err.contains("POSTWERK_TRACKING_BASE_URL"),
        "{err}"
    );

    // A data directory that cannot be created.
    let file = good.dir_file("a-file");
    std::fs::write(&file, b"x").unwrap();
    let blocked = Offline::new("");
    std::fs::write(
        &blocked.config,
        format!(
            "data_dir = \"{file}/data\"\n[store]\nurl = \"sqlite://{}\"\n",
            blocked.dir_file("x.db")
        ),
    )
    .unwrap();
    assert!(problem(&blocked, &[]).contains(&format!("data_dir {file}/data")));

    // A database that cannot be reached, and a file that is no SQLite database.
    let pg = Offline::new("[store]\nurl = \"postgres://postwerk:secret@127.0.0.1:1/postwerk\"\n");
    let err = problem(&pg, &[]);
    assert!(
        err.contains("store postgres://postwerk:***@127.0.0.1:1/postwerk"),
        "{err}"
    );
    assert!(!err.contains("secret"));
    let junk = Offline::new("");
    let db = junk.dir_file("junk.db");
    std::fs::write(&db, b"this is not a database at all").unwrap();
    std::fs::write(
        &junk.config,
        format!(
            "data_dir = \"{}\"\n[store]\nurl = \"sqlite://{db}\"\n",
            junk.dir_file("data")
        ),
    )
    .unwrap();
    assert!(problem(&junk, &[]).contains("is not an SQLite database"));
}

/// Runs `postwerk users create` in a pseudo-terminal (Python's `pty`), typing the two
/// answers after their prompts; returns (exit code, everything the terminal showed).
fn create_in_terminal(o: &Offline, email: &str, first: &str, second: &str) -> (i32, String) {
    const SCRIPT: &str = r#"
import os, pty, select, sys
first, second, args = sys.argv[1], sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(args[0], args)
seen = b""
def read(until=None):
    global seen
    while until is None or until not in seen:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            sys.exit("timed out; the terminal showed %r" % seen)
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            if until is None:
                return
            sys.exit("ended before %r; the terminal showed %r" % (until, seen))
        seen += chunk
read(b"Password: ")
os.write(fd, first.encode() + b"\n")
read(b"Repeat the password: ")
os.write(fd, second.encode() + b"\n")
read()
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(seen)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .args([first, second, common::bin(), "--config"])
        .arg(&o.config)
        .args(["users", "create", email, "--role", "sender"])
        .output()
        .expect("python3");
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

#[test]
fn users_create_in_a_terminal_asks_twice_without_echo() {
    let o = Offline::new("");
    let (code, shown) = create_in_terminal(&o, "t@example.org", "tty-secret-one", "tty-secret-one");
    assert_eq!(code, 0, "{shown}");
    assert!(
        !shown.contains("tty-secret-one"),
        "the password was echoed: {shown}"
    );
    assert!(shown.contains("usr_"), "{shown}");

    let (code, shown) = create_in_terminal(&o, "u@example.org", "tty-secret-two", "tty-secret-owt");
    assert_ne!(code, 0, "{shown}");
    assert!(shown.contains("the passwords do not match"), "{shown}");
    assert!(!shown.contains("tty-secret"), "{shown}");
    let users = o.ok(&["users", "list"]);
    assert!(
        users.contains("t@example.org") && !users.contains("u@example.org"),
        "{users}"
    );
}
