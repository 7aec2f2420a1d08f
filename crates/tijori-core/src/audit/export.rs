//! The export format: JSON Lines holding every record with its chain proof (its number, the
//! previous hash, its hash and its exact text) and every signed checkpoint, so that a copy can
//! be checked far from the vault with the public key alone. Archives use the same format.
//!
//! ```text
//! {"checkpoint":{"seq":120,"hash":"…","time":1795000000,"signature":"…"}}
//! {"seq":1,"prev_hash":"00…","hash":"…","record":"{\"time\":…}"}
//! ```
//! Checkpoints come first; a reader takes them from anywhere in the file.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use tijori_store::{AuditCheckpoint, AuditRow, Store};

use super::verify::checkpoints_after;
use super::Verifier;
use crate::CoreError;

/// Rows read per step while exporting.
const PAGE: usize = 10_000;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine {
    seq: i64,
    prev_hash: String,
    hash: String,
    /// The record's exact text: its hash covers these bytes.
    record: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointBody {
    seq: i64,
    hash: String,
    time: i64,
    signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    checkpoint: CheckpointBody,
}

/// One line of an export.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Checkpoint(CheckpointLine),
    Record(RecordLine),
}

fn io(e: std::io::Error) -> CoreError {
    CoreError::Internal(format!("writing the export: {e}"))
}

/// Writes the records numbered above `after` and up to `through` to `out`, with the
/// checkpoints of those records and the one of record `after` if there is one (the signed
/// anchor a part of the trail starts from); answers how many records were written. `progress`
/// is told the count as it grows.
pub async fn export(
    store: &dyn Store,
    after: i64,
    through: i64,
    out: &mut (dyn Write + Send),
    mut progress: impl FnMut(u64),
) -> Result<u64, CoreError> {
    let checkpoints = checkpoints_after(store, after.saturating_sub(1)).await?;
    for cp in checkpoints.into_iter().take_while(|cp| cp.seq <= through) {
        let line = Line::Checkpoint(CheckpointLine {
            checkpoint: CheckpointBody {
                seq: cp.seq,
                hash: hex::encode(cp.hash),
                time: cp.time,
                signature: hex::encode(cp.signature),
            },
        });
        write_line(out, &line)?;
    }
    let (mut cursor, mut count) = (after, 0u64);
    loop {
        let rows = store.audit_rows(cursor, PAGE).await?;
        let Some(last) = rows.last() else { break };
        cursor = last.seq;
        for r in rows.into_iter().take_while(|r| r.seq <= through) {
            let line = Line::Record(RecordLine {
                seq: r.seq,
                prev_hash: hex::encode(r.prev_hash),
                hash: hex::encode(r.hash),
                record: r.record,
            });
            write_line(out, &line)?;
            count += 1;
        }
        progress(count);
        if cursor >= through {
            break;
        }
    }
    out.flush().map_err(io)?;
    Ok(count)
}

fn write_line(out: &mut (dyn Write + Send), line: &Line) -> Result<(), CoreError> {
    serde_json::to_writer(&mut *out, line).map_err(|e| CoreError::Internal(e.to_string()))?;
    out.write_all(b"\n").map_err(io)
}

/// Why a line of an export could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {0} is not a record or checkpoint of a tijori audit export")]
    Malformed(u64),
}

/// A line read back, its hex decoded.
enum Parsed {
    Checkpoint(AuditCheckpoint),
    Record(AuditRow),
}

fn parse_line(n: u64, text: &str) -> Result<Parsed, ReadError> {
    let line: Line = serde_json::from_str(text).map_err(|_| ReadError::Malformed(n))?;
    let unhex = |h: String| hex::decode(h).map_err(|_| ReadError::Malformed(n));
    Ok(match line {
        Line::Checkpoint(CheckpointLine { checkpoint: c }) => Parsed::Checkpoint(AuditCheckpoint {
            seq: c.seq,
            hash: unhex(c.hash)?,
            time: c.time,
            signature: unhex(c.signature)?,
        }),
        Line::Record(r) => Parsed::Record(AuditRow {
            seq: r.seq,
            prev_hash: unhex(r.prev_hash)?,
            hash: unhex(r.hash)?,
            record: r.record,
        }),
    })
}

/// Adds an export's checkpoints to `v` (a first pass over the file).
pub fn feed_checkpoints(v: &mut Verifier, file: impl BufRead) -> Result<(), ReadError> {
    for (i, text) in file.lines().enumerate() {
        if let Parsed::Checkpoint(cp) = parse_line(i as u64 + 1, &text?)? {
            v.add_checkpoints([cp]);
        }
    }
    Ok(())
}

/// The checkpoints at the head of an export, read without reading its records (they follow).
pub fn leading_checkpoints(file: impl BufRead) -> Result<Vec<AuditCheckpoint>, ReadError> {
    let mut out = Vec::new();
    for (i, text) in file.lines().enumerate() {
        match parse_line(i as u64 + 1, &text?)? {
            Parsed::Checkpoint(cp) => out.push(cp),
            Parsed::Record(_) => break,
        }
    }
    Ok(out)
}

/// Feeds an export's records to `v` in file order (a second pass), stopping at the first
/// broken one.
pub fn feed_records(
    v: &mut Verifier,
    file: impl BufRead,
    mut progress: impl FnMut(u64),
) -> Result<(), ReadError> {
    for (i, text) in file.lines().enumerate() {
        if let Parsed::Record(row) = parse_line(i as u64 + 1, &text?)? {
            if !v.push(&row) {
                return Ok(());
            }
            if v.count() % 10_000 == 0 {
                progress(v.count());
            }
        }
    }
    progress(v.count());
    Ok(())
}
