//! Screening: an import's first pass over its CSV, as the bytes arrive.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use postwerk_core::address::Address;
use postwerk_core::csv::{CsvReader, Record};
use postwerk_core::id::new_id;
use postwerk_core::model::SuppressionReason;
use postwerk_core::screening;
use postwerk_store::prelude::*;
use postwerk_store::vault::TenantKeys;
use serde_json::{Map, Value};

use super::spool::{self, CHUNK, Row};
use super::watchdog::verdict;
use super::{
    Detail, Import, ImportError, ImportOptions, MAX_REJECTS, Reject, State, audit_target, decode,
    held_event, record,
};
use crate::audience::lists;
use postwerk_services::audit::{self, Actor};
use postwerk_services::context::{Services, now_ms};

/// Longest CSV record, in bytes.
const MAX_RECORD: usize = 64 << 10;

/// Where each of the file's columns goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Email,
    Attribute(String),
    Lists,
    ConsentAt,
    ConsentIp,
    Skip,
}

impl Target {
    /// The target of a column named `name`, mapped as `mapped` if it is.
    fn of(name: &str, mapped: Option<&str>) -> Result<Target, ImportError> {
        let spec = mapped.unwrap_or(name).trim();
        Ok(match spec.to_ascii_lowercase().as_str() {
            "email" | "e-mail" | "email_address" | "emailaddress" | "mail" => Target::Email,
            "lists" => Target::Lists,
            "consent_at" => Target::ConsentAt,
            "consent_ip" => Target::ConsentIp,
            "skip" if mapped.is_some() => Target::Skip,
            _ => match spec.strip_prefix("attribute:") {
                Some(attr) if !attr.trim().is_empty() => Target::Attribute(attr.trim().into()),
                Some(_) => {
                    return Err(ImportError::Mapping(format!(
                        "column `{name}`: attribute: needs a name"
                    )));
                }
                None if mapped.is_some() && spec.contains(':') => {
                    return Err(ImportError::Mapping(format!(
                        "column `{name}`: `{spec}` is not email, attribute:<name>, lists, consent_at, consent_ip or skip"
                    )));
                }
                None => Target::Attribute(spec.into()),
            },
        })
    }
}

/// The targets of a header's columns.
fn mapping(header: &Record, options: &ImportOptions) -> Result<Vec<Target>, ImportError> {
    let names: Vec<&str> = header.fields.iter().map(|f| f.trim()).collect();
    if let Some(unknown) = options
        .columns
        .keys()
        .find(|c| !names.contains(&c.as_str()))
    {
        return Err(ImportError::Mapping(format!(
            "the file has no column `{unknown}`"
        )));
    }
    let targets = names
        .iter()
        .map(|n| Target::of(n, options.columns.get(*n).map(String::as_str)))
        .collect::<Result<Vec<_>, _>>()?;
    match targets.iter().filter(|t| **t == Target::Email).count() {
        0 => Err(ImportError::MissingEmailColumn),
        1 => Ok(targets),
        _ => Err(ImportError::DuplicateEmailColumn),
    }
}

/// A consent time as a file may write it: RFC 3339, or a date (midnight UTC).
fn consent_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
        })
}

/// An import being screened: feed it the CSV, then [`Screening::finish`] it.
pub struct Screening {
    services: Arc<Services>,
    tenant_id: String,
    keys: Arc<TenantKeys>,
    import: Import,
    reader: CsvReader,
    targets: Option<Vec<Target>>,
    spool: Option<spool::Writer>,
    pending: Vec<Row>,
    /// The first 16 bytes of every blind index seen (repeats merge).
    seen: HashSet<[u8; 16]>,
    domains: HashMap<String, u64>,
    /// Domains already weighed by [`screening::likely_typo`].
    typos: HashMap<String, Option<&'static str>>,
}

