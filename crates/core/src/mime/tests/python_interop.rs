//! Cross-check against Python's `email` package (python3 is required by the test suite).

use super::*;

#[test]
fn python_email_parser_agrees() {
    const SCRIPT: &str = r#"
import sys, json, base64, email, email.policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
# The bytes parser keeps raw (RFC 6532) UTF-8 header bytes as surrogate escapes.
raw = lambda s: s.encode("utf-8", "surrogateescape").decode("utf-8")
defects = []
for part in m.walk():
    defects += [type(d).__name__ for d in part.defects]
    for k, v in part.items():
        defects += [k + ":" + type(d).__name__ for d in getattr(v, "defects", ())]
text = m.get_body(preferencelist=("plain",))
html = m.get_body(preferencelist=("html",))
leaves = []
for part in m.walk():
    if part.is_multipart() or part is text or part is html:
        continue
    leaves.append({
        "type": part.get_content_type(),
        "filename": part.get_filename(),
        "cid": part["content-id"],
        "disposition": part.get_content_disposition(),
        "data": base64.b64encode(part.get_payload(decode=True)).decode(),
    })
frm = m["from"].addresses[0]
print(json.dumps({
    "subject": str(m["subject"]),
    "from_name": frm.display_name,
    "from_addr": raw(frm.addr_spec),
    "to": [[a.display_name, raw(a.addr_spec)] for a in m["to"].addresses],
    "custom": str(m["x-campaign"]),
    "structure": m.get_content_type(),
    "text": text.get_content() if text else None,
    "html": html.get_content() if html else None,
    "leaves": leaves,
    "defects": defects,
}))
"#;
    let mut fx = Fixture::new();
    fx.from = mb("news@example.com", Some("Zoë «Postwerk» Büro, GmbH"));
    fx.to = vec![
        mb("bob@example.net", Some("Smith, Bob")),
        mb("jörg@müller.de", Some("Jörg")),
    ];
    fx.subject = "Grüße — your invoice 🎉 is ready, with a rather long subject to fold".into();
    fx.text = Some(format!("Hallo Jörg,\n{}\n=end \n", "lang ".repeat(50)));
    fx.html = Some("<p>Hallo <img src=\"cid:logo@x\"></p>\n".into());
    fx.headers = vec![("X-Campaign".into(), "Frühling 2026".into())];
    let pdf = binary();
    fx.attachments = vec![
        att("Rechnung Nr. 1 – März.pdf", "application/pdf", &pdf, None),
        att(
            "logo.png",
            "image/png",
            &[0x89, b'P', b'N', b'G', 0, 255],
            Some("logo@x"),
        ),
        att(
            &("長い名前".repeat(20) + ".txt"),
            "text/plain; charset=utf-8",
            b"plain\n",
            None,
        ),
    ];
    let out = fx.render();
    let child = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!("spawning python3 (required by the test suite): {e}"),
    };
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &out).unwrap();
    let result = child.wait_with_output().unwrap();
    assert!(
        result.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    // Python's bytes parser predates RFC 6532: the raw UTF-8 address in To (and only
    // that) is reported as undecodable / non-ASCII. Anything else is a real defect.
    let allowed = ["To:NonASCIILocalPartDefect", "To:UndecodableBytesDefect"];
    let defects: Vec<&str> = v["defects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .filter(|d| !allowed.contains(d))
        .collect();
    assert!(defects.is_empty(), "python reported defects: {defects:?}");
    assert_eq!(v["subject"], fx.subject.as_str());
    assert_eq!(v["from_name"], "Zoë «Postwerk» Büro, GmbH");
    assert_eq!(v["from_addr"], "news@example.com");
    assert_eq!(
        v["to"],
        serde_json::json!([
            ["Smith, Bob", "bob@example.net"],
            ["Jörg", "jörg@xn--mller-kva.de"]
        ])
    );
    assert_eq!(v["custom"], "Frühling 2026");
    assert_eq!(v["structure"], "multipart/mixed");
    let nl = |s: &str| s.replace("\r\n", "\n");
    assert_eq!(nl(v["text"].as_str().unwrap()), fx.text.clone().unwrap());
    assert_eq!(nl(v["html"].as_str().unwrap()), fx.html.clone().unwrap());
    let leaves = v["leaves"].as_array().unwrap();
    assert_eq!(leaves.len(), 3, "{leaves:?}");
    for a in &fx.attachments {
        let leaf = leaves
            .iter()
            .find(|l| l["filename"] == a.filename.as_str())
            .unwrap_or_else(|| panic!("python lost {}", a.filename));
        assert_eq!(leaf["data"], STANDARD.encode(&a.content), "{}", a.filename);
        let want_type = a.content_type.split(';').next().unwrap();
        assert_eq!(leaf["type"], want_type);
        match &a.content_id {
            Some(cid) => {
                assert_eq!(leaf["cid"], format!("<{cid}>"));
                assert_eq!(leaf["disposition"], "inline");
            }
            None => assert_eq!(leaf["disposition"], "attachment"),
        }
    }
}
