//! MTA-STS records and policies (RFC 8461 §3): the `_mta-sts` TXT record that announces
//! a policy and its id, the policy file itself, and matching MX hosts against it.

use std::time::Duration;

/// Longest `max_age` a policy may ask for (RFC 8461 §3.2: about one year).
pub const MAX_AGE_LIMIT: Duration = Duration::from_secs(31_557_600);

/// What a policy asks of senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver only to matching MX hosts, over TLS with a certificate valid for the host.
    Enforce,
    /// Report failures but deliver as before.
    Testing,
    /// The domain withdrew its policy.
    None,
}

impl Mode {
    /// The policy file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The id of the TXT record it was fetched for (a new id means a new policy).
    pub id: String,
    /// What it asks of senders.
    pub mode: Mode,
    /// Allowed MX host patterns, lower case: `mx.example.com` or `*.example.com`.
    pub mx: Vec<String>,
    /// How long senders may cache it.
    pub max_age: Duration,
}

/// Why a record or policy is unusable (the domain is then treated as having none).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// The policy id announced by the TXT records at `_mta-sts.<domain>`: `Ok(None)` when
/// no record starts with `v=STSv1`. More than one such record, or one without a valid
/// `id`, is an error (RFC 8461 §3.1: senders then assume there is no policy).
pub fn txt_policy_id(records: &[String]) -> Result<Option<String>, PolicyError> {
    let mut sts = records.iter().filter(|r| {
        r.split(';')
            .next()
            .is_some_and(|v| v.trim_matches([' ', '\t']) == "v=STSv1")
    });
    let Some(record) = sts.next() else {
        return Ok(None);
    };
    if sts.next().is_some() {
        return Err(PolicyError("more than one v=STSv1 TXT record".into()));
    }
    let id = record.split(';').skip(1).find_map(|field| {
        let (key, value) = field.split_once('=')?;
        (key.trim_matches([' ', '\t']) == "id").then(|| value.trim_matches([' ', '\t']))
    });
    match id {
        Some(id)
            if (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok(Some(id.to_string()))
        }
        Some(id) => Err(PolicyError(format!("invalid policy id {id:?}"))),
        None => Err(PolicyError("TXT record without an id".into())),
    }
}

/// Parses a policy file (`key: value` lines ending in CRLF or LF) fetched for `id`.
/// Unknown keys are ignored; `version: STSv1`, `mode` and `max_age` are required, and
/// at least one `mx` unless the mode is `none`.
pub fn parse_policy(id: &str, text: &str) -> Result<Policy, PolicyError> {
    let (mut version, mut mode, mut max_age, mut mx) = (None, None, None, Vec::new());
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(PolicyError(format!("line without a key: {line:?}")));
        };
        let value = value.trim_matches([' ', '\t']);
        match key.trim_matches([' ', '\t']) {
            "version" if version.is_none() => version = Some(value.to_string()),
            "mode" if mode.is_none() => {
                mode = Some(match value {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    other => return Err(PolicyError(format!("unknown mode {other:?}"))),
                });
            }
            "max_age" if max_age.is_none() => {
                let secs: u64 = value
                    .parse()
                    .ok()
                    .filter(|_| value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| PolicyError(format!("invalid max_age {value:?}")))?;
                max_age = Some(Duration::from_secs(secs).min(MAX_AGE_LIMIT));
            }
            "mx" => mx.push(mx_pattern(value)?),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err(PolicyError("version is not STSv1".into()));
    }
    let mode = mode.ok_or_else(|| PolicyError("no mode".into()))?;
    let max_age = max_age.ok_or_else(|| PolicyError("no max_age".into()))?;
    if mx.is_empty() && mode != Mode::None {
        return Err(PolicyError("no mx".into()));
    }
    Ok(Policy {
        id: id.to_string(),
        mode,
        mx,
        max_age,
    })
}

/// A host name or a `*.` wildcard, lower case, without a trailing dot.
fn mx_pattern(value: &str) -> Result<String, PolicyError> {
    let pattern = value.trim_end_matches('.').to_ascii_lowercase();
    let host = pattern.strip_prefix("*.").unwrap_or(&pattern);
    let valid = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(pattern)
    } else {
        Err(PolicyError(format!("invalid mx pattern {value:?}")))
    }
}

impl Policy {
    /// True when `host` matches one of the policy's `mx` patterns (RFC 8461 §4.1: a
    /// wildcard stands for exactly one leftmost label).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => *pattern == host,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_the_policy_id_from_the_txt_record() {
        let id = |r: &[&str]| txt_policy_id(&records(r));
        assert_eq!(
            id(&["v=STSv1; id=20160831085700Z;"]),
            Ok(Some("20160831085700Z".into()))
        );
        assert_eq!(
            id(&["v=spf1 -all", "v=STSv1;id=abc"]),
            Ok(Some("abc".into()))
        );
        assert_eq!(id(&["v=spf1 -all"]), Ok(None));
        assert_eq!(id(&[]), Ok(None));
        assert!(
            id(&["v=STSv1; id=a", "v=STSv1; id=b"]).is_err(),
            "two records"
        );
        assert!(id(&["v=STSv1;"]).is_err(), "no id");
        assert!(id(&["v=STSv1; id=not-alnum"]).is_err());
        assert!(id(&["v=STSv1; id=123456789012345678901234567890123"]).is_err());
    }

    #[test]
    fn parses_the_rfc_example_policy() {
        let text = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
        let p = parse_policy("1", text).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(
            p.mx,
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
        assert_eq!(p.max_age, Duration::from_secs(604_800));
        assert!(p.allows("mail.example.com"));
        assert!(p.allows("MAIL.example.com."));
        assert!(p.allows("mx1.example.net"));
        assert!(!p.allows("example.net"), "a wildcard needs one label");
        assert!(
            !p.allows("a.b.example.net"),
            "a wildcard stands for one label only"
        );
        assert!(!p.allows("evil.example.com"));
    }

    #[test]
    fn refuses_incomplete_or_invalid_policies() {
        for text in [
            "mode: enforce\nmx: a.test\nmax_age: 60\n",
            "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 60\n",
            "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 60\n",
            "version: STSv1\nmode: enforce\nmax_age: 60\n",
            "version: STSv1\nmode: enforce\nmx: a.test\n",
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
            "version: STSv1\nmode: enforce\nmx: bad host\nmax_age: 60\n",
            "<html>not a policy</html>",
        ] {
            assert!(parse_policy("1", text).is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn ignores_unknown_keys_caps_max_age_and_allows_none_without_mx() {
        let p = parse_policy(
            "1",
            "version: STSv1\nmode: testing\nextension: x\nmx: a.test\nmax_age: 99999999999\n",
        );
        assert!(p.is_err(), "max_age over 10 digits");
        let p = parse_policy(
            "1",
            "version: STSv1\nmode: testing\nextension: x\nmx: a.test\nmax_age: 9999999999\n",
        )
        .unwrap();
        assert_eq!((p.mode, p.max_age), (Mode::Testing, MAX_AGE_LIMIT));
        let p = parse_policy("1", "version: STSv1\nmode: none\nmax_age: 60\n").unwrap();
        assert_eq!(p.mode, Mode::None);
    }
}
