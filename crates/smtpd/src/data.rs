//! The DATA and BDAT receivers: sans-IO state machines fed with whatever bytes arrived.
//!
//! Only `<CRLF>.<CRLF>` ends DATA. A bare LF or bare CR anywhere makes the message
//! *tainted*: it is still read to its real end (so that nothing after a fake end is
//! taken as commands) and then refused as a whole — the defence against SMTP
//! smuggling (CVE-2023-51766 and relatives). A NUL byte anywhere is flagged the same
//! way: a next hop that drops NULs would read `<CRLF>NUL.<CRLF>` as an end of data.

/// Where the DATA receiver is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (after CRLF, or right after the DATA command).
    LineStart,
    /// Inside a line.
    Mid,
    /// Just read a CR inside a line.
    Cr,
    /// Read `.` at the start of a line.
    Dot,
    /// Read `.` CR at the start of a line.
    DotCr,
}

/// Receives a dot-stuffed DATA body.
#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    limit: usize,
    /// The message contained a bare LF or bare CR.
    pub tainted: bool,
    /// The message contained a NUL byte.
    pub nul: bool,
    /// The message was larger than the limit (the excess was dropped).
    pub oversized: bool,
}

impl DataReceiver {
    /// A receiver that keeps at most `limit` bytes of message.
    pub fn new(limit: usize) -> Self {
        DataReceiver {
            state: State::LineStart,
            limit,
            tainted: false,
            nul: false,
            oversized: false,
        }
    }

    /// Consumes bytes from `input`, appending the unstuffed message to `out`. Returns
    /// `Some(n)` when the end-of-data line was found after `n` input bytes (the rest is
    /// the next command), or `None` when all of `input` was consumed and more is needed.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Mid {
                // Inside a line only CR and LF matter: copy the run up to the next
                // one at once (byte-at-a-time pushes were ~5 % of a session's CPU).
                let run = input[i..]
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(input.len() - i);
                if run > 0 {
                    self.push_run(out, &input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            match (self.state, b) {
                (State::Dot, b'\r') => self.state = State::DotCr,
                (State::DotCr, b'\n') => {
                    self.state = State::LineStart;
                    return Some(i);
                }
                (State::DotCr, _) => {
                    // `.` CR x: a bare CR in a line whose leading dot was stuffing.
                    self.tainted = true;
                    self.push(out, b'\r');
                    self.mid(out, b);
                }
                (State::LineStart, b'.') => self.state = State::Dot,
                (State::Cr, b'\n') => {
                    self.push(out, b'\n');
                    self.state = State::LineStart;
                }
                (State::Cr, _) => {
                    self.tainted = true;
                    self.mid(out, b);
                }
                // Dot: the leading dot is dropped (unstuffed); LineStart/Mid: ordinary.
                _ => self.mid(out, b),
            }
        }
        None
    }

    fn mid(&mut self, out: &mut Vec<u8>, b: u8) {
        match b {
            b'\r' => self.state = State::Cr,
            b'\n' => {
                // Bare LF: never a line start, so `<LF>.<LF>` cannot end the data.
                self.tainted = true;
                self.state = State::Mid;
            }
            _ => self.state = State::Mid,
        }
        self.push(out, b);
    }

    fn push_run(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        if bytes.contains(&0) {
            self.nul = true;
        }
        let room = self.limit.saturating_sub(out.len());
        if bytes.len() > room {
            self.oversized = true;
        }
        out.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn push(&mut self, out: &mut Vec<u8>, b: u8) {
        if b == 0 {
            self.nul = true;
        }
        if out.len() < self.limit {
            out.push(b);
        } else {
            self.oversized = true;
        }
    }
}

/// Checks BDAT chunks for bare LF / bare CR across chunk boundaries, and for NUL.
#[derive(Debug, Default)]
pub struct LineEndingCheck {
    pending_cr: bool,
    /// A bare LF or CR was seen.
    pub tainted: bool,
    /// A NUL byte was seen.
    pub nul: bool,
}

impl LineEndingCheck {
    /// Inspects the next bytes of the message.
    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.contains(&0) {
            self.nul = true;
        }
        for &b in bytes {
            match (self.pending_cr, b) {
                (true, b'\n') => self.pending_cr = false,
                (true, b'\r') => self.tainted = true,
                (true, _) => {
                    self.tainted = true;
                    self.pending_cr = false;
                }
                (false, b'\r') => self.pending_cr = true,
                (false, b'\n') => self.tainted = true,
                _ => {}
            }
        }
    }

