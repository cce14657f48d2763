//! The audit chain from the services' side: record who did what, and verify the
//! whole chain (see [`postwerk_store::audit`] for the hashing).
//!
//! Personal targets are recorded only as a short blind-index hash
//! (`rcpt:<16 hex digits>`): the log proves that a person's data was exported or
//! erased without itself holding the address.

use postwerk_core::address::Address;
use postwerk_store::Store;
use postwerk_store::audit::{self, ChainBreak};
use postwerk_store::model::{AuditDraft, AuditRecord};
use postwerk_store::vault::TenantKeys;

use crate::context::{ServiceError, Services, now_ms};

/// Entries read per page when verifying.
const PAGE: usize = 1000;

/// Who acted, from where.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `key:<id>`, `cli`, `system`.
    pub id: String,
    /// The request's source IP.
    pub ip: Option<String>,
}

impl Actor {
    /// The command line (an operator on the host).
    pub fn cli() -> Self {
        Actor {
            id: "cli".into(),
            ip: None,
        }
    }

    /// Postwerk itself (a background job acting on its own).
    pub fn system() -> Self {
        Actor {
            id: "system".into(),
            ip: None,
        }
    }
}

/// Appends an entry. Callers record before they act on personal data (an access
/// that cannot be recorded does not happen).
pub async fn record(
    services: &Services,
    actor: &Actor,
    tenant_id: Option<&str>,
    action: &str,
    target: Option<String>,
) -> Result<AuditRecord, ServiceError> {
    let draft = AuditDraft {
        at: now_ms(),
        tenant_id: tenant_id.map(str::to_string),
        actor: actor.id.clone(),
        action: action.to_string(),
        target,
        ip: actor.ip.clone(),
    };
    Ok(services.store.append_audit(draft).await?)
}

/// The audit target naming a person: a short form of their blind index.
pub fn subject(keys: &TenantKeys, address: &Address) -> String {
    let hash = keys.blind_index(&address.normalized());
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("rcpt:{hex}")
}

/// Reads the whole chain in order and checks it: `Ok((entries, head hash))` or the
/// first break.
pub async fn verify(
    services: &Services,
) -> Result<Result<(u64, Vec<u8>), ChainBreak>, ServiceError> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = services.store.list_audit(None, after, PAGE).await?;
        let full = page.len() == PAGE;
        after = page.last().map(|e| e.seq).or(after);
        all.extend(page);
        if !full {
            break;
        }
    }
    let anchor = services.store.audit_anchor().await?;
    Ok(audit::verify(anchor, all))
}
