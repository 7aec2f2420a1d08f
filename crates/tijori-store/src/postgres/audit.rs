//! The audit trail in PostgreSQL: one hash chain for every node of the vault.
//!
//! An append takes a transaction-scoped advisory lock first, then reads the chain's head in a
//! statement of its own, chains and inserts its records, and commits; the lock goes with the
//! commit. Appends from all nodes thus take turns, each starting from the head the one before
//! it committed: sequence numbers are dense from 1 in commit order, with no fork and no gap
//! (a failed append rolls back whole and numbers nothing). The answer comes only after the
//! commit, flushed to disk: the store's sessions run with `synchronous_commit = on` whatever
//! the database's or role's default.

use async_trait::async_trait;
use deadpool_postgres::{Pool, Transaction};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Row;

use super::{col, limit, xact_lock, PgStore, AUDIT_LOCK};
use crate::{AuditCheckpoint, AuditRow, AuditStore, ChainFn, StoreError};

fn audit_row(r: &Row) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: col(r, 0)?,
        record: col(r, 1)?,
        prev_hash: col(r, 2)?,
        hash: col(r, 3)?,
    })
}

fn checkpoint_row(r: &Row) -> Result<AuditCheckpoint, StoreError> {
    Ok(AuditCheckpoint {
        seq: col(r, 0)?,
        hash: col(r, 1)?,
        time: col(r, 2)?,
        signature: col(r, 3)?,
    })
}

fn seq_and_hash(r: &Row) -> Result<(i64, Vec<u8>), StoreError> {
    Ok((col(r, 0)?, col(r, 1)?))
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(
        &self,
        records: Vec<String>,
        chain: ChainFn,
    ) -> Result<Vec<i64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.appends
            .send(Append {
                records,
                chain,
                reply,
            })
            .map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?
    }

    async fn audit_rows(&self, after: i64, n: usize) -> Result<Vec<AuditRow>, StoreError> {
        self.query(
            "SELECT seq, record, prev_hash, hash FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit(n)],
            audit_row,
        )
        .await
    }

    async fn audit_head(&self) -> Result<Option<AuditRow>, StoreError> {
        self.query_opt(
            "SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq DESC LIMIT 1",
            &[],
            audit_row,
        )
        .await
    }

    async fn insert_checkpoint(&self, cp: AuditCheckpoint) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "INSERT INTO audit_checkpoints (seq, hash, \"time\", signature) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING",
                &[&cp.seq, &cp.hash, &cp.time, &cp.signature],
            )
            .await?;
        Ok(n == 1)
    }

    async fn checkpoints(&self, after: i64, n: usize) -> Result<Vec<AuditCheckpoint>, StoreError> {
        self.query(
            "SELECT seq, hash, \"time\", signature FROM audit_checkpoints \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit(n)],
            checkpoint_row,
        )
        .await
    }

    async fn last_checkpoint_before(
        &self,
        time: i64,
        below: i64,
    ) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.query_opt(
            "SELECT seq, hash, \"time\", signature FROM audit_checkpoints \
             WHERE \"time\" <= $1 AND seq < $2 ORDER BY seq DESC LIMIT 1",
            &[&time, &below],
            checkpoint_row,
        )
        .await
    }

    async fn prune_audit(&self, through: i64, n: usize) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Appends read the head (or, with no record left, the newest checkpoint); taking their
        // lock keeps a prune from changing either under an append in progress.
        xact_lock(&tx, AUDIT_LOCK).await?;
        let pruned = tx
            .execute(
                "DELETE FROM audit WHERE seq IN \
                 (SELECT seq FROM audit WHERE seq <= $1 ORDER BY seq LIMIT $2)",
                &[&through, &limit(n)],
            )
            .await?;
        tx.execute("DELETE FROM audit_checkpoints WHERE seq < $1", &[&through])
            .await?;
        tx.commit().await?;
        Ok(pruned)
    }
}

/// One append waiting for the writer: its records, and where its numbers go.
pub(crate) struct Append {
    records: Vec<String>,
    chain: ChainFn,
    reply: oneshot::Sender<Result<Vec<i64>, StoreError>>,
}

/// Longest an audit transaction may take before its appends fail.
const APPEND_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Most records in one group commit.
const GROUP: usize = 1000;

