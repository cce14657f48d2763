//! The shared vocabulary: scopes, recipient states, event kinds, streams.
//!
//! Every enum here is stored and sent on the wire as its stable snake_case string.
//! Never rename a variant's string; add new variants at the end.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable string form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant::new(stringify!($name), s, &[$($text),+])),
                }
            }
        }
    };
}

/// A string that names no variant of an enum. The message names the value given
/// (cut to 64 characters) and lists the valid ones: ``unknown scope `raed` (valid: send,
/// read, write, import, export, privacy, admin)``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` (valid: {})", valid.join(", "))]
pub struct UnknownVariant {
    /// What was asked for, in words: `scope`, `suppression reason`.
    pub kind: String,
    /// The value given.
    pub value: String,
    /// Every valid value.
    pub valid: &'static [&'static str],
}

impl UnknownVariant {
    /// `value` is no `type_name` (a CamelCase enum name); `valid` are the values that are.
    fn new(type_name: &str, value: &str, valid: &'static [&'static str]) -> Self {
        let mut kind = String::new();
        for (i, c) in type_name.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                kind.push(' ');
            }
            kind.extend(c.to_lowercase());
        }
        UnknownVariant {
            kind,
            value: value.chars().take(64).collect(),
            valid,
        }
    }
}

string_enum! {
    /// What an API key or user may do.
    Scope {
        /// Send mail (API and SMTP submission).
        Send => "send",
        /// Read logs, messages, events and stats.
        Read => "read",
        /// Change domains, streams, webhooks and settings.
        Write => "write",
        /// Import contacts.
        Import => "import",
        /// Take personal data out (exports).
        Export => "export",
        /// Data-subject requests, erasure.
        Privacy => "privacy",
        /// Users and keys.
        Admin => "admin",
    }
}

string_enum! {
    /// Where one recipient of a message stands.
    RecipientStatus {
        /// Accepted, waiting for its first attempt.
        Queued => "queued",
        /// The recipient's server accepted it (2xx after DATA).
        Delivered => "delivered",
        /// A temporary failure; will be retried.
        Deferred => "deferred",
        /// A permanent failure.
        Bounced => "bounced",
        /// Retried until the stream's expiry without success.
        Expired => "expired",
        /// Not sent: the address is on the suppression list.
        Suppressed => "suppressed",
        /// Not sent: the stream requires consent for a purpose and the person has not
        /// given it (or withdrew it).
        NoConsent => "no_consent",
        /// Not sent: the person restricted processing of their data (GDPR Art. 18).
        Restricted => "restricted",
        /// Held: an operator suspended it (`postwerk queue suspend`) or its stream is
        /// paused. Resuming queues it again.
        Suspended => "suspended",
        /// Not sent: the message was submitted while its stream was paused.
        Rejected => "rejected",
        /// Not sent: a scheduled message cancelled before its time
        /// (`DELETE /v1/messages/{id}`).
        Cancelled => "cancelled",
    }
}

impl RecipientStatus {
    /// True when no further delivery attempt will be made.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered
                | Self::Bounced
                | Self::Expired
                | Self::Suppressed
                | Self::NoConsent
                | Self::Restricted
                | Self::Rejected
        )
    }
}

