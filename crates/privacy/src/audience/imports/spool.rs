//! An import's screened rows, spooled to the data directory between screening and
//! commit (and while the import is held), in blind-index order: chunks of rows sealed
//! under the tenant key, each written as its length (4 bytes, little-endian) and its
//! sealed bytes. Nothing readable lands on disk, and a held import keeps no file in
//! memory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use postwerk_store::vault::{SealContext, TenantKeys};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use postwerk_services::context::ServiceError;

/// One screened row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// The person's blind index (the spool's order).
    #[serde(with = "hex")]
    pub hash: Vec<u8>,
    /// The line it starts on in the file.
    pub line: u64,
    /// The address, canonical.
    pub email: String,
    /// Its attributes (empty cells left out).
    pub attributes: Map<String, Value>,
    /// Lists of its own to join (names or ids), besides the import's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<String>,
    /// Consent evidence of its own: when (Unix ms), from which IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_at: Option<i64>,
    /// The IP consent was given from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_ip: Option<String>,
    /// The row lacks consent evidence the import asks for (an empty `consent_at`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_consent: bool,
    /// An earlier row of the file has the same address: this one merges into it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// Bytes as hex in the spool's JSON.
mod hex {
    use postwerk_core::hex;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(<&str>::deserialize(d)?).ok_or_else(|| D::Error::custom("bad hex"))
    }
}

/// Rows per chunk of the spool (one batch of the commit).
pub const CHUNK: usize = 5000;
/// Rows sorted in memory at a time; longer files are sorted in runs and merged.
const RUN: usize = 50_000;
/// Rows per chunk of a run (what the merge holds of each run at a time).
const RUN_CHUNK: usize = 1000;

/// The spool file of import `id`.
pub fn path(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("imports").join(format!("{id}.spool"))
}

/// The file of run `n` of import `id` while it is screened.
fn run_path(data_dir: &Path, id: &str, n: usize) -> PathBuf {
    data_dir.join("imports").join(format!("{id}.run{n}"))
}

fn io(e: std::io::Error) -> ServiceError {
    ServiceError::DataDir(format!("import spool: {e}"))
}

/// Spools an import's screened rows in blind-index order (rows of one address in file
/// order), so that the commit inserts into every index keyed by it front to back, each
/// page written once rather than once per batch. Rows are sorted in memory in runs of
/// [`RUN`], longer files' runs spooled to files of their own and merged at the end.
pub struct Writer {
    data_dir: PathBuf,
    id: String,
    run: Vec<Row>,
    /// Rows sorted in memory at a time ([`RUN`]).
    run_len: usize,
    runs: Vec<PathBuf>,
}

impl Writer {
    /// Starts the spool of import `id` (its directory made if need be).
    pub fn create(data_dir: &Path, id: &str) -> Result<Self, ServiceError> {
        std::fs::create_dir_all(data_dir.join("imports")).map_err(io)?;
        Ok(Writer {
            data_dir: data_dir.to_path_buf(),
            id: id.to_string(),
            run: Vec::new(),
            run_len: RUN,
            runs: Vec::new(),
        })
    }

    /// Adds screened rows, in file order.
    pub fn push(&mut self, keys: &TenantKeys, rows: Vec<Row>) -> Result<(), ServiceError> {
        self.run.extend(rows);
        if self.run.len() >= self.run_len {
            let path = run_path(&self.data_dir, &self.id, self.runs.len());
            self.runs.push(path.clone());
            self.write_run(keys, &path, RUN_CHUNK)?;
        }
        Ok(())
    }

    /// Sorts the rows in memory and writes them to `path` in chunks of `chunk` rows.
    fn write_run(
        &mut self,
        keys: &TenantKeys,
        path: &Path,
        chunk: usize,
    ) -> Result<u64, ServiceError> {
        // Stable: rows of one address stay in file order.
        self.run.sort_by(|a, b| a.hash.cmp(&b.hash));
        let mut file = Chunks::create(path, &self.id)?;
        for rows in self.run.chunks(chunk) {
            file.write(keys, rows)?;
        }
        self.run.clear();
        file.finish()
    }

