//! The suppression list as CSV, for moving from or to another provider: the export
//! ([`count`], then [`Export`] page by page) and the import ([`Import`], fed the file
//! in chunks). Shared by `GET /v1/suppressions/export`, `POST /v1/suppressions/import`
//! and the CLI's `postwerk suppressions export|import`; auditing is the caller's.
//!
//! Neither side holds the whole list: the export reads the store a page at a time and
//! the import adds rows in batches as they are read. Nothing here logs an address.

use std::collections::HashMap;

use postwerk_core::address::Address;
use postwerk_core::model::SuppressionReason;
use postwerk_privacy::suppressions::{self, NewSuppression};
use postwerk_services::context::{ServiceError, Services};
use postwerk_store::prelude::*;
use serde::Serialize;

use postwerk_core::csv::{CsvError, CsvReader, Record, write_record};

/// The export's header line.
pub const HEADER: &str = "email,stream,reason,created_at,source\r\n";

/// Entries read from the store per page of an export.
const PAGE: usize = 1000;

/// Rows of an import added per batch.
const BATCH: usize = 500;
/// Longest CSV record, in bytes.
const MAX_RECORD: usize = 64 << 10;

/// Row errors an import reports (the rest are only counted as rejected).
pub const MAX_ERRORS: usize = 100;

/// The names of an import's email column, compared without case, spaces, `-` and `_`
/// (`Email`, `E-mail`, `email_address`, `Email Address`, `Recipient`, …).
pub const EMAIL_COLUMNS: &[&str] = &["email", "emailaddress", "recipient", "recipientemail"];

/// What an export will hold, counted before it is written (the count goes to the audit
/// chain and into a header before the first row).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportCount {
    /// Entries with an address.
    pub entries: u64,
    /// Entries whose address was erased (tombstones): not exported.
    pub skipped_erased: u64,
    /// The last entry counted: the export stops there, so that it holds what was
    /// counted and not what was added since.
    pub last_seq: Option<i64>,
}

impl ExportCount {
    /// The audit target of the export.
    pub fn audit_target(&self, stream: Option<&str>) -> String {
        let scope = stream.map_or("every stream".to_string(), |s| format!("stream {s}"));
        format!(
            "{} entries ({scope}), {} erased not exported",
            self.entries, self.skipped_erased
        )
    }
}

/// Whether an entry of scope `entry_stream` belongs to an export of `stream` (`None`:
/// all of them; else only the entries scoped to that stream).
fn in_export(stream: Option<&str>, entry_stream: Option<&str>) -> bool {
    stream.is_none_or(|s| entry_stream == Some(s))
}

/// Counts what an export of `stream` (`None`: every entry) would hold, without opening
/// any address.
pub async fn count(
    services: &Services,
    tenant_id: &str,
    stream: Option<&str>,
) -> Result<ExportCount, ServiceError> {
    let mut count = ExportCount::default();
    let mut after = None;
    loop {
        let page = services
            .store
            .list_suppressions(tenant_id, None, after, PAGE)
            .await?;
        for e in page
            .iter()
            .filter(|e| in_export(stream, e.stream.as_deref()))
        {
            match e.address_enc {
                Some(_) => count.entries += 1,
                None => count.skipped_erased += 1,
            }
        }
        count.last_seq = page.last().map(|e| e.seq).or(count.last_seq);
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.seq),
            _ => return Ok(count),
        }
    }
}

/// An export being written: [`Export::next_chunk`] gives the header, then the rows of
/// one page of the store at a time.
#[derive(Debug)]
pub struct Export {
    tenant_id: String,
    stream: Option<String>,
    /// The last entry to export ([`ExportCount::last_seq`]); `None`: there is none.
    last_seq: Option<i64>,
    after: Option<i64>,
    header_sent: bool,
    /// Entries whose address no longer opened (their person's key is gone), skipped.
    pub unreadable: u64,
}

impl Export {
    /// An export of `stream` (`None`: every entry) up to what `count` counted.
    pub fn new(tenant_id: &str, stream: Option<&str>, count: &ExportCount) -> Self {
        Export {
            tenant_id: tenant_id.to_string(),
            stream: stream.map(str::to_string),
            last_seq: count.last_seq,
            after: None,
            header_sent: false,
            unreadable: 0,
        }
    }

