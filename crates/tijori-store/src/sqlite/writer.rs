//! The single writer thread and its group commit. Every write of the vault is a [`Job`] sent
//! here; the thread takes all jobs waiting, applies each inside its own savepoint of one
//! transaction, commits once (fsync'd: `synchronous=FULL` in WAL mode), and only then answers
//! each caller. One fsync thus acknowledges many writes, and nothing is acknowledged that a
//! crash could still lose. A failed commit, or a failure of the savepoint machinery itself,
//! answers every job of the group with the error, and nothing of the group is committed.
//!
//! Audit appends are the most frequent writes (one per request), so they are not jobs of their
//! own: all the appends waiting in a group go into one savepoint at its end, with one read of
//! the chain head, and the chain follows commit order. A write job may also make records of its
//! own outcome ([`Writer::write_audited`]); they join that savepoint, and if it fails, the whole
//! group is refused, so that no such write commits without its record.
//!
//! A full disk does not fail every commit: one that fits in log pages already on disk can
//! still succeed, so a vault would take some writes and refuse others, and reveal some values
//! and not others. Once a group fails while the disk is (nearly) full, every write is refused
//! until it has room again ([`RESERVE`]), so the refusal is steady and service resumes by
//! itself when space returns.

use std::sync::mpsc;

use rusqlite::{Connection, Transaction};
use tokio::sync::oneshot;

use crate::{ChainFn, StoreError};

/// The most jobs folded into one commit.
const MAX_GROUP: usize = 512;

/// Free space under which a failed commit means a full disk (see the module's note).
const RESERVE: u64 = 8 * 1024 * 1024;

/// What a refused write is told while the disk is full.
const DISK_FULL: &str = "the disk holding the data dir is full";

/// A job's write: its answer, and audit records it made of itself.
type Apply = Box<
    dyn FnOnce(&Transaction<'_>) -> Result<(Box<dyn std::any::Any + Send>, Vec<String>), StoreError>
        + Send,
>;

/// What a job does: a write of its own, records to append to the audit chain, or a checkpoint
/// that moves the named write-ahead logs into their files and empties them (after erasures, so
/// that no old page image of an erased row stays in the log; before a clean stop, so that each
/// file is whole on its own).
enum Work {
    Apply(Apply, Option<ChainFn>),
    Audit(Vec<String>, ChainFn),
    Truncate(&'static [Log]),
}

pub(crate) struct Job {
    work: Work,
    reply: Reply,
}

/// Appends batches of records to the audit chain inside `tx`, each chained with its function,
/// answering each batch's sequence numbers.
pub(crate) type AppendAudit =
    fn(&Transaction<'_>, &[(Vec<String>, ChainFn)]) -> Result<Vec<Vec<i64>>, StoreError>;

/// A handle to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`, the database in the directory `dir`.
    pub(crate) fn spawn(
        conn: Connection,
        dir: std::path::PathBuf,
        append: AppendAudit,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tijori-sqlite-writer".into())
            .spawn(move || run(conn, &dir, rx, append))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { tx })
    }

    /// Runs `f` in the next group commit and answers once that commit is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_audited(move |tx| f(tx).map(|v| (v, Vec::new())), None)
            .await
    }

    /// Runs `f` in the next group commit; the audit records it answers are chained with
    /// `chain` in that same commit. Answers once the commit is durable.
    pub(crate) async fn write_audited<T, F>(
        &self,
        f: F,
        chain: Option<ChainFn>,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<(T, Vec<String>), StoreError> + Send + 'static,
    {
        let apply: Apply = Box::new(move |tx| {
            f(tx).map(|(v, records)| (Box::new(v) as Box<dyn std::any::Any + Send>, records))
        });
        self.submit(Work::Apply(apply, chain)).await
    }

    /// Appends `records` to the audit chain in the next group commit; answers their numbers
    /// once that commit is durable.
    pub(crate) async fn append_audit(
        &self,
        records: Vec<String>,
        chain: ChainFn,
    ) -> Result<Vec<i64>, StoreError> {
        self.submit(Work::Audit(records, chain)).await
    }

    /// Once everything committed before it is in the files, empties the write-ahead `logs`
    /// (`wal_checkpoint(TRUNCATE)`).
    pub(crate) async fn truncate_logs(&self, logs: &'static [Log]) -> Result<(), StoreError> {
        self.submit(Work::Truncate(logs)).await
    }

    async fn submit<T: Send + 'static>(&self, work: Work) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { work, reply })
            .map_err(|_| StoreError::Unavailable("the writer thread has stopped".into()))?;
        let out = rx
            .await
            .map_err(|_| StoreError::Unavailable("the writer thread has stopped".into()))??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Unavailable("writer answered with the wrong type".into()))
    }
}

