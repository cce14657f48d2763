//! One SMTP submission session: a state machine over any `AsyncRead + AsyncWrite`
//! stream, so tests drive it in memory like a transcript.
//!
//! One input buffer per connection; the parser and the DATA receiver are sans-IO and
//! "need more bytes" simply means: flush the replies gathered so far (PIPELINING) and
//! read again. The session ends on QUIT, EOF, a 421, or STARTTLS — then the caller
//! gets the stream back to run the handshake and a new session over TLS.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use postwerk_core::address::Address;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::backend::{AuthError, Backend, SubmitError};
use crate::data::{DataReceiver, LineEndingCheck};
use crate::limits::Limits;
use crate::message::{Identity, prepare};
use crate::parser::{self, Command};
use crate::reply::{self, Reply};

/// Longest command line, CRLF included (RFC 5321 text lines; commands are shorter).
pub const MAX_LINE: usize = 1000;
/// Command errors tolerated per session before `421`.
pub const MAX_ERRORS: u32 = 10;
/// AUTH failures tolerated per session before `421`.
pub const MAX_AUTH_FAILURES: u32 = 3;

/// What a listener is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Message submission: AUTH or a trusted network, then the accept pipeline.
    Submission,
    /// The bounce domain's MX: no AUTH; only VERP return paths and feedback
    /// addresses as recipients; messages are read as reports.
    Inbound,
}

/// Settings shared by all sessions of a listener.
pub struct SessionConfig {
    /// Submission or inbound MX.
    pub role: Role,
    /// Our host name (greeting, EHLO, Message-ID domain).
    pub hostname: String,
    /// Largest message (advertised as SIZE).
    pub max_message_bytes: usize,
    /// Most recipients per message.
    pub max_recipients: usize,
    /// Idle time before `421 4.4.2`.
    pub idle_timeout: Duration,
    /// Networks that may submit without AUTH.
    pub trusted: Vec<Trusted>,
    /// A certificate is loaded, so STARTTLS can be offered.
    pub starttls: bool,
}

/// A trusted network and who its clients submit as.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// Network address.
    pub net: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Tenant and default stream.
    pub identity: Identity,
}

impl Trusted {
    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        postwerk_core::config::Cidr {
            net: self.net,
            prefix: self.prefix,
        }
        .contains(ip)
    }
}

/// Everything a session shares with its listener.
pub struct Context<B> {
    /// Settings.
    pub config: SessionConfig,
    /// Store access.
    pub backend: B,
    /// Per-address limits.
    pub limits: Limits,
}

/// How a session ended.
pub enum Outcome<S> {
    /// The connection is finished.
    Closed,
    /// The client sent STARTTLS and got 220: run the handshake on this stream.
    StartTls(S),
}

enum Mode {
    Command,
    Data(DataReceiver),
    Bdat {
        remaining: usize,
        last: bool,
        /// Consume the chunk, then send this instead of accepting it.
        refuse: Option<Reply>,
    },
    AuthPlain,
    AuthLoginUser,
    AuthLoginPass(String),
}

struct Transaction {
    from: Option<Address>,
    rcpts: Vec<Address>,
    body: Vec<u8>,
    bdat: Option<LineEndingCheck>,
    oversized: bool,
}

/// What the DATA or BDAT receiver found wrong with a whole message.
struct Flaws {
    /// A bare LF or bare CR.
    tainted: bool,
    /// A NUL byte.
    nul: bool,
    /// Over the size limit.
    oversized: bool,
}

enum Flow {
    Continue,
    NeedMore,
    Close,
    StartTls,
}

