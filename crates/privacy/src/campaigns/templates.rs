//! Templates: a name and versions of parts (subject, HTML, text). A change to the
//! parts adds a version; a broadcast keeps the version it was sent with. The parts are
//! marketing copy and may hold anything the tenant writes: they are sealed under the
//! tenant key, as message content is. A template is compiled before it is saved, so
//! one that is stored always renders (its variables aside).

use postwerk_core::id::new_id;
use postwerk_store::StoreError;
use postwerk_store::model::TemplateRecord;
use postwerk_store::prelude::*;
use postwerk_store::vault::{SealContext, VaultError};

use super::render::{Compiled, Parts, TemplateError};
use postwerk_services::context::{ServiceError, Services, now_ms};

/// Longest template name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest part as written, in bytes.
pub const MAX_PART: usize = 1 << 20;

/// Why a template operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateFailure {
    /// A name is empty or over [`MAX_NAME`] characters.
    #[error("a template name is 1 to 100 characters")]
    InvalidName,
    /// A part is over [`MAX_PART`] bytes.
    #[error("a template part is at most 1 MiB")]
    TooLarge,
    /// The tenant has a template of that name.
    #[error("a template of that name exists")]
    Taken,
    /// No such template, or no such version of it.
    #[error("no such template")]
    NotFound,
    /// Someone else changed the template at the same time: nothing was saved.
    #[error("the template was changed meanwhile; read it and try again")]
    Changed,
    /// A part does not compile or render.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The store or the vault failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for TemplateFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict("template") => TemplateFailure::Taken,
            StoreError::Conflict(_) => TemplateFailure::Changed,
            other => TemplateFailure::Service(other.into()),
        }
    }
}

/// A template at one of its versions.
#[derive(Debug, Clone)]
pub struct Template {
    /// `tpl_…`.
    pub id: String,
    /// Unique in the tenant.
    pub name: String,
    /// The version `parts` are.
    pub version: i64,
    /// The template's current version.
    pub current: i64,
    /// The parts as written.
    pub parts: Parts,
    /// Created.
    pub created_at: i64,
    /// Changed last.
    pub updated_at: i64,
}

impl Template {
    /// The template compiled, to render.
    pub fn compiled(&self) -> Result<Compiled, TemplateError> {
        Compiled::new(&self.parts)
    }
}

/// Checks a name and the parts (sizes, and that they compile).
fn check(name: Option<&str>, parts: Option<&Parts>) -> Result<(), TemplateFailure> {
    if let Some(name) = name
        && (name.trim().is_empty() || name.chars().count() > MAX_NAME)
    {
        return Err(TemplateFailure::InvalidName);
    }
    if let Some(p) = parts {
        let sizes = [Some(&p.subject), p.html.as_ref(), p.text.as_ref()];
        if sizes.into_iter().flatten().any(|s| s.len() > MAX_PART) {
            return Err(TemplateFailure::TooLarge);
        }
        Compiled::new(p)?;
    }
    Ok(())
}

async fn seal(
    services: &Services,
    tenant_id: &str,
    id: &str,
    version: i64,
    parts: &Parts,
) -> Result<Vec<u8>, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let json = serde_json::to_vec(parts).expect("parts serialise");
    Ok(keys.seal(SealContext::Template(id, version), &json))
}

async fn opened(services: &Services, r: TemplateRecord) -> Result<Template, TemplateFailure> {
    let keys = services.tenant_keys(&r.tenant_id).await?;
    let json = keys
        .open(SealContext::Template(&r.id, r.version), &r.content_enc)
        .map_err(ServiceError::from)?;
    let parts = serde_json::from_slice(&json)
        .map_err(|_| ServiceError::Vault(VaultError::Authentication))?;
    Ok(Template {
        id: r.id,
        name: r.name,
        version: r.version,
        current: r.current,
        parts,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// Saves a new template at version 1.
pub async fn create(
    services: &Services,
    tenant_id: &str,
    name: &str,
    parts: Parts,
) -> Result<Template, TemplateFailure> {
    check(Some(name), Some(&parts))?;
    let now = now_ms();
    let id = new_id("tpl");
    let record = TemplateRecord {
        id: id.clone(),
        tenant_id: tenant_id.to_string(),
        name: name.to_string(),
        version: 1,
        current: 1,
        content_enc: seal(services, tenant_id, &id, 1, &parts).await?,
        created_at: now,
        updated_at: now,
    };
    services.store.create_template(record).await?;
    Ok(Template {
        id,
        name: name.to_string(),
        version: 1,
        current: 1,
        parts,
        created_at: now,
        updated_at: now,
    })
}

/// The tenant's templates at their current versions, by name.
pub async fn list(services: &Services, tenant_id: &str) -> Result<Vec<Template>, TemplateFailure> {
    let mut out = Vec::new();
    for r in services.store.templates(tenant_id).await? {
        out.push(opened(services, r).await?);
    }
    Ok(out)
}

/// The tenant's template named by id or name, at `version` (`None`: the current one).
pub async fn get(
    services: &Services,
    tenant_id: &str,
    key: &str,
    version: Option<i64>,
) -> Result<Template, TemplateFailure> {
    let record = services
        .store
        .find_template(tenant_id, key, version)
        .await?;
    opened(services, record.ok_or(TemplateFailure::NotFound)?).await
}

/// Parts to change: those given replace the current ones, the others are kept.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// A new subject.
    pub subject: Option<String>,
    /// A new HTML part.
    pub html: Option<String>,
    /// A new text part.
    pub text: Option<String>,
}

/// Renames a template (`None` keeps its name) and changes its parts. Parts that then
/// differ from the current ones make a new version.
pub async fn update(
    services: &Services,
    tenant_id: &str,
    key: &str,
    name: Option<&str>,
    change: Change,
) -> Result<Template, TemplateFailure> {
    let t = get(services, tenant_id, key, None).await?;
    let parts =
        (change.subject.is_some() || change.html.is_some() || change.text.is_some()).then(|| {
            Parts {
                subject: change.subject.unwrap_or_else(|| t.parts.subject.clone()),
                html: change.html.or_else(|| t.parts.html.clone()),
                text: change.text.or_else(|| t.parts.text.clone()),
            }
        });
    check(name, parts.as_ref())?;
    let now = now_ms();
    if let Some(name) = name.filter(|n| *n != t.name)
        && !services
            .store
            .rename_template(tenant_id, &t.id, name, now)
            .await?
    {
        return Err(TemplateFailure::NotFound);
    }
    if let Some(parts) = parts.filter(|p| *p != t.parts) {
        let sealed = seal(services, tenant_id, &t.id, t.current + 1, &parts).await?;
        let store = &services.store;
        if !store
            .add_template_version(tenant_id, &t.id, t.current, sealed, now)
            .await?
        {
            return Err(TemplateFailure::Changed);
        }
    }
    get(services, tenant_id, &t.id, None).await
}

/// Deletes a template and its versions.
pub async fn delete(
    services: &Services,
    tenant_id: &str,
    key: &str,
) -> Result<(), TemplateFailure> {
    let t = get(services, tenant_id, key, None).await?;
    if !services.store.delete_template(tenant_id, &t.id).await? {
        return Err(TemplateFailure::NotFound);
    }
    Ok(())
}
