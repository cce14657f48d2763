//! Transcript tests: an in-memory stream, a fake backend, one reply per check.

use std::sync::Mutex;

use postwerk_mta::accept::Submission;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

#[derive(Default)]
struct Fake {
    accepted: Mutex<Vec<(String, Submission)>>,
    reports: Mutex<Vec<(Vec<String>, Vec<u8>)>>,
}

impl Backend for Fake {
    async fn authenticate(
        &self,
        user: &str,
        password: &str,
        _peer: std::net::IpAddr,
    ) -> Result<Identity, AuthError> {
        match (user, password) {
            ("apikey" | "key_1", "good") => Ok(identity("ten_auth", "transactional")),
            (_, "down") => Err(AuthError::Unavailable),
            ("apikey", "cancelled") => Err(AuthError::TenantCancelled),
            _ => Err(AuthError::Invalid),
        }
    }

    async fn submit(&self, identity: &Identity, s: Submission) -> Result<(), SubmitError> {
        let tenant_id = identity.tenant_id.as_str();
        if s.from_domain != "example.com" {
            return Err(SubmitError::DomainNotRegistered);
        }
        if !postwerk_core::model::DEFAULT_STREAMS.contains(&s.stream.as_str()) {
            return Err(SubmitError::UnknownStream);
        }
        if s.meta.subject.as_deref() == Some("store fails") {
            return Err(SubmitError::Unavailable);
        }
        self.accepted.lock().unwrap().push((tenant_id.into(), s));
        Ok(())
    }

    async fn accepts_recipient(&self, rcpt: &Address) -> Result<bool, SubmitError> {
        match rcpt.local() {
            "down" => Err(SubmitError::Unavailable),
            local => Ok(local.starts_with("b+") || local == "fbl"),
        }
    }

    async fn receive_report(
        &self,
        _peer: std::net::IpAddr,
        rcpts: Vec<Address>,
        message: Vec<u8>,
    ) -> Result<(), SubmitError> {
        let rcpts = rcpts.iter().map(|r| r.to_string()).collect();
        self.reports.lock().unwrap().push((rcpts, message));
        Ok(())
    }
}

fn identity(tenant: &str, stream: &str) -> Identity {
    Identity {
        tenant_id: tenant.into(),
        stream: stream.into(),
        principal: "key:key_1".into(),
        rate_limit: None,
    }
}

struct T {
    io: DuplexStream,
    ctx: Arc<Context<Fake>>,
    task: tokio::task::JoinHandle<Outcome<DuplexStream>>,
    _stop: watch::Sender<bool>,
}

fn config() -> SessionConfig {
    SessionConfig {
        role: Role::Submission,
        hostname: "mx.postwerk.test".into(),
        max_message_bytes: 1000,
        max_recipients: 3,
        idle_timeout: Duration::from_secs(5),
        trusted: vec![Trusted {
            net: "10.0.0.0".parse().unwrap(),
            prefix: 8,
            identity: identity("ten_trusted", "broadcast"),
        }],
        starttls: true,
    }
}

impl T {
    async fn start_with(config: SessionConfig, peer: &str, tls: bool) -> T {
        let (client, server) = tokio::io::duplex(1 << 16);
        let ctx = Arc::new(Context {
            config,
            backend: Fake::default(),
            limits: Limits::default(),
        });
        let (stop, rx) = watch::channel(false);
        let session = Session::new(server, ctx.clone(), peer.parse().unwrap(), tls, rx);
        let task = tokio::spawn(session.run(true));
        let mut t = T {
            io: client,
            ctx,
            task,
            _stop: stop,
        };
        t.expect("220 mx.postwerk.test").await;
        t
    }

    async fn start(tls: bool) -> T {
        Self::start_with(config(), "192.0.2.7", tls).await
    }

    /// A TLS session after EHLO and AUTH.
    async fn authed() -> T {
        let mut t = Self::start(true).await;
        t.cmd("EHLO c.test", "250-").await;
        t.cmd("AUTH PLAIN AGFwaWtleQBnb29k", "235 2.7.0").await;
        t
    }

