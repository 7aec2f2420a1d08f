//! The engine of `tijori bench`: drives a Tijori server over HTTP/1.1 with many concurrent
//! keep-alive connections, one workload at a time, and measures what it answers: operations per
//! second, latency percentiles and, for a server on this machine, its peak memory. The CLI
//! starts the server and prints the report; this crate knows only HTTP and the API's shapes.
//!
//! Figures, never verdicts: nothing here decides whether a number is good enough.
#![forbid(unsafe_code)]

mod client;
mod report;
mod workload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use report::{Report, WorkloadResult};
pub use workload::Workload;

use workload::Pool;

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot reach the server at {addr}: {cause}")]
    Connect { addr: SocketAddr, cause: String },
    #[error("HTTP failure: {0}")]
    Http(String),
    #[error("the server refused the benchmark's setup ({step}): {answer}")]
    Setup { step: &'static str, answer: String },
}

/// How to drive the server.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub addr: SocketAddr,
    /// Connections of the single-item workloads.
    pub connections: usize,
    /// Connections of the batch workload (each batch is `batch_size` items).
    pub batch_connections: usize,
    pub batch_size: usize,
    /// How long each workload runs.
    pub duration: Duration,
    /// The server's process, when it runs on this machine: its peak RSS is reported.
    pub server_pid: Option<u32>,
}

/// A server made ready for the workloads: a principal of the benchmark's own, and tokens of
/// known values to reveal and search for.
pub struct Bench {
    config: BenchConfig,
    key: Arc<str>,
    pool: Arc<Pool>,
}

impl Bench {
    /// Creates a `revealer` principal with `admin_token` (an admin credential, such as the dev
    /// root token) and tokenizes the values the read workloads use.
    pub async fn prepare(config: BenchConfig, admin_token: &str) -> Result<Bench, BenchError> {
        let mut conn = client::Conn::open(config.addr).await?;
        let name = format!("bench-{:08x}", fastrand::u32(..));
        let body = serde_json::json!({"name": name, "roles": ["revealer"]}).to_string();
        let (status, answer) = conn
            .call("POST", "/v1/principals", admin_token, body)
            .await?;
        let json: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        let Some(key) = json["api_key"].as_str().filter(|_| status == 201) else {
            return Err(BenchError::Setup {
                step: "create a principal with the admin token",
                answer: format!("{status} {}", String::from_utf8_lossy(&answer)),
            });
        };
        let key: Arc<str> = Arc::from(key);
        let pool = Pool::make(&mut conn, &key).await?;
        Ok(Bench {
            config,
            key,
            pool: Arc::new(pool),
        })
    }

    /// Runs one workload for the configured time on its connections.
    pub async fn run(&self, workload: Workload) -> Result<WorkloadResult, BenchError> {
        let batch = workload == Workload::TokenizeBatch;
        let connections = if batch {
            self.config.batch_connections
        } else {
            self.config.connections
        };
        let pid = self.config.server_pid;
        let cpu_before = pid.and_then(report::cpu_seconds);
        let client_before = report::cpu_seconds(std::process::id());
        let deadline = Instant::now() + self.config.duration;
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(connections);
        for n in 0..connections {
            let (key, pool, config) = (self.key.clone(), self.pool.clone(), self.config.clone());
            tasks.push(tokio::spawn(async move {
                client::drive(&config, workload, &key, &pool, deadline, n as u64).await
            }));
        }
        let mut tally = client::Tally::default();
        for t in tasks {
            let part = t
                .await
                .map_err(|e| BenchError::Http(format!("a connection task failed: {e}")))??;
            tally.merge(part);
        }
        let elapsed = started.elapsed();
        let cpu = report::cpu_since(pid, cpu_before);
        let client_cpu = report::cpu_since(Some(std::process::id()), client_before);
        let items = if batch { self.config.batch_size } else { 1 };
        Ok(WorkloadResult::new(
            workload,
            connections,
            items,
            tally,
            elapsed,
            report::Usage {
                server_peak_rss_mib: pid.and_then(report::peak_rss_mib),
                server_cpu_secs: cpu,
                client_cpu_secs: client_cpu,
            },
        ))
    }
}

/// Waits until the server at `addr` answers `GET /v1/health` with 200, up to `timeout`;
/// answers whether it did.
pub async fn wait_ready(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(mut conn) = client::Conn::open(addr).await {
            if let Ok((200, _)) = conn.call("GET", "/v1/health", "", String::new()).await {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
