//! A tenant's streams as every part of Postwerk sees them: the built-in
//! `transactional` and `broadcast` plus the tenant's own, each with its settings and
//! pause state; and the operations that change them (each audited by the caller).
//!
//! [`StreamDirectory`] keeps every stored stream in memory: the delivery engine asks
//! it once per job, without waiting. It is reloaded after every change made here
//! and, by the engine, every few seconds (changes made on other nodes).

use postwerk_store::vault::SealContext;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use postwerk_core::model::{DEFAULT_STREAMS, is_stream_name};
use postwerk_core::stream::StreamSettings;
use postwerk_store::StoreError;
use postwerk_store::model::{StreamPause, StreamRecord};
use postwerk_store::prelude::*;
use serde_json::Value;

use crate::context::{ServiceError, Services, now_ms};

/// A stream as delivery and the API see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// Name.
    pub name: String,
    /// Settings.
    pub settings: StreamSettings,
    /// Set while paused.
    pub paused_at: Option<i64>,
    /// Why it was paused.
    pub pause_reason: Option<String>,
    /// When it was last resumed.
    pub resumed_at: Option<i64>,
    /// `transactional` or `broadcast` (every tenant has them; they cannot be added).
    pub builtin: bool,
}

impl Stream {
    /// A stream with the settings every stream of its name starts with.
    pub fn initial(name: &str) -> Stream {
        Stream {
            name: name.to_string(),
            settings: StreamSettings::initial(name),
            paused_at: None,
            pause_reason: None,
            resumed_at: None,
            builtin: true,
        }
    }

    fn from_record(r: &StreamRecord) -> Stream {
        let settings = serde_json::from_str(&r.settings).unwrap_or_else(|e| {
            tracing::error!(stream = %r.name, error = %e, "stored stream settings do not parse; using defaults");
            StreamSettings::initial(&r.name)
        });
        Stream {
            name: r.name.clone(),
            settings,
            paused_at: r.paused_at,
            pause_reason: r.pause_reason.clone(),
            resumed_at: r.resumed_at,
            builtin: DEFAULT_STREAMS.contains(&r.name.as_str()),
        }
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }
}

/// Every stored stream, by tenant id, then name (looked up by `&str`: the engine
/// asks once per job).
type Rows = HashMap<String, HashMap<String, Arc<Stream>>>;

/// The in-memory copy of the `streams` table.
pub struct StreamDirectory {
    rows: RwLock<Arc<Rows>>,
    /// The built-in streams as every tenant without a row of its own has them.
    builtin: Vec<Arc<Stream>>,
}

impl Default for StreamDirectory {
    fn default() -> Self {
        StreamDirectory {
            rows: RwLock::default(),
            builtin: DEFAULT_STREAMS
                .iter()
                .map(|n| Arc::new(Stream::initial(n)))
                .collect(),
        }
    }
}

