//! Open and click tracking, privacy first.
//!
//! - [`links`]: rewriting an API message's HTML (and, if asked, text) at composition:
//!   links go through `/t/c/…`, an invisible pixel loads `/t/o/…`. Each URL carries
//!   [`RECIPIENT_PLACEHOLDER`], which delivery replaces with the recipient's token.
//! - [`hits`]: classifying a request (person, privacy proxy, link scanner) and
//!   recording `opened` / `clicked` events in batches.
//!
//! Tokens are `<recipient id>.<tag>`, the tag an HMAC under a key derived from the
//! master key, so a request is verified without a lookup and a forged or guessed token
//! gets `404` (never a redirect: no open redirect). Redirect targets are authenticated
//! the same way, bound to the message they were sent in (`<message id>.<HMAC over
//! message id and URL>`), and a click counts only for a recipient of that message: a
//! tag from one message's link combined with another message's recipient token gets
//! `404` (a tenant cannot put clicks into another tenant's events). Tokens hold no
//! personal data. IP addresses are not stored unless
//! `[tracking] store_ip = "truncated"` (then /24 and /48). Restricted and erased people
//! are not tracked: their hits are dropped.

pub mod hits;
pub mod links;

use postwerk_core::config::Config;
use postwerk_core::mime::RECIPIENT_PLACEHOLDER;
use postwerk_store::vault::MasterKey;

use postwerk_core::id::constant_time_eq;

/// HMAC purpose of recipient tokens.
const TOKEN: &str = "track";
/// HMAC purpose of redirect targets bound to their message.
const TARGET: &str = "click.message";
/// HMAC purpose of redirect targets in mail composed before targets were bound to
/// their message: they still redirect, but their clicks are not recorded.
const LEGACY_TARGET: &str = "click";

/// The recipient's token (same length as [`RECIPIENT_PLACEHOLDER`]).
pub fn token(master: &MasterKey, recipient_id: &str) -> String {
    format!("{recipient_id}.{}", master.link_tag(TOKEN, recipient_id))
}

/// The recipient id of a genuine token, else `None`.
pub fn verify(master: &MasterKey, token: &str) -> Option<String> {
    let (id, tag) = token.split_once('.')?;
    (is_id(id, "rcpt_") && constant_time_eq(master.link_tag(TOKEN, id).as_bytes(), tag.as_bytes()))
        .then(|| id.to_string())
}

/// Whether `id` has the form of a Postwerk id with `prefix` (`rcpt_`, `msg_`).
fn is_id(id: &str, prefix: &str) -> bool {
    id.len() == prefix.len() + 26
        && id.starts_with(prefix)
        && id[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// The authenticator of a redirect target sent in message `message_id`:
/// `<message id>.<tag>`.
pub fn target_tag(master: &MasterKey, message_id: &str, url: &str) -> String {
    let tag = master.link_tag(TARGET, &format!("{message_id}\n{url}"));
    format!("{message_id}.{tag}")
}

/// What a genuine target tag authenticates `url` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOf {
    /// A link of this message: its clicks count for the message's recipients only.
    Message(String),
    /// A link of mail composed before targets were bound to their message: it
    /// redirects, but its clicks are not recorded.
    Legacy,
}

/// What `tag` authenticates `url` for, or `None` if it does not.
pub fn verify_target(master: &MasterKey, url: &str, tag: &str) -> Option<TargetOf> {
    match tag.split_once('.') {
        Some((message_id, _)) => (is_id(message_id, "msg_")
            && constant_time_eq(
                target_tag(master, message_id, url).as_bytes(),
                tag.as_bytes(),
            ))
        .then(|| TargetOf::Message(message_id.to_string())),
        None => constant_time_eq(
            master.link_tag(LEGACY_TARGET, url).as_bytes(),
            tag.as_bytes(),
        )
        .then_some(TargetOf::Legacy),
    }
}

/// Replaces every placeholder in a rendered message with the recipient's token;
/// `None` if the message has none (then it is shared by all recipients).
pub fn personalise(message: &[u8], token: &str) -> Option<Vec<u8>> {
    let p = RECIPIENT_PLACEHOLDER.as_bytes();
    debug_assert_eq!(token.len(), p.len());
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(at) = find(&message[i..], p) {
        let o = out.get_or_insert_with(|| Vec::with_capacity(message.len()));
        o.extend_from_slice(&message[i..i + at]);
        o.extend_from_slice(token.as_bytes());
        i += at + p.len();
    }
    out.map(|mut o| {
        o.extend_from_slice(&message[i..]);
        o
    })
}

/// Whether a rendered message holds tracking links.
pub fn is_tracked(message: &[u8]) -> bool {
    find(message, RECIPIENT_PLACEHOLDER.as_bytes()).is_some()
}

/// Runs for every message queued (is it tracked?), so a vectorised search.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// The public base of link URLs.
pub fn base_url(config: &Config) -> String {
    config.links_base_url()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap()
    }

    #[test]
    fn tokens_verify_and_fill_the_placeholder_exactly() {
        let m = master();
        let id = postwerk_core::id::new_id("rcpt");
        let t = token(&m, &id);
        assert_eq!(t.len(), RECIPIENT_PLACEHOLDER.len());
        assert_eq!(verify(&m, &t), Some(id.clone()));
        let last = if t.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &t[..t.len() - 1]);
        assert_ne!(forged, t);
        assert_eq!(verify(&m, &forged), None);
        assert_eq!(verify(&m, "rcpt_x.00"), None);
        let other = MasterKey::from_base64("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert_eq!(verify(&other, &t), None, "another installation's token");

        let msg = format!("a {RECIPIENT_PLACEHOLDER} b {RECIPIENT_PLACEHOLDER}");
        let out = personalise(msg.as_bytes(), &t).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("a {t} b {t}"));
        assert_eq!(personalise(b"no links", &t), None);
        let msg = postwerk_core::id::new_id("msg");
        let url = "https://x.example/?a=1";
        let tag = target_tag(&m, &msg, url);
        assert_eq!(
            verify_target(&m, url, &tag),
            Some(TargetOf::Message(msg.clone()))
        );
        assert_eq!(verify_target(&m, "https://evil.example/", &tag), None);
        let other_msg = postwerk_core::id::new_id("msg");
        let (_, mac) = tag.split_once('.').unwrap();
        assert_eq!(
            verify_target(&m, url, &format!("{other_msg}.{mac}")),
            None,
            "a tag is bound to its message"
        );
        assert_eq!(verify_target(&other, url, &tag), None);
        // Links composed before targets were bound to a message.
        let legacy = m.link_tag(LEGACY_TARGET, url);
        assert_eq!(verify_target(&m, url, &legacy), Some(TargetOf::Legacy));
        assert_eq!(verify_target(&m, "https://evil.example/", &legacy), None);
    }
}
