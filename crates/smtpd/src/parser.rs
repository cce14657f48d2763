//! The SMTP command parser: pure, borrowing, no I/O.
//!
//! [`parse`] takes one command line (without its line ending) and returns a
//! [`Command`] that borrows from it, or a [`ParseError`] that carries its reply.

use postwerk_core::address::Address;

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO name`.
    Ehlo(&'a str),
    /// `HELO name`.
    Helo(&'a str),
    /// `MAIL FROM:<path> [params]`; `None` is the null sender `<>`.
    Mail {
        /// The reverse path.
        from: Option<Address>,
        /// Declared `SIZE=`.
        size: Option<usize>,
    },
    /// `RCPT TO:<path> [params]`.
    Rcpt(Address),
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]`.
    Bdat {
        /// Chunk size in octets.
        size: usize,
        /// This is the last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH mechanism [initial-response]`.
    Auth {
        /// Upper-cased by the parser's caller as needed: `PLAIN`, `LOGIN`, …
        mechanism: &'a str,
        /// Base64 initial response (`=` is an empty one).
        initial: Option<&'a str>,
    },
    /// `VRFY …` (never answered truthfully).
    Vrfy,
    /// `HELP …`.
    Help,
}

/// Why a line is not a valid command. Each maps to one reply in `reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not a known verb: 500 5.5.1.
    Unknown,
    /// Known verb, bad arguments: 501 5.5.4.
    Syntax(&'static str),
    /// A path that is not a valid address: 501 5.1.3.
    BadAddress,
}

/// Parses one command line (the CRLF already removed).
pub fn parse(line: &[u8]) -> Result<Command<'_>, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("not UTF-8"))?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line, ""),
    };
    let is = |v: &str| verb.eq_ignore_ascii_case(v);
    let no_args = |c: Command<'static>| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::Syntax("no arguments allowed"))
        }
    };
    match verb.len() {
        4 if is("EHLO") || is("HELO") => {
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(ParseError::Syntax(
                    "EHLO/HELO needs one domain or address literal",
                ));
            }
            Ok(if is("EHLO") {
                Command::Ehlo(rest)
            } else {
                Command::Helo(rest)
            })
        }
        4 if is("MAIL") => {
            let (path, params) = path_arg(rest, "FROM:")?;
            let from = if path.is_empty() {
                None
            } else {
                Some(Address::parse(path).map_err(|_| ParseError::BadAddress)?)
            };
            let mut size = None;
            for p in params.split_ascii_whitespace() {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                match () {
                    _ if k.eq_ignore_ascii_case("SIZE") => {
                        size = Some(v.parse().map_err(|_| ParseError::Syntax("bad SIZE"))?);
                    }
                    _ if k.eq_ignore_ascii_case("BODY") => {
                        if !["7BIT", "8BITMIME"]
                            .iter()
                            .any(|b| v.eq_ignore_ascii_case(b))
                        {
                            return Err(ParseError::Syntax("BODY must be 7BIT or 8BITMIME"));
                        }
                    }
                    _ if k.eq_ignore_ascii_case("SMTPUTF8") && v.is_empty() => {}
                    _ if k.eq_ignore_ascii_case("AUTH") => {}
                    _ => return Err(ParseError::Syntax("unsupported MAIL parameter")),
                }
            }
            Ok(Command::Mail { from, size })
        }
        4 if is("RCPT") => {
            let (path, params) = path_arg(rest, "TO:")?;
            if !params.is_empty() {
                return Err(ParseError::Syntax("unsupported RCPT parameter"));
            }
            Address::parse(path)
                .map(Command::Rcpt)
                .map_err(|_| ParseError::BadAddress)
        }
        4 if is("DATA") => no_args(Command::Data),
        4 if is("BDAT") => {
            let mut it = rest.split_ascii_whitespace();
            let size = it
                .next()
                .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or(ParseError::Syntax("BDAT needs a chunk size"))?;
            let last = match it.next() {
                None => false,
                Some(l) if l.eq_ignore_ascii_case("LAST") => true,
                Some(_) => return Err(ParseError::Syntax("BDAT size [LAST]")),
            };
            if it.next().is_some() {
                return Err(ParseError::Syntax("BDAT size [LAST]"));
            }
            Ok(Command::Bdat { size, last })
        }
        4 if is("RSET") => no_args(Command::Rset),
        4 if is("NOOP") => Ok(Command::Noop),
        4 if is("QUIT") => no_args(Command::Quit),
        4 if is("VRFY") => Ok(Command::Vrfy),
        4 if is("HELP") => Ok(Command::Help),
        4 if is("AUTH") => {
            let mut it = rest.split_ascii_whitespace();
            let mechanism = it
                .next()
                .ok_or(ParseError::Syntax("AUTH needs a mechanism"))?;
            let initial = it.next();
            if it.next().is_some() {
                return Err(ParseError::Syntax("AUTH mechanism [initial-response]"));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        8 if is("STARTTLS") => no_args(Command::StartTls),
        _ => Err(ParseError::Unknown),
    }
}

