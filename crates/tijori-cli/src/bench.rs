//! `tijori bench`: the benchmark anyone can run. Starts this very binary as a dev server on a
//! fresh data dir (or drives the server of `--url`), then runs each workload in turn with many
//! keep-alive connections and prints the figures as a table (and JSON with `--json`). The load
//! generator shares the machine with the server, as the targets assume.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tijori_bench::{Bench, BenchConfig, Report, Workload};

/// The options of `tijori bench`.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Drive this running server (plain http://HOST:PORT) instead of starting one; needs
    /// --admin-token. Peak memory is then not measured.
    #[arg(long, value_name = "URL", requires = "admin_token")]
    url: Option<String>,
    /// An admin credential of the --url server: it creates the benchmark's own principal.
    #[arg(long, env = "TIJORI_BENCH_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Seconds each workload runs.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Concurrent keep-alive connections of the single-item workloads.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    connections: u64,
    /// Concurrent connections of the batch workload. Eight, as a bulk loader would keep in
    /// flight: with four, a batch's stages (parse and encrypt, commit, answer) follow one
    /// another and both cores sat a third idle.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    batch_connections: u64,
    /// Items per request of the batch workload.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch_size: u64,
    /// The workloads to run, comma-separated [default: all]: ceiling, tokenize,
    /// tokenize_preserving, tokenize_deterministic, detokenize, search, tokenize_batch.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    workloads: Vec<String>,
    /// Also write the report as JSON to FILE (BENCHMARKS.md keeps these to compare runs).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The dev server this run started; killed and its data dir removed when dropped.
struct Started {
    child: Child,
    dir: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    let workloads = match args.workloads.as_slice() {
        [] => Workload::ALL.to_vec(),
        names => names
            .iter()
            .map(|n| {
                Workload::parse(n).with_context(|| {
                    format!("no workload '{n}'; see tijori bench --help for the names")
                })
            })
            .collect::<Result<_>>()?,
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; figures mean little. Run: cargo run --release -- bench"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (addr, token, started, target) = match &args.url {
        Some(url) => {
            let token = args.admin_token.clone().unwrap_or_default();
            (resolve(url)?, token, None, url.clone())
        }
        None => {
            let (started, addr, token) = start_server()?;
            (
                addr,
                token,
                Some(started),
                "a dev server started by tijori bench".to_owned(),
            )
        }
    };
    let config = BenchConfig {
        addr,
        connections: args.connections as usize,
        batch_connections: args.batch_connections as usize,
        batch_size: args.batch_size as usize,
        duration: Duration::from_secs(args.seconds),
        server_pid: started.as_ref().map(|s| s.child.id()),
    };
    let report = runtime.block_on(async {
        if !tijori_bench::wait_ready(addr, Duration::from_secs(30)).await {
            bail!("the server at {addr} did not answer GET /v1/health within 30 s");
        }
        let bench = Bench::prepare(config, &token).await?;
        let mut results = Vec::new();
        for w in workloads {
            eprintln!("running {} for {} s ...", w.name(), args.seconds);
            results.push(bench.run(w).await?);
        }
        Ok(Report::new(
            env!("CARGO_PKG_VERSION"),
            &target,
            args.seconds as f64,
            results,
        ))
    })?;
    drop(started);
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("JSON report written to {}", path.display());
    }
    Ok(())
}

fn resolve(url: &str) -> Result<SocketAddr> {
    let Some(host) = url.strip_prefix("http://") else {
        bail!("--url takes a plain http://HOST:PORT address (the benchmark does not speak TLS)");
    };
    let host = host.trim_end_matches('/');
    host.to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} resolves to no address"))
}

/// Starts this binary as a dev server on a free loopback port and a fresh data dir.
fn start_server() -> Result<(Started, SocketAddr, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = std::env::temp_dir().join(format!("tijori-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let token = format!("bench-{}", tijori_crypto::random_hex(16)?);
    let log = std::fs::File::create(dir.join("server.log"))?;
    // The root token through the environment, not argv, where any local user's `ps` sees it.
    let child = Command::new(std::env::current_exe()?)
        .args(["server", "--dev", "--listen"])
        .arg(addr.to_string())
        .env("TIJORI_DEV_ROOT_TOKEN", &token)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the server")?;
    eprintln!(
        "started a dev server on {addr} (data and log in {})",
        dir.display()
    );
    Ok((Started { child, dir }, addr, token))
}
