//! Encrypted backups through the real binary: `backup keygen`, `backup create` while
//! serve runs (the file is age-encrypted: no marker in it), `backup list`, `restore`
//! into the stopped instance (the contact is readable again, later changes are
//! gone, the old database is kept aside, the audit chain holds), a damaged backup
//! refused without touching the live store, and the erasure proof: a backup taken
//! before an erasure does not bring the person back.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    Harness, Options, Sink, bin, files_containing, fresh_pg_database, pg_admin_url, psql,
    wait_until,
};
use serde_json::{Value, json};

/// A running instance with a tenant, a contact carrying a marker that was sent a
/// message, and a backup key pair configured.
struct Setup {
    h: Harness,
    _sink: Sink,
    admin: String,
    email: String,
    marker: String,
    identity: PathBuf,
    backups: PathBuf,
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: Output) -> (String, String) {
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    (stdout, stderr)
}

fn setup(store_url: Option<String>) -> Setup {
    let sink = Sink::temp(false);
    let h = Harness::start(Options {
        store_url,
        ..Options::to(&sink)
    });
    ok(h.cli(&["tenants", "create", "acme"]));
    ok(h.cli(&["domains", "add", "acme.example", "--tenant", "acme"]));
    let admin = h.new_key(Some("acme"), "send,read,write,export,privacy,admin", &[]);

    let identity = h.root.path().join("backup-identity.txt");
    let (recipient, _) = ok(h.cli(&["backup", "keygen", "--out", identity.to_str().unwrap()]));
    let recipient = recipient.trim().to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    assert!(
        !h.cli(&["backup", "keygen", "--out", identity.to_str().unwrap()])
            .status
            .success(),
        "keygen never overwrites an identity"
    );
    let backups = h.root.path().join("backups");
    let mut config = std::fs::read_to_string(&h.config).unwrap();
    config.push_str(&format!(
        "\n[backup]\nrecipients = [\"{recipient}\"]\ndir = \"{}\"\n",
        backups.display()
    ));
    std::fs::write(&h.config, config).unwrap();

    let tag = std::process::id();
    let email = format!("backup.person{tag}@example.test");
    let marker = format!("Markercity{tag}");
    let s = Setup {
        h,
        _sink: sink,
        admin,
        email,
        marker,
        identity,
        backups,
    };
    let (st, c) = s.put_contact(&s.marker.clone());
    assert_eq!(st, 201, "{c}");
    let (st, sent) = s.call(
        "POST",
        "/v1/messages",
        Some(
            json!({"from": "app@acme.example", "to": [s.email], "subject": "Hello", "text": "Hi"}),
        ),
    );
    assert_eq!(st, 202, "{sent}");
    let path = format!("/v1/messages/{}", sent["id"].as_str().unwrap());
    let mut last = Value::Null;
    let delivered = wait_until(Duration::from_secs(30), || {
        last = s.call("GET", &path, None).1;
        last["recipients"][0]["status"] == "delivered"
    });
    assert!(delivered, "{last}");
    s
}

impl Setup {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.h
            .request_with_key(method, path, body.as_ref(), &[], Some(&self.admin))
    }

    fn put_contact(&self, city: &str) -> (u16, Value) {
        self.call(
            "PUT",
            &format!("/v1/contacts/{}", self.email),
            Some(json!({"attributes": {"city": city}})),
        )
    }

    fn contact(&self) -> (u16, Value) {
        self.call("GET", &format!("/v1/contacts/{}", self.email), None)
    }

    /// `backup create --to <backups>`: the new file's path.
    fn backup(&self) -> PathBuf {
        let (stdout, stderr) =
            ok(self
                .h
                .cli(&["backup", "create", "--to", self.backups.to_str().unwrap()]));
        assert!(
            stderr.contains("encrypting ["),
            "progress on stderr: {stderr}"
        );
        let path = PathBuf::from(stdout.trim());
        assert!(path.exists(), "stdout is the backup's path: {stdout}");
        path
    }

    /// `restore FILE` with the identity in `POSTWERK_BACKUP_IDENTITY`.
    fn restore(&self, file: &Path) -> Output {
        Command::new(bin())
            .arg("--config")
            .arg(&self.h.config)
            .arg("restore")
            .arg(file)
            .env("POSTWERK_BACKUP_IDENTITY", &self.identity)
            .output()
            .unwrap()
    }

    /// The length of the intact audit chain (`postwerk audit verify`).
    fn audit_entries(&self) -> u64 {
        let (out, _) = ok(self.h.cli(&["audit", "verify"]));
        let n = out
            .strip_prefix("audit chain intact: ")
            .and_then(|r| r.split(' ').next());
        n.and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"))
    }
}