/// Splits `FROM:<path> params` into the path (without brackets) and the parameters.
fn path_arg<'a>(rest: &'a str, keyword: &str) -> Result<(&'a str, &'a str), ParseError> {
    let syntax = ParseError::Syntax("expected FROM:<address> / TO:<address>");
    // Compared as bytes: the keyword is ASCII, so a match ends on a character boundary
    // (slicing the text at `keyword.len()` could cut a character: `FROMé:`).
    let head = rest.as_bytes().get(..keyword.len()).ok_or(syntax)?;
    if !head.eq_ignore_ascii_case(keyword.as_bytes()) {
        return Err(syntax);
    }
    let rest = rest[keyword.len()..].trim_start();
    let inner = rest.strip_prefix('<').ok_or(syntax)?;
    let close = inner.find('>').ok_or(syntax)?;
    let path = &inner[..close];
    // A source route `@a,@b:user@host` is accepted and ignored (RFC 5321 C).
    let path = match path.strip_prefix('@') {
        Some(p) => p.split_once(':').map_or(path, |(_, addr)| addr),
        None => path,
    };
    Ok((path, inner[close + 1..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    #[test]
    fn table() {
        use Command::*;
        let ok: Vec<(&str, Command<'_>)> = vec![
            ("EHLO client.test", Ehlo("client.test")),
            ("ehlo [127.0.0.1]", Ehlo("[127.0.0.1]")),
            ("HELO x", Helo("x")),
            (
                "MAIL FROM:<a@example.com>",
                Mail {
                    from: Some(addr("a@example.com")),
                    size: None,
                },
            ),
            (
                "mail from: <a@example.com> SIZE=100 BODY=8BITMIME SMTPUTF8",
                Mail {
                    from: Some(addr("a@example.com")),
                    size: Some(100),
                },
            ),
            (
                "MAIL FROM:<>",
                Mail {
                    from: None,
                    size: None,
                },
            ),
            ("RCPT TO:<b@example.test>", Rcpt(addr("b@example.test"))),
            (
                "RCPT TO:<@relay.test:b@example.test>",
                Rcpt(addr("b@example.test")),
            ),
            ("DATA", Data),
            (
                "BDAT 0 LAST",
                Bdat {
                    size: 0,
                    last: true,
                },
            ),
            (
                "bdat 1024",
                Bdat {
                    size: 1024,
                    last: false,
                },
            ),
            ("RSET", Rset),
            ("NOOP hi", Noop),
            ("QUIT", Quit),
            ("STARTTLS", StartTls),
            (
                "AUTH PLAIN AGEAYg==",
                Auth {
                    mechanism: "PLAIN",
                    initial: Some("AGEAYg=="),
                },
            ),
            (
                "AUTH LOGIN",
                Auth {
                    mechanism: "LOGIN",
                    initial: None,
                },
            ),
            ("VRFY root", Vrfy),
        ];
        for (line, want) in ok {
            assert_eq!(parse(line.as_bytes()), Ok(want), "{line}");
        }
        let bad: &[(&str, ParseError)] = &[
            ("", ParseError::Unknown),
            ("FOO bar", ParseError::Unknown),
            (
                "EHLO",
                ParseError::Syntax("EHLO/HELO needs one domain or address literal"),
            ),
            (
                "MAIL TO:<a@b.c>",
                ParseError::Syntax("expected FROM:<address> / TO:<address>"),
            ),
            (
                "MAIL FROM:a@b.c",
                ParseError::Syntax("expected FROM:<address> / TO:<address>"),
            ),
            (
                "MAIL FROM:<a@example.com> FOO=1",
                ParseError::Syntax("unsupported MAIL parameter"),
            ),
            (
                "MAIL FROM:<a@example.com> SIZE=x",
                ParseError::Syntax("bad SIZE"),
            ),
            ("RCPT TO:<not an address>", ParseError::BadAddress),
            ("RCPT TO:<>", ParseError::BadAddress),
            ("DATA now", ParseError::Syntax("no arguments allowed")),
            ("BDAT -1", ParseError::Syntax("BDAT needs a chunk size")),
            ("BDAT 1 FIRST", ParseError::Syntax("BDAT size [LAST]")),
            ("AUTH", ParseError::Syntax("AUTH needs a mechanism")),
            // A multi-byte character where the keyword's colon belongs used to panic.
            (
                "MAIL FROM\u{e9}:<a@b.example>",
                ParseError::Syntax("expected FROM:<address> / TO:<address>"),
            ),
            (
                "RCPT T\u{e9}:<a@b.example>",
                ParseError::Syntax("expected FROM:<address> / TO:<address>"),
            ),
            (
                "MAIL \u{e9}",
                ParseError::Syntax("expected FROM:<address> / TO:<address>"),
            ),
        ];
        for (line, want) in bad {
            assert_eq!(parse(line.as_bytes()), Err(*want), "{line}");
        }
    }

    proptest! {
        /// Any line over the SMTP alphabet parses or fails without panicking.
        #[test]
        fn never_panics(line in proptest::collection::vec(prop_oneof![
            Just(b' '), Just(b':'), Just(b'<'), Just(b'>'), Just(b'@'), Just(b'='), Just(b'.'),
            Just(b'a'), Just(b'0'), Just(0xC3u8), Just(0xA9u8), Just(b'\t'),
            Just(b'M'), Just(b'A'), Just(b'I'), Just(b'L'), Just(b'F'), Just(b'R'), Just(b'O'),
        ], 0..48), verb in proptest::sample::select(
            &["MAIL FROM:", "MAIL FROM", "RCPT TO:", "RCPT TO", "BDAT ", "AUTH ", "EHLO ", ""][..])) {
            let mut input = verb.as_bytes().to_vec();
            input.extend_from_slice(&line);
            let _ = parse(&input);
        }
    }

    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus.rs"));

    /// Every committed fuzz corpus file parses or fails without panicking.
    #[test]
    fn replays_the_fuzz_corpus() {
        for (path, data) in fuzz_corpus("smtp_command") {
            eprintln!("{}", path.display());
            let _ = parse(&data);
        }
    }
}
