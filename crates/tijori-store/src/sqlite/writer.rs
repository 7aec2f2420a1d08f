//! The single writer thread and its group commit. Every write of the vault is a [`Job`] sent
//! here; the thread takes all jobs waiting, applies each inside its own savepoint of one
//! transaction, commits once (fsync'd: `synchronous=FULL` in WAL mode), and only then answers
//! each caller. One fsync thus acknowledges many writes, and nothing is acknowledged that a
//! crash could still lose. A failed commit, or a failure of the savepoint machinery itself,
//! answers every job of the group with the error, and nothing of the group is committed.
//!
//! Audit appends are the most frequent writes (one per request), so they are not jobs of their
//! own: all the appends waiting in a group go into one savepoint at its end, with one read of
//! the chain head, and the chain follows commit order.

use std::sync::mpsc;

use rusqlite::{Connection, Transaction};
use tokio::sync::oneshot;

use crate::{ChainFn, StoreError};

/// The most jobs folded into one commit.
const MAX_GROUP: usize = 512;

type Apply =
    Box<dyn FnOnce(&Transaction<'_>) -> Result<Box<dyn std::any::Any + Send>, StoreError> + Send>;

/// What a job does: a write of its own, records to append to the audit chain, or a checkpoint
/// that moves the write-ahead log into the database and empties it (after erasures, so that no
/// old page image of an erased row stays in the log).
enum Work {
    Apply(Apply),
    Audit(Vec<String>, ChainFn),
    Truncate,
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
    pub(crate) fn spawn(conn: Connection, append: AppendAudit) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tijori-sqlite-writer".into())
            .spawn(move || run(conn, rx, append))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { tx })
    }

    /// Runs `f` in the next group commit and answers once that commit is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let apply: Apply =
            Box::new(move |tx| f(tx).map(|v| Box::new(v) as Box<dyn std::any::Any + Send>));
        self.submit(Work::Apply(apply)).await
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

    /// Once everything committed before it is in the database file, empties the write-ahead
    /// log (`wal_checkpoint(TRUNCATE)`).
    pub(crate) async fn truncate_log(&self) -> Result<(), StoreError> {
        self.submit(Work::Truncate).await
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

fn run(mut conn: Connection, rx: mpsc::Receiver<Job>, append: AppendAudit) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group, append);
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Job>, append: AppendAudit) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return refuse_all(group.into_iter().map(|j| j.reply), &e.to_string()),
    };
    let mut results = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    let mut audits: Vec<(usize, Vec<String>, ChainFn)> = Vec::new();
    let mut truncates: Vec<usize> = Vec::new();
    let mut fatal: Option<String> = None;
    for job in group {
        replies.push(job.reply);
        let apply = match job.work {
            Work::Apply(apply) => apply,
            Work::Audit(records, chain) => {
                audits.push((results.len(), records, chain));
                results.push(Err(StoreError::Unavailable("audit append not run".into())));
                continue;
            }
            Work::Truncate => {
                truncates.push(results.len());
                results.push(Ok(Box::new(()) as Box<dyn std::any::Any + Send>));
                continue;
            }
        };
        if fatal.is_some() {
            continue;
        }
        match apply_in_savepoint(&tx, apply) {
            Ok(result) => results.push(result),
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
        return refuse_all(replies, &msg);
    }
    match tx.commit() {
        Ok(()) => {
            if !truncates.is_empty() {
                if let Err(e) = truncate(conn) {
                    for slot in truncates {
                        results[slot] = Err(StoreError::Unavailable(e.to_string()));
                    }
                }
            }
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; {} writes refused", replies.len());
            refuse_all(replies, &e.to_string());
        }
    }
}

/// Checkpoints the whole log into the database and truncates it, retrying while readers
/// still hold old snapshots.
fn truncate(conn: &Connection) -> Result<(), StoreError> {
    for _ in 0..50 {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
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
/// all learn the one error.
fn append_audits(
    tx: &Transaction<'_>,
    results: &mut [Result<Box<dyn std::any::Any + Send>, StoreError>],
    audits: Vec<(usize, Vec<String>, ChainFn)>,
    append: AppendAudit,
) -> Result<(), StoreError> {
    let (slots, batches): (Vec<usize>, Vec<(Vec<String>, ChainFn)>) = audits
        .into_iter()
        .map(|(slot, r, c)| (slot, (r, c)))
        .unzip();
    match savepoint(tx, |tx| append(tx, &batches))? {
        Ok(seqs) => {
            for (slot, mine) in slots.into_iter().zip(seqs) {
                results[slot] = Ok(Box::new(mine));
            }
        }
        Err(e) => {
            for slot in slots {
                results[slot] = Err(StoreError::Unavailable(e.to_string()));
            }
        }
    }
    Ok(())
}

/// One job's changes stand or fall together, without touching the others of its group. The
/// outer error is fatal for the whole group (the savepoint machinery itself failed); the inner
/// one is this job's own failure, already rolled back. A panicking job counts as failed.
fn apply_in_savepoint(
    tx: &Transaction<'_>,
    apply: Apply,
) -> Result<Result<Box<dyn std::any::Any + Send>, StoreError>, StoreError> {
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
        let path = std::env::temp_dir().join(format!(
            "tijori-writer-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .unwrap();
        (Writer::spawn(conn, |_, _| Ok(Vec::new())).unwrap(), path)
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
