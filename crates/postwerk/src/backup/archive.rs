//! The backup file: an age stream holding one JSON manifest line and then the
//! payload (the SQLite database file or the `pg_dump` archive). Files are named
//! `postwerk-<UTC time>-<id>.age`, so they can be listed and pruned without the key.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use age::Identity;
use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::progress::{Bytes, Counting};

/// `Manifest::format` of every backup.
pub const FORMAT: &str = "postwerk-backup";
/// The manifest and payload layout this build writes and reads.
pub const VERSION: u32 = 1;
/// Longest manifest line read (a damaged file must not make us read it all).
const MAX_MANIFEST: u64 = 64 * 1024;
/// The time in file names.
const NAME_TIME: &str = "%Y%m%dT%H%M%SZ";

/// What a backup holds; the first line of the decrypted stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The layout version ([`VERSION`]).
    pub version: u32,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created_at: String,
    /// `sqlite` or `postgres`: what the payload is.
    pub store: String,
    /// The database schema version of the snapshot.
    pub schema_version: i64,
    /// The Postwerk version that wrote it.
    pub postwerk_version: String,
    /// Length of the payload in bytes.
    pub payload_bytes: u64,
    /// SHA-256 of the payload (hex).
    pub payload_sha256: String,
}

/// The name of a backup taken at `at`: `postwerk-20260101T120000Z-<id>.age`.
pub fn file_name(at: DateTime<Utc>, id: &str) -> String {
    format!("postwerk-{}-{id}.age", at.format(NAME_TIME))
}

/// `t` as RFC 3339 in UTC to the second (`2026-01-01T12:00:00Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The time in a backup's file name; `None` if it is not a backup's name.
pub fn time_of(name: &str) -> Option<DateTime<Utc>> {
    let rest = name.strip_prefix("postwerk-")?.strip_suffix(".age")?;
    let (time, id) = rest.split_once('-')?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    NaiveDateTime::parse_from_str(time, NAME_TIME)
        .ok()
        .map(|t| t.and_utc())
}

/// A backup file found in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its path.
    pub path: PathBuf,
    /// The time in its name.
    pub created: DateTime<Utc>,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The backups in `dir`, oldest first (other files are ignored).
pub fn scan(dir: &Path) -> anyhow::Result<Vec<Found>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let Some(created) = entry.file_name().to_str().and_then(time_of) else {
            continue;
        };
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        if meta.is_file() {
            found.push(Found {
                path: entry.path(),
                created,
                bytes: meta.len(),
            });
        }
    }
    found.sort_by(|a, b| (a.created, &a.path).cmp(&(b.created, &b.path)));
    Ok(found)
}

/// The backups to delete when keeping those newer than `cutoff`: the older ones,
/// never the newest backup of all. `found` is oldest first.
pub fn expired(found: &[Found], cutoff: DateTime<Utc>) -> &[Found] {
    let older = found.iter().take_while(|f| f.created < cutoff).count();
    &found[..older.min(found.len().saturating_sub(1))]
}

/// Length and SHA-256 (hex) of a file.
pub fn digest_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut hashing = Hashing::new(io::sink());
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let n = io::copy(&mut file, &mut hashing)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok((n, hashing.hex()))
}

/// Encrypts `manifest` and the `payload` file to `recipients` into `out` (mode
/// 0600), through `out.tmp` which is synced and then renamed, with progress.
pub fn write(
    out: &Path,
    manifest: &Manifest,
    payload: &Path,
    recipients: &[age::x25519::Recipient],
) -> anyhow::Result<()> {
    let tmp = super::Scratch(out.with_extension("age.tmp"));
    let file = private_file(tmp.path())?;
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .context("backup.recipients")?;
    let mut writer = encryptor
        .wrap_output(io::BufWriter::new(file))
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    let mut line = serde_json::to_vec(manifest).expect("manifest serialises");
    line.push(b'\n');
    let input =
        File::open(payload).with_context(|| format!("cannot read {}", payload.display()))?;
    let mut progress = Bytes::new("encrypting", manifest.payload_bytes);
    let copied = writer.write_all(&line).and_then(|()| {
        io::copy(
            &mut Counting {
                inner: input,
                progress: &mut progress,
            },
            &mut writer,
        )
    });
    progress.finish();
    let written = copied
        .and_then(|_| writer.finish())
        .and_then(|buffered| buffered.into_inner().map_err(|e| e.into_error()))
        .and_then(|file| file.sync_all());
    written.with_context(|| format!("cannot write {}", tmp.path().display()))?;
    std::fs::rename(tmp.path(), out).with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(dir) = out.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
    }
    Ok(())
}

