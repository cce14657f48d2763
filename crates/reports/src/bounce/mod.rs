//! Bounce classification: one SMTP reply (code, RFC 3463 enhanced status, text), or a
//! DSN status with its diagnostic text, or a failure text the delivery engine produced
//! itself (`DNS: …`, connection errors), becomes a [`BounceReason`] and a hard/soft flag.
//!
//! The rules are data: `rules.toml` next to this file, embedded at compile time and
//! compiled once (on first use, by the `rules` submodule) into one
//! [`RegexSet`](regex::bytes::RegexSet) plus per-rule filters. Rules are ordered and the
//! first that matches wins; see the header of `rules.toml` for the format and the
//! ordering principles. A unit test loads the embedded file, so a broken rules file fails
//! `cargo test`, never a delivery worker.
//!
//! Each call runs at most one `RegexSet` search over at most [`MAX_TEXT`] bytes of the
//! text, and allocates nothing of its own: it is meant for the delivery hot path.
//!
//! Privacy: the text may contain addresses. Nothing here logs it.

use std::sync::LazyLock;

use postwerk_core::model::BounceReason;

use self::rules::RuleSet;

mod rules;
#[cfg(test)]
mod tests;

/// The rules, embedded at compile time.
const RULES_TOML: &str = include_str!("rules.toml");

/// Only this many leading bytes of the text are matched (servers' replies can run to
/// hundreds of kilobytes; the explanation is always near the start).
pub const MAX_TEXT: usize = 4096;

/// Capacity of the lazy DFA's per-thread cache (allocated on demand). All patterns run
/// in one overlapping search, which needs ~3 MiB of states with today's rules; at
/// regex's 2 MiB default the cache thrashes and regex falls back to a much slower
/// engine: ~320 µs per classification instead of ~1.7 µs in a release build (~170 µs
/// against ~6 µs unoptimised). Measure with `cargo run --release -p postwerk-reports
/// --example bounce_bench` when adding rules; a sudden drop in throughput means raising
/// this limit or simplifying patterns.
const DFA_CACHE: usize = 8 << 20;

/// The rules, compiled on first use. The embedded file is validated by a unit test; should
/// it fail anyway, every classification falls back to `undefined` rather than panicking.
static RULES: LazyLock<RuleSet> = LazyLock::new(|| match RuleSet::parse(RULES_TOML) {
    Ok(rules) => rules,
    Err(error) => {
        tracing::error!(%error, "bounce rules are invalid; every bounce classifies as undefined");
        RuleSet::empty()
    }
});

/// What a failed (or deferred) delivery means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classification {
    /// Why the delivery failed.
    pub reason: BounceReason,
    /// A hard bounce: the reply was permanent (5xx, or a class-5 enhanced status when no
    /// reply code was given) and the reason says the address itself is bad
    /// ([`BounceReason::is_hard`]). The address should be suppressed. A 4xx is never hard;
    /// neither is a 5xx for a reason such as `mailboxfull` or `blocked`.
    pub hard: bool,
}

/// Classifies one SMTP reply (or DSN status + diagnostic text): code (e.g. 550), enhanced
/// status (e.g. `"5.1.1"`) if any, and text.
///
/// - `code`: the three-digit reply code; `0` when there is none (a local failure, or a DSN
///   that carries only a status). With `0`, a reply code and enhanced status at the very
///   start of `text` (`"550 5.1.1 …"`, `"smtp; 550-5.1.1 …"`) are used.
/// - `enhanced`: the RFC 3463 status; ignored when malformed or when its class contradicts
///   the code's. When `None`, an enhanced status at the start of `text` (after the code,
///   if any) is used.
/// - `text`: the server's text, or the engine's own failure description.
///
/// Local failures (texts starting `DNS: `, connection errors) carry no code; to get a
/// *hard* bounce for a permanent one (null MX, NXDOMAIN), pass `550` as the code, and
/// e.g. `451` for transient ones. With `0` they classify the same but are never hard.
pub fn classify(code: u16, enhanced: Option<&str>, text: &str) -> Classification {
    let reply = Reply::new(code, enhanced, text);
    let reason = RULES
        .find(&reply)
        .map_or(BounceReason::Undefined, |rule| rule.reason);
    Classification {
        reason,
        hard: reply.class == 5 && reason.is_hard(),
    }
}

/// The name of the rule in `rules.toml` that decides [`classify`] for these arguments, or
/// `None` when none matches (the reason is then `undefined`). For diagnostics and support
/// tooling: "why was this classified so?". Costs the same as [`classify`].
pub fn explain(code: u16, enhanced: Option<&str>, text: &str) -> Option<&'static str> {
    let rules: &'static RuleSet = &RULES;
    rules
        .find(&Reply::new(code, enhanced, text))
        .map(|rule| rule.name.as_str())
}

// ---------------------------------------------------------------------------------------
// The reply as the rules see it
// ---------------------------------------------------------------------------------------

/// An RFC 3463 status `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Enhanced {
    class: u8,
    subject: u16,
    detail: u16,
}

impl Enhanced {
    /// Parses exactly `class.subject.detail` (class 2, 4 or 5; one to three digits each).
    fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || class.len() != 1 {
            return None;
        }
        let class = u8::try_from(number(class)?).ok()?;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some(Self {
            class,
            subject: number(subject)?,
            detail: number(detail)?,
        })
    }
}

/// One to three ASCII digits.
fn number(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The normalised input of one classification.
#[derive(Debug, Clone, Copy)]
struct Reply<'a> {
    /// 200..=599, or 0 for none.
    code: u16,
    /// 2, 4 or 5 from the code (or, without a code, from the enhanced status); 0 for none.
    class: u8,
    /// Only when consistent with `class`.
    enhanced: Option<Enhanced>,
    /// At most [`MAX_TEXT`] bytes.
    text: &'a [u8],
}

impl<'a> Reply<'a> {
    fn new(code: u16, enhanced: Option<&str>, text: &'a str) -> Self {
        let mut code = if (200..600).contains(&code) { code } else { 0 };
        let mut enhanced = enhanced.and_then(|e| Enhanced::parse(e.trim()));
        if code == 0 || enhanced.is_none() {
            let (lead_code, lead_enhanced) = leading_status(text);
            if code == 0 {
                code = lead_code;
            }
            if enhanced.is_none() {
                enhanced = lead_enhanced;
            }
        }
        let class = match (code, enhanced) {
            (0, Some(e)) => e.class,
            (0, None) => 0,
            _ => (code / 100) as u8,
        };
        let bytes = text.as_bytes();
        Self {
            code,
            class,
            enhanced: enhanced.filter(|e| e.class == class),
            text: &bytes[..bytes.len().min(MAX_TEXT)],
        }
    }
}

/// A reply code and enhanced status at the start of `text`: `550 5.1.1 …`, `550-5.1.1 …`,
/// `smtp; 550 5.1.1 …` (DSN Diagnostic-Code), `5.1.1 …`. Either may be absent (0 / None).
fn leading_status(text: &str) -> (u16, Option<Enhanced>) {
    let mut s = text.trim_start();
    if s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("smtp;")) {
        s = s[5..].trim_start();
    }
    let mut code = 0;
    let b = s.as_bytes();
    if b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && matches!(b.get(3), None | Some(b' ' | b'-'))
        && let Ok(c) = s[..3].parse::<u16>()
        && (200..600).contains(&c)
    {
        code = c;
        s = s[3..].trim_start_matches([' ', '-']);
    }
    let token = s
        .split(|c: char| c.is_ascii_whitespace())
        .next()
        .unwrap_or("");
    (code, Enhanced::parse(token))
}
