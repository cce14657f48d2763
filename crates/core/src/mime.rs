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

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;

use crate::address::Mailbox;

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
/// Longest header token written as-is; longer ones force encoded-words so that no header
/// line can reach [`MAX_LINE`] (name ≤ 76 + ": " + 900 + a trailing blank run < 998).
const MAX_PLAIN_TOKEN: usize = 900;
/// Longest run of trailing whitespace written as-is (it cannot be folded).
const MAX_TRAILING_BLANK: usize = 16;
/// RFC 2047 §2 maximum encoded-word length.
const MAX_ENCODED_WORD: usize = 75;
/// `=?utf-8?B?` + `?=`.
const EW_OVERHEAD: usize = 12;
/// Below this much room on the current line an encoded-word starts a new line instead.
const MIN_EW_ROOM: usize = 24;
/// RFC 2045 §6.7 maximum quoted-printable line length.
const QP_LINE: usize = 76;
/// Base64 input bytes per 76-character output line.
const B64_CHUNK: usize = 57;
/// Start of every boundary delimiter line.
const BOUNDARY_MARK: &[u8] = b"--=_pw";
/// Random characters per boundary.
const TOKEN_LEN: usize = 24;
/// `=_pw` + kind letter + `_` + token.
const BOUNDARY_LEN: usize = 6 + TOKEN_LEN;
/// Longest accepted attachment content type, file name (characters) and Content-ID.
const MAX_CONTENT_TYPE: usize = 255;
const MAX_FILENAME: usize = 255;
const MAX_CONTENT_ID: usize = 250;
/// Longest quoted `filename="…"` value; longer ones use RFC 2231 continuations.
const MAX_SIMPLE_PARAM: usize = 60;
/// Fewest encoded characters per RFC 2231 continuation segment (one 4-byte character).
const MIN_PARAM_SEGMENT: usize = 12;
const HEX: &[u8; 16] = b"0123456789ABCDEF";

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

/// A validated message with its body encodings decided.
struct Plan<'p, 'a> {
    parts: &'p MessageParts<'a>,
    text: Option<TextBody<'a>>,
    html: Option<TextBody<'a>>,
    /// Inline (content-id) attachments go into a multipart/related.
    related: bool,
    token: [u8; TOKEN_LEN],
}

impl<'p, 'a> Plan<'p, 'a> {
    fn new(parts: &'p MessageParts<'a>) -> Result<Self, MimeError> {
        for (name, value) in parts.headers {
            validate_header(name, value)?;
        }
        if !valid_message_id(parts.message_id) {
            return Err(MimeError::BadHeaderValue("Message-ID".to_string()));
        }
        for a in parts.attachments {
            validate_attachment(a)?;
        }
        if parts.text.is_none() && parts.html.is_none() && parts.attachments.is_empty() {
            return Err(MimeError::NoBody);
        }
        let mut rng = rand::thread_rng();
        let mut token = [0u8; TOKEN_LEN];
        for b in &mut token {
            *b = rng.sample(Alphanumeric);
        }
        Ok(Plan {
            parts,
            text: parts.text.map(TextBody::scan),
            html: parts.html.map(TextBody::scan),
            related: parts.html.is_some()
                && parts.attachments.iter().any(|a| a.content_id.is_some()),
            token,
        })
    }

    /// An upper bound (in practice) of the rendered size, so `out` never reallocates.
    fn capacity_hint(&self) -> usize {
        let p = self.parts;
        let mut n = 1024 + p.message_id.len() + header_text_hint(p.subject.len());
        n += mailbox_hint(p.from) + p.reply_to.map_or(0, mailbox_hint);
        n += p.to.iter().chain(p.cc).map(mailbox_hint).sum::<usize>();
        n += p
            .headers
            .iter()
            .map(|(k, v)| k.len() + 4 + header_text_hint(v.len()))
            .sum::<usize>();
        n += self.text.as_ref().map_or(0, |t| t.hint + 128);
        n += self.html.as_ref().map_or(0, |t| t.hint + 128);
        n += p
            .attachments
            .iter()
            .map(|a| {
                let b64 = a.content.len().div_ceil(3) * 4;
                let cid = a.content_id.as_ref().map_or(0, String::len);
                256 + a.content_type.len() + 10 * a.filename.len() + cid + b64 + 2 * (b64 / 76)
            })
            .sum::<usize>();
        n
    }

    fn is_inline(&self, a: &Attachment) -> bool {
        self.related && a.content_id.is_some()
    }

    fn write_message(&self, out: &mut Vec<u8>) {
        let p = self.parts;
        write_date(out, &p.date);
        let mut f = Fold::new(out, "From");
        write_mailbox(&mut f, p.from, false);
        f.finish();
        if let Some(r) = p.reply_to {
            let mut f = Fold::new(out, "Reply-To");
            write_mailbox(&mut f, r, false);
            f.finish();
        }
        write_address_list(out, "To", p.to);
        write_address_list(out, "Cc", p.cc);
        let mut f = Fold::new(out, "Subject");
        write_unstructured(&mut f, p.subject, true);
        f.finish();
        out.extend_from_slice(b"Message-ID: <");
        out.extend_from_slice(p.message_id.as_bytes());
        out.extend_from_slice(b">\r\nMIME-Version: 1.0\r\n");
        for (name, value) in p.headers {
            let mut f = Fold::new(out, name);
            write_unstructured(&mut f, value, false);
            f.finish();
        }
        self.write_entity(out);
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The top-level entity: headers from Content-Type on, blank line, body (no final CRLF).
    fn write_entity(&self, out: &mut Vec<u8>) {
        let has_body = self.text.is_some() || self.html.is_some();
        if !self.parts.attachments.iter().any(|a| !self.is_inline(a)) {
            return self.write_related(out);
        }
        self.multipart_header(out, b'M', b"mixed", None);
        if has_body {
            self.open(out, b'M');
            self.write_related(out);
            out.extend_from_slice(b"\r\n");
        }
        for a in self.parts.attachments.iter().filter(|a| !self.is_inline(a)) {
            self.open(out, b'M');
            write_attachment(out, a, false);
            out.extend_from_slice(b"\r\n");
        }
        self.close(out, b'M');
    }

    fn write_related(&self, out: &mut Vec<u8>) {
        if !self.related {
            return self.write_alternative(out);
        }
        let root: &[u8] = if self.text.is_some() {
            b"multipart/alternative"
        } else {
            b"text/html"
        };
        self.multipart_header(out, b'R', b"related", Some(root));
        self.open(out, b'R');
        self.write_alternative(out);
        out.extend_from_slice(b"\r\n");
        for a in self.parts.attachments.iter().filter(|a| self.is_inline(a)) {
            self.open(out, b'R');
            write_attachment(out, a, true);
            out.extend_from_slice(b"\r\n");
        }
        self.close(out, b'R');
    }

    fn write_alternative(&self, out: &mut Vec<u8>) {
        match (&self.text, &self.html) {
            (Some(text), Some(html)) => {
                self.multipart_header(out, b'A', b"alternative", None);
                self.open(out, b'A');
                text.write(out, b"plain");
                out.extend_from_slice(b"\r\n");
                self.open(out, b'A');
                html.write(out, b"html");
                out.extend_from_slice(b"\r\n");
                self.close(out, b'A');
            }
            (Some(text), None) => text.write(out, b"plain"),
            (None, Some(html)) => html.write(out, b"html"),
            (None, None) => {}
        }
    }

    fn boundary(&self, out: &mut Vec<u8>, kind: u8) {
        out.extend_from_slice(&BOUNDARY_MARK[2..]);
        out.push(kind);
        out.push(b'_');
        out.extend_from_slice(&self.token);
    }

    fn multipart_header(&self, out: &mut Vec<u8>, kind: u8, subtype: &[u8], root: Option<&[u8]>) {
        let mut f = Fold::new(out, "Content-Type");
        f.token(&[b"multipart/", subtype, b";"]);
        if let Some(root) = root {
            f.token(&[b"type=\"", root, b"\";"]);
        }
        f.sep(b"boundary=\"\"".len() + BOUNDARY_LEN);
        f.out.extend_from_slice(b"boundary=\"");
        self.boundary(f.out, kind);
        f.out.push(b'"');
        f.finish();
        out.extend_from_slice(b"\r\n");
    }

    fn open(&self, out: &mut Vec<u8>, kind: u8) {
        out.extend_from_slice(b"--");
        self.boundary(out, kind);
        out.extend_from_slice(b"\r\n");
    }

    fn close(&self, out: &mut Vec<u8>, kind: u8) {
        out.extend_from_slice(b"--");
        self.boundary(out, kind);
        out.extend_from_slice(b"--");
    }
}

fn header_text_hint(len: usize) -> usize {
    2 * len + 64
}

fn mailbox_hint(m: &Mailbox) -> usize {
    m.name.as_ref().map_or(0, |n| header_text_hint(n.len()))
        + m.address.local().len()
        + m.address.domain().len()
        + 8
}

/// A text or html body and how it will be encoded.
struct TextBody<'a> {
    text: &'a str,
    /// Any CR at all; without one, lines are found with a (memchr-backed) `\n` search.
    has_cr: bool,
    quoted_printable: bool,
    /// Upper bound of the encoded size.
    hint: usize,
}

