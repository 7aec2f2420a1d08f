//! `tijori operator ...`: initializing a production vault with custodians' key shares, and
//! sealing or unsealing a running one.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tijori_core::{SystemClock, Vault, VaultConfig};
use tijori_store::sqlite::SqliteStore;
use zeroize::Zeroizing;

use crate::remote::{answer, request};
use crate::Remote;

/// `tijori operator init`: a new production vault; prints its shares and root token once.
pub(crate) fn init(data_dir: &Path, shares: u8, threshold: u8) -> Result<ExitCode> {
    if threshold > shares {
        bail!("--threshold ({threshold}) cannot exceed --shares ({shares})");
    }
    crate::server::create_private_dir(data_dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the runtime")?;
    let done = rt.block_on(async {
        let store = Arc::new(
            SqliteStore::open(data_dir)
                .with_context(|| format!("opening the data dir {}", data_dir.display()))?,
        );
        let vault = Vault::open(store, Arc::new(SystemClock), VaultConfig::default()).await?;
        anyhow::Ok(vault.init_with_shares(shares, threshold).await?)
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Initialized a production vault in {}.\n\n\
         Key shares: any {} of these {} unseal the vault. Give each to a different custodian\n\
         now; they are shown this once and stored nowhere.\n",
        data_dir.display(),
        done.threshold,
        done.shares.len()
    )?;
    for (i, share) in done.shares.iter().enumerate() {
        writeln!(out, "Key share {}: {}", i + 1, share.as_str())?;
    }
    writeln!(
        out,
        "\nInitial root token (admin; shown once, keep it safe): {}\n\n\
         Next: tijori server --data-dir {}   (it starts sealed), then {} custodians run\n\
         tijori operator unseal",
        done.root_token.as_str(),
        data_dir.display(),
        done.threshold
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `tijori operator unseal`: one share from stdin to the server; prints the progress.
pub(crate) fn unseal(addr: &str) -> Result<ExitCode> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Key share (tjs1-...): ");
        std::io::stderr().flush()?;
    }
    let mut share = Zeroizing::new(String::new());
    stdin
        .lock()
        .read_line(&mut share)
        .context("reading the share from stdin")?;
    if share.trim().is_empty() {
        bail!("give the key share on stdin, e.g.  tijori operator unseal < share.txt");
    }
    let body = serde_json::json!({ "share": share.trim() });
    let url = format!("{}/v1/sys/unseal", addr.trim_end_matches('/'));
    let reply = answer(ureq::post(&url).send_json(body))?;
    if reply["sealed"] == false {
        println!("unsealed");
    } else {
        println!(
            "share accepted: {} of {}; still sealed",
            reply["progress"], reply["threshold"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `tijori operator seal`: drops every key from the server's memory.
pub(crate) fn seal(remote: &Remote) -> Result<ExitCode> {
    answer(request(remote, "POST", "/v1/sys/seal").send_json(serde_json::json!({})))?;
    println!("sealed: the server holds no key until custodians unseal it");
    Ok(ExitCode::SUCCESS)
}
