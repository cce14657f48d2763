//! CSV imports of contacts.
//!
//! An import goes through two passes. **Screening** ([`Screening`]) reads the CSV as it
//! arrives, record by record: it maps the columns, validates and canonicalises each
//! address, merges repeats, drops erased people (their tombstones stay), counts what
//! the watchdog weighs and spools the good rows, sealed, to the data directory. Then the
//! [`watchdog`] decides: an unusual file stops in state `held` (event `import_held`,
//! an audit entry) with nothing of it written; any other goes on to **commit**
//! ([`run`]), which writes the rows in batches, each batch atomically with the
//! import's progress, so an import interrupted by a stop resumes where it was
//! ([`resume`]) and a cancelled one stops at the next batch.
//!
//! States: `screening` → `running` → `done`, or `screening` → `held` → (`approve`)
//! `running` / (`discard`) `cancelled`; `cancel` stops any unfinished import; an
//! error ends in `failed`.

mod commit;
mod screen;
pub mod spool;
pub mod watchdog;

use std::collections::BTreeMap;
use std::sync::Arc;

use postwerk_core::csv::CsvError;
use postwerk_core::model::EventType;
use postwerk_store::model::ImportRecord;
use postwerk_store::prelude::*;
use postwerk_store::vault::SealContext;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use commit::run;
use postwerk_services::audit::{self, Actor};
use postwerk_services::context::{ServiceError, Services, now_ms};
pub use screen::Screening;
use watchdog::{Reason, Screened};

/// Most rejected rows an import's report lists (all are counted).
pub const MAX_REJECTS: usize = 1000;

/// What to do with a contact the tenant has already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Existing {
    /// Rectify it: the file's non-empty cells replace its attributes of the same name.
    #[default]
    Update,
    /// Leave its attributes alone (it still joins the list, and consent is recorded).
    Keep,
}

/// How an import reads its file and what it records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// The list every row joins (id or name; it must exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Record consent for this purpose for every row (with the evidence below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
    /// The consent's lawful basis (default `consent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lawful_basis: Option<String>,
    /// Where the consent was collected (`signup form`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The wording the people agreed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wording: Option<String>,
    /// What to do with existing contacts.
    #[serde(default)]
    pub existing: Existing,
    /// Column mapping overrides: CSV column → `email`, `attribute:<name>`, `lists`,
    /// `consent_at`, `consent_ip` or `skip`. Unmapped columns: `email` (also
    /// `e-mail`, `email_address`, `mail`), `lists`, `consent_at` and `consent_ip` by
    /// name, any other an attribute of its own name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
}

/// The counts of an import's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Data rows read.
    pub rows: u64,
    /// New contacts.
    pub imported: u64,
    /// Existing contacts rectified.
    pub updated: u64,
    /// Existing contacts left as they were (`existing = keep`).
    pub unchanged: u64,
    /// Rows merged into an earlier row of the same address.
    pub duplicates: u64,
    /// Rows refused (see the report).
    pub rejected: u64,
    /// Rows of erased people, never imported again.
    pub skipped_erased: u64,
    /// Consent records written.
    pub consents: u64,
}

/// A refused row: its line in the file and why (never its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The line the row starts on (the header is line 1).
    pub row: u64,
    /// `missing_email`, `invalid_address`, `likely_typo:<meant domain>`,
    /// `too_many_fields`, `invalid_list` or `invalid_consent_at`.
    pub reason: String,
}

/// Everything an import records besides its state (the `imports.detail` JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    /// How it was asked for.
    pub options: ImportOptions,
    /// The list's id.
    #[serde(default)]
    pub list_id: Option<String>,
    /// Who started it (`key:<id>`, `user:<id>`, `cli`).
    pub actor: String,
    /// Bytes read.
    pub bytes: u64,
    /// What screening counted (the watchdog's inputs).
    pub screened: Screened,
    /// The outcome so far.
    pub counts: Counts,
    /// Why it was held.
    #[serde(default)]
    pub reasons: Vec<Reason>,
    /// The first [`MAX_REJECTS`] refused rows.
    #[serde(default)]
    pub rejects: Vec<Reject>,
    /// Chunks spooled.
    pub chunks: u64,
    /// Chunks committed.
    pub chunks_done: u64,
    /// Who approved or discarded it, when held.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// When it ended.
    #[serde(default)]
    pub finished_at: Option<i64>,
}

