//! The render plan: which parts a message has, how they nest and their boundaries.

use rand::Rng;
use rand::distributions::Alphanumeric;

use super::attachment::{validate_attachment, write_attachment};
use super::body::TextBody;
use super::headers::{Fold, write_address_list, write_date, write_mailbox, write_unstructured};
use super::{
    Attachment, BOUNDARY_MARK, MessageParts, MimeError, valid_message_id, validate_header,
};
use crate::address::Mailbox;

/// Random characters per boundary.
const TOKEN_LEN: usize = 24;
/// `=_pw` + kind letter + `_` + token.
pub(super) const BOUNDARY_LEN: usize = 6 + TOKEN_LEN;

/// A validated message with its body encodings decided.
pub(super) struct Plan<'p, 'a> {
    parts: &'p MessageParts<'a>,
    text: Option<TextBody<'a>>,
    html: Option<TextBody<'a>>,
    /// Inline (content-id) attachments go into a multipart/related.
    related: bool,
    token: [u8; TOKEN_LEN],
}

impl<'p, 'a> Plan<'p, 'a> {
    pub(super) fn new(parts: &'p MessageParts<'a>) -> Result<Self, MimeError> {
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
    pub(super) fn capacity_hint(&self) -> usize {
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

    pub(super) fn write_message(&self, out: &mut Vec<u8>) {
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
