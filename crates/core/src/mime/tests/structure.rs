//! Message structure, header order, dates, base64 lines and boundaries.

use chrono::TimeZone;

use super::*;
use crate::mime::headers::write_date;
use crate::mime::multipart::BOUNDARY_LEN;

#[test]
fn text_only_golden() {
    let out = Fixture::new().render();
    let want = "Date: Mon, 23 Nov 2026 17:30:08 +0000\r\n\
                From: Alice <alice@example.com>\r\n\
                To: bob@example.net\r\n\
                Subject: Hello\r\n\
                Message-ID: <msg_01abc@mta.example.com>\r\n\
                MIME-Version: 1.0\r\n\
                Content-Type: text/plain; charset=utf-8\r\n\
                Content-Transfer-Encoding: 7bit\r\n\
                \r\n\
                Hi Bob\r\n";
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn header_order_and_custom_headers() {
    let mut fx = Fixture::new();
    fx.cc = vec![mb("carol@example.org", Some("Carol"))];
    fx.reply_to = Some(mb("support@example.com", None));
    fx.headers = vec![
        (
            "List-Unsubscribe".into(),
            "<https://example.com/u/1?a=?b>".into(),
        ),
        ("X-Campaign".into(), "spring".into()),
    ];
    let out = String::from_utf8(fx.render()).unwrap();
    let names: Vec<&str> = out
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .split("\r\n")
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Date",
            "From",
            "Reply-To",
            "To",
            "Cc",
            "Subject",
            "Message-ID",
            "MIME-Version",
            "List-Unsubscribe",
            "X-Campaign",
            "Content-Type",
            "Content-Transfer-Encoding"
        ]
    );
    // Structured custom values are never turned into encoded-words.
    assert!(out.contains("List-Unsubscribe: <https://example.com/u/1?a=?b>\r\n"));
}

#[test]
fn date_format() {
    let cases = [
        ((2026, 11, 23, 17, 30, 8), "Mon, 23 Nov 2026 17:30:08 +0000"),
        ((2025, 1, 5, 0, 0, 0), "Sun, 05 Jan 2025 00:00:00 +0000"),
        ((2000, 2, 29, 9, 5, 59), "Tue, 29 Feb 2000 09:05:59 +0000"),
        (
            (1999, 12, 31, 23, 59, 59),
            "Fri, 31 Dec 1999 23:59:59 +0000",
        ),
    ];
    for ((y, mo, d, h, mi, s), want) in cases {
        let mut out = vec![];
        write_date(&mut out, &Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), format!("Date: {want}\r\n"));
    }
}

