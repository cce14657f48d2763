//! Process-wide metrics in the Prometheus text format (`GET /metrics`).
//!
//! A few fixed families, each a `static` updated where the thing happens: counters
//! and histograms keyed by a small, bounded set of label values (stream, result,
//! reason — never a tenant, address or message). Gauges that describe stored state
//! (queue depth, webhook backlog) are read at scrape time and passed to [`render`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// A counter family with labels.
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterVec {
    /// A family named `name` with label names `labels`.
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        CounterVec {
            name,
            help,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds `n` to the series with these label values (in `labels` order).
    pub fn add(&self, values: &[&str], n: u64) {
        if let Ok(mut m) = self.values.lock() {
            *m.entry(values.iter().map(|v| v.to_string()).collect())
                .or_default() += n;
        }
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} counter",
            self.name, self.help, self.name
        );
        if let Ok(m) = self.values.lock() {
            for (values, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "{}{} {n}",
                    self.name,
                    labels(self.labels, values, None)
                );
            }
        }
    }
}

/// Histogram bucket bounds in seconds (shared by all histograms).
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
];

#[derive(Default)]
struct Series {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// A histogram family (seconds) with labels.
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, Series>>,
}

impl HistogramVec {
    /// A family named `name` with label names `labels`.
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        HistogramVec {
            name,
            help,
            labels,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records one observation of `seconds`.
    pub fn observe(&self, values: &[&str], seconds: f64) {
        if let Ok(mut m) = self.series.lock() {
            let s = m
                .entry(values.iter().map(|v| v.to_string()).collect())
                .or_default();
            for (bound, c) in BUCKETS.iter().zip(s.counts.iter_mut()) {
                if seconds <= *bound {
                    *c += 1;
                }
            }
            s.sum += seconds;
            s.count += 1;
        }
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} histogram",
            self.name, self.help, self.name
        );
        if let Ok(m) = self.series.lock() {
            for (values, s) in m.iter() {
                for (bound, c) in BUCKETS.iter().zip(s.counts.iter()) {
                    let le = bound.to_string();
                    let l = labels(self.labels, values, Some(&le));
                    let _ = writeln!(out, "{}_bucket{l} {c}", self.name);
                }
                let l = labels(self.labels, values, Some("+Inf"));
                let _ = writeln!(out, "{}_bucket{l} {}", self.name, s.count);
                let l = labels(self.labels, values, None);
                let _ = writeln!(
                    out,
                    "{}_sum{l} {}\n{}_count{l} {}",
                    self.name, s.sum, self.name, s.count
                );
            }
        }
    }
}

/// `{a="x",b="y"}` (with `le` for histogram buckets), values escaped.
fn labels(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `stream` label of a stream: its name for the built-in streams
/// (`transactional`, `broadcast`), `custom` for any stream a tenant created. Tenants
/// name their own streams, and `/metrics` is one page for the whole installation:
/// their names would tell one customer's campaigns to anyone who can scrape it, and
/// every new name would add series that live as long as the process.
pub fn stream_label(stream: &str) -> &str {
    if crate::model::DEFAULT_STREAMS.contains(&stream) {
        stream
    } else {
        "custom"
    }
}

/// Messages accepted, by stream.
pub static ACCEPTED: CounterVec = CounterVec::new(
    "postwerk_messages_accepted_total",
    "Recipients accepted for delivery, by stream.",
    &["stream"],
);
/// Delivery attempt outcomes.
pub static DELIVERIES: CounterVec = CounterVec::new(
    "postwerk_deliveries_total",
    "Delivery attempt outcomes by stream, result (delivered, deferred, bounced, expired) and bounce reason.",
    &["stream", "result", "reason"],
);
/// Time from acceptance to delivery.
pub static DELIVERY_LATENCY: HistogramVec = HistogramVec::new(
    "postwerk_delivery_latency_seconds",
    "Time from acceptance to the remote server's 250, by stream (mail accepted by this process).",
    &["stream"],
);
/// Store commit latency.
pub static STORE_COMMIT: HistogramVec = HistogramVec::new(
    "postwerk_store_commit_seconds",
    "Time to commit one group of writes (SQLite writer; includes the fsync).",
    &["durability"],
);
/// Webhook posts by result.
pub static WEBHOOK_POSTS: CounterVec = CounterVec::new(
    "postwerk_webhook_posts_total",
    "Webhook delivery attempts by result (delivered, retry, failed, dropped).",
    &["result"],
);

/// Opens and clicks by outcome.
pub static TRACKING_HITS: CounterVec = CounterVec::new(
    "postwerk_tracking_hits_total",
    "Open pixel and tracked link requests by kind (open, click) and result (recorded; skipped: erased, restricted or unknown recipient; dropped: queue full).",
    &["kind", "result"],
);

/// Refused credentials, by kind (see [`AuthFailure`]).
pub static AUTH_FAILURES: CounterVec = CounterVec::new(
    "postwerk_auth_failures_total",
    "Refused credentials by kind (password, second_factor, locked, throttled, api_key, smtp_auth).",
    &["kind"],
);

/// Why a credential was refused: the `kind` of `postwerk_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// A sign-in with a wrong password or an address without an account.
    Password,
    /// A sign-in with the right password and a wrong or used second factor.
    SecondFactor,
    /// A sign-in to a locked account.
    Locked,
    /// A sign-in or an API key refused unseen: its client had too many failures.
    Throttled,
    /// An API key that is malformed, unknown, wrong, revoked or expired.
    ApiKey,
    /// A failed SMTP AUTH.
    SmtpAuth,
}

