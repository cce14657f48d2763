use std::collections::BTreeSet;

use postwerk_core::model::BounceReason::{self, *};

use super::rules::*;
use super::*;

/// `(code, enhanced, text, reason, hard)`.
type Case = (u16, Option<&'static str>, &'static str, BounceReason, bool);

/// Real-world replies and the engine's own failure texts (see cases.rs). Every rule in
/// rules.toml must be reached by at least one case (see `every_rule_is_reached`).
const CASES: &[Case] = &include!("cases.rs");

#[test]
fn classifies_real_world_replies() {
    let mut failures = Vec::new();
    for &(code, enhanced, text, reason, hard) in CASES {
        let got = classify(code, enhanced, text);
        let want = Classification { reason, hard };
        if got != want {
            let rule = explain(code, enhanced, text).unwrap_or("(none)");
            failures.push(format!(
                "{code} {enhanced:?} {text:?}\n    want {want:?}\n    got  {got:?} (rule {rule})"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hard_means_permanent_and_address_bad() {
    for &(code, enhanced, text, _, _) in CASES {
        let c = classify(code, enhanced, text);
        let class = Reply::new(code, enhanced, text).class;
        assert_eq!(
            c.hard,
            class == 5 && c.reason.is_hard(),
            "{code} {enhanced:?} {text:?}"
        );
        if (400..500).contains(&code) {
            assert!(!c.hard, "a 4xx is never hard: {code} {enhanced:?} {text:?}");
        }
    }
    // The same condition as 4xx and 5xx.
    let soft = classify(450, Some("4.1.1"), "User unknown");
    let hard = classify(550, Some("5.1.1"), "User unknown");
    assert_eq!((soft.reason, soft.hard), (UserUnknown, false));
    assert_eq!((hard.reason, hard.hard), (UserUnknown, true));
    // A permanent bounce for a reason that leaves the address usable.
    assert!(!classify(552, Some("5.2.2"), "Mailbox full").hard);
    assert!(!classify(554, Some("5.7.1"), "blocked using zen.spamhaus.org").hard);
}

#[test]
fn every_rule_is_reached() {
    let reached: BTreeSet<&str> = CASES
        .iter()
        .filter_map(|&(code, enhanced, text, _, _)| explain(code, enhanced, text))
        .collect();
    let unreached: Vec<&str> = RULES
        .rules
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !reached.contains(n))
        .collect();
    assert!(
        unreached.is_empty(),
        "rules without a test case (or shadowed by earlier rules): {unreached:?}"
    );
}

#[test]
fn rules_file_is_valid() {
    // Every reason parses, every regex compiles (individually and as one set), names are
    // unique, filters are well-formed: RuleSet::parse checks all of it.
    let rules = RuleSet::parse(RULES_TOML).unwrap_or_else(|e| panic!("rules.toml: {e}"));
    assert!(rules.rules.len() >= 60, "{} rules", rules.rules.len());
    assert_eq!(
        rules.rules.len(),
        RULES.rules.len(),
        "the live rules are the file's"
    );
    // And explicitly, straight from the file.
    let raw = read_rules(RULES_TOML).expect("rules.toml reads");
    for (line, rule) in &raw {
        let reason = &rule.reason;
        assert!(
            reason.parse::<BounceReason>().is_ok(),
            "line {line}: reason {reason:?}"
        );
        let patterns = match &rule.pattern {
            None => &[][..],
            Some(Strings::One(p)) => std::slice::from_ref(p),
            Some(Strings::Many(alternatives)) => alternatives,
        };
        for p in patterns {
            assert!(
                set_builder([p]).build().is_ok(),
                "line {line}: pattern {p:?}"
            );
        }
    }
    assert_eq!(raw.len(), rules.rules.len());
    // Local-failure patterns are anchored, so a remote text cannot trigger them.
    assert_eq!(
        classify(550, None, "User foo: DNS: null MX").reason,
        NotAccept
    );
}

#[test]
fn malformed_rules_are_rejected() {
    #[rustfmt::skip]
    let bad = [
        // Not TOML at all.
        ("[[rule]]\nname = \"a\" x\n", "TOML parse error at line 2"),
        ("[[rule]]\nname \"a\"\n", "TOML parse error at line 2"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\npattern = 'unterminated\n", "TOML parse error at line 4"),
        ("[[rule]]\nname = \"a\\q\"\n", "TOML parse error at line 2"),
        ("[[rule]]\nname = \"a\"\ncodes = [\"5xx\" \"4xx\"]\n", "TOML parse error at line 3"),
        ("[[rule]]\nname = \"a\"\nname = \"b\"\n", "duplicate key"),
        // TOML, but not a rules file.
        ("reason = \"userunknown\"\n", "unknown field `reason`"),
        ("[rule]\nname = \"a\"\n", "invalid type: map, expected a sequence"),
        ("[[rules]]\nname = \"a\"\n", "unknown field `rules`"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncode = [\"5xx\"]\n", "rule `a` (line 1): unknown field `code`"),
        ("[[rule]]\nreason = \"rejected\"\ncodes = [\"5xx\"]\n", "rule at line 1: missing field `name`"),
        ("[[rule]]\nname = \"a\"\ncodes = [\"5xx\"]\n", "rule `a` (line 1): missing field `reason`"),
        ("[[rule]]\nname = \"a\"\nreason = [\"rejected\"]\n", "rule `a` (line 1): invalid type"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = [550]\n", "rule `a` (line 1): a string or an array of strings"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\npattern = 1\n", "rule `a` (line 1): a string or an array of strings"),
        // Well-formed, but wrong.
        ("[[rule]]\nname = \"a\"\nreason = \"nosuchreason\"\ncodes = [\"5xx\"]\n", "rule `a` (line 1): unknown reason"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = [\"5xx\"]\n\n[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = [\"4xx\"]\n", "rule `a` (line 6): duplicate name"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\npattern = '(unclosed'\n", "rule `a` (line 1): pattern"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\n", "match everything"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = [\"6xx\"]\n", "codes: invalid entry"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = [\"55\"]\n", "codes: invalid entry"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\nenhanced = [\"7.1.1\"]\n", "enhanced: invalid entry"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\nenhanced = [\"5.1.1.1\"]\n", "enhanced: invalid entry"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = []\n", "codes: empty list"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\npattern = []\n", "empty pattern"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\npattern = ['x', '']\n", "empty pattern"),
    ];
    for (src, want) in bad {
        match RuleSet::parse(src) {
            Ok(_) => panic!("accepted: {src:?}"),
            Err(e) => assert!(e.contains(want), "{src:?}: error {e:?} lacks {want:?}"),
        }
    }
}

#[test]
fn rules_file_syntax() {
    let src = r#"
# comment
[[rule]]   # trailing comment
name = "first"
reason = "userunknown"
codes = [
    "5xx",  # permanent
    "none",
]
enhanced = "x.1.1"
pattern = ['no such "user"', "tab\there \\d"]

[[rule]]
name="second"
reason="blocked"
pattern='blocked'
"#;
    let rules = RuleSet::parse(src).expect("parses");
    assert_eq!(rules.rules.len(), 2);
    let first = &rules.rules[0];
    assert_eq!(first.codes, [CodeFilter::Class(5), CodeFilter::None]);
    assert_eq!(first.enhanced.len(), 1);
    assert_eq!(first.pattern, Some(0));
    let raw = read_rules(src).unwrap();
    let Some(Strings::Many(alternatives)) = &raw[0].1.pattern else {
        panic!("{:?}", raw[0].1.pattern);
    };
    assert_eq!(alternatives, &["no such \"user\"", "tab\there \\d"]);
    assert_eq!((raw[0].0, raw[1].0), (3, 13));
    let reply = Reply::new(550, Some("5.1.1"), "no such \"user\"");
    assert_eq!(rules.find(&reply).map(|r| r.name.as_str()), Some("first"));
    let reply = Reply::new(550, Some("5.7.1"), "No Such \"USER\" ... Blocked");
    assert_eq!(rules.find(&reply).map(|r| r.name.as_str()), Some("second"));
    assert!(rules.find(&Reply::new(550, None, "fine")).is_none());
    // An empty file (or one with only comments) has no rules, which is not an error.
    assert!(RuleSet::parse("# nothing yet\n").unwrap().rules.is_empty());
}

#[test]
fn filters() {
    let reply = |code, enhanced| Reply::new(code, enhanced, "");
    let f = |s| EnhancedFilter::parse(s).unwrap();
    assert!(f("5.7").matches(&reply(550, Some("5.7.1"))));
    assert!(f("5.7.").matches(&reply(550, Some("5.7.708"))));
    assert!(!f("5.7").matches(&reply(550, Some("5.70.1"))));
    assert!(!f("5.7").matches(&reply(450, Some("4.7.1"))));
    assert!(f("x.1.1").matches(&reply(450, Some("4.1.1"))));
    assert!(f("x.1.1").matches(&reply(550, Some("5.1.1"))));
    assert!(!f("x.1.1").matches(&reply(550, Some("5.1.10"))));
    assert!(!f("x.1.1").matches(&reply(550, None)));
    assert!(f("none").matches(&reply(550, None)));
    assert!(!f("none").matches(&reply(550, Some("5.1.1"))));
    assert_eq!(EnhancedFilter::parse("5"), None);
    assert_eq!(EnhancedFilter::parse("5.a"), None);
    assert_eq!(EnhancedFilter::parse("5.1.1.1"), None);

    let c = |s| CodeFilter::parse(s).unwrap();
    assert!(c("5xx").matches(&reply(554, None)));
    assert!(c("5XX").matches(&reply(0, Some("5.1.1"))));
    assert!(!c("5xx").matches(&reply(450, None)));
    assert!(c("421").matches(&reply(421, None)));
    assert!(!c("421").matches(&reply(0, Some("4.2.1"))));
    assert!(c("none").matches(&reply(0, None)));
    assert!(!c("none").matches(&reply(0, Some("4.4.1"))));
    assert_eq!(CodeFilter::parse("600"), None);
    assert_eq!(CodeFilter::parse("5x"), None);
}

#[test]
fn reply_normalisation() {
    let r = Reply::new(0, None, "smtp; 550-5.1.1 <x@example.org> user unknown");
    assert_eq!((r.code, r.class), (550, 5));
    assert_eq!(r.enhanced, Enhanced::parse("5.1.1"));
    // An explicit code wins over the text's, and an inconsistent status is dropped.
    let r = Reply::new(451, None, "550 5.1.1 user unknown");
    assert_eq!((r.code, r.class, r.enhanced), (451, 4, None));
    let r = Reply::new(0, None, "192.0.2.1 said: go away");
    assert_eq!((r.code, r.class, r.enhanced), (0, 0, None));
    let r = Reply::new(0, None, "   5.2.2 mailbox full");
    assert_eq!((r.code, r.class), (0, 5));
    // Long replies are cut at MAX_TEXT bytes, wherever that falls.
    let long = format!("{}user unknown", "é".repeat(MAX_TEXT));
    assert_eq!(Reply::new(550, None, &long).text.len(), MAX_TEXT);
    assert_eq!(classify(550, None, &long).reason, Rejected);
    let long = format!("user unknown {}", "x".repeat(100_000));
    assert_eq!(classify(550, None, &long).reason, UserUnknown);
}

#[test]
fn explain_names_the_deciding_rule() {
    assert_eq!(explain(550, Some("5.1.1"), ""), Some("status-bad-mailbox"));
    assert_eq!(explain(0, None, "DNS: null MX"), Some("local-dns-null-mx"));
    assert_eq!(explain(250, None, "Ok"), None);
}

#[test]
fn broken_rules_degrade_to_undefined() {
    let empty = RuleSet::empty();
    assert!(
        empty
            .find(&Reply::new(550, Some("5.1.1"), "user unknown"))
            .is_none()
    );
}
