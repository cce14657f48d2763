//! An import's screened rows, spooled to the data directory between screening and
//! commit (and while the import is held): chunks of rows sealed under the tenant key,
//! each written as its length (4 bytes, little-endian) and its sealed bytes. Nothing
//! readable lands on disk, and a held import keeps no file in memory.

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

/// The spool file of import `id`.
pub fn path(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("imports").join(format!("{id}.spool"))
}

fn io(e: std::io::Error) -> ServiceError {
    ServiceError::DataDir(format!("import spool: {e}"))
}

/// Writes an import's chunks.
pub struct Writer {
    file: BufWriter<File>,
    id: String,
}

impl Writer {
    /// Creates the spool of import `id` (mode 0600).
    pub fn create(data_dir: &Path, id: &str) -> Result<Self, ServiceError> {
        let path = path(data_dir, id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Writer {
            file: BufWriter::with_capacity(1 << 20, options.open(&path).map_err(io)?),
            id: id.to_string(),
        })
    }

    /// Seals and appends a chunk of rows.
    pub fn write(&mut self, keys: &TenantKeys, rows: &[Row]) -> Result<(), ServiceError> {
        let json = serde_json::to_vec(rows).expect("rows serialise");
        let sealed = keys.seal(SealContext::Import(&self.id), &json);
        let len = u32::try_from(sealed.len())
            .map_err(|_| ServiceError::DataDir("import spool: a chunk over 4 GiB".into()))?;
        self.file.write_all(&len.to_le_bytes()).map_err(io)?;
        self.file.write_all(&sealed).map_err(io)
    }

    /// Flushes and syncs the file: a held import survives a restart.
    pub fn finish(mut self) -> Result<(), ServiceError> {
        self.file.flush().map_err(io)?;
        self.file.get_ref().sync_all().map_err(io)
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
        let file = File::open(path(data_dir, id)).map_err(io)?;
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
