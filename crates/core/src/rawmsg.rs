//! Helpers for RFC 5322 messages given as bytes (raw API sends, SMTP submission):
//! line-ending normalisation, header lookup and removal, Message-ID/Date insertion.
//! Pure; header values are returned to the caller, never logged.

use crate::address::{AddressError, Mailbox};

/// Converts bare LF and bare CR line endings to CRLF.
pub fn normalize_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 50);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Offset just past the last header line's CRLF (the empty line starts there), for a
/// CRLF message. `None` without an empty line.
pub fn find_header_end(message: &[u8]) -> Option<usize> {
    if message.starts_with(b"\r\n") {
        return Some(0);
    }
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
}

/// The unfolded value of the first header called `name` (case-insensitive).
pub fn header_value(headers: &[u8], name: &str) -> Option<String> {
    header_values(headers, name).into_iter().next()
}

/// The unfolded values of every header called `name` (case-insensitive), in order.
pub fn header_values(headers: &[u8], name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(headers);
    let mut lines = text.split("\r\n").peekable();
    let mut values = Vec::new();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            break;
        }
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        if n.trim().eq_ignore_ascii_case(name) {
            let mut value = v.trim().to_string();
            while let Some(cont) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(cont.trim());
                lines.next();
            }
            values.push(value);
        }
    }
    values
}

/// Why a message's From header is not exactly one valid mailbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FromError {
    /// No From header.
    #[error("the message has no From header")]
    Missing,
    /// More than one From header.
    #[error("the message has more than one From header")]
    MultipleHeaders,
    /// One From header naming more than one mailbox (or a group).
    #[error("the From header names more than one mailbox")]
    MultipleMailboxes,
    /// The mailbox is not valid.
    #[error("invalid From mailbox: {0}")]
    Invalid(#[from] AddressError),
}

/// The one mailbox of the header block's From header. Two From headers, or a From
/// with two mailboxes (`a@x.example, b@y.example`), are refused: the registered-domain
/// check would look at one of them while a mail reader may show the other. Used by
/// both doors that take whole messages (raw API sends and SMTP submission).
pub fn single_from(headers: &[u8]) -> Result<Mailbox, FromError> {
    let mut values = header_values(headers, "from").into_iter();
    let value = values.next().ok_or(FromError::Missing)?;
    if values.next().is_some() {
        return Err(FromError::MultipleHeaders);
    }
    if has_list_separator(&value) {
        return Err(FromError::MultipleMailboxes);
    }
    Ok(Mailbox::parse(&value)?)
}

/// Whether a header value has a `,` (mailbox list) or `:`/`;` (group) outside quoted
/// strings, comments and angle brackets.
fn has_list_separator(value: &str) -> bool {
    let (mut quoted, mut escaped, mut comment, mut angle) = (false, false, 0u32, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 => escaped = true,
            '"' if comment == 0 && !angle => quoted = !quoted,
            _ if quoted => {}
            '(' => comment += 1,
            ')' if comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            '<' => angle = true,
            '>' => angle = false,
            ',' | ';' | ':' if !angle => return true,
            _ => {}
        }
    }
    false
}

/// Removes every header called `name` (with its folded continuation lines) from the
/// header block `message[..header_end]`; returns the new header end.
pub fn remove_header(message: &mut Vec<u8>, header_end: usize, name: &str) -> usize {
    let mut end = header_end;
    let mut pos = 0;
    while pos < end {
        let line_end = line_end(message, pos, end);
        let line = &message[pos..line_end];
        let matches = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|c| line[..c].trim_ascii().eq_ignore_ascii_case(name.as_bytes()));
        if !matches {
            pos = line_end;
            continue;
        }
        let mut stop = line_end;
        while stop < end && matches!(message[stop], b' ' | b'\t') {
            stop = self::line_end(message, stop, end);
        }
        message.drain(pos..stop);
        end -= stop - pos;
    }
    end
}