    /// The next piece of the CSV text: the header first, then the rows of each page;
    /// `None` at the end.
    pub async fn next_chunk(
        &mut self,
        services: &Services,
    ) -> Result<Option<String>, ServiceError> {
        if !self.header_sent {
            self.header_sent = true;
            return Ok(Some(HEADER.to_string()));
        }
        let Some(last_seq) = self.last_seq else {
            return Ok(None);
        };
        loop {
            if self.after.is_some_and(|a| a >= last_seq) {
                return Ok(None);
            }
            let page = services
                .store
                .list_suppressions(&self.tenant_id, None, self.after, PAGE)
                .await?;
            let Some(last) = page.last() else {
                return Ok(None);
            };
            self.after = Some(if page.len() == PAGE {
                last.seq
            } else {
                last_seq
            });
            let page: Vec<_> = page
                .into_iter()
                .filter(|e| e.seq <= last_seq && e.address_enc.is_some())
                .filter(|e| in_export(self.stream.as_deref(), e.stream.as_deref()))
                .collect();
            let keys = services
                .subject_keys(&self.tenant_id, page.iter().map(|e| e.rcpt_hash.as_slice()))
                .await?;
            let mut text = String::with_capacity(page.len() * 80);
            for e in &page {
                let Some(address) = suppressions::address_of(&keys, e) else {
                    self.unreadable += 1;
                    continue;
                };
                let created = crate::view::time(e.created_at).unwrap_or_default();
                let fields = [
                    address.as_str(),
                    e.stream.as_deref().unwrap_or(""),
                    e.reason.as_str(),
                    &created,
                    e.source.as_deref().unwrap_or(""),
                ];
                write_record(&mut text, fields);
            }
            if !text.is_empty() {
                return Ok(Some(text));
            }
        }
    }
}

/// The counts of an import, as `POST /v1/suppressions/import` answers them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportCounts {
    /// Rows added to the list.
    pub imported: u64,
    /// Rows whose entry was already listed (or came earlier in the file).
    pub already: u64,
    /// Rows not added (see `errors`).
    pub rejected: u64,
    /// Why rows were rejected: the first [`MAX_ERRORS`].
    pub errors: Vec<RowError>,
}

/// A rejected row of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Its row (the header is row 1).
    pub row: u64,
    /// `invalid_address`, `invalid_reason` or `unknown_stream`.
    pub reason: &'static str,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The text is not usable CSV; rows before `error`'s were imported.
    #[error("{error} (rows before it were imported: {imported} added, {already} already listed)")]
    Csv {
        /// What is wrong.
        error: CsvError,
        /// Rows imported before it.
        imported: u64,
        /// Rows already listed before it.
        already: u64,
    },
    /// The first line is no header with an email column.
    #[error(
        "the first line must be a header naming an email column (email, e-mail, email_address, recipient)"
    )]
    NoEmailColumn,
    /// The store failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// The positions of the columns an import reads.
#[derive(Debug, Clone, Copy)]
struct Columns {
    email: usize,
    reason: Option<usize>,
    stream: Option<usize>,
    source: Option<usize>,
}

impl Columns {
    /// From the header row, or `None` if it names no email column.
    fn of(header: &[String]) -> Option<Columns> {
        let names: Vec<String> = header
            .iter()
            .map(|h| {
                h.chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '_'))
                    .collect::<String>()
                    .to_ascii_lowercase()
            })
            .collect();
        let find = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
        Some(Columns {
            email: find(EMAIL_COLUMNS)?,
            reason: find(&["reason"]),
            stream: find(&["stream"]),
            source: find(&["source"]),
        })
    }
}

/// A reason of an import row: the API's (`hard_bounce`, `complaint`, `unsubscribe`,
/// `manual`; empty is `manual`) and other providers' names for them, compared without
/// case, spaces, `-` and `_`. Never `erasure`.
pub fn import_reason(text: &str) -> Option<SuppressionReason> {
    let key: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match key.as_str() {
        "" | "manual" | "manualsuppression" => SuppressionReason::Manual,
        "hardbounce" | "bounce" | "bounced" => SuppressionReason::HardBounce,
        "complaint" | "spamcomplaint" | "spam" => SuppressionReason::Complaint,
        "unsubscribe" | "unsubscribed" => SuppressionReason::Unsubscribe,
        _ => return None,
    })
}

/// An import being read: [`Import::feed`] the file in chunks as they arrive, then
/// [`Import::finish`].
pub struct Import<'a> {
    services: &'a Services,
    tenant_id: String,
    /// The stream of rows that name none (`None`: every stream).
    stream: Option<String>,
    reader: CsvReader,
    columns: Option<Columns>,
    batch: Vec<NewSuppression>,
    /// Stream names seen, and whether the tenant has them.
    streams: HashMap<String, bool>,
    counts: ImportCounts,
}

impl<'a> Import<'a> {
    /// An import into `tenant_id`'s list, rows without a stream going to `stream`
    /// (which the caller has checked).
    pub fn new(services: &'a Services, tenant_id: &str, stream: Option<&str>) -> Self {
        Import {
            services,
            tenant_id: tenant_id.to_string(),
            stream: stream.map(str::to_string),
            reader: CsvReader::new(MAX_RECORD),
            columns: None,
            batch: Vec::with_capacity(BATCH),
            streams: HashMap::new(),
            counts: ImportCounts::default(),
        }
    }

    /// The counts so far (rows in the batch not yet added are not in them).
    pub fn counts(&self) -> &ImportCounts {
        &self.counts
    }

