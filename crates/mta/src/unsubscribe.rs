//! One-click unsubscribe (RFC 8058). Mail of the streams in `[tracking]
//! unsubscribe_streams` carries, per recipient,
//!
//! ```text
//! List-Unsubscribe: <https://links.example.com/u/rcpt_…​.<tag>>
//! List-Unsubscribe-Post: List-Unsubscribe=One-Click
//! ```
//!
//! (both covered by the DKIM signature). The token is the recipient id and an HMAC
//! tag under the tenant's key: it holds no personal data and cannot be forged or
//! enumerated. A `POST` to the link unsubscribes: the address is suppressed for the
//! message's stream and an `unsubscribed` event is recorded.

use postwerk_core::address::Address;
use postwerk_core::config::Config;
use postwerk_core::model::{EventType, SuppressionReason};
use postwerk_store::Store;
use postwerk_store::model::ReportUpdate;
use postwerk_store::vault::TenantKeys;

use crate::context::{ServiceError, Services, now_ms};
use crate::{rawmsg, suppressions};

/// HMAC purpose of unsubscribe tokens.
const PURPOSE: &str = "unsubscribe";

/// The token for a recipient: `<recipient id>.<tag>`.
pub fn token(keys: &TenantKeys, recipient_id: &str) -> String {
    format!("{recipient_id}.{}", keys.link_tag(PURPOSE, recipient_id))
}

/// The one-click URL for a recipient.
pub fn url(config: &Config, keys: &TenantKeys, recipient_id: &str) -> String {
    format!(
        "{}/u/{}",
        config.links_base_url(),
        token(keys, recipient_id)
    )
}

/// Whether mail of `stream` gets the headers, and `message` does not bring its own.
pub fn applies(config: &Config, stream: &str, message: &[u8]) -> bool {
    config
        .tracking
        .unsubscribe_streams
        .iter()
        .any(|s| s == stream)
        && rawmsg::header_value(message, "list-unsubscribe").is_none()
}

/// The two header fields (CRLF-terminated) to put in front of the message.
pub fn headers(config: &Config, keys: &TenantKeys, recipient_id: &str) -> String {
    format!(
        "List-Unsubscribe: <{}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        url(config, keys, recipient_id)
    )
}

/// What a valid token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    /// The stream the person left.
    pub stream: String,
    /// `false` if the address was already suppressed for it (or erased).
    pub new: bool,
}

/// Unsubscribes the token's recipient from the message's stream; `None` for a token
/// that is malformed, forged or names no recipient (answer 404, no redirect).
/// `source` says how (`one-click`, `page`).
pub async fn unsubscribe(
    services: &Services,
    token: &str,
    source: &str,
) -> Result<Option<Unsubscribed>, ServiceError> {
    let Some((recipient_id, tag)) = token.split_once('.') else {
        return Ok(None);
    };
    let well_formed = recipient_id.starts_with("rcpt_")
        && recipient_id.len() < 64
        && recipient_id[5..].bytes().all(|b| b.is_ascii_alphanumeric());
    if !well_formed {
        return Ok(None);
    }
    let Some(r) = services.store.find_recipient(recipient_id).await? else {
        return Ok(None);
    };
    let keys = services.tenant_keys(&r.tenant_id).await?;
    if !crate::tracking::constant_time_eq(
        keys.link_tag(PURPOSE, recipient_id).as_bytes(),
        tag.as_bytes(),
    ) {
        return Ok(None);
    }
    let address = keys
        .open(&format!("rcpt:{}", r.id), &r.address_enc)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|a| Address::parse(&a).ok());
    let Some(address) = address else {
        // Erased: the tombstone already stops all mail; nothing to record.
        return Ok(Some(Unsubscribed {
            stream: r.stream,
            new: false,
        }));
    };
    let entry = suppressions::record(
        &keys,
        &r.tenant_id,
        &address,
        SuppressionReason::Unsubscribe,
        Some(&r.stream),
        &r.id,
    );
    let new = services.store.add_suppression(entry).await?;
    if new {
        let detail = serde_json::json!({"source": source, "stream": r.stream});
        services
            .store
            .record_reports(vec![ReportUpdate {
                recipient_id: r.id.clone(),
                message_id: r.message_id.clone(),
                tenant_id: r.tenant_id.clone(),
                rcpt_hash: r.rcpt_hash.clone(),
                event: EventType::Unsubscribed,
                status_if_delivered: None,
                at: now_ms(),
                detail_enc: keys.seal(&format!("event:{}", r.id), detail.to_string().as_bytes()),
            }])
            .await?;
        tracing::info!(recipient_id = %r.id, stream = %r.stream, "unsubscribed");
    }
    Ok(Some(Unsubscribed {
        stream: r.stream,
        new,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_only_for_listed_streams_without_their_own() {
        let config = Config::default();
        let plain = b"From: a@example.com\r\nSubject: x\r\n\r\nbody";
        let own = b"From: a@example.com\r\nList-Unsubscribe: <mailto:u@example.com>\r\n\r\nbody";
        assert!(applies(&config, "broadcast", plain));
        assert!(!applies(&config, "transactional", plain));
        assert!(!applies(&config, "broadcast", own));
    }
}
