//! A minimal HTTP/1.1 client for posting one JSON payload: connect to an address that
//! passed the target policy, TLS (Mozilla's roots, SNI = host) for `https://`, one
//! `POST` with `Connection: close`, and the status code of the answer. The response
//! body is not read (an endpoint's answer is never stored).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::target::Target;

/// Longest status line and headers read.
const MAX_HEAD: usize = 16 * 1024;

/// Why a post failed before an HTTP status was received.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// TCP connection failed.
    #[error("connection failed: {0}")]
    Connect(String),
    /// TLS handshake failed (certificate invalid for the host, …).
    #[error("TLS failed: {0}")]
    Tls(String),
    /// The connection broke or the answer was not HTTP.
    #[error("{0}")]
    Protocol(String),
}

/// Posts `body` to `target` at `addr` with extra `headers`; returns the HTTP status.
pub async fn post(
    target: &Target,
    addr: SocketAddr,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<u16, PostError> {
    tokio::time::timeout(timeout, exchange(target, addr, headers, body))
        .await
        .map_err(|_| PostError::Timeout)?
}

async fn exchange(
    target: &Target,
    addr: SocketAddr,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<u16, PostError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| PostError::Connect(e.kind().to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Postwerk-Webhooks/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        target.path,
        target.authority(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    if target.tls {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| PostError::Tls(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|e| PostError::Tls(e.to_string()))?;
        send(tls, request.as_bytes(), body).await
    } else {
        send(tcp, request.as_bytes(), body).await
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &[u8],
    body: &[u8],
) -> Result<u16, PostError> {
    let broken = |e: std::io::Error| PostError::Protocol(format!("connection broke: {}", e.kind()));
    stream.write_all(head).await.map_err(broken)?;
    stream.write_all(body).await.map_err(broken)?;
    stream.flush().await.map_err(broken)?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(code) = status_code(&buf)? {
            return Ok(code);
        }
        if buf.len() > MAX_HEAD {
            return Err(PostError::Protocol("status line too long".into()));
        }
        let n = stream.read(&mut chunk).await.map_err(broken)?;
        if n == 0 {
            return Err(PostError::Protocol("closed without an HTTP status".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The status code once the status line is complete.
fn status_code(buf: &[u8]) -> Result<Option<u16>, PostError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[..end]).unwrap_or("");
    let mut parts = line.split(' ');
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") && (100..600).contains(&code) => {
            Ok(Some(code))
        }
        _ => Err(PostError::Protocol("the answer is not HTTP/1.x".into())),
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            postwerk_dns::trust::verifying_config(&[])
                .expect("ring supports the default TLS versions")
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_line() {
        assert_eq!(
            status_code(b"HTTP/1.1 204 No Content\r\n").ok().flatten(),
            Some(204)
        );
        assert_eq!(status_code(b"HTTP/1.0 500\r\n").ok().flatten(), Some(500));
        assert_eq!(status_code(b"HTTP/1.1 20").ok().flatten(), None);
        assert!(status_code(b"SSH-2.0-OpenSSH\r\n").is_err());
    }
}
