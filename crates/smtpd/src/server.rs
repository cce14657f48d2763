//! The listeners: accept connections, apply per-address limits, run sessions, and
//! run the TLS handshake for implicit TLS and after STARTTLS.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::Backend;
use crate::reply;
use crate::session::{Context, Outcome, Session};
use crate::tls::ReloadingTls;

/// How a listener receives its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain text with STARTTLS (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    ImplicitTls,
}

/// The longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open sessions get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `listener` until `shutdown` completes; then stops accepting, tells idle
/// sessions `421` and waits briefly for the others.
pub async fn run<B: Backend>(
    listener: TcpListener,
    mode: Mode,
    tls: Option<Arc<ReloadingTls>>,
    ctx: Arc<Context<B>>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (ctx, tls, stop) = (ctx.clone(), tls.clone(), stop_rx.clone());
                    sessions.spawn(connection(stream, peer, mode, tls, ctx, stop));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "smtp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    sessions.abort_all();
}

async fn connection<B: Backend>(
    mut stream: TcpStream,
    peer: SocketAddr,
    mode: Mode,
    tls: Option<Arc<ReloadingTls>>,
    ctx: Arc<Context<B>>,
    stop: watch::Receiver<bool>,
) {
    let ip = peer.ip();
    let limits = ctx.clone();
    let Some(_slot) = limits.limits.open_session(ip) else {
        tracing::info!(peer = %ip, "smtp session refused: too many from this address");
        let mut out = Vec::new();
        reply::TOO_BUSY.write(&mut out);
        let _ = stream.write_all(&out).await;
        return;
    };
    tracing::debug!(peer = %ip, "smtp session");
    let plain = match mode {
        Mode::ImplicitTls => stream,
        Mode::StartTls => match Session::new(stream, ctx.clone(), ip, false, stop.clone())
            .run(true)
            .await
        {
            Outcome::Closed => return,
            Outcome::StartTls(s) => s,
        },
    };
    let Some(tls) = tls else { return };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(plain)).await;
    let Ok(Ok(stream)) = handshake else {
        tracing::info!(peer = %ip, "smtp TLS handshake failed");
        return;
    };
    let greet = mode == Mode::ImplicitTls;
    let _ = Session::new(stream, ctx, ip, true, stop).run(greet).await;
}
