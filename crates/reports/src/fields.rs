//! The field blocks of machine-readable reports: a `message/delivery-status` body
//! (RFC 3464 §2.1: a per-message group, then one group per recipient, separated by
//! blank lines) and a `message/feedback-report` body (RFC 5965 §3.1, one group).
//! Both use header syntax: `Name: value`, continuation lines start with white space.

/// One group of fields, in order, names as written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Group(pub Vec<(String, String)>);

impl Group {
    /// The first value of `name` (case-insensitive), trimmed; `None` if absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    /// Every non-empty value of `name`, in order.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// An address-type field (`rfc822; user@example.com`) without its type, and
    /// without angle brackets.
    pub fn address(&self, name: &str) -> Option<String> {
        self.get(name).map(strip_type).map(|a| {
            a.trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace())
                .to_string()
        })
    }
}

/// Removes the `type;` prefix of a typed field (`dns; mx.example.com`,
/// `smtp; 550 …`, `rfc822; a@b`); a value without one is returned as is.
pub fn strip_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest)) if is_type_name(kind.trim()) => rest.trim(),
        _ => value.trim(),
    }
}

fn is_type_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 20
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Splits a report body into its groups. Lines that are neither fields nor
/// continuations are ignored; so are empty groups. Never fails.
pub fn parse_groups(body: &str) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut current = Group::default();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.0.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.0.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':')
            && !name.is_empty()
            && !name.contains(char::is_whitespace)
        {
            current.0.push((name.to_string(), value.trim().to_string()));
        }
    }
    if !current.0.is_empty() {
        groups.push(current);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_with_continuations() {
        let body = "Reporting-MTA: dns; mx.example.org\r\n\r\n\r\nFinal-Recipient: rfc822; <a@example.org>\r\n\
                    Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user\r\n  unknown\r\n\
                    garbage line\r\n\r\nFinal-Recipient: rfc822;b@example.org\r\nAction: delayed\r\n";
        let g = parse_groups(body);
        assert_eq!(g.len(), 3);
        assert_eq!(
            g[0].get("reporting-mta").map(strip_type),
            Some("mx.example.org")
        );
        assert_eq!(
            g[1].address("Final-Recipient").as_deref(),
            Some("a@example.org")
        );
        assert_eq!(
            g[1].get("Diagnostic-Code").map(strip_type),
            Some("550 5.1.1 user unknown")
        );
        assert_eq!(g[2].get("action"), Some("delayed"));
        assert_eq!(g[2].get("status"), None);
    }

    #[test]
    fn untyped_values_are_kept() {
        assert_eq!(strip_type("a@example.org"), "a@example.org");
        assert_eq!(strip_type("X-Unix; 550; odd"), "550; odd");
        assert_eq!(strip_type("550 no; really"), "550 no; really");
    }
}