string_enum! {
    /// The kinds of events on a recipient's timeline.
    EventType {
        /// The message was accepted and durably queued.
        Accepted => "accepted",
        /// The recipient's server accepted the message.
        Delivered => "delivered",
        /// A temporary failure; a retry is scheduled.
        Deferred => "deferred",
        /// A permanent failure.
        Bounced => "bounced",
        /// Given up after the stream's expiry.
        Expired => "expired",
        /// Not sent because the address is suppressed.
        Suppressed => "suppressed",
        /// Not sent: no active consent for the purpose the stream requires.
        NoConsent => "no_consent",
        /// Not sent: processing of the person's data is restricted.
        Restricted => "restricted",
        /// The recipient (or their provider's feedback loop) reported the message as
        /// spam; the address is suppressed for the stream.
        Complained => "complained",
        /// An automatic reply (RFC 3834: vacation, out of office) came back. Not a
        /// bounce: the recipient's status is unchanged.
        Autoreply => "autoreply",
        /// The recipient unsubscribed (one-click or the confirmation page); the
        /// address is suppressed for the stream.
        Unsubscribed => "unsubscribed",
        /// The open pixel was fetched (see the detail's `agent` and `machine`: privacy
        /// proxies and scanners are flagged).
        Opened => "opened",
        /// A tracked link was followed (detail: `url`, `agent`, `machine`).
        Clicked => "clicked",
        /// Not sent: the stream was paused when the message was submitted.
        Rejected => "rejected",
        /// The stream was paused (by the circuit breaker or an operator); its queued
        /// mail is held. A stream event: no message or recipient.
        StreamPaused => "stream_paused",
        /// An operator resumed the stream; its held mail is queued again.
        StreamResumed => "stream_resumed",
        /// An operator suspended the recipient's delivery (`postwerk queue suspend`).
        Suspended => "suspended",
        /// An operator resumed or retried the recipient's delivery.
        Resumed => "resumed",
        /// A scheduled message was cancelled before its time.
        Cancelled => "cancelled",
        /// The import watchdog held a contact import (detail: `import_id`, `reasons`).
        /// A tenant event: no message or recipient.
        ImportHeld => "import_held",
        /// Mail from elsewhere reached a canary address: a list leaked (detail:
        /// `canary_origin`, `label`, `client_ip`, `from_domain`, `incident`). A tenant
        /// event.
        CanaryTriggered => "canary_triggered",
    }
}

string_enum! {
    /// The data-subject rights a request can invoke (GDPR Art. 15–21).
    DsarKind {
        /// Access (Art. 15) and portability (Art. 20): an export.
        Access => "access",
        /// Erasure (Art. 17).
        Erasure => "erasure",
        /// Rectification (Art. 16).
        Rectification => "rectification",
        /// Restriction of processing (Art. 18).
        Restriction => "restriction",
        /// Objection (Art. 21).
        Objection => "objection",
    }
}

string_enum! {
    /// Where a data-subject request stands.
    DsarStatus {
        /// Received, not yet answered.
        Open => "open",
        /// Carried out.
        Completed => "completed",
        /// Refused (with a reason in the note).
        Rejected => "rejected",
    }
}

string_enum! {
    /// Where a consent record stands.
    ConsentStatus {
        /// Given; processing for the purpose is allowed.
        Active => "active",
        /// Double opt-in: waiting for the person to confirm.
        Pending => "pending",
        /// Withdrawn (the record stays: evidence).
        Withdrawn => "withdrawn",
    }
}

string_enum! {
    /// Why an address is on the suppression list.
    SuppressionReason {
        /// A hard bounce (e.g. unknown user).
        HardBounce => "hard_bounce",
        /// The recipient complained (feedback loop).
        Complaint => "complaint",
        /// The recipient unsubscribed.
        Unsubscribe => "unsubscribe",
        /// Added by an operator or the API.
        Manual => "manual",
        /// The person's data was erased: only this hash remains, so that later sends
        /// to the address are dropped rather than re-collected.
        Erasure => "erasure",
    }
}

