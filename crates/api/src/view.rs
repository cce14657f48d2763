//! Opening sealed rows into API JSON. A value that fails to open (it cannot, short
//! of tampering) is shown as null rather than failing the whole response.

use postwerk_mta::accept::MessageMeta;
use postwerk_store::model::EventRecord;
use postwerk_store::vault::TenantKeys;
use serde_json::{Value, json};

use crate::error::ApiError;

/// RFC 3339 time from Unix milliseconds.
pub fn time(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A recipient's address.
pub fn address(recipient_id: &str, sealed: &[u8], keys: &TenantKeys) -> Option<String> {
    keys.open(&format!("rcpt:{recipient_id}"), sealed)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// A message's summary.
pub fn meta(message_id: &str, sealed: &[u8], keys: &TenantKeys) -> MessageMeta {
    keys.open(&format!("meta:{message_id}"), sealed)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// An RFC 3339 time from a request field as Unix milliseconds, or `422 invalid_time`.
pub fn rfc3339(text: &str, field: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::invalid("invalid_time", field, "use RFC 3339"))
}

/// One event with its opened details flattened in.
pub fn event(e: &EventRecord, keys: &TenantKeys) -> Value {
    let mut v = json!({
        "id": e.seq.to_string(),
        "type": e.event_type,
        "at": time(e.at),
        "message_id": e.message_id,
        "recipient_id": e.recipient_id,
    });
    let detail = e
        .detail_enc
        .as_ref()
        .and_then(|d| keys.open(&format!("event:{}", e.recipient_id), d).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    if let (Some(Value::Object(d)), Some(obj)) = (detail, v.as_object_mut()) {
        for (k, val) in d {
            obj.entry(k).or_insert(val);
        }
    }
    v
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

/// The cursor of the next page: the last sequence number when the page is full.
pub fn next_cursor(
    seqs: impl DoubleEndedIterator<Item = i64> + ExactSizeIterator,
    limit: usize,
) -> Option<String> {
    let full = seqs.len() == limit;
    seqs.last().filter(|_| full).map(|s| s.to_string())
}
