//! DKIM tests: canonicalisation tables, and signatures verified by dkimpy (python3 with
//! dkimpy and pynacl is required by the test suite).

use super::*;

fn body_canon(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    relaxed_body(body, &mut out);
    out
}

#[test]
fn relaxed_body_table() {
    let many_empty = [&b"a\r\n"[..], &b"\r\n".repeat(40), b"x"].concat();
    let many_expected = [&b"a\r\n"[..], &b"\r\n".repeat(40), b"x\r\n"].concat();
    let cases: &[(&[u8], &[u8])] = &[
        // RFC 6376 §3.4.5 example body
        (b" C \r\nD \t E\r\n\r\n\r\n", b" C\r\nD E\r\n"),
        (b"", b""),
        (b"\r\n", b""),
        (b"\r\n\r\n\r\n", b""),
        (b"  \r\n\t\r\n", b""),
        (b"abc", b"abc\r\n"),
        (b"abc \t ", b"abc\r\n"),
        (b"abc  \r\n", b"abc\r\n"),
        (b"a\tb\r\n", b"a b\r\n"),
        (b"a b  c\r\n", b"a b c\r\n"),
        (b"\ta\r\n", b" a\r\n"),
        (b"a\r\n\r\nb\r\n\r\n", b"a\r\n\r\nb\r\n"),
        (b"a \r\n \r\nb", b"a\r\n\r\nb\r\n"),
        (b"a\nb\r\n", b"a\nb\r\n"),
        (&many_empty, &many_expected),
    ];
    for (input, expected) in cases {
        assert_eq!(
            body_canon(input),
            expected.to_vec(),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn relaxed_header_table() {
    let cases: &[(&[u8], &[&[u8]])] = &[
        // RFC 6376 §3.4.5 example headers
        (b"A: X\r\nB : Y\t\r\n\tZ  \r\n", &[b"a:X", b"b:Y Z"]),
        (b"Subject:\r\n", &[b"subject:"]),
        (b"X-Empty:   \r\n", &[b"x-empty:"]),
        (b"To: a@x,\r\n  b@y\r\n", &[b"to:a@x, b@y"]),
        (b"Last: no crlf  ", &[b"last:no crlf"]),
        (b"garbage line\r\nFrom: x\r\n", &[b"from:x"]),
    ];
    for (block, expected) in cases {
        let got: Vec<Vec<u8>> = parse_fields(block)
            .into_iter()
            .map(|(name, value)| {
                let mut out = Vec::new();
                relaxed_header(&mut out, name, value);
                out
            })
            .collect();
        let expected: Vec<Vec<u8>> = expected.iter().map(|e| e.to_vec()).collect();
        assert_eq!(got, expected, "block {:?}", String::from_utf8_lossy(block));
    }
}

#[test]
fn split_message_table() {
    let cases: &[(&[u8], &[u8], &[u8])] = &[
        (b"A: 1\r\n\r\nbody\r\n", b"A: 1\r\n", b"body\r\n"),
        (b"A: 1\r\n", b"A: 1\r\n", b""),
        (b"A: 1", b"A: 1", b""),
        (b"\r\nbody", b"", b"body"),
        (b"A: 1\r\n\r\n", b"A: 1\r\n", b""),
    ];
    for (msg, headers, body) in cases {
        assert_eq!(split_message(msg), (*headers, *body));
    }
}

#[test]
fn algorithm_names() {
    for alg in [DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256] {
        assert_eq!(alg.as_str().parse::<DkimAlgorithm>().ok(), Some(alg));
    }
    assert_eq!(
        "ED25519-SHA256".parse::<DkimAlgorithm>().ok(),
        Some(DkimAlgorithm::Ed25519Sha256)
    );
    assert!("rsa-sha1".parse::<DkimAlgorithm>().is_err());
    assert_eq!(DkimAlgorithm::Ed25519Sha256.key_type(), "ed25519");
    assert_eq!(
        dns_txt_value(DkimAlgorithm::RsaSha256, "AAAA"),
        "v=DKIM1; k=rsa; p=AAAA"
    );
}

const MESSAGE: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: bob@example.net,\r\n carol@example.net\r\n\
Subject:  Hello   world \r\n\
To: dave@example.net\r\n\
X-Unsigned: whatever\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <1@example.com>\r\n\
\r\n\
Hi Bob,\r\n\
.a line with a dot\r\n\
\x20 indented\ttab \x20\r\n\
\r\n\
\r\n";

/// One RSA and one Ed25519 key for all tests (RSA generation is slow).
fn keys() -> &'static (DkimKeyMaterial, DkimKeyMaterial) {
    static KEYS: std::sync::OnceLock<(DkimKeyMaterial, DkimKeyMaterial)> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(|| (generate_rsa_2048().unwrap(), generate_ed25519().unwrap()))
}

fn signers(rsa: &DkimKeyMaterial, ed: &DkimKeyMaterial) -> Vec<DkimSigner> {
    vec![
        DkimSigner::new(
            "example.com",
            "rsa2024",
            rsa.algorithm,
            &rsa.private_pkcs8_der,
        )
        .unwrap(),
        DkimSigner::new("example.com", "ed2024", ed.algorithm, &ed.private_pkcs8_der).unwrap(),
    ]
}

/// Runs dkimpy on `signed` and returns one verdict per DKIM-Signature (top to bottom).
fn dkimpy_verify(signed: &[u8], records: &[(&str, String)]) -> Vec<bool> {
    use std::io::Write as _;
    const SCRIPT: &str = r#"
import sys, dkim
msg = sys.stdin.buffer.read()
a = sys.argv[1:]
recs = {a[i]: a[i + 1].encode() for i in range(0, len(a), 2)}
def dns(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return recs.get(name.rstrip(".").lower())
def ok(i):
    try:
        return dkim.DKIM(msg).verify(idx=i, dnsfunc=dns)
    except dkim.ValidationError:
        return False
n = sum(1 for k, _ in dkim.DKIM(msg).headers if k.lower() == b"dkim-signature")
print(" ".join("1" if ok(i) else "0" for i in range(n)))
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c").arg(SCRIPT);
    for (name, txt) in records {
        cmd.arg(name).arg(txt);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be installed (with dkimpy and pynacl)");
    child.stdin.take().unwrap().write_all(signed).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dkimpy failed (pip install dkimpy pynacl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|v| v == "1")
        .collect()
}

fn records(rsa: &DkimKeyMaterial, ed: &DkimKeyMaterial) -> Vec<(&'static str, String)> {
    vec![
        (
            "rsa2024._domainkey.example.com",
            dns_txt_value(rsa.algorithm, &rsa.public_key_b64),
        ),
        (
            "ed2024._domainkey.example.com",
            dns_txt_value(ed.algorithm, &ed.public_key_b64),
        ),
    ]
}

#[test]
fn dkimpy_verifies_rsa_and_ed25519_and_rejects_tampering() {
    let (rsa, ed) = keys();
    let signers = signers(rsa, ed);
    let records = records(rsa, ed);
    let signed = sign_message(&signers, MESSAGE, 1_700_000_000).unwrap();
    assert!(signed.ends_with(MESSAGE));
    let text = String::from_utf8(signed.clone()).unwrap();
    for line in text.split("\r\n") {
        assert!(line.len() <= MAX_LINE, "line too long: {line:?}");
    }
    let unfolded = text.replace("\r\n\t", " ");
    assert!(unfolded.contains("a=rsa-sha256;"), "{text}");
    assert!(unfolded.contains("a=ed25519-sha256;"));
    assert!(unfolded.contains(" t=1700000000;"));
    assert!(
        unfolded.contains("h=from:from:to:to:subject:date:message-id;"),
        "{unfolded}"
    );
    assert_eq!(dkimpy_verify(&signed, &records), [true, true]);

    // Each algorithm alone.
    for signer in signers.iter().map(std::slice::from_ref) {
        let one = sign_message(signer, MESSAGE, 1_700_000_000).unwrap();
        assert_eq!(dkimpy_verify(&one, &records), [true]);
    }

    let tampered: &[(&str, &str)] = &[
        ("Hi Bob,", "Hi Rob,"),
        ("Hello   world", "Hello   World"),
        ("To: dave@", "To: mallory@"),
    ];
    for (from, to) in tampered {
        let bad = text.replacen(from, to, 1);
        assert_eq!(
            dkimpy_verify(bad.as_bytes(), &records),
            [false, false],
            "{from}"
        );
    }
    // Over-signing: a From header added on top breaks both signatures.
    let mut extra = b"From: mallory@example.org\r\n".to_vec();
    extra.extend_from_slice(&signed);
    assert_eq!(dkimpy_verify(&extra, &records), [false, false]);
    // Relaxed canonicalisation tolerates whitespace changes and trailing empty lines.
    let relaxed = text.replacen("Hi Bob,", "Hi  Bob, ", 1) + "\r\n\r\n";
    assert_eq!(dkimpy_verify(relaxed.as_bytes(), &records), [true, true]);
}

#[test]
fn dkimpy_verifies_messages_without_body() {
    let (rsa, ed) = keys();
    let signers = signers(rsa, ed);
    let records = records(rsa, ed);
    for msg in [
        &b"From: a@example.com\r\nSubject: x\r\n\r\n"[..],
        b"From: a@example.com\r\n",
    ] {
        let signed = sign_message(&signers, msg, 1).unwrap();
        let text = String::from_utf8(signed.clone())
            .unwrap()
            .replace("\r\n\t", "");
        // sha256 of the empty string: the relaxed canonical form of an empty body.
        assert!(text.contains("bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;"));
        assert_eq!(dkimpy_verify(&signed, &records), [true, true]);
    }
}

#[test]
fn signing_errors() {
    let (rsa, ed) = keys();
    let signers = signers(rsa, ed);
    assert!(matches!(
        sign_message(&signers, b"Subject: no from\r\n\r\nbody\r\n", 1),
        Err(DkimError::MissingFrom)
    ));
    assert_eq!(sign_message(&[], MESSAGE, 1).unwrap(), MESSAGE);
    let bad: &[(&str, &str, DkimAlgorithm, &[u8])] = &[
        (
            "example.com",
            "s",
            DkimAlgorithm::RsaSha256,
            &ed.private_pkcs8_der,
        ),
        (
            "example.com",
            "s",
            DkimAlgorithm::Ed25519Sha256,
            &rsa.private_pkcs8_der,
        ),
        ("example.com", "s", DkimAlgorithm::RsaSha256, b"junk"),
        (
            "exa mple.com",
            "s",
            DkimAlgorithm::RsaSha256,
            &rsa.private_pkcs8_der,
        ),
        (
            "example.com",
            "s;x=1",
            DkimAlgorithm::RsaSha256,
            &rsa.private_pkcs8_der,
        ),
        (
            "example.com",
            "",
            DkimAlgorithm::RsaSha256,
            &rsa.private_pkcs8_der,
        ),
    ];
    for (domain, selector, alg, key) in bad {
        assert!(
            DkimSigner::new(domain, selector, *alg, key).is_err(),
            "{domain} {selector}"
        );
    }
    assert!(!format!("{rsa:?}").contains(&B64.encode(&rsa.private_pkcs8_der)[..20]));
}
