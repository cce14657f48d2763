//! Validation of custom headers and refusal of invalid messages.

use super::*;

#[test]
fn validate_header_table() {
    let reserved = |n: &str| Err(MimeError::ReservedHeader(n.to_string()));
    let bad_value = |n: &str| Err(MimeError::BadHeaderValue(n.to_string()));
    let cases: Vec<(String, &str, Result<(), MimeError>)> = vec![
        ("X-Campaign".into(), "spring-2026", Ok(())),
        (
            "List-Unsubscribe".into(),
            "<https://example.com/u?id=1>",
            Ok(()),
        ),
        ("X-Tabbed".into(), "a\tb", Ok(())),
        ("X-Unicode-Value".into(), "Grüße", Ok(())),
        ("X-Postwerkzeug".into(), "ok", Ok(())),
        (
            "X-Foo".into(),
            "a\r\nBcc: victim@example.com",
            bad_value("X-Foo"),
        ),
        ("X-Foo".into(), "a\nb", bad_value("X-Foo")),
        ("X-Foo".into(), "a\rb", bad_value("X-Foo")),
        ("X-Foo".into(), "a\0b", bad_value("X-Foo")),
        ("X-Foo".into(), "a\u{85}b", bad_value("X-Foo")),
        ("Bcc".into(), "x", reserved("Bcc")),
        ("subject".into(), "x", reserved("subject")),
        ("CONTENT-TYPE".into(), "text/html", reserved("CONTENT-TYPE")),
        ("DKIM-Signature".into(), "v=1", reserved("DKIM-Signature")),
        ("Message-Id".into(), "<a@b>", reserved("Message-Id")),
        (
            "X-Postwerk-Stream".into(),
            "broadcast",
            reserved("X-Postwerk-Stream"),
        ),
        (
            "x-postwerk-stream".into(),
            "broadcast",
            reserved("x-postwerk-stream"),
        ),
        ("X-Postwerk".into(), "x", reserved("X-Postwerk")),
        ("".into(), "x", Err(MimeError::BadHeaderName)),
        ("X Foo".into(), "x", Err(MimeError::BadHeaderName)),
        ("X:Foo".into(), "x", Err(MimeError::BadHeaderName)),
        ("X-Foo\r\nBcc".into(), "x", Err(MimeError::BadHeaderName)),
        ("Héader".into(), "x", Err(MimeError::BadHeaderName)),
        ("bob@example.com".into(), "x", Err(MimeError::BadHeaderName)),
        ("X".repeat(76), "x", Ok(())),
        ("X".repeat(77), "x", Err(MimeError::BadHeaderName)),
    ];
    for (name, value, want) in cases {
        assert_eq!(validate_header(&name, value), want, "{name:?}: {value:?}");
    }
    // Errors never echo the value, so never an address from it.
    let err = validate_header("X-Foo", "victim@example.com\r\n").unwrap_err();
    assert!(!err.to_string().contains('@'), "{err}");
}

/// Changes a valid fixture into an invalid one.
type Mutation = fn(&mut Fixture);

#[test]
fn render_refuses_invalid_input() {
    let cases: [(&str, Mutation, MimeError); 5] = [
        ("no body", (|f| f.text = None), MimeError::NoBody),
        (
            "injected header",
            (|f| f.headers = vec![("X-A".into(), "1\r\nBcc: x@y.z".into())]),
            MimeError::BadHeaderValue("X-A".into()),
        ),
        (
            "reserved header",
            (|f| f.headers = vec![("Sender".into(), "x".into())]),
            MimeError::ReservedHeader("Sender".into()),
        ),
        (
            "message id",
            (|f| f.message_id = "a@b>\r\nBcc: x".into()),
            MimeError::BadHeaderValue("Message-ID".into()),
        ),
        (
            "message id without @",
            (|f| f.message_id = "abc".into()),
            MimeError::BadHeaderValue("Message-ID".into()),
        ),
    ];
    let attachment_cases: [(Attachment, MimeError); 15] = [
        (att("a", "", b"", None), MimeError::BadContentType),
        (att("a", "pdf", b"", None), MimeError::BadContentType),
        (
            att("a", "application/", b"", None),
            MimeError::BadContentType,
        ),
        (
            att("a", "text/plain\r\nBcc: x", b"", None),
            MimeError::BadContentType,
        ),
        (
            att("a", "multipart/mixed", b"", None),
            MimeError::BadContentType,
        ),
        (
            att("a", "message/rfc822", b"", None),
            MimeError::BadContentType,
        ),
        (
            att("a", "text/plain; charset", b"", None),
            MimeError::BadContentType,
        ),
        (
            att("a", "text/plain; x=\"open", b"", None),
            MimeError::BadContentType,
        ),
        (att("", "text/plain", b"", None), MimeError::BadFilename),
        (
            att("a\r\nb", "text/plain", b"", None),
            MimeError::BadFilename,
        ),
        (
            att("../etc/passwd", "text/plain", b"", None),
            MimeError::BadFilename,
        ),
        (
            att("invoice\u{202E}fdp.exe", "text/plain", b"", None),
            MimeError::BadFilename,
        ),
        (
            att(&"a".repeat(256), "text/plain", b"", None),
            MimeError::BadFilename,
        ),
        (
            att("a", "image/png", b"", Some("a b")),
            MimeError::BadContentId,
        ),
        (
            att("a", "image/png", b"", Some("<x>\r\n")),
            MimeError::BadContentId,
        ),
    ];
    for (name, mutate, want) in cases {
        let mut fx = Fixture::new();
        mutate(&mut fx);
        assert_eq!(render(&fx.parts()), Err(want), "{name}");
    }
    for (a, want) in attachment_cases {
        let mut fx = Fixture::new();
        fx.attachments = vec![a.clone()];
        assert_eq!(render(&fx.parts()), Err(want), "{a:?}");
    }
    // Accepted variants.
    for a in [
        att("a.csv", "text/csv; charset=utf-8", b"1,2", None),
        att("a.txt", "text/plain; name=\"given.txt\"", b"x", None),
        att("a.png", "image/png", b"x", Some("<logo@example.com>")),
    ] {
        let mut fx = Fixture::new();
        fx.attachments = vec![a.clone()];
        let e = Entity::parse(&fx.render());
        assert_eq!(e.parts[1].decoded(), a.content, "{a:?}");
        assert_eq!(
            e.parts[1]
                .header("Content-Type")
                .unwrap()
                .matches("name=")
                .count(),
            1
        );
    }
    for err in [
        MimeError::ReservedHeader("Bcc".into()),
        MimeError::BadContentId,
    ] {
        assert!(!err.to_string().contains('@'));
    }
}
