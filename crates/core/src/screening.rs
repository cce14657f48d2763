//! Screening of imported addresses: what an address looks like, for the CSV-import
//! watchdog. A role mailbox (`info@`), a throwaway domain (`@mailinator.com`) or a
//! misspelt provider (`@gmial.com`) is not wrong in itself; many of them in one list
//! suggest a bought or scraped list.
//!
//! Every check is a heuristic over the canonical address ([`Address::domain`] is already
//! in A-labels and lower case): no DNS, no I/O. Nothing here fails, so nothing here can
//! leak an address into an error.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::address::Address;

/// Local parts of role (functional) mailboxes: a department or a machine rather than a
/// person. Sorted byte-wise, looked up by binary search.
const ROLES: &[&str] = &[
    "abuse",
    "accounting",
    "accounts",
    "admin",
    "administrator",
    "billing",
    "biuro",
    "buchhaltung",
    "buero",
    "careers",
    "compliance",
    "contact",
    "datenschutz",
    "do-not-reply",
    "donotreply",
    "enquiries",
    "feedback",
    "finance",
    "hello",
    "help",
    "helpdesk",
    "hostmaster",
    "hr",
    "info",
    "inquiries",
    "it",
    "jobs",
    "kontakt",
    "legal",
    "mail",
    "mailer-daemon",
    "marketing",
    "media",
    "newsletter",
    "no-reply",
    "noc",
    "noreply",
    "office",
    "orders",
    "post",
    "postmaster",
    "press",
    "privacy",
    "reception",
    "root",
    "sales",
    "security",
    "service",
    "support",
    "team",
    "vertrieb",
    "webmaster",
];

/// The disposable-provider list: one domain a line, `#` comments.
const DISPOSABLE_LIST: &str = include_str!("screening/disposable.txt");

/// [`DISPOSABLE_LIST`], parsed on first use.
static DISPOSABLE: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| list_entries(DISPOSABLE_LIST).collect());

/// Large mailbox providers: the domains a typo is measured against, and never typos
/// themselves. Sorted byte-wise.
const PROVIDERS: &[&str] = &[
    "aol.com",
    "bluewin.ch",
    "email.com",
    "free.fr",
    "freenet.de",
    "gmail.com",
    "gmx.at",
    "gmx.ch",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "googlemail.com",
    "hotmail.co.uk",
    "hotmail.com",
    "hotmail.de",
    "hotmail.fr",
    "hotmail.it",
    "icloud.com",
    "interia.pl",
    "laposte.net",
    "libero.it",
    "live.com",
    "mail.com",
    "mail.ru",
    "mailbox.org",
    "me.com",
    "msn.com",
    "o2.pl",
    "onet.pl",
    "op.pl",
    "orange.fr",
    "outlook.com",
    "outlook.de",
    "pm.me",
    "posteo.de",
    "proton.me",
    "protonmail.ch",
    "protonmail.com",
    "rambler.ru",
    "seznam.cz",
    "t-online.de",
    "telenet.be",
    "virgilio.it",
    "web.de",
    "wp.pl",
    "yahoo.co.uk",
    "yahoo.com",
    "yahoo.de",
    "yahoo.fr",
    "yandex.ru",
    "ymail.com",
    "ziggo.nl",
];

/// Real domains one slip away from a provider that are not mailbox providers
/// (`cloud.com` is not a mistyped `icloud.com`). Sorted byte-wise.
const NOT_TYPOS: &[&str] = &["cloud.com", "wahoo.com"];

/// Provider names (the first label) shorter than this are not compared letter by
/// letter: one slip away from `gmx` or `web` lie many real domains.
const MIN_NAME_FOR_SLIPS: usize = 5;

/// True if the local part, lower-cased, unquoted and without a `+tag`, names a role
/// mailbox (`info`, `postmaster`, `no-reply`, `kontakt` …) rather than a person.
pub fn is_role(address: &Address) -> bool {
    let local = address.local();
    let local = local
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(local)
        .to_lowercase();
    let mailbox = local.split_once('+').map_or(local.as_str(), |(m, _)| m);
    ROLES.binary_search(&mailbox).is_ok()
}

