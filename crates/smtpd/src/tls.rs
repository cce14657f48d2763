//! Certificates for the submission listeners: load PEM files, generate a self-signed
//! development certificate on first start, and pick up a renewed file without a
//! restart (its modification time is checked at most every [`RELOAD_CHECK`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// How often the certificate file's modification time is looked at.
pub const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// Why a certificate could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The PEM files do not hold a usable chain and key.
    #[error("{0}")]
    Invalid(String),
}

/// A TLS configuration that follows its certificate file.
pub struct ReloadingTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<ServerConfig>, Option<SystemTime>)>,
    last_check: Mutex<Instant>,
}

impl ReloadingTls {
    /// Loads `cert` and `key` (PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let config = server_config(cert, key)?;
        Ok(ReloadingTls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new((config, mtime(cert))),
            last_check: Mutex::new(Instant::now()),
        })
    }

    /// An acceptor with the current certificate, reloading it first if the file
    /// changed (a broken new file keeps the old certificate in use).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.maybe_reload();
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        TlsAcceptor::from(current.0.clone())
    }

    fn maybe_reload(&self) {
        {
            let mut last = self.last_check.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < RELOAD_CHECK {
                return;
            }
            *last = Instant::now();
        }
        let now = mtime(&self.cert);
        if now == self.current.read().unwrap_or_else(|e| e.into_inner()).1 {
            return;
        }
        match server_config(&self.cert, &self.key) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = (config, now);
                tracing::info!(cert = %self.cert.display(), "submission certificate reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "renewed certificate not usable; keeping the old one")
            }
        }
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Builds a rustls server configuration from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: rustls::pki_types::pem::Error| {
            TlsError::Invalid(format!("{}: {e}", path.display()))
        }
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(io(cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(cert))?;
    if chain.is_empty() {
        return Err(TlsError::Invalid(format!(
            "{}: no certificate",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(io(key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Invalid(format!("{}: {e}", cert.display())))?;
    Ok(Arc::new(config))
}

/// The development certificate in `<data_dir>/tls/submission.{crt,key}`, generated
/// (self-signed for `hostname` and `localhost`, key mode 0600) if missing.
pub fn ensure_dev_cert(data_dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("submission.crt"), dir.join("submission.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let names = vec![hostname.to_string(), "localhost".to_string()];
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsError::Invalid(format!("cannot generate a certificate: {e}")))?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes()).map_err(io(&key))?;
    std::fs::write(&cert, generated.cert.pem()).map_err(io(&cert))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed development certificate for submission");
    Ok((cert, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives `path` a modification time `secs` seconds ahead, as a renewal would.
    fn touch_later(path: &Path, secs: u64) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn dev_cert_is_generated_once_and_reloads() {
        let dir = std::env::temp_dir().join(format!("pw-smtpd-tls-{}", std::process::id()));
        let (cert, key) = ensure_dev_cert(&dir, "mta.example.test").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let first = std::fs::read(&cert).unwrap();
        ensure_dev_cert(&dir, "mta.example.test").unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first);
        let tls = ReloadingTls::load(&cert, &key).unwrap();
        let before = tls.acceptor().config().clone();
        // Renew: a new pair with a later modification time is picked up after the
        // check interval; a broken file keeps the old certificate.
        std::fs::remove_file(&cert).unwrap();
        ensure_dev_cert(&dir, "mta.example.test").unwrap();
        touch_later(&cert, 10);
        assert!(
            Arc::ptr_eq(&before, tls.acceptor().config()),
            "checked too early"
        );
        *tls.last_check.lock().unwrap() = Instant::now() - RELOAD_CHECK * 2;
        let renewed = tls.acceptor().config().clone();
        assert!(
            !Arc::ptr_eq(&before, &renewed),
            "renewed certificate not loaded"
        );
        std::fs::write(&cert, "garbage").unwrap();
        touch_later(&cert, 20);
        *tls.last_check.lock().unwrap() = Instant::now() - RELOAD_CHECK * 2;
        assert!(
            Arc::ptr_eq(&renewed, tls.acceptor().config()),
            "broken file replaced the certificate"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
