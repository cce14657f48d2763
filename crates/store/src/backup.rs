//! Snapshots and restores of a whole store, for `postwerk backup` and `postwerk
//! restore` (which add the encryption and the archive format).
//!
//! The rows of `subject_keys` (each data subject's key) are never part of a
//! snapshot: the live database is the key store. A restore therefore takes the live
//! subject keys out of the current database, puts the snapshot in its place, puts the
//! live keys back and erases the people whose key is gone
//! ([`PrivacyStore::unkeyed_subjects`]): a person erased after the snapshot was taken
//! stays erased. Both steps work whether or not the schema has `subject_keys` yet.

use std::path::{Path, PathBuf};

use crate::prelude::*;
use crate::row::Columns;
use crate::run::FromRow;
use crate::{Location, StoreError, StoreResult, postgres, sqlite};

/// The table whose rows no snapshot holds.
pub const SUBJECT_KEYS_TABLE: &str = "subject_keys";

/// One row of `subject_keys`: a data subject's wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubjectKey {
    /// The tenant.
    pub tenant_id: String,
    /// The person's blind index in the tenant.
    pub rcpt_hash: Vec<u8>,
    /// The person's data key, wrapped by the tenant key.
    pub key_wrapped: Vec<u8>,
    /// When the key was made (ms since the epoch).
    pub created_at: i64,
}

/// The columns a [`StoredSubjectKey`] is read from.
pub(crate) const STORED_KEY_COLS: &str = "tenant_id, rcpt_hash, key_wrapped, created_at";

impl FromRow for StoredSubjectKey {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(StoredSubjectKey {
            tenant_id: r.get("tenant_id")?,
            rcpt_hash: r.get("rcpt_hash")?,
            key_wrapped: r.get("key_wrapped")?,
            created_at: r.get("created_at")?,
        })
    }
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `sqlite` (the payload is a database file) or `postgres` (a `pg_dump` custom
    /// archive).
    pub store: &'static str,
    /// `meta.schema_version` of the snapshot.
    pub schema_version: i64,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Where the replaced SQLite database was kept (`<db>.pre-restore-<stamp>`).
    pub set_aside: Option<PathBuf>,
    /// Live subject keys put back into the restored database.
    pub keys_reattached: u64,
    /// Personal rows dropped because their subject's key is gone.
    pub rows_dropped: u64,
}

impl Location {
    /// Where plaintext working files belong: next to the SQLite database (so that a
    /// restored file is renamed into place on the same file system), else `data_dir`.
    pub fn scratch_dir(&self, data_dir: &Path) -> PathBuf {
        match self {
            Location::Sqlite(db) => match db.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            },
            Location::Postgres(_) => data_dir.to_path_buf(),
        }
    }

    /// Writes a consistent snapshot of the store, without the rows of
    /// [`SUBJECT_KEYS_TABLE`], to `out` (which must not exist): for SQLite a database
    /// file (`VACUUM INTO`), for PostgreSQL a `pg_dump` custom archive. Works while
    /// the store is in use.
    pub async fn snapshot(&self, out: &Path) -> StoreResult<Snapshot> {
        let schema_version = match self {
            Location::Sqlite(db) => {
                let (db, out) = (db.clone(), out.to_path_buf());
                blocking(move || sqlite::backup::snapshot(&db, &out)).await?
            }
            Location::Postgres(url) => postgres::backup::snapshot(url, out).await?,
        };
        Ok(Snapshot {
            store: self.kind(),
            schema_version,
        })
    }

    /// Replaces the store's contents with `snapshot` (made by [`Location::snapshot`]
    /// for the same kind of store) and reattaches the live subject keys; the store
    /// must not be in use (an SQLite file open elsewhere or other sessions on the
    /// PostgreSQL database are refused before anything changes). An existing SQLite
    /// database is kept as `<db>.pre-restore-<stamp>`; `snapshot` is consumed.
    ///
    /// The live keys are never only in memory: PostgreSQL restores and reinserts
    /// them in one transaction; for SQLite they stay in the file set aside, which an
    /// error after the swap names.
    pub async fn restore(&self, snapshot: &Path, stamp: &str) -> StoreResult<Restored> {
        match self {
            Location::Sqlite(db) => {
                let (path, snapshot) = (db.clone(), snapshot.to_path_buf());
                let aside = sqlite::backup::aside_name(db, stamp);
                let kept = aside.clone();
                let (keys, set_aside) =
                    blocking(move || sqlite::backup::swap_in(&path, &snapshot, &kept)).await?;
                let reattach = async {
                    // Opening migrates an older snapshot (creating `subject_keys`).
                    let store = sqlite::SqliteStore::open(db).await?;
                    let keys_reattached = store.put_subject_keys(keys).await?;
                    Ok((keys_reattached, drop_unkeyed_subjects(&store).await?))
                };
                let (keys_reattached, rows_dropped) =
                    reattach.await.map_err(|e: StoreError| match &set_aside {
                        Some(old) => StoreError::Unavailable(format!(
                            "{e}; the previous database, with the live subject keys, is {}: \
                             move it back to {} before trying again",
                            old.display(),
                            db.display()
                        )),
                        None => e,
                    })?;
                Ok(Restored {
                    set_aside,
                    keys_reattached,
                    rows_dropped,
                })
            }
            Location::Postgres(url) => {
                let keys_reattached = postgres::backup::swap_in(url, snapshot).await?;
                let store = postgres::PgStore::connect(url).await?;
                Ok(Restored {
                    set_aside: None,
                    keys_reattached,
                    rows_dropped: drop_unkeyed_subjects(&store).await?,
                })
            }
        }
    }
}

/// Erases (as [`PrivacyStore::erase_subject`]) every person whose key is gone; returns the
/// number of rows changed.
async fn drop_unkeyed_subjects(store: &impl Store) -> StoreResult<u64> {
    let mut rows = 0;
    for (tenant_id, hash) in store.unkeyed_subjects().await? {
        rows += store.erase_subject(&tenant_id, &hash).await?.rows();
    }
    Ok(rows)
}

/// Runs blocking file and database work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
}
