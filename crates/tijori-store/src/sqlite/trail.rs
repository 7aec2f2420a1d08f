//! The audit trail's own database file, `audit.sqlite3` beside the vault's, attached to every
//! connection as the schema `trail`: the records and the signed checkpoints of their chain.
//!
//! Why a file of its own: every request appends a record, so the trail commits thousands of
//! times a second under load. In the vault's file, each such commit changed the write-ahead log
//! that every reader connection checks when it starts a lookup, and SQLite then drops that
//! connection's whole page cache, so nearly every detokenize read the token pages back (1.75
//! `pread`s a read). Committed to their own file, the records leave the token pages' caches
//! alone; the lookups of a detokenize cost what they cost without auditing.
//!
//! A write that makes records of its own (a tokenize, of one value or a batch) still commits
//! both in one transaction of the writer: SQLite commits the vault's file, then the trail's,
//! each durable before anyone is answered. A crash between the two can leave tokens without
//! their records; nobody was answered with those tokens, so nothing was revealed unrecorded.
//!
//! A data dir whose vault has moved its trail out (migration 9) refuses to start without the
//! trail file, rather than start a new, empty chain in its place.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::SqliteStore;
use crate::{AuditCheckpoint, AuditRow, AuditStore, ChainFn, StoreError};

/// File name of the trail's database inside the data dir.
pub const TRAIL_FILE: &str = "audit.sqlite3";

/// The trail's schema, numbered in its own `PRAGMA trail.user_version`; never edited once
/// released.
const MIGRATIONS: &[&str] = &[
    // 1: the chain and its signed checkpoints (until migration 9, tables of the vault's file).
    "
    CREATE TABLE trail.audit (
        seq       INTEGER PRIMARY KEY,
        record    TEXT    NOT NULL,
        prev_hash BLOB    NOT NULL,
        hash      BLOB    NOT NULL
    );
    CREATE TABLE trail.audit_checkpoints (
        seq       INTEGER PRIMARY KEY,
        hash      BLOB    NOT NULL,
        time      INTEGER NOT NULL,
        signature BLOB    NOT NULL
    );
    ",
];

/// Attaches the trail to the writer's connection (creating its file, owner-only), durable as
/// the vault's file is, and brings its schema up to date. Refuses if the vault's file says
/// its trail was moved out (`moved`) but the trail file is gone.
pub(super) fn attach_for_writes(
    conn: &mut Connection,
    data_dir: &Path,
    moved: bool,
) -> Result<(), StoreError> {
    let path = data_dir.join(TRAIL_FILE);
    if moved && !path.exists() {
        return Err(missing(&path));
    }
    super::private_file(&path)?;
    attach(conn, &path)?;
    conn.pragma_update(Some(TRAIL), "journal_mode", "WAL")?;
    conn.pragma_update(Some(TRAIL), "synchronous", "FULL")?;
    // With SQLite's default 2 MiB here (and still with 8 MiB) the writer read pages from disk
    // again under batch load: a million `pread`s in 4 s, a fifth of its rate. The pages read
    // were the vault file's (the token insert's foreign-key lookup of `data_keys`, the token
    // index), not the trail's: keeping the chain head in memory did not stop them. A batch's
    // record names all its tokens (about 46 KB for 1,000), and with the vault's 32 MiB here
    // the reads are as few as before the trail moved. BENCHMARKS.md has the measurements.
    conn.pragma_update(Some(TRAIL), "cache_size", -32 * 1024)?;
    migrate(conn)
}

/// Brings the attached trail's schema up to date, one transaction per migration.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    super::schema::apply(conn, TRAIL, TRAIL_FILE, MIGRATIONS, |_, _| Ok(()))
}

/// Attaches the trail beside the vault's file `db_path` to a read-only connection. A data dir
/// that an older tijori wrote (no trail file, the records still in the vault's file) is read
/// where its records are.
pub(super) fn attach_for_reads(conn: &Connection, db_path: &Path) -> Result<(), StoreError> {
    let path = db_path.with_file_name(TRAIL_FILE);
    if path.exists() {
        return attach(conn, &path);
    }
    let old: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'audit')",
        [],
        |r| r.get(0),
    )?;
    if old {
        attach(conn, db_path)
    } else {
        Err(missing(&path))
    }
}

/// Copies the records and checkpoints still in the vault's file (an older data dir) into the
/// trail, in a commit of their own: migration 9 then drops them from the vault's file. Run
/// again after a crash between the two, it copies nothing twice.
pub(super) fn take_from_main(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "INSERT OR IGNORE INTO trail.audit SELECT seq, record, prev_hash, hash FROM main.audit",
        [],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO trail.audit_checkpoints \
         SELECT seq, hash, time, signature FROM main.audit_checkpoints",
        [],
    )?;
    tx.commit()?;
    if n > 0 {
        tracing::info!(records = n, "moved the audit trail into its own file");
    }
    Ok(())
}