/// The identities in an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments),
/// as written by `age-keygen` or `postwerk backup keygen`.
pub fn identities(path: &Path) -> anyhow::Result<Vec<Box<dyn Identity + Send + Sync>>> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ids = age::IdentityFile::from_buffer(text.as_slice())
        .and_then(|f| f.into_identities().map_err(io::Error::other))
        .with_context(|| format!("{}: not an age identity file", path.display()))?;
    if ids.is_empty() {
        bail!("{}: holds no AGE-SECRET-KEY-1 identity", path.display());
    }
    Ok(ids)
}

/// Decrypts the backup `file` with `identities`, writes its payload into `dest`
/// (created, mode 0600) and checks length and SHA-256; returns the manifest. Every
/// byte is read and authenticated before this returns `Ok`: a truncated, altered or
/// foreign file is an error naming it.
pub fn read(
    file: &Path,
    identities: &[Box<dyn Identity + Send + Sync>],
    dest: impl Write,
) -> anyhow::Result<Manifest> {
    let shown = file.display();
    let input = File::open(file).with_context(|| format!("cannot read {shown}"))?;
    let total = input.metadata().map(|m| m.len()).unwrap_or(0);
    let mut progress = Bytes::new("decrypting", total);
    let counted = Counting {
        inner: input,
        progress: &mut progress,
    };
    let result = read_counted(counted, identities, dest);
    progress.finish();
    result.with_context(|| shown.to_string())
}

fn read_counted(
    input: impl Read,
    identities: &[Box<dyn Identity + Send + Sync>],
    dest: impl Write,
) -> anyhow::Result<Manifest> {
    let decryptor = age::Decryptor::new_buffered(BufReader::new(input)).map_err(age_error)?;
    let stream = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn Identity))
        .map_err(age_error)?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(MAX_MANIFEST)
        .read_until(b'\n', &mut line)
        .map_err(damaged)?;
    let manifest: Manifest = serde_json::from_slice(&line).context("no backup manifest")?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        bail!(
            "format {} version {} (this build reads {FORMAT} version {VERSION})",
            manifest.format,
            manifest.version
        );
    }
    let mut hashing = Hashing::new(dest);
    let copied = io::copy(
        &mut reader.by_ref().take(manifest.payload_bytes),
        &mut hashing,
    )
    .map_err(damaged)?;
    // Reading to the end makes age authenticate the last chunk (truncation).
    let trailing = io::copy(&mut reader, &mut io::sink()).map_err(damaged)?;
    if copied != manifest.payload_bytes || trailing != 0 {
        bail!(
            "payload is {} bytes, the manifest says {}: damaged",
            copied + trailing,
            manifest.payload_bytes
        );
    }
    if hashing.hex() != manifest.payload_sha256 {
        bail!("payload SHA-256 does not match the manifest: damaged or altered");
    }
    hashing.inner.flush().context("cannot write the payload")?;
    Ok(manifest)
}

fn age_error(e: age::DecryptError) -> anyhow::Error {
    match e {
        age::DecryptError::NoMatchingKeys => anyhow::anyhow!(
            "the identity does not open it (it was encrypted to other backup.recipients)"
        ),
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            anyhow::anyhow!("not an age-encrypted backup")
        }
        other => anyhow::anyhow!("damaged or altered ({other})"),
    }
}

fn damaged(e: io::Error) -> anyhow::Error {
    anyhow::anyhow!("damaged or altered ({e})")
}

