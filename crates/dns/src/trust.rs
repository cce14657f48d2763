//! Certificate trust for connections that must verify the server: webhook endpoints,
//! MTA-STS policy hosts and MX hosts under an `enforce` policy. Mozilla's roots, plus
//! the operator's own anchors where configured (a private CA in a lab or an intranet).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// A client configuration that verifies server certificates against Mozilla's roots and
/// `extra` anchors.
pub fn verifying_config(
    extra: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let (_, rejected) = roots.add_parsable_certificates(extra.iter().cloned());
    if rejected > 0 {
        return Err(format!("{rejected} trust anchor(s) could not be used"));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a PEM file (at least one).
pub fn load_anchors(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{shown}: no certificate in the file"));
    }
    Ok(certs)
}
