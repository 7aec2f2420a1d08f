//! The embedded default store: a SQLite database in WAL mode in the data dir, and the audit
//! trail's beside it ([`trail`]). Writes go through
//! the group-commit [`writer`]; reads use a small pool of read-only connections and run inline,
//! since a point lookup by primary key takes microseconds and WAL readers never wait on the writer.

mod keys;
mod policy;
mod principals;
mod schema;
mod trail;
mod users;
mod writer;

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, Transaction};

use crate::{
    AuditAfter, AuditWith, DataKeyRecord, Erased, IdempotencyRecord, IdempotencyStore,
    InsertOutcome, MetaStore, StoreError, TokenRecord, TokenStore,
};
pub use trail::TRAIL_FILE;
use writer::{Log, Writer};

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "tijori.sqlite3";

/// Page size of a new vault file (see [`SqliteStore::open`]).
const PAGE_SIZE: i64 = 8192;

/// The embedded store.
pub struct SqliteStore {
    /// `None` when opened read-only (forensic tools): every write answers `Unavailable`.
    writer: Option<Writer>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
    /// One node: its changes are told to itself only.
    changes: tokio::sync::broadcast::Sender<String>,
}

/// The token table's columns in [`token_from_row`]'s order; a macro so that the statements of
/// the hot paths below are `&'static str`s, not a `format!` per call and per row.
macro_rules! token_columns {
    () => {
        "token, type, ciphertext, data_key_id, blind_index, masked, subject, metadata, created_at, expires_at"
    };
}
pub(crate) const TOKEN_COLUMNS: &str = token_columns!();

const TOKEN_BY_STRING: &str = concat!("SELECT ", token_columns!(), " FROM tokens WHERE token = ?1");
const TOKEN_BY_INDEX: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM tokens WHERE type = ?1 AND blind_index = ?2"
);
const INSERT_TOKEN: &str = concat!(
    "INSERT INTO tokens (",
    token_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (token) DO NOTHING"
);

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join(DB_FILE);
        private_file(&path)?;
        let mut conn = Connection::open(&path)?;
        // A new file takes 8 KiB pages (SQLite's default is 4): a batch of tokens then fills
        // half as many pages, so the writer, which bounds batch tokenize, makes fewer page
        // splits and log writes for it. Measured: the server's CPU an item 4-10% lower, 4-7%
        // more items/s, single requests unchanged (BENCHMARKS.md). Only a new, empty file can
        // take it, and only before it is put in WAL mode; an older vault's file keeps the
        // pages it has (changing them would mean a VACUUM of it all).
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        // WAL lets readers run beside the writer; FULL makes each commit durable before it is
        // acknowledged (NORMAL could lose the last commits on power loss).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted rows are overwritten with zeros, not left in free space: an erased subject's
        // key must not be recoverable from the file (the log is emptied after each erasure).
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // 32 MiB of page cache for the writer (SQLite's default is 2 MiB): a new token lands at
        // a random place in the token index, and with a million tokens a small cache reads
        // most index pages back from the OS on every insert.
        conn.pragma_update(None, "cache_size", -32 * 1024)?;
        // The writer runs each job in a savepoint, and SQLite keeps a savepoint's undo pages in
        // a temporary file by default: a copy of stored rows (audit records among them) on
        // disk outside the data dir, where `secure_delete` does not reach, and a sixth of the
        // writer's time under batch inserts. In memory it is gone with the transaction.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        let moved = schema::trail_moved(&conn)?;
        trail::attach_for_writes(&mut conn, data_dir, moved)?;
        schema::migrate(&mut conn)?;
        let writer = Writer::spawn(conn, data_dir.to_owned(), trail::append_audit)?;
        Ok(SqliteStore {
            writer: Some(writer),
            readers: Mutex::new(Vec::new()),
            path,
            changes: crate::feed_channel(),
        })
    }

    /// Opens an existing database without writing to it (no migration, no writer): for tools
    /// that inspect a data dir, such as `tijori audit verify`.
    pub fn open_read_only(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Unavailable(format!(
                "no database at {}",
                path.display()
            )));
        }
        let store = SqliteStore {
            writer: None,
            readers: Mutex::new(Vec::new()),
            path,
            changes: crate::feed_channel(),
        };
        let reader = store.open_reader()?;
        store.readers.lock().map_err(|_| poisoned())?.push(reader);
        Ok(store)
    }

    pub(crate) fn writer(&self) -> Result<&Writer, StoreError> {
        self.writer
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the store was opened read-only".into()))
    }

    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let conn = match self.readers.lock().map_err(|_| poisoned())?.pop() {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let out = f(&conn);
        // A connection whose query failed may be in a bad state; let it go rather than reuse it.
        if out.is_ok() {
            if let Ok(mut pool) = self.readers.lock() {
                if pool.len() < 16 {
                    pool.push(conn);
                }
            }
        }
        Ok(out?)
    }

    fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        trail::attach_for_reads(&conn, &self.path)?;
        Ok(conn)
    }
}