    /// Called at the end of the message: a trailing CR is bare.
    pub fn finish(&mut self) {
        if self.pending_cr {
            self.tainted = true;
        }
    }
}

/// The fuzz entry for the receivers (`fuzz/fuzz_targets/data_receiver.rs`, and the
/// corpus replay in `tests/fuzz_corpora.rs`). The first byte picks where the rest is
/// cut in two; panics unless feeding in two pieces equals feeding at once (for DATA at
/// two size limits, and for the BDAT check), an untainted end of data is a real
/// `<CRLF>.<CRLF>` with the body before it unstuffed, and the flags say exactly
/// whether a NUL, bare LF or bare CR was there.
#[doc(hidden)]
pub fn fuzz_receivers(data: &[u8]) {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(input.len());
    for limit in [1 << 20, 64] {
        let whole = run_data(limit, &[input]);
        assert_eq!(run_data(limit, &[&input[..cut], &input[cut..]]), whole);
        let (end, out, tainted, nul, oversized) = whole;
        let Some(n) = end else { continue };
        let read = &input[..n];
        if !tainted && !oversized {
            assert!(
                read == b".\r\n" || read.ends_with(b"\r\n.\r\n"),
                "false end"
            );
            let mut unstuffed = Vec::new();
            for line in read[..n - 3].split_inclusive(|&b| b == b'\n') {
                unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            }
            assert_eq!(out, unstuffed, "body is not the unstuffed input");
        }
        assert_eq!(nul, read.contains(&0), "NUL flag");
    }
    let check = |pieces: &[&[u8]]| {
        let mut c = LineEndingCheck::default();
        for p in pieces {
            c.feed(p);
        }
        c.finish();
        (c.tainted, c.nul)
    };
    let whole = check(&[input]);
    assert_eq!(check(&[&input[..cut], &input[cut..]]), whole);
    let bare = input.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
        || input.last() == Some(&b'\r')
        || input
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || input[i - 1] != b'\r'));
    assert_eq!(whole, (bare, input.contains(&0)), "BDAT flags");
}

/// What a DATA receiver made of its input: (end offset, body, tainted, nul, oversized).
type DataRun = (Option<usize>, Vec<u8>, bool, bool, bool);