fn run(mut conn: Connection, dir: &std::path::Path, rx: mpsc::Receiver<Job>, append: AppendAudit) {
    let mut full = false;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if full {
            if low_on_space(dir) {
                refuse_all(group.into_iter().map(|j| j.reply), DISK_FULL);
                continue;
            }
            full = false;
            tracing::warn!("the disk has room again; taking writes");
        }
        if !commit_group(&mut conn, group, append) && low_on_space(dir) {
            full = true;
            tracing::error!("the disk holding the data dir is full; every write is refused until it has room again");
        }
    }
}

/// Whether the filesystem holding `dir` has less than [`RESERVE`] free. Unknown counts as no.
fn low_on_space(dir: &std::path::Path) -> bool {
    rustix::fs::statvfs(dir).is_ok_and(|s| s.f_bavail.saturating_mul(s.f_frsize) < RESERVE)
}

/// Runs one group; answers whether it committed.
fn commit_group(conn: &mut Connection, group: Vec<Job>, append: AppendAudit) -> bool {
    // A group of nothing but audit appends (the records of reads) writes only the trail's file.
    // Begun deferred, it locks only that file (IMMEDIATE locks every attached one), so the
    // records of reads never wait for whoever holds the vault's file. It saves four `fcntl`s a
    // commit, but not CPU a read: the writer then commits a little more often (BENCHMARKS.md).
    // Every other group takes all its locks up front.
    let behavior = if group.iter().all(|j| matches!(j.work, Work::Audit(..))) {
        rusqlite::TransactionBehavior::Deferred
    } else {
        rusqlite::TransactionBehavior::Immediate
    };
    let tx = match conn.transaction_with_behavior(behavior) {
        Ok(tx) => tx,
        Err(e) => {
            refuse_all(group.into_iter().map(|j| j.reply), &e.to_string());
            return false;
        }
    };
    let mut results = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    // Appends in group order: a job's own slot to answer, or none for a write's own records.
    let mut audits: Vec<(Option<usize>, Vec<String>, ChainFn)> = Vec::new();
    let mut truncates: Vec<(usize, &'static [Log])> = Vec::new();
    let mut fatal: Option<String> = None;
    for job in group {
        replies.push(job.reply);
        let (apply, chain) = match job.work {
            Work::Apply(apply, chain) => (apply, chain),
            Work::Audit(records, chain) => {
                audits.push((Some(results.len()), records, chain));
                results.push(Err(StoreError::Unavailable("audit append not run".into())));
                continue;
            }
            Work::Truncate(logs) => {
                truncates.push((results.len(), logs));
                results.push(Ok(Box::new(()) as Box<dyn std::any::Any + Send>));
                continue;
            }
        };
        if fatal.is_some() {
            continue;
        }
        match apply_in_savepoint(&tx, apply) {
            Ok(Ok((result, records))) => {
                if let (Some(chain), false) = (chain, records.is_empty()) {
                    audits.push((None, records, chain));
                }
                results.push(Ok(result));
            }
            Ok(Err(e)) => results.push(Err(e)),
            Err(e) => fatal = Some(e.to_string()),
        }
        // On SQLITE_FULL, IOERR or NOMEM SQLite may roll the whole transaction back by itself;
        // any statement after that would run (and commit) on its own. Stop the group there.
        if fatal.is_none() && tx.is_autocommit() {
            fatal = Some("SQLite rolled the transaction back".into());
        }
    }
    if fatal.is_none() && !audits.is_empty() {
        if let Err(e) = append_audits(&tx, &mut results, audits, append) {
            fatal = Some(e.to_string());
        }
        if fatal.is_none() && tx.is_autocommit() {
            fatal = Some("SQLite rolled the transaction back".into());
        }
    }
    if let Some(msg) = fatal {
        tracing::error!(error = %msg, "group commit abandoned; {} writes refused", replies.len());
        drop(tx); // rolls back whatever is left
        refuse_all(replies, &msg);
        return false;
    }
    match tx.commit() {
        Ok(()) => {
            for (slot, logs) in truncates {
                if let Err(e) = logs.iter().try_for_each(|log| truncate(conn, *log)) {
                    results[slot] = Err(e);
                }
            }
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; {} writes refused", replies.len());
            refuse_all(replies, &e.to_string());
            false
        }
    }
}

/// A write-ahead log of the writer's connection.
#[derive(Clone, Copy)]
pub(crate) enum Log {
    /// The vault's file's (`main`): values' ciphertexts, keys.
    Vault,
    /// The audit trail's file's (`trail`).
    Trail,
}

/// Checkpoints the whole `log` into its file and truncates it, retrying while readers still
/// hold old snapshots.
fn truncate(conn: &Connection, log: Log) -> Result<(), StoreError> {
    let sql = match log {
        Log::Vault => "PRAGMA main.wal_checkpoint(TRUNCATE)",
        Log::Trail => "PRAGMA trail.wal_checkpoint(TRUNCATE)",
    };
    for _ in 0..50 {
        let busy: i64 = conn.query_row(sql, [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(StoreError::Unavailable(
        "the write-ahead log could not be emptied: readers kept it busy".into(),
    ))
}

type Reply = oneshot::Sender<Result<Box<dyn std::any::Any + Send>, StoreError>>;

fn refuse_all(replies: impl IntoIterator<Item = Reply>, msg: &str) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::Unavailable(msg.to_owned())));
    }
}

