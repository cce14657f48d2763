//! Traffic shaping rules: limits per destination *site* — the set of MX hosts a
//! provider runs, so that every domain it hosts shares one budget. Rules are data (a
//! TOML file), matched by MX host suffix; the built-in file covers the large mailbox
//! providers, and an operator's file (`delivery.shaping`) is matched before it.
//!
//! ```toml
//! [default]                      # any site no rule matches
//! max_connections = 10
//! messages_per_second = 10.0     # 0 = no pacing
//! deliveries_per_connection = 100
//! connections_per_minute = 60    # 0 = no limit
//!
//! [[site]]
//! name = "gmail"
//! mx_suffixes = ["google.com", "googlemail.com"]
//! max_connections = 20           # unset keys take [default]'s values
//! ```

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// The built-in rules.
pub const BUILTIN: &str = include_str!("shaping.toml");

/// Limits of one site (per egress pool: each pool's addresses have their own budget).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Simultaneous connections.
    pub max_connections: usize,
    /// Messages per second over all connections (0: unpaced). The adaptive back-off
    /// lowers it after throttling replies and lets it recover gradually.
    pub messages_per_second: f64,
    /// Messages over one connection before it is closed.
    pub deliveries_per_connection: usize,
    /// New connections per minute (0: unlimited).
    pub connections_per_minute: u32,
}

/// Limits as written in a rule: unset keys fall back to `[default]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialLimits {
    max_connections: Option<usize>,
    messages_per_second: Option<f64>,
    deliveries_per_connection: Option<usize>,
    connections_per_minute: Option<u32>,
}

/// One rule as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteRule {
    name: String,
    mx_suffixes: Vec<String>,
    #[serde(flatten)]
    limits: PartialLimits,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapingFile {
    #[serde(default)]
    default: Option<PartialLimits>,
    #[serde(default)]
    site: Vec<SiteRule>,
}

/// A named site with its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The rule's name (`gmail`), or the MX host set for sites no rule names.
    pub name: String,
    /// Its limits.
    pub limits: Limits,
}

/// The compiled rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaping {
    default: Limits,
    /// (lower-case suffix, site), longest suffix first.
    suffixes: Vec<(String, Site)>,
}

const FALLBACK: Limits = Limits {
    max_connections: 10,
    messages_per_second: 0.0,
    deliveries_per_connection: 100,
    connections_per_minute: 0,
};

impl Shaping {
    /// The built-in rules with an operator's file (`text` read from `path`, named in
    /// errors) matched first; its `[default]`, if any, replaces the built-in one.
    pub fn load(operator: Option<(&str, &str)>) -> Result<Shaping, ConfigError> {
        let builtin = parse("built-in shaping rules", BUILTIN)?;
        let own = operator.map(|(path, text)| parse(path, text)).transpose()?;
        let default_partial = own
            .as_ref()
            .and_then(|f| f.default.clone())
            .or(builtin.default.clone())
            .unwrap_or_default();
        let default = fill(&default_partial, &FALLBACK);
        let mut suffixes = Vec::new();
        for file in own.iter().chain([&builtin]) {
            for rule in &file.site {
                let site = Site {
                    name: rule.name.clone(),
                    limits: fill(&rule.limits, &default),
                };
                for s in &rule.mx_suffixes {
                    suffixes.push((s.trim_end_matches('.').to_ascii_lowercase(), site.clone()));
                }
            }
        }
        // Longest suffix first; among equal ones the operator's (earlier) rule wins.
        suffixes.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Ok(Shaping { default, suffixes })
    }

    /// The site of a destination whose MX hosts are `hosts` (most preferred first):
    /// the first rule matching a host's suffix, else the host set itself.
    pub fn site(&self, hosts: &[&str]) -> Site {
        for host in hosts {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            let hit = self
                .suffixes
                .iter()
                .find(|(suffix, _)| host == *suffix || host.ends_with(&format!(".{suffix}")));
            if let Some((_, site)) = hit {
                return site.clone();
            }
        }
        let mut set: Vec<String> = hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        set.sort();
        set.dedup();
        Site {
            name: set.join(","),
            limits: self.default,
        }
    }
}

