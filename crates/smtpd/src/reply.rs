//! Every reply the submission server sends, in one place: code, enhanced status code
//! and text. Nothing here contains an address or anything from the message.

use crate::parser::ParseError;

/// One SMTP reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit code.
    pub code: u16,
    /// RFC 3463 enhanced status code (empty for greetings).
    pub status: &'static str,
    /// Human-readable text.
    pub text: &'static str,
}

impl Reply {
    const fn new(code: u16, status: &'static str, text: &'static str) -> Reply {
        Reply { code, status, text }
    }

    /// Appends the reply line to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let line = if self.status.is_empty() {
            format!("{} {}\r\n", self.code, self.text)
        } else {
            format!("{} {} {}\r\n", self.code, self.status, self.text)
        };
        out.extend_from_slice(line.as_bytes());
    }

    /// Whether the session ends after this reply.
    pub fn closes(&self) -> bool {
        self.code == 421
    }
}

/// The reply for a parse error.
pub fn for_parse_error(e: ParseError) -> Reply {
    match e {
        ParseError::Unknown => UNKNOWN_COMMAND,
        ParseError::Syntax(_) => SYNTAX,
        ParseError::BadAddress => BAD_ADDRESS,
    }
}

/// `250 2.0.0 OK`.
pub const OK: Reply = Reply::new(250, "2.0.0", "OK");
/// Sender accepted.
pub const SENDER_OK: Reply = Reply::new(250, "2.1.0", "Sender OK");
/// Recipient accepted.
pub const RECIPIENT_OK: Reply = Reply::new(250, "2.1.5", "Recipient OK");
/// Transaction reset.
pub const RESET: Reply = Reply::new(250, "2.0.0", "Reset");
/// `354` after DATA.
pub const START_DATA: Reply = Reply::new(354, "", "End data with <CR><LF>.<CR><LF>");
/// Bye.
pub const BYE: Reply = Reply::new(221, "2.0.0", "Bye");
/// Go ahead with the TLS handshake.
pub const START_TLS: Reply = Reply::new(220, "2.0.0", "Ready to start TLS");
/// Authenticated.
pub const AUTH_OK: Reply = Reply::new(235, "2.7.0", "Authentication successful");
/// VRFY is never answered truthfully.
pub const VRFY: Reply = Reply::new(252, "2.5.2", "Cannot verify, send some mail");
/// HELP.
pub const HELP: Reply = Reply::new(214, "2.0.0", "See https://www.rfc-editor.org/rfc/rfc5321");
/// A BDAT chunk that is not the last.
pub const CHUNK_OK: Reply = Reply::new(250, "2.0.0", "Chunk received");

/// Unknown verb.
pub const UNKNOWN_COMMAND: Reply = Reply::new(500, "5.5.1", "Unrecognized command");
/// Line over 1000 octets.
pub const LINE_TOO_LONG: Reply = Reply::new(500, "5.5.2", "Line too long");
/// Bad arguments.
pub const SYNTAX: Reply = Reply::new(501, "5.5.4", "Syntax error in parameters or arguments");
/// Bad address.
pub const BAD_ADDRESS: Reply = Reply::new(501, "5.1.3", "Bad address syntax");
/// Out of order.
pub const BAD_SEQUENCE: Reply = Reply::new(503, "5.5.1", "Bad sequence of commands");
/// MAIL or RCPT before EHLO.
pub const HELO_FIRST: Reply = Reply::new(503, "5.5.1", "Send EHLO or HELO first");
/// A second AUTH.
pub const ALREADY_AUTHENTICATED: Reply = Reply::new(503, "5.5.1", "Already authenticated");
/// STARTTLS twice, or on an implicit-TLS port.
pub const ALREADY_TLS: Reply = Reply::new(503, "5.5.1", "TLS already active");
/// AUTH before TLS.
pub const ENCRYPTION_REQUIRED: Reply = Reply::new(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism",
);
/// A mechanism we do not offer.
pub const UNKNOWN_MECHANISM: Reply =
    Reply::new(504, "5.5.4", "Unrecognized authentication mechanism");
/// Wrong credentials.
pub const AUTH_FAILED: Reply = Reply::new(535, "5.7.8", "Authentication credentials invalid");
/// Valid credentials of a cancelled tenant.
pub const TENANT_CANCELLED: Reply =
    Reply::new(535, "5.7.1", "Account cancelled: authentication refused");
