//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463), and the reply reader.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Longest accepted reply line, excluding CRLF (RFC 5321 §4.5.3.1.5 allows 512; servers exceed it).
pub(crate) const MAX_LINE: usize = 4096;
/// Most lines accepted in one multi-line reply.
const MAX_LINES: usize = 256;

/// An RFC 3463 enhanced status code such as `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// Class: 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// Subject (0..=999).
    pub subject: u16,
    /// Detail (0..=999).
    pub detail: u16,
}

impl EnhancedCode {
    /// Parses a leading `class.subject.detail` followed by a space or the end of `text`,
    /// returning the code and the rest of the text.
    pub fn parse_prefix(text: &str) -> Option<(Self, &str)> {
        let (code, rest) = match text.find(' ') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        let mut parts = code.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let num = |s: &str, max_len: usize| -> Option<u16> {
            if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let class = u8::try_from(num(class, 1)?).ok()?;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        let code = Self {
            class,
            subject: num(subject, 3)?,
            detail: num(detail, 3)?,
        };
        Some((code, rest.trim_start()))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete (possibly multi-line) SMTP reply.
///
/// `text` is the server's free text and may quote addresses: do not log it verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code, when the server sent one whose class matches `code`.
    pub enhanced: Option<EnhancedCode>,
    /// Text of all lines (without codes), joined by a single space.
    pub text: String,
}

impl SmtpReply {
    /// 2xx or 3xx: completion or positive intermediate (e.g. 354).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx: transient negative completion (try again later).
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: permanent negative completion.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The codes only (`"550 5.1.1"`), safe to log: no server text.
    pub fn status(&self) -> String {
        match self.enhanced {
            Some(e) => format!("{} {e}", self.code),
            None => self.code.to_string(),
        }
    }

    /// Builds a reply from its code and per-line texts (codes already stripped).
    pub(crate) fn from_lines(code: u16, lines: &[String]) -> Self {
        let class = u8::try_from(code / 100).unwrap_or(0);
        let enhanced = lines
            .first()
            .and_then(|l| EnhancedCode::parse_prefix(l))
            .filter(|(e, _)| e.class == class)
            .map(|(e, _)| e);
        let mut text = String::new();
        for line in lines {
            let t = match enhanced {
                Some(e) => match EnhancedCode::parse_prefix(line) {
                    Some((c, rest)) if c == e => rest,
                    _ => line.as_str(),
                },
                None => line.as_str(),
            };
            if !text.is_empty() && !t.is_empty() {
                text.push(' ');
            }
            text.push_str(t);
        }
        Self {
            code,
            enhanced,
            text,
        }
    }
}

impl fmt::Display for SmtpReply {
    /// `550 5.1.1 text` (server text included: may contain addresses).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = self.enhanced {
            write!(f, " {e}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// Why a reply could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    /// Malformed reply; the message never contains server text.
    Protocol(&'static str),
}

/// One reply as received: its code and the text of each line.
#[derive(Debug)]
pub(crate) struct RawReply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl RawReply {
    pub fn to_reply(&self) -> SmtpReply {
        SmtpReply::from_lines(self.code, &self.lines)
    }
}

/// The per-connection read buffer.
pub(crate) struct ReplyReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReplyReader {
    pub fn new() -> Self {
        Self {
            buf: vec![0; 2 * MAX_LINE + 2].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// True if bytes were received that no reply has consumed yet.
    pub fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// Reads one complete reply (all lines up to the one without `-`).
    pub async fn read_reply<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<RawReply, ReadError> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line(r).await?;
            let (code, last, text) = parse_line(line)?;
            if lines.len() == MAX_LINES {
                return Err(ReadError::Protocol("too many lines in reply"));
            }
            lines.push(text);
            if last {
                return Ok(RawReply { code, lines });
            }
        }
    }

    /// Returns the next line without its line ending.
    async fn read_line<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<&[u8], ReadError> {
        let mut scanned = 0;
        loop {
            let pending = &self.buf[self.start + scanned..self.end];
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let nl = self.start + scanned + i;
                let line_start = self.start;
                self.start = nl + 1;
                let mut line = &self.buf[line_start..nl];
                if let Some(l) = line.strip_suffix(b"\r") {
                    line = l;
                }
                if line.len() > MAX_LINE {
                    return Err(ReadError::Protocol("reply line too long"));
                }
                return Ok(line);
            }
            scanned = self.end - self.start;
            if scanned > MAX_LINE + 1 {
                return Err(ReadError::Protocol("reply line too long"));
            }
            if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let n = r
                .read(&mut self.buf[self.end..])
                .await
                .map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.end += n;
        }
    }
}

/// Splits `250-text` / `250 text` / `250` into (code, is_last, text).
fn parse_line(line: &[u8]) -> Result<(u16, bool, String), ReadError> {
    let bad = ReadError::Protocol("malformed reply line");
    if line.len() < 3
        || !line[..3].iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&line[0])
    {
        return Err(bad);
    }
    let code = line[..3]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &[][..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(bad),
    };
    Ok((
        code,
        last,
        String::from_utf8_lossy(text).trim_end().to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_code_table() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("5.1.1 User unknown", Some(("5.1.1", "User unknown"))),
            ("2.0.0 Ok: queued", Some(("2.0.0", "Ok: queued"))),
            ("4.7.0", Some(("4.7.0", ""))),
            ("5.7.1  spaced", Some(("5.7.1", "spaced"))),
            ("4.100.999 x", Some(("4.100.999", "x"))),
            ("3.1.1 bad class", None),
            ("5.1 too short", None),
            ("5.1.1.1 too long", None),
            ("5.1000.1 too wide", None),
            ("5.a.1 letters", None),
            ("5.1.1x glued", None),
            ("Ok", None),
        ];
        for (input, expected) in cases {
            let got = EnhancedCode::parse_prefix(input).map(|(c, r)| (c.to_string(), r));
            let expected = expected.map(|(c, r)| (c.to_string(), r));
            assert_eq!(got, expected, "{input}");
        }
    }

    async fn read_all(input: &[u8]) -> Vec<Result<SmtpReply, String>> {
        let mut reader = ReplyReader::new();
        let mut src = input;
        let mut out = Vec::new();
        loop {
            match reader.read_reply(&mut src).await {
                Ok(raw) => out.push(Ok(raw.to_reply())),
                Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(ReadError::Io(e)) => panic!("{e}"),
                Err(ReadError::Protocol(p)) => {
                    out.push(Err(p.to_owned()));
                    break;
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn reply_parsing_table() {
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE));
        let ok_long = format!("250 {}\r\n", "y".repeat(MAX_LINE - 4));
        let cases: &[(&[u8], &[&str])] = &[
            (b"220 mx.example ESMTP\r\n", &["220 mx.example ESMTP"]),
            (
                b"250-first\r\n250-second\r\n250 third\r\n",
                &["250 first second third"],
            ),
            (
                b"550-5.1.1 The email account\r\n550-5.1.1 does not exist.\r\n550 5.1.1 Bye\r\n",
                &["550 5.1.1 The email account does not exist. Bye"],
            ),
            (
                b"250 2.1.5 Ok\r\n354 go ahead\r\n",
                &["250 2.1.5 Ok", "354 go ahead"],
            ),
            (b"250\r\n", &["250"]),
            (b"250 ok\n", &["250 ok"]),
            // Enhanced class must match the reply class.
            (b"550 2.0.0 odd\r\n", &["550 2.0.0 odd"]),
            (b"421 4.3.2 closing\r\n", &["421 4.3.2 closing"]),
            (b"25O bad\r\n", &["ERR malformed reply line"]),
            (b"150 bad class\r\n", &["ERR malformed reply line"]),
            (b"250_x\r\n", &["ERR malformed reply line"]),
            (long.as_bytes(), &["ERR reply line too long"]),
        ];
        for (input, expected) in cases {
            let got: Vec<String> = read_all(input)
                .await
                .into_iter()
                .map(|r| match r {
                    Ok(reply) => reply.to_string(),
                    Err(e) => format!("ERR {e}"),
                })
                .collect();
            assert_eq!(got, *expected, "{}", String::from_utf8_lossy(input));
        }
        let got = read_all(ok_long.as_bytes()).await;
        assert!(matches!(&got[..], [Ok(r)] if r.text.len() == MAX_LINE - 4));
        let odd = read_all(b"550 2.0.0 odd\r\n").await;
        assert!(matches!(&odd[..], [Ok(r)] if r.enhanced.is_none() && r.is_permanent()));
    }

    #[test]
    fn reply_classes() {
        let r = |code| SmtpReply::from_lines(code, &["5.1.1 x".to_owned()]);
        assert!(r(250).is_positive() && r(354).is_positive() && !r(250).is_transient());
        assert!(r(451).is_transient() && !r(451).is_permanent() && !r(451).is_positive());
        assert!(r(550).is_permanent() && !r(550).is_transient());
        assert_eq!(r(550).status(), "550 5.1.1");
        assert_eq!(r(550).to_string(), "550 5.1.1 x");
        assert_eq!(r(250).status(), "250");
    }
}
