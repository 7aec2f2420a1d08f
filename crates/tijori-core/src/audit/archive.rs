//! Retention: the newest months of the trail stay in the store, where `GET /v1/audit` reads
//! them; older records move to archive files in the export format, and archive files are
//! deleted once they are older than the retention period (PCI DSS 10.5.1: a year, three months
//! of it at hand).
//!
//! A cut is always made at a signed checkpoint, whose checkpoint stays in the store as the
//! anchor of what remains: the remaining trail starts with the record right after it, and
//! `tijori audit verify` checks that it joins that signature. An archive file ends with the cut's
//! checkpoint and begins with the previous cut's, so files and store chain across every cut
//! with the public key alone. Records leave the store only after their file is written, synced
//! and read back intact.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use tijori_crypto::PublicKey;
use tijori_store::Store;

use super::export::{export, feed_checkpoints, feed_records, leading_checkpoints};
use super::{stored_public_key, AuditEvent, Outcome, Verdict, Verifier};
use crate::CoreError;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Records pruned from the store per write, so that other writes are not held up.
const PRUNE_STEP: usize = 10_000;

/// How long records stay online and in archives.
#[derive(Clone, Debug)]
pub struct Retention {
    /// Records signed longer ago than this (seconds) move to archive files.
    pub online: i64,
    /// Archive files whose newest record is older than this (seconds) are deleted.
    pub keep: i64,
    /// Where archive files go.
    pub dir: PathBuf,
}

impl Retention {
    /// Refuses settings that would delete records before archiving them.
    pub fn check(&self) -> Result<(), CoreError> {
        if self.online < 0 || self.keep < self.online {
            return Err(CoreError::InvalidRequest(
                "audit retention must be at least as long as the online window, and neither negative",
            ));
        }
        Ok(())
    }
}

/// What one archiving run did.
#[derive(Debug, Default)]
pub struct ArchiveReport {
    /// The file written and the records it holds, if any were old enough.
    pub written: Option<(PathBuf, u64)>,
    /// Archive files deleted as past retention.
    pub removed: Vec<PathBuf>,
}

/// Moves records signed before `now - online` to a new archive file, then deletes archive files
/// past retention. The vault's published public key checks the file before its records leave
/// the store; `progress` is told how many records are written.
pub async fn archive(
    store: &dyn Store,
    retention: &Retention,
    now: i64,
    progress: impl FnMut(u64),
) -> Result<ArchiveReport, CoreError> {
    retention.check()?;
    let mut report = ArchiveReport::default();
    // Without a published key there is no checkpoint either, hence nothing to cut at.
    if let Some(key) = stored_public_key(store).await? {
        report.written = archive_records(store, &key, retention, now, progress).await?;
    }
    report.removed = remove_expired(&retention.dir, now - retention.keep)?;
    Ok(report)
}

/// The audit records of an archiving run: `audit.archive` naming the file written (or its
/// failure), and `audit.archive_delete` for each file deleted past retention. A run that found
/// nothing to do leaves none.
pub fn events(now: i64, run: &Result<ArchiveReport, CoreError>) -> Vec<AuditEvent> {
    let event = |operation: &str, resource: Option<&Path>, outcome, reason| AuditEvent {
        resource: resource
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned()),
        ..AuditEvent::system(now, operation, outcome, reason)
    };
    match run {
        Err(e) => vec![event(
            "audit.archive",
            None,
            Outcome::Failure,
            Some(e.code().as_str().to_owned()),
        )],
        Ok(report) => {
            let written = report.written.as_ref().map(|(p, _)| p.as_path());
            let mut out: Vec<AuditEvent> = written
                .map(|p| event("audit.archive", Some(p), Outcome::Success, None))
                .into_iter()
                .collect();
            out.extend(
                report
                    .removed
                    .iter()
                    .map(|p| event("audit.archive_delete", Some(p), Outcome::Success, None)),
            );
            out
        }
    }
}

