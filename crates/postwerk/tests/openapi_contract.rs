//! The API against its OpenAPI document, through the real front door: the document
//! served at `/v1/openapi.json` is the one checked in under docs/, and schemathesis
//! (`--checks all`: status codes, response schemas, content types, negative and
//! positive data, authentication, stateful links) finds nothing against a running
//! server. Needs `schemathesis` (`pip install schemathesis`; `.ci/run` installs it).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Harness, Options};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_api_honours_its_openapi_document() {
    let h = Harness::start(Options {
        // Schemathesis probes authentication with invalid keys on purpose.
        http: "max_key_failures = 1000000",
        extra: "[webhooks]\nallow_loopback = true\n",
        ..Default::default()
    });
    let doc = repo().join("docs/openapi.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&doc).unwrap()).unwrap();
    let (status, served) = h.request_with_key("GET", "/v1/openapi.json", None, &[], None);
    assert_eq!(status, 200);
    assert_eq!(served, file, "the served document is docs/openapi.json");

    let key = h.named_key(
        "contract",
        None,
        "send,read,write,import,export,privacy,admin",
        &[],
    );
    // Hypothesis on Python 3.11 sometimes aborts with an internal `SystemError` while
    // generating deeply nested JSON (batch items may be any JSON value). That is the
    // tool crashing, not a finding: such a run is repeated (at most twice); any real
    // failure fails the test at once.
    let mut attempts = 0;
    let (status, report, errors) = loop {
        attempts += 1;
        let run = Command::new("schemathesis")
            .current_dir(h.root.path())
            .arg("--config-file")
            .arg(repo().join(".ci/schemathesis.toml"))
            .arg("run")
            .arg(&doc)
            .args(["--url", &format!("http://{}", h.http)])
            .args(["--checks", "all"])
            .args(["-H", &format!("Authorization: Bearer {key}")])
            .output()
            .expect("schemathesis is installed (pip install schemathesis)");
        let report = String::from_utf8_lossy(&run.stdout).to_string();
        let errors = String::from_utf8_lossy(&run.stderr).to_string();
        let tool_crash = report.contains("AST constructor recursion depth mismatch")
            && !report.contains("FAILURES");
        if run.status.success() || !tool_crash || attempts == 3 {
            break (run.status, report, errors);
        }
    };
    assert!(
        status.success(),
        "schemathesis found failures:\n{report}\n{errors}"
    );
    assert!(report.contains("Tested:"), "{report}");
}
