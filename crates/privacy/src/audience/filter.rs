//! Which contacts a search, a count or a segment names ([`AudienceFilter`]), and
//! segments: filters saved under a name for campaigns to target.
//!
//! A filter as people write it names lists by name or id and attributes by value;
//! [`AudienceFilter::resolve`] turns it into the store's [`ContactFilter`] (list ids,
//! keyed attribute tags). A segment is stored as written and resolved each time it
//! is used, so a
//! renamed list or a new member counts at once. Its filter is sealed under the tenant
//! key: attribute values can be telling.

use std::collections::BTreeMap;

use postwerk_core::id::new_id;
use postwerk_core::model::ConsentStatus;
use postwerk_store::StoreError;
use postwerk_store::model::{ConsentCondition, ContactFilter, SegmentRecord};
use postwerk_store::prelude::*;
use postwerk_store::vault::SealContext;
use serde::{Deserialize, Serialize};

use super::lists::{self, ListError};
use postwerk_services::context::{ServiceError, Services, now_ms};

/// A day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// Which contacts to name; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceFilter {
    /// On each of these lists (names or ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<String>,
    /// Attribute equality (case and surrounding blanks ignored).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Consent state per purpose: `active`, `pending`, `withdrawn` or `none`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consent: BTreeMap<String, String>,
    /// Created at or after (Unix ms).
    #[serde(
        default,
        deserialize_with = "postwerk_core::json::whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_after: Option<i64>,
    /// Created before (Unix ms).
    #[serde(
        default,
        deserialize_with = "postwerk_core::json::whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_before: Option<i64>,
    /// Changed at or after (Unix ms).
    #[serde(
        default,
        deserialize_with = "postwerk_core::json::whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_after: Option<i64>,
    /// Changed before (Unix ms).
    #[serde(
        default,
        deserialize_with = "postwerk_core::json::whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_before: Option<i64>,
    /// Opened or clicked a message within this many days.
    #[serde(
        default,
        deserialize_with = "postwerk_core::json::whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub engaged_within_days: Option<u32>,
    /// Clicked a message within this many days.
    #[serde(
        default,
        deserialize_with = "postwerk_core::json::whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub clicked_within_days: Option<u32>,
    /// No bounce was ever recorded for them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_bounced: bool,
}

/// Why a filter or segment is not usable.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// A consent state other than `active`, `pending`, `withdrawn` or `none`.
    #[error("a consent state is active, pending, withdrawn or none")]
    ConsentState,
    /// A list the filter names does not exist.
    #[error("no such list")]
    UnknownList,
    /// A segment name is empty or over 100 characters.
    #[error("a segment name is 1 to 100 characters")]
    InvalidName,
    /// The tenant has a segment of that name.
    #[error("a segment of that name exists")]
    Taken,
    /// No such segment.
    #[error("no such segment")]
    NotFound,
    /// The store or the vault failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for FilterError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => FilterError::Taken,
            other => FilterError::Service(other.into()),
        }
    }
}

impl From<ListError> for FilterError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Service(e) => FilterError::Service(e),
            _ => FilterError::UnknownList,
        }
    }
}

/// A consent state as a filter writes it.
fn consent_state(text: &str) -> Result<Option<ConsentStatus>, FilterError> {
    match text {
        "none" => Ok(None),
        other => other
            .parse()
            .map(Some)
            .map_err(|_| FilterError::ConsentState),
    }
}

impl AudienceFilter {
    /// The store's filter for this one in a tenant, now: lists by id, attribute
    /// values as keyed tags, day counts as times.
    pub async fn resolve(
        &self,
        services: &Services,
        tenant_id: &str,
    ) -> Result<ContactFilter, FilterError> {
        let keys = services.tenant_keys(tenant_id).await?;
        let mut filter = ContactFilter {
            tenant_id: tenant_id.to_string(),
            created_after: self.created_after,
            created_before: self.created_before,
            updated_after: self.updated_after,
            updated_before: self.updated_before,
            never_bounced: self.never_bounced,
            ..ContactFilter::default()
        };
        for key in &self.lists {
            filter
                .lists
                .push(lists::find(services, tenant_id, key).await?.list.id);
        }
        filter.attr_tags = self
            .attributes
            .iter()
            .map(|(name, value)| keys.attribute_tag(name, value))
            .collect();
        for (purpose, state) in &self.consent {
            filter.consent.push(ConsentCondition {
                purpose: purpose.clone(),
                status: consent_state(state)?,
            });
        }
        let since = |days: u32| now_ms() - i64::from(days) * DAY_MS;
        filter.engaged_since = self.engaged_within_days.map(since);
        filter.clicked_since = self.clicked_within_days.map(since);
        Ok(filter)
    }

