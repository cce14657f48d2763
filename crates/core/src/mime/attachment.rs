//! Attachment parts: validation of content type, file name and Content-ID, and writing.

use super::body::write_base64_lines;
use super::headers::{Fold, is_atext, write_param};
use super::{Attachment, MimeError};

/// Longest accepted attachment content type, file name (characters) and Content-ID.
const MAX_CONTENT_TYPE: usize = 255;
const MAX_FILENAME: usize = 255;
pub(super) const MAX_CONTENT_ID: usize = 250;

pub(super) fn write_attachment(out: &mut Vec<u8>, a: &Attachment, inline: bool) {
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

pub(super) fn validate_attachment(a: &Attachment) -> Result<(), MimeError> {
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
