//! Whole-database dump and restore for PostgreSQL with `pg_dump` and `pg_restore`
//! (see [`crate::backup`]).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::PgStore;
use super::error::{Failure, PgResult, corrupt, pg};
use crate::backup::{STORED_KEY_COLS, SUBJECT_KEYS_TABLE, StoredSubjectKey};
use crate::row::Columns;
use crate::run::FromRow;
use crate::{StoreError, StoreResult};

/// How long a restore waits for other sessions (a `serve` that was just stopped) to
/// leave the database before it refuses.
const IDLE_WAIT: Duration = Duration::from_secs(10);

/// Dumps the database at `url` into the new file `out` (`pg_dump --format=custom`,
/// one consistent transaction) without the data of `subject_keys`; returns the
/// schema version.
pub(crate) async fn snapshot(url: &str, out: &Path) -> StoreResult<i64> {
    let store = PgStore::connect(url).await?;
    let mut dump = Command::new("pg_dump");
    dump.args(["--format=custom", "--no-owner", "--no-privileges"])
        .arg(format!("--exclude-table-data=*.{SUBJECT_KEYS_TABLE}"))
        .arg("--file")
        .arg(out)
        .arg("--dbname")
        .arg(url);
    run("pg_dump", dump).await?;
    store.schema_version().await
}

/// Takes the live subject keys out of the database at `url` (after checking that
/// nobody else is connected to it) and restores `archive` over it: the SQL of
/// `pg_restore --clean --if-exists` and then the keys go through `psql` in one
/// transaction, so either both land or nothing changes. Returns the number of keys.
pub(crate) async fn swap_in(url: &str, archive: &Path) -> StoreResult<u64> {
    let keys = {
        let store = PgStore::connect(url).await?;
        store.wait_until_alone().await?;
        store.all_subject_keys().await?
    };
    let count = keys.len() as u64;
    let (url, archive) = (url.to_string(), archive.to_path_buf());
    tokio::task::spawn_blocking(move || restore_with_keys(&url, &archive, &keys))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
    Ok(count)
}

fn restore_with_keys(url: &str, archive: &Path, keys: &[StoredSubjectKey]) -> StoreResult<()> {
    let spawn = |name: &str, cmd: &mut Command| {
        cmd.stderr(Stdio::piped())
            .spawn()
            .map_err(|e| StoreError::Unavailable(format!("cannot run {name}: {e}")))
    };
    let mut restore = spawn(
        "pg_restore",
        Command::new("pg_restore")
            .args(["--clean", "--if-exists", "--no-owner", "--no-privileges"])
            .args(["--file", "-"])
            .arg(archive)
            .stdout(Stdio::piped()),
    )?;
    let mut psql = spawn(
        "psql",
        Command::new("psql")
            .args(["-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1"])
            .arg("--dbname")
            .arg(url)
            // Without notices (`DROP … IF EXISTS` skipping), stderr stays small.
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .stdin(Stdio::piped())
            .stdout(Stdio::null()),
    )?;
    let mut sql = psql.stdin.take().expect("piped");
    let mut script = restore.stdout.take().expect("piped");
    // A write error means psql stopped; its own error is the one to report.
    let _ = std::io::copy(&mut script, &mut sql).and_then(|_| {
        // The dump empties search_path; the keys go where the store finds them.
        writeln!(sql, "RESET search_path;")?;
        for k in keys {
            writeln!(sql, "{}", insert_key(k))?;
        }
        Ok(())
    });
    drop((sql, script));
    let restored = restore.wait_with_output();
    let applied = psql.wait_with_output();
    for (name, out) in [("pg_restore", restored), ("psql", applied)] {
        let out = out.map_err(|e| StoreError::Unavailable(format!("{name}: {e}")))?;
        if !out.status.success() {
            return Err(StoreError::Unavailable(format!(
                "{name} failed ({}), nothing was changed: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// The statement that puts one key back (values as literals: the keys are wrapped).
fn insert_key(k: &StoredSubjectKey) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "INSERT INTO {SUBJECT_KEYS_TABLE} (tenant_id, rcpt_hash, key_wrapped, created_at) \
         VALUES ('{}', '\\x{}', '\\x{}', {}) ON CONFLICT (tenant_id, rcpt_hash) DO UPDATE \
         SET key_wrapped = EXCLUDED.key_wrapped, created_at = EXCLUDED.created_at;",
        k.tenant_id.replace('\'', "''"),
        hex(&k.rcpt_hash),
        hex(&k.key_wrapped),
        k.created_at
    )
}

/// Runs a PostgreSQL client program; its standard error becomes the error message
/// (it names objects, not row values).
async fn run(name: &'static str, mut cmd: Command) -> StoreResult<()> {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .map_err(|e| StoreError::Unavailable(format!("cannot run {name}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(StoreError::Unavailable(format!(
        "{name} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

impl PgStore {
    /// Every row of `subject_keys`; none if the table does not exist.
    async fn all_subject_keys(&self) -> StoreResult<Vec<StoredSubjectKey>> {
        self.all_subject_keys_q().await.map_err(Failure::into_store)
    }

    async fn all_subject_keys_q(&self) -> PgResult<Vec<StoredSubjectKey>> {
        let client = self.client().await?;
        let exists: bool = client
            .query_one(
                &format!("SELECT to_regclass('{SUBJECT_KEYS_TABLE}') IS NOT NULL"),
                &[],
            )
            .await
            .map_err(pg("subject keys"))?
            .try_get(0)
            .map_err(|_| corrupt("subject keys"))?;
        if !exists {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {STORED_KEY_COLS} FROM {SUBJECT_KEYS_TABLE}");
        let rows = client.query(&sql, &[]).await.map_err(pg("subject keys"))?;
        rows.iter().map(StoredSubjectKey::from_row).collect()
    }

    /// `meta.schema_version`.
    async fn schema_version(&self) -> StoreResult<i64> {
        self.schema_version_q().await.map_err(Failure::into_store)
    }

    async fn schema_version_q(&self) -> PgResult<i64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
            .await
            .map_err(pg("schema version"))?;
        Columns::get::<String>(&row, "value")?
            .parse::<i64>()
            .map_err(|_| corrupt("schema version"))
    }

    /// Sessions on this database other than this one's.
    async fn other_sessions(&self) -> PgResult<i64> {
        self.client()
            .await?
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .map_err(pg("sessions"))?
            .try_get(0)
            .map_err(|_| corrupt("sessions"))
    }

    /// Waits (up to [`IDLE_WAIT`]) until this is the only session on the database;
    /// refuses with the number of other sessions if it is not.
    async fn wait_until_alone(&self) -> StoreResult<()> {
        let deadline = tokio::time::Instant::now() + IDLE_WAIT;
        loop {
            let others = self.other_sessions().await.map_err(Failure::into_store)?;
            if others == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "{others} other session(s) are connected to the database \
                     (stop every `postwerk serve` first)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
