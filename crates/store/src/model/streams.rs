//! The streams area's rows: message streams, the backlog and the circuit breaker's figures.

/// What is waiting: the delivery queue by stream and the webhook backlog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Per stream: recipients queued or deferred, and the oldest one's message time.
    pub streams: Vec<StreamBacklog>,
    /// Webhook deliveries not yet posted successfully.
    pub webhook_deliveries: u64,
}

/// One stream's share of the delivery queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBacklog {
    /// The stream.
    pub stream: String,
    /// Recipients queued or deferred.
    pub recipients: u64,
    /// Acceptance time of the oldest one's message.
    pub oldest_created_at: i64,
}

/// A filter list as stored: `,a,b,` (or `''` for all), so SQL can match `,x,`.
pub(crate) fn encode_list(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(",{},", items.join(","))
    }
}

/// The inverse of [`encode_list`].
pub(crate) fn decode_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A tenant's stream as stored: settings (the JSON of
/// `postwerk_core::stream::StreamSettings`; no personal data) and pause state. The
/// built-in streams have a row only once changed or paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Owning tenant.
    pub tenant_id: String,
    /// Stream name.
    pub name: String,
    /// Settings as JSON.
    pub settings: String,
    /// Set while the stream is paused.
    pub paused_at: Option<i64>,
    /// Why it was paused (circuit breaker figures or an operator's note).
    pub pause_reason: Option<String>,
    /// When it was last resumed (the circuit breaker counts only later outcomes).
    pub resumed_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Last change of settings or pause state.
    pub updated_at: i64,
}

/// Pausing or resuming a stream, with the stream event that records it.
#[derive(Debug, Clone)]
pub struct StreamPause {
    /// Owning tenant.
    pub tenant_id: String,
    /// Stream name.
    pub stream: String,
    /// `Some(reason)` pauses (holding the stream's waiting mail), `None` resumes
    /// (queueing it again).
    pub reason: Option<String>,
    /// Settings JSON for the row if the stream has none yet (a built-in stream).
    pub initial_settings: String,
    /// Time.
    pub at: i64,
    /// Sealed details of the event (`stream:<name>` context), if any.
    pub detail_enc: Option<Vec<u8>>,
}

/// The latest outcomes of a stream's mail, for the circuit breaker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOutcomes {
    /// Recipients counted (the most recently finished, up to the window).
    pub finished: u64,
    /// Of those, bounced.
    pub bounced: u64,
    /// Of those, complained.
    pub complained: u64,
}
