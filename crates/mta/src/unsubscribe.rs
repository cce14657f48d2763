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

use postwerk_services::streams::Stream;

use postwerk_core::address::Address;
use postwerk_core::config::Config;
use postwerk_core::model::{EventType, SuppressionReason};
use postwerk_core::rawmsg;
use postwerk_services::subjects::SubjectKeys;
use postwerk_store::model::{RecipientRef, ReportUpdate};
use postwerk_store::prelude::*;
use postwerk_store::vault::{SealContext, TenantKeys};

use postwerk_privacy::suppressions;
use postwerk_services::context::{ServiceError, Services, now_ms};

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

/// Whether mail of `stream` gets the headers (its `unsubscribe` setting, else
/// `[tracking] unsubscribe_streams`), and `message` does not bring its own.
pub fn applies(config: &Config, stream: &Stream, message: &[u8]) -> bool {
    let listed = || config.tracking.unsubscribe_streams.contains(&stream.name);
    stream.settings.unsubscribe.unwrap_or_else(listed)
        && rawmsg::header_value(message, "list-unsubscribe").is_none()
}

/// The local-part prefix of mailto unsubscribe addresses at the bounce domain.
pub const MAILTO_PREFIX: &str = "u+";
/// Hex digits of the tag in a mailto address: a local part is at most 64 characters
/// (RFC 5321), so mailto tokens carry 64 bits of the tag (guessing one means sending
/// mail, which the inbound MX would take 2^63 times on average).
const MAILTO_TAG: usize = 16;

/// The two header fields (CRLF-terminated) to put in front of the message: the https
/// one-click link and, when a bounce domain is configured (its MX is Postwerk's
/// inbound MX), a `mailto:u+<token>@<bounce domain>` alternative.
pub fn headers(config: &Config, keys: &TenantKeys, recipient_id: &str) -> String {
    let mailto = config
        .delivery
        .bounce_domain
        .as_deref()
        .map(|d| {
            let tag = &keys.link_tag(PURPOSE, recipient_id)[..MAILTO_TAG];
            format!(", <mailto:{MAILTO_PREFIX}{recipient_id}.{tag}@{d}>")
        })
        .unwrap_or_default();
    format!(
        "List-Unsubscribe: <{}>{mailto}\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        url(config, keys, recipient_id)
    )
}

/// The token of a mailto unsubscribe address's local part (`u+<token>`), if it is one.
pub fn mailto_token(local: &str) -> Option<&str> {
    let prefix = local.get(..MAILTO_PREFIX.len())?;
    prefix
        .eq_ignore_ascii_case(MAILTO_PREFIX)
        .then(|| &local[MAILTO_PREFIX.len()..])
}

/// The recipient a genuine token (a link's, or with `mailto` a mailto address's shorter
/// one) names, with its tenant's keys; `None` for a token that is malformed, forged or
/// names no recipient.
pub async fn recipient_of(
    services: &Services,
    token: &str,
    mailto: bool,
) -> Result<Option<(RecipientRef, SubjectKeys)>, ServiceError> {
    let token = token.to_ascii_lowercase();
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
    let keys = services
        .subject_keys(&r.tenant_id, [r.rcpt_hash.as_slice()])
        .await?;
    let expected = keys.tenant().link_tag(PURPOSE, recipient_id);
    let expected = if mailto {
        &expected[..MAILTO_TAG]
    } else {
        &expected[..]
    };
    let genuine = postwerk_core::id::constant_time_eq(expected.as_bytes(), tag.as_bytes());
    Ok(genuine.then_some((r, keys)))
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
/// `source` says how: `one-click` (the link's token) or `mailto` (the shorter token of a
/// mailto address).
pub async fn unsubscribe(
    services: &Services,
    token: &str,
    source: &str,
) -> Result<Option<Unsubscribed>, ServiceError> {
    let Some((r, keys)) = recipient_of(services, token, source == "mailto").await? else {
        return Ok(None);
    };
    suppress(services, &r, &keys, source).await.map(Some)
}

/// Suppresses a genuine token's recipient (see [`recipient_of`]) for the message's
/// stream, recording an `unsubscribed` event with `source` the first time.
pub async fn suppress(
    services: &Services,
    r: &RecipientRef,
    keys: &SubjectKeys,
    source: &str,
) -> Result<Unsubscribed, ServiceError> {
    let address = crate::view::address(&r.id, &r.rcpt_hash, &r.address_enc, keys)
        .and_then(|a| Address::parse(&a).ok());
    let Some(address) = address else {
        // Erased: the tombstone already stops all mail; nothing to record.
        return Ok(Unsubscribed {
            stream: r.stream.clone(),
            new: false,
        });
    };
    let entry = suppressions::record(
        keys,
        &r.tenant_id,
        &address,
        SuppressionReason::Unsubscribe,
        Some(&r.stream),
        &r.id,
    );
    let new = suppressions::add(services, entry).await?;
    if new {
        let detail = serde_json::json!({"source": source, "stream": r.stream});
        services
            .store
            .record_reports(vec![ReportUpdate::about(
                r,
                EventType::Unsubscribed,
                now_ms(),
                keys.seal(
                    Some(&r.rcpt_hash),
                    SealContext::Event(&r.id),
                    detail.to_string().as_bytes(),
                ),
            )])
            .await?;
        tracing::info!(recipient_id = %r.id, stream = %r.stream, "unsubscribed");
    }
    Ok(Unsubscribed {
        stream: r.stream.clone(),
        new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_only_for_listed_streams_without_their_own() {
        let config = Config::default();
        let plain = b"From: a@example.com\r\nSubject: x\r\n\r\nbody";
        let own = b"From: a@example.com\r\nList-Unsubscribe: <mailto:u@example.com>\r\n\r\nbody";
        let broadcast = Stream::initial("broadcast");
        let mut transactional = Stream::initial("transactional");
        assert!(applies(&config, &broadcast, plain));
        assert!(!applies(&config, &transactional, plain));
        assert!(!applies(&config, &broadcast, own));
        transactional.settings.unsubscribe = Some(true);
        assert!(
            applies(&config, &transactional, plain),
            "the stream's own setting"
        );
    }
}
