//! One connection to the receiver and how messages are put on it: RFC 6587 octet counting
//! (`LEN SP MSG`) on TCP, one message per datagram on UDP (RFC 5426).
//!
//! Plain syslog has no acknowledgements, so this module also owns the only delivery signals
//! there are: a TCP receiver never sends, so a readable socket means it closed (EOF) or reset
//! the connection, and after our own half-close an EOF from the receiver means it read
//! everything before closing. The forwarder builds its at-least-once promise on these. Every
//! I/O step has a timeout so a stalled receiver cannot hang the forwarder or its shutdown.

use std::io;
use std::time::Duration;

use tijori_store::AuditRow;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{lookup_host, TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::format::{format, format_limited};
use crate::{Protocol, SyslogError, Target};

/// The largest datagram sent. IPv4 UDP carries at most 65,507 bytes; this leaves room and is
/// far above any ordinary audit record. Longer messages are truncated (see [`format_limited`]).
pub const MAX_DATAGRAM: usize = 60_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the header says about the sender, fixed for a forwarder's life.
pub(crate) struct Origin<'a> {
    pub(crate) hostname: &'a str,
    pub(crate) procid: u32,
}

pub(crate) enum Connection {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

impl Connection {
    pub(crate) async fn open(target: &Target) -> Result<Connection, SyslogError> {
        let err = |source: io::Error| SyslogError::Connect {
            target: target.to_string(),
            source,
        };
        let addr = (target.host(), target.port());
        match target.protocol() {
            Protocol::Tcp => {
                let stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
                    .await
                    .map_err(|_| err(io::ErrorKind::TimedOut.into()))?
                    .map_err(err)?;
                // Frames are written a batch at a time; Nagle would only add latency.
                stream.set_nodelay(true).map_err(err)?;
                Ok(Connection::Tcp(stream))
            }
            Protocol::Udp => {
                let peer = timeout(CONNECT_TIMEOUT, lookup_host(addr))
                    .await
                    .map_err(|_| err(io::ErrorKind::TimedOut.into()))?
                    .map_err(err)?
                    .next()
                    .ok_or_else(|| err(io::Error::other("the name has no address")))?;
                let local = if peer.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local).await.map_err(err)?;
                socket.connect(peer).await.map_err(err)?;
                Ok(Connection::Udp(socket))
            }
        }
    }

    /// Whether a successful send is all the delivery evidence there will ever be (UDP).
    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self, Connection::Udp(_))
    }

    /// Sends `rows` in order. An error leaves the connection unusable.
    pub(crate) async fn send(&mut self, rows: &[AuditRow], from: &Origin<'_>) -> io::Result<()> {
        match self {
            Connection::Tcp(stream) => {
                let mut buf = Vec::with_capacity(rows.len() * 512);
                for row in rows {
                    let msg = format(row, from.hostname, from.procid);
                    buf.extend_from_slice(msg.len().to_string().as_bytes());
                    buf.push(b' ');
                    buf.extend_from_slice(msg.as_bytes());
                }
                with_timeout(WRITE_TIMEOUT, stream.write_all(&buf)).await
            }
            Connection::Udp(socket) => {
                for row in rows {
                    let msg = format_limited(row, from.hostname, from.procid, MAX_DATAGRAM);
                    with_timeout(WRITE_TIMEOUT, socket.send(msg.as_bytes())).await?;
                }
                Ok(())
            }
        }
    }

    /// Fails if the TCP receiver has closed or reset the connection. Bytes a receiver sends
    /// (it should send none) are read and ignored.
    pub(crate) fn check(&mut self) -> io::Result<()> {
        let Connection::Tcp(stream) = self else {
            return Ok(());
        };
        let mut buf = [0u8; 512];
        loop {
            match stream.try_read(&mut buf) {
                Ok(0) => return Err(closed()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Ends the connection, and answers whether the receiver is known to have read all that
    /// was sent: on TCP, our FIN is answered by the receiver's EOF within `wait`. UDP knows
    /// nothing more than at sending, which already counted as delivery.
    pub(crate) async fn close(self, wait: Duration) -> bool {
        let Connection::Tcp(mut stream) = self else {
            return true;
        };
        let drained = async {
            stream.shutdown().await?;
            let mut buf = [0u8; 512];
            while stream.read(&mut buf).await? != 0 {}
            Ok::<(), io::Error>(())
        };
        matches!(timeout(wait, drained).await, Ok(Ok(())))
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the receiver closed the connection",
    )
}

async fn with_timeout<T>(
    limit: Duration,
    io: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<()> {
    match timeout(limit, io).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}