/// A message from a session whose tenant was cancelled after AUTH.
pub const TENANT_CANCELLED_SUBMIT: Reply =
    Reply::new(550, "5.7.1", "Account cancelled: message not accepted");
/// The client cancelled AUTH with `*`.
pub const AUTH_CANCELLED: Reply = Reply::new(501, "5.7.0", "Authentication cancelled");
/// The key store could not be asked.
pub const AUTH_UNAVAILABLE: Reply = Reply::new(454, "4.7.0", "Temporary authentication failure");
/// MAIL/RCPT without AUTH and not from a trusted network.
pub const AUTH_REQUIRED: Reply = Reply::new(530, "5.7.0", "Authentication required");
/// STARTTLS without a certificate.
pub const TLS_UNAVAILABLE: Reply = Reply::new(454, "4.7.0", "TLS not available");
/// Declared or actual size over the limit.
pub const TOO_BIG: Reply = Reply::new(552, "5.3.4", "Message size exceeds fixed limit");
/// Recipient limit.
pub const TOO_MANY_RECIPIENTS: Reply = Reply::new(452, "4.5.3", "Too many recipients");
/// DATA without a recipient.
pub const NO_RECIPIENTS: Reply = Reply::new(503, "5.5.1", "No valid recipients");
/// Bare LF or bare CR in the message (SMTP smuggling defence).
pub const BARE_LINE_ENDING: Reply = Reply::new(
    550,
    "5.6.11",
    "Bare LF or bare CR in message; use CRLF line endings",
);
/// A NUL byte in the message (SMTP smuggling defence: a next hop that drops NULs
/// could see an end of data).
pub const NUL_IN_MESSAGE: Reply = Reply::new(554, "5.6.0", "NUL bytes are not allowed in messages");
/// From domain not registered for the tenant.
pub const FROM_NOT_REGISTERED: Reply = Reply::new(
    550,
    "5.7.1",
    "From domain is not registered for this account",
);
/// Two From headers, or one naming two mailboxes.
pub const MULTIPLE_FROM: Reply = Reply::new(
    550,
    "5.7.1",
    "Message must have exactly one From header with one mailbox",
);
/// No usable From header.
pub const NO_FROM: Reply = Reply::new(550, "5.6.0", "Message needs one valid From header");
/// Bad `X-Postwerk-Stream` or `X-Postwerk-Tags`.
pub const BAD_POSTWERK_HEADER: Reply = Reply::new(
    550,
    "5.6.0",
    "Invalid X-Postwerk-Stream or X-Postwerk-Tags header",
);
/// Store failure.
pub const STORE_FAILED: Reply = Reply::new(451, "4.3.0", "Temporary failure, try again later");
/// The inbound MX takes mail only for VERP return paths and feedback addresses.
pub const NO_SUCH_RECIPIENT: Reply = Reply::new(550, "5.1.1", "No such recipient here");
/// AUTH on the inbound MX, which has no submission.
pub const AUTH_NOT_OFFERED: Reply = Reply::new(503, "5.5.1", "AUTH not offered here");
/// A report was received and recorded (or found not to be one).
pub const REPORT_OK: Reply = Reply::new(250, "2.0.0", "Ok: report received");
/// Idle too long.
pub const IDLE_TIMEOUT: Reply = Reply::new(421, "4.4.2", "Idle timeout, closing connection");
/// Too many errors or AUTH failures in this session.
pub const TOO_MANY_ERRORS: Reply = Reply::new(421, "4.7.0", "Too many errors, closing connection");
/// Too many sessions or AUTH failures from this address.
pub const TOO_BUSY: Reply = Reply::new(
    421,
    "4.7.0",
    "Too many connections or failures from your address, try later",
);
/// Too many AUTH attempts from this address (`[rate_limits] smtp_auth_per_ip`).
pub const AUTH_RATE_LIMITED: Reply = Reply::new(
    454,
    "4.7.0",
    "Too many authentication attempts from your address, try later",
);
/// The key's or tenant's `[rate_limits]` allowance is used up.
pub const RATE_LIMITED: Reply = Reply::new(451, "4.7.1", "Rate limit exceeded, try again later");
/// Shutdown.
pub const SHUTTING_DOWN: Reply = Reply::new(421, "4.3.2", "Service shutting down");
