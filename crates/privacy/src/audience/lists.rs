//! Contact lists and their members. A list is named by its id (`lst_…`) or its name,
//! unique in the tenant; its members are blind indexes, so a list says nothing about
//! who is on it to anyone without the tenant's keys.

use postwerk_core::address::Address;
use postwerk_core::id::new_id;
use postwerk_store::StoreError;
use postwerk_store::model::{ListRecord, ListSummary};
use postwerk_store::prelude::*;

use postwerk_services::context::{ServiceError, Services, now_ms};

/// The longest list name, in characters.
pub const MAX_NAME: usize = 100;

/// Why a list could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The name is empty or longer than [`MAX_NAME`].
    #[error("a list name is 1 to {MAX_NAME} characters")]
    InvalidName,
    /// The tenant has a list of that name.
    #[error("a list of that name exists")]
    Taken,
    /// No such list.
    #[error("no such list")]
    NotFound,
    /// The store or the vault failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for ListError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => ListError::Taken,
            other => ListError::Service(other.into()),
        }
    }
}

/// Checks a list name (taken as written, as the API validates it: a blank name is a
/// name).
fn valid_name(name: &str) -> Result<&str, ListError> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ListError::InvalidName);
    }
    Ok(name)
}

/// Makes a list.
pub async fn create(
    services: &Services,
    tenant_id: &str,
    name: &str,
    description: Option<String>,
) -> Result<ListSummary, ListError> {
    let now = now_ms();
    let list = ListRecord {
        id: new_id("lst"),
        tenant_id: tenant_id.to_string(),
        name: valid_name(name)?.to_string(),
        description,
        created_at: now,
        updated_at: now,
    };
    services.store.create_list(list.clone()).await?;
    Ok(ListSummary { list, members: 0 })
}

/// The tenant's list named by id or name.
pub async fn find(
    services: &Services,
    tenant_id: &str,
    key: &str,
) -> Result<ListSummary, ListError> {
    services
        .store
        .find_list(tenant_id, key)
        .await?
        .ok_or(ListError::NotFound)
}

/// The lists named by id or name, making a list of each name that is none yet (in
/// the order given, repeats dropped).
pub async fn ensure(
    services: &Services,
    tenant_id: &str,
    keys: &[String],
) -> Result<Vec<ListRecord>, ListError> {
    let mut lists: Vec<ListRecord> = Vec::with_capacity(keys.len());
    for key in keys {
        let list = match find(services, tenant_id, key).await {
            Ok(found) => found.list,
            Err(ListError::NotFound) => match create(services, tenant_id, key, None).await {
                Ok(made) => made.list,
                // Made by a concurrent caller meanwhile.
                Err(ListError::Taken) => find(services, tenant_id, key).await?.list,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if !lists.iter().any(|l| l.id == list.id) {
            lists.push(list);
        }
    }
    Ok(lists)
}

/// Renames or re-describes a list (`None` keeps what it has).
pub async fn update(
    services: &Services,
    tenant_id: &str,
    key: &str,
    name: Option<&str>,
    description: Option<Option<String>>,
) -> Result<ListSummary, ListError> {
    let ListSummary { mut list, members } = find(services, tenant_id, key).await?;
    if let Some(name) = name {
        list.name = valid_name(name)?.to_string();
    }
    if let Some(description) = description {
        list.description = description;
    }
    list.updated_at = now_ms();
    if !services.store.update_list(list.clone()).await? {
        return Err(ListError::NotFound);
    }
    Ok(ListSummary { list, members })
}

/// Deletes a list and its memberships; the contacts stay.
pub async fn delete(services: &Services, tenant_id: &str, key: &str) -> Result<(), ListError> {
    let list = find(services, tenant_id, key).await?.list;
    if !services.store.delete_list(tenant_id, &list.id).await? {
        return Err(ListError::NotFound);
    }
    Ok(())
}

/// What a bulk membership change did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberChange {
    /// People who joined or left.
    pub changed: u64,
    /// Addresses that are not the tenant's contacts (joining), or were not members
    /// (leaving), or repeats.
    pub unchanged: u64,
}

/// A bulk membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// The contacts with these addresses join the list (addresses that are not
    /// contacts are left out: a list holds contacts, made by `PUT /v1/contacts` or an
    /// import).
    Join,
    /// The people with these addresses leave the list.
    Leave,
}

/// Makes the people with these addresses join or leave a list.
pub async fn change_members(
    services: &Services,
    tenant_id: &str,
    list_id: &str,
    addresses: &[Address],
    change: Membership,
) -> Result<MemberChange, ListError> {
    let hashes = blind_indexes(services, tenant_id, addresses).await?;
    let store = &services.store;
    let changed = match change {
        Membership::Join => {
            store
                .add_members(tenant_id, list_id, hashes, now_ms())
                .await?
        }
        Membership::Leave => store.remove_members(tenant_id, list_id, hashes).await?,
    };
    Ok(MemberChange {
        changed,
        unchanged: addresses.len() as u64 - changed,
    })
}

/// The distinct blind indexes of `addresses` in the tenant.
async fn blind_indexes(
    services: &Services,
    tenant_id: &str,
    addresses: &[Address],
) -> Result<Vec<Vec<u8>>, ServiceError> {
    let keys = services.tenant_keys(tenant_id).await?;
    let mut hashes: Vec<Vec<u8>> = addresses
        .iter()
        .map(|a| keys.blind_index(a).into_bytes())
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    Ok(hashes)
}
