//! A streaming CSV reader (RFC 4180, comma-separated) for imports: it takes the body
//! in chunks of bytes as they arrive and yields whole records with their row numbers,
//! so a file of a million lines is never held in memory at once.
//!
//! It handles quoted fields (with commas, line breaks and doubled quotes inside), CRLF
//! and LF line ends, a UTF-8 byte-order mark at the start (as spreadsheet programs
//! write), and blank lines (skipped). Lenient where exports are sloppy: a quote inside
//! an unquoted field, or text after a closing quote, is kept as text. Strict where a
//! hostile or broken file could cost memory: a field or record over its limit, a quote
//! never closed, and text that is not UTF-8 are errors, after which the reader yields
//! nothing more.
//!
//! Errors name a row, never a field's content (which may be an address).

use std::collections::VecDeque;

/// The byte-order mark some programs put at the start of a UTF-8 file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Size limits of a [`CsvReader`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes of one field.
    pub field_bytes: usize,
    /// Most bytes of one record (its fields together, without separators).
    pub record_bytes: usize,
}

impl Default for Limits {
    /// 4 KiB a field, 64 KiB a record: ample for addresses and attributes.
    fn default() -> Self {
        Limits {
            field_bytes: 4 * 1024,
            record_bytes: 64 * 1024,
        }
    }
}

/// One record and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The 1-based number of the record (the header is row 1; blank lines count, so it
    /// is the spreadsheet row as long as no quoted field spans lines).
    pub row: u64,
    /// Its fields, unquoted.
    pub fields: Vec<String>,
}

/// Why the input is not usable CSV. The reader stops at the first one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// A field is longer than [`Limits::field_bytes`].
    #[error("row {row}: a field is longer than {limit} bytes")]
    FieldTooLong {
        /// The record's row.
        row: u64,
        /// The limit.
        limit: usize,
    },
    /// A record is longer than [`Limits::record_bytes`].
    #[error("row {row}: the record is longer than {limit} bytes")]
    RecordTooLong {
        /// The record's row.
        row: u64,
        /// The limit.
        limit: usize,
    },
    /// A field is not UTF-8 text.
    #[error("row {row}: not UTF-8 text (save the file as UTF-8)")]
    NotUtf8 {
        /// The record's row.
        row: u64,
    },
    /// The input ended inside a quoted field.
    #[error("row {row}: a quoted field is never closed")]
    UnclosedQuote {
        /// The record's row.
        row: u64,
    },
}

impl CsvError {
    /// The row the error is in.
    pub fn row(&self) -> u64 {
        match self {
            CsvError::FieldTooLong { row, .. }
            | CsvError::RecordTooLong { row, .. }
            | CsvError::NotUtf8 { row }
            | CsvError::UnclosedQuote { row } => *row,
        }
    }
}

/// Where the parser stands inside a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field: nothing read yet.
    FieldStart,
    /// In an unquoted field.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// In a quoted field, just after a quote: the end of the quotes, or the first of
    /// a doubled one.
    QuoteInQuoted,
    /// Just after a CR that ended a record (an LF next belongs to it).
    AfterCr,
}

/// The streaming reader: [`CsvReader::feed`] chunks, take records with
/// [`CsvReader::next_record`], and call [`CsvReader::finish`] at the end of input.
#[derive(Debug)]
pub struct CsvReader {
    limits: Limits,
    state: State,
    /// The bytes of the field being read.
    field: Vec<u8>,
    /// The fields of the record being read so far.
    fields: Vec<String>,
    /// Bytes of the record so far.
    record_len: usize,
    /// The row of the record being read.
    row: u64,
    /// Records read and not yet taken.
    ready: VecDeque<Record>,
    /// The first bytes, held until they are known not to be a byte-order mark.
    start: Option<Vec<u8>>,
    /// Set by the first error: nothing more is read.
    failed: bool,
}

impl CsvReader {
    /// A reader with `limits`.
    pub fn new(limits: Limits) -> Self {
        CsvReader {
            limits,
            state: State::FieldStart,
            field: Vec::new(),
            fields: Vec::new(),
            record_len: 0,
            row: 1,
            ready: VecDeque::new(),
            start: Some(Vec::with_capacity(BOM.len())),
            failed: false,
        }
    }

