//! `tijori audit ...`: inspecting the audit trail of a data dir.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tijori_core::audit::{verify as verify_chain, Verdict};
use tijori_store::sqlite::SqliteStore;

/// `tijori audit verify`: exit 0 if intact, 1 naming the first bad record.
pub(crate) fn verify(data_dir: &Path) -> Result<ExitCode> {
    let store = SqliteStore::open_read_only(data_dir)
        .with_context(|| format!("opening the data dir {}", data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the runtime")?;
    let verdict = runtime.block_on(verify_chain(&store, |n| {
        eprint!("\rchecked {n} records");
        let _ = std::io::stderr().flush();
    }))?;
    eprintln!();
    match verdict {
        Verdict::Intact { records, head } => {
            println!("audit trail intact: {records} records, chain head {head}");
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken { seq, reason } => {
            println!("audit trail BROKEN at record {seq}: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}