    /// Writes the spool: the rows in blind-index order, in chunks of [`CHUNK`], on
    /// disk (synced: a held import survives a restart). Returns the number of chunks.
    pub fn finish(mut self, keys: &TenantKeys) -> Result<u64, ServiceError> {
        let spool = path(&self.data_dir, &self.id);
        if self.runs.is_empty() {
            return self.write_run(keys, &spool, CHUNK);
        }
        if !self.run.is_empty() {
            let last = run_path(&self.data_dir, &self.id, self.runs.len());
            self.runs.push(last.clone());
            self.write_run(keys, &last, RUN_CHUNK)?;
        }
        let mut runs = self
            .runs
            .iter()
            .map(|p| Reader::open_path(p, &self.id).map(|r| (r, VecDeque::new())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Chunks::create(&spool, &self.id)?;
        let mut chunk = Vec::with_capacity(CHUNK);
        // The next row of each run, smallest first (equal indexes: the earlier run).
        let mut heads = BinaryHeap::new();
        for (n, run) in runs.iter_mut().enumerate() {
            if let Some(row) = next_row(run, keys)? {
                heads.push(Reverse((row.hash.clone(), n, Smallest(row))));
            }
        }
        while let Some(Reverse((_, n, Smallest(row)))) = heads.pop() {
            chunk.push(row);
            if chunk.len() == CHUNK {
                out.write(keys, &chunk)?;
                chunk.clear();
            }
            if let Some(row) = next_row(&mut runs[n], keys)? {
                heads.push(Reverse((row.hash.clone(), n, Smallest(row))));
            }
        }
        if !chunk.is_empty() {
            out.write(keys, &chunk)?;
        }
        out.finish()
    }
}

impl Drop for Writer {
    /// Runs are scratch: gone once merged, or when the import stops being screened.
    fn drop(&mut self) {
        for run in &self.runs {
            let _ = std::fs::remove_file(run);
        }
    }
}

/// A row in the merge's heap, ordered by the (hash, run) beside it only.
struct Smallest(Row);

impl PartialEq for Smallest {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Smallest {}
impl PartialOrd for Smallest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Smallest {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// The next row of a run being merged.
fn next_row(
    (reader, rows): &mut (Reader, VecDeque<Row>),
    keys: &TenantKeys,
) -> Result<Option<Row>, ServiceError> {
    if rows.is_empty()
        && let Some(chunk) = reader.next_chunk(keys)?
    {
        rows.extend(chunk);
    }
    Ok(rows.pop_front())
}

/// A file of sealed chunks being written.
struct Chunks {
    file: BufWriter<File>,
    id: String,
    count: u64,
}

impl Chunks {
    /// Creates `path` (mode 0600; it must not exist).
    fn create(path: &Path, id: &str) -> Result<Self, ServiceError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Chunks {
            file: BufWriter::with_capacity(1 << 20, options.open(path).map_err(io)?),
            id: id.to_string(),
            count: 0,
        })
    }

    /// Seals and appends a chunk of rows.
    fn write(&mut self, keys: &TenantKeys, rows: &[Row]) -> Result<(), ServiceError> {
        let json = serde_json::to_vec(rows).expect("rows serialise");
        let sealed = keys.seal(SealContext::Import(&self.id), &json);
        let len = u32::try_from(sealed.len())
            .map_err(|_| ServiceError::DataDir("import spool: a chunk over 4 GiB".into()))?;
        self.file.write_all(&len.to_le_bytes()).map_err(io)?;
        self.file.write_all(&sealed).map_err(io)?;
        self.count += 1;
        Ok(())
    }

    /// Flushes and syncs the file; returns its number of chunks.
    fn finish(mut self) -> Result<u64, ServiceError> {
        self.file.flush().map_err(io)?;
        self.file.get_ref().sync_all().map_err(io)?;
        Ok(self.count)
    }
}

/// Reads an import's chunks back, in order.
pub struct Reader {
    file: BufReader<File>,
    id: String,
}

impl Reader {
    /// Opens the spool of import `id`.
    pub fn open(data_dir: &Path, id: &str) -> Result<Self, ServiceError> {
        Self::open_path(&path(data_dir, id), id)
    }

    /// Opens a file of import `id`'s chunks.
    fn open_path(path: &Path, id: &str) -> Result<Self, ServiceError> {
        let file = File::open(path).map_err(io)?;
        Ok(Reader {
            file: BufReader::with_capacity(1 << 20, file),
            id: id.to_string(),
        })
    }

    /// The next chunk, opened; `None` at the end.
    pub fn next_chunk(&mut self, keys: &TenantKeys) -> Result<Option<Vec<Row>>, ServiceError> {
        let mut len = [0u8; 4];
        match self.file.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io(e)),
        }
        let mut sealed = vec![0u8; u32::from_le_bytes(len) as usize];
        self.file.read_exact(&mut sealed).map_err(io)?;
        let json = keys.open(SealContext::Import(&self.id), &sealed)?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|e| ServiceError::DataDir(format!("import spool: {e}")))
    }
}

