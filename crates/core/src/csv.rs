//! CSV (RFC 4180) read from a stream of chunks, and written field by field.
//!
//! [`CsvReader`] takes the bytes as they arrive (an HTTP body, a file) and yields
//! whole records with the line they start on, so a file of any size is read in the
//! memory of one record: quoted fields (with doubled quotes, commas and line breaks
//! inside), CRLF or LF line ends, a UTF-8 byte order mark, blank lines skipped. A
//! record longer than the reader's limit is an error naming its line, not a
//! growing buffer.

use std::fmt;

/// One record: the line it starts on (the header is line 1) and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The 1-based line the record starts on.
    pub line: u64,
    /// Its fields, unquoted.
    pub fields: Vec<String>,
}

/// Why a CSV stream could not be read (names a line, never a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvError {
    /// A record over the reader's size limit.
    TooLong {
        /// The line it starts on.
        line: u64,
    },
    /// A field that is not UTF-8.
    NotUtf8 {
        /// The line its record starts on.
        line: u64,
    },
    /// The stream ended inside a quoted field.
    UnclosedQuote {
        /// The line its record starts on.
        line: u64,
    },
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::TooLong { line } => write!(f, "the record on line {line} is too long"),
            CsvError::NotUtf8 { line } => write!(f, "the record on line {line} is not UTF-8"),
            CsvError::UnclosedQuote { line } => {
                write!(
                    f,
                    "the quoted field of the record on line {line} is not closed"
                )
            }
        }
    }
}

impl std::error::Error for CsvError {}

/// Where the reader is within a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    Start,
    /// In a field without quotes.
    Plain,
    /// Inside quotes.
    Quoted,
    /// Just after a quote inside quotes: a second quote is a literal one, anything
    /// else ends the quoting.
    QuoteInQuoted,
    /// After a CR ending a record (an LF may follow).
    AfterCr,
}

/// A CSV reader fed chunk by chunk.
#[derive(Debug)]
pub struct CsvReader {
    state: State,
    field: Vec<u8>,
    fields: Vec<String>,
    record_len: usize,
    max_record: usize,
    line: u64,
    record_line: u64,
    /// Past the first bytes (a byte order mark is dropped).
    started: bool,
    /// The first bytes while they may still be a byte order mark.
    head: Vec<u8>,
}

/// UTF-8's byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl CsvReader {
    /// A reader refusing records over `max_record` bytes.
    pub fn new(max_record: usize) -> Self {
        CsvReader {
            state: State::Start,
            field: Vec::new(),
            fields: Vec::new(),
            record_len: 0,
            max_record,
            line: 1,
            record_line: 1,
            started: false,
            head: Vec::new(),
        }
    }

    /// Reads `chunk`, appending the records it completes to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Record>) -> Result<(), CsvError> {
        if !self.started {
            let take = (BOM.len() - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.head.len() < BOM.len() && BOM.starts_with(&self.head) {
                return Ok(());
            }
            self.start(out)?;
        }
        for &b in chunk {
            self.byte(b, out)?;
        }
        Ok(())
    }

    /// Reads the first bytes held back, unless they are a byte order mark.
    fn start(&mut self, out: &mut Vec<Record>) -> Result<(), CsvError> {
        self.started = true;
        let head = std::mem::take(&mut self.head);
        if head != BOM {
            for b in head {
                self.byte(b, out)?;
            }
        }
        Ok(())
    }

    /// Ends the stream, appending its last record (one without a line end) to `out`.
    pub fn finish(&mut self, out: &mut Vec<Record>) -> Result<(), CsvError> {
        if !self.started {
            self.start(out)?;
        }
        match self.state {
            State::Quoted => Err(CsvError::UnclosedQuote {
                line: self.record_line,
            }),
            State::Start if self.fields.is_empty() => Ok(()),
            State::AfterCr => Ok(()),
            _ => self.end_record(out),
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Record>) -> Result<(), CsvError> {
        self.record_len += 1;
        if self.record_len > self.max_record {
            return Err(CsvError::TooLong {
                line: self.record_line,
            });
        }
        if b == b'\n' {
            self.line += 1;
        }
        match (self.state, b) {
            (State::AfterCr, b'\n') => {
                self.state = State::Start;
                self.record_len = 0;
                self.record_line = self.line;
            }
            (State::AfterCr, _) => {
                self.state = State::Start;
                self.record_len = 0;
                self.record_line = self.line;
                return self.byte(b, out);
            }
            (State::Quoted, b'"') => self.state = State::QuoteInQuoted,
            (State::Quoted, _) => self.field.push(b),
            (State::QuoteInQuoted, b'"') => {
                self.field.push(b'"');
                self.state = State::Quoted;
            }
            (State::Start, b'"') => self.state = State::Quoted,
            (_, b',') => {
                self.end_field()?;
                self.state = State::Start;
            }
            (_, b'\r') => {
                self.end_record(out)?;
                self.state = State::AfterCr;
            }
            (_, b'\n') => {
                self.end_record(out)?;
                self.state = State::Start;
                self.record_len = 0;
                self.record_line = self.line;
            }
            // A quote within an unquoted field, or text after a closing quote: kept
            // as written (what spreadsheets do).
            _ => {
                self.field.push(b);
                self.state = State::Plain;
            }
        }
        Ok(())
    }

    fn end_field(&mut self) -> Result<(), CsvError> {
        let bytes = std::mem::take(&mut self.field);
        let text = String::from_utf8(bytes).map_err(|_| CsvError::NotUtf8 {
            line: self.record_line,
        })?;
        self.fields.push(text);
        Ok(())
    }

    fn end_record(&mut self, out: &mut Vec<Record>) -> Result<(), CsvError> {
        self.end_field()?;
        let fields = std::mem::take(&mut self.fields);
        let blank = fields.len() == 1 && fields[0].is_empty();
        if !blank {
            out.push(Record {
                line: self.record_line,
                fields,
            });
        }
        Ok(())
    }
}

