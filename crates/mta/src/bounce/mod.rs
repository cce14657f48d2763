//! Bounce classification: one SMTP reply (code, RFC 3463 enhanced status, text), or a
//! DSN status with its diagnostic text, or a failure text the delivery engine produced
//! itself (`DNS: …`, connection errors), becomes a [`BounceReason`] and a hard/soft flag.
//!
//! The rules are data: `rules.toml` next to this file, embedded at compile time and
//! compiled once (on first use) into one [`RegexSet`] plus per-rule filters. Rules are
//! ordered and the first that matches wins; see the header of `rules.toml` for the
//! format and the ordering principles. A unit test loads the embedded file, so a broken
//! rules file fails `cargo test`, never a delivery worker.
//!
//! Each call runs at most one `RegexSet` search over at most [`MAX_TEXT`] bytes of the
//! text, and allocates nothing of its own: it is meant for the delivery hot path.
//!
//! Privacy: the text may contain addresses. Nothing here logs it.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use postwerk_core::model::BounceReason;
use regex::bytes::{RegexSet, RegexSetBuilder};

#[cfg(test)]
mod tests;

/// The rules, embedded at compile time.
const RULES_TOML: &str = include_str!("rules.toml");

/// Only this many leading bytes of the text are matched (servers' replies can run to
/// hundreds of kilobytes; the explanation is always near the start).
pub const MAX_TEXT: usize = 4096;

/// Capacity of the lazy DFA's per-thread cache (allocated on demand). All patterns run
/// in one overlapping search, which needs ~3 MiB of states with today's rules; at
/// regex's 2 MiB default the cache thrashes and regex falls back to a ~25× slower
/// engine. The `fast_enough` test guards this as rules are added.
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

// ---------------------------------------------------------------------------------------
// Compiled rules
// ---------------------------------------------------------------------------------------

/// A `codes` entry: `"550"`, `"5xx"`, or `"none"` (no code and no enhanced status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeFilter {
    None,
    Class(u8),
    Exact(u16),
}

impl CodeFilter {
    fn parse(s: &str) -> Option<Self> {
        if s == "none" {
            return Some(Self::None);
        }
        let b = s.as_bytes();
        if b.len() == 3 && matches!(b[0], b'2' | b'4' | b'5') {
            if b[1..].eq_ignore_ascii_case(b"xx") {
                return Some(Self::Class(b[0] - b'0'));
            }
            if b[1..].iter().all(u8::is_ascii_digit) {
                return s.parse().ok().map(Self::Exact);
            }
        }
        None
    }

    fn matches(self, reply: &Reply<'_>) -> bool {
        match self {
            Self::None => reply.class == 0,
            Self::Class(c) => reply.class == c,
            Self::Exact(code) => reply.code == code,
        }
    }
}

/// An `enhanced` entry: `"5.1.1"`, `"x.1.1"` (any class), `"5.7"` / `"5.7."` (any
/// detail), or `"none"` (no enhanced status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnhancedFilter {
    None,
    Code {
        class: Option<u8>,
        subject: u16,
        detail: Option<u16>,
    },
}

impl EnhancedFilter {
    fn parse(s: &str) -> Option<Self> {
        if s == "none" {
            return Some(Self::None);
        }
        let s = s.strip_suffix('.').unwrap_or(s);
        let mut parts = s.split('.');
        let class = match parts.next()? {
            "x" | "X" => None,
            c @ ("2" | "4" | "5") => Some(c.as_bytes()[0] - b'0'),
            _ => return None,
        };
        let subject = number(parts.next()?)?;
        let detail = match parts.next() {
            Some(d) => Some(number(d)?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self::Code {
            class,
            subject,
            detail,
        })
    }

    fn matches(self, reply: &Reply<'_>) -> bool {
        match (self, reply.enhanced) {
            (Self::None, e) => e.is_none(),
            (Self::Code { .. }, None) => false,
            (
                Self::Code {
                    class,
                    subject,
                    detail,
                },
                Some(e),
            ) => {
                class.is_none_or(|c| c == e.class)
                    && subject == e.subject
                    && detail.is_none_or(|d| d == e.detail)
            }
        }
    }
}

/// One rule: all its filters must match (each list matches when any entry does).
#[derive(Debug)]
struct Rule {
    name: String,
    reason: BounceReason,
    codes: Vec<CodeFilter>,
    enhanced: Vec<EnhancedFilter>,
    /// Index into the [`RegexSet`].
    pattern: Option<usize>,
}

impl Rule {
    fn filters_match(&self, reply: &Reply<'_>) -> bool {
        (self.codes.is_empty() || self.codes.iter().any(|c| c.matches(reply)))
            && (self.enhanced.is_empty() || self.enhanced.iter().any(|e| e.matches(reply)))
    }
}

/// The ordered rules and their patterns.
#[derive(Debug)]
struct RuleSet {
    rules: Vec<Rule>,
    set: RegexSet,
}

fn set_builder<I, S>(patterns: I) -> RegexSetBuilder
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut builder = RegexSetBuilder::new(patterns);
    // ASCII case folding, `\s`/`\w`/`\b` are ASCII: replies are ASCII in practice, and
    // this needs none of regex's Unicode tables.
    builder
        .case_insensitive(true)
        .unicode(false)
        .dfa_size_limit(DFA_CACHE);
    builder
}

