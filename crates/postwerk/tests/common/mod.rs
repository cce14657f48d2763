//! Test harness: runs the real `postwerk` binary against an independent Python SMTP
//! receiver on loopback, with a private data directory and configuration.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_postwerk")
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn support(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(file)
}

/// Polls `f` every 50 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Runs a Python script with arguments, which must succeed; returns its stdout
/// (the assertion shows its stdout and stderr).
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The TOTP code of `secret` (base32) for step `now / 30 + offset`, computed by
/// Python's standard library: an independent implementation of RFC 6238.
pub fn totp(secret: &str, offset: i64) -> String {
    let script = r#"
import base64, hashlib, hmac, struct, sys, time
secret = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
mac = hmac.new(secret, struct.pack(">q", step), hashlib.sha1).digest()
o = mac[19] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000))
"#;
    python(script, &[secret, &offset.to_string()])
        .trim()
        .to_string()
}

/// The test PostgreSQL server's admin URL (`POSTWERK_TEST_PG_URL`); `None`, saying
/// the test is skipped, when it is not set.
pub fn pg_admin_url() -> Option<String> {
    let url = std::env::var("POSTWERK_TEST_PG_URL").ok();
    if url.is_none() {
        println!("PostgreSQL skipped: POSTWERK_TEST_PG_URL not set");
    }
    url
}

/// Runs `sql` with `psql` on `url`, which must succeed; returns its unaligned,
/// trimmed output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-Atqc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// An empty database `db` (dropped first if it exists) on the server of `admin`;
/// returns its URL.
pub fn fresh_pg_database(admin: &str, db: &str) -> String {
    psql(admin, &format!("DROP DATABASE IF EXISTS {db}"));
    psql(admin, &format!("CREATE DATABASE {db}"));
    match admin.rfind('/') {
        Some(i) => format!("{}/{db}", &admin[..i]),
        None => panic!("POSTWERK_TEST_PG_URL needs a database path"),
    }
}

/// The Python SMTP receiver (tests/support/sink.py).
pub struct Sink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where it stores messages.
    pub dir: PathBuf,
    child: Child,
    /// The scratch directory holding `dir` when the sink made its own (removed after
    /// the sink is stopped).
    scratch: Option<tempfile::TempDir>,
}

impl Sink {
    /// Starts a sink storing into a scratch directory of its own; with `tls`, it
    /// offers STARTTLS (self-signed).
    pub fn temp(tls: bool) -> Sink {
        let scratch = tempfile::tempdir().unwrap();
        let mut sink = Self::start(&scratch.path().join("sink"), tls);
        sink.scratch = Some(scratch);
        sink
    }

    /// Starts a sink storing into `dir`; with `tls`, it offers STARTTLS (self-signed).
    pub fn start(dir: &Path, tls: bool) -> Sink {
        let cert = tls.then(|| self_signed_certificate(dir));
        Self::start_at(dir, "127.0.0.1", free_port(), cert)
    }

    /// Starts a plain sink on a given port.
    pub fn start_on(dir: &Path, port: u16) -> Sink {
        Self::start_at(dir, "127.0.0.1", port, None)
    }

    /// Starts a sink on `ip:port`; with `cert` (certificate and key PEM files), it
    /// offers STARTTLS with that certificate.
    pub fn start_at(dir: &Path, ip: &str, port: u16, cert: Option<(PathBuf, PathBuf)>) -> Sink {
        let mut cmd = Command::new("python3");
        cmd.arg(support("sink.py"))
            .arg(ip)
            .arg(port.to_string())
            .arg(dir);
        if let Some((cert, key)) = cert {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 sink");
        assert!(
            wait_until(Duration::from_secs(10), || dir.join(".ready").exists()),
            "sink did not start"
        );
        Sink {
            port,
            dir: dir.to_path_buf(),
            child,
            scratch: None,
        }
    }

    /// The raw copy delivered to envelope recipient `rcpt`.
    pub fn copy_for(&self, rcpt: &str) -> Vec<u8> {
        self.messages()
            .into_iter()
            .find(|(_, meta)| {
                meta["rcpt"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|a| a == rcpt))
            })
            .unwrap_or_else(|| panic!("no copy for {rcpt} reached the sink"))
            .0
    }

    /// Messages received so far: (raw message, metadata JSON), in arrival order.
    pub fn messages(&self) -> Vec<(Vec<u8>, Value)> {
        let mut n = 1;
        let mut out = Vec::new();
        while let Ok(eml) = std::fs::read(self.dir.join(format!("{n}.eml"))) {
            let meta = std::fs::read(self.dir.join(format!("{n}.json"))).unwrap();
            out.push((eml, serde_json::from_slice(&meta).unwrap()));
            n += 1;
        }
        out
    }

    /// Number of messages received.
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.count() >= n)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `openssl` with `args`; panics when it fails (test helper).
pub fn openssl(args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl {args:?} failed");
}