/// The node's audit writer (group commit): while one transaction is in flight, the appends
/// that arrive wait, and the next transaction takes all of them at once. Each append still
/// answers only after the commit that holds its records. Ends when the store is dropped.
pub(crate) async fn writer(pool: Pool, mut appends: mpsc::UnboundedReceiver<Append>) {
    while let Some(first) = appends.recv().await {
        let chain = first.chain;
        let mut group = vec![first];
        let mut count = group[0].records.len();
        // The same chain function throughout (there is one); a different one waits its turn.
        let mut later = None;
        while count < GROUP {
            match appends.try_recv() {
                Ok(next) if next.chain as usize == chain as usize => {
                    count += next.records.len();
                    group.push(next);
                }
                Ok(next) => {
                    later = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        let records: Vec<String> = group
            .iter()
            .flat_map(|a| a.records.iter().cloned())
            .collect();
        // A transaction stuck on a dead connection must not hold every request of the node:
        // past the limit its appends fail (and roll back with the connection).
        let appended = tokio::time::timeout(APPEND_LIMIT, append_group(&pool, records, chain))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the audit append took too long; the database may be unreachable".into(),
                ))
            });
        match appended {
            Ok(seqs) => {
                let mut rest = seqs.as_slice();
                for a in group {
                    let (mine, tail) = rest.split_at(a.records.len().min(rest.len()));
                    rest = tail;
                    let _ = a.reply.send(Ok(mine.to_vec()));
                }
            }
            Err(e) => {
                for a in group {
                    let _ = a.reply.send(Err(e.copy()));
                }
            }
        }
        if let Some(next) = later {
            let seqs =
                tokio::time::timeout(APPEND_LIMIT, append_group(&pool, next.records, next.chain))
                    .await
                    .unwrap_or_else(|_| {
                        Err(StoreError::Unavailable(
                            "the audit append took too long".into(),
                        ))
                    });
            let _ = next.reply.send(seqs);
        }
    }
}

/// One transaction: takes the chain's lock, reads its head, chains and inserts `records`.
async fn append_group(
    pool: &Pool,
    records: Vec<String>,
    chain: ChainFn,
) -> Result<Vec<i64>, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let seqs = append_in(&tx, &records, chain).await?;
    tx.commit().await?;
    Ok(seqs)
}

/// Appends `records` to the chain inside `tx`, which holds the chain's lock from here to its
/// commit: for a write that commits together with its records. The write's own row locks are
/// taken before this lock; appends take no row locks, so the two never wait on each other in
/// a cycle.
pub(super) async fn append_in(
    tx: &Transaction<'_>,
    records: &[String],
    chain: ChainFn,
) -> Result<Vec<i64>, StoreError> {
    xact_lock(tx, AUDIT_LOCK).await?;
    // Read only now, in a statement started after the lock was granted: under READ
    // COMMITTED it sees the previous holder's records. Read in the same statement as the
    // lock, the head would come from a snapshot taken before the wait, and the chain fork.
    let head = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .await?;
    let last = match tx.query_opt(&head, &[]).await? {
        Some(r) => Some(seq_and_hash(&r)?),
        // With no record left (archived away), the chain goes on from the newest checkpoint.
        None => {
            let anchor = tx
                .prepare_cached("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
                .await?;
            match tx.query_opt(&anchor, &[]).await? {
                Some(r) => Some(seq_and_hash(&r)?),
                None => None,
            }
        }
    };
    let (mut seq, mut prev) = last.unwrap_or((0, vec![0u8; 32]));
    let mut seqs = Vec::with_capacity(records.len());
    let mut prevs = Vec::with_capacity(records.len());
    let mut hashes = Vec::with_capacity(records.len());
    for record in records {
        seq += 1;
        let hash = chain(&prev, seq, record);
        seqs.push(seq);
        prevs.push(std::mem::replace(&mut prev, hash.clone()));
        hashes.push(hash);
    }
    // One statement for the whole batch, however many records it holds.
    let insert = tx
        .prepare_cached(
            "INSERT INTO audit (seq, record, prev_hash, hash) \
                 SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BYTEA[], $4::BYTEA[])",
        )
        .await?;
    tx.execute(&insert, &[&seqs, &records, &prevs, &hashes])
        .await?;
    Ok(seqs)
}
