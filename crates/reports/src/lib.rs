//! Reading what comes back: delivery status notifications (RFC 3464), feedback-loop
//! reports (ARF, RFC 5965), auto-replies (RFC 3834) and the many bounces that follow
//! no standard, turned into [`Finding`]s — one per affected recipient — with the same
//! classifier the delivery engine uses for SMTP replies ([`crate::bounce`]).
//!
//! Pure and total: any bytes parse (malformed MIME yields fewer findings, never a
//! panic; see the property test). Used by the inbound MX and by
//! `postwerk bounce classify`.
//!
//! Order of evidence: a `message/delivery-status` part, then a
//! `message/feedback-report` part (either also inside a forwarded message), then a
//! failure notice recognised from its sender, subject and text, then auto-reply
//! markers. Anything else is not a report.
//!
//! Privacy: findings hold addresses and server texts; callers seal them, never log.
//!
//! Pure: no store, no services, no I/O. The delivery engine (postwerk-mta) classifies
//! replies with [`bounce`] and writes return paths with [`verp`]; the inbound MX reads
//! what comes back with [`parse`] and [`verp_tokens`].
//!
//! - [`bounce`]: the bounce classifier (SMTP replies, DSN statuses, local failures) and
//!   its rules file.
//! - [`verp`]: VERP return paths (`b+<recipient id>-<tag>@<bounce domain>`).
//! - [`fields`]: the field blocks of DSN and ARF reports.
//! - `text`: failure notices written for people, and auto-replies.
//! - this file: [`Finding`]s, [`parse`] and [`verp_tokens`].

pub mod bounce;
pub mod fields;
mod text;
pub mod verp;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use postwerk_core::model::BounceReason;
use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;

use fields::{Group, parse_groups, strip_type};

/// How deep forwarded messages are searched for a report.
const MAX_DEPTH: usize = 3;

/// What a report says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Delivery failed for good.
    Bounced,
    /// Delivery is delayed; the remote MTA keeps trying.
    Deferred,
    /// The recipient (or their provider) reported the message as abuse.
    Complained,
    /// An automatic reply (vacation, out of office).
    Autoreply,
}

/// Where a finding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A `message/delivery-status` part.
    Dsn,
    /// A `message/feedback-report` part.
    Arf,
    /// A failure notice without a DSN part, read heuristically.
    Text,
    /// Auto-reply headers or subject.
    Autoreply,
}

/// What a report says about one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What happened.
    pub kind: Kind,
    /// The address as the report names it: the DSN's Original-Recipient (what was
    /// sent to) or else Final-Recipient; ARF's Original-Rcpt-To; the address in a
    /// notice's text; an auto-reply's From.
    pub recipient: Option<String>,
    /// The DSN's Final-Recipient when it differs from `recipient`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_recipient: Option<String>,
    /// RFC 3463 status, e.g. `5.1.1`.
    pub status: Option<String>,
    /// The remote server's diagnostic (DSN Diagnostic-Code without its type, or the
    /// notice's reply line).
    pub reply: Option<String>,
    /// The remote MTA named by the DSN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_mta: Option<String>,
    /// The bounce reason (`feedback` for complaints, `vacation` for auto-replies).
    pub reason: BounceReason,
    /// A permanent failure of a bad address: suppress it.
    pub hardbounce: bool,
    /// ARF Feedback-Type (`abuse`, `fraud`, …), complaints only.
    pub feedback_type: Option<String>,
    /// Where the finding came from.
    pub source: Source,
}

impl Finding {
    fn new(kind: Kind, source: Source, reason: BounceReason) -> Self {
        Finding {
            kind,
            recipient: None,
            final_recipient: None,
            status: None,
            reply: None,
            remote_mta: None,
            reason,
            hardbounce: false,
            feedback_type: None,
            source,
        }
    }
}

/// Parses one received message. Findings are de-duplicated (some MTAs repeat a
/// recipient's block); an empty list means it is not a report.
pub fn parse(raw: &[u8]) -> Vec<Finding> {
    let raw = skip_mbox_line(raw);
    let Some(message) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let mut findings = structured(&message, 0);
    if findings.is_empty() {
        findings = text::failure_notice(&message);
    }
    if findings.is_empty() {
        findings.extend(text::autoreply(&message));
    }
    let mut seen = Vec::with_capacity(findings.len());
    findings.retain(|f| {
        let key = (f.kind, f.recipient.clone(), f.final_recipient.clone());
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    findings
}

/// VERP return paths (`b+<recipient id>-<tag>@domain`) quoted anywhere in the
/// message, including the headers of a returned original (ARF reports carry its
/// Return-Path or Original-Mail-From): `(recipient id, tag)`, lower case, unique.
pub fn verp_tokens(raw: &[u8]) -> Vec<(String, String)> {
    static VERP: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
        regex::bytes::Regex::new(r"(?i)\bb\+(rcpt_[0-9a-z]{26})-([0-9a-f]{10})@")
            .expect("valid regex")
    });
    let mut tokens: Vec<(String, String)> = Vec::new();
    for c in VERP.captures_iter(raw) {
        let token = (
            String::from_utf8_lossy(&c[1]).to_ascii_lowercase(),
            String::from_utf8_lossy(&c[2]).to_ascii_lowercase(),
        );
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    tokens
}

/// A leading mbox separator (`From sender date`) is not a header.
fn skip_mbox_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match raw.iter().position(|&b| b == b'\n') {
            Some(i) => &raw[i + 1..],
            None => &[],
        }
    } else {
        raw
    }
}