string_enum! {
    /// Why mail was not delivered: one vocabulary for SMTP replies, DSNs and ARF
    /// reports (shared with the bounce classifier and the suppression list).
    BounceReason {
        /// The mailbox does not exist.
        UserUnknown => "userunknown",
        /// The domain or host does not exist or accepts no mail (NXDOMAIN, null MX).
        HostUnknown => "hostunknown",
        /// The mailbox is full.
        MailboxFull => "mailboxfull",
        /// The recipient's filter refused the message.
        Filtered => "filtered",
        /// Refused for an unspecified reason.
        Rejected => "rejected",
        /// The sender, its IP or its domain is blocked (blocklists).
        Blocked => "blocked",
        /// Content was classified as spam.
        SpamDetected => "spamdetected",
        /// A local policy refused it.
        PolicyViolation => "policyviolation",
        /// The mailbox is disabled or suspended.
        Suspend => "suspend",
        /// Retried until the expiry without success.
        Expired => "expired",
        /// Connection failed, timed out or was reset.
        NetworkError => "networkerror",
        /// The remote system reported an internal error.
        SystemError => "systemerror",
        /// The destination accepts no mail.
        NotAccept => "notaccept",
        /// TLS or another security requirement failed.
        SecurityError => "securityerror",
        /// SPF, DKIM or DMARC authentication failed.
        AuthFailure => "authfailure",
        /// The sending IP has no or a mismatching PTR record.
        RequirePtr => "requireptr",
        /// The message is too large.
        MesgTooLarge => "mesgtoolarge",
        /// The content was refused (format, encoding, attachment type).
        ContentError => "contenterror",
        /// The server refused to relay.
        NoRelaying => "norelaying",
        /// Too many connections.
        TooManyConn => "toomanyconn",
        /// Sending too fast (rate limited).
        Speeding => "speeding",
        /// A quota or sending limit was exceeded.
        ExceedLimit => "exceedlimit",
        /// The recipient has moved.
        HasMoved => "hasmoved",
        /// The message does not comply with the RFCs.
        NotCompliantRfc => "notcompliantrfc",
        /// The sender's reputation is too low.
        BadReputation => "badreputation",
        /// A virus was found.
        VirusDetected => "virusdetected",
        /// A command or address had a syntax error.
        SyntaxError => "syntaxerror",
        /// A complaint (feedback loop).
        Feedback => "feedback",
        /// An auto-reply (vacation).
        Vacation => "vacation",
        /// Delivery is on hold.
        OnHold => "onhold",
        /// Could not be classified.
        Undefined => "undefined",
    }
}

impl BounceReason {
    /// True when the reason means the address itself is bad (a hard bounce whose
    /// address should be suppressed), false for conditions that may pass.
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            Self::UserUnknown
                | Self::HostUnknown
                | Self::HasMoved
                | Self::NotAccept
                | Self::Suspend
        )
    }
}

/// The streams every tenant has; tenants add their own (`POST /v1/streams`).
pub const DEFAULT_STREAMS: &[&str] = &["transactional", "broadcast"];

/// True for a well-formed stream name: 1–32 of `a-z`, `0-9`, `_`, `-`, starting with
/// a letter or digit.
pub fn is_stream_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Parses a comma-separated scope list such as `send,read`.
pub fn parse_scopes(list: &str) -> Result<Vec<Scope>, UnknownVariant> {
    let mut scopes: Vec<Scope> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Scope::from_str)
        .collect::<Result<_, _>>()?;
    scopes.sort_by_key(|s| s.as_str());
    scopes.dedup();
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_strings_round_trip() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), *s);
        }
        assert_eq!(
            parse_scopes("send, read,send").unwrap(),
            vec![Scope::Read, Scope::Send]
        );
        assert!(parse_scopes("send,root").is_err());
    }

    #[test]
    fn unknown_values_are_named_with_the_valid_ones() {
        assert_eq!(
            parse_scopes("send,raed").unwrap_err().to_string(),
            "unknown scope `raed` (valid: send, read, write, import, export, privacy, admin)"
        );
        let err = "spam".parse::<SuppressionReason>().unwrap_err().to_string();
        assert!(
            err.starts_with("unknown suppression reason `spam` (valid: hard_bounce, complaint,"),
            "{err}"
        );
        let long = "x".repeat(1000);
        let err = long.parse::<EventType>().unwrap_err();
        assert_eq!(err.value.len(), 64, "a long value is cut");
        assert_eq!(err.kind, "event type");
    }

    #[test]
    fn final_states() {
        assert!(RecipientStatus::Delivered.is_final());
        assert!(!RecipientStatus::Deferred.is_final());
        assert_eq!(
            serde_json::to_string(&EventType::Bounced).unwrap(),
            "\"bounced\""
        );
    }
}
