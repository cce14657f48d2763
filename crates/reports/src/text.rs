//! Reports without a machine-readable part: failure notices written for people
//! (qmail, old Exim and Postfix, webmail providers) and auto-replies.
//!
//! A failure notice is recognised by its sender (MAILER-DAEMON, postmaster) or its
//! subject. Its text is cut where the returned message starts, split at each
//! recipient address it names, and each piece's first SMTP reply (code, enhanced
//! status and the text that follows) is classified; a piece without one is
//! classified by its words alone.

use std::sync::LazyLock;

use mail_parser::{Message, MimeHeaders, PartType};
use postwerk_core::model::BounceReason;
use regex::Regex;

use super::{Finding, Kind, Source, fields};
use crate::bounce;

/// Only this much of a notice's text is read (the explanation comes first).
const MAX_TEXT: usize = 16 * 1024;
/// Longest reply text kept for a recipient.
const MAX_REPLY: usize = 500;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid regex")
}

static DAEMON: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^(mailer[-_]?daemon|mail[-_]?daemon|postmaster|mail[-_ ]?delivery[-_ ]?(system|subsystem)?|mdaemon|nobody)$",
    )
});
static FAILURE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(undeliver|non[- ]?deliver|delivery (status notification|failure|failed|problem|report|notification)|mail delivery (failed|failure|error|system)|returned mail|return(ed|ing) (message|mail) to sender|failure notice|could not (be )?deliver|delivery has failed|not delivered|mail system error|message delayed|delivery delayed|warning: (could not send|message)|delayed mail|unzustellbar|nicht zustellbar|non remis|no entregado)",
    )
});
static DELAY_SUBJECT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)(\bdelay|\bwarning\b|\bdeferred\b|\(delay\))"));
static FAILED_SUBJECT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)(fail|undeliver|returned|not delivered|could not)"));
static DELAY_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(has not yet been delivered|not been delivered yet|will (continue to )?(retry|try)|delivery attempts will continue|still (being )?(retried|trying)|will be retried|temporarily deferred)",
    )
});
/// Where the returned message (or its headers) starts inside a notice's text.
static RETURNED: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?im)^[ \t>|-]*(.*\bbelow this line is a copy|.*copy of (the |your )?(original )?message|.*(original|returned|unsent) message (follows|headers|below)|-+ *(original|returned|unsent) (message|mail)|.*message headers? follows?|.*headers of the (original|returned|unsent) message|received: from )",
    )
});
/// Lines that quote the original message's summary, not a failed recipient.
static SUMMARY_LINE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^\s*(to|from|subject|sent|date|cc|reply-to|sender)\s*:"));
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)",
    )
});
/// An SMTP reply inside a text: a 4xx/5xx code (after a separator, followed by a
/// space, hyphen or line end), else an RFC 3463 status (`5.1.1`, `#5.1.1`).
static CODE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?m)(?:^|[\s:(\[])([45][0-5][0-9])(?:[ -]|$)"));
static ENHANCED: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?:^|[^0-9.])([245]\.[0-9]{1,3}\.[0-9]{1,3})(?:[^0-9.]|$)"));
static AUTO_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)^\s*(auto(matic|matische)?[ -]?(reply|response|answer|antwort|svar)|auto:|out of (the )?office|ooo\b|abwesen|vacation|on (leave|holiday|vacation)|away from|réponse automatique|respuesta automática|risposta automatica|automaattinen vastaus|automatisch antwoord)",
    )
});

/// The findings of a failure (or delay) notice without a DSN part — one per
/// recipient it names — if `message` is one; else none.
pub(super) fn failure_notice(message: &Message<'_>) -> Vec<Finding> {
    let subject = message.subject().unwrap_or("");
    let sender = message
        .from()
        .and_then(|a| a.first()?.address().map(str::to_string))
        .unwrap_or_default();
    let sender_local = sender.split('@').next().unwrap_or("").trim();
    let from_daemon = DAEMON.is_match(sender_local)
        || message
            .from()
            .and_then(|a| {
                a.first()?
                    .name
                    .as_deref()
                    .map(|n| DAEMON.is_match(n.trim()))
            })
            .unwrap_or(false);
    if !from_daemon && !FAILURE_SUBJECT.is_match(subject) {
        return Vec::new();
    }
    let text = notice_text(message);
    let kind = if is_delay(subject, &text) {
        Kind::Deferred
    } else {
        Kind::Bounced
    };
    pieces(message, &text)
        .into_iter()
        .map(|(recipient, piece)| read_piece(piece, recipient, kind))
        .collect()
}

