//! Turning one delivery attempt into a recipient state change and an event:
//! 2xx → delivered, 5xx → bounced, anything else → deferred with exponential
//! back-off and jitter, or expired once the next attempt would be past the expiry.

use postwerk_store::vault::SealContext;
use std::time::Duration;

use postwerk_core::model::{BounceReason, EventType, RecipientStatus};
use postwerk_reports::bounce::{self, Classification};
use postwerk_services::subjects::SubjectKeys;
use postwerk_smtp_client::{SmtpError, TransactionResult};
use postwerk_store::model::{DeliveryUpdate, StatDims};
use rand::Rng;
use serde::Serialize;

use crate::job::Job;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted by the recipient's server.
    Delivered,
    /// Temporary failure: try again later.
    Transient,
    /// Permanent failure: do not retry.
    Permanent,
}

/// TLS parameters of the connection.
#[derive(Debug, Clone, Serialize)]
pub struct TlsDetail {
    /// Protocol version, e.g. `TLSv1.3`.
    pub version: String,
    /// Cipher suite.
    pub cipher: String,
    /// The certificate was verified for the MX host (required by an MTA-STS
    /// `enforce` policy; otherwise TLS is opportunistic and unverified).
    pub verified: bool,
}

/// What is recorded (sealed) with the event of an attempt.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AttemptDetail {
    /// The remote server's reply, or a description of the local failure. May contain
    /// the address (servers echo it), which is why details are sealed.
    pub reply: String,
    /// MX (or route) host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mx: Option<String>,
    /// Remote IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The egress source the connection left from (its configured name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The local IP address the connection left from, when an egress source set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// The destination site (traffic-shaping name: a provider, or the MX host set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// TLS version and cipher, when TLS was used.
    pub tls: Option<TlsDetail>,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// When the next attempt is due (deferred only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// Why it failed, in the shared bounce vocabulary (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<BounceReason>,
    /// True for a hard bounce: the address is bad and is suppressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardbounce: Option<bool>,
}

impl AttemptDetail {
    /// Records the bounce reason of a failed attempt; returns true for a hard bounce
    /// (permanent failure of a bad address), which suppresses the address.
    pub fn classify(&mut self, verdict: Verdict, c: Option<Classification>) -> bool {
        let Some(c) = c.filter(|_| verdict != Verdict::Delivered) else {
            return false;
        };
        let hard = verdict == Verdict::Permanent && c.hard;
        self.reason = Some(c.reason);
        self.hardbounce = Some(hard);
        hard
    }
}

/// A transaction's outcome, judged.
pub struct Judgement {
    /// What happens to the recipient.
    pub verdict: Verdict,
    /// The reply (or local failure) to record, sealed.
    pub reply: String,
    /// The bounce reason of a failure.
    pub classification: Option<Classification>,
}

/// Judges one transaction: the final DATA reply decides, else the RCPT reply; local
/// failures (connection, TLS, timeouts) are temporary unless the server said 5xx.
pub fn judge(result: Result<TransactionResult, SmtpError>) -> Judgement {
    let (reply, verdict, text) = match &result {
        Ok(t) => match t.data_reply.as_ref().or(t.rcpt_replies.first()) {
            Some(r) if r.is_positive() && t.data_reply.is_some() => {
                (Some(r), Verdict::Delivered, r.to_string())
            }
            Some(r) if r.is_permanent() => (Some(r), Verdict::Permanent, r.to_string()),
            Some(r) => (Some(r), Verdict::Transient, r.to_string()),
            None => (None, Verdict::Transient, "no recipient reply".to_string()),
        },
        Err(e) => {
            let verdict = if e.is_permanent() {
                Verdict::Permanent
            } else {
                Verdict::Transient
            };
            (e.reply(), verdict, e.to_string())
        }
    };
    let classification = (verdict != Verdict::Delivered).then(|| match reply {
        Some(r) => {
            let enhanced = r.enhanced.map(|e| e.to_string());
            bounce::classify(r.code, enhanced.as_deref(), &r.text)
        }
        None => classify_local(verdict, &text),
    });
    Judgement {
        verdict,
        reply: text,
        classification,
    }
}

