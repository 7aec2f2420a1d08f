//! `tijori import`: a migration of an existing database of values into tokens. Reads a CSV
//! file, tokenizes one column through a running server's batch endpoint (10,000 values a
//! request), and writes the same rows with the value replaced by its token. Values never touch
//! the disk here except in the input the user already has; rejected rows are listed by row
//! number and error code only.
//!
//! Resumable: after every batch the output is flushed and synced, then a progress file records
//! how many input rows and output bytes are done. A run that finds the progress file truncates
//! the output to what it records and carries on from there. Each batch is sent with an
//! `Idempotency-Key` made from its content under the run's own key (kept in the progress
//! file, owner-only), so a batch sent again after a crash gets the same tokens rather than new
//! ones.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tijori_core::import::{
    batch_request, count_data_rows, csv_line, item_outcome, tokenized_row, ImportError,
    ImportReader, Progress, RunKey,
};

use crate::remote::{answer, request};
use crate::Remote;

/// The options of `tijori import`.
#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    /// The CSV file to import (UTF-8, comma-separated, first row a header).
    file: PathBuf,
    /// The data type of the column (card_number, iban, cnic, pk_mobile, bank_account, text).
    #[arg(long = "type", value_name = "TYPE")]
    data_type: String,
    /// The column holding the values: its header name, or its position from 1.
    #[arg(long, default_value = "1", value_name = "NAME|N")]
    column: String,
    /// Token format: random or preserving.
    #[arg(long, default_value = "random")]
    format: String,
    /// Deterministic tokens (equal values share one token).
    #[arg(long)]
    deterministic: bool,
    /// Where the tokenized rows go [default: FILE with .tokens.csv].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Values per request (at most the server's batch limit, 10,000 by default).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch: u32,
    /// Batches sent at once (their answers are still written in order).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    parallel: u32,
    #[command(flatten)]
    remote: Remote,
}

/// The progress file of an earlier run, if there is one.
fn read_progress(path: &Path) -> Result<Option<(Progress, Option<RunKey>)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => zeroize::Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    match Progress::parse(&text) {
        Some(p) => Ok(Some(p)),
        None => bail!(
            "{} is not an import progress file; remove it to start over",
            path.display()
        ),
    }
}