/// What the human-readable part of a report says about each recipient it names
/// (from where the address is named to where the next one is), white space
/// collapsed: the explanations for DSN recipient groups without a Diagnostic-Code.
pub(super) fn explanations(message: &Message<'_>) -> Vec<(String, String)> {
    let text = notice_text(message);
    pieces(message, &text)
        .into_iter()
        .filter_map(|(r, piece)| {
            let r = r?;
            let at = piece.find(r.as_str()).unwrap_or(0);
            let explanation = collapse(&piece[at..], MAX_REPLY);
            Some((r, explanation))
        })
        .collect()
}

/// The notice text split at each recipient it names (see [`per_recipient`]).
fn pieces<'t>(message: &Message<'_>, text: &'t str) -> Vec<(Option<String>, &'t str)> {
    let mut own = own_addresses(message);
    if let Some(sender) = message
        .from()
        .and_then(|a| a.first()?.address().map(str::to_ascii_lowercase))
    {
        own.push(sender);
    }
    per_recipient(text, &own)
}

fn is_delay(subject: &str, text: &str) -> bool {
    if FAILED_SUBJECT.is_match(subject) && !subject.to_ascii_lowercase().contains("delay") {
        return false;
    }
    // The first 2000 bytes, cut on a character boundary (a notice in another language
    // has multi-byte characters anywhere).
    DELAY_SUBJECT.is_match(subject) || DELAY_TEXT.is_match(&text[..text.floor_char_boundary(2000)])
}

/// The notice's own text: its text parts (not the returned message, not returned
/// headers), cut where a returned message is quoted inline.
fn notice_text(message: &Message<'_>) -> String {
    let mut text = String::new();
    for part in &message.parts {
        let is_headers = part.content_type().is_some_and(|c| {
            c.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
        });
        match &part.body {
            PartType::Text(t) if !is_headers => {
                text.push_str(t);
                text.push('\n');
            }
            PartType::Message(_) => break,
            _ => {}
        }
        if text.len() > MAX_TEXT {
            break;
        }
    }
    if text.trim().is_empty()
        && let Some(body) = message.body_text(0)
    {
        text.push_str(&body);
    }
    text.truncate(text.floor_char_boundary(MAX_TEXT));
    if let Some(m) = RETURNED.find(&text) {
        text.truncate(m.start());
    }
    text
}

/// Addresses of the notice itself (its To, Return-Path, Reply-To): the original
/// sender, never the failed recipient.
fn own_addresses(message: &Message<'_>) -> Vec<String> {
    let mut own = Vec::new();
    for list in [message.to(), message.reply_to(), message.cc()]
        .into_iter()
        .flatten()
    {
        for a in list.iter() {
            if let Some(addr) = a.address() {
                own.push(addr.to_ascii_lowercase());
            }
        }
    }
    if let Some(rp) = message.return_path().as_text() {
        own.push(rp.trim_matches(['<', '>', ' ']).to_ascii_lowercase());
    }
    own
}

/// Splits the text at each distinct address it names (not the notice's own, not a
/// daemon's, not the sender's, not a VERP return path). The first piece starts at
/// the beginning (the explanation may come first: "… failed: <addr>").
fn per_recipient<'t>(text: &'t str, own: &[String]) -> Vec<(Option<String>, &'t str)> {
    let mut starts: Vec<(usize, String)> = Vec::new();
    for m in ADDRESS.find_iter(text) {
        let line_start = text[..m.start()].rfind('\n').map_or(0, |i| i + 1);
        let before = text[line_start..m.start()].to_ascii_lowercase();
        let names_sender = before.trim_end_matches(['<', ' ', ':']).ends_with("from")
            && !before
                .trim_end_matches(['<', ' ', ':'])
                .ends_with("expanded from");
        if names_sender || SUMMARY_LINE.is_match(&text[line_start..m.start()]) {
            continue;
        }
        let mut addr = m.as_str().trim_matches('.');
        // X.400 gateways write `SMTP=user@example.com`.
        if let Some(rest) = addr
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("smtp="))
            .map(|p| &addr[p.len()..])
        {
            addr = rest;
        }
        let addr = addr.to_string();
        let lower = addr.to_ascii_lowercase();
        let local = lower.split('@').next().unwrap_or("");
        if own.contains(&lower)
            || DAEMON.is_match(local)
            || local.starts_with("b+rcpt_")
            || starts.iter().any(|(_, a)| a.eq_ignore_ascii_case(&addr))
        {
            continue;
        }
        starts.push((m.start(), addr));
    }
    if starts.is_empty() {
        return vec![(None, text)];
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|(s, _)| *s)
        .chain([text.len()])
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .enumerate()
        .map(|(i, ((start, addr), end))| {
            let from = if i == 0 { 0 } else { start };
            (Some(addr), &text[from..end])
        })
        .collect()
}