/// A new file only its owner can read.
pub fn private_file(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    sha: ring::digest::Context,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            sha: ring::digest::Context::new(&ring::digest::SHA256),
        }
    }

    fn hex(&self) -> String {
        postwerk_core::hex::encode(self.sha.clone().finish().as_ref())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn manifest_for(payload: &[u8]) -> Manifest {
        let mut h = Hashing::new(io::sink());
        h.write_all(payload).unwrap();
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            created_at: "2026-01-02T03:04:05Z".into(),
            store: "sqlite".into(),
            schema_version: 8,
            postwerk_version: "0.1.0".into(),
            payload_bytes: payload.len() as u64,
            payload_sha256: h.hex(),
        }
    }

    /// A backup of `payload` in `dir` for a new key pair; (backup, identities).
    fn backup(
        dir: &Path,
        payload: &[u8],
    ) -> (PathBuf, Vec<Box<dyn Identity + Send + Sync>>, Manifest) {
        let key = age::x25519::Identity::generate();
        let plain = dir.join("payload");
        std::fs::write(&plain, payload).unwrap();
        let manifest = manifest_for(payload);
        let out = dir.join(file_name(Utc::now(), "abc123"));
        write(&out, &manifest, &plain, &[key.to_public()]).unwrap();
        let idfile = dir.join("id.txt");
        std::fs::write(
            &idfile,
            format!("# a comment\n{}\n", key.to_string().expose_secret()),
        )
        .unwrap();
        (out, identities(&idfile).unwrap(), manifest)
    }

    #[test]
    fn manifest_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let payload = b"SQLite format 3\0 marker@example.test".repeat(1000);
        let (file, ids, manifest) = backup(dir.path(), &payload);
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let raw = std::fs::read(&file).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"marker"), "encrypted");
        let mut out = Vec::new();
        assert_eq!(read(&file, &ids, &mut out).unwrap(), manifest);
        assert_eq!(out, payload);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert!(
            names
                .iter()
                .all(|e| !e.path().to_string_lossy().ends_with(".tmp")),
            "no temporary file left"
        );
    }

    #[test]
    fn wrong_identity_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (file, _, _) = backup(dir.path(), b"payload");
        let other: Vec<Box<dyn Identity + Send + Sync>> =
            vec![Box::new(age::x25519::Identity::generate())];
        let err = format!("{:#}", read(&file, &other, io::sink()).unwrap_err());
        assert!(
            err.contains("does not open it") && err.contains(&file.display().to_string()),
            "{err}"
        );
        std::fs::write(dir.path().join("bad.txt"), "hello\n").unwrap();
        let err = format!(
            "{:#}",
            identities(&dir.path().join("bad.txt")).err().unwrap()
        );
        assert!(err.contains("not an age identity file"), "{err}");
    }

    #[test]
    fn truncated_or_altered_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (file, ids, _) = backup(dir.path(), &vec![7u8; 200_000]);
        let raw = std::fs::read(&file).unwrap();
        let truncated = dir.path().join("truncated.age");
        std::fs::write(&truncated, &raw[..raw.len() - 1000]).unwrap();
        let mut flipped = raw.clone();
        let at = raw.len() / 2;
        flipped[at] ^= 1;
        let altered = dir.path().join("altered.age");
        std::fs::write(&altered, &flipped).unwrap();
        for bad in [&truncated, &altered] {
            let err = format!("{:#}", read(bad, &ids, io::sink()).unwrap_err());
            assert!(err.contains("damaged"), "{err}");
        }
        let err = format!(
            "{:#}",
            read(&dir.path().join("payload"), &ids, io::sink()).unwrap_err()
        );
        assert!(err.contains("not an age-encrypted backup"), "{err}");
    }

    #[test]
    fn a_payload_not_matching_its_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = age::x25519::Identity::generate();
        let plain = dir.path().join("payload");
        std::fs::write(&plain, b"the real payload").unwrap();
        let mut manifest = manifest_for(b"the real payload");
        manifest.payload_sha256 = manifest_for(b"another payload").payload_sha256;
        let out = dir.path().join("x.age");
        write(&out, &manifest, &plain, &[key.to_public()]).unwrap();
        let ids: Vec<Box<dyn Identity + Send + Sync>> = vec![Box::new(key)];
        let err = format!("{:#}", read(&out, &ids, io::sink()).unwrap_err());
        assert!(err.contains("SHA-256 does not match"), "{err}");
    }

    #[test]
    fn names_and_pruning_keep_the_newest() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let name = file_name(t("2026-03-04T05:06:07Z"), "k3y9ab");
        assert_eq!(name, "postwerk-20260304T050607Z-k3y9ab.age");
        assert_eq!(time_of(&name), Some(t("2026-03-04T05:06:07Z")));
        for bad in [
            "postwerk-2026-x.age",
            "other.age",
            "postwerk-20260304T050607Z-.age",
        ] {
            assert_eq!(time_of(bad), None, "{bad}");
        }
        let found: Vec<Found> = ["2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z"]
            .iter()
            .map(|s| Found {
                path: PathBuf::from(s),
                created: t(s),
                bytes: 1,
            })
            .collect();
        assert_eq!(expired(&found, t("2026-01-03T00:00:00Z")), &found[..1]);
        assert_eq!(
            expired(&found, t("2026-02-01T00:00:00Z")),
            &found[..1],
            "the newest is kept, however old"
        );
        assert!(expired(&found[..0], t("2026-02-01T00:00:00Z")).is_empty());
    }
}