/// Appends `field` to `out` as one CSV field: quoted when it holds a comma, a quote
/// or a line break (quotes doubled), as written otherwise.
pub fn write_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Appends a record (fields joined by commas, CRLF-terminated as RFC 4180 says) to
/// `out`.
pub fn write_record<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_field(out, field);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in_chunks(input: &[u8], size: usize) -> Result<Vec<Record>, CsvError> {
        let mut reader = CsvReader::new(1000);
        let mut out = Vec::new();
        for chunk in input.chunks(size) {
            reader.feed(chunk, &mut out)?;
        }
        reader.finish(&mut out)?;
        Ok(out)
    }

    fn fields(records: &[Record]) -> Vec<Vec<&str>> {
        records
            .iter()
            .map(|r| r.fields.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn quoted_fields_line_ends_and_a_bom_read_the_same_in_any_chunking() {
        let input = "\u{feff}email,name\r\na@x.test,\"Smith, Anna\"\r\n\r\n\"b@x.test\",\"say \"\"hi\"\"\nthere\"\nc@x.test,\n"
            .as_bytes();
        for size in [1, 2, 3, 7, input.len()] {
            let records = read_in_chunks(input, size).expect("reads");
            assert_eq!(
                fields(&records),
                [
                    vec!["email", "name"],
                    vec!["a@x.test", "Smith, Anna"],
                    vec!["b@x.test", "say \"hi\"\nthere"],
                    vec!["c@x.test", ""],
                ],
                "chunks of {size}"
            );
            let lines: Vec<u64> = records.iter().map(|r| r.line).collect();
            assert_eq!(lines, [1, 2, 4, 6], "chunks of {size}");
        }
    }

    #[test]
    fn a_last_record_without_a_line_end_counts() {
        let records = read_in_chunks(b"email\nz@x.test", 4).expect("reads");
        assert_eq!(fields(&records), [vec!["email"], vec!["z@x.test"]]);
    }

    #[test]
    fn bad_input_names_its_line() {
        assert_eq!(
            read_in_chunks(b"email\n\"open", 3),
            Err(CsvError::UnclosedQuote { line: 2 })
        );
        assert_eq!(
            read_in_chunks(b"email\na\xff\n", 3),
            Err(CsvError::NotUtf8 { line: 2 })
        );
        let long = format!("email\n{}\n", "x".repeat(2000));
        assert_eq!(
            read_in_chunks(long.as_bytes(), 64),
            Err(CsvError::TooLong { line: 2 })
        );
    }

    #[test]
    fn written_fields_read_back_unchanged() {
        let mut out = String::new();
        write_record(&mut out, ["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
        let records = read_in_chunks(out.as_bytes(), 5).expect("reads");
        assert_eq!(
            fields(&records),
            [vec!["plain", "a,b", "say \"hi\"", "two\nlines", ""]]
        );
    }
}