/// Classifies one recipient's piece of a notice.
fn read_piece(piece: &str, recipient: Option<String>, kind: Kind) -> Finding {
    let code = CODE.captures(piece).map(|c| c.get(1).expect("group"));
    let enhanced = ENHANCED.captures(piece).map(|c| c.get(1).expect("group"));
    // The reply: from the code on (`550 5.1.1 …`), or the whole line that holds a
    // bare enhanced status (`Sorry, no mailbox here by that name. (#5.1.1)`), or
    // without either, what the notice says.
    let start = match (code, enhanced) {
        (Some(c), Some(e)) if e.start() < c.start() => line_start(piece, e.start()),
        (Some(c), _) => c.start(),
        (None, Some(e)) => line_start(piece, e.start()),
        (None, None) => 0,
    };
    let reply = Some(collapse(&piece[start..], MAX_REPLY)).filter(|r| !r.is_empty());
    let code_value: u16 = code
        .and_then(|c| c.as_str().parse().ok())
        .unwrap_or(match kind {
            // A final failure notice without a code is a permanent failure; its words
            // decide whether the address is bad.
            Kind::Bounced if enhanced.is_none() => 550,
            _ => 0,
        });
    let code_value = match kind {
        Kind::Deferred => 0,
        _ => code_value,
    };
    let status = enhanced.map(|e| e.as_str().to_string());
    let words = collapse(piece, bounce::MAX_TEXT);
    let classified = match &reply {
        Some(r) if code.is_some() || enhanced.is_some() => {
            bounce::classify(code_value, status.as_deref(), &format!("{r} {words}"))
        }
        _ => bounce::classify(code_value, status.as_deref(), &words),
    };
    let mut f = Finding::new(kind, Source::Text, classified.reason);
    f.hardbounce = kind == Kind::Bounced && classified.hard;
    f.recipient = recipient;
    f.status = status;
    f.reply = reply;
    f
}

/// Where the line holding byte `at` starts.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// White space collapsed, at most `max` bytes (on a character boundary).
fn collapse(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for word in text.split_whitespace() {
        if out.len() + word.len() + 1 > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// An automatic reply (RFC 3834 `Auto-Submitted`, the common vendor headers, or an
/// out-of-office subject), if `message` is one.
pub(super) fn autoreply(message: &Message<'_>) -> Option<Finding> {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let auto_submitted = header("Auto-Submitted").is_some_and(|v| !v.starts_with("no"));
    let vendor = [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Vacation",
    ]
    .iter()
    .any(|h| header(h).is_some());
    let precedence = header("Precedence").is_some_and(|v| v == "auto_reply");
    let subject = AUTO_SUBJECT.is_match(message.subject().unwrap_or(""));
    if !(auto_submitted || vendor || precedence || subject) {
        return None;
    }
    let mut f = Finding::new(Kind::Autoreply, Source::Autoreply, BounceReason::Vacation);
    f.recipient = message
        .from()
        .and_then(|a| a.first()?.address().map(str::to_string));
    f.reply = message.subject().map(|s| collapse(s, MAX_REPLY));
    Some(f)
}

/// True for something that looks like a mailbox (`local@domain`), not a redaction
/// placeholder.
pub(super) fn is_address(a: &str) -> bool {
    let a = a.trim();
    a.contains('@')
        && !a.contains(char::is_whitespace)
        && !a.to_ascii_lowercase().contains("redacted")
}

/// The To address of a returned `text/rfc822-headers` part.
pub(super) fn returned_headers_to(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| {
        let is_headers = part.content_type().is_some_and(|c| {
            c.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
        });
        if !is_headers {
            return None;
        }
        let text = String::from_utf8_lossy(part.contents()).into_owned();
        let groups = fields::parse_groups(&text);
        let to = groups
            .iter()
            .find_map(|g| g.get("To").map(str::to_string))?;
        ADDRESS.find(&to).map(|m| m.as_str().to_string())
    })
}
