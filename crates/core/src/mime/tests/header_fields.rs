//! Header field encoding: subjects, display names, address lists, long custom values and
//! file name parameters.

use super::*;

#[test]
fn subjects_round_trip() {
    let long_words = "A very long plain ASCII subject line that certainly needs folding \
                      because it goes on and on past seventy-eight characters";
    let cases: [(String, bool); 13] = [
        ("Hello".into(), false),
        ("".into(), false),
        ("Grüße aus Köln".into(), true),
        ("Re: =?utf-8?Q?not_an_encoded_word?=".into(), true),
        (
            "日本語の件名はとても長いのでいくつかのエンコードされた単語に分割される必要があります"
                .into(),
            true,
        ),
        (
            "Emoji 🎉🎉🎉 party with a fairly long tail of plain ascii words to fold nicely".into(),
            true,
        ),
        (long_words.into(), false),
        (format!("{long_words} \t  \t\t  {long_words}"), false),
        ("tabs\t\tinside  double  spaces ".into(), false),
        ("Line\r\nbreak".into(), true),
        // Pieces that cannot be folded and could approach 998 octets are encoded.
        ("x".repeat(950), true),
        (format!("a{}b", " ".repeat(2000)), true),
        (format!("trailing{}", " ".repeat(20)), true),
    ];
    for (subject, encoded) in cases {
        let mut fx = Fixture::new();
        fx.subject = subject.clone();
        let out = fx.render();
        let e = Entity::parse(&out);
        let got = e.header("Subject").unwrap();
        assert_eq!(decode_words(got), subject, "{subject:?}");
        assert_eq!(got.contains("=?utf-8?"), encoded, "{subject:?}");
    }
}

#[test]
fn display_names() {
    let cases = [
        ("Alice Smith", "From: Alice Smith <alice@example.com>"),
        ("Smith, Bob", "From: \"Smith, Bob\" <alice@example.com>"),
        (
            "He said \"hi\" \\o/",
            "From: \"He said \\\"hi\\\" \\\\o/\" <alice@example.com>",
        ),
        (
            "Postwerk Inc.",
            "From: \"Postwerk Inc.\" <alice@example.com>",
        ),
        (
            "Jörg Schmidt-Meyer",
            "From: =?utf-8?Q?J=C3=B6rg_Schmidt-Meyer?= <alice@example.com>",
        ),
        (
            "Jörg Müller",
            "From: =?utf-8?B?SsO2cmcgTcO8bGxlcg==?= <alice@example.com>",
        ),
        (
            "山田太郎",
            "From: =?utf-8?B?5bGx55Sw5aSq6YOO?= <alice@example.com>",
        ),
        (
            "=?utf-8?B?QQ==?=",
            "From: =?utf-8?B?PT91dGYtOD9CP1FRPT0/PQ==?= <alice@example.com>",
        ),
    ];
    for (name, want) in cases {
        let mut fx = Fixture::new();
        fx.from = mb("alice@example.com", Some(name));
        let out = String::from_utf8(fx.render()).unwrap();
        let from = out.lines().nth(1).unwrap();
        assert_eq!(from, want, "{name:?}");
        let e = Entity::parse(out.as_bytes());
        assert_eq!(display_name(e.header("From").unwrap()), name, "{name:?}");
    }
    // Long non-ASCII names split into several words, each whole characters.
    let long = "Ünïcödé Ñämé ".repeat(8);
    let long = long.trim();
    let mut fx = Fixture::new();
    fx.from = mb("alice@example.com", Some(long));
    let e = Entity::parse(&fx.render());
    assert_eq!(display_name(e.header("From").unwrap()), long);
}