/// Feeds `pieces` to a DATA receiver until it finds the end.
fn run_data(limit: usize, pieces: &[&[u8]]) -> DataRun {
    let mut r = DataReceiver::new(limit);
    let mut out = Vec::new();
    let mut offset = 0;
    for p in pieces {
        if let Some(n) = r.feed(p, &mut out) {
            return (Some(offset + n), out, r.tainted, r.nul, r.oversized);
        }
        offset += p.len();
    }
    (None, out, r.tainted, r.nul, r.oversized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(input: &[u8]) -> (Option<usize>, Vec<u8>, bool) {
        let mut r = DataReceiver::new(1 << 20);
        let mut out = Vec::new();
        let end = r.feed(input, &mut out);
        (end, out, r.tainted)
    }

    /// (input, end of data, unstuffed body, tainted).
    type Case = (&'static [u8], Option<usize>, &'static [u8], bool);

    #[test]
    fn table() {
        let cases: &[Case] = &[
            (b"a\r\n.\r\nMAIL", Some(6), b"a\r\n", false),
            (b".\r\n", Some(3), b"", false),
            (b"..x\r\n.\r\n", Some(8), b".x\r\n", false),
            (
                b"a\n.\nMAIL FROM:<x@y>\r\n",
                None,
                b"a\n.\nMAIL FROM:<x@y>\r\n",
                true,
            ),
            (b"a\n.\r\nb\r\n.\r\n", Some(11), b"a\n.\r\nb\r\n", true),
            (b"a\r.\r\nb\r\n.\r\n", Some(11), b"a\r.\r\nb\r\n", true),
            (b"a\r\n.\rx\r\n.\r\n", Some(11), b"a\r\n\rx\r\n", true),
            (b"a\r\n.\n", None, b"a\r\n\n", true),
        ];
        for (input, end, body, tainted) in cases {
            let got = run(input);
            assert_eq!(
                got,
                (*end, body.to_vec(), *tainted),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn nul_bytes_are_flagged() {
        for input in [
            &b"a\r\n\x00.\r\nb\r\n.\r\n"[..],
            b"a\r\n.\x00\r\nb\r\n.\r\n",
            b"\x00\r\n.\r\n",
            b"a\x00b\r\n.\r\n",
        ] {
            let mut r = DataReceiver::new(1 << 20);
            let mut out = Vec::new();
            assert_eq!(r.feed(input, &mut out), Some(input.len()), "{input:?}");
            assert!(r.nul && !r.tainted, "{input:?}");
        }
        let mut r = DataReceiver::new(1 << 20);
        r.feed(b"a\r\n.\r\n", &mut Vec::new());
        assert!(!r.nul);
        let mut c = LineEndingCheck::default();
        c.feed(b"a\r\n");
        assert!(!c.nul);
        c.feed(b"\x00.\r\n");
        assert!(c.nul && !c.tainted);
    }

    #[test]
    fn oversized_is_flagged_and_truncated() {
        let mut r = DataReceiver::new(4);
        let mut out = Vec::new();
        assert_eq!(r.feed(b"123456\r\n.\r\n", &mut out), Some(11));
        assert!(r.oversized && out.len() == 4);
    }

    #[test]
    fn bdat_line_endings() {
        let mut c = LineEndingCheck::default();
        c.feed(b"a\r");
        c.feed(b"\nb\r\n");
        c.finish();
        assert!(!c.tainted);
        for bad in [&b"a\nb"[..], b"a\rb", b"a\r"] {
            let mut c = LineEndingCheck::default();
            c.feed(bad);
            c.finish();
            assert!(c.tainted, "{bad:?}");
        }
    }

    proptest! {
        /// Feeding in arbitrary pieces gives the same result as feeding at once, and
        /// clean CRLF text with a stuffed dot round-trips.
        #[test]
        fn split_feeding_is_equivalent(body in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a')], 0..64),
            cut in 0usize..64) {
            let mut input = body.clone();
            input.extend_from_slice(b"\r\n.\r\n");
            let whole = run(&input);
            let cut = cut.min(input.len());
            let mut r = DataReceiver::new(1 << 20);
            let mut out = Vec::new();
            let first = r.feed(&input[..cut], &mut out);
            let got = match first {
                Some(n) => Some(n),
                None => r.feed(&input[cut..], &mut out).map(|n| n + cut),
            };
            prop_assert_eq!((got, out, r.tainted), whole.clone());
            if !whole.2 {
                // Untainted: the end found must be a real CRLF.CRLF.
                let n = whole.0.unwrap();
                prop_assert!(n == 3 && input.starts_with(b".\r\n") || input[..n].ends_with(b"\r\n.\r\n"));
            }
        }
    }

    /// Every committed fuzz corpus file keeps the receivers' invariants.
    #[test]
    fn replays_the_fuzz_corpus() {
        for (path, data) in fuzz_corpus("data_receiver") {
            eprintln!("{}", path.display());
            fuzz_receivers(&data);
        }
    }

    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus.rs"));
}