/// Every waiting audit append of the group, in one savepoint: each job learns its numbers, or
/// all learn the one error. If writes of the group made records of their own, that error is
/// fatal for the group: their writes must not commit without their records.
fn append_audits(
    tx: &Transaction<'_>,
    results: &mut [Result<Box<dyn std::any::Any + Send>, StoreError>],
    audits: Vec<(Option<usize>, Vec<String>, ChainFn)>,
    append: AppendAudit,
) -> Result<(), StoreError> {
    let mut slots = Vec::with_capacity(audits.len());
    let mut batches = Vec::with_capacity(audits.len());
    for (slot, records, chain) in audits {
        slots.push(slot);
        batches.push((records, chain));
    }
    match savepoint(tx, |tx| append(tx, &batches))? {
        Ok(seqs) => {
            for (slot, mine) in slots.into_iter().zip(seqs) {
                if let Some(slot) = slot {
                    results[slot] = Ok(Box::new(mine));
                }
            }
        }
        Err(e) if slots.iter().any(Option::is_none) => return Err(e),
        Err(e) => {
            for slot in slots.into_iter().flatten() {
                results[slot] = Err(StoreError::Unavailable(e.to_string()));
            }
        }
    }
    Ok(())
}

/// One job's changes stand or fall together, without touching the others of its group. The
/// outer error is fatal for the whole group (the savepoint machinery itself failed); the inner
/// one is this job's own failure, already rolled back. A panicking job counts as failed.
#[allow(clippy::type_complexity)]
fn apply_in_savepoint(
    tx: &Transaction<'_>,
    apply: Apply,
) -> Result<Result<(Box<dyn std::any::Any + Send>, Vec<String>), StoreError>, StoreError> {
    savepoint(tx, |tx| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| apply(tx)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("a write job panicked".into())))
    })
}

