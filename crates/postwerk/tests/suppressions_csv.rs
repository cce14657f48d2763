//! The suppression list as CSV through the real front door and the CLI: an import with
//! a byte-order mark, quoted fields, another provider's column names, a bad address, an
//! unknown reason and stream, and a duplicate; exports of every entry and of one
//! stream; erased addresses left out and counted; files that are no CSV refused.

mod common;

use common::{Harness, Options};
use serde_json::Value;

/// A CSV request with `key`: (status, the `X-Postwerk-Skipped-Erased` header, body).
fn csv_call(
    h: &Harness,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    content_type: &str,
) -> (u16, Option<String>, String) {
    let req = ureq::request(method, &format!("http://{}{}", h.http, path))
        .set("Authorization", &format!("Bearer {key}"))
        .set("Content-Type", content_type);
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("HTTP {method} {path}: {e}"),
    };
    let skipped = resp.header("X-Postwerk-Skipped-Erased").map(str::to_string);
    (resp.status(), skipped, resp.into_string().unwrap())
}

fn import(h: &Harness, path: &str, csv: &[u8]) -> (u16, Value) {
    let (s, _, text) = csv_call(h, &h.key, "POST", path, Some(csv), "text/csv");
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The export's rows without the header, sorted, and the skipped count.
fn export(h: &Harness, path: &str) -> (Vec<String>, String) {
    let (s, skipped, text) = csv_call(h, &h.key, "GET", path, None, "text/csv");
    assert_eq!(s, 200, "{text}");
    let mut lines = text.lines().map(str::to_string);
    assert_eq!(
        lines.next().as_deref(),
        Some("email,stream,reason,created_at,source")
    );
    let mut rows: Vec<String> = lines.collect();
    rows.sort();
    (rows, skipped.expect("X-Postwerk-Skipped-Erased"))
}

/// `row` without its `created_at` (the fourth field), which must be RFC 3339.
fn without_time(row: &str) -> String {
    let fields: Vec<&str> = row.splitn(5, ',').collect();
    assert!(
        chrono_like(fields[3]),
        "created_at is no RFC 3339 time: {row}"
    );
    format!("{},{},{},{}", fields[0], fields[1], fields[2], fields[4])
}

fn chrono_like(t: &str) -> bool {
    t.len() >= 20 && t.as_bytes()[4] == b'-' && t.as_bytes()[10] == b'T' && t.ends_with('Z')
}

#[test]
fn the_suppression_list_moves_as_csv() {
    let h = Harness::start(Options::default());
    let csv = b"\xEF\xBB\xBF\"Email\",\"Reason\",Stream,Source\r\n\
        \"a@example.test\",hard_bounce,,\"old, provider\"\r\n\
        b@example.test,SpamComplaint,broadcast,\r\n\
        \"c@example.test\",,,\"say \"\"hi\"\"\"\r\n\
        not-an-address,manual,,\r\n\
        A@Example.test,hard_bounce,,\r\n\
        d@example.test,erasure,,\r\n\
        e@example.test,,no-such-stream,\r\n";
    let (s, counts) = import(&h, "/v1/suppressions/import", csv);
    assert_eq!(s, 200, "{counts}");
    assert_eq!(
        (&counts["imported"], &counts["already"], &counts["rejected"]),
        (&3.into(), &1.into(), &3.into()),
        "{counts}"
    );
    assert_eq!(
        counts["errors"],
        serde_json::json!([
            {"row": 5, "reason": "invalid_address"},
            {"row": 7, "reason": "invalid_reason"},
            {"row": 8, "reason": "unknown_stream"},
        ])
    );
    // The entries are the ones `POST /v1/suppressions` would have made.
    let (_, listed) = h.get("/v1/suppressions?email=b@example.test");
    assert_eq!(listed["suppressions"][0]["stream"], "broadcast", "{listed}");
    assert_eq!(listed["suppressions"][0]["reason"], "complaint");

    let (rows, skipped) = export(&h, "/v1/suppressions/export");
    let rows: Vec<String> = rows.iter().map(|r| without_time(r)).collect();
    assert_eq!(
        rows,
        [
            "a@example.test,,hard_bounce,\"old, provider\"",
            "b@example.test,broadcast,complaint,import",
            "c@example.test,,manual,\"say \"\"hi\"\"\"",
        ]
    );
    assert_eq!(skipped, "0");
    let (rows, _) = export(&h, "/v1/suppressions/export?stream=broadcast");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("b@example.test,broadcast,"));

    // Another provider's column name, rows going to the query's stream; the export
    // reads back what it wrote.
    let (s, counts) = import(
        &h,
        "/v1/suppressions/import?stream=broadcast",
        b"Recipient,created_at\nf@example.test,2020-01-01T00:00:00Z\n",
    );
    assert_eq!((s, &counts["imported"]), (200, &1.into()), "{counts}");
    let (_, _, all) = csv_call(&h, &h.key, "GET", "/v1/suppressions/export", None, "");
    let (s, again) = import(&h, "/v1/suppressions/import", all.as_bytes());
    assert_eq!(
        (s, &again["imported"], &again["already"]),
        (200, &0.into(), &4.into()),
        "{again}"
    );

    // An erased address is not exported, only counted.
    let privacy = h.new_key(None, "read,write,privacy,admin", &[]);
    let (s, erased) = h.call(&privacy, "DELETE", "/v1/subjects/c@example.test", None);
    assert_eq!(s, 200, "{erased}");
    let (rows, skipped) = export(&h, "/v1/suppressions/export");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| !r.starts_with("c@")), "{rows:?}");
    assert_eq!(skipped, "1");
    let (_, skipped) = export(&h, "/v1/suppressions/export?stream=broadcast");
    assert_eq!(skipped, "0", "the tombstone is of every stream");

    // Refusals: an unknown stream, no CSV, no email column, the wrong media type, and
    // a key that may read but not write.
    for path in [
        "/v1/suppressions/import?stream=nope",
        "/v1/suppressions/export?stream=nope",
    ] {
        let method = if path.contains("import") {
            "POST"
        } else {
            "GET"
        };
        let (s, _, body) = csv_call(&h, &h.key, method, path, Some(b"email\n"), "text/csv");
        assert_eq!(s, 422, "{path}: {body}");
        assert!(body.contains("unknown_stream"), "{body}");
    }
    for bad in [&b""[..], b"name,phone\nx,1\n", b"email\n\"never closed\n"] {
        let (s, body) = import(&h, "/v1/suppressions/import", bad);
        assert_eq!(s, 422, "{body}");
        assert_eq!(body["error"]["code"], "invalid_csv", "{body}");
    }
    let (s, _, _) = csv_call(
        &h,
        &h.key,
        "POST",
        "/v1/suppressions/import",
        Some(b"{}"),
        "application/json",
    );
    assert_eq!(s, 415);
    let reader = h.new_key(None, "read", &[]);
    let (s, _, _) = csv_call(&h, &reader, "GET", "/v1/suppressions/export", None, "");
    assert_eq!(s, 200);
    let (s, _, body) = csv_call(
        &h,
        &reader,
        "POST",
        "/v1/suppressions/import",
        Some(b"email\nx@example.test\n"),
        "text/csv",
    );
    assert_eq!(s, 403, "{body}");

    // Each import and export is on the audit chain with its counts.
    let imports = h.audit_entries(&privacy, "suppression.import");
    assert_eq!(imports.len(), 3, "{imports:?}");
    assert!(
        imports
            .iter()
            .any(|e| e["target"] == "3 imported, 1 already listed, 3 rejected"),
        "{imports:?}"
    );
    let exports = h.audit_entries(&privacy, "suppression.export");
    assert!(
        exports
            .iter()
            .any(|e| e["target"] == "3 entries (every stream), 1 erased not exported"),
        "{exports:?}"
    );
    assert!(
        !h.server_log().contains("@example.test"),
        "an address was logged"
    );

    // The CLI, on the store directly.
    let file = h.root.path().join("list.csv");
    std::fs::write(&file, "email,reason\ng@example.test,unsubscribe\nbad\n").unwrap();
    let out = h.cli(&[
        "suppressions",
        "import",
        file.to_str().unwrap(),
        "--stream",
        "broadcast",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "imported 1, already listed 0, rejected 1"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("row 3: invalid_address"));
    let exported = h.cli_ok(&["suppressions", "export", "--stream", "broadcast"]);
    let mut lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines.remove(0), "email,stream,reason,created_at,source");
    lines.sort();
    assert_eq!(lines.len(), 3, "{exported}");
    assert!(lines[2].starts_with("g@example.test,broadcast,unsubscribe,"));
    assert!(lines[2].ends_with(",import"));
    let out = h.cli(&["suppressions", "export", "--stream", "nope"]);
    assert!(!out.status.success());
    assert_eq!(h.audit_entries(&privacy, "suppression.import").len(), 4);
}

/// More rows than a batch of the import (500) and a page of the export (1000): every
/// row arrives, once, however the pages fall; a stream's export pages over the others.
#[test]
fn a_long_list_crosses_batches_and_pages() {
    let h = Harness::start(Options::default());
    let mut csv = String::from("email,stream\n");
    for i in 0..2600 {
        let stream = if i % 2 == 0 { "broadcast" } else { "" };
        csv.push_str(&format!("p{i}@example.test,{stream}\n"));
    }
    let (s, counts) = import(&h, "/v1/suppressions/import", csv.as_bytes());
    assert_eq!((s, &counts["imported"]), (200, &2600.into()), "{counts}");
    let (rows, skipped) = export(&h, "/v1/suppressions/export");
    assert_eq!((rows.len(), skipped.as_str()), (2600, "0"));
    let mut emails: Vec<&str> = rows.iter().map(|r| r.split(',').next().unwrap()).collect();
    emails.dedup();
    assert_eq!(emails.len(), 2600);
    let (rows, _) = export(&h, "/v1/suppressions/export?stream=broadcast");
    assert_eq!(rows.len(), 1300);
    assert!(rows.iter().all(|r| r.contains(",broadcast,")));
}