#[test]
fn recipients_fold_at_commas() {
    let mut fx = Fixture::new();
    fx.to = (0..30)
        .map(|i| {
            mb(
                &format!("user{i}@example.com"),
                (i % 3 == 0).then_some("Zoë Person"),
            )
        })
        .collect();
    fx.cc = vec![mb("jörg@müller.de", Some("Jörg"))];
    let out = fx.render();
    let head = String::from_utf8(out[..find(&out, b"\r\n\r\n").unwrap()].to_vec()).unwrap();
    assert!(head.matches("\r\n ").count() >= 10, "To must be folded");
    let e = Entity::parse(&out);
    let to = e.header("To").unwrap();
    let addrs: Vec<&str> = to.split(", ").collect();
    assert_eq!(addrs.len(), 30);
    for (i, a) in addrs.iter().enumerate() {
        assert!(a.contains(&format!("user{i}@example.com")), "{a}");
    }
    // A UTF-8 local part is written as-is (SMTPUTF8); the domain in its canonical
    // A-label form.
    assert!(e.header("Cc").unwrap().ends_with("<jörg@xn--mller-kva.de>"));
}

#[test]
fn long_custom_header_values() {
    let mut fx = Fixture::new();
    let words = "token ".repeat(60);
    let huge = "x".repeat(2000);
    fx.headers = vec![
        ("X-Words".into(), words.trim_end().into()),
        ("X-Huge".into(), huge.clone()),
        ("X-Unicode".into(), "Grüße".into()),
        (
            "X-Tabs".into(),
            format!("{} \t \t\t \t end", "y".repeat(66)),
        ),
    ];
    let out = fx.render();
    let e = Entity::parse(&out);
    assert_eq!(e.header("X-Words").unwrap(), words.trim_end());
    assert_eq!(decode_words(e.header("X-Huge").unwrap()), huge);
    assert_eq!(decode_words(e.header("X-Unicode").unwrap()), "Grüße");
    let tabs = format!("{} \t \t\t \t end", "y".repeat(66));
    assert_eq!(e.header("X-Tabs").unwrap(), tabs);
}

#[test]
fn filenames() {
    let long_cjk = "報告書".repeat(40) + ".pdf";
    let long_ascii = format!("{}.txt", "a".repeat(100));
    let cases: [(&str, &str); 5] = [
        ("report.pdf", "attachment; filename=\"report.pdf\""),
        (
            "my report (v2).pdf",
            "attachment; filename=\"my report (v2).pdf\"",
        ),
        (
            "Übersicht.pdf",
            "attachment; filename*=utf-8''%C3%9Cbersicht.pdf",
        ),
        (
            "say \"hi\".txt",
            "attachment; filename*=utf-8''say%20%22hi%22.txt",
        ),
        (&long_cjk, ""),
    ];
    for (filename, want) in cases.into_iter().chain([(long_ascii.as_str(), "")]) {
        let mut fx = Fixture::new();
        fx.attachments = vec![att(filename, "application/pdf", b"x", None)];
        let e = Entity::parse(&fx.render());
        let disposition = e.parts[1].header("Content-Disposition").unwrap();
        if !want.is_empty() {
            assert_eq!(disposition, want);
        }
        assert_eq!(rfc2231_filename(disposition), filename, "{filename}");
    }
}

/// Reads `filename`, `filename*` or `filename*N[*]` parameters back.
fn rfc2231_filename(value: &str) -> String {
    let mut segments: Vec<(usize, String)> = vec![];
    for p in value.split(';').skip(1) {
        let (k, v) = p.trim().split_once('=').unwrap();
        if k == "filename" {
            return v.trim_matches('"').to_string();
        }
        let rest = k.strip_prefix("filename*").unwrap();
        let index = rest.trim_end_matches('*').parse().unwrap_or(0);
        let v = v.strip_prefix("utf-8''").unwrap_or(v);
        segments.push((index, v.to_string()));
    }
    segments.sort();
    let joined: String = segments.into_iter().map(|(_, s)| s).collect();
    let mut bytes = vec![];
    let raw = joined.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap();
            bytes.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).unwrap()
}