/// Deletes an import's spool (gone already is fine).
pub fn remove(data_dir: &Path, id: &str) {
    if let Err(e) = std::fs::remove_file(path(data_dir, id))
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(import = id, error = %e, "an import's spool could not be deleted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postwerk_store::vault::MasterKey;

    fn keys() -> TenantKeys {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::load_or_create(dir.path(), None).unwrap();
        master
            .unwrap_tenant_key("t", &master.new_wrapped_tenant_key("t"))
            .unwrap()
    }

    fn row(hash: u8, line: u64) -> Row {
        Row {
            hash: vec![hash, 0xee],
            line,
            email: format!("p{hash}@example.test"),
            attributes: Map::new(),
            lists: Vec::new(),
            consent_at: None,
            consent_ip: None,
            no_consent: false,
            duplicate: false,
        }
    }

    fn spooled(run_len: usize, hashes: &[u8]) -> (Vec<Row>, u64, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys();
        let mut writer = Writer::create(dir.path(), "imp_t").unwrap();
        writer.run_len = run_len;
        for (line, &h) in hashes.iter().enumerate() {
            writer.push(&keys, vec![row(h, line as u64 + 2)]).unwrap();
        }
        let chunks = writer.finish(&keys).unwrap();
        let mut reader = Reader::open(dir.path(), "imp_t").unwrap();
        let mut rows = Vec::new();
        while let Some(chunk) = reader.next_chunk(&keys).unwrap() {
            rows.extend(chunk);
        }
        (rows, chunks, dir)
    }

    #[test]
    fn rows_come_back_in_index_order_and_repeats_in_file_order_however_many_runs() {
        let hashes = [5, 1, 3, 1, 4, 2, 1, 9, 0, 3];
        for run_len in [1, 3, 4, 100] {
            let (rows, chunks, dir) = spooled(run_len, &hashes);
            let got: Vec<(u8, u64)> = rows.iter().map(|r| (r.hash[0], r.line)).collect();
            assert_eq!(
                got,
                [
                    (0, 10),
                    (1, 3),
                    (1, 5),
                    (1, 8),
                    (2, 7),
                    (3, 4),
                    (3, 11),
                    (4, 6),
                    (5, 2),
                    (9, 9)
                ],
                "run length {run_len}"
            );
            assert_eq!(chunks, 1);
            // Only the spool is left: the runs are scratch.
            let files: Vec<_> = std::fs::read_dir(dir.path().join("imports"))
                .unwrap()
                .collect();
            assert_eq!(files.len(), 1, "run length {run_len}");
        }
    }

    #[test]
    fn an_import_that_stops_while_screened_leaves_no_runs() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys();
        let mut writer = Writer::create(dir.path(), "imp_t").unwrap();
        writer.run_len = 2;
        writer
            .push(&keys, (0..5).map(|h| row(h, 2)).collect())
            .unwrap();
        writer
            .push(&keys, (0..5).map(|h| row(h, 2)).collect())
            .unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("imports"))
                .unwrap()
                .count(),
            2
        );
        drop(writer);
        assert_eq!(
            std::fs::read_dir(dir.path().join("imports"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn nothing_of_the_rows_is_readable_on_disk() {
        let (rows, _, dir) = spooled(2, &[1, 2, 3]);
        assert_eq!(rows.len(), 3);
        let bytes = std::fs::read(path(dir.path(), "imp_t")).unwrap();
        assert!(!bytes.windows(4).any(|w| w == b"p1@e"));
    }
}
