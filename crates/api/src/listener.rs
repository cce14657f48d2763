//! The HTTP listener, protecting itself: a connection that does not finish its request
//! headers within `[http] header_timeout` (or sits idle that long between requests) is
//! closed; a request body that pauses for `[http] body_timeout` is answered `408`; and
//! at most `[http] max_connections` connections are open, at most
//! `max_connections_per_ip` of them from one client address (an IPv6 client: its /64;
//! `trusted_proxies` are counted only in the total). A connection over either cap is
//! answered `503 too_many_connections` and closed without being read.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use postwerk_core::config::{Cidr, HttpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Connections being answered `503` at once; beyond that, one over the caps is just
/// closed.
const MAX_REFUSING: usize = 64;
/// How long answering a refused connection may take.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The answer to a connection over the caps.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 98\r\n\r\n\
{\"error\":{\"code\":\"too_many_connections\",\"message\":\"too many open connections; retry in a moment\"}}";

/// The listener's limits, from `[http]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections per client address (IPv6: per /64).
    pub max_connections_per_ip: usize,
    /// Longest wait for a request's headers (and between keep-alive requests).
    pub header_timeout: Duration,
    /// Longest pause within a request body.
    pub body_timeout: Duration,
    /// Addresses counted only in the total (reverse proxies).
    pub proxies: Arc<Vec<Cidr>>,
}

impl Limits {
    /// The limits configured in `[http]`.
    pub fn new(http: &HttpConfig, proxies: Arc<Vec<Cidr>>) -> Limits {
        Limits {
            max_connections: http.max_connections,
            max_connections_per_ip: http.max_connections_per_ip,
            header_timeout: http.header_timeout,
            body_timeout: http.body_timeout,
            proxies,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests
/// finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let counts = Arc::new(Counts::default());
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait for some to close.
                        tracing::warn!(error = %e, "cannot accept an HTTP connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                match counts.admit(&limits, peer.ip()) {
                    Some(slot) => {
                        let (app, limits, stop) = (app.clone(), limits.clone(), stop_rx.clone());
                        connections.spawn(async move {
                            connection(stream, peer, app, &limits, stop).await;
                            drop(slot);
                        });
                    }
                    None => {
                        if let Ok(permit) = refusing.clone().try_acquire_owned() {
                            tokio::spawn(async move {
                                let _ = tokio::time::timeout(REFUSE_TIMEOUT, refuse(stream)).await;
                                drop(permit);
                            });
                        }
                    }
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection until it closes, or gracefully once `stop` is set.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) {
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(|body| axum::body::Body::new(Timed::new(body, body_timeout)));
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = async { drop(stop.wait_for(|s| *s).await) } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Answers a connection over the caps: `503`, then reads what the client sent (so
/// that closing does not reset the connection before the answer is read).
async fn refuse(mut stream: TcpStream) {
    if stream.write_all(FULL).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Open connections, in all and per client.
#[derive(Default)]
struct Counts(Mutex<(usize, HashMap<IpAddr, usize>)>);

/// A connection's place in [`Counts`], given back when dropped.
struct Slot {
    counts: Arc<Counts>,
    client: Option<IpAddr>,
}

impl Counts {
    /// A slot for a connection from `ip`, or `None` when a cap is reached.
    fn admit(self: &Arc<Self>, limits: &Limits, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        let client = (!limits.proxies.iter().any(|c| c.contains(ip))).then(|| client_key(ip));
        let mut guard = self.0.lock().ok()?;
        let (total, per_client) = &mut *guard;
        if *total >= limits.max_connections {
            return None;
        }
        if let Some(c) = client {
            let n = per_client.entry(c).or_default();
            if *n >= limits.max_connections_per_ip {
                return None;
            }
            *n += 1;
        }
        *total += 1;
        Some(Slot {
            counts: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Ok(mut guard) = self.counts.0.lock() else {
            return;
        };
        let (total, per_client) = &mut *guard;
        *total = total.saturating_sub(1);
        if let Some(c) = self.client
            && let Some(n) = per_client.get_mut(&c)
        {
            *n -= 1;
            if *n == 0 {
                per_client.remove(&c);
            }
        }
    }
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

/// A request body that fails with [`BodyTimeout`] when no bytes arrive for the
/// timeout (measured only while the handler waits for more).
struct Timed {
    inner: Incoming,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl Timed {
    fn new(inner: Incoming, timeout: Duration) -> Timed {
        Timed {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }
}

/// The error of a request body that paused for longer than `[http] body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body paused for longer than http.body_timeout")]
pub struct BodyTimeout;

impl Body for Timed {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.armed {
                    let deadline = tokio::time::Instant::now() + this.timeout;
                    this.sleep.as_mut().reset(deadline);
                    this.armed = true;
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// True when a body could not be read because it paused too long.
pub(crate) fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize, proxies: &[&str]) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            proxies: Arc::new(proxies.iter().filter_map(|c| Cidr::parse(c)).collect()),
        }
    }

    #[test]
    fn caps_per_client_and_in_all() {
        let counts = Arc::new(Counts::default());
        let l = limits(4, 2, &["10.0.0.1"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a1 = counts.admit(&l, ip("192.0.2.1")).expect("first");
        let _a2 = counts
            .admit(&l, ip("::ffff:192.0.2.1"))
            .expect("second, same client");
        assert!(
            counts.admit(&l, ip("192.0.2.1")).is_none(),
            "per-client cap"
        );
        let _v6 = counts.admit(&l, ip("2001:db8:1:2::1")).expect("v6");
        let _v6b = counts
            .admit(&l, ip("2001:db8:1:2::ffff"))
            .expect("v6, same /64");
        assert!(
            counts.admit(&l, ip("2001:db8:1:2:aaaa::1")).is_none(),
            "a /64 is one client"
        );
        assert!(counts.admit(&l, ip("198.51.100.7")).is_none(), "total cap");
        drop(a1);
        let _a3 = counts
            .admit(&l, ip("192.0.2.1"))
            .expect("a slot was given back");
        assert!(
            counts.admit(&l, ip("10.0.0.1")).is_none(),
            "total cap for proxies"
        );
    }

    #[test]
    fn proxies_count_only_in_the_total() {
        let counts = Arc::new(Counts::default());
        let l = limits(10, 1, &["10.0.0.0/8"]);
        let proxy = "10.0.0.1".parse::<IpAddr>().unwrap();
        let slots: Vec<Slot> = (0..10).filter_map(|_| counts.admit(&l, proxy)).collect();
        assert_eq!(slots.len(), 10);
        assert!(counts.admit(&l, proxy).is_none());
    }

    #[test]
    fn the_refusal_is_well_formed_json() {
        let text = std::str::from_utf8(FULL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "too_many_connections");
    }
}
