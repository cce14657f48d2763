//! Relaxed canonicalisation (RFC 6376 §3.4.2, §3.4.4) and splitting a message into
//! header fields and body.

use ring::digest;

/// Splits a message into its header block (including the last header's CRLF) and body.
pub(super) fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    if let Some(rest) = message.strip_prefix(b"\r\n") {
        return (&[], rest);
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&message[..i + 2], &message[i + 4..]),
        None => (message, &[]),
    }
}

/// Splits a header block into `(name, value)` fields; `value` keeps its folding CRLFs.
pub(super) fn parse_fields(block: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(32);
    let mut current: Option<(usize, usize)> = None; // (start, end) of the current field
    let mut pos = 0;
    while pos < block.len() {
        let end = block[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(block.len(), |i| pos + i + 1);
        let continuation = matches!(block[pos], b' ' | b'\t');
        match current {
            Some((start, _)) if continuation => current = Some((start, end)),
            _ => {
                if let Some((s, e)) = current.take() {
                    push_field(&mut fields, &block[s..e]);
                }
                current = Some((pos, end));
            }
        }
        pos = end;
    }
    if let Some((s, e)) = current {
        push_field(&mut fields, &block[s..e]);
    }
    fields
}

fn push_field<'a>(fields: &mut Vec<(&'a [u8], &'a [u8])>, raw: &'a [u8]) {
    if let Some(colon) = raw.iter().position(|&b| b == b':') {
        fields.push((trim_wsp_end(&raw[..colon]), &raw[colon + 1..]));
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_wsp_end(s: &[u8]) -> &[u8] {
    let n = s.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    &s[..n]
}

/// Appends the relaxed canonical form (RFC 6376 §3.4.2) of one field, without CRLF.
pub(super) fn relaxed_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend(trim_wsp_end(name).iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let (mut started, mut space) = (false, false);
    for (i, &b) in value.iter().enumerate() {
        match b {
            b'\n' => {}
            b'\r' if value.get(i + 1) == Some(&b'\n') => {}
            b' ' | b'\t' => space = started,
            _ => {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(b);
                started = true;
            }
        }
    }
}

/// Receives canonical body bytes: a hash context in production, a `Vec` in tests.
pub(super) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for digest::Context {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Streams the relaxed canonical body (RFC 6376 §3.4.4) into `sink` without allocating:
/// WSP runs become one SP, trailing WSP and trailing empty lines are dropped, a missing final
/// CRLF is added, and an empty body stays empty.
pub(super) fn relaxed_body<S: Sink>(body: &[u8], sink: &mut S) {
    const CRLFS: &[u8; 64] = b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
    let mut pending_empty = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        let (line, full) = match find_crlf(rest) {
            Some(i) => (&rest[..i], &rest[..i + 2]),
            None => (rest, rest),
        };
        rest = &rest[full.len()..];
        let trimmed = trim_wsp_end(line);
        if trimmed.is_empty() {
            pending_empty += 1;
            continue;
        }
        while pending_empty > 0 {
            let n = pending_empty.min(CRLFS.len() / 2);
            sink.put(&CRLFS[..n * 2]);
            pending_empty -= n;
        }
        let mut seg_start = 0;
        let mut i = 0;
        while i < trimmed.len() {
            if !is_wsp(trimmed[i]) {
                i += 1;
                continue;
            }
            let run = i;
            while is_wsp(trimmed[i]) {
                i += 1; // cannot run off the end: `trimmed` ends with a non-WSP byte
            }
            if i - run > 1 || trimmed[run] == b'\t' {
                sink.put(&trimmed[seg_start..run]);
                sink.put(b" ");
                seg_start = i;
            }
        }
        if seg_start == 0 && trimmed.len() + 2 == full.len() {
            sink.put(full); // unchanged line: one update including its CRLF
        } else {
            sink.put(&trimmed[seg_start..]);
            sink.put(b"\r\n");
        }
    }
}

/// Index of the next CRLF (bare LF and CR are ordinary bytes, as in RFC 6376).
fn find_crlf(s: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].iter().position(|&b| b == b'\n') {
        let at = from + i;
        if at > 0 && s[at - 1] == b'\r' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}