/// Creates the database file readable by its owner only, or narrows an existing one to that.
/// SQLite gives its `-wal` and `-shm` files the database file's mode.
fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| StoreError::Unavailable(format!("{}: {e}", path.display()));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("reader pool lock poisoned".into())
}

pub(crate) fn token_from_row(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        token: r.get(0)?,
        data_type: r.get(1)?,
        ciphertext: r.get(2)?,
        data_key_id: r.get(3)?,
        blind_index: r.get(4)?,
        masked: r.get(5)?,
        subject: r.get(6)?,
        metadata: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
    })
}

pub(crate) fn data_key_from_row(r: &Row<'_>) -> rusqlite::Result<DataKeyRecord> {
    Ok(DataKeyRecord {
        id: r.get(0)?,
        purpose: r.get(1)?,
        scope: r.get(2)?,
        kek_version: r.get(3)?,
        wrapped: r.get(4)?,
        created_at: r.get(5)?,
    })
}

pub(crate) const DATA_KEY_COLUMNS: &str = "id, purpose, scope, kek_version, wrapped, created_at";

/// The active key of (purpose, scope), on any connection (the writer's transaction derefs to one).
pub(crate) fn active_key(
    c: &Connection,
    purpose: &str,
    scope: &str,
) -> rusqlite::Result<Option<DataKeyRecord>> {
    c.prepare_cached(&format!(
        "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE purpose = ?1 AND scope = ?2 AND active = 1"
    ))?
    .query_row(params![purpose, scope], data_key_from_row)
    .optional()
}

fn live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|e| e > now)
}

/// Inserts one token inside the writer's transaction, resolving deterministic races: the first
/// writer of a blind index wins, and every later one gets the winner's token.
fn insert_one(
    tx: &Transaction<'_>,
    insert: &mut rusqlite::Statement<'_>,
    rec: &TokenRecord,
    now: i64,
    active: &mut std::collections::HashMap<i64, bool>,
) -> Result<InsertOutcome, StoreError> {
    let is_active = match active.get(&rec.data_key_id) {
        Some(a) => *a,
        None => {
            let a = tx
                .prepare_cached("SELECT active FROM data_keys WHERE id = ?1")?
                .query_row(params![rec.data_key_id], |r| r.get::<_, bool>(0))
                .optional()?
                == Some(true);
            active.insert(rec.data_key_id, a);
            a
        }
    };
    if !is_active {
        return Ok(InsertOutcome::StaleKey);
    }
    if let Some(index) = &rec.blind_index {
        let existing = tx
            .prepare_cached(TOKEN_BY_INDEX)?
            .query_row(params![rec.data_type, index], token_from_row)
            .optional()?;
        if let Some(existing) = existing {
            if live(existing.expires_at, now) {
                return Ok(InsertOutcome::Existing(existing));
            }
            delete_row(tx, &existing.token)?;
        }
    }
    // A new random token almost never clashes: insert first, and look at the row in the way
    // only when there is one (an expired token's row gives way; a live one is kept).
    if insert_row(insert, rec)? {
        return Ok(InsertOutcome::Inserted);
    }
    let expires: Option<i64> = tx
        .prepare_cached("SELECT expires_at FROM tokens WHERE token = ?1")?
        .query_row(params![rec.token], |r| r.get(0))?;
    if live(expires, now) {
        return Ok(InsertOutcome::TokenTaken);
    }
    delete_row(tx, &rec.token)?;
    if !insert_row(insert, rec)? {
        return Err(StoreError::Unavailable(
            "a token row reappeared within its own transaction".into(),
        ));
    }
    Ok(InsertOutcome::Inserted)
}