impl<'a> TextBody<'a> {
    fn scan(text: &'a str) -> Self {
        let has_cr = text.contains('\r');
        let mut seven_bit = text.is_ascii() && !text.contains('\0');
        let mut lines = 0;
        for (line, _) in Lines::new(text, has_cr) {
            lines += 1;
            seven_bit &= line.len() <= MAX_LINE && !line.starts_with(BOUNDARY_MARK);
        }
        let hint = if seven_bit {
            text.len() + lines
        } else {
            // Bytes outside printable ASCII, and `=`, take three columns (tabs counted too:
            // an upper bound). Branch-free so that it vectorises.
            let special: usize = text
                .bytes()
                .map(|b| usize::from((b.wrapping_sub(32) > 94) | (b == b'=')))
                .sum();
            let encoded = text.len() + 2 * special;
            encoded + 3 * (encoded / (QP_LINE - 3) + 1) + 2 * lines
        };
        TextBody {
            text,
            has_cr,
            quoted_printable: !seven_bit,
            hint,
        }
    }

    fn write(&self, out: &mut Vec<u8>, subtype: &[u8]) {
        out.extend_from_slice(b"Content-Type: text/");
        out.extend_from_slice(subtype);
        out.extend_from_slice(b"; charset=utf-8\r\nContent-Transfer-Encoding: ");
        if self.quoted_printable {
            out.extend_from_slice(b"quoted-printable\r\n\r\n");
            write_quoted_printable(out, self.text, self.has_cr);
        } else {
            out.extend_from_slice(b"7bit\r\n\r\n");
            for (line, terminated) in Lines::new(self.text, self.has_cr) {
                out.extend_from_slice(line);
                if terminated {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
}

/// Splits on CRLF, lone CR or lone LF; yields each line and whether a break followed it.
struct Lines<'a> {
    rest: &'a str,
    has_cr: bool,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str, has_cr: bool) -> Self {
        Lines { rest: text, has_cr }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (&'a [u8], bool);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let found = if self.has_cr {
            self.rest.find(['\r', '\n'])
        } else {
            self.rest.find('\n')
        };
        let bytes = self.rest.as_bytes();
        match found {
            Some(i) => {
                let crlf = bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n');
                // CR and LF are ASCII, so these are character boundaries.
                self.rest = &self.rest[i + if crlf { 2 } else { 1 }..];
                Some((&bytes[..i], true))
            }
            None => {
                self.rest = "";
                Some((bytes, false))
            }
        }
    }
}

/// True for bytes quoted-printable may leave as they are (whitespace only mid-line).
fn qp_literal(b: u8) -> bool {
    ((32..=126).contains(&b) && b != b'=') || b == b'\t'
}

/// RFC 2045 §6.7 with CRLF hard breaks, soft breaks keeping lines ≤ 76 characters and
/// whitespace at the end of a line encoded. Runs of literal bytes are copied in one go.
fn write_quoted_printable(out: &mut Vec<u8>, text: &str, has_cr: bool) {
    for (line, terminated) in Lines::new(text, has_cr) {
        // Whitespace at the end of a line must be encoded, so it is never literal.
        let literal_end = match line.last() {
            Some(b' ' | b'\t') => line.len() - 1,
            _ => line.len(),
        };
        let mut col = 0;
        let mut i = 0;
        while i < line.len() {
            if i < literal_end && qp_literal(line[i]) {
                let run = line[i..literal_end]
                    .iter()
                    .position(|&b| !qp_literal(b))
                    .unwrap_or(literal_end - i);
                // A soft break needs a column for its `=`; the line's last byte does not.
                let mut take = run.min(QP_LINE - 1 - col);
                if i + run == line.len() && run == QP_LINE - col {
                    take = run;
                }
                out.extend_from_slice(&line[i..i + take]);
                col += take;
                i += take;
                if take < run {
                    out.extend_from_slice(b"=\r\n");
                    col = 0;
                }
            } else {
                let limit = if i + 1 == line.len() {
                    QP_LINE
                } else {
                    QP_LINE - 1
                };
                if col + 3 > limit {
                    out.extend_from_slice(b"=\r\n");
                    col = 0;
                }
                push_hex(out, b'=', line[i]);
                col += 3;
                i += 1;
            }
        }
        if terminated {
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn push_hex(out: &mut Vec<u8>, prefix: u8, b: u8) {
    out.extend_from_slice(&[prefix, HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}

/// Appends standard base64 of `data` without line breaks.
fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    out.resize(start + data.len().div_ceil(3) * 4, 0);
    let written = STANDARD
        .encode_slice(data, &mut out[start..])
        .expect("buffer sized for the encoded data");
    out.truncate(start + written);
}

/// Base64 in 76-character lines separated by CRLF (no final CRLF), encoded in place into
/// one region sized up front.
fn write_base64_lines(out: &mut Vec<u8>, data: &[u8]) {
    let lines = data.len().div_ceil(B64_CHUNK);
    let mut pos = out.len();
    out.resize(
        pos + data.len().div_ceil(3) * 4 + 2 * lines.saturating_sub(1),
        0,
    );
    for (i, chunk) in data.chunks(B64_CHUNK).enumerate() {
        if i > 0 {
            out[pos..pos + 2].copy_from_slice(b"\r\n");
            pos += 2;
        }
        pos += STANDARD
            .encode_slice(chunk, &mut out[pos..])
            .expect("buffer sized for the encoded data");
    }
    debug_assert_eq!(pos, out.len());
}

/// Writes one header field, folding between tokens so lines stay within 78 characters
/// where a token boundary allows it.
struct Fold<'o> {
    out: &'o mut Vec<u8>,
    col: usize,
    has_token: bool,
}

impl<'o> Fold<'o> {
    fn new(out: &'o mut Vec<u8>, name: &str) -> Self {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        Fold {
            col: name.len() + 1,
            out,
            has_token: false,
        }
    }

    /// Columns left on the current line after a separating space.
    fn room(&self) -> usize {
        SOFT_LIMIT.saturating_sub(self.col + 1)
    }

    /// Writes the whitespace before a token of `len` bytes, folding when it would not
    /// fit. Never folds right after the colon (no empty first line). The caller then
    /// writes exactly `len` bytes, not all whitespace (see [`Fold::blank_token`]).
    fn sep(&mut self, len: usize) {
        if self.has_token && self.col + 1 + len > SOFT_LIMIT {
            self.out.extend_from_slice(b"\r\n ");
            self.col = 1 + len;
        } else {
            self.out.push(b' ');
            self.col += 1 + len;
        }
        self.has_token = true;
    }

    /// Writes a whitespace-only (or empty) token after a space, never folding before it:
    /// a folded line must contain something other than whitespace. It may exceed the
    /// soft limit by its length.
    fn blank_token(&mut self, bytes: &[u8]) {
        self.out.push(b' ');
        self.out.extend_from_slice(bytes);
        self.col += 1 + bytes.len();
        self.has_token = true;
    }

    fn token(&mut self, pieces: &[&[u8]]) {
        self.sep(pieces.iter().map(|p| p.len()).sum());
        for p in pieces {
            self.out.extend_from_slice(p);
        }
    }

    fn finish(self) {
        self.out.extend_from_slice(b"\r\n");
    }
}

fn write_date(out: &mut Vec<u8>, date: &DateTime<Utc>) {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(DAYS[date.weekday().num_days_from_monday() as usize]);
    out.extend_from_slice(b", ");
    push_num(out, date.day() as usize, 2);
    out.push(b' ');
    out.extend_from_slice(MONTHS[date.month0() as usize]);
    out.push(b' ');
    push_num(out, usize::try_from(date.year()).unwrap_or(0), 4);
    out.push(b' ');
    push_num(out, date.hour() as usize, 2);
    out.push(b':');
    push_num(out, date.minute() as usize, 2);
    out.push(b':');
    push_num(out, date.second() as usize, 2);
    out.extend_from_slice(b" +0000\r\n");
}

/// Appends `n` in decimal, zero-padded to `width` digits.
fn push_num(out: &mut Vec<u8>, mut n: usize, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i.min(buf.len() - width)..]);
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn write_address_list(out: &mut Vec<u8>, name: &str, list: &[Mailbox]) {
    if list.is_empty() {
        return;
    }
    let mut f = Fold::new(out, name);
    for (i, m) in list.iter().enumerate() {
        write_mailbox(&mut f, m, i + 1 < list.len());
    }
    f.finish();
}

/// `addr`, or `phrase <addr>`; a non-ASCII address is written as-is (SMTPUTF8).
fn write_mailbox(f: &mut Fold<'_>, m: &Mailbox, comma: bool) {
    let (local, domain) = (m.address.local().as_bytes(), m.address.domain().as_bytes());
    let comma: &[u8] = if comma { b"," } else { b"" };
    match m.name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(name) => {
            write_phrase(f, name);
            f.token(&[b"<", local, b"@", domain, b">", comma]);
        }
        None => f.token(&[local, b"@", domain, comma]),
    }
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (32..=126).contains(&b))
}

/// A display name: atoms when possible, else a quoted-string, else encoded-words.
fn write_phrase(f: &mut Fold<'_>, name: &str) {
    if !printable_ascii(name) || name.contains("=?") {
        return write_encoded_words(f, name);
    }
    let atoms = name
        .split(' ')
        .all(|w| !w.is_empty() && w.len() <= SOFT_LIMIT - 2 && w.bytes().all(is_atext));
    if atoms {
        for word in name.split(' ') {
            f.token(&[word.as_bytes()]);
        }
        return;
    }
    let escapes = name.bytes().filter(|&b| b == b'"' || b == b'\\').count();
    let len = name.len() + escapes + 2;
    if len > SOFT_LIMIT - 2 {
        return write_encoded_words(f, name);
    }
    f.sep(len);
    f.out.push(b'"');
    for b in name.bytes() {
        if b == b'"' || b == b'\\' {
            f.out.push(b'\\');
        }
        f.out.push(b);
    }
    f.out.push(b'"');
}

/// Unstructured text (Subject, custom headers): folded at spaces when it is printable
/// ASCII (tabs allowed), encoded-words otherwise, or when a piece too long to fold could
/// push a line towards 998 octets. With `guard_marker`, text containing `=?` is encoded
/// too so that a reader cannot mistake it for an encoded-word.
fn write_unstructured(f: &mut Fold<'_>, value: &str, guard_marker: bool) {
    let plain = value.bytes().all(|b| b == b'\t' || (32..=126).contains(&b))
        && !(guard_marker && value.contains("=?"))
        && Words::new(value).all(|(word, trailing)| {
            word.len()
                <= if trailing {
                    MAX_TRAILING_BLANK
                } else {
                    MAX_PLAIN_TOKEN
                }
        });
    if !plain {
        return write_encoded_words(f, value);
    }
    for (word, trailing) in Words::new(value) {
        if trailing {
            f.blank_token(word.as_bytes());
        } else {
            f.token(&[word.as_bytes()]);
        }
    }
}

/// Splits unstructured text at spaces into the pieces a fold may go between. Runs of
/// whitespace-only words travel with the next real word, so a fold never leaves a
/// whitespace-only line; a trailing run comes last, flagged `true`.
struct Words<'a> {
    value: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> Words<'a> {
    fn new(value: &'a str) -> Self {
        Words {
            value,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = (&'a str, bool);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let start = self.pos;
        loop {
            let rest = &self.value[self.pos..];
            let (len, last) = rest.find(' ').map_or((rest.len(), true), |i| (i, false));
            let end = self.pos + len;
            let blank = rest.as_bytes()[..len].iter().all(|&b| b == b'\t');
            if last {
                self.done = true;
            } else {
                self.pos = end + 1;
            }
            if !blank || last {
                return Some((&self.value[start..end], blank));
            }
        }
    }
}

/// RFC 2047 §5(3) safe set for Q (valid in phrases too); space is written as `_`.
fn q_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'!' | b'*' | b'+' | b'-' | b'/')
}