async fn archive_records(
    store: &dyn Store,
    key: &PublicKey,
    retention: &Retention,
    now: i64,
    progress: impl FnMut(u64),
) -> Result<Option<(PathBuf, u64)>, CoreError> {
    let (Some(first), Some(head)) = (
        store.audit_rows(i64::MIN, 1).await?.pop(),
        store.audit_head().await?,
    ) else {
        return Ok(None);
    };
    // The store keeps at least one record after the cut, so that it always shows where its
    // trail stands (and the next record chains on from a record, not from nothing).
    let cutoff = now - retention.online;
    let Some(cut) = store.last_checkpoint_before(cutoff, head.seq).await? else {
        return Ok(None);
    };
    if cut.seq < first.seq {
        return Ok(None);
    }
    create_private_dir(&retention.dir)?;
    let name = format!("audit-{:012}-{:012}.jsonl", first.seq, cut.seq);
    let path = retention.dir.join(&name);
    let partial = retention.dir.join(format!("{name}.partial"));
    let mut out = BufWriter::new(create_private_file(&partial).map_err(|e| io(&partial, e))?);
    let records = export(store, first.seq - 1, cut.seq, &mut out, progress).await?;
    out.into_inner()
        .map_err(|e| io(&partial, e.into_error()))?
        .sync_all()
        .map_err(|e| io(&partial, e))?;
    check_file(&partial, key, first.seq, cut.seq)?;
    std::fs::rename(&partial, &path).map_err(|e| io(&path, e))?;
    File::open(&retention.dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(&retention.dir, e))?;
    while store.prune_audit(cut.seq, PRUNE_STEP).await? == PRUNE_STEP as u64 {}
    Ok(Some((path, records)))
}

/// A file created (or emptied) readable and writable by its owner alone: for files that hold
/// audit records (archives, exports) or a run's secret (an import's progress file).
pub fn create_private_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Reads a just-written archive back: it must verify, start at `first` (joined to its anchor
/// unless it is the trail's beginning) and be signed through `through`.
fn check_file(path: &Path, key: &PublicKey, first: i64, through: i64) -> Result<(), CoreError> {
    let open = || {
        File::open(path)
            .map(BufReader::new)
            .map_err(|e| io(path, e))
    };
    let mut v = Verifier::from_first(Some(*key));
    let unreadable = |e| CoreError::Internal(format!("{}: {e}", path.display()));
    feed_checkpoints(&mut v, open()?).map_err(unreadable)?;
    feed_records(&mut v, open()?, |_| {}).map_err(unreadable)?;
    match v.finish() {
        Verdict::Intact {
            first: f,
            anchored,
            signed_through: Some((signed, _)),
            ..
        } if f == first && (anchored || first == 1) && signed == through => Ok(()),
        verdict => Err(CoreError::Internal(format!(
            "the archive {} does not verify ({verdict:?}); no record was removed from the store: \
             run tijori audit verify on the data dir",
            path.display()
        ))),
    }
}

/// Deletes the archive files in `dir` whose newest signed record was signed at or before
/// `before`.
fn remove_expired(dir: &Path, before: i64) -> Result<Vec<PathBuf>, CoreError> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(io(dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_archive(p))
        .collect();
    files.sort();
    for path in files {
        match newest_signature(&path)? {
            Some(time) if time <= before => {
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                removed.push(path);
            }
            _ => {}
        }
    }
    Ok(removed)
}

fn is_archive(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
}

/// The signing time of the newest checkpoint in an archive (checkpoints come first, so only
/// the head of the file is read).
fn newest_signature(path: &Path) -> Result<Option<i64>, CoreError> {
    let file = File::open(path).map_err(|e| io(path, e))?;
    let checkpoints = leading_checkpoints(BufReader::new(file))
        .map_err(|e| CoreError::Internal(format!("{}: {e}", path.display())))?;
    Ok(checkpoints.iter().map(|cp| cp.time).max())
}

fn create_private_dir(dir: &Path) -> Result<(), CoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io(dir, e))
}

fn io(path: &Path, e: std::io::Error) -> CoreError {
    CoreError::Unavailable(format!("audit archive {}: {e}", path.display()))
}