/// Inserts a token's row unless its token is taken (`insert` is [`INSERT_TOKEN`], prepared
/// once per batch); answers whether it did.
fn insert_row(insert: &mut rusqlite::Statement<'_>, rec: &TokenRecord) -> Result<bool, StoreError> {
    let n = insert.execute(params![
        rec.token,
        rec.data_type,
        rec.ciphertext,
        rec.data_key_id,
        rec.blind_index,
        rec.masked,
        rec.subject,
        rec.metadata,
        rec.created_at,
        rec.expires_at
    ])?;
    Ok(n == 1)
}

fn delete_row(tx: &Transaction<'_>, token: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM tokens WHERE token = ?1")?
        .execute(params![token])?;
    Ok(())
}

/// Inserts each record; whether each data key is active is asked once per key.
fn insert_all(
    tx: &Transaction<'_>,
    records: &[TokenRecord],
    now: i64,
) -> Result<Vec<InsertOutcome>, StoreError> {
    let mut active = std::collections::HashMap::new();
    let mut insert = tx.prepare_cached(INSERT_TOKEN)?;
    records
        .iter()
        .map(|r| insert_one(tx, &mut insert, r, now, &mut active))
        .collect()
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_tokens(
        &self,
        records: Vec<TokenRecord>,
        now: i64,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        // The rows come back to be freed here, as below: the writer is the one thread every
        // write waits for, and freeing a batch's thousands of small allocations there (glibc's
        // `malloc_consolidate`) was 7% of its time under batch load.
        let (outcomes, records) = self
            .writer()?
            .write(move |tx| Ok((insert_all(tx, &records, now)?, records)))
            .await?;
        drop(records);
        Ok(outcomes)
    }

    /// One job: the tokens, then the records made of their outcomes, in one commit.
    async fn insert_tokens_audited(
        &self,
        records: Vec<TokenRecord>,
        now: i64,
        audit: AuditWith,
    ) -> Result<(Vec<InsertOutcome>, bool), StoreError> {
        let AuditWith {
            records: made,
            chain,
        } = audit;
        let (answer, records) = self
            .writer()?
            .write_audited(
                move |tx| {
                    let outcomes = insert_all(tx, &records, now)?;
                    let made = made(&outcomes);
                    let joined = !made.is_empty();
                    Ok((((outcomes, joined), records), made))
                },
                Some(chain),
            )
            .await?;
        drop(records);
        Ok(answer)
    }

    fn joins_audit(&self, _: crate::Joined) -> bool {
        true
    }

    async fn token(&self, token: &str, now: i64) -> Result<Option<TokenRecord>, StoreError> {
        let rec = self.read(|c| {
            c.prepare_cached(TOKEN_BY_STRING)?
                .query_row(params![token], token_from_row)
                .optional()
        })?;
        Ok(rec.filter(|r| live(r.expires_at, now)))
    }

    async fn tokens(&self, tokens: &[String], now: i64) -> Result<Vec<TokenRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(TOKEN_BY_STRING)?;
            let mut out = Vec::with_capacity(tokens.len());
            for t in tokens {
                if let Some(r) = stmt.query_row(params![t], token_from_row).optional()? {
                    if live(r.expires_at, now) {
                        out.push(r);
                    }
                }
            }
            Ok(out)
        })
    }

    async fn token_by_index(
        &self,
        data_type: &str,
        index: &[u8],
        now: i64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let rec = self.read(|c| {
            c.prepare_cached(TOKEN_BY_INDEX)?
                .query_row(params![data_type, index], token_from_row)
                .optional()
        })?;
        Ok(rec.filter(|r| live(r.expires_at, now)))
    }

    async fn delete_token_audited(
        &self,
        token: &str,
        now: i64,
        audit: Option<AuditAfter<bool>>,
    ) -> Result<(bool, bool), StoreError> {
        let token = token.to_owned();
        self.write_recorded(audit, move |tx| delete_token(tx, &token, now))
            .await
    }

    async fn erase_subject_audited(
        &self,
        subject: &str,
        key_scope: &str,
        audit: Option<AuditAfter<Erased>>,
    ) -> Result<(Erased, bool), StoreError> {
        let (subject, scope) = (subject.to_owned(), key_scope.to_owned());
        let answer = self
            .write_recorded(audit, move |tx| {
                let tokens =
                    tx.execute("DELETE FROM tokens WHERE subject = ?1", params![subject])?;
                let keys = tx.execute("DELETE FROM data_keys WHERE scope = ?1", params![scope])?;
                Ok(Erased {
                    tokens: tokens as u64,
                    keys: keys as u64,
                })
            })
            .await?;
        // Only the vault's log: the trail's holds no values.
        self.writer()?.truncate_logs(&[Log::Vault]).await?;
        Ok(answer)
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.writer()?
            .write(move |tx| {
                let n = tx.execute(
                    "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                    params![now],
                )?;
                Ok(n as u64)
            })
            .await
    }
}

