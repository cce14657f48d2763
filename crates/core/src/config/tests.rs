//! The configuration model's tests: parsing, defaults, validation and environment overrides.

use super::*;

const SAMPLE: &str = r#"
data_dir = "./postwerk-data"
[http]
listen = "127.0.0.1:8080"
[store]
url = "sqlite://./postwerk-data/postwerk.db"
[delivery]
ehlo_name = "mta.example.com"
bounce_domain = "bounces.example.com"
[delivery.routes]
"example.test" = "127.0.0.1:2626"
[dns]
nameservers = ["127.0.0.1:5353"]
"#;

#[test]
fn parses_the_documented_example() {
    let c = Config::from_toml(SAMPLE, []).unwrap();
    assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.delivery.routes["example.test"], "127.0.0.1:2626");
    assert_eq!(c.dns.nameservers.len(), 1);
    assert_eq!(c.delivery.expiry, Duration::from_secs(86_400));
}

#[test]
fn empty_file_gives_defaults() {
    let c = Config::from_toml("", []).unwrap();
    assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.store_url(), "sqlite://./postwerk-data/postwerk.db");
}

#[test]
fn unknown_key_names_key_and_line() {
    let err = Config::from_toml("[http]\nlisten = \"127.0.0.1:1\"\nlissen = 3\n", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("lissen") && err.contains("line 3"), "{err}");
    let err = Config::from_toml("[delivery]\nexpiry = \"soon\"\n", [])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2") && err.contains("invalid duration"),
        "{err}"
    );
}

#[test]
fn semantic_errors_name_the_key() {
    let err = Config::from_toml("[delivery.routes]\n\"example.test\" = \"a:b:c\"\n", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("delivery.routes.\"example.test\""), "{err}");
    let err = Config::from_toml("[store]\nurl = \"mysql://x\"\n", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("store.url"), "{err}");
}

#[test]
fn environment_overrides_the_file() {
    let env = [
        (
            "POSTWERK_HTTP_LISTEN".to_string(),
            "127.0.0.1:9999".to_string(),
        ),
        ("POSTWERK_DELIVERY_EHLO_NAME".into(), "mx.env.test".into()),
        ("POSTWERK_DELIVERY_MAX_CONNECTIONS".into(), "7".into()),
        (
            "POSTWERK_DNS_NAMESERVERS".into(),
            "127.0.0.1:53, 127.0.0.2:53".into(),
        ),
        ("POSTWERK_DATA_DIR".into(), "/tmp/pw".into()),
        ("POSTWERK_STORE_URL".into(), "postgres://u@h/db".into()),
        ("POSTWERK_MASTER_KEY".into(), "ignored here".into()),
        (
            "POSTWERK_SMTP_SUBMISSION_LISTEN".into(),
            "0.0.0.0:587".into(),
        ),
        ("POSTWERK_SMTP_SUBMISSION_ENABLED".into(), "false".into()),
        ("POSTWERK_SMTP_SUBMISSION_CERT".into(), "/etc/c.pem".into()),
        ("POSTWERK_SMTP_SUBMISSION_KEY".into(), "/etc/k.pem".into()),
        (
            "POSTWERK_CIRCUIT_BREAKER_COMPLAINT_RATE".into(),
            "0.001".into(),
        ),
    ];
    let c = Config::from_toml(SAMPLE, env).unwrap();
    assert_eq!(c.http.listen.port(), 9999);
    assert_eq!(c.circuit_breaker.complaint_rate, 0.001, "numbers");
    assert_eq!(c.delivery.ehlo_name, "mx.env.test");
    assert_eq!(c.delivery.max_connections, 7);
    assert_eq!(c.dns.nameservers.len(), 2);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/pw"));
    assert_eq!(c.store_url(), "postgres://u@h/db");
    assert_eq!(c.smtp.submission.listen.port(), 587);
    assert!(!c.smtp.submission.enabled);
    assert_eq!(c.smtp.submission.key, Some(PathBuf::from("/etc/k.pem")));
    let bad = [(
        "POSTWERK_DELIVERY_MAX_CONNECTIONS".to_string(),
        "many".to_string(),
    )];
    assert!(
        Config::from_toml("", bad)
            .unwrap_err()
            .to_string()
            .contains("MAX_CONNECTIONS")
    );
}