fn fill(p: &PartialLimits, base: &Limits) -> Limits {
    Limits {
        max_connections: p.max_connections.unwrap_or(base.max_connections),
        messages_per_second: p.messages_per_second.unwrap_or(base.messages_per_second),
        deliveries_per_connection: p
            .deliveries_per_connection
            .unwrap_or(base.deliveries_per_connection),
        connections_per_minute: p
            .connections_per_minute
            .unwrap_or(base.connections_per_minute),
    }
}

fn parse(path: &str, text: &str) -> Result<ShapingFile, ConfigError> {
    let file: ShapingFile =
        toml::from_str(text).map_err(|e| ConfigError::Parse(format!("{path}: {e}")))?;
    let bad = |key: String, reason: &str| ConfigError::Invalid {
        key: format!("{path}: {key}"),
        reason: reason.into(),
    };
    let limits = file
        .default
        .iter()
        .map(|l| ("default".to_string(), l))
        .chain(
            file.site
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("site[{i}]"), &r.limits)),
        );
    for (at, l) in limits {
        if l.max_connections == Some(0) {
            return Err(bad(format!("{at}.max_connections"), "must be at least 1"));
        }
        if l.deliveries_per_connection == Some(0) {
            return Err(bad(
                format!("{at}.deliveries_per_connection"),
                "must be at least 1",
            ));
        }
        if l.messages_per_second
            .is_some_and(|r| !r.is_finite() || r < 0.0)
        {
            return Err(bad(
                format!("{at}.messages_per_second"),
                "must be 0 (unpaced) or more",
            ));
        }
    }
    for (i, r) in file.site.iter().enumerate() {
        if r.name.trim().is_empty() {
            return Err(bad(format!("site[{i}].name"), "must not be empty"));
        }
        if r.mx_suffixes.is_empty() || r.mx_suffixes.iter().any(|s| s.trim().is_empty()) {
            return Err(bad(
                format!("site[{i}].mx_suffixes"),
                "at least one non-empty suffix",
            ));
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_group_a_providers_hosts() {
        let s = Shaping::load(None).unwrap();
        let gmail = s.site(&["alt1.gmail-smtp-in.l.google.com."]);
        assert_eq!(gmail.name, "gmail");
        assert_eq!(s.site(&["aspmx.l.GOOGLE.com"]).name, "gmail");
        assert_eq!(
            s.site(&["example-com.mail.protection.outlook.com"]).name,
            "microsoft"
        );
        let other = s.site(&["mx2.example.net", "mx1.example.net"]);
        assert_eq!(
            other.name, "mx1.example.net,mx2.example.net",
            "unknown sites are their MX set"
        );
        assert_eq!(other.limits, s.default);
        assert!(
            s.site(&["notgoogle.com"]).name != "gmail",
            "suffixes match whole labels"
        );
    }

    #[test]
    fn operator_rules_come_first_and_inherit_the_default() {
        let own = "[default]\nmax_connections = 3\n[[site]]\nname = \"lab\"\nmx_suffixes = [\"google.com\", \"lab.test\"]\nmessages_per_second = 2.5\n";
        let s = Shaping::load(Some(("own.toml", own))).unwrap();
        let lab = s.site(&["mx.lab.test"]);
        assert_eq!(
            (
                lab.name.as_str(),
                lab.limits.messages_per_second,
                lab.limits.max_connections
            ),
            ("lab", 2.5, 3)
        );
        assert_eq!(
            s.site(&["aspmx.l.google.com"]).name,
            "lab",
            "the operator's rule wins a tie"
        );
        assert_eq!(s.site(&["x.example"]).limits.max_connections, 3);
    }

    #[test]
    fn bad_files_name_the_file_and_key() {
        for (text, want) in [
            (
                "[[site]]\nname = \"x\"\nmx_suffixes = []\n",
                "own.toml: site[0].mx_suffixes",
            ),
            (
                "[default]\nmax_connections = 0\n",
                "own.toml: default.max_connections",
            ),
            (
                "[[site]]\nname = \"x\"\nmx_suffixes = [\"a\"]\nspeed = 1\n",
                "own.toml",
            ),
            (
                "[[site]]\nname = \"x\"\nmx_suffixes = [\"a\"]\nmessages_per_second = -1.0\n",
                "site[0].messages_per_second",
            ),
        ] {
            let err = Shaping::load(Some(("own.toml", text)))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
