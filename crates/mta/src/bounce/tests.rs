use std::collections::BTreeSet;

use postwerk_core::model::BounceReason::{self, *};

use super::*;

/// `(code, enhanced, text, reason, hard)`.
type Case = (u16, Option<&'static str>, &'static str, BounceReason, bool);

/// Real-world replies (addresses and IPs anonymised) and the engine's own failure texts.
/// Every rule in rules.toml must be reached by at least one case (see `every_rule_is_reached`).
#[rustfmt::skip]
const CASES: &[Case] = &[
    // ---- Failures the engine produces itself. A permanent one passed as 550 is hard.
    (550, None, "DNS: domain accepts no mail (null MX)", HostUnknown, true),
    (0, None, "DNS: null MX", HostUnknown, false),
    (550, None, "DNS: domain does not exist", HostUnknown, true),
    (0, None, "DNS: no such domain", HostUnknown, false),
    (550, None, "DNS: no address for the domain's mail hosts", HostUnknown, true),
    (451, None, "DNS: invalid resolver configuration: bad route", SystemError, false),
    (451, None, "DNS: temporary DNS failure: request timed out", NetworkError, false),
    (0, None, "DNS: temporary failure", NetworkError, false),
    (0, None, "tls error: STARTTLS not offered", SecurityError, false),
    (0, None, "mx1.example.net [192.0.2.1]: connect failed: Connection refused (os error 111)", NetworkError, false),
    (0, None, "mx1.example.net [2001:db8::25]: connect failed: Network is unreachable (os error 101)", NetworkError, false),
    (451, None, "timeout at greeting", NetworkError, false),
    (0, None, "i/o error at data: Connection reset by peer (os error 104)", NetworkError, false),
    (0, None, "no address to connect to", NetworkError, false),
    (0, None, "protocol error at ehlo: reply line too long", SystemError, false),
    (0, None, "local: DKIM key unavailable", SystemError, false),
    (0, None, "no recipient reply", SystemError, false),
    (0, None, "connection refused", NetworkError, false),
    (0, None, "timed out", NetworkError, false),
    (0, None, "connection reset", NetworkError, false),
    (0, None, "i/o", NetworkError, false),
    // ---- Gmail
    (550, Some("5.1.1"), "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser", UserUnknown, true),
    (550, Some("5.2.1"), "The email account that you tried to reach is disabled. For more information, go to https://support.google.com/mail/?p=DisabledUser", Suspend, true),
    (452, Some("4.2.2"), "The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp", MailboxFull, false),
    (552, Some("5.2.2"), "The recipient's inbox is out of storage space and inactive. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm", MailboxFull, false),
    (450, Some("4.2.1"), "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later time.", Speeding, false),
    (421, Some("4.7.0"), "[192.0.2.1      15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines.", BadReputation, false),
    (421, Some("4.7.28"), "Gmail has detected an unusual rate of mail originating from your DKIM domain example.com. To protect our users from spam, mail has been temporarily rate limited.", BadReputation, false),
    (550, Some("5.7.1"), "Our system has detected that this message is likely suspicious due to the very low reputation of the sending IP address. To best protect our users from spam, the message has been blocked.", BadReputation, false),
    (550, Some("5.7.1"), "[192.0.2.1] Gmail has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. For more information, go to https://support.google.com/mail/?p=UnsolicitedMessageError", SpamDetected, false),
    (550, Some("5.7.26"), "Unauthenticated email from example.com is not accepted due to domain's DMARC policy. Please contact the administrator of example.com domain if this was a legitimate mail.", AuthFailure, false),
    (550, Some("5.7.26"), "This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. The sender must authenticate with at least one of SPF or DKIM.", AuthFailure, false),
    (421, Some("4.7.26"), "This mail has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.", AuthFailure, false),
    (421, Some("4.7.29"), "Your email has been rate limited because this message wasn't sent over a TLS connection. Gmail requires all bulk email senders to use TLS/SSL for SMTP connections.", SecurityError, false),
    (550, Some("5.7.1"), "[192.0.2.1] This message is not RFC 5322 compliant. There are multiple Subject headers. To reduce the amount of spam sent to Gmail, this message has been blocked.", NotCompliantRfc, false),
    (550, Some("5.4.5"), "Daily user sending quota exceeded.", ExceedLimit, false),
    (552, Some("5.2.3"), "Your message exceeded Google's message size limits. For more information, go to https://support.google.com/mail/?p=MaxSizeError", MesgTooLarge, false),
    (552, Some("5.7.0"), "Our system detected an illegal attachment on your message. Please visit http://support.google.com/mail/bin/answer.py?answer=6590 to review our attachment guidelines.", ContentError, false),
    (554, Some("5.4.6"), "Message exceeded 50 hops, this may indicate a mail loop.", NetworkError, false),
    (530, Some("5.7.0"), "Must issue a STARTTLS command first. For more information, go to About SMTP error messages.", SecurityError, false),
    (421, Some("4.7.0"), "TLS required for RCPT domain, closing connection.", SecurityError, false),
    // ---- Microsoft (Outlook.com, Exchange Online)
    (550, Some("5.5.0"), "Requested action not taken: mailbox unavailable (S2017062302) [AM4PEPF00027A5F.eurprd04.prod.outlook.com]", UserUnknown, true),
    (550, Some("5.1.10"), "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", UserUnknown, true),
    (550, Some("5.7.1"), "Service unavailable, Client host [192.0.2.1] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.1 (AS3130). [BN8NAM12FT012.eop-nam12.prod.protection.outlook.com]", Blocked, false),
    (550, Some("5.7.708"), "Service unavailable. Access denied, traffic not accepted from this IP. For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653 AS(8561)", Blocked, false),
    (550, Some("5.7.1"), "Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).", Blocked, false),
    (451, Some("4.7.650"), "The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775)", BadReputation, false),
    (421, None, "RP-001 (COL004-MC1F36) Unfortunately, some messages from 192.0.2.1 weren't sent. Please try again. We have limits for how many messages can be sent per hour and per day.", Speeding, false),
    (421, Some("4.7.0"), "[192.0.2.1] RP:TRC Messages from this sender are temporarily rate limited", Speeding, false),
    (550, Some("5.7.25"), "Access denied, the sending IPv6 address [2001:db8::1] must have a reverse DNS record", RequirePtr, false),
    (550, Some("5.4.300"), "Message expired", Expired, false),
    (550, Some("5.7.1"), "Delivery not authorized, message refused", PolicyViolation, false),
    (554, Some("5.6.11"), "Your email program added invalid characters (bare line feed characters) into a message you sent.", ContentError, false),
    // ---- Yahoo / AOL
    (554, None, "delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) [0] - mta1234.mail.bf1.yahoo.com", UserUnknown, true),
    (554, None, "delivery error: dd someone@yahoo.com is no longer valid. [-20] - mta1234.mail.gq1.yahoo.com", Suspend, true),
    (421, Some("4.7.0"), "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", BadReputation, false),
    (553, Some("5.7.2"), "[TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes", Blocked, false),
    (553, Some("5.7.1"), "[BL21] Connections will not be accepted from 192.0.2.1, because the ip is in Spamhaus's list; see http://postmaster.yahoo.com/errors/550-bl23.html", Blocked, false),
    (554, None, "Message not allowed - [PH01] Email not accepted for policy reasons. Please visit https://postmaster.yahooinc.com/error-codes", PolicyViolation, false),
    (450, None, "User is receiving mail too quickly", Speeding, false),
    (421, None, "Max message per connection reached, closing transmission channel", TooManyConn, false),
    // ---- Postfix, Exim, Sendmail, qmail, Dovecot and friends
    (550, Some("5.1.1"), "<someone@example.org>: Recipient address rejected: User unknown in local recipient table", UserUnknown, true),
    (450, Some("4.1.1"), "<someone@example.org>: Recipient address rejected: User unknown in virtual mailbox table", UserUnknown, false),
    (550, None, "Unrouteable address", UserUnknown, true),
    (550, None, "No such user here", UserUnknown, true),
    (552, Some("5.2.2"), "Mailbox full", MailboxFull, false),
    (552, Some("5.2.2"), "<someone@example.org> Quota exceeded (mailbox for user is full)", MailboxFull, false),
    (552, None, "Requested mail action aborted: exceeded storage allocation", MailboxFull, false),
    (552, Some("5.3.4"), "Message size exceeds fixed limit", MesgTooLarge, false),
    (554, Some("5.7.1"), "<someone@example.org>: Relay access denied", NoRelaying, false),
    (553, None, "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", NoRelaying, false),
    (450, Some("4.7.25"), "Client host rejected: cannot find your hostname, [192.0.2.1]", RequirePtr, false),
    (450, Some("4.7.1"), "Client host rejected: cannot find your reverse hostname, [192.0.2.1]", RequirePtr, false),
    (550, Some("5.7.1"), "SPF check failed", AuthFailure, false),
    (421, None, "Too many concurrent SMTP connections; please try again later.", TooManyConn, false),
    (421, Some("4.7.0"), "mx.example.org Error: too many connections from 192.0.2.1", TooManyConn, false),
    (421, Some("4.7.0"), "mx.example.org Error: too much mail from 192.0.2.1", Speeding, false),
    (451, Some("4.7.1"), "Greylisted, please try again later", OnHold, false),
    (450, Some("4.2.0"), "<someone@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html", OnHold, false),
    (550, Some("5.7.1"), "Message rejected as spam", SpamDetected, false),
    (554, Some("5.7.1"), "virus found", VirusDetected, false),
    (550, Some("5.1.6"), "recipient has moved", HasMoved, true),
    (553, Some("5.1.3"), "bad address syntax", SyntaxError, false),
    (501, None, "Syntax error in parameters or arguments", SyntaxError, false),
    (550, Some("5.2.1"), "mailbox disabled/suspended", Suspend, true),
    (450, Some("4.4.3"), "Host or domain name not found. Name service error for name=example.org type=MX: Host not found, try again", NetworkError, false),
    (550, Some("5.1.2"), "<someone@nowhere.example>: Recipient address rejected: Domain not found", HostUnknown, true),
    (550, None, "Sorry, I couldn't find any host named nowhere.example. (#5.1.2)", HostUnknown, true),
    (553, Some("5.1.8"), "<bounce@example.com>: Sender address rejected: Domain not found", Rejected, false),
    (550, None, "Sender verify failed", Rejected, false),
    (556, Some("5.1.10"), "Recipient address has null MX", NotAccept, true),
    (550, None, "example.org does not accept mail (nullmx)", NotAccept, true),
    (452, Some("4.5.3"), "Too many recipients", ExceedLimit, false),
    (554, Some("5.7.1"), "Message rejected: URL in message body is listed in multi.uribl.com", SpamDetected, false),
    (554, Some("5.7.1"), "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", Blocked, false),
    (550, None, "Message contains a virus (Eicar-Signature)", VirusDetected, false),
    (550, Some("5.7.1"), "Mail from your IP is rejected due to poor sender reputation", BadReputation, false),
    (550, Some("5.7.1"), "Message rejected by recipient's filter", Filtered, false),
    (554, Some("5.7.1"), "Rejected for policy reasons", PolicyViolation, false),
    (550, None, "administrative prohibition", PolicyViolation, false),
    (550, Some("5.7.1"), "Client host rejected: Access denied", Blocked, false),
    (451, Some("4.3.0"), "Temporary local problem - please try later", SystemError, false),
    (421, None, "Service not available, closing transmission channel", SystemError, false),
    (421, Some("4.4.2"), "Connection dropped due to timeout", NetworkError, false),
    (550, None, "Requested action not taken: mailbox unavailable", UserUnknown, true),
    // The RFC 5321 text with a policy status is a policy refusal, not an unknown user.
    (550, Some("5.7.1"), "Requested action not taken: mailbox unavailable", PolicyViolation, false),
    // ---- Enhanced status only (RFC 3463 and registry)
    (550, Some("5.1.1"), "", UserUnknown, true),
    (450, Some("4.1.1"), "", UserUnknown, false),
    (550, Some("5.1.1"), "Address rejected", UserUnknown, true),
    (550, Some("5.1.2"), "", HostUnknown, true),
    (501, Some("5.1.3"), "", SyntaxError, false),
    (550, Some("5.1.6"), "", HasMoved, true),
    (550, Some("5.7.17"), "", HasMoved, true),
    (556, Some("5.1.10"), "", NotAccept, true),
    (553, Some("5.1.7"), "", Rejected, false),
    (550, Some("5.2.1"), "", Suspend, true),
    (450, Some("4.2.1"), "", Suspend, false),
    (552, Some("5.2.2"), "", MailboxFull, false),
    (452, Some("4.2.2"), "", MailboxFull, false),
    (552, Some("5.3.4"), "", MesgTooLarge, false),
    (552, Some("5.2.3"), "", MesgTooLarge, false),
    (451, Some("4.4.7"), "", Expired, false),
    (452, Some("4.5.3"), "", ExceedLimit, false),
    (550, Some("5.7.26"), "", AuthFailure, false),
    (421, Some("4.7.23"), "", AuthFailure, false),
    (550, Some("5.7.25"), "", RequirePtr, false),
    (421, Some("4.7.28"), "", BadReputation, false),
    (550, Some("5.7.10"), "", SecurityError, false),
    (452, Some("4.3.1"), "", SystemError, false),
    (451, Some("4.4.1"), "", NetworkError, false),
    (500, Some("5.5.2"), "", SyntaxError, false),
    (554, Some("5.6.0"), "", ContentError, false),
    (550, Some("5.7.1"), "", PolicyViolation, false),
    // ---- Reply code only (RFC 5321, RFC 7504)
    (502, None, "", SyntaxError, false),
    (556, None, "", NotAccept, true),
    (521, None, "", NotAccept, true),
    (421, None, "", SystemError, false),
    (550, None, "", Rejected, false),
    (554, None, "Transaction failed", Rejected, false),
    (450, None, "", Undefined, false),
    // ---- Nothing to go on
    (250, None, "2.0.0 Ok: queued as 4ABC", Undefined, false),
    (0, None, "", Undefined, false),
    // ---- DSN style: no reply code, the status or the diagnostic text carries it
    (0, Some("5.1.1"), "", UserUnknown, true),
    (0, Some("4.2.2"), "", MailboxFull, false),
    (0, None, "smtp; 550 5.1.1 <someone@example.org>: Recipient address rejected: User unknown", UserUnknown, true),
    (0, None, "550-5.1.1 The email account that you tried to reach does not exist.", UserUnknown, true),
    (0, None, "550 5.2.1 mailbox disabled/suspended", Suspend, true),
    (550, None, "5.1.1 Address rejected", UserUnknown, true),
    // ---- Malformed or inconsistent input
    (550, Some("4.2.2"), "", Rejected, false), // class contradicts the code: status ignored
    (550, Some("5.1"), "", Rejected, false),
    (550, Some("5.1.1.1"), "", Rejected, false),
    (550, Some("x.1.1"), "", Rejected, false),
    (550, Some("6.1.1"), "", Rejected, false),
    (550, Some(" 5.1.1 "), "", UserUnknown, true),
    (999, Some("5.1.1"), "", UserUnknown, true), // not a reply code: class from the status
    (550, None, "Utilisateur inconnu – mailbox not found ✉", UserUnknown, true),
];

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
    for rule in &raw {
        let reason = rule.reason.as_deref().expect("every rule has a reason");
        assert!(
            reason.parse::<BounceReason>().is_ok(),
            "line {}: reason {reason:?}",
            rule.line
        );
        for p in rule.pattern.iter().flatten() {
            assert!(
                set_builder([p]).build().is_ok(),
                "line {}: pattern {p:?}",
                rule.line
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
        ("reason = \"userunknown\"\n", "outside"),
        ("[[rule]]\nname = \"a\"\nreason = \"nosuchreason\"\ncodes = [\"5xx\"]\n", "unknown reason"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncode = [\"5xx\"]\n", "unknown key"),
        ("[[rule]]\nname = \"a\"\nname = \"b\"\n", "duplicate key"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = [\"5xx\"]\n[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = [\"4xx\"]\n", "duplicate name"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\npattern = '(unclosed'\n", "pattern"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\npattern = 'unterminated\n", "unterminated"),
        ("[rule]\nname = \"a\"\n", "only [[rule]]"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\n", "match everything"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = [\"6xx\"]\n", "invalid entry"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = [\"55\"]\n", "invalid entry"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\nenhanced = [\"7.1.1\"]\n", "invalid entry"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\nenhanced = [\"5.1.1.1\"]\n", "invalid entry"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\ncodes = []\n", "empty list"),
        ("[[rule]]\nname = \"a\"\nreason = \"rejected\"\npattern = []\n", "empty pattern"),
        ("[[rule]]\nname = \"a\" x\n", "unexpected text"),
        ("[[rule]]\nname = \"a\"\nreason = [\"rejected\"]\n", "not an array"),
        ("[[rule]]\nreason = \"rejected\"\ncodes = [\"5xx\"]\n", "missing `name`"),
        ("[[rule]]\nname = \"a\"\ncodes = [\"5xx\"]\n", "missing `reason`"),
        ("[[rule]]\nname = \"a\\q\"\n", "unsupported escape"),
        ("[[rule]]\nname = '''a'''\n", "multi-line"),
        ("[[rule]]\nname = \"a\"\ncodes = [\"5xx\" \"4xx\"]\n", "expected ','"),
        ("[[rule]]\nname \"a\"\n", "expected '='"),
    ];
    for (src, want) in bad {
        match RuleSet::parse(src) {
            Ok(_) => panic!("accepted: {src:?}"),
            Err(e) => assert!(e.contains(want), "{src:?}: error {e:?} lacks {want:?}"),
        }
    }
}

#[test]
fn rules_file_syntax_subset() {
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
    assert_eq!(first.pattern, Some(0));
    let raw = read_rules(src).unwrap();
    assert_eq!(
        raw[0].pattern.as_deref(),
        Some(&["no such \"user\"".to_string(), "tab\there \\d".to_string()][..])
    );
    assert_eq!((raw[0].line, raw[1].line), (3, 13));
    let reply = Reply::new(550, Some("5.1.1"), "no such \"user\"");
    assert_eq!(rules.find(&reply).map(|r| r.name.as_str()), Some("first"));
    let reply = Reply::new(550, Some("5.7.1"), "No Such \"USER\" ... Blocked");
    assert_eq!(rules.find(&reply).map(|r| r.name.as_str()), Some("second"));
    assert!(rules.find(&Reply::new(550, None, "fine")).is_none());
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

/// Guards against the lazy DFA falling back to the slow engine (see `DFA_CACHE`): that
/// costs ~170 µs per call against ~6 µs. The best of several rounds, so a busy machine
/// does not make it flaky.
#[test]
fn fast_enough() {
    let _ = classify(550, None, "warm up");
    let best = (0..7)
        .map(|_| {
            let start = std::time::Instant::now();
            for &(code, enhanced, text, _, _) in CASES {
                std::hint::black_box(classify(code, enhanced, text));
            }
            start.elapsed() / CASES.len() as u32
        })
        .min()
        .unwrap_or_default();
    println!("{best:?} per classification");
    assert!(
        best < std::time::Duration::from_micros(60),
        "{best:?} per classification: raise DFA_CACHE or simplify patterns"
    );
}
