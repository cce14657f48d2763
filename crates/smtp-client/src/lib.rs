//! Outbound SMTP client (RFC 5321) with PIPELINING (RFC 2920) and opportunistic STARTTLS.
//!
//! Errors never carry server text or addresses in their `Display`; the full reply (whose
//! text may quote addresses) is available through [`SmtpError::reply`].
//!
//! This crate knows nothing of Postwerk's store or services: the delivery engine
//! (postwerk-mta) hands it an address, a configuration and a message.
//!
//! - `client`: one connection ([`SmtpClient`]): greeting, EHLO, STARTTLS, pipelined
//!   transactions, QUIT.
//! - `reply`: replies with their enhanced status codes ([`SmtpReply`], [`EnhancedCode`])
//!   and the reader that parses them off the wire.
//! - this file: configuration ([`ClientConfig`], [`TlsMode`]), errors and their stages,
//!   transaction results, server capabilities, the TLS client configuration.

mod client;
mod reply;

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

pub use client::SmtpClient;
pub use reply::{EnhancedCode, SmtpReply};

/// The protocol step at which an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmtpStage {
    /// TCP connect.
    Connect,
    /// Waiting for the 220 greeting.
    Greeting,
    /// EHLO/HELO.
    Ehlo,
    /// STARTTLS command and TLS handshake.
    StartTls,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO.
    RcptTo,
    /// DATA command (until 354).
    Data,
    /// Message content and the final reply.
    Message,
    /// QUIT.
    Quit,
}

impl fmt::Display for SmtpStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Greeting => "greeting",
            Self::Ehlo => "ehlo",
            Self::StartTls => "starttls",
            Self::MailFrom => "mail from",
            Self::RcptTo => "rcpt to",
            Self::Data => "data",
            Self::Message => "message",
            Self::Quit => "quit",
        })
    }
}

/// SMTP client errors. `Display` contains codes and stages only, never server text.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The TCP connection could not be established.
    #[error("connect failed: {0}")]
    Connect(std::io::Error),
    /// No answer within the configured timeout.
    #[error("timeout at {0}")]
    Timeout(SmtpStage),
    /// I/O error (including the server closing the connection); the connection is dead.
    #[error("i/o error at {0}: {1}")]
    Io(SmtpStage, std::io::Error),
    /// The server violated the protocol, or the request could not be expressed.
    #[error("protocol error at {0}: {1}")]
    Protocol(SmtpStage, String),
    /// TLS could not be established (or was required and not offered).
    #[error("tls error: {0}")]
    Tls(String),
    /// The server answered with a negative reply.
    #[error("rejected at {0}: {status}", status = .1.status())]
    Rejected(SmtpStage, SmtpReply),
}

impl SmtpError {
    /// True only for a 5xx rejection: retrying the same transaction will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Rejected(_, r) if r.is_permanent())
    }

    /// The server's reply, for `Rejected`.
    pub fn reply(&self) -> Option<&SmtpReply> {
        match self {
            Self::Rejected(_, r) => Some(r),
            _ => None,
        }
    }
}

/// STARTTLS policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Never use STARTTLS.
    Disabled,
    /// Use STARTTLS when offered, without certificate verification (Postfix `may`).
    #[default]
    Opportunistic,
    /// Fail unless STARTTLS succeeds; certificates are still not verified (Postfix `encrypt`).
    Required,
    /// Fail unless STARTTLS succeeds with a certificate valid for the MX host name,
    /// verified against [`ClientConfig::trust`] (MTA-STS `enforce`, Postfix `secure`).
    Verified,
}

/// Per-connection client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Name sent in EHLO/HELO (a FQDN, or an address literal such as `[192.0.2.1]`).
    pub ehlo_name: String,
    /// Local address to bind before connecting.
    pub source_ip: Option<IpAddr>,
    /// STARTTLS policy.
    pub tls: TlsMode,
    /// Trust anchors for [`TlsMode::Verified`] (`None`: Mozilla's roots).
    pub trust: Option<Arc<rustls::ClientConfig>>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Timeout for the greeting, each command reply and the TLS handshake.
    pub command_timeout: Duration,
    /// Timeout for each write of message content and for the final reply after `.`.
    pub data_timeout: Duration,
}

/// Negotiated TLS parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version, e.g. `TLSv1.3`.
    pub version: String,
    /// Cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The certificate was verified for the host name ([`TlsMode::Verified`]).
    pub verified: bool,
}

