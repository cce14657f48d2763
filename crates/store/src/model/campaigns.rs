//! Campaign templates and their versions.

/// A template at one of its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    /// `tpl_…`.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// Unique in the tenant.
    pub name: String,
    /// The version these parts are (the template's current one unless asked for
    /// another); from 1.
    pub version: i64,
    /// The template's current version.
    pub current: i64,
    /// The version's parts (JSON, as the service layer writes it), sealed under the
    /// tenant key, as message content is.
    pub content_enc: Vec<u8>,
    /// The template was created.
    pub created_at: i64,
    /// The template was changed last (renamed or given a new version).
    pub updated_at: i64,
}
