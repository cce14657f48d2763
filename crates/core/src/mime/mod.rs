//! Rendering an API message into RFC 5322 / MIME bytes (RFC 5322, 2045–2049, 2047, 2183,
//! 2231, 2387, 2392).
//!
//! The whole message is written into one pre-sized `Vec<u8>` with CRLF line endings.
//!
//! Structure:
//!
//! - text only → `text/plain`; html only → `text/html`; both → `multipart/alternative`
//!   (text first);
//! - attachments with a `content_id`, when there is an html body, are inline parts of a
//!   `multipart/related` wrapped around the html (or the alternative);
//! - every other attachment goes into a `multipart/mixed` around everything else.
//!
//! Encodings: text bodies are `7bit` when they are ASCII without NUL and every line fits in
//! 998 octets, `quoted-printable` otherwise (always `charset=utf-8`); attachments are
//! `base64`. Header text that is not plain printable ASCII becomes RFC 2047 encoded-words;
//! non-ASCII or long file names use RFC 2231.
//!
//! Boundaries are `=_pw` + a kind letter + `_` + 24 random alphanumerics. They can never
//! collide with content: base64 has no `_`, quoted-printable always encodes `=`, part
//! headers never start a line with `-`, and a body that would otherwise go out as `7bit`
//! is sent quoted-printable if any of its lines starts with `--=_pw`. The kind letter
//! differs per nesting level, so no boundary is a prefix of another.
//!
//! Layout: `multipart` plans the message and writes its structure, `headers` encodes and
//! folds header fields, `body` holds the transfer encodings and `attachment` validates and
//! writes attachment parts.

mod attachment;
mod body;
mod fuzz;
mod headers;
mod multipart;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use crate::address::Mailbox;
use attachment::MAX_CONTENT_ID;
use headers::is_atext;
use multipart::Plan;

#[doc(hidden)]
pub use fuzz::render_fields;

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name shown to the recipient; any Unicode without control characters, path
    /// separators or bidirectional overrides, at most 255 characters.
    pub filename: String,
    /// MIME type such as `application/pdf`, optionally with parameters
    /// (`text/csv; charset=utf-8`). `multipart/*` and `message/*` are refused.
    pub content_type: String,
    /// The raw bytes.
    pub content: Vec<u8>,
    /// Content-ID for inline parts referenced from the html as `cid:…` (angle brackets
    /// optional). Without an html body the part is sent as an ordinary attachment that
    /// still carries its Content-ID.
    pub content_id: Option<String>,
}

/// Stands for a per-recipient token in a rendered body (tracking links): 64
/// URL-safe, quoted-printable-literal characters that the encoder never splits, so
/// delivery can replace them byte for byte with the recipient's token of the same
/// length.
pub const RECIPIENT_PLACEHOLDER: &str =
    "PWTRK_recipient_token_placeholder_000000000000000000000000000000";

/// Everything needed to render one message, borrowed from the API request.
#[derive(Debug, Clone, Copy)]
pub struct MessageParts<'a> {
    /// The author (`From`).
    pub from: &'a Mailbox,
    /// `To` recipients; the header is omitted when empty.
    pub to: &'a [Mailbox],
    /// `Cc` recipients; the header is omitted when empty.
    pub cc: &'a [Mailbox],
    /// Optional `Reply-To`.
    pub reply_to: Option<&'a Mailbox>,
    /// The subject, any Unicode.
    pub subject: &'a str,
    /// Plain-text body.
    pub text: Option<&'a str>,
    /// HTML body.
    pub html: Option<&'a str>,
    /// Extra headers, already validated with [`validate_header`] (checked again here).
    pub headers: &'a [(String, String)],
    /// Attachments, inline ones included.
    pub attachments: &'a [Attachment],
    /// Message-ID without angle brackets, e.g. `msg_01abc@mta.example.com`.
    pub message_id: &'a str,
    /// Value of the `Date` header.
    pub date: DateTime<Utc>,
}

/// Why a message could not be rendered. Never contains an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    /// Neither text, html nor attachments.
    #[error("message has no text, html or attachments")]
    NoBody,
    /// A custom header Postwerk sets itself (carries the header name).
    #[error("header {0} is set by Postwerk and cannot be supplied")]
    ReservedHeader(String),
    /// A custom header name that is empty, too long or has forbidden characters.
    #[error("invalid header name")]
    BadHeaderName,
    /// A header value with control characters (carries the header name).
    #[error("invalid value for header {0}")]
    BadHeaderValue(String),
    /// An attachment content type that is not a valid, non-composite MIME type.
    #[error("invalid attachment content type")]
    BadContentType,
    /// An attachment file name that is empty, too long or has forbidden characters.
    #[error("invalid attachment filename")]
    BadFilename,
    /// An attachment Content-ID that is not a valid message identifier.
    #[error("invalid attachment content id")]
    BadContentId,
}

/// Header names Postwerk owns (compared case-insensitively); `X-Postwerk-*` is reserved too.
const RESERVED: [&str; 16] = [
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "reply-to",
    "sender",
    "return-path",
    "received",
    "dkim-signature",
];
/// Longest accepted custom header name.
const MAX_HEADER_NAME: usize = 76;
/// RFC 5322 §2.1.1 recommended line length.
const SOFT_LIMIT: usize = 78;
/// RFC 5322 §2.1.1 hard line length limit (without CRLF).
const MAX_LINE: usize = 998;
/// Start of every boundary delimiter line.
const BOUNDARY_MARK: &[u8] = b"--=_pw";

/// Checks one custom header from the API's `headers` object.
///
/// The name must be RFC 5322 ftext (printable ASCII except `:`), without `@`, at most 76
/// characters, and not one Postwerk owns (case-insensitive): From, To, Cc, Bcc, Subject,
/// Date, Message-ID, MIME-Version, Content-Type, Content-Transfer-Encoding,
/// Content-Disposition, Reply-To, Sender, Return-Path, Received, DKIM-Signature,
/// X-Postwerk and X-Postwerk-*. The value must not contain control characters other than
/// horizontal tab (so no CR, LF or NUL).
pub fn validate_header(name: &str, value: &str) -> Result<(), MimeError> {
    if name.is_empty()
        || name.len() > MAX_HEADER_NAME
        || !name
            .bytes()
            .all(|b| (33..=126).contains(&b) && b != b':' && b != b'@')
    {
        return Err(MimeError::BadHeaderName);
    }
    let postwerk = name.eq_ignore_ascii_case("x-postwerk")
        || name
            .get(..11)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-postwerk-"));
    if postwerk || RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(MimeError::ReservedHeader(name.to_string()));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(MimeError::BadHeaderValue(name.to_string()));
    }
    Ok(())
}

/// Renders the whole message (headers + body) with CRLF line endings.
///
/// Custom headers, the Message-ID and every attachment are validated first; nothing is
/// written for an invalid message.
pub fn render(parts: &MessageParts<'_>) -> Result<Vec<u8>, MimeError> {
    let plan = Plan::new(parts)?;
    let mut out = Vec::with_capacity(plan.capacity_hint());
    plan.write_message(&mut out);
    Ok(out)
}

/// `id-left@id-right` of printable ASCII without whitespace or specials.
fn valid_message_id(id: &str) -> bool {
    let ok = |part: &str| !part.is_empty() && part.bytes().all(|b| is_atext(b) || b == b'.');
    id.len() <= MAX_CONTENT_ID && id.split_once('@').is_some_and(|(l, r)| ok(l) && ok(r))
}