/// An import's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Reading and screening the file.
    Screening,
    /// Stopped by the watchdog, waiting for an admin.
    Held,
    /// Writing its rows.
    Running,
    /// Finished.
    Done,
    /// Cancelled or discarded.
    Cancelled,
    /// Ended by an error (see `detail.error`).
    Failed,
}

impl State {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Screening => "screening",
            State::Held => "held",
            State::Running => "running",
            State::Done => "done",
            State::Cancelled => "cancelled",
            State::Failed => "failed",
        }
    }
}

/// An import as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// `imp_…`.
    pub id: String,
    /// The state's name (see [`State`]).
    pub state: String,
    /// Options, counts, reasons, report.
    pub detail: Detail,
    /// Started.
    pub created_at: i64,
    /// Changed last.
    pub updated_at: i64,
}

/// Why an import could not start, go on or change state.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The body is not readable CSV.
    #[error("{0}")]
    Csv(#[from] CsvError),
    /// No column maps to the address.
    #[error("the file has no `email` column (map one with columns)")]
    MissingEmailColumn,
    /// Several columns map to the address.
    #[error("more than one column maps to `email`")]
    DuplicateEmailColumn,
    /// A mapping names a column the file does not have, or a target that is none.
    #[error("{0}")]
    Mapping(String),
    /// The file is over `[imports] max_bytes`.
    #[error("the file is larger than imports.max_bytes ({0} bytes)")]
    TooLarge(u64),
    /// The file has no header.
    #[error("the file is empty")]
    Empty,
    /// The upload broke off.
    #[error("the upload broke off: {0}")]
    Interrupted(String),
    /// The list named does not exist.
    #[error("no such list")]
    UnknownList,
    /// An option's value is not allowed.
    #[error("{1}")]
    Invalid(&'static str, String),
    /// No such import.
    #[error("no such import")]
    NotFound,
    /// The import is not in a state that allows this.
    #[error("the import is {0}")]
    WrongState(String),
    /// The store, the vault or the spool failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<postwerk_store::StoreError> for ImportError {
    fn from(e: postwerk_store::StoreError) -> Self {
        ImportError::Service(e.into())
    }
}

impl From<postwerk_store::vault::VaultError> for ImportError {
    fn from(e: postwerk_store::vault::VaultError) -> Self {
        ImportError::Service(e.into())
    }
}

fn decode(r: ImportRecord) -> Result<Import, ImportError> {
    let detail = serde_json::from_str(&r.detail).map_err(|e| {
        ServiceError::Store(postwerk_store::StoreError::Corrupt(format!(
            "import detail: {e}"
        )))
    })?;
    Ok(Import {
        id: r.id,
        state: r.state,
        detail,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// The stored row of `import` in `state`, changed now.
fn record(tenant_id: &str, import: &Import, state: State) -> ImportRecord {
    ImportRecord {
        id: import.id.clone(),
        tenant_id: tenant_id.to_string(),
        state: state.as_str().into(),
        detail: serde_json::to_string(&import.detail).expect("detail serialises"),
        created_at: import.created_at,
        updated_at: now_ms(),
    }
}

/// A tenant's import.
pub async fn get(services: &Services, tenant_id: &str, id: &str) -> Result<Import, ImportError> {
    let r = services.store.get_import(tenant_id, id).await?;
    decode(r.ok_or(ImportError::NotFound)?)
}

/// A tenant's imports, newest first, before id `before`, at most `limit`.
pub async fn list(
    services: &Services,
    tenant_id: &str,
    before: Option<String>,
    limit: usize,
) -> Result<Vec<Import>, ImportError> {
    let rows = services
        .store
        .list_imports(tenant_id, before, limit)
        .await?;
    rows.into_iter().map(decode).collect()
}

/// `1000 rows, 990 imported, …`: what the audit log and the CLI say of an import.
impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows, {} imported, {} updated, {} unchanged, {} duplicates, {} rejected, \
             {} skipped (erased)",
            self.rows,
            self.imported,
            self.updated,
            self.unchanged,
            self.duplicates,
            self.rejected,
            self.skipped_erased
        )
    }
}

/// The audit target of an import with its counts.
fn audit_target(import: &Import) -> String {
    format!("{}: {}", import.id, import.detail.counts)
}

/// Moves an import from one of `from` to `to` (recording `actor`'s decision), audits
/// it as `action`; `WrongState` if it was in none of `from`.
async fn transition(
    services: &Services,
    tenant_id: &str,
    id: &str,
    actor: &Actor,
    from: &[State],
    to: State,
    action: &str,
) -> Result<Import, ImportError> {
    let mut import = get(services, tenant_id, id).await?;
    let from_names: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    if !from_names.contains(&import.state.as_str()) {
        return Err(ImportError::WrongState(import.state));
    }
    audit::record(
        services,
        actor,
        Some(tenant_id),
        action,
        Some(audit_target(&import)),
    )
    .await?;
    import.detail.decided_by = Some(actor.id.clone());
    if to != State::Running {
        import.detail.finished_at = Some(now_ms());
    }
    let next = record(tenant_id, &import, to);
    if !services
        .store
        .update_import(next.clone(), &from_names)
        .await?
    {
        let now = get(services, tenant_id, id).await?;
        return Err(ImportError::WrongState(now.state));
    }
    if to == State::Cancelled {
        spool::remove(&services.config.data_dir, id);
    }
    decode(next)
}

/// Approves a held import: it goes on to commit (the caller starts [`run`]).
pub async fn approve(
    services: &Services,
    tenant_id: &str,
    id: &str,
    actor: &Actor,
) -> Result<Import, ImportError> {
    let from = [State::Held];
    transition(
        services,
        tenant_id,
        id,
        actor,
        &from,
        State::Running,
        "import.approve",
    )
    .await
}

/// Discards a held import: nothing of it is written, its spool is deleted.
pub async fn discard(
    services: &Services,
    tenant_id: &str,
    id: &str,
    actor: &Actor,
) -> Result<Import, ImportError> {
    let from = [State::Held];
    transition(
        services,
        tenant_id,
        id,
        actor,
        &from,
        State::Cancelled,
        "import.discard",
    )
    .await
}

/// Cancels an unfinished import. A running one stops before its next batch (the
/// batches written stay, as the counts say).
pub async fn cancel(
    services: &Services,
    tenant_id: &str,
    id: &str,
    actor: &Actor,
) -> Result<Import, ImportError> {
    let from = [State::Screening, State::Held, State::Running];
    transition(
        services,
        tenant_id,
        id,
        actor,
        &from,
        State::Cancelled,
        "import.cancel",
    )
    .await
}

/// At start-up: imports a stop interrupted. Those that were committing resume where
/// their last batch ended (returned, for the caller to [`run`]); those that were
/// still reading their file fail (the upload is gone: send it again).
pub async fn interrupted(services: &Services) -> Result<Vec<(String, String)>, ImportError> {
    for r in services
        .store
        .imports_in_state(State::Screening.as_str())
        .await?
    {
        let tenant_id = r.tenant_id.clone();
        let mut import = decode(r)?;
        import.detail.error = Some("interrupted while the file was read; send it again".into());
        import.detail.finished_at = Some(now_ms());
        let next = record(&tenant_id, &import, State::Failed);
        services
            .store
            .update_import(next, &[State::Screening.as_str()])
            .await?;
        spool::remove(&services.config.data_dir, &import.id);
    }
    let running = services
        .store
        .imports_in_state(State::Running.as_str())
        .await?;
    Ok(running.into_iter().map(|r| (r.tenant_id, r.id)).collect())
}

/// Raises `import_held` for the tenant's webhooks.
async fn held_event(
    services: &Services,
    tenant_id: &str,
    import: &Import,
) -> Result<(), ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let detail = json!({
        "import_id": import.id,
        "rows": import.detail.counts.rows,
        "reasons": import.detail.reasons,
    });
    let sealed = keys.seal(SealContext::Event(""), detail.to_string().as_bytes());
    services
        .store
        .add_tenant_event(tenant_id, EventType::ImportHeld, now_ms(), sealed)
        .await?;
    Ok(())
}

/// Starts committing a running import in the background.
pub fn spawn(services: Arc<Services>, tenant_id: String, id: String) {
    tokio::spawn(run(services, tenant_id, id));
}