/// Classifies a failure that has no SMTP reply (DNS, connection, TLS).
pub fn classify_local(verdict: Verdict, text: &str) -> Classification {
    let code = if verdict == Verdict::Permanent {
        550
    } else {
        451
    };
    bounce::classify(code, None, text)
}

/// Retry timing.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First delay.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// Delay before attempt `attempts + 1`: base · 2^(attempts−1), capped, ±20 % jitter.
    pub fn delay(&self, attempts: i64) -> Duration {
        let exp = attempts.clamp(1, 30) as u32 - 1;
        let raw = self.base.saturating_mul(1u32 << exp.min(20)).min(self.max);
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        raw.mul_f64(jitter)
    }
}

/// Builds the store update for `job` after an attempt at `now` (Unix ms).
pub fn update_for(
    job: &Job,
    verdict: Verdict,
    mut detail: AttemptDetail,
    now: i64,
    retry: &RetryPolicy,
    keys: &SubjectKeys,
) -> DeliveryUpdate {
    let attempt = job.attempts + 1;
    detail.attempt = attempt;
    let (status, event, next) = match verdict {
        Verdict::Delivered => (RecipientStatus::Delivered, EventType::Delivered, None),
        Verdict::Permanent => (RecipientStatus::Bounced, EventType::Bounced, None),
        Verdict::Transient => {
            let wait = postwerk_core::stream::retry_wait(&job.content.retry, attempt)
                .unwrap_or_else(|| retry.delay(attempt));
            let next = now + wait.as_millis() as i64;
            if next > job.expires_at {
                (RecipientStatus::Expired, EventType::Expired, None)
            } else {
                detail.next_attempt_at = chrono::DateTime::from_timestamp_millis(next)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                (RecipientStatus::Deferred, EventType::Deferred, Some(next))
            }
        }
    };
    count(job, event, &detail);
    let dims = StatDims {
        stream: job.content.stream.clone(),
        pool: job.pool.as_deref().unwrap_or_default().to_string(),
        source: detail.source.clone().unwrap_or_default(),
        site: detail.site.clone().unwrap_or_default(),
        reason: detail
            .reason
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
    };
    let detail_json = serde_json::to_vec(&detail).unwrap_or_default();
    DeliveryUpdate {
        recipient_id: job.recipient_id.clone(),
        message_id: job.message_id.clone(),
        tenant_id: job.tenant_id.clone(),
        rcpt_hash: job.rcpt_hash.clone(),
        status,
        next_attempt_at: next,
        event,
        at: now,
        detail_enc: keys.seal(
            Some(&job.rcpt_hash),
            SealContext::Event(&job.recipient_id),
            &detail_json,
        ),
        dims,
    }
}

/// Adds an attempt's outcome to the delivery metrics.
fn count(job: &Job, event: EventType, detail: &AttemptDetail) {
    use postwerk_core::metrics::{DELIVERIES, DELIVERY_LATENCY};
    let reason = detail.reason.map(|r| r.as_str()).unwrap_or("");
    let stream = postwerk_core::metrics::stream_label(&job.content.stream);
    DELIVERIES.add(&[stream, event.as_str(), reason], 1);
    if event == EventType::Delivered
        && let Some(t) = job.content.accepted_at
    {
        DELIVERY_LATENCY.observe(&[stream], t.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_with_jitter() {
        let p = RetryPolicy {
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        };
        for (attempts, nominal) in [
            (1, 60.0),
            (2, 120.0),
            (3, 240.0),
            (7, 3600.0),
            (100, 3600.0),
        ] {
            let d = p.delay(attempts).as_secs_f64();
            assert!(
                d >= nominal * 0.8 - 0.001 && d <= nominal * 1.2 + 0.001,
                "attempt {attempts}: {d}"
            );
        }
    }
}
