//! Streams: the delivery classes a tenant's mail is sent in. Every tenant has
//! `transactional` and `broadcast`; tenants add their own. A stream's settings decide
//! its priority in the delivery queue, the share of connections reserved for it, the
//! egress pool it leaves from, how it is retried, how long it may wait, and its
//! tracking and unsubscribe defaults.
//!
//! Settings are stored as this struct's JSON (no personal data) and sent on the wire
//! the same way; durations are strings such as `5m` or `3d`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{format_duration, parse_duration};

/// The lowest priority (priorities run from 0, served first, to this).
pub const LOWEST_PRIORITY: u8 = 9;

/// Number of priority lanes in the ready queue: one per stream priority.
pub const LANES: usize = LOWEST_PRIORITY as usize + 1;

/// Most retry intervals a schedule may list.
const MAX_RETRY_STEPS: usize = 20;

/// A stream's settings. `None` fields fall back to the server configuration
/// (`[delivery]` for retries and expiry, `[tracking]` for tracking and unsubscribe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSettings {
    /// 0 (served first) to 9. Mail of a higher priority never waits behind mail of a
    /// lower one for the queue, a connection slot or signing.
    pub priority: u8,
    /// Percent of `delivery.max_connections` that lower-priority streams may not take,
    /// so that this stream always finds a connection slot (0–90).
    pub reserved_share: u8,
    /// The egress pool (`[[egress.pools]]`) the stream's mail leaves from; `None`:
    /// the tenant's pool, else the default pool.
    pub pool: Option<String>,
    /// Waits between attempts: the n-th retry waits the n-th interval, the last one
    /// repeats. Empty: exponential back-off from `delivery.retry_base` to `retry_max`.
    #[serde(serialize_with = "ser_durations", deserialize_with = "de_durations")]
    pub retry: Vec<Duration>,
    /// How long mail is retried before it expires (`None`: `delivery.expiry`).
    #[serde(
        serialize_with = "ser_opt_duration",
        deserialize_with = "de_opt_duration"
    )]
    pub max_age: Option<Duration>,
    /// Open tracking of API-composed HTML mail by default (`None`:
    /// `tracking.open_streams`).
    pub track_opens: Option<bool>,
    /// Click tracking by default, `html`, `text`, `all` or `none` (`None`:
    /// `tracking.click_streams`, which means `html`).
    pub track_clicks: Option<String>,
    /// One-click `List-Unsubscribe` headers (`None`: `tracking.unsubscribe_streams`).
    pub unsubscribe: Option<bool>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            priority: 5,
            reserved_share: 0,
            pool: None,
            retry: Vec::new(),
            max_age: None,
            track_opens: None,
            track_clicks: None,
            unsubscribe: None,
        }
    }
}

impl StreamSettings {
    /// The settings a stream has before anyone changed them: `transactional` is
    /// served first with 20 % of the connections reserved; everything else is bulk.
    pub fn initial(name: &str) -> StreamSettings {
        match name {
            "transactional" => StreamSettings {
                priority: 0,
                reserved_share: 20,
                ..StreamSettings::default()
            },
            _ => StreamSettings::default(),
        }
    }

    /// Checks ranges; the error names the field and says what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.priority > LOWEST_PRIORITY {
            return Err(("priority", format!("must be 0 to {LOWEST_PRIORITY}")));
        }
        if self.reserved_share > 90 {
            return Err(("reserved_share", "must be 0 to 90 (percent)".into()));
        }
        if self.retry.len() > MAX_RETRY_STEPS || self.retry.iter().any(Duration::is_zero) {
            return Err((
                "retry",
                format!("at most {MAX_RETRY_STEPS} intervals, each more than 0"),
            ));
        }
        if self.max_age.is_some_and(|d| d.is_zero()) {
            return Err(("max_age", "must be more than 0".into()));
        }
        if let Some(c) = &self.track_clicks
            && !["html", "text", "all", "none"].contains(&c.as_str())
        {
            return Err(("track_clicks", "must be html, text, all or none".into()));
        }
        if let Some(p) = &self.pool
            && !crate::model::is_stream_name(p)
        {
            return Err(("pool", "not a pool name".into()));
        }
        Ok(())
    }

    /// The wait before retry number `attempt` (1 = the first retry) when the stream
    /// has its own schedule; `None` means the server's exponential back-off.
    pub fn retry_after(&self, attempt: i64) -> Option<Duration> {
        retry_wait(&self.retry, attempt)
    }
}

/// The wait before retry number `attempt` (1 = the first) under `schedule`: the
/// n-th interval, the last one repeating; `None` for an empty schedule.
pub fn retry_wait(schedule: &[Duration], attempt: i64) -> Option<Duration> {
    let last = schedule.len().checked_sub(1)?;
    let step = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
    Some(schedule[step.min(last)])
}

fn ser_durations<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(|d| format_duration(*d)))
}

fn de_durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse(s))
        .collect()
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse(&s))
        .transpose()
}

fn parse<E: serde::de::Error>(s: &str) -> Result<Duration, E> {
    parse_duration(s).ok_or_else(|| {
        E::custom(format!(
            "invalid duration `{s}` (use e.g. 30s, 5m, 24h, 7d)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_as_json_with_readable_durations() {
        let s = StreamSettings {
            retry: vec![Duration::from_secs(300), Duration::from_secs(3600)],
            max_age: Some(Duration::from_secs(86_400)),
            ..StreamSettings::initial("transactional")
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["retry"], serde_json::json!(["5m", "1h"]));
        assert_eq!(json["max_age"], "1d");
        assert_eq!(json["priority"], 0);
        assert_eq!(serde_json::from_value::<StreamSettings>(json).unwrap(), s);
        assert!(serde_json::from_str::<StreamSettings>(r#"{"retry":["soon"]}"#).is_err());
        assert!(serde_json::from_str::<StreamSettings>(r#"{"speed":1}"#).is_err());
    }

    #[test]
    fn retry_schedule_repeats_its_last_interval() {
        let s = StreamSettings {
            retry: vec![Duration::from_secs(60), Duration::from_secs(600)],
            ..StreamSettings::default()
        };
        assert_eq!(s.retry_after(1), Some(Duration::from_secs(60)));
        assert_eq!(s.retry_after(2), Some(Duration::from_secs(600)));
        assert_eq!(s.retry_after(7), Some(Duration::from_secs(600)));
        assert_eq!(StreamSettings::default().retry_after(1), None);
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |f: fn(&mut StreamSettings)| {
            let mut s = StreamSettings::default();
            f(&mut s);
            s.validate().unwrap_err().0
        };
        assert_eq!(bad(|s| s.priority = 10), "priority");
        assert_eq!(bad(|s| s.reserved_share = 95), "reserved_share");
        assert_eq!(bad(|s| s.retry = vec![Duration::ZERO]), "retry");
        assert_eq!(
            bad(|s| s.track_clicks = Some("links".into())),
            "track_clicks"
        );
        assert!(StreamSettings::initial("broadcast").validate().is_ok());
    }
}