    /// Checks what can be checked without the store (the consent states).
    pub fn check(&self) -> Result<(), FilterError> {
        self.consent
            .values()
            .try_for_each(|s| consent_state(s).map(drop))
    }
}

/// A segment, opened.
#[derive(Debug, Clone)]
pub struct Segment {
    /// `seg_…`.
    pub id: String,
    /// Unique in the tenant.
    pub name: String,
    /// The filter.
    pub filter: AudienceFilter,
    /// Created.
    pub created_at: i64,
    /// Changed last.
    pub updated_at: i64,
}

/// The sealing context of a tenant's segment filters.
fn segment_context(id: &str) -> SealContext<'_> {
    SealContext::Segment(id)
}

/// A stored segment, opened.
async fn opened(services: &Services, r: SegmentRecord) -> Result<Segment, FilterError> {
    let keys = services.tenant_keys(&r.tenant_id).await?;
    let json = keys
        .open(segment_context(&r.id), &r.filter_enc)
        .map_err(ServiceError::from)?;
    let filter = serde_json::from_slice(&json)
        .map_err(|_| ServiceError::Vault(postwerk_store::vault::VaultError::Authentication))?;
    Ok(Segment {
        id: r.id,
        name: r.name,
        filter,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// The stored form of a segment.
async fn sealed(
    services: &Services,
    tenant_id: &str,
    segment: &Segment,
) -> Result<SegmentRecord, FilterError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let json = serde_json::to_vec(&segment.filter).expect("filter serialises");
    Ok(SegmentRecord {
        id: segment.id.clone(),
        tenant_id: tenant_id.to_string(),
        name: segment.name.clone(),
        filter_enc: keys.seal(segment_context(&segment.id), &json),
        created_at: segment.created_at,
        updated_at: segment.updated_at,
    })
}

/// Checks a segment name.
fn valid_name(name: &str) -> Result<String, FilterError> {
    if name.is_empty() || name.chars().count() > 100 {
        return Err(FilterError::InvalidName);
    }
    Ok(name.to_string())
}

/// Saves a segment (its lists must exist).
pub async fn create_segment(
    services: &Services,
    tenant_id: &str,
    name: &str,
    filter: AudienceFilter,
) -> Result<Segment, FilterError> {
    filter.resolve(services, tenant_id).await?;
    let now = now_ms();
    let segment = Segment {
        id: new_id("seg"),
        name: valid_name(name)?,
        filter,
        created_at: now,
        updated_at: now,
    };
    let record = sealed(services, tenant_id, &segment).await?;
    services.store.create_segment(record).await?;
    Ok(segment)
}

/// The tenant's segments, by name.
pub async fn segments(services: &Services, tenant_id: &str) -> Result<Vec<Segment>, FilterError> {
    let mut out = Vec::new();
    for r in services.store.segments(tenant_id).await? {
        out.push(opened(services, r).await?);
    }
    Ok(out)
}

/// The tenant's segment named by id or name.
pub async fn segment(
    services: &Services,
    tenant_id: &str,
    key: &str,
) -> Result<Segment, FilterError> {
    let record = services.store.find_segment(tenant_id, key).await?;
    opened(services, record.ok_or(FilterError::NotFound)?).await
}

/// Renames a segment or replaces its filter (`None` keeps what it has).
pub async fn update_segment(
    services: &Services,
    tenant_id: &str,
    key: &str,
    name: Option<&str>,
    filter: Option<AudienceFilter>,
) -> Result<Segment, FilterError> {
    let mut segment = segment(services, tenant_id, key).await?;
    if let Some(name) = name {
        segment.name = valid_name(name)?;
    }
    if let Some(filter) = filter {
        filter.resolve(services, tenant_id).await?;
        segment.filter = filter;
    }
    segment.updated_at = now_ms();
    let record = sealed(services, tenant_id, &segment).await?;
    if !services.store.update_segment(record).await? {
        return Err(FilterError::NotFound);
    }
    Ok(segment)
}

/// Deletes a segment.
pub async fn delete_segment(
    services: &Services,
    tenant_id: &str,
    key: &str,
) -> Result<(), FilterError> {
    let segment = segment(services, tenant_id, key).await?;
    if !services
        .store
        .delete_segment(tenant_id, &segment.id)
        .await?
    {
        return Err(FilterError::NotFound);
    }
    Ok(())
}
