//! Fetching a policy file (RFC 8461 §3.3): `GET /.well-known/mta-sts.txt` from
//! `mta-sts.<domain>` over HTTPS with a certificate valid for that name, no redirects,
//! only `200` with `text/plain`, and at most [`MAX_POLICY`] bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Largest policy body accepted (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY: usize = 64 * 1024;
/// Largest status line and headers accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Fetches the policy text of the host `host` (`mta-sts.<domain>`) at `addr`.
pub async fn fetch(
    addr: SocketAddr,
    host: &str,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<String, String> {
    tokio::time::timeout(timeout, exchange(addr, host, tls))
        .await
        .map_err(|_| "policy fetch timed out".to_string())?
}

async fn exchange(
    addr: SocketAddr,
    host: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<String, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connection to {addr} failed: {}", e.kind()))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("invalid policy host: {e}"))?;
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {host} failed: {e}"))?;
    let request = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Postwerk/{}\r\n\
         Accept: text/plain\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let broken = |e: std::io::Error| format!("connection to {host} broke: {}", e.kind());
    stream.write_all(request.as_bytes()).await.map_err(broken)?;
    stream.flush().await.map_err(broken)?;
    let mut answer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            // A server that closes without TLS close_notify: the length checks below
            // still catch a truncated answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(broken(e)),
        }
        if answer.len() > MAX_HEAD + MAX_POLICY + 1024 {
            return Err("policy larger than 64 KiB".into());
        }
    }
    parse_response(&answer)
}

/// The body of a `200 text/plain` answer.
fn parse_response(answer: &[u8]) -> Result<String, String> {
    let head_end = memchr::memmem::find(answer, b"\r\n\r\n")
        .filter(|&end| end <= MAX_HEAD)
        .ok_or("the answer is not HTTP")?;
    let head = std::str::from_utf8(&answer[..head_end]).map_err(|_| "the answer is not HTTP")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| {
            let mut parts = line.split(' ');
            let version = parts.next()?;
            version.starts_with("HTTP/1.").then_some(())?;
            parts.next()?.parse::<u16>().ok()
        })
        .ok_or("the answer is not HTTP")?;
    if status != 200 {
        return Err(format!(
            "policy host answered {status} (redirects are not followed)"
        ));
    }
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_ascii_lowercase())
        })
    };
    let media_type = header("content-type").unwrap_or_default();
    if media_type.split(';').next().map(str::trim) != Some("text/plain") {
        return Err(format!("policy served as {media_type:?}, not text/plain"));
    }
    let raw = &answer[head_end + 4..];
    let body = if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        dechunk(raw)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().map_err(|_| "invalid Content-Length")?;
        raw.get(..length).ok_or("policy truncated")?.to_vec()
    } else {
        raw.to_vec()
    };
    if body.len() > MAX_POLICY {
        return Err("policy larger than 64 KiB".into());
    }
    String::from_utf8(body).map_err(|_| "policy is not UTF-8".into())
}

/// Decodes a chunked body (RFC 9112 §7.1); trailers are ignored.
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = memchr::memmem::find(raw, b"\r\n").ok_or("policy truncated")?;
        let size = std::str::from_utf8(&raw[..line_end])
            .ok()
            .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
            .ok_or("invalid chunk size")?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if body.len() + size > MAX_POLICY {
            return Err("policy larger than 64 KiB".into());
        }
        body.extend_from_slice(raw.get(..size).ok_or("policy truncated")?);
        raw = raw.get(size + 2..).ok_or("policy truncated")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_body_of_a_plain_text_answer() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nversion: STSv1";
        assert_eq!(parse_response(ok).unwrap(), "version: STSv1");
        let chunked = b"HTTP/1.1 200 OK\r\ncontent-type: TEXT/PLAIN\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nversion:\r\n6\r\n STSv1\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), "version: STSv1");
        let until_close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nmode: none";
        assert_eq!(parse_response(until_close).unwrap(), "mode: none");
    }

    #[test]
    fn refuses_redirects_other_types_and_truncated_bodies() {
        for answer in [
            &b"HTTP/1.1 301 Moved\r\nLocation: https://evil.test/\r\nContent-Type: text/plain\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>",
            b"HTTP/1.1 200 OK\r\n\r\nversion: STSv1",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 99\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nshort",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert!(
                parse_response(answer).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}
