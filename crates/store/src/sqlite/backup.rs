//! Whole-database snapshot and swap for SQLite (see [`crate::backup`]).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, open_connection, unavailable};
use crate::backup::{STORED_KEY_COLS, SUBJECT_KEYS_TABLE, StoredSubjectKey};
use crate::run::FromRow;
use crate::sqlite::writer::Durability;
use crate::{StoreError, StoreResult};

/// Copies `db` consistently into the new file `out` (`VACUUM INTO`, which reads one
/// transaction's view while writers go on), removes the subject keys from the copy
/// and makes it a self-contained file (rollback journal, no free pages holding old
/// rows). Returns the copy's schema version.
pub(crate) fn snapshot(db: &Path, out: &Path) -> StoreResult<i64> {
    let target = out
        .to_str()
        .ok_or_else(|| StoreError::Unavailable(format!("{}: not UTF-8", out.display())))?;
    if !db.exists() {
        return Err(StoreError::Unavailable(format!(
            "no database at {}",
            db.display()
        )));
    }
    open_connection(db, true)?
        .execute("VACUUM INTO ?1", [target])
        .map_err(unavailable)?;
    let copy = Connection::open(out).map_err(unavailable)?;
    copy.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA secure_delete = ON;")
        .map_err(unavailable)?;
    if has_subject_keys(&copy)? {
        copy.execute_batch(&format!("DELETE FROM {SUBJECT_KEYS_TABLE}; VACUUM;"))
            .map_err(unavailable)?;
    }
    copy.query_row(
        "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'schema_version'",
        [],
        |r| r.get(0),
    )
    .map_err(unavailable)
}

/// Where [`swap_in`] keeps the database it replaces.
pub(crate) fn aside_name(db: &Path, stamp: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(format!(".pre-restore-{stamp}"));
    PathBuf::from(name)
}

/// Takes the live subject keys out of `db` (if it exists), checks that no other
/// process has it open, moves it to `aside` and renames `snapshot` into its place.
/// Returns the live keys and, if there was a database, where it went.
pub(crate) fn swap_in(
    db: &Path,
    snapshot: &Path,
    aside: &Path,
) -> StoreResult<(Vec<StoredSubjectKey>, Option<PathBuf>)> {
    let mut keys = Vec::new();
    let set_aside = if db.exists() {
        {
            let conn = open_connection(db, true)?;
            if has_subject_keys(&conn)? {
                keys = read_subject_keys(&conn)?;
            }
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(unavailable)?;
        }
        // The last connection to close deletes the write-ahead log; if it is still
        // there, another process (`postwerk serve`?) has the database open.
        let wal = sidecar(db, "-wal");
        if wal.exists() {
            return Err(StoreError::Unavailable(format!(
                "{} is open in another process (stop `postwerk serve` first)",
                db.display()
            )));
        }
        std::fs::rename(db, aside).map_err(|e| io(aside, e))?;
        Some(aside.to_path_buf())
    } else {
        None
    };
    std::fs::rename(snapshot, db).map_err(|e| io(db, e))?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, e))?;
    }
    Ok((keys, set_aside))
}

impl SqliteStore {
    /// Inserts (or replaces) subject keys; returns how many. Nothing is written when
    /// there are none, so this works on a schema without `subject_keys`.
    pub(crate) async fn put_subject_keys(&self, keys: Vec<StoredSubjectKey>) -> StoreResult<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.writer
            .write(Durability::Fsync, move |c| {
                let mut st = c
                    .prepare(&format!(
                        "INSERT OR REPLACE INTO {SUBJECT_KEYS_TABLE} \
                         (tenant_id, rcpt_hash, key_wrapped, created_at) VALUES (?1, ?2, ?3, ?4)"
                    ))
                    .map_err(unavailable)?;
                for k in &keys {
                    st.execute(params![
                        k.tenant_id,
                        k.rcpt_hash,
                        k.key_wrapped,
                        k.created_at
                    ])
                    .map_err(unavailable)?;
                }
                Ok(keys.len() as u64)
            })
            .await
    }
}

fn has_subject_keys(conn: &Connection) -> StoreResult<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [SUBJECT_KEYS_TABLE],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(unavailable)
}

fn read_subject_keys(conn: &Connection) -> StoreResult<Vec<StoredSubjectKey>> {
    let mut st = conn
        .prepare(&format!(
            "SELECT {STORED_KEY_COLS} FROM {SUBJECT_KEYS_TABLE}"
        ))
        .map_err(unavailable)?;
    st.query_map([], |r| StoredSubjectKey::from_row(r))
        .and_then(|rows| rows.collect())
        .map_err(unavailable)
}

/// `db` with `suffix` appended to its file name (`-wal`, `-shm`).
fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of(db: &Path) -> Vec<StoredSubjectKey> {
        read_subject_keys(&Connection::open(db).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn snapshot_strips_subject_keys_and_restore_reattaches_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(include_str!("schema.sql")).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO {SUBJECT_KEYS_TABLE} VALUES ('t1', X'01', X'5345435245544b4559', 1), ('t1', X'02', X'aa', 2);"
        ))
        .unwrap();
        drop(conn);
        let snap = dir.path().join("snap.db");
        assert_eq!(snapshot(&db, &snap).unwrap(), 13);
        assert!(keys_of(&snap).is_empty());
        let bytes = std::fs::read(&snap).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"SECRETKEY"),
            "key bytes left"
        );

        // Person 02 is erased after the snapshot: only 01's key is live.
        Connection::open(&db)
            .unwrap()
            .execute("DELETE FROM subject_keys WHERE rcpt_hash = X'02'", [])
            .unwrap();
        let (keys, aside) = swap_in(&db, &snap, &aside_name(&db, "x")).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(aside.unwrap(), dir.path().join("live.db.pre-restore-x"));
        assert!(!snap.exists() && db.exists());
        let store = SqliteStore::open(&db).await.unwrap();
        assert_eq!(store.put_subject_keys(keys.clone()).await.unwrap(), 1);
        drop(store);
        assert_eq!(keys_of(&db), keys);
    }

    #[tokio::test]
    async fn swap_in_refuses_a_database_open_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.db");
        let store = SqliteStore::open(&db).await.unwrap();
        let snap = dir.path().join("snap.db");
        snapshot(&db, &snap).unwrap();
        let err = swap_in(&db, &snap, &aside_name(&db, "x")).unwrap_err();
        assert!(err.to_string().contains("open in another process"), "{err}");
        assert!(snap.exists() && !aside_name(&db, "x").exists());
        drop(store);
    }
}
