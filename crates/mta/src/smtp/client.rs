//! The SMTP client connection.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::reply::{RawReply, ReadError, ReplyReader};
use super::{
    Capabilities, ClientConfig, SmtpError, SmtpReply, SmtpStage, TlsInfo, TlsMode,
    TransactionResult, tls_client_config,
};

/// Write buffer size: commands and message content are flushed in chunks of about this size.
const WRITE_CHUNK: usize = 64 * 1024;

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Transitional state while upgrading to TLS.
    Closed,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Self::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Self::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
            Self::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Self::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// One SMTP connection, able to carry several transactions.
pub struct SmtpClient {
    stream: Stream,
    reader: ReplyReader,
    wbuf: Vec<u8>,
    caps: Capabilities,
    tls: Option<TlsInfo>,
    peer: SocketAddr,
    usable: bool,
    command_timeout: Duration,
    data_timeout: Duration,
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .field("usable", &self.usable)
            .finish_non_exhaustive()
    }
}

/// Rejects values that could inject commands or break the `<...>` syntax.
fn valid_path(s: &str) -> bool {
    s.len() <= 998
        && !s
            .bytes()
            .any(|b| b < 0x20 || b == 0x7f || b == b'<' || b == b'>')
}

impl SmtpClient {
    /// Connects (binding `source_ip` if set), reads the 220 greeting, EHLO (HELO fallback on
    /// 5xx), STARTTLS when offered and `tls != Disabled` (`Required` and not offered ->
    /// [`SmtpError::Tls`]), EHLO again after TLS. `tls_server_name` is sent as SNI when it is
    /// a DNS name.
    pub async fn connect(
        addr: SocketAddr,
        tls_server_name: &str,
        cfg: &ClientConfig,
    ) -> Result<Self, SmtpError> {
        if cfg.ehlo_name.is_empty() || !cfg.ehlo_name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SmtpError::Protocol(
                SmtpStage::Ehlo,
                "invalid EHLO name".into(),
            ));
        }
        let tcp = timeout(cfg.connect_timeout, open_tcp(addr, cfg))
            .await
            .map_err(|_| SmtpError::Timeout(SmtpStage::Connect))?
            .map_err(SmtpError::Connect)?;
        let mut client = Self {
            stream: Stream::Plain(tcp),
            reader: ReplyReader::new(),
            wbuf: Vec::with_capacity(4096),
            caps: Capabilities::default(),
            tls: None,
            peer: addr,
            usable: true,
            command_timeout: cfg.command_timeout,
            data_timeout: cfg.data_timeout,
        };
        let greeting = client.read_reply(SmtpStage::Greeting).await?.to_reply();
        if greeting.code != 220 {
            return Err(SmtpError::Rejected(SmtpStage::Greeting, greeting));
        }
        client.ehlo(&cfg.ehlo_name).await?;
        if cfg.tls == TlsMode::Disabled {
            return Ok(client);
        }
        if !client.caps.starttls {
            return match cfg.tls {
                TlsMode::Required => Err(SmtpError::Tls("STARTTLS not offered".into())),
                _ => Ok(client),
            };
        }
        let reply = client.command(SmtpStage::StartTls, b"STARTTLS\r\n").await?;
        if reply.code != 220 {
            return match cfg.tls {
                TlsMode::Required => Err(SmtpError::Rejected(SmtpStage::StartTls, reply)),
                _ => Ok(client), // opportunistic: carry on in plaintext
            };
        }
        client.start_tls(tls_server_name).await?;
        client.ehlo(&cfg.ehlo_name).await?;
        Ok(client)
    }

    /// EHLO, falling back to HELO when EHLO is rejected with 5xx.
    async fn ehlo(&mut self, name: &str) -> Result<(), SmtpError> {
        let line = format!("EHLO {name}\r\n");
        self.write_command(SmtpStage::Ehlo, line.as_bytes()).await?;
        let raw = self.read_reply(SmtpStage::Ehlo).await?;
        if raw.code == 250 {
            self.caps = Capabilities::from_ehlo_lines(raw.lines.get(1..).unwrap_or_default());
            return Ok(());
        }
        let reply = raw.to_reply();
        if !reply.is_permanent() {
            return Err(SmtpError::Rejected(SmtpStage::Ehlo, reply));
        }
        let line = format!("HELO {name}\r\n");
        let reply = self.command(SmtpStage::Ehlo, line.as_bytes()).await?;
        if reply.code != 250 {
            return Err(SmtpError::Rejected(SmtpStage::Ehlo, reply));
        }
        self.caps = Capabilities::default();
        Ok(())
    }

    async fn start_tls(&mut self, server_name: &str) -> Result<(), SmtpError> {
        // Anything received before the handshake would be plaintext injection (CVE-2011-0411).
        if self.reader.has_buffered() {
            self.usable = false;
            return Err(SmtpError::Protocol(
                SmtpStage::StartTls,
                "data received after STARTTLS reply".into(),
            ));
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            self.usable = false;
            return Err(SmtpError::Protocol(
                SmtpStage::StartTls,
                "already using TLS".into(),
            ));
        };
        let name = ServerName::try_from(server_name.to_owned())
            .unwrap_or_else(|_| ServerName::IpAddress(self.peer.ip().into()));
        let connector = TlsConnector::from(tls_client_config()?);
        let tls = match timeout(self.command_timeout, connector.connect(name, tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                self.usable = false;
                return Err(SmtpError::Tls(e.to_string()));
            }
            Err(_) => {
                self.usable = false;
                return Err(SmtpError::Timeout(SmtpStage::StartTls));
            }
        };
        let conn = tls.get_ref().1;
        self.tls = Some(TlsInfo {
            version: conn
                .protocol_version()
                .and_then(|v| v.as_str())
                .map_or_else(|| "unknown".into(), |v| v.replace('_', ".")),
            cipher: conn
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str())
                .unwrap_or("unknown")
                .to_owned(),
        });
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// One transaction. `message` is CRLF-normalised RFC 5322 bytes; the client dot-stuffs
    /// it (a bare LF is sent as CRLF) and terminates it with CRLF.CRLF.
    ///
    /// With PIPELINING, MAIL, all RCPTs and DATA go out in one write (RFC 2920). MAIL gets
    /// `SIZE=` when SIZE is advertised, `BODY=8BITMIME` when the message has 8-bit bytes and
    /// 8BITMIME is advertised, and `SMTPUTF8` when `smtputf8` is true; if the server does not
    /// offer SMTPUTF8, nothing is sent and a locally made `553 5.6.7` is returned as
    /// `Err(Rejected(MailFrom, _))` (permanent, as Postfix does).
    ///
    /// MAIL rejected -> `Err(Rejected(MailFrom, _))`; all recipients rejected -> `Ok` with
    /// `data_reply: None`; DATA not answered 354 -> `Ok` with that reply as `data_reply`;
    /// otherwise `data_reply` is the final reply after the message. A 421 anywhere ->
    /// `Err(Rejected(stage, 421))`. After a failed transaction the client sends RSET; after
    /// an I/O error or timeout the connection is dead ([`Self::is_usable`] is false).
    pub async fn send(
        &mut self,
        mail_from: &str,
        rcpts: &[&str],
        message: &[u8],
        smtputf8: bool,
    ) -> Result<TransactionResult, SmtpError> {
        if !self.usable {
            return Err(SmtpError::Protocol(
                SmtpStage::MailFrom,
                "connection not usable".into(),
            ));
        }
        if !valid_path(mail_from) {
            return Err(SmtpError::Protocol(
                SmtpStage::MailFrom,
                "invalid sender".into(),
            ));
        }
        if rcpts.is_empty() || !rcpts.iter().all(|r| !r.is_empty() && valid_path(r)) {
            return Err(SmtpError::Protocol(
                SmtpStage::RcptTo,
                "invalid recipient list".into(),
            ));
        }
        if smtputf8 && !self.caps.smtputf8 {
            // Nothing is sent: like Postfix, fail permanently (RFC 6531 §3.2, 5.6.7).
            let reply = SmtpReply::from_lines(
                553,
                &["5.6.7 SMTPUTF8 is required, but was not offered by the server".to_owned()],
            );
            return Err(SmtpError::Rejected(SmtpStage::MailFrom, reply));
        }
        self.wbuf.clear();
        self.wbuf.extend_from_slice(b"MAIL FROM:<");
        self.wbuf.extend_from_slice(mail_from.as_bytes());
        self.wbuf.push(b'>');
        if self.caps.size.is_some() {
            self.wbuf
                .extend_from_slice(format!(" SIZE={}", message.len()).as_bytes());
        }
        if self.caps.eight_bit_mime && !message.is_ascii() {
            self.wbuf.extend_from_slice(b" BODY=8BITMIME");
        }
        if smtputf8 {
            self.wbuf.extend_from_slice(b" SMTPUTF8");
        }
        self.wbuf.extend_from_slice(b"\r\n");

        let pipelining = self.caps.pipelining;
        if pipelining {
            for rcpt in rcpts {
                push_rcpt(&mut self.wbuf, rcpt);
            }
            self.wbuf.extend_from_slice(b"DATA\r\n");
        }
        self.flush_wbuf(SmtpStage::MailFrom, self.command_timeout)
            .await?;

        let mail_reply = self.reply(SmtpStage::MailFrom).await?;
        let mut rcpt_replies = Vec::with_capacity(rcpts.len());
        for rcpt in rcpts {
            if !pipelining && mail_reply.is_positive() {
                push_rcpt(&mut self.wbuf, rcpt);
                self.flush_wbuf(SmtpStage::RcptTo, self.command_timeout)
                    .await?;
            }
            if pipelining || mail_reply.is_positive() {
                rcpt_replies.push(self.reply(SmtpStage::RcptTo).await?);
            }
        }
        let accepted = rcpt_replies.iter().any(SmtpReply::is_positive);
        let data_reply = if pipelining {
            Some(self.reply(SmtpStage::Data).await?)
        } else if accepted {
            Some(self.command(SmtpStage::Data, b"DATA\r\n").await?)
        } else {
            None
        };
        let go_ahead = data_reply.as_ref().is_some_and(|r| r.code == 354);

        if !mail_reply.is_positive() || !accepted {
            if go_ahead {
                // Broken pipelining server: end the data phase with an empty message.
                self.wbuf.extend_from_slice(b".\r\n");
                self.flush_wbuf(SmtpStage::Message, self.data_timeout)
                    .await?;
                self.read_reply(SmtpStage::Message).await?;
            }
            self.reset().await;
            if !mail_reply.is_positive() {
                return Err(SmtpError::Rejected(SmtpStage::MailFrom, mail_reply));
            }
            return Ok(TransactionResult {
                mail_reply,
                rcpt_replies,
                data_reply: None,
            });
        }
        if !go_ahead {
            self.reset().await;
            return Ok(TransactionResult {
                mail_reply,
                rcpt_replies,
                data_reply,
            });
        }
        self.write_message(message).await?;
        let final_reply = self
            .read_reply_within(SmtpStage::Message, self.data_timeout)
            .await?;
        let final_reply = self.check_421(SmtpStage::Message, final_reply.to_reply())?;
        if !final_reply.is_positive() {
            self.reset().await;
        }
        Ok(TransactionResult {
            mail_reply,
            rcpt_replies,
            data_reply: Some(final_reply),
        })
    }

    /// Sends QUIT, waits briefly for the reply and closes the connection.
    pub async fn quit(mut self) {
        if self.usable && self.command(SmtpStage::Quit, b"QUIT\r\n").await.is_ok() {
            let _ = timeout(self.command_timeout, self.stream.shutdown()).await;
        }
    }

    /// Negotiated TLS parameters, if STARTTLS succeeded.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// False after an I/O error, a timeout, a 421 or a failed RSET: open a new connection.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    /// Extensions from the last EHLO (after STARTTLS, the post-TLS EHLO).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// RSET after a failed transaction; any failure makes the connection unusable.
    async fn reset(&mut self) {
        if !self.usable {
            return;
        }
        match self.command(SmtpStage::MailFrom, b"RSET\r\n").await {
            Ok(r) if r.code == 250 => {}
            _ => self.usable = false,
        }
    }

    /// Writes `line` and reads one reply.
    async fn command(&mut self, stage: SmtpStage, line: &[u8]) -> Result<SmtpReply, SmtpError> {
        self.write_command(stage, line).await?;
        self.reply(stage).await
    }

    async fn write_command(&mut self, stage: SmtpStage, line: &[u8]) -> Result<(), SmtpError> {
        self.wbuf.clear();
        self.wbuf.extend_from_slice(line);
        self.flush_wbuf(stage, self.command_timeout).await
    }

    /// Reads a reply; a 421 (service closing) becomes an error and ends the connection.
    async fn reply(&mut self, stage: SmtpStage) -> Result<SmtpReply, SmtpError> {
        let reply = self.read_reply(stage).await?.to_reply();
        self.check_421(stage, reply)
    }

    fn check_421(&mut self, stage: SmtpStage, reply: SmtpReply) -> Result<SmtpReply, SmtpError> {
        if reply.code == 421 {
            self.usable = false;
            return Err(SmtpError::Rejected(stage, reply));
        }
        Ok(reply)
    }

    async fn read_reply(&mut self, stage: SmtpStage) -> Result<RawReply, SmtpError> {
        self.read_reply_within(stage, self.command_timeout).await
    }

    async fn read_reply_within(
        &mut self,
        stage: SmtpStage,
        limit: Duration,
    ) -> Result<RawReply, SmtpError> {
        let result = match timeout(limit, self.reader.read_reply(&mut self.stream)).await {
            Ok(Ok(raw)) => return Ok(raw),
            Ok(Err(ReadError::Io(e))) => SmtpError::Io(stage, e),
            Ok(Err(ReadError::Protocol(p))) => SmtpError::Protocol(stage, p.into()),
            Err(_) => SmtpError::Timeout(stage),
        };
        self.usable = false;
        Err(result)
    }

    /// Writes and clears the write buffer.
    async fn flush_wbuf(&mut self, stage: SmtpStage, limit: Duration) -> Result<(), SmtpError> {
        let write = async {
            self.stream.write_all(&self.wbuf).await?;
            self.stream.flush().await
        };
        let result = match timeout(limit, write).await {
            Ok(Ok(())) => {
                self.wbuf.clear();
                return Ok(());
            }
            Ok(Err(e)) => SmtpError::Io(stage, e),
            Err(_) => SmtpError::Timeout(stage),
        };
        self.usable = false;
        self.wbuf.clear();
        Err(result)
    }

    /// Dot-stuffs `message` into the write buffer, flushing every [`WRITE_CHUNK`] bytes, and
    /// terminates it with `CRLF.CRLF`.
    async fn write_message(&mut self, message: &[u8]) -> Result<(), SmtpError> {
        self.wbuf.clear();
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                self.wbuf.push(b'.');
            }
            match line {
                [.., b'\r', b'\n'] => self.wbuf.extend_from_slice(line),
                [rest @ .., b'\n'] => {
                    self.wbuf.extend_from_slice(rest);
                    self.wbuf.extend_from_slice(b"\r\n");
                }
                _ => self.wbuf.extend_from_slice(line),
            }
            if self.wbuf.len() >= WRITE_CHUNK {
                self.flush_wbuf(SmtpStage::Message, self.data_timeout)
                    .await?;
            }
        }
        if !message.is_empty() && !message.ends_with(b"\n") {
            self.wbuf.extend_from_slice(b"\r\n");
        }
        self.wbuf.extend_from_slice(b".\r\n");
        self.flush_wbuf(SmtpStage::Message, self.data_timeout).await
    }
}

