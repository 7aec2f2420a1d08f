//! The accept loop, for plain HTTP (dev, loopback) and HTTPS alike, with the limits a server
//! facing hostile clients needs: at most so many open connections (past that, new ones wait in
//! the kernel's backlog), a time limit on the headers of each request (a slow client is cut
//! off), and caps on header size and count (`431`). Each connection runs in its own task, so
//! none holds up the others; shutdown lets open connections finish their requests. A request
//! that hyper refuses before the router sees it (malformed, or over the header limits) is
//! told to a [`Rejected`] hook, so that it is audited like any other attempt.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::tls::{handshake, PeerCertificate, TlsConfig};

/// How long shutdown waits for open connections to finish their requests.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// hyper's smallest read buffer; header limits below it are raised to it.
const MIN_HEADER_BYTES: usize = 8192;

/// Connection limits; the defaults suit a vault behind a load balancer.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Most bytes of a request's line and headers (at least 8 KiB).
    pub max_header_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Why hyper refused a request before the router saw it (and answered it itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A request line or headers that do not parse: `400`.
    Malformed,
    /// A request line or headers over the limits: `431` (or `414` for a URI).
    TooLarge,
}

/// Told of each request hyper refused, with the peer's address.
pub type Rejected = Arc<dyn Fn(SocketAddr, Refusal) + Send + Sync>;

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` completes,
/// then lets open connections finish their requests (for at most 30 s) and returns.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsConfig>,
    limits: Limits,
    rejected: Rejected,
    shutdown: F,
) where
    F: Future<Output = ()> + Send,
{
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let limits = Arc::new(limits);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &permits) => accepted,
            () = &mut shutdown => break,
        };
        let Some((tcp, peer, permit)) = accepted else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (router, watcher, limits) = (router.clone(), graceful.watcher(), limits.clone());
        let rejected = rejected.clone();
        let config = tls.as_ref().map(TlsConfig::current);
        tokio::spawn(async move {
            match config {
                Some(config) => {
                    if let Some((stream, client)) = handshake(tcp, peer, config).await {
                        http(stream, peer, client, router, watcher, &limits, &rejected).await;
                    }
                }
                None => http(tcp, peer, None, router, watcher, &limits, &rejected).await,
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_LIMIT:?}; stopping anyway");
    }
}

/// The next connection, once a connection slot is free.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit)> {
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((tcp, peer)) => Some((tcp, peer, permit)),
        Err(e) if is_connection_error(&e) => None,
        Err(e) => {
            // Out of file descriptors and the like: back off instead of spinning.
            tracing::error!(error = %e, "accepting a connection failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

/// HTTP/1.1 on one connection until the client leaves or shutdown asks it to finish.
async fn http<S>(
    stream: S,
    peer: SocketAddr,
    client: Option<PeerCertificate>,
    router: Router,
    watcher: Watcher,
    limits: &Limits,
    rejected: &Rejected,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(cert) = client {
            req.extensions_mut().insert(cert);
        }
        tower_service::Service::call(&mut router.clone(), req)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .max_headers(limits.max_headers);
    let served = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
    if let Err(e) = served.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
        // Not a header timeout: hyper cannot tell a slow request from an idle keep-alive
        // connection, and the idle ones are no attempt.
        if e.is_parse_too_large() {
            rejected(peer, Refusal::TooLarge);
        } else if e.is_parse() {
            rejected(peer, Refusal::Malformed);
        }
    }
}

/// Errors of one connection that came and went before it was accepted: not the listener's.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