impl RuleSet {
    fn empty() -> Self {
        Self {
            rules: Vec::new(),
            set: RegexSet::empty(),
        }
    }

    /// Parses and compiles a rules file.
    fn parse(src: &str) -> Result<Self, String> {
        let mut names = HashSet::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut rules = Vec::new();
        for raw in read_rules(src)? {
            let line = raw.line;
            let name = raw
                .name
                .ok_or_else(|| format!("rule at line {line}: missing `name`"))?;
            let err = |msg: &dyn fmt::Display| format!("rule `{name}` (line {line}): {msg}");
            if !names.insert(name.clone()) {
                return Err(err(&"duplicate name"));
            }
            let reason = raw.reason.ok_or_else(|| err(&"missing `reason`"))?;
            let reason = reason
                .parse::<BounceReason>()
                .map_err(|_| err(&format_args!("unknown reason `{reason}`")))?;
            let codes = filters(raw.codes, CodeFilter::parse)
                .map_err(|e| err(&format_args!("codes: {e}")))?;
            let enhanced = filters(raw.enhanced, EnhancedFilter::parse)
                .map_err(|e| err(&format_args!("enhanced: {e}")))?;
            let pattern = match raw.pattern {
                None => None,
                Some(alternatives) => {
                    if alternatives.is_empty() || alternatives.iter().any(String::is_empty) {
                        return Err(err(&"empty pattern"));
                    }
                    let pattern = if alternatives.len() == 1 {
                        alternatives.into_iter().next().unwrap_or_default()
                    } else {
                        alternatives
                            .iter()
                            .map(|a| format!("(?:{a})"))
                            .collect::<Vec<_>>()
                            .join("|")
                    };
                    if let Err(e) = set_builder([&pattern]).build() {
                        return Err(err(&format_args!("pattern: {e}")));
                    }
                    patterns.push(pattern);
                    Some(patterns.len() - 1)
                }
            };
            if codes.is_empty() && enhanced.is_empty() && pattern.is_none() {
                return Err(err(
                    &"no `codes`, `enhanced` or `pattern`: it would match everything",
                ));
            }
            rules.push(Rule {
                name,
                reason,
                codes,
                enhanced,
                pattern,
            });
        }
        let set = set_builder(&patterns)
            .build()
            .map_err(|e| format!("compiling the rule set: {e}"))?;
        Ok(Self { rules, set })
    }

    /// The first rule that matches, running the regex set at most once.
    fn find(&self, reply: &Reply<'_>) -> Option<&Rule> {
        let mut hits = None;
        for rule in &self.rules {
            if !rule.filters_match(reply) {
                continue;
            }
            match rule.pattern {
                None => return Some(rule),
                Some(i) => {
                    let hits = hits.get_or_insert_with(|| self.set.matches(reply.text));
                    if !hits.matched_any() {
                        // Only pattern-free rules can still match.
                        continue;
                    }
                    if hits.matched(i) {
                        return Some(rule);
                    }
                }
            }
        }
        None
    }
}