#[test]
fn unknown_environment_variables_are_named_with_the_closest_known_one() {
    let env = |pairs: &[&str]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|n| (n.to_string(), "x".to_string()))
            .collect()
    };
    let found = unknown_env_variables(env(&[
        "POSTWERK_HTTP_LISTN",
        "POSTWERK_HTTP_LISTEN",
        "POSTWERK_MASTER_KEY",
        "POSTWERK_STORE_URL",
        "POSTWERK_SMTP_SUBMISSION_CERT",
        "POSTWERK_LOGFORMAT",
        "POSTWERK_TRACKING_BASEURL",
        "HOME",
    ]));
    assert_eq!(
        found,
        [
            ("POSTWERK_HTTP_LISTN".into(), "POSTWERK_HTTP_LISTEN".into()),
            ("POSTWERK_LOGFORMAT".into(), "POSTWERK_LOG_FORMAT".into()),
            (
                "POSTWERK_TRACKING_BASEURL".into(),
                "POSTWERK_TRACKING_BASE_URL".into()
            ),
        ]
    );
    // Every documented override is known.
    let overrides = env(&[
        "POSTWERK_DATA_DIR",
        "POSTWERK_PRIVACY_CONSENT_REQUIRED_BROADCAST",
        "POSTWERK_DELIVERY_BOUNCE_DOMAIN",
        "POSTWERK_MTA_STS_CA_FILE",
        "POSTWERK_BACKUP_DIR",
        "POSTWERK_TRACKING_CONSENT_PURPOSE",
    ]);
    assert_eq!(unknown_env_variables(overrides), []);
}