/// Written to a temporary file and renamed: a crash leaves the old or the new, whole.
/// Owner-only: it holds the run's key.
fn write_progress(progress: &Progress, key: &RunKey, path: &Path) -> Result<()> {
    let tmp = path.with_extension("progress.tmp");
    let mut f = tijori_core::audit::archive::create_private_file(&tmp)?;
    f.write_all(progress.to_text(key).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

pub(crate) fn run(args: &ImportArgs) -> Result<()> {
    let out_path = args
        .out
        .clone()
        .unwrap_or_else(|| args.file.with_extension("tokens.csv"));
    let progress_path = out_path.with_extension("progress");
    let rejects_path = out_path.with_extension("rejected.csv");
    let total = count_data_rows(
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?,
    )?;
    let mut reader = ImportReader::new(
        BufReader::new(
            File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?,
        ),
        &args.column,
    )
    .map_err(|e| match e {
        ImportError::NoColumn(c) => {
            anyhow::anyhow!("no column '{c}' in the header of {}", args.file.display())
        }
        e => anyhow::Error::from(e).context(format!("reading {}", args.file.display())),
    })?;
    let column = reader.column();
    let (mut done, key) = read_progress(&progress_path)?.unwrap_or_default();
    let key = match key {
        Some(key) => key,
        None => {
            if done.rows > 0 {
                eprintln!(
                    "this run was begun by an older tijori; it goes on under a key of its own, \
                     so the rows of a batch in flight when it stopped get new tokens (the first \
                     ones stay unused)"
                );
            }
            RunKey::generate()?
        }
    };
    let mut out = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&out_path)
        .with_context(|| format!("opening {}", out_path.display()))?;
    // What a crash wrote after the last progress record is dropped.
    out.set_len(done.out_bytes)?;
    out.seek(SeekFrom::End(0))?;
    let mut rejects = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&rejects_path)?;
    if done.out_bytes == 0 {
        // The header, then the progress file with the run's key, before any batch is sent: a
        // run stopped during its first batch resumes under the same key.
        let head = csv_line(reader.headers())?;
        out.write_all(&head)?;
        out.sync_data()?;
        done.out_bytes = head.len() as u64;
        write_progress(&done, &key, &progress_path)?;
    } else {
        eprintln!(
            "resuming after {} rows ({})",
            done.rows,
            progress_path.display()
        );
        reader.skip(done.rows)?;
    }
    let started = Instant::now();
    let first = done.rows;
    // Up to --parallel batches are with the server at once (its CPU-bound work overlaps the
    // next batch's database writes); their answers are written strictly in input order, so the
    // progress record always describes a prefix of the file.
    std::thread::scope(|scope| -> Result<()> {
        let mut in_flight = std::collections::VecDeque::new();
        loop {
            let rows = reader.next_batch(args.batch as usize)?;
            let last = rows.is_empty();
            if !last {
                let values: Vec<String> = rows.iter().map(|r| reader.value(r).to_owned()).collect();
                let key = &key;
                in_flight.push_back((rows, scope.spawn(move || tokenize(args, key, &values))));
            }
            if in_flight.len() < args.parallel as usize && !last {
                continue;
            }
            let Some((rows, answer)) = in_flight.pop_front() else {
                break;
            };
            let answers = answer
                .join()
                .map_err(|_| anyhow::anyhow!("a batch request failed unexpectedly"))??;
            let mut bytes = Vec::new();
            for (i, (row, item)) in rows.iter().zip(&answers).enumerate() {
                match item_outcome(item) {
                    Ok(token) => bytes.extend(tokenized_row(row, column, token)?),
                    Err(code) => {
                        writeln!(rejects, "{},{code}", done.rows + i as u64 + 2)?;
                        done.rejected += 1;
                    }
                }
            }
            let mut buffered = BufWriter::new(&mut out);
            buffered.write_all(&bytes)?;
            buffered.flush()?;
            drop(buffered);
            out.sync_data()?;
            rejects.sync_data()?;
            done.rows += rows.len() as u64;
            done.out_bytes += bytes.len() as u64;
            write_progress(&done, &key, &progress_path)?;
            let rate = (done.rows - first) as f64 / started.elapsed().as_secs_f64().max(1e-6);
            eprint!(
                "\rimported {} of {total} rows ({rate:.0} rows/s)   ",
                done.rows
            );
        }
        Ok(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let rate = (done.rows - first) as f64 / secs.max(1e-6);
    eprintln!(
        "\ndone: {} rows in {secs:.1} s ({rate:.0} rows/s); {} rejected (row numbers and reasons in {})",
        done.rows - first,
        done.rejected,
        rejects_path.display()
    );
    println!("{}", out_path.display());
    std::fs::remove_file(&progress_path).ok();
    Ok(())
}

/// One batch through `POST /v1/tokens/batch`, answered item by item.
fn tokenize(args: &ImportArgs, key: &RunKey, values: &[String]) -> Result<Vec<Value>> {
    // The same batch sent again (after a crash) gets the first answer: no new tokens.
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let batch = batch_request(
        key,
        &args.data_type,
        &args.format,
        args.deterministic,
        &values,
    );
    let mut resp = answer(
        request(&args.remote, "POST", "/v1/tokens/batch")
            .set("Idempotency-Key", &batch.idempotency_key)
            .set("Content-Type", "application/json")
            .send_string(&batch.body),
    )?;
    let items = match resp.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    if items.len() != values.len() {
        bail!(
            "the server answered {} items for {} values",
            items.len(),
            values.len()
        );
    }
    Ok(items)
}