impl SqliteStore {
    /// Runs `write` in the next group commit, with the records `audit` makes of its outcome
    /// appended in that same commit, if given; answers the outcome and whether any were.
    async fn write_recorded<T: Send + 'static>(
        &self,
        audit: Option<AuditAfter<T>>,
        write: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(T, bool), StoreError> {
        let (records, chain) = match audit {
            Some(AuditAfter { records, chain }) => (Some(records), Some(chain)),
            None => (None, None),
        };
        self.writer()?
            .write_audited(
                move |tx| {
                    let outcome = write(tx)?;
                    let made = records.map_or_else(Vec::new, |r| r(&outcome));
                    Ok(((outcome, !made.is_empty()), made))
                },
                chain,
            )
            .await
    }
}

/// Deletes `token`; whether it was a live one (an expired token is deleted all the same, but
/// answers as if it was not there).
fn delete_token(tx: &Transaction<'_>, token: &str, now: i64) -> Result<bool, StoreError> {
    let exp: Option<Option<i64>> = tx
        .query_row(
            "SELECT expires_at FROM tokens WHERE token = ?1",
            params![token],
            |r| r.get(0),
        )
        .optional()?;
    let n = tx.execute("DELETE FROM tokens WHERE token = ?1", params![token])?;
    Ok(n > 0 && exp.is_some_and(|e| live(e, now)))
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn idempotency(
        &self,
        principal_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT principal_id, key, fingerprint, status, body, created_at FROM idempotency
                 WHERE principal_id = ?1 AND key = ?2",
            )?
            .query_row(params![principal_id, key], |r| {
                Ok(IdempotencyRecord {
                    principal_id: r.get(0)?,
                    key: r.get(1)?,
                    fingerprint: r.get(2)?,
                    status: r.get(3)?,
                    body: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })
            .optional()
        })
    }

    async fn put_idempotency(&self, rec: IdempotencyRecord) -> Result<bool, StoreError> {
        self.writer()?
            .write(move |tx| {
                let n = tx.execute(
                    "INSERT INTO idempotency (principal_id, key, fingerprint, status, body, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(principal_id, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                       status = excluded.status, body = excluded.body, created_at = excluded.created_at",
                    params![rec.principal_id, rec.key, rec.fingerprint, rec.status, rec.body, rec.created_at],
                )?;
                Ok(n > 0)
            })
            .await
    }

    async fn purge_idempotency(&self, before: i64) -> Result<u64, StoreError> {
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "DELETE FROM idempotency WHERE created_at < ?1",
                    params![before],
                )? as u64)
            })
            .await
    }
}