fn q_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|&b| if q_safe(b) || b == b' ' { 1 } else { 3 })
        .sum()
}

/// The whole of `text` as encoded-words of at most 75 characters, never splitting a
/// character, each sized to the room left on the line. Q when not longer than B.
fn write_encoded_words(f: &mut Fold<'_>, text: &str) {
    let q = q_len(text.as_bytes()) <= text.len().div_ceil(3) * 4;
    let mut rest = text;
    while !rest.is_empty() {
        let room = f.room();
        let max = if room >= MIN_EW_ROOM {
            room.min(MAX_ENCODED_WORD)
        } else {
            MAX_ENCODED_WORD
        };
        let budget = max - EW_OVERHEAD;
        let (mut end, mut encoded) = (0, 0);
        for (i, c) in rest.char_indices() {
            let next = i + c.len_utf8();
            let next_encoded = if q {
                encoded + q_len(&rest.as_bytes()[i..next])
            } else {
                next.div_ceil(3) * 4
            };
            if next_encoded > budget && end > 0 {
                break;
            }
            (end, encoded) = (next, next_encoded);
        }
        let (chunk, tail) = rest.split_at(end);
        f.sep(EW_OVERHEAD + encoded);
        if q {
            f.out.extend_from_slice(b"=?utf-8?Q?");
            for b in chunk.bytes() {
                match b {
                    b' ' => f.out.push(b'_'),
                    b if q_safe(b) => f.out.push(b),
                    b => push_hex(f.out, b'=', b),
                }
            }
        } else {
            f.out.extend_from_slice(b"=?utf-8?B?");
            push_base64(f.out, chunk.as_bytes());
        }
        f.out.extend_from_slice(b"?=");
        rest = tail;
    }
}

/// RFC 5987 attr-char: left as-is in RFC 2231 extended values.
fn attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b)
}

fn pct_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|&b| if attr_char(b) { 1 } else { 3 })
        .sum()
}

fn push_pct(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if attr_char(b) {
            out.push(b);
        } else {
            push_hex(out, b'%', b);
        }
    }
}

/// A `attr="value"` parameter, or RFC 2231 `attr*=utf-8''…` (with `attr*0*=` …
/// continuations split between characters) when the value is non-ASCII, long or holds
/// `"`/`\`. `more` appends the `;` for a following parameter.
fn write_param(f: &mut Fold<'_>, attr: &[u8], value: &str, more: bool) {
    let semi: &[u8] = if more { b";" } else { b"" };
    if value.len() <= MAX_SIMPLE_PARAM && printable_ascii(value) && !value.contains(['"', '\\']) {
        return f.token(&[attr, b"=\"", value.as_bytes(), b"\"", semi]);
    }
    const CHARSET: &[u8] = b"utf-8''";
    let single = attr.len() + 2 + CHARSET.len() + pct_len(value.as_bytes());
    // Fits on a folded line (leading space, `;`) within the soft limit.
    if single < SOFT_LIMIT - 2 {
        f.sep(single + semi.len());
        f.out.extend_from_slice(attr);
        f.out.extend_from_slice(b"*=");
        f.out.extend_from_slice(CHARSET);
        push_pct(f.out, value.as_bytes());
        f.out.extend_from_slice(semi);
        return;
    }
    let mut rest = value;
    let mut index = 0;
    while !rest.is_empty() {
        let prefix: &[u8] = if index == 0 { CHARSET } else { b"" };
        // `attr*N*=` + prefix + value + `;`, after a folding space, within the soft limit.
        let overhead = attr.len() + 1 + digits(index) + 2 + prefix.len() + 1;
        let budget = (SOFT_LIMIT - 2)
            .saturating_sub(overhead)
            .max(MIN_PARAM_SEGMENT);
        let (mut end, mut encoded) = (0, 0);
        for (i, c) in rest.char_indices() {
            let next = i + c.len_utf8();
            let next_encoded = encoded + pct_len(&rest.as_bytes()[i..next]);
            if next_encoded > budget && end > 0 {
                break;
            }
            (end, encoded) = (next, next_encoded);
        }
        let (chunk, tail) = rest.split_at(end);
        let semi: &[u8] = if !tail.is_empty() || more { b";" } else { b"" };
        f.sep(attr.len() + 1 + digits(index) + 2 + prefix.len() + encoded + semi.len());
        f.out.extend_from_slice(attr);
        f.out.push(b'*');
        push_num(f.out, index, 1);
        f.out.extend_from_slice(b"*=");
        f.out.extend_from_slice(prefix);
        push_pct(f.out, chunk.as_bytes());
        f.out.extend_from_slice(semi);
        rest = tail;
        index += 1;
    }
}

fn write_attachment(out: &mut Vec<u8>, a: &Attachment, inline: bool) {
    let content_type = a.content_type.trim();
    let has_name = parse_content_type(content_type) == Some(true);
    let mut f = Fold::new(out, "Content-Type");
    if has_name {
        f.token(&[content_type.as_bytes()]);
    } else {
        f.token(&[content_type.as_bytes(), b";"]);
        write_param(&mut f, b"name", &a.filename, false);
    }
    f.finish();
    out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
    let mut f = Fold::new(out, "Content-Disposition");
    f.token(&[if inline { b"inline;" } else { b"attachment;" }]);
    write_param(&mut f, b"filename", &a.filename, false);
    f.finish();
    if let Some(cid) = &a.content_id {
        out.extend_from_slice(b"Content-ID: <");
        out.extend_from_slice(content_id_core(cid).as_bytes());
        out.extend_from_slice(b">\r\n");
    }
    out.extend_from_slice(b"\r\n");
    write_base64_lines(out, &a.content);
}

