//! `tijori audit ...`: checking, exporting and reading the audit trail. `verify`, `export` and
//! `public-key` work on a data dir (read-only, beside a live server or on a forensic copy) or
//! on export files; `tail` and `hash` ask a running server.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use std::sync::Arc;

use tijori_core::audit::archive::{create_private_file, Retention};
use tijori_core::audit::{
    archive_and_audit, export, feed_store, stored_public_key, StoreAudit, Verdict, Verifier,
};
use tijori_core::{Clock, SystemClock};
use tijori_crypto::PublicKey;
use tijori_store::sqlite::SqliteStore;
use tijori_store::Store;

use crate::remote::{answer, get, request};
use crate::{Remote, TailFilters};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .context("starting the runtime")
}

fn open_store(dir: &Path) -> Result<SqliteStore> {
    SqliteStore::open_read_only(dir)
        .with_context(|| format!("opening the data dir {}", dir.display()))
}

fn progress(n: u64) {
    eprint!("\rchecked {n} records");
    let _ = std::io::stderr().flush();
}

/// A public key given on the command line, or in the file it names.
fn read_public_key(arg: &str) -> Result<PublicKey> {
    let text = if arg.trim_start().starts_with("ed25519:") {
        arg.to_owned()
    } else {
        std::fs::read_to_string(arg)
            .with_context(|| format!("reading the public key file {arg}"))?
    };
    Ok(PublicKey::parse(&text)?)
}

/// `tijori audit verify`: exit 0 if intact, 1 naming the first bad record.
pub(crate) fn verify(
    data_dir: Option<&Path>,
    files: &[PathBuf],
    public_key: Option<&str>,
) -> Result<ExitCode> {
    let rt = runtime()?;
    let store = data_dir.map(open_store).transpose()?;
    let key = match (public_key, &store) {
        (Some(arg), _) => Some(read_public_key(arg)?),
        (None, Some(store)) if files.is_empty() => {
            let key = rt.block_on(stored_public_key(store))?;
            if let Some(k) = &key {
                eprintln!(
                    "checking signatures with the public key stored in the data dir ({}); \
                     pass --public-key with the key you exported to rule out a swapped key",
                    k.fingerprint()
                );
            }
            key
        }
        (None, _) => bail!("checking export files needs the vault's public key: pass --public-key (from tijori audit public-key)"),
    };
    let mut v = if files.is_empty() {
        Verifier::new(key)
    } else {
        Verifier::from_first(key)
    };
    for file in files {
        let open = || -> Result<BufReader<File>> {
            Ok(BufReader::new(
                File::open(file).with_context(|| format!("opening {}", file.display()))?,
            ))
        };
        export::feed_checkpoints(&mut v, open()?).with_context(|| file.display().to_string())?;
        export::feed_records(&mut v, open()?, progress)
            .with_context(|| file.display().to_string())?;
    }
    if let Some(store) = &store {
        rt.block_on(feed_store(&mut v, store, progress))?;
    }
    eprintln!();
    match v.finish() {
        Verdict::Intact {
            first,
            anchored,
            records,
            head,
            signed_through,
            unsigned,
        } => {
            let start = match (first, anchored) {
                (1, _) => String::new(),
                (_, true) => format!(
                    " (from record {first}, joined to the signed cut where earlier records were \
                     archived; check the archives with --file)"
                ),
                (_, false) => {
                    format!(" (from record {first}; earlier ones are not in what was checked)")
                }
            };
            println!("audit trail intact: {records} records{start}, chain head {head}");
            match signed_through {
                Some((seq, time)) => println!(
                    "signed through record {seq} at {}; {unsigned} record(s) written after that are chained but not yet signed",
                    tijori_core::rfc3339(time)
                ),
                None => println!("no signed checkpoint covers these records yet"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken { seq, reason } => {
            println!("audit trail BROKEN at record {seq}: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `tijori audit export`: JSON Lines with chain proofs, to a file or stdout.
pub(crate) fn export(data_dir: &Path, out: Option<&Path>, after: i64) -> Result<ExitCode> {
    let store = open_store(data_dir)?;
    let mut sink: Box<dyn Write + Send> = match out {
        // Owner-only, as the trail's own files and its archives are.
        Some(path) => Box::new(std::io::BufWriter::new(
            create_private_file(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let n = runtime()?.block_on(export::export(&store, after, i64::MAX, &mut sink, |n| {
        eprint!("\rexported {n} records");
        let _ = std::io::stderr().flush();
    }))?;
    eprintln!("\rexported {n} records");
    Ok(ExitCode::SUCCESS)
}

/// `tijori audit archive`: one archiving run on a data dir, audited.
pub(crate) fn archive(data_dir: &Path, retention: &Retention) -> Result<ExitCode> {
    let rt = runtime()?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(data_dir)
            .with_context(|| format!("opening the data dir {}", data_dir.display()))?,
    );
    let sink = StoreAudit(store.clone());
    let now = SystemClock.now();
    let report = rt.block_on(archive_and_audit(&*store, &sink, retention, now, |n| {
        eprint!("\rarchived {n} records");
        let _ = std::io::stderr().flush();
    }))?;
    eprintln!();
    match &report.written {
        Some((path, n)) => println!("archived {n} records to {}", path.display()),
        None => println!("no signed records older than the online window to archive"),
    }
    for path in &report.removed {
        println!("deleted {} (past retention)", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `tijori audit public-key`: the key that checks the trail's signatures.
pub(crate) fn public_key(data_dir: &Path) -> Result<ExitCode> {
    let store = open_store(data_dir)?;
    match runtime()?.block_on(stored_public_key(&store))? {
        Some(key) => {
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        None => bail!("this data dir has no audit key yet: start (and unseal) the vault once"),
    }
}

/// `tijori audit tail`: the newest records (and with --follow, new ones as they come).
pub(crate) fn tail(remote: &Remote, filters: &TailFilters) -> Result<ExitCode> {
    let mut query = String::new();
    for (k, v) in [
        ("principal", &filters.principal),
        ("operation", &filters.operation),
        ("token", &filters.for_token),
        ("outcome", &filters.outcome),
        ("since", &filters.since),
    ] {
        if let Some(v) = v {
            query.push_str(&format!(
                "&{k}={}",
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            ));
        }
    }
    let head = get(remote, "/v1/audit?limit=1")?["head"]
        .as_i64()
        .unwrap_or(0);
    let mut after = filters
        .after
        .unwrap_or((head - filters.lines as i64).max(0));
    loop {
        let page = get(
            remote,
            &format!("/v1/audit?after={after}&limit=1000{query}"),
        )?;
        let mut out = std::io::stdout().lock();
        for r in page["records"].as_array().into_iter().flatten() {
            writeln!(out, "{r}")?;
        }
        out.flush()?;
        match page["next"].as_i64() {
            Some(next) => after = next,
            None if filters.follow => {
                after = page["head"].as_i64().unwrap_or(after).max(after);
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// `tijori audit hash`: the HMAC audit records carry for a value read from stdin.
pub(crate) fn hash(remote: &Remote, data_type: &str) -> Result<ExitCode> {
    let mut value = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut value)
        .context("reading the value from stdin")?;
    let value = zeroize::Zeroizing::new(value.trim_end_matches(['\r', '\n']).to_owned());
    if value.is_empty() {
        bail!("give the value on stdin, e.g.  printf %s 4111111111111111 | tijori audit hash --type card_number");
    }
    let body = serde_json::json!({ "type": data_type, "value": value.as_str() });
    let reply = answer(request(remote, "POST", "/v1/audit/hash").send_json(body))?;
    println!("{}", reply["hmac"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