    /// Reads one complete (possibly multi-line) reply.
    async fn reply(&mut self) -> String {
        let mut text = String::new();
        loop {
            let mut line = Vec::new();
            loop {
                let mut b = [0u8; 1];
                if self.io.read(&mut b).await.unwrap() == 0 {
                    return text;
                }
                line.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            let line = String::from_utf8(line).unwrap();
            let last = line.as_bytes().get(3) != Some(&b'-');
            text.push_str(&line);
            if last {
                return text;
            }
        }
    }

    async fn expect(&mut self, prefix: &str) -> String {
        let r = self.reply().await;
        assert!(r.starts_with(prefix), "expected {prefix:?}, got {r:?}");
        r
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    async fn cmd(&mut self, line: &str, prefix: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.expect(prefix).await
    }

    fn accepted(&self) -> Vec<(String, Submission)> {
        std::mem::take(&mut *self.ctx.backend.accepted.lock().unwrap())
    }
}

const MSG: &str = "From: App <app@example.com>\r\nSubject: hi\r\n\r\nhello\r\n";

#[tokio::test]
async fn ehlo_advertises_starttls_before_and_auth_after_tls() {
    let mut t = T::start(false).await;
    let r = t.cmd("EHLO c.test", "250-mx.postwerk.test").await;
    for ext in [
        "PIPELINING",
        "SIZE 1000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "STARTTLS",
    ] {
        assert!(r.contains(ext), "{ext} missing: {r}");
    }
    assert!(!r.contains("AUTH"), "{r}");
    t.cmd("AUTH PLAIN AGFwaWtleQBnb29k", "538 5.7.11").await;
    t.cmd("HELO c.test", "250 mx.postwerk.test").await;
    let mut t = T::start(true).await;
    let r = t.cmd("EHLO c.test", "250-").await;
    assert!(
        r.contains("AUTH PLAIN LOGIN") && !r.contains("STARTTLS"),
        "{r}"
    );
    t.cmd("STARTTLS", "503 5.5.1").await;
}

#[tokio::test]
async fn starttls_hands_back_the_stream_and_drops_pipelined_input() {
    let mut t = T::start(false).await;
    t.cmd("EHLO c.test", "250-").await;
    t.send(b"STARTTLS\r\nMAIL FROM:<x@example.com>\r\n").await;
    t.expect("220 2.0.0").await;
    assert!(matches!(t.task.await.unwrap(), Outcome::StartTls(_)));
}

#[tokio::test]
async fn relay_without_auth_is_refused() {
    let mut t = T::start(false).await;
    t.cmd("MAIL FROM:<app@example.com>", "503 5.5.1").await;
    t.cmd("EHLO c.test", "250-").await;
    t.cmd("MAIL FROM:<app@example.com>", "530 5.7.0").await;
    t.cmd("RCPT TO:<x@example.test>", "530 5.7.0").await;
    t.cmd("DATA", "503 5.5.1").await;
}

#[tokio::test]
async fn auth_plain_login_and_failures() {
    let mut t = T::start(true).await;
    t.cmd("EHLO c.test", "250-").await;
    t.cmd("AUTH PLAIN", "334 ").await;
    t.cmd("AGFwaWtleQBiYWQ=", "535 5.7.8").await; // apikey / bad
    t.cmd("AUTH CRAM-MD5", "504 5.5.4").await;
    t.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6").await;
    t.cmd("a2V5XzE=", "334 UGFzc3dvcmQ6").await; // key_1
    t.cmd("Z29vZA==", "235 2.7.0").await; // good
    t.cmd("AUTH PLAIN AGFwaWtleQBnb29k", "503 5.5.1").await;
    let mut t = T::start(true).await;
    t.cmd("EHLO c.test", "250-").await;
    t.cmd("AUTH LOGIN YXBpa2V5", "334 UGFzc3dvcmQ6").await;
    t.cmd("*", "501 5.7.0").await;
    t.cmd("AUTH PLAIN AGFwaWtleQBkb3du", "454 4.7.0").await; // down
    // apikey / cancelled: refused, but not counted as a failed guess
    t.cmd(
        "AUTH PLAIN AGFwaWtleQBjYW5jZWxsZWQ=",
        "535 5.7.1 Account cancelled",
    )
    .await;
    t.cmd("AUTH PLAIN AGFwaWtleQBiYWQ=", "535 5.7.8").await;
    t.cmd("AUTH PLAIN AGFwaWtleQBiYWQ=", "535 5.7.8").await;
    t.send(b"AUTH PLAIN AGFwaWtleQBiYWQ=\r\n").await;
    t.expect("535 5.7.8").await;
    t.expect("421 4.7.0").await;
    assert_eq!(t.reply().await, "", "closed after too many failures");
}

#[tokio::test]
async fn a_message_is_queued_after_commit_with_headers_removed() {
    let mut t = T::authed().await;
    t.cmd("MAIL FROM:<app@example.com> SIZE=100", "250 2.1.0")
        .await;
    t.cmd("RCPT TO:<a@example.test>", "250 2.1.5").await;
    t.cmd("DATA", "354").await;
    t.send(b"From: app@example.com\r\nX-Postwerk-Stream: broadcast\r\nX-Postwerk-Tags: a, b\r\n\r\n..dot\r\n.\r\n").await;
    let r = t.expect("250 2.0.0 Ok: queued as msg_").await;
    let accepted = t.accepted();
    let (tenant, s) = &accepted[0];
    assert_eq!(
        (tenant.as_str(), s.stream.as_str()),
        ("ten_auth", "broadcast")
    );
    assert!(r.contains(&s.id));
    let text = String::from_utf8_lossy(&s.content);
    assert!(
        !text.contains("X-Postwerk") && text.ends_with("\r\n\r\n.dot\r\n"),
        "{text}"
    );
    assert_eq!(s.meta.tags, ["a", "b"]);
    assert_eq!(s.recipients[0].1.to_string(), "a@example.test");
    t.cmd("QUIT", "221 2.0.0").await;
}

#[tokio::test]
async fn pipelined_transaction_gets_all_replies() {
    let mut t = T::authed().await;
    t.send(format!("MAIL FROM:<app@example.com>\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n{MSG}.\r\nNOOP\r\n").as_bytes()).await;
    for p in [
        "250 2.1.0",
        "250 2.1.5",
        "250 2.1.5",
        "354",
        "250 2.0.0 Ok: queued",
        "250 2.0.0 OK",
    ] {
        t.expect(p).await;
    }
    assert_eq!(t.accepted()[0].1.recipients.len(), 2);
}

#[tokio::test]
async fn trusted_network_submits_without_auth() {
    let mut t = T::start_with(config(), "10.1.2.3", false).await;
    t.cmd("EHLO c.test", "250-").await;
    t.cmd("MAIL FROM:<app@example.com>", "250 2.1.0").await;
    t.cmd("RCPT TO:<a@example.test>", "250").await;
    t.cmd("DATA", "354").await;
    t.cmd(&format!("{MSG}."), "250 2.0.0").await;
    let (tenant, s) = t.accepted().remove(0);
    assert_eq!(
        (tenant.as_str(), s.stream.as_str()),
        ("ten_trusted", "broadcast")
    );
    let mapped = T::start_with(config(), "::ffff:10.9.9.9", false).await;
    assert!(mapped.ctx.config.trusted[0].contains("::ffff:10.9.9.9".parse().unwrap()));
}

#[tokio::test]
async fn bare_lf_smuggling_is_one_refused_message() {
    let mut t = T::authed().await;
    t.cmd("MAIL FROM:<app@example.com>", "250").await;
    t.cmd("RCPT TO:<a@example.test>", "250").await;
    t.cmd("DATA", "354").await;
    t.send(b"From: app@example.com\r\n\r\nbody\n.\nMAIL FROM:<app@example.com>\r\nRCPT TO:<s@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n").await;
    t.expect("550 5.6.11").await;
    t.cmd("NOOP", "250 2.0.0 OK").await;
    assert!(t.accepted().is_empty());
    // Bare CR likewise.
    t.cmd("MAIL FROM:<app@example.com>", "250").await;
    t.cmd("RCPT TO:<a@example.test>", "250").await;
    t.cmd("DATA", "354").await;
    t.send(b"From: app@example.com\r\n\r\nbody\r.\r\r\n.\r\n")
        .await;
    t.expect("550 5.6.11").await;
    assert!(t.accepted().is_empty());
}

#[tokio::test]
async fn bdat_chunks_and_bare_lf_in_bdat() {
    let mut t = T::authed().await;
    t.cmd("MAIL FROM:<app@example.com>", "250").await;
    t.cmd("RCPT TO:<a@example.test>", "250").await;
    let (a, b) = MSG.split_at(20);
    t.send(format!("BDAT {}\r\n{a}", a.len()).as_bytes()).await;
    t.expect("250 2.0.0 Chunk").await;
    t.send(format!("BDAT {} LAST\r\n{b}", b.len()).as_bytes())
        .await;
    t.expect("250 2.0.0 Ok: queued").await;
    assert_eq!(t.accepted().len(), 1);
    t.cmd("MAIL FROM:<app@example.com>", "250").await;
    t.cmd("RCPT TO:<a@example.test>", "250").await;
    t.cmd("DATA", "354").await;
    t.cmd(&format!("{MSG}."), "250 2.0.0").await;
    t.accepted();
    let bad = "From: app@example.com\r\n\r\nx\n.\nQUIT\r\n";
    t.cmd("MAIL FROM:<app@example.com>", "250").await;
    t.cmd("RCPT TO:<a@example.test>", "250").await;
    t.send(format!("BDAT {} LAST\r\n{bad}", bad.len()).as_bytes())
        .await;
    t.expect("550 5.6.11").await;
    // BDAT without a transaction: the chunk is consumed, not run as commands.
    t.send(b"BDAT 6\r\nQUIT\r\n").await;
    t.expect("503 5.5.1").await;
    t.cmd("NOOP", "250").await;
    assert!(t.accepted().is_empty());
}

#[tokio::test]
async fn limits_and_errors() {
    let mut t = T::authed().await;
    t.cmd("MAIL FROM:<app@example.com> SIZE=5000", "552 5.3.4")
        .await;
    t.cmd("MAIL FROM:<app@example.com>", "250").await;
    t.cmd("MAIL FROM:<app@example.com>", "503 5.5.1").await;
    for i in 0..3 {
        t.cmd(&format!("RCPT TO:<r{i}@example.test>"), "250").await;
    }
    t.cmd("RCPT TO:<r4@example.test>", "452 4.5.3").await;
    t.cmd("RCPT TO:<not an address>", "501 5.1.3").await;
    t.cmd("MAIL FROM<x>", "501 5.5.4").await;
    t.cmd("FROB", "500 5.5.1").await;
    t.cmd(&format!("NOOP {}", "x".repeat(1200)), "500 5.5.2")
        .await;
    t.cmd("DATA", "354").await;
    t.cmd(
        &format!("From: app@example.com\r\n\r\n{}\r\n.", "y".repeat(1200)),
        "552 5.3.4",
    )
    .await;
    t.cmd("RSET", "250 2.0.0").await;
    t.cmd("RCPT TO:<a@example.test>", "503 5.5.1").await;
    t.cmd("DATA", "503 5.5.1").await;
    t.cmd("VRFY x", "252").await;
}

#[tokio::test]
async fn message_checks_after_data() {
    let mut t = T::authed().await;
    let cases = [
        ("From: a@other.example\r\n\r\nx\r\n", "550 5.7.1"),
        ("Subject: no from\r\n\r\nx\r\n", "550 5.6.0"),
        (
            "From: a@example.com\r\nX-Postwerk-Stream: nope\r\n\r\nx\r\n",
            "550 5.6.0",
        ),
        (
            "From: a@example.com\r\nX-Postwerk-Stream: Not a name\r\n\r\nx\r\n",
            "550 5.6.0",
        ),
        (
            "From: a@example.com\r\nSubject: store fails\r\n\r\nx\r\n",
            "451 4.3.0",
        ),
    ];
    for (msg, want) in cases {
        t.cmd("MAIL FROM:<app@example.com>", "250").await;
        t.cmd("RCPT TO:<a@example.test>", "250").await;
        t.cmd("DATA", "354").await;
        t.cmd(&format!("{msg}."), want).await;
    }
    assert!(t.accepted().is_empty());
}

#[tokio::test]
async fn too_many_errors_and_idle_timeout_close() {
    let mut t = T::start(false).await;
    for _ in 0..MAX_ERRORS {
        t.cmd("FROB", "500 5.5.1").await;
    }
    t.cmd("FROB", "421 4.7.0").await;
    assert_eq!(t.reply().await, "");
    let mut c = config();
    c.idle_timeout = Duration::from_millis(100);
    let mut t = T::start_with(c, "192.0.2.1", false).await;
    t.expect("421 4.4.2").await;
    assert_eq!(t.reply().await, "");
}

#[tokio::test]
async fn shutdown_closes_idle_sessions() {
    let mut t = T::start(false).await;
    t._stop.send(true).unwrap();
    t.expect("421 4.3.2").await;
}

fn inbound_config() -> SessionConfig {
    SessionConfig {
        role: Role::Inbound,
        trusted: Vec::new(),
        ..config()
    }
}

#[tokio::test]
async fn inbound_takes_reports_only_for_its_own_addresses() {
    let mut t = T::start_with(inbound_config(), "198.51.100.9", false).await;
    let ehlo = t.cmd("EHLO mx.remote.test", "250-").await;
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    t.cmd("AUTH PLAIN AGFwaWtleQBnb29k", "503 5.5.1").await;
    // Bounces come with the null sender; no AUTH is needed.
    t.cmd("MAIL FROM:<>", "250 2.1.0").await;
    t.cmd("RCPT TO:<someone@example.com>", "550 5.1.1").await;
    t.cmd("RCPT TO:<down@bounces.example.com>", "451 4.3.0")
        .await;
    t.cmd("RCPT TO:<b+rcpt_1-0a@bounces.example.com>", "250 2.1.5")
        .await;
    t.cmd("RCPT TO:<fbl@bounces.example.com>", "250 2.1.5")
        .await;
    t.cmd("DATA", "354").await;
    t.cmd("Subject: Undelivered Mail\r\n\r\nreport\r\n.", "250 2.0.0")
        .await;
    let reports = t.ctx.backend.reports.lock().unwrap().clone();
    assert_eq!(
        reports,
        [(
            vec![
                "b+rcpt_1-0a@bounces.example.com".to_string(),
                "fbl@bounces.example.com".to_string()
            ],
            b"Subject: Undelivered Mail\r\n\r\nreport\r\n".to_vec()
        )]
    );
    assert!(t.ctx.backend.accepted.lock().unwrap().is_empty());
}