/// True if the domain, or a parent domain of it, is a well-known disposable
/// (throwaway) mailbox provider: `a@mailinator.com`, `a@x.mailinator.com`.
pub fn is_disposable(address: &Address) -> bool {
    std::iter::successors(Some(address.domain()), |d| {
        d.split_once('.').map(|(_, parent)| parent)
    })
    .any(|d| DISPOSABLE.contains(d))
}

/// The large mailbox provider the domain is probably a typo of, if it is not a provider
/// itself: `gmial.com` → `gmail.com`, `gmail.co` → `gmail.com`, `gmx.dee` → `gmx.de`.
///
/// The domain is split at its first dot into name and suffix and is a typo of a
/// provider if it differs from it by one slip (an insertion, deletion, substitution or
/// swap of neighbouring letters) in exactly one of the two, the other being equal:
/// - in the name only for names of at least five characters (`gmai.com`, `hotmial.com`),
///   since one slip from `wp`, `o2` or `gmx` leads to unrelated real domains;
/// - in the suffix for any provider (`wp.p`, `aol.con`), except a substituted letter in
///   a two-letter top-level domain: `gmx.dk` is Denmark, not a slip of `gmx.de`.
///
/// Subdomains (`mail.gmail.com`) and address literals never match.
pub fn likely_typo(address: &Address) -> Option<&'static str> {
    let domain = address.domain();
    if PROVIDERS.binary_search(&domain).is_ok() || NOT_TYPOS.binary_search(&domain).is_ok() {
        return None;
    }
    let (name, suffix) = domain.split_once('.')?;
    PROVIDERS.iter().copied().find(|provider| {
        provider.split_once('.').is_some_and(|(p_name, p_suffix)| {
            match (name == p_name, suffix == p_suffix) {
                (true, false) => suffix_slip(suffix, p_suffix),
                (false, true) => {
                    p_name.len() >= MIN_NAME_FOR_SLIPS && strsim::osa_distance(name, p_name) == 1
                }
                _ => false,
            }
        })
    })
}

/// The site an address belongs to for the watchdog's "share of one single domain"
/// signal: the canonical domain as is ([`Address::domain`]). Subdomains are sites of
/// their own (`eu.example.com` is not `example.com`), as is an address literal.
pub fn site(address: &Address) -> &str {
    address.domain()
}

/// True if `typed` is one slip from the provider's suffix `intended`, and the slip does
/// not turn one two-letter top-level domain into another.
fn suffix_slip(typed: &str, intended: &str) -> bool {
    let (typed_tld, intended_tld) = (top_label(typed), top_label(intended));
    let other_country = typed_tld.len() == 2
        && intended_tld.len() == 2
        && strsim::levenshtein(typed_tld, intended_tld) == 1;
    strsim::osa_distance(typed, intended) == 1 && !other_country
}

/// The last label of a domain: `uk` of `co.uk`.
fn top_label(domain: &str) -> &str {
    domain.rsplit_once('.').map_or(domain, |(_, tld)| tld)
}