    /// Reads `chunk` (any split of the input: inside a field, a quote pair or a CRLF).
    /// Complete records are then available from [`CsvReader::next_record`].
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), CsvError> {
        if self.failed {
            return Ok(());
        }
        let mut chunk = chunk;
        if let Some(start) = &mut self.start {
            let take = (BOM.len() - start.len()).min(chunk.len());
            start.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if start.len() < BOM.len() && BOM.starts_with(start) {
                return Ok(());
            }
            let start = self.start.take().unwrap_or_default();
            if start != BOM {
                self.bytes(&start)?;
            }
        }
        self.bytes(chunk)
    }

    /// Ends the input: the last record (without a final line break) becomes available.
    pub fn finish(&mut self) -> Result<(), CsvError> {
        if self.failed {
            return Ok(());
        }
        if let Some(start) = self.start.take()
            && start != BOM
        {
            self.bytes(&start)?;
        }
        match self.state {
            State::Quoted => return self.fail(CsvError::UnclosedQuote { row: self.row }),
            State::FieldStart if self.fields.is_empty() => {}
            State::AfterCr => {}
            _ => self.end_record()?,
        }
        self.state = State::FieldStart;
        Ok(())
    }

    /// The next complete record, if one was read.
    pub fn next_record(&mut self) -> Option<Record> {
        self.ready.pop_front()
    }

    fn fail(&mut self, e: CsvError) -> Result<(), CsvError> {
        self.failed = true;
        self.ready.clear();
        Err(e)
    }

    fn bytes(&mut self, bytes: &[u8]) -> Result<(), CsvError> {
        for &b in bytes {
            self.byte(b)?;
        }
        Ok(())
    }

    fn byte(&mut self, b: u8) -> Result<(), CsvError> {
        match (self.state, b) {
            (State::AfterCr, b'\n') => self.state = State::FieldStart,
            (State::AfterCr, _) => {
                self.state = State::FieldStart;
                return self.byte(b);
            }
            (State::Quoted, b'"') => self.state = State::QuoteInQuoted,
            (State::Quoted, _) => self.push(b)?,
            (State::QuoteInQuoted, b'"') => {
                self.state = State::Quoted;
                self.push(b'"')?;
            }
            (State::FieldStart, b'"') => self.state = State::Quoted,
            (_, b',') => {
                self.end_field()?;
                self.state = State::FieldStart;
            }
            (_, b'\n' | b'\r') => {
                self.end_record()?;
                self.state = if b == b'\r' {
                    State::AfterCr
                } else {
                    State::FieldStart
                };
            }
            // Text in an unquoted field, or after a closing quote: kept as text.
            (State::FieldStart | State::Unquoted | State::QuoteInQuoted, _) => {
                self.state = State::Unquoted;
                self.push(b)?;
            }
        }
        Ok(())
    }

    fn push(&mut self, b: u8) -> Result<(), CsvError> {
        let row = self.row;
        if self.field.len() >= self.limits.field_bytes {
            let limit = self.limits.field_bytes;
            return self.fail(CsvError::FieldTooLong { row, limit });
        }
        if self.record_len >= self.limits.record_bytes {
            let limit = self.limits.record_bytes;
            return self.fail(CsvError::RecordTooLong { row, limit });
        }
        self.field.push(b);
        self.record_len += 1;
        Ok(())
    }

    fn end_field(&mut self) -> Result<(), CsvError> {
        let bytes = std::mem::take(&mut self.field);
        match String::from_utf8(bytes) {
            Ok(text) => {
                self.fields.push(text);
                Ok(())
            }
            Err(_) => self.fail(CsvError::NotUtf8 { row: self.row }),
        }
    }

    /// Ends the record at a line break (or the end of input). A blank line is no
    /// record, but is counted.
    fn end_record(&mut self) -> Result<(), CsvError> {
        let blank = self.fields.is_empty() && self.state == State::FieldStart;
        if !blank {
            self.end_field()?;
            let fields = std::mem::take(&mut self.fields);
            self.ready.push_back(Record {
                row: self.row,
                fields,
            });
        }
        self.record_len = 0;
        self.row += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of `input` fed in chunks of `size` bytes.
    fn read(input: &[u8], size: usize) -> Result<Vec<(u64, Vec<String>)>, CsvError> {
        read_with(input, size, Limits::default())
    }

    fn read_with(
        input: &[u8],
        size: usize,
        limits: Limits,
    ) -> Result<Vec<(u64, Vec<String>)>, CsvError> {
        let mut reader = CsvReader::new(limits);
        let mut out = Vec::new();
        for chunk in input.chunks(size.max(1)) {
            reader.feed(chunk)?;
            while let Some(r) = reader.next_record() {
                out.push((r.row, r.fields));
            }
        }
        reader.finish()?;
        while let Some(r) = reader.next_record() {
            out.push((r.row, r.fields));
        }
        Ok(out)
    }

    /// Expected records: (row, fields).
    type Rows<'a> = &'a [(u64, &'a [&'a str])];

    fn rows(rows: Rows<'_>) -> Vec<(u64, Vec<String>)> {
        rows.iter()
            .map(|(n, f)| (*n, f.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn records_are_the_same_however_the_input_is_split() {
        let table: &[(&[u8], Rows<'_>)] = &[
            (b"a,b\n1,2\n", &[(1, &["a", "b"]), (2, &["1", "2"])]),
            (b"a,b\r\n1,2\r\n", &[(1, &["a", "b"]), (2, &["1", "2"])]),
            (b"a,b\r\n1,2", &[(1, &["a", "b"]), (2, &["1", "2"])]),
            (b"a,b\r1,2\r", &[(1, &["a", "b"]), (2, &["1", "2"])]),
            (b"\xEF\xBB\xBFemail\nx\n", &[(1, &["email"]), (2, &["x"])]),
            (
                b"\"a,b\",\"say \"\"hi\"\"\"\n",
                &[(1, &["a,b", "say \"hi\""])],
            ),
            (
                b"\"two\r\nlines\",x\ny\n",
                &[(1, &["two\r\nlines", "x"]), (2, &["y"])],
            ),
            (b"a,,\n", &[(1, &["a", "", ""])]),
            (b",\n", &[(1, &["", ""])]),
            (b"\"\"\n", &[(1, &[""])]),
            (b"a\n\n\r\nb\n", &[(1, &["a"]), (4, &["b"])]),
            (b"ab\"c,\"d\"e\n", &[(1, &["ab\"c", "de"])]),
            (b"caf\xC3\xA9\n", &[(1, &["café"])]),
            (b"", &[]),
            (b"\xEF\xBB\xBF", &[]),
        ];
        for (input, want) in table {
            for size in [1, 2, 3, 7, 1024] {
                assert_eq!(
                    read(input, size).as_ref(),
                    Ok(&rows(want)),
                    "{:?} in chunks of {size}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn limits_and_broken_input_are_errors_naming_the_row() {
        let limits = Limits {
            field_bytes: 5,
            record_bytes: 8,
        };
        assert_eq!(
            read_with(b"a\nabcdef\n", 3, limits),
            Err(CsvError::FieldTooLong { row: 2, limit: 5 })
        );
        assert_eq!(
            read_with(b"abcd,efgh,i\n", 3, limits),
            Err(CsvError::RecordTooLong { row: 1, limit: 8 })
        );
        assert_eq!(
            read(b"a\n\"open,\n", 4),
            Err(CsvError::UnclosedQuote { row: 2 })
        );
        assert_eq!(read(b"a\n\xFF\xFE\n", 1), Err(CsvError::NotUtf8 { row: 2 }));
        // Two bytes of a byte-order mark and nothing else are no text.
        assert_eq!(read(b"\xEF\xBB", 1), Err(CsvError::NotUtf8 { row: 1 }));
        let e = CsvError::FieldTooLong { row: 9, limit: 5 };
        assert_eq!(e.to_string(), "row 9: a field is longer than 5 bytes");
        assert_eq!(e.row(), 9);
    }

    #[test]
    fn nothing_is_read_after_an_error() {
        let mut reader = CsvReader::new(Limits {
            field_bytes: 2,
            record_bytes: 10,
        });
        assert!(reader.feed(b"ok\nlong\n").is_err());
        assert_eq!(reader.next_record(), None);
        assert_eq!(reader.feed(b"a\n"), Ok(()));
        assert_eq!(reader.finish(), Ok(()));
        assert_eq!(reader.next_record(), None);
    }
}
