//! Body transfer encodings: `7bit` text, quoted-printable (RFC 2045 §6.7) and base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{BOUNDARY_MARK, MAX_LINE, RECIPIENT_PLACEHOLDER};

/// RFC 2045 §6.7 maximum quoted-printable line length.
pub(super) const QP_LINE: usize = 76;
/// Base64 input bytes per 76-character output line.
const B64_CHUNK: usize = 57;
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A text or html body and how it will be encoded.
pub(super) struct TextBody<'a> {
    text: &'a str,
    /// Any CR at all; without one, lines are found with a (memchr-backed) `\n` search.
    has_cr: bool,
    quoted_printable: bool,
    /// Upper bound of the encoded size.
    pub(super) hint: usize,
}

impl<'a> TextBody<'a> {
    pub(super) fn scan(text: &'a str) -> Self {
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

    pub(super) fn write(&self, out: &mut Vec<u8>, subtype: &[u8]) {
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
pub(super) struct Lines<'a> {
    rest: &'a str,
    has_cr: bool,
}

impl<'a> Lines<'a> {
    pub(super) fn new(text: &'a str, has_cr: bool) -> Self {
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
pub(super) fn qp_literal(b: u8) -> bool {
    ((32..=126).contains(&b) && b != b'=') || b == b'\t'
}

/// RFC 2045 §6.7 with CRLF hard breaks, soft breaks keeping lines ≤ 76 characters and
/// whitespace at the end of a line encoded. Runs of literal bytes are copied in one go.
pub(super) fn write_quoted_printable(out: &mut Vec<u8>, text: &str, has_cr: bool) {
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
                if take < run {
                    take = unsplit(line, i, take);
                    if take == 0 {
                        out.extend_from_slice(b"=\r\n");
                        col = 0;
                        continue;
                    }
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

/// Where to cut a literal run starting at `i` after `take` bytes so that no
/// [`RECIPIENT_PLACEHOLDER`] is split by a soft line break (it is replaced per
/// recipient after rendering and must stay contiguous).
fn unsplit(line: &[u8], i: usize, take: usize) -> usize {
    let p = RECIPIENT_PLACEHOLDER.as_bytes();
    let cut = i + take;
    let from = (cut + 1).saturating_sub(p.len()).max(i);
    let to = (cut + p.len() - 1).min(line.len());
    match line[from..to].windows(p.len()).position(|w| w == p) {
        Some(at) if from + at < cut => from + at - i,
        _ => take,
    }
}

pub(super) fn push_hex(out: &mut Vec<u8>, prefix: u8, b: u8) {
    out.extend_from_slice(&[prefix, HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}

/// Appends standard base64 of `data` without line breaks.
pub(super) fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    out.resize(start + data.len().div_ceil(3) * 4, 0);
    let written = STANDARD
        .encode_slice(data, &mut out[start..])
        .expect("buffer sized for the encoded data");
    out.truncate(start + written);
}

/// Base64 in 76-character lines separated by CRLF (no final CRLF), encoded in place into
/// one region sized up front.
pub(super) fn write_base64_lines(out: &mut Vec<u8>, data: &[u8]) {
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
