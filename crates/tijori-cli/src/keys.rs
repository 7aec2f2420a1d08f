//! `tijori keys ...`: the key report, rotation, and running the rewrap and re-encrypt jobs on a
//! running server, step by step with progress.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::remote::{answer, get, request};
use crate::Remote;

/// `tijori keys status`: the key report as the server gives it (JSON).
pub(crate) fn status(remote: &Remote) -> Result<ExitCode> {
    let report = get(remote, "/v1/sys/keys")?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    for (name, family) in [
        ("key-encryption key", &report["kek"]),
        ("data key", &report["data"]),
    ] {
        let overdue = family["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["active"] == true && v["cryptoperiod_passed"] == true);
        if overdue {
            eprintln!("the active {name} is past its cryptoperiod: rotate it (tijori keys rotate)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tijori keys rotate --key kek|data`.
pub(crate) fn rotate(remote: &Remote, key: &str) -> Result<ExitCode> {
    let reply = answer(
        request(remote, "POST", "/v1/sys/keys/rotate").send_json(serde_json::json!({"key": key})),
    )?;
    println!("new {key} version {}", reply["version"]);
    let next = if key == "kek" {
        "tijori keys rewrap"
    } else {
        "tijori keys reencrypt"
    };
    println!("new writes use it now; run `{next}` to move what the old version still covers");
    Ok(ExitCode::SUCCESS)
}

/// `tijori keys rewrap` / `reencrypt`: one step after another until nothing is left.
pub(crate) fn run_job(remote: &Remote, job: &str) -> Result<ExitCode> {
    let path = format!("/v1/sys/keys/{job}");
    let (mut moved, mut destroyed) = (0u64, 0u64);
    loop {
        let step = answer(request(remote, "POST", &path).send_json(serde_json::json!({})))?;
        let (m, left) = (step["moved"].as_u64(), step["remaining"].as_u64());
        let (Some(m), Some(left)) = (m, left) else {
            bail!("the server gave an unexpected answer: {step}");
        };
        moved += m;
        destroyed += step["destroyed"].as_u64().unwrap_or(0);
        eprint!("\r{job}: {moved} moved, {left} remaining   ");
        std::io::stderr().flush()?;
        if left == 0 {
            break;
        }
        if m == 0 {
            bail!("{job} made no progress with {left} remaining; look at the server's log");
        }
    }
    eprintln!();
    println!("{job} done: {moved} moved, {destroyed} retired key(s) destroyed");
    Ok(ExitCode::SUCCESS)
}