/// Backup, change (and `after_backup`), restore: the backup's state is back.
fn round_trip(s: &mut Setup, after_backup: impl FnOnce()) {
    let entries = s.audit_entries();
    let file = s.backup();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let raw = std::fs::read(&file).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1"), "an age file");
    for needle in [s.email.as_bytes(), s.marker.as_bytes()] {
        assert!(
            files_containing(&s.backups, needle).is_empty(),
            "plaintext {} in the backup",
            String::from_utf8_lossy(needle)
        );
    }

    let (list, _) = ok(s.h.cli(&["backup", "list", "--json"]));
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["file"], json!(file), "{list}");
    assert!(list[0]["manifest"].is_null(), "no identity, no manifest");
    let id = s.identity.to_str().unwrap();
    let (checked, _) = ok(s.h.cli(&["backup", "list", "--identity", id]));
    assert!(checked.contains("\tOK "), "{checked}");

    // Changed after the backup: the restore undoes it.
    after_backup();
    assert_eq!(s.put_contact("Later").0, 200);
    let refused = s.restore(&file);
    assert!(!refused.status.success(), "restore while serve runs");
    assert!(
        text(&refused).1.contains("stop `postwerk serve`"),
        "{}",
        text(&refused).1
    );
    assert!(s.h.stop());

    // A damaged copy is refused before anything changes.
    let damaged = s.h.root.path().join("damaged.age");
    let mut bytes = raw.clone();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x40;
    std::fs::write(&damaged, &bytes).unwrap();
    let before = std::fs::read_dir(&s.h.data).unwrap().count();
    let out = s.restore(&damaged);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("damaged"), "{}", text(&out).1);
    assert_eq!(
        std::fs::read_dir(&s.h.data).unwrap().count(),
        before,
        "live store untouched"
    );

    let (stdout, stderr) = ok(s.restore(&file));
    assert!(stdout.contains("subject key(s) re-attached"), "{stdout}");
    assert!(
        stderr.contains("decrypting ["),
        "progress on stderr: {stderr}"
    );
    assert_eq!(
        s.audit_entries(),
        entries + 2,
        "the chain holds, with backup.create (in the backup) and backup.restore"
    );
    s.h.serve();
    let (st, c) = s.contact();
    assert_eq!(
        (st, &c["attributes"]["city"]),
        (200, &json!(s.marker)),
        "{c}"
    );
}

#[test]
fn backup_is_encrypted_and_restores_into_a_stopped_instance() {
    let mut s = setup(None);
    round_trip(&mut s, || {});
    let aside: Vec<_> = std::fs::read_dir(&s.h.data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".pre-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "the replaced database is kept aside");
}

#[test]
fn a_backup_taken_before_an_erasure_does_not_bring_the_person_back() {
    let mut s = setup(None);
    let before = s.backup();
    let (st, erased) = s.call("DELETE", &format!("/v1/subjects/{}", s.email), None);
    assert_eq!(st, 200, "{erased}");
    assert!(s.h.stop());
    let (stdout, _) = ok(s.restore(&before));
    let dropped = stdout
        .split("; ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no count of dropped rows: {stdout}"));
    // The erased person's rows in the backup have no live key: restore erases them.
    assert!(dropped > 0, "{stdout}");
    s.h.serve();
    let export = format!("/v1/subjects/{}/export", s.email);
    assert_eq!(s.call("GET", &export, None).0, 404, "export after restore");
    assert_eq!(s.contact().0, 404, "contact after restore");
    for needle in [s.marker.as_bytes(), s.email.as_bytes()] {
        let db = std::fs::read(s.h.data.join("postwerk.db")).unwrap();
        assert!(
            !db.windows(needle.len()).any(|w| w == needle),
            "plaintext in the restored database"
        );
        assert!(files_containing(&s.h.data, needle).is_empty(), "data dir");
    }
}

#[test]
fn postgres_backup_round_trip() {
    let Some(admin) = pg_admin_url() else {
        return;
    };
    let db = format!("postwerk_backup_{}", std::process::id());
    let url = fresh_pg_database(&admin, &db);
    let mut s = setup(Some(url.clone()));
    // Stand-in subject keys (of made-up subjects): the backup must not carry them,
    // the restore must bring back the live ones.
    let key = |hash: &str| {
        format!(
            "INSERT INTO subject_keys SELECT id, '\\x{hash}', '\\x5345435245544b4559', 1 \
             FROM tenants WHERE name = 'acme'"
        )
    };
    psql(
        &url,
        &format!(
            "CREATE TABLE IF NOT EXISTS subject_keys (tenant_id TEXT NOT NULL, rcpt_hash BYTEA \
             NOT NULL, key_wrapped BYTEA NOT NULL, created_at BIGINT NOT NULL, \
             PRIMARY KEY (tenant_id, rcpt_hash)); {}",
            key("a0")
        ),
    );
    round_trip(&mut s, || {
        psql(&url, "DELETE FROM subject_keys WHERE rcpt_hash = '\\xa0'");
        psql(&url, &key("b0"));
    });
    let hashes = psql(
        &url,
        "SELECT string_agg(encode(rcpt_hash, 'hex'), ',') FROM subject_keys \
         WHERE key_wrapped = '\\x5345435245544b4559'",
    );
    assert_eq!(hashes, "b0", "erased key stays gone, live key is back");
    assert!(s.h.stop());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {db}"));
}
