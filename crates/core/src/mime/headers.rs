//! Header fields: folding, dates, addresses, RFC 2047 encoded-words and RFC 2231
//! parameters.

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::SOFT_LIMIT;
use super::body::{push_base64, push_hex};
use crate::address::Mailbox;

/// Longest header token written as-is; longer ones force encoded-words so that no header
/// line can reach [`MAX_LINE`](super::MAX_LINE) (name ≤ 76 + ": " + 900 + a trailing blank
/// run < 998).
const MAX_PLAIN_TOKEN: usize = 900;
/// Longest run of trailing whitespace written as-is (it cannot be folded).
const MAX_TRAILING_BLANK: usize = 16;
/// RFC 2047 §2 maximum encoded-word length.
pub(super) const MAX_ENCODED_WORD: usize = 75;
/// `=?utf-8?B?` + `?=`.
const EW_OVERHEAD: usize = 12;
/// Below this much room on the current line an encoded-word starts a new line instead.
const MIN_EW_ROOM: usize = 24;
/// Longest quoted `filename="…"` value; longer ones use RFC 2231 continuations.
const MAX_SIMPLE_PARAM: usize = 60;
/// Fewest encoded characters per RFC 2231 continuation segment (one 4-byte character).
const MIN_PARAM_SEGMENT: usize = 12;

/// Writes one header field, folding between tokens so lines stay within 78 characters
/// where a token boundary allows it.
pub(super) struct Fold<'o> {
    pub(super) out: &'o mut Vec<u8>,
    col: usize,
    has_token: bool,
}

impl<'o> Fold<'o> {
    pub(super) fn new(out: &'o mut Vec<u8>, name: &str) -> Self {
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
    pub(super) fn sep(&mut self, len: usize) {
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

    pub(super) fn token(&mut self, pieces: &[&[u8]]) {
        self.sep(pieces.iter().map(|p| p.len()).sum());
        for p in pieces {
            self.out.extend_from_slice(p);
        }
    }

    pub(super) fn finish(self) {
        self.out.extend_from_slice(b"\r\n");
    }
}

pub(super) fn write_date(out: &mut Vec<u8>, date: &DateTime<Utc>) {
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

pub(super) fn write_address_list(out: &mut Vec<u8>, name: &str, list: &[Mailbox]) {
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
pub(super) fn write_mailbox(f: &mut Fold<'_>, m: &Mailbox, comma: bool) {
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

pub(super) fn is_atext(b: u8) -> bool {
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
pub(super) fn write_unstructured(f: &mut Fold<'_>, value: &str, guard_marker: bool) {
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
pub(super) fn write_param(f: &mut Fold<'_>, attr: &[u8], value: &str, more: bool) {
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
