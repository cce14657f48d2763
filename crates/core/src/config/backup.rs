//! `[backup]`: encrypted backups (`postwerk backup …`, `postwerk restore`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// `[backup]`: where backups go and who can open them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// age X25519 public keys (`age1…`) every backup is encrypted to; the matching
    /// identity opens it (`postwerk backup keygen` makes a pair). Default none:
    /// `postwerk backup create` refuses to run until one is set.
    pub recipients: Vec<String>,
    /// Default directory for `backup create --to`, `backup list` and `backup prune`.
    pub dir: Option<PathBuf>,
    /// Days `backup prune` keeps backups when `--keep-days` is not given. Default 7.
    pub keep_days: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            recipients: Vec::new(),
            dir: None,
            keep_days: 7,
        }
    }
}

impl BackupConfig {
    /// The recipients as age keys (validated at load, so this only fails for a
    /// configuration built by hand).
    pub fn age_recipients(&self) -> Result<Vec<age::x25519::Recipient>, ConfigError> {
        self.recipients
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.trim().parse().map_err(|_| {
                    invalid(
                        &format!("backup.recipients[{i}]"),
                        "not an age X25519 public key (age1…)",
                    )
                })
            })
            .collect()
    }
}
