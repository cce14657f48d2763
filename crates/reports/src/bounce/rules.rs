//! The rules: `rules.toml` read with serde, checked, and compiled into per-rule filters
//! plus one [`RegexSet`] over all patterns.

use std::collections::HashSet;
use std::fmt;

use postwerk_core::model::BounceReason;
use regex::bytes::{RegexSet, RegexSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use super::{DFA_CACHE, Reply, number};

/// A `codes` entry: `"550"`, `"5xx"`, or `"none"` (no code and no enhanced status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeFilter {
    None,
    Class(u8),
    Exact(u16),
}

impl CodeFilter {
    pub(super) fn parse(s: &str) -> Option<Self> {
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

    pub(super) fn matches(self, reply: &Reply<'_>) -> bool {
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
pub(super) enum EnhancedFilter {
    None,
    Code {
        class: Option<u8>,
        subject: u16,
        detail: Option<u16>,
    },
}

impl EnhancedFilter {
    pub(super) fn parse(s: &str) -> Option<Self> {
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

    pub(super) fn matches(self, reply: &Reply<'_>) -> bool {
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
pub(super) struct Rule {
    pub(super) name: String,
    pub(super) reason: BounceReason,
    pub(super) codes: Vec<CodeFilter>,
    pub(super) enhanced: Vec<EnhancedFilter>,
    /// Index into the [`RegexSet`].
    pub(super) pattern: Option<usize>,
}

impl Rule {
    fn filters_match(&self, reply: &Reply<'_>) -> bool {
        (self.codes.is_empty() || self.codes.iter().any(|c| c.matches(reply)))
            && (self.enhanced.is_empty() || self.enhanced.iter().any(|e| e.matches(reply)))
    }
}

/// The ordered rules and their patterns.
#[derive(Debug)]
pub(super) struct RuleSet {
    pub(super) rules: Vec<Rule>,
    pub(super) set: RegexSet,
}

pub(super) fn set_builder<I, S>(patterns: I) -> RegexSetBuilder
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
    pub(super) fn empty() -> Self {
        Self {
            rules: Vec::new(),
            set: RegexSet::empty(),
        }
    }

    /// Parses and compiles a rules file.
    pub(super) fn parse(src: &str) -> Result<Self, String> {
        let mut names = HashSet::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut rules = Vec::new();
        for (line, raw) in read_rules(src)? {
            let name = raw.name;
            let err = |msg: &dyn fmt::Display| format!("rule `{name}` (line {line}): {msg}");
            if !names.insert(name.clone()) {
                return Err(err(&"duplicate name"));
            }
            let reason = raw
                .reason
                .parse::<BounceReason>()
                .map_err(|_| err(&format_args!("unknown reason `{}`", raw.reason)))?;
            let codes = filters(raw.codes, CodeFilter::parse)
                .map_err(|e| err(&format_args!("codes: {e}")))?;
            let enhanced = filters(raw.enhanced, EnhancedFilter::parse)
                .map_err(|e| err(&format_args!("enhanced: {e}")))?;
            let pattern = match raw.pattern.map(Strings::into_vec) {
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
    pub(super) fn find(&self, reply: &Reply<'_>) -> Option<&Rule> {
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
fn filters<T>(list: Option<Strings>, parse: fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    let Some(list) = list.map(Strings::into_vec) else {
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
// The rules file
// ---------------------------------------------------------------------------------------

/// The rules file: `[[rule]]` tables and nothing else. Each table is deserialised into a
/// [`RawRule`] on its own, once its line and name are known, so that every error names
/// the rule it is about.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<Spanned<toml::Table>>,
}

/// One `[[rule]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) name: String,
    pub(super) reason: String,
    pub(super) codes: Option<Strings>,
    pub(super) enhanced: Option<Strings>,
    pub(super) pattern: Option<Strings>,
}

/// A string, or an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub(super) enum Strings {
    One(String),
    Many(Vec<String>),
}

impl Strings {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(list) => list,
        }
    }
}

/// Reads the `[[rule]]` tables of a rules file, in order, each with its line number.
pub(super) fn read_rules(src: &str) -> Result<Vec<(usize, RawRule)>, String> {
    let file: RulesFile = toml::from_str(src).map_err(|e| e.to_string().trim_end().to_owned())?;
    file.rule
        .into_iter()
        .map(|table| {
            let line = 1 + src.as_bytes()[..table.span().start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            let table = table.into_inner();
            let rule = match table.get("name").and_then(toml::Value::as_str) {
                Some(name) => format!("rule `{name}` (line {line})"),
                None => format!("rule at line {line}"),
            };
            let raw = table.try_into().map_err(|e| {
                // "invalid type: …\nin `codes`\n" → one line.
                let e = e.to_string();
                format!("{rule}: {}", e.trim_end().replace('\n', " "))
            })?;
            Ok((line, raw))
        })
        .collect()
}
