//! The fuzz entry for the MIME composer (`fuzz/fuzz_targets/mime.rs`, and the corpus
//! replay in `tests/fuzz_corpora.rs`): arbitrary bytes become the API's inputs, and
//! whatever renders must be a well-formed message.

use chrono::DateTime;

use super::{Attachment, MAX_LINE, MessageParts, render, validate_header};
use crate::address::Mailbox;

/// Splits `data` at `0xFF` bytes (never part of UTF-8) into From, To (comma-separated),
/// Subject, text, html, one custom header (name, value) and one attachment (file name,
/// content type, content, Content-ID), renders them, and panics if the result breaks
/// an invariant: CRLF line endings only, lines of at most 998 octets, and exactly one
/// From header (no header injection through any field).
#[doc(hidden)]
pub fn render_fields(data: &[u8]) {
    let fields: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let field = |i: usize| {
        fields
            .get(i)
            .map(|f| String::from_utf8_lossy(f).into_owned())
    };
    let from = field(0)
        .and_then(|f| Mailbox::parse(&f).ok())
        .unwrap_or_else(|| Mailbox::parse("a@example.com").expect("valid"));
    let to: Vec<Mailbox> = field(1)
        .map(|f| {
            f.split(',')
                .filter_map(|m| Mailbox::parse(m).ok())
                .collect()
        })
        .unwrap_or_default();
    let subject = field(2).unwrap_or_default();
    let (text, html) = (field(3), field(4));
    let headers: Vec<(String, String)> = match (field(5), field(6)) {
        (Some(n), Some(v)) if validate_header(&n, &v).is_ok() => vec![(n, v)],
        _ => Vec::new(),
    };
    let attachments: Vec<Attachment> = match (field(7), field(8), fields.get(9)) {
        (Some(filename), Some(content_type), Some(content)) => vec![Attachment {
            filename,
            content_type,
            content: content.to_vec(),
            content_id: field(10),
        }],
        _ => Vec::new(),
    };
    let parts = MessageParts {
        from: &from,
        to: &to,
        cc: &[],
        reply_to: None,
        subject: &subject,
        text: text.as_deref(),
        html: html.as_deref(),
        headers: &headers,
        attachments: &attachments,
        message_id: "msg_1@mta.example.com",
        date: DateTime::from_timestamp(0, 0).expect("epoch"),
    };
    let Ok(out) = render(&parts) else {
        return;
    };
    let (mut rest, mut from_headers, mut in_headers) = (&out[..], 0, true);
    while !rest.is_empty() {
        let lf = rest
            .iter()
            .position(|&b| b == b'\n')
            .expect("ends with CRLF");
        let line = rest[..lf].strip_suffix(b"\r").expect("LF without CR");
        rest = &rest[lf + 1..];
        assert!(!line.contains(&b'\r'), "bare CR");
        assert!(line.len() <= MAX_LINE, "line of {} octets", line.len());
        if line.is_empty() {
            in_headers = false;
        }
        if in_headers
            && line
                .get(..5)
                .is_some_and(|h| h.eq_ignore_ascii_case(b"from:"))
        {
            from_headers += 1;
        }
    }
    assert_eq!(from_headers, 1, "From headers");
}
