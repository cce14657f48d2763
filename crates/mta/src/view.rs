//! Opening sealed rows into JSON for the API and webhooks. A value that fails to open
//! (it cannot, short of tampering) is shown as null rather than failing the whole
//! document.

use postwerk_store::model::EventRecord;
use postwerk_store::vault::SealContext;
use serde_json::{Value, json};

use crate::accept::MessageMeta;
use postwerk_services::subjects::SubjectKeys;

/// RFC 3339 time from Unix milliseconds.
pub fn time(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A recipient's address (`keys` holding the key of the person `rcpt_hash`).
pub fn address(
    recipient_id: &str,
    rcpt_hash: &[u8],
    sealed: &[u8],
    keys: &SubjectKeys,
) -> Option<String> {
    keys.open(
        Some(rcpt_hash),
        SealContext::Recipient(recipient_id),
        sealed,
    )
    .ok()
    .and_then(|b| String::from_utf8(b).ok())
}

/// A message's summary. `rcpt_hash` names one of its recipients: their key opens it
/// if they are the only one, the tenant key otherwise.
pub fn meta(
    message_id: &str,
    rcpt_hash: Option<&[u8]>,
    sealed: &[u8],
    keys: &SubjectKeys,
) -> MessageMeta {
    keys.open(rcpt_hash, SealContext::Meta(message_id), sealed)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// One event with its opened details flattened in. A stream event (`stream_paused`,
/// `stream_resumed`) names its stream instead of a message and recipient; a tenant
/// event (`import_held`, `canary_triggered`) names neither.
pub fn event(e: &EventRecord, keys: &SubjectKeys) -> Value {
    let mut v = json!({
        "id": e.seq.to_string(),
        "type": e.event_type,
        "at": time(e.at),
    });
    let context = match &e.stream {
        Some(stream) => {
            v["stream"] = json!(stream);
            SealContext::StreamEvent(stream)
        }
        // A tenant event (`import_held`, `canary_triggered`): about no message.
        None if e.message_id.is_empty() => SealContext::Event(""),
        None => {
            v["message_id"] = json!(e.message_id);
            v["recipient_id"] = json!(e.recipient_id);
            SealContext::Event(&e.recipient_id)
        }
    };
    let detail = e
        .detail_enc
        .as_ref()
        .and_then(|d| keys.open(Some(&e.rcpt_hash), context, d).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    if let (Some(Value::Object(d)), Some(obj)) = (detail, v.as_object_mut()) {
        for (k, val) in d {
            obj.entry(k).or_insert(val);
        }
    }
    v
}
