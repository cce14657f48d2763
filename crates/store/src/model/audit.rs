//! The audit area's rows: the audit chain's entries.

/// An audit entry to append: who did what to which target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    /// Time (Unix ms).
    pub at: i64,
    /// The tenant concerned, if any.
    pub tenant_id: Option<String>,
    /// Who: `key:<id>`, `cli`, `system`.
    pub actor: String,
    /// What: `subject.export`, `subject.erase`, `contact.update`, `key.create`, …
    pub action: String,
    /// On what; personal targets only as a hash (`rcpt:<hex blind index>`).
    pub target: Option<String>,
    /// Source IP of the request, if any.
    pub ip: Option<String>,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain.
    pub seq: i64,
    /// Time (Unix ms).
    pub at: i64,
    /// The tenant concerned.
    pub tenant_id: Option<String>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// From where.
    pub ip: Option<String>,
    /// The previous entry's hash ([`crate::audit::GENESIS`] for the first).
    pub prev_hash: Vec<u8>,
    /// SHA-256 of `prev_hash` and this entry's fields.
    pub hash: Vec<u8>,
}

impl AuditRecord {
    /// The entry's fields as a draft (what the hash covers besides `prev_hash`).
    pub fn draft(&self) -> AuditDraft {
        AuditDraft {
            at: self.at,
            tenant_id: self.tenant_id.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            ip: self.ip.clone(),
        }
    }

    /// A stored entry from its draft and chain position.
    pub fn from_draft(seq: i64, d: AuditDraft, prev_hash: Vec<u8>, hash: Vec<u8>) -> Self {
        AuditRecord {
            seq,
            at: d.at,
            tenant_id: d.tenant_id,
            actor: d.actor,
            action: d.action,
            target: d.target,
            ip: d.ip,
            prev_hash,
            hash,
        }
    }
}
