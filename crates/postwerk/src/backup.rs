//! `postwerk backup …` and `postwerk restore`: consistent snapshots of the store,
//! encrypted with age to `[backup] recipients` (see [`archive`] for the file).
//!
//! A backup never holds the subject keys (`subject_keys`): the live database is the
//! key store, so a person erased after a backup was taken cannot be read from it,
//! and a restore re-attaches the live keys and drops the rows whose key is gone
//! (see [`postwerk_store::backup`]).

mod archive;

use std::path::{Path, PathBuf};
use std::time::Duration;

use age::secrecy::ExposeSecret;
use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Subcommand};
use postwerk_core::config::Config;
use postwerk_core::id::random_token;
use postwerk_store::Location;
use postwerk_store::vault::MASTER_KEY_FILE;

use crate::cli::{audited, open};

/// `postwerk backup …`.
#[derive(Subcommand)]
pub enum BackupCommand {
    /// Take a consistent snapshot of the store (while serve runs), encrypted to
    /// `backup.recipients`, as DIR/postwerk-<UTC time>-<id>.age (mode 0600); prints
    /// its path. Subject keys are left out (the live database keeps them).
    Create {
        /// Directory for the backup (default: `backup.dir`).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
    /// List the backups in a directory with their time and size, oldest first.
    List {
        /// Directory (default: `backup.dir`).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also decrypt each backup with this identity file, check it whole and show
        /// its manifest; exits 1 if one fails.
        #[arg(long, value_name = "FILE", env = "POSTWERK_BACKUP_IDENTITY")]
        identity: Option<PathBuf>,
    },
    /// Delete backups older than N days (by the time in their name); the newest
    /// backup is always kept. Prints each deleted file.
    Prune {
        /// Days to keep (default: `backup.keep_days`).
        #[arg(long, value_name = "N")]
        keep_days: Option<u32>,
        /// Directory (default: `backup.dir`).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Make an age key pair: writes the identity (secret key) to FILE (mode 0600)
    /// and prints the public recipient for `backup.recipients`.
    Keygen {
        /// Where to write the identity; must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// `postwerk restore FILE`.
#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file (`postwerk-….age`).
    file: PathBuf,
    /// The age identity file that opens it.
    #[arg(long, value_name = "FILE", env = "POSTWERK_BACKUP_IDENTITY")]
    identity: Option<PathBuf>,
}

/// Runs `postwerk backup …`.
pub async fn run(cmd: BackupCommand, config: Config) -> anyhow::Result<()> {
    match cmd {
        BackupCommand::Create { to } => create(dir_or_default(to, &config)?, config).await,
        BackupCommand::List {
            dir,
            json,
            identity,
        } => list(&dir_or_default(dir, &config)?, json, identity.as_deref()),
        BackupCommand::Prune { keep_days, dir } => prune(
            &dir_or_default(dir, &config)?,
            keep_days.unwrap_or(config.backup.keep_days),
        ),
        BackupCommand::Keygen { out } => keygen(&out),
    }
}

fn dir_or_default(dir: Option<PathBuf>, config: &Config) -> anyhow::Result<PathBuf> {
    dir.or_else(|| config.backup.dir.clone())
        .context("no backup directory: give one (--to/--dir DIR) or set backup.dir")
}

/// A plaintext working file, removed however the command ends.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A scratch file in the store's own directory (never /tmp: it holds plaintext).
fn scratch(location: &Location, config: &Config, what: &str) -> anyhow::Result<Scratch> {
    let dir = location.scratch_dir(&config.data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(Scratch(
        dir.join(format!(".{what}-{}.tmp", random_token(12))),
    ))
}

async fn create(dir: PathBuf, config: Config) -> anyhow::Result<()> {
    let recipients = config.backup.age_recipients()?;
    if recipients.is_empty() {
        bail!(
            "backup.recipients is empty: set `[backup] recipients = [\"age1…\"]` \
             (`postwerk backup keygen --out FILE` makes a key pair)"
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let location = Location::parse(&config.store_url())?;
    let plain = scratch(&location, &config, "backup")?;
    let services = open(config).await?;
    let now = Utc::now();
    let out = dir.join(archive::file_name(now, &random_token(6)));
    // Recorded before the snapshot, so the backup holds its own audit entry.
    let name = out.file_name().expect("a file name").to_string_lossy();
    audited(&services, None, "backup.create", name.into_owned()).await?;
    let snapshot = location
        .snapshot(plain.path())
        .await
        .context("cannot take a snapshot of the store")?;
    let (payload_bytes, payload_sha256) = archive::digest_file(plain.path())?;
    let manifest = archive::Manifest {
        format: archive::FORMAT.into(),
        version: archive::VERSION,
        created_at: archive::rfc3339(now),
        store: snapshot.store.into(),
        schema_version: snapshot.schema_version,
        postwerk_version: env!("CARGO_PKG_VERSION").into(),
        payload_bytes,
        payload_sha256,
    };
    archive::write(&out, &manifest, plain.path(), &recipients)?;
    drop(plain);
    eprintln!(
        "backup of the {} store (schema {}, {:.1} MB before encryption) written; \
         subject keys are not in it",
        manifest.store,
        manifest.schema_version,
        payload_bytes as f64 / 1e6
    );
    println!("{}", out.display());
    Ok(())
}

/// Runs `postwerk restore FILE`.
pub async fn restore(args: RestoreArgs, config: Config) -> anyhow::Result<()> {
    let identity = args.identity.context(
        "no identity: give --identity FILE or set POSTWERK_BACKUP_IDENTITY (the age \
         secret key matching backup.recipients)",
    )?;
    let identities = archive::identities(&identity)?;
    if std::net::TcpStream::connect_timeout(&config.http.listen, Duration::from_millis(500)).is_ok()
    {
        bail!(
            "something answers on http.listen ({}): stop `postwerk serve` before restoring",
            config.http.listen
        );
    }
    let master = config.data_dir.join(MASTER_KEY_FILE);
    if std::env::var_os("POSTWERK_MASTER_KEY").is_none() && !master.exists() {
        bail!(
            "{} is missing: the tenant keys in the backup are wrapped by the master key; \
             copy it from the old machine (or set POSTWERK_MASTER_KEY) first",
            master.display()
        );
    }
    let location = Location::parse(&config.store_url())?;
    let plain = scratch(&location, &config, "restore")?;
    // Decrypted and checked whole before the live store is touched.
    let manifest = {
        let mut payload = archive::private_file(plain.path())?;
        let manifest = archive::read(&args.file, &identities, &mut payload)?;
        payload
            .sync_all()
            .with_context(|| format!("cannot write {}", plain.path().display()))?;
        manifest
    };
    if manifest.store != location.kind() {
        bail!(
            "{} is a backup of a {} store; store.url names a {} store",
            args.file.display(),
            manifest.store,
            location.kind()
        );
    }
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let restored = location
        .restore(plain.path(), &stamp)
        .await
        .with_context(|| format!("cannot restore {}", args.file.display()))?;
    drop(plain);
    let services = open(config).await?;
    let name = args.file.file_name().unwrap_or_default().to_string_lossy();
    audited(&services, None, "backup.restore", name.into_owned()).await?;
    println!(
        "restored {} (taken {}, schema {})",
        args.file.display(),
        manifest.created_at,
        manifest.schema_version
    );
    if let Some(aside) = &restored.set_aside {
        println!("previous database kept as {}", aside.display());
    }
    println!(
        "{} subject key(s) re-attached from the live database; {} personal row(s) of \
         subjects without a key dropped",
        restored.keys_reattached, restored.rows_dropped
    );
    if restored.keys_reattached == 0 {
        println!(
            "note: no subject keys were re-attached: personal data held under subject keys \
             in this backup cannot be read (the live database is the key store)"
        );
    }
    Ok(())
}

fn list(dir: &Path, json: bool, identity: Option<&Path>) -> anyhow::Result<()> {
    let identities = identity.map(archive::identities).transpose()?;
    let mut failed = 0;
    let mut rows = Vec::new();
    if !json {
        let check = if identities.is_some() { "\tCHECK" } else { "" };
        println!("CREATED\tBYTES\tFILE{check}");
    }
    for found in archive::scan(dir)? {
        let checked = identities
            .as_ref()
            .map(|ids| archive::read(&found.path, ids, std::io::sink()));
        let created = archive::rfc3339(found.created);
        let (manifest, error) = match checked {
            Some(Ok(m)) => (Some(m), None),
            Some(Err(e)) => {
                failed += 1;
                (None, Some(format!("{e:#}")))
            }
            None => (None, None),
        };
        if json {
            rows.push(serde_json::json!({
                "file": found.path, "created_at": created, "bytes": found.bytes,
                "manifest": manifest, "error": error,
            }));
            continue;
        }
        let status = match (manifest, error) {
            (Some(m), _) => format!("\tOK {} schema {}", m.store, m.schema_version),
            (_, Some(e)) => format!("\tFAILED {e}"),
            _ => String::new(),
        };
        println!(
            "{created}\t{}\t{}{status}",
            found.bytes,
            found.path.display()
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    if failed > 0 {
        bail!("{failed} backup(s) failed the check");
    }
    Ok(())
}

fn prune(dir: &Path, keep_days: u32) -> anyhow::Result<()> {
    let found = archive::scan(dir)?;
    let cutoff = chrono::TimeDelta::try_days(keep_days.into())
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    let expired = archive::expired(&found, cutoff);
    for f in expired {
        std::fs::remove_file(&f.path)
            .with_context(|| format!("cannot delete {}", f.path.display()))?;
        println!("deleted {}", f.path.display());
    }
    eprintln!(
        "{} backup(s) older than {keep_days} day(s) deleted, {} kept",
        expired.len(),
        found.len() - expired.len()
    );
    Ok(())
}

fn keygen(out: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let mut file = archive::private_file(out)?;
    let text = format!(
        "# created: {}\n# public key: {recipient}\n{}\n",
        archive::rfc3339(Utc::now()),
        identity.to_string().expose_secret()
    );
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "identity written to {}: keep it away from this host; put the public key below \
         into backup.recipients",
        out.display()
    );
    println!("{recipient}");
    Ok(())
}
