//! Helpers for RFC 5322 messages given as bytes (raw API sends, SMTP submission):
//! line-ending normalisation, header lookup and removal, Message-ID/Date insertion.
//! Pure; header values are returned to the caller, never logged.

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
    let text = String::from_utf8_lossy(headers);
    let mut lines = text.split("\r\n").peekable();
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
            return Some(value);
        }
    }
    None
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
}
