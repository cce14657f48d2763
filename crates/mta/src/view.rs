//! Opening sealed rows into JSON for the API and webhooks. A value that fails to open
//! (it cannot, short of tampering) is shown as null rather than failing the whole
//! document.

use postwerk_store::model::EventRecord;
use postwerk_store::vault::TenantKeys;
use serde_json::{Value, json};

use crate::accept::MessageMeta;

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

/// The sealing context of a stream event's details.
pub fn stream_event_context(stream: &str) -> String {
    format!("stream:{stream}")
}

/// One event with its opened details flattened in. A stream event (`stream_paused`,
/// `stream_resumed`) names its stream instead of a message and recipient.
pub fn event(e: &EventRecord, keys: &TenantKeys) -> Value {
    let mut v = json!({
        "id": e.seq.to_string(),
        "type": e.event_type,
        "at": time(e.at),
    });
    let context = match &e.stream {
        Some(stream) => {
            v["stream"] = json!(stream);
            stream_event_context(stream)
        }
        None => {
            v["message_id"] = json!(e.message_id);
            v["recipient_id"] = json!(e.recipient_id);
            format!("event:{}", e.recipient_id)
        }
    };
    let detail = e
        .detail_enc
        .as_ref()
        .and_then(|d| keys.open(&context, d).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    if let (Some(Value::Object(d)), Some(obj)) = (detail, v.as_object_mut()) {
        for (k, val) in d {
            obj.entry(k).or_insert(val);
        }
    }
    v
}
