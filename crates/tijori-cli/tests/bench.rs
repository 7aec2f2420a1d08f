//! `tijori bench` (issue 7): it starts its own server, runs every workload, and reports
//! figures for each, as a table and as JSON. The figures themselves are never judged here.
// These are tests: a failed unwrap, expect or assertion is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

const WORKLOADS: [&str; 7] = [
    "ceiling",
    "tokenize",
    "tokenize_preserving",
    "tokenize_deterministic",
    "detokenize",
    "search",
    "tokenize_batch",
];

#[test]
fn bench_runs_every_workload_and_reports_each() {
    let dir = temp_dir(&tmp_base(), "bench");
    let json = dir.join("bench.json");
    let mut cmd = std::process::Command::new(bin());
    cmd.args([
        "bench",
        "--seconds",
        "1",
        "--connections",
        "4",
        "--batch-connections",
        "2",
        "--batch-size",
        "50",
        "--json",
    ])
    .arg(&json);
    let (code, out) = must_exit(cmd);
    assert_eq!(code, Some(0), "{out}");
    for w in WORKLOADS {
        assert!(
            out.lines().any(|l| l.starts_with(w)),
            "no table row for {w}: {out}"
        );
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), WORKLOADS.len());
    for (r, w) in results.iter().zip(WORKLOADS) {
        assert_eq!(r["workload"], w);
        assert_eq!(r["errors"], 0, "{r}");
        assert!(r["requests"].as_u64().unwrap() > 0, "{r}");
        assert!(r["server_peak_rss_mib"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["ratio_to_ceiling"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["server_cpu_us_per_item"].is_number(), "{r}");
        assert!(r["client_cpu_us_per_item"].is_number(), "{r}");
        let (p50, p99) = (r["p50_ms"].as_f64().unwrap(), r["p99_ms"].as_f64().unwrap());
        assert!(p50 > 0.0 && p50 <= p99, "{r}");
    }
    assert_eq!(results[6]["items_per_request"], 50);
}

#[test]
fn bench_names_an_unknown_workload() {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["bench", "--workloads", "tokenise"]);
    let (code, out) = must_exit(cmd);
    assert_ne!(code, Some(0));
    assert!(out.contains("no workload 'tokenise'"), "{out}");
}
