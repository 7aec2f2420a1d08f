//! One keep-alive HTTP/1.1 connection (hyper's client connection over a tokio socket), and the
//! loop that sends one workload's requests on it until the deadline.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::workload::{Pool, Workload};
use crate::{BenchConfig, BenchError};

pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> Result<Conn, BenchError> {
        let connect = |cause: String| BenchError::Connect { addr, cause };
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| connect(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| connect(e.to_string()))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect(e.to_string()))?;
        // The connection's I/O runs beside the requests; it ends when `sender` is dropped.
        tokio::spawn(conn);
        Ok(Conn { sender })
    }

    /// One request with a bearer credential and a JSON body (empty for GET); answers the
    /// status and the whole body.
    pub(crate) async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: String,
    ) -> Result<(u16, Bytes), BenchError> {
        let http = |e: &dyn std::fmt::Display| BenchError::Http(e.to_string());
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "tijori-bench")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| http(&e))?;
        self.sender.ready().await.map_err(|e| http(&e))?;
        let resp = self.sender.send_request(req).await.map_err(|e| http(&e))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| http(&e))?
            .to_bytes();
        Ok((status, body))
    }
}

/// What one connection saw.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    /// The first refusal, to tell the user why (a status and the start of its body).
    pub(crate) first_error: Option<String>,
    /// Latency of each successful request, in microseconds.
    pub(crate) latencies: Vec<u32>,
}

impl Tally {
    pub(crate) fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }
}

/// Sends `workload`'s requests on one connection until `deadline`; a broken connection is
/// counted as an error and opened again.
pub(crate) async fn drive(
    config: &BenchConfig,
    workload: Workload,
    key: &str,
    pool: &Pool,
    deadline: Instant,
    seed: u64,
) -> Result<Tally, BenchError> {
    let mut rng =
        fastrand::Rng::with_seed(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ fastrand::u64(..));
    let mut conn = Conn::open(config.addr).await?;
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let (method, path, body) = workload.request(&mut rng, pool, config.batch_size);
        let sent = Instant::now();
        match conn.call(method, path, key, body).await {
            Ok((status, _)) if (200..300).contains(&status) => {
                tally.ok += 1;
                let micros = sent.elapsed().as_micros();
                tally
                    .latencies
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Ok((status, answer)) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| {
                    let text = String::from_utf8_lossy(&answer);
                    format!("{status} {}", text.chars().take(200).collect::<String>())
                });
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| e.to_string());
                conn = Conn::open(config.addr).await?;
            }
        }
    }
    Ok(tally)
}