/// Findings from DSN and ARF parts of `message`, else of a message it forwards.
fn structured(message: &Message<'_>, depth: usize) -> Vec<Finding> {
    let mut dsn = Vec::new();
    let mut arf = Vec::new();
    let mut nested = Vec::new();
    for part in &message.parts {
        let (ctype, subtype) = part
            .content_type()
            .map(|c| {
                (
                    c.ctype().to_ascii_lowercase(),
                    c.subtype().unwrap_or("").to_ascii_lowercase(),
                )
            })
            .unwrap_or_default();
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                dsn.extend(delivery_status(&String::from_utf8_lossy(part.contents())));
            }
            ("message", "feedback-report") => {
                arf.push(parse_groups(&String::from_utf8_lossy(part.contents())));
            }
            _ => {
                if let PartType::Message(inner) = &part.body {
                    nested.push(inner);
                }
            }
        }
    }
    if !dsn.is_empty() {
        if dsn.iter().any(|f| f.reply.is_none()) {
            let explanations = text::explanations(message);
            for f in dsn.iter_mut().filter(|f| f.reply.is_none()) {
                explain(f, &explanations);
            }
        }
        return dsn;
    }
    if let Some(groups) = arf.first() {
        let returned = nested.first().copied();
        return vec![feedback(groups, returned, message)];
    }
    if depth < MAX_DEPTH {
        for inner in nested {
            let found = structured(inner, depth + 1);
            if !found.is_empty() {
                return found;
            }
        }
    }
    Vec::new()
}

/// The per-recipient groups of a `message/delivery-status` body.
fn delivery_status(body: &str) -> Vec<Finding> {
    parse_groups(body)
        .iter()
        .filter(|g| g.get("Final-Recipient").is_some() || g.get("Original-Recipient").is_some())
        .filter_map(recipient_group)
        .collect()
}

fn recipient_group(g: &Group) -> Option<Finding> {
    static STATUS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[245]\.\d{1,3}\.\d{1,3}").expect("valid regex"));
    let status = g
        .get("Status")
        .and_then(|s| STATUS.find(s))
        .map(|m| m.as_str().to_string());
    let action = g.get("Action").unwrap_or("").to_ascii_lowercase();
    let kind = match action.split_whitespace().next().unwrap_or("") {
        "failed" | "error" | "failure" => Kind::Bounced,
        "delayed" => Kind::Deferred,
        "delivered" | "relayed" | "expanded" => return None,
        // No (known) action: the status class decides.
        _ => match status.as_deref().map(|s| s.as_bytes()[0]) {
            Some(b'5') => Kind::Bounced,
            Some(b'4') => Kind::Deferred,
            _ => return None,
        },
    };
    let diagnostic = g.get("Diagnostic-Code").map(strip_type);
    let classified = bounce::classify(0, status.as_deref(), diagnostic.unwrap_or(""));
    let mut f = Finding::new(kind, Source::Dsn, classified.reason);
    f.hardbounce = kind == Kind::Bounced && classified.hard;
    let original = g.address("Original-Recipient").filter(|a| a.contains('@'));
    let final_rcpt = g.address("Final-Recipient").filter(|a| a.contains('@'));
    f.final_recipient = final_rcpt.clone().filter(|fr| {
        original
            .as_ref()
            .is_some_and(|o| !o.eq_ignore_ascii_case(fr))
    });
    f.recipient = original.or(final_rcpt);
    f.status = status;
    f.reply = diagnostic.map(str::to_string);
    f.remote_mta = g.get("Remote-MTA").map(|m| strip_type(m).to_string());
    Some(f)
}

/// Fills in a DSN recipient's missing Diagnostic-Code from what the report's
/// human-readable part says about that recipient, and classifies again.
fn explain(f: &mut Finding, explanations: &[(String, String)]) {
    let Some(recipient) = f.final_recipient.as_ref().or(f.recipient.as_ref()) else {
        return;
    };
    let Some((_, text)) = explanations
        .iter()
        .find(|(r, _)| r.eq_ignore_ascii_case(recipient))
    else {
        return;
    };
    let text = text.clone();
    let classified = bounce::classify(0, f.status.as_deref(), &text);
    f.reason = classified.reason;
    f.hardbounce = f.kind == Kind::Bounced && classified.hard;
    f.reply = Some(text);
}

/// A complaint from an ARF report (the first group holds all fields).
fn feedback(groups: &[Group], returned: Option<&Message<'_>>, report: &Message<'_>) -> Finding {
    let fields = groups.first().cloned().unwrap_or_default();
    let mut f = Finding::new(Kind::Complained, Source::Arf, BounceReason::Feedback);
    f.feedback_type = Some(
        fields
            .get("Feedback-Type")
            .unwrap_or("abuse")
            .to_ascii_lowercase(),
    );
    f.recipient = fields
        .address("Original-Rcpt-To")
        .filter(|a| text::is_address(a))
        .or_else(|| {
            // Without Original-Rcpt-To, the returned message's (or headers') To.
            let to = returned
                .map(|m| {
                    m.to()
                        .and_then(|a| a.first()?.address().map(str::to_string))
                })
                .unwrap_or_else(|| text::returned_headers_to(report));
            to.filter(|a| text::is_address(a))
        });
    f
}

#[cfg(test)]
mod tests;