/// Result of one mail transaction on a connection.
#[derive(Debug, Clone)]
pub struct TransactionResult {
    /// Reply to MAIL FROM (always positive: a rejection is returned as an error).
    pub mail_reply: SmtpReply,
    /// One reply per recipient, in the order given.
    pub rcpt_replies: Vec<SmtpReply>,
    /// The reply deciding the fate of the accepted recipients: the final reply after the
    /// message, or the DATA command's reply if it was not 354. `None` if no recipient was
    /// accepted.
    pub data_reply: Option<SmtpReply>,
}

impl TransactionResult {
    /// The reply that decides recipient `index`: its RCPT reply if negative, else `data_reply`.
    pub fn recipient_reply(&self, index: usize) -> Option<&SmtpReply> {
        let rcpt = self.rcpt_replies.get(index)?;
        if rcpt.is_positive() {
            self.data_reply.as_ref()
        } else {
            Some(rcpt)
        }
    }
}

/// ESMTP extensions advertised in the EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// SIZE (RFC 1870): `Some(0)` if advertised without a limit.
    pub size: Option<u64>,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// CHUNKING (RFC 3030).
    pub chunking: bool,
}

impl Capabilities {
    /// Parses the EHLO reply lines after the first (the greeting line).
    pub fn from_ehlo_lines<S: AsRef<str>>(lines: &[S]) -> Self {
        let mut caps = Self::default();
        for line in lines {
            let mut words = line.as_ref().split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "STARTTLS" => caps.starttls = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "CHUNKING" => caps.chunking = true,
                _ => {}
            }
        }
        caps
    }
}

/// The shared rustls client configuration used for STARTTLS: ring provider, TLS 1.2 and 1.3,
/// and a verifier that accepts any certificate but checks handshake signatures. Built once.
pub fn tls_client_config() -> Result<Arc<rustls::ClientConfig>, SmtpError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| {
                    Arc::new(
                        b.dangerous()
                            .with_custom_certificate_verifier(verifier)
                            .with_no_client_auth(),
                    )
                })
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(SmtpError::Tls)
}

/// Accepts any server certificate (opportunistic TLS) but verifies that the handshake was
/// signed by the presented certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_ehlo() {
        let cases: &[(&[&str], Capabilities)] = &[
            (&[], Capabilities::default()),
            (
                &[
                    "PIPELINING",
                    "SIZE 10240000",
                    "8BITMIME",
                    "STARTTLS",
                    "ENHANCEDSTATUSCODES",
                ],
                Capabilities {
                    pipelining: true,
                    size: Some(10_240_000),
                    eight_bit_mime: true,
                    starttls: true,
                    enhanced_status_codes: true,
                    ..Capabilities::default()
                },
            ),
            (
                &[
                    "size",
                    "smtputf8",
                    "Chunking",
                    "AUTH PLAIN LOGIN",
                    "X-UNKNOWN 1",
                ],
                Capabilities {
                    size: Some(0),
                    smtputf8: true,
                    chunking: true,
                    ..Capabilities::default()
                },
            ),
        ];
        for (lines, expected) in cases {
            assert_eq!(&Capabilities::from_ehlo_lines(lines), expected, "{lines:?}");
        }
    }

    #[test]
    fn errors_are_classified_and_display_no_text() {
        let reply = |code| SmtpReply {
            code,
            enhanced: EnhancedCode::parse_prefix("5.1.1").map(|(e, _)| e),
            text: "<bob@example.net> unknown".into(),
        };
        let perm = SmtpError::Rejected(SmtpStage::RcptTo, reply(550));
        assert!(perm.is_permanent());
        assert_eq!(perm.to_string(), "rejected at rcpt to: 550 5.1.1");
        assert_eq!(perm.reply().map(|r| r.code), Some(550));
        assert!(!SmtpError::Rejected(SmtpStage::MailFrom, reply(451)).is_permanent());
        let io = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert!(!SmtpError::Io(SmtpStage::Message, io).is_permanent());
        assert!(!SmtpError::Timeout(SmtpStage::Data).is_permanent());
        assert!(SmtpError::Timeout(SmtpStage::Data).reply().is_none());
    }

    #[test]
    fn tls_config_is_built_once() {
        let a = tls_client_config().unwrap();
        let b = tls_client_config().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
