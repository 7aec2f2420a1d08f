//! Results: per workload, throughput, latency percentiles, errors, the server's peak memory and
//! the ratio to the ceiling; printed as a table and kept as JSON (BENCHMARKS.md keeps a history
//! of these files to compare a change with the last).

use std::time::Duration;

use serde::Serialize;

use crate::client::Tally;
use crate::Workload;

/// One workload's figures.
#[derive(Debug, Serialize)]
pub struct WorkloadResult {
    pub workload: Workload,
    pub connections: usize,
    /// Items per request (1, or the batch size).
    pub items_per_request: usize,
    pub requests: u64,
    pub errors: u64,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    /// Items per second (requests times items per request).
    pub items_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The server's peak resident memory so far (VmHWM), when it runs on this machine.
    pub server_peak_rss_mib: Option<f64>,
    /// The server's CPU time (user and system, all threads) per item, in microseconds, when it
    /// runs on this machine: steadier than throughput on a busy machine, since it does not
    /// count the time the server waited for a core.
    pub server_cpu_us_per_item: Option<f64>,
    /// The load generator's own CPU time per item (this process), in microseconds: what the
    /// client took of the machine it shares with a local server.
    pub client_cpu_us_per_item: Option<f64>,
    /// Items per second over the ceiling's requests per second (set once the ceiling ran).
    pub ratio_to_ceiling: Option<f64>,
    /// The first refusal, if any.
    pub first_error: Option<String>,
    pub seconds: f64,
}

impl WorkloadResult {
    pub(crate) fn new(
        workload: Workload,
        connections: usize,
        items_per_request: usize,
        mut tally: Tally,
        elapsed: Duration,
        usage: Usage,
    ) -> WorkloadResult {
        tally.latencies.sort_unstable();
        let at = |q: f64| {
            let n = tally.latencies.len();
            if n == 0 {
                return 0.0;
            }
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            f64::from(tally.latencies[i]) / 1000.0
        };
        let secs = elapsed.as_secs_f64().max(1e-9);
        let items = tally.ok as f64 * items_per_request as f64;
        let per_item = |cpu_secs: f64| (items > 0.0).then(|| cpu_secs * 1e6 / items);
        let requests_per_sec = tally.ok as f64 / secs;
        WorkloadResult {
            workload,
            connections,
            items_per_request,
            requests: tally.ok,
            errors: tally.errors,
            requests_per_sec,
            items_per_sec: requests_per_sec * items_per_request as f64,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
            server_peak_rss_mib: usage.server_peak_rss_mib,
            server_cpu_us_per_item: usage.server_cpu_secs.and_then(per_item),
            client_cpu_us_per_item: usage.client_cpu_secs.and_then(per_item),
            ratio_to_ceiling: None,
            first_error: tally.first_error,
            seconds: secs,
        }
    }
}

/// What a workload's run took of the machine, where it could be read.
pub(crate) struct Usage {
    pub(crate) server_peak_rss_mib: Option<f64>,
    pub(crate) server_cpu_secs: Option<f64>,
    pub(crate) client_cpu_secs: Option<f64>,
}

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Unix seconds when the run ended.
    pub finished_at: u64,
    pub version: String,
    pub target: String,
    pub cpus: usize,
    pub seconds_per_workload: f64,
    pub results: Vec<WorkloadResult>,
}

impl Report {
    pub fn new(
        version: &str,
        target: &str,
        seconds: f64,
        mut results: Vec<WorkloadResult>,
    ) -> Report {
        let ceiling = results
            .iter()
            .find(|r| r.workload == Workload::Ceiling)
            .map(|r| r.requests_per_sec)
            .filter(|c| *c > 0.0);
        if let Some(c) = ceiling {
            for r in &mut results {
                r.ratio_to_ceiling = Some(r.items_per_sec / c);
            }
        }
        Report {
            finished_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            version: version.to_owned(),
            target: target.to_owned(),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            seconds_per_workload: seconds,
            results,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<24} {:>5} {:>12} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>7}\n",
            "workload",
            "conns",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "errors",
            "peak MiB",
            "server µs",
            "client µs",
            "ratio"
        );
        for r in &self.results {
            let unit = if r.items_per_request > 1 {
                " items"
            } else {
                ""
            };
            out.push_str(&format!(
                "{:<24} {:>5} {:>12} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>9} {:>9} {:>9} {:>7}\n",
                r.workload.name(),
                r.connections,
                format!("{:.0}{unit}", r.items_per_sec),
                r.p50_ms,
                r.p99_ms,
                r.p999_ms,
                r.errors,
                r.server_peak_rss_mib
                    .map_or("-".into(), |m| format!("{m:.0}")),
                r.server_cpu_us_per_item
                    .map_or("-".into(), |c| format!("{c:.1}")),
                r.client_cpu_us_per_item
                    .map_or("-".into(), |c| format!("{c:.1}")),
                r.ratio_to_ceiling.map_or("-".into(), |x| format!("{x:.2}")),
            ));
        }
        for r in self.results.iter().filter(|r| r.errors > 0) {
            out.push_str(&format!(
                "{}: {} errors; the first: {}\n",
                r.workload.name(),
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            ));
        }
        out
    }
}

/// A process's peak resident set size (VmHWM) in MiB, from /proc (Linux).
pub(crate) fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// A process's CPU time so far (user and system, all its threads), in seconds, from /proc
/// (Linux, whose clock tick is 1/100 s on every architecture it reports it for).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The CPU seconds process `pid` has used since `before`, a reading of [`cpu_seconds`]; none
/// where either reading could not be taken.
pub(crate) fn cpu_since(pid: Option<u32>, before: Option<f64>) -> Option<f64> {
    pid.and_then(cpu_seconds)
        .zip(before)
        .map(|(after, before)| after - before)
}
