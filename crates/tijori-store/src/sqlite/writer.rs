//! The single writer thread and its group commit. Every write of the vault is a [`Job`] sent
//! here; the thread takes all jobs waiting, applies each inside its own savepoint of one
//! transaction, commits once (fsync'd: `synchronous=FULL` in WAL mode), and only then answers
//! each caller. One fsync thus acknowledges many writes, and nothing is acknowledged that a
//! crash could still lose. A failed commit answers every job of the group with the error.

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
    reply: oneshot::Sender<Result<Box<dyn std::any::Any + Send>, StoreError>>,
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
        Err(e) => {
            let msg = e.to_string();
            for job in group {
                let _ = job.reply.send(Err(StoreError::Unavailable(msg.clone())));
            }
            return;
        }
    };
    let mut results = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    for job in group {
        results.push(apply_in_savepoint(&tx, job.apply));
        replies.push(job.reply);
    }
    match tx.commit() {
        Ok(()) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; {} writes refused", replies.len());
            let msg = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable(msg.clone())));
            }
        }
    }
}

/// One job's changes stand or fall together, without touching the others of its group.
fn apply_in_savepoint(
    tx: &Transaction<'_>,
    apply: Apply,
) -> Result<Box<dyn std::any::Any + Send>, StoreError> {
    tx.execute_batch("SAVEPOINT job")?;
    match apply(tx) {
        Ok(v) => {
            tx.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}
