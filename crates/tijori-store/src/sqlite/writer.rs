//! The single writer thread and its group commit. Every write of the vault is a [`Job`] sent
//! here; the thread takes all jobs waiting, applies each inside its own savepoint of one
//! transaction, commits once (fsync'd: `synchronous=FULL` in WAL mode), and only then answers
//! each caller. One fsync thus acknowledges many writes, and nothing is acknowledged that a
//! crash could still lose. A failed commit, or a failure of the savepoint machinery itself,
//! answers every job of the group with the error, and nothing of the group is committed.

use std::sync::mpsc;

use rusqlite::{Connection, Transaction};
use tokio::sync::oneshot;

use crate::StoreError;

/// The most jobs folded into one commit.
const MAX_GROUP: usize = 512;

type Apply =
    Box<dyn FnOnce(&Transaction<'_>) -> Result<Box<dyn std::any::Any + Send>, StoreError> + Send>;

pub(crate) struct Job {
    apply: Apply,
    reply: Reply,
}

/// A handle to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub(crate) fn spawn(conn: Connection) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tijori-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { tx })
    }

    /// Runs `f` in the next group commit and answers once that commit is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let apply: Apply =
            Box::new(move |tx| f(tx).map(|v| Box::new(v) as Box<dyn std::any::Any + Send>));
        self.tx
            .send(Job { apply, reply })
            .map_err(|_| StoreError::Unavailable("the writer thread has stopped".into()))?;
        let out = rx
            .await
            .map_err(|_| StoreError::Unavailable("the writer thread has stopped".into()))??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Unavailable("writer answered with the wrong type".into()))
    }
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group);
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Job>) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return refuse_all(group.into_iter().map(|j| j.reply), &e.to_string()),
    };
    let mut results = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    let mut fatal: Option<String> = None;
    for job in group {
        replies.push(job.reply);
        if fatal.is_some() {
            continue;
        }
        match apply_in_savepoint(&tx, job.apply) {
            Ok(result) => results.push(result),
            Err(e) => fatal = Some(e.to_string()),
        }
        // On SQLITE_FULL, IOERR or NOMEM SQLite may roll the whole transaction back by itself;
        // any statement after that would run (and commit) on its own. Stop the group there.
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

type Reply = oneshot::Sender<Result<Box<dyn std::any::Any + Send>, StoreError>>;

fn refuse_all(replies: impl IntoIterator<Item = Reply>, msg: &str) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::Unavailable(msg.to_owned())));
    }
}

/// One job's changes stand or fall together, without touching the others of its group. The
/// outer error is fatal for the whole group (the savepoint machinery itself failed); the inner
/// one is this job's own failure, already rolled back. A panicking job counts as failed.
fn apply_in_savepoint(
    tx: &Transaction<'_>,
    apply: Apply,
) -> Result<Result<Box<dyn std::any::Any + Send>, StoreError>, StoreError> {
    tx.execute_batch("SAVEPOINT job")?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| apply(tx)))
        .unwrap_or_else(|_| Err(StoreError::Unavailable("a write job panicked".into())));
    match outcome {
        Ok(v) => {
            tx.execute_batch("RELEASE job")?;
            Ok(Ok(v))
        }
        Err(e) => {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
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
        (Writer::spawn(conn).unwrap(), path)
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
