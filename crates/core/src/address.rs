//! Email addresses and mailboxes: parsing, validation and normalisation.
//!
//! Parsing is deliberately strict about what an API client may send (an `addr-spec`
//! with a dot-atom or quoted local part and a hostname domain) and lenient about
//! display names. Errors never repeat the address back: it is personal data.
//!
//! Every address has one canonical form, [`Address::normalized`], from which every blind
//! index is computed (suppressions, tombstones, contacts, searches): the domain in
//! A-labels (IDNA 2008 / UTS-46, see [`normalize_domain`]), lower case, without a
//! trailing dot; the local part lower-cased. `kai@bücher.test`, `kai@BÜCHER.test` and
//! `kai@xn--bcher-kva.test` are one address. For an ASCII address this is the lower-cased
//! address, as it always was, so stored blind indexes of ASCII addresses stay valid.

use std::fmt;

use serde::Deserialize;

/// Why an address or mailbox was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing was given.
    #[error("address is empty")]
    Empty,
    /// No `@`, or nothing on one side of it.
    #[error("address must have the form local@domain")]
    MissingAt,
    /// The local part has characters that need quoting, or is too long.
    #[error("invalid local part")]
    BadLocalPart,
    /// The domain is not a valid host name.
    #[error("invalid domain")]
    BadDomain,
    /// Over the RFC 5321 length limits.
    #[error("address too long")]
    TooLong,
    /// A display-name form (`Name <addr>`) was not closed properly.
    #[error("unbalanced angle brackets")]
    Unbalanced,
    /// Control characters (CR, LF, NUL …) are never allowed.
    #[error("address contains control characters")]
    ControlCharacter,
}

/// A validated `local@domain` address. The local part is kept as sent; the domain is
/// stored in its canonical form (A-labels, lower case, no trailing dot), so only a
/// non-ASCII local part needs SMTPUTF8.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    local: String,
    domain: String,
}

impl Address {
    /// Parses and validates a bare `addr-spec`.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(AddressError::ControlCharacter);
        }
        let at = s.rfind('@').ok_or(AddressError::MissingAt)?;
        let (local, domain) = (&s[..at], &s[at + 1..]);
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::MissingAt);
        }
        if local.len() > 64 || domain.len() > 253 || s.len() > 254 {
            return Err(AddressError::TooLong);
        }
        if !valid_local(local) {
            return Err(AddressError::BadLocalPart);
        }
        let domain = match domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            Some(literal) if valid_literal(literal) => domain.to_ascii_lowercase(),
            Some(_) => return Err(AddressError::BadDomain),
            None => normalize_domain(domain)?,
        };
        if local.len() + 1 + domain.len() > 254 {
            return Err(AddressError::TooLong);
        }
        Ok(Address {
            local: local.to_string(),
            domain,
        })
    }

    /// The part before the `@`, as given.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain in its canonical form: A-labels, lower case, no trailing dot (or an
    /// address literal such as `[127.0.0.1]`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// True if the address needs the SMTPUTF8 extension: a non-ASCII local part (the
    /// domain is always sent in A-labels).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }

    /// The canonical form every blind index is computed from (suppressions,
    /// tombstones, contacts, searches): the local part lower-cased, `@`, the canonical
    /// domain. For ASCII addresses: the whole address lower-cased.
    pub fn normalized(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// An address with an optional display name, as in `From: Alice <alice@example.com>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, without quotes.
    pub name: Option<String>,
    /// The address.
    pub address: Address,
}