/// Runs `f` inside a savepoint, released on success and rolled back on failure. The outer
/// error is the savepoint machinery's own.
fn savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    let run = |sql: &str| -> Result<(), StoreError> {
        tx.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    run("SAVEPOINT job")?;
    match f(tx) {
        Ok(v) => {
            run("RELEASE job")?;
            Ok(Ok(v))
        }
        Err(e) => {
            run("ROLLBACK TO job")?;
            run("RELEASE job")?;
            Ok(Err(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (Writer, std::path::PathBuf) {
        writer_with(|_, _| Ok(Vec::new()))
    }

    fn writer_with(append: AppendAudit) -> (Writer, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "tijori-writer-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (k INTEGER PRIMARY KEY); CREATE TABLE a (record TEXT NOT NULL)",
        )
        .unwrap();
        (
            Writer::spawn(conn, std::env::temp_dir(), append).unwrap(),
            path,
        )
    }

    /// Appends into table `a`, or fails on a record "refuse".
    fn append_to_a(
        tx: &Transaction<'_>,
        batches: &[(Vec<String>, ChainFn)],
    ) -> Result<Vec<Vec<i64>>, StoreError> {
        let mut out = Vec::new();
        for (records, _) in batches {
            for r in records {
                if r == "refuse" {
                    return Err(StoreError::Unavailable("append refused".into()));
                }
                tx.execute("INSERT INTO a (record) VALUES (?1)", [r])?;
            }
            out.push(vec![0; records.len()]);
        }
        Ok(out)
    }

    fn no_chain(_: &[u8], _: i64, _: &str) -> Vec<u8> {
        Vec::new()
    }

    async fn count(w: &Writer, table: &'static str) -> i64 {
        w.write(move |tx: &Transaction<'_>| {
            Ok(tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_write_and_the_records_it_makes_commit_together_or_not_at_all() {
        let (w, path) = writer_with(append_to_a);
        let made = |k: i64, record: &'static str| {
            move |tx: &Transaction<'_>| -> Result<((), Vec<String>), StoreError> {
                tx.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
                Ok(((), vec![record.to_owned()]))
            }
        };
        w.write_audited(made(1, "one"), Some(no_chain))
            .await
            .unwrap();
        assert_eq!((count(&w, "t").await, count(&w, "a").await), (1, 1));
        // A write whose record cannot be appended must not commit: its group is refused whole.
        let (bad, other) = tokio::join!(
            w.write_audited(made(2, "refuse"), Some(no_chain)),
            w.write(insert(3)),
        );
        assert!(bad.is_err());
        assert!(other.is_err() || count(&w, "t").await == 2);
        let rows: Vec<i64> = w
            .write(|tx: &Transaction<'_>| {
                let mut stmt = tx.prepare("SELECT k FROM t ORDER BY k")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<i64>, _>>()?)
            })
            .await
            .unwrap();
        assert!(!rows.contains(&2), "the write without its record committed");
        assert_eq!(count(&w, "a").await, 1);
        let _ = std::fs::remove_file(path);
    }

    fn insert(k: i64) -> impl FnOnce(&Transaction<'_>) -> Result<(), StoreError> + Send + 'static {
        move |tx| {
            tx.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_or_panicking_job_leaves_its_group_alone() {
        let (w, path) = writer();
        let (a, b, c, d) = tokio::join!(
            w.write(insert(1)),
            w.write(|tx: &Transaction<'_>| {
                tx.execute("INSERT INTO t (k) VALUES (2)", [])?;
                Err::<(), _>(StoreError::Unavailable("job refuses".into()))
            }),
            w.write(|_tx: &Transaction<'_>| -> Result<(), StoreError> { panic!("job bug") }),
            w.write(insert(1)), // duplicate key: this job fails, the first insert stands
        );
        assert!(a.is_ok());
        assert!(b.is_err() && c.is_err() && d.is_err());
        let n: i64 = w
            .write(|tx: &Transaction<'_>| {
                Ok(tx.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(n, 1, "only the good job's row is committed");
        let _ = std::fs::remove_file(path);
    }
}