/// A self-signed certificate for `sink.test` next to `dir`: (certificate, key).
fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.with_extension("crt"), dir.with_extension("key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=sink.test",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    (cert, key)
}

/// A running `postwerk serve` with its own data directory, a key and a domain.
pub struct Harness {
    /// Temporary root (data dir, config, sink dirs).
    pub root: tempfile::TempDir,
    /// The data directory.
    pub data: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
    /// `127.0.0.1:port` of the API.
    pub http: String,
    /// An API key with send, read and write.
    pub key: String,
    /// Port of the STARTTLS submission listener on 127.0.0.1.
    pub smtp: u16,
    /// Port of the implicit-TLS submission listener on 127.0.0.1.
    pub smtps: u16,
    /// Port of the inbound MX (bounces, feedback reports) on 127.0.0.1.
    pub mx: u16,
    child: Option<Child>,
    /// Captured server log.
    pub log: PathBuf,
    log_json: bool,
}

/// Options for [`Harness::start`].
#[derive(Default)]
pub struct Options<'a> {
    /// Extra TOML appended to the `[delivery]` section.
    pub delivery: &'a str,
    /// Extra TOML appended at the end (other sections).
    pub extra: &'a str,
    /// Extra TOML appended to the `[http]` section.
    pub http: &'a str,
    /// Serve with `POSTWERK_LOG_FORMAT=json`.
    pub log_json: bool,
    /// Static route for `example.test`; `None` for no route.
    pub route_port: Option<u16>,
    /// Store URL override (PostgreSQL runs).
    pub store_url: Option<String>,
    /// Extra TOML appended to the `[smtp.submission]` section (whose listeners always
    /// get free ports, see [`Harness::smtp`]).
    pub submission: &'a str,
    /// Extra TOML appended to the `[smtp.inbound]` section (whose listener always gets
    /// a free port, see [`Harness::mx`]).
    pub inbound: &'a str,
}

impl Options<'_> {
    /// The default options with `example.test` routed to `sink`.
    pub fn to(sink: &Sink) -> Self {
        Options {
            route_port: Some(sink.port),
            ..Default::default()
        }
    }
}

impl Harness {
    /// Writes the config, creates a key and the domain example.com with the CLI,
    /// and starts `postwerk serve`.
    pub fn start(opts: Options<'_>) -> Harness {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let http = format!("127.0.0.1:{}", free_port());
        let store = opts
            .store_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/postwerk.db", data.display()));
        let routes = opts
            .route_port
            .map(|p| format!("[delivery.routes]\n\"example.test\" = \"127.0.0.1:{p}\"\n"))
            .unwrap_or_default();
        let (smtp, smtps, mx) = (free_port(), free_port(), free_port());
        let text = format!(
            "data_dir = \"{}\"\n[http]\nlisten = \"{http}\"\n{}\n[store]\nurl = \"{store}\"\n[delivery]\nehlo_name = \"mta.postwerk.test\"\nbounce_domain = \"bounces.example.com\"\n{}\n[smtp.submission]\nlisten = \"127.0.0.1:{smtp}\"\nlisten_tls = \"127.0.0.1:{smtps}\"\n{}\n[smtp.inbound]\nlisten = \"127.0.0.1:{mx}\"\n{}\n{routes}{}\n",
            data.display(),
            opts.http,
            opts.delivery,
            opts.submission,
            opts.inbound,
            opts.extra
        );
        let config = root.path().join("postwerk.toml");
        std::fs::write(&config, text).unwrap();
        let log = root.path().join("serve.log");
        let mut h = Harness {
            data,
            config,
            http,
            key: String::new(),
            smtp,
            smtps,
            mx,
            child: None,
            log,
            log_json: opts.log_json,
            root,
        };
        let out = h.cli(&[
            "keys",
            "create",
            "--name",
            "test",
            "--scopes",
            "send,read,write",
            "--quiet",
        ]);
        assert!(
            out.status.success(),
            "keys create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        h.key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let out = h.cli(&["domains", "add", "example.com"]);
        assert!(
            out.status.success(),
            "domains add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        h.serve();
        h
    }

    /// Runs one SQL statement on the instance's SQLite database with an independent
    /// client (Python's sqlite3), behind the server's back, and commits; returns the
    /// rows it produced as Python prints them.
    pub fn sqlite(&self, sql: &str) -> String {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\n\
                 rows = c.execute(sys.argv[2]).fetchall()\nc.commit()\nprint(rows)",
            ])
            .arg(self.data.join("postwerk.db"))
            .arg(sql)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a CLI command against this instance's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run postwerk")
    }

    /// Runs a CLI command that must succeed; returns its standard output.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A new API key (the token) with `scopes` for `tenant` (`None`: the default
    /// tenant), made by `postwerk keys create`, with `extra` flags.
    pub fn new_key(&self, tenant: Option<&str>, scopes: &str, extra: &[&str]) -> String {
        self.named_key("k", tenant, scopes, extra)
    }