impl Mailbox {
    /// Parses `addr`, `<addr>` or `Display Name <addr>` (the name may be quoted).
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let s = input.trim();
        if s.chars().any(|c| c.is_control()) {
            return Err(AddressError::ControlCharacter);
        }
        match (s.rfind('<'), s.ends_with('>')) {
            (Some(open), true) => {
                let address = Address::parse(&s[open + 1..s.len() - 1])?;
                let raw_name = s[..open].trim();
                let name = raw_name
                    .strip_prefix('"')
                    .and_then(|n| n.strip_suffix('"'))
                    .map(|n| n.replace("\\\"", "\"").replace("\\\\", "\\"))
                    .unwrap_or_else(|| raw_name.to_string());
                Ok(Mailbox {
                    name: (!name.is_empty()).then_some(name),
                    address,
                })
            }
            (None, false) if !s.contains('>') => Ok(Mailbox {
                name: None,
                address: Address::parse(s)?,
            }),
            _ => Err(AddressError::Unbalanced),
        }
    }

    /// Builds a mailbox from separate parts (the `{"email", "name"}` JSON form).
    pub fn from_parts(email: &str, name: Option<&str>) -> Result<Self, AddressError> {
        if name.is_some_and(|n| n.chars().any(|c| c.is_control())) {
            return Err(AddressError::ControlCharacter);
        }
        Ok(Mailbox {
            name: name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from),
            address: Address::parse(email)?,
        })
    }
}

/// The JSON forms a client may use for a mailbox: `"Name <a@b>"` or `{"email", "name"}`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum MailboxInput {
    /// `"a@b"` or `"Name <a@b>"`.
    Text(String),
    /// `{"email": "a@b", "name": "Name"}`.
    Object {
        /// The address.
        email: String,
        /// Optional display name.
        #[serde(default)]
        name: Option<String>,
    },
}

impl MailboxInput {
    /// Validates the input into a [`Mailbox`].
    pub fn parse(&self) -> Result<Mailbox, AddressError> {
        match self {
            MailboxInput::Text(s) => Mailbox::parse(s),
            MailboxInput::Object { email, name } => Mailbox::from_parts(email, name.as_deref()),
        }
    }
}

fn valid_local(local: &str) -> bool {
    if let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        return !inner.is_empty() && inner.chars().all(|c| c != '"' && c != '\\' || c == ' ');
    }
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || SPECIALS.contains(c) || !c.is_ascii())
}

/// The canonical form of a host name, the one every comparison and blind index uses:
/// IDNA 2008 as UTS-46 maps it (non-transitional: `ß` stays `ß`) to A-labels, lower
/// case, without a trailing dot. `Bücher.TEST.`, `BÜCHER.test` and
/// `xn--bcher-kva.test` all become `xn--bcher-kva.test`; an ASCII name is only
/// lower-cased. A name needs at least two labels of letters, digits and inner hyphens,
/// each at most 63 octets, 253 in all.
pub fn normalize_domain(name: &str) -> Result<String, AddressError> {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    let name = name.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 * 4 {
        return Err(AddressError::BadDomain);
    }
    let ascii = Uts46::new()
        .to_ascii(
            name.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .map_err(|_| AddressError::BadDomain)?;
    let valid = ascii.contains('.')
        && ascii.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        });
    if valid {
        Ok(ascii.into_owned())
    } else {
        Err(AddressError::BadDomain)
    }
}

