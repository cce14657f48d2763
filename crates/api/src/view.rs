//! API views: sealed rows opened into JSON (shared with webhooks, see
//! [`postwerk_mta::view`]) with the keys that open them, request times and pagination.

pub use postwerk_mta::view::{address, event, meta, time};

use postwerk_services::subjects::SubjectKeys;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// The query of a register listing (`GET /v1/privacy/requests`, `/incidents`):
/// `overdue=true` keeps the entries past a deadline; `cursor` and `limit` page.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterQuery {
    #[serde(default)]
    pub(crate) overdue: Option<bool>,
    #[serde(default)]
    pub(crate) cursor: Option<String>,
    #[serde(default)]
    pub(crate) limit: Option<usize>,
}

/// An RFC 3339 time from a request field as Unix milliseconds, or `422 invalid_time`.
pub fn rfc3339(text: &str, field: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::invalid("invalid_time", field, "use RFC 3339"))
}

/// A duration from a request field (`90s`, `24h`, `30d`) in milliseconds, or `422
/// invalid_duration`.
pub fn duration_ms(text: &str, field: &str) -> Result<i64, ApiError> {
    postwerk_core::config::parse_duration(text)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .ok_or_else(|| ApiError::invalid("invalid_duration", field, "use e.g. 90s, 24h, 30d"))
}

/// A time query parameter (RFC 3339 or Unix seconds) as Unix milliseconds, or `422
/// invalid_time`.
pub fn time_param(s: &str, field: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = s.parse::<i64>() {
        return secs
            .checked_mul(1000)
            .ok_or_else(|| ApiError::invalid("invalid_time", field, "time out of range"));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::invalid("invalid_time", field, "use RFC 3339 or Unix seconds"))
}

/// The blind index of a `recipient` query parameter, or `422 invalid_address`.
pub fn recipient_hash(
    keys: &postwerk_store::vault::TenantKeys,
    recipient: Option<&str>,
) -> Result<Option<Vec<u8>>, ApiError> {
    recipient
        .map(|r| {
            postwerk_core::address::Address::parse(r)
                .map(|a| keys.blind_index(&a).into_bytes())
                .map_err(|e| ApiError::invalid("invalid_address", "recipient", e.to_string()))
        })
        .transpose()
}

/// Parses the `cursor` and `limit` of a paginated list (limit 1–1000, default 100).
pub fn page(cursor: Option<&str>, limit: Option<usize>) -> Result<(Option<i64>, usize), ApiError> {
    let after = cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::invalid("invalid_cursor", "cursor", "invalid cursor"))
        })
        .transpose()?;
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit",
            "limit must be 1–1000",
        ));
    }
    Ok((after, limit))
}

/// The query of a listing paged by id, newest first (`GET /v1/imports`,
/// `/v1/broadcasts`): `cursor` (an id: those before it) and `limit` (1–200, default 50).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdPage {
    #[serde(default)]
    pub(crate) cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

impl IdPage {
    /// The page size asked for, or `422 invalid_limit`.
    pub fn limit(&self) -> Result<usize, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::invalid(
                "invalid_limit",
                "limit",
                "limit must be 1–200",
            ));
        }
        Ok(limit)
    }

    /// The cursor of the page after `ids` (a page of `limit`): its last id when full.
    pub fn next<'a>(
        ids: impl DoubleEndedIterator<Item = &'a str> + ExactSizeIterator,
        limit: usize,
    ) -> Option<String> {
        let full = ids.len() == limit;
        ids.last().filter(|_| full).map(str::to_string)
    }
}

/// The cursor of the next page: the last sequence number when the page is full.
pub fn next_cursor(
    seqs: impl DoubleEndedIterator<Item = i64> + ExactSizeIterator,
    limit: usize,
) -> Option<String> {
    let full = seqs.len() == limit;
    seqs.last().filter(|_| full).map(|s| s.to_string())
}

/// The tenant's keys with those of the people `hashes`, made for those who have none
/// yet: for writes that store a person's data.
pub async fn people_creating<'a>(
    state: &AppState,
    caller: &Caller,
    hashes: impl IntoIterator<Item = &'a [u8]>,
) -> Result<SubjectKeys, ApiError> {
    state
        .services
        .subject_keys_creating(&caller.tenant_id, hashes)
        .await
        .map_err(ApiError::from)
}

/// The keys that open the data of the people `hashes` for `caller` to read, after the
/// read is written to the audit chain as `action` naming those people by blind index
/// (see [`postwerk_services::audit::subjects`]); `503` and nothing shown if it cannot be.
pub async fn read_people<'a>(
    state: &AppState,
    caller: &Caller,
    action: &str,
    hashes: impl IntoIterator<Item = &'a [u8]>,
) -> Result<SubjectKeys, ApiError> {
    let hashes: Vec<&[u8]> = hashes.into_iter().collect();
    if let Some(target) = postwerk_services::audit::subjects(hashes.iter().copied()) {
        caller.audit(state, action, target).await?;
    }
    state
        .services
        .subject_keys(&caller.tenant_id, hashes)
        .await
        .map_err(ApiError::from)
}