impl StreamDirectory {
    /// Reloads every stream from the store.
    pub async fn refresh(&self, store: &impl Store) -> Result<(), StoreError> {
        let mut rows = Rows::new();
        for r in store.list_streams(None).await? {
            rows.entry(r.tenant_id.clone())
                .or_default()
                .insert(r.name.clone(), Arc::new(Stream::from_record(&r)));
        }
        if let Ok(mut w) = self.rows.write() {
            *w = Arc::new(rows);
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<Rows> {
        self.rows.read().map(|r| r.clone()).unwrap_or_default()
    }

    /// A tenant's stream as last loaded; `None` for an unknown custom stream.
    pub fn get(&self, tenant_id: &str, name: &str) -> Option<Arc<Stream>> {
        let own = self
            .snapshot()
            .get(tenant_id)
            .and_then(|t| t.get(name).cloned());
        own.or_else(|| self.builtin.iter().find(|s| s.name == name).cloned())
    }

    /// A tenant's stream, reloading once if it is not known here yet (it may have
    /// been added on another node a moment ago).
    pub async fn find(
        &self,
        store: &impl Store,
        tenant_id: &str,
        name: &str,
    ) -> Result<Option<Arc<Stream>>, StoreError> {
        if let Some(s) = self.get(tenant_id, name) {
            return Ok(Some(s));
        }
        if !is_stream_name(name) {
            return Ok(None);
        }
        self.refresh(store).await?;
        Ok(self.get(tenant_id, name))
    }

    /// The connection share reserved per priority lane: the largest `reserved_share`
    /// of any stream of that priority (the built-in streams' defaults included).
    pub fn reserved_shares(&self) -> [u8; postwerk_core::stream::LANES] {
        let mut shares = [0u8; postwerk_core::stream::LANES];
        let rows = self.snapshot();
        for s in rows.values().flat_map(HashMap::values).chain(&self.builtin) {
            let lane = usize::from(s.settings.priority).min(postwerk_core::stream::LANES - 1);
            shares[lane] = shares[lane].max(s.settings.reserved_share);
        }
        shares
    }

    /// A tenant's streams: the built-in ones first, then the tenant's own by name.
    pub fn list(&self, tenant_id: &str) -> Vec<Arc<Stream>> {
        let rows = self.snapshot();
        let mut own: Vec<Arc<Stream>> = rows
            .get(tenant_id)
            .into_iter()
            .flat_map(HashMap::values)
            .filter(|s| !s.builtin)
            .cloned()
            .collect();
        own.sort_by(|a, b| a.name.cmp(&b.name));
        DEFAULT_STREAMS
            .iter()
            .filter_map(|n| self.get(tenant_id, n))
            .chain(own)
            .collect()
    }
}

/// Why a stream operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The tenant already has a stream of that name (the built-in ones included).
    #[error("the stream already exists")]
    Exists,
    /// No such stream.
    #[error("unknown stream")]
    Unknown,
    /// A setting is out of range (field, reason).
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    /// A setting the caller may not give (field, code, reason): a pool that is not
    /// open to the tenant, or one only the operator may set.
    #[error("{0}: {2}")]
    Forbidden(&'static str, &'static str, String),
    /// Store or vault failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for StreamError {
    fn from(e: StoreError) -> Self {
        StreamError::Service(e.into())
    }
}

/// The largest `reserved_share` a tenant may give a stream (percent); more, like
/// priority 0, holds connection slots back from every tenant's mail and is the
/// operator's to set.
pub const TENANT_MAX_RESERVED_SHARE: u8 = 10;

/// Who changes a stream's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedBy {
    /// The installation's operator (the CLI): any setting.
    Operator,
    /// The tenant (the API): settings that affect its own mail only.
    Tenant,
}

/// Checks `settings` for stream `name` of `tenant_id`, replacing `current`
/// (a new stream's: the defaults).
async fn check(
    services: &Services,
    tenant_id: &str,
    name: &str,
    current: &StreamSettings,
    settings: &StreamSettings,
    by: ChangedBy,
) -> Result<(), StreamError> {
    if !is_stream_name(name) {
        return Err(StreamError::Invalid(
            "name",
            "1–32 of a-z, 0-9, _ and -, starting with a letter or digit".into(),
        ));
    }
    settings
        .validate()
        .map_err(|(field, reason)| StreamError::Invalid(field, reason))?;
    if let Some(pool) = &settings.pool {
        if !services.egress.has_pool(pool) {
            return Err(StreamError::Invalid(
                "pool",
                format!("no pool named `{pool}` in [[egress.pools]]"),
            ));
        }
        if !services.egress.may_use(services, tenant_id, pool).await {
            return Err(StreamError::Forbidden(
                "pool",
                "pool_not_allowed",
                format!(
                    "pool `{pool}` is dedicated to another tenant (a tenant may use its own pool, shared pools and pools dedicated to no tenant)"
                ),
            ));
        }
    }
    if by == ChangedBy::Operator {
        return Ok(());
    }
    let operator_only =
        |field, reason: String| Err(StreamError::Forbidden(field, "operator_only", reason));
    if settings.priority == 0 && current.priority != 0 {
        return operator_only(
            "priority",
            "priority 0 is set by the operator (postwerk streams update --priority 0); a tenant may use 1–9".into(),
        );
    }
    if settings.reserved_share > TENANT_MAX_RESERVED_SHARE
        && settings.reserved_share > current.reserved_share
    {
        return operator_only(
            "reserved_share",
            format!(
                "a reserved_share above {TENANT_MAX_RESERVED_SHARE} is set by the operator (postwerk streams update --reserved-share)"
            ),
        );
    }
    Ok(())
}