    /// Reads the next `chunk` of the file, adding rows a batch at a time.
    pub async fn feed(&mut self, chunk: &[u8]) -> Result<(), ImportError> {
        let mut records = Vec::new();
        let fed = self.reader.feed(chunk, &mut records);
        self.drain(records, fed).await
    }

    /// Ends the file: adds the last rows and returns the counts.
    pub async fn finish(mut self) -> Result<ImportCounts, ImportError> {
        let mut records = Vec::new();
        let fed = self.reader.finish(&mut records);
        self.drain(records, fed).await?;
        if self.columns.is_none() {
            return Err(ImportError::NoEmailColumn);
        }
        self.flush().await?;
        Ok(self.counts)
    }

    /// Takes the records read, then reports `fed`'s error (after the rows before it).
    async fn drain(
        &mut self,
        records: Vec<Record>,
        fed: Result<(), CsvError>,
    ) -> Result<(), ImportError> {
        for record in records {
            self.record(record).await?;
        }
        if let Err(error) = fed {
            self.flush().await?;
            return Err(ImportError::Csv {
                error,
                imported: self.counts.imported,
                already: self.counts.already,
            });
        }
        Ok(())
    }

    async fn record(&mut self, record: Record) -> Result<(), ImportError> {
        let Some(columns) = self.columns else {
            self.columns = Some(Columns::of(&record.fields).ok_or(ImportError::NoEmailColumn)?);
            return Ok(());
        };
        match self.entry(columns, &record).await? {
            Ok(entry) => self.batch.push(entry),
            Err(reason) => {
                self.counts.rejected += 1;
                if self.counts.errors.len() < MAX_ERRORS {
                    let row = record.line;
                    self.counts.errors.push(RowError { row, reason });
                }
            }
        }
        if self.batch.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// The entry of one row, or why it is rejected.
    async fn entry(
        &mut self,
        columns: Columns,
        record: &Record,
    ) -> Result<Result<NewSuppression, &'static str>, ServiceError> {
        let field = |i: Option<usize>| {
            i.and_then(|i| record.fields.get(i))
                .map(|f| f.trim())
                .filter(|f| !f.is_empty())
        };
        let Some(address) = field(Some(columns.email)).and_then(|e| Address::parse(e).ok()) else {
            return Ok(Err("invalid_address"));
        };
        let Some(reason) = import_reason(field(columns.reason).unwrap_or("")) else {
            return Ok(Err("invalid_reason"));
        };
        let stream = field(columns.stream)
            .map(str::to_string)
            .or_else(|| self.stream.clone());
        if let Some(name) = &stream
            && !self.stream_exists(name).await?
        {
            return Ok(Err("unknown_stream"));
        }
        let source = field(columns.source).unwrap_or("import").to_string();
        Ok(Ok(NewSuppression {
            address,
            reason,
            stream,
            source,
        }))
    }

    async fn stream_exists(&mut self, name: &str) -> Result<bool, ServiceError> {
        if let Some(known) = self.streams.get(name) {
            return Ok(*known);
        }
        let found = self
            .services
            .streams
            .find(&self.services.store, &self.tenant_id, name)
            .await?
            .is_some();
        self.streams.insert(name.to_string(), found);
        Ok(found)
    }

    async fn flush(&mut self) -> Result<(), ServiceError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        for added in suppressions::add_many(self.services, &self.tenant_id, &batch).await? {
            match added {
                true => self.counts.imported += 1,
                false => self.counts.already += 1,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_providers_headers_and_reasons_are_understood() {
        let header = |h: &[&str]| Columns::of(&h.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        for h in [
            "email",
            "Email",
            "E-mail",
            "email_address",
            "Email Address",
            "Recipient",
        ] {
            assert_eq!(header(&["created_at", h]).map(|c| c.email), Some(1), "{h}");
        }
        assert!(header(&["name", "mail"]).is_none());
        let c = header(&["Reason", "email", "source", "STREAM"]).unwrap();
        assert_eq!((c.reason, c.stream, c.source), (Some(0), Some(3), Some(2)));
        for (text, want) in [
            ("", Some(SuppressionReason::Manual)),
            ("hard_bounce", Some(SuppressionReason::HardBounce)),
            ("HardBounce", Some(SuppressionReason::HardBounce)),
            ("SpamComplaint", Some(SuppressionReason::Complaint)),
            ("unsubscribe", Some(SuppressionReason::Unsubscribe)),
            ("ManualSuppression", Some(SuppressionReason::Manual)),
            ("erasure", None),
            ("whatever", None),
        ] {
            assert_eq!(import_reason(text), want, "{text}");
        }
    }

    #[test]
    fn stream_exports_hold_that_streams_entries_only() {
        assert!(in_export(None, Some("broadcast")));
        assert!(in_export(Some("broadcast"), Some("broadcast")));
        assert!(!in_export(Some("broadcast"), None));
    }
}