/// One session.
pub struct Session<S, B> {
    stream: S,
    ctx: Arc<Context<B>>,
    peer: IpAddr,
    tls: bool,
    shutdown: watch::Receiver<bool>,
    buf: Vec<u8>,
    out: Vec<u8>,
    mode: Mode,
    helo: bool,
    auth: Option<Identity>,
    trusted: Option<Identity>,
    tx: Option<Transaction>,
    errors: u32,
    auth_failures: u32,
    skipping_long_line: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin, B: Backend> Session<S, B> {
    /// A session for a client at `peer`; `tls` says whether the stream is encrypted.
    pub fn new(
        stream: S,
        ctx: Arc<Context<B>>,
        peer: IpAddr,
        tls: bool,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let trusted = ctx
            .config
            .trusted
            .iter()
            .find(|t| t.contains(peer))
            .map(|t| t.identity.clone());
        Session {
            stream,
            ctx,
            peer,
            tls,
            shutdown,
            buf: Vec::with_capacity(4096),
            out: Vec::with_capacity(512),
            mode: Mode::Command,
            helo: false,
            auth: None,
            trusted,
            tx: None,
            errors: 0,
            auth_failures: 0,
            skipping_long_line: false,
        }
    }

    /// Runs the session; with `greet`, sends the 220 banner first (not after STARTTLS).
    pub async fn run(mut self, greet: bool) -> Outcome<S> {
        if greet {
            let banner = format!("220 {} ESMTP Postwerk\r\n", self.ctx.config.hostname);
            self.out.extend_from_slice(banner.as_bytes());
        }
        loop {
            match self.step().await {
                Flow::Continue => {}
                Flow::NeedMore => {
                    if self.flush().await.is_err() {
                        return Outcome::Closed;
                    }
                    match self.read().await {
                        Ok(true) => {}
                        Ok(false) => return Outcome::Closed,
                        Err(r) => {
                            r.write(&mut self.out);
                            let _ = self.flush().await;
                            return Outcome::Closed;
                        }
                    }
                }
                Flow::Close => {
                    let _ = self.flush().await;
                    let _ = self.stream.shutdown().await;
                    return Outcome::Closed;
                }
                Flow::StartTls => {
                    if self.flush().await.is_err() {
                        return Outcome::Closed;
                    }
                    return Outcome::StartTls(self.stream);
                }
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads more input. `Ok(false)` on EOF; `Err(reply)` on idle timeout or shutdown.
    async fn read(&mut self) -> Result<bool, Reply> {
        self.buf.reserve(16 * 1024);
        if *self.shutdown.borrow() {
            return Err(reply::SHUTTING_DOWN);
        }
        let idle = self.ctx.config.idle_timeout;
        tokio::select! {
            r = tokio::time::timeout(idle, self.stream.read_buf(&mut self.buf)) => match r {
                Ok(Ok(n)) => Ok(n > 0),
                Ok(Err(_)) => Ok(false),
                Err(_) => Err(reply::IDLE_TIMEOUT),
            },
            _ = self.shutdown.changed() => Err(reply::SHUTTING_DOWN),
        }
    }

    fn send(&mut self, r: Reply) -> Flow {
        r.write(&mut self.out);
        if r.closes() {
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    /// Sends a client-error reply and closes once there were too many.
    fn error(&mut self, r: Reply) -> Flow {
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            return self.send(reply::TOO_MANY_ERRORS);
        }
        self.send(r)
    }

    fn identity(&self) -> Option<&Identity> {
        self.auth.as_ref().or(self.trusted.as_ref())
    }

    /// Whether MAIL and RCPT are allowed: anyone may send to the inbound MX (its
    /// recipients are checked instead); submission needs AUTH or a trusted network.
    fn may_send(&self) -> bool {
        self.ctx.config.role == Role::Inbound || self.identity().is_some()
    }

    async fn step(&mut self) -> Flow {
        match &mut self.mode {
            Mode::Data(r) => {
                if self.buf.is_empty() {
                    return Flow::NeedMore;
                }
                let body = &mut self.tx.as_mut().expect("DATA without transaction").body;
                match r.feed(&self.buf, body) {
                    None => {
                        self.buf.clear();
                        Flow::NeedMore
                    }
                    Some(n) => {
                        self.buf.drain(..n);
                        let flaws = Flaws {
                            tainted: r.tainted,
                            nul: r.nul,
                            oversized: r.oversized,
                        };
                        self.mode = Mode::Command;
                        self.finish_message(flaws).await
                    }
                }
            }
            Mode::Bdat {
                remaining,
                last,
                refuse,
            } => {
                let n = (*remaining).min(self.buf.len());
                if n == 0 && *remaining > 0 {
                    return Flow::NeedMore;
                }
                *remaining -= n;
                let (done, last, refuse) = (*remaining == 0, *last, *refuse);
                if refuse.is_none()
                    && let Some(tx) = self.tx.as_mut()
                {
                    let chunk = &self.buf[..n];
                    tx.bdat
                        .get_or_insert_with(LineEndingCheck::default)
                        .feed(chunk);
                    if tx.body.len() + n > self.ctx.config.max_message_bytes {
                        tx.oversized = true;
                    } else {
                        tx.body.extend_from_slice(chunk);
                    }
                }
                self.buf.drain(..n);
                if !done {
                    return Flow::NeedMore;
                }
                self.mode = Mode::Command;
                if let Some(r) = refuse {
                    return self.error(r);
                }
                if !last {
                    return self.send(reply::CHUNK_OK);
                }
                let tx = self.tx.as_mut().expect("BDAT without transaction");
                let mut check = tx.bdat.take().unwrap_or_default();
                check.finish();
                let flaws = Flaws {
                    tainted: check.tainted,
                    nul: check.nul,
                    oversized: tx.oversized,
                };
                self.finish_message(flaws).await
            }
            _ => {
                let Some(lf) = self.buf.iter().position(|&b| b == b'\n') else {
                    if self.buf.len() > MAX_LINE {
                        self.skipping_long_line = true;
                        self.buf.clear();
                    }
                    return Flow::NeedMore;
                };
                let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                if std::mem::take(&mut self.skipping_long_line) || line.len() > MAX_LINE {
                    self.mode = Mode::Command;
                    return self.error(reply::LINE_TOO_LONG);
                }
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                match std::mem::replace(&mut self.mode, Mode::Command) {
                    Mode::AuthPlain => self.auth_plain(&line).await,
                    Mode::AuthLoginUser => match decode(&line) {
                        Some(user) => {
                            self.mode = Mode::AuthLoginPass(user);
                            self.out.extend_from_slice(b"334 UGFzc3dvcmQ6\r\n");
                            Flow::Continue
                        }
                        None => self.auth_cancelled(&line),
                    },
                    Mode::AuthLoginPass(user) => match decode(&line) {
                        Some(pass) => self.check_credentials(&user, &pass).await,
                        None => self.auth_cancelled(&line),
                    },
                    _ => self.command(&line).await,
                }
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> Flow {
        let cmd = match parser::parse(line) {
            Ok(c) => c,
            Err(e) => return self.error(reply::for_parse_error(e)),
        };
        match cmd {
            Command::Ehlo(_) => {
                self.helo = true;
                self.tx = None;
                self.ehlo();
                Flow::Continue
            }
            Command::Helo(_) => {
                self.helo = true;
                self.tx = None;
                let line = format!("250 {}\r\n", self.ctx.config.hostname);
                self.out.extend_from_slice(line.as_bytes());
                Flow::Continue
            }
            Command::StartTls if self.tls => self.error(reply::ALREADY_TLS),
            Command::StartTls if !self.ctx.config.starttls => self.send(reply::TLS_UNAVAILABLE),
            Command::StartTls => {
                reply::START_TLS.write(&mut self.out);
                // Anything pipelined after STARTTLS was sent in clear text: drop it
                // (CVE-2011-0411 class).
                self.buf.clear();
                Flow::StartTls
            }
            Command::Auth { .. } if self.ctx.config.role == Role::Inbound => {
                self.error(reply::AUTH_NOT_OFFERED)
            }
            Command::Auth { mechanism, initial } => {
                if !self.tls {
                    return self.error(reply::ENCRYPTION_REQUIRED);
                }
                if !self.helo || self.tx.is_some() {
                    return self.error(reply::BAD_SEQUENCE);
                }
                if self.auth.is_some() {
                    return self.error(reply::ALREADY_AUTHENTICATED);
                }
                if self.ctx.limits.auth_blocked(self.peer) {
                    return self.send(reply::TOO_BUSY);
                }
                if let Err(wait) = self.ctx.limits.auth_attempt(self.peer) {
                    tracing::info!(peer = %self.peer, wait, "smtp auth rate limited");
                    return self.send(reply::AUTH_RATE_LIMITED);
                }
                let initial = initial.map(|s| s.as_bytes().to_vec());
                if mechanism.eq_ignore_ascii_case("PLAIN") {
                    match initial {
                        Some(i) => self.auth_plain(&i).await,
                        None => {
                            self.mode = Mode::AuthPlain;
                            self.out.extend_from_slice(b"334 \r\n");
                            Flow::Continue
                        }
                    }
                } else if mechanism.eq_ignore_ascii_case("LOGIN") {
                    match initial.as_deref().map(decode) {
                        Some(Some(user)) => {
                            self.mode = Mode::AuthLoginPass(user);
                            self.out.extend_from_slice(b"334 UGFzc3dvcmQ6\r\n");
                        }
                        Some(None) => return self.error(reply::SYNTAX),
                        None => {
                            self.mode = Mode::AuthLoginUser;
                            self.out.extend_from_slice(b"334 VXNlcm5hbWU6\r\n");
                        }
                    }
                    Flow::Continue
                } else {
                    self.error(reply::UNKNOWN_MECHANISM)
                }
            }
            Command::Mail { from, size } => {
                if !self.helo {
                    return self.error(reply::HELO_FIRST);
                }
                if !self.may_send() {
                    return self.error(reply::AUTH_REQUIRED);
                }
                if self.tx.is_some() {
                    return self.error(reply::BAD_SEQUENCE);
                }
                if size.is_some_and(|s| s > self.ctx.config.max_message_bytes) {
                    return self.send(reply::TOO_BIG);
                }
                self.tx = Some(Transaction {
                    from,
                    rcpts: Vec::new(),
                    body: Vec::new(),
                    bdat: None,
                    oversized: false,
                });
                self.send(reply::SENDER_OK)
            }
            Command::Rcpt(address) => {
                if !self.may_send() {
                    return self.error(reply::AUTH_REQUIRED);
                }
                let max = self.ctx.config.max_recipients;
                let Some(tx) = self.tx.as_ref().filter(|t| t.bdat.is_none()) else {
                    return self.error(reply::BAD_SEQUENCE);
                };
                if tx.rcpts.len() >= max {
                    return self.send(reply::TOO_MANY_RECIPIENTS);
                }
                if self.ctx.config.role == Role::Inbound {
                    match self.ctx.backend.accepts_recipient(&address).await {
                        Ok(true) => {}
                        Ok(false) => return self.error(reply::NO_SUCH_RECIPIENT),
                        Err(_) => return self.send(reply::STORE_FAILED),
                    }
                }
                let tx = self.tx.as_mut().expect("checked above");
                tx.rcpts.push(address);
                self.send(reply::RECIPIENT_OK)
            }
            Command::Data => match &self.tx {
                None => self.error(reply::BAD_SEQUENCE),
                Some(t) if t.bdat.is_some() => self.error(reply::BAD_SEQUENCE),
                Some(t) if t.rcpts.is_empty() => self.error(reply::NO_RECIPIENTS),
                Some(_) => {
                    self.mode = Mode::Data(DataReceiver::new(self.ctx.config.max_message_bytes));
                    self.send(reply::START_DATA)
                }
            },
            Command::Bdat { size, last } => {
                let refuse = match &self.tx {
                    None => Some(reply::BAD_SEQUENCE),
                    Some(t) if t.rcpts.is_empty() => Some(reply::NO_RECIPIENTS),
                    Some(_) => None,
                };
                if refuse.is_none()
                    && let Some(tx) = self.tx.as_mut()
                {
                    tx.bdat.get_or_insert_with(LineEndingCheck::default);
                }
                self.mode = Mode::Bdat {
                    remaining: size,
                    last,
                    refuse,
                };
                Flow::Continue
            }
            Command::Rset => {
                self.tx = None;
                self.send(reply::RESET)
            }
            Command::Noop => self.send(reply::OK),
            Command::Vrfy => self.send(reply::VRFY),
            Command::Help => self.send(reply::HELP),
            Command::Quit => {
                self.send(reply::BYE);
                Flow::Close
            }
        }
    }

    fn ehlo(&mut self) {
        let c = &self.ctx.config;
        let mut lines = vec![
            c.hostname.clone(),
            "PIPELINING".into(),
            format!("SIZE {}", c.max_message_bytes),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
        ];
        if !self.tls && c.starttls {
            lines.push("STARTTLS".into());
        }
        if self.tls && c.role == Role::Submission {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let n = lines.len();
        for (i, l) in lines.into_iter().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            self.out
                .extend_from_slice(format!("250{sep}{l}\r\n").as_bytes());
        }
    }

    fn auth_cancelled(&mut self, line: &[u8]) -> Flow {
        if line == b"*" {
            self.send(reply::AUTH_CANCELLED)
        } else {
            self.error(reply::SYNTAX)
        }
    }

    async fn auth_plain(&mut self, response: &[u8]) -> Flow {
        if response == b"*" {
            return self.send(reply::AUTH_CANCELLED);
        }
        let decoded = if response == b"=" {
            Some(Vec::new())
        } else {
            B64.decode(response).ok()
        };
        let Some(decoded) = decoded else {
            return self.error(reply::SYNTAX);
        };
        let mut parts = decoded.split(|&b| b == 0);
        let (Some(_authzid), Some(user), Some(pass), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.auth_result(Err(AuthError::Invalid));
        };
        let (user, pass) = (
            String::from_utf8_lossy(user).into_owned(),
            String::from_utf8_lossy(pass).into_owned(),
        );
        self.check_credentials(&user, &pass).await
    }

    async fn check_credentials(&mut self, user: &str, pass: &str) -> Flow {
        let result = self.ctx.backend.authenticate(user, pass, self.peer).await;
        self.auth_result(result)
    }

    fn auth_result(&mut self, result: Result<Identity, AuthError>) -> Flow {
        match result {
            Ok(identity) => {
                self.auth = Some(identity);
                self.send(reply::AUTH_OK)
            }
            Err(AuthError::Unavailable) => self.send(reply::AUTH_UNAVAILABLE),
            Err(AuthError::TenantCancelled) => {
                tracing::info!(peer = %self.peer, "smtp auth refused: tenant cancelled");
                self.send(reply::TENANT_CANCELLED)
            }
            Err(AuthError::Invalid) => {
                self.auth_failures += 1;
                self.ctx.limits.auth_failed(self.peer);
                tracing::info!(peer = %self.peer, "smtp auth failed");
                if self.auth_failures >= MAX_AUTH_FAILURES {
                    self.send(reply::AUTH_FAILED);
                    return self.send(reply::TOO_MANY_ERRORS);
                }
                self.send(reply::AUTH_FAILED)
            }
        }
    }

    /// The end of DATA or of the last BDAT chunk: refuse, or commit and answer 250.
    async fn finish_message(&mut self, flaws: Flaws) -> Flow {
        let Some(tx) = self.tx.take() else {
            return self.error(reply::BAD_SEQUENCE);
        };
        if flaws.tainted {
            tracing::info!(peer = %self.peer, "smtp message refused: bare LF or CR");
            return self.send(reply::BARE_LINE_ENDING);
        }
        if flaws.nul {
            tracing::info!(peer = %self.peer, "smtp message refused: NUL byte");
            return self.send(reply::NUL_IN_MESSAGE);
        }
        if flaws.oversized || tx.oversized {
            return self.send(reply::TOO_BIG);
        }
        if self.ctx.config.role == Role::Inbound {
            return match self
                .ctx
                .backend
                .receive_report(self.peer, tx.rcpts, tx.body)
                .await
            {
                Ok(()) => self.send(reply::REPORT_OK),
                Err(_) => self.send(reply::STORE_FAILED),
            };
        }
        let Some(identity) = self.identity().cloned() else {
            return self.error(reply::AUTH_REQUIRED);
        };
        let submission = match prepare(
            tx.body,
            &identity,
            tx.from,
            tx.rcpts,
            &self.ctx.config.hostname,
        ) {
            Ok(s) => s,
            Err(r) => return self.send(r),
        };
        let id = submission.id.clone();
        match self.ctx.backend.submit(&identity, submission).await {
            Ok(()) => {
                tracing::info!(message = %id, peer = %self.peer, "smtp message accepted");
                let line = format!("250 2.0.0 Ok: queued as {id}\r\n");
                self.out.extend_from_slice(line.as_bytes());
                Flow::Continue
            }
            Err(SubmitError::DomainNotRegistered) => self.send(reply::FROM_NOT_REGISTERED),
            Err(SubmitError::UnknownStream) => self.send(reply::BAD_POSTWERK_HEADER),
            Err(SubmitError::Unavailable) => self.send(reply::STORE_FAILED),
            Err(SubmitError::RateLimited) => self.send(reply::RATE_LIMITED),
            Err(SubmitError::TenantCancelled) => self.send(reply::TENANT_CANCELLED_SUBMIT),
        }
    }
}

fn decode(line: &[u8]) -> Option<String> {
    if line == b"*" {
        return None;
    }
    B64.decode(line)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