fn validate_attachment(a: &Attachment) -> Result<(), MimeError> {
    if parse_content_type(a.content_type.trim()).is_none() {
        return Err(MimeError::BadContentType);
    }
    let name = &a.filename;
    let bad_char = |c: char| {
        c.is_control()
            || matches!(
                c,
                '/' | '\\'
                    | '\u{061C}'
                    | '\u{200E}'
                    | '\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2066}'..='\u{2069}'
            )
    };
    if name.trim().is_empty()
        || name == "."
        || name == ".."
        || name.chars().count() > MAX_FILENAME
        || name.chars().any(bad_char)
    {
        return Err(MimeError::BadFilename);
    }
    if let Some(cid) = &a.content_id {
        let core = content_id_core(cid);
        if core.is_empty()
            || core.len() > MAX_CONTENT_ID
            || !core.bytes().all(|b| is_atext(b) || b == b'.' || b == b'@')
        {
            return Err(MimeError::BadContentId);
        }
    }
    Ok(())
}

/// A Content-ID without one pair of surrounding angle brackets.
fn content_id_core(cid: &str) -> &str {
    cid.strip_prefix('<')
        .and_then(|c| c.strip_suffix('>'))
        .unwrap_or(cid)
}

/// RFC 2045 token character.
fn is_token(b: u8) -> bool {
    (33..=126).contains(&b) && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

fn take_token<'s>(s: &'s [u8], i: &mut usize) -> &'s [u8] {
    let start = *i;
    while s.get(*i).is_some_and(|&b| is_token(b)) {
        *i += 1;
    }
    &s[start..*i]
}

fn skip_ws(s: &[u8], i: &mut usize) {
    while matches!(s.get(*i), Some(b' ' | b'\t')) {
        *i += 1;
    }
}

/// Validates `type/subtype *(; attr=value)` for a leaf part. Returns whether a `name`
/// parameter is present, or `None` when invalid or composite (multipart/*, message/*).
fn parse_content_type(ct: &str) -> Option<bool> {
    let s = ct.as_bytes();
    if s.is_empty() || s.len() > MAX_CONTENT_TYPE {
        return None;
    }
    let mut i = 0;
    let kind = take_token(s, &mut i);
    if kind.is_empty() || s.get(i) != Some(&b'/') {
        return None;
    }
    i += 1;
    if take_token(s, &mut i).is_empty()
        || kind.eq_ignore_ascii_case(b"multipart")
        || kind.eq_ignore_ascii_case(b"message")
    {
        return None;
    }
    let mut has_name = false;
    loop {
        skip_ws(s, &mut i);
        if i == s.len() {
            return Some(has_name);
        }
        if s[i] != b';' {
            return None;
        }
        i += 1;
        skip_ws(s, &mut i);
        let attr = take_token(s, &mut i);
        if attr.is_empty() || s.get(i) != Some(&b'=') {
            return None;
        }
        i += 1;
        if s.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match s.get(i)? {
                    b'"' => break,
                    b'\\' if s.get(i + 1).is_some_and(|b| (32..=126).contains(b)) => i += 2,
                    b' ' | b'\t' | 33..=126 => i += 1,
                    _ => return None,
                }
            }
            i += 1;
        } else if take_token(s, &mut i).is_empty() {
            return None;
        }
        let base = attr.split(|&b| b == b'*').next().unwrap_or(attr);
        has_name |= base.eq_ignore_ascii_case(b"name");
    }
}