/// The entries of a list file: trimmed lines, without blank lines and `#` comments.
fn list_entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::normalize_domain;

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    /// Strictly increasing byte-wise: sorted and without duplicates.
    fn assert_strictly_sorted(name: &str, list: &[&str]) {
        for pair in list.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{name}: {:?} before {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn lists_are_sorted_and_canonical() {
        assert_strictly_sorted("ROLES", ROLES);
        assert_strictly_sorted("PROVIDERS", PROVIDERS);
        assert_strictly_sorted("NOT_TYPOS", NOT_TYPOS);
        let disposable: Vec<&str> = list_entries(DISPOSABLE_LIST).collect();
        assert_strictly_sorted("disposable.txt", &disposable);
        assert!(disposable.len() >= 150, "{} entries", disposable.len());
        for domain in PROVIDERS.iter().chain(NOT_TYPOS).chain(&disposable) {
            assert_eq!(normalize_domain(domain).as_deref(), Ok(*domain));
        }
        for role in ROLES {
            assert_eq!(role.to_lowercase(), *role);
        }
        for domain in &disposable {
            assert!(
                !PROVIDERS.contains(domain),
                "{domain} is a provider and disposable"
            );
        }
    }

    #[test]
    fn recognises_role_mailboxes() {
        for role in [
            "info@example.test",
            "INFO@example.test",
            "Postmaster@example.test",
            "no-reply@example.test",
            "noreply+bounces@example.test",
            "\"Info\"@example.test",
            "kontakt@example.test",
            "abuse@example.test",
        ] {
            assert!(is_role(&addr(role)), "{role}");
        }
        for person in [
            "anna@example.test",
            "info.anna@example.test",
            "anna+info@example.test",
            "informatik@example.test",
            "\"info desk\"@example.test",
        ] {
            assert!(!is_role(&addr(person)), "{person}");
        }
    }

    #[test]
    fn recognises_disposable_domains() {
        for throwaway in [
            "a@mailinator.com",
            "a@MAILINATOR.COM",
            "a@inbox.mailinator.com",
            "a@guerrillamail.com",
            "a@sharklasers.com",
            "a@10minutemail.com",
            "a@yopmail.com",
            "a@temp-mail.org",
            "a@maildrop.cc",
            "a@cool.fr.nf",
        ] {
            assert!(is_disposable(&addr(throwaway)), "{throwaway}");
        }
        for real in [
            "a@gmail.com",
            "a@example.test",
            "a@notmailinator.example",
            "a@mailinator.com.example",
            "a@fr.nf",
            "a@[127.0.0.1]",
        ] {
            assert!(!is_disposable(&addr(real)), "{real}");
        }
    }

    #[test]
    fn finds_likely_typos() {
        for (typed, meant) in [
            ("gmial.com", "gmail.com"),
            ("gmai.com", "gmail.com"),
            ("gmaill.com", "gmail.com"),
            ("gmail.co", "gmail.com"),
            ("gmail.con", "gmail.com"),
            ("gmail.ocm", "gmail.com"),
            ("GMAIL.CM", "gmail.com"),
            ("hotmial.com", "hotmail.com"),
            ("hotmail.co", "hotmail.com"),
            ("hotmail.co.k", "hotmail.co.uk"),
            ("yaho.com", "yahoo.com"),
            ("yahoo.com.uk", "yahoo.co.uk"),
            ("outlok.com", "outlook.com"),
            ("icloud.co", "icloud.com"),
            ("tonline.de", "t-online.de"),
            ("gmx.dee", "gmx.de"),
            ("gmx.ne", "gmx.net"),
            ("web.ed", "web.de"),
            ("wp.p", "wp.pl"),
            ("o2.pll", "o2.pl"),
            ("aol.con", "aol.com"),
            ("protonmial.com", "protonmail.com"),
        ] {
            assert_eq!(
                likely_typo(&addr(&format!("a@{typed}"))),
                Some(meant),
                "{typed}"
            );
        }
    }

    #[test]
    fn leaves_real_domains_alone() {
        for provider in PROVIDERS {
            assert_eq!(likely_typo(&addr(&format!("a@{provider}"))), None);
        }
        for domain in [
            "example.test",
            "example.org",
            "mail.test",
            "mail.de",
            "gmail.de",
            "hotmail.es",
            "yahoo.es",
            "outlook.fr",
            "gmx.dk",
            "web.com",
            "wo.pl",
            "wp.pk",
            "op.de",
            "o3.pl",
            "gmc.de",
            "cloud.com",
            "wahoo.com",
            "mail.gmail.com",
            "gmail.com.example",
            "[127.0.0.1]",
        ] {
            assert_eq!(likely_typo(&addr(&format!("a@{domain}"))), None, "{domain}");
        }
    }

    #[test]
    fn site_is_the_canonical_domain() {
        assert_eq!(site(&addr("Anna@Example.COM")), "example.com");
        assert_eq!(site(&addr("anna@eu.example.com")), "eu.example.com");
        assert_eq!(site(&addr("kai@bücher.test")), "xn--bcher-kva.test");
    }
}
