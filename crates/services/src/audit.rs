//! The audit chain from the services' side: record who did what, and verify the
//! whole chain (see [`postwerk_store::audit`] for the hashing).
//!
//! Personal targets are recorded only as a short blind-index hash
//! (`rcpt:<16 hex digits>`): the log proves that a person's data was exported or
//! erased without itself holding the address.

use postwerk_core::address::Address;
use postwerk_store::audit::{self, ChainBreak};
use postwerk_store::model::{AuditDraft, AuditRecord};
use postwerk_store::prelude::*;
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
    subject_of(&keys.blind_index(address))
}

/// The audit target naming the person of a stored blind index (`rcpt:` and its first
/// eight bytes in hex), the same form [`subject`] gives for their address.
pub fn subject_of(hash: &[u8]) -> String {
    let hex = postwerk_core::hex::encode(&hash[..hash.len().min(8)]);
    format!("rcpt:{hex}")
}

/// People named in one read's audit entry; the rest are counted (`+N more`), so a
/// page of a thousand rows does not write a thousand-name entry.
const MAX_NAMED: usize = 50;

/// The audit target of a read that shows the data of the people `hashes` (blind
/// indexes, duplicates allowed): each named once, in order, up to [`MAX_NAMED`], then
/// `+N more`. `None` when the read shows nobody's data.
pub fn subjects<'a>(hashes: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    let people: Vec<&[u8]> = hashes
        .into_iter()
        .filter(|h| !h.is_empty() && seen.insert(*h))
        .collect();
    if people.is_empty() {
        return None;
    }
    let mut target: Vec<String> = people
        .iter()
        .take(MAX_NAMED)
        .map(|h| subject_of(h))
        .collect();
    if people.len() > MAX_NAMED {
        target.push(format!("+{} more", people.len() - MAX_NAMED));
    }
    Some(target.join(" "))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_names_each_person_once_and_counts_the_rest() {
        let a = [0xabu8; 32];
        let b = [0x01u8; 32];
        let target = subjects([&a[..], &b[..], &a[..], &[][..]]).expect("two people");
        assert_eq!(target, "rcpt:abababababababab rcpt:0101010101010101");
        assert_eq!(subjects([&[][..]]), None);
        let many: Vec<[u8; 32]> = (0..=MAX_NAMED as u8 + 2).map(|i| [i; 32]).collect();
        let target = subjects(many.iter().map(|h| &h[..])).expect("many people");
        assert_eq!(target.matches("rcpt:").count(), MAX_NAMED);
        assert!(target.ends_with(" +3 more"), "{target}");
    }
}
