//! The report parser against a corpus of real and RFC-example reports
//! (`tests/fixtures/reports`, expected outcomes written by hand in its
//! `manifest.toml`), plus a property test: no input makes it panic.

use std::collections::BTreeSet;
use std::path::PathBuf;

use proptest::prelude::*;
use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Manifest {
    sample: Vec<Sample>,
}

#[derive(Deserialize)]
struct Sample {
    file: String,
    kind: String,
    recipients: Vec<String>,
    status: Option<String>,
    diagnostic_status: Option<String>,
    hard: Option<bool>,
    feedback_type: Option<String>,
    note: String,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports")
}

fn check(sample: &Sample) -> Result<(), String> {
    let raw = std::fs::read(fixtures().join(&sample.file)).map_err(|e| e.to_string())?;
    let found = parse(&raw);
    let kinds: BTreeSet<&str> = found
        .iter()
        .map(|f| match f.kind {
            Kind::Bounced => "bounce",
            Kind::Deferred => "delay",
            Kind::Complained => "complaint",
            Kind::Autoreply => "autoreply",
        })
        .collect();
    let want_kinds: BTreeSet<&str> = match sample.kind.as_str() {
        "none" => BTreeSet::new(),
        k => [k].into(),
    };
    if kinds != want_kinds {
        return Err(format!("kind {kinds:?}, want {want_kinds:?}"));
    }
    let named: BTreeSet<String> = found
        .iter()
        .flat_map(|f| [f.recipient.clone(), f.final_recipient.clone()])
        .flatten()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    let want: BTreeSet<String> = sample
        .recipients
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    if named != want {
        return Err(format!("recipients {named:?}, want {want:?}"));
    }
    if let Some(status) = &sample.status {
        let statuses: Vec<_> = found.iter().filter_map(|f| f.status.as_deref()).collect();
        let ok = statuses.contains(&status.as_str())
            || sample
                .diagnostic_status
                .as_deref()
                .is_some_and(|d| statuses.contains(&d));
        if !ok {
            return Err(format!("status {statuses:?}, want {status}"));
        }
    }
    if let Some(hard) = sample.hard {
        let got: BTreeSet<bool> = found.iter().map(|f| f.hardbounce).collect();
        if got != [hard].into() {
            return Err(format!(
                "hardbounce {got:?}, want {hard} ({:?})",
                found.iter().map(|f| f.reason).collect::<Vec<_>>()
            ));
        }
    }
    if let Some(t) = &sample.feedback_type {
        let got: Vec<_> = found.iter().map(|f| f.feedback_type.as_deref()).collect();
        if got != [Some(t.as_str())] {
            return Err(format!("feedback type {got:?}, want {t}"));
        }
    }
    Ok(())
}

#[test]
fn corpus_matches_the_manifest() {
    let text = std::fs::read_to_string(fixtures().join("manifest.toml")).expect("manifest");
    let manifest: Manifest = toml::from_str(&text).expect("manifest parses");
    assert!(manifest.sample.len() >= 30, "corpus too small");
    let failures: Vec<String> = manifest
        .sample
        .iter()
        .filter_map(|s| {
            check(s)
                .err()
                .map(|e| format!("{} ({}): {e}", s.file, s.note))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} samples wrong:\n{}",
        failures.len(),
        manifest.sample.len(),
        failures.join("\n")
    );
}

#[test]
fn verp_tokens_are_found_anywhere_once() {
    let raw =
        b"Return-Path: <B+rcpt_01jc0000000000000000000000-0a1b2c3d4e@bounces.example.com>\r\n\
                Original-Mail-From: b+rcpt_01jc0000000000000000000000-0a1b2c3d4e@x\r\n\
                X: b+rcpt_short-0a1b2c3d4e@x\r\n";
    assert_eq!(
        verp_tokens(raw),
        [(
            "rcpt_01jc0000000000000000000000".to_string(),
            "0a1b2c3d4e".to_string()
        )]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes, and mutations of a real DSN, never panic.
    #[test]
    fn never_panics(noise in proptest::collection::vec(any::<u8>(), 0..2048), cut in 0usize..4096, at in 0usize..4096) {
        let _ = parse(&noise);
        let _ = verp_tokens(&noise);
        let dsn = std::fs::read(fixtures().join("postfix-dsn-multi.eml")).expect("sample");
        let mut mutated = dsn[..cut.min(dsn.len())].to_vec();
        let at = at.min(mutated.len());
        mutated.splice(at..at, noise.iter().copied());
        let _ = parse(&mutated);
    }
}

/// A failure notice in another language whose text has a multi-byte character across
/// byte 2000 (where the delay wording is looked for) used to panic the inbound
/// session, so the bounce was never recorded. It is read like any other notice.
#[test]
fn multi_byte_character_across_the_delay_window_is_read() {
    for pad in 1990..2002 {
        let mut raw = String::from(
            "From: MAILER-DAEMON@mx.example.net\r\nTo: b+x@bounces.example.com\r\n\
             Subject: Unzustellbar\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        );
        let body_start = raw.len();
        raw.push_str("Die Nachricht an kai@example.org konnte nicht zugestellt werden: 550 5.1.1 unbekannt. ");
        while raw.len() - body_start < pad {
            raw.push('x');
        }
        // Two-byte characters from here on: one of them straddles byte 2000 of the text.
        for _ in 0..20 {
            raw.push_str("äöü");
        }
        raw.push_str("\r\n");
        let found = parse(raw.as_bytes());
        assert_eq!(found.len(), 1, "pad {pad}: {found:?}");
        assert_eq!(found[0].kind, Kind::Bounced);
        assert_eq!(found[0].recipient.as_deref(), Some("kai@example.org"));
        assert_eq!(found[0].status.as_deref(), Some("5.1.1"));
    }
}

/// Every committed fuzz corpus file is read without panicking.
#[test]
fn replays_the_fuzz_corpus() {
    for (path, data) in fuzz_corpus("report") {
        eprintln!("{}", path.display());
        let _ = parse(&data);
        let _ = verp_tokens(&data);
    }
}

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus.rs"));
