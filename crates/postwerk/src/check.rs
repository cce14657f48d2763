//! `postwerk config check`: finds what would stop `serve` or make it misbehave before it
//! starts — beyond the file's syntax and values, which loading the configuration
//! already checked: `POSTWERK_*` variables that nothing reads, a data directory that
//! cannot be created or written, a store that cannot be reached, and links in mail that
//! recipients cannot use.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use postwerk_core::config::Config;
use postwerk_store::Location;

/// How long reaching PostgreSQL may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the check: prints `warning: …` lines and `configuration OK: …` on standard
/// output, each problem on standard error. True when there was no problem (warnings
/// are not problems).
pub async fn run(config: &Config, unknown_env: &[(String, String)]) -> bool {
    let mut problems: Vec<String> = unknown_env
        .iter()
        .map(|(name, closest)| {
            format!("unknown environment variable {name} (did you mean {closest}?)")
        })
        .collect();
    let dir = &config.data_dir;
    if let Err(e) = writable_dir(dir) {
        problems.push(format!("data_dir {}: {e}", dir.display()));
    }
    let url = config.store_url();
    if let Err(e) = reach_store(&url).await {
        problems.push(format!("store {}: {e}", redact_url(&url)));
    }
    if let Some(warning) = config.link_warning() {
        println!("warning: {warning}");
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("postwerk: {p}");
        }
        return false;
    }
    println!(
        "configuration OK: store {}, http {}",
        redact_url(&url),
        config.http.listen
    );
    true
}

/// Creates `dir` (mode 0700) if it is missing and checks that a file can be made in it.
fn writable_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let probe = dir.join(format!(".postwerk-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Checks that the store can be used, without changing it: an SQLite file that exists
/// must be a readable and writable SQLite database (one that does not exist yet needs
/// a writable directory); PostgreSQL must answer a query within [`CONNECT_TIMEOUT`].
async fn reach_store(url: &str) -> anyhow::Result<()> {
    match Location::parse(url)? {
        Location::Sqlite(path) if path.exists() => {
            let mut header = Vec::new();
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)?
                .take(16)
                .read_to_end(&mut header)?;
            if !header.is_empty() && header != b"SQLite format 3\0" {
                anyhow::bail!("{} is not an SQLite database", path.display());
            }
            Ok(())
        }
        Location::Sqlite(path) => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            Ok(writable_dir(dir.unwrap_or(Path::new(".")))?)
        }
        Location::Postgres(url) => {
            let mut config: tokio_postgres::Config = url
                .parse()
                .map_err(|_| anyhow::anyhow!("not a valid postgres URL"))?;
            config.connect_timeout(CONNECT_TIMEOUT);
            let connect = config.connect(tokio_postgres::NoTls);
            let (client, connection) =
                tokio::time::timeout(CONNECT_TIMEOUT * 2, connect)
                    .await
                    .map_err(|_| anyhow::anyhow!("no answer within {CONNECT_TIMEOUT:?}"))??;
            let connection = tokio::spawn(connection);
            client.simple_query("SELECT 1").await?;
            drop(client);
            let _ = connection.await;
            Ok(())
        }
    }
}

/// Hides a password in a store URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_a_problem() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(writable_dir(&file.join("data")).is_err(), "under a file");
        let fresh = root.path().join("a/b");
        writable_dir(&fresh).unwrap();
        assert_eq!(
            std::fs::read_dir(&fresh).unwrap().count(),
            0,
            "no probe left"
        );
    }
}