fn push_rcpt(buf: &mut Vec<u8>, rcpt: &str) {
    buf.extend_from_slice(b"RCPT TO:<");
    buf.extend_from_slice(rcpt.as_bytes());
    buf.extend_from_slice(b">\r\n");
}

async fn open_tcp(addr: SocketAddr, cfg: &ClientConfig) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = cfg.source_ip {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;

    /// A scripted SMTP server: fixed replies, records every command line and message.
    #[derive(Clone)]
    struct Script {
        greeting: &'static str,
        caps: &'static [&'static str],
        reject_ehlo: bool,
        mail: &'static str,
        rcpt: &'static [&'static str],
        data: &'static str,
        final_reply: &'static str,
        close_in_data: bool,
        tls: Option<Arc<rustls::ServerConfig>>,
    }

    const OK: Script = Script {
        greeting: "220 mx.test ESMTP",
        caps: &[
            "PIPELINING",
            "SIZE 10000000",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
        ],
        reject_ehlo: false,
        mail: "250 2.1.0 Ok",
        rcpt: &["250 2.1.5 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok"],
        data: "354 End data with <CR><LF>.<CR><LF>",
        final_reply: "250 2.0.0 Ok: queued as 1234",
        close_in_data: false,
        tls: None,
    };

    #[derive(Default, Debug)]
    struct Seen {
        lines: Vec<String>,
        messages: Vec<Vec<u8>>,
        rcpt_index: usize,
    }

    async fn start(script: Script) -> (SocketAddr, JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut seen = Seen::default();
            if let Some(tcp) = serve(tcp, &script, &mut seen, false).await {
                let acceptor = tokio_rustls::TlsAcceptor::from(script.tls.clone().unwrap());
                let tls = acceptor.accept(tcp).await.unwrap();
                serve(tls, &script, &mut seen, true).await;
            }
            seen
        });
        (addr, handle)
    }

    /// Serves one session; returns the plain stream when the client asked for STARTTLS.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        stream: S,
        script: &Script,
        seen: &mut Seen,
        in_tls: bool,
    ) -> Option<S> {
        let mut io = BufReader::new(stream);
        if !in_tls {
            if script.greeting.is_empty() {
                let _ = io.read_to_end(&mut Vec::new()).await; // silent until the client leaves
                return None;
            }
            send(&mut io, script.greeting).await;
            if !script.greeting.starts_with("220") {
                return None;
            }
        }
        loop {
            let mut line = String::new();
            if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return None;
            }
            let line = line.trim_end().to_owned();
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            seen.lines.push(line);
            let reply = match verb.as_str() {
                "EHLO" if script.reject_ehlo => "502 5.5.2 Error: command not recognized".into(),
                "EHLO" => {
                    let mut r = String::from("250-mx.test");
                    let starttls = script.tls.is_some() && !in_tls;
                    for cap in script.caps.iter().chain(starttls.then_some(&"STARTTLS")) {
                        r.push_str("\r\n250-");
                        r.push_str(cap);
                    }
                    r.push_str("\r\n250 DSN");
                    r
                }
                "HELO" => "250 mx.test".into(),
                "MAIL" => script.mail.into(),
                "RCPT" => {
                    seen.rcpt_index += 1;
                    script.rcpt[(seen.rcpt_index - 1) % script.rcpt.len()].into()
                }
                "RSET" => "250 2.0.0 Ok".into(),
                "STAR" => {
                    send(&mut io, "220 2.0.0 Ready to start TLS").await;
                    return Some(io.into_inner());
                }
                "QUIT" => {
                    send(&mut io, "221 2.0.0 Bye").await;
                    return None;
                }
                "DATA" => {
                    send(&mut io, script.data).await;
                    if !script.data.starts_with("354") {
                        continue;
                    }
                    let mut message = Vec::new();
                    loop {
                        let start = message.len();
                        if io.read_until(b'\n', &mut message).await.unwrap_or(0) == 0 {
                            return None;
                        }
                        if script.close_in_data {
                            return None; // drop the connection mid-message
                        }
                        if &message[start..] == b".\r\n" {
                            break;
                        }
                    }
                    seen.messages.push(message);
                    script.final_reply.into()
                }
                _ => "500 5.5.2 unknown command".into(),
            };
            send(&mut io, &reply).await;
        }
    }

    async fn send<S: AsyncRead + AsyncWrite + Unpin>(io: &mut BufReader<S>, reply: &str) {
        let _ = io
            .get_mut()
            .write_all(format!("{reply}\r\n").as_bytes())
            .await;
    }

    fn config(tls: TlsMode) -> ClientConfig {
        ClientConfig {
            ehlo_name: "client.test".into(),
            source_ip: Some("127.0.0.1".parse().unwrap()),
            tls,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            data_timeout: Duration::from_secs(5),
        }
    }

    fn summary(result: &Result<TransactionResult, SmtpError>) -> String {
        match result {
            Ok(t) => {
                let rcpts: Vec<String> =
                    t.rcpt_replies.iter().map(|r| r.code.to_string()).collect();
                let data = t
                    .data_reply
                    .as_ref()
                    .map_or("none".into(), |r| r.code.to_string());
                format!("ok {} [{}] {data}", t.mail_reply.code, rcpts.join(","))
            }
            Err(e) => format!("err {e} permanent={}", e.is_permanent()),
        }
    }

    const RCPTS: &[&str] = &["a@example.net", "b@example.net", "c@example.net"];

    #[tokio::test]
    async fn transactions_table() {
        const NO_PIPE: &[&str] = &["SIZE 1000", "ENHANCEDSTATUSCODES"];
        const MIXED: &[&str] = &[
            "250 2.1.5 Ok",
            "550 5.1.1 <b@example.net> unknown",
            "250 Ok",
        ];
        const ALL_BAD: &[&str] = &["550 5.1.1 unknown", "450 4.2.0 greylisted"];
        const NO_RCPT: &str = "554 5.5.1 Error: no valid recipients";
        let pipelined = [
            "MAIL FROM:<s@example.com> SIZE=21",
            "RCPT TO:<a@example.net>",
        ];
        let cases: Vec<(&str, Script, usize, &str, Vec<&str>)> = vec![
            (
                "one rcpt, pipelined",
                OK,
                1,
                "ok 250 [250] 250",
                vec![pipelined[0], pipelined[1], "DATA"],
            ),
            (
                "one rejected rcpt, pipelined",
                Script { rcpt: MIXED, ..OK },
                3,
                "ok 250 [250,550,250] 250",
                vec![
                    pipelined[0],
                    pipelined[1],
                    "RCPT TO:<b@example.net>",
                    "RCPT TO:<c@example.net>",
                    "DATA",
                ],
            ),
            (
                "one rejected rcpt, no pipelining",
                Script {
                    rcpt: MIXED,
                    caps: NO_PIPE,
                    ..OK
                },
                3,
                "ok 250 [250,550,250] 250",
                vec![
                    pipelined[0],
                    pipelined[1],
                    "RCPT TO:<b@example.net>",
                    "RCPT TO:<c@example.net>",
                    "DATA",
                ],
            ),
            (
                "all rcpts rejected, pipelined",
                Script {
                    rcpt: ALL_BAD,
                    data: NO_RCPT,
                    ..OK
                },
                2,
                "ok 250 [550,450] none",
                vec![
                    pipelined[0],
                    pipelined[1],
                    "RCPT TO:<b@example.net>",
                    "DATA",
                    "RSET",
                ],
            ),
            (
                "all rcpts rejected, no pipelining",
                Script {
                    rcpt: ALL_BAD,
                    caps: NO_PIPE,
                    ..OK
                },
                2,
                "ok 250 [550,450] none",
                vec![
                    pipelined[0],
                    pipelined[1],
                    "RCPT TO:<b@example.net>",
                    "RSET",
                ],
            ),
            (
                "mail rejected, pipelined",
                Script {
                    mail: "550 5.7.1 sender blocked",
                    rcpt: &["503 5.5.1 need MAIL"],
                    data: NO_RCPT,
                    ..OK
                },
                1,
                "err rejected at mail from: 550 5.7.1 permanent=true",
                vec![pipelined[0], pipelined[1], "DATA", "RSET"],
            ),
            (
                "mail deferred, no pipelining",
                Script {
                    mail: "451 4.3.0 try later",
                    caps: NO_PIPE,
                    ..OK
                },
                1,
                "err rejected at mail from: 451 4.3.0 permanent=false",
                vec![pipelined[0], "RSET"],
            ),
            (
                "final reply rejects",
                Script {
                    final_reply: "552 5.3.4 message too big",
                    ..OK
                },
                1,
                "ok 250 [250] 552",
                vec![pipelined[0], pipelined[1], "DATA", "RSET"],
            ),
            (
                "DATA command rejected",
                Script {
                    data: "451 4.3.0 no data now",
                    caps: NO_PIPE,
                    ..OK
                },
                1,
                "ok 250 [250] 451",
                vec![pipelined[0], pipelined[1], "DATA", "RSET"],
            ),
            (
                "421 to RCPT closes",
                Script {
                    rcpt: &["421 4.7.0 too many errors"],
                    ..OK
                },
                1,
                "err rejected at rcpt to: 421 4.7.0 permanent=false",
                vec![pipelined[0], pipelined[1], "DATA"],
            ),
        ];
        for (name, script, n, expected, transcript) in cases {
            let (addr, server) = start(script).await;
            let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Opportunistic))
                .await
                .unwrap();
            let result = client
                .send(
                    "s@example.com",
                    &RCPTS[..n],
                    b"Subject: x\r\n\r\nHello\r\n",
                    false,
                )
                .await;
            assert_eq!(summary(&result), expected, "{name}");
            let usable = client.is_usable();
            assert_eq!(usable, !expected.contains("421"), "{name}");
            client.quit().await;
            let seen = server.await.unwrap();
            let mut want: Vec<&str> = vec!["EHLO client.test"];
            want.extend(transcript);
            if usable {
                want.push("QUIT");
            }
            assert_eq!(seen.lines, want, "{name}");
        }
    }

    #[tokio::test]
    async fn pipelined_message_is_dot_stuffed_and_connection_reused() {
        let (addr, server) = start(OK).await;
        let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Opportunistic))
            .await
            .unwrap();
        assert!(client.capabilities().pipelining && client.tls_info().is_none());
        assert_eq!(client.peer_addr(), addr);
        let message =
            "Subject: caf\u{e9}\r\n\r\n.leading dot\r\n..two\r\n.\r\nbare\nlf\r\nlast line";
        let result = client
            .send("s@example.com", &RCPTS[..2], message.as_bytes(), false)
            .await;
        assert_eq!(summary(&result), "ok 250 [250,250] 250");
        let result = client
            .send(
                "t@example.com",
                &RCPTS[2..],
                b"Subject: 2\r\n\r\nx\r\n",
                false,
            )
            .await;
        assert_eq!(summary(&result), "ok 250 [250] 250");
        assert!(client.is_usable());
        client.quit().await;
        let seen = server.await.unwrap();
        let size = format!(
            "MAIL FROM:<s@example.com> SIZE={} BODY=8BITMIME",
            message.len()
        );
        let expected_lines = [
            "EHLO client.test",
            &size,
            "RCPT TO:<a@example.net>",
            "RCPT TO:<b@example.net>",
            "DATA",
            "MAIL FROM:<t@example.com> SIZE=17",
            "RCPT TO:<c@example.net>",
            "DATA",
            "QUIT",
        ];
        assert_eq!(seen.lines, expected_lines);
        let wire = "Subject: caf\u{e9}\r\n\r\n..leading dot\r\n...two\r\n..\r\nbare\r\nlf\r\nlast line\r\n.\r\n";
        assert_eq!(String::from_utf8_lossy(&seen.messages[0]), wire);
        assert_eq!(seen.messages[1], b"Subject: 2\r\n\r\nx\r\n.\r\n");
    }

    #[tokio::test]
    async fn large_message_is_sent_in_chunks() {
        let (addr, server) = start(OK).await;
        let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Disabled))
            .await
            .unwrap();
        let mut message = b"Subject: big\r\n\r\n".to_vec();
        while message.len() < 3 * WRITE_CHUNK {
            message.extend_from_slice(b".dotted line of text that is 40 bytes\r\n");
        }
        let result = client
            .send("s@example.com", &RCPTS[..1], &message, false)
            .await;
        assert_eq!(summary(&result), "ok 250 [250] 250");
        client.quit().await;
        let seen = server.await.unwrap();
        let lines = message
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"."))
            .count();
        assert_eq!(seen.messages[0].len(), message.len() + lines + 3);
    }

    #[tokio::test]
    async fn smtputf8_parameter() {
        let script = Script {
            caps: &["PIPELINING", "SMTPUTF8"],
            ..OK
        };
        let (addr, server) = start(script).await;
        let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Disabled))
            .await
            .unwrap();
        let result = client
            .send(
                "s@example.com",
                &["j\u{fc}rgen@example.net"],
                b"x\r\n",
                true,
            )
            .await;
        assert_eq!(summary(&result), "ok 250 [250] 250");
        client.quit().await;
        assert_eq!(
            server.await.unwrap().lines[1],
            "MAIL FROM:<s@example.com> SMTPUTF8"
        );

        let (addr, server) = start(OK).await;
        let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Disabled))
            .await
            .unwrap();
        let result = client
            .send(
                "s@example.com",
                &["j\u{fc}rgen@example.net"],
                b"x\r\n",
                true,
            )
            .await;
        let err = result.unwrap_err();
        assert_eq!(err.to_string(), "rejected at mail from: 553 5.6.7");
        assert!(err.is_permanent());
        let bad = client
            .send("s@example.com", &["a@b>\r\nRSET"], b"x\r\n", false)
            .await;
        assert!(matches!(
            bad,
            Err(SmtpError::Protocol(SmtpStage::RcptTo, _))
        ));
        assert!(client.is_usable());
        client.quit().await;
        assert_eq!(server.await.unwrap().lines, ["EHLO client.test", "QUIT"]);
    }

    #[tokio::test]
    async fn connect_failures_table() {
        let cases: &[(&str, Script, TlsMode, &str)] = &[
            (
                "421 greeting",
                Script {
                    greeting: "421 4.3.2 Service not available",
                    ..OK
                },
                TlsMode::Opportunistic,
                "rejected at greeting: 421 4.3.2 permanent=false",
            ),
            (
                "554 greeting",
                Script {
                    greeting: "554 5.7.1 go away",
                    ..OK
                },
                TlsMode::Opportunistic,
                "rejected at greeting: 554 5.7.1 permanent=true",
            ),
            (
                "silent server",
                Script { greeting: "", ..OK },
                TlsMode::Opportunistic,
                "timeout at greeting permanent=false",
            ),
            (
                "tls required, not offered",
                OK,
                TlsMode::Required,
                "tls error: STARTTLS not offered permanent=false",
            ),
        ];
        for (name, script, tls, expected) in cases {
            let (addr, server) = start(script.clone()).await;
            let mut cfg = config(*tls);
            cfg.command_timeout = Duration::from_millis(300);
            let err = SmtpClient::connect(addr, "mx.test", &cfg)
                .await
                .unwrap_err();
            assert_eq!(
                format!("{err} permanent={}", err.is_permanent()),
                *expected,
                "{name}"
            );
            drop(server);
        }
    }

    #[tokio::test]
    async fn helo_fallback() {
        let (addr, server) = start(Script {
            reject_ehlo: true,
            ..OK
        })
        .await;
        let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Required)).await;
        // Required TLS cannot be offered over HELO.
        assert!(matches!(client, Err(SmtpError::Tls(_))));
        drop(server);
        let (addr, server) = start(Script {
            reject_ehlo: true,
            ..OK
        })
        .await;
        client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Opportunistic)).await;
        let mut client = client.unwrap();
        assert_eq!(client.capabilities(), &Capabilities::default());
        let result = client
            .send("s@example.com", &RCPTS[..1], b"x\r\n", false)
            .await;
        assert_eq!(summary(&result), "ok 250 [250] 250");
        client.quit().await;
        let lines = server.await.unwrap().lines;
        assert_eq!(
            lines[..3],
            [
                "EHLO client.test",
                "HELO client.test",
                "MAIL FROM:<s@example.com>"
            ]
        );
    }

    #[tokio::test]
    async fn server_closing_mid_data_is_a_transient_io_error() {
        let (addr, server) = start(Script {
            close_in_data: true,
            ..OK
        })
        .await;
        let mut client = SmtpClient::connect(addr, "mx.test", &config(TlsMode::Disabled))
            .await
            .unwrap();
        let message = [
            &b"Subject: x\r\n\r\n"[..],
            &b"0123456789abcdef\r\n".repeat(100_000),
        ]
        .concat();
        let err = client
            .send("s@example.com", &RCPTS[..1], &message, false)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SmtpError::Io(SmtpStage::Message, _)),
            "{err:?}"
        );
        assert!(!err.is_permanent() && err.reply().is_none());
        assert!(!client.is_usable());
        let again = client
            .send("s@example.com", &RCPTS[..1], b"x\r\n", false)
            .await;
        assert!(matches!(again, Err(SmtpError::Protocol(..))));
        client.quit().await;
        server.await.unwrap();
    }

    /// The engine shares signers and the resolver and spawns connection futures.
    #[test]
    fn public_types_and_futures_are_send() {
        fn send<T: Send>(_: &T) {}
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::dkim::DkimSigner>();
        send_sync::<crate::resolve::MxResolver>();
        send_sync::<SmtpError>();
        #[allow(dead_code)]
        fn futures(c: &mut SmtpClient, r: &crate::resolve::MxResolver, cfg: &ClientConfig) {
            send(&SmtpClient::connect(
                "127.0.0.1:25".parse().unwrap(),
                "",
                cfg,
            ));
            send(&c.send("", &[], b"", false));
            send(&r.resolve(""));
        }
    }

    fn tls_server_config() -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let cert = rcgen::generate_simple_self_signed(vec!["mx.test".to_owned()]).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        Arc::new(config)
    }

    #[tokio::test]
    async fn starttls_with_self_signed_certificate() {
        let tls = Some(tls_server_config());
        for mode in [TlsMode::Opportunistic, TlsMode::Required, TlsMode::Disabled] {
            let (addr, server) = start(Script {
                tls: tls.clone(),
                ..OK
            })
            .await;
            let mut client = SmtpClient::connect(addr, "mx.test", &config(mode))
                .await
                .unwrap();
            let result = client
                .send(
                    "s@example.com",
                    &RCPTS[..1],
                    b"Subject: tls\r\n\r\nhi\r\n",
                    false,
                )
                .await;
            assert_eq!(summary(&result), "ok 250 [250] 250");
            let info = client.tls_info().cloned();
            client.quit().await;
            let seen = server.await.unwrap();
            if mode == TlsMode::Disabled {
                assert!(info.is_none());
                assert_eq!(
                    seen.lines[..2],
                    ["EHLO client.test", "MAIL FROM:<s@example.com> SIZE=20"]
                );
                continue;
            }
            let info = info.unwrap();
            assert_eq!(info.version, "TLSv1.3");
            assert!(
                info.cipher.starts_with("TLS13_AES_") || info.cipher.starts_with("TLS13_CHACHA"),
                "{info:?}"
            );
            assert_eq!(
                seen.lines[..4],
                [
                    "EHLO client.test",
                    "STARTTLS",
                    "EHLO client.test",
                    "MAIL FROM:<s@example.com> SIZE=20"
                ]
            );
            assert_eq!(seen.messages, [b"Subject: tls\r\n\r\nhi\r\n.\r\n"]);
        }
    }
}