/// `id-left@id-right` of printable ASCII without whitespace or specials.
fn valid_message_id(id: &str) -> bool {
    let ok = |part: &str| !part.is_empty() && part.bytes().all(|b| is_atext(b) || b == b'.');
    id.len() <= MAX_CONTENT_ID && id.split_once('@').is_some_and(|(l, r)| ok(l) && ok(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    struct Fixture {
        from: Mailbox,
        to: Vec<Mailbox>,
        cc: Vec<Mailbox>,
        reply_to: Option<Mailbox>,
        subject: String,
        text: Option<String>,
        html: Option<String>,
        headers: Vec<(String, String)>,
        attachments: Vec<Attachment>,
        message_id: String,
    }

    fn mb(email: &str, name: Option<&str>) -> Mailbox {
        Mailbox::from_parts(email, name).expect("valid mailbox")
    }

    fn att(filename: &str, content_type: &str, content: &[u8], cid: Option<&str>) -> Attachment {
        Attachment {
            filename: filename.to_string(),
            content_type: content_type.to_string(),
            content: content.to_vec(),
            content_id: cid.map(String::from),
        }
    }

    fn binary() -> Vec<u8> {
        (0..1000u32).map(|i| (i * 7 + i / 256) as u8).collect()
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                from: mb("alice@example.com", Some("Alice")),
                to: vec![mb("bob@example.net", None)],
                cc: vec![],
                reply_to: None,
                subject: "Hello".into(),
                text: Some("Hi Bob".into()),
                html: None,
                headers: vec![],
                attachments: vec![],
                message_id: "msg_01abc@mta.example.com".into(),
            }
        }

        fn parts(&self) -> MessageParts<'_> {
            MessageParts {
                from: &self.from,
                to: &self.to,
                cc: &self.cc,
                reply_to: self.reply_to.as_ref(),
                subject: &self.subject,
                text: self.text.as_deref(),
                html: self.html.as_deref(),
                headers: &self.headers,
                attachments: &self.attachments,
                message_id: &self.message_id,
                date: Utc.with_ymd_and_hms(2026, 11, 23, 17, 30, 8).unwrap(),
            }
        }

        /// Renders and checks the wire invariants every output must satisfy.
        fn render(&self) -> Vec<u8> {
            let parts = self.parts();
            let out = render(&parts).expect("renders");
            assert_wire(&out);
            let hint = Plan::new(&parts).unwrap().capacity_hint();
            assert!(out.len() <= hint, "{} > capacity hint {hint}", out.len());
            out
        }
    }

    /// CRLF only, no line over 998 octets, ends with CRLF, header lines ≤ 78 where the
    /// test data allows it (no token longer than that).
    fn assert_wire(out: &[u8]) {
        assert!(out.ends_with(b"\r\n"), "must end with CRLF");
        for (i, &b) in out.iter().enumerate() {
            if b == b'\n' {
                assert_eq!(out.get(i.wrapping_sub(1)), Some(&b'\r'), "bare LF at {i}");
            }
            if b == b'\r' {
                assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
        let mut in_header = true;
        for line in out.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(line.len() <= MAX_LINE, "line of {} octets", line.len());
            if line.is_empty() {
                in_header = false;
            } else if line.starts_with(b"--=_pw") {
                in_header = !line.ends_with(b"--");
            }
            if in_header && line.starts_with(b" ") {
                assert!(
                    !line.iter().all(|b| b" \t".contains(b)),
                    "whitespace-only folded line"
                );
            }
            if in_header {
                assert!(
                    line.len() <= SOFT_LIMIT,
                    "header line over 78: {}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    fn crlf(s: &str) -> Vec<u8> {
        s.replace("\r\n", "\n")
            .replace('\r', "\n")
            .replace('\n', "\r\n")
            .into_bytes()
    }

    /// A deliberately small MIME reader, independent of the writer.
    #[derive(Debug)]
    struct Entity {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        parts: Vec<Entity>,
    }

    impl Entity {
        fn parse(raw: &[u8]) -> Entity {
            let split = find(raw, b"\r\n\r\n").expect("header/body separator");
            let head = String::from_utf8(raw[..split].to_vec()).expect("utf-8 headers");
            let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", "\t");
            let headers = unfolded
                .split("\r\n")
                .map(|l| {
                    let (k, v) = l.split_once(':').expect("header colon");
                    (k.to_string(), v.trim_start().to_string())
                })
                .collect();
            let mut e = Entity {
                headers,
                body: raw[split + 4..].to_vec(),
                parts: vec![],
            };
            if e.content_type().starts_with("multipart/") {
                let boundary = param(e.header("Content-Type").unwrap(), "boundary").unwrap();
                let delim = format!("\r\n--{boundary}");
                let mut hay = b"\r\n".to_vec();
                hay.extend_from_slice(&e.body);
                let mut rest = &hay[..];
                let mut pieces = vec![];
                while let Some(at) = find(rest, delim.as_bytes()) {
                    pieces.push(&rest[..at]);
                    rest = &rest[at + delim.len()..];
                }
                assert!(rest.starts_with(b"--"), "close delimiter");
                assert!(pieces[0].is_empty(), "no preamble expected");
                for piece in &pieces[1..] {
                    let piece = piece.strip_prefix(b"\r\n").expect("CRLF after delimiter");
                    e.parts.push(Entity::parse(piece));
                }
            }
            e
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn content_type(&self) -> String {
            let ct = self.header("Content-Type").unwrap_or("text/plain");
            ct.split(';').next().unwrap().trim().to_ascii_lowercase()
        }

        fn shape(&self) -> String {
            if self.parts.is_empty() {
                return self.content_type();
            }
            let inner: Vec<String> = self.parts.iter().map(Entity::shape).collect();
            format!("{}({})", self.content_type(), inner.join(","))
        }

        fn leaves(&self) -> Vec<&Entity> {
            if self.parts.is_empty() {
                return vec![self];
            }
            self.parts.iter().flat_map(Entity::leaves).collect()
        }

        fn decoded(&self) -> Vec<u8> {
            match self.header("Content-Transfer-Encoding") {
                Some("base64") => {
                    let joined: Vec<u8> = self
                        .body
                        .iter()
                        .copied()
                        .filter(|b| !b"\r\n".contains(b))
                        .collect();
                    STANDARD.decode(joined).expect("valid base64")
                }
                Some("quoted-printable") => qp_decode(&self.body),
                _ => self.body.clone(),
            }
        }
    }

    fn param(value: &str, name: &str) -> Option<String> {
        value.split(';').skip(1).find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k.eq_ignore_ascii_case(name)).then(|| v.trim_matches('"').to_string())
        })
    }

    fn qp_decode(body: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'=' {
                if body[i + 1..].starts_with(b"\r\n") {
                    i += 3;
                    continue;
                }
                let hex = std::str::from_utf8(&body[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).expect("hex after ="));
                i += 3;
            } else {
                out.push(body[i]);
                i += 1;
            }
        }
        out
    }

    /// Decodes a header value that is either plain or made only of encoded-words.
    fn decode_words(value: &str) -> String {
        let words: Vec<&str> = value.split_whitespace().collect();
        if words.is_empty()
            || !words
                .iter()
                .all(|w| w.starts_with("=?") && w.ends_with("?="))
        {
            return value.to_string();
        }
        let mut bytes = vec![];
        for w in words {
            assert!(w.len() <= MAX_ENCODED_WORD, "encoded-word too long: {w}");
            let inner = &w[2..w.len() - 2];
            let mut it = inner.splitn(3, '?');
            let (cs, enc, text) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            assert_eq!(cs, "utf-8");
            match enc {
                "B" => bytes.extend(STANDARD.decode(text).expect("base64 word")),
                "Q" => bytes.extend(qp_decode(text.replace('_', " ").as_bytes())),
                other => panic!("unknown encoding {other}"),
            }
        }
        String::from_utf8(bytes).expect("words hold whole characters")
    }

    /// The display name of a one-mailbox header value.
    fn display_name(value: &str) -> String {
        let phrase = value[..value.rfind('<').expect("angle address")].trim();
        match phrase.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
            Some(q) => q.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => decode_words(phrase),
        }
    }

    #[test]
    fn text_only_golden() {
        let out = Fixture::new().render();
        let want = "Date: Mon, 23 Nov 2026 17:30:08 +0000\r\n\
                    From: Alice <alice@example.com>\r\n\
                    To: bob@example.net\r\n\
                    Subject: Hello\r\n\
                    Message-ID: <msg_01abc@mta.example.com>\r\n\
                    MIME-Version: 1.0\r\n\
                    Content-Type: text/plain; charset=utf-8\r\n\
                    Content-Transfer-Encoding: 7bit\r\n\
                    \r\n\
                    Hi Bob\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn header_order_and_custom_headers() {
        let mut fx = Fixture::new();
        fx.cc = vec![mb("carol@example.org", Some("Carol"))];
        fx.reply_to = Some(mb("support@example.com", None));
        fx.headers = vec![
            (
                "List-Unsubscribe".into(),
                "<https://example.com/u/1?a=?b>".into(),
            ),
            ("X-Campaign".into(), "spring".into()),
        ];
        let out = String::from_utf8(fx.render()).unwrap();
        let names: Vec<&str> = out
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .split("\r\n")
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Date",
                "From",
                "Reply-To",
                "To",
                "Cc",
                "Subject",
                "Message-ID",
                "MIME-Version",
                "List-Unsubscribe",
                "X-Campaign",
                "Content-Type",
                "Content-Transfer-Encoding"
            ]
        );
        // Structured custom values are never turned into encoded-words.
        assert!(out.contains("List-Unsubscribe: <https://example.com/u/1?a=?b>\r\n"));
    }

    #[test]
    fn date_format() {
        let cases = [
            ((2026, 11, 23, 17, 30, 8), "Mon, 23 Nov 2026 17:30:08 +0000"),
            ((2025, 1, 5, 0, 0, 0), "Sun, 05 Jan 2025 00:00:00 +0000"),
            ((2000, 2, 29, 9, 5, 59), "Tue, 29 Feb 2000 09:05:59 +0000"),
            (
                (1999, 12, 31, 23, 59, 59),
                "Fri, 31 Dec 1999 23:59:59 +0000",
            ),
        ];
        for ((y, mo, d, h, mi, s), want) in cases {
            let mut out = vec![];
            write_date(&mut out, &Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), format!("Date: {want}\r\n"));
        }
    }

    #[test]
    fn structures() {
        let pdf = att("report.pdf", "application/pdf", &binary(), None);
        let logo = att("logo.png", "image/png", b"\x89PNG\r\n", Some("logo@x"));
        let cases: [(&str, bool, bool, Vec<Attachment>, &str); 9] = [
            ("text", true, false, vec![], "text/plain"),
            ("html", false, true, vec![], "text/html"),
            (
                "both",
                true,
                true,
                vec![],
                "multipart/alternative(text/plain,text/html)",
            ),
            (
                "text+att",
                true,
                false,
                vec![pdf.clone()],
                "multipart/mixed(text/plain,application/pdf)",
            ),
            (
                "att only",
                false,
                false,
                vec![pdf.clone()],
                "multipart/mixed(application/pdf)",
            ),
            (
                "html+inline",
                false,
                true,
                vec![logo.clone()],
                "multipart/related(text/html,image/png)",
            ),
            (
                "both+inline",
                true,
                true,
                vec![logo.clone()],
                "multipart/related(multipart/alternative(text/plain,text/html),image/png)",
            ),
            (
                "all",
                true,
                true,
                vec![pdf.clone(), logo.clone()],
                "multipart/mixed(multipart/related(multipart/alternative(text/plain,text/html),image/png),application/pdf)",
            ),
            // A content id without html has nothing to be inline in: ordinary attachment.
            (
                "text+cid",
                true,
                false,
                vec![logo.clone()],
                "multipart/mixed(text/plain,image/png)",
            ),
        ];
        for (name, text, html, attachments, want) in cases {
            let mut fx = Fixture::new();
            fx.text = text.then(|| "Plain body\nsecond line".to_string());
            fx.html = html.then(|| "<p>HTML body</p>".to_string());
            fx.attachments = attachments;
            let out = fx.render();
            let e = Entity::parse(&out);
            assert_eq!(e.shape(), want, "{name}");
            for leaf in e.leaves() {
                let ct = leaf.content_type();
                let body = leaf.decoded();
                match ct.as_str() {
                    "text/plain" if e.parts.is_empty() => {
                        assert_eq!(body, crlf("Plain body\nsecond line\n"), "{name}")
                    }
                    "text/plain" => assert_eq!(body, crlf("Plain body\nsecond line"), "{name}"),
                    "text/html" if e.parts.is_empty() => {
                        assert_eq!(body, b"<p>HTML body</p>\r\n", "{name}")
                    }
                    "text/html" => assert_eq!(body, b"<p>HTML body</p>", "{name}"),
                    "application/pdf" => {
                        assert_eq!(body, binary(), "{name}");
                        assert_eq!(
                            leaf.header("Content-Disposition"),
                            Some("attachment; filename=\"report.pdf\"")
                        );
                        assert_eq!(
                            leaf.header("Content-Type"),
                            Some("application/pdf; name=\"report.pdf\"")
                        );
                    }
                    "image/png" => {
                        assert_eq!(body, b"\x89PNG\r\n", "{name}");
                        assert_eq!(leaf.header("Content-ID"), Some("<logo@x>"), "{name}");
                        let disposition = if html { "inline" } else { "attachment" };
                        assert_eq!(
                            leaf.header("Content-Disposition"),
                            Some(format!("{disposition}; filename=\"logo.png\"").as_str()),
                            "{name}"
                        );
                    }
                    other => panic!("{name}: unexpected leaf {other}"),
                }
            }
            if e.content_type() == "multipart/related" || e.shape().contains("related") {
                let related = if e.content_type() == "multipart/related" {
                    &e
                } else {
                    &e.parts[0]
                };
                let root = if text {
                    "multipart/alternative"
                } else {
                    "text/html"
                };
                assert_eq!(
                    param(related.header("Content-Type").unwrap(), "type").as_deref(),
                    Some(root),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn base64_lines_are_76_and_round_trip() {
        for len in [0, 1, 56, 57, 58, 114, 1000, 4096] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
            let mut fx = Fixture::new();
            fx.attachments = vec![att("x.bin", "application/octet-stream", &data, None)];
            let out = fx.render();
            let e = Entity::parse(&out);
            let leaf = e.leaves()[1];
            assert_eq!(leaf.decoded(), data, "len {len}");
            let lines: Vec<&[u8]> = leaf.body.split(|&b| b == b'\n').collect();
            for (i, line) in lines.iter().enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if i + 1 < lines.len() {
                    assert_eq!(line.len(), 76, "len {len}");
                } else {
                    assert!(line.len() <= 76, "len {len}");
                }
            }
        }
    }

    #[test]
    fn boundaries_random_and_distinct() {
        let mut fx = Fixture::new();
        fx.html = Some("<p>x</p>".into());
        fx.attachments = vec![
            att("a.pdf", "application/pdf", b"%PDF", None),
            att("l.png", "image/png", b"png", Some("l")),
        ];
        let boundaries = |out: &[u8]| -> Vec<String> {
            let mut found = vec![];
            fn walk(e: &Entity, found: &mut Vec<String>) {
                if let Some(b) = e.header("Content-Type").and_then(|v| param(v, "boundary")) {
                    found.push(b);
                }
                e.parts.iter().for_each(|p| walk(p, found));
            }
            walk(&Entity::parse(out), &mut found);
            found
        };
        let first = boundaries(&fx.render());
        let second = boundaries(&fx.render());
        assert_eq!(first.len(), 3);
        for b in &first {
            assert_eq!(b.len(), BOUNDARY_LEN);
            assert!(b.starts_with("=_pw"));
            assert!(!second.contains(b), "boundary reused across messages");
            for other in &first {
                assert!(b == other || !other.starts_with(b.as_str()), "prefix clash");
            }
        }
    }

    #[test]
    fn text_encoding_choice() {
        let long = "word ".repeat(400);
        let line_998 = "a".repeat(998);
        let line_999 = "a".repeat(999);
        let cases: [(&str, &str, bool); 11] = [
            ("plain", "Hello\nWorld\n", false),
            ("line endings", "a\rb\r\nc\nd", false),
            ("998 octets", &line_998, false),
            ("999 octets", &line_999, true),
            ("long line", &long, true),
            ("non-ascii", "Grüße aus Köln — 日本語\n", true),
            ("ascii trailing whitespace", "a  \nb\t\nc ", false),
            ("trailing whitespace", "é  \nb\t\nc ", true),
            ("equals and NUL", "x = y\0z", true),
            ("boundary lookalike", "--=_pwA_fake\nbody", true),
            ("dot and from", ".\nFrom me\n-- \nsig", false),
        ];
        for (name, text, qp) in cases {
            let mut fx = Fixture::new();
            fx.text = Some(text.to_string());
            fx.html = Some("<p>h</p>".into());
            let out = fx.render();
            let e = Entity::parse(&out);
            let part = &e.parts[0];
            let cte = part.header("Content-Transfer-Encoding").unwrap();
            assert_eq!(cte, if qp { "quoted-printable" } else { "7bit" }, "{name}");
            assert_eq!(part.decoded(), crlf(text), "{name}");
            if qp {
                for line in part.body.split(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    assert!(line.len() <= QP_LINE, "{name}: qp line of {}", line.len());
                    assert!(!line.ends_with(b" ") && !line.ends_with(b"\t"), "{name}");
                    assert!(!line.starts_with(BOUNDARY_MARK), "{name}");
                }
            }
        }
    }

    #[test]
    fn quoted_printable_exact() {
        let x = |n: usize| "x".repeat(n);
        let cases = [
            ("a=b".to_string(), "a=3Db".to_string()),
            ("end ".into(), "end=20".into()),
            ("tab\t\nx".into(), "tab=09\r\nx".into()),
            ("cr\rlf\ncrlf\r\n".into(), "cr\r\nlf\r\ncrlf\r\n".into()),
            ("é".into(), "=C3=A9".into()),
            ("mid space ok".into(), "mid space ok".into()),
            // Exactly 76 characters fit on a line's last segment, otherwise 75 + "=".
            (x(76), x(76)),
            (x(77), format!("{}=\r\nxx", x(75))),
            (
                format!("{}\n{}", x(77), x(3)),
                format!("{}=\r\nxx\r\nxxx", x(75)),
            ),
            // An escape is never split across a soft break.
            (format!("{}é", x(74)), format!("{}=\r\n=C3=A9", x(74))),
            (format!("{} ", x(75)), format!("{}=\r\n=20", x(75))),
        ];
        for (input, want) in cases {
            let mut out = vec![];
            write_quoted_printable(&mut out, &input, input.contains('\r'));
            assert_eq!(String::from_utf8(out).unwrap(), want, "{input:?}");
        }
    }

    /// Byte-at-a-time reference for the run-copying encoder.
    fn qp_reference(text: &str) -> Vec<u8> {
        let mut out = vec![];
        for (line, terminated) in Lines::new(text, true) {
            let mut col = 0;
            for (i, &b) in line.iter().enumerate() {
                let is_last = i + 1 == line.len();
                let literal = qp_literal(b) && !(is_last && (b == b' ' || b == b'\t'));
                let width = if literal { 1 } else { 3 };
                if col + width > if is_last { 76 } else { 75 } {
                    out.extend_from_slice(b"=\r\n");
                    col = 0;
                }
                if literal {
                    out.push(b);
                } else {
                    out.extend_from_slice(format!("={b:02X}").as_bytes());
                }
                col += width;
            }
            if terminated {
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    #[test]
    fn quoted_printable_matches_reference() {
        // (cumulative percentage, piece): rare line breaks so lines often exceed 76.
        const PIECES: [(u32, &str); 9] = [
            (1, "\n"),
            (2, "\r\n"),
            (3, "\r"),
            (7, " "),
            (9, "\t"),
            (11, "="),
            (13, "é"),
            (14, "€"),
            (100, "x"),
        ];
        let mut seed = 0x2545_f491_u32;
        let mut soft_breaks = 0;
        for len in (0..600).step_by(7) {
            let mut text = String::new();
            for _ in 0..len {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let r = (seed >> 16) % 100;
                text.push_str(PIECES.iter().find(|(p, _)| r < *p).unwrap().1);
            }
            let mut out = vec![];
            write_quoted_printable(&mut out, &text, text.contains('\r'));
            assert_eq!(out, qp_reference(&text), "{text:?}");
            soft_breaks += out.windows(3).filter(|w| w == b"=\r\n").count();
            assert_eq!(qp_decode(&out), crlf(&text), "{text:?}");
            for line in out.split(|&b| b == b'\n') {
                assert!(line.strip_suffix(b"\r").unwrap_or(line).len() <= QP_LINE);
            }
        }
        assert!(
            soft_breaks > 100,
            "only {soft_breaks} soft breaks exercised"
        );
    }

    #[test]
    fn subjects_round_trip() {
        let long_words = "A very long plain ASCII subject line that certainly needs folding \
                          because it goes on and on past seventy-eight characters";
        let cases: [(String, bool); 13] = [
            ("Hello".into(), false),
            ("".into(), false),
            ("Grüße aus Köln".into(), true),
            ("Re: =?utf-8?Q?not_an_encoded_word?=".into(), true),
            (
                "日本語の件名はとても長いのでいくつかのエンコードされた単語に分割される必要があります"
                    .into(),
                true,
            ),
            (
                "Emoji 🎉🎉🎉 party with a fairly long tail of plain ascii words to fold nicely"
                    .into(),
                true,
            ),
            (long_words.into(), false),
            (format!("{long_words} \t  \t\t  {long_words}"), false),
            ("tabs\t\tinside  double  spaces ".into(), false),
            ("Line\r\nbreak".into(), true),
            // Pieces that cannot be folded and could approach 998 octets are encoded.
            ("x".repeat(950), true),
            (format!("a{}b", " ".repeat(2000)), true),
            (format!("trailing{}", " ".repeat(20)), true),
        ];
        for (subject, encoded) in cases {
            let mut fx = Fixture::new();
            fx.subject = subject.clone();
            let out = fx.render();
            let e = Entity::parse(&out);
            let got = e.header("Subject").unwrap();
            assert_eq!(decode_words(got), subject, "{subject:?}");
            assert_eq!(got.contains("=?utf-8?"), encoded, "{subject:?}");
        }
    }

    #[test]
    fn display_names() {
        let cases = [
            ("Alice Smith", "From: Alice Smith <alice@example.com>"),
            ("Smith, Bob", "From: \"Smith, Bob\" <alice@example.com>"),
            (
                "He said \"hi\" \\o/",
                "From: \"He said \\\"hi\\\" \\\\o/\" <alice@example.com>",
            ),
            (
                "Postwerk Inc.",
                "From: \"Postwerk Inc.\" <alice@example.com>",
            ),
            (
                "Jörg Schmidt-Meyer",
                "From: =?utf-8?Q?J=C3=B6rg_Schmidt-Meyer?= <alice@example.com>",
            ),
            (
                "Jörg Müller",
                "From: =?utf-8?B?SsO2cmcgTcO8bGxlcg==?= <alice@example.com>",
            ),
            (
                "山田太郎",
                "From: =?utf-8?B?5bGx55Sw5aSq6YOO?= <alice@example.com>",
            ),
            (
                "=?utf-8?B?QQ==?=",
                "From: =?utf-8?B?PT91dGYtOD9CP1FRPT0/PQ==?= <alice@example.com>",
            ),
        ];
        for (name, want) in cases {
            let mut fx = Fixture::new();
            fx.from = mb("alice@example.com", Some(name));
            let out = String::from_utf8(fx.render()).unwrap();
            let from = out.lines().nth(1).unwrap();
            assert_eq!(from, want, "{name:?}");
            let e = Entity::parse(out.as_bytes());
            assert_eq!(display_name(e.header("From").unwrap()), name, "{name:?}");
        }
        // Long non-ASCII names split into several words, each whole characters.
        let long = "Ünïcödé Ñämé ".repeat(8);
        let long = long.trim();
        let mut fx = Fixture::new();
        fx.from = mb("alice@example.com", Some(long));
        let e = Entity::parse(&fx.render());
        assert_eq!(display_name(e.header("From").unwrap()), long);
    }

    #[test]
    fn recipients_fold_at_commas() {
        let mut fx = Fixture::new();
        fx.to = (0..30)
            .map(|i| {
                mb(
                    &format!("user{i}@example.com"),
                    (i % 3 == 0).then_some("Zoë Person"),
                )
            })
            .collect();
        fx.cc = vec![mb("jörg@müller.de", Some("Jörg"))];
        let out = fx.render();
        let head = String::from_utf8(out[..find(&out, b"\r\n\r\n").unwrap()].to_vec()).unwrap();
        assert!(head.matches("\r\n ").count() >= 10, "To must be folded");
        let e = Entity::parse(&out);
        let to = e.header("To").unwrap();
        let addrs: Vec<&str> = to.split(", ").collect();
        assert_eq!(addrs.len(), 30);
        for (i, a) in addrs.iter().enumerate() {
            assert!(a.contains(&format!("user{i}@example.com")), "{a}");
        }
        // UTF-8 addresses are written as-is (SMTPUTF8).
        assert!(e.header("Cc").unwrap().ends_with("<jörg@müller.de>"));
    }

    #[test]
    fn long_custom_header_values() {
        let mut fx = Fixture::new();
        let words = "token ".repeat(60);
        let huge = "x".repeat(2000);
        fx.headers = vec![
            ("X-Words".into(), words.trim_end().into()),
            ("X-Huge".into(), huge.clone()),
            ("X-Unicode".into(), "Grüße".into()),
            (
                "X-Tabs".into(),
                format!("{} \t \t\t \t end", "y".repeat(66)),
            ),
        ];
        let out = fx.render();
        let e = Entity::parse(&out);
        assert_eq!(e.header("X-Words").unwrap(), words.trim_end());
        assert_eq!(decode_words(e.header("X-Huge").unwrap()), huge);
        assert_eq!(decode_words(e.header("X-Unicode").unwrap()), "Grüße");
        let tabs = format!("{} \t \t\t \t end", "y".repeat(66));
        assert_eq!(e.header("X-Tabs").unwrap(), tabs);
    }

    #[test]
    fn filenames() {
        let long_cjk = "報告書".repeat(40) + ".pdf";
        let long_ascii = format!("{}.txt", "a".repeat(100));
        let cases: [(&str, &str); 5] = [
            ("report.pdf", "attachment; filename=\"report.pdf\""),
            (
                "my report (v2).pdf",
                "attachment; filename=\"my report (v2).pdf\"",
            ),
            (
                "Übersicht.pdf",
                "attachment; filename*=utf-8''%C3%9Cbersicht.pdf",
            ),
            (
                "say \"hi\".txt",
                "attachment; filename*=utf-8''say%20%22hi%22.txt",
            ),
            (&long_cjk, ""),
        ];
        for (filename, want) in cases.into_iter().chain([(long_ascii.as_str(), "")]) {
            let mut fx = Fixture::new();
            fx.attachments = vec![att(filename, "application/pdf", b"x", None)];
            let e = Entity::parse(&fx.render());
            let disposition = e.parts[1].header("Content-Disposition").unwrap();
            if !want.is_empty() {
                assert_eq!(disposition, want);
            }
            assert_eq!(rfc2231_filename(disposition), filename, "{filename}");
        }
    }

    /// Reads `filename`, `filename*` or `filename*N[*]` parameters back.
    fn rfc2231_filename(value: &str) -> String {
        let mut segments: Vec<(usize, String)> = vec![];
        for p in value.split(';').skip(1) {
            let (k, v) = p.trim().split_once('=').unwrap();
            if k == "filename" {
                return v.trim_matches('"').to_string();
            }
            let rest = k.strip_prefix("filename*").unwrap();
            let index = rest.trim_end_matches('*').parse().unwrap_or(0);
            let v = v.strip_prefix("utf-8''").unwrap_or(v);
            segments.push((index, v.to_string()));
        }
        segments.sort();
        let joined: String = segments.into_iter().map(|(_, s)| s).collect();
        let mut bytes = vec![];
        let raw = joined.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'%' {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                bytes.push(raw[i]);
                i += 1;
            }
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn validate_header_table() {
        let reserved = |n: &str| Err(MimeError::ReservedHeader(n.to_string()));
        let bad_value = |n: &str| Err(MimeError::BadHeaderValue(n.to_string()));
        let cases: Vec<(String, &str, Result<(), MimeError>)> = vec![
            ("X-Campaign".into(), "spring-2026", Ok(())),
            (
                "List-Unsubscribe".into(),
                "<https://example.com/u?id=1>",
                Ok(()),
            ),
            ("X-Tabbed".into(), "a\tb", Ok(())),
            ("X-Unicode-Value".into(), "Grüße", Ok(())),
            ("X-Postwerkzeug".into(), "ok", Ok(())),
            (
                "X-Foo".into(),
                "a\r\nBcc: victim@example.com",
                bad_value("X-Foo"),
            ),
            ("X-Foo".into(), "a\nb", bad_value("X-Foo")),
            ("X-Foo".into(), "a\rb", bad_value("X-Foo")),
            ("X-Foo".into(), "a\0b", bad_value("X-Foo")),
            ("X-Foo".into(), "a\u{85}b", bad_value("X-Foo")),
            ("Bcc".into(), "x", reserved("Bcc")),
            ("subject".into(), "x", reserved("subject")),
            ("CONTENT-TYPE".into(), "text/html", reserved("CONTENT-TYPE")),
            ("DKIM-Signature".into(), "v=1", reserved("DKIM-Signature")),
            ("Message-Id".into(), "<a@b>", reserved("Message-Id")),
            (
                "X-Postwerk-Stream".into(),
                "broadcast",
                reserved("X-Postwerk-Stream"),
            ),
            (
                "x-postwerk-stream".into(),
                "broadcast",
                reserved("x-postwerk-stream"),
            ),
            ("X-Postwerk".into(), "x", reserved("X-Postwerk")),
            ("".into(), "x", Err(MimeError::BadHeaderName)),
            ("X Foo".into(), "x", Err(MimeError::BadHeaderName)),
            ("X:Foo".into(), "x", Err(MimeError::BadHeaderName)),
            ("X-Foo\r\nBcc".into(), "x", Err(MimeError::BadHeaderName)),
            ("Héader".into(), "x", Err(MimeError::BadHeaderName)),
            ("bob@example.com".into(), "x", Err(MimeError::BadHeaderName)),
            ("X".repeat(76), "x", Ok(())),
            ("X".repeat(77), "x", Err(MimeError::BadHeaderName)),
        ];
        for (name, value, want) in cases {
            assert_eq!(validate_header(&name, value), want, "{name:?}: {value:?}");
        }
        // Errors never echo the value, so never an address from it.
        let err = validate_header("X-Foo", "victim@example.com\r\n").unwrap_err();
        assert!(!err.to_string().contains('@'), "{err}");
    }

    /// Changes a valid fixture into an invalid one.
    type Mutation = fn(&mut Fixture);

    #[test]
    fn render_refuses_invalid_input() {
        let cases: [(&str, Mutation, MimeError); 5] = [
            ("no body", (|f| f.text = None), MimeError::NoBody),
            (
                "injected header",
                (|f| f.headers = vec![("X-A".into(), "1\r\nBcc: x@y.z".into())]),
                MimeError::BadHeaderValue("X-A".into()),
            ),
            (
                "reserved header",
                (|f| f.headers = vec![("Sender".into(), "x".into())]),
                MimeError::ReservedHeader("Sender".into()),
            ),
            (
                "message id",
                (|f| f.message_id = "a@b>\r\nBcc: x".into()),
                MimeError::BadHeaderValue("Message-ID".into()),
            ),
            (
                "message id without @",
                (|f| f.message_id = "abc".into()),
                MimeError::BadHeaderValue("Message-ID".into()),
            ),
        ];
        let attachment_cases: [(Attachment, MimeError); 15] = [
            (att("a", "", b"", None), MimeError::BadContentType),
            (att("a", "pdf", b"", None), MimeError::BadContentType),
            (
                att("a", "application/", b"", None),
                MimeError::BadContentType,
            ),
            (
                att("a", "text/plain\r\nBcc: x", b"", None),
                MimeError::BadContentType,
            ),
            (
                att("a", "multipart/mixed", b"", None),
                MimeError::BadContentType,
            ),
            (
                att("a", "message/rfc822", b"", None),
                MimeError::BadContentType,
            ),
            (
                att("a", "text/plain; charset", b"", None),
                MimeError::BadContentType,
            ),
            (
                att("a", "text/plain; x=\"open", b"", None),
                MimeError::BadContentType,
            ),
            (att("", "text/plain", b"", None), MimeError::BadFilename),
            (
                att("a\r\nb", "text/plain", b"", None),
                MimeError::BadFilename,
            ),
            (
                att("../etc/passwd", "text/plain", b"", None),
                MimeError::BadFilename,
            ),
            (
                att("invoice\u{202E}fdp.exe", "text/plain", b"", None),
                MimeError::BadFilename,
            ),
            (
                att(&"a".repeat(256), "text/plain", b"", None),
                MimeError::BadFilename,
            ),
            (
                att("a", "image/png", b"", Some("a b")),
                MimeError::BadContentId,
            ),
            (
                att("a", "image/png", b"", Some("<x>\r\n")),
                MimeError::BadContentId,
            ),
        ];
        for (name, mutate, want) in cases {
            let mut fx = Fixture::new();
            mutate(&mut fx);
            assert_eq!(render(&fx.parts()), Err(want), "{name}");
        }
        for (a, want) in attachment_cases {
            let mut fx = Fixture::new();
            fx.attachments = vec![a.clone()];
            assert_eq!(render(&fx.parts()), Err(want), "{a:?}");
        }
        // Accepted variants.
        for a in [
            att("a.csv", "text/csv; charset=utf-8", b"1,2", None),
            att("a.txt", "text/plain; name=\"given.txt\"", b"x", None),
            att("a.png", "image/png", b"x", Some("<logo@example.com>")),
        ] {
            let mut fx = Fixture::new();
            fx.attachments = vec![a.clone()];
            let e = Entity::parse(&fx.render());
            assert_eq!(e.parts[1].decoded(), a.content, "{a:?}");
            assert_eq!(
                e.parts[1]
                    .header("Content-Type")
                    .unwrap()
                    .matches("name=")
                    .count(),
                1
            );
        }
        for err in [
            MimeError::ReservedHeader("Bcc".into()),
            MimeError::BadContentId,
        ] {
            assert!(!err.to_string().contains('@'));
        }
    }

    #[test]
    fn python_email_parser_agrees() {
        const SCRIPT: &str = r#"
import sys, json, base64, email, email.policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
# The bytes parser keeps raw (RFC 6532) UTF-8 header bytes as surrogate escapes.
raw = lambda s: s.encode("utf-8", "surrogateescape").decode("utf-8")
defects = []
for part in m.walk():
    defects += [type(d).__name__ for d in part.defects]
    for k, v in part.items():
        defects += [k + ":" + type(d).__name__ for d in getattr(v, "defects", ())]
text = m.get_body(preferencelist=("plain",))
html = m.get_body(preferencelist=("html",))
leaves = []
for part in m.walk():
    if part.is_multipart() or part is text or part is html:
        continue
    leaves.append({
        "type": part.get_content_type(),
        "filename": part.get_filename(),
        "cid": part["content-id"],
        "disposition": part.get_content_disposition(),
        "data": base64.b64encode(part.get_payload(decode=True)).decode(),
    })
frm = m["from"].addresses[0]
print(json.dumps({
    "subject": str(m["subject"]),
    "from_name": frm.display_name,
    "from_addr": raw(frm.addr_spec),
    "to": [[a.display_name, raw(a.addr_spec)] for a in m["to"].addresses],
    "custom": str(m["x-campaign"]),
    "structure": m.get_content_type(),
    "text": text.get_content() if text else None,
    "html": html.get_content() if html else None,
    "leaves": leaves,
    "defects": defects,
}))
"#;
        let mut fx = Fixture::new();
        fx.from = mb("news@example.com", Some("Zoë «Postwerk» Büro, GmbH"));
        fx.to = vec![
            mb("bob@example.net", Some("Smith, Bob")),
            mb("jörg@müller.de", Some("Jörg")),
        ];
        fx.subject = "Grüße — your invoice 🎉 is ready, with a rather long subject to fold".into();
        fx.text = Some(format!("Hallo Jörg,\n{}\n=end \n", "lang ".repeat(50)));
        fx.html = Some("<p>Hallo <img src=\"cid:logo@x\"></p>\n".into());
        fx.headers = vec![("X-Campaign".into(), "Frühling 2026".into())];
        let pdf = binary();
        fx.attachments = vec![
            att("Rechnung Nr. 1 – März.pdf", "application/pdf", &pdf, None),
            att(
                "logo.png",
                "image/png",
                &[0x89, b'P', b'N', b'G', 0, 255],
                Some("logo@x"),
            ),
            att(
                &("長い名前".repeat(20) + ".txt"),
                "text/plain; charset=utf-8",
                b"plain\n",
                None,
            ),
        ];
        let out = fx.render();
        let child = std::process::Command::new("python3")
            .args(["-c", SCRIPT])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => panic!("spawning python3 (required by the test suite): {e}"),
        };
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &out).unwrap();
        let result = child.wait_with_output().unwrap();
        assert!(
            result.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
        // Python's bytes parser predates RFC 6532: the raw UTF-8 address in To (and only
        // that) is reported as undecodable / non-ASCII. Anything else is a real defect.
        let allowed = ["To:NonASCIILocalPartDefect", "To:UndecodableBytesDefect"];
        let defects: Vec<&str> = v["defects"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d.as_str())
            .filter(|d| !allowed.contains(d))
            .collect();
        assert!(defects.is_empty(), "python reported defects: {defects:?}");
        assert_eq!(v["subject"], fx.subject.as_str());
        assert_eq!(v["from_name"], "Zoë «Postwerk» Büro, GmbH");
        assert_eq!(v["from_addr"], "news@example.com");
        assert_eq!(
            v["to"],
            serde_json::json!([
                ["Smith, Bob", "bob@example.net"],
                ["Jörg", "jörg@müller.de"]
            ])
        );
        assert_eq!(v["custom"], "Frühling 2026");
        assert_eq!(v["structure"], "multipart/mixed");
        let nl = |s: &str| s.replace("\r\n", "\n");
        assert_eq!(nl(v["text"].as_str().unwrap()), fx.text.clone().unwrap());
        assert_eq!(nl(v["html"].as_str().unwrap()), fx.html.clone().unwrap());
        let leaves = v["leaves"].as_array().unwrap();
        assert_eq!(leaves.len(), 3, "{leaves:?}");
        for a in &fx.attachments {
            let leaf = leaves
                .iter()
                .find(|l| l["filename"] == a.filename.as_str())
                .unwrap_or_else(|| panic!("python lost {}", a.filename));
            assert_eq!(leaf["data"], STANDARD.encode(&a.content), "{}", a.filename);
            let want_type = a.content_type.split(';').next().unwrap();
            assert_eq!(leaf["type"], want_type);
            match &a.content_id {
                Some(cid) => {
                    assert_eq!(leaf["cid"], format!("<{cid}>"));
                    assert_eq!(leaf["disposition"], "inline");
                }
                None => assert_eq!(leaf["disposition"], "attachment"),
            }
        }
    }
}