/// Adds a custom stream (`by` the operator or the tenant, see [`ChangedBy`]).
pub async fn create(
    services: &Services,
    tenant_id: &str,
    name: &str,
    settings: StreamSettings,
    by: ChangedBy,
) -> Result<Arc<Stream>, StreamError> {
    let defaults = StreamSettings::default();
    check(services, tenant_id, name, &defaults, &settings, by).await?;
    if DEFAULT_STREAMS.contains(&name) {
        return Err(StreamError::Exists);
    }
    let now = now_ms();
    let record = StreamRecord {
        tenant_id: tenant_id.to_string(),
        name: name.to_string(),
        settings: serde_json::to_string(&settings).unwrap_or_default(),
        paused_at: None,
        pause_reason: None,
        resumed_at: None,
        created_at: now,
        updated_at: now,
    };
    match services.store.insert_stream(record).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(StreamError::Exists),
        Err(e) => return Err(e.into()),
    }
    reloaded(services, tenant_id, name).await
}

/// Replaces a stream's settings (`by` the operator or the tenant, see [`ChangedBy`]).
pub async fn update(
    services: &Services,
    tenant_id: &str,
    name: &str,
    settings: StreamSettings,
    by: ChangedBy,
) -> Result<Arc<Stream>, StreamError> {
    let current = known(services, tenant_id, name).await?;
    check(services, tenant_id, name, &current.settings, &settings, by).await?;
    let json = serde_json::to_string(&settings).unwrap_or_default();
    services
        .store
        .put_stream_settings(tenant_id, name, json, now_ms())
        .await?;
    reloaded(services, tenant_id, name).await
}

/// Pauses (`reason` given) or resumes a stream; `detail` goes into the stream event.
/// Returns the stream and whether its state changed.
pub async fn set_paused(
    services: &Services,
    tenant_id: &str,
    name: &str,
    reason: Option<String>,
    detail: Value,
) -> Result<(Arc<Stream>, bool), StreamError> {
    let stream = known(services, tenant_id, name).await?;
    let keys = services.tenant_keys(tenant_id).await?;
    let detail = serde_json::to_vec(&detail).unwrap_or_default();
    let changed = services
        .store
        .pause_stream(StreamPause {
            tenant_id: tenant_id.to_string(),
            stream: name.to_string(),
            reason,
            initial_settings: serde_json::to_string(&stream.settings).unwrap_or_default(),
            at: now_ms(),
            detail_enc: Some(keys.seal(SealContext::StreamEvent(name), &detail)),
        })
        .await?;
    Ok((reloaded(services, tenant_id, name).await?, changed))
}

async fn known(
    services: &Services,
    tenant_id: &str,
    name: &str,
) -> Result<Arc<Stream>, StreamError> {
    services
        .streams
        .find(&services.store, tenant_id, name)
        .await?
        .ok_or(StreamError::Unknown)
}

async fn reloaded(
    services: &Services,
    tenant_id: &str,
    name: &str,
) -> Result<Arc<Stream>, StreamError> {
    services.streams.refresh(&services.store).await?;
    services
        .streams
        .get(tenant_id, name)
        .ok_or(StreamError::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_streams_exist_for_every_tenant_and_custom_ones_only_for_their_own() {
        let dir = StreamDirectory::default();
        let custom = StreamRecord {
            tenant_id: "ten_a".into(),
            name: "newsletters".into(),
            settings: r#"{"priority":3}"#.into(),
            paused_at: Some(5),
            pause_reason: Some("x".into()),
            resumed_at: None,
            created_at: 1,
            updated_at: 1,
        };
        let own = [(
            "newsletters".to_string(),
            Arc::new(Stream::from_record(&custom)),
        )];
        let rows: Rows = [("ten_a".to_string(), own.into())].into();
        *dir.rows.write().unwrap() = Arc::new(rows);
        let tx = dir.get("ten_b", "transactional").expect("built in");
        assert_eq!((tx.settings.priority, tx.builtin), (0, true));
        assert!(dir.get("ten_b", "newsletters").is_none());
        let n = dir.get("ten_a", "newsletters").expect("own stream");
        assert_eq!(
            (n.settings.priority, n.is_paused(), n.builtin),
            (3, true, false)
        );
        let names: Vec<String> = dir.list("ten_a").iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["transactional", "broadcast", "newsletters"]);
    }
}