#[test]
fn structures() {
    let pdf = att("report.pdf", "application/pdf", &binary(), None);
    let logo = att("logo.png", "image/png", b"\x89PNG\r\n", Some("logo@x"));
    let cases: [(&str, bool, bool, Vec<Attachment>, &str); 9] = [
        ("text", true, false, vec![], "text/plain"),
        ("html", false, true, vec![], "text/html"),
        (
            "both",
            true,
            true,
            vec![],
            "multipart/alternative(text/plain,text/html)",
        ),
        (
            "text+att",
            true,
            false,
            vec![pdf.clone()],
            "multipart/mixed(text/plain,application/pdf)",
        ),
        (
            "att only",
            false,
            false,
            vec![pdf.clone()],
            "multipart/mixed(application/pdf)",
        ),
        (
            "html+inline",
            false,
            true,
            vec![logo.clone()],
            "multipart/related(text/html,image/png)",
        ),
        (
            "both+inline",
            true,
            true,
            vec![logo.clone()],
            "multipart/related(multipart/alternative(text/plain,text/html),image/png)",
        ),
        (
            "all",
            true,
            true,
            vec![pdf.clone(), logo.clone()],
            "multipart/mixed(multipart/related(multipart/alternative(text/plain,text/html),image/png),application/pdf)",
        ),
        // A content id without html has nothing to be inline in: ordinary attachment.
        (
            "text+cid",
            true,
            false,
            vec![logo.clone()],
            "multipart/mixed(text/plain,image/png)",
        ),
    ];
    for (name, text, html, attachments, want) in cases {
        let mut fx = Fixture::new();
        fx.text = text.then(|| "Plain body\nsecond line".to_string());
        fx.html = html.then(|| "<p>HTML body</p>".to_string());
        fx.attachments = attachments;
        let out = fx.render();
        let e = Entity::parse(&out);
        assert_eq!(e.shape(), want, "{name}");
        for leaf in e.leaves() {
            let ct = leaf.content_type();
            let body = leaf.decoded();
            match ct.as_str() {
                "text/plain" if e.parts.is_empty() => {
                    assert_eq!(body, crlf("Plain body\nsecond line\n"), "{name}")
                }
                "text/plain" => assert_eq!(body, crlf("Plain body\nsecond line"), "{name}"),
                "text/html" if e.parts.is_empty() => {
                    assert_eq!(body, b"<p>HTML body</p>\r\n", "{name}")
                }
                "text/html" => assert_eq!(body, b"<p>HTML body</p>", "{name}"),
                "application/pdf" => {
                    assert_eq!(body, binary(), "{name}");
                    assert_eq!(
                        leaf.header("Content-Disposition"),
                        Some("attachment; filename=\"report.pdf\"")
                    );
                    assert_eq!(
                        leaf.header("Content-Type"),
                        Some("application/pdf; name=\"report.pdf\"")
                    );
                }
                "image/png" => {
                    assert_eq!(body, b"\x89PNG\r\n", "{name}");
                    assert_eq!(leaf.header("Content-ID"), Some("<logo@x>"), "{name}");
                    let disposition = if html { "inline" } else { "attachment" };
                    assert_eq!(
                        leaf.header("Content-Disposition"),
                        Some(format!("{disposition}; filename=\"logo.png\"").as_str()),
                        "{name}"
                    );
                }
                other => panic!("{name}: unexpected leaf {other}"),
            }
        }
        if e.content_type() == "multipart/related" || e.shape().contains("related") {
            let related = if e.content_type() == "multipart/related" {
                &e
            } else {
                &e.parts[0]
            };
            let root = if text {
                "multipart/alternative"
            } else {
                "text/html"
            };
            assert_eq!(
                param(related.header("Content-Type").unwrap(), "type").as_deref(),
                Some(root),
                "{name}"
            );
        }
    }
}

#[test]
fn base64_lines_are_76_and_round_trip() {
    for len in [0, 1, 56, 57, 58, 114, 1000, 4096] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        let mut fx = Fixture::new();
        fx.attachments = vec![att("x.bin", "application/octet-stream", &data, None)];
        let out = fx.render();
        let e = Entity::parse(&out);
        let leaf = e.leaves()[1];
        assert_eq!(leaf.decoded(), data, "len {len}");
        let lines: Vec<&[u8]> = leaf.body.split(|&b| b == b'\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if i + 1 < lines.len() {
                assert_eq!(line.len(), 76, "len {len}");
            } else {
                assert!(line.len() <= 76, "len {len}");
            }
        }
    }
}

#[test]
fn boundaries_random_and_distinct() {
    let mut fx = Fixture::new();
    fx.html = Some("<p>x</p>".into());
    fx.attachments = vec![
        att("a.pdf", "application/pdf", b"%PDF", None),
        att("l.png", "image/png", b"png", Some("l")),
    ];
    let boundaries = |out: &[u8]| -> Vec<String> {
        let mut found = vec![];
        fn walk(e: &Entity, found: &mut Vec<String>) {
            if let Some(b) = e.header("Content-Type").and_then(|v| param(v, "boundary")) {
                found.push(b);
            }
            e.parts.iter().for_each(|p| walk(p, found));
        }
        walk(&Entity::parse(out), &mut found);
        found
    };
    let first = boundaries(&fx.render());
    let second = boundaries(&fx.render());
    assert_eq!(first.len(), 3);
    for b in &first {
        assert_eq!(b.len(), BOUNDARY_LEN);
        assert!(b.starts_with("=_pw"));
        assert!(!second.contains(b), "boundary reused across messages");
        for other in &first {
            assert!(b == other || !other.starts_with(b.as_str()), "prefix clash");
        }
    }
}