#[async_trait]
impl MetaStore for SqliteStore {
    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row(params![key], |r| r.get(0))
                .optional()
        })
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.writer()?
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )?;
                Ok(())
            })
            .await
    }

    async fn settle_logs(&self) -> Result<(), StoreError> {
        self.writer()?
            .truncate_logs(&[Log::Vault, Log::Trail])
            .await
    }
}

#[async_trait]
impl crate::ChangeFeed for SqliteStore {
    async fn publish(&self, topic: &str) -> Result<(), StoreError> {
        // No receiver (nothing follows changes) is not an error.
        let _ = self.changes.send(topic.to_owned());
        Ok(())
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;
    use crate::AuditStore;

    fn page_size(dir: &Path) -> i64 {
        Connection::open(dir.join(DB_FILE))
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    }

    /// The page size is set where it can still take effect (a new file, before WAL mode), and
    /// a vault made with SQLite's default keeps it and opens as before.
    #[tokio::test]
    async fn a_new_vault_file_takes_8_kib_pages_and_an_older_one_keeps_its_own() {
        let root = std::env::temp_dir().join(format!("tijori-pages-{}", std::process::id()));
        let (new, old) = (root.join("new"), root.join("old"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&new).unwrap();
        std::fs::create_dir_all(&old).unwrap();

        drop(SqliteStore::open(&new).unwrap());
        assert_eq!(page_size(&new), PAGE_SIZE);

        let conn = Connection::open(old.join(DB_FILE)).unwrap();
        conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; VACUUM")
            .unwrap();
        drop(conn);
        let store = SqliteStore::open(&old).unwrap();
        store.set_meta("k", "v").await.unwrap();
        assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v"));
        drop(store);
        assert_eq!(page_size(&old), 4096);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// The records of reads go into the trail's file alone: while another connection holds the
    /// vault's file for writing, they still commit (an IMMEDIATE transaction would wait for
    /// that lock, then fail).
    #[tokio::test]
    async fn audit_appends_do_not_wait_for_the_vault_files_write_lock() {
        fn chain(prev: &[u8], seq: i64, record: &str) -> Vec<u8> {
            [prev, &seq.to_be_bytes(), record.as_bytes()].concat()
        }
        let dir = std::env::temp_dir().join(format!("tijori-locks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir).unwrap();

        let holder = Connection::open(dir.join(DB_FILE)).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let other = Connection::open(dir.join(DB_FILE)).unwrap();
        other.busy_timeout(std::time::Duration::ZERO).unwrap();
        assert!(
            other.execute_batch("BEGIN IMMEDIATE").is_err(),
            "the vault's file is not locked; the test proves nothing"
        );

        let seqs = store
            .append_audit(vec!["a".into(), "b".into()], chain)
            .await
            .unwrap();
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(store.audit_head().await.unwrap().unwrap().seq, 2);
        holder.execute_batch("ROLLBACK").unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `.cargo/config.toml` builds the bundled SQLite without global memory statistics and with
    /// a page cache per connection (its notes say why: with one cache for all, the readers'
    /// lookups evicted the writer's pages). A build that lost those flags is as correct and
    /// slower; built from the repository, as the README and CI build, this test catches it.
    #[test]
    fn the_bundled_sqlite_is_built_with_the_repositorys_flags() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
        let options = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "one page cache shared by all connections (built outside the repository, or with \
             LIBSQLITE3_FLAGS set in the environment?): {options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "global memory statistics on: {options:?}"
        );
    }
}