/// Parses a filter list; an explicitly empty list is an error (it could never match).
fn filters<T>(list: Option<Vec<String>>, parse: fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    if list.is_empty() {
        return Err("empty list".into());
    }
    list.iter()
        .map(|s| parse(s).ok_or_else(|| format!("invalid entry `{s}`")))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The rules file: a strict TOML subset
// ---------------------------------------------------------------------------------------
//
// Only what `rules.toml` needs: `[[rule]]` headers; `key = value` where the value is a
// basic string ("…", escapes \\ \" \n \t \r), a literal string ('…', the natural choice for
// regular expressions) or an array of those (may span lines, trailing comma allowed);
// `#` comments; blank lines. Anything else is an error with its line number.

/// One `[[rule]]` table as read.
#[derive(Debug, Default)]
struct RawRule {
    line: usize,
    name: Option<String>,
    reason: Option<String>,
    codes: Option<Vec<String>>,
    enhanced: Option<Vec<String>>,
    pattern: Option<Vec<String>>,
}

enum Value {
    Str(String),
    List(Vec<String>),
}

impl Value {
    fn into_str(self) -> Result<String, String> {
        match self {
            Self::Str(s) => Ok(s),
            Self::List(_) => Err("expected a string, not an array".into()),
        }
    }

    fn into_list(self) -> Vec<String> {
        match self {
            Self::Str(s) => vec![s],
            Self::List(l) => l,
        }
    }
}

impl RawRule {
    fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        fn put<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), String> {
            if slot.is_some() {
                return Err(format!("duplicate key `{key}`"));
            }
            *slot = Some(value);
            Ok(())
        }
        match key {
            "name" => put(&mut self.name, key, value.into_str()?),
            "reason" => put(&mut self.reason, key, value.into_str()?),
            "codes" => put(&mut self.codes, key, value.into_list()),
            "enhanced" => put(&mut self.enhanced, key, value.into_list()),
            "pattern" => put(&mut self.pattern, key, value.into_list()),
            _ => Err(format!("unknown key `{key}`")),
        }
    }
}

struct Reader<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn err(&self, msg: &str) -> String {
        format!("line {}: {msg}", self.line)
    }

    /// Skips spaces, tabs, carriage returns and comments, and newlines if asked to.
    fn skip_blank(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' if newlines => {
                    self.pos += 1;
                    self.line += 1;
                }
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn key(&mut self) -> Result<&'a str, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a key or [[rule]]"));
        }
        Ok(&self.src[start..self.pos])
    }

    fn string(&mut self) -> Result<String, String> {
        let rest = self.rest();
        if rest.starts_with("'''") || rest.starts_with("\"\"\"") {
            return Err(self.err("multi-line strings are not supported"));
        }
        match self.peek() {
            Some(b'\'') => {
                self.pos += 1;
                let start = self.pos;
                loop {
                    match self.peek() {
                        None | Some(b'\n') => return Err(self.err("unterminated string")),
                        Some(b'\'') => break,
                        Some(_) => self.pos += 1,
                    }
                }
                let s = self.src[start..self.pos].to_string();
                self.pos += 1;
                Ok(s)
            }
            Some(b'"') => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    let Some(c) = self.rest().chars().next() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += c.len_utf8();
                    match c {
                        '"' => return Ok(out),
                        '\n' => return Err(self.err("unterminated string")),
                        '\\' => {
                            let escaped = match self.peek() {
                                Some(b'\\') => '\\',
                                Some(b'"') => '"',
                                Some(b'n') => '\n',
                                Some(b't') => '\t',
                                Some(b'r') => '\r',
                                _ => {
                                    return Err(self.err(
                                        "unsupported escape (use a '…' literal string for regexes)",
                                    ));
                                }
                            };
                            self.pos += 1;
                            out.push(escaped);
                        }
                        c => out.push(c),
                    }
                }
            }
            _ => Err(self.err("expected a string or an array of strings")),
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        if self.peek() != Some(b'[') {
            return self.string().map(Value::Str);
        }
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_blank(true);
            if self.peek() == Some(b']') {
                self.pos += 1;
                return Ok(Value::List(items));
            }
            items.push(self.string()?);
            self.skip_blank(true);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                _ => return Err(self.err("expected ',' or ']' in array")),
            }
        }
    }
}

/// Reads the `[[rule]]` tables of a rules file, in order.
fn read_rules(src: &str) -> Result<Vec<RawRule>, String> {
    const HEADER: &str = "[[rule]]";
    let mut r = Reader {
        src,
        pos: 0,
        line: 1,
    };
    let mut rules: Vec<RawRule> = Vec::new();
    loop {
        r.skip_blank(true);
        let Some(c) = r.peek() else { break };
        if c == b'[' {
            if !r.rest().starts_with(HEADER) {
                return Err(r.err("only [[rule]] tables are supported"));
            }
            r.pos += HEADER.len();
            rules.push(RawRule {
                line: r.line,
                ..RawRule::default()
            });
        } else {
            let line = r.line;
            let key = r.key()?;
            r.skip_blank(false);
            if r.peek() != Some(b'=') {
                return Err(r.err("expected '=' after the key"));
            }
            r.pos += 1;
            r.skip_blank(false);
            let value = r.value()?;
            let Some(rule) = rules.last_mut() else {
                return Err(format!("line {line}: `{key}` outside a [[rule]] table"));
            };
            rule.set(key, value)
                .map_err(|e| format!("line {line}: {e}"))?;
        }
        r.skip_blank(false);
        match r.peek() {
            None | Some(b'\n') => {}
            Some(_) => return Err(r.err("unexpected text after the value")),
        }
    }
    Ok(rules)
}
