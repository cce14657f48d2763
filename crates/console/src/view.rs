//! The API's answers as pages show them: times in UTC, chart labels, countdowns to a
//! deadline, and the shapes several pages read.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Now, in Unix seconds.
pub fn now_s() -> i64 {
    Utc::now().timestamp()
}

fn parse(rfc3339: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An API time (`2026-12-07T14:00:00Z`) as `2026-12-07 14:00:00 UTC`.
pub fn time(rfc3339: &str) -> String {
    parse(rfc3339).map_or_else(
        || rfc3339.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// An optional API time, or an empty string.
pub fn opt_time(rfc3339: &Option<String>) -> String {
    rfc3339.as_deref().map(time).unwrap_or_default()
}

/// An hour bucket's label (`14:00`).
pub fn hour_label(rfc3339: &str) -> String {
    parse(rfc3339).map_or_else(String::new, |t| t.format("%H:00").to_string())
}

/// A day bucket's label (`12-07`).
pub fn day_label(rfc3339: &str) -> String {
    parse(rfc3339).map_or_else(String::new, |t| t.format("%m-%d").to_string())
}

/// The time left until `rfc3339` (`31 h 5 min`), or how long ago it passed
/// (`-2 h 0 min`).
pub fn countdown(rfc3339: &str) -> String {
    let Some(due) = parse(rfc3339) else {
        return String::new();
    };
    let minutes = (due - Utc::now()).num_minutes();
    let sign = if minutes < 0 { "-" } else { "" };
    let minutes = minutes.abs();
    format!("{sign}{} h {} min", minutes / 60, minutes % 60)
}

/// The objects of a JSON array (`[]` for anything else): the rows of a list answer.
pub fn objects(list: &serde_json::Value) -> Vec<serde_json::Map<String, serde_json::Value>> {
    list.as_array()
        .map(|a| a.iter().filter_map(|e| e.as_object().cloned()).collect())
        .unwrap_or_default()
}

/// A field of an API object as text: a string as it is, a list joined with `, `,
/// nothing for null or absent, anything else as JSON.
pub fn text(entry: &serde_json::Map<String, serde_json::Value>, key: &str) -> String {
    use serde_json::Value;
    match entry.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A time field of an API object as [`time`] shows it (empty when absent).
pub fn time_text(entry: &serde_json::Map<String, serde_json::Value>, key: &str) -> String {
    entry
        .get(key)
        .and_then(serde_json::Value::as_str)
        .map(time)
        .unwrap_or_default()
}

/// A true/false field of an API object (`false` when absent).
pub fn flag(entry: &serde_json::Map<String, serde_json::Value>, key: &str) -> bool {
    entry
        .get(key)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// The tenant's streams, as `GET /v1/streams` lists them.
pub async fn streams(visit: &crate::page::Visit) -> Result<Vec<Stream>, crate::page::PageError> {
    #[derive(Deserialize)]
    struct Streams {
        streams: Vec<Stream>,
    }
    visit
        .api
        .get::<Streams>("/v1/streams")
        .await
        .map(|s| s.streams)
        .map_err(|f| crate::page::PageError::api(visit.lang, f))
}

/// A stream as `GET /v1/streams` shows it.
#[derive(Deserialize, Clone)]
pub struct Stream {
    /// Its name.
    pub name: String,
    /// Built in (`transactional`, `broadcast`) or the tenant's own.
    #[serde(default)]
    pub builtin: bool,
    /// Paused.
    #[serde(default)]
    pub paused: bool,
    /// Since when.
    #[serde(default)]
    pub paused_at: Option<String>,
    /// Why (by an operator, or the breaker's reason).
    #[serde(default)]
    pub pause_reason: Option<String>,
    /// Delivery priority.
    #[serde(default)]
    pub priority: u64,
    /// The share of delivery capacity reserved for it, in percent.
    #[serde(default)]
    pub reserved_share: u64,
    /// Its IP pool.
    #[serde(default)]
    pub pool: Option<String>,
    /// Retry schedule.
    #[serde(default)]
    pub retry: Vec<String>,
    /// Open tracking by default.
    #[serde(default)]
    pub track_opens: Option<bool>,
    /// Click tracking by default.
    #[serde(default)]
    pub track_clicks: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(time("2026-12-07T14:05:09Z"), "2026-12-07 14:05:09 UTC");
        assert_eq!(hour_label("2026-12-07T14:00:00Z"), "14:00");
        assert_eq!(day_label("2026-12-07T00:00:00Z"), "12-07");
        assert_eq!(time("not a time"), "not a time");
        let later = (Utc::now() + chrono::Duration::minutes(125)).to_rfc3339();
        assert!(
            countdown(&later).starts_with("2 h 4"),
            "{}",
            countdown(&later)
        );
    }
}
