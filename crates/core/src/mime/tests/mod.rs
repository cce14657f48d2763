//! Tests for MIME rendering: a small independent MIME reader checks the structure,
//! encodings and headers of rendered messages.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::TimeZone;

use super::headers::MAX_ENCODED_WORD;
use super::*;

mod encoding;
mod header_fields;
mod python_interop;
mod structure;
mod validation;

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