impl AuthFailure {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Password => "password",
            AuthFailure::SecondFactor => "second_factor",
            AuthFailure::Locked => "locked",
            AuthFailure::Throttled => "throttled",
            AuthFailure::ApiKey => "api_key",
            AuthFailure::SmtpAuth => "smtp_auth",
        }
    }
}

/// Counts one refused credential of `kind`.
pub fn auth_failure(kind: AuthFailure) {
    AUTH_FAILURES.add(&[kind.as_str()], 1);
}

/// Gauges read from stored state at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Recipients waiting for delivery (queued or deferred), by stream.
    pub queue_depth: Vec<(String, u64)>,
    /// Age in seconds of the oldest waiting recipient, by stream.
    pub queue_oldest_seconds: Vec<(String, f64)>,
    /// Jobs in this node's in-memory ready queue.
    pub ready: u64,
    /// Webhook deliveries not yet posted successfully.
    pub webhook_backlog: u64,
}

/// The whole exposition.
pub fn render(g: &Gauges) -> String {
    let mut out = String::with_capacity(4096);
    let gauge = |out: &mut String, name: &str, help: &str, series: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in series {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let by_stream = |v: &[(String, String)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(s, n)| (format!("{{stream=\"{}\"}}", escape(s)), n.clone()))
            .collect()
    };
    let depth: Vec<(String, String)> = g
        .queue_depth
        .iter()
        .map(|(s, n)| (s.clone(), n.to_string()))
        .collect();
    gauge(
        &mut out,
        "postwerk_queue_depth",
        "Recipients queued or deferred, by stream.",
        &by_stream(&depth),
    );
    let oldest: Vec<(String, String)> = g
        .queue_oldest_seconds
        .iter()
        .map(|(s, n)| (s.clone(), format!("{n:.3}")))
        .collect();
    gauge(
        &mut out,
        "postwerk_queue_oldest_seconds",
        "Age of the oldest queued or deferred recipient's message, by stream.",
        &by_stream(&oldest),
    );
    gauge(
        &mut out,
        "postwerk_queue_ready",
        "Jobs ready for a connection on this node.",
        &[(String::new(), g.ready.to_string())],
    );
    gauge(
        &mut out,
        "postwerk_webhook_backlog",
        "Webhook deliveries waiting to be posted or retried.",
        &[(String::new(), g.webhook_backlog.to_string())],
    );
    ACCEPTED.render(&mut out);
    DELIVERIES.render(&mut out);
    DELIVERY_LATENCY.render(&mut out);
    STORE_COMMIT.render(&mut out);
    WEBHOOK_POSTS.render(&mut out);
    TRACKING_HITS.render(&mut out);
    AUTH_FAILURES.render(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        static C: CounterVec = CounterVec::new("t_total", "Test.", &["a"]);
        static H: HistogramVec = HistogramVec::new("t_seconds", "Test.", &["a"]);
        C.add(&["x\"y"], 2);
        C.add(&["x\"y"], 1);
        H.observe(&["z"], 0.02);
        H.observe(&["z"], 7.0);
        let mut out = String::new();
        C.render(&mut out);
        H.render(&mut out);
        assert!(
            out.contains("# TYPE t_total counter\nt_total{a=\"x\\\"y\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{a=\"z\",le=\"0.01\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{a=\"z\",le=\"0.025\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{a=\"z\",le=\"10\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{a=\"z\",le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_sum{a=\"z\"} 7.02\nt_seconds_count{a=\"z\"} 2\n"),
            "{out}"
        );
        let g = render(&Gauges {
            queue_depth: vec![("broadcast".into(), 5)],
            ..Gauges::default()
        });
        assert!(
            g.contains("postwerk_queue_depth{stream=\"broadcast\"} 5\n"),
            "{g}"
        );
        assert!(g.contains("postwerk_webhook_backlog 0\n"), "{g}");
    }
}
