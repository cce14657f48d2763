//! The SMTP client connection.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
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
        let required = matches!(cfg.tls, TlsMode::Required | TlsMode::Verified);
        if !client.caps.starttls {
            return if required {
                Err(SmtpError::Tls("STARTTLS not offered".into()))
            } else {
                Ok(client)
            };
        }
        let reply = client.command(SmtpStage::StartTls, b"STARTTLS\r\n").await?;
        if reply.code != 220 {
            return if required {
                Err(SmtpError::Rejected(SmtpStage::StartTls, reply))
            } else {
                Ok(client) // opportunistic: carry on in plaintext
            };
        }
        let verify = match cfg.tls {
            TlsMode::Verified => Some(match &cfg.trust {
                Some(trust) => trust.clone(),
                None => postwerk_dns::trust::verifying_config(&[]).map_err(SmtpError::Tls)?,
            }),
            _ => None,
        };
        client.start_tls(tls_server_name, verify).await?;
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

    /// TLS on the connection. With `verify`, the certificate must be valid for
    /// `server_name` under those roots; without, any certificate is taken.
    async fn start_tls(
        &mut self,
        server_name: &str,
        verify: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<(), SmtpError> {
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
        let verified = verify.is_some();
        let name = match ServerName::try_from(server_name.to_owned()) {
            Ok(name @ ServerName::DnsName(_)) => name,
            _ if verified => {
                self.usable = false;
                return Err(SmtpError::Tls(format!(
                    "{server_name} is not a host name a certificate can be verified for"
                )));
            }
            _ => ServerName::IpAddress(self.peer.ip().into()),
        };
        let connector = TlsConnector::from(match verify {
            Some(config) => config,
            None => tls_client_config()?,
        });
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
            verified,
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
mod tests;