const TRAIL: rusqlite::DatabaseName<'static> = rusqlite::DatabaseName::Attached("trail");

fn attach(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let name = path.to_str().ok_or_else(|| {
        StoreError::Unavailable(format!("{} is not a UTF-8 path", path.display()))
    })?;
    conn.execute("ATTACH DATABASE ?1 AS trail", [name])?;
    Ok(())
}

fn missing(path: &Path) -> StoreError {
    StoreError::Corrupt(format!(
        "the audit trail's file {} is missing: restore it (and its -wal file) from a backup of \
         this data dir; a vault does not start a new trail in place of one that was lost",
        path.display()
    ))
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(
        &self,
        records: Vec<String>,
        chain: ChainFn,
    ) -> Result<Vec<i64>, StoreError> {
        self.writer()?.append_audit(records, chain).await
    }

    async fn audit_rows(&self, after: i64, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, record, prev_hash, hash FROM trail.audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit as i64], audit_row)?;
            rows.collect()
        })
    }

    async fn audit_head(&self) -> Result<Option<AuditRow>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT seq, record, prev_hash, hash FROM trail.audit ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([], audit_row)
            .optional()
        })
    }

    async fn insert_checkpoint(&self, cp: AuditCheckpoint) -> Result<bool, StoreError> {
        self.writer()?
            .write(move |tx| {
                let n = tx.execute(
                    "INSERT INTO trail.audit_checkpoints (seq, hash, time, signature) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT(seq) DO NOTHING",
                    params![cp.seq, cp.hash, cp.time, cp.signature],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn checkpoints(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<AuditCheckpoint>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, hash, time, signature FROM trail.audit_checkpoints WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit as i64], checkpoint_row)?;
            rows.collect()
        })
    }

    async fn last_checkpoint_before(
        &self,
        time: i64,
        below: i64,
    ) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT seq, hash, time, signature FROM trail.audit_checkpoints \
                 WHERE time <= ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![time, below], checkpoint_row)
            .optional()
        })
    }

    async fn prune_audit(&self, through: i64, limit: usize) -> Result<u64, StoreError> {
        self.writer()?
            .write(move |tx| {
                let n = tx.execute(
                    "DELETE FROM trail.audit WHERE seq IN \
                     (SELECT seq FROM trail.audit WHERE seq <= ?1 ORDER BY seq LIMIT ?2)",
                    params![through, limit as i64],
                )?;
                tx.execute(
                    "DELETE FROM trail.audit_checkpoints WHERE seq < ?1",
                    params![through],
                )?;
                Ok(n as u64)
            })
            .await
    }
}

fn checkpoint_row(r: &Row<'_>) -> Result<AuditCheckpoint, rusqlite::Error> {
    Ok(AuditCheckpoint {
        seq: r.get(0)?,
        hash: r.get(1)?,
        time: r.get(2)?,
        signature: r.get(3)?,
    })
}

fn audit_row(r: &Row<'_>) -> Result<AuditRow, rusqlite::Error> {
    Ok(AuditRow {
        seq: r.get(0)?,
        record: r.get(1)?,
        prev_hash: r.get(2)?,
        hash: r.get(3)?,
    })
}

/// Appends each batch of records to the audit chain after the newest record, in order; the
/// writer runs it once per group commit with every append waiting.
pub(super) fn append_audit(
    tx: &Transaction<'_>,
    batches: &[(Vec<String>, ChainFn)],
) -> Result<Vec<Vec<i64>>, StoreError> {
    let last: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM trail.audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    // With no record left (archived away), the chain goes on from the newest checkpoint.
    let last = match last {
        Some(last) => Some(last),
        None => tx
            .prepare_cached(
                "SELECT seq, hash FROM trail.audit_checkpoints ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    };
    let (mut seq, mut prev) = last.unwrap_or((0, vec![0u8; 32]));
    let mut stmt = tx.prepare_cached(
        "INSERT INTO trail.audit (seq, record, prev_hash, hash) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut out = Vec::with_capacity(batches.len());
    for (records, chain) in batches {
        let mut seqs = Vec::with_capacity(records.len());
        for record in records {
            seq += 1;
            let hash = chain(&prev, seq, record);
            stmt.execute(params![seq, record, prev, hash])?;
            seqs.push(seq);
            prev = hash;
        }
        out.push(seqs);
    }
    Ok(out)
}