/// An address literal: `127.0.0.1` or `IPv6:::1` (between the brackets).
fn valid_literal(literal: &str) -> bool {
    literal.parse::<std::net::IpAddr>().is_ok()
        || literal
            .strip_prefix("IPv6:")
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_addresses() {
        for ok in [
            "bob@example.test",
            "bob.smith+tag@Example.COM",
            "\"quoted local\"@example.com",
            "o'neil@sub.example.co.uk",
            "jörg@müller.de",
            "x@[127.0.0.1]",
        ] {
            assert!(Address::parse(ok).is_ok(), "{ok} should parse");
        }
        assert_eq!(
            Address::parse("A@Example.COM").unwrap().domain(),
            "example.com"
        );
        assert_eq!(
            Address::parse("A@Example.COM").unwrap().normalized(),
            "a@example.com"
        );
    }

    #[test]
    fn refuses_invalid_addresses() {
        let cases = [
            ("", AddressError::Empty),
            ("not an address", AddressError::MissingAt),
            ("@example.com", AddressError::MissingAt),
            ("bob@", AddressError::MissingAt),
            ("bo b@example.com", AddressError::BadLocalPart),
            (".bob@example.com", AddressError::BadLocalPart),
            ("bob..x@example.com", AddressError::BadLocalPart),
            ("bob@localhost", AddressError::BadDomain),
            ("bob@-x.com", AddressError::BadDomain),
            ("bob@exa_mple.com", AddressError::BadDomain),
            (
                "bob@example.com\r\nBcc: x@y.z",
                AddressError::ControlCharacter,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Address::parse(input), Err(want), "{input:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Address::parse(&long_local), Err(AddressError::TooLong));
    }

    #[test]
    fn international_domains_have_one_canonical_form() {
        let canonical = "kai@xn--bcher-kva.test";
        for spelling in [
            "kai@bücher.test",
            "kai@BÜCHER.test",
            "kai@Bücher.Test.",
            "kai@xn--bcher-kva.test",
            "kai@XN--BCHER-KVA.TEST",
            "Kai@bücher.test",
        ] {
            let a = Address::parse(spelling).unwrap();
            assert_eq!(a.normalized(), canonical, "{spelling}");
            assert_eq!(a.domain(), "xn--bcher-kva.test", "{spelling}");
            assert!(
                !a.is_utf8(),
                "{spelling}: an A-label domain needs no SMTPUTF8"
            );
        }
        assert_eq!(
            Address::parse("Kai@bücher.test").unwrap().to_string(),
            "Kai@xn--bcher-kva.test",
            "the local part is kept as sent"
        );
        // UTS-46 maps full-width dots and letters; ß is kept (non-transitional).
        assert_eq!(
            normalize_domain("ｅｘａｍｐｌｅ。ｃｏｍ").unwrap(),
            "example.com"
        );
        assert_eq!(normalize_domain("straße.de").unwrap(), "xn--strae-oqa.de");
        let jorg = Address::parse("jörg@müller.de").unwrap();
        assert_eq!(jorg.domain(), "xn--mller-kva.de");
        assert!(jorg.is_utf8(), "a non-ASCII local part needs SMTPUTF8");
        assert_eq!(jorg.normalized(), "jörg@xn--mller-kva.de");
    }

    #[test]
    fn ascii_canonical_form_is_unchanged() {
        // Stored blind indexes of ASCII addresses were computed from the lower-cased
        // address: they must still match.
        for (input, want) in [
            ("Bob.Smith+Tag@Example.COM", "bob.smith+tag@example.com"),
            ("x@[127.0.0.1]", "x@[127.0.0.1]"),
            ("a@b-c--d.example", "a@b-c--d.example"),
        ] {
            assert_eq!(Address::parse(input).unwrap().normalized(), want);
        }
    }

    #[test]
    fn refuses_invalid_international_domains() {
        for bad in [
            "kai@xn--a.test",
            "kai@bü_cher.test",
            "kai@-bücher.test",
            "kai@bücher",
            "kai@[bücher]",
            "kai@a..test",
        ] {
            assert_eq!(Address::parse(bad), Err(AddressError::BadDomain), "{bad}");
        }
        let long = format!("kai@{}.test", "ü".repeat(60));
        assert!(Address::parse(&long).is_err(), "an A-label over 63 octets");
    }

    #[test]
    fn parses_mailboxes() {
        let m = Mailbox::parse("Alice <alice@example.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Alice"));
        assert_eq!(m.address.to_string(), "alice@example.com");
        let q = Mailbox::parse("\"Smith, Bob\" <bob@example.com>").unwrap();
        assert_eq!(q.name.as_deref(), Some("Smith, Bob"));
        assert_eq!(Mailbox::parse("<x@example.com>").unwrap().name, None);
        assert_eq!(Mailbox::parse("x@example.com").unwrap().name, None);
        assert_eq!(
            Mailbox::parse("Alice <a@example.com"),
            Err(AddressError::Unbalanced)
        );
        assert_eq!(
            Mailbox::from_parts("carol@example.test", Some("Carol"))
                .unwrap()
                .name
                .as_deref(),
            Some("Carol")
        );
    }
}