impl Screening {
    /// Starts an import for `actor` (audited): checks the options, records the
    /// import in state `screening` and opens its spool.
    pub async fn start(
        services: &Arc<Services>,
        tenant_id: &str,
        actor: &Actor,
        options: ImportOptions,
    ) -> Result<Screening, ImportError> {
        let list_id = match &options.list {
            Some(key) => match lists::find(services, tenant_id, key).await {
                Ok(found) => Some(found.list.id),
                Err(lists::ListError::NotFound | lists::ListError::InvalidName) => {
                    return Err(ImportError::UnknownList);
                }
                Err(lists::ListError::Service(e)) => return Err(e.into()),
                Err(lists::ListError::Taken) => unreachable!("find never conflicts"),
            },
            None => None,
        };
        if let Some(basis) = &options.lawful_basis
            && !crate::contacts::LAWFUL_BASES.contains(&basis.as_str())
        {
            return Err(ImportError::Invalid(
                "lawful_basis",
                format!(
                    "lawful_basis is one of {}",
                    crate::contacts::LAWFUL_BASES.join(", ")
                ),
            ));
        }
        if options
            .consent
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            return Err(ImportError::Invalid(
                "consent",
                "consent names a purpose".into(),
            ));
        }
        let now = now_ms();
        let import = Import {
            id: new_id("imp"),
            state: State::Screening.as_str().into(),
            detail: Detail {
                options,
                list_id,
                actor: actor.id.clone(),
                ..Detail::default()
            },
            created_at: now,
            updated_at: now,
        };
        audit::record(
            services,
            actor,
            Some(tenant_id),
            "import.start",
            Some(import.id.clone()),
        )
        .await?;
        services
            .store
            .create_import(record(tenant_id, &import, State::Screening))
            .await?;
        let spool = spool::Writer::create(&services.config.data_dir, &import.id)?;
        Ok(Screening {
            keys: services.tenant_keys(tenant_id).await?,
            services: services.clone(),
            tenant_id: tenant_id.to_string(),
            import,
            reader: CsvReader::new(MAX_RECORD),
            targets: None,
            spool: Some(spool),
            pending: Vec::with_capacity(CHUNK),
            seen: HashSet::new(),
            domains: HashMap::new(),
            typos: HashMap::new(),
        })
    }

    /// The import's id.
    pub fn id(&self) -> &str {
        &self.import.id
    }

    /// Reads the next bytes of the file.
    pub async fn feed(&mut self, chunk: &[u8]) -> Result<(), ImportError> {
        let d = &mut self.import.detail;
        d.bytes += chunk.len() as u64;
        let max = self.services.config.imports.max_bytes;
        if d.bytes > max {
            return Err(ImportError::TooLarge(max));
        }
        let mut records = Vec::new();
        self.reader.feed(chunk, &mut records)?;
        self.take(records).await
    }

    async fn take(&mut self, records: Vec<Record>) -> Result<(), ImportError> {
        for r in records {
            match &self.targets {
                None => self.targets = Some(mapping(&r, &self.import.detail.options)?),
                Some(_) => self.row(r),
            }
            if self.pending.len() >= CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    fn reject(&mut self, line: u64, reason: String) {
        let d = &mut self.import.detail;
        d.counts.rejected += 1;
        d.screened.invalid += 1;
        if d.rejects.len() < MAX_REJECTS {
            d.rejects.push(Reject { row: line, reason });
        }
    }

    /// Screens one data row.
    fn row(&mut self, r: Record) {
        let targets = self.targets.as_ref().expect("header read");
        self.import.detail.counts.rows += 1;
        self.import.detail.screened.rows += 1;
        if r.fields.len() > targets.len() && r.fields[targets.len()..].iter().any(|f| !f.is_empty())
        {
            return self.reject(r.line, "too_many_fields".into());
        }
        let mut email = "";
        let mut attributes = Map::new();
        let mut row_lists = Vec::new();
        let (mut consent_at, mut consent_ip) = (None, None);
        for (target, value) in targets.iter().zip(&r.fields) {
            let value = value.trim();
            match target {
                Target::Email => email = value,
                Target::Attribute(name) if !value.is_empty() => {
                    attributes.insert(name.clone(), Value::String(value.into()));
                }
                Target::Lists => row_lists.extend(
                    value
                        .split([';', '|'])
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(String::from),
                ),
                Target::ConsentAt if !value.is_empty() => consent_at = Some(value),
                Target::ConsentIp if !value.is_empty() => consent_ip = Some(value.to_string()),
                _ => {}
            }
        }
        if email.is_empty() {
            return self.reject(r.line, "missing_email".into());
        }
        if row_lists
            .iter()
            .any(|l| l.chars().count() > lists::MAX_NAME)
        {
            return self.reject(r.line, "invalid_list".into());
        }
        let Ok(address) = Address::parse(email) else {
            return self.reject(r.line, "invalid_address".into());
        };
        let domain = address.domain().to_string();
        let typo = *self
            .typos
            .entry(domain.clone())
            .or_insert_with(|| screening::likely_typo(&address));
        if let Some(meant) = typo {
            self.import.detail.screened.typos += 1;
            return self.reject(r.line, format!("likely_typo:{meant}"));
        }
        let consent_at = match consent_at.map(|t| consent_time(t).ok_or(())) {
            Some(Err(())) => return self.reject(r.line, "invalid_consent_at".into()),
            Some(Ok(at)) => Some(at),
            None => None,
        };
        let asks_evidence = targets.contains(&Target::ConsentAt);
        let s = &mut self.import.detail.screened;
        s.role += u64::from(screening::is_role(&address));
        s.disposable += u64::from(screening::is_disposable(&address));
        let no_consent = asks_evidence && consent_at.is_none();
        s.no_consent += u64::from(no_consent);
        *self.domains.entry(domain).or_default() += 1;
        let hash = self.keys.blind_index(&address).into_bytes();
        let short: [u8; 16] = hash[..16].try_into().expect("32-byte index");
        let duplicate = !self.seen.insert(short);
        self.import.detail.counts.duplicates += u64::from(duplicate);
        self.pending.push(Row {
            hash,
            line: r.line,
            email: address.to_string(),
            attributes,
            lists: row_lists,
            consent_at,
            consent_ip,
            no_consent,
            duplicate,
        });
    }

    /// Drops the pending rows of erased people, counts the suppressed, spools the
    /// rest.
    async fn flush(&mut self) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let hashes = self.pending.iter().map(|p| p.hash.clone()).collect();
        let screen = self
            .services
            .store
            .screen_subjects(&self.tenant_id, hashes, None)
            .await?;
        let mut erased = HashSet::new();
        let mut suppressed = HashSet::new();
        for s in &screen.suppressions {
            if s.reason == SuppressionReason::Erasure {
                erased.insert(s.rcpt_hash.as_slice());
            }
            suppressed.insert(s.rcpt_hash.as_slice());
        }
        let mut rows = Vec::with_capacity(self.pending.len());
        let d = &mut self.import.detail;
        for p in self.pending.drain(..) {
            if suppressed.contains(p.hash.as_slice()) && !p.duplicate {
                d.screened.suppressed += 1;
            }
            if erased.contains(p.hash.as_slice()) {
                d.counts.skipped_erased += 1;
                continue;
            }
            rows.push(p);
        }
        let spool = self.spool.as_mut().expect("spool open until finish");
        spool.push(&self.keys, rows)?;
        Ok(())
    }

    /// Ends the file: the watchdog decides whether the import is held or goes on to
    /// commit (the caller then starts [`super::run`]). A file that ends unreadable
    /// fails the import.
    pub async fn finish(mut self) -> Result<Import, ImportError> {
        match self.conclude().await {
            Ok(import) => Ok(import),
            Err(e) => {
                self.mark_failed(&e).await;
                Err(e)
            }
        }
    }

    async fn conclude(&mut self) -> Result<Import, ImportError> {
        let mut records = Vec::new();
        self.reader.finish(&mut records)?;
        self.take(records).await?;
        if self.targets.is_none() {
            return Err(ImportError::Empty);
        }
        self.flush().await?;
        let spool = self.spool.take().expect("spool open");
        let d = &mut self.import.detail;
        d.chunks = spool.finish(&self.keys)?;
        d.screened.top_domain = self.domains.values().copied().max().unwrap_or(0);
        let services = &self.services;
        let earlier = super::list(services, &self.tenant_id, None, 100).await?;
        let largest = earlier
            .iter()
            .filter(|i| i.state == State::Done.as_str())
            .map(|i| i.detail.counts.rows)
            .max();
        let d = &mut self.import.detail;
        let gated = d.options.consent.as_ref().is_some_and(|p| {
            services
                .config
                .privacy
                .consent_required
                .values()
                .any(|g| g == p)
        });
        d.reasons = verdict(
            &d.screened,
            &services.config.imports.watchdog,
            largest,
            gated,
        );
        let state = if d.reasons.is_empty() {
            State::Running
        } else {
            State::Held
        };
        let next = record(&self.tenant_id, &self.import, state);
        if !services
            .store
            .update_import(next.clone(), &[State::Screening.as_str()])
            .await?
        {
            // Cancelled while the file was read.
            spool::remove(&services.config.data_dir, &self.import.id);
            return super::get(services, &self.tenant_id, &self.import.id).await;
        }
        let import = decode(next)?;
        if state == State::Held {
            audit::record(
                services,
                &Actor::system(),
                Some(&self.tenant_id),
                "import.held",
                Some(audit_target(&import)),
            )
            .await?;
            held_event(services, &self.tenant_id, &import).await?;
        }
        Ok(import)
    }

    /// Ends an import whose file could not be read: `failed`, with the reason; its
    /// spool is deleted.
    pub async fn fail(mut self, error: &ImportError) -> Import {
        self.mark_failed(error).await;
        self.import
    }

    async fn mark_failed(&mut self, error: &ImportError) {
        self.spool = None;
        spool::remove(&self.services.config.data_dir, &self.import.id);
        self.import.detail.error = Some(error.to_string());
        self.import.detail.finished_at = Some(now_ms());
        let next = record(&self.tenant_id, &self.import, State::Failed);
        if let Err(e) = self
            .services
            .store
            .update_import(next, &[State::Screening.as_str()])
            .await
        {
            tracing::warn!(import = %self.import.id, error = %e, "a failed import could not be recorded");
        }
        self.import.state = State::Failed.as_str().into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Record {
        Record {
            line: 1,
            fields: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn columns_map_by_name_unless_mapped() {
        let options = ImportOptions::default();
        let t = mapping(
            &header(&["E-Mail", "first_name", "lists", "consent_at"]),
            &options,
        )
        .expect("maps");
        assert_eq!(
            t,
            [
                Target::Email,
                Target::Attribute("first_name".into()),
                Target::Lists,
                Target::ConsentAt
            ]
        );
        let options = ImportOptions {
            columns: [
                ("Address".to_string(), "email".to_string()),
                ("Notes".to_string(), "skip".to_string()),
                ("Stadt".to_string(), "attribute:city".to_string()),
            ]
            .into(),
            ..ImportOptions::default()
        };
        let t = mapping(&header(&["Address", "Notes", "Stadt"]), &options).expect("maps");
        assert_eq!(
            t,
            [
                Target::Email,
                Target::Skip,
                Target::Attribute("city".into())
            ]
        );
    }

    #[test]
    fn a_mapping_without_one_email_column_or_naming_no_column_is_refused() {
        let options = ImportOptions::default();
        assert!(matches!(
            mapping(&header(&["name"]), &options),
            Err(ImportError::MissingEmailColumn)
        ));
        assert!(matches!(
            mapping(&header(&["email", "mail"]), &options),
            Err(ImportError::DuplicateEmailColumn)
        ));
        let options = ImportOptions {
            columns: [("nope".to_string(), "email".to_string())].into(),
            ..ImportOptions::default()
        };
        assert!(matches!(
            mapping(&header(&["email"]), &options),
            Err(ImportError::Mapping(_))
        ));
    }

    #[test]
    fn consent_times_read_as_rfc3339_or_dates() {
        assert_eq!(consent_time("1970-01-02"), Some(86_400_000));
        assert_eq!(consent_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(consent_time("yesterday"), None);
    }
}