#[test]
fn warns_about_links_recipients_cannot_use() {
    let warning = |text: &str| Config::from_toml(text, []).unwrap().link_warning();
    let w = warning("").expect("the default links point at the listen address");
    assert!(
        w.contains("http://127.0.0.1:8080") && w.contains("loopback"),
        "{w}"
    );
    let w = warning("[http]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
    assert!(w.contains("http://0.0.0.0:8080"), "{w}");
    let w = warning("[tracking]\nbase_url = \"http://links.example.com\"\n").unwrap();
    assert!(w.contains("plain http"), "{w}");
    let w = warning("[tracking]\nbase_url = \"https://localhost:8443\"\n").unwrap();
    assert!(w.contains("loopback"), "{w}");
    assert_eq!(
        warning("[tracking]\nbase_url = \"https://links.example.com\"\n"),
        None
    );
    let off = "[tracking]\nunsubscribe_streams = []\nopen_streams = []\nclick_streams = []\n";
    assert_eq!(warning(off), None, "no links in mail, nothing to warn of");
}

#[test]
fn international_route_keys_are_accepted() {
    let c = Config::from_toml(
        "[delivery.routes]\n\"exämple.test\" = \"127.0.0.1:2626\"\n",
        [],
    )
    .unwrap();
    assert!(c.delivery.routes.contains_key("exämple.test"));
    let err = Config::from_toml(
        "[delivery.routes]\n\"ex ample.test\" = \"127.0.0.1:1\"\n",
        [],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("route key must be a domain name"), "{err}");
}

#[test]
fn smtp_submission_section() {
    let c = Config::from_toml("", []).unwrap();
    let s = &c.smtp.submission;
    assert!(s.enabled);
    assert_eq!(s.listen.to_string(), "127.0.0.1:2587");
    assert_eq!(s.listen_tls.to_string(), "127.0.0.1:2465");
    assert_eq!((s.max_message_bytes, s.max_recipients), (25 << 20, 50));
    assert_eq!(s.idle_timeout, Duration::from_secs(300));
    let c = Config::from_toml(
        "[smtp.submission]\nidle_timeout = \"30s\"\n[[smtp.submission.trusted]]\ncidr = \"10.0.0.0/8\"\nstream = \"broadcast\"\n",
        [],
    )
    .unwrap();
    let t = &c.smtp.submission.trusted[0];
    assert_eq!(
        (t.tenant.as_str(), t.stream.as_str()),
        ("default", "broadcast")
    );
    let err = Config::from_toml("[[smtp.submission.trusted]]\ncidr = \"10.0.0.0/33\"\n", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("trusted[0].cidr"), "{err}");
    assert_eq!(parse_cidr("::1"), Some(("::1".parse().unwrap(), 128)));
}

#[test]
fn retention_and_privacy_sections() {
    let c = Config::from_toml("", []).unwrap();
    assert_eq!(c.retention.content, Duration::from_secs(7 * 86_400));
    assert_eq!(c.retention.events, Duration::from_secs(30 * 86_400));
    assert_eq!(
        c.retention.cancelled_tenants,
        Duration::from_secs(90 * 86_400)
    );
    let c = Config::from_toml(
        "[retention]
cancelled_tenants = \"1s\"\ninterval = \"1s\"\n",
        [],
    )
    .unwrap();
    assert_eq!(
        (c.retention.cancelled_tenants, c.retention.interval),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
    assert_eq!(c.privacy.consent_required["broadcast"], "marketing");
    let c = Config::from_toml("[privacy]\nconsent_required = {}\n", []).unwrap();
    assert!(c.privacy.consent_required.is_empty());
    for (text, key) in [
        ("[retention]\ncontent = \"40d\"\n", "retention.events"),
        ("[retention]\ninterval = \"0s\"\n", "retention.interval"),
        (
            "[privacy]\nconsent_required = { \"Bulk Mail\" = \"x\" }\n",
            "privacy.consent_required.Bulk Mail",
        ),
        (
            "[circuit_breaker]\ncomplaint_rate = 3.0\n",
            "circuit_breaker.complaint_rate",
        ),
        ("[circuit_breaker]\nwindow = 10\n", "circuit_breaker.window"),
        (
            "[retention.streams.broadcast]\ncontent = \"0s\"\n",
            "retention.streams.broadcast",
        ),
        (
            "[retention.tenants.acme.streams.tx]\ncontent = \"9d\"\nevents = \"8d\"\n",
            "retention.tenants.acme.streams.tx.events",
        ),
        (
            "[retention.streams.broadcast.streams.x]\ncontent = \"1d\"\n",
            "retention.streams.broadcast.streams",
        ),
        (
            "[retention.tenants.acme]\nkeep = \"1d\"\n",
            "unknown field `keep`",
        ),
    ] {
        let err = Config::from_toml(text, []).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
    let c = Config::from_toml(
        "[retention.streams.broadcast]\ncontent = \"2d\"\n\
         [retention.tenants.acme]\nevents = \"90d\"\n\
         [retention.tenants.acme.streams.transactional]\ncontent = \"30d\"\n",
        [],
    )
    .unwrap();
    let keys: Vec<String> = c.retention.policies().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "retention",
            "retention.streams.broadcast",
            "retention.tenants.acme",
            "retention.tenants.acme.streams.transactional"
        ]
    );
    let acme = &c.retention.tenants["acme"];
    assert_eq!(acme.events, Some(Duration::from_secs(90 * 86_400)));
    assert_eq!(
        acme.streams["transactional"].content,
        Some(Duration::from_secs(30 * 86_400))
    );
}

#[test]
fn backup_section() {
    let c = Config::from_toml("", []).unwrap();
    assert!(c.backup.recipients.is_empty() && c.backup.dir.is_none());
    assert_eq!(c.backup.keep_days, 7);
    let key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let c = Config::from_toml(
        &format!("[backup]\nrecipients = [\"{key}\"]\ndir = \"/srv/backups\"\n"),
        [("POSTWERK_BACKUP_KEEP_DAYS".to_string(), "30".to_string())],
    )
    .unwrap();
    assert_eq!(c.backup.age_recipients().unwrap()[0].to_string(), key);
    assert_eq!(c.backup.keep_days, 30);
    let env = [
        (
            "POSTWERK_BACKUP_RECIPIENTS".to_string(),
            format!("{key}, {key}"),
        ),
        ("POSTWERK_BACKUP_DIR".into(), "/var/backups/pw".into()),
    ];
    let c = Config::from_toml("", env).unwrap();
    assert_eq!(c.backup.age_recipients().unwrap().len(), 2);
    assert_eq!(c.backup.dir, Some(PathBuf::from("/var/backups/pw")));
    let err = Config::from_toml("[backup]\nrecipients = [\"age1nope\"]\n", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("backup.recipients[0]"), "{err}");
}

#[test]
fn smtp_inbound_section() {
    let c = Config::from_toml("", []).unwrap();
    assert_eq!(c.smtp.inbound.listen.to_string(), "127.0.0.1:2525");
    assert!(c.smtp.inbound.enabled && c.smtp.inbound.feedback_addresses.is_empty());
    let c = Config::from_toml(
        "",
        [(
            "POSTWERK_SMTP_INBOUND_FEEDBACK_ADDRESSES".to_string(),
            "fbl@b.example.com, abuse@b.example.com".to_string(),
        )],
    )
    .unwrap();
    assert_eq!(
        c.smtp.inbound.feedback_addresses,
        ["fbl@b.example.com", "abuse@b.example.com"]
    );
    let err = Config::from_toml("[smtp.inbound]\nfeedback_addresses = [\"nope\"]\n", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("feedback_addresses[0]"), "{err}");
}

#[test]
fn next_hops_and_durations() {
    assert_eq!(
        parse_next_hop("127.0.0.1:2626"),
        Some(("127.0.0.1".into(), 2626))
    );
    assert_eq!(parse_next_hop("[::1]:25"), Some(("::1".into(), 25)));
    assert_eq!(
        parse_next_hop("smtp.example.com"),
        Some(("smtp.example.com".into(), 25))
    );
    assert_eq!(parse_next_hop("a:b:c"), None);
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
    assert_eq!(parse_duration("7 days"), None);
    assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
}