fn line_end(message: &[u8], from: usize, limit: usize) -> usize {
    message[from..limit]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(limit, |p| from + p + 2)
}

/// Prepends `Message-ID: <id@host>` and `Date:` when the header block lacks them
/// (the header block is `message[..header_end]`); returns the new header end.
pub fn add_missing_ids(message: &mut Vec<u8>, header_end: usize, id: &str, host: &str) -> usize {
    let mut prefix = String::new();
    if header_value(&message[..header_end], "message-id").is_none() {
        prefix.push_str(&format!("Message-ID: <{id}@{host}>\r\n"));
    }
    if header_value(&message[..header_end], "date").is_none() {
        prefix.push_str(&format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822()));
    }
    let added = prefix.len();
    if added > 0 {
        message.splice(0..0, prefix.into_bytes());
    }
    header_end + added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_removed_and_added() {
        let mut m = normalize_crlf(
            b"From: a@example.com\nX-Postwerk-Stream: broadcast\nX-Postwerk-Tags: a,\n b\nSubject: Hi\n\nX-Postwerk-Tags: body\n",
        );
        let end = find_header_end(&m).unwrap();
        assert_eq!(
            header_value(&m[..end], "x-postwerk-tags").as_deref(),
            Some("a, b")
        );
        let end = remove_header(&mut m, end, "X-Postwerk-Tags");
        let end = remove_header(&mut m, end, "x-postwerk-stream");
        assert_eq!(
            &m[..],
            b"From: a@example.com\r\nSubject: Hi\r\n\r\nX-Postwerk-Tags: body\r\n"
        );
        let end = add_missing_ids(&mut m, end, "msg_1", "h.example");
        let text = String::from_utf8(m.clone()).unwrap();
        assert!(
            text.starts_with("Message-ID: <msg_1@h.example>\r\nDate: "),
            "{text}"
        );
        assert_eq!(&m[end..end + 2], b"\r\n");
        assert_eq!(find_header_end(b"\r\nbody"), Some(0));
        assert_eq!(find_header_end(b"From: x"), None);
    }

    #[test]
    fn exactly_one_from_mailbox() {
        let from = |h: &str| single_from(h.as_bytes()).map(|m| m.address.to_string());
        for ok in [
            "From: a@example.com\r\n",
            "From: \"Doe, Jane\" <jane@example.com>\r\n",
            "From: (work, main) Jane <jane@example.com>\r\nTo: x@y.test, z@y.test\r\n",
            "Subject: s\r\nfrom:\r\n  Jane <jane@example.com>\r\n",
        ] {
            assert!(from(ok).is_ok(), "{ok}: {:?}", from(ok));
        }
        let cases = [
            ("Subject: x\r\n", FromError::Missing),
            (
                "From: a@example.com\r\nFrom: b@evil.test\r\n",
                FromError::MultipleHeaders,
            ),
            (
                "From: a@example.com\r\nSubject: s\r\nFROM : a@example.com\r\n",
                FromError::MultipleHeaders,
            ),
            (
                "From: b@evil.test, Bob <a@example.com>\r\n",
                FromError::MultipleMailboxes,
            ),
            (
                "From: <b@evil.test>,\r\n <a@example.com>\r\n",
                FromError::MultipleMailboxes,
            ),
            (
                "From: friends: b@evil.test, a@example.com;\r\n",
                FromError::MultipleMailboxes,
            ),
            (
                "From: nobody\r\n",
                FromError::Invalid(AddressError::MissingAt),
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(single_from(headers.as_bytes()), Err(want), "{headers}");
        }
    }

    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus.rs"));

    /// Every committed address fuzz corpus file is read without panicking.
    #[test]
    fn replays_the_address_fuzz_corpus() {
        for (path, data) in fuzz_corpus("address") {
            eprintln!("{}", path.display());
            let text = String::from_utf8_lossy(&data);
            let _ = crate::address::Address::parse(&text);
            let _ = Mailbox::parse(&text);
            let _ = single_from(&data);
        }
    }
}