    /// [`Harness::new_key`] with the key's `name`.
    pub fn named_key(
        &self,
        name: &str,
        tenant: Option<&str>,
        scopes: &str,
        extra: &[&str],
    ) -> String {
        let mut args = vec![
            "keys", "create", "--name", name, "--scopes", scopes, "--quiet",
        ];
        if let Some(t) = tenant {
            args.extend(["--tenant", t]);
        }
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "keys create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Starts (or restarts) `postwerk serve` and waits until the API answers.
    pub fn serve(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(bin())
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("POSTWERK_LOG", "info")
            .env(
                "POSTWERK_LOG_FORMAT",
                if self.log_json { "json" } else { "text" },
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn postwerk serve");
        self.child = Some(child);
        let url = format!("http://{}/", self.http);
        let up = wait_until(Duration::from_secs(30), || ureq::get(&url).call().is_ok());
        assert!(up, "postwerk serve did not answer: {}", self.server_log());
    }

    /// The server's log so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILLs the server.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns its success.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        c.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// `postwerk users create EMAIL --role ROLE --tenant TENANT` with the password on
    /// standard input; the new user's id.
    pub fn create_user(&self, tenant: &str, email: &str, role: &str, password: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(&self.config)
            .args(["users", "create", email, "--role", role, "--tenant", tenant])
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

    /// An HTTP request with this instance's key; returns (status, JSON body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.request_with_key(method, path, body, headers, Some(&self.key))
    }

    /// `POST /v1/messages` with this instance's key, which must answer 202; returns
    /// the answer.
    pub fn send(&self, message: Value) -> Value {
        let (s, sent) = self.post("/v1/messages", message);
        assert_eq!(s, 202, "{sent}");
        sent
    }

    /// An HTTP request with `key` and no extra headers.
    pub fn call(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request_with_key(method, path, body.as_ref(), &[], Some(key))
    }

    /// The audit entries of `action` (`GET /v1/audit`, up to 1000, with `key`).
    pub fn audit_entries(&self, key: &str, action: &str) -> Vec<Value> {
        let (s, log) = self.call(key, "GET", "/v1/audit?limit=1000", None);
        assert_eq!(s, 200, "{log}");
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    }

    /// An HTTP request with a given key (or none).
    pub fn request_with_key(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = ureq::request(method, &format!("http://{}{}", self.http, path));
        if let Some(k) = key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("HTTP {method} {path}: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST path` with JSON.
    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request("POST", path, Some(&body), &[])
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None, &[])
    }

    /// Polls `GET /v1/messages/{id}` until every recipient is in a final state.
    pub fn wait_final(&self, id: &str, timeout: Duration) -> Value {
        let mut last = Value::Null;
        wait_until(timeout, || {
            let (_, v) = self.get(&format!("/v1/messages/{id}"));
            let done = v["recipients"].as_array().is_some_and(|rs| {
                rs.iter().all(|r| {
                    matches!(
                        r["status"].as_str(),
                        Some("delivered" | "bounced" | "expired")
                    )
                })
            });
            last = v;
            done
        });
        last
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Verifies every DKIM signature of `eml` with dkimpy against the domain's DNS
/// records as returned by the API. Returns (algorithm, verified) pairs.
pub fn dkim_verify(domain_json: &Value, eml: &[u8], scratch: &Path) -> Vec<(String, bool)> {
    let dj = scratch.join("domain.json");
    let em = scratch.join("msg.eml");
    std::fs::write(&dj, domain_json.to_string()).unwrap();
    std::fs::write(&em, eml).unwrap();
    let out = Command::new("python3")
        .arg(support("dkim_verify.py"))
        .arg(&dj)
        .arg(&em)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "dkim_verify.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, v)| (a.to_string(), v == "True")))
        .collect()
}

/// Counts files under `dir` (recursively) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                hits.push(p);
            }
        }
    }
    hits
}

/// Decodes quoted-printable (soft breaks and `=XX`; lossy: only the URLs matter).
fn unqp(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(&String::from_utf8_lossy(h), 16).ok());
        if let (b'=', Some(b)) = (bytes[i], hex) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The tracking URLs (`/t/o/…`, `/t/c/…`) in the copy delivered to `to`.
pub fn links_for(sink: &Sink, to: &str) -> (Vec<String>, Vec<u8>) {
    let eml = sink.copy_for(to);
    let text = unqp(&String::from_utf8_lossy(&eml));
    let urls: Vec<String> = text
        .split(['"', '\'', ' ', '\r', '\n', '<', '>'])
        .filter(|s| s.contains("/t/o/") || s.contains("/t/c/"))
        .map(str::to_string)
        .collect();
    (urls, eml)
}
